"""Speed of analytic IK and its alternatives, side by side in one run, written to JSON and Markdown.

Compared (humanoid unless said): kinepose's analytic IK (the Numba kernel) in float32 and float64, the
kernel alone (no torch wrapper), the previous torch IK (``benchmarks/_reference_ik_torch.py``), the
least-squares fit (``fit_skeleton``, float64), the hybrid and iknet models in torch and in onnxruntime
(**untrained**, seeded weights of the recipes' sizes: speed does not depend on training), and per-frame
scipy ``least_squares`` IK as users hand-write it (:class:`ScipyIK`). Analytic IK and the previous
torch IK also run at batch 1 ... 100k on three skeletons (15, 38 and 78 joints).

Method: every configuration is warmed up, then all of them run once per round, the rounds interleaved
(the scipy frames split over the rounds too), so that a busy machine slows them alike; latency is the
median over the calls (>= 200 calls at batch 1 on the humanoid). Peak memory is the **max RSS in a
subprocess** (Linux ``VmHWM``, reset through ``/proc/self/clear_refs`` right before the call, minus the RSS
then, so the inputs do not count), one fresh subprocess per group of methods (``MEMORY_GROUPS``); it also
times each method's first call (Numba loads its cached machine code; ``--cold-compile`` also times a
compile from an empty cache). Accuracy on the
same frames for analytic IK, the fit and scipy: geodesic error on the joints positions determine, and
MPJPE of FK(output) against the clean joints, clean and with 10 mm noise.

Run: ``.venv/bin/python benchmarks/speed.py [--rounds 5] [--torch-threads N] [--cold-compile]`` (about
5 minutes on 2 busy cores; ``--torch-threads 1`` on a shared machine: two torch threads competing with other
processes there made the fit up to 30x slower). Writes ``benchmarks/results/speed.json`` and the ``speed`` section of
``benchmarks/RESULTS.md``. ``--quick`` only tests the script (batch 2, one round, tiny models) and writes
``benchmarks/results/speed_quick.json``, no Markdown.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import _reference_ik_torch as reference_ik  # noqa: E402
from foundation import _write_section  # noqa: E402

from kinepose.data.formats.bvh import CMU_TO_M, read_bvh  # noqa: E402
from kinepose.data.sources.deepmimic import DEEPMIMIC_CLIPS, DEFAULT_EVAL_CLIPS, load_deepmimic  # noqa: E402
from kinepose.data.transforms import add_joint_noise  # noqa: E402
from kinepose.evaluation import write_json  # noqa: E402
from kinepose.kinematics import _ik_kernel as kernel  # noqa: E402
from kinepose.kinematics import analytic_ik, determined_mask, fit_skeleton, forward_kinematics  # noqa: E402
from kinepose.kinematics.ik import _compile as compile_plan  # noqa: E402
from kinepose.metrics.rotations import geodesic_error  # noqa: E402

CMU_BVH = "/usr/share/assimp/models/BVH/01_01.bvh"
SKELETON_FILES = {
    "cmu": (CMU_BVH, CMU_TO_M),
    "mixamo": (os.path.join(ROOT, "tests", "fixtures", "mixamo_rig.bvh"), 0.01),
}
BATCHES = (1, 1_000, 100_000)
SWEEP = (1, 10, 100, 1_000, 10_000, 100_000)
MODEL_BATCHES = (1, 1_000)
NOISE_MM = 10.0
COPY_NOISE_MM = 5.0  # noise on the repeated copies of the clips' frames (so no two inputs are the same)
MIN_SINGLE_CALLS = 200
MIN_ROUND_S = 0.05  # each configuration runs for at least this long per round (several calls when fast)
# "equal or better": error <= baseline * 1.02 + 0.1 (mm or deg); 0.1 mm and 0.1 deg are below what motion capture
# resolves (on clean frames both solvers are within 0.05 mm, differing only where a hinge limit clamps)
EQUAL = (1.02, 0.1)
TARGETS = {"throughput": (1_000_000, 300_000), "latency_ms": (1.0, 2.0), "speedup": 1_000}
# (label, implementation, dtype) of each method key.
METHODS = {
    "analytic": ("analytic IK", "kinepose Numba kernel"),
    "kernel": ("analytic IK, kernel only", "_ik_kernel.solve on numpy arrays"),
    "reference": ("previous analytic IK", "torch (_reference_ik_torch)"),
    "fit": ("least-squares fit", "fit_skeleton, 8 LM steps, torch"),
    "hybrid": ("hybrid (untrained)", "torch"),
    "hybrid_ort": ("hybrid (untrained)", "onnxruntime + fit_skeleton"),
    "iknet": ("iknet (untrained)", "torch"),
    "iknet_ort": ("iknet (untrained)", "onnxruntime"),
    "iknet_ort_fresh": ("iknet (untrained)", "predict_onnx as shipped (opens the session per call)"),
    "scipy": ("per-frame scipy least_squares", "scipy (rest start)"),
}


# ----------------------------------------------------------------------------------------------- data


def source_frames(skeleton: str, quick: bool):
    """(Skeleton, (F, J, 3) float64 frames) of the humanoid (all DeepMimic clips) or a BVH rig."""
    if skeleton == "humanoid":
        motions = [load_deepmimic(c) for c in (("walk",) if quick else DEEPMIMIC_CLIPS)]
        return motions[0].skeleton, torch.cat([m.positions() for m in motions])
    path, scale = SKELETON_FILES[skeleton]
    m = read_bvh(path).to_motion(scale)
    return m.skeleton, m.positions()


def tile(frames: torch.Tensor, n: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """(n, J, 3): the frames, then copies of them with ``COPY_NOISE_MM`` Gaussian noise."""
    reps = -(-n // len(frames))
    x = frames.repeat(reps, 1, 1)[:n].clone()
    if n > len(frames):
        g = torch.Generator().manual_seed(seed)
        x[len(frames) :] = add_joint_noise(x[len(frames) :], COPY_NOISE_MM, g)
    return x.to(dtype).contiguous()


# ------------------------------------------------------------------------------------- scipy baseline


class ScipyIK:
    """Per-frame IK as users write it by hand: ``scipy.optimize.least_squares`` (defaults: trust-region
    reflective, 2-point finite differences) over the root translation and a rotation vector per ball joint
    whose rotation moves a point, FK with scipy's ``Rotation`` in the residual. A hinge gets its one angle,
    bounded by the skeleton's limits: without them a bent knee fits the positions as well bent backwards
    with the hip turned round, and from rest the solver often lands there (8 deg mean error in a trial)."""

    def __init__(self, skeleton) -> None:
        self.sk = skeleton
        J = skeleton.num_joints
        self.off = np.array(skeleton.offsets, dtype=np.float64)
        moves = [False] * J
        for j in reversed(range(J)):  # parents come first, so children are final when j is reached
            moves[j] = any(np.linalg.norm(self.off[c]) > 1e-9 or moves[c] for c in skeleton.children[j])
        self.ball = [j for j in range(J) if skeleton.kinds[j] == "ball" and moves[j]]
        self.hinge = [j for j in range(J) if skeleton.kinds[j] == "hinge" and moves[j]]
        self.axes = np.array(skeleton.hinge_axes, dtype=np.float64)[self.hinge]
        self.size = 3 + 3 * len(self.ball) + len(self.hinge)
        lim = np.array(skeleton.limits, dtype=np.float64)[self.hinge].reshape(-1, 2)
        self.lower = np.r_[np.full(self.size - len(self.hinge), -np.inf), np.nan_to_num(lim[:, 0], nan=-np.inf)]
        self.upper = np.r_[np.full(self.size - len(self.hinge), np.inf), np.nan_to_num(lim[:, 1], nan=np.inf)]

    def local_rotmat(self, p: np.ndarray) -> np.ndarray:
        from scipy.spatial.transform import Rotation

        nb = len(self.ball)
        R = np.tile(np.eye(3), (self.sk.num_joints, 1, 1))  # (J, 3, 3)
        if nb:
            R[self.ball] = Rotation.from_rotvec(p[3 : 3 + 3 * nb].reshape(nb, 3)).as_matrix()
        if self.hinge:
            R[self.hinge] = Rotation.from_rotvec(p[3 + 3 * nb :, None] * self.axes).as_matrix()
        return R

    def fk(self, p: np.ndarray) -> np.ndarray:
        R = self.local_rotmat(p)
        G, X = np.empty_like(R), np.empty((len(R), 3))
        for j, q in enumerate(self.sk.parents):
            if q < 0:
                G[j], X[j] = R[j], p[:3]
            else:
                X[j] = X[q] + G[q] @ self.off[j]
                G[j] = G[q] if self.sk.kinds[j] == "end" else G[q] @ R[j]
        return X

    def residual(self, p: np.ndarray, target: np.ndarray) -> np.ndarray:
        return (self.fk(p) - target).ravel()

    def rest_start(self, target: np.ndarray) -> np.ndarray:
        p = np.zeros(self.size)
        p[:3] = target[0]
        return p

    def solve(self, target: np.ndarray, start: np.ndarray) -> np.ndarray:
        from scipy.optimize import least_squares

        return least_squares(self.residual, np.clip(start, self.lower, self.upper), bounds=(self.lower, self.upper),
                             args=(target,)).x  # fmt: skip

    def to_quat(self, p: np.ndarray) -> torch.Tensor:
        """(J, 4) w,x,y,z local rotations."""
        from scipy.spatial.transform import Rotation

        xyzw = Rotation.from_matrix(self.local_rotmat(p)).as_quat()
        return torch.from_numpy(np.roll(xyzw, 1, axis=-1))


# -------------------------------------------------------------------------------------------- methods


@dataclass
class Context:
    """Skeletons, frames, models and ONNX files, created when first asked for."""

    quick: bool
    onnx_dir: str
    frames: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    sessions: dict = field(default_factory=dict)

    def skeleton_frames(self, name: str):
        if name not in self.frames:
            self.frames[name] = source_frames(name, self.quick)
        return self.frames[name]

    def model(self, family: str):
        if family not in self.models:
            from kinepose.config import resolve_config
            from kinepose.models import create_model

            cfg = dict(resolve_config(os.path.join(ROOT, "configs", f"humanoid_{family}.yaml"))["model"])
            cfg.pop("name")
            if self.quick:
                cfg.update(
                    {"dim": 16, "layers": 1, "fit_iterations": 1} if family == "hybrid" else {"hidden": 16, "layers": 1}
                )
            torch.manual_seed(0)
            self.models[family] = create_model(family, self.skeleton_frames("humanoid")[0], **cfg).eval()
        return self.models[family]

    def onnx_path(self, family: str) -> str:
        path = os.path.join(self.onnx_dir, f"{family}.onnx")
        if not os.path.exists(path):
            from kinepose.export.onnx import export_onnx

            export_onnx(self.model(family), path, part="network" if family == "hybrid" else "full")
        return path

    def ort(self, family: str) -> Callable:
        """``predict_onnx`` with its onnxruntime session opened once (as a server would keep it)."""
        if family not in self.sessions:
            import kinepose.export.onnx as kx

            path = self.onnx_path(family)
            session = kx._session(path)

            def predict(x: np.ndarray):
                opener = kx._session
                kx._session = lambda _source: session  # predict_onnx's own code, the session reused
                try:
                    return kx.predict_onnx(path, x)
                finally:
                    kx._session = opener

            self.sessions[family] = predict
        return self.sessions[family]


def make_runner(method: str, ctx: Context, skeleton: str, x: torch.Tensor) -> Callable[[], object]:
    """A call of ``method`` on the (B, J, 3) input ``x`` (its dtype is the dtype of the call)."""
    sk = ctx.skeleton_frames(skeleton)[0]
    if method == "analytic":
        return lambda: analytic_ik(sk, x)
    if method == "kernel":
        plan, xn = compile_plan(sk, frozenset()), np.ascontiguousarray(x.numpy())
        valid = np.ones(xn.shape[:2], bool)
        return lambda: kernel.solve(plan, xn, valid, None, None)
    if method == "reference":
        return lambda: reference_ik.analytic_ik(sk, x)
    if method == "fit":
        return lambda: fit_skeleton(sk, x)
    if method in ("hybrid", "iknet"):
        model, xw = ctx.model(method), x[:, None]  # (B, 1, J, 3): a window of one frame

        def forward():
            with torch.no_grad():
                return model(xw)

        return forward
    if method in ("hybrid_ort", "iknet_ort"):
        predict, xw = ctx.ort(method.removesuffix("_ort")), x[:, None].numpy()
        return lambda: predict(xw)
    if method == "iknet_ort_fresh":
        from kinepose.export.onnx import predict_onnx

        path, xw = ctx.onnx_path("iknet"), x[:, None].numpy()
        return lambda: predict_onnx(path, xw)
    if method == "scipy":
        solver, frame = ScipyIK(sk), x[0].numpy()
        return lambda: solver.solve(frame, solver.rest_start(frame))
    raise ValueError(f"unknown method {method!r}")


@dataclass
class Case:
    method: str
    dtype: str
    skeleton: str
    batch: int
    single_calls: int = MIN_SINGLE_CALLS  # calls at batch 1, over all rounds
    run: Callable[[], object] | None = None
    reps: int = 1
    times: list[float] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.method}/{self.dtype}/{self.skeleton}/{self.batch}"


DTYPES = {"float32": torch.float32, "float64": torch.float64}


def plan_cases(quick: bool, have_cmu: bool) -> list[Case]:
    """Every timed configuration (the scipy frames are timed on their own, see :func:`scipy_round`)."""
    q = (2,)
    b, sweep, mb = (q, q, q) if quick else (BATCHES, SWEEP, MODEL_BATCHES)
    cases = [Case("analytic", "float32", "humanoid", n) for n in sweep]
    cases += [Case("analytic", "float64", "humanoid", n) for n in b]
    cases += [Case("kernel", "float32", "humanoid", n) for n in (b[0], b[-1])]
    cases += [Case("reference", "float32", "humanoid", n) for n in sweep]
    cases += [Case("fit", "float64", "humanoid", n) for n in mb]
    for m in ("hybrid", "hybrid_ort", "iknet", "iknet_ort"):
        cases += [Case(m, "float32", "humanoid", n) for n in mb]
    cases += [Case("iknet_ort_fresh", "float32", "humanoid", mb[0], single_calls=20)]  # ~70 ms a call
    for sk in ("cmu", "mixamo") if have_cmu else ("mixamo",):  # growth with joints: fewer single calls
        cases += [Case("analytic", "float32", sk, n, single_calls=50) for n in sweep]
        cases += [Case("reference", "float32", sk, n, single_calls=20) for n in sweep if n <= 10_000]  # 100k: ~10 s
    return [c for i, c in enumerate(cases) if c.key not in {d.key for d in cases[:i]}]


# ------------------------------------------------------------------------------------------- timing


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def prepare(cases: list[Case], ctx: Context, rounds: int, quick: bool) -> None:
    """Build each case's call, warm it up (first calls compile, load and allocate) and choose its calls per round."""
    for c in cases:
        frames = ctx.skeleton_frames(c.skeleton)[1]
        c.run = make_runner(c.method, ctx, c.skeleton, tile(frames, c.batch, DTYPES[c.dtype]))
        t = _timed(c.run)
        if c.batch < 10_000:  # a second warm-up call, timed (a large batch's first call is warm enough)
            t = _timed(c.run)
        if quick:
            c.reps = 1
        elif c.batch == 1:
            c.reps = math.ceil(c.single_calls / rounds)
        else:
            c.reps = max(1, min(50, math.ceil(MIN_ROUND_S / max(t, 1e-9))))


