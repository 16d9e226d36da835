"""Head-pose metrics: per-angle errors with wrap-around and a report (MAE, geodesic error, yaw bins, detection).

Angles are (yaw, pitch, roll) triplets, shape ``(..., 3)``, in kinepose's convention
(:mod:`kinepose.geometry.headpose`) unless a ``convention`` argument says otherwise; radians unless
``degrees_in=True``. The report is in degrees. Results are numpy float64 (and plain floats in the report).

The per-angle MAE does not depend on the sign convention (flipping a sign flips both angles), but the geodesic
error and the yaw bins do: pass ``convention="hopenet"`` for Hopenet / FSA-Net / 6DRepNet triplets.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from kinepose.errors import KineposeError, NonFiniteError, ShapeError
from kinepose.geometry.headpose import convert_ypr, ypr_to_matrix
from kinepose.geometry.rotations import geodesic_distance

__all__ = ["angle_error", "headpose_report"]

ArrayLike = torch.Tensor | np.ndarray | Sequence

#: Signed target-yaw bin edges (degrees) of :func:`headpose_report`.
DEFAULT_YAW_BINS = (-90.0, -60.0, -30.0, 0.0, 30.0, 60.0, 90.0)


def _f64(x: ArrayLike, name: str) -> np.ndarray:
    """``x`` as a float64 numpy array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise KineposeError(f"{name}: cannot convert {type(x).__name__} to a float array ({exc})") from exc
    return a


def _first_bad(a: np.ndarray, bad: np.ndarray, name: str, what: str) -> NonFiniteError:
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    return NonFiniteError(f"{name}: {int(bad.sum())} {what} value(s), first at index {idx} (shape {a.shape})")


def angle_error(pred: ArrayLike, target: ArrayLike, degrees_in: bool = False) -> np.ndarray:
    """Absolute angle differences with wrap-around, element by element (359 vs 1 degree is 2 degrees).

    Args:
        pred, target: angles of equal shape, e.g. (..., 3) (yaw, pitch, roll); radians, or degrees if
            ``degrees_in``. Both finite.
        degrees_in: the unit of the inputs, which is also the unit of the result.
    Returns:
        float64 array of the inputs' shape, in [0, 180] degrees or [0, pi] radians.
    """
    p, t = _f64(pred, "pred"), _f64(target, "target")
    if p.shape != t.shape:
        raise ShapeError(f"pred has shape {p.shape} but target has shape {t.shape}")
    for a, name in ((p, "pred"), (t, "target")):
        if not np.isfinite(a).all():
            raise _first_bad(a, ~np.isfinite(a), name, "non-finite")
    half = 180.0 if degrees_in else np.pi
    d = np.remainder(p - t + half, 2 * half) - half  # [-half, half)
    return np.abs(d)


def _geodesic_deg(pred_rad: np.ndarray, target_rad: np.ndarray) -> np.ndarray:
    """(N,) angles (degrees) of the relative rotations of (N, 3) kinepose triplets (radians)."""
    R1 = ypr_to_matrix(torch.from_numpy(pred_rad))
    R2 = ypr_to_matrix(torch.from_numpy(target_rad))
    return np.rad2deg(geodesic_distance(R1, R2).numpy())


def _summary(err_deg: np.ndarray, geo_deg: np.ndarray) -> dict[str, float | None]:
    """MAE per angle, their mean, and the geodesic mean/median; None for no frames."""
    if len(err_deg) == 0:
        return dict.fromkeys(("mae_yaw", "mae_pitch", "mae_roll", "mae_mean", "geodesic_mean", "geodesic_median"))
    mae = err_deg.mean(0)  # (3,)
    return {
        "mae_yaw": float(mae[0]),
        "mae_pitch": float(mae[1]),
        "mae_roll": float(mae[2]),
        "mae_mean": float(mae.mean()),
        "geodesic_mean": float(geo_deg.mean()),
        "geodesic_median": float(np.median(geo_deg)),
    }


