"""Tests of kinepose.geometry.swing_twist, pinned against scipy's Rotation: rotations built by hand as
``swing * twist`` (scipy composes ``a * b`` as "b first"), random rotations, the order of the factors, the
degenerate 180-degree swing, the error split, batch shapes, gradients and input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from kinepose.errors import KineposeError, ShapeError
from kinepose.geometry import (
    quat_from_xyzw,
    quat_geodesic_distance,
    quat_multiply,
    random_quat,
    swing_twist,
    swing_twist_error,
    twist_quat,
    wrap_angle,
)

F64 = torch.float64


def _wxyz(r: Rotation) -> torch.Tensor:
    return quat_from_xyzw(torch.tensor(r.as_quat(), dtype=F64))


def _perpendicular(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    v -= (v @ a) * a
    return v / np.linalg.norm(v)


def test_fixed_value_pins_the_order():
    # twist 90 deg about x first, then swing 90 deg about z: x stays x under the twist, then goes to y.
    swing = Rotation.from_rotvec([0, 0, math.pi / 2])
    twist = Rotation.from_rotvec([math.pi / 2, 0, 0])
    q = _wxyz(swing * twist)  # scipy: twist applied first
    s, angle = swing_twist(q, torch.tensor([1.0, 0.0, 0.0], dtype=F64))
    assert angle.item() == pytest.approx(math.pi / 2, abs=1e-12)
    assert torch.allclose(s, _wxyz(swing), atol=1e-12)
    # the other order (twist last) is a different rotation: the same twist angle, but its swing is the swing
    # conjugated by the twist, 90 deg about Rx(90) z = -y (not about z)
    other = _wxyz(twist * swing)
    assert float(quat_geodesic_distance(other, q)) > 0.5
    s_other, angle_other = swing_twist(other, torch.tensor([1.0, 0.0, 0.0], dtype=F64))
    assert angle_other.item() == pytest.approx(math.pi / 2, abs=1e-12)
    assert torch.allclose(s_other, _wxyz(Rotation.from_rotvec([0, -math.pi / 2, 0])), atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_hand_built_swing_times_twist_against_scipy(seed):
    rng = np.random.default_rng(seed)
    n = 200
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    theta = rng.uniform(-math.pi + 1e-6, math.pi, size=n)
    phi = rng.uniform(0, math.pi * 0.95, size=n)  # swing angle, away from the 180-degree case
    swing_axes = np.stack([_perpendicular(axis, rng) for _ in range(n)])
    swing = Rotation.from_rotvec(swing_axes * phi[:, None])
    twist = Rotation.from_rotvec(axis[None] * theta[:, None])
    q = _wxyz(swing * twist)
    s, angle = swing_twist(q, torch.tensor(axis))
    np.testing.assert_allclose(angle.numpy(), theta, atol=1e-9)
    d = quat_geodesic_distance(s, _wxyz(swing))
    assert float(d.max()) < 1e-9


def test_random_rotations_satisfy_the_definition():
    """For any rotation: swing has no rotation about the axis, swing * twist == q, and swing moves the axis
    exactly where q does (scipy applies both)."""
    g = torch.Generator().manual_seed(1)
    q = random_quat((500,), generator=g, dtype=F64)
    axis = torch.randn(500, 3, generator=g, dtype=F64) * 3.0  # not unit: normalized inside
    s, angle = swing_twist(q, axis)
    a = axis / axis.norm(dim=-1, keepdim=True)
    rebuilt = quat_multiply(s, twist_quat(a, angle))
    assert float(quat_geodesic_distance(rebuilt, q).max()) < 1e-9
    swing_rotvec = Rotation.from_quat(torch.cat([s[:, 1:], s[:, :1]], -1).numpy()).as_rotvec()
    assert np.abs((swing_rotvec * a.numpy()).sum(-1)).max() < 1e-9
    rq = Rotation.from_quat(torch.cat([q[:, 1:], q[:, :1]], -1).numpy())
    rs = Rotation.from_rotvec(swing_rotvec)
    np.testing.assert_allclose(rs.apply(a.numpy()), rq.apply(a.numpy()), atol=1e-9)
    assert bool((s[:, 0] >= 0).all())
    assert bool((angle > -math.pi).all() and (angle <= math.pi).all())


def test_sign_of_quaternion_does_not_matter():
    g = torch.Generator().manual_seed(2)
    q = random_quat((50,), generator=g, dtype=F64)
    axis = torch.tensor([0.2, -1.0, 0.4], dtype=F64)
    s1, a1 = swing_twist(q, axis)
    s2, a2 = swing_twist(-q, axis)
    assert torch.allclose(s1, s2, atol=1e-12)
    assert float(wrap_angle(a1 - a2).abs().max()) < 1e-12


def test_pure_twist_and_pure_swing():
    axis = torch.tensor([0.0, 1.0, 0.0], dtype=F64)
    q = _wxyz(Rotation.from_rotvec([0, -2.5, 0]))
    s, angle = swing_twist(q, axis)
    assert angle.item() == pytest.approx(-2.5, abs=1e-12)
    assert torch.allclose(s, torch.tensor([1.0, 0, 0, 0], dtype=F64), atol=1e-12)
    q = _wxyz(Rotation.from_rotvec([0.7, 0, 0.3]))
    s, angle = swing_twist(q, axis)
    assert angle.item() == pytest.approx(0.0, abs=1e-12)
    assert torch.allclose(s, q, atol=1e-12)


def test_degenerate_half_turn_swing_has_zero_twist():
    axis = torch.tensor([1.0, 0.0, 0.0], dtype=F64)
    q = _wxyz(Rotation.from_rotvec([0, math.pi, 0]))  # 180 deg about y: w = 0 and no x component
    s, angle = swing_twist(q, axis)
    assert angle.item() == 0.0
    assert float(quat_geodesic_distance(s, q)) < 1e-12
    assert torch.isfinite(s).all()


def test_twist_of_pi_is_wrapped_to_plus_pi():
    axis = torch.tensor([0.0, 0.0, 1.0], dtype=F64)
    q = _wxyz(Rotation.from_rotvec([0, 0, math.pi]))
    _, angle = swing_twist(q, axis)
    assert angle.item() == pytest.approx(math.pi, abs=1e-12)
    assert wrap_angle(torch.tensor(-math.pi, dtype=F64)).item() == pytest.approx(math.pi)
    assert wrap_angle(torch.tensor(3 * math.pi / 2, dtype=F64)).item() == pytest.approx(-math.pi / 2)


def test_error_split_by_hand():
    axis = torch.tensor([0.0, 1.0, 0.0], dtype=F64)
    swing = Rotation.from_rotvec([0.3, 0, 0])
    true = _wxyz(swing * Rotation.from_rotvec([0, 0.5, 0]))
    pred = _wxyz(swing * Rotation.from_rotvec([0, 0.5 + math.radians(20), 0]))
    sw, tw = swing_twist_error(pred, true, axis)
    assert sw.item() == pytest.approx(0.0, abs=1e-9)
    assert tw.item() == pytest.approx(20.0, abs=1e-9)
    pred2 = _wxyz(
        Rotation.from_rotvec([math.radians(0.3 * 180 / math.pi + 7), 0, 0]) * Rotation.from_rotvec([0, 0.5, 0])
    )
    sw, tw = swing_twist_error(pred2, true, axis)
    assert sw.item() == pytest.approx(7.0, abs=1e-9)
    assert tw.item() == pytest.approx(0.0, abs=1e-9)
    # wrap-around: 179 vs -179 degrees of twist is 2 degrees apart
    a = _wxyz(Rotation.from_rotvec([0, math.radians(179), 0]))
    b = _wxyz(Rotation.from_rotvec([0, math.radians(-179), 0]))
    assert swing_twist_error(a, b, axis)[1].item() == pytest.approx(2.0, abs=1e-9)


def test_error_parts_bound_the_geodesic_error():
    g = torch.Generator().manual_seed(3)
    p, t = random_quat((300,), generator=g, dtype=F64), random_quat((300,), generator=g, dtype=F64)
    axis = torch.randn(300, 3, generator=g, dtype=F64)
    sw, tw = swing_twist_error(p, t, axis)
    total = torch.rad2deg(quat_geodesic_distance(p, t))
    assert bool((total <= sw + tw + 1e-9).all())


@pytest.mark.parametrize("shape", [(), (5,), (2, 3)])
def test_batch_shapes_and_per_joint_axes(shape, dtype):
    g = torch.Generator().manual_seed(4)
    q = random_quat((*shape, 7), generator=g, dtype=dtype)  # (..., J=7, 4)
    axes = torch.randn(7, 3, generator=g, dtype=dtype)  # one axis per joint, broadcast
    s, angle = swing_twist(q, axes)
    assert s.shape == (*shape, 7, 4) and angle.shape == (*shape, 7)
    assert s.dtype == dtype and angle.dtype == dtype
    flat_s, flat_a = swing_twist(q.reshape(-1, 7, 4), axes)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert torch.allclose(flat_s.reshape(s.shape), s, atol=tol)
    assert torch.allclose(flat_a.reshape(angle.shape), angle, atol=tol)


def test_gradcheck():
    g = torch.Generator().manual_seed(5)
    q = random_quat((4,), generator=g, dtype=F64).requires_grad_(True)
    axis = torch.tensor([0.3, 0.9, -0.2], dtype=F64)
    assert torch.autograd.gradcheck(lambda x: swing_twist(x, axis)[1], (q,))
    assert torch.autograd.gradcheck(lambda x: swing_twist(x, axis)[0], (q,))


def test_input_errors():
    q = torch.tensor([1.0, 0, 0, 0])
    with pytest.raises(ShapeError, match="quat"):
        swing_twist(torch.zeros(3), torch.ones(3))
    with pytest.raises(ShapeError, match="axis"):
        swing_twist(q, torch.ones(2))
    with pytest.raises(KineposeError, match="zero-length axis"):
        swing_twist(q, torch.zeros(3))
    with pytest.raises(KineposeError, match="shapes differ"):
        swing_twist_error(q, torch.ones(2, 4), torch.ones(3))
