"""IK accuracy of analytic and learned solvers on clean and noisy joints, written to JSON and Markdown.

For the humanoid (the five DeepMimic evaluation clips) and the 21-joint hand (held-out synthetic
sequences), every row below is scored at joint noise 0, 5, 10 and 20 mm (same clips, same noise seed):
mean geodesic error over the rotated joints, split into the joints positions determine and the others,
per-joint geodesic error, MPJPE of FK(output) against the clean joints, and acceleration error. Rows:
analytic IK alone and after a causal / centered moving average (window 5), two extra least-squares
baselines, and one trained model per entry of ``VARIANTS``. The targets of the issue are then checked
against rows of the same run, and each recipe's training wall time is reported.

Run: ``.venv/bin/python benchmarks/ik_accuracy.py [--jobs 2] [--skeleton both] [--only PATTERN]``.
Trains into ``benchmarks/runs/<slug>/`` (a run whose ``config.yaml`` equals the resolved config and
that has ``model.pt`` is reused; ``--retrain`` forces), writes ``benchmarks/results/ik_accuracy.json``
and the ``ik_accuracy`` section of ``benchmarks/RESULTS.md``. ``--quick`` only tests the script: one
tiny epoch per model, written to ``benchmarks/results/ik_accuracy_quick.json`` and no Markdown file.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
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
from kinepose.inference import model_solver
from kinepose.kinematics import moving_average
from kinepose.models import load_model
from kinepose.training import seconds_to_text

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
BASELINES = [
    ("analytic IK", "single", "analytic", None, False),
    ("analytic IK + causal MA5", "causal", "analytic", "causal", False),
    ("analytic IK + centered MA5", "offline", "analytic", "centered", False),
    ("analytic IK + least-squares fit", "single", "fitted", None, True),
    ("centered MA5 + least-squares fit", "offline", "fitted", "centered", True),
]
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


def baseline_rows(skeleton) -> list[Row]:
    rows = []
    for name, kind, solver, ma, extra in BASELINES:
        pre = None if ma is None else (lambda x, c=(ma == "causal"): moving_average(x, 5, causal=c))
        fn = analytic_solver(skeleton) if solver == "analytic" else fitted_solver(skeleton)
        rows.append(Row(name, kind, fn, pre, extra=extra))
    return rows


def evaluate_rows(rows: list[Row], clips: list, desc: str) -> dict[str, dict[float, EvalReport]]:
    """Every row at every noise level on the same clips and noise seed."""
    out: dict[str, dict[float, EvalReport]] = {}
    for row in tqdm(rows, desc=f"evaluate {desc}", unit="row", disable=not progress_enabled()):
        solver = row.solver or model_solver(load_model(row.info["run_dir"]))
        out[row.name] = {n: evaluate_solver(solver, clips, row.name, noise_mm=n, seed=0, preprocess=row.preprocess)
                         for n in NOISE_MM}  # fmt: skip
    return out


METRICS = {"geo_deg": "mean geodesic (deg)", "mpjpe_mm": "FK MPJPE (mm)", "accel_mm": "accel. error (mm/frame^2)",
           "geo_observable_deg": "geodesic, determined joints (deg)",
           "geo_unobservable_deg": "geodesic, undetermined joints (deg)"}  # fmt: skip


def check_targets(reports: dict, rows: list[Row], label: Callable[[int], str]) -> list[dict]:
    """Targets 1-4 of the issue against rows of this run; ``label`` names the target (e.g. 5.1 for the hand)."""

    def val(row: str | None, noise: float, metric: str) -> float:
        return getattr(reports[row][noise].overall, metric) if row in reports else math.nan

    def best(kind: str | None, noise: float, metric: str = "geo_deg") -> str | None:
        cands = [r.name for r in rows if r.learned and (kind is None or r.kind == kind) and r.name in reports]
        return min(cands, key=lambda n: val(n, noise, metric), default=None)

    checks = []

    def check(target, noise, metric, row, op, limit=None, ref=None, factor=1.0, ref_metric=None, note=""):
        value = val(row, noise, metric)
        ref_value = None if ref is None else val(ref, noise, ref_metric or metric)
        bound = limit if ref is None else factor * ref_value
        ok = (value <= bound if op == "<=" else value < bound) if math.isfinite(value + bound) else None
        ratio = None if ref is None else (value / ref_value if ref_value else math.nan)
        checks.append({"target": label(target) + note, "noise_mm": noise, "metric": metric, "row": row, "value": value,
                       "reference": ref, "reference_value": ref_value, "op": op, "factor": factor,
                       "limit": bound, "ratio": ratio, "passed": ok})  # fmt: skip

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
    check(4, 10.0, "accel_mm", b4, "<=", ref=b2, factor=0.5)
    return checks


TABLE_HEAD = ("| solver | kind | MPJPE FK (mm) | geodesic, all (deg) | determined (deg) | undetermined (deg) "
              "| accel. error (mm/frame^2) |\n|---|---|---:|---:|---:|---:|---:|")  # fmt: skip


def _json_safe(x):
    """NaN (e.g. the hand's undetermined-joint error: there are none) -> null, so the file is strict JSON."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _f(x, digits: int = 2) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def markdown(res: dict, rows: dict[str, list[Row]], reports: dict, checks: list[dict], todo: dict) -> str:
    """The ``ik_accuracy`` section of RESULTS.md."""
    m = res["machine"]
    md = [f"## ik_accuracy\n\nCommand: `{res['command']}` (measured {res['date']}, {seconds_to_text(res['seconds'])}, "
          f"torch {m['torch']}, {m['cpu_count']} CPUs, {m['platform']}).\n"]  # fmt: skip
    if res["quick"]:
        md.append("**Quick mode: one tiny epoch per model; these numbers only test the script.**\n")
    md.append("Kind: single = one frame in, causal = past frames only, offline = a centred window. Rows marked "
              "(baseline) are not trained; † = extra baseline beyond the issue's list. MPJPE is FK(output) against "
              "the clean joints; 'determined' joints are those the joint positions fix, the others have no child "
              "point (n/a where the skeleton has none). Noise: i.i.d. Gaussian per coordinate, seed 0.\n")  # fmt: skip
    for sk, sk_rows in rows.items():
        rep = reports[sk]
        first = next(iter(rep.values()))[0.0]
        md.append(f"### {sk}: {len(first.clips)} clips ({', '.join(c.clip for c in first.clips[:6])}"
                  f"{', ...' if len(first.clips) > 6 else ''}), {first.overall.frames} frames\n")  # fmt: skip
        for n in NOISE_MM:
            md.append(f"Joint noise {n:g} mm:\n\n{TABLE_HEAD}")
            for r in sk_rows:
                if r.name in rep:
                    o = rep[r.name][n].overall
                    kind = r.kind if r.learned else f"{r.kind} (baseline)"
                    cells = [o.mpjpe_mm, o.geo_deg, o.geo_observable_deg, o.geo_unobservable_deg, o.accel_mm]
                    md.append(f"| {r.name}{' †' if r.extra else ''} | {kind} | " + " | ".join(map(_f, cells)) + " |")
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
    md.append("### Targets\n\nBest rows: 1 = learned row with the lowest mean geodesic error at 0 mm; 2, 3, 4 = single-"
              "frame, offline, causal learned row with the lowest mean geodesic error at 10 mm ('2 (by MPJPE)' is "
              "the single-frame row with the lowest MPJPE, for information). 5.x = the same checks on the hand.\n\n"
              "| target | noise (mm) | metric | row | value | reference | ref. value | ratio | need | result |\n"
              "|---|---:|---|---|---:|---|---:|---:|---|---|")  # fmt: skip
    for c in checks:
        need = f"{c['op']} {c['limit']:.2f}" if c["reference"] is None else f"ratio {c['op']} {c['factor']:g}"
        result = {True: "PASS", False: "**MISS**", None: "n/a"}[c["passed"]]
        md.append(f"| {c['target']} | {c['noise_mm']:g} | {METRICS[c['metric']]} | {c['row'] or 'none'} | "
                  f"{_f(c['value'])} | {c['reference'] or '-'} | {_f(c['reference_value'])} | {_f(c['ratio'])} | "
                  f"{need} | {result} |")  # fmt: skip
    md.append("\n### Training time (6)\n\nWall time of `trainer.fit` for each recipe on this machine, one thread per "
              "run (reused runs report the time of their original training).\n\n"
              "| skeleton | variant | recipe + overrides | epochs | best val. geodesic (deg) | wall time |\n"
              "|---|---|---|---:|---:|---:|")  # fmt: skip
    for sk, vs in todo.items():
        for v in vs:
            if "train_seconds" in v:
                recipe = " ".join([f"configs/{v['recipe']}.yaml", *v["overrides"]])
                md.append(f"| {sk} | {v['name']} | `{recipe}` | {v['epochs']} | {_f(v['best_val_geo_deg'])} | "
                          f"{seconds_to_text(v['train_seconds'])} |")  # fmt: skip
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
    args = ap.parse_args(argv)
    out = args.out or os.path.join(HERE, "results", "ik_accuracy_quick.json" if args.quick else "ik_accuracy.json")
    results_md = args.results_md or (None if args.quick else os.path.join(HERE, "RESULTS.md"))
    runs_dir = os.path.join(args.runs_dir, "quick") if args.quick else args.runs_dir

    t0 = time.perf_counter()
    skeletons = ["humanoid", "hand"] if args.skeleton == "both" else [args.skeleton]
    todo = {sk: variants(sk, args.only, args.quick) for sk in skeletons}
    errors = train_all([v for vs in todo.values() for v in vs], runs_dir, args.jobs, args.retrain)
    torch.set_num_threads(args.threads)  # after training: in-process training (--jobs 1) sets one thread
    rows, reports, checks, payload_sk = {}, {}, [], {}
    for sk in skeletons:
        eval_cfg = resolve_config(_recipe(EVAL_RECIPE[sk]), QUICK_HAND if args.quick and sk == "hand" else [])
        clips = load_split(eval_cfg)[2]
        learned = [Row(v["name"], v["kind"], learned=True, info=v) for v in todo[sk] if v["slug"] not in errors]
        rows[sk] = baseline_rows(clips[0].skeleton) + learned
        reports[sk] = evaluate_rows(rows[sk], clips, sk)
        checks += check_targets(reports[sk], rows[sk], (lambda t: str(t)) if sk == "humanoid" else (lambda t: f"5.{t}"))
        payload_sk[sk] = {
            "clips": [m.name for m in clips],
            "rows": {r.name: {"kind": r.kind, "learned": r.learned, "extra_baseline": r.extra,
                              **{k: v for k, v in r.info.items() if k != "cfg"}, "config": r.info.get("cfg"),
                              "reports": {f"{n:g}": reports[sk][r.name][n].to_dict() for n in NOISE_MM}}
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
        "errors": errors,
    }  # fmt: skip
    write_json(out, _json_safe({**res, "skeletons": payload_sk, "targets": checks}))
    md = markdown(res, rows, reports, checks, todo)
    if results_md:
        _write_section(results_md, "ik_accuracy", md)
    print(md)
    print(f"wrote {out}" + (f" and the ik_accuracy section of {results_md}" if results_md else ""), file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