def headpose_report(
    pred_ypr: ArrayLike,
    target_ypr: ArrayLike,
    yaw_bins: Sequence[float] = DEFAULT_YAW_BINS,
    *,
    degrees_in: bool = False,
    convention: str = "kinepose",
) -> dict[str, Any]:
    """Head-pose accuracy: MAE per angle, geodesic error, per-yaw-bin errors and the detection rate (degrees).

    A prediction row holding NaN means "no face found": it counts in ``count`` but not in ``n_detected``,
    and every error is computed over the detected frames only (``errors_over`` says so). Infinite
    predictions and non-finite targets are errors.

    Frames are binned by their **signed** target yaw (after conversion to kinepose's convention, so
    ``yaw > 0`` = turned to the subject's left): bin ``i`` is ``[edges[i], edges[i + 1])``, the last one
    closed; targets outside every bin are counted in ``n_outside_bins``.

    Args:
        pred_ypr: (..., 3) predicted (yaw, pitch, roll); rows with NaN = not detected.
        target_ypr: (..., 3) ground truth, same shape, finite.
        yaw_bins: strictly increasing bin edges in degrees (at least two).
        degrees_in: the inputs are degrees (default radians).
        convention: the inputs' convention (:data:`kinepose.geometry.headpose.CONVENTIONS`).
    Returns:
        A JSON-ready dict: ``count``, ``n_detected``, ``detected`` (fraction), ``errors_over``, ``units``,
        ``mae_yaw``, ``mae_pitch``, ``mae_roll``, ``mae_mean``, ``geodesic_mean``, ``geodesic_median``
        (None when nothing was detected), ``bins`` (a list of dicts ``lo``, ``hi``, ``count``, ``n_detected``,
        ``mae_mean``, ``geodesic_mean``) and ``n_outside_bins``.
    """
    p, t = _f64(pred_ypr, "pred_ypr"), _f64(target_ypr, "target_ypr")
    if p.ndim == 0 or p.shape[-1] != 3:
        raise ShapeError(f"pred_ypr: expected shape (..., 3) (yaw, pitch, roll), got {p.shape}")
    if p.shape != t.shape:
        raise ShapeError(f"pred_ypr has shape {p.shape} but target_ypr has shape {t.shape}")
    p, t = p.reshape(-1, 3), t.reshape(-1, 3)  # (N, 3)
    if len(t) == 0:
        raise ShapeError("target_ypr: empty input; a report needs at least one frame")
    if not np.isfinite(t).all():
        raise _first_bad(t, ~np.isfinite(t), "target_ypr", "non-finite")
    if np.isinf(p).any():
        raise _first_bad(p, np.isinf(p), "pred_ypr", "infinite (use NaN for 'no face found')")
    edges = np.asarray(yaw_bins, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or not (np.diff(edges) > 0).all():
        raise KineposeError(f"yaw_bins: expected at least two strictly increasing edges (degrees), got {yaw_bins}")

    scale = np.pi / 180.0 if degrees_in else 1.0
    det = ~np.isnan(p).any(-1)  # (N,)
    partial = np.isnan(p).any(-1) & ~np.isnan(p).all(-1)
    if partial.any():
        i = int(np.flatnonzero(partial)[0])
        raise KineposeError(f"pred_ypr: row {i} is partly NaN ({p[i].tolist()}); a frame without a face is NaN in all "
                            "three angles")  # fmt: skip
    p = convert_ypr(np.where(det[:, None], p, 0.0) * scale, convention, "kinepose")  # radians, NaN rows zeroed
    t = convert_ypr(t * scale, convention, "kinepose")
    err = np.rad2deg(angle_error(p, t))  # (N, 3) degrees
    geo = _geodesic_deg(p, t)  # (N,) degrees

    n, n_det = len(t), int(det.sum())
    report: dict[str, Any] = {
        "count": n,
        "n_detected": n_det,
        "detected": n_det / n,
        "errors_over": "detected frames only" if n_det < n else "all frames",
        "units": "degrees",
        **_summary(err[det], geo[det]),
    }
    yaw_t = np.rad2deg(t[:, 0])
    bins, inside = [], np.zeros(n, dtype=bool)
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        last = i == len(edges) - 2
        in_bin = (yaw_t >= lo) & ((yaw_t <= hi) if last else (yaw_t < hi))
        inside |= in_bin
        m = in_bin & det
        s = _summary(err[m], geo[m])
        bins.append(
            {
                "lo": float(lo),
                "hi": float(hi),
                "count": int(in_bin.sum()),
                "n_detected": int(m.sum()),
                "mae_mean": s["mae_mean"],
                "geodesic_mean": s["geodesic_mean"],
            }
        )
    report["bins"] = bins
    report["n_outside_bins"] = int((~inside).sum())
    return report
