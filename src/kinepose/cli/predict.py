"""``kinepose predict``: a video, a photo or a folder of frames -> MediaPipe -> joint rotations (.bvh/.npz).

Light at import (the parser is built without numpy or torch); the handler imports the rest.
"""

from __future__ import annotations

import argparse
import os

#: What ``--output`` may be.
OUTPUTS = (".bvh", ".npz")


def _visibility(text: str) -> float:
    """Argparse type for ``--min-visibility``: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def add_predict_command(sub: argparse._SubParsersAction) -> None:
    """Register ``kinepose predict``."""
    from kinepose.cli.files import frame_rate

    p = sub.add_parser(
        "predict",
        help="video, photo or folder of frames -> MediaPipe -> joint rotations (.bvh, .npz)",
        description="Detect a body (MediaPipe Pose) or a hand (MediaPipe Hands) in every frame, repair the track "
        "(left/right swaps, flicker, short gaps), smooth it, map it onto kinepose's humanoid or hand21 skeleton, "
        "calibrate the bone lengths to the subject and solve the joint rotations (analytic IK).\n\n"
        "Input: a video file, one image, or a folder of images read as the frames of one clip in name order.\n"
        "Landmarks whose visibility is below --min-visibility are missing joints (NaN), never zeros. The root "
        "stays near the origin: MediaPipe's world landmarks are hip-centred (hand-centred). A left hand is "
        "solved as its mirror image on the right-hand preset.\n\n"
        "Everything is checked before a file is written; an existing --output (or its .html page with --view) "
        "is kept unless --force. Needs pip install 'kinepose[mediapipe]'.",
        epilog="examples: kinepose predict demo.mp4 --body --output demo.bvh --view\n"
        "          kinepose predict photo.jpg --body --output photo.npz\n"
        "          kinepose predict frames/ --hand --fps 60 --causal --output hand.npz\n"
        "          kinepose predict demo.mp4 --body --lifter runs/lifter --output demo_lifted.bvh",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="VIDEO|IMAGE|FOLDER", help="a video file, an image, or a folder of images")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--body", dest="target", action="store_const", const="body",
                      help="MediaPipe Pose -> the humanoid skeleton (15 joints)")  # fmt: skip
    what.add_argument("--hand", dest="target", action="store_const", const="hand",
                      help="MediaPipe Hands -> the hand21 skeleton (the most confident hand)")  # fmt: skip
    p.add_argument("--output", required=True, help="rotations file: .bvh (any BVH consumer) or .npz (see kinepose ik)")
    p.add_argument("--lifter", default=None, metavar="RUN",
                   help="lift MediaPipe's 2D image landmarks with this trained kinepose lifter instead of using "
                        "MediaPipe's world landmarks")  # fmt: skip
    p.add_argument("--view", action="store_true", help="also write the 3D viewer page next to the output (F.html)")
    p.add_argument("--force", action="store_true", help="replace an existing --output (and its .html with --view)")
    p.add_argument("--min-visibility", type=_visibility, default=0.5,
                   help="landmarks less visible than this are missing joints (default 0.5)")  # fmt: skip
    p.add_argument("--fps", type=frame_rate, default=None,
                   help="frame rate (default: the video's own; 30 for images)")  # fmt: skip
    p.add_argument("--causal", action="store_true",
                   help="repair and smooth from past frames only, as in real time (default: offline, "
                        "zero-phase)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_predict)


def _check_outputs(args: argparse.Namespace) -> str | None:
    """Validate ``--output`` (and the page of ``--view``) before anything is read; the page's path or None."""
    from kinepose.cli.files import check_new_file

    ext = os.path.splitext(args.output)[1].lower()
    if ext not in OUTPUTS:
        raise ValueError(f"--output: {args.output}: expected a {' or '.join(OUTPUTS)} file")
    page = os.path.splitext(args.output)[0] + ".html" if args.view else None
    for option, path in (("--output", args.output), ("--view", page)):
        if path is None:
            continue
        check_new_file(option, path, args.input, (args.lifter,), args.force)
    return page


