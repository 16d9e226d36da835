"""IK accuracy of analytic and learned solvers on clean and noisy joints, written to JSON and Markdown.

For the humanoid (the five DeepMimic evaluation clips) and the 21-joint hand (held-out synthetic
sequences), every row below is scored at joint noise 0, 5, 10 and 20 mm (same clips, same noise seed):
mean geodesic error over the rotated joints, split into the joints positions determine and the others,
per-joint geodesic error, MPJPE of FK(output) against the clean joints, and acceleration error per
second^2 (each clip at its own frame rate, so clips at 30 and 60 fps pool). Rows: analytic IK alone and
after a causal / centered moving average (window 5), the least-squares baselines that learn no network
(the fit alone, after the centered moving average, and with a Gaussian pose prior of the training
clips' rotations), and one trained model per entry of ``VARIANTS``. The targets of the issue are then
checked against rows of the same run, each target's row chosen on the validation clips (never on the
test clips the tables show), and each recipe's training wall time is reported.

Run: ``.venv/bin/python benchmarks/ik_accuracy.py [--jobs 2] [--skeleton both] [--only PATTERN]``.
Trains into ``benchmarks/runs/<slug>/`` (a run whose ``config.yaml`` equals the resolved config and
that has ``model.pt`` is reused; ``--retrain`` forces), writes ``benchmarks/results/ik_accuracy.json``
and the ``ik_accuracy`` section of ``benchmarks/RESULTS.md``. ``--quick`` only tests the script: one
tiny epoch per model, written to ``benchmarks/results/ik_accuracy_quick.json`` and no Markdown file.
A partial run (``--skeleton``, ``--only``) keeps the rows of the previous JSON that it does not measure,
marked as carried over with their date (``--no-carry``: drop them).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import multiprocessing as mp
import os
import platform
import re
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import yaml
from tqdm.auto import tqdm

from kinepose._progress import progress_enabled
from kinepose.config import resolve_config
from kinepose.data.sources import load_split
from kinepose.evaluation import EvalReport, analytic_solver, evaluate_solver, fitted_solver, write_json
from kinepose.evaluation.solvers import ClipResult
from kinepose.inference import model_solver
from kinepose.kinematics import moving_average
from kinepose.kinematics.fitting import PosePrior
from kinepose.models import load_model
from kinepose.training import seconds_to_text
from kinepose.training.run import training_pose_prior

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from foundation import _write_section  # noqa: E402

NOISE_MM = (0.0, 5.0, 10.0, 20.0)
HAND_DATA = ["data.dataset=synthetic_hand", "data.mirror=false", "data.yaw=false", "data.any_axis=true",
             "data.translate_m=0.2", "data.val_noise_mm=10"]  # fmt: skip

# (row name, recipe in configs/, overrides, kind: single | causal | offline), per skeleton.
VARIANTS: dict[str, list[tuple[str, str, list[str], str]]] = {
    "humanoid": [
        ("iknet", "humanoid_iknet", [], "single"),
        ("seed0-lstm", "humanoid_seed0", ["model.mixer=lstm"], "single"),
        ("seed0-gru", "humanoid_seed0", ["model.mixer=gru"], "single"),
        ("seed0-attention", "humanoid_seed0", ["model.mixer=attention"], "single"),
        ("seed0-graph", "humanoid_seed0", ["model.mixer=graph"], "single"),
        ("seed0-lstm quat-tanh", "humanoid_seed0", ["model.mixer=lstm", "model.head=quat"], "single"),
        ("seed0-lstm 6d MSE", "humanoid_seed0", ["model.mixer=lstm", "loss.rotation=quat_mse"], "single"),
        ("sequence causal", "humanoid_sequence", [], "causal"),
        ("sequence offline", "humanoid_sequence", ["model.causal=false"], "offline"),
        ("hybrid", "humanoid_hybrid", [], "single"),
        ("hybrid causal", "humanoid_hybrid_causal", [], "causal"),
        ("hybrid offline", "humanoid_hybrid_offline", [], "offline"),
    ],
    "hand": [
        ("iknet", "humanoid_iknet", HAND_DATA, "single"),
        ("seed0-graph", "hand_seed0", [], "single"),
        ("hybrid", "hand_hybrid", [], "single"),
        ("hybrid causal", "humanoid_hybrid_causal", HAND_DATA, "causal"),
        ("hybrid offline", "humanoid_hybrid_offline", HAND_DATA, "offline"),
    ],
}
# Rows without training: (name, kind, solver, moving average: None | causal | centered, extra baseline).
# "fitted+prior": the MAP fit under the Gaussian pose prior of the training clips' rotations (with their
# mirror images where the recipe mirrors), the same prior the hybrid models use, but no network.
BASELINES = [
    ("analytic IK", "single", "analytic", None, False),
    ("analytic IK + causal MA5", "causal", "analytic", "causal", False),
    ("analytic IK + centered MA5", "offline", "analytic", "centered", False),
    ("analytic IK + least-squares fit", "single", "fitted", None, True),
    ("least-squares fit + pose prior", "single", "fitted+prior", None, True),
    ("centered MA5 + least-squares fit", "offline", "fitted", "centered", True),
    ("centered MA5 + least-squares fit + pose prior", "offline", "fitted+prior", "centered", True),
]
SELECT_NOISE = (0.0, 10.0)  # noise levels at which rows are scored on the validation clips (to choose rows)
# Which baseline kinds a model of each kind could use in its place (an offline one may use any).
USABLE = {"single": ("single",), "causal": ("single", "causal"), "offline": ("single", "causal", "offline")}
# The strongest no-network baselines a reviewer named, compared with the best learned row of each kind
# (besides the strongest one the validation clips choose).
NAMED_BASELINES = {"single": "least-squares fit + pose prior", "causal": "least-squares fit + pose prior",
                   "offline": "centered MA5 + least-squares fit"}  # fmt: skip
EVAL_RECIPE = {"humanoid": "humanoid_hybrid", "hand": "hand_hybrid"}  # whose test split every row is scored on
ALWAYS = ["trainer.threads=1", "trainer.progress_bar=false", "trainer.loggers=[csv]"]
QUICK = ["trainer.max_epochs=1", "data.samples_per_epoch=256", "data.batch_size=64"]
QUICK_MODEL = {
    "iknet": ["model.hidden=32", "model.layers=1"],
    "seed0": ["model.dim=32", "model.mixer_layers=1", "model.dense_layers=1"],
    "sequence": ["model.dim=32", "model.layers=1"],
    "hybrid": ["model.dim=32", "model.layers=1", "model.fit_iterations=1"],
}
QUICK_HAND = ["data.hand_sequences={train: 8, val: 2, test: 4, length: 40, fps: 30.0}"]


@dataclass
class Row:
    name: str
    kind: str
    solver: Callable | None = None  # set for baselines; learned rows load theirs from run_dir
    preprocess: Callable | None = None
    learned: bool = False
    extra: bool = False
    info: dict = field(default_factory=dict)  # recipe, overrides, run folder, training metadata
    carried: str | None = None  # date of the earlier run whose numbers this row repeats (not re-measured)


def _recipe(name: str) -> str:
    return os.path.join(ROOT, "configs", f"{name}.yaml")


def variants(skeleton: str, only: str | None, quick: bool) -> list[dict]:
    """The trained rows of one skeleton with their resolved configs and run-folder slugs."""
    out = []
    for name, recipe, overrides, kind in VARIANTS[skeleton]:
        if only and only not in name:
            continue
        ov = [*overrides, *ALWAYS]
        if quick:
            family = resolve_config(_recipe(recipe), overrides)["model"]["name"]
            ov += QUICK + QUICK_MODEL.get(family, []) + (QUICK_HAND if skeleton == "hand" else [])
        slug = re.sub(r"[^a-z0-9]+", "-", f"{skeleton}-{name}".lower()).strip("-")
        out.append({"name": name, "recipe": recipe, "overrides": overrides, "kind": kind, "slug": slug,
                    "cfg": resolve_config(_recipe(recipe), ov)})  # fmt: skip
    return out


def _train_worker(cfg: dict, run_dir: str) -> None:
    import logging
    import warnings

    from kinepose.training import run_training

    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*(does not have many workers|smaller than the logging|LeafSpec).*")
    if os.path.isdir(run_dir):  # a stale or mismatching run: start clean (no versioned checkpoints/logs)
        shutil.rmtree(run_dir)
    run_training(cfg, run_dir)


def _reusable(run_dir: str, cfg: dict) -> bool:
    try:
        with open(os.path.join(run_dir, "config.yaml")) as f:
            return os.path.exists(os.path.join(run_dir, "model.pt")) and yaml.safe_load(f) == cfg
    except OSError:
        return False


def train_all(todo: list[dict], runs_dir: str, jobs: int, retrain: bool) -> dict[str, str]:
    """Train (or reuse) every variant; fill in each one's run folder and metadata. Returns errors by slug."""
    errors: dict[str, str] = {}
    pending = []
    for v in todo:
        v["run_dir"] = os.path.join(runs_dir, v["slug"])
        v["reused"] = not retrain and _reusable(v["run_dir"], v["cfg"])
        if not v["reused"]:
            pending.append(v)
    print(f"training {len(pending)} variant(s), reusing {len(todo) - len(pending)}", file=sys.stderr)
    bar = tqdm(total=len(pending), desc="train", unit="run", disable=not (pending and progress_enabled()))
    if jobs <= 1:
        for v in pending:
            try:
                _train_worker(v["cfg"], v["run_dir"])
            except Exception as exc:  # one failed recipe must not lose the others' results
                errors[v["slug"]] = f"{type(exc).__name__}: {exc}"
            bar.update()
    else:
        with cf.ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(_train_worker, v["cfg"], v["run_dir"]): v for v in pending}
            for fut in cf.as_completed(futures):
                if (exc := fut.exception()) is not None:
                    errors[futures[fut]["slug"]] = f"{type(exc).__name__}: {exc}"
                bar.update()
    bar.close()
    for v in todo:
        if v["slug"] not in errors:
            extra = torch.load(os.path.join(v["run_dir"], "model.pt"), map_location="cpu", weights_only=True)
            v.update({k: extra["extra"].get(k) for k in
                      ("train_seconds", "epochs", "best_val_geo_deg", "residual_selection")})  # fmt: skip
    return errors