def time_round(cases: list[Case], r: int) -> None:
    """One call group per case, the order rotated each round so that no case always runs first."""
    k = r % len(cases)
    gc.collect()  # once a round (a collection of this heap takes ~0.3 s), and none while timing
    gc.disable()
    try:
        for c in cases[k:] + cases[:k]:
            c.times.extend(_timed(c.run) for _ in range(c.reps))
    finally:
        gc.enable()


def summarize(c: Case) -> dict:
    med = statistics.median(c.times)
    label, impl = METHODS[c.method]
    return {"key": c.key, "method": c.method, "label": label, "implementation": impl, "dtype": c.dtype,
            "skeleton": c.skeleton, "batch": c.batch, "calls": len(c.times), "median_s": med,
            "min_s": min(c.times), "poses_per_s": c.batch / med, "us_per_pose": 1e6 * med / c.batch}  # fmt: skip


# ----------------------------------------------------------------------------------------- accuracy


def eval_segments(quick: bool) -> list:
    """(name, skeleton, clean (T, J, 3), true local_quat (T, J, 4)): the first frames of each evaluation clip."""
    n = 1 if quick else 40
    out = []
    for name in ("walk",) if quick else DEFAULT_EVAL_CLIPS:
        m = load_deepmimic(name)
        out.append((name, m.skeleton, m.positions()[:n], m.local_quat[:n]))
    return out


