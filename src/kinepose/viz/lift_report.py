"""``kinepose report RUN`` for lifting runs (2D keypoints -> 3D, written by ``kinepose train`` with ``task: lift``).

One self-contained HTML page, in the layout of the IK report (:mod:`kinepose.viz.report`): a summary of the run,
the metrics table of ``eval.json`` (one row per 2D noise condition of
:data:`kinepose.training.lifting.EVAL_CONDITIONS`), skeleton views of one held-out clip seen by one test camera
(the median-error and the worst frame, prediction over truth), the 2D input of the median frame with its missing
joints marked, per-joint errors on that clip, and the lifter's attention maps when it has any. The clip is seen
exactly as in ``eval.json`` (:func:`kinepose.training.lifting.eval_views`, same cameras and noise seeds), so the
pictures show the numbers of the table. Pictures are PNGs embedded as data URIs.

Lifters predict root-relative joints in the camera frame (x right, y down, z forward); the 3D views draw them y-up
with ``(x, y, z) -> (x, -y, -z)``, a rotation by 180 deg about x (as
:func:`kinepose.frontends.pipeline.y_down_to_y_up`).
"""

from __future__ import annotations

import html
import os
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
import yaml

from kinepose._atomic import atomic_write
from kinepose.errors import FileFormatError
from kinepose.viz.report import ReportResult, _figure, _fmt, _num, _page, _png, _read_json, attention_figure

__all__ = ["LIFT_METRICS", "lifter_attention", "write_lift_report"]

LIFT_METRICS = (  # (key of an eval.json condition, column title, decimals)
    ("mpjpe_mm", "MPJPE (mm)", 2),
    ("pa_mpjpe_mm", "PA-MPJPE (mm)", 2),
    ("bone_std_mm", "bone-length std (mm)", 2),
    ("accel_mm", "accel. error (mm/frame²)", 2),
    ("ms_per_frame", "ms/frame", 3),
)
RUN_FILES = ("config.yaml", "lifter.pt", "eval.json")


@torch.no_grad()
def lifter_attention(
    model: Any, keypoints: torch.Tensor, visibility: torch.Tensor | None = None, max_windows: int = 256
) -> tuple[list[torch.Tensor], int]:
    """A lifter's attention maps over a clip, averaged over up to ``max_windows`` evenly spaced windows.

    Args:
        model: a :class:`~kinepose.models.lifting.Lifter`.
        keypoints: (T, J, 2) screen-normalized 2D keypoints of one clip (NaN where missing).
        visibility: (T, J) visibility, or None.
        max_windows: most windows to run (every ``ceil(T / max_windows)``-th frame's).

    Returns:
        ``(maps, windows)``: one (heads, N, N) map per layer (an empty list for lifters without attention) and the
        number of windows averaged.
    """
    from kinepose.data.datasets import window_index

    model.eval()
    T = keypoints.shape[0]
    frames = torch.arange(0, T, max(1, -(-T // max_windows)))
    idx = window_index(T, model.window, model.target_index, frames)  # (N, W)
    att = model(keypoints[idx], None if visibility is None else visibility[idx]).attention or []
    return [a.float().mean(0) for a in att], len(idx)


def _y_up(x: torch.Tensor) -> np.ndarray:
    """(..., 3) camera-frame points (y down, z forward) -> y-up, as numpy."""
    return (x.double() * torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)).numpy()


def _plot_keypoints_2d(
    skeleton: Any, noisy: np.ndarray, clean: np.ndarray, vis: np.ndarray, size: tuple[int, int], path: str, title: str
) -> None:
    """One frame's 2D input (J, 2) pixels (NaN where missing) over the true projection (J, 2); missing joints
    (visibility 0) marked at their true position."""
    import matplotlib.pyplot as plt

    from kinepose.viz.skeleton import save_figure

    fig, ax = plt.subplots(figsize=(6, 5.5))
    try:
        seen = (vis > 0) & np.isfinite(noisy).all(-1)
        for j, p in enumerate(skeleton.parents):
            if p < 0:
                continue
            ax.plot(clean[[p, j], 0], clean[[p, j], 1], color="0.7", lw=2, zorder=1)
            if seen[j] and seen[p]:
                ax.plot(noisy[[p, j], 0], noisy[[p, j], 1], color="C0", lw=1.5, zorder=2)
        ax.scatter(clean[:, 0], clean[:, 1], color="0.6", s=10, label="true projection", zorder=1)
        ax.scatter(noisy[seen, 0], noisy[seen, 1], color="C0", s=18, label="input keypoints", zorder=3)
        missing = np.flatnonzero(~seen)
        if missing.size:
            ax.scatter(clean[missing, 0], clean[missing, 1], marker="x", color="C3", s=70, lw=2, zorder=4,
                       label=f"missing (visibility 0): {len(missing)}")  # fmt: skip
            for j in missing:
                ax.annotate(skeleton.joint_names[j], clean[j], color="C3", fontsize=7, xytext=(4, 4),
                            textcoords="offset points")  # fmt: skip
        pts = np.concatenate([clean, noisy[seen]])
        lo, hi = pts.min(0), pts.max(0)
        pad = 0.08 * float((hi - lo).max()) + 5.0
        ax.set_xlim(max(lo[0] - pad, -0.5 * size[0]), min(hi[0] + pad, 1.5 * size[0]))
        ax.set_ylim(min(hi[1] + pad, 1.5 * size[1]), max(lo[1] - pad, -0.5 * size[1]))  # image y points down
        ax.set_aspect("equal")
        ax.set_xlabel("u (px)")
        ax.set_ylabel("v (px)")
        ax.legend(loc="best", fontsize=8)
        ax.set_title(title, fontsize=10)
    except BaseException:
        plt.close(fig)
        raise
    save_figure(fig, path)


def _plot_joint_bars(names: list[str], values: np.ndarray, path: str, title: str) -> None:
    """(J,) per-joint errors (mm) as bars, with their mean as a line."""
    import matplotlib.pyplot as plt

    from kinepose.viz.skeleton import save_figure

    fig, ax = plt.subplots(figsize=(max(8.0, 0.38 * len(names)), 4.0))
    try:
        x = np.arange(len(names))
        ax.bar(x, values, color="C0")
        ax.axhline(float(values.mean()), color="k", lw=1, ls="--", label=f"mean {values.mean():.1f} mm")
        ax.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
        ax.set_ylabel("MPJPE (mm)")
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title(title, fontsize=10)
    except BaseException:
        plt.close(fig)
        raise
    save_figure(fig, path)


def _describe(noise: dict) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, int | float) else f"{k} {v}" for k, v in noise.items()) or "none"


