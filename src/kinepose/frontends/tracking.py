"""Temporal repair of detected keypoint sequences: left/right swaps, flicker, gaps, jitter.

Pure numpy; no detector is imported. Every function takes ``(T, J, C)`` points (``C`` = 2 pixels or 3 metres,
any units) with NaN for a missing joint, returns new arrays and never modifies its input. The stages, in the order
:func:`repair_sequence` runs them:

1. **Whole-body left/right swaps** (:func:`detect_swaps`). Single-view detectors such as MediaPipe Pose sometimes
   relabel the whole body for a run of frames: every left joint is reported as the right one and back. In the
   image this is a permutation of the labels; in MediaPipe's 3D world landmarks the depth flips as well (the body
   is reported facing away from the camera: the same 2D projection, mirrored in depth), so the 3D repair is the
   permutation followed by a mirror of the ``depth_axis`` coordinate about 0 (the landmarks are hip-centred).
   Each frame, as given and swapped, is compared with the track: its last ``history`` frames as assigned (the
   median of the mean joint distances to each, so one half-turned frame between two labellings cannot decide
   alone). Hysteresis: the assignment changes only when the other one is closer by a factor (``ratio``) and by a
   margin (a fraction of the body's size). A new segment starts after ``max_stale`` frames without detection or at
   a change of subject (:func:`subject_changes`, from image points: the detector jumped to another person).
   Offline, each segment takes the labelling most of its frames have (the detector is right more often than
   not); causal, that rule applies from the frame on where the segment's running majority turns.
2. **Flicker and outliers** (:func:`reject_outliers`): a Hampel filter per joint. A position farther from the
   per-coordinate median of its window (``t - w .. t + w``; causal: the ``2w`` frames before t, moved on to t by
   their median step) than ``n_sigma`` times that joint's median distance over the clip (and than ``floor``) is
   rejected (made missing).
3. **Gaps** (:func:`fill_gaps`): a joint missing for at most ``max_gap`` frames between two present frames is
   interpolated linearly; longer gaps stay missing (NaN). Causal: the last position is held for up to ``max_gap``
   frames (there is no later frame to interpolate to).
4. **Smoothing** (:func:`one_euro`): the One Euro filter (Casiez, Roussel and Vogel, CHI 2012): a first-order
   low-pass whose cutoff rises with the joint's speed (little lag in fast motion, strong smoothing at rest).
   Causal: one forward pass. Offline: the mean of a forward and a time-reversed pass; at a fixed cutoff the filter
   is linear with response ``H``, and the mean has the real response ``(H + conj(H)) / 2``: zero phase (no lag).

:class:`RepairReport` says what each stage changed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kinepose.errors import KineposeError, ShapeError

__all__ = ["RepairReport", "detect_swaps", "fill_gaps", "one_euro", "reject_outliers", "repair_sequence",
           "subject_changes", "swap_labels"]  # fmt: skip


def _check_points(points: np.ndarray, name: str = "points") -> np.ndarray:
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 3 or x.shape[-1] not in (2, 3) or x.shape[1] < 1:
        raise ShapeError(f"{name}: expected a (T, J, 2) or (T, J, 3) sequence, got shape {tuple(x.shape)}")
    if np.isinf(x).any():
        raise KineposeError(f"{name}: infinite values (use NaN for a missing joint)")
    return x


def _permutation(left_right: Sequence[tuple[int, int]], num_joints: int) -> np.ndarray:
    perm = np.arange(num_joints)
    for a, b in left_right:
        if not (0 <= a < num_joints and 0 <= b < num_joints) or a == b:
            raise KineposeError(f"left_right: pair ({a}, {b}) is not two distinct joints of {num_joints}")
        perm[a], perm[b] = b, a
    return perm


def swap_labels(points: np.ndarray, left_right: Sequence[tuple[int, int]], depth_axis: int | None = None) -> np.ndarray:
    """Every left joint relabelled as its right partner and back; with ``depth_axis``, that coordinate negated.

    Args:
        points: ``(..., J, C)``.
        left_right: ``(left, right)`` joint index pairs (a layout's or skeleton's ``left_right``).
        depth_axis: the coordinate mirrored about 0 (2 for hip-centred 3D points whose z is depth); None for 2D.

    Returns:
        ``(..., J, C)``. Applying it twice gives the input back.
    """
    x = np.asarray(points, dtype=np.float64)
    out = x[..., _permutation(left_right, x.shape[-2]), :]
    if depth_axis is not None:
        out[..., depth_axis] = -out[..., depth_axis]
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` runs of True in a (T,) bool array."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def detect_swaps(points: np.ndarray, left_right: Sequence[tuple[int, int]], depth_axis: int | None = None,
                 ratio: float = 0.6, history: int = 3, margin: float = 0.25, max_stale: int = 10, min_joints: int = 4,
                 breaks: np.ndarray | None = None, causal: bool = False) -> np.ndarray:  # fmt: skip
    """Frames whose whole-body left/right labels are swapped (see the module docstring).

    Args:
        points: ``(T, J, C)``, NaN = missing.
        left_right: ``(left, right)`` index pairs.
        depth_axis: as in :func:`swap_labels`.
        ratio, margin: hysteresis: the other assignment must be closer to the track than ``ratio`` times this one,
            and by more than ``margin`` times the body's size (the median RMS distance of the joints from their
            centroid): in a profile view the swapped body nearly coincides with itself and noise alone would decide.
        history: the track is the last ``history`` frames as assigned; a candidate's distance to it is the median
            over those frames of its mean joint distance to each.
        max_stale: a frame more than this many frames after the track's last one starts a new segment.
        min_joints: fewer joints in common with a track frame tell nothing.
        breaks: optional ``(T,)`` bool, frames that start a new segment whatever the track says (the detector
            switched to another subject: :func:`subject_changes`).
        causal: decide each frame from earlier frames only.

    Returns:
        ``(T,)`` bool, True where :func:`swap_labels` restores the labels.
    """
    x = _check_points(points)
    if not 0.0 < ratio < 1.0:
        raise KineposeError(f"ratio: expected a number in (0, 1), got {ratio}")
    if history < 1:
        raise KineposeError(f"history: expected >= 1, got {history}")
    T = x.shape[0]
    sw = swap_labels(x, left_right, depth_axis)
    present = np.isfinite(x).all(-1)  # (T, J); a swap moves presence with the labels
    present_sw = np.isfinite(sw).all(-1)
    breaks = _check_breaks(breaks, T)
    gap = margin * _body_size(x)
    swapped = np.zeros(T, bool)
    segment = np.full(T, -1)  # segment of each frame (-1: before any detection)
    voter = np.zeros(T, bool)  # frames with enough joints to have a say
    track: list[int] = []  # the current segment's last frames, as assigned (``swapped`` says how)
    state, seg = False, -1

    def distance(t: int, as_swapped: bool) -> float:
        c, pc = (sw[t], present_sw[t]) if as_swapped else (x[t], present[t])
        d = []
        for s in track:
            r, pr = (sw[s], present_sw[s]) if swapped[s] else (x[s], present[s])
            ok = pc & pr
            if ok.sum() >= min_joints:
                d.append(np.linalg.norm(c[ok] - r[ok], axis=-1).mean())
        return float(np.median(d)) if d else math.nan

    for t in range(T):
        if present[t].sum() >= min_joints:
            if not track or t - track[-1] > max_stale or breaks[t]:  # nothing recent, or another subject
                seg, state, track = seg + 1, False, []
            else:
                keep, change = distance(t, state), distance(t, not state)
                if change < ratio * keep and keep - change > gap:  # NaN compares False: keep
                    state = not state
            track = [*track[1 - history :], t] if history > 1 else [t]
            voter[t] = True
        swapped[t], segment[t] = state, seg
    for s in range(seg + 1):  # each segment takes the labelling most of its frames have
        frames, votes = segment == s, voter & (segment == s)
        if causal:  # from the frame on where the running majority turns
            flip = np.cumsum(swapped & votes) * 2 > np.cumsum(votes)
            swapped[frames] ^= flip[frames]
        elif swapped[votes].sum() * 2 > votes.sum():
            swapped[frames] = ~swapped[frames]
    return swapped


def _check_breaks(breaks: np.ndarray | None, T: int) -> np.ndarray:
    if breaks is None:
        return np.zeros(T, bool)
    b = np.asarray(breaks)
    if b.shape != (T,) or b.dtype != bool:
        raise ShapeError(f"breaks: expected ({T},) booleans, got {b.dtype} {b.shape}")
    return b


def subject_changes(points: np.ndarray, threshold: float = 3.0) -> np.ndarray:
    """Frames where the detector jumped to another subject: the centroid of the present joints moved more than
    ``threshold`` times the body's size (RMS distance of the joints from their centroid) since the last frame
    with any joint. Meant for image points (in hip-centred world points the centroid never moves).

    Args:
        points: ``(T, J, C)``, NaN = missing; e.g. the image positions of the torso's joints.
        threshold: jump, in body sizes.

    Returns:
        ``(T,)`` bool.
    """
    x = _check_points(points)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames with no joint
        c = np.nanmean(x, axis=1)  # (T, C)
        size = np.sqrt(np.nanmean(((x - c[:, None]) ** 2).sum(-1), axis=1))  # (T,)
    out = np.zeros(x.shape[0], bool)
    seen = np.flatnonzero(np.isfinite(c).all(-1) & (size > 0))
    if len(seen) > 1:
        step = np.linalg.norm(c[seen[1:]] - c[seen[:-1]], axis=-1)
        out[seen[1:]] = step > threshold * np.maximum(size[seen[1:]], size[seen[:-1]])
    return out


def _body_size(x: np.ndarray) -> float:
    """The median over frames of the RMS distance of the joints from their centroid (NaN: nothing present)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames with no joint
        c = np.nanmean(x, axis=1, keepdims=True)
        return float(np.nanmedian(np.sqrt(np.nanmean(((x - c) ** 2).sum(-1), axis=1))))


