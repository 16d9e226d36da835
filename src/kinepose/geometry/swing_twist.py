"""Swing-twist decomposition of rotations about a bone axis.

Every rotation ``q`` splits, for a unit axis ``a``, into a *twist* about ``a`` and a *swing* about an axis
orthogonal to ``a``:

    q = swing * twist(a, angle)          (w, x, y, z quaternions, Hamilton product)

**Order: the twist is applied first** (``quat_multiply(swing, twist)`` rotates a vector by ``twist`` and then
by ``swing``; as matrices ``R = R_swing @ R_twist`` on column vectors). Applied first, the twist turns the bone
about its own rest direction ``a`` and leaves ``a`` where it is; the swing then carries ``a`` to ``q a`` along
the shortest arc. This is the convention of :func:`kinepose.kinematics.analytic_ik`'s ``swing`` solver,
``L = shortest_arc(a, observed) @ R(a, twist)``, with ``a`` the joint's rest bone vector (its first IK target,
:func:`kinepose.kinematics.ik.ik_targets`): the twist angle returned here is exactly the ``twist`` argument
that makes analytic IK reproduce ``q``.

Maths. With ``q = (w, v)`` and ``p = v . a``, the twist is ``(w, p a) / |(w, p a)|``, i.e. the angle
``2 atan2(p, w)``; the swing ``q * twist^-1`` has no component along ``a``. The angle is wrapped into
``(-pi, pi]`` and is the same for ``q`` and ``-q``. When ``w = p = 0`` (a swing of exactly 180 degrees) the
twist is undetermined; it is then 0 and the swing is ``q``. Near that case the twist is ill-conditioned.
"""

from __future__ import annotations

import math

import torch

from kinepose._validation import check_last_dims
from kinepose.errors import KineposeError
from kinepose.geometry.rotations import quat_canonical, quat_conjugate, quat_geodesic_distance, quat_multiply

__all__ = ["swing_twist", "swing_twist_error", "twist_quat", "wrap_angle"]


def wrap_angle(angle: torch.Tensor) -> torch.Tensor:
    """Angles (radians, any shape) wrapped into ``(-pi, pi]``."""
    w = torch.remainder(angle + math.pi, 2 * math.pi) - math.pi  # [-pi, pi)
    return torch.where(w <= -math.pi, w + 2 * math.pi, w)


def _unit_axis(axis: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    axis = torch.as_tensor(axis, dtype=like.dtype, device=like.device)
    check_last_dims(axis, "axis", (3,), "rotation axes")
    n = axis.norm(dim=-1, keepdim=True)
    if bool((n <= 1e-12).any()):
        idx = tuple(torch.nonzero(n[..., 0] <= 1e-12)[0].tolist())
        raise KineposeError(f"axis: zero-length axis at index {idx} (shape {tuple(axis.shape)}); the twist axis "
                            f"must be a non-zero vector such as a rest bone")  # fmt: skip
    return axis / n


def twist_quat(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """(..., 4) w,x,y,z rotation by ``angle`` (...,) radians about ``axis`` (..., 3, normalized here)."""
    angle = torch.as_tensor(angle)
    a = _unit_axis(axis, angle if angle.is_floating_point() else angle.double())
    half = 0.5 * angle.to(a.dtype)
    xyz = torch.sin(half)[..., None] * a
    return torch.cat([torch.cos(half)[..., None].expand(*xyz.shape[:-1], 1), xyz], dim=-1)


def swing_twist(quat: torch.Tensor, axis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split rotations into a swing and a twist about ``axis``: ``quat = swing * twist(axis, angle)``.

    The twist is applied first (see the module docstring for the order and the degenerate case).

    Args:
        quat: (..., 4) unit w,x,y,z quaternions.
        axis: (..., 3) twist axes (any non-zero length; normalized), broadcasting against ``quat``'s leading
            dimensions (e.g. one axis per joint for ``(T, J, 4)`` rotations and ``(J, 3)`` axes).

    Returns:
        ``(swing, angle)``: (..., 4) w,x,y,z swing quaternions with ``w >= 0``, whose rotation axis is
        orthogonal to ``axis``, and (...,) twist angles in radians, in ``(-pi, pi]``.
    """
    check_last_dims(quat, "quat", (4,), "w, x, y, z quaternions")
    if not quat.is_floating_point():
        raise KineposeError(f"quat: expected a float tensor, got {quat.dtype}")
    a = _unit_axis(axis, quat)
    q = quat_canonical(quat)
    w, v = q[..., 0], q[..., 1:]
    p = (v * a).sum(-1)  # (...,) the vector part's component along the axis
    angle = wrap_angle(2.0 * torch.atan2(p, w))
    tw = twist_quat(a.expand(*p.shape, 3), angle)  # (..., 4)
    swing = quat_canonical(quat_multiply(q, quat_conjugate(tw)))
    return swing, angle


def swing_twist_error(pred: torch.Tensor, true: torch.Tensor, axis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Swing and twist parts of the error of predicted rotations about a bone axis, in degrees.

    ``swing_deg`` is the geodesic angle between the two swings; ``twist_deg`` the absolute difference of the
    twist angles, wrapped into ``[0, 180]``. By the triangle inequality the full geodesic error is at most
    their sum.

    Args:
        pred, true: (..., 4) unit w,x,y,z quaternions.
        axis: (..., 3) twist axes (e.g. each joint's rest bone), broadcasting like :func:`swing_twist`.

    Returns:
        ``(swing_deg, twist_deg)``, each (...,).
    """
    check_last_dims(pred, "pred", (4,), "w, x, y, z quaternions")
    check_last_dims(true, "true", (4,), "w, x, y, z quaternions")
    if pred.shape != true.shape:
        raise KineposeError(f"pred and true: shapes differ, {tuple(pred.shape)} vs {tuple(true.shape)}")
    sp, tp = swing_twist(pred, axis)
    st, tt = swing_twist(true, axis)
    swing_deg = torch.rad2deg(quat_geodesic_distance(sp, st))
    twist_deg = torch.rad2deg(wrap_angle(tp - tt).abs())
    return swing_deg, twist_deg
