"""Temporal metrics of joint trajectories (..., T, J, 3)."""

from __future__ import annotations

import math

import torch

from kinepose.errors import KineposeError, ShapeError
from kinepose.metrics._common import ArrayLike, _pair, _weights

__all__ = ["acceleration_error", "mpjve"]


def acceleration_error(pred: ArrayLike, target: ArrayLike, fps: float | None = None) -> torch.Tensor:
    """Mean error of the acceleration (second finite difference) of joint trajectories.

    ``mean || (p[t+1] - 2 p[t] + p[t-1]) - (q[t+1] - 2 q[t] + q[t-1]) ||`` over frames ``1..T-2``,
    joints and leading dims: metres per frame^2. With ``fps`` the difference is divided by the squared
    frame time ``(1 / fps)^2``, giving metres per second^2, so clips at different frame rates can be
    compared and pooled (the same motion sampled at 60 fps has 1/4 of its per-frame^2 value at 30 fps).

    Args:
        pred, target: sequences (..., T, J, 3), metres, with T >= 3 frames.
        fps: frames per second (finite, > 0) of both sequences; ``None`` (default): no frame-rate scaling.
    Returns:
        Scalar tensor: metres per frame^2, or metres per second^2 when ``fps`` is given.
    """
    p, t = _pair(pred, target, "pred", "target", (None, None, 3), "sequences (..., T, J, 3)")
    if p.shape[-3] < 3:
        raise ShapeError(
            f"pred: acceleration needs T >= 3 frames on dim -3 of (..., T, J, 3), got shape {tuple(p.shape)}"
        )
    rate = _fps_rate(fps)
    d = p - t  # acceleration is linear: diff of accelerations = acceleration of the difference
    acc = d[..., 2:, :, :] - 2 * d[..., 1:-1, :, :] + d[..., :-2, :, :]  # (..., T-2, J, 3)
    err = torch.linalg.vector_norm(acc, dim=-1).mean()
    return err if rate is None else err * rate**2


def mpjve(pred: ArrayLike, target: ArrayLike, mask: ArrayLike | None = None, fps: float | None = None) -> torch.Tensor:
    """Mean per-joint velocity error (MPJVE): the error of the first finite difference of joint trajectories.

    ``mean || (p[t+1] - p[t]) - (q[t+1] - q[t]) ||`` over the ``T - 1`` frame pairs on the time axis (dim -3),
    joints and leading dims: metres per frame. With ``fps`` the difference is divided by the frame time
    ``1 / fps``, giving metres per second (the conventions of :func:`acceleration_error`).

    Args:
        pred, target: sequences (..., T, J, 3), metres, with T >= 2 frames.
        mask: optional (..., T, J) (or broadcastable, e.g. (J,)) visibility mask or non-negative weights. A
            velocity ``t -> t+1`` counts where the joint is masked in at both frames (weight: the smaller
            of the two); the mean runs over those only.
        fps: frames per second (finite, > 0) of both sequences; ``None`` (default): no frame-rate scaling.
    Returns:
        Scalar tensor: metres per frame, or metres per second when ``fps`` is given.
    Raises:
        ShapeError: bad shapes or T < 2. NonFiniteError: NaN/inf in the inputs. KineposeError: bad ``fps``, or a
            mask that leaves no velocity.
    """
    p, t = _pair(pred, target, "pred", "target", (None, None, 3), "sequences (..., T, J, 3)")
    if p.shape[-3] < 2:
        raise ShapeError(f"pred: velocity needs T >= 2 frames on dim -3 of (..., T, J, 3), got shape {tuple(p.shape)}")
    rate = _fps_rate(fps)
    w = _weights(mask, p.shape[:-1], p, "mask")  # (..., T, J)
    d = p - t  # velocity is linear: diff of velocities = velocity of the difference
    vel = d[..., 1:, :, :] - d[..., :-1, :, :]  # (..., T-1, J, 3)
    err = torch.linalg.vector_norm(vel, dim=-1)  # (..., T-1, J)
    if w is None:
        out = err.mean()
    else:
        wv = torch.minimum(w[..., 1:, :], w[..., :-1, :])  # (..., T-1, J): masked in at both frames
        if not bool(wv.sum() > 0):
            raise KineposeError(f"mask: no joint is masked in at two consecutive frames (shape {tuple(w.shape)})")
        out = (err * wv).sum() / wv.sum()
    return out if rate is None else out * rate


def _fps_rate(fps: float | None) -> float | None:
    if fps is None:
        return None
    try:
        rate = float(fps)
    except (TypeError, ValueError):
        rate = math.nan
    if not (math.isfinite(rate) and rate > 0):
        raise KineposeError(f"fps: expected a finite number of frames per second > 0, got {fps!r}")
    return rate
