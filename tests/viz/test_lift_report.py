"""`kinepose report RUN` for lifting runs: what the page holds, that its numbers are eval.json's, and the errors."""

from __future__ import annotations

import base64
import io
import json
import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

from kinepose.cli import main
from kinepose.training.lifting import EVAL_CONDITIONS, resolve_lift_config, train_lifter
from kinepose.viz.lift_report import LIFT_METRICS, _fmt_metric, lifter_attention, write_lift_report
from kinepose.viz.report import write_report

HAND = ["data.kind=hand", "data.hand_sequences.train=4", "data.hand_sequences.val=1", "data.hand_sequences.test=2",
        "data.hand_sequences.length=30", "data.views=1", "trainer.steps=3", "trainer.batch_size=8"]  # fmt: skip
SECTIONS = ("Summary", "Metrics", "Skeleton views", "Errors per joint", "Attention maps", "Config")


@pytest.fixture(scope="module")
def lift_run(tmp_path_factory):
    """A tiny skeleton_lifter run on synthetic hands (2 held-out clips, one test camera each)."""
    cfg = resolve_lift_config(None, HAND)
    cfg["model"] = {"name": "skeleton_lifter", "window": 3, "dim": 16, "layers": 1, "heads": 2, "width": 32}
    run = tmp_path_factory.mktemp("lift") / "run"
    train_lifter(cfg, str(run), progress=False)
    return run


def _images(page: str) -> list[Image.Image]:
    uris = re.findall(r"<img [^>]*src='([^']+)'", page)
    out = []
    for uri in uris:
        assert uri.startswith("data:image/png;base64,"), uri[:60]  # embedded, not linked
        im = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
        assert im.format == "PNG" and np.asarray(im.convert("RGB")).std() > 5  # not blank
        out.append(im)
    return out


def _leftovers(folder) -> list[str]:
    return [n for n in os.listdir(folder) if n.endswith(".tmp")]


def test_page_of_a_lifting_run(lift_run, tmp_path):
    out = tmp_path / "r.html"
    result = write_lift_report(lift_run, out)
    page = out.read_text()
    assert result.path == str(out) and result.viewer_path is None and result.sections == list(SECTIONS)
    assert result.bytes == len(page.encode("utf-8"))
    for section in SECTIONS:
        assert f">{section}</h2>" in page, section
    ev = json.loads((lift_run / "eval.json").read_text())
    assert list(ev["test"]) == list(EVAL_CONDITIONS)
    for cond, m in ev["test"].items():  # every number of the table, as the page formats it
        row = re.search(rf"<tr><td[^>]*>{re.escape(cond)}</td>.*?</tr>", page).group(0)
        for key, _, decimals in LIFT_METRICS:
            assert f"<td class='num'>{_fmt_metric(m[key], decimals)}</td>" in row, (cond, key)
        assert f"<td class='num'>{m['frames']}</td>" in row
    assert "<td class='best'>5px+outliers</td>" in page  # the pictures' condition
    assert f"{ev['parameters']:,}" in page and f"{ev['steps_done']} of {ev['steps']}" in page
    assert "skeleton_lifter" in page and "hand21 (21 joints)" in page and "3 frames, centred" in page
    assert "hand_test_000, hand_test_001" in page and "hand_test_000@0" in page  # default: the first clip
    assert "2D fit" not in page  # refine is off in this run
    assert "Tokens are frame offsets relative to the predicted frame" in page
    assert "task: lift" in page  # the resolved recipe
    assert len(_images(page)) == 5  # median, worst, 2D input, per-joint bars, attention
    assert not re.search(r"(src|href)=['\"]https?:", page)  # nothing loads from the network


def test_pictures_use_the_clips_of_eval_json(lift_run):
    """The report's held-out clips (loaded without the training clips) seen by eval_views give eval.json's numbers."""
    from kinepose.data.lifting import lifting_split
    from kinepose.models.lifting.files import load_lifter
    from kinepose.training.lifting import eval_views, evaluate_lifter
    from kinepose.viz.lift_report import _test_only

    cfg = resolve_lift_config(str(lift_run / "config.yaml"))
    ev = json.loads((lift_run / "eval.json").read_text())
    test = lifting_split(_test_only(cfg["data"]))[2]
    got = evaluate_lifter(load_lifter(lift_run), eval_views(cfg, test)["5px+outliers"])
    assert got["mpjpe_mm"] == pytest.approx(ev["test"]["5px+outliers"]["mpjpe_mm"], rel=1e-5)


def test_lifter_attention(lift_run):
    from kinepose.models.lifting.files import load_lifter

    model = load_lifter(lift_run)
    kp = torch.rand(30, 21, 2) - 0.5
    att, n = lifter_attention(model, kp, torch.ones(30, 21))
    assert n == 30 and len(att) == 1 and att[0].shape == (2, 3, 3)  # (heads, frames, frames), mean of 30 windows
    assert torch.allclose(att[0].sum(-1), torch.ones(2, 3), atol=1e-5)
    assert lifter_attention(model, kp, None, max_windows=4)[1] == 4  # every 8th frame: 0, 8, 16, 24


