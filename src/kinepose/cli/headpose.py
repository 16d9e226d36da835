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
    p.add_argument("--model", default="geometric",
                   help="geometric (default, no learning) or a head-pose run folder (kinepose train "
                        "configs/headpose_*.yaml)")  # fmt: skip
    p.add_argument("--output", required=True, help="per-frame results: .csv or .json")
    p.add_argument("--view", action="store_true",
                   help="also draw the head's axes: F_view.jpg for a photo, F_view.mp4 for a video or "
                        "folder")  # fmt: skip
    p.add_argument("--flip-tta", action=argparse.BooleanOptionalAction, default=None,
                   help="with --model RUN: average the network's answer with its mirrored answer on the mirrored "
                        "input (the face crop, or the landmarks mirrored; twice the network's time); default on "
                        "for headpose_dual runs, off for headpose_landmarks runs (benchmarks/RESULTS.md measures "
                        "both)")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_headpose)


def _outputs(args: argparse.Namespace, kind: str) -> dict[str, str]:
    from kinepose.cli.files import check_new_file

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
    inside = os.path.isdir(args.input)
    for option, path in out.items():
        if inside and os.path.commonpath([os.path.abspath(args.input), os.path.abspath(path)]) == os.path.abspath(
                args.input):  # fmt: skip
            raise ValueError(f"{option}: {path} is inside the input folder {args.input}; its images are the frames, "
                             "so write the outputs elsewhere")  # fmt: skip
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise ValueError(f"{option}: {path}: the folder {os.path.dirname(os.path.abspath(path))} does not exist")
        check_new_file(option, path, args.input, (args.model,), args.force)
    return out


def _cmd_headpose(args: argparse.Namespace) -> int:
    from kinepose.frontends.mediapipe import import_mediapipe, open_media

    try:
        import_mediapipe()
    except ImportError as exc:
        raise ValueError(str(exc)) from exc
    from kinepose._progress import progress_enabled
    from kinepose.frontends.headpose import estimate_headpose, load_estimator, range_of_motion

    media = open_media(args.input)  # readable, has frames: or an error naming the file
    outs = _outputs(args, media.kind)
    est = load_estimator(args.model, args.flip_tta)
    track = estimate_headpose(media, est, progress=progress_enabled(not args.quiet))
    n = int(track.found.sum())
    if n == 0:
        raise ValueError(f"{args.input}: no face found in {track.num_frames} frame(s); nothing written")
    rom = range_of_motion(track) if media.kind != "image" else None
    _write_all(outs, media, track, rom)
    _summary(args, media, track, rom, outs)
    return 0


def _write_all(outs: dict[str, str], media, track, rom) -> None:
    """Every output to a temporary file beside it first, renamed into place only when all were written: a failure
    (a codec missing for the video, a full disk) leaves the user's files as they were."""
    import json

    from kinepose._atomic import atomic_write
    from kinepose.viz.headpose import plot_headpose, write_headpose, write_view

    tmp = {k: os.path.join(os.path.dirname(os.path.abspath(p)), f".{os.path.basename(p)}.{os.getpid()}.tmp"
                           f"{os.path.splitext(p)[1]}") for k, p in outs.items()}  # fmt: skip
    try:
        write_headpose(tmp["--output"], track, rom, CONVENTION)
        if "range of motion" in outs:
            atomic_write(tmp["range of motion"], lambda f: f.write(json.dumps(rom, indent=1) + "\n"))
        if "plot" in outs:
            plot_headpose(tmp["plot"], track, rom)
        if "--view" in outs:
            write_view(tmp["--view"], media, track)
        for k, path in outs.items():
            os.replace(tmp[k], path)
    finally:
        for path in tmp.values():
            if os.path.lexists(path):
                os.remove(path)


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
    from kinepose.config import merge_config
    from kinepose.training.headpose import RECIPE_DEFAULTS, resolve_recipe

    if args.skeleton:
        raise ValueError("--skeleton is for joints-to-rotations recipes; a head-pose recipe (task: headpose) has none")
    cfg = resolve_recipe(merge_config(RECIPE_DEFAULTS, args.config, list(args.overrides)))
    run_dir = args.out or os.path.join("runs", cfg["name"])
    taken = [f for f in ("config.json", "model.pt", "config.yaml", "checkpoints", "lifter.pt")
             if os.path.lexists(os.path.join(run_dir, f))]  # fmt: skip
    if taken and not args.force:
        raise ValueError(f"--out: {run_dir} already holds a run ({', '.join(taken)}); pass --force to replace it (or "
                         f"another --out)")  # fmt: skip
    from kinepose._progress import progress_enabled
    from kinepose.frontends.headpose_data import build_headpose_data
    from kinepose.training.headpose import evaluate_recipe, save_headpose_run

    bar = progress_enabled(not args.quiet)
    d = cfg["data"]
    data = build_headpose_data(d["sequences"], d["frames"], d["size"], d["seed"], os.path.join("runs", "cache"),
                               progress=bar)  # fmt: skip
    res = evaluate_recipe(cfg, data, progress=bar)
    save_headpose_run(run_dir, res.model, cfg, res.metrics)
    fit, held_out = res.fit, res.metrics["held_out_identities"]
    print(f"\nTrained {cfg['name']} ({cfg['model']}) in {fit.seconds:.0f} s, {fit.steps} steps (stopped by "
          f"{fit.stopped_by}); run folder {run_dir}")  # fmt: skip
    n_te, n_found = res.metrics["test_frames"], res.metrics["test_frames_face_found"]
    print(f"Held-out identities ({', '.join(held_out)}): {n_te} frames, MediaPipe found the face in {n_found}; "
          f"degrees over those {n_found}:")  # fmt: skip
    print(f"  {'model':38s} {'yaw':>6s} {'pitch':>6s} {'roll':>6s} {'mean':>6s} {'geodesic':>9s}")
    for name, r in res.metrics["test"].items():
        cells = " ".join("     -" if r[k] is None else f"{r[k]:6.2f}" for k in ("mae_yaw", "mae_pitch", "mae_roll",
                                                                                 "mae_mean"))  # fmt: skip
        geo = "        -" if r["geodesic_mean"] is None else f"{r['geodesic_mean']:9.2f}"
        print(f"  {name:38s} {cells} {geo}")
    return 0
