"""``kinepose <command>``: parses arguments, then calls library functions. No work happens at import."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EPILOG = """\
examples:
  kinepose info                                  skeletons and bundled motion clips
  kinepose skeleton humanoid                     a skeleton's joints, kinds, offsets
  kinepose evaluate analytic                     analytic IK on the 5 held-out DeepMimic clips
  kinepose evaluate analytic --noise-mm 10 --json out/analytic.json

Units: metres and radians in files; millimetres and degrees in printed tables.
Quaternions are (w, x, y, z).
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


def _cmd_skeleton(args: argparse.Namespace) -> int:
    from kinepose.ik import ik_plan
    from kinepose.skeletons import get_skeleton

    sk = get_skeleton(args.name)
    print(sk.describe())
    plan = ik_plan(sk)
    print("\nAnalytic IK solver per joint:", ", ".join(f"{n}={s}" for n, s in zip(sk.joint_names, plan, strict=True)))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from kinepose.data.deepmimic import load_deepmimic
    from kinepose.evaluation import analytic_solver, evaluate_solver, format_table, write_json
    from kinepose.skeletons import get_skeleton

    if args.model != "analytic":
        raise ValueError(f"evaluate: unknown model {args.model!r}; only 'analytic' is available so far")
    if args.noise_mm < 0:
        raise ValueError(f"--noise-mm must be >= 0, got {args.noise_mm}")
    clips = [c.strip() for c in args.clips.split(",") if c.strip()]
    motions = [load_deepmimic(c) for c in clips]
    report = evaluate_solver(
        analytic_solver(get_skeleton("humanoid")), motions, "analytic IK", noise_mm=args.noise_mm, seed=args.seed
    )
    print(f"Analytic IK on DeepMimic clips {', '.join(clips)}; joint noise {args.noise_mm:g} mm (seed {args.seed})\n")
    print(format_table(report))
    if args.json:
        write_json(args.json, report.to_dict())
        print(f"\nwrote {args.json}")
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

    p = sub.add_parser("info", help="list skeletons and bundled clips")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("skeleton", help="describe a skeleton preset")
    p.add_argument("name", help="humanoid, hand21, h36m17 or head")
    p.set_defaults(func=_cmd_skeleton)

    p = sub.add_parser(
        "evaluate",
        help="score a rotation solver on held-out clips",
        epilog="example: kinepose evaluate analytic --noise-mm 10 --json out/analytic.json",
    )
    p.add_argument("model", help="'analytic' (the closed-form IK)")
    p.add_argument("--clips", default=",".join(DEFAULT_EVAL_CLIPS), help="comma-separated DeepMimic clip names")
    p.add_argument("--noise-mm", type=float, default=0.0, help="Gaussian joint noise, mm (default 0)")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--json", default=None, help="also write the metrics to this JSON file")
    p.set_defaults(func=_cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as exc:  # KineposeError is a ValueError
        print(f"kinepose {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
