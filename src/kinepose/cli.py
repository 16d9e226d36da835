"""``kinepose <command>``: parses arguments, then calls library functions. No work happens at import."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EPILOG = """\
examples:
  kinepose train configs/humanoid_hybrid.yaml              train the default recipe, print the comparison
  kinepose train configs/hand_hybrid.yaml trainer.max_epochs=5 --out runs/hand
  kinepose evaluate runs/humanoid_hybrid --noise-mm 10     score a run on its held-out clips
  kinepose evaluate analytic                               the closed-form IK on the 5 held-out clips
  kinepose ik --model runs/humanoid_hybrid --input joints.npz --output rotations.bvh
  kinepose export runs/humanoid_iknet --format onnx        ONNX graph + onnxruntime parity check
  kinepose report runs/humanoid_hybrid                     one HTML page: config, metrics, curves, skeletons
  kinepose view rotations.npz joints.npz --open            3D viewer in the browser, prediction vs truth
  kinepose info                                            skeletons and bundled motion clips
  kinepose clip kick --noise-mm 10 --output kick.npz       a bundled clip's joints as a file

file formats (kinepose ik):
  input   .npz  array `joints` (T, J, 3) metres, optional `joint_names`, `fps`
          .npy  (T, J, 3) or (J, 3) metres, joints in the skeleton's order
          .csv  header <joint>_x,<joint>_y,<joint>_z,... (optional leading `frame`), one row per frame
          .bvh  joint positions by the file's own FK (use --scale for centimetres: 0.01)
  output  .npz  local_quat (T, J, 4) w,x,y,z, root_pos, joint_names, parents, observable, fps, joints
          .bvh  any BVH consumer (Blender, MotionBuilder); ZXY rotation channels
          .csv  frame, root_x.., <joint>_qw, _qx, _qy, _qz per joint
          .json {"format": "kinepose-rotations", "local_quat": [...], "root_pos": [...], ...}

