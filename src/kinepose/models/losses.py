"""Training losses on rotations and positions. Quaternions are w,x,y,z."""

from __future__ import annotations

import torch

from kinepose.geometry.rotations import quat_to_matrix
from kinepose.kinematics.fk import forward_kinematics_matrix
from kinepose.skeleton.core import Skeleton

__all__ = ["ROTATION_LOSSES", "fk_position_loss", "geodesic_loss", "quat_mse_loss", "rotation_loss"]


#: Names accepted by :func:`rotation_loss` (config key ``loss.rotation``).
ROTATION_LOSSES = ("geodesic", "quat_mse")


def quat_mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sign-invariant quaternion MSE: mean of ``min(|p - t|^2, |p + t|^2)`` over (..., 4)."""
    return torch.minimum((pred - target).square().sum(-1), (pred + target).square().sum(-1)).mean()


def geodesic_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean rotation angle (radians) between (..., 4) unit quaternions, with a finite gradient at 0."""
    dot = (pred * target).sum(-1).abs().clamp(max=1.0 - eps)
    return (2.0 * torch.acos(dot)).mean()


def rotation_loss(kind: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if kind == "geodesic":
        return geodesic_loss(pred, target)
    if kind == "quat_mse":
        return quat_mse_loss(pred, target)
    raise ValueError(f"loss.rotation: unknown rotation loss {kind!r}; use {' or '.join(ROTATION_LOSSES)}")


def fk_position_loss(
    skeleton: Skeleton,
    pred_quat: torch.Tensor,
    root_pos: torch.Tensor,
    target_joints: torch.Tensor,
    offsets: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared distance (in units of 10 cm, so ~1 for a 10 cm error) between FK of the predicted
    rotations and the target joints (B, J, 3)."""
    pos = forward_kinematics_matrix(skeleton, quat_to_matrix(pred_quat), root_pos, offsets).positions
    return ((pos - target_joints) * 10.0).square().sum(-1).mean()
