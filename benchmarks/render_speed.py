"""Speed of the offline training-image renderer (:mod:`kinepose.render`), and a contact sheet of its output.

Renders ``--frames`` random frames of the DeepMimic walk from random cameras (random background, lighting, clothing,
occluder with probability 0.5) at 128x128 and 256x256 on the CPU, in one process and thread, and reports images per
second. Also draws a 4x4 contact sheet (bodies from a few DeepMimic clips and synthetic hands) to
``docs/images/render_contact_sheet.png``.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/render_speed.py [--frames 200] [--no-sheet]``; writes
``benchmarks/results/render_speed.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from foundation import _write_section

from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.data.sources.synthetic_hand import sample_hand_poses
from kinepose.kinematics.fk import forward_kinematics
from kinepose.render import RenderConfig, render_views
from kinepose.skeleton.presets import get_skeleton

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _clip(name: str) -> tuple:
    m = load_deepmimic(name)
    out = forward_kinematics(m.skeleton, m.local_quat, m.root_pos)
    return m.skeleton, out.positions, out.global_rotmat


def _hands(n: int, seed: int) -> tuple:
    sk = get_skeleton("hand21")
    g = torch.Generator().manual_seed(seed)
    q, root, offsets = sample_hand_poses(n, g, return_offsets=True)
    out = forward_kinematics(sk, q, root, offsets=offsets)
    return sk, out.positions, out.global_rotmat


def _render_part(args: tuple) -> float:
    """One worker's share (frames, size, seed): its mean visibility (the images are thrown away)."""
    frames, size, seed = args
    torch.set_num_threads(1)
    sk, x, G = _clip("walk")
    _, labels, _ = render_views(sk, x, G, frames, seed, RenderConfig(image_size=(size, size)))
    return float(labels.visibility.mean())


def measure(frames: int, sizes: list[int], seed: int, workers: int = 1) -> list[dict]:
    """Images per second at each square size (after a warm-up of a few images), in one process or split over
    ``workers`` processes (one thread each: how a training set is made on this machine's cores)."""
    import multiprocessing as mp

    sk, x, G = _clip("walk")
    rows = []
    for size in sizes:
        cfg = RenderConfig(image_size=(size, size))
        render_views(sk, x, G, 4, seed, cfg)  # warm-up
        t0 = time.perf_counter()
        if workers == 1:
            _, labels, _ = render_views(sk, x, G, frames, seed, cfg)
            vis = float(labels.visibility.mean())
        else:
            with mp.get_context("fork").Pool(workers) as pool:
                vis = float(
                    np.mean(pool.map(_render_part, [(frames // workers, size, seed + k) for k in range(workers)]))
                )
        dt = time.perf_counter() - t0
        rows.append(
            {
                "size": f"{size}x{size}",
                "workers": workers,
                "frames": frames,
                "seconds": round(dt, 3),
                "images_per_s": round(frames / dt, 1),
                "images_per_min": round(60 * frames / dt),
                "visible_fraction": round(vis, 3),
            }
        )
    return rows


def contact_sheet(path: str, seed: int, size: int = 128) -> int:
    """A 4x4 grid: 12 bodies (3 DeepMimic clips x 4) and 4 hands; returns the file size in bytes."""
    from PIL import Image

    cfg = RenderConfig(image_size=(size, size), supersample=2)
    tiles = []
    for i, name in enumerate(("walk", "run", "kick")):
        sk, x, G = _clip(name)
        images, _, _ = render_views(sk, x, G, 4, seed + i, cfg)
        tiles.extend(images)
    sk, x, G = _hands(4, seed)
    images, _, _ = render_views(sk, x, G, 4, seed + 10, cfg, same_subject=False)
    tiles.extend(images)
    grid = np.stack(tiles).reshape(4, 4, size, size, 3).transpose(0, 2, 1, 3, 4).reshape(4 * size, 4 * size, 3)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(grid).save(path, optimize=True)
    return os.path.getsize(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--sizes", default="128,256")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-sheet", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = measure(args.frames, sizes, args.seed) + measure(args.frames, sizes, args.seed, workers=2)
    result = {
        "benchmark": "render_speed",
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "clip": "deepmimic walk, random frames and cameras, occluder_prob 0.5, supersample 1",
        "rows": rows,
    }
    if not args.no_sheet:
        sheet = os.path.join(ROOT, "docs", "images", "render_contact_sheet.png")
        result["contact_sheet_bytes"] = contact_sheet(sheet, args.seed)
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "benchmarks", "results", "render_speed.json"), "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    lines = [
        "## render_speed\n",
        f"Command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/render_speed.py --frames {args.frames}` (measured "
        f"{time.strftime('%Y-%m-%d')}, {result['machine']}, 2 cores). Random frames of the DeepMimic walk from random "
        "cameras, random background, lighting and clothing, an occluder in half of the images, no supersampling. "
        "JSON: `benchmarks/results/render_speed.json`. Contact sheet: `docs/images/render_contact_sheet.png`.\n",
        "| size | processes | frames | seconds | images/s | images/min | visible joints |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['size']} | {r['workers']} | {r['frames']} | {r['seconds']} | {r['images_per_s']} | "
                     f"{r['images_per_min']} | {r['visible_fraction']:.0%} |")  # fmt: skip
    md = "\n".join(lines) + "\n"
    _write_section(os.path.join(ROOT, "benchmarks", "RESULTS.md"), "render_speed", md)
    print(md)
    if "contact_sheet_bytes" in result:
        print(f"contact sheet: docs/images/render_contact_sheet.png ({result['contact_sheet_bytes'] / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
