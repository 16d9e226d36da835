"""Leak-proof train / val / test splits of frame-level data sets.

Frames of one person, one sequence or one identity are near-duplicates: split them at random and the test set
holds the neighbours of training frames, so the score measures memory, not generalization. On BIWI, for
example, random frame splits have been reported at about 1.33 degrees MAE where splits by sequence give about
2.66 to 3.47 degrees. Every split here is therefore by group (:func:`group_split`); a frame split
(:func:`frame_split`) must be forced, warns with :class:`LeakageWarning` and marks its result ``leaky``.

A split is a dict ``{"train": idx, "val": idx, "test": idx, "leaky": bool, "groups": {...}, "kind": str}``:
sorted int64 frame indices (``val`` empty unless asked for), whether it leaks, and for group splits the group
values on each side, so a report can carry how its test set was chosen.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from kinepose.errors import KineposeError

__all__ = ["SPLIT_KINDS", "LeakageWarning", "frame_split", "group_kfold", "group_split", "make_split"]

#: The kinds :func:`make_split` knows: three group splits and the (leaky) frame split.
SPLIT_KINDS = ("identity", "subject", "sequence", "frame")

_LEAK = (
    "a random frame split puts neighbouring, near-identical frames of one person on both sides, so the test "
    "score measures memorization (on BIWI, random frame splits have been reported at ~1.33 deg MAE against "
    "2.66-3.47 deg when split by sequence)"
)
_FIX = (
    "; split by subject, identity or sequence with group_split or make_split(kind='subject', groups=...), "
    "or pass force=True to accept a leaky split"
)


class LeakageWarning(UserWarning):
    """A split lets frames of one group (person, sequence) into both training and test data."""


def _fractions(test_fraction: float, val_fraction: float) -> None:
    if not 0.0 < test_fraction < 1.0:
        raise KineposeError(f"test_fraction: expected a value in (0, 1), got {test_fraction}")
    if not 0.0 <= val_fraction < 1.0:
        raise KineposeError(f"val_fraction: expected a value in [0, 1), got {val_fraction}")
    if test_fraction + val_fraction >= 1.0:
        raise KineposeError(
            f"test_fraction + val_fraction = {test_fraction + val_fraction} leaves nothing to train on (need < 1)"
        )


def _counts(n: int, test_fraction: float, val_fraction: float, what: str) -> tuple[int, int]:
    """(n_test, n_val) of ``n`` units: at least one each where asked for, and at least one left to train."""
    n_test = max(1, round(test_fraction * n))
    n_val = max(1, round(val_fraction * n)) if val_fraction > 0 else 0
    need = 2 + (val_fraction > 0)
    if n < need:
        raise KineposeError(f"a train/{'val/' if n_val else ''}test split needs at least {need} {what}, got {n}")
    while n_test + n_val >= n:  # rounding took everything: give back to train, keeping >= 1 per side
        if n_test >= n_val and n_test > 1:
            n_test -= 1
        else:
            n_val -= 1
    return n_test, n_val


def group_split(
    groups: np.ndarray | Sequence, test_fraction: float = 0.3, seed: int = 0, val_fraction: float = 0.0
) -> dict[str, Any]:
    """Split frames by group (subject, identity, sequence): no group on two sides.

    The unique groups (sorted) are shuffled with ``numpy.random.default_rng(seed)``; the first
    ``round(test_fraction * G)`` (at least 1) go to test, the next ``round(val_fraction * G)`` (at least 1 if
    ``val_fraction > 0``) to val, the rest to train. The fractions count groups, not frames.

    Args:
        groups: (N,) group label of every frame (ints or strings).
        test_fraction: share of the groups in test, in (0, 1).
        seed: the shuffle's seed; the same inputs and seed give the same split.
        val_fraction: share of the groups in val, in [0, 1).
    Returns:
        ``{"train", "val", "test"}``: sorted (M,) int64 frame indices; ``"groups"``: the group values of each
        side; ``"leaky"``: False; ``"kind"``: ``"group"``.
    Raises:
        KineposeError: fewer than 2 groups (3 with a val set), bad fractions, groups not 1-D.
    """
    g = np.asarray(groups)
    if g.ndim != 1:
        raise KineposeError(f"groups: expected shape (N,), one label per frame, got {g.shape}")
    _fractions(test_fraction, val_fraction)
    uniq, inverse = np.unique(g, return_inverse=True)  # (G,), (N,)
    n_test, n_val = _counts(len(uniq), test_fraction, val_fraction, "groups")
    order = np.random.default_rng(seed).permutation(len(uniq))  # (G,) shuffled group ids
    side = np.zeros(len(uniq), dtype=np.int64)  # 0 train, 1 val, 2 test
    side[order[:n_test]] = 2
    side[order[n_test : n_test + n_val]] = 1
    frame_side = side[inverse.reshape(-1)]  # (N,)
    names = ("train", "val", "test")
    out: dict[str, Any] = {k: np.flatnonzero(frame_side == i).astype(np.int64) for i, k in enumerate(names)}
    out["groups"] = {k: uniq[side == i].tolist() for i, k in enumerate(names)}
    out["leaky"] = False
    out["kind"] = "group"
    return out


def group_kfold(groups: np.ndarray | Sequence, k: int = 4, seed: int = 0) -> list[dict[str, Any]]:
    """``k`` folds by group: the unique groups, shuffled with ``seed``, dealt into ``k`` near-equal test sets; each
    fold trains on the other groups. Every frame is in exactly one fold's test set.

    Returns:
        ``k`` dicts ``{"train", "test"}`` (sorted int64 frame indices), ``"groups"``, ``"leaky"``: False,
        ``"kind"``: ``"group_kfold"``.
    Raises:
        KineposeError: ``k`` < 2 or more folds than groups.
    """
    g = np.asarray(groups)
    if g.ndim != 1:
        raise KineposeError(f"groups: expected shape (N,), one label per frame, got {g.shape}")
    uniq, inverse = np.unique(g, return_inverse=True)
    if not 2 <= int(k) <= len(uniq):
        raise KineposeError(f"k: need 2 <= k <= the number of groups ({len(uniq)}), got {k}")
    order = np.random.default_rng(seed).permutation(len(uniq))
    fold_of = np.empty(len(uniq), dtype=np.int64)
    fold_of[order] = np.arange(len(uniq)) % int(k)
    frame_fold = fold_of[inverse.reshape(-1)]
    out = []
    for i in range(int(k)):
        out.append({"train": np.flatnonzero(frame_fold != i).astype(np.int64),
                    "test": np.flatnonzero(frame_fold == i).astype(np.int64),
                    "groups": {"train": uniq[fold_of != i].tolist(), "test": uniq[fold_of == i].tolist()},
                    "leaky": False, "kind": "group_kfold"})  # fmt: skip
    return out


def frame_split(
    n: int, test_fraction: float = 0.3, seed: int = 0, force: bool = False, val_fraction: float = 0.0
) -> dict[str, Any]:
    """A random split of ``n`` frames. It leaks, so it raises unless ``force=True``.

    Args:
        n: the number of frames.
        test_fraction, seed, val_fraction: as in :func:`group_split`, counting frames.
        force: accept the leak; the split is returned with ``leaky=True`` and a :class:`LeakageWarning`.
    Returns:
        ``{"train", "val", "test"}`` sorted int64 indices, ``"leaky"``: True, ``"groups"``: None,
        ``"kind"``: ``"frame"``.
    Raises:
        KineposeError: without ``force`` (explaining the leak), or bad ``n`` / fractions.
    """
    if not force:
        raise KineposeError("frame_split: " + _LEAK + _FIX)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise KineposeError(f"n: expected a non-negative number of frames, got {n!r}")
    _fractions(test_fraction, val_fraction)
    n_test, n_val = _counts(int(n), test_fraction, val_fraction, "frames")
    warnings.warn(f"frame_split(force=True): {_LEAK}; the result is marked leaky", LeakageWarning, stacklevel=2)
    order = np.random.default_rng(seed).permutation(int(n))
    return {
        "train": np.sort(order[n_test + n_val :]).astype(np.int64),
        "val": np.sort(order[n_test : n_test + n_val]).astype(np.int64),
        "test": np.sort(order[:n_test]).astype(np.int64),
        "groups": None,
        "leaky": True,
        "kind": "frame",
    }


def make_split(
    kind: str,
    groups: np.ndarray | Sequence | int,
    test_fraction: float = 0.3,
    seed: int = 0,
    val_fraction: float = 0.0,
    force: bool = False,
) -> dict[str, Any]:
    """Split by ``kind``: ``"identity"``, ``"subject"`` or ``"sequence"`` (:func:`group_split` over ``groups``)
    or ``"frame"`` (:func:`frame_split`, which needs ``force=True``).

    Args:
        kind: one of :data:`SPLIT_KINDS`.
        groups: (N,) labels of the chosen kind; for ``"frame"`` the labels (only their count is used) or N.
        test_fraction, seed, val_fraction: as in :func:`group_split`.
        force: allow the leaky ``"frame"`` split.
    Returns:
        The split dict, with ``"kind"`` set to ``kind``.
    """
    if kind not in SPLIT_KINDS:
        raise KineposeError(f"kind: expected one of {SPLIT_KINDS}, got {kind!r}")
    if kind == "frame":
        n = groups if isinstance(groups, int | np.integer) and not isinstance(groups, bool) else len(np.asarray(groups))
        out = frame_split(int(n), test_fraction, seed, force=force, val_fraction=val_fraction)
    else:
        if isinstance(groups, int | np.integer):
            raise KineposeError(f"groups: a {kind} split needs one {kind} label per frame, got the number {groups}")
        out = group_split(groups, test_fraction, seed, val_fraction)
    out["kind"] = kind
    return out
