"""Skeletal consistency metrics of joint trajectories (..., T, J, 3): how much bone lengths vary over a clip.

A predicted clip of a rigid skeleton should keep each bone's length; 3D lifters that predict joints frame by
frame do not, and the standard deviation of each bone's length over time measures it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from kinepose._validation import as_tensor, check_finite, check_last_dims
from kinepose.errors import KineposeError, ShapeError
from kinepose.metrics._common import ArrayLike, _weights

__all__ = ["BoneLengthStd", "bone_length_std"]


class BoneLengthStd(NamedTuple):
    """What :func:`bone_length_std` returns.

    Attributes:
        per_bone: (..., B) standard deviation over time of each bone's length, units of the input; bone ``b`` goes
            from ``parents[c]`` to ``c``, the ``b``-th non-root joint ``c`` (:attr:`children`). NaN where ``valid``
            is False.
        mean: scalar, the mean of ``per_bone`` over its valid entries (bones and leading dims).
        valid: (..., B) bool, the bone has at least one masked-in frame (always True without a mask).
        children: ``B`` child joint indices, one per bone.
    """

    per_bone: torch.Tensor
    mean: torch.Tensor
    valid: torch.Tensor
    children: tuple[int, ...]


def bone_length_std(joints: ArrayLike, parents: Sequence[int], mask: ArrayLike | None = None) -> BoneLengthStd:
    """Per-bone standard deviation of bone lengths over the time axis of a clip, and its mean.

    ``std_b = sqrt(mean_t (L_b[t] - mean_t L_b)^2)`` with ``L_b[t] = |x_c[t] - x_parent(c)[t]|``: the
    population standard deviation (divided by the number of frames, not one less), so a bone whose length
    alternates 1 and 3 has std 1. With a mask it is the weighted mean and deviation over the frames where
    both ends of the bone are masked in (weight: the smaller of the two joints' weights).

    Args:
        joints: clip(s) (..., T, J, 3), metres (any unit: the result is in the same), T >= 2.
        parents: ``J`` parent indices, ``-1`` for a root (a :class:`~kinepose.skeleton.core.Skeleton`'s or
            a layout's ``parents``).
        mask: optional (..., T, J) visibility mask or non-negative weights, broadcastable (e.g. (J,)).
    Returns:
        :class:`BoneLengthStd`: ``per_bone`` (..., B), ``mean`` (scalar), ``valid``, ``children``.
    Raises:
        ShapeError: bad shapes, T < 2, parents of the wrong length or out of range. NonFiniteError: NaN/inf.
        KineposeError: no bone, or a mask that leaves no bone with a frame.
    """
    x = as_tensor(joints, "joints")
    check_last_dims(x, "joints", (None, None, 3), "clips (..., T, J, 3)")
    T, J = x.shape[-3], x.shape[-2]
    if T < 2:
        raise ShapeError(f"joints: bone_length_std needs T >= 2 frames on dim -3 of (..., T, J, 3), "
                         f"got {tuple(x.shape)}")  # fmt: skip
    check_finite(x, "joints")
    par = [int(p) for p in parents]
    if len(par) != J or any(not (p == -1 or (0 <= p < J and p != j)) for j, p in enumerate(par)):
        raise ShapeError(f"parents: expected {J} indices in -1..{J - 1} (-1 for a root, none its own parent) for "
                         f"joints {tuple(x.shape)}, got {list(parents)}")  # fmt: skip
    children = tuple(j for j, p in enumerate(par) if p >= 0)
    if not children:
        raise KineposeError(f"parents: no bone (every joint is a root): {par}")
    ch = torch.tensor(children, device=x.device)
    pa = torch.tensor([par[c] for c in children], device=x.device)
    lengths = torch.linalg.vector_norm(x.index_select(-2, ch) - x.index_select(-2, pa), dim=-1)  # (..., T, B)
    w = _weights(mask, x.shape[:-1], x, "mask")  # (..., T, J)
    if w is None:
        wb = torch.ones_like(lengths)
    else:
        wb = torch.minimum(w.index_select(-1, ch), w.index_select(-1, pa))  # (..., T, B)
    total = wb.sum(-2)  # (..., B): sums over the time axis, now dim -2
    valid = total > 0
    if not bool(valid.any()):
        raise KineposeError(f"mask: no bone has both ends masked in at any frame (mask shape {tuple(w.shape)})")
    denom = total.clamp_min(torch.finfo(x.dtype).tiny)
    mu = (wb * lengths).sum(-2) / denom  # (..., B)
    var = (wb * (lengths - mu.unsqueeze(-2)).square()).sum(-2) / denom  # (..., B)
    # sqrt has an infinite derivative at 0 (a bone of constant length): clamp so that gradients stay finite
    std = var.clamp_min(torch.finfo(x.dtype).tiny).sqrt() * (var > 0)
    per_bone = torch.where(valid, std, torch.full_like(std, float("nan")))
    return BoneLengthStd(per_bone, std[valid].mean(), valid, children)