def baseline_rows(skeleton, prior: PosePrior | None) -> list[Row]:
    """The rows without training; ``prior``: the pose prior of the training clips (its rows skipped if None)."""
    rows = []
    for name, kind, solver, ma, extra in BASELINES:
        if solver == "fitted+prior" and prior is None:
            continue
        pre = None if ma is None else (lambda x, c=(ma == "causal"): moving_average(x, 5, causal=c))
        fn = {"analytic": lambda: analytic_solver(skeleton), "fitted": lambda: fitted_solver(skeleton),
              "fitted+prior": lambda: fitted_solver(skeleton, prior=prior)}[solver]()  # fmt: skip
        rows.append(Row(name, kind, fn, pre, extra=extra))
    return rows


def evaluate_rows(
    rows: list[Row], clips: list, desc: str, noise: tuple[float, ...] = NOISE_MM
) -> dict[str, dict[float, EvalReport]]:
    """Every row at every noise level on the same clips and noise seed."""
    out: dict[str, dict[float, EvalReport]] = {}
    for row in tqdm(rows, desc=f"evaluate {desc}", unit="row", disable=not progress_enabled()):
        solver = row.solver or model_solver(load_model(row.info["run_dir"]))
        out[row.name] = {n: evaluate_solver(solver, clips, row.name, noise_mm=n, seed=0, preprocess=row.preprocess)
                         for n in noise}  # fmt: skip
    return out


