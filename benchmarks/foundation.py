"""Foundation checks on the bundled DeepMimic clips, written to JSON and a Markdown table.

Measures, on real motion capture:
1. forward kinematics against pybullet's own FK of the same URDF (all 15 clips);
2. analytic IK on the five evaluation clips: MPJPE of FK(IK(x)) and geodesic error against the clips'
   true rotations, split into the joints positions determine and those they do not;
3. BVH write -> read round trip of every clip (joint positions).

Run: ``.venv/bin/python benchmarks/foundation.py`` (about 30 s on 2 cores). Writes
``benchmarks/results/foundation.json`` and the ``foundation`` section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch

from kinepose._atomic import atomic_write
from kinepose.data.formats.bvh import read_bvh, write_motion_bvh
from kinepose.data.sources.deepmimic import DEEPMIMIC_CLIPS, DEFAULT_EVAL_CLIPS, load_deepmimic
from kinepose.evaluation import analytic_solver, evaluate_solver, format_table, write_json
from kinepose.geometry import quat_to_xyzw
from kinepose.kinematics import analytic_ik, forward_kinematics, hinge_angles
from kinepose.skeleton.presets.humanoid import humanoid_urdf_path

HERE = os.path.dirname(os.path.abspath(__file__))


def fk_vs_pybullet(motions) -> dict[str, float]:
    import pybullet as pb

    cid = pb.connect(pb.DIRECT)
    out = {}
    try:
        body = pb.loadURDF(humanoid_urdf_path(), globalScaling=0.25, physicsClientId=cid)
        n = pb.getNumJoints(body, physicsClientId=cid)
        sk = motions[0].skeleton
        idx = [sk.index(pb.getJointInfo(body, i, physicsClientId=cid)[1].decode()) for i in range(n)]
        for m in motions:
            pos, ang, err = m.positions().numpy(), hinge_angles(sk, m.local_quat), 0.0
            for t in range(m.num_frames):
                pb.resetBasePositionAndOrientation(
                    body, m.root_pos[t].tolist(), quat_to_xyzw(m.local_quat[t, 0]).tolist(), physicsClientId=cid
                )
                for i, j in enumerate(idx):
                    if sk.kinds[j] == "ball" and j > 0:
                        q = quat_to_xyzw(m.local_quat[t, j]).tolist()
                        pb.resetJointStateMultiDof(body, i, q, physicsClientId=cid)
                    elif sk.kinds[j] == "hinge":
                        pb.resetJointState(body, i, float(ang[t, j]), physicsClientId=cid)
                for i, j in enumerate(idx):
                    link = pb.getLinkState(body, i, computeForwardKinematics=True, physicsClientId=cid)
                    err = max(err, float(np.abs(np.array(link[4]) - pos[t, j]).max()))
            out[m.name] = err
    finally:
        pb.disconnect(cid)
    return out


def bvh_round_trip(motions) -> dict[str, float]:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for m in motions:
            path = os.path.join(tmp, f"{m.name}.bvh")
            order = write_motion_bvh(path, m)
            back = read_bvh(path).positions()
            out[m.name] = float((back - m.positions()[:, order]).norm(dim=-1).max())
    return out


def ik_all_clips(motions, respect_limits: bool) -> dict[str, float]:
    out = {}
    for m in motions:
        x = m.positions()
        r = analytic_ik(m.skeleton, x, respect_limits=respect_limits)
        y = forward_kinematics(m.skeleton, r.local_quat, r.root_pos).positions
        out[m.name] = float((y - x).norm(dim=-1).mean())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "foundation.json"))
    ap.add_argument("--results-md", default=os.path.join(HERE, "RESULTS.md"))
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    motions = [load_deepmimic(c) for c in DEEPMIMIC_CLIPS]
    evals = [m for m in motions if m.name in DEFAULT_EVAL_CLIPS]
    fk = fk_vs_pybullet(motions)
    ik = ik_all_clips(motions, respect_limits=False)
    ik_lim = ik_all_clips(motions, respect_limits=True)
    bvh = bvh_round_trip(motions)
    report = evaluate_solver(analytic_solver(evals[0].skeleton), evals, "analytic IK")
    noisy = evaluate_solver(analytic_solver(evals[0].skeleton), evals, "analytic IK", noise_mm=10.0)
    elapsed = time.perf_counter() - t0  # measured work, without interpreter start and imports

    payload = {
        "fk_vs_pybullet_max_abs_m": fk,
        "fk_ik_mpjpe_m_all_clips": ik,
        "fk_ik_mpjpe_m_all_clips_limits_respected": ik_lim,
        "bvh_round_trip_max_m": bvh,
        "analytic_ik_eval_clips": report.to_dict(),
        "analytic_ik_eval_clips_noise10mm": noisy.to_dict(),
        "env": {"python": sys.version.split()[0], "torch": torch.__version__, "machine": platform.machine()},
        "seconds": elapsed,
    }
    write_json(args.out, payload)

    rows = ["| clip | frames | FK vs pybullet, max (m) | FK(IK(x)) MPJPE (mm) | the same, hinge limits respected (mm) "
            "| BVH round trip, max (m) |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for m in motions:
        star = "*" if m.name in DEFAULT_EVAL_CLIPS else ""
        cells = f"{fk[m.name]:.1e} | {1000 * ik[m.name]:.1e} | {1000 * ik_lim[m.name]:.1e} | {bvh[m.name]:.1e}"
        rows.append(f"| {m.name}{star} | {m.num_frames} | {cells} |")
    md = (
        "## foundation\n\n"
        "Command: `.venv/bin/python benchmarks/foundation.py` "
        f"(measured {time.strftime('%Y-%m-%d')}, {elapsed:.0f} s, torch {torch.__version__}, CPU).\n\n"
        "All 15 bundled DeepMimic clips (* = evaluation clip): our FK against pybullet's FK of the same "
        "URDF, analytic IK round trip (exact geometry, `respect_limits=False`; and with the URDF's knee and elbow "
        "limits respected, where dance_b, getup_facedown, spin and spinkick, whose captures bend a joint past its "
        "limit in a few frames, stop at the limit), BVH write/read round trip.\n\n" + "\n".join(rows) + "\n\n"
        "Analytic IK on the five evaluation clips, clean positions. Joints marked * are not determined "
        "by the 15 joint positions (no child point); the solver leaves them at rest.\n\n"
        + format_table(report)
        + "\n\nThe same with 10 mm Gaussian noise on every joint coordinate (seed 0):\n\n"
        + format_table(noisy, per_joint=False)
        + "\n"
    )
    _write_section(args.results_md, "foundation", md)
    print(md)
    return 0


def _write_section(path: str, name: str, text: str) -> None:
    """Replace (or append) the section between ``<!-- name:begin -->`` and ``<!-- name:end -->``."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    header = "# Benchmark results\n\nEvery table below names the command that measured it.\n"
    old = open(path).read() if os.path.exists(path) else header
    block = f"{begin}\n{text}{end}"
    if begin in old and end in old:
        new = old[: old.index(begin)] + block + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    atomic_write(path, lambda f: f.write(new))


