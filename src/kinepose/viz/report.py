"""``kinepose report RUN``: one self-contained HTML page per training run.

The page holds everything needed to judge a run without the run folder: the resolved config, the metrics
table of the run against the analytic solvers (from ``eval.json``, written by ``kinepose train``), training
curves (train against validation), skeleton views of the model on a held-out clip with per-joint errors,
per-joint and error-against-noise charts, and the model's attention maps when it has any. Pictures are PNGs
embedded as data URIs, so the file can be mailed or attached to a paper review as it is.

Lifting runs (2D keypoints -> 3D, a run folder with ``lifter.pt``) get their own page, written by
:func:`kinepose.viz.lift_report.write_lift_report`; :func:`write_report` hands them over.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import yaml

from kinepose._atomic import atomic_write
from kinepose.errors import FileFormatError

__all__ = ["ReportResult", "write_report"]

METRICS = (  # (key of a report's "overall", column title)
    ("mpjpe_mm", "MPJPE (mm)"),
    ("geo_deg", "geodesic (deg)"),
    ("geo_observable_deg", "observable (deg)"),
    ("geo_unobservable_deg", "unobservable (deg)"),
    ("accel_mm", "accel. error (mm)"),
)


@dataclass
class ReportResult:
    """What :func:`write_report` wrote: the page, and the viewer page beside it (or None)."""

    path: str
    viewer_path: str | None
    sections: list[str] = field(default_factory=list)
    bytes: int = 0


def _png(draw: Callable[[str], object]) -> str:
    """Run ``draw(path)`` (a kinepose.viz writer) into a temporary PNG; return it as a data URI."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "figure.png")
        draw(path)
        with open(path, "rb") as f:
            return "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"not a JSON file ({exc})", path, getattr(exc, "lineno", None)) from exc
    if not isinstance(data, dict):
        raise FileFormatError("expected a JSON object", path)
    return data


def _reports(run: str) -> list[dict]:
    """Evaluation reports of a run: ``eval.json`` (from training) and any ``evaluate_noise*.json``."""
    out = []
    path = os.path.join(run, "eval.json")
    if os.path.isfile(path):
        reports = _read_json(path).get("reports")
        if not isinstance(reports, list):
            raise FileFormatError("expected a 'reports' list", path)
        out.extend(reports)
    for name in sorted(os.listdir(run)):
        if name.startswith("evaluate_noise") and name.endswith(".json"):
            out.append(_read_json(os.path.join(run, name)))
    for i, r in enumerate(out):
        if not isinstance(r, dict) or not {"solver", "noise_mm", "overall"} <= set(r):
            raise FileFormatError(f"report {i}: expected 'solver', 'noise_mm' and 'overall'", run)
    return out


def _num(x: object) -> float:
    """A metric from a report as a float: ``null`` (how strict JSON stores NaN) and non-numbers are NaN."""
    try:
        return float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def _fmt(v: float) -> str:
    return f"{v:.2f}" if np.isfinite(v) else "–"