def noisy_segments(segments: list, noise_mm: float) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [add_joint_noise(clean, noise_mm, g) for _, _, clean, _ in segments]


def scipy_round(segments: list, inputs: dict, results: dict, which: list[int]) -> None:
    """Solve segments ``which`` frame by frame with scipy, from rest and from the previous frame, timing each
    call; ``inputs[noise][i]`` are the positions of segment i, ``results[(noise, start)][i]`` its solutions."""
    for i in which:
        solver = ScipyIK(segments[i][1])
        for noise, xs in inputs.items():
            x = xs[i].numpy()
            for start in ("rest", "previous"):
                sols, times, prev = [], [], None
                for t in range(len(x)):
                    p0 = solver.rest_start(x[t]) if start == "rest" or prev is None else prev
                    t0 = time.perf_counter()
                    prev = solver.solve(x[t], p0)
                    times.append(time.perf_counter() - t0)
                    sols.append(prev)
                results.setdefault((noise, start), {})[i] = (sols, times)


def score(sk, quat: torch.Tensor, root: torch.Tensor, clean: torch.Tensor, truth: torch.Tensor) -> tuple:
    """(geodesic error (T, D) degrees on the determined joints, joint errors (T, J) metres)."""
    det = torch.from_numpy(determined_mask(sk))
    geo = geodesic_error(quat.double(), truth, degrees=True)[:, det]
    pos = forward_kinematics(sk, quat.double(), root.double()).positions
    return geo, (pos - clean).norm(dim=-1)


