"""Temporal metrics of joint trajectories (..., T, J, 3)."""

from __future__ import annotations

import torch

from kinepose.errors import ShapeError
from kinepose.metrics._common import ArrayLike, _pair


def acceleration_error(pred: ArrayLike, target: ArrayLike) -> torch.Tensor:
    """Mean error of the second finite difference (acceleration) of joint trajectories.

    ``mean || (p[t+1] - 2 p[t] + p[t-1]) - (q[t+1] - 2 q[t] + q[t-1]) ||`` over frames ``1..T-2``,
    joints and leading dims. No frame-rate scaling is applied.

    Args:
        pred, target: sequences (..., T, J, 3), metres, with T >= 3 frames.
    Returns:
        Scalar tensor, metres per frame^2 (multiply by fps^2 for m/s^2).
    """
    p, t = _pair(pred, target, "pred", "target", (None, None, 3), "sequences (..., T, J, 3)")
    if p.shape[-3] < 3:
        raise ShapeError(
            f"pred: acceleration needs T >= 3 frames on dim -3 of (..., T, J, 3), got shape {tuple(p.shape)}"
        )
    d = p - t  # acceleration is linear: diff of accelerations = acceleration of the difference
    acc = d[..., 2:, :, :] - 2 * d[..., 1:-1, :, :] + d[..., :-2, :, :]  # (..., T-2, J, 3)
    return torch.linalg.vector_norm(acc, dim=-1).mean()