METRICS = {"geo_deg": "mean geodesic (deg)", "mpjpe_mm": "FK MPJPE (mm)", "accel_mm_s2": "accel. error (mm/s^2)",
           "accel_mm": "accel. error (mm/frame^2)", "geo_observable_deg": "geodesic, determined joints (deg)",
           "geo_unobservable_deg": "geodesic, undetermined joints (deg)"}  # fmt: skip


def check_targets(reports: dict, val_reports: dict, rows: list[Row], label: Callable[[int], str]) -> list[dict]:
    """Targets 1-4 of the issue against rows of this run; ``label`` names the target (e.g. 5.1 for the hand).

    Each target's row (the best learned row of a kind, the strongest baseline a model of that kind could
    use instead) is chosen on the validation clips (``val_reports``, at :data:`SELECT_NOISE`); its value on
    the test clips (``reports``) is then checked. Rows without validation numbers (carried over from an
    earlier run) are not candidates.
    """

    def val(row: str | None, noise: float, metric: str, rep: dict = reports) -> float:
        return getattr(rep[row][noise].overall, metric) if row in rep and noise in rep[row] else math.nan

    def pick(cands: list[str], noise: float, metric: str) -> str | None:
        cands = [n for n in cands if math.isfinite(val(n, noise, metric, val_reports))]
        return min(cands, key=lambda n: val(n, noise, metric, val_reports), default=None)

    def best(kind: str | None, noise: float, metric: str = "geo_deg") -> str | None:
        return pick([r.name for r in rows if r.learned and (kind is None or r.kind == kind)], noise, metric)

    def best_baseline(kind: str, noise: float, metric: str) -> str | None:
        return pick([r.name for r in rows if not r.learned and r.kind in USABLE[kind]], noise, metric)

    checks = []

    def check(target, noise, metric, row, op, limit=None, ref=None, factor=1.0, ref_metric=None, note=""):
        value = val(row, noise, metric)
        ref_value = None if ref is None else val(ref, noise, ref_metric or metric)
        bound = limit if ref is None else factor * ref_value
        ok = (value <= bound if op == "<=" else value < bound) if math.isfinite(value + bound) else None
        ratio = None if ref is None else (value / ref_value if ref_value else math.nan)
        checks.append({"target": label(target) + note, "noise_mm": noise, "metric": metric, "row": row, "value": value,
                       "val_value": val(row, noise, metric, val_reports), "reference": ref,
                       "reference_value": ref_value, "op": op, "factor": factor, "limit": bound, "ratio": ratio,
                       "passed": ok})  # fmt: skip

    a, ma_c, ma_o = "analytic IK", "analytic IK + causal MA5", "analytic IK + centered MA5"
    b1, b2, b3, b4 = best(None, 0.0), best("single", 10.0), best("offline", 10.0), best("causal", 10.0)
    check(1, 0.0, "mpjpe_mm", b1, "<=", limit=1.0)
    check(1, 0.0, "geo_observable_deg", b1, "<=", limit=0.5)
    check(1, 0.0, "geo_unobservable_deg", b1, "<=", ref=a)
    check(2, 10.0, "geo_deg", b2, "<=", ref=a, factor=0.9)
    check(2, 10.0, "mpjpe_mm", b2, "<=", ref=a, factor=0.9)
    check(2, 10.0, "mpjpe_mm", best("single", 10.0, "mpjpe_mm"), "<=", ref=a, factor=0.9, note=" (by MPJPE)")
    for metric, factor in (("geo_deg", 0.65), ("mpjpe_mm", 0.55)):
        check(3, 10.0, metric, b3, "<=", ref=a, factor=factor)
    for metric in ("geo_deg", "mpjpe_mm"):
        check(3, 10.0, metric, b3, "<", ref=ma_o)
    for ref in (a, ma_c):
        for metric in ("geo_deg", "mpjpe_mm"):
            check(4, 10.0, metric, b4, "<", ref=ref)
    check(4, 10.0, "accel_mm_s2", b4, "<=", ref=b2, factor=0.5)
    # Beyond the issue: does the network beat the strongest baseline that learns none, of a kind it could use?
    for target, kind, row in ((2, "single", b2), (3, "offline", b3), (4, "causal", b4)):
        for metric in ("geo_deg", "mpjpe_mm"):
            chosen = best_baseline(kind, 10.0, metric)
            check(target, 10.0, metric, row, "<", ref=chosen, note=" (vs no network)")
            if NAMED_BASELINES[kind] != chosen and any(r.name == NAMED_BASELINES[kind] for r in rows):
                check(target, 10.0, metric, row, "<", ref=NAMED_BASELINES[kind], note=" (vs named baseline)")
    return checks


