"""``kinepose <command>``: parses arguments, then calls library functions. No work happens at import."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kinepose.cli.files import _cmd_export, _cmd_ik, frame_rate, positive_float
from kinepose.cli.info import _cmd_clip, _cmd_info
from kinepose.cli.skeletons import SKELETON_HELP, add_skeleton_command
from kinepose.cli.train import _cmd_evaluate, _cmd_train

EPILOG = """\
examples:
  kinepose train configs/humanoid_hybrid.yaml              train the default recipe, print the comparison
  kinepose train configs/hand_hybrid.yaml trainer.max_epochs=5 --out runs/hand
  kinepose evaluate runs/humanoid_hybrid --noise-mm 10     score a run on its held-out clips
  kinepose evaluate analytic                               the closed-form IK on the 5 held-out clips
  kinepose ik --model runs/humanoid_hybrid --input joints.npz --output rotations.bvh
  kinepose predict demo.mp4 --body --output demo.bvh       video -> MediaPipe -> joint rotations (--view: page)
  kinepose headpose neck.mp4 --output neck.csv             head yaw/pitch/roll per frame, range of motion
  kinepose export runs/humanoid_iknet --format onnx        ONNX graph + onnxruntime parity check
  kinepose report runs/humanoid_hybrid                     one HTML page: config, metrics, curves, skeletons
  kinepose view rotations.npz joints.npz --open            3D viewer in the browser, prediction vs truth
  kinepose info                                            skeletons and bundled motion clips
  kinepose skeleton humanoid --output humanoid.yaml        a preset as an editable skeleton file
  kinepose clip kick --noise-mm 10 --output kick.npz       a bundled clip's joints as a file

file formats (kinepose ik):
  input   .npz  array `joints` (T, J, 3) metres, optional `joint_names`, `fps`, `confidence` (T, J)
          .npy  (T, J, 3) or (J, 3) metres, joints in the skeleton's order (or a --layout's, e.g. coco17)
          .csv  header <joint>_x,<joint>_y,<joint>_z,... (optional leading `frame`, optional <joint>_c), one row
                per frame; nan = a missing joint
          .bvh  joint positions by the file's own FK (--units cm for centimetres, --units cmu for CMU's)
          other units than metres are refused naming --units; NaN (or confidence 0) is a missing joint
  output  .npz  local_quat (T, J, 4) w,x,y,z, root_pos, joint_names, parents, observable, fps, joints
          .bvh  any BVH consumer (Blender, MotionBuilder); ZXY rotation channels
          .csv  frame, root_x.., <joint>_qw, _qx, _qy, _qz per joint
          .json {"format": "kinepose-rotations", "local_quat": [...], "root_pos": [...], ...}

