"""Interrupted runs: ``kinepose train --resume RUN`` after a SIGKILL ends as a normal run with the same result as an
uninterrupted one; Ctrl-C says how to resume and exits 130 without a traceback."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from kinepose.cli import main
from kinepose.config import resolve_config
from kinepose.inference import predict_clip
from kinepose.models.files import load_model

ROOT = Path(__file__).resolve().parents[2]
RECIPE = str(ROOT / "configs" / "humanoid_hybrid.yaml")
# 32 batches an epoch (about a second): long enough to kill inside one. One thread: the same arithmetic in
# every process, and fair to a shared machine.
SMALL = [
    "data.samples_per_epoch=2048",
    "data.batch_size=64",
    "trainer.loggers=[csv]",
    "model.dim=32",
    "model.layers=1",
    "model.fit_iterations=1",
    "trainer.threads=1",
]
#: Largest difference seen between the eval.json metrics of a resumed and an uninterrupted run: 0.0 (bit-identical
#: on CPU, torch 2.13, Lightning 2.6); the assertion leaves room for 1e-6.
TOLERANCE = 1e-6


def _train(*args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "kinepose.cli", "train", *args, "--quiet"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def default_sigint() -> None:  # a child of a shell job may inherit SIGINT ignored; Python then keeps ignoring it
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)  # fmt: skip


def _wait_for_checkpoint(proc: subprocess.Popen, run: Path, epoch: int, timeout: float = 120.0) -> int:
    """Poll until ``run/checkpoints/last.ckpt`` was written at the start of epoch >= ``epoch``; return that epoch."""
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"training ended before epoch {epoch} (rc {proc.returncode}): {err[-3000:]}")
        if last.is_file():
            try:
                found = int(torch.load(last, map_location="cpu", weights_only=True)["epoch"])
            except Exception:  # caught while Lightning writes it: look again
                found = -1
            if found >= epoch:
                return found
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"no checkpoint for epoch {epoch} within {timeout} s")


def _floats(x: object, path: str = "") -> dict[str, float]:
    """Every number in a JSON value, by its path."""
    if isinstance(x, dict):
        return {k: v for key, item in x.items() for k, v in _floats(item, f"{path}.{key}").items()}
    if isinstance(x, list):
        return {k: v for i, item in enumerate(x) for k, v in _floats(item, f"{path}[{i}]").items()}
    return {path: float(x)} if isinstance(x, int | float) and not isinstance(x, bool) else {}


def _metrics_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "logs" / "csv" / "version_0" / "metrics.csv", newline="") as f:
        return sorted(csv.DictReader(f), key=lambda r: (int(r["step"]), r["val/geo_deg"] == ""))


@pytest.mark.slow
def test_killed_run_resumes_to_the_result_of_an_uninterrupted_one(tmp_path):
    ref_dir, run = tmp_path / "uninterrupted", tmp_path / "killed"
    ref = _train(RECIPE, *SMALL, "trainer.max_epochs=4", "--out", str(ref_dir))  # alongside: the test takes less
    proc = _train(RECIPE, *SMALL, "trainer.max_epochs=4", "--out", str(run))
    _wait_for_checkpoint(proc, run, epoch=1)
    time.sleep(0.3)  # into the epoch
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "model.pt").exists() and not (run / "eval.json").exists()  # it was cut off mid-training

    resumed = subprocess.run([sys.executable, "-m", "kinepose.cli", "train", "--resume", str(run), "--quiet"],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "4 epochs (resumed)" in resumed.stdout and "| hybrid (this run) | 10 |" in resumed.stdout
    q, _ = predict_clip(load_model(str(run)), torch.zeros(3, 15, 3))
    assert torch.isfinite(q).all()

    _, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err[-3000:]
    a, b = (json.loads((d / "eval.json").read_text()) for d in (ref_dir, run))
    assert a["epochs"] == b["epochs"] == 4
    assert abs(a["best_val_geo_deg"] - b["best_val_geo_deg"]) <= TOLERANCE
    fa, fb = _floats(a["reports"]), _floats(b["reports"])
    assert fa.keys() == fb.keys() and len(fa) > 100
    worst = max(abs(fa[k] - fb[k]) for k in fa)
    assert worst <= TOLERANCE, worst
    assert a["residual_selection"] == b["residual_selection"]
    # the CSV log goes on in the same file: every epoch once, at the steps of the uninterrupted run
    rows_a, rows_b = _metrics_rows(ref_dir), _metrics_rows(run)
    assert [(r["epoch"], r["step"]) for r in rows_a] == [(r["epoch"], r["step"]) for r in rows_b]
    assert {r["epoch"] for r in rows_b} == {"0", "1", "2", "3"}
    for ra, rb in zip(rows_a, rows_b, strict=True):
        for key in ra:
            if ra[key] or rb[key]:
                assert abs(float(ra[key]) - float(rb[key])) <= TOLERANCE, (key, ra, rb)


@pytest.mark.slow
def test_ctrl_c_says_how_to_resume_and_the_run_resumes(tmp_path):
    run = tmp_path / "run"
    proc = _train(RECIPE, *SMALL, "data.samples_per_epoch=1024", "trainer.max_epochs=3", "--out", str(run))
    _wait_for_checkpoint(proc, run, epoch=1)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert f"interrupted: resume with kinepose train --resume {run}\n" in err
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in out + err, err[-3000:]
    assert [line for line in (out + err).splitlines() if "interrupt" in line.lower()] == [
        f"interrupted: resume with kinepose train --resume {run}"
    ]  # one line (Lightning's own "Detected KeyboardInterrupt" notice is dropped)
    assert not (run / "model.pt").exists() and (run / "checkpoints" / "last.ckpt").is_file()

    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert (run / "eval.json").is_file() and load_model(str(run)).family == "hybrid"


def _config_only_run(folder: Path) -> Path:
    folder.mkdir()
    cfg = resolve_config(RECIPE, [*SMALL, "trainer.max_epochs=1"])
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return folder


def test_resume_refusals(tmp_path, capsys):
    run = _config_only_run(tmp_path / "run")
    assert main(["train", "--resume", str(run), "trainer.max_epochs=9"]) == 2
    assert "it takes no recipe, overrides, --out or --force (got trainer.max_epochs=9)" in capsys.readouterr().err
    assert main(["train", RECIPE, "--resume", str(run)]) == 2
    assert "takes no recipe" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--force"]) == 2
    assert "takes no recipe" in capsys.readouterr().err
    assert main(["train", "--resume", str(run)]) == 2  # killed before its first epoch ended
    assert "nothing to resume (no checkpoints" in capsys.readouterr().err
    (run / "model.pt").write_bytes(b"")
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "this run has finished" in err and f"kinepose evaluate {run}" in err and "--force" in err
    assert main(["train", "--resume", str(tmp_path / "nope")]) == 2
    assert "not a run folder (no config.yaml)" in capsys.readouterr().err
    assert main(["train"]) == 2
    assert "give a recipe" in capsys.readouterr().err
    assert sorted(os.listdir(run)) == ["config.yaml", "model.pt"]  # none of this wrote anything
