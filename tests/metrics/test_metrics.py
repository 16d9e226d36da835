"""Tests of kinepose.metrics: hand-computed values, invariances, batch shapes and input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import roma
import torch
from scipy.spatial.transform import Rotation

from kinepose.errors import KineposeError, NonFiniteError, ShapeError
from kinepose.metrics import (
    acceleration_error,
    auc_3d,
    euler_mae,
    geodesic_error,
    joint_errors,
    mpjpe,
    n_mpjpe,
    pa_mpjpe,
    pck_3d,
    procrustes_align,
)

F64 = torch.float64
BATCH_SHAPES = [(), (5,), (2, 3)]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rotmat(batch: tuple[int, ...], g: torch.Generator, dtype: torch.dtype = F64) -> torch.Tensor:
    """Seeded uniform random rotations (*batch, 3, 3): a normalized Gaussian 4-vector is uniform."""
    q = torch.randn(*batch, 4, generator=g, dtype=dtype)
    return roma.unitquat_to_rotmat(q / q.norm(dim=-1, keepdim=True))


def _similarity(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Apply one random similarity transform s R x + t (per sample) to points x of shape (..., J, 3)."""
    batch = x.shape[:-2]
    R = _rotmat(tuple(batch), g, x.dtype)  # (..., 3, 3)
    s = 0.5 + 1.5 * torch.rand(*batch, 1, 1, generator=g, dtype=x.dtype)
    t = torch.randn(*batch, 1, 3, generator=g, dtype=x.dtype)
    return s * (x @ R.transpose(-1, -2)) + t


# ------------------------------------------------------------------------------------ position metrics


def test_mpjpe_hand_computed() -> None:
    # joint 0 is off by (3, 4, 0) -> 5; joint 1 by (0, 0, 2) -> 2
    pred = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    target = np.array([[3.0, 4.0, 0.0], [1.0, 0.0, 2.0]])
    torch.testing.assert_close(joint_errors(pred, target), torch.tensor([5.0, 2.0], dtype=F64))
    assert mpjpe(pred, target).item() == pytest.approx(3.5)
    assert mpjpe(pred, target, mask=[True, False]).item() == pytest.approx(5.0)
    assert mpjpe(pred, target, mask=np.array([0.0, 1.0])).item() == pytest.approx(2.0)


def test_mpjpe_mask_broadcasts_over_frames() -> None:
    g = _gen(1)
    pred, target = torch.randn(4, 3, 3, generator=g), torch.randn(4, 3, 3, generator=g)
    got = mpjpe(pred, target, mask=torch.tensor([True, False, True]))
    want = joint_errors(pred, target)[:, [0, 2]].mean()
    torch.testing.assert_close(got, want)


def test_n_mpjpe_hand_computed() -> None:
    pred = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=F64)
    target = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=F64)
    # s = (3 + 0) / (1 + 1) = 1.5; errors |(1.5,0,0)-(3,0,0)| = 1.5 and |(0,1.5,-1)| = sqrt(3.25)
    assert n_mpjpe(pred, target).item() == pytest.approx((1.5 + math.sqrt(3.25)) / 2, abs=1e-12)
    assert n_mpjpe(pred, 2.0 * pred).item() == pytest.approx(0.0, abs=1e-12)
    # with joint 1 masked out, the scale is fit on joint 0 alone: s = 3, error 0
    assert n_mpjpe(pred, target, mask=[True, False]).item() == pytest.approx(0.0, abs=1e-12)


