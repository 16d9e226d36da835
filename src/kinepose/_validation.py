"""Small input checks shared by every module. They raise errors that name the argument and shape."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from kinepose.errors import KineposeError, NonFiniteError, ShapeError


def as_tensor(x: torch.Tensor | np.ndarray | Sequence, name: str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Convert ``x`` to a floating tensor (float64 for float64 arrays, else float32 unless ``dtype``)."""
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as exc:
            raise KineposeError(f"{name}: cannot convert {type(x).__name__} to a tensor ({exc})") from exc
    if dtype is not None:
        return t.to(dtype)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    return t


def check_last_dims(x: torch.Tensor, name: str, dims: tuple[int | None, ...], what: str = "") -> None:
    """Raise ``ShapeError`` unless the trailing dimensions of ``x`` equal ``dims`` (``None`` = any)."""
    shape = tuple(x.shape)
    if len(shape) < len(dims) or any(
        d is not None and s != d for s, d in zip(shape[len(shape) - len(dims) :], dims, strict=True)
    ):
        want = ", ".join("*" if d is None else str(d) for d in dims)
        extra = f" ({what})" if what else ""
        raise ShapeError(f"{name}: expected shape (..., {want}){extra}, got {shape}")


def check_joints(x: torch.Tensor, name: str, num_joints: int, skeleton_name: str = "", channels: int = 3) -> None:
    """Check a joint array of shape ``(..., J, channels)`` against a skeleton's joint count."""
    shape = tuple(x.shape)
    if len(shape) < 2 or shape[-1] != channels:
        raise ShapeError(f"{name}: expected shape (..., J, {channels}), got {shape}")
    if shape[-2] != num_joints:
        sk = f" of skeleton '{skeleton_name}'" if skeleton_name else ""
        raise ShapeError(f"{name}: has {shape[-2]} joints, expected {num_joints}{sk} (shape {shape})")


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise ``NonFiniteError`` naming the first bad entry if ``x`` holds NaN or inf."""
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = torch.nonzero(~torch.isfinite(x))[0].tolist()
        n_bad = int((~torch.isfinite(x)).sum())
        raise NonFiniteError(f"{name}: {n_bad} non-finite value(s), first at index {tuple(bad)}")


def check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ShapeError(f"{name_a} has shape {tuple(a.shape)} but {name_b} has shape {tuple(b.shape)}")