def test_cli_report_of_a_lifting_run(lift_run, capsys):
    assert main(["report", str(lift_run), "--clip", "hand_test_001", "--condition", "5px", "--view", "0"]) == 0
    out = capsys.readouterr().out
    page = (lift_run / "report.html").read_text()
    assert "wrote" in out and "Attention maps" in out and "3D viewer" not in out
    assert "hand_test_001@0" in page and "<td class='best'>5px</td>" in page
    assert not (lift_run / "report_viewer.html").exists()  # lifting pages have no viewer page
    assert not _leftovers(lift_run)


def test_cli_errors_write_nothing(lift_run, tmp_path, capsys):
    target = tmp_path / "r.html"
    assert main(["report", str(lift_run), "--clip", "hand_test_999", "--output", str(target)]) == 2
    err = capsys.readouterr().err
    assert "'hand_test_999' is not a held-out clip" in err and "hand_test_000, hand_test_001" in err
    assert main(["report", str(lift_run), "--view", "1", "--output", str(target)]) == 2  # data.views=1
    err = capsys.readouterr().err
    assert "--view" in err and "has 1 per clip" in err and "choose from 0" in err
    assert main(["report", str(lift_run), "--view", "-1", "--output", str(target)]) == 2
    assert "--view" in capsys.readouterr().err
    assert main(["report", str(lift_run), "--noise-mm", "5", "--output", str(target)]) == 2
    err = capsys.readouterr().err
    assert "--condition" in err and "5px+outliers" in err
    with pytest.raises(SystemExit) as exc:  # argparse's choices
        main(["report", str(lift_run), "--condition", "9px", "--output", str(target)])
    assert exc.value.code == 2 and "choose from 'clean', '2px', '5px', '5px+outliers'" in capsys.readouterr().err
    assert not target.exists() and not _leftovers(tmp_path)
    with pytest.raises(ValueError, match=r"condition \(--condition\): unknown '9px'; choose from clean, 2px, 5px"):
        write_lift_report(lift_run, target, condition="9px")
    with pytest.raises(ValueError, match="view"):
        write_lift_report(lift_run, target, view=True)
    with pytest.raises(ValueError, match="destroy the run"):
        write_lift_report(lift_run, lift_run / "eval.json")
    (tmp_path / "ik").mkdir()  # an IK run folder: checked before anything is loaded
    (tmp_path / "ik" / "config.yaml").write_text("name: x\n")
    (tmp_path / "ik" / "model.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"condition \(--condition\) and view \(--view\) apply to lifting runs"):
        write_report(tmp_path / "ik", condition="5px")
    assert not target.exists()


def test_cli_conditions_are_eval_conditions():
    from kinepose.cli.viz import LIFT_CONDITIONS

    assert LIFT_CONDITIONS == tuple(EVAL_CONDITIONS)


def test_existing_page_is_replaced_only_when_everything_worked(lift_run, tmp_path, monkeypatch):
    import kinepose.viz

    target = tmp_path / "r.html"
    target.write_text("old")

    def broken(*args, **kwargs):
        raise ValueError("drawing failed")

    monkeypatch.setattr(kinepose.viz, "plot_pose_comparison", broken)
    with pytest.raises(ValueError, match="drawing failed"):
        write_report(lift_run, target)
    assert target.read_text() == "old" and not _leftovers(tmp_path)  # a failure half-way leaves the old page
    monkeypatch.undo()
    assert main(["report", str(lift_run), "--output", str(target)]) == 0
    page = target.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n") and not _leftovers(tmp_path)


def test_tcn_run_has_no_attention_section(tmp_path, capsys):
    """A tcn lifter (no attention, joints without a skeleton) on body clips: the page leaves the section out."""
    cfg = resolve_lift_config(None, ["data.train=[walk]", "data.val=[]", "data.test=[kick]", "data.views=2",
                                     "trainer.steps=2", "trainer.batch_size=8"])  # fmt: skip
    cfg["model"] = {"name": "tcn", "filter_widths": [3], "channels": 16}
    run = tmp_path / "tcn"
    train_lifter(cfg, str(run), progress=False)
    result = write_report(run, view=1)
    page = (run / "report.html").read_text()
    assert "Attention maps" not in result.sections and ">Attention maps</h2>" not in page
    assert "none: tcn has no attention" in page and "kick@1" in page and "humanoid (15 joints)" in page
    assert len(_images(page)) == 4  # median, worst, 2D input, per-joint bars
    png = tmp_path / "att.png"
    assert main(["plot", "attention", "--model", str(run), "--clip", "kick", "--output", str(png)]) == 2
    assert "has no attention layers" in capsys.readouterr().err and not png.exists()


def test_without_eval_json_and_with_the_2d_fit(lift_run, tmp_path):
    """No eval.json: a note instead of the table. A lifter with a 2D fit (``refine``): its settings in the summary."""
    import shutil

    from kinepose.models.lifting.files import load_lifter, save_lifter
    from kinepose.models.lifting.refine import RefineConfig

    run = tmp_path / "run"
    shutil.copytree(lift_run, run)
    (run / "eval.json").unlink()
    model = load_lifter(run)
    model.refine = RefineConfig(steps=2)
    save_lifter(str(run / "lifter.pt"), model)
    result = write_lift_report(run)
    page = (run / "report.html").read_text()
    assert "No eval.json in the run folder" in page and "<table>" not in page
    assert "2D fit (refine)" in page and "steps 2, lr 0.02" in page and "applied to whole clips" in page
    assert "Metrics" in result.sections and len(_images(page)) == 5