def _offsets(errors: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.zeros(len(errors), 3, dtype=F64)
    pred = target.clone()
    pred[:, 1] = torch.tensor(errors, dtype=F64)
    return pred, target


def test_pck_and_auc_hand_computed() -> None:
    pred, target = _offsets([0.05, 0.1, 0.2, 0.3])
    assert pck_3d(pred, target).item() == pytest.approx(0.5)
    assert pck_3d(pred, target, threshold=0.25).item() == pytest.approx(0.75)
    assert pck_3d(pred, target, mask=[1, 1, 0, 1]).item() == pytest.approx(2 / 3)
    # PCKs at 0, 0.12, 0.25, 1.0: 0, 2/4, 3/4, 4/4 -> mean 0.5625
    assert auc_3d(pred, target, thresholds=[0.0, 0.12, 0.25, 1.0]).item() == pytest.approx(0.5625)


def test_auc_default_thresholds() -> None:
    # thresholds k * 5 mm, k = 0..30, counted when error < threshold:
    # 52 mm -> k = 11..30 (20), 102 mm -> k = 21..30 (10), 200 and 300 mm -> none
    pred, target = _offsets([0.052, 0.102, 0.2, 0.3])
    assert auc_3d(pred, target).item() == pytest.approx(30 / (31 * 4))
    assert auc_3d(target, target).item() == pytest.approx(30 / 31)  # threshold 0 counts nothing


def test_pa_mpjpe_zero_under_similarity() -> None:
    g = _gen(2)
    target = torch.randn(8, 17, 3, generator=g, dtype=F64)
    pred = _similarity(target, g)
    assert pa_mpjpe(pred, target).item() < 1e-9
    torch.testing.assert_close(procrustes_align(pred, target), target, atol=1e-9, rtol=0)
    assert mpjpe(pred, target).item() > 0.1


def test_pa_mpjpe_invariant_to_similarity_of_pred() -> None:
    g = _gen(3)
    pred = torch.randn(6, 17, 3, generator=g, dtype=F64)
    target = torch.randn(6, 17, 3, generator=g, dtype=F64)
    base = pa_mpjpe(pred, target)
    torch.testing.assert_close(pa_mpjpe(_similarity(pred, g), target), base, atol=1e-10, rtol=0)
    assert base <= mpjpe(pred, target)


@pytest.mark.parametrize("seed", range(5))
def test_pa_mpjpe_at_most_mpjpe(seed: int) -> None:
    g = _gen(10 + seed)
    target = torch.randn(4, 5, 3, generator=g)
    pred = target + 0.3 * torch.randn(4, 5, 3, generator=g)
    assert pa_mpjpe(pred, target) <= mpjpe(pred, target) + 1e-6


def test_procrustes_excludes_reflections() -> None:
    g = _gen(4)
    target = torch.randn(10, 3, generator=g, dtype=F64)
    mirrored = target * torch.tensor([-1.0, 1.0, 1.0], dtype=F64)
    # an improper transform (det -1) would match exactly; a proper rotation cannot
    assert pa_mpjpe(mirrored, target).item() > 0.05


def test_procrustes_without_scale() -> None:
    g = _gen(5)
    target = torch.randn(3, 7, 3, generator=g, dtype=F64)
    R = _rotmat((3,), g)
    rigid = target @ R.transpose(-1, -2) + 1.0
    torch.testing.assert_close(procrustes_align(rigid, target, scale=False), target, atol=1e-9, rtol=0)
    aligned = procrustes_align(2.0 * target, target, scale=False)
    assert (aligned - target).norm(dim=-1).mean() > 0.1  # scale 2 is not undone
    torch.testing.assert_close(procrustes_align(2.0 * target, target), target, atol=1e-9, rtol=0)


def test_procrustes_degenerate_points_no_nan() -> None:
    g = _gen(6)
    target = torch.randn(2, 5, 3, generator=g, dtype=F64)
    pred = torch.ones(2, 5, 3, dtype=F64, requires_grad=True)
    aligned = procrustes_align(pred, target)
    # all pred points coincide: they all land on the target centroid
    torch.testing.assert_close(aligned, target.mean(-2, keepdim=True).expand_as(target))
    aligned.sum().backward()
    assert torch.isfinite(pred.grad).all()
    # a single joint is matched by translation
    torch.testing.assert_close(procrustes_align(pred[:, :1], target[:, :1]), target[:, :1])


def test_pa_mpjpe_mask_ignores_hidden_joints() -> None:
    g = _gen(7)
    target = torch.randn(3, 9, 3, generator=g, dtype=F64)
    pred = _similarity(target, g)
    pred[:, 0] += 5.0  # a garbage joint that is masked out
    mask = torch.ones(3, 9, dtype=torch.bool)
    mask[:, 0] = False
    assert pa_mpjpe(pred, target, mask=mask).item() < 1e-9
    assert pa_mpjpe(pred, target).item() > 0.1


def test_pa_mpjpe_mask_with_empty_or_single_joint_samples() -> None:
    g = _gen(18)
    pred = torch.randn(3, 6, 3, generator=g, dtype=F64)
    target = torch.randn(3, 6, 3, generator=g, dtype=F64)
    mask = torch.zeros(3, 6, dtype=torch.bool)
    mask[1] = True  # sample 0 hides every joint: it neither counts nor produces NaN
    mask[2, 4] = True  # sample 2 shows one joint: translation matches it exactly
    got = pa_mpjpe(pred, target, mask=mask)
    want = joint_errors(procrustes_align(pred[1], target[1]), target[1]).sum() / 7
    torch.testing.assert_close(got, want)
    aligned = procrustes_align(pred, target, weights=mask)
    assert torch.isfinite(aligned).all()
    torch.testing.assert_close(aligned[2, 4], target[2, 4])


@pytest.mark.parametrize("batch", BATCH_SHAPES)
def test_position_metrics_batch_shapes(batch: tuple[int, ...]) -> None:
    g = _gen(8)
    pred = torch.randn(*batch, 6, 3, generator=g, dtype=F64)
    target = torch.randn(*batch, 6, 3, generator=g, dtype=F64)
    assert joint_errors(pred, target).shape == (*batch, 6)
    aligned = procrustes_align(pred, target)
    assert aligned.shape == (*batch, 6, 3)
    flat_p, flat_t = pred.reshape(-1, 6, 3), target.reshape(-1, 6, 3)
    one_by_one = torch.stack([procrustes_align(p, t) for p, t in zip(flat_p, flat_t, strict=True)])
    torch.testing.assert_close(aligned.reshape(-1, 6, 3), one_by_one)
    for fn in (mpjpe, pa_mpjpe, n_mpjpe, pck_3d, auc_3d):
        out = fn(pred, target)
        assert out.shape == ()
        torch.testing.assert_close(out, fn(flat_p, flat_t))


def test_dtypes_and_gradients() -> None:
    g = _gen(9)
    pred = torch.randn(2, 5, 3, generator=g, requires_grad=True)
    target = torch.randn(2, 5, 3, generator=g)
    for fn in (mpjpe, pa_mpjpe, n_mpjpe, pck_3d, auc_3d):
        assert fn(pred, target).dtype == torch.float32
    assert mpjpe(pred, target.double()).dtype == F64  # mixed inputs promote
    (mpjpe(pred, target) + pa_mpjpe(pred, target) + n_mpjpe(pred, target)).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


# -------------------------------------------------------------------------------------------- sequences


def test_acceleration_error_hand_computed() -> None:
    # one joint moving along x: 0, 0, 1, 0 -> accelerations 1 and -2 -> mean norm 1.5
    pred = torch.zeros(4, 1, 3, dtype=F64)
    pred[2, 0, 0] = 1.0
    assert acceleration_error(pred, torch.zeros_like(pred)).item() == pytest.approx(1.5)
    assert acceleration_error(pred[:3], torch.zeros(3, 1, 3)).item() == pytest.approx(1.0)


@pytest.mark.parametrize("batch", BATCH_SHAPES)
def test_acceleration_error_ignores_constant_velocity(batch: tuple[int, ...]) -> None:
    g = _gen(11)
    seq = torch.randn(*batch, 8, 4, 3, generator=g, dtype=F64)
    frames = torch.arange(8, dtype=F64)[:, None, None]  # (T, 1, 1)
    drift = torch.randn(3, generator=g, dtype=F64) * frames + torch.randn(4, 3, generator=g, dtype=F64)
    out = acceleration_error(seq + drift, seq)
    assert out.shape == ()
    assert out.item() < 1e-12
    assert acceleration_error(seq, torch.zeros_like(seq)).item() > 0.1


@pytest.mark.parametrize("fps", [24.0, 30.0, 60.0, 120.0])
def test_acceleration_error_per_second_squared_of_a_parabola(fps: float) -> None:
    # x = a t^2 along x (t in seconds, frame i at t = i / fps) has acceleration 2a at every frame rate
    a = 1.7
    t = torch.arange(12, dtype=F64) / fps
    pred = torch.zeros(12, 2, 3, dtype=F64)
    pred[:, :, 0] = (a * t**2)[:, None]
    still = torch.zeros_like(pred)
    assert acceleration_error(pred, still, fps=fps).item() == pytest.approx(2 * a, rel=1e-9)
    # per frame^2 (the default, unchanged): 2a / fps^2
    assert acceleration_error(pred, still).item() == pytest.approx(2 * a / fps**2, rel=1e-9)


def test_acceleration_error_pools_frame_rates() -> None:
    # the same motion sampled at 30 and 60 fps: equal in m/s^2, a factor 4 apart in m/frame^2
    def clip(fps: float) -> torch.Tensor:
        t = torch.arange(int(fps), dtype=F64) / fps  # one second
        x = torch.stack([torch.sin(2 * t), t**3, 0 * t], -1)  # (T, 3)
        return x[:, None, :]  # (T, 1, 3)

    e30, e60 = (acceleration_error(clip(f), torch.zeros_like(clip(f)), fps=f).item() for f in (30.0, 60.0))
    assert e30 == pytest.approx(e60, rel=0.05)
    f30, f60 = (acceleration_error(clip(f), torch.zeros_like(clip(f))).item() for f in (30.0, 60.0))
    assert f30 / f60 == pytest.approx(4.0, rel=0.05)


def test_evaluation_pools_acceleration_per_second_squared() -> None:
    """evaluate_solver's accel_mm_s2: clips at 30 and 60 fps whose outputs are off by the same physical
    acceleration (root + a t^2, t in seconds) pool to 2a; the per-frame^2 values differ by 4x."""
    from kinepose.data.sources.deepmimic import load_deepmimic
    from kinepose.evaluation import evaluate_solver
    from kinepose.kinematics import analytic_ik

    clips = [load_deepmimic("walk"), load_deepmimic("jump")]  # 39 frames at 30 fps, 107 at 60 fps
    assert [round(m.fps) for m in clips] == [30, 60]  # DeepMimic frame times: 30.0012 and 60.0024 fps
    fps_of = {m.num_frames: m.fps for m in clips}
    a = 0.5  # m/s^2 / 2

    def solver(joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = analytic_ik(clips[0].skeleton, joints)
        t = torch.arange(joints.shape[0], dtype=joints.dtype) / fps_of[joints.shape[0]]
        return r.local_quat, r.root_pos + (a * t**2)[:, None] * torch.tensor([1.0, 0.0, 0.0], dtype=joints.dtype)

    rep = evaluate_solver(solver, clips)
    for c in [*rep.clips, rep.overall]:
        assert c.accel_mm_s2 == pytest.approx(2000 * a, rel=1e-6)
    assert rep.clips[0].accel_mm == pytest.approx(2000 * a / clips[0].fps ** 2, rel=1e-6)
    assert rep.clips[1].accel_mm == pytest.approx(2000 * a / clips[1].fps ** 2, rel=1e-6)


@pytest.mark.parametrize("fps", [0.0, -30.0, math.inf, math.nan, "fast"])
def test_acceleration_error_refuses_bad_fps(fps) -> None:
    seq = torch.zeros(4, 2, 3)
    with pytest.raises(KineposeError, match="fps: expected a finite number"):
        acceleration_error(seq, seq, fps=fps)


# -------------------------------------------------------------------------------------------- rotations


def test_geodesic_error_fixed_value_and_sign() -> None:
    c = math.cos(math.pi / 4)
    rot_z90 = torch.tensor([c, 0.0, 0.0, c], dtype=F64)  # w, x, y, z: 90 deg about z
    identity = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=F64)
    assert geodesic_error(rot_z90, identity).item() == pytest.approx(math.pi / 2, abs=1e-12)
    assert geodesic_error(rot_z90, identity, degrees=True).item() == pytest.approx(90.0, abs=1e-9)
    assert geodesic_error(rot_z90, -rot_z90).item() == pytest.approx(0.0, abs=1e-12)
    assert geodesic_error(3.0 * rot_z90, identity).item() == pytest.approx(math.pi / 2, abs=1e-12)
    half_turn = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=F64)
    assert geodesic_error(half_turn, identity).item() == pytest.approx(math.pi, abs=1e-12)


