"""Tiny training runs: the whole pipeline, not accuracy (that lives in benchmarks/)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from kinepose.cli import main
from kinepose.config import resolve_config
from kinepose.inference import predict_clip
from kinepose.models import load_model
from kinepose.training import run_training

TINY = [
    "data.samples_per_epoch=128",
    "data.batch_size=64",
    "trainer.max_epochs=1",
    "trainer.loggers=[csv]",
    "trainer.progress_bar=false",
]


def _tiny(model: str, *extra: str) -> dict:
    return resolve_config(None, [*TINY, f"model.name={model}", *extra])


@pytest.mark.parametrize(
    "model, extra",
    [
        ("hybrid", ["model.dim=32", "model.layers=1", "model.fit_iterations=1"]),
        ("seed0", ["model.dim=16", "model.mixer=graph", "model.mixer_layers=1"]),
        ("iknet", ["model.hidden=32", "optim.name=rmsprop", "optim.schedule=step"]),
        ("sequence", ["model.dim=16", "model.window=4", "model.layers=1", "data.joint_dropout=0.1"]),
    ],
)
def test_run_folder(tmp_path, model, extra):
    cfg = _tiny(model, *extra)
    res = run_training(cfg, str(tmp_path / "run"))
    run = tmp_path / "run"
    for name in ("config.yaml", "model.pt", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert (run / name).exists(), name
    metrics = run / "logs" / "csv" / "version_0" / "metrics.csv"
    header = metrics.read_text().splitlines()[0].split(",")
    assert {"val/geo_deg", "val/mpjpe_mm", "train/geo_deg", "train/mpjpe_mm"} <= set(header)  # train-vs-val curves
    assert np.isfinite(res.best_val_geo_deg)
    # saved model == returned model; the Lightning checkpoint loads too
    x = torch.randn(6, 15, 3) * 0.3
    q1, r1 = predict_clip(res.model, x)
    for path in (run / "model.pt", run):
        q2, r2 = predict_clip(load_model(str(path)), x)
        torch.testing.assert_close(q1, q2)
        torch.testing.assert_close(r1, r2)
    q3, _ = predict_clip(load_model(str(run / "checkpoints" / "best.ckpt")), x)
    torch.testing.assert_close(q3, q1)  # the checkpoint carries what was chosen after training too
    # the resolved config repeats the run
    again = resolve_config(str(run / "config.yaml"))
    assert again["model"] == cfg["model"]


def test_hand_dataset_run(tmp_path):
    cfg = _tiny(
        "seed0", "model.dim=16", "model.mixer=attention", "model.mixer_layers=1", "data.dataset=synthetic_hand",
        "data.hand_sequences={train: 4, val: 2, test: 2, length: 20, fps: 30.0}", "data.mirror=false",
        "data.any_axis=true",
    )  # fmt: skip
    res = run_training(cfg, str(tmp_path / "hand"), enable_checkpointing=False)
    assert res.model.skeleton.name == "hand21"


def test_cli_train_evaluate_ik_export(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "configs/humanoid_hybrid.yaml", *TINY, "model.dim=32", "model.layers=1", "--out", str(run)]
    assert main([*args, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "| hybrid (this run) | 10 |" in out and "| analytic IK | 0 |" in out
    ev = json.loads((run / "eval.json").read_text())
    assert {r["noise_mm"] for r in ev["reports"]} == {0.0, 10.0}

    assert main(["evaluate", str(run), "--noise-mm", "5", "--json", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["noise_mm"] == 5.0

    from kinepose.data.sources.deepmimic import load_deepmimic

    walk = load_deepmimic("walk")
    np.savez(tmp_path / "walk.npz", joints=walk.positions().numpy(), joint_names=np.array(walk.skeleton.joint_names),
             fps=walk.fps)  # fmt: skip
    for ext in (".npz", ".bvh", ".csv", ".json"):
        out_path = tmp_path / f"rot{ext}"
        assert main(["ik", "--model", str(run), "--input", str(tmp_path / "walk.npz"), "--output", str(out_path)]) == 0
        assert out_path.exists()
    assert main(["ik", "--model", "analytic", "--input", str(tmp_path / "walk.npz"), "--output",
                 str(tmp_path / "a.npz")]) == 0  # fmt: skip
    data = np.load(tmp_path / "a.npz")
    np.testing.assert_allclose(data["joints"], walk.positions().numpy(), atol=1e-9)
    assert data["local_quat"].shape == (39, 15, 4) and data["observable"].sum() == 10


def test_cli_bad_inputs(tmp_path, capsys):
    assert main(["train", "configs/humanoid_hybrid.yaml", "trainer.max_epoch=1", "--out", str(tmp_path / "r")]) == 2
    assert "unknown config key 'trainer.max_epoch'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert main(["train", "configs/humanoid_hybrid.yaml", "model.widht=3", "--out", str(tmp_path / "r")]) == 2
    assert "unknown config key(s) ['widht']" in capsys.readouterr().err
    np.save(tmp_path / "bad.npy", np.zeros((5, 14, 3)))
    out = tmp_path / "o.npz"
    assert main(["ik", "--model", "analytic", "--input", str(tmp_path / "bad.npy"), "--output", str(out)]) == 2
    assert "has 14 joints" in capsys.readouterr().err and not out.exists()
    x = np.zeros((5, 15, 3))
    x[2, 3, 1] = np.inf  # NaN would be a missing joint; inf is an error naming the frame
    np.save(tmp_path / "nan.npy", x)
    assert main(["ik", "--model", "analytic", "--input", str(tmp_path / "nan.npy"), "--output", str(out)]) == 2
    assert "frame 2" in capsys.readouterr().err and not out.exists()
    assert main(["ik", "--model", str(tmp_path / "nope"), "--input", str(tmp_path / "nan.npy"),
                 "--output", str(out)]) == 2  # fmt: skip


def test_hybrid_trains_with_joint_dropout(tmp_path):
    cfg = _tiny("hybrid", "model.dim=32", "model.layers=1", "model.fit_iterations=1", "data.joint_dropout=0.2")
    res = run_training(cfg, str(tmp_path / "drop"), enable_checkpointing=False)
    for p in res.model.parameters():
        assert torch.isfinite(p).all()


def test_cli_model_errors(tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    assert main(["evaluate", str(junk)]) == 2
    assert "cannot load model" in capsys.readouterr().err
    cfg = _tiny("seed0", "model.dim=16", "model.mixer_layers=1", "data.dataset=synthetic_hand", "data.mirror=false",
                "data.hand_sequences={train: 2, val: 1, test: 1, length: 10, fps: 30.0}")  # fmt: skip
    run_training(cfg, str(tmp_path / "hand"), enable_checkpointing=False)
    assert main(["evaluate", str(tmp_path / "hand"), "--clips", "walk"]) == 2
    assert "this model is for 'hand21'" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "hand" / "model.pt")]) == 0  # config stored inside the model
    assert main(["train", "configs/humanoid_hybrid.yaml", "data.noise_mm=5", "--out", str(tmp_path / "x")]) == 2
    assert "must be a list" in capsys.readouterr().err


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(tmp_path):
    """Lightning's DDP (gloo) with 2 CPU processes trains and writes the same kind of run."""
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "kinepose.cli", "train", "configs/humanoid_iknet.yaml", *TINY,
           "model.hidden=32", "trainer.devices=2", "trainer.strategy=ddp", "--out", str(run), "--quiet"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "| iknet (this run) | 10 |" in r.stdout
    assert "world_size=2" in r.stderr or "distributed_backend=gloo" in r.stderr or "MEMBER: 2/2" in r.stderr
    model = load_model(str(run))
    q, _ = predict_clip(model, torch.zeros(3, 15, 3))
    assert torch.isfinite(q).all()
