"""Simple signal-processing baselines for joint trajectories."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kinepose._validation import as_tensor
from kinepose.errors import KineposeError, ShapeError

__all__ = ["moving_average"]


def moving_average(joints: torch.Tensor, window: int = 5, causal: bool = False) -> torch.Tensor:
    """Moving average of (T, J, 3) trajectories over ``window`` frames.

    Centered (offline): frame t averages ``t - w//2 .. t + w//2``; causal (real time): ``t - w + 1 .. t``.
    Edges replicate the first/last frame, so the output has the input's length.
    """
    joints = as_tensor(joints, "joints")
    if joints.dim() < 2:
        raise ShapeError(f"joints: expected (T, ...) trajectories, got shape {tuple(joints.shape)}")
    if window < 1:
        raise KineposeError(f"window must be >= 1, got {window}")
    if window == 1:
        return joints.clone()
    T = joints.shape[0]
    flat = joints.reshape(T, -1).T[None]  # (1, C, T)
    left = window - 1 if causal else window // 2
    right = 0 if causal else window - 1 - window // 2
    padded = F.pad(flat, (left, right), mode="replicate")
    kernel = torch.full((flat.shape[1], 1, window), 1.0 / window, dtype=joints.dtype)
    out = F.conv1d(padded, kernel, groups=flat.shape[1])  # (1, C, T)
    return out[0].T.reshape(joints.shape)