def test_geodesic_error_matches_scipy() -> None:
    r1 = Rotation.random(200, random_state=12)
    r2 = Rotation.random(200, random_state=13)
    want = (r1.inv() * r2).magnitude()
    q1 = torch.from_numpy(r1.as_quat()[:, [3, 0, 1, 2]])  # scipy x, y, z, w -> w, x, y, z
    q2 = torch.from_numpy(r2.as_quat()[:, [3, 0, 1, 2]])
    flip = torch.where(torch.arange(200) % 2 == 0, 1.0, -1.0).to(F64)[:, None]  # random signs
    got = geodesic_error(q1 * flip, q2)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-10)


@pytest.mark.parametrize("angle", [1e-7, 1e-9, 3e-12])
def test_geodesic_error_tiny_angles(angle: float) -> None:
    r1 = Rotation.random(20, random_state=14)
    axes = np.random.default_rng(15).normal(size=(20, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    r2 = r1 * Rotation.from_rotvec(angle * axes)
    q1 = torch.from_numpy(r1.as_quat()[:, [3, 0, 1, 2]])
    q2 = torch.from_numpy(r2.as_quat()[:, [3, 0, 1, 2]])
    got = geodesic_error(q1, q2)
    np.testing.assert_allclose(got.numpy(), angle, rtol=1e-3, atol=1e-15)


@pytest.mark.parametrize("batch", BATCH_SHAPES)
def test_geodesic_error_batch_shapes(batch: tuple[int, ...]) -> None:
    g = _gen(16)
    q1 = torch.randn(*batch, 4, 4, generator=g)
    q2 = torch.randn(*batch, 4, 4, generator=g)
    out = geodesic_error(q1, q2)
    assert out.shape == (*batch, 4) and out.dtype == torch.float32
    flat = geodesic_error(q1.reshape(-1, 4), q2.reshape(-1, 4))
    torch.testing.assert_close(out.reshape(-1), flat)


def test_euler_mae_wraps_around() -> None:
    pred = torch.tensor([179.0, 0.0, 10.0], dtype=F64)
    target = torch.tensor([-179.0, 0.0, -10.0], dtype=F64)
    torch.testing.assert_close(euler_mae(pred, target), torch.tensor([2.0, 0.0, 20.0], dtype=F64))
    rad = euler_mae(torch.deg2rad(pred), torch.deg2rad(target), degrees=False)
    torch.testing.assert_close(rad, torch.deg2rad(torch.tensor([2.0, 0.0, 20.0], dtype=F64)))
    # averaged over leading dims: |350 - 10| wraps to 20, |0 - 0| = 0
    batch = euler_mae([[350.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [[10.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(batch, torch.tensor([10.0, 0.0, 0.0], dtype=F64))


@pytest.mark.parametrize("batch", BATCH_SHAPES)
def test_euler_mae_batch_shapes(batch: tuple[int, ...]) -> None:
    g = _gen(17)
    pred, target = 360 * torch.rand(*batch, 3, generator=g), 360 * torch.rand(*batch, 3, generator=g)
    out = euler_mae(pred, target)
    assert out.shape == (3,)
    assert bool((out >= 0).all() and (out <= 180).all())


# ------------------------------------------------------------------------------------------- bad input

_P = np.zeros((4, 3))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: mpjpe(np.zeros((4, 2)), np.zeros((4, 2))),
            ShapeError,
            r"pred: expected shape \(\.\.\., \*, 3\)",
        ),
        (
            lambda: mpjpe(_P, np.zeros((5, 3))),
            ShapeError,
            r"pred has shape \(4, 3\) but target has shape \(5, 3\)",
        ),
        (lambda: mpjpe(_P, np.full((4, 3), np.nan)), NonFiniteError, r"target: 12 non-finite"),
        (
            lambda: mpjpe(np.zeros((0, 3)), np.zeros((0, 3))),
            ShapeError,
            r"pred: empty input of shape \(0, 3\)",
        ),
        (lambda: mpjpe("abc", _P), KineposeError, r"pred: cannot convert"),
        (lambda: mpjpe(_P, _P, mask=[True, False]), ShapeError, r"mask: expected shape \(\.\.\., J\)"),
        (lambda: mpjpe(np.zeros((2, 4, 3)), np.zeros((2, 4, 3)), mask=np.ones((3, 4))), ShapeError, r"mask"),
        (lambda: mpjpe(_P, _P, mask=[False] * 4), KineposeError, r"mask: no joint is masked in"),
        (lambda: pa_mpjpe(_P, _P, mask=[0.0] * 4), KineposeError, r"mask: no joint is masked in"),
        (lambda: mpjpe(_P, _P, mask=[1.0, -1.0, 1.0, 1.0]), KineposeError, r"mask: weights must be >= 0"),
        (lambda: procrustes_align(_P, _P, weights=[1.0]), ShapeError, r"weights: expected shape"),
        (lambda: pa_mpjpe(np.zeros(3), np.zeros(3)), ShapeError, r"pred: expected shape \(\.\.\., \*, 3\)"),
        (lambda: pck_3d(_P, _P, threshold=-0.1), KineposeError, r"threshold: thresholds must be >= 0"),
        (lambda: pck_3d(_P, _P, threshold=[0.1, 0.2]), ShapeError, r"threshold: expected a single value"),
        (lambda: auc_3d(_P, _P, thresholds=np.zeros((2, 2))), ShapeError, r"thresholds: expected a scalar"),
        (lambda: auc_3d(_P, _P, thresholds=[0.1, np.inf]), NonFiniteError, r"thresholds"),
        (lambda: acceleration_error(_P, _P), ShapeError, r"pred: expected shape \(\.\.\., \*, \*, 3\)"),
        (lambda: acceleration_error(np.zeros((2, 4, 3)), np.zeros((2, 4, 3))), ShapeError, r"T >= 3"),
        (lambda: geodesic_error(_P, _P), ShapeError, r"pred_quat: expected shape \(\.\.\., 4\)"),
        (lambda: geodesic_error(np.ones((2, 4)), np.zeros((2, 4))), KineposeError, r"target_quat: zero"),
        (lambda: geodesic_error(np.ones(4), np.ones(5)), ShapeError, r"target_quat: expected shape"),
        (
            lambda: euler_mae(np.zeros((2, 2)), np.zeros((2, 2))),
            ShapeError,
            r"pred: expected shape \(\.\.\., 3\)",
        ),
        (lambda: euler_mae(np.zeros(3), np.zeros((2, 3))), ShapeError, r"pred has shape \(3,\)"),
    ],
)
def test_bad_input_names_the_argument(call, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()
