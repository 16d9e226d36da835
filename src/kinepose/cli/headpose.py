"""``kinepose headpose``: a photo, a video or a folder -> MediaPipe FaceMesh -> yaw, pitch, roll per frame.

Light at import (the parser is built without numpy or torch); the handler imports the rest.
"""

from __future__ import annotations

import argparse
import os

OUTPUTS = (".csv", ".json")
CONVENTION = ("kinepose head pose, degrees: yaw > 0 = turned to the subject's left, pitch > 0 = chin up (extension), "
              "roll > 0 = tilted towards the left shoulder; R = Rx(-pitch) Ry(-yaw) Rz(roll), camera from head, "
              "OpenCV camera axes (x right, y down, z forward); Hopenet/FSA-Net/6DRepNet yaw = -yaw")  # fmt: skip


def add_headpose_command(sub: argparse._SubParsersAction) -> None:
    """Register ``kinepose headpose``."""
    p = sub.add_parser(
        "headpose",
        help="photo, video or folder -> head yaw, pitch, roll per frame (.csv, .json), range of motion",
        description="Find the face in every frame (MediaPipe FaceMesh; the largest face where there are several), "
        "estimate the head's rotation and write per frame: face found, yaw, pitch, roll (degrees) and the rotation "
        "matrix. For a video (or a folder of frames) also a plot over time (F.png) and the cervical range of "
        "motion: maximum rotation left/right, flexion/extension, lateral bending left/right (in the .json, or "
        "F_rom.json beside a .csv).\n\n" + CONVENTION + ".\n\n"
        "--model geometric (default) fits the 468 landmarks to kinepose's mean face (no learning); --model RUN "
        "uses a trained headpose_landmarks or headpose_dual run folder (benchmarks/headpose.py writes them). "
        "Everything is checked before a file is written; existing outputs are kept unless --force. Exit status 2 "
        "and nothing written for an unreadable file, a video without frames, no face found.",
        epilog="examples: kinepose headpose photo.jpg --output photo.json --view\n"
        "          kinepose headpose neck_exam.mp4 --output neck.csv\n"
        "          kinepose headpose frames/ --model runs/headpose/headpose_landmarks --output pose.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="IMAGE|VIDEO|FOLDER", help="a photo, a video file, or a folder of images")
    p.add_argument("--model", default="geometric", help="geometric (default), landmarks, or a run folder")
    p.add_argument("--output", required=True, help="per-frame results: .csv or .json")
    p.add_argument("--view", action="store_true",
                   help="also draw the head's axes: F_view.jpg for a photo, F_view.mp4 for a video or "
                        "folder")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_headpose)


def _outputs(args: argparse.Namespace, kind: str) -> dict[str, str]:
    from kinepose.cli.files import check_output, same_file

    stem, ext = os.path.splitext(args.output)
    if ext.lower() not in OUTPUTS:
        raise ValueError(f"--output: {args.output}: expected a {' or '.join(OUTPUTS)} file")
    out = {"--output": args.output}
    if kind != "image":
        out["plot"] = stem + ".png"
        if ext.lower() == ".csv":
            out["range of motion"] = stem + "_rom.json"
    if args.view:
        out["--view"] = stem + ("_view.jpg" if kind == "image" else "_view.mp4")
    for option, path in out.items():
        if os.path.exists(args.input) and same_file(path, args.input):
            raise ValueError(f"{option}: {path} is the input; writing there would overwrite it")
        check_output(option, path, (args.model,))
        if os.path.isdir(path):
            raise ValueError(f"{option}: {path} is a folder")
        if os.path.lexists(path) and not args.force:
            raise ValueError(f"{option}: {path} exists; pass --force to replace it")
    return out


def _cmd_headpose(args: argparse.Namespace) -> int:
    from kinepose.frontends.mediapipe import import_mediapipe, open_media

    try:
        import_mediapipe()
    except ImportError as exc:
        raise ValueError(str(exc)) from exc
    media = open_media(args.input)  # readable, has frames: or an error naming the file
    outs = _outputs(args, media.kind)
    from kinepose._progress import progress_enabled
    from kinepose.frontends.headpose import estimate_headpose, load_estimator, range_of_motion

    est = load_estimator(args.model)
    track = estimate_headpose(media, est, progress=progress_enabled(not args.quiet))
    n = int(track.found.sum())
    if n == 0:
        raise ValueError(f"{args.input}: no face found in {track.num_frames} frame(s); nothing written")
    rom = range_of_motion(track) if media.kind != "image" else None
    from kinepose.viz.headpose import plot_headpose, write_headpose, write_view

    write_headpose(outs["--output"], track, rom, CONVENTION)
    if "range of motion" in outs:
        import json

        from kinepose._atomic import atomic_write

        atomic_write(outs["range of motion"], lambda f: f.write(json.dumps(rom, indent=1) + "\n"))
    if "plot" in outs:
        plot_headpose(outs["plot"], track, rom)
    if "--view" in outs:
        write_view(outs["--view"], media, track)
    _summary(args, media, track, rom, outs)
    return 0