def accuracy(segments: list, inputs: dict, scipy_results: dict) -> dict:
    """Mean geodesic error (deg, determined joints) and MPJPE (mm) of every solver, per noise level."""
    solvers = {
        "analytic IK float32": lambda sk, x: analytic_ik(sk, x.float()),
        "analytic IK float64": lambda sk, x: analytic_ik(sk, x),
        "least-squares fit": lambda sk, x: fit_skeleton(sk, x),
        "previous analytic IK float32": lambda sk, x: reference_ik.analytic_ik(sk, x.float()),
    }
    out: dict = {}
    for noise, xs in inputs.items():
        table = out.setdefault(noise, {})
        for name, fn in solvers.items():
            geos, errs = [], []
            for (_, sk, clean, truth), x in zip(segments, xs, strict=True):
                r = fn(sk, x)
                g, e = score(sk, r.local_quat, r.root_pos, clean, truth)
                geos.append(g)
                errs.append(e)
            table[name] = _metrics(geos, errs)
        for start in ("rest", "previous"):
            geos, errs, times = [], [], []
            for i, (_, sk, clean, truth) in enumerate(segments):
                sols, t = scipy_results[(noise, start)][i]
                solver = ScipyIK(sk)
                quat = torch.stack([solver.to_quat(p) for p in sols])
                root = torch.from_numpy(np.stack([p[:3] for p in sols]))
                g, e = score(sk, quat, root, clean, truth)
                geos.append(g)
                errs.append(e)
                times += t
            timing = {"median_s": statistics.median(times), "mean_s": statistics.fmean(times), "calls": len(times)}
            table[f"scipy least_squares, {start} start"] = {**_metrics(geos, errs), **timing}
    return out


def _metrics(geos: list, errs: list) -> dict:
    g, e = torch.cat(geos), torch.cat(errs)
    return {"geo_determined_deg": float(g.mean()), "mpjpe_mm": 1000 * float(e.mean()), "frames": len(e)}


# ------------------------------------------------------------------------------ memory and first call


