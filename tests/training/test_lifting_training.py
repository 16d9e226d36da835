"""Lifting recipes: config checks, a tiny training run, the run folder, loading and lifting pixels."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from kinepose.errors import KineposeError
from kinepose.geometry.normalization import image_coordinates
from kinepose.models.lifting.files import load_lifter
from kinepose.models.lifting.inference import lift_keypoints, lifter_skeleton
from kinepose.training.lifting import EVAL_CONDITIONS, build_lifter, resolve_lift_config, train_lifter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["data.train=[walk]", "data.val=[]", "data.test=[kick]", "trainer.steps=3", "trainer.batch_size=8",
        "data.views=1"]  # fmt: skip


def tiny(model: dict, extra=()) -> dict:
    cfg = resolve_lift_config(os.path.join(ROOT, "configs", "lift_body.yaml"), [*TINY, *extra])
    cfg["model"] = model
    return cfg


def test_recipes_resolve_and_bad_keys_name_the_source():
    for name in ("lift_body.yaml", "lift_hand.yaml", "lift_body_gpu.yaml", "lift_hand_gpu.yaml"):
        cfg = resolve_lift_config(os.path.join(ROOT, "configs", name))
        assert cfg["task"] == "lift" and cfg["model"]["name"] == "skeleton_lifter"
        lifter = build_lifter(cfg)  # the model section builds, with the pose bank and the 2D fit (the best of ours)
        assert lifter.window == 1 and lifter.refine is not None and lifter.bank is not None, name
    with pytest.raises(KineposeError, match="unknown config key 'data.nois'"):
        resolve_lift_config(None, ["data.nois.sigma_px=1"])
    with pytest.raises(KineposeError, match="loss.kind: unknown 'l3'"):
        resolve_lift_config(None, ["loss.kind=l3"])
    with pytest.raises(KineposeError, match="cameras"):
        resolve_lift_config(None, ["data.cameras.zoom=2"])


@pytest.mark.parametrize("model", [{"name": "skeleton_lifter", "window": 5, "dim": 32, "layers": 1, "heads": 2},
                                   {"name": "knn", "bank_size": 500}, {"name": "mlp", "linear_size": 64}])  # fmt: skip
def test_tiny_run_writes_a_loadable_lifter(tmp_path, model):
    out = tmp_path / "run"
    res = train_lifter(tiny(model), str(out), progress=False)
    assert set(res["test"]) == set(EVAL_CONDITIONS)
    for cond in EVAL_CONDITIONS:
        assert np.isfinite(res["test"][cond]["mpjpe_mm"])
    assert sorted(os.listdir(out)) == ["config.yaml", "eval.json", "lifter.pt"]
    assert json.load(open(out / "eval.json"))["family"] == model["name"]
    lifter = load_lifter(out)
    assert lifter.family == model["name"] and lifter_skeleton(out).name == "humanoid"
    # the saved normalization statistics came back
    assert float(lifter.in_std.min()) > 0 and not torch.allclose(lifter.in_mean, torch.zeros_like(lifter.in_mean))
    # pixels in, camera-frame 3D out
    kp = image_coordinates(torch.rand(12, 15, 2) - 0.5, 1000, 1000).numpy()
    vis = np.ones((12, 15), np.float32)
    vis[3, 4] = 0
    kp[3, 4] = np.nan
    j3 = lift_keypoints(out, kp, vis, (1000, 1000))
    assert j3.shape == (12, 15, 3) and np.isfinite(j3).all()
    np.testing.assert_allclose(j3[:, 0], 0.0, atol=1e-6)
    with pytest.raises(KineposeError, match=r"keypoints_px: expected \(T, 15, 2\)"):
        lift_keypoints(out, kp[:, :10], None, (1000, 1000))


def test_existing_run_needs_force_and_foreign_folders_are_refused(tmp_path):
    cfg = tiny({"name": "knn", "bank_size": 200})
    out = tmp_path / "run"
    train_lifter(cfg, str(out), progress=False)
    before = (out / "lifter.pt").read_bytes()
    with pytest.raises(KineposeError, match="pass --force"):
        train_lifter(cfg, str(out), progress=False)
    assert (out / "lifter.pt").read_bytes() == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(KineposeError, match="holds other files"):
        train_lifter(cfg, str(mine), force=True, progress=False)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_not_a_lifter_file(tmp_path):
    bad = tmp_path / "lifter.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(KineposeError, match="not a kinepose lifter file"):
        load_lifter(bad)
    with pytest.raises(KineposeError, match="no lifter here"):
        load_lifter(tmp_path / "missing")


def test_cli_train_dispatches_lift_recipes(tmp_path, capsys):
    from kinepose.cli import main

    recipe = os.path.join(ROOT, "configs", "lift_body.yaml")
    out = tmp_path / "cli_run"
    rc = main(["train", recipe, *TINY, "model.name=knn", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "model 'knn': unknown config key(s) ['bank', 'bank_weight', 'window']" in err  # named
    assert not out.exists()  # nothing written
    rc = main(["train", recipe, *TINY, "model.window=3", "model.dim=16", "model.layers=1", "model.heads=2",
               "--out", str(out), "--quiet"])  # fmt: skip
    text = capsys.readouterr().out
    assert rc == 0 and "skeleton_lifter" in text and "5px+outliers" in text
    assert (out / "lifter.pt").exists()


@pytest.mark.parametrize(("model", "axis"), [({"name": "pose_transformer"}, "joint"),
                                             ({"name": "skeleton_lifter", "window": 5, "dim": 32, "layers": 2,
                                               "heads": 2}, "frame")])  # fmt: skip
def test_plot_attention_of_a_lifting_run(tmp_path, capsys, model, axis):
    from PIL import Image

    from kinepose.cli import main

    run = tmp_path / "run"
    train_lifter(tiny(model), str(run), progress=False)
    png = tmp_path / "att.png"
    assert main(["plot", "attention", "--model", str(run), "--clip", "kick", "--output", str(png)]) == 0
    out = capsys.readouterr().out
    layers = 4 if axis == "joint" else 2
    assert f"({layers} layers" in out and "windows of kick" in out
    assert Image.open(png).size[0] > 200


def test_force_replaces_only_lifting_runs(tmp_path):
    """--force replaces a lifting run, never another run (a config.yaml without task: lift) or other files."""
    cfg = tiny({"name": "knn", "bank_size": 200})
    other = tmp_path / "ik_run"
    other.mkdir()
    (other / "config.yaml").write_text("name: humanoid_hybrid\nmodel: {name: hybrid}\n")
    (other / "model.pt").write_bytes(b"weights")
    with pytest.raises(KineposeError, match="not a lifting run"):
        train_lifter(cfg, str(other), force=True, progress=False)
    assert (other / "model.pt").read_bytes() == b"weights"
    run = tmp_path / "run"
    train_lifter(cfg, str(run), progress=False)
    (run / "eval.json").write_text("{}")
    train_lifter(cfg, str(run), force=True, progress=False)  # replaced whole, no temporary folder left
    assert json.load(open(run / "eval.json"))["family"] == "knn"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ik_run", "run"]


def test_resume_of_a_lifting_run_is_refused_clearly(tmp_path, capsys):
    from kinepose.cli import main

    run = tmp_path / "run"
    train_lifter(tiny({"name": "knn", "bank_size": 200}), str(run), progress=False)
    assert main(["train", "--resume", str(run)]) == 2
    assert "a lifting run (task: lift) trains in one go" in capsys.readouterr().err


def test_train_fills_ours_pose_bank_with_the_knn_recipes_views(tmp_path):
    """``bank: N`` on ours: ``kinepose train`` fills the pose bank with the same clean training views that a knn
    recipe of the same seed and size gets (so the benchmark may reuse the knn row's bank), and saves it."""
    ours = {"name": "skeleton_lifter", "window": 1, "dim": 32, "layers": 1, "heads": 2, "bank": 200,
            "refine": {"steps": 2}}  # fmt: skip
    train_lifter(tiny(ours), str(tmp_path / "ours"), progress=False)
    train_lifter(tiny({"name": "knn", "bank_size": 200}), str(tmp_path / "knn"), progress=False)
    a, b = load_lifter(tmp_path / "ours"), load_lifter(tmp_path / "knn")
    assert int(a.bank.filled) == 200 and a.config()["bank"] == 200
    torch.testing.assert_close(a.bank.bank_2d, b.bank_2d, rtol=0, atol=0)
    torch.testing.assert_close(a.bank.bank_3d, b.bank_3d, rtol=0, atol=0)