def _check_lifter(run: str) -> None:
    if not os.path.exists(run):
        raise ValueError(f"--lifter: {run}: no such run folder or model file")
    try:
        from kinepose.frontends.pipeline import import_lifter

        import_lifter()
    except ImportError as exc:
        raise ValueError(f"--lifter: {exc}; this installation cannot lift 2D keypoints (leave out --lifter to use "
                         f"MediaPipe's own 3D world landmarks)") from exc  # fmt: skip


def _cmd_predict(args: argparse.Namespace) -> int:
    page = _check_outputs(args)
    if args.lifter is not None:
        _check_lifter(args.lifter)
    from kinepose.frontends.mediapipe import import_mediapipe, open_media

    try:
        import_mediapipe()
    except ImportError as exc:
        raise ValueError(str(exc)) from exc
    media = open_media(args.input)  # readable, has frames, a folder holds images: or an error naming the file

    from kinepose._progress import progress_enabled
    from kinepose.data.formats.io import save_rotations
    from kinepose.frontends.pipeline import video_to_rotations

    r = video_to_rotations(media, args.target, min_visibility=args.min_visibility, fps=args.fps, causal=args.causal,
                           lifter=args.lifter, progress=progress_enabled(not args.quiet))  # fmt: skip
    save_rotations(args.output, r.skeleton, r.local_quat, r.root_pos, fps=r.fps, observable=r.determined_global,
                   joints=r.positions, determined=r.determined, determined_global=r.determined_global,
                   valid=r.valid)  # fmt: skip
    if page is not None:
        from kinepose.viz.viewer import write_viewer

        rep = r.repair
        notes = [f"{os.path.basename(args.input)}: {int(r.detected.sum())} of {r.num_frames} frames detected, "
                 f"{rep.swaps_repaired} left/right swap(s) repaired; frames without a detection are at "
                 f"rest"]  # fmt: skip
        write_viewer(page, r.skeleton.parents, r.skeleton.joint_names, {"kinepose": r.positions}, fps=r.fps,
                     title=f"kinepose predict {os.path.basename(args.input)}", notes=notes)  # fmt: skip
    _print_summary(args, media, r, page)
    return 0


def _print_summary(args: argparse.Namespace, media, r, page: str | None) -> None:
    T, n = r.num_frames, int(r.detected.sum())
    w, h = media.size
    rate = f", {r.fps:g} fps" if T > 1 else ""
    subject = "person" if args.target == "body" else "hand"
    print(f"{args.input}: {T} frame(s) ({media.kind}, {w}x{h}{rate}), {subject} detected in {n} "
          f"({100 * n / T:.1f} %) -> {args.output} on skeleton '{r.skeleton.name}' ({r.skeleton.num_joints} joints, "
          f"bone lengths calibrated to the subject)")  # fmt: skip
    s = r.repair.summary()
    source = f"the lifter {args.lifter}" if args.lifter else "MediaPipe's world landmarks"
    print(f"  3D from {source}; repaired: {s['swaps_repaired']} left/right swap(s) ({s['swapped_frames']} frames), "
          f"{s['outliers_rejected']} outlier landmarks, {s['positions_filled']} filled in short gaps, "
          f"{len(s['subject_changes'])} change(s) of subject; "
          f"{'causal' if r.repair.causal else 'offline'}")  # fmt: skip
    ms = r.timings.per_frame_ms()
    lift = f", lifter {ms['lift']:.2f}" if args.lifter else ""
    print(f"  time per frame: MediaPipe {ms['mediapipe']:.1f} ms, kinepose {ms['kinepose']:.2f} ms "
          f"({100 * r.timings.overhead:.1f} % of MediaPipe's){lift}, reading frames {ms['decode']:.1f} ms; "
          f"one-time IK kernel load {r.timings.startup:.2f} s")  # fmt: skip
    if r.mirrored.any():
        print(f"  {int(r.mirrored.sum())} frame(s) of a left hand solved as its mirror image (the right-hand preset)")
    if page is not None:
        print(f"  viewer: {page}")
