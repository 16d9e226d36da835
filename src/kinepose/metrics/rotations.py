"""Rotation metrics: geodesic error of quaternions (w, x, y, z), Euler-angle MAE with wrap-around."""

from __future__ import annotations

import torch

from kinepose.errors import KineposeError
from kinepose.geometry.rotations import quat_geodesic_distance
from kinepose.metrics._common import ArrayLike, _pair


def geodesic_error(pred_quat: ArrayLike, target_quat: ArrayLike, degrees: bool = False) -> torch.Tensor:
    """Angle of the relative rotation between two quaternions, invariant to their signs.

    Both are normalised first; the angle is ``4 atan2(|q1 - s q2|, |q1 + s q2|)`` with
    ``s = sign(<q1, q2>)`` (equal to ``2 acos |<q1, q2>|`` but accurate for tiny and near-pi angles).

    Args:
        pred_quat, target_quat: (..., J, 4) quaternions, w, x, y, z (real part first); non-zero.
        degrees: return degrees instead of radians.
    Returns:
        (..., J) angles in [0, pi] radians (or [0, 180] degrees).
    """
    q1, q2 = _pair(pred_quat, target_quat, "pred_quat", "target_quat", (4,), "w, x, y, z quaternions")
    for q, name in ((q1, "pred_quat"), (q2, "target_quat")):
        norm = torch.linalg.vector_norm(q, dim=-1)
        if bool((norm <= torch.finfo(q.dtype).tiny).any()):
            idx = tuple(torch.nonzero(norm <= torch.finfo(q.dtype).tiny)[0].tolist())
            raise KineposeError(f"{name}: zero quaternion at index {idx} (shape {tuple(q.shape)})")
    q1 = q1 / torch.linalg.vector_norm(q1, dim=-1, keepdim=True)
    q2 = q2 / torch.linalg.vector_norm(q2, dim=-1, keepdim=True)
    angle = quat_geodesic_distance(q1, q2)
    return torch.rad2deg(angle) if degrees else angle


def euler_mae(pred: ArrayLike, target: ArrayLike, degrees: bool = True) -> torch.Tensor:
    """Mean absolute error of each Euler angle (e.g. head-pose yaw, pitch, roll), with wrap-around.

    Each difference is wrapped into [-180, 180) degrees ([-pi, pi) radians) before its absolute
    value is taken, so 179 vs -179 degrees is an error of 2.

    Args:
        pred, target: (..., 3) angles, degrees if ``degrees`` else radians.
        degrees: unit of both the inputs and the output.
    Returns:
        (3,) mean absolute error per component, in the input unit.
    """
    p, t = _pair(pred, target, "pred", "target", (3,), "Euler angles")
    half = 180.0 if degrees else torch.pi
    d = torch.remainder(p - t + half, 2 * half) - half  # (..., 3) in [-half, half)
    return d.abs().reshape(-1, 3).mean(0)
