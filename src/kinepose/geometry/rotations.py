"""Rotation conversions and distances, built on roma.

Conventions:

- Quaternions are ``(w, x, y, z)``, real part first, in every public function here. Conversions to
  quaternions return them canonicalized to ``w >= 0``; algebra (:func:`quat_multiply`,
  :func:`quat_about_axis`) does not flip signs, use :func:`quat_canonical` where needed.
  roma (and scipy) use ``(x, y, z, w)``; the conversion happens only at this module's boundary
  (:func:`quat_to_xyzw`, :func:`quat_from_xyzw`).
- Rotation matrices act on column vectors: ``p' = R @ p``.
- 6D is Zhou et al. (CVPR 2019): the **first two columns** of the rotation matrix, concatenated,
  ``(R[:, 0], R[:, 1])`` -> shape ``(..., 6)``. It is mapped back by Gram-Schmidt.
- Axis-angle is a rotation vector ``axis * angle`` of shape ``(..., 3)`` (radians).
- Euler angles follow scipy's naming: a 3-letter order of ``xyz`` letters is **extrinsic** (rotations
  about the fixed world axes, first letter first), upper-case ``XYZ`` letters are **intrinsic**
  (about the rotating body axes). All 12 orders (6 Tait-Bryan such as ``XYZ``, 6 proper such as
  ``ZXZ``) are accepted in both forms. Angles are radians, shape ``(..., 3)`` in the order's order.

Every function takes any number of leading batch dimensions, float32 or float64, and is
differentiable.
"""

from __future__ import annotations

import roma
import torch

from kinepose._validation import check_last_dims
from kinepose.errors import KineposeError

__all__ = [
    "EULER_ORDERS",
    "axis_angle_to_matrix",
    "axis_angle_to_quat",
    "check_unit_quat",
    "euler_to_matrix",
    "euler_to_quat",
    "geodesic_distance",
    "matrix_to_axis_angle",
    "matrix_to_euler",
    "matrix_to_quat",
    "matrix_to_sixd",
    "quat_about_axis",
    "quat_apply",
    "quat_canonical",
    "quat_conjugate",
    "quat_distance",
    "quat_from_xyzw",
    "quat_geodesic_distance",
    "quat_identity",
    "quat_multiply",
    "quat_normalize",
    "quat_to_axis_angle",
    "quat_to_euler",
    "quat_to_matrix",
    "quat_to_sixd",
    "quat_to_xyzw",
    "random_quat",
    "sixd_to_matrix",
    "sixd_to_quat",
]

_TAIT_BRYAN = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")
_PROPER = ("XYX", "XZX", "YXY", "YZY", "ZXZ", "ZYZ")
#: All 24 accepted Euler conventions: 12 intrinsic (upper case) and 12 extrinsic (lower case).
EULER_ORDERS: tuple[str, ...] = _TAIT_BRYAN + _PROPER + tuple(o.lower() for o in _TAIT_BRYAN + _PROPER)


def _check_order(order: str) -> None:
    if order not in EULER_ORDERS:
        raise KineposeError(
            f"order: unknown Euler order {order!r}; use 3 letters of xyz (extrinsic) or XYZ (intrinsic), "
            f"no two consecutive equal, e.g. 'XYZ', 'zxy', 'ZXZ'"
        )


# ----------------------------------------------------------------------------------------------- quaternions


def quat_to_xyzw(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) w,x,y,z -> (..., 4) x,y,z,w (roma's and scipy's order)."""
    return torch.cat([q[..., 1:], q[..., :1]], dim=-1)


def quat_from_xyzw(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) x,y,z,w -> (..., 4) w,x,y,z."""
    return torch.cat([q[..., 3:], q[..., :3]], dim=-1)