TABLE_HEAD = ("| solver | kind | MPJPE FK (mm) | geodesic, all (deg) | determined (deg) | undetermined (deg) "
              "| accel. error (mm/s^2) |\n|---|---|---:|---:|---:|---:|---:|")  # fmt: skip


def _json_safe(x):
    """NaN (e.g. the hand's undetermined-joint error: there are none) -> null, so the file is strict JSON."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _f(x, digits: int = 2) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


# ------------------------------------------------------------------------------ rows of an earlier run


def _nan(x):
    return math.nan if x is None else x


def _clip_from_dict(d: dict, fps: float | None) -> ClipResult:
    """A ClipResult from strict JSON (null -> NaN). Files written before ``accel_mm_s2`` existed get it
    from the per-frame^2 value and the clip's frame rate (acceleration per s^2 = per frame^2 * fps^2)."""
    c = {k: _nan(v) for k, v in d.items() if k != "per_joint_deg"}
    c["per_joint_deg"] = {k: _nan(v) for k, v in d["per_joint_deg"].items()}
    if d.get("accel_mm_s2") is None:
        c["accel_mm_s2"] = c["accel_mm"] * fps**2 if fps else math.nan
    return ClipResult(**c)


def _report_from_dict(d: dict, fps: dict[str, float]) -> EvalReport:
    clips = [_clip_from_dict(c, fps.get(c["clip"])) for c in d["clips"]]
    overall = _clip_from_dict(d["overall"], None)
    if d["overall"].get("accel_mm_s2") is None:  # pooled as evaluate_solver pools it: over all acceleration samples
        ok = [c for c in clips if math.isfinite(c.accel_mm_s2)]
        n = sum(c.frames - 2 for c in ok)
        overall.accel_mm_s2 = sum((c.frames - 2) * c.accel_mm_s2 for c in ok) / n if n else math.nan
    return EvalReport(d["solver"], d["noise_mm"], clips, overall, d["observable_joints"], d["unobservable_joints"],
                      d.get("meta", {}))  # fmt: skip


