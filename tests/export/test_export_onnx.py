"""ONNX export: onnxruntime parity of every exportable family at two batch sizes (dynamic batch), metadata,
the hybrid's refusal and its network part, atomic writes, and ``kinepose export``."""

from __future__ import annotations

import os

import pytest
import torch

pytest.importorskip("onnx", reason="ONNX export tests need onnx (pip install 'kinepose[export]')")
ort = pytest.importorskip("onnxruntime", reason="ONNX export tests need onnxruntime (pip install 'kinepose[export]')")

from kinepose import __version__  # noqa: E402
from kinepose.cli import main  # noqa: E402
from kinepose.errors import KineposeError  # noqa: E402
from kinepose.export.onnx import (  # noqa: E402
    TOLERANCE,
    check_onnx,
    export_onnx,
    predict_onnx,
    read_onnx_metadata,
    sample_joints,
)
from kinepose.geometry import random_quat  # noqa: E402
from kinepose.kinematics import PosePrior  # noqa: E402
from kinepose.models import (  # noqa: E402
    create_model,
    load_model,
    save_model,
)
from kinepose.skeleton import get_skeleton  # noqa: E402

SEED0 = {"dim": 32, "mixer_layers": 1, "dense_layers": 1}
SEQUENCE = {"dim": 32, "layers": 2, "window": 4}
EXPORTABLE = [
    ("iknet", {"hidden": 32, "layers": 2}),
    *[("seed0", {**SEED0, "mixer": m}) for m in ("lstm", "gru", "attention", "graph")],
    ("sequence", {**SEQUENCE, "encoder": "transformer", "causal": True}),
    ("sequence", {**SEQUENCE, "encoder": "transformer", "causal": False}),
    ("sequence", {**SEQUENCE, "encoder": "lstm", "causal": True}),
    ("sequence", {**SEQUENCE, "encoder": "gru", "causal": False}),
]
CASES = [(n, c, "humanoid") for n, c in EXPORTABLE] + [
    ("iknet", {"hidden": 32, "layers": 2, "head": "quat"}, "hand21"),
    ("seed0", {**SEED0, "mixer": "graph", "graph_hops": 2}, "hand21"),
    ("sequence", {**SEQUENCE, "encoder": "transformer", "causal": False}, "hand21"),
]
HYBRID = {"dim": 32, "layers": 2, "fit_iterations": 2}


def _case_id(name: str, cfg: dict, skeleton: str) -> str:
    keys = ("mixer", "encoder", "causal", "head")
    return "-".join([name, *(f"{k}={cfg[k]}" for k in keys if k in cfg), skeleton])


def _build(name: str, skeleton: str = "humanoid", **cfg):
    """A tiny model with every parameter and the normalization moved off their initial values (zero-initialized
    heads would make parity trivial), left in train mode."""
    torch.manual_seed(0)
    model = create_model(name, get_skeleton(skeleton), **cfg)
    g = torch.Generator().manual_seed(7)
    J = model.num_joints
    model.set_normalization(0.1 * torch.randn(J, 3, generator=g), 0.2 + torch.rand(J, 3, generator=g))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model.train()


def _quat_close(a: torch.Tensor, b: torch.Tensor, atol: float) -> None:
    d = torch.minimum((a - b).abs().amax(-1), (a + b).abs().amax(-1))  # q and -q are one rotation
    assert float(d.max()) <= atol, float(d.max())


@pytest.mark.parametrize("name, cfg, skeleton", CASES, ids=[_case_id(*c) for c in CASES])
def test_export_parity_dynamic_batch_and_metadata(name, cfg, skeleton, tmp_path):
    model = _build(name, skeleton, **cfg)
    path = tmp_path / "model.onnx"
    meta = export_onnx(model, path)
    assert path.exists() and meta["path"] == str(path)
    assert all(m.training for m in model.modules()), "export must leave the model's mode as it was"

    assert check_onnx(model, path, batch_sizes=(1, 7)) <= TOLERANCE

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    J, W = model.num_joints, model.window
    assert inp.name == "joints" and inp.shape[1:] == [W, J, 3] and not isinstance(inp.shape[0], int)
    assert [o.name for o in sess.get_outputs()] == ["local_quat", "root_pos"]

    stored = read_onnx_metadata(path)
    assert stored["family"] == name and stored["part"] == "full" and stored["kinepose_version"] == __version__
    assert stored["skeleton"] == skeleton and stored["joint_names"] == list(model.skeleton.joint_names)
    assert stored["window"] == W and stored["target_index"] == model.target_index
    assert stored["quaternion_order"] == "wxyz" and stored["config"] == model.config()
    assert stored["inputs"] == {"joints": ["batch", W, J, 3]}
    assert stored["outputs"] == {"local_quat": ["batch", J, 4], "root_pos": ["batch", 3]}

    x = sample_joints(model, 3, torch.Generator().manual_seed(5))
    quat, root = predict_onnx(path, x)
    with torch.no_grad():
        ref = model.eval()(x)
    _quat_close(quat, ref.local_quat, TOLERANCE)
    torch.testing.assert_close(root, ref.root_pos)


def test_seed0_image_features_input(tmp_path):
    model = _build("seed0", **SEED0, mixer="gru", image_features=5)
    meta = export_onnx(model, tmp_path / "m.onnx")
    assert meta["inputs"] == {"joints": ["batch", 1, 15, 3], "image_features": ["batch", 5]}
    assert check_onnx(model, tmp_path / "m.onnx") <= TOLERANCE


