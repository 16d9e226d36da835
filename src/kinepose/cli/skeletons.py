"""``--skeleton NAME|FILE`` of every command, and ``kinepose skeleton``. Light at import: handlers import the rest."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kinepose.data.motion import Motion
    from kinepose.skeleton.core import Skeleton

#: The help text of every ``--skeleton`` option.
SKELETON_HELP = (
    "a preset (humanoid, hand21, h36m17, head) or a skeleton file: .yaml/.yml/.json (docs/skeleton_files.md), "
    ".bvh (its HIERARCHY), .urdf"
)
#: What ``kinepose skeleton --output`` writes.
OUTPUT_EXTENSIONS = (".yaml", ".yml", ".json")


def resolve_skeleton(spec: str, bvh_scale: float | None = None) -> Skeleton:
    """The skeleton ``--skeleton spec`` names: a preset or a file (:func:`kinepose.skeleton.presets.load_skeleton`).

    ``bvh_scale`` multiplies the lengths of a ``.bvh`` file (file units to metres, the command's ``--scale``); other
    files state their units (YAML/JSON) or are metres (URDF).
    """
    import kinepose.data.formats  # noqa: F401  (registers the .bvh skeleton reader)
    from kinepose.skeleton.presets import load_skeleton

    return load_skeleton(spec, bvh_scale if spec.lower().endswith(".bvh") else None)


def same_tree(a: Skeleton, b: Skeleton) -> bool:
    """Whether two skeletons have the same joints (names, order) and parents."""
    return a.joint_names == b.joint_names and a.parents == b.parents


def check_model_skeleton(spec: str | None, model_skeleton: Skeleton, option: str = "--skeleton") -> None:
    """A model brings its skeleton: ``--skeleton`` may only repeat it (same joints and parents)."""
    if spec is None:
        return
    given = resolve_skeleton(spec)
    if not same_tree(given, model_skeleton):
        raise ValueError(f"{option}: the model was trained on skeleton '{model_skeleton.name}' "
                         f"({model_skeleton.num_joints} joints) and solves on it; '{given.name}' "
                         f"({given.num_joints} joints) is another tree (leave out {option})")  # fmt: skip


def motion_on_skeleton(motion: Motion, skeleton: Skeleton, option: str = "--skeleton") -> Motion:
    """``motion`` replayed on ``skeleton`` (:func:`kinepose.data.motion.replay_on_skeleton`)."""
    from kinepose.data.motion import replay_on_skeleton

    return replay_on_skeleton(motion, skeleton, option)


def add_skeleton_command(sub: argparse._SubParsersAction) -> None:
    """Register ``kinepose skeleton``."""
    from kinepose.cli.files import positive_float

    p = sub.add_parser(
        "skeleton",
        help="describe a skeleton (preset or file), or write it as a skeleton file",
        description="Print a skeleton's joints (parent, kind, offset, hinge axis and limits) and the analytic IK "
        "solver of each joint. The skeleton is a preset or a file: .yaml/.yml/.json skeleton files "
        "(docs/skeleton_files.md), a .bvh file's HIERARCHY, a .urdf robot. With --output, write it as a "
        "skeleton file (an existing file is kept unless --force).",
        epilog="examples: kinepose skeleton hand21\n"
        "          kinepose skeleton humanoid --output humanoid.yaml\n"
        "          kinepose skeleton 01_01.bvh --scale 0.0564444 --output cmu.yaml --units cm\n"
        "          kinepose skeleton robot.urdf",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "name", help="preset name (humanoid, hand21, h36m17, head) or file (.yaml, .yml, .json, .bvh, .urdf)"
    )
    p.add_argument("--scale", type=positive_float, default=None,
                   help="multiply the input's lengths, e.g. 0.01 for a .bvh in centimetres, 0.0564444 for CMU's "
                        "(a .bvh rig not of human size in metres is refused without it)")  # fmt: skip
    p.add_argument("--output", default=None, help="write the skeleton here (.yaml, .yml or .json)")
    p.add_argument("--units", choices=["m", "cm", "mm", "inch"], default=None,
                   help="length unit written to --output (default: the input file's units, else m); the input's "
                        "units are --scale")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace an existing --output file")
    p.set_defaults(func=_cmd_skeleton)


def _cmd_skeleton(args: argparse.Namespace) -> int:
    from kinepose.cli.files import same_file

    ext = os.path.splitext(args.name)[1].lower()
    if args.output is not None:  # everything about the output is checked before anything is read
        if os.path.splitext(args.output)[1].lower() not in OUTPUT_EXTENSIONS:
            raise ValueError(f"--output: a skeleton file is {', '.join(OUTPUT_EXTENSIONS)}, got {args.output}")
        if os.path.exists(args.name) and same_file(args.output, args.name):
            raise ValueError(f"--output: {args.output} is the input {args.name}; writing there would overwrite it")
        if os.path.lexists(args.output) and not args.force:
            raise ValueError(f"--output: {args.output} exists; pass --force to replace it")
    elif args.units is not None or args.force:
        raise ValueError("--units and --force go with --output")

    import kinepose.data.formats  # noqa: F401  (registers the .bvh skeleton reader)
    from kinepose.kinematics.ik import ik_plan
    from kinepose.skeleton.presets import load_skeleton
    from kinepose.skeleton.skeleton_file import SKELETON_FILE_EXTENSIONS, read_skeleton_file, write_skeleton

    units, twist = "m", {}
    source = args.name
    if ext in SKELETON_FILE_EXTENSIONS and os.path.isfile(args.name):  # keep the file's units and twist limits
        f = read_skeleton_file(args.name)
        source, units, twist = f.skeleton, f.units, dict(f.twist_limits)
    sk = load_skeleton(source, args.scale)
    if ext == ".bvh" and args.scale is None:  # BVH files carry no unit: a rig not of human size needs --scale
        from kinepose.cli.files import _check_rig_units

        _check_rig_units(sk, args.name, option="--scale")
    print(sk.describe())
    plan = ik_plan(sk)
    print("\nAnalytic IK solver per joint:", ", ".join(f"{n}={s}" for n, s in zip(sk.joint_names, plan, strict=True)))
    if twist:
        from math import degrees

        print(
            "Twist limits (deg):", ", ".join(f"{n} [{degrees(lo):g}, {degrees(hi):g}]" for n, (lo, hi) in twist.items())
        )
    if args.output is not None:
        write_skeleton(sk, args.output, units=args.units or units, twist_limits=twist, overwrite=args.force)
        print(f"\nwrote {args.output}: skeleton '{sk.name}', {sk.num_joints} joints, lengths in {args.units or units}")
    return 0
