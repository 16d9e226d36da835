"""Tests of kinepose.geometry.rotations: fixed values pin the conventions (w,x,y,z; 6D = first two columns),
float64 round trips, orthonormality, agreement with scipy, gradients, batch shapes and input errors."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from kinepose.errors import KineposeError, ShapeError
from kinepose.geometry import (
    EULER_ORDERS,
    axis_angle_to_matrix,
    axis_angle_to_quat,
    check_unit_quat,
    euler_to_matrix,
    euler_to_quat,
    geodesic_distance,
    matrix_to_axis_angle,
    matrix_to_euler,
    matrix_to_quat,
    matrix_to_sixd,
    quat_about_axis,
    quat_apply,
    quat_canonical,
    quat_conjugate,
    quat_distance,
    quat_from_xyzw,
    quat_geodesic_distance,
    quat_identity,
    quat_multiply,
    quat_normalize,
    quat_to_axis_angle,
    quat_to_euler,
    quat_to_matrix,
    quat_to_sixd,
    quat_to_xyzw,
    random_quat,
    sixd_to_matrix,
    sixd_to_quat,
)

F64 = torch.float64
TIGHT = 1e-10  # float64 round-trip tolerance
BATCH_SHAPES = [(), (5,), (2, 3)]
N = 64  # random samples per test

# +90 degrees about z: maps x to y, y to -x.
RZ90 = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
QZ90 = [math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)]


def _atol(dtype: torch.dtype) -> float:
    return 1e-5 if dtype == torch.float32 else TIGHT


def _close(actual: torch.Tensor, expected, atol: float, rtol: float = 0.0) -> None:
    if isinstance(expected, torch.Tensor):
        expected = expected.to(actual.dtype)
    else:
        expected = torch.as_tensor(np.array(expected), dtype=actual.dtype)  # copy: broadcast views are read-only
    torch.testing.assert_close(actual, expected, atol=atol, rtol=rtol)


def _assert_rotation(R: torch.Tensor, atol: float) -> None:
    """(..., 3, 3) is a rotation: det = 1 and R^T R = I."""
    assert R.shape[-2:] == (3, 3)
    eye = torch.eye(3, dtype=R.dtype).expand_as(R)
    torch.testing.assert_close(R.transpose(-1, -2) @ R, eye, atol=atol, rtol=0.0)
    det = torch.linalg.det(R)
    torch.testing.assert_close(det, torch.ones_like(det), atol=atol, rtol=0.0)


def _unit_axes(shape: tuple[int, ...], g: torch.Generator, dtype: torch.dtype = F64) -> torch.Tensor:
    v = torch.randn(*shape, 3, generator=g, dtype=dtype)
    return v / v.norm(dim=-1, keepdim=True)


def _rotvec(shape: tuple[int, ...], g: torch.Generator, dtype: torch.dtype = F64, max_angle: float = 3.0):
    """Rotation vectors with angle uniform in (0.05, max_angle), i.e. away from 0 and pi."""
    angle = 0.05 + (max_angle - 0.05) * torch.rand(*shape, 1, generator=g, dtype=dtype)
    return _unit_axes(shape, g, dtype) * angle


def _euler(order: str, shape: tuple[int, ...], g: torch.Generator, dtype: torch.dtype = F64) -> torch.Tensor:
    """Angles in the canonical range of ``order`` (scipy's), away from gimbal lock, so they are unique:
    first and third in (-pi, pi); the middle in (-pi/2, pi/2) for Tait-Bryan, (0, pi) for proper orders."""
    u = torch.rand(*shape, 3, generator=g, dtype=dtype)
    ang = (2 * u - 1) * (math.pi - 0.05)
    if order[0].lower() == order[2].lower():  # proper Euler (ZXZ...)
        ang[..., 1] = 0.05 + u[..., 1] * (math.pi - 0.1)
    else:
        ang[..., 1] = (2 * u[..., 1] - 1) * (math.pi / 2 - 0.05)
    return ang


def _rotmat(shape: tuple[int, ...], g: torch.Generator, dtype: torch.dtype = F64) -> torch.Tensor:
    return quat_to_matrix(random_quat(shape, generator=g, dtype=dtype))


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


# ----------------------------------------------------------------------------------------------- fixtures


def test_conftest_fixtures(dtype: torch.dtype, gen: torch.Generator) -> None:
    assert dtype in (torch.float32, torch.float64)
    a = torch.rand(3, generator=gen)
    b = torch.rand(3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


# ----------------------------------------------------------------------------------------------- fixed values


def test_quat_order_fixed_value(dtype: torch.dtype) -> None:
    q = torch.tensor(QZ90, dtype=dtype)
    R = quat_to_matrix(q)
    _close(R, RZ90, atol=_atol(dtype))
    x = torch.tensor([1.0, 0.0, 0.0], dtype=dtype)
    _close(R @ x, [0.0, 1.0, 0.0], atol=_atol(dtype))
    _close(quat_apply(q, x), [0.0, 1.0, 0.0], atol=_atol(dtype))
    _close(matrix_to_quat(torch.tensor(RZ90, dtype=dtype)), QZ90, atol=_atol(dtype))
    _close(quat_about_axis(torch.tensor([0.0, 0.0, 1.0], dtype=dtype), math.pi / 2), QZ90, atol=_atol(dtype))
    _close(axis_angle_to_quat(torch.tensor([0.0, 0.0, math.pi / 2], dtype=dtype)), QZ90, atol=_atol(dtype))
    # scipy (x, y, z, w) agrees once converted at the boundary.
    _close(R, Rotation.from_quat(_np(quat_to_xyzw(q))).as_matrix(), atol=_atol(dtype))


def test_quat_identity_is_real_first() -> None:
    q = quat_identity((2, 3), dtype=F64)
    assert q.shape == (2, 3, 4)
    _close(q[1, 2], [1.0, 0.0, 0.0, 0.0], atol=0.0)
    _close(quat_to_matrix(q), np.broadcast_to(np.eye(3), (2, 3, 3, 3)), atol=0.0)


def test_xyzw_conversion_fixed_value() -> None:
    wxyz = torch.tensor([1.0, 2.0, 3.0, 4.0])
    xyzw = quat_to_xyzw(wxyz)
    _close(xyzw, [2.0, 3.0, 4.0, 1.0], atol=0.0)
    _close(quat_from_xyzw(xyzw), [1.0, 2.0, 3.0, 4.0], atol=0.0)
    batch = torch.arange(24.0).reshape(2, 3, 4)
    assert torch.equal(quat_from_xyzw(quat_to_xyzw(batch)), batch)
    assert torch.equal(quat_to_xyzw(batch)[..., 3], batch[..., 0])


def test_sixd_layout_fixed_value(dtype: torch.dtype) -> None:
    R = torch.tensor(RZ90, dtype=dtype)
    # First two COLUMNS: R[:, 0] = (0, 1, 0), R[:, 1] = (-1, 0, 0).
    _close(matrix_to_sixd(R), [0.0, 1.0, 0.0, -1.0, 0.0, 0.0], atol=0.0)
    _close(quat_to_sixd(torch.tensor(QZ90, dtype=dtype)), [0.0, 1.0, 0.0, -1.0, 0.0, 0.0], atol=_atol(dtype))
    _close(sixd_to_matrix(torch.tensor([0.0, 1.0, 0.0, -1.0, 0.0, 0.0], dtype=dtype)), RZ90, atol=0.0)


def test_sixd_gram_schmidt_fixed_value(dtype: torch.dtype) -> None:
    # Scaled, non-orthogonal columns a = (0, 3, 0), b = (-2, 1, 0): a/|a| = (0, 1, 0); b minus its
    # projection on a is (-2, 0, 0) -> (-1, 0, 0); the third column is their cross product (0, 0, 1).
    d6 = torch.tensor([0.0, 3.0, 0.0, -2.0, 1.0, 0.0], dtype=dtype)
    _close(sixd_to_matrix(d6), RZ90, atol=_atol(dtype))


def test_sixd_gram_schmidt_random(gen: torch.Generator) -> None:
    d6 = torch.randn(N, 6, generator=gen, dtype=F64)
    a, b = d6[:, :3], d6[:, 3:]
    R = sixd_to_matrix(d6)
    _assert_rotation(R, TIGHT)
    _close(R[:, :, 0], a / a.norm(dim=-1, keepdim=True), atol=TIGHT)  # first column = normalized a
    b_perp = b - (b * R[:, :, 0]).sum(-1, keepdim=True) * R[:, :, 0]
    _close(R[:, :, 1], b_perp / b_perp.norm(dim=-1, keepdim=True), atol=TIGHT)
    # Positive rescaling of either column does not change the result.
    scale = 0.1 + torch.rand(N, 2, generator=gen, dtype=F64)
    _close(sixd_to_matrix(torch.cat([a * scale[:, :1], b * scale[:, 1:]], -1)), R, atol=TIGHT)


# ----------------------------------------------------------------------------------------------- round trips


def test_round_trip_quat_matrix(gen: torch.Generator) -> None:
    q = random_quat((N,), generator=gen, dtype=F64)
    assert (q[..., 0] >= 0).all()
    _close(matrix_to_quat(quat_to_matrix(q)), q, atol=TIGHT)
    R = quat_to_matrix(q)
    _close(quat_to_matrix(matrix_to_quat(R)), R, atol=TIGHT)
    # -q is the same rotation and comes back canonical.
    _close(quat_to_matrix(-q), R, atol=TIGHT)
    _close(matrix_to_quat(quat_to_matrix(-q)), q, atol=TIGHT)


def test_round_trip_matrix_sixd(gen: torch.Generator) -> None:
    R = _rotmat((N,), gen)
    _close(sixd_to_matrix(matrix_to_sixd(R)), R, atol=TIGHT)
    q = matrix_to_quat(R)
    _close(sixd_to_quat(quat_to_sixd(q)), q, atol=TIGHT)
    d6 = matrix_to_sixd(R)
    _close(matrix_to_sixd(sixd_to_matrix(d6)), d6, atol=TIGHT)


def test_round_trip_axis_angle(gen: torch.Generator) -> None:
    aa = _rotvec((N,), gen)
    R = axis_angle_to_matrix(aa)
    q = axis_angle_to_quat(aa)
    _close(matrix_to_axis_angle(R), aa, atol=TIGHT)
    _close(quat_to_axis_angle(q), aa, atol=TIGHT)
    _close(quat_to_matrix(q), R, atol=TIGHT)
    _close(quat_about_axis(aa / aa.norm(dim=-1, keepdim=True), aa.norm(dim=-1)), q, atol=TIGHT)


def test_axis_angle_small_and_zero_angles() -> None:
    aa = torch.tensor([[0.0, 0.0, 0.0], [1e-9, 0.0, 0.0], [0.0, -3e-7, 0.0], [0.0, 0.0, 1e-4]], dtype=F64)
    _close(matrix_to_axis_angle(axis_angle_to_matrix(aa)), aa, atol=1e-12)
    _close(quat_to_axis_angle(axis_angle_to_quat(aa)), aa, atol=1e-15)
    _close(axis_angle_to_matrix(aa[0]), np.eye(3), atol=0.0)


@pytest.mark.parametrize("order", EULER_ORDERS)
def test_round_trip_euler(order: str, gen: torch.Generator) -> None:
    ang = _euler(order, (N,), gen)
    R = euler_to_matrix(ang, order)
    back = matrix_to_euler(R, order)
    _close(euler_to_matrix(back, order), R, atol=TIGHT)
    # In the canonical range the angles themselves are unique and come back.
    _close(back, ang, atol=1e-9)
    q = euler_to_quat(ang, order)
    _close(quat_to_matrix(q), R, atol=TIGHT)
    _close(euler_to_matrix(quat_to_euler(q, order), order), R, atol=TIGHT)
    # Arbitrary (non-canonical) angles still round-trip through the matrix.
    wild = (torch.rand(N, 3, generator=gen, dtype=F64) * 2 - 1) * 2 * math.pi
    R_wild = euler_to_matrix(wild, order)
    _close(euler_to_matrix(matrix_to_euler(R_wild, order), order), R_wild, atol=TIGHT)


@pytest.mark.parametrize("order", EULER_ORDERS)
def test_round_trip_euler_gimbal_lock(order: str, gen: torch.Generator) -> None:
    """At gimbal lock the angles are not unique (the third is set to 0) but the matrix comes back."""
    ang = (torch.rand(4, 3, generator=gen, dtype=F64) * 2 - 1) * 3.0
    if order[0].lower() == order[2].lower():
        ang[:2, 1], ang[2:, 1] = 0.0, math.pi
    else:
        ang[:2, 1], ang[2:, 1] = math.pi / 2, -math.pi / 2
    R = euler_to_matrix(ang, order)
    back = matrix_to_euler(R, order)
    assert torch.isfinite(back).all()
    _close(euler_to_matrix(back, order), R, atol=1e-9)


def test_quat_outputs_are_canonical(gen: torch.Generator) -> None:
    # Inputs chosen so that the un-canonicalized quaternion would often have w < 0.
    aa = _unit_axes((N,), gen) * (math.pi + 2.0 * torch.rand(N, 1, generator=gen, dtype=F64))  # angle > pi
    assert (axis_angle_to_quat(aa)[..., 0] >= 0).all()
    _close(quat_to_matrix(axis_angle_to_quat(aa)), axis_angle_to_matrix(aa), atol=TIGHT)
    q_neg = -random_quat((N,), generator=gen, dtype=F64)
    R = quat_to_matrix(q_neg)
    outputs = {
        "matrix_to_quat": matrix_to_quat(R),
        "sixd_to_quat": sixd_to_quat(matrix_to_sixd(R)),
        "quat_canonical": quat_canonical(q_neg),
        "random_quat": random_quat((N,), generator=gen, dtype=F64),
    }
    for order in ("XYZ", "zxz"):
        outputs[f"euler_to_quat_{order}"] = euler_to_quat(_euler(order, (N,), gen) * 1.9, order)
    for name, q in outputs.items():
        assert (q[..., 0] >= 0).all(), name
        _close(q.norm(dim=-1), np.ones(N), atol=TIGHT)
    _close(quat_canonical(q_neg), -q_neg, atol=0.0)


# ----------------------------------------------------------------------------------------------- orthonormality


def _producers(g: torch.Generator, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    out = {
        "quat_to_matrix": quat_to_matrix(random_quat((N,), generator=g, dtype=dtype)),
        "sixd_to_matrix": sixd_to_matrix(torch.randn(N, 6, generator=g, dtype=dtype)),
        "axis_angle_to_matrix": axis_angle_to_matrix(torch.randn(N, 3, generator=g, dtype=dtype) * 2),
    }
    for order in EULER_ORDERS:
        ang = torch.randn(N, 3, generator=g, dtype=dtype) * 2
        out[f"euler_to_matrix_{order}"] = euler_to_matrix(ang, order)
    return out


def test_produced_matrices_are_rotations(dtype: torch.dtype, gen: torch.Generator) -> None:
    for name, R in _producers(gen, dtype).items():
        assert R.dtype == dtype, name
        try:
            _assert_rotation(R, _atol(dtype))
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc


# ----------------------------------------------------------------------------------------------- scipy


def test_scipy_quat_and_matrix(gen: torch.Generator) -> None:
    q = random_quat((N,), generator=gen, dtype=F64)
    rot = Rotation.from_quat(_np(quat_to_xyzw(q)))
    _close(quat_to_matrix(q), rot.as_matrix(), atol=TIGHT)
    R = torch.from_numpy(rot.as_matrix())
    ref = quat_from_xyzw(torch.from_numpy(rot.as_quat()))
    _close(matrix_to_quat(R), quat_canonical(ref), atol=TIGHT)


def test_scipy_rotvec(gen: torch.Generator) -> None:
    aa = _rotvec((N,), gen)
    rot = Rotation.from_rotvec(_np(aa))
    _close(axis_angle_to_matrix(aa), rot.as_matrix(), atol=TIGHT)
    R = torch.from_numpy(rot.as_matrix())
    _close(matrix_to_axis_angle(R), rot.as_rotvec(), atol=TIGHT)
    _close(quat_to_axis_angle(matrix_to_quat(R)), rot.as_rotvec(), atol=TIGHT)


@pytest.mark.parametrize("order", EULER_ORDERS)
def test_scipy_euler(order: str, gen: torch.Generator) -> None:
    ang = _euler(order, (N,), gen)
    _close(euler_to_matrix(ang, order), Rotation.from_euler(order, _np(ang)).as_matrix(), atol=TIGHT)
    R = _rotmat((N,), gen)
    with np.errstate(all="ignore"):
        ref = Rotation.from_matrix(_np(R)).as_euler(order)
    _close(matrix_to_euler(R, order), ref, atol=1e-9)


def test_scipy_geodesic_distances(gen: torch.Generator) -> None:
    q1 = random_quat((N,), generator=gen, dtype=F64)
    q2 = random_quat((N,), generator=gen, dtype=F64)
    r1, r2 = Rotation.from_quat(_np(quat_to_xyzw(q1))), Rotation.from_quat(_np(quat_to_xyzw(q2)))
    ref = (r1.inv() * r2).magnitude()
    _close(quat_geodesic_distance(q1, q2), ref, atol=TIGHT)
    # roma's matrix distance goes through asin of a chord, less accurate near pi (~sqrt(eps)).
    _close(geodesic_distance(quat_to_matrix(q1), quat_to_matrix(q2)), ref, atol=1e-7)
    # quat_distance is the chord 2 sin(angle / 4).
    _close(quat_distance(q1, q2), 2 * np.sin(ref / 4), atol=TIGHT)


# ----------------------------------------------------------------------------------------------- quaternion algebra


def test_quat_multiply_matches_matrix_product(dtype: torch.dtype, gen: torch.Generator) -> None:
    a = random_quat((N,), generator=gen, dtype=dtype)
    b = random_quat((N,), generator=gen, dtype=dtype)
    ab = quat_multiply(a, b)
    _close(quat_to_matrix(ab), quat_to_matrix(a) @ quat_to_matrix(b), atol=_atol(dtype))
    # b is applied first, then a.
    v = torch.randn(N, 3, generator=gen, dtype=dtype)
    _close(quat_apply(ab, v), quat_apply(a, quat_apply(b, v)), atol=10 * _atol(dtype))
    # Broadcasting over leading dims, and the identity is neutral.
    ab_b = quat_multiply(a.reshape(N, 1, 4), b.reshape(1, N, 4))
    assert ab_b.shape == (N, N, 4)
    _close(ab_b.diagonal(dim1=0, dim2=1).T, ab, atol=0.0)
    _close(quat_multiply(quat_identity(dtype=dtype), a), a, atol=0.0)


def test_quat_multiply_fixed_value() -> None:
    # i * j = k with (w, x, y, z) order.
    i, j = torch.tensor([0.0, 1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0, 0.0])
    _close(quat_multiply(i, j), [0.0, 0.0, 0.0, 1.0], atol=0.0)
    _close(quat_multiply(j, i), [0.0, 0.0, 0.0, -1.0], atol=0.0)


@pytest.mark.parametrize(
    ("q_shape", "v_shape", "out_shape"),
    [((5,), (5,), (5,)), ((), (7,), (7,)), ((2, 1), (3,), (2, 3)), ((), (), ()), ((4,), (), (4,))],
)
def test_quat_apply_matches_matrix(
    q_shape: tuple[int, ...],
    v_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    dtype: torch.dtype,
    gen: torch.Generator,
) -> None:
    q = random_quat(q_shape, generator=gen, dtype=dtype)
    v = torch.randn(*v_shape, 3, generator=gen, dtype=dtype)
    out = quat_apply(q, v)
    assert out.shape == (*out_shape, 3)
    expected = (quat_to_matrix(q) @ v[..., None])[..., 0]
    _close(out, expected.expand(*out_shape, 3), atol=10 * _atol(dtype))


def test_quat_conjugate_is_inverse(dtype: torch.dtype, gen: torch.Generator) -> None:
    q = random_quat((N,), generator=gen, dtype=dtype)
    qc = quat_conjugate(q)
    ident = quat_identity((N,), dtype=dtype)
    _close(quat_multiply(q, qc), ident, atol=_atol(dtype))
    _close(quat_multiply(qc, q), ident, atol=_atol(dtype))
    R = quat_to_matrix(q)
    _close(quat_to_matrix(qc), R.transpose(-1, -2), atol=_atol(dtype))
    v = torch.randn(N, 3, generator=gen, dtype=dtype)
    _close(quat_apply(qc, quat_apply(q, v)), v, atol=10 * _atol(dtype))
    _close(quat_conjugate(torch.tensor([1.0, 2.0, 3.0, 4.0])), [1.0, -2.0, -3.0, -4.0], atol=0.0)


def test_quat_about_axis(dtype: torch.dtype, gen: torch.Generator) -> None:
    axis = _unit_axes((N,), gen, dtype)
    angle = (torch.rand(N, generator=gen, dtype=dtype) * 2 - 1) * 3.0
    q = quat_about_axis(axis, angle)
    assert q.shape == (N, 4) and q.dtype == dtype
    _close(q.norm(dim=-1), np.ones(N), atol=_atol(dtype))
    _close(quat_to_matrix(q), axis_angle_to_matrix(axis * angle[:, None]), atol=10 * _atol(dtype))
    # The axis is fixed by the rotation.
    _close(quat_apply(q, axis), axis, atol=10 * _atol(dtype))
    # Leading dims broadcast: one axis for many angles, one angle for many axes.
    z = torch.tensor([0.0, 0.0, 1.0], dtype=dtype)
    assert quat_about_axis(z, angle).shape == (N, 4)
    _close(quat_about_axis(axis, 0.5), quat_about_axis(axis, torch.full((N,), 0.5, dtype=dtype)), atol=0.0)
    _close(quat_about_axis(z, math.pi / 2), QZ90, atol=_atol(dtype))


def test_quat_normalize(gen: torch.Generator) -> None:
    q = torch.randn(N, 4, generator=gen, dtype=F64) * 3
    _close(quat_normalize(q).norm(dim=-1), np.ones(N), atol=TIGHT)
    assert torch.isfinite(quat_normalize(torch.zeros(4, dtype=F64))).all()


# ----------------------------------------------------------------------------------------------- distances


def test_quat_distances_sign_invariant(dtype: torch.dtype, gen: torch.Generator) -> None:
    q1 = random_quat((N,), generator=gen, dtype=dtype)
    q2 = random_quat((N,), generator=gen, dtype=dtype)
    zeros = np.zeros(N)
    for dist in (quat_distance, quat_geodesic_distance):
        _close(dist(q1, -q1), zeros, atol=_atol(dtype))
        _close(dist(q1, q1), zeros, atol=_atol(dtype))
        d = dist(q1, q2)
        assert (d > 0).all()
        for a, b in ((q1, -q2), (-q1, q2), (-q1, -q2), (q2, q1)):
            _close(dist(a, b), d, atol=_atol(dtype))
    angle = quat_geodesic_distance(q1, q2)
    assert (angle >= 0).all() and (angle <= math.pi + 1e-6).all()


def test_geodesic_distance_hand_values() -> None:
    x = torch.tensor([1.0, 0.0, 0.0], dtype=F64)
    for angle in (0.0, 0.3, math.pi / 2, 2.5, math.pi):
        q = quat_about_axis(x, angle)
        _close(quat_geodesic_distance(quat_identity(dtype=F64), q), angle, atol=TIGHT)
        _close(geodesic_distance(torch.eye(3, dtype=F64), quat_to_matrix(q)), angle, atol=1e-7)
    # Angles above pi are measured the short way round.
    _close(quat_geodesic_distance(quat_identity(dtype=F64), quat_about_axis(x, 4.0)), 2 * math.pi - 4.0, atol=TIGHT)


@pytest.mark.parametrize("angle", [1e-4, 1e-7, 1e-9, 1e-12])
def test_quat_geodesic_distance_tiny_angles(angle: float, gen: torch.Generator) -> None:
    q1 = random_quat((N,), generator=gen, dtype=F64)
    delta = quat_about_axis(_unit_axes((N,), gen), angle)
    q2 = quat_multiply(q1, delta)
    # q2 itself carries ~1e-16 rounding, hence the small atol; an acos-based formula would be off by ~1e-8.
    d = quat_geodesic_distance(q1, q2)
    _close(d, np.full(N, angle), atol=1e-15, rtol=1e-5)
    _close(quat_geodesic_distance(q1, -q2), np.full(N, angle), atol=1e-15, rtol=1e-5)


# ----------------------------------------------------------------------------------------------- gradients


def _gradcheck(fn: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> None:
    inputs = tuple(x.detach().clone().requires_grad_(True) for x in inputs)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5)


def test_gradcheck_quat_to_matrix(gen: torch.Generator) -> None:
    _gradcheck(quat_to_matrix, random_quat((4,), generator=gen, dtype=F64))


def test_gradcheck_sixd_to_matrix(gen: torch.Generator) -> None:
    _gradcheck(sixd_to_matrix, torch.randn(4, 6, generator=gen, dtype=F64))


def test_gradcheck_axis_angle_to_matrix(gen: torch.Generator) -> None:
    _gradcheck(axis_angle_to_matrix, _rotvec((4,), gen))


@pytest.mark.parametrize("order", ["XYZ", "zxz"])
def test_gradcheck_euler_to_matrix(order: str, gen: torch.Generator) -> None:
    _gradcheck(lambda a: euler_to_matrix(a, order), _euler(order, (4,), gen))


def test_gradcheck_matrix_to_quat(gen: torch.Generator) -> None:
    # Away from singularities: w clearly dominant (no switch of Shepperd's branch, no sign flip at w = 0).
    noise = 0.15 * torch.randn(4, 4, generator=gen, dtype=F64)
    q = quat_normalize(torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=F64) + noise)
    assert (q[:, 0] > q[:, 1:].abs().amax(-1) + 0.5).all()
    _gradcheck(matrix_to_quat, quat_to_matrix(q))


def test_gradcheck_quat_geodesic_distance(gen: torch.Generator) -> None:
    # Away from 0 (|q1 - q2| is not differentiable there) and from pi (where the sign s switches).
    q1 = random_quat((4,), generator=gen, dtype=F64)
    q2 = quat_multiply(q1, quat_about_axis(_unit_axes((4,), gen), 1.0))
    _gradcheck(quat_geodesic_distance, q1, q2)


# ----------------------------------------------------------------------------------------------- batch shapes


def _make(kind: str, shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    if kind == "quat":
        return random_quat(shape, generator=g, dtype=F64)
    if kind == "matrix":
        return _rotmat(shape, g)
    if kind == "sixd":
        return torch.randn(*shape, 6, generator=g, dtype=F64)
    if kind == "aa":
        return _rotvec(shape, g)
    if kind == "vec":
        return torch.randn(*shape, 3, generator=g, dtype=F64)
    if kind == "euler":
        return _euler("ZXY", shape, g)
    raise AssertionError(kind)


IN_DIMS = {"quat": 1, "matrix": 2, "sixd": 1, "aa": 1, "vec": 1, "euler": 1}

# (name, function, input kinds, number of output feature dims)
CONVERSIONS: list[tuple[str, Callable[..., torch.Tensor], tuple[str, ...], int]] = [
    ("quat_to_matrix", quat_to_matrix, ("quat",), 2),
    ("matrix_to_quat", matrix_to_quat, ("matrix",), 1),
    ("matrix_to_sixd", matrix_to_sixd, ("matrix",), 1),
    ("sixd_to_matrix", sixd_to_matrix, ("sixd",), 2),
    ("quat_to_sixd", quat_to_sixd, ("quat",), 1),
    ("sixd_to_quat", sixd_to_quat, ("sixd",), 1),
    ("axis_angle_to_matrix", axis_angle_to_matrix, ("aa",), 2),
    ("matrix_to_axis_angle", matrix_to_axis_angle, ("matrix",), 1),
    ("axis_angle_to_quat", axis_angle_to_quat, ("aa",), 1),
    ("quat_to_axis_angle", quat_to_axis_angle, ("quat",), 1),
    ("euler_to_matrix", lambda a: euler_to_matrix(a, "ZXY"), ("euler",), 2),
    ("matrix_to_euler", lambda R: matrix_to_euler(R, "ZXY"), ("matrix",), 1),
    ("euler_to_quat", lambda a: euler_to_quat(a, "zyz"), ("euler",), 1),
    ("quat_to_euler", lambda q: quat_to_euler(q, "zyz"), ("quat",), 1),
    ("quat_to_xyzw", quat_to_xyzw, ("quat",), 1),
    ("quat_from_xyzw", quat_from_xyzw, ("quat",), 1),
    ("quat_canonical", quat_canonical, ("quat",), 1),
    ("quat_normalize", quat_normalize, ("quat",), 1),
    ("quat_conjugate", quat_conjugate, ("quat",), 1),
    ("quat_multiply", quat_multiply, ("quat", "quat"), 1),
    ("quat_apply", quat_apply, ("quat", "vec"), 1),
    ("quat_distance", quat_distance, ("quat", "quat"), 0),
    ("quat_geodesic_distance", quat_geodesic_distance, ("quat", "quat"), 0),
    ("geodesic_distance", geodesic_distance, ("matrix", "matrix"), 0),
]


@pytest.mark.parametrize("batch", BATCH_SHAPES, ids=str)
@pytest.mark.parametrize(("name", "fn", "kinds", "out_dims"), CONVERSIONS, ids=[c[0] for c in CONVERSIONS])
def test_batch_shape_invariance(
    name: str,
    fn: Callable[..., torch.Tensor],
    kinds: tuple[str, ...],
    out_dims: int,
    batch: tuple[int, ...],
    gen: torch.Generator,
) -> None:
    inputs = [_make(k, batch, gen) for k in kinds]
    out = fn(*inputs)
    assert out.shape[: len(batch)] == batch, name
    assert out.dim() == len(batch) + out_dims, name
    # Per-element calls on unbatched inputs, stacked, give the same result.
    flat = [x.reshape(-1, *x.shape[x.dim() - IN_DIMS[k] :]) for x, k in zip(inputs, kinds, strict=True)]
    singles = [fn(*(x[i] for x in flat)) for i in range(flat[0].shape[0])]
    assert all(s.shape == out.shape[len(batch) :] for s in singles), name
    expected = torch.stack(singles).reshape(out.shape)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0.0)


def test_empty_batch() -> None:
    q = torch.zeros(0, 4, dtype=F64)
    assert quat_to_matrix(q).shape == (0, 3, 3)
    assert matrix_to_quat(torch.zeros(0, 3, 3, dtype=F64)).shape == (0, 4)
    assert sixd_to_matrix(torch.zeros(0, 6, dtype=F64)).shape == (0, 3, 3)


# ----------------------------------------------------------------------------------------------- errors


BAD_SHAPES: list[tuple[str, Callable[[torch.Tensor], object], str, tuple[int, ...]]] = [
    ("quat_to_matrix", quat_to_matrix, "q", (5, 3)),
    ("matrix_to_quat", matrix_to_quat, "R", (5, 3, 4)),
    ("matrix_to_sixd", matrix_to_sixd, "R", (3,)),
    ("sixd_to_matrix", sixd_to_matrix, "d6", (2, 5)),
    ("quat_to_sixd", quat_to_sixd, "q", (3,)),
    ("sixd_to_quat", sixd_to_quat, "d6", (3, 3)),
    ("axis_angle_to_matrix", axis_angle_to_matrix, "aa", (4,)),
    ("matrix_to_axis_angle", matrix_to_axis_angle, "R", (2, 2)),
    ("axis_angle_to_quat", axis_angle_to_quat, "aa", (7, 4)),
    ("quat_to_axis_angle", quat_to_axis_angle, "q", (3,)),
    ("euler_to_matrix", lambda x: euler_to_matrix(x, "XYZ"), "angles", (2,)),
    ("matrix_to_euler", lambda x: matrix_to_euler(x, "xyz"), "R", (3,)),
    ("euler_to_quat", lambda x: euler_to_quat(x, "ZXZ"), "angles", (4, 4)),
    ("quat_to_euler", lambda x: quat_to_euler(x, "zxz"), "q", (3,)),
    ("quat_conjugate", quat_conjugate, "q", (5, 3)),
    ("quat_multiply(a)", lambda x: quat_multiply(x, torch.ones(4)), "a", (5, 3)),
    ("quat_multiply(b)", lambda x: quat_multiply(torch.ones(4), x), "b", (3,)),
    ("quat_apply(q)", lambda x: quat_apply(x, torch.ones(3)), "q", (3,)),
    ("quat_apply(v)", lambda x: quat_apply(torch.ones(4), x), "v", (2, 4)),
    ("quat_about_axis", lambda x: quat_about_axis(x, 0.3), "axis", (4,)),
    ("quat_distance", lambda x: quat_distance(x, x), "q1", (5, 3)),
    ("quat_geodesic_distance", lambda x: quat_geodesic_distance(torch.ones(4), x), "q2", (5, 3)),
    ("geodesic_distance", lambda x: geodesic_distance(x, x), "R1", (5, 3)),
    ("check_unit_quat", lambda x: check_unit_quat(x, "root_quat"), "root_quat", (2, 3)),
]


@pytest.mark.parametrize(("label", "fn", "arg", "shape"), BAD_SHAPES, ids=[b[0] for b in BAD_SHAPES])
def test_wrong_last_dim_raises_shape_error(
    label: str, fn: Callable[[torch.Tensor], object], arg: str, shape: tuple[int, ...]
) -> None:
    with pytest.raises(ShapeError) as info:
        fn(torch.ones(shape))
    msg = str(info.value)
    assert msg.startswith(f"{arg}:"), msg
    assert str(shape) in msg, msg
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("order", ["XXY", "abc", "xYz", "XY", "XYZX", "", "xyy"])
@pytest.mark.parametrize(
    "fn",
    [
        lambda o: euler_to_matrix(torch.zeros(3), o),
        lambda o: matrix_to_euler(torch.eye(3), o),
        lambda o: euler_to_quat(torch.zeros(3), o),
        lambda o: quat_to_euler(torch.tensor([1.0, 0.0, 0.0, 0.0]), o),
    ],
    ids=["euler_to_matrix", "matrix_to_euler", "euler_to_quat", "quat_to_euler"],
)
def test_unknown_euler_order(fn: Callable[[str], object], order: str) -> None:
    with pytest.raises(KineposeError, match=re.escape(repr(order))) as info:
        fn(order)
    msg = str(info.value)
    assert msg.startswith("order:")
    assert "'XYZ'" in msg  # lists an example of a valid order


def test_euler_orders_are_the_24_conventions() -> None:
    assert len(EULER_ORDERS) == len(set(EULER_ORDERS)) == 24
    for order in EULER_ORDERS:
        assert len(order) == 3 and (order.isupper() or order.islower())
        assert order[0] != order[1] and order[1] != order[2]
        assert set(order.lower()) <= set("xyz")


def test_check_unit_quat_passes_on_unit(gen: torch.Generator) -> None:
    check_unit_quat(random_quat((2, 3), generator=gen, dtype=F64), "q")
    check_unit_quat(random_quat(generator=gen), "q")
    check_unit_quat(torch.zeros(0, 4), "q")
    check_unit_quat(torch.tensor([1.0005, 0.0, 0.0, 0.0]), "q")  # within the default atol


def test_check_unit_quat_raises_on_norm_two(gen: torch.Generator) -> None:
    q = random_quat((3, 4), generator=gen, dtype=F64)
    q[2, 1] *= 2.0
    with pytest.raises(KineposeError) as info:
        check_unit_quat(q, "local_quat")
    msg = str(info.value)
    assert msg.startswith("local_quat:"), msg
    assert "(2, 1)" in msg and "norm 2" in msg, msg
    with pytest.raises(KineposeError, match=r"^q: .*index \(\).*norm 2"):
        check_unit_quat(torch.tensor([2.0, 0.0, 0.0, 0.0]), "q")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_check_unit_quat_raises_on_non_finite(bad: float, gen: torch.Generator) -> None:
    q = random_quat((2, 3), generator=gen, dtype=F64)
    q[1, 0, 2] = bad
    with pytest.raises(KineposeError) as info:
        check_unit_quat(q, "pred")
    msg = str(info.value)
    assert msg.startswith("pred:"), msg
    assert "(1, 0)" in msg, msg