def test_fixed_batch_and_parity_in_export(tmp_path):
    model = _build("sequence", **SEQUENCE, encoder="gru")
    meta = export_onnx(model, tmp_path / "m.onnx", batch_dynamic=False, tolerance=TOLERANCE)
    assert meta["parity"] <= TOLERANCE and meta["inputs"]["joints"][0] == 1
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape[0] == 1
    assert check_onnx(model, tmp_path / "m.onnx", batch_sizes=(1, 7)) <= TOLERANCE  # checked at batch 1 only


def test_hybrid_full_export_is_refused_clearly(tmp_path):
    model = _build("hybrid", **HYBRID)
    with pytest.raises(KineposeError, match=r"cannot be exported to ONNX whole.*linalg\.solve.*part='network'"):
        export_onnx(model, tmp_path / "model.onnx")
    assert os.listdir(tmp_path) == []


HYBRID_NETWORKS = [
    ({}, "humanoid"),  # single frame, MLP encoder, offset denoiser, residual head
    ({"window": 4, "encoder": "transformer", "denoiser": "wiener", "causal": False}, "hand21"),
    ({"window": 4, "encoder": "gru", "denoiser": "filter"}, "humanoid"),
    ({"residual": False}, "humanoid"),  # no residual head: the graph is the denoiser alone
]


@pytest.mark.parametrize("cfg, skeleton", HYBRID_NETWORKS, ids=["mlp", "transformer-wiener", "gru-filter", "no-res"])
def test_hybrid_network_part(cfg, skeleton, tmp_path):
    model = _build("hybrid", skeleton, **HYBRID, **cfg)
    g = torch.Generator().manual_seed(3)
    model.set_pose_prior(PosePrior.from_rotations(random_quat((64, model.num_joints), generator=g)))
    model.residual_mask[::2] = 0.0  # as after residual selection: some joints keep the geometric answer
    path = tmp_path / "net.onnx"
    meta = export_onnx(model, path, part="network")
    J = model.num_joints
    outputs = {"denoised_joints": ["batch", J, 3]}
    if model.use_residual:
        outputs["local_quat"] = ["batch", J, 4]
    assert meta["part"] == "network" and meta["outputs"] == outputs
    stored = read_onnx_metadata(path)
    assert stored["fit_iterations"] == 2 and stored["pose_prior"] is not None and stored["family"] == "hybrid"

    assert check_onnx(model, path, batch_sizes=(1, 7)) <= TOLERANCE

    # The whole pipeline (graph, fit_skeleton in kinepose, graph) against the torch model. The float64
    # fit amplifies float32 rounding differences of the denoised joints (~1e-7 m), hence the looser bound.
    x = sample_joints(model, 4, torch.Generator().manual_seed(11))
    quat, root = predict_onnx(path, x)
    with torch.no_grad():
        ref = model.eval()(x)
    _quat_close(quat, ref.local_quat, 1e-3)
    torch.testing.assert_close(root, ref.root_pos, atol=1e-5, rtol=0)


def test_network_part_of_a_pure_network_is_the_full_model(tmp_path):
    meta = export_onnx(_build("iknet", hidden=16, layers=1), tmp_path / "m.onnx", part="network")
    assert meta["part"] == "full"


def test_bad_arguments(tmp_path):
    model = _build("iknet", hidden=16, layers=1)
    with pytest.raises(KineposeError, match="part: unknown value 'head'"):
        export_onnx(model, tmp_path / "m.onnx", part="head")
    with pytest.raises(KineposeError, match="no such ONNX file"):
        predict_onnx(tmp_path / "missing.onnx", torch.zeros(1, 1, 15, 3))
    assert os.listdir(tmp_path) == []


def test_failed_parity_check_writes_nothing(tmp_path, monkeypatch):
    import kinepose.export.onnx as mod

    path = tmp_path / "model.onnx"
    path.write_bytes(b"previous export")
    monkeypatch.setattr(mod, "check_onnx", lambda model, source: 0.5)
    with pytest.raises(KineposeError, match="differ by 0.5"):
        export_onnx(_build("iknet", hidden=16, layers=1), path, tolerance=TOLERANCE)
    assert path.read_bytes() == b"previous export" and os.listdir(tmp_path) == ["model.onnx"]


def test_cli_export_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    model = _build("sequence", **SEQUENCE, encoder="transformer", causal=False)
    save_model(str(run / "model.pt"), model)
    assert main(["export", str(run), "--format", "onnx"]) == 0
    out = capsys.readouterr().out
    assert str(run / "model.onnx") in out and "sequence" in out and "parity" in out and "(batch, 4, 15, 3)" in out
    assert check_onnx(load_model(str(run)), run / "model.onnx") <= TOLERANCE


def test_cli_export_hybrid(tmp_path, capsys):
    path = tmp_path / "model.pt"
    save_model(str(path), _build("hybrid", **HYBRID))
    assert main(["export", str(path)]) == 2
    assert "--part network" in capsys.readouterr().err
    assert main(["export", str(path), "--format", "bvh"]) == 2
    assert "unknown export format 'bvh'" in capsys.readouterr().err
    assert not (tmp_path / "model.onnx").exists()

    out_file = tmp_path / "net" / "hybrid.onnx"
    assert main(["export", str(path), "--part", "network", "--output", str(out_file)]) == 0
    assert "denoised_joints" in capsys.readouterr().out and out_file.exists()


def test_sessions_of_a_file_are_reused_until_it_changes(tmp_path):
    """predict_onnx opened a new onnxruntime session on every call (45 ms against 0.6 ms for the call itself):
    sessions of a file are kept, and a rewritten file gets a new one."""
    from kinepose.export.onnx import _session

    model = _build("seed0", **SEED0, mixer="gru")
    path = tmp_path / "m.onnx"
    export_onnx(model, path)
    first = _session(path)
    assert _session(str(path)) is first
    os.utime(path, ns=(1, 1))  # a rewrite changes the modification time
    assert _session(path) is not first