def _metrics_table(test: dict, conditions: dict, chosen: str) -> str:
    """eval.json's ``test`` as a table, one row per condition (EVAL_CONDITIONS order first)."""
    rows = []
    for cond in [*(c for c in conditions if c in test), *(c for c in test if c not in conditions)]:
        m = test[cond]
        if not isinstance(m, dict):
            raise FileFormatError(f"test.{cond}: expected an object of metrics", "eval.json")
        cells = "".join(f"<td class='num'>{_fmt_metric(_num(m.get(k)), d)}</td>" for k, _, d in LIFT_METRICS)
        mark = " class='best'" if cond == chosen else ""
        what = _describe(conditions[cond]) if cond in conditions else "–"
        rows.append(
            f"<tr><td{mark}>{html.escape(str(cond))}</td><td>{html.escape(what)}</td>"
            f"<td class='num'>{html.escape(str(m.get('frames', '')))}</td>{cells}</tr>"
        )
    head = "".join(f"<th>{html.escape(t)}</th>" for _, t, _ in LIFT_METRICS)
    return (
        f"<table><thead><tr><th>condition</th><th>2D noise</th><th>frames</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _fmt_metric(v: float, decimals: int) -> str:
    """A metric as the page shows it: ``decimals`` places, '–' for NaN or missing."""
    return _fmt(v) if decimals == 2 else (f"{v:.{decimals}f}" if np.isfinite(v) else "–")


def _test_only(data: dict) -> dict:
    """The recipe's data section with (nearly) no training clips: the report needs only the held-out ones."""
    data = dict(data)
    if data.get("kind", "body") == "hand":  # test hands come from a fixed seed of their own: unchanged by this
        data["hand_sequences"] = dict(data["hand_sequences"], train=1, val=1)
    else:
        data["train"], data["val"] = [], []
    return data


def write_lift_report(
    run: str | os.PathLike,
    output: str | os.PathLike | None = None,
    clip: str | None = None,
    condition: str = "5px+outliers",
    view: int = 0,
    seed: int = 12345,
) -> ReportResult:
    """Write the HTML report of a lifting run.

    Args:
        run: the run folder (``config.yaml`` with ``task: lift``, ``lifter.pt``, ``eval.json``).
        output: the HTML file (default ``RUN/report.html``); replaced atomically, once everything has worked.
        clip: held-out clip for the pictures (default: the first).
        condition: 2D noise condition of :data:`~kinepose.training.lifting.EVAL_CONDITIONS` for the pictures.
        view: test camera of that clip, ``0 .. data.views - 1``.
        seed: cameras and noise seed of :func:`~kinepose.training.lifting.eval_views` (12345: eval.json's).

    Returns:
        The page written and its sections (``viewer_path`` None: lifting runs have no 3D viewer page).

    Raises:
        ValueError: no run folder, a missing file, or a clip, condition or view the run does not have (the
            message names the choices).
    """
    from kinepose.data.lifting import lifting_split
    from kinepose.geometry.cameras import project
    from kinepose.models.lifting.files import load_lifter
    from kinepose.training.lifting import EVAL_CONDITIONS, eval_views, lift_viewed, resolve_lift_config
    from kinepose.viz import plot_pose_comparison

    run = os.fspath(run)
    if not os.path.isdir(run):
        raise ValueError(f"{run}: no such run folder (kinepose train writes one, e.g. runs/body_lift_ours)")
    for need in ("config.yaml", "lifter.pt"):
        if not os.path.isfile(os.path.join(run, need)):
            raise ValueError(f"{run}: not a finished lifting run folder, {need} is missing")
    if condition not in EVAL_CONDITIONS:
        raise ValueError(f"condition (--condition): unknown {condition!r}; choose from {', '.join(EVAL_CONDITIONS)}")
    if isinstance(view, bool) or not isinstance(view, int | np.integer) or view < 0:
        raise ValueError(f"view (--view): expected a test camera index >= 0, got {view!r}")
    out = os.fspath(output) if output is not None else os.path.join(run, "report.html")
    if any(os.path.abspath(out) == os.path.abspath(os.path.join(run, f)) for f in RUN_FILES):
        raise ValueError(f"output: {out} is a file of the run folder; writing there would destroy the run")
    name = os.path.basename(os.path.normpath(os.path.abspath(run)))
    cfg = resolve_lift_config(os.path.join(run, "config.yaml"))
    views = int(cfg["data"]["views"])
    if view >= views:
        raise ValueError(f"view (--view): {view} is not a test camera of this run; it has {views} per clip "
                         f"(data.views), choose from {', '.join(map(str, range(views)))}")  # fmt: skip
    test = lifting_split(_test_only(cfg["data"]))[2]
    if not test:
        raise ValueError(f"{run}: the run's config has no held-out clips")
    names = [c.name for c in test]
    if clip is not None and clip not in names:
        raise ValueError(f"clip (--clip): {clip!r} is not a held-out clip of this run; choose from {', '.join(names)}")
    ci = names.index(clip) if clip is not None else 0
    eval_path = os.path.join(run, "eval.json")
    eval_meta = _read_json(eval_path) if os.path.isfile(eval_path) else {}
    tested = eval_meta.get("test", {})
    if not isinstance(tested, dict):
        raise FileFormatError("expected 'test' to be an object of noise conditions", eval_path)
    model = load_lifter(run)
    sk = model.skeleton

    vc = eval_views(cfg, test, seed)[condition][ci * views + view]  # clip-major: clip ci, camera view
    pred = lift_viewed(model, [vc])[0].double()  # (T, J, 3) camera frame, metres
    truth = vc.target.double()
    joint_err = 1000.0 * (pred - truth).norm(dim=-1)  # (T, J) mm
    err = joint_err.mean(-1)  # (T,)
    typical, worst = int(err.argsort()[len(err) // 2]), int(err.argmax())
    clean_px = project(test[ci].joints.double(), vc.camera.to(dtype=torch.float64))  # (T, J, 2) no noise
    att, n_windows = lifter_attention(model, vc.keypoints, vc.visibility)

    body: list[str] = []
    sections: list[str] = []

    def section(title: str, content: str) -> None:
        sections.append(title)
        body.append(f"<h2 id='{title.lower().replace(' ', '-')}'>{html.escape(title)}</h2>{content}")

    if model.window == 1:
        window = "1 frame (single-frame lifter)"
    else:
        window = f"{model.window} frames, " + (
            "causal: predicts the last frame" if model.causal else f"centred: predicts frame {model.target_index}"
        )
    steps = "–"
    if "steps" in eval_meta:
        steps = f"{int(eval_meta.get('steps_done', 0)):,} of {int(eval_meta['steps']):,}"
        if model.family == "knn":
            steps += " (knn: no training, its bank filled from the training clips)"
    seconds = eval_meta.get("train_seconds")
    facts = {
        "model family": model.family,
        "skeleton": f"{sk.name} ({sk.num_joints} joints)",
        "window": window,
        "parameters": f"{int(eval_meta.get('parameters', sum(p.numel() for p in model.parameters()))):,}",
        "steps done": steps,
        "training time": f"{seconds:.1f} s" if isinstance(seconds, int | float) else "–",
    }
    refine = getattr(model, "refine", None)
    if refine is not None:
        fit = ", ".join(f"{k} {v:g}" for k, v in asdict(refine).items())
        facts["2D fit (refine)"] = fit + ("; not applied: the fit needs whole clips, this lifter is causal"
                                          if model.causal else "; applied to whole clips")  # fmt: skip
    facts["held-out clips"] = f"{', '.join(names)} ({views} test camera(s) each)"
    shown_att = bool(att) and att[0].shape[-1] > 1
    if not shown_att:
        facts["attention maps"] = (
            "none: a window of one frame attends only to itself" if att else f"none: {model.family} has no attention"
        )
    dl = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts.items())
    section("Summary", f"<dl>{dl}</dl>")

    if tested:
        section(
            "Metrics",
            "<p>Held-out clips seen by the run's fixed test cameras, per 2D noise condition (pixels); PA-MPJPE after "
            "a similarity alignment per frame; bone-length std over time, per clip and bone; ms/frame of "
            f"inference on the CPU. The pictures below use <b>{html.escape(condition)}</b> (highlighted).</p>"
            + _metrics_table(tested, EVAL_CONDITIONS, condition),
        )
    else:
        section(
            "Metrics",
            "<p class='note'>No eval.json in the run folder (it is written at the end of "
            "<code>kinepose train</code>): no metrics table.</p>",
        )

    title = f"{model.family} on {vc.name}, {condition}"
    vis = vc.visibility[typical].numpy()
    n_missing = int((vis <= 0).sum())

    def draw_median(path: str) -> None:
        plot_pose_comparison(
            sk, _y_up(pred[typical]), _y_up(truth[typical]), path, title=f"{title}, frame {typical} (median)"
        )

    def draw_worst(path: str) -> None:
        plot_pose_comparison(
            sk, _y_up(pred[worst]), _y_up(truth[worst]), path, overlay=False, title=f"{title}, frame {worst} (worst)"
        )

    def draw_input(path: str) -> None:
        noisy, clean = vc.pixels[typical].double().numpy(), clean_px[typical].numpy()  # (J, 2) each
        size = (vc.camera.width, vc.camera.height)
        _plot_keypoints_2d(sk, noisy, clean, vis, size, path, f"2D input of {vc.name}, frame {typical}, {condition}")

    views_html = [
        f"<p>Held-out clip <b>{html.escape(names[ci])}</b> seen by test camera {view} of {views}, 2D noise "
        f"{html.escape(condition)}: MPJPE {float(err.mean()):.2f} mm over {len(err)} frames. Root-relative joints "
        "in the camera frame, drawn y-up.</p>",
        _figure(
            "median frame",
            _png(draw_median),
            "Prediction (coloured by joint error) over the truth (grey), the frame of median error.",
        ),
        _figure("worst frame", _png(draw_worst), "Truth and prediction side by side, the frame of largest error."),
        _figure(
            "2D input",
            _png(draw_input),
            "The lifter's input at the median frame, in pixels (it sees them screen-normalized), over the true "
            f"projection (grey); {n_missing} joint(s) missing (visibility 0, red crosses at their true position).",
        ),
    ]
    section("Skeleton views", "".join(views_html))

    per_joint = joint_err.mean(0).numpy()  # (J,)
    section(
        "Errors per joint",
        _figure(
            "per-joint MPJPE",
            _png(lambda p: _plot_joint_bars(list(sk.joint_names), per_joint, p, f"{title}: per-joint MPJPE")),
            f"MPJPE per joint over the {len(err)} frames of {vc.name} (mm).",
        ),
    )

    if shown_att:
        uri, caption = attention_figure(model, att, n_windows, vc.name, f"{model.family}: ")
        section("Attention maps", _figure("attention", uri, caption))

    section(
        "Config",
        f"<p>The resolved recipe (<code>{html.escape(os.path.join(name, 'config.yaml'))}</code> of the run folder); "
        f"<code>kinepose train</code> with it repeats the run.</p>"
        f"<pre>{html.escape(yaml.safe_dump(cfg, sort_keys=False))}</pre>",
    )

    page = _page(name, str(cfg.get("name", name)), sections, body)
    atomic_write(out, lambda f: f.write(page))
    return ReportResult(path=out, viewer_path=None, sections=sections, bytes=len(page.encode("utf-8")))
