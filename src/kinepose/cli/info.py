"""``kinepose info`` and ``clip``: what ships with kinepose (``skeleton`` is in :mod:`kinepose.cli.skeletons`)."""

from __future__ import annotations

import argparse


def _cmd_info(args: argparse.Namespace) -> int:
    import kinepose
    from kinepose.data.sources.deepmimic import DEEPMIMIC_CLIPS, DEFAULT_EVAL_CLIPS, load_deepmimic
    from kinepose.skeleton.layouts import get_layout, list_conversions, list_layouts
    from kinepose.skeleton.presets import get_skeleton, list_skeletons

    print(f"kinepose {kinepose.__version__}\n\nSkeletons (also: --skeleton FILE.yaml|.json|.bvh|.urdf):")
    for name in list_skeletons():
        print(f"  {name:<10} {get_skeleton(name)!r}")
    print("\nKeypoint layouts (--layout NAME; docs/layouts.md), with the layouts each converts to:")
    conv = list_conversions()
    for name in list_layouts():
        to = ", ".join(d for s, d in conv if s == name) or "-"
        print(f"  {name:<16} {get_layout(name).num_joints:>2} joints  -> {to}")
    print("\nBundled DeepMimic clips (pybullet_data), * = default evaluation clip:")
    for clip in DEEPMIMIC_CLIPS:
        m = load_deepmimic(clip)
        star = "*" if clip in DEFAULT_EVAL_CLIPS else " "
        print(f" {star}{clip:<16} {m.num_frames:>4} frames  {m.fps:5.1f} fps  {m.num_frames / m.fps:5.2f} s")
    from kinepose.models import list_models
    from kinepose.models.lifting import list_lifters

    print(f"\nModels, joints -> rotations (kinepose train configs/humanoid_*.yaml): {', '.join(list_models())}")
    print(f"Lifters, 2D -> 3D (kinepose train configs/lift_*.yaml, task: lift): {', '.join(list_lifters())}")
    return 0


def _cmd_clip(args: argparse.Namespace) -> int:
    from kinepose.cli.viz import noisy_clip
    from kinepose.data.formats.io import save_joints

    if args.skeleton is not None:
        from kinepose.cli.skeletons import resolve_skeleton

        skeleton = resolve_skeleton(args.skeleton)  # before the clip is read: a bad file fails fast
        m, _, joints = noisy_clip(args.name, args.noise_mm, args.seed, skeleton=skeleton)
    else:
        m, _, joints = noisy_clip(args.name, args.noise_mm, args.seed)  # (T, J, 3)
    save_joints(args.output, joints, m.skeleton.joint_names, fps=m.fps)
    noise = f", {args.noise_mm:g} mm Gaussian noise (seed {args.seed})" if args.noise_mm else ""
    on = f" on skeleton '{m.skeleton.name}'" if args.skeleton is not None else ""
    print(f"wrote {args.output}: {args.name}{on}, {m.num_frames} frames, {len(m.skeleton.joint_names)} joints, "
          f"{m.fps:g} fps{noise}")  # fmt: skip
    return 0
