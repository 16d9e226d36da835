"""Head pose: the image network and the landmark network together (equal-weight rotation average), held-out identities.

Run after ``benchmarks/headpose.py``: it reads that benchmark's run folders (``runs/headpose/<recipe>``), trained on
the same 9 identities, and scores on the same 3 held out. The weight is fixed a priori at 1/2 (no tuning on the test
identities); the average of the two rotations is their chordal mean (``roma.special_procrustes`` of the sum).
Where MediaPipe found no face the landmark network has nothing, and the image network's answer stands. One more row
scores the image network on the crops ``kinepose headpose`` makes (``head_crop`` around MediaPipe's face). The
``+ flip TTA`` rows average the image network's answer with its mirrored answer on the mirrored picture
(``predict_headpose(flip_tta=True)``).
``--folds K`` also trains both recipes again on each of benchmarks/headpose.py's K identity folds (every identity
held out once; about 13 minutes a fold on 2 cores, the image recipe's cap) and reports the ensemble per fold.

    .venv-vision/bin/python benchmarks/headpose_ensemble.py [--folds 4]

Writes ``benchmarks/results/headpose_ensemble.json`` and the ``headpose_ensemble`` section of RESULTS.md.
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-run", default=os.path.join(ROOT, "runs", "headpose", "headpose_dual_mobilenet_pretrained"))
    ap.add_argument("--landmark-run", default=os.path.join(ROOT, "runs", "headpose", "headpose_landmarks_residual"))
    ap.add_argument("--weight", type=float, default=0.5, help="weight of the image network (fixed a priori)")
    ap.add_argument("--folds", type=int, default=0, help="also cross-validate over K identity folds (0: no)")
    ap.add_argument(
        "--image-recipe",
        default=None,
        help="configs/<name>.yaml the cross-validation trains for the image network (default: the --image-run's name)",
    )
    ap.add_argument("--landmark-recipe", default=None, help="the same for the landmark network")
    ap.add_argument(
        "--cv-only",
        action="store_true",
        help="only the cross-validation (needs --folds), written to "
        "its own section (headpose_ensemble_cv_IMAGE-RECIPE) and JSON, beside the one of the default recipes",
    )
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    if args.cv_only and not args.folds:
        ap.error("--cv-only needs --folds K")
    if (args.image_recipe or args.landmark_recipe) and not args.folds:
        ap.error("--image-recipe and --landmark-recipe name what the cross-validation trains: they need --folds K")
    if not 0.0 <= args.weight <= 1.0:
        ap.error(f"--weight: expected a number in [0, 1], got {args.weight}")
    weight = "" if args.weight == 0.5 else f" --weight {args.weight:g}"
    import torch

    from kinepose.data.splits import group_split
    from kinepose.frontends.headpose_data import build_headpose_data
    from kinepose.metrics.headpose import headpose_report
    from kinepose.models.headpose import GeometricHeadPose
    from kinepose.training.headpose import _resized, load_headpose_run, predict_headpose

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    data = build_headpose_data(cache=os.path.join(ROOT, "runs", "cache"), progress=True)
    if args.cv_only:
        return _cv_only(args, data, t0)
    hs = data.heads
    split = group_split(hs.identity, test_fraction=0.25, seed=0)  # benchmarks/headpose.py's split
    tr, te = split["train"], split["test"]
    image, icfg = load_headpose_run(args.image_run)
    marks, _ = load_headpose_run(args.landmark_run)
    x_te = _resized(hs.images[te], int(icfg["image_size"]))
    p_img = predict_headpose(image, x_te, kind="images")
    p_tta = predict_headpose(image, x_te, kind="images", flip_tta=True)
    p_lm = predict_headpose(marks, data.vectors[te], kind="vectors")
    p_lm[~data.found[te]] = np.nan
    p_lm_tta = predict_headpose(marks, data.vectors[te], kind="vectors", flip_tta=True)
    p_lm_tta[~data.found[te]] = np.nan
    w = args.weight
    p_ens = _ensemble(p_img, p_lm, data.found[te], w)
    geo_model = GeometricHeadPose().fit(data.face[tr], hs.rotation[tr])
    p_geo = geo_model.predict(data.face[te])
    # the CLI's path for the image network: crop each held-out render around MediaPipe's face as kinepose headpose does
    from kinepose.frontends.headpose import head_crop

    size = int(icfg["image_size"])
    p_crop = np.full_like(p_img, np.nan)
    idx = np.flatnonzero(data.found[te])
    R_fit = geo_model.rotation(data.face[te][idx])
    crops = np.stack([head_crop(hs.images[te][i], data.face[te][i], size, R) for i, R in zip(idx, R_fit, strict=True)])
    p_crop[idx] = predict_headpose(image, crops, kind="images")
    p_crop_tta = np.full_like(p_img, np.nan)
    p_crop_tta[idx] = predict_headpose(image, crops, kind="images", flip_tta=True)
    f = data.found[te]
    rows = []
    named = (
        ("headpose_geometric (Kabsch)", p_geo),
        ("headpose_landmarks_residual", p_lm),
        ("headpose_landmarks_residual + flip TTA", p_lm_tta),
        ("headpose_dual_mobilenet_pretrained", p_img),
        ("headpose_dual_mobilenet_pretrained + flip TTA", p_tta),
        ("headpose_dual_mobilenet_pretrained through head_crop (the CLI's path)", p_crop),
        ("headpose_dual_mobilenet_pretrained through head_crop + flip TTA", p_crop_tta),
        (f"ensemble ({w:g} image + {1 - w:g} landmarks)", p_ens),
        (
            f"ensemble ({w:g} image + {1 - w:g} landmarks), image with flip TTA",
            _ensemble(p_tta, p_lm, data.found[te], w),
        ),
    )
    for name, p in named:
        found = headpose_report(p[f], hs.ypr[te][f])
        every = headpose_report(p, hs.ypr[te]) if np.isfinite(p).all() else None
        rows.append({"name": name, "face_found": found, "all": every})
    geo = rows[0]["face_found"]["mae_mean"]
    lines = ["| model | yaw | pitch | roll | **mean MAE, face found** | x geometric | geodesic | "
             "mean MAE, every frame |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        s, a = r["face_found"], r["all"]
        lines.append(f"| {r['name']} | {s['mae_yaw']:.2f} | {s['mae_pitch']:.2f} | {s['mae_roll']:.2f} | "
                     f"**{s['mae_mean']:.2f}** | {s['mae_mean'] / geo:.2f} | {s['geodesic_mean']:.2f} | "
                     f"{'-' if a is None else format(a['mae_mean'], '.2f')} |")  # fmt: skip
    md = (f"## Head pose: image and landmark networks together\n\n`benchmarks/headpose_ensemble.py` "
          f"({time.perf_counter() - t0:.0f} s), on benchmarks/headpose.py's runs and split: "
          f"{len(te)} held-out frames ({int(f.sum())} with a face found), degrees.\n\n"
          + "\n".join(lines) + "\n")  # fmt: skip
    cv = _cross_validate(args, data) if args.folds else []
    if cv:
        md += "\n" + _cv_table(args, cv)
    print(md)
    if args.no_write:
        return 0
    import json

    from foundation import _write_section, atomic_write

    command = "benchmarks/headpose_ensemble.py" + (f" --folds {args.folds}" if args.folds else "") + weight
    text = json.dumps({"command": command, "weight": w, "rows": rows, "cv": cv}, indent=1) + "\n"
    atomic_write(os.path.join(ROOT, "benchmarks", "results", "headpose_ensemble.json"), lambda fh: fh.write(text))
    _write_section(os.path.join(ROOT, "benchmarks", "RESULTS.md"), "headpose_ensemble", md)
    return 0


def _cv_table(args, cv: list[dict]) -> str:
    names = list(cv[0]["mae"])
    folds = " | ".join(f"fold {k}" for k in range(len(cv)))
    lines = [f"| model | {folds} | **mean over folds** | x geometric |", "|---|" + "---:|" * (len(cv) + 2)]
    geo_cv = np.mean([c["mae"][names[0]] for c in cv])
    for n in names:
        v = [c["mae"][n] for c in cv]
        lines.append(f"| {n} | " + " | ".join(f"{x:.2f}" for x in v) + f" | **{np.mean(v):.2f}** | "
                     f"{np.mean(v) / geo_cv:.2f} |")  # fmt: skip
    return (f"Cross-validated (`--folds {args.folds}`): both recipes trained again on each of "
            "benchmarks/headpose.py's identity folds (every identity held out once), mean MAE in degrees over "
            "the frames where MediaPipe found a face; image steps per fold: "
            + ", ".join(str(c["image_steps"]) for c in cv) + ".\n\n" + "\n".join(lines) + "\n")  # fmt: skip


def _cv_only(args, data, t0: float) -> int:
    """``--cv-only``: the cross-validation of the named recipes, in its own section."""
    import json

    from foundation import _write_section, atomic_write

    cv = _cross_validate(args, data)
    image, marks = _recipe_names(args)
    command = (f"benchmarks/headpose_ensemble.py --cv-only --folds {args.folds} --image-recipe {image} "
               f"--landmark-recipe {marks}" + ("" if args.weight == 0.5 else f" --weight {args.weight:g}"))  # fmt: skip
    md = (f"## Head pose ensemble, cross-validated: {image} + {marks}\n\n`{command}` "
          f"({(time.perf_counter() - t0) / 60:.0f} min, 2 torch threads).\n\n" + _cv_table(args, cv))  # fmt: skip
    print(md)
    if args.no_write:
        return 0
    text = json.dumps({"command": command, "weight": args.weight, "cv": cv}, indent=1) + "\n"
    name = f"headpose_ensemble_cv_{image}"  # one section and one JSON per image recipe
    atomic_write(os.path.join(ROOT, "benchmarks", "results", f"{name}.json"), lambda fh: fh.write(text))
    _write_section(os.path.join(ROOT, "benchmarks", "RESULTS.md"), name, md)
    return 0


def _recipe_names(args) -> tuple[str, str]:
    return (args.image_recipe or os.path.basename(os.path.normpath(args.image_run)),
            args.landmark_recipe or os.path.basename(os.path.normpath(args.landmark_run)))  # fmt: skip


def _ensemble(p_img: np.ndarray, p_lm: np.ndarray, found: np.ndarray, w: float) -> np.ndarray:
    """Chordal mean of the two rotations (weight ``w`` on the image network); the image network alone without a face."""
    from kinepose.geometry.headpose import mean_ypr

    p = mean_ypr(np.stack([p_img, np.nan_to_num(p_lm)]), weights=[w, 1 - w])
    p[~found] = p_img[~found]
    return p


def _cross_validate(args, data) -> list[dict]:
    """Per identity fold: geometric fit, both recipes retrained, and their ensemble (MAE on face-found frames)."""
    from headpose import _load_recipe  # benchmarks/headpose.py: the recipe as that benchmark runs it

    from kinepose.data.splits import group_kfold
    from kinepose.metrics.headpose import headpose_report
    from kinepose.models.headpose import GeometricHeadPose
    from kinepose.training.headpose import _resized, predict_headpose, resolve_recipe, train_recipe

    hs, found = data.heads, data.found
    image_recipe, landmark_recipe = _recipe_names(args)
    out = []
    for k, fold in enumerate(group_kfold(hs.identity, args.folds, 0)):  # benchmarks/headpose.py's folds (seed 0)
        tr, te = fold["train"], fold["test"]
        print(f"-- fold {k}: {image_recipe}, {landmark_recipe}", flush=True)
        cfg = _load_recipe(image_recipe)
        model, p_img, fit = train_recipe(cfg, data, tr, progress=True)
        size = int(resolve_recipe(cfg)["image_size"])
        p_tta = predict_headpose(model, _resized(hs.images[te], size), kind="images", flip_tta=True)
        p_lm = train_recipe(_load_recipe(landmark_recipe), data, tr)[1]
        p_geo = GeometricHeadPose().fit(data.face[tr], hs.rotation[tr]).predict(data.face[te])
        f = found[te]
        ens = f"ensemble ({args.weight:g} image + {1 - args.weight:g} landmarks)"
        preds = {"headpose_geometric (Kabsch)": p_geo, landmark_recipe: p_lm[te], image_recipe: p_img[te],
                 f"{image_recipe} + flip TTA": p_tta, ens: _ensemble(p_img[te], p_lm[te], f, args.weight),
                 f"{ens}, image with flip TTA": _ensemble(p_tta, p_lm[te], f, args.weight)}  # fmt: skip
        if not args.no_write:  # every held-out prediction, for later analyses without training again
            from foundation import atomic_write

            path = os.path.join(ROOT, "runs", "headpose_cv", f"{image_recipe}+{landmark_recipe}_fold{k}.npz")
            atomic_write(path, lambda fh, te=te, preds=preds: np.savez(fh, test=te, **{
                n.replace(" ", "_"): p for n, p in preds.items()}), binary=True)  # fmt: skip
        mae = {n: float(headpose_report(p[f], hs.ypr[te][f])["mae_mean"]) for n, p in preds.items()}
        print("   " + ", ".join(f"{n} {v:.2f}" for n, v in mae.items()), flush=True)
        out.append({"test_identities": [hs.identities[i] for i in fold["groups"]["test"]], "mae": mae,
                    "image_steps": fit.steps})  # fmt: skip
    return out


if __name__ == "__main__":
    sys.exit(main())