def _metrics_table(reports: list[dict]) -> str:
    rows = []
    for noise in sorted({float(r["noise_mm"]) for r in reports}):
        group = [r for r in reports if float(r["noise_mm"]) == noise]
        shown = {k: [round(_num(r["overall"].get(k)), 2) for r in group] for k, _ in METRICS}
        best = {k: min((x for x in v if np.isfinite(x)), default=np.nan) for k, v in shown.items()}  # ties all bold
        for r in group:
            cells = []
            for k, _ in METRICS:
                v = _num(r["overall"].get(k))
                text = _fmt(v)
                cells.append(
                    f"<td class='num{' best' if np.isfinite(v) and round(v, 2) == best[k] else ''}'>{text}</td>"
                )
            frames = html.escape(str(r["overall"].get("frames", "")))
            rows.append(
                f"<tr><td>{html.escape(str(r['solver']))}</td><td class='num'>{noise:g}</td>"
                f"<td class='num'>{frames}</td>{''.join(cells)}</tr>"
            )
    head = "".join(f"<th>{html.escape(t)}</th>" for _, t in METRICS)
    return (
        f"<table><thead><tr><th>solver</th><th>noise (mm)</th><th>frames</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _clip_table(reports: list[dict]) -> str:
    rows = []
    for r in reports:
        if "(this run)" not in str(r["solver"]):
            continue
        for c in r.get("clips", []):
            cells = "".join(f"<td class='num'>{_fmt(_num(c.get(k)))}</td>" for k, _ in METRICS)
            rows.append(
                f"<tr><td>{html.escape(str(c['clip']))}</td><td class='num'>{float(r['noise_mm']):g}</td>"
                f"<td class='num'>{html.escape(str(c.get('frames', '')))}</td>{cells}</tr>"
            )
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(t)}</th>" for _, t in METRICS)
    return (
        f"<table><thead><tr><th>clip</th><th>noise (mm)</th><th>frames</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _as_benchmark(reports: list[dict], skeleton: str) -> dict:
    """Evaluation reports in the accuracy benchmark's JSON layout, for the benchmark plots of kinepose.viz."""
    rows: dict[str, dict] = {}
    for r in reports:
        row = rows.setdefault(str(r["solver"]), {"learned": "(this run)" in str(r["solver"]), "reports": {}})
        row["reports"][f"{float(r['noise_mm']):g}"] = r
    return {"skeletons": {skeleton: {"rows": rows}}}


def _figure(title: str, uri: str, caption: str) -> str:
    return (
        f"<figure><img alt='{html.escape(title)}' src='{uri}'><figcaption>{html.escape(caption)}</figcaption></figure>"
    )


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1.5em;
color:#1d1d1f;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
.meta{color:#555}table{border-collapse:collapse;font-size:.9em;margin:.6em 0}
th,td{border:1px solid #ddd;padding:.3em .6em}th{background:#f4f4f6;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.best{font-weight:700;background:#eef7ee}
figure{margin:1em 0}img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:.9em}
pre{background:#f6f8fa;padding:1em;overflow:auto;font-size:.85em}.note{color:#8a5a00}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:600}dd{margin:0}
"""


def _page(name: str, recipe: str, sections: list[str], body: list[str]) -> str:
    """The whole HTML page: title, a line of facts, the table of contents and the sections' HTML."""
    import kinepose

    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    toc = " · ".join(f"<a href='#{s.lower().replace(' ', '-')}'>{html.escape(s)}</a>" for s in sections)
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>kinepose report: {html.escape(name)}"
        f"</title><meta name='viewport' content='width=device-width,initial-scale=1'><style>{CSS}</style></head>"
        f"<body><h1>kinepose report: {html.escape(name)}</h1><p class='meta'>{html.escape(recipe)}"
        f" · kinepose {kinepose.__version__} · written {stamp}</p><p>{toc}</p>{''.join(body)}</body></html>\n"
    )


def attention_figure(model, att: list, n_windows: int, clip: str, title_prefix: str = "") -> tuple[str, str]:
    """The attention figure of a report (PNG data URI) and its caption, for IK and lifting runs alike."""
    from kinepose.inference import attention_tokens
    from kinepose.viz import plot_attention

    axis, labels, query = attention_tokens(model, att[0].shape[-1])
    uri = _png(lambda p: plot_attention(att, p, title=f"{title_prefix}attention over {axis}s, {clip}", labels=labels,
                                        axis=axis, per_head=True, query=query))  # fmt: skip
    what = {"frame": "frame offsets relative to the predicted frame", "joint": "joints"}.get(axis, "tokens")
    caption = f"Per layer and head, and their mean; averaged over {n_windows} windows of {clip}. "
    caption += f"Tokens are {what}" + (
        "; the right column shows which frames the predicted frame attends to." if query is not None else "."
    )
    return uri, caption


def write_report(
    run: str | os.PathLike,
    output: str | os.PathLike | None = None,
    clip: str | None = None,
    noise_mm: float = 10.0,
    seed: int | None = None,
    viewer: bool = True,
    condition: str | None = None,
    view: int | None = None,
) -> ReportResult:
    """Write the HTML report of a training run: an IK run (``model.pt``) or a lifting run (``lifter.pt``, written by
    :func:`kinepose.viz.lift_report.write_lift_report`).

    Args:
        run: the run folder of ``kinepose train`` (``config.yaml``, ``model.pt``, ``logs/``, ``eval.json``; or
            ``config.yaml``, ``lifter.pt``, ``eval.json`` of a lifting run).
        output: the HTML file (default ``RUN/report.html``).
        clip: held-out clip for the skeleton views and attention maps (default: the first held-out clip).
        noise_mm: Gaussian joint noise (mm) on that clip's input (IK runs only).
        seed: noise seed (default 0; lifting runs: 12345, the cameras and noise of their eval.json).
        viewer: also write the clip as an interactive 3D viewer page (``<report name>_viewer.html`` beside the
            report) and link it (IK runs only).
        condition: lifting runs only: the 2D noise condition of the pictures (default ``5px+outliers``).
        view: lifting runs only: the test camera of the clip (default 0).

    Returns:
        The paths written and the sections the page holds.
    """
    if os.path.isfile(os.path.join(os.fspath(run), "lifter.pt")):
        from kinepose.training.lifting import EVAL_CONDITIONS
        from kinepose.viz.lift_report import write_lift_report

        if noise_mm != 10.0:
            raise ValueError(
                f"noise_mm (--noise-mm): {noise_mm:g} mm of 3D joint noise does not apply to a lifting run, whose "
                "input is 2D keypoints; pick the 2D noise of its eval.json with condition (--condition): "
                + ", ".join(EVAL_CONDITIONS)
            )
        given = {"condition": condition, "view": view, "seed": seed}
        return write_lift_report(run, output, clip=clip, **{k: v for k, v in given.items() if v is not None})
    from kinepose.config import resolve_config
    from kinepose.data.sources import load_split
    from kinepose.data.transforms import add_joint_noise
    from kinepose.inference import clip_attention, predict_clip
    from kinepose.kinematics.fk import forward_kinematics
    from kinepose.models.files import load_model
    from kinepose.viz import (
        plot_error_vs_noise,
        plot_per_joint_errors,
        plot_pose_comparison,
        plot_training_curves,
    )

    run = os.fspath(run)
    if not os.path.isdir(run):
        raise ValueError(f"{run}: no such run folder (kinepose train writes one, e.g. runs/humanoid_hybrid)")
    for need in ("config.yaml", "model.pt"):
        if not os.path.isfile(os.path.join(run, need)):
            raise ValueError(f"{run}: not a finished run folder, {need} is missing")
    if noise_mm < 0:
        raise ValueError(f"noise_mm: must be >= 0, got {noise_mm}")
    if condition is not None or view is not None:
        raise ValueError(f"{run}: condition (--condition) and view (--view) apply to lifting runs (a run folder with "
                         "lifter.pt) only")  # fmt: skip
    seed = 0 if seed is None else seed
    out = os.fspath(output) if output is not None else os.path.join(run, "report.html")
    name = os.path.basename(os.path.normpath(os.path.abspath(run)))
    cfg = resolve_config(os.path.join(run, "config.yaml"))
    model = load_model(run)
    sk = model.skeleton
    reports = _reports(run)
    eval_meta = _read_json(os.path.join(run, "eval.json")) if os.path.isfile(os.path.join(run, "eval.json")) else {}

    test = load_split(cfg)[2]
    if not test:
        raise ValueError(f"{run}: the run's config has no held-out clips")
    names = [m.name for m in test]
    if clip is not None and clip not in names:
        raise ValueError(f"clip: {clip!r} is not a held-out clip of this run; choose from {', '.join(names)}")
    motion = test[names.index(clip) if clip is not None else 0]
    truth = motion.positions()  # (T, J, 3) float64
    noisy = add_joint_noise(truth, noise_mm, torch.Generator().manual_seed(seed))
    quat, root = predict_clip(model, noisy.float())
    pred = forward_kinematics(sk, quat.double(), root.double(), check=False).positions  # (T, J, 3)
    err = 1000.0 * (pred - truth).norm(dim=-1).mean(-1)  # (T,) mm
    typical, worst = int(err.argsort()[len(err) // 2]), int(err.argmax())

    body: list[str] = []
    sections: list[str] = []

    def section(title: str, content: str) -> None:
        sections.append(title)
        body.append(f"<h2 id='{title.lower().replace(' ', '-')}'>{html.escape(title)}</h2>{content}")

    n_params = sum(p.numel() for p in model.parameters())
    facts = {
        "model family": model.family,
        "skeleton": f"{sk.name} ({len(sk.joint_names)} joints)",
        "window": f"{model.window} frame(s), predicts frame {model.target_index}",
        "parameters": f"{n_params:,}",
        "epochs": eval_meta.get("epochs", "–"),
        "training time": f"{eval_meta['train_seconds']:.0f} s" if "train_seconds" in eval_meta else "–",
        "best validation geodesic": (
            f"{eval_meta['best_val_geo_deg']:.2f} deg"
            if isinstance(eval_meta.get("best_val_geo_deg"), int | float)
            else "–"
        ),
        "held-out clips": ", ".join(names),
    }
    sel = eval_meta.get("residual_selection")
    if isinstance(sel, dict) and sel:  # hybrid models: per joint, whether the learned residual was kept
        kept = [j for j, v in sel.items() if isinstance(v, dict) and v.get("kept")]
        facts["learned residual kept on"] = ", ".join(kept) or "no joint (geometry alone was better on validation)"
    dl = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts.items())
    section("Summary", f"<dl>{dl}</dl>")

    if reports:
        content = (
            "<p>Held-out clips, frame-weighted means; the best value per noise level in bold. Observable "
            "joints are those whose rotation the joint positions determine.</p>" + _metrics_table(reports)
        )
        clips = _clip_table(reports)
        if clips:
            content += f"<h3>This run, per clip</h3>{clips}"
        section("Metrics", content)
    else:
        section(
            "Metrics",
            "<p class='note'>No eval.json in the run folder (it is written at the end of "
            "<code>kinepose train</code>); run <code>kinepose evaluate RUN</code> to add numbers.</p>",
        )

    figs = []
    try:
        uri = _png(lambda p: plot_training_curves([run], p, metrics=["val/geo_deg", "val/mpjpe_mm"]))
        figs.append(_figure("training curves", uri, "Per epoch: validation (solid) and training (dashed)."))
    except ValueError as exc:
        figs.append(f"<p class='note'>No training curves: {html.escape(str(exc))}</p>")
    section("Training curves", "".join(figs))

    title = f"{model.family} on {motion.name}, joint noise {noise_mm:g} mm"
    views = [
        _figure(
            "typical frame",
            _png(
                lambda p: plot_pose_comparison(
                    sk, pred[typical], truth[typical], p, title=f"{title}, frame {typical} (median)"
                )
            ),
            "Prediction (coloured by joint error) over the truth (grey), the frame of median error.",
        ),
        _figure(
            "worst frame",
            _png(
                lambda p: plot_pose_comparison(
                    sk, pred[worst], truth[worst], p, overlay=False, title=f"{title}, frame {worst} (worst)"
                )
            ),
            "Truth and prediction side by side, the frame of largest error.",
        ),
    ]
    section("Skeleton views", "".join(views))

    if reports:
        bench = _as_benchmark(reports, sk.name)
        levels = sorted({float(r["noise_mm"]) for r in reports})
        level = max(levels)
        charts = [
            _figure(
                "per-joint error",
                _png(lambda p: plot_per_joint_errors(bench, p, sk.name, noise_mm=level)),
                f"Geodesic error per joint at {level:g} mm joint noise.",
            )
        ]
        if len(levels) > 1:
            for metric in ("geo_deg", "mpjpe_mm"):
                uri = _png(lambda p, m=metric: plot_error_vs_noise(bench, p, sk.name, metric=m))
                charts.append(_figure(f"{metric} against noise", uri, f"{metric} at each evaluated noise level."))
        section("Errors per joint and against noise", "".join(charts))

    att, n_windows = clip_attention(model, noisy.float())
    if att and att[0].shape[-1] > 1:  # a window of one frame attends only to itself: nothing to show
        uri, caption = attention_figure(model, att, n_windows, motion.name)
        section("Attention maps", _figure("attention", uri, caption))
    else:
        encoder = html.escape(str(cfg["model"].get("encoder", cfg["model"].get("mixer", "–"))))
        why = ("attends over a single token (a window of one frame): there is no map to show" if att
               else "has no attention layers")  # fmt: skip
        section(
            "Attention maps",
            f"<p>This model ({html.escape(model.family)}, encoder {encoder}) {why}. Sequence transformers "
            "(configs/humanoid_sequence.yaml) and seed0 attention or graph mixers have attention maps.</p>",
        )

    viewer_path = None
    if viewer:
        from kinepose.viz.viewer import write_viewer

        viewer_path = os.path.splitext(os.path.abspath(out))[0] + "_viewer.html"
        rel = os.path.basename(viewer_path)
        section(
            "3D viewer",
            f"<p><a href='{html.escape(rel)}'>{html.escape(rel)}</a>: the whole clip in 3D "
            "(orbit, play, frame slider, speed), prediction against the truth.</p>",
        )

    config_text = yaml.safe_dump(cfg, sort_keys=False)
    section(
        "Config",
        f"<p>The resolved recipe (<code>{html.escape(os.path.join(name, 'config.yaml'))}</code> of the run folder); "
        f"<code>kinepose train</code> with it repeats the run.</p><pre>{html.escape(config_text)}</pre>",
    )

    page = _page(name, str(cfg.get("name", name)), sections, body)
    if viewer_path is not None:  # written last with the page, once everything else has worked
        write_viewer(
            viewer_path,
            sk.parents,
            sk.joint_names,
            {"prediction": pred.numpy(), "ground truth": truth.numpy()},
            fps=motion.fps,
            title=title,
        )
    atomic_write(out, lambda f: f.write(page))
    return ReportResult(path=out, viewer_path=viewer_path, sections=sections, bytes=len(page.encode("utf-8")))