def _proc_status_kb(field_name: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


# Methods measured together in one fresh subprocess each, in this order: a later method's first call finds
# the libraries an earlier one loaded (torch, onnxruntime; the hybrid, the fit it calls).
MEMORY_GROUPS = (
    (("analytic", "float32", BATCHES), ("analytic", "float64", BATCHES)),
    (("reference", "float32", BATCHES), ("iknet", "float32", MODEL_BATCHES), ("fit", "float64", MODEL_BATCHES),
     ("hybrid", "float32", MODEL_BATCHES)),
    (("iknet_ort", "float32", MODEL_BATCHES), ("hybrid_ort", "float32", MODEL_BATCHES), ("scipy", "float64", (1,))),
)  # fmt: skip


def memory_worker(spec: dict) -> dict:
    """Per method of ``spec["methods"]``: its first call at batch 1, then per batch a warm-up call (below 10k)
    and one call whose peak RSS above the RSS just before it (the inputs already allocated) is measured."""
    torch.set_num_threads(spec["torch_threads"])
    ctx = Context(quick=spec["quick"], onnx_dir=spec["onnx_dir"])
    out: dict = {}
    for method, dtype, batches in spec["methods"]:
        frames = ctx.skeleton_frames("humanoid")[1]
        res = out[f"{method}/{dtype}"] = {"batches": {}}
        res["first_call_s"] = _timed(make_runner(method, ctx, "humanoid", tile(frames, 1, DTYPES[dtype])))
        for n in batches:
            run = make_runner(method, ctx, "humanoid", tile(frames, n, DTYPES[dtype]))
            first = _timed(run) if n < 10_000 else None  # larger batches: measured on their first call
            gc.collect()
            ok = _reset_peak()
            before = _proc_status_kb("VmRSS")
            run()
            peak = _proc_status_kb("VmHWM") if ok else None
            res["batches"][str(n)] = {
                "first_call_s": first,
                "rss_before_mb": before / 1024 if before else None,
                "peak_rss_mb": peak / 1024 if peak else None,
                "peak_extra_mb": (peak - before) / 1024 if peak and before else None,
            }
    return out


def run_worker(spec: dict, extra_env: dict | None = None) -> dict:
    """:func:`memory_worker` in a fresh subprocess."""
    # A fixed mmap threshold (it stops glibc's adaptive one) hands large freed buffers back to the system, so
    # a call's peak is not hidden by memory an earlier call left in the heap.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", **(extra_env or {})}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-worker", json.dumps(spec)],
                          capture_output=True, text=True, env=env, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"memory worker {spec['methods']} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    for v in res.values():
        v["process_s"] = time.perf_counter() - t0  # of the whole group
    return res


# --------------------------------------------------------------------------------- physical limit


# Arithmetic of the kernel per joint (adds, multiplies, divides; comparisons and copies not counted), read off
# _ik_kernel.py (the version with this SHA-1; the report says when the measured kernel differs), with T the
# joint's targets; and its calls of sqrt, atan2, acos, pow. Every non-end joint pays G = Gp L (45) and matrix
# -> quaternion (22 + 2 sqrt); an end site 45. The chest's polar iteration (scratch in float64 for either input
# dtype) stops after ~6 Newton steps of 89 flops and a pow.
COUNTED_KERNEL_SHA1 = "2ac2bf2e66724324234b4c07babd55934eaf9386"
POLAR_ITERATIONS = 6


def joint_cost(solver: int, targets: int) -> dict[str, float]:
    c = {"flops": 67.0, "sqrt": 2.0}
    if solver == kernel.END:
        return {"flops": 45.0}
    if solver == kernel.KABSCH2:  # 25 per target, then the 3x2 polar factor (57), G (45) and L (45)
        c["flops"] += 25 * targets + 147
        c["sqrt"] += 2
    elif solver == kernel.KABSCH3:  # 21 per target, det and scale (33), L (45), the Newton steps
        c["flops"] += 21 * targets + 79 + 89 * POLAR_ITERATIONS
        c["pow"] = 1 + POLAR_ITERATIONS
    elif solver == kernel.TWO_BONE:  # set-up with the shortest arc 205, two candidates of 213
        c["flops"] += 631
        c.update(sqrt=c["sqrt"] + 14, atan2=2, acos=2)
    elif solver == kernel.HINGE:  # 59 per target, the angle's cos/sin (5), the rotation (34), limits: atan2
        c["flops"] += 59 * targets + 39
        c.update(sqrt=c["sqrt"] + 1, atan2=1)
    elif solver in (kernel.SWING, kernel.ANCHORED):  # shortest arc (81), twist rotation (34), products
        c["flops"] += 18 + 81 + 34 + 45 + (59 * (targets - 1) if solver == kernel.ANCHORED else 0)
        c.update(sqrt=c["sqrt"] + 4, sincos=2, atan2=1 if solver == kernel.ANCHORED else 0)
    return c


# Cost of one call in flop-equivalents (about one cycle each when scalar code keeps ~1 flop/cycle in flight).
CALL_COST = {"sqrt": 6, "sincos": 20, "atan2": 40, "acos": 40, "pow": 60}


def physical_limit(sk, mhz: float, cores: int, kernel_sha1: str) -> dict:
    """Flops per pose of ``sk`` and the poses/s ``cores`` cores reach at ~1 flop/cycle each (scalar code)."""
    plan = compile_plan(sk, frozenset())
    total: dict[str, float] = {}
    for j, s in enumerate(plan.solver):
        for name, v in joint_cost(int(s), int(plan.tptr[j + 1] - plan.tptr[j])).items():
            total[name] = total.get(name, 0.0) + v
    cycles = total["flops"] + sum(CALL_COST[n] * v for n, v in total.items() if n != "flops")
    return {"counts": total, "flop_equivalents": cycles, "poses_per_s": cores * mhz * 1e6 / cycles,
            "kernel_sha1": kernel_sha1, "counted_kernel_sha1": COUNTED_KERNEL_SHA1,
            "assumptions": f"{cores} cores x {mhz:.0f} MHz x ~1 flop/cycle (scalar code with dependent chains; "
                           f"the peak is 4 with two FMA ports); calls in flop-equivalents: {CALL_COST}"}  # fmt: skip


# ----------------------------------------------------------------------------------------- report


def source_info() -> dict:
    """The commit measured and whether the analytic IK's files differ from it (others edit them meanwhile)."""

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return ""

    with open(kernel.__file__, "rb") as f:
        sha = hashlib.sha1(f.read()).hexdigest()
    files = ["src/kinepose/kinematics/_ik_kernel.py", "src/kinepose/kinematics/ik.py"]
    return {"git_head": git("rev-parse", "--short", "HEAD"), "modified": git("status", "--short", "--", *files),
            "kernel_sha1": sha}  # fmt: skip


def machine_info() -> dict:
    import numba

    mhz = 0.0
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    mhz = max(mhz, float(line.split(":")[1]))
                elif line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                "numba": numba.__version__}  # fmt: skip
    for mod in ("scipy", "onnxruntime"):
        versions[mod] = __import__(mod).__version__
    threads = {"torch_threads": torch.get_num_threads(), "numba_threads": numba.get_num_threads()}
    return {"cpus": os.cpu_count(), "cpu_model": model, "mhz": mhz or 2000.0, "machine": platform.machine(),
            "versions": versions, **threads}  # fmt: skip


def _status(ok: bool, floor_ok: bool | None = None) -> str:
    if ok:
        return "PASS"
    return "FAIL (floor met)" if floor_ok else "FAIL"


def _humanoid_row(rows: dict, method: str, dtype: str, largest: bool) -> dict | None:
    mine = [r for r in rows.values() if (r["method"], r["dtype"], r["skeleton"]) == (method, dtype, "humanoid")]
    return (max if largest else min)(mine, key=lambda r: r["batch"]) if mine else None