def _replace_between(path: str, begin: str, end: str, body: str) -> bool:
    """Replace the text between the markers ``begin`` and ``end`` of ``path`` (atomically); False without them."""
    text = open(path, encoding="utf-8").read()
    if begin not in text or end not in text:
        return False
    i, j = text.index(begin) + len(begin), text.index(end)
    new = text[:i] + body + text[j:]
    atomic_write(path, lambda f: f.write(new))
    return True


def publish(root: str, name: str, result: dict, section_md: str, readme_table: list[str], readme_markers) -> None:
    """The outputs of an image benchmark: ``benchmarks/results/{name}.json``, the ``name`` section of
    ``benchmarks/RESULTS.md`` and the README table between ``readme_markers`` (begin, end), each written atomically."""
    import json

    text = json.dumps(result, indent=1) + "\n"
    atomic_write(os.path.join(root, "benchmarks", "results", f"{name}.json"), lambda f: f.write(text))
    _write_section(os.path.join(root, "benchmarks", "RESULTS.md"), name, section_md)
    _replace_between(os.path.join(root, "README.md"), *readme_markers, "\n" + "\n".join(readme_table) + "\n")


def fit_loop(model, x, y, steps: int, lr: float, batch: int, seed: int, loss) -> float:
    """``steps`` AdamW steps (one-cycle schedule) of ``loss(model, x[i], y[i])`` on random batches; returns seconds."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps + 1, pct_start=0.05)
    t0 = time.perf_counter()
    model.train()
    for _ in range(steps):
        i = torch.randint(0, len(x), (batch,), generator=g)
        opt.zero_grad()
        loss(model, x[i], y[i]).backward()
        opt.step()
        sched.step()
    model.eval()
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
