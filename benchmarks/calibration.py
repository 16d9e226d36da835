"""Subject calibration: template vs the subject's own bone lengths, for analytic IK, the fit and the hybrid.

Subjects: the DeepMimic template itself, the template scaled by 1.05 and 1.08, three subjects whose every bone
is scaled independently by a factor in [0.85, 1.15], and CMU subject 01 (15 of its joints renamed to the
humanoid's: another person and another rig, so not even calibration makes it exact). Motion: the five
held-out DeepMimic clips (walk, run, jump, kick, dance_b) replayed on each subject; CMU 01_01 for CMU.

For each subject, clean and with 10 mm Gaussian noise per coordinate, each solver runs on the template and on
the skeleton calibrated on the input (:func:`kinepose.kinematics.calibration.calibrate_skeleton`):

- ``fk_mm``: mean distance of FK of the result (on the skeleton used) from the clean positions; and
  ``fk_mm_within_limits`` over the frames whose capture keeps every knee and elbow inside the URDF's limits
  (dance_b's capture bends both knees up to 6 deg past them in 8 of its frames; IK respects the limits);
- ``geo_deg``: mean geodesic error on the joints positions determine (DeepMimic subjects only);
- ``noise_mm``: the noise the skeleton's bone lengths imply (:func:`estimate_noise_std`), which gates the
  hybrid's denoiser: a clean subject read as noisy is pulled towards the prior.

    .venv/bin/python benchmarks/calibration.py --model runs/bench_hybrid   # writes results/calibration.json
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from kinepose.data.formats.bvh import CMU_TO_M, read_bvh
from kinepose.data.sources.deepmimic import DEFAULT_EVAL_CLIPS, load_deepmimic
from kinepose.inference import predict_clip
from kinepose.kinematics import analytic_ik, estimate_noise_std, fit_skeleton, forward_kinematics, hinge_angles
from kinepose.kinematics.calibration import calibrate_skeleton
from kinepose.metrics import geodesic_error
from kinepose.models.files import load_model

HERE = os.path.dirname(os.path.abspath(__file__))
CMU_FILE = "/usr/share/assimp/models/BVH/01_01.bvh"
CMU_NAMES = {  # humanoid joint -> CMU joint
    "root": "Hips", "chest": "Spine1", "neck": "Neck1", "right_hip": "RightUpLeg", "right_knee": "RightLeg",
    "right_ankle": "RightFoot", "right_shoulder": "RightArm", "right_elbow": "RightForeArm",
    "right_wrist": "RightHand", "left_hip": "LeftUpLeg", "left_knee": "LeftLeg", "left_ankle": "LeftFoot",
    "left_shoulder": "LeftArm", "left_elbow": "LeftForeArm", "left_wrist": "LeftHand",
}  # fmt: skip


def scaled(sk, factors: np.ndarray, name: str):
    off = np.array(sk.offsets) * factors[:, None]
    off[0] = sk.offsets[0]
    return sk.with_offsets(off, name=name)


def subjects(sk):
    g = np.random.default_rng(2026)
    out = [("template", sk), ("uniform x1.05", scaled(sk, np.full(sk.num_joints, 1.05), "u105")),
           ("uniform x1.08", scaled(sk, np.full(sk.num_joints, 1.08), "u108"))]  # fmt: skip
    for k in range(3):
        out.append((f"per-bone 0.85-1.15 #{k + 1}", scaled(sk, g.uniform(0.85, 1.15, sk.num_joints), f"pb{k}")))
    return out


def solve(solver: str, sk, x: torch.Tensor, model) -> tuple[torch.Tensor, torch.Tensor]:
    if solver == "analytic IK":
        r = analytic_ik(sk, x)
        return r.local_quat, r.root_pos
    if solver == "fit":
        r = fit_skeleton(sk, x)
        return r.local_quat, r.root_pos
    subject = None if sk is model.skeleton else sk
    q, root = predict_clip(model, x.float(), subject=subject)
    return q.double(), root.double()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a trained hybrid run (e.g. runs/bench_hybrid)")
    ap.add_argument("--noise-mm", type=float, default=10.0)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "calibration.json"))
    args = ap.parse_args()
    torch.manual_seed(0)
    model = load_model(args.model)
    tmpl = model.skeleton
    clips = [load_deepmimic(c) for c in DEFAULT_EVAL_CLIPS]
    rows = []
    t0 = time.perf_counter()
    cases = [(name, subj, None) for name, subj in subjects(tmpl)]
    if os.path.exists(CMU_FILE):
        cases.append(("CMU subject 01 (15 joints)", None, CMU_FILE))
    for name, subj, path in cases:
        if path is None:
            truth = [(forward_kinematics(subj, m.local_quat, m.root_pos).positions, m.local_quat) for m in clips]
        else:
            m = read_bvh(path).to_motion(CMU_TO_M)
            idx = [m.skeleton.index(CMU_NAMES[n]) for n in tmpl.joint_names]
            truth = [(m.positions()[:, idx], None)]
        for noise in (0.0, args.noise_mm):
            for solver in ("analytic IK", "fit", "hybrid"):
                for use in ("template", "calibrated"):
                    fk_err, fk_in, geo, noise_est, n, n_in = [], [], [], [], 0, 0
                    for k, (x, q_true) in enumerate(truth):
                        g = torch.Generator().manual_seed(1000 + k)
                        xn = x + noise / 1000 * torch.randn(x.shape, generator=g, dtype=x.dtype)
                        sk = tmpl if use == "template" else calibrate_skeleton(tmpl, xn, name=tmpl.name)
                        q, root = solve(solver, sk, xn, model)
                        fk = forward_kinematics(sk, q, root).positions
                        e = (fk - x).norm(dim=-1).mean(-1)  # (T,)
                        fk_err.append(float(e.sum()))
                        if q_true is not None:  # frames whose capture keeps every hinge inside its limits
                            ang = hinge_angles(tmpl, q_true)
                            lo = torch.nan_to_num(torch.tensor(tmpl.limits[:, 0]), nan=-9.0)
                            hi = torch.nan_to_num(torch.tensor(tmpl.limits[:, 1]), nan=9.0)
                            inside = ((ang >= lo) & (ang <= hi)).all(-1)
                            fk_in.append(float(e[inside].sum()))
                            n_in += int(inside.sum())
                        noise_est.append(float(estimate_noise_std(sk, xn).mean()) * len(x))
                        if q_true is not None:
                            det = analytic_ik(tmpl, x).determined.numpy()
                            geo.append(float(geodesic_error(q[:, det], q_true[:, det], degrees=True).mean()) * len(x))
                        n += len(x)
                    rows.append({
                        "subject": name, "noise_mm": noise, "solver": solver, "lengths": use,
                        "fk_mm": 1000 * sum(fk_err) / n, "geo_deg": sum(geo) / n if geo else None,
                        "fk_mm_within_limits": 1000 * sum(fk_in) / n_in if n_in else None,
                        "frames_past_limits": n - n_in if n_in else None,
                        "noise_estimate_mm": 1000 * sum(noise_est) / n, "frames": n,
                    })  # fmt: skip
                    r = rows[-1]
                    print(f"{name:<28} {noise:>4.0f} mm  {solver:<11} {use:<10} FK {r['fk_mm']:8.3f} mm  "
                          f"geo {r['geo_deg'] if r['geo_deg'] is not None else float('nan'):6.2f} deg  "
                          f"noise {r['noise_estimate_mm']:6.2f} mm", flush=True)  # fmt: skip
    out = {
        "benchmark": "calibration",
        "command": f"python benchmarks/calibration.py --model {args.model}",
        "model": args.model,
        "clips": list(DEFAULT_EVAL_CLIPS),
        "wall_s": time.perf_counter() - t0,
        "rows": rows,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(table(rows))


def table(rows: list[dict]) -> str:
    lines = ["| subject | noise | solver | FK mm (template / calibrated) | FK mm, frames within limits | "
             "geo deg (template / calibrated) | noise estimate mm (template / calibrated) |",
             "|---|---:|---|---:|---:|---:|---:|"]  # fmt: skip
    keyed = {(r["subject"], r["noise_mm"], r["solver"], r["lengths"]): r for r in rows}
    for r in rows:
        if r["lengths"] != "template":
            continue
        c = keyed[(r["subject"], r["noise_mm"], r["solver"], "calibrated")]

        def pair(key: str, fmt: str = "{:.2f}", r=r, c=c) -> str:
            if r[key] is None:
                return "-"
            return f"{fmt.format(r[key])} / **{fmt.format(c[key])}**"

        lines.append(f"| {r['subject']} | {r['noise_mm']:.0f} | {r['solver']} | {pair('fk_mm')} | "
                     f"{pair('fk_mm_within_limits')} | {pair('geo_deg')} | {pair('noise_estimate_mm')} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