def targets(rows: dict, acc: dict, limit: dict) -> list[dict]:
    """The issue's three targets, against rows of this run."""
    big = _humanoid_row(rows, "analytic", "float32", largest=True)
    one = _humanoid_row(rows, "analytic", "float32", largest=False)
    (goal, floor), (lgoal, lfloor) = TARGETS["throughput"], TARGETS["latency_ms"]
    rate, lat = big["poses_per_s"], 1000 * one["median_s"]
    out = [
        {"target": f"analytic IK, float32, humanoid, batch {big['batch']:,}: poses/s", "value": rate, "goal": goal,
         "floor": floor, "status": _status(rate >= goal, rate >= floor),
         "physical_limit_poses_per_s": limit["poses_per_s"]},
        {"target": f"analytic IK, float32, batch {one['batch']}: latency (ms)", "value": lat, "goal": lgoal,
         "floor": lfloor, "status": _status(lat <= lgoal, lat <= lfloor)},
    ]  # fmt: skip
    base_name = "scipy least_squares, previous start"
    mine = {"analytic IK float32": ("analytic", "float32"), "analytic IK float64": ("analytic", "float64"),
            "least-squares fit": ("fit", "float64")}  # fmt: skip
    for noise, table in acc.items():
        base = table[base_name]
        for name, (method, dtype) in mine.items():
            batched, single = (_humanoid_row(rows, method, dtype, largest) for largest in (True, False))
            if batched is None:
                continue
            equal = all(table[name][m] <= base[m] * EQUAL[0] + EQUAL[1] for m in ("geo_determined_deg", "mpjpe_mm"))
            speedup = batched["poses_per_s"] * base["mean_s"]
            what = f"{name} (batch {batched['batch']:,}) vs {base_name}, {noise}: speed-up at equal or better accuracy"
            out.append({"target": what, "value": speedup, "single_frame_speedup": base["median_s"] / single["median_s"],
                        "goal": TARGETS["speedup"], "floor": None, "equal_or_better_accuracy": equal,
                        "status": _status(speedup >= TARGETS["speedup"] and equal)})  # fmt: skip
    return out


def _rate(v: float) -> str:
    return f"{v / 1e6:.2f} M" if v >= 1e6 else f"{v / 1e3:.1f} k" if v >= 1e3 else f"{v:.1f}"


def _dur(s: float | None) -> str:
    if s is None:
        return ""
    return f"{s * 1e6:.0f} us" if s < 1e-3 else f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def _ratio(v: float) -> str:
    return f"{v:,.0f}x" if v >= 10 else f"{v:.2f}x"


