"""Input checks shared by the metrics: conversion, shapes, finiteness, masks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from kinepose._validation import as_tensor, check_finite, check_last_dims, check_same_shape
from kinepose.errors import KineposeError, ShapeError

ArrayLike = torch.Tensor | np.ndarray | Sequence


def _pair(
    a: ArrayLike, b: ArrayLike, name_a: str, name_b: str, dims: tuple[int | None, ...], what: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert, check trailing dims, equal shapes, finiteness and non-emptiness; promote to one dtype."""
    ta, tb = as_tensor(a, name_a), as_tensor(b, name_b)
    check_last_dims(ta, name_a, dims, what)
    check_last_dims(tb, name_b, dims, what)
    check_same_shape(ta, tb, name_a, name_b)
    if ta.numel() == 0:
        raise ShapeError(f"{name_a}: empty input of shape {tuple(ta.shape)}; a metric needs at least one value")
    check_finite(ta, name_a)
    check_finite(tb, name_b)
    dtype = torch.promote_types(ta.dtype, tb.dtype)
    return ta.to(dtype), tb.to(dtype)


def _positions(pred: ArrayLike, target: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    return _pair(pred, target, "pred", "target", (None, 3), "joint positions (..., J, 3)")


def _weights(mask: ArrayLike | None, joints_shape: torch.Size, like: torch.Tensor, name: str) -> torch.Tensor | None:
    """A ``(..., J)`` mask/weight array -> non-negative float weights of exactly ``joints_shape``."""
    if mask is None:
        return None
    m = as_tensor(mask, name)
    if m.ndim == 0 or m.shape[-1] != joints_shape[-1]:
        raise ShapeError(
            f"{name}: expected shape (..., J) with J = {joints_shape[-1]} joints, matching the positions' "
            f"{tuple(joints_shape)}, got {tuple(m.shape)}"
        )
    try:
        full = torch.broadcast_shapes(m.shape, joints_shape)
    except RuntimeError:
        full = None
    if full != joints_shape:
        raise ShapeError(
            f"{name}: shape {tuple(m.shape)} does not broadcast to the joints' shape {tuple(joints_shape)}"
        )
    check_finite(m, name)
    m = m.to(dtype=like.dtype, device=like.device)
    if bool((m < 0).any()):
        raise KineposeError(f"{name}: weights must be >= 0 (True/1 = joint counted), got a negative value")
    return m.expand(joints_shape)


def _masked_mean(values: torch.Tensor, w: torch.Tensor | None, name: str = "mask") -> torch.Tensor:
    """Mean of ``values`` (..., J) over everything, weighted by ``w`` if given; error if ``w`` is all zero."""
    if w is None:
        return values.mean()
    total = w.sum()
    if not bool(total > 0):
        raise KineposeError(f"{name}: no joint is masked in (all entries False/0, shape {tuple(w.shape)})")
    return (values * w).sum() / total