def _check_skeleton(check: dict) -> str:
    return check.get("skeleton") or ("hand" if str(check["target"]).startswith("5.") else "humanoid")


def carried_rows(previous: dict, sk: str, fps: dict[str, float], skip: set[str]) -> tuple[list[Row], dict]:
    """Rows of skeleton ``sk`` in an earlier run's JSON (except ``skip``), marked with that run's date."""
    rows, reports = [], {}
    for name, r in previous.get("skeletons", {}).get(sk, {}).get("rows", {}).items():
        if name in skip:
            continue
        info = {k: v for k, v in r.items() if k not in ("reports", "val_reports", "config", "kind", "learned",
                                                         "extra_baseline", "carried_from")}  # fmt: skip
        rows.append(Row(name, r["kind"], learned=r["learned"], extra=r["extra_baseline"], info=info,
                        carried=r.get("carried_from") or previous["date"]))  # fmt: skip
        reports[name] = {float(n): _report_from_dict(rep, fps) for n, rep in r["reports"].items()}
    return rows, reports


# ------------------------------------------------------------------------------------------ Markdown


def _status(r: Row) -> str:
    if r.carried:
        return f"carried from the run of {r.carried} (not re-run)"
    return "reused from its run folder" if r.info.get("reused") else "trained in this run"