def _mb(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"


def _header(payload: dict, command: str) -> list[str]:
    m, v = payload["machine"], payload["machine"]["versions"]
    la, lb = payload["load_average_start"], payload["load_average_end"]
    load = f"Load average (1, 5, 15 min): {la[0]:.2f}, {la[1]:.2f}, {la[2]:.2f} at the start, "
    load += f"{lb[0]:.2f}, {lb[1]:.2f}, {lb[2]:.2f} at the end."
    src = payload["source"]
    code = f"Code: commit {src['git_head']}" + (
        f" with uncommitted changes ({src['modified']})" if src["modified"] else ""
    )
    load = f"{code}; kernel file SHA-1 {src['kernel_sha1'][:10]}. " + load
    if src.get("kernel_sha1_end", src["kernel_sha1"]) != src["kernel_sha1"]:
        load += " The kernel file changed during the run (a first call may then include compiling)."
    if la[0] > 1.0:
        load += (
            " **Other processes shared the CPUs (load above 1.0 at the start): absolute numbers are pessimistic and"
            " noisy, the ratios were measured side by side. To be re-run on a quiet machine.**"
        )
    return [
        "## speed",
        "",
        f"Command: `{command}` (measured {payload['date']}, {payload['seconds']:.0f} s; {m['cpus']} cores, "
        f"{m['cpu_model']}; torch {v['torch']} with {m['torch_threads']} thread(s), Numba {v['numba']} with "
        f"{m['numba_threads']} ({m['numba_threading_layer']}), onnxruntime {v['onnxruntime']}, scipy {v['scipy']}).",
        "",
        load,
        "",
    ]


def _main_table(payload: dict, rows: dict) -> list[str]:
    mem = payload["memory"]
    single = min((r["calls"] for r in rows.values() if r["batch"] == 1 and r["skeleton"] == "humanoid"
                  and r["method"] != "iknet_ort_fresh"), default=1)  # fmt: skip
    groups = "; ".join(", ".join(g) for g in payload["memory_groups"])
    out = [
        f"Humanoid (15 joints). Latency: median per call over {payload['rounds']} interleaved rounds (batch 1: "
        f"{single} calls or more). Peak RSS: {payload['memory_method']}. First call: in that subprocess, fresh for "
        f"each group of methods ({groups}: later ones find the libraries loaded), the first call at batch 1 (Numba "
        "loads its cached machine code, torch and onnxruntime set up) and at larger batches the first call at that "
        "batch (the parallel kernel loads at >= 256). Models: **untrained** (seeded, the recipes' sizes; speed does "
        "not depend on the weights). scipy rows: per frame on the accuracy frames below, both starting points.",
        "",
        "| method | implementation | dtype | batch | poses/s | latency per call | peak RSS (MB) | first call |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for meth in METHODS:
        mine = [r for r in rows.values() if r["method"] == meth and r["skeleton"] == "humanoid"]
        for r in sorted(mine, key=lambda r: (r["dtype"], r["batch"])):
            if meth in ("analytic", "reference") and r["batch"] not in BATCHES and not payload["quick"]:
                continue  # the batch sweep has its own table
            worker = mem.get(f"{meth}/{r['dtype']}", {})
            m = worker.get("batches", {}).get(str(r["batch"]), {})
            first = worker.get("first_call_s") if r["batch"] == 1 else m.get("first_call_s")
            out.append(
                f"| {r['label']} | {r['implementation']} | {r['dtype']} | {r['batch']:,} | {_rate(r['poses_per_s'])} "
                f"| {_dur(r['median_s'])} | {_mb(m.get('peak_extra_mb'))} | {_dur(first)} |"
            )
    scipy_mem = mem.get("scipy/float64", {})
    for noise, table in payload["accuracy"].items():
        for start in ("rest", "previous"):
            a = table[f"scipy least_squares, {start} start"]
            shown = start == "rest" and noise == "clean"  # measured once, from rest
            peak = scipy_mem.get("batches", {}).get("1", {}).get("peak_extra_mb") if shown else None
            first = scipy_mem.get("first_call_s") if shown else None
            out.append(
                f"| per-frame scipy least_squares, {noise} | scipy, {start} start | float64 | 1 "
                f"| {1 / a['mean_s']:.1f} | {_dur(a['median_s'])} | {_mb(peak)} | {_dur(first)} |"
            )
    cold = payload.get("cold_compile")
    if cold:
        batch, b = next(iter(cold["batches"].items()))
        out += [
            "",
            f"With an empty Numba cache (compiling, `--cold-compile`): first call {_dur(cold['first_call_s'])} at "
            f"batch 1, then {_dur(b['first_call_s'])} for the first parallel call (batch {int(batch):,}).",
        ]
    return out


def _growth_table(payload: dict, rows: dict) -> list[str]:
    sweep = sorted({r["batch"] for r in rows.values() if r["method"] == "analytic" and r["dtype"] == "float32"})
    out = [
        "",
        "Growth with batch and joint count: microseconds per pose (median call time / batch), float32. CMU and "
        "Mixamo frames: the files' own clips repeated with noise (the previous IK stops at 10k there: ~10 s a call).",
        "",
        "| method | skeleton (joints) | " + " | ".join(f"{b:,}" for b in sweep) + " |",
        "|---|---|" + "---:|" * len(sweep),
    ]
    joints = payload["skeleton_joints"]
    for meth in ("analytic", "reference"):
        for sk, J in joints.items():
            cells = [rows.get(f"{meth}/float32/{sk}/{b}") for b in sweep]
            if any(cells):
                values = " | ".join("" if c is None else f"{c['us_per_pose']:.2f}" for c in cells)
                out.append(f"| {METHODS[meth][0]} | {sk} ({J}) | {values} |")
    if payload.get("scipy_joints"):
        rest = payload["accuracy"]["clean"]["scipy least_squares, rest start"]
        per = {"humanoid": (rest["median_s"], f"median of {rest['calls']} frames")}
        per.update({k: (v["median_s"], "1 frame") for k, v in payload["scipy_joints"].items()})
        for sk, (t, what) in per.items():
            pad = " |" * (len(sweep) - 1)
            out.append(f"| scipy least_squares, rest start ({what}) | {sk} ({joints[sk]}) | {1e6 * t:,.0f} |{pad}")
    return out


def _accuracy_table(payload: dict) -> list[str]:
    acc = payload["accuracy"]
    first = next(iter(acc.values()))
    frames = next(iter(first.values()))["frames"]
    out = [
        "",
        f"Accuracy on the same {frames} frames (the first {payload['accuracy_frames_per_clip']} of each evaluation "
        f"clip: {', '.join(payload['accuracy_clips'])}; scipy solved them in the rounds above): mean geodesic error "
        "on the joints positions determine (degrees) and MPJPE of FK(output) against the clean joints (mm).",
        "",
        "| solver | " + " | ".join(f"{n}: geodesic (deg) | {n}: MPJPE (mm)" for n in acc) + " |",
        "|---|" + "---:|---:|" * len(acc),
    ]
    for name in first:
        cells = [f"{t[name]['geo_determined_deg']:.3f} | {t[name]['mpjpe_mm']:.3f}" for t in acc.values()]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return out


def _targets_table(payload: dict) -> list[str]:
    out = [
        "",
        "### Targets",
        "",
        f'"Equal or better": both errors at most the baseline\'s x {EQUAL[0]} + {EQUAL[1]} (deg, mm; smaller '
        "differences are below what motion capture resolves). The speed-up divides batched poses/s (analytic IK "
        "at the largest batch, the fit at 1k) by the baseline's frames per second (1 / mean time per frame); the "
        "single-frame speed-up divides the latencies at batch 1.",
        "",
        "| target | measured | goal (floor) | status |",
        "|---|---:|---:|---|",
    ]
    for t in payload["targets"]:
        if "speed-up" in t["target"]:
            acc = "equal or better" if t["equal_or_better_accuracy"] else "worse"
            val = f"{_ratio(t['value'])} (single frame {_ratio(t['single_frame_speedup'])}); accuracy {acc}"
            goal = f"{t['goal']:,}x"
        elif "latency" in t["target"]:
            val, goal = f"{t['value']:.3f} ms", f"{t['goal']} ms ({t['floor']} ms)"
        else:
            val = f"{_rate(t['value'])} (physical limit ~{_rate(t['physical_limit_poses_per_s'])})"
            goal = f"{_rate(t['goal'])} ({_rate(t['floor'])})"
        out.append(f"| {t['target']} | {val} | {goal} | {t['status']} |")
    lim = payload["physical_limit"]
    c = lim["counts"]
    stale = ""
    if lim["kernel_sha1"] != lim["counted_kernel_sha1"]:
        stale = (f" (Counted on the kernel with SHA-1 {lim['counted_kernel_sha1'][:10]}; the one measured differs: "
                 "check that the counts still hold.)")  # fmt: skip
    out += [
        "",
        "Physical limit (estimate): the kernel's arithmetic for one humanoid pose, counted per joint type "
        f"(`joint_cost` in the script), is {c['flops']:,.0f} flops plus {c.get('sqrt', 0):.0f} sqrt, "
        f"{c.get('atan2', 0) + c.get('acos', 0):.0f} atan2/acos and {c.get('pow', 0):.0f} pow, "
        f"~{lim['flop_equivalents']:,.0f} flop-equivalents. At {lim['assumptions']}: **~{_rate(lim['poses_per_s'])} "
        "poses/s**. 1 M poses/s on 2 cores needs fewer operations per pose or SIMD across poses, not only less "
        "overhead." + stale,
        "",
    ]
    return out


def markdown(payload: dict, command: str) -> str:
    rows = {r["key"]: r for r in payload["rows"]}
    lines = _header(payload, command) + _main_table(payload, rows) + _growth_table(payload, rows)
    return "\n".join(lines + _accuracy_table(payload) + _targets_table(payload))


# -------------------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="batch 2, one round, tiny models: tests the script")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/speed.json or speed_quick.json)")
    ap.add_argument("--results-md", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--torch-threads", type=int, default=None, help="torch and onnxruntime threads (default torch's)")
    ap.add_argument(
        "--cold-compile", action="store_true", help="also time a Numba compile from an empty cache (~1 min)"
    )
    ap.add_argument("--no-memory", action="store_true", help="skip the subprocess memory and first-call measurements")
    ap.add_argument("--memory-worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_worker:
        print(json.dumps(memory_worker(json.loads(args.memory_worker))))
        return 0
    load_start = os.getloadavg()
    source = source_info()  # before the run: the kernel file may change while it runs
    t_start = time.perf_counter()
    rounds = args.rounds or (1 if args.quick else 5)
    threads = args.torch_threads or (1 if args.quick else None)
    if threads:
        torch.set_num_threads(threads)
    out = args.out or os.path.join(HERE, "results", "speed_quick.json" if args.quick else "speed.json")
    have_cmu = os.path.exists(CMU_BVH) and not args.quick  # --quick: the small Mixamo fixture only

    with tempfile.TemporaryDirectory() as onnx_dir:
        ctx = Context(quick=args.quick, onnx_dir=onnx_dir)
        cases = plan_cases(args.quick, have_cmu)
        _log(f"preparing {len(cases)} configurations")
        prepare(cases, ctx, rounds, args.quick)
        segments = eval_segments(args.quick)
        inputs = {"clean": [c for _, _, c, _ in segments], f"{NOISE_MM:g} mm noise": noisy_segments(segments, NOISE_MM)}
        scipy_results: dict = {}
        chunks = np.array_split(np.arange(len(segments)), rounds)
        for r in range(rounds):
            time_round(cases, r)
            scipy_round(segments, inputs, scipy_results, [int(i) for i in chunks[r]])
            _log(f"round {r + 1}/{rounds} done, {time.perf_counter() - t_start:.0f} s")
        rows = [summarize(c) for c in cases]
        acc = accuracy(segments, inputs, scipy_results)
        scipy_joints = {}
        # the baseline's growth with joints: one CMU frame (a Mixamo frame took 29 s in a trial)
        for sk in ("cmu",) if have_cmu else ():
            solver, x = ScipyIK(ctx.skeleton_frames(sk)[0]), ctx.skeleton_frames(sk)[1][0].numpy()
            t = _timed(lambda solver=solver, x=x: solver.solve(x, solver.rest_start(x)))
            scipy_joints[sk] = {"frames": 1, "start": "rest", "median_s": t}
        _log(f"accuracy done, {time.perf_counter() - t_start:.0f} s")

        memory: dict = {}
        cold = None
        base = {"quick": args.quick, "onnx_dir": onnx_dir, "torch_threads": torch.get_num_threads()}
        if args.quick:  # the worker's code in this process (not fresh: its numbers mean little)
            memory = memory_worker({**base, "methods": [("analytic", "float32", (2,))]})
        elif not args.no_memory:
            for group in MEMORY_GROUPS:
                memory.update(run_worker({**base, "methods": group}))
                _log(f"memory {[f'{m}/{d}' for m, d, _ in group]} done, {time.perf_counter() - t_start:.0f} s")
        if args.cold_compile:
            with tempfile.TemporaryDirectory() as cache:
                spec = {**base, "methods": [("analytic", "float32", (2,) if args.quick else (1_000,))]}
                cold = run_worker(spec, {"NUMBA_CACHE_DIR": cache})["analytic/float32"]

    machine = machine_info()
    import numba

    machine["numba_threading_layer"] = numba.threading_layer()
    limit = physical_limit(
        ctx.skeleton_frames("humanoid")[0], machine["mhz"], machine["cpus"] or 2, source["kernel_sha1"]
    )
    by_key = {r["key"]: r for r in rows}
    payload = {
        "date": time.strftime("%Y-%m-%d"),
        "quick": args.quick,
        "rounds": rounds,
        "machine": machine,
        "source": {**source, "kernel_sha1_end": source_info()["kernel_sha1"]},
        "load_average_start": list(load_start),
        "load_average_end": list(os.getloadavg()),
        "skeleton_joints": {k: ctx.skeleton_frames(k)[0].num_joints for k in ctx.frames},
        "rows": rows,
        "raw_times_s": {c.key: c.times for c in cases},
        "memory": memory,
        "memory_method": "max RSS (Linux VmHWM, reset via /proc/self/clear_refs) of the call in a subprocess, minus "
        "the RSS just before it" + (" (--quick: in this process)" if args.quick else ""),
        "memory_groups": [[f"{m}/{d}" for m, d, _ in g] for g in MEMORY_GROUPS],
        "cold_compile": cold,
        "accuracy": acc,
        "accuracy_clips": [name for name, *_ in segments],
        "accuracy_frames_per_clip": max(len(c) for _, _, c, _ in segments),
        "scipy_joints": scipy_joints,
        "physical_limit": limit,
        "targets": targets(by_key, acc, limit),
    }
    payload["seconds"] = time.perf_counter() - t_start
    write_json(out, payload)
    given = sys.argv[1:] if argv is None else argv
    command = " ".join([".venv/bin/python benchmarks/speed.py", *given])
    md = markdown(payload, command)
    if not args.quick:
        _write_section(args.results_md, "speed", md)
    print(md)
    return 0


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
