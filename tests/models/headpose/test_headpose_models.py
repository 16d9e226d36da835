"""Head-pose models: the dual-branch network layer for layer as in the research notes, the landmark MLP, the
geometric Kabsch fit pinned against known rotations, the landmark normalization, training and run folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from kinepose.geometry.headpose import matrix_to_ypr, ypr_to_matrix
from kinepose.models.headpose import (
    FACE_DIM,
    POSE_DIM,
    GeometricHeadPose,
    HeadPoseDual,
    LandmarkMLP,
    landmark_vector,
    normalize_face,
    normalize_pose,
)
from kinepose.training.headpose import angle_l1, fit_headpose, load_headpose_run, predict_headpose, save_headpose_run


def _linears(module: torch.nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, torch.nn.Linear)]


def test_dual_branch_has_the_notes_layers():
    net = HeadPoseDual(None, in_features=512)
    assert _linears(net.shared) == [(512, 1024)]
    assert _linears(net.face_head) == [(1024, 768), (768, 1404)]
    assert _linears(net.pose_head) == [(1024, 256), (256, 99)]
    assert _linears(net.face_encoder) == [(1404, 512), (512, 256)]
    assert _linears(net.pose_encoder) == [(99, 128), (128, 64)]
    assert _linears(net.fusion) == [(320, 256)]
    assert _linears(net.regression) == [(256, 128), (128, 3)]


def test_dual_branch_forward_and_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = HeadPoseDual(None, in_features=64)
    out = net.forward_features(torch.randn(5, 64))
    assert out.ypr.shape == (5, 3) and out.face.shape == (5, FACE_DIM) and out.pose.shape == (5, POSE_DIM)
    (out.ypr.sum() + out.face.sum() + out.pose.sum()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    with pytest.raises(ValueError, match="feats"):
        net.forward_features(torch.randn(5, 63))
    with pytest.raises(ValueError, match="backbone"):
        net(torch.rand(1, 3, 64, 64))


def test_landmark_mlp_shapes_and_face_only_ablation():
    torch.manual_seed(0)
    x = torch.randn(4, FACE_DIM + POSE_DIM)
    full, face_only = LandmarkMLP(), LandmarkMLP(use_pose=False)
    face_only.load_state_dict(full.state_dict())
    full.eval(), face_only.eval()
    assert full(x).ypr.shape == (4, 3)
    y = x.clone()
    y[:, FACE_DIM:] = 0
    torch.testing.assert_close(face_only(x).ypr, full(y).ypr)  # the body numbers are ignored
    with pytest.raises(ValueError, match="1503"):
        full(torch.randn(4, 1404))


def _face(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(468, 3)) * [0.07, 0.09, 0.04]


def test_normalization_is_invariant_to_translation_and_scale():
    f = _face()
    np.testing.assert_allclose(normalize_face(3.0 * f + [100, 50, 7]), normalize_face(f), atol=1e-12)
    n = normalize_face(f)
    np.testing.assert_allclose(np.sqrt((n**2).sum(-1).mean()), 1.0)
    p = np.random.default_rng(1).normal(size=(33, 3))
    q = normalize_pose(2 * p + 5)
    np.testing.assert_allclose(np.linalg.norm(q[11, :2] - q[12, :2]), 1.0)
    np.testing.assert_allclose((q[11] + q[12]) / 2, 0.0, atol=1e-12)
    v = landmark_vector(np.full((2, 468, 3), np.nan), p[None].repeat(2, 0))
    assert v.shape == (2, 1503) and (v[:, :FACE_DIM] == 0).all()  # a missing face is zeros, never NaN
    with pytest.raises(ValueError, match="468"):
        normalize_face(np.zeros((10, 3)))


def test_geometric_fit_recovers_rotations_against_scipy():
    mean = _face()
    rng = np.random.default_rng(2)
    R = Rotation.random(20, random_state=3).as_matrix()
    R = ypr_to_matrix(np.clip(matrix_to_ypr(R), -1.2, 1.2))  # keep away from gimbal lock
    faces = 250.0 * np.einsum("nij,kj->nki", R, mean) + [320, 240, 0]  # pixels, any scale and offset
    geo = GeometricHeadPose().fit(faces[:10], R[:10])
    np.testing.assert_allclose(geo.rotation(faces[10:]), R[10:], atol=1e-9)  # noise-free: exact
    noisy = faces[10:] + rng.normal(scale=2.0, size=faces[10:].shape)
    err = np.degrees(np.abs(geo.predict(noisy) - matrix_to_ypr(R[10:])))
    assert err.max() < 2.0
    faces[12] = np.nan
    assert np.isnan(geo.predict(faces[10:])[2]).all()  # no face, no pose
    with pytest.raises(ValueError, match="mean face"):
        GeometricHeadPose().predict(faces)


def test_angle_loss_wraps():
    a, b = torch.tensor([[np.radians(179.0)]]), torch.tensor([[np.radians(-179.0)]])
    assert float(angle_l1(a, b)) == pytest.approx(np.radians(2.0))


def test_landmark_mlp_learns_and_run_folder_round_trips(tmp_path):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    mean = _face()
    ypr = rng.uniform(-0.8, 0.8, (600, 3))
    faces = np.einsum("nij,kj->nki", ypr_to_matrix(ypr), mean)
    x = landmark_vector(faces, np.full((600, 33, 3), np.nan))
    model = LandmarkMLP(hidden=(128, 64), dropout=0.0)
    before = float(
        angle_l1(torch.as_tensor(predict_headpose(model, x[500:], kind="vectors")), torch.as_tensor(ypr[500:]))
    )
    fit = fit_headpose(model, x[:500], ypr[:500], kind="vectors", steps=600, batch_size=64, lr=2e-3, augment=False)
    pred = predict_headpose(model, x[500:], kind="vectors")
    after = float(angle_l1(torch.as_tensor(pred), torch.as_tensor(ypr[500:])))
    assert fit.steps == 600 and fit.stopped_by == "steps"
    assert after < 0.25 * before and np.degrees(after) < 6.0
    save_headpose_run(tmp_path / "run", model, {"model": "headpose_landmarks", "hidden": [128, 64], "dropout": 0.0})
    back, cfg = load_headpose_run(tmp_path / "run")
    assert cfg["hidden"] == [128, 64]
    np.testing.assert_allclose(predict_headpose(back, x[500:], kind="vectors"), pred, atol=1e-6)
    (tmp_path / "bad").mkdir()
    with pytest.raises(ValueError, match="config.json"):
        load_headpose_run(tmp_path / "bad")
    (tmp_path / "run" / "config.json").write_text('{"model": "headpose_landmarks", "hidden": [32]}')
    with pytest.raises(ValueError, match="does not match"):
        load_headpose_run(tmp_path / "run")
    with pytest.raises(ValueError, match="same, non-zero length"):
        fit_headpose(model, x[:5], ypr[:4], kind="vectors")


def test_untrained_residual_model_is_the_geometric_fit():
    rng = np.random.default_rng(4)
    mean = _face(1)
    ypr = rng.uniform(-0.7, 0.7, (8, 3))
    faces = np.einsum("nij,kj->nki", ypr_to_matrix(ypr), mean) * 300 + rng.normal(scale=1.0, size=(8, 468, 3))
    geo = GeometricHeadPose(mean)
    m = LandmarkMLP(residual=True)
    m.set_mean_face(mean)
    x = landmark_vector(faces, np.full((8, 33, 3), np.nan))
    got = predict_headpose(m, x, kind="vectors")
    np.testing.assert_allclose(got, geo.predict(faces), atol=1e-4)  # the correction starts at zero


@pytest.mark.parametrize("name", ["headpose_dual", "headpose_landmarks", "headpose_geometric"])
def test_every_registered_headpose_model_predicts_finite_angles(name):
    from kinepose.models.headpose import HEADPOSE_MODELS

    torch.manual_seed(0)
    faces = np.einsum("nij,kj->nki", ypr_to_matrix(np.zeros((3, 3))), _face())
    if name == "headpose_geometric":
        out = HEADPOSE_MODELS[name](_face()).predict(faces)
    elif name == "headpose_dual":
        out = HEADPOSE_MODELS[name](None, in_features=32).forward_features(torch.randn(3, 32)).ypr.detach().numpy()
    else:
        x = torch.from_numpy(landmark_vector(faces, np.zeros((3, 33, 3))))
        out = HEADPOSE_MODELS[name]().eval()(x).ypr.detach().numpy()
    assert out.shape == (3, 3) and np.isfinite(out).all()


def test_a_run_the_time_cap_stops_ends_annealed():
    """The cosine decay follows the larger of the step and time fractions: with the budget already spent the rate is
    0 from the first step, so nothing moves (a step-only schedule would take a full-rate step)."""
    torch.manual_seed(0)
    model = LandmarkMLP((8,), 0.0, True, False)
    before = [p.detach().clone() for p in model.parameters()]
    g = np.random.default_rng(0)
    fit = fit_headpose(model, g.normal(size=(16, 1503)).astype(np.float32), g.uniform(-0.5, 0.5, (16, 3)),
                       kind="vectors", steps=50, batch_size=8, max_minutes=1e-9)  # fmt: skip
    assert fit.stopped_by == "time" and fit.steps == 1
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    fit = fit_headpose(model, g.normal(size=(16, 1503)).astype(np.float32), g.uniform(-0.5, 0.5, (16, 3)),
                       kind="vectors", steps=3, batch_size=8)  # fmt: skip
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
