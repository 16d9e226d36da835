"""`kinepose report RUN` and `kinepose view FILE [TRUTH]`: what the pages hold, and the errors."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from kinepose.cli import main
from kinepose.config import resolve_config
from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.training import run_training

TINY = ["data.samples_per_epoch=128", "data.batch_size=64", "trainer.max_epochs=2", "trainer.loggers=[csv]",
        "trainer.progress_bar=false", "data.eval_clips=[walk,kick]"]  # fmt: skip


@pytest.fixture(scope="module")
def sequence_run(tmp_path_factory):
    """A tiny causal transformer run, trained by the CLI (so it has eval.json and attention maps)."""
    run = tmp_path_factory.mktemp("seq") / "run"
    args = ["train", "configs/humanoid_sequence.yaml", *TINY, "model.dim=16", "model.window=4", "model.layers=1",
            "model.heads=2", "--out", str(run), "--quiet", "--noise-levels", "0", "10"]  # fmt: skip
    assert main(args) == 0
    return run


def _images(page: str) -> list[Image.Image]:
    uris = re.findall(r"<img [^>]*src='([^']+)'", page)
    out = []
    for uri in uris:
        assert uri.startswith("data:image/png;base64,"), uri[:60]  # embedded, not linked
        out.append(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
    return out


def test_report_of_a_sequence_run(sequence_run, capsys):
    assert main(["report", str(sequence_run), "--clip", "kick", "--noise-mm", "5"]) == 0
    out = capsys.readouterr().out
    page = (sequence_run / "report.html").read_text()
    assert "wrote" in out and "Attention maps" in out
    for section in ("Summary", "Metrics", "Training curves", "Skeleton views", "Attention maps", "3D viewer", "Config"):
        assert f">{section}</h2>" in page, section
    assert "sequence (this run)" in page and "analytic IK + least-squares fit" in page  # the comparison table
    ev = json.loads((sequence_run / "eval.json").read_text())
    model_row = next(r for r in ev["reports"] if r["solver"] == "sequence (this run)" and r["noise_mm"] == 10)
    assert f"{model_row['overall']['mpjpe_mm']:.2f}" in page  # the numbers are the run's
    assert "window: 4" in page and "humanoid_sequence" in page  # the resolved config
    assert "Tokens are frame offsets relative to the predicted frame" in page  # maps over the 4-frame window
    assert "which frames the predicted frame attends to" in page
    images = _images(page)
    assert len(images) >= 5  # curves, two skeleton views, per-joint bars, error vs noise (x2), attention
    for im in images:
        arr = np.asarray(im.convert("RGB"))
        assert im.format == "PNG" and arr.std() > 5  # not blank
    assert not re.search(r"(src|href)=['\"]https?:", page)  # nothing loads from the network
    viewer = sequence_run / "report_viewer.html"
    assert viewer.exists() and "report_viewer.html" in page


def test_report_without_attention_or_eval_json(tmp_path):
    cfg = resolve_config(None, [*TINY[:-1], "model.name=iknet", "model.hidden=16"])
    run_training(cfg, str(tmp_path / "run"), enable_checkpointing=False)
    out = tmp_path / "elsewhere" / "r.html"
    assert main(["report", str(tmp_path / "run"), "--output", str(out), "--no-viewer"]) == 0
    page = out.read_text()
    assert "has no attention layers" in page and "No eval.json" in page
    assert not (tmp_path / "elsewhere" / "report_viewer.html").exists()
    assert len(_images(page)) == 3  # curves and two skeleton views
    png = tmp_path / "att.png"
    assert main(["plot", "attention", "--model", str(tmp_path / "run"), "--output", str(png)]) == 2
    assert not png.exists()


def test_cli_plot_attention(sequence_run, tmp_path, capsys):
    out = tmp_path / "att.png"
    assert main(["plot", "attention", "--model", str(sequence_run), "--clip", "kick", "--per-head", "--output",
                 str(out)]) == 0  # fmt: skip
    assert "1 layers, 2 heads" in capsys.readouterr().out
    im = Image.open(out)
    assert im.format == "PNG" and np.asarray(im.convert("RGB")).std() > 5


def test_report_errors(sequence_run, tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.yaml").write_text("name: x\n")
    assert main(["report", str(tmp_path / "half")]) == 2
    assert "model.pt is missing" in capsys.readouterr().err
    target = tmp_path / "r.html"
    target.write_text("old")
    assert main(["report", str(sequence_run), "--clip", "dance_a", "--output", str(target)]) == 2
    err = capsys.readouterr().err
    assert "'dance_a' is not a held-out clip" in err and "walk, kick" in err
    assert target.read_text() == "old"  # untouched
    assert main(["report", str(sequence_run), "--noise-mm", "-1"]) == 2


@pytest.fixture
def walk_files(tmp_path):
    walk = load_deepmimic("walk")
    joints = tmp_path / "walk.npz"
    np.savez(joints, joints=walk.positions().numpy(), joint_names=np.array(walk.skeleton.joint_names), fps=walk.fps)
    rot = tmp_path / "walk_rot.npz"
    assert main(["ik", "--model", "analytic", "--input", str(joints), "--output", str(rot), "--quiet"]) == 0
    return walk, joints, rot


def test_view_prediction_against_truth(walk_files, tmp_path, monkeypatch, capsys):
    walk, joints, rot = walk_files
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(["view", str(rot), str(joints)]) == 0
    page_path = here / "walk_rot.npz.view.html"  # in the current folder, not beside the input
    assert f"({walk.num_frames} frames" in capsys.readouterr().out
    page = page_path.read_text()
    assert "walk_rot.npz" in page and "walk.npz" in page  # both sequences, labelled by file
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page)  # self-contained


def test_view_errors(walk_files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    joints = walk_files[1]
    assert main(["view", str(tmp_path / "missing.npz")]) == 2
    assert "missing.npz" in capsys.readouterr().err
    assert main(["view", str(joints), "--output", str(joints)]) == 2  # would overwrite the input
    assert "overwrite" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    assert main(["view", str(bad)]) == 2
    assert not (tmp_path / "bad.npz.view.html").exists()
    assert main(["view", str(joints)]) == 2  # positions only: which skeleton?
    assert "skeleton" in capsys.readouterr().err
    assert main(["view", str(joints), "--skeleton", "humanoid", "--output", str(tmp_path / "j.html")]) == 0
    with pytest.raises(SystemExit) as exc:
        main(["view", str(joints), "--serve", "--port", "70000"])
    assert exc.value.code == 2 and "0..65535" in capsys.readouterr().err


def test_view_serves_on_localhost(walk_files, tmp_path):
    _, _, rot = walk_files
    page = tmp_path / "served.html"
    proc = subprocess.Popen([sys.executable, "-m", "kinepose.cli", "view", str(rot), "--output", str(page),
                             "--serve", "--port", "0"], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        url = None
        deadline = time.time() + 60
        while url is None and time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            m = re.search(r"serving (http://127\.0\.0\.1:\d+/\S+)", line)
            url = m.group(1) if m else None
        assert url, "the server never announced its address"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = resp.read().decode("utf-8")
        assert body == page.read_text()
        with pytest.raises(urllib.error.HTTPError) as err:  # only the page: not the folder it is in
            urllib.request.urlopen(url.rsplit("/", 1)[0] + "/walk_rot.npz", timeout=10)
        assert err.value.code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_report_with_null_metrics(sequence_run, tmp_path):
    """Strict JSON stores NaN as null (e.g. the acceleration error of clips under 3 frames): shown as a dash."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(sequence_run, run)
    ev = json.loads((run / "eval.json").read_text())
    for r in ev["reports"]:
        r["overall"]["accel_mm"] = None
        for c in r["clips"]:
            c["accel_mm"] = None
    (run / "eval.json").write_text(json.dumps(ev))
    assert main(["report", str(run), "--no-viewer"]) == 0
    page = (run / "report.html").read_text()
    table = page.split(">Metrics</h2>")[1].split("<h2")[0]
    per_clip_rows = sum(len(r["clips"]) for r in ev["reports"] if "(this run)" in r["solver"])
    assert table.count("<td class='num'>–</td>") == len(ev["reports"]) + per_clip_rows


def test_window_one_transformer_has_no_map_to_show(tmp_path, capsys):
    """A transformer over a window of one frame attends to itself only: a clear message, not a 1x1 picture."""
    model = ["model.name=hybrid", "model.encoder=transformer", "model.window=1", "model.dim=16", "model.layers=1",
             "model.fit_iterations=1"]  # fmt: skip
    cfg = resolve_config(None, [*TINY[:-1], "trainer.max_epochs=1", *model])
    run_training(cfg, str(tmp_path / "run"), enable_checkpointing=False)
    assert main(["plot", "attention", "--model", str(tmp_path / "run"), "--output", str(tmp_path / "a.png")]) == 2
    assert "single token" in capsys.readouterr().err and not (tmp_path / "a.png").exists()
    assert main(["report", str(tmp_path / "run"), "--no-viewer"]) == 0
    assert "attends over a single token" in (tmp_path / "run" / "report.html").read_text()
