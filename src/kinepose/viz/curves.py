"""Curves and maps: training curves of runs, benchmark errors against noise and per joint, attention maps.

Inputs are the files the project writes: a run folder's Lightning CSV log (``logs/csv/version_N/metrics.csv``)
and the accuracy benchmark's JSON (``benchmarks/results/ik_accuracy.json``: ``skeletons -> NAME -> rows ->
ROW -> reports -> NOISE -> overall`` with ``geo_deg``, ``mpjpe_mm`` and ``per_joint_deg``).
"""

from __future__ import annotations

import csv
import glob
import json
import math
import os
import re
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: never open a window

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from kinepose.errors import FileFormatError
from kinepose.viz.skeleton import _image_format, save_figure

__all__ = [
    "load_benchmark",
    "plot_attention",
    "plot_error_vs_noise",
    "plot_per_joint_errors",
    "plot_training_curves",
    "read_metrics_csv",
]

METRIC_LABELS = {
    "geo_deg": "geodesic error, all joints (deg)",
    "geo_observable_deg": "geodesic error, observable joints (deg)",
    "geo_unobservable_deg": "geodesic error, unobservable joints (deg)",
    "mpjpe_mm": "MPJPE of FK(output) (mm)",
    "accel_mm": "acceleration error (mm)",
    "val/geo_deg": "geodesic error (deg)",
    "val/mpjpe_mm": "MPJPE of FK(output) (mm)",
    "train/total": "loss (val solid, train dashed)",
}


# ---------------------------------------------------------------------------------------------- training curves
def _metrics_file(run: str | os.PathLike) -> str:
    """The CSV log of a run: the file itself, RUN/metrics.csv, or the newest RUN/logs/csv/version_N/metrics.csv."""
    run = os.fspath(run)
    if os.path.isfile(run):
        return run
    if not os.path.isdir(run):
        raise ValueError(f"{run}: no such run folder or metrics.csv")
    if os.path.isfile(os.path.join(run, "metrics.csv")):
        return os.path.join(run, "metrics.csv")
    found = glob.glob(os.path.join(run, "logs", "csv", "version_*", "metrics.csv"))
    if not found:
        raise ValueError(f"{run}: no metrics.csv (looked in {run}/metrics.csv and {run}/logs/csv/version_*/)")

    def version(p: str) -> int:
        m = re.search(r"version_(\d+)", p)
        return int(m.group(1)) if m else -1

    return max(found, key=version)


def _run_label(run: str | os.PathLike) -> str:
    """The run folder's name, also for a path to the CSV log inside it."""
    path = os.path.normpath(os.path.abspath(os.fspath(run)))
    if os.path.isdir(path):
        return os.path.basename(path)
    parts = path.split(os.sep)
    if "logs" in parts[:-1]:
        return parts[len(parts) - 1 - parts[::-1].index("logs") - 1]
    return os.path.basename(os.path.dirname(path)) or os.path.basename(path)