def _sliding(x: np.ndarray, before: int, after: int) -> np.ndarray:
    """(T, J, C, before + after + 1) windows of frames ``t - before .. t + after``, NaN past the ends."""
    T = x.shape[0]
    pad = np.full((before + T + after, *x.shape[1:]), np.nan)
    pad[before : before + T] = x
    return np.lib.stride_tricks.sliding_window_view(pad, before + after + 1, axis=0)


def _reference(x: np.ndarray, half: int, causal: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each position's robust reference and the number of present frames behind it.

    Offline: the per-coordinate median of frames ``t - w .. t + w``. Causal: the median of the ``2w`` frames before
    t moved on by the median of their frame-to-frame steps to t (a median alone would lag behind a moving joint).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows: NaN is the answer
        if not causal:
            win = _sliding(x, half, half)  # (T, J, C, W)
            return np.nanmedian(win, axis=-1), np.isfinite(win[..., 0, :]).sum(-1)
        past = _sliding(x, 2 * half, 0)[..., :-1]  # (T, J, C, 2w): frames t - 2w .. t - 1
        steps = np.diff(_sliding(x, 2 * half + 1, 0)[..., :-1], axis=-1)  # (T, J, C, 2w)
        ref = np.nanmedian(past, axis=-1) + (half + 0.5) * np.nanmedian(steps, axis=-1)
        return ref, np.isfinite(past[..., 0, :]).sum(-1)


def reject_outliers(points: np.ndarray, window: int = 3, n_sigma: float = 6.0, floor: float | None = None,
                    causal: bool = False) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Hampel filter per joint: positions far from their window's median become missing.

    Args:
        points: ``(T, J, C)``, NaN = missing.
        window: half-width ``w`` of the window: offline the median of the ``2w + 1`` frames centred on t; causal
            the median of the ``2w`` frames before t moved on to t by the median of their steps.
        n_sigma: threshold in units of the joint's median distance from its window median over the clip.
        floor: smallest distance ever rejected, in the points' units; default 10 % of the body's size (the median
            RMS distance of the joints from their centroid).
        causal: windows end at the frame judged.

    Returns:
        ``(cleaned, rejected)``: ``(T, J, C)`` with rejected positions NaN, and the ``(T, J)`` bool mask.
    """
    x = _check_points(points)
    if window < 1:
        raise KineposeError(f"window: expected >= 1, got {window}")
    ref, count = _reference(x, window, causal)
    dist = np.linalg.norm(x - ref, axis=-1)  # (T, J), NaN where either is missing
    judged = np.isfinite(dist) & (count >= window + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scale = np.nanmedian(np.where(judged, dist, np.nan), axis=0)  # (J,)
        if floor is None:
            size = _body_size(x)
            floor = 0.1 * size if np.isfinite(size) else 0.0
    thr = np.maximum(n_sigma * np.nan_to_num(scale, nan=np.inf), floor)
    rejected = judged & (dist > thr)
    out = x.copy()
    out[rejected] = np.nan
    return out, rejected


def fill_gaps(points: np.ndarray, max_gap: int = 10, causal: bool = False,
              breaks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Fill short runs of missing frames per joint; leave longer ones missing.

    Args:
        points: ``(T, J, C)``, NaN = missing.
        max_gap: the longest run filled, frames (0 fills nothing).
        causal: hold the last present position for up to ``max_gap`` frames instead of interpolating.
        breaks: optional ``(T,)`` bool, frames of another subject than the frame before (:func:`subject_changes`):
            no gap is interpolated into one.

    Returns:
        ``(filled, mask)``: ``(T, J, C)`` and the ``(T, J)`` bool mask of the positions filled.
    """
    x = _check_points(points)
    if max_gap < 0:
        raise KineposeError(f"max_gap: expected >= 0, got {max_gap}")
    out, mask = x.copy(), np.zeros(x.shape[:2], bool)
    T = x.shape[0]
    new = np.cumsum(_check_breaks(breaks, T))  # (T,) subject number of each frame
    for j in range(x.shape[1]):
        for a, b in _runs(~np.isfinite(x[:, j]).all(-1)):
            if a == 0 or (not causal and (b == T or b - a > max_gap or new[b] != new[a - 1])):
                continue  # nothing before it, nothing after it, too long, or another subject after it
            if causal:
                b = min(b, a + max_gap)
                out[a:b, j] = x[a - 1, j]
            else:
                w = (np.arange(a, b) - (a - 1)) / (b - (a - 1))  # (n,) from the last present frame
                out[a:b, j] = (1 - w)[:, None] * x[a - 1, j] + w[:, None] * x[b, j]
            mask[a:b, j] = True
    return out, mask


def _alpha(cutoff: np.ndarray | float, fps: float) -> np.ndarray | float:
    """The exponential smoother's weight for a first-order low-pass at ``cutoff`` Hz sampled at ``fps``."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau * fps)


def _one_euro_pass(x: np.ndarray, fps: float, min_cutoff: float, beta: float, d_cutoff: float) -> np.ndarray:
    out = np.full_like(x, np.nan)
    prev = np.full(x.shape[1:], np.nan)  # (J, C) last filtered position; NaN = no state (start or after a gap)
    dprev = np.zeros(x.shape[1:])
    a_d = _alpha(d_cutoff, fps)
    for t in range(x.shape[0]):
        cur = x[t]
        new = np.isfinite(cur).all(-1) & ~np.isfinite(prev).all(-1)  # (J,) start, or restart after a gap
        prev[new], dprev[new] = cur[new], 0.0
        d = (cur - prev) * fps  # (J, C) units per second
        dhat = a_d * d + (1 - a_d) * dprev
        a = _alpha(min_cutoff + beta * np.linalg.norm(dhat, axis=-1), fps)[:, None]  # (J, 1)
        est = a * cur + (1 - a) * prev
        out[t] = est
        prev, dprev = est, np.where(np.isfinite(dhat), dhat, 0.0)
    return out


def one_euro(points: np.ndarray, fps: float, min_cutoff: float = 1.5, beta: float = 1.0, d_cutoff: float = 1.0,
             causal: bool = False) -> np.ndarray:  # fmt: skip
    """One Euro filter of ``(T, J, C)`` trajectories; missing positions stay missing and restart the filter.

    Args:
        points: ``(T, J, C)``, NaN = missing.
        fps: frames per second.
        min_cutoff: cutoff at rest, Hz.
        beta: cutoff increase per unit of speed (Hz per m/s for metres); the speed is each joint's vector speed,
            so the filter does not depend on the axes.
        d_cutoff: cutoff of the speed estimate, Hz.
        causal: one forward pass (real time); else the zero-phase mean of a forward and a backward pass.

    Returns:
        ``(T, J, C)`` smoothed.
    """
    x = _check_points(points)
    if not (math.isfinite(fps) and fps > 0):
        raise KineposeError(f"fps: expected a positive frame rate, got {fps}")
    if not (min_cutoff > 0 and beta >= 0 and d_cutoff > 0):
        raise KineposeError(f"one_euro: expected min_cutoff > 0, beta >= 0, d_cutoff > 0, got {min_cutoff}, "
                            f"{beta}, {d_cutoff}")  # fmt: skip
    fwd = _one_euro_pass(x, fps, min_cutoff, beta, d_cutoff)
    if causal:
        return fwd
    bwd = _one_euro_pass(x[::-1], fps, min_cutoff, beta, d_cutoff)[::-1]
    return 0.5 * (fwd + bwd)


@dataclass
class RepairReport:
    """What :func:`repair_sequence` changed.

    Attributes:
        swapped: ``(T,)`` bool, frames whose left/right labels were swapped back.
        outliers: ``(T, J)`` bool, positions rejected as flicker or outliers.
        filled: ``(T, J)`` bool, positions filled in a short gap.
        missing: ``(T, J)`` bool, positions still missing after the repair (long gaps, undetected frames).
        subject_changes: ``(T,)`` bool, frames where the detector moved to another subject (the ``breaks`` given).
        causal: whether every stage used past frames only.
        smoothing: the smoother, in words ("none" when off).
    """

    swapped: np.ndarray
    outliers: np.ndarray
    filled: np.ndarray
    missing: np.ndarray
    subject_changes: np.ndarray
    causal: bool
    smoothing: str

    @property
    def swap_runs(self) -> list[tuple[int, int]]:
        """``[start, stop)`` frame runs that were swapped; their number is :attr:`swaps_repaired`."""
        return _runs(self.swapped)

    @property
    def swaps_repaired(self) -> int:
        return len(self.swap_runs)

    def summary(self) -> dict:
        """Counts for printing or JSON."""
        return {"frames": int(self.swapped.shape[0]), "swaps_repaired": self.swaps_repaired,
                "swapped_frames": int(self.swapped.sum()), "swap_runs": self.swap_runs,
                "outliers_rejected": int(self.outliers.sum()), "positions_filled": int(self.filled.sum()),
                "positions_missing": int(self.missing.sum()),
                "subject_changes": [int(t) for t in np.flatnonzero(self.subject_changes)], "causal": self.causal,
                "smoothing": self.smoothing}  # fmt: skip


def repair_sequence(points: np.ndarray, left_right: Sequence[tuple[int, int]], fps: float,
                    depth_axis: int | None = None, causal: bool = False, max_gap: int = 10, smooth: bool = True,
                    min_cutoff: float = 1.5, beta: float = 1.0, outlier_window: int = 3, outlier_sigma: float = 6.0,
                    breaks: np.ndarray | None = None) -> tuple[np.ndarray, RepairReport]:  # fmt: skip
    """Swaps, outliers, gaps, then smoothing (the module docstring), with a report.

    Args:
        points: ``(T, J, C)`` detected points, NaN = missing.
        left_right: ``(left, right)`` index pairs of the points' layout.
        fps: frames per second (the smoother's time base).
        depth_axis: the coordinate a 3D swap mirrors (see :func:`swap_labels`); None for 2D points.
        causal: past frames only, in every stage.
        max_gap: longest gap filled, frames.
        smooth: run the One Euro filter (``min_cutoff`` Hz, ``beta`` per unit/s).
        outlier_window, outlier_sigma: :func:`reject_outliers`'s ``window`` and ``n_sigma``.
        breaks: optional ``(T,)`` bool, frames where the detector moved to another subject (:func:`subject_changes`
            on image points): swap tracking restarts there and no gap is filled across.

    Returns:
        ``(repaired, report)``: ``(T, J, C)`` points and a :class:`RepairReport`.
    """
    x = _check_points(points)
    breaks = _check_breaks(breaks, x.shape[0])
    swapped = detect_swaps(x, left_right, depth_axis=depth_axis, breaks=breaks, causal=causal)
    x = np.where(swapped[:, None, None], swap_labels(x, left_right, depth_axis), x)
    x, outliers = reject_outliers(x, window=outlier_window, n_sigma=outlier_sigma, causal=causal)
    x, filled = fill_gaps(x, max_gap=max_gap, causal=causal, breaks=breaks)
    how = "none"
    if smooth:
        x = one_euro(x, fps, min_cutoff=min_cutoff, beta=beta, causal=causal)
        mode = "causal, forward" if causal else "offline, zero-phase forward-backward mean"
        how = f"One Euro ({mode}; min_cutoff {min_cutoff:g} Hz, beta {beta:g})"
    missing = ~np.isfinite(x).all(-1)
    return x, RepairReport(swapped, outliers, filled, missing, breaks.copy(), causal, how)