def markdown(res: dict, rows: dict[str, list[Row]], reports: dict, checks: list[dict], val_clips: dict) -> str:
    """The ``ik_accuracy`` section of RESULTS.md."""
    m = res["machine"]
    md = [f"## ik_accuracy\n\nCommand: `{res['command']}` (measured {res['date']}, {seconds_to_text(res['seconds'])}, "
          f"torch {m['torch']}, {m['cpu_count']} CPUs, {m['platform']}).\n"]  # fmt: skip
    if res["quick"]:
        md.append("**Quick mode: one tiny epoch per model; these numbers only test the script.**\n")
    learned = [(sk, r) for sk, rs in rows.items() for r in rs if r.learned]
    for label, text in (
        ("trained in this run", "trained in this run"),
        ("reused from its run folder", "reused from their run folders"),
    ):
        names = [f"{sk} {r.name}" for sk, r in learned if _status(r) == label]
        md.append(f"Models {text}: {', '.join(names) or 'none'}.")
    carried = sorted({r.carried for rs in rows.values() for r in rs if r.carried})
    for date in carried:
        names = [f"{sk} {r.name}" for sk, rs in rows.items() for r in rs if r.carried == date]
        md.append(f"Carried over unchanged from the run of {date} (not re-measured by this command; ‡ in the "
                  f"tables): {', '.join(names)}.")  # fmt: skip
    md.append("\nKind: single = one frame in, causal = past frames only, offline = a centred window. Rows marked "
              "(baseline) learn no network; † = extra baseline beyond the issue's list (the pose prior is a Gaussian "
              "on the local rotation vectors of the training clips, the same the hybrid models use). MPJPE is "
              "FK(output) against the clean joints; 'determined' joints are those the joint positions fix, the "
              "others have no child point (n/a where the skeleton has none). Acceleration error: per second^2, each "
              "clip at its own frame rate (the humanoid's test clips run at 30 and 60 fps), pooled over every "
              "acceleration sample. Noise: i.i.d. Gaussian per coordinate, seed 0.\n")  # fmt: skip
    for sk, sk_rows in rows.items():
        rep = reports[sk]
        first = next(iter(rep.values()))[0.0]
        md.append(f"### {sk}: {len(first.clips)} clips ({', '.join(c.clip for c in first.clips[:6])}"
                  f"{', ...' if len(first.clips) > 6 else ''}), {first.overall.frames} frames\n")  # fmt: skip
        if val_clips.get(sk):
            md.append(f"Validation clips (rows for the targets are chosen on these): {', '.join(val_clips[sk][:6])}"
                      f"{', ...' if len(val_clips[sk]) > 6 else ''}.\n")  # fmt: skip
        for n in NOISE_MM:
            md.append(f"Joint noise {n:g} mm:\n\n{TABLE_HEAD}")
            for r in sk_rows:
                if r.name in rep:
                    o = rep[r.name][n].overall
                    kind = r.kind if r.learned else f"{r.kind} (baseline)"
                    cells = [_f(x) for x in (o.mpjpe_mm, o.geo_deg, o.geo_observable_deg, o.geo_unobservable_deg)]
                    mark = (" †" if r.extra else "") + (" ‡" if r.carried else "")
                    md.append(f"| {r.name}{mark} | {kind} | " + " | ".join([*cells, _f(o.accel_mm_s2, 0)]) + " |")
            md.append("")
        unobs = set(first.unobservable_joints)
        joints = list(first.overall.per_joint_deg)
        head = " | ".join(j + ("*" if j in unobs else "") for j in joints)
        md.append("Per-joint geodesic error at 10 mm noise (deg; * = not determined by joint positions):\n\n"
                  f"| solver | {head} |\n|---|" + "---:|" * len(joints))  # fmt: skip
        for r in sk_rows:
            if r.name in rep:
                pj = rep[r.name][10.0].overall.per_joint_deg
                md.append(f"| {r.name} | " + " | ".join(_f(pj[j], 1) for j in joints) + " |")
        md.append("")
    md.append("### Targets\n\nEach target's row is chosen on the validation clips (never on the test clips these "
              "values come from): 1 = learned row with the lowest mean geodesic error at 0 mm; 2, 3, 4 = single-"
              "frame, offline, causal learned row with the lowest mean geodesic error at 10 mm ('2 (by MPJPE)' is "
              "the single-frame row with the lowest MPJPE, for information). '(vs no network)': the same row "
              "against the strongest baseline that learns no network and that a model of its kind could use "
              "instead (single: single-frame baselines; causal: single or causal; offline: any), that baseline "
              "also chosen on the validation clips, per metric; '(vs named baseline)': against the baseline a "
              "reviewer named for that kind where the validation clips chose another. 5.x = the same checks on the "
              "hand. 'val.' is the "
              "row's value on the validation clips. Rows carried from an earlier run have no validation numbers "
              "and are not candidates; checks carried with a skeleton keep that run's choice.\n\n"
              "| target | noise (mm) | metric | row | value | val. | reference | ref. value | ratio | need | result |\n"
              "|---|---:|---|---|---:|---:|---|---:|---:|---|---|")  # fmt: skip
    for c in checks:
        need = f"{c['op']} {c['limit']:.2f}" if c["reference"] is None else f"ratio {c['op']} {c['factor']:g}"
        result = {True: "PASS", False: "**MISS**", None: "n/a"}[c["passed"]]
        target = c["target"] + (" ‡" if c.get("carried_from") else "")
        md.append(f"| {target} | {c['noise_mm']:g} | {METRICS.get(c['metric'], c['metric'])} | {c['row'] or 'none'} | "
                  f"{_f(c['value'])} | {_f(_nan(c.get('val_value')))} | {c['reference'] or '-'} | "
                  f"{_f(_nan(c['reference_value']))} | {_f(_nan(c['ratio']))} | {need} | {result} |")  # fmt: skip
    md.append("\n### Training time (6)\n\nWall time of `trainer.fit` for each recipe, one thread per run (reused and "
              "carried runs report the time of their original training).\n\n"
              "| skeleton | variant | recipe + overrides | epochs | best val. geodesic (deg) | wall time | this run |\n"
              "|---|---|---|---:|---:|---:|---|")  # fmt: skip
    total = 0.0
    for sk, r in learned:
        v = r.info
        if v.get("train_seconds") is not None:
            total += v["train_seconds"]
            recipe = " ".join([f"configs/{v['recipe']}.yaml", *v["overrides"]])
            md.append(f"| {sk} | {r.name} | `{recipe}` | {v['epochs']} | {_f(_nan(v['best_val_geo_deg']))} | "
                      f"{seconds_to_text(v['train_seconds'])} | {_status(r)} |")  # fmt: skip
    md.append(f"\nA full retrain of every recipe above: {seconds_to_text(total)} of one-thread training in all (the "
              "sum of the wall times; `--jobs N` runs N at once), plus the evaluation.")  # fmt: skip
    if res["errors"]:
        md.append("\nFailed (no row): " + "; ".join(f"{k}: {e}" for k, e in res["errors"].items()))
    return "\n".join(md) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skeleton", choices=["humanoid", "hand", "both"], default="both")
    ap.add_argument("--only", default=None, help="train and evaluate only variants whose name contains this")
    ap.add_argument("--jobs", type=int, default=2, help="variants trained in parallel (one thread each)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the evaluation")
    ap.add_argument("--runs-dir", default=os.path.join(HERE, "runs"))
    ap.add_argument("--retrain", action="store_true", help="train even where a matching run exists")
    ap.add_argument("--quick", action="store_true", help="tiny settings, only to test this script")
    ap.add_argument("--out", default=None, help="JSON output (default results/ik_accuracy[_quick].json)")
    ap.add_argument("--results-md", default=None, help="Markdown file (default RESULTS.md; none with --quick)")
    ap.add_argument("--no-carry", action="store_true", help="drop the rows of the previous JSON that this run "
                    "does not measure (default: keep them, marked as carried over)")  # fmt: skip
    args = ap.parse_args(argv)
    out = args.out or os.path.join(HERE, "results", "ik_accuracy_quick.json" if args.quick else "ik_accuracy.json")
    results_md = args.results_md or (None if args.quick else os.path.join(HERE, "RESULTS.md"))
    runs_dir = os.path.join(args.runs_dir, "quick") if args.quick else args.runs_dir
    previous = None
    if not args.no_carry and os.path.exists(out):
        with open(out) as f:
            previous = json.load(f)

    t0 = time.perf_counter()
    skeletons = ["humanoid", "hand"] if args.skeleton == "both" else [args.skeleton]
    todo = {sk: variants(sk, args.only, args.quick) for sk in skeletons}
    errors = train_all([v for vs in todo.values() for v in vs], runs_dir, args.jobs, args.retrain)
    torch.set_num_threads(args.threads)  # after training: in-process training (--jobs 1) sets one thread
    rows, reports, val_reports, checks, payload_sk, val_names = {}, {}, {}, [], {}, {}
    carried_sk = [] if previous is None else [sk for sk in previous.get("skeletons", {}) if sk not in skeletons]
    for sk in [*skeletons, *carried_sk]:
        eval_cfg = resolve_config(_recipe(EVAL_RECIPE[sk]), QUICK_HAND if args.quick and sk == "hand" else [])
        train_clips, val_clips, clips = load_split(eval_cfg)
        fps = {m.name: m.fps for m in clips}
        if sk in carried_sk:  # a skeleton this run does not measure: its rows and checks as they were
            rows[sk], reports[sk] = carried_rows(previous, sk, fps, skip=set())
            for c in previous.get("targets", []):
                if _check_skeleton(c) == sk:
                    checks.append({**c, "skeleton": sk, "carried_from": c.get("carried_from") or previous["date"]})
        else:
            learned = {v["name"]: Row(v["name"], v["kind"], learned=True, info=v)
                       for v in todo[sk] if v["slug"] not in errors}  # fmt: skip
            mirror = bool(eval_cfg["data"]["mirror"])
            base = baseline_rows(clips[0].skeleton, training_pose_prior(train_clips, mirror=mirror))
            measured = base + list(learned.values())
            reports[sk] = evaluate_rows(measured, clips, sk)
            val_reports[sk] = evaluate_rows(measured, val_clips, f"{sk} validation", SELECT_NOISE)
            val_names[sk] = [m.name for m in val_clips]
            skip = {r.name for r in measured} | {b[0] for b in BASELINES}  # baselines are always re-measured
            old, old_reports = ([], {}) if previous is None else carried_rows(previous, sk, fps, skip)
            reports[sk].update(old_reports)
            old_by_name = {r.name: r for r in old}
            # baselines, then the learned rows in VARIANTS order whether measured now or carried over
            rows[sk] = base + [learned.get(name) or old_by_name[name] for name, *_ in VARIANTS[sk]
                               if name in learned or name in old_by_name]  # fmt: skip
            label = (lambda t: str(t)) if sk == "humanoid" else (lambda t: f"5.{t}")
            checks += [{**c, "skeleton": sk} for c in check_targets(reports[sk], val_reports[sk], rows[sk], label)]
        payload_sk[sk] = {
            "clips": [m.name for m in clips],
            "val_clips": [m.name for m in val_clips],
            "rows": {r.name: {"kind": r.kind, "learned": r.learned, "extra_baseline": r.extra,
                              "carried_from": r.carried, **{k: v for k, v in r.info.items() if k != "cfg"},
                              "config": r.info.get("cfg"),
                              "reports": {f"{n:g}": reports[sk][r.name][n].to_dict() for n in NOISE_MM},
                              "val_reports": {f"{n:g}": rep.to_dict()
                                              for n, rep in val_reports.get(sk, {}).get(r.name, {}).items()}}
                     for r in rows[sk]},
        }  # fmt: skip
    res = {
        "command": " ".join([".venv/bin/python benchmarks/ik_accuracy.py", *map(shlex.quote, argv)]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "quick": args.quick,
        "seconds": time.perf_counter() - t0,
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "python": sys.version.split()[0], "torch": torch.__version__, "cpu_count": os.cpu_count()},
        "noise_mm": list(NOISE_MM),
        "select_noise_mm": list(SELECT_NOISE),
        "errors": errors,
    }  # fmt: skip
    write_json(out, _json_safe({**res, "skeletons": payload_sk, "targets": checks}))
    md = markdown(res, rows, reports, checks, val_names)
    if results_md:
        _write_section(results_md, "ik_accuracy", md)
    print(md)
    print(f"wrote {out}" + (f" and the ik_accuracy section of {results_md}" if results_md else ""), file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
