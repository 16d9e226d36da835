"""Tables and JSON of evaluation reports (millimetres and degrees).

The acceleration error is shown per second^2 (``accel_mm_s2``: each clip at its own frame rate), so
reports that pool clips of 30 and 60 fps stay comparable.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from kinepose._atomic import atomic_write
from kinepose.evaluation.solvers import EvalReport


def format_table(report: EvalReport, per_joint: bool = True) -> str:
    """Markdown tables: one row per clip plus the overall row, then per-joint geodesic error."""
    head = (
        "| clip | frames | MPJPE FK(out) (mm) | geodesic, all (deg) | observable joints (deg) "
        "| unobservable joints (deg) | accel. error (mm/s^2) |\n|---|---:|---:|---:|---:|---:|---:|"
    )
    rows = [head]
    for r in [*report.clips, report.overall]:
        label = f"**{r.clip}**" if r.clip == "all" else r.clip
        rows.append(
            f"| {label} | {r.frames} | {r.mpjpe_mm:.3g} | {r.geo_deg:.2f} | {r.geo_observable_deg:.2f} "
            f"| {r.geo_unobservable_deg:.2f} | {r.accel_mm_s2:.0f} |"
        )
    out = "\n".join(rows)
    if per_joint:
        unobs = set(report.unobservable_joints)
        names = list(report.overall.per_joint_deg)
        out += "\n\nPer-joint geodesic error (deg; * = not determined by joint positions):\n\n"
        out += "| " + " | ".join(n + ("*" if n in unobs else "") for n in names) + " |\n"
        out += "|" + "---:|" * len(names) + "\n"
        out += "| " + " | ".join(f"{report.overall.per_joint_deg[n]:.2f}" for n in names) + " |"
    return out


def format_comparison(reports: Sequence[EvalReport]) -> str:
    """One Markdown row per (solver, noise) report, side by side."""
    rows = [
        "| solver | noise (mm) | MPJPE FK(out) (mm) | geodesic, all (deg) | observable (deg) | unobservable (deg) "
        "| accel. error (mm/s^2) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in reports:
        o = r.overall
        rows.append(
            f"| {r.solver} | {r.noise_mm:g} | {o.mpjpe_mm:.2f} | {o.geo_deg:.2f} | {o.geo_observable_deg:.2f} "
            f"| {o.geo_unobservable_deg:.2f} | {o.accel_mm_s2:.0f} |"
        )
    return "\n".join(rows)


def _finite(obj):
    """NaN and infinities become null: strict JSON that every reader accepts."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def write_json(path: str, payload: dict) -> None:
    """Write strict JSON (NaN as null) atomically (temporary file in the same folder, then rename)."""
    atomic_write(path, lambda f: json.dump(_finite(payload), f, indent=2, allow_nan=False))