def quat_identity(shape: tuple[int, ...] = (), dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
    """Identity quaternions ``(1, 0, 0, 0)`` of shape ``(*shape, 4)``."""
    q = torch.zeros(*shape, 4, dtype=dtype, device=device)
    q[..., 0] = 1.0
    return q


def quat_normalize(q: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Scale (..., 4) quaternions to unit norm (a zero quaternion stays finite: it becomes ~0)."""
    return q / q.norm(dim=-1, keepdim=True).clamp_min(eps)


def quat_canonical(q: torch.Tensor) -> torch.Tensor:
    """Flip the sign of (..., 4) w,x,y,z quaternions so that ``w >= 0`` (q and -q are the same rotation)."""
    return torch.where(q[..., :1] < 0, -q, q)


def check_unit_quat(q: torch.Tensor, name: str, atol: float = 1e-3) -> None:
    """Raise ``KineposeError`` if any (..., 4) quaternion's norm differs from 1 by more than ``atol``."""
    check_last_dims(q, name, (4,), "w, x, y, z quaternions")
    dev = (q.norm(dim=-1) - 1).abs()
    if (dev.numel() and bool((dev > atol).any())) or not bool(torch.isfinite(dev).all()):
        idx = tuple(torch.nonzero(~(dev <= atol))[0].tolist())
        norm = float(q.norm(dim=-1)[idx])
        raise KineposeError(
            f"{name}: expected unit quaternions (w, x, y, z), but the one at index {idx} has norm {norm:.6g} "
            f"(tolerance {atol}); normalize it first"
        )


def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``a * b`` of (..., 4) w,x,y,z quaternions (apply ``b`` first, then ``a``)."""
    check_last_dims(a, "a", (4,), "w, x, y, z quaternions")
    check_last_dims(b, "b", (4,), "w, x, y, z quaternions")
    return quat_from_xyzw(roma.quat_product(quat_to_xyzw(a), quat_to_xyzw(b)))


def quat_conjugate(q: torch.Tensor) -> torch.Tensor:
    """Conjugate (the inverse for unit quaternions) of (..., 4) w,x,y,z quaternions."""
    check_last_dims(q, "q", (4,), "w, x, y, z quaternions")
    return torch.cat([q[..., :1], -q[..., 1:]], dim=-1)


def quat_apply(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate (..., 3) vectors by (..., 4) unit w,x,y,z quaternions (broadcasting)."""
    check_last_dims(q, "q", (4,), "w, x, y, z quaternions")
    check_last_dims(v, "v", (3,), "vectors")
    shape = torch.broadcast_shapes(q.shape[:-1], v.shape[:-1])
    q, v = q.expand(*shape, 4), v.expand(*shape, 3)
    w, xyz = q[..., :1], q[..., 1:]
    t = 2.0 * torch.linalg.cross(xyz, v, dim=-1)
    return v + w * t + torch.linalg.cross(xyz, t, dim=-1)


def quat_about_axis(axis: torch.Tensor, angle: torch.Tensor | float) -> torch.Tensor:
    """Quaternion (w, x, y, z) of a rotation by ``angle`` (...,) radians about unit ``axis`` (..., 3).

    The leading dimensions of ``angle`` and ``axis`` broadcast (e.g. one angle for many axes).
    """
    check_last_dims(axis, "axis", (3,), "unit rotation axes")
    if not isinstance(angle, torch.Tensor):
        angle = torch.tensor(angle, dtype=axis.dtype, device=axis.device)
    half = 0.5 * angle
    xyz = torch.sin(half)[..., None] * axis  # (..., 3), broadcast leading dims
    w = torch.cos(half)[..., None].expand(*xyz.shape[:-1], 1)  # (..., 1)
    return torch.cat([w, xyz], dim=-1)


def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) unit w,x,y,z quaternions -> (..., 3, 3) rotation matrices."""
    check_last_dims(q, "q", (4,), "w, x, y, z quaternions")
    return roma.unitquat_to_rotmat(quat_to_xyzw(q))


def matrix_to_quat(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 4) w,x,y,z unit quaternions with ``w >= 0``."""
    check_last_dims(R, "R", (3, 3), "rotation matrices")
    return quat_canonical(quat_from_xyzw(roma.rotmat_to_unitquat(R)))


def random_quat(
    shape: tuple[int, ...] = (), generator: torch.Generator | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Uniformly distributed random unit quaternions (w >= 0) of shape ``(*shape, 4)``."""
    q = torch.randn(*shape, 4, generator=generator, dtype=dtype)
    return quat_canonical(quat_normalize(q))


def quat_geodesic_distance(q1: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
    """Rotation angle (radians, in [0, pi]) between (..., 4) unit w,x,y,z quaternions; sign-invariant.

    Uses ``4 * atan2(|q1 - s q2|, |q1 + s q2|)`` with ``s = sign(<q1, q2>)``, accurate for tiny angles.
    """
    check_last_dims(q1, "q1", (4,), "w, x, y, z quaternions")
    check_last_dims(q2, "q2", (4,), "w, x, y, z quaternions")
    s = torch.where((q1 * q2).sum(-1, keepdim=True) < 0, -1.0, 1.0).to(q1.dtype)
    return 2.0 * 2.0 * torch.atan2((q1 - s * q2).norm(dim=-1), (q1 + s * q2).norm(dim=-1))


def quat_distance(q1: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
    """Sign-invariant chordal distance ``min(|q1 - q2|, |q1 + q2|)`` of (..., 4) quaternions.

    Its square is the sign-invariant quaternion MSE used as a training loss.
    """
    check_last_dims(q1, "q1", (4,), "w, x, y, z quaternions")
    check_last_dims(q2, "q2", (4,), "w, x, y, z quaternions")
    return torch.minimum((q1 - q2).norm(dim=-1), (q1 + q2).norm(dim=-1))


# ----------------------------------------------------------------------------------------------- matrices, 6D


def geodesic_distance(R1: torch.Tensor, R2: torch.Tensor) -> torch.Tensor:
    """Rotation angle (radians, in [0, pi]) of ``R1^T R2`` for (..., 3, 3) rotation matrices."""
    check_last_dims(R1, "R1", (3, 3), "rotation matrices")
    check_last_dims(R2, "R2", (3, 3), "rotation matrices")
    return roma.rotmat_geodesic_distance(R1, R2)


def matrix_to_sixd(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): the first two **columns** ``(R[:, 0], R[:, 1])`` (Zhou et al.)."""
    check_last_dims(R, "R", (3, 3), "rotation matrices")
    return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)


def sixd_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """(..., 6) first two columns (any scale, not orthogonal) -> (..., 3, 3) by Gram-Schmidt."""
    check_last_dims(d6, "d6", (6,), "two matrix columns, (R[:, 0], R[:, 1])")
    M = torch.stack([d6[..., :3], d6[..., 3:]], dim=-1)  # (..., 3, 2): the two columns
    return roma.special_gramschmidt(M)


def quat_to_sixd(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) w,x,y,z -> (..., 6) 6D."""
    return matrix_to_sixd(quat_to_matrix(q))


def sixd_to_quat(d6: torch.Tensor) -> torch.Tensor:
    """(..., 6) 6D -> (..., 4) w,x,y,z with ``w >= 0``."""
    return matrix_to_quat(sixd_to_matrix(d6))


# ----------------------------------------------------------------------------------------------- axis-angle


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """(..., 3) rotation vectors (axis * angle, radians) -> (..., 3, 3)."""
    check_last_dims(aa, "aa", (3,), "rotation vectors")
    return roma.rotvec_to_rotmat(aa)


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 3) rotation vectors with angle in [0, pi]."""
    check_last_dims(R, "R", (3, 3), "rotation matrices")
    return roma.rotmat_to_rotvec(R)


def axis_angle_to_quat(aa: torch.Tensor) -> torch.Tensor:
    """(..., 3) rotation vectors -> (..., 4) w,x,y,z with ``w >= 0``."""
    check_last_dims(aa, "aa", (3,), "rotation vectors")
    return quat_canonical(quat_from_xyzw(roma.rotvec_to_unitquat(aa)))


def quat_to_axis_angle(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) unit w,x,y,z -> (..., 3) rotation vectors with angle in [0, pi]."""
    check_last_dims(q, "q", (4,), "w, x, y, z quaternions")
    return roma.unitquat_to_rotvec(quat_to_xyzw(quat_canonical(q)))


# ----------------------------------------------------------------------------------------------- Euler


def euler_to_matrix(angles: torch.Tensor, order: str) -> torch.Tensor:
    """(..., 3) Euler angles (radians) in ``order`` -> (..., 3, 3).

    Args:
        angles: angles in the order's letter order, e.g. for ``'ZXY'`` (z, x, y).
        order: ``'XYZ'``-style intrinsic or ``'xyz'``-style extrinsic, any of :data:`EULER_ORDERS`.
    """
    _check_order(order)
    check_last_dims(angles, "angles", (3,), f"Euler angles in order {order}")
    return roma.euler_to_rotmat(order, angles)


def matrix_to_euler(R: torch.Tensor, order: str) -> torch.Tensor:
    """(..., 3, 3) -> (..., 3) Euler angles (radians) in ``order``; at gimbal lock the third is 0."""
    _check_order(order)
    check_last_dims(R, "R", (3, 3), "rotation matrices")
    return roma.rotmat_to_euler(order, R)


def euler_to_quat(angles: torch.Tensor, order: str) -> torch.Tensor:
    """(..., 3) Euler angles (radians) -> (..., 4) w,x,y,z with ``w >= 0``."""
    return matrix_to_quat(euler_to_matrix(angles, order))


def quat_to_euler(q: torch.Tensor, order: str) -> torch.Tensor:
    """(..., 4) unit w,x,y,z -> (..., 3) Euler angles (radians) in ``order``."""
    return matrix_to_euler(quat_to_matrix(q), order)