file formats (kinepose view): any output above with its `joints` or rotations (.npz/.json), a .bvh, or joint
  positions (.npz/.npy/.csv, with --skeleton); a second file is drawn as the ground truth (joint positions
  there need no --skeleton: they are drawn on the first file's tree, matched by joint name).

Units: metres and radians in files; millimetres and degrees in printed tables. Quaternions are (w, x, y, z).
"""


def _cmd_info(args: argparse.Namespace) -> int:
    import kinepose
    from kinepose.data.deepmimic import DEEPMIMIC_CLIPS, DEFAULT_EVAL_CLIPS, load_deepmimic
    from kinepose.skeletons import get_skeleton, list_skeletons

    print(f"kinepose {kinepose.__version__}\n\nSkeletons:")
    for name in list_skeletons():
        print(f"  {name:<10} {get_skeleton(name)!r}")
    print("\nBundled DeepMimic clips (pybullet_data), * = default evaluation clip:")
    for clip in DEEPMIMIC_CLIPS:
        m = load_deepmimic(clip)
        star = "*" if clip in DEFAULT_EVAL_CLIPS else " "
        print(f" {star}{clip:<16} {m.num_frames:>4} frames  {m.fps:5.1f} fps  {m.num_frames / m.fps:5.2f} s")
    return 0


def _cmd_clip(args: argparse.Namespace) -> int:
    from kinepose._cli_viz import noisy_clip
    from kinepose.data.io import save_joints

    m, _, joints = noisy_clip(args.name, args.noise_mm, args.seed)  # (T, J, 3)
    save_joints(args.output, joints, m.skeleton.joint_names, fps=m.fps)
    noise = f", {args.noise_mm:g} mm Gaussian noise (seed {args.seed})" if args.noise_mm else ""
    print(f"wrote {args.output}: {args.name}, {m.num_frames} frames, {len(m.skeleton.joint_names)} joints, "
          f"{m.fps:g} fps{noise}")  # fmt: skip
    return 0


def _cmd_skeleton(args: argparse.Namespace) -> int:
    from kinepose.ik import ik_plan
    from kinepose.skeletons import get_skeleton

    sk = get_skeleton(args.name)
    print(sk.describe())
    plan = ik_plan(sk)
    print("\nAnalytic IK solver per joint:", ", ".join(f"{n}={s}" for n, s in zip(sk.joint_names, plan, strict=True)))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import os

    from kinepose._progress import progress_enabled
    from kinepose.data.deepmimic import load_deepmimic
    from kinepose.evaluation import analytic_solver, evaluate_solver, format_table, write_json
    from kinepose.skeletons import get_skeleton

    if args.noise_mm < 0:
        raise ValueError(f"--noise-mm must be >= 0, got {args.noise_mm}")
    if args.model == "analytic":
        clips = [c.strip() for c in (args.clips or ",".join(_default_eval_clips())).split(",") if c.strip()]
        motions = [load_deepmimic(c) for c in clips]
        solver, name = analytic_solver(get_skeleton("humanoid")), "analytic IK"
        where = f"DeepMimic clips {', '.join(clips)}"
    else:
        if not os.path.exists(args.model):
            raise ValueError(f"evaluate: {args.model!r} is neither 'analytic' nor an existing run folder or model file")
        from kinepose.inference import load_model, model_config, model_solver
        from kinepose.training import load_split

        model = load_model(args.model)
        cfg = _run_config(args.model, model_config(args.model))
        if args.clips:
            if model.skeleton.name != "humanoid":
                raise ValueError(
                    f"--clips: the bundled DeepMimic clips are humanoid motion; this model is for "
                    f"'{model.skeleton.name}' (leave out --clips to use its held-out data)"
                )
            motions = [load_deepmimic(c.strip()) for c in args.clips.split(",") if c.strip()]
            where = f"clips {args.clips}"
        else:
            motions = load_split(cfg)[2]
            where = f"{len(motions)} held-out clips"
        solver, name = model_solver(model), f"{model.family} ({cfg.get('name', os.path.basename(args.model))})"
    report = evaluate_solver(solver, motions, name, noise_mm=args.noise_mm, seed=args.seed,
                             progress=progress_enabled(not args.quiet))  # fmt: skip
    print(f"{name} on {where}; joint noise {args.noise_mm:g} mm (seed {args.seed})\n")
    print(format_table(report))
    out = args.json
    if out is None and args.model != "analytic":  # a run keeps its evaluations
        folder = args.model if os.path.isdir(args.model) else os.path.dirname(os.path.abspath(args.model))
        out = os.path.join(folder, f"evaluate_noise{args.noise_mm:g}mm.json")
    if out:
        write_json(out, report.to_dict())
        print(f"\nwrote {out}")
    return 0


def _default_eval_clips() -> tuple[str, ...]:
    from kinepose.data.deepmimic import DEFAULT_EVAL_CLIPS

    return DEFAULT_EVAL_CLIPS


def _run_config(path: str, stored: dict | None) -> dict:
    """The training config of a model: the one stored inside it, else the run folder's config.yaml."""
    import os

    from kinepose.config import resolve_config

    if stored is not None:
        return resolve_config(base=stored)
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if os.path.basename(folder) == "checkpoints":
        folder = os.path.dirname(folder)
    cand = os.path.join(folder, "config.yaml")
    if not os.path.exists(cand):
        raise ValueError(f"{path}: no training config found (neither inside the model nor {cand})")
    return resolve_config(cand)


def _cmd_train(args: argparse.Namespace) -> int:
    import os

    from kinepose._progress import progress_enabled
    from kinepose.config import resolve_config
    from kinepose.evaluation import (
        analytic_solver,
        evaluate_solver,
        fitted_solver,
        format_comparison,
        write_json,
    )
    from kinepose.inference import model_solver
    from kinepose.training import run_training, seconds_to_text

    cfg = resolve_config(args.config, args.overrides)
    if args.quiet:
        cfg["trainer"]["progress_bar"] = False
    run_dir = args.out or os.path.join("runs", cfg["name"])
    result = run_training(cfg, run_dir)
    if not result.is_global_zero:
        return 0  # other DDP processes: rank 0 evaluates and prints
    from kinepose.training import load_split

    test = load_split(cfg)[2]
    sk = result.model.skeleton
    reports = []
    bar = progress_enabled(not args.quiet)
    for noise in args.noise_levels:
        solvers = ((analytic_solver(sk), "analytic IK"), (fitted_solver(sk), "analytic IK + least-squares fit"),
                   (model_solver(result.model), f"{result.model.family} (this run)"))  # fmt: skip
        for solver, name in solvers:
            reports.append(evaluate_solver(solver, test, name, noise_mm=noise, progress=bar))
    write_json(os.path.join(run_dir, "eval.json"), {
        "train_seconds": result.train_seconds, "epochs": result.epochs, "best_val_geo_deg": result.best_val_geo_deg,
        "residual_selection": result.residual_selection, "reports": [r.to_dict() for r in reports],
    })  # fmt: skip
    print(f"\nTrained {cfg['name']} ({result.model.family}) in {seconds_to_text(result.train_seconds)}, "
          f"{result.epochs} epochs; run folder {run_dir}\n")  # fmt: skip
    print(f"Held-out clips ({len(test)}: {', '.join(m.name for m in test[:5])}{' ...' if len(test) > 5 else ''}):\n")
    print(format_comparison(reports))
    return 0


def _cmd_ik(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from kinepose._progress import progress_enabled
    from kinepose.data.io import load_joints, save_rotations
    from kinepose.ik import analytic_ik, observable_mask
    from kinepose.kinematics import forward_kinematics
    from kinepose.skeletons import get_skeleton

    if args.model == "analytic":
        skeleton = get_skeleton(args.skeleton)
        model = None
    else:
        from kinepose.inference import load_model

        model = load_model(args.model)
        skeleton = model.skeleton
    data = load_joints(args.input, skeleton=skeleton, scale=args.scale)
    joints = torch.as_tensor(data.joints)
    fps = args.fps or data.fps or 30.0
    if model is None:
        result = analytic_ik(skeleton, joints)
        quat, root = result.local_quat, result.root_pos
    else:
        from kinepose.inference import predict_clip

        quat, root = predict_clip(model, joints.float(), progress=progress_enabled(not args.quiet))
        quat, root = quat.double(), root.double()
    fk = forward_kinematics(skeleton, quat, root, check=False).positions
    save_rotations(args.output, skeleton, quat.numpy(), root.numpy(), fps=fps,
                   observable=observable_mask(skeleton), joints=fk.numpy())  # fmt: skip
    err = 1000 * float(np.linalg.norm(fk.numpy() - data.joints, axis=-1).mean())
    print(f"{args.input}: {len(joints)} frames -> {args.output} (FK of the output is {err:.2f} mm from the input)")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    import os

    from kinepose.export.onnx import TOLERANCE, export_onnx
    from kinepose.inference import load_model

    if args.format != "onnx":
        raise ValueError(f"--format: unknown export format {args.format!r}; supported: onnx")
    model = load_model(args.model)
    out = args.output
    if out is None:  # beside the model, in the run folder (not in its checkpoints/)
        folder = args.model if os.path.isdir(args.model) else os.path.dirname(os.path.abspath(args.model))
        if os.path.basename(folder) == "checkpoints":
            folder = os.path.dirname(folder)
        out = os.path.join(folder, "model.onnx")
    meta = export_onnx(model, out, part=args.part, tolerance=TOLERANCE)

    def shapes(d: dict) -> str:
        return ", ".join(f"{k} ({', '.join(map(str, v))})" for k, v in d.items())

    frame = "last (causal)" if model.target_index == model.window - 1 else "centre (offline)"
    print(f"{args.model} -> {meta['path']} (ONNX opset {meta['opset']}, {meta['bytes'] / 1024:.0f} KiB)")
    print(f"  family   {meta['family']}, part {meta['part']}, skeleton {meta['skeleton']}")
    print(f"  window   {meta['window']} frame(s), target frame {meta['target_index']}: {frame}")
    print(f"  inputs   {shapes(meta['inputs'])}, float32, metres")
    print(f"  outputs  {shapes(meta['outputs'])}; quaternions w,x,y,z")
    print(f"  parity   onnxruntime vs torch, max abs difference {meta['parity']:.2e} at batch sizes 1 and 7 "
          f"(limit {TOLERANCE:.0e})")  # fmt: skip
    if meta["part"] == "network":
        print("  note     the geometric solve is not in the graph: kinepose.export.onnx.predict_onnx runs the graph "
              "and kinepose.fitting.fit_skeleton")  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    from kinepose.data.deepmimic import DEFAULT_EVAL_CLIPS

    parser = argparse.ArgumentParser(
        prog="kinepose",
        description="Learned 3D pose and kinematics: joint positions to joint rotations on a skeleton.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="list skeletons and bundled clips", epilog="example: kinepose info")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "clip",
        help="write a bundled clip's joint positions to a file (input for ik and view)",
        description="Write the joint positions of a bundled DeepMimic clip (see kinepose info) as .npz (joints, "
        "joint_names, fps) or .csv (frame,<joint>_x,<joint>_y,<joint>_z,...), metres, optionally with noise.",
        epilog="example: kinepose clip kick --output kick_truth.npz\n"
        "         kinepose clip kick --noise-mm 10 --output kick_noisy.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", help="clip name, e.g. walk, kick, run (kinepose info lists them)")
    p.add_argument("--output", required=True, help="joints file (.npz or .csv)")
    p.add_argument("--noise-mm", type=float, default=0.0, help="Gaussian noise per coordinate, mm (default 0)")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.set_defaults(func=_cmd_clip)

    p = sub.add_parser("skeleton", help="describe a skeleton preset", epilog="example: kinepose skeleton hand21")
    p.add_argument("name", help="humanoid, hand21, h36m17 or head")
    p.set_defaults(func=_cmd_skeleton)

    p = sub.add_parser(
        "train",
        help="train a model from a YAML recipe",
        description="Train a model from a recipe (configs/*.yaml) with optional key=value overrides, then "
        "print its side-by-side comparison with the analytic solvers on the held-out clips.",
        epilog="example: kinepose train configs/humanoid_hybrid.yaml trainer.max_epochs=10 model.dim=128",
    )
    p.add_argument("config", help="YAML recipe, e.g. configs/humanoid_hybrid.yaml")
    p.add_argument("overrides", nargs="*", help="dotted overrides such as optim.lr=3e-4")
    p.add_argument("--out", default=None, help="run folder (default runs/<config name>)")
    p.add_argument("--noise-levels", type=float, nargs="+", default=[0.0, 10.0], help="noise (mm) of the final table")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "evaluate",
        help="score a run, a model file or the analytic solver on held-out clips",
        epilog="examples: kinepose evaluate runs/humanoid_hybrid --noise-mm 10\n"
        "          kinepose evaluate analytic --json out/analytic.json",
    )
    p.add_argument("model", help="'analytic', a run folder, a model.pt or a Lightning .ckpt")
    p.add_argument(
        "--clips", default=None, help=f"comma-separated DeepMimic clips (default {','.join(DEFAULT_EVAL_CLIPS)})"
    )
    p.add_argument("--noise-mm", type=float, default=0.0, help="Gaussian joint noise, mm (default 0)")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--json", default=None, help="write the metrics here (default for runs: RUN/evaluate_noise<N>mm.json)"
    )
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "ik",
        help="joint positions in a file -> joint rotations in a file",
        description="Solve joint rotations for every frame of a joints file with a trained model or the "
        "analytic solver. Input: .npz/.npy/.csv/.bvh; output: .npz/.bvh/.csv/.json (see kinepose --help).",
        epilog="example: kinepose ik --model runs/humanoid_hybrid --input walk.npz --output walk.bvh",
    )
    p.add_argument("--model", required=True, help="'analytic', a run folder, model.pt or .ckpt")
    p.add_argument("--input", required=True, help="joints file (.npz, .npy, .csv, .bvh)")
    p.add_argument("--output", required=True, help="rotations file (.npz, .bvh, .csv, .json)")
    p.add_argument("--skeleton", default="humanoid", help="skeleton for --model analytic (default humanoid)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply input positions (e.g. 0.01 for cm)")
    p.add_argument("--fps", type=float, default=None, help="frame rate when the input has none (default 30)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_ik)

    p = sub.add_parser(
        "export",
        help="export a trained model to ONNX",
        description="Export a run folder, model.pt or .ckpt to ONNX (dynamic batch size, the model's window) "
        "and check it against onnxruntime. Hybrid models export their learned part only (--part network): "
        "ONNX has no operator for their geometric solve.",
        epilog="examples: kinepose export runs/humanoid_seq --format onnx\n"
        "          kinepose export runs/humanoid_hybrid --part network --output hybrid_net.onnx",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="a run folder, a model.pt or a Lightning .ckpt")
    p.add_argument("--format", default="onnx", help="export format (only onnx)")
    p.add_argument("--output", default=None, help="output file (default: model.onnx in the run folder)")
    p.add_argument("--part", choices=["full", "network"], default="full",
                   help="full model, or a hybrid's learned part (network)")  # fmt: skip
    p.set_defaults(func=_cmd_export)

    from kinepose._cli_viz import add_viz_commands

    add_viz_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # key=value overrides may follow options: `kinepose train cfg.yaml --quiet a.b=1`
        if args.command == "train" and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as exc:  # KineposeError is a ValueError
        print(f"kinepose {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