file formats (kinepose view): any output above with its `joints` or rotations (.npz/.json), a .bvh, or joint
  positions (.npz/.npy/.csv, with --skeleton); a second file is drawn as the ground truth (joint positions
  there need no --skeleton: they are drawn on the first file's tree, matched by joint name).

skeletons (--skeleton, kinepose skeleton): a preset (humanoid, hand21, h36m17, head) or a file: .yaml/.yml/.json
  skeleton files (docs/skeleton_files.md), a .bvh file's HIERARCHY (lengths times --scale), a .urdf robot.
  kinepose ik --model analytic on a .bvh input solves on the file's own skeleton unless --skeleton says otherwise.

Units: metres and radians in files; millimetres and degrees in printed tables. Quaternions are (w, x, y, z).
"""


def build_parser() -> argparse.ArgumentParser:
    from kinepose.data.sources import DEFAULT_EVAL_CLIPS

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
    p.add_argument("--skeleton", default=None,
                   help=f"replay the clip on this skeleton (rotations by joint name, its bone lengths): "
                        f"{SKELETON_HELP}")  # fmt: skip
    p.set_defaults(func=_cmd_clip)

    add_skeleton_command(sub)

    p = sub.add_parser(
        "train",
        help="train a model from a YAML recipe",
        description="Train a model from a recipe (configs/*.yaml) with optional key=value overrides, then print\n"
        "its side-by-side comparison with the analytic solvers on the held-out clips.\n\n"
        "The whole config is checked before the run folder changes. A folder that holds a run (model.pt or\n"
        "checkpoints/) is kept: pick another with --out, or replace it with --force.\n\n"
        "An interrupted run (Ctrl-C, a crash, a killed job) goes on from its last finished epoch with\n"
        "--resume RUN and the config stored in RUN/config.yaml; --resume takes no CONFIG, overrides, --out or\n"
        "--force. With a fixed seed, a resumed run ends with the same model as an uninterrupted one.\n\n"
        "Other tasks: a lifting recipe (task: lift, configs/lift_*.yaml) trains a 2D-to-3D lifter; a head-pose\n"
        "recipe (task: headpose, configs/headpose_*.yaml) renders the synthetic heads (cached in runs/cache; the\n"
        "first run renders 4,800 images and runs MediaPipe on them, a few minutes), trains on 9 identities and\n"
        "prints its errors beside the geometric fit's on the 3 held out; its run folder holds model.pt,\n"
        "config.json (the resolved recipe: kinepose train RUN/config.json repeats it) and metrics.json. Both\n"
        "train in one go (no --resume). headpose_dual recipes need the vision extra (torchvision).",
        epilog="examples: kinepose train configs/humanoid_hybrid.yaml trainer.max_epochs=10 model.dim=128\n"
        "          kinepose train --resume runs/humanoid_hybrid\n"
        "          kinepose train configs/headpose_landmarks_residual.yaml steps=2000 --out runs/hp",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", nargs="?", default=None, help="YAML recipe, e.g. configs/humanoid_hybrid.yaml")
    p.add_argument("overrides", nargs="*", help="dotted overrides such as optim.lr=3e-4")
    p.add_argument("--out", default=None, help="run folder (default runs/<config name>)")
    p.add_argument("--force", action="store_true", help="replace the run the run folder holds (model.pt, checkpoints/)")
    p.add_argument("--resume", default=None, metavar="RUN",
                   help="continue the interrupted run in folder RUN from RUN/checkpoints/last.ckpt")  # fmt: skip
    p.add_argument("--skeleton", default=None,
                   help=f"replay the recipe's motion on {SKELETON_HELP} (the same as data.skeleton=...)")  # fmt: skip
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
    p.add_argument("--skeleton", default=None,
                   help=f"analytic: replay the clips on this skeleton (rotations by joint name) and solve on it; "
                        f"{SKELETON_HELP}")  # fmt: skip
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "ik",
        help="joint positions in a file -> joint rotations in a file",
        description="Solve joint rotations for every frame of a joints file with a trained model or the "
        "analytic solver. Input: .npz/.npy/.csv/.bvh; output: .npz/.bvh/.csv/.json (see kinepose --help).\n\n"
        "--model analytic solves on --skeleton; a .bvh input's default is its own HIERARCHY (lengths times --scale),\n"
        "and a .bvh output of it keeps the input's joint names, hierarchy, offsets, units, rotation order and\n"
        "channels. Other inputs default to the humanoid.",
        epilog="examples: kinepose ik --model runs/humanoid_hybrid --input walk.npz --output walk.bvh\n"
        "          kinepose ik --model analytic --input 01_01.bvh --units cmu --output 01_01_ik.bvh\n"
        "          kinepose ik --model analytic --input joints.csv --skeleton my_rig.yaml --output rot.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="'analytic', a run folder, model.pt or .ckpt")
    p.add_argument("--input", required=True, help="joints file (.npz, .npy, .csv, .bvh)")
    p.add_argument("--output", required=True, help="rotations file (.npz, .bvh, .csv, .json)")
    p.add_argument("--skeleton", default=None,
                   help=f"for --model analytic: {SKELETON_HELP} (default: a .bvh input's own, else "
                        f"humanoid)")  # fmt: skip
    p.add_argument("--scale", type=positive_float, default=1.0,
                   help="multiply input positions, and a .bvh skeleton's lengths (e.g. 0.01 for cm)")  # fmt: skip
    p.add_argument("--units", choices=["m", "dm", "cm", "mm", "inch", "cmu"], default=None,
                   help="the input's units instead of --scale (cmu: CMU BVH, 1/0.45 inch). Input whose bones are "
                        "about 10x, 100x or 1000x the skeleton's is refused, naming the likely unit")  # fmt: skip
    p.add_argument("--layout", default=None,
                   help="the input's joints are in this keypoint layout (coco17, halpe26, h36m17, mediapipe_pose, "
                        "body25, smpl24, hand21: docs/layouts.md), converted onto the skeleton")  # fmt: skip
    p.add_argument(
        "--min-confidence",
        type=float,
        default=0.0,
        help="joints whose confidence (npz 'confidence', CSV <joint>_c) is below this are missing",
    )
    p.add_argument(
        "--no-calibrate",
        action="store_true",
        help="keep the skeleton's bone lengths (default: measure the subject's on the input)",
    )
    # --fps 0, < 0, nan or inf is an error naming --fps, never silently 30
    p.add_argument("--fps", type=frame_rate, default=None, help="frame rate when the input has none (default 30)")
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

    from kinepose.cli.features import add_features_command
    from kinepose.cli.headpose import add_headpose_command
    from kinepose.cli.predict import add_predict_command
    from kinepose.cli.viz import add_viz_commands

    add_predict_command(sub)
    add_features_command(sub)
    add_headpose_command(sub)
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
    except (RecursionError, MemoryError) as exc:  # last line of defence: the readers refuse such inputs themselves
        what = "nested too deeply" if isinstance(exc, RecursionError) else "too large to hold in memory"
        print(f"kinepose {args.command}: error: the input is {what} ({type(exc).__name__})", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