def read_metrics_csv(run: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-epoch values of every logged metric of a run.

    Lightning's CSV logger writes sparse rows (training and validation values on separate rows); for each
    metric and epoch this keeps the last non-empty value.

    Args:
        run: a run folder, or a metrics.csv.

    Returns:
        ``{metric: (epochs (E,), values (E,))}``, epochs ascending.
    """
    path = _metrics_file(run)
    per: dict[str, dict[int, float]] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "epoch" not in reader.fieldnames:
                raise FileFormatError("expected a CSV header with an 'epoch' column", path, 1)
            for line, row in enumerate(reader, start=2):
                if not (row.get("epoch") or "").strip():
                    continue
                try:
                    epoch = int(float(row["epoch"]))
                    for key, value in row.items():
                        if key not in (None, "epoch", "step") and value not in (None, ""):
                            per.setdefault(key, {})[epoch] = float(value)
                except ValueError as exc:
                    raise FileFormatError(f"not a number ({exc})", path, line) from exc
    except UnicodeDecodeError as exc:
        raise FileFormatError("not a UTF-8 text file", path) from exc
    return {k: (np.array(sorted(v)), np.array([v[e] for e in sorted(v)])) for k, v in per.items()}


def plot_training_curves(
    run_dirs: Sequence[str | os.PathLike],
    path: str | os.PathLike,
    metrics: Sequence[str] = ("val/geo_deg", "val/mpjpe_mm"),
    train_metric: str | None = "train/total",
) -> None:
    """Training curves of one or more runs, per epoch: one panel per metric, one colour per run.

    Training against validation: the first panel is ``train_metric`` (dashed) with the validation loss
    ``val/loss`` (solid, same colour) where the run logged it. Then one panel per entry of ``metrics``; for a
    validation metric ``val/X``, the run's training value ``train/X`` (if logged) is drawn dashed beside it.

    Args:
        run_dirs: run folders (or their metrics.csv); lines are labelled with the run folder's name.
        path: output image (.png, .pdf or .svg).
        metrics: validation metrics, each a column of the CSV log.
        train_metric: the training loss column, or None to leave that panel out.
    """
    _image_format(path)
    if not run_dirs:
        raise ValueError("run_dirs: give at least one run folder")
    runs = [(_run_label(r), read_metrics_csv(r)) for r in run_dirs]
    panels = ([train_metric] if train_metric else []) + list(metrics)
    if not panels:
        raise ValueError("metrics: nothing to plot")
    logged = sorted({k for _, m in runs for k in m})
    for name in panels:
        if not any(name in m for _, m in runs):
            raise ValueError(f"metric {name!r} is in none of the runs' logs; logged: {', '.join(logged)}")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
    for ax, name in zip(axes[0], panels, strict=True):
        for i, (label, m) in enumerate(runs):
            color = f"C{i % 10}"
            if name == train_metric:
                val, train = "val/loss", name
            else:
                val, train = name, "train/" + name[4:] if name.startswith("val/") else None
            if val in m:
                ax.plot(*m[val], marker="o", ms=3, color=color, label=f"{label} val" if train in m else label)
            if train in m:
                ax.plot(*m[train], ls="--", marker="s", ms=3, color=color, alpha=0.8, label=f"{label} train")
        ax.set_xlabel("epoch")
        ax.set_ylabel(METRIC_LABELS.get(name, name))
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


# ---------------------------------------------------------------------------------------------- benchmark plots
def load_benchmark(benchmark_json: str | os.PathLike | dict) -> dict:
    """The accuracy benchmark's results: a dict, or read from a JSON file."""
    if isinstance(benchmark_json, dict):
        return benchmark_json
    path = os.fspath(benchmark_json)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such benchmark JSON file")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"not a JSON file ({exc})", path, getattr(exc, "lineno", None)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("skeletons"), dict):
        raise FileFormatError("expected a benchmark JSON with a 'skeletons' object (benchmarks/ik_accuracy.py)", path)
    return data


def _rows(data: dict, skeleton: str, rows: Sequence[str] | None) -> dict[str, dict[float, dict]]:
    """``{row: {noise_mm: overall}}`` for the chosen rows of one skeleton, rows without reports left out."""
    skeletons = data["skeletons"]
    if skeleton not in skeletons:
        raise ValueError(f"skeleton {skeleton!r} is not in the benchmark; it has: {', '.join(skeletons)}")
    all_rows = skeletons[skeleton].get("rows", {})
    names = list(all_rows) if rows is None else list(rows)
    unknown = [r for r in names if r not in all_rows]
    if unknown:
        raise ValueError(f"rows: unknown {', '.join(map(repr, unknown))}; the benchmark has: {', '.join(all_rows)}")
    out = {}
    for name in names:
        reports = all_rows[name].get("reports") or {}
        if reports:
            out[name] = {float(k): r["overall"] for k, r in sorted(reports.items(), key=lambda kv: float(kv[0]))}
    if not out:
        raise ValueError(f"skeleton {skeleton!r}: none of the rows has reports")
    return out


_TAB20_NO_GREY = [k for k in range(20) if k not in (14, 15)]  # tab20's 15th and 16th colours are greys


def _row_color(i: int, count: int) -> Any:
    """Colour of row ``i`` of ``count``: matplotlib's default cycle up to 10 rows, then tab20 without its greys
    (grey reads as "disabled" or "baseline", which a learned row is not)."""
    if count <= 10:
        return f"C{i % 10}"
    return plt.cm.tab20(_TAB20_NO_GREY[i % len(_TAB20_NO_GREY)])


def _is_learned(data: dict, skeleton: str, row: str) -> bool:
    return bool(data["skeletons"][skeleton]["rows"][row].get("learned", False))


def plot_error_vs_noise(
    benchmark_json: str | os.PathLike | dict,
    path: str | os.PathLike,
    skeleton: str = "humanoid",
    metric: str = "geo_deg",
    rows: Sequence[str] | None = None,
) -> None:
    """Error against joint noise, one line per benchmark row (learned solid, analytic dashed).

    Args:
        benchmark_json: the benchmark's JSON file, or its loaded dict.
        path: output image (.png, .pdf or .svg).
        skeleton: which skeleton's table ("humanoid", "hand").
        metric: a key of each report's ``overall``: geo_deg, mpjpe_mm, geo_observable_deg ...
        rows: the rows to draw (default all).
    """
    _image_format(path)
    data = load_benchmark(benchmark_json)
    table = _rows(data, skeleton, rows)
    available = sorted(k for o in table.values() for n in o.values() for k, v in n.items()
                       if isinstance(v, int | float))  # fmt: skip
    if metric not in available:
        raise ValueError(f"metric {metric!r} is not in the reports; choose from {', '.join(sorted(set(available)))}")
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for i, (name, by_noise) in enumerate(table.items()):
        xs = [n for n, o in by_noise.items() if metric in o]
        ys = [by_noise[n][metric] for n in xs]
        ls = "-" if _is_learned(data, skeleton, name) else "--"
        color = _row_color(i, len(table))
        ax.plot(xs, ys, ls=ls, marker="o", ms=4, color=color, label=name)
    ax.set_xlabel("joint noise, std per coordinate (mm)")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(f"{skeleton}: {metric} against input noise (solid: learned, dashed: analytic)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    save_figure(fig, path)


def plot_per_joint_errors(
    benchmark_json: str | os.PathLike | dict,
    path: str | os.PathLike,
    skeleton: str = "humanoid",
    noise_mm: float = 10,
    rows: Sequence[str] | None = None,
) -> None:
    """Per-joint geodesic error (deg) at one noise level: grouped bars, one group per joint, one bar per row.

    Args:
        benchmark_json: the benchmark's JSON file, or its loaded dict.
        path: output image (.png, .pdf or .svg).
        skeleton: which skeleton's table.
        noise_mm: the noise level, one of the benchmark's.
        rows: the rows to draw (default all).
    """
    _image_format(path)
    data = load_benchmark(benchmark_json)
    table = _rows(data, skeleton, rows)
    levels = sorted({n for o in table.values() for n in o})
    picked = {name: o[float(noise_mm)].get("per_joint_deg") for name, o in table.items() if float(noise_mm) in o}
    picked = {k: v for k, v in picked.items() if v}
    if not picked:
        raise ValueError(
            f"noise_mm: no per-joint errors at {noise_mm:g} mm; levels: {', '.join(f'{n:g}' for n in levels)}"
        )
    joints = list(next(iter(picked.values())))
    width = 0.8 / len(picked)
    x = np.arange(len(joints))
    fig, ax = plt.subplots(figsize=(max(8.0, 0.6 * len(joints) * max(1, len(picked) / 4)), 4.5))
    for i, (name, per_joint) in enumerate(picked.items()):
        ys = [per_joint.get(j, math.nan) for j in joints]
        color = _row_color(i, len(picked))
        ax.bar(x - 0.4 + width * (i + 0.5), ys, width, color=color, label=name)
    ax.set_xticks(x, joints, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("geodesic error (deg)")
    ax.set_title(f"{skeleton}: per-joint error at {noise_mm:g} mm joint noise", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    save_figure(fig, path)


# ---------------------------------------------------------------------------------------------- attention maps
def plot_attention(
    attention: Sequence[Any],
    path: str | os.PathLike,
    title: str | None = None,
    labels: Sequence[str] | None = None,
    axis: str = "frame",
    per_head: bool = False,
    query: int | None = None,
) -> None:
    """Attention maps averaged over the batch (e.g. every window of a clip): per layer, optionally per head.

    Args:
        attention: one tensor per layer, (B, heads, N, N), (heads, N, N) or (N, N) (queries, keys), as in
            ``ModelOutput.attention``.
        path: output image (.png, .pdf or .svg).
        title: figure title.
        labels: N tick labels (joint names, frame offsets); indices when None.
        axis: what the N tokens are, for the axis labels ("frame", "joint").
        per_head: one row per layer with a panel per head, then their mean; otherwise one panel per layer
            (mean over heads).
        query: a query token (e.g. the frame a sequence model predicts, ``model.target_index``): adds, per
            layer, the weights that token gives every key, one line per head and their mean (black). This is
            "which frames the predicted frame attends to".
    """
    _image_format(path)
    if not attention:
        raise ValueError("attention: empty list (the model returned no attention maps)")
    maps = []  # per layer (heads, N, N), mean over the batch
    for i, a in enumerate(attention):
        arr = np.asarray(a.detach().float().cpu().numpy() if hasattr(a, "detach") else a, dtype=np.float64)
        if arr.ndim < 2 or arr.ndim > 4 or arr.shape[-1] != arr.shape[-2]:
            raise ValueError(f"attention[{i}]: expected (B, heads, N, N), (heads, N, N) or (N, N), got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"attention[{i}]: contains NaN or infinite values")
        maps.append(arr.mean(0) if arr.ndim == 4 else arr.reshape(-1, *arr.shape[-2:]))
    n = maps[0].shape[-1]
    if any(m.shape[-1] != n for m in maps):
        raise ValueError(f"attention: layers have different token counts {[m.shape[-1] for m in maps]}")
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels: {len(labels)} names for {n} tokens")
    if query is not None and not -n <= query < n:
        raise ValueError(f"query: token {query} is outside 0..{n - 1}")
    ticks = np.arange(n)

    def heatmap(ax: Axes, m: np.ndarray, name: str) -> None:
        im = ax.imshow(m, cmap="viridis", vmin=0.0, aspect="equal", interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(f"key {axis}")
        ax.set_ylabel(f"query {axis}")
        if labels is not None:
            ax.set_xticks(ticks, labels, rotation=90, fontsize=6)
            ax.set_yticks(ticks, labels, fontsize=6)
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)

    if not per_head and query is None:  # a compact grid, one mean map per layer
        cols = min(len(maps), 4)
        rows = math.ceil(len(maps) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols + 0.8, 3.6 * rows), squeeze=False)
        for k, ax in enumerate(axes.flat):
            if k < len(maps):
                heatmap(ax, maps[k].mean(0), f"layer {k}, mean of {maps[k].shape[0]} heads")
            else:
                ax.set_visible(False)
    else:  # one row per layer
        heads = max(m.shape[0] for m in maps)
        cols = (heads + 1 if per_head else 1) + (query is not None)
        fig, axes = plt.subplots(len(maps), cols, figsize=(3.6 * cols + 0.8, 3.4 * len(maps)), squeeze=False)
        for k, m in enumerate(maps):
            row = list(axes[k])
            if per_head:
                for h in range(heads):
                    ax = row.pop(0)
                    if h < m.shape[0]:
                        heatmap(ax, m[h], f"layer {k}, head {h}")
                    else:
                        ax.set_visible(False)
            heatmap(row.pop(0), m.mean(0), f"layer {k}, mean of {m.shape[0]} heads")
            if query is not None:
                ax = row.pop(0)
                for h in range(m.shape[0]):
                    ax.plot(ticks, m[h, query], marker="o", ms=3, lw=1, alpha=0.7, label=f"head {h}")
                ax.plot(ticks, m[:, query].mean(0), color="k", lw=2, marker="o", ms=4, label="mean")
                q = labels[query] if labels is not None else str(query % n)
                ax.set_title(f"layer {k}: query {axis} {q} attends to", fontsize=9)
                ax.set_xlabel(f"key {axis}")
                ax.set_ylabel("attention weight")
                if labels is not None:
                    ax.set_xticks(ticks, labels, rotation=90, fontsize=6)
                ax.set_ylim(bottom=0)
                ax.grid(alpha=0.3)
                ax.legend(fontsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