def _summary(args, media, track, rom, outs) -> None:
    import numpy as np

    T, n = track.num_frames, int(track.found.sum())
    print(f"{args.input}: {T} frame(s) ({media.kind}), face found in {n} ({100 * n / T:.0f} %), model "
          f"{track.model} -> {', '.join(outs.values())}")  # fmt: skip
    several = int((track.num_faces > 1).sum())
    if several:
        print(f"  {several} frame(s) with several faces (up to {int(track.num_faces.max())}): the largest face is used")
    if T == 1:
        y, p, r = np.degrees(track.ypr[0])
        print(f"  yaw {y:+.1f}, pitch {p:+.1f}, roll {r:+.1f} deg")
    if rom is not None:
        print(f"  range of motion (deg): rotation left {rom['rotation_left']['deg']:.1f} / right "
              f"{rom['rotation_right']['deg']:.1f}, extension {rom['extension']['deg']:.1f} / flexion "
              f"{rom['flexion']['deg']:.1f}, lateral bending left {rom['lateral_bending_left']['deg']:.1f} / right "
              f"{rom['lateral_bending_right']['deg']:.1f}")  # fmt: skip
    ms = 1000 * track.seconds["mediapipe"] / T
    print(f"  time per frame: MediaPipe {ms:.1f} ms, model {1000 * track.seconds['model'] / T:.2f} ms")


def train_headpose(args: argparse.Namespace) -> int:
    """``kinepose train configs/headpose_*.yaml``: render (or read the cached) synthetic set, run MediaPipe on it,
    train the recipe on 9 identities, score it and the geometric fit on the 3 held out, write the run folder."""
    import numpy as np

    from kinepose.config import merge_config
    from kinepose.training.headpose import RECIPE_DEFAULTS, resolve_recipe

    if args.resume is not None or args.skeleton:
        raise ValueError("--resume and --skeleton are for joints-to-rotations recipes; a head-pose recipe (task: "
                         "headpose) trains in one go")  # fmt: skip
    cfg = resolve_recipe(merge_config(RECIPE_DEFAULTS, args.config, list(args.overrides)))
    run_dir = args.out or os.path.join("runs", cfg["name"])
    if os.path.exists(os.path.join(run_dir, "config.json")) and not args.force:
        raise ValueError(f"--out: {run_dir} already holds a run; pass --force to replace it (or another --out)")
    from kinepose._progress import progress_enabled
    from kinepose.data.splits import group_split
    from kinepose.frontends.headpose_data import build_headpose_data
    from kinepose.metrics.headpose import headpose_report
    from kinepose.models.headpose import GeometricHeadPose
    from kinepose.training.headpose import save_headpose_run, train_recipe

    bar = progress_enabled(not args.quiet)
    d = cfg["data"]
    data = build_headpose_data(d["sequences"], d["frames"], d["size"], d["seed"], os.path.join("runs", "cache"),
                               progress=bar)  # fmt: skip
    hs = data.heads
    split = group_split(hs.identity, test_fraction=d["test_fraction"], seed=d["seed"])
    te = split["test"]
    model, pred, fit = train_recipe(cfg, data, split["train"], progress=bar)
    geo = GeometricHeadPose().fit(data.face[split["train"]], hs.rotation[split["train"]])
    reports = {
        "this run": headpose_report(pred[te], hs.ypr[te]),
        "geometric (Kabsch to the mean face)": headpose_report(geo.predict(data.face[te]), hs.ypr[te]),
    }
    held_out = sorted({hs.identities[i] for i in np.unique(hs.identity[te])})
    save_headpose_run(run_dir, model, {**cfg, "held_out_identities": held_out},
                      {"test": reports, "steps": fit.steps, "train_seconds": fit.seconds,
                       "stopped_by": fit.stopped_by}, mean_face=geo.mean_face)  # fmt: skip
    print(f"\nTrained {cfg['name']} ({cfg['model']}) in {fit.seconds:.0f} s, {fit.steps} steps (stopped by "
          f"{fit.stopped_by}); run folder {run_dir}")  # fmt: skip
    print(f"Held-out identities ({', '.join(held_out)}), {len(te)} frames; degrees:")
    print(f"  {'model':38s} {'yaw':>6s} {'pitch':>6s} {'roll':>6s} {'mean':>6s} {'geodesic':>9s} {'face found':>10s}")
    for name, r in reports.items():
        print(f"  {name:38s} {r['mae_yaw']:6.2f} {r['mae_pitch']:6.2f} {r['mae_roll']:6.2f} {r['mae_mean']:6.2f} "
              f"{r['geodesic_mean']:9.2f} {100 * r['detected']:9.0f}%")  # fmt: skip
    return 0
