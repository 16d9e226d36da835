"""The ``kinepose`` commands that draw: ``plot``, ``report`` and ``view`` (their arguments and handlers).

Split from :mod:`kinepose.cli`, which registers them through :func:`add_viz_commands`. As there, no work
happens at import: every handler imports what it needs.
"""

from __future__ import annotations

import argparse
import sys

#: The noise conditions of a lifting run's eval.json (``kinepose.training.lifting.EVAL_CONDITIONS``, whose module
#: imports torch and Lightning: named here so that ``--help`` stays light; a test keeps the two equal).
LIFT_CONDITIONS = ("clean", "2px", "5px", "5px+outliers")


def noisy_clip(name: str, noise_mm: float, seed: int, skeleton=None):
    """A bundled DeepMimic clip, its true joints (T, J, 3) and the same plus Gaussian noise (mm, seeded); with a
    ``skeleton``, the clip replayed on it (:func:`kinepose.cli.skeletons.motion_on_skeleton`)."""
    import torch

    from kinepose.data.sources.deepmimic import load_deepmimic
    from kinepose.data.transforms import add_joint_noise

    if noise_mm < 0:
        raise ValueError(f"--noise-mm must be >= 0, got {noise_mm}")
    motion = load_deepmimic(name)
    if skeleton is not None:
        from kinepose.cli.skeletons import motion_on_skeleton

        motion = motion_on_skeleton(motion, skeleton)
    truth = motion.positions()
    return motion, truth, add_joint_noise(truth, noise_mm, torch.Generator().manual_seed(seed))


def _cmd_plot(args: argparse.Namespace) -> int:
    if args.what == "curves":
        from kinepose.viz import plot_training_curves

        plot_training_curves(args.runs, args.output, metrics=args.metrics)
    elif args.what == "noise":
        from kinepose.viz import plot_error_vs_noise

        plot_error_vs_noise(args.benchmark, args.output, skeleton=args.skeleton, metric=args.metric, rows=args.rows)
    elif args.what == "joints":
        from kinepose.viz import plot_per_joint_errors

        plot_per_joint_errors(args.benchmark, args.output, skeleton=args.skeleton, noise_mm=args.noise_mm,
                              rows=args.rows)  # fmt: skip
    elif args.what == "attention":
        return _plot_attention(args)
    else:
        return _plot_pose(args)
    print(f"wrote {args.output}")
    return 0


def _plot_lifter_attention(args: argparse.Namespace) -> int:
    """``kinepose plot attention`` for a lifting run: the clip seen by one fixed camera (2D, ``--noise-mm`` read as
    pixels), the lifter's attention over its joints (PoseTransformer) or frames (ours)."""
    from kinepose.data.lifting import KeypointNoise, body_clips, view_clips
    from kinepose.geometry.camera_sampling import CameraRanges
    from kinepose.inference import attention_tokens
    from kinepose.models.lifting.files import load_lifter
    from kinepose.viz import plot_attention
    from kinepose.viz.lift_report import lifter_attention

    model = load_lifter(args.model)
    if model.skeleton.name != "humanoid":
        raise ValueError(f"--model: the bundled clips are humanoid motion; this lifter is for '{model.skeleton.name}'")
    clip = body_clips([args.clip], bvh=())[args.clip]
    view = view_clips([clip], CameraRanges(), KeypointNoise(sigma_px=args.noise_mm), views=1, seed=args.seed)[0]
    att, n = lifter_attention(model, view.keypoints, view.visibility)  # per layer (heads, N, N), mean of n windows
    if not att:
        raise ValueError(f"--model: this {model.family} lifter has no attention layers (pose_transformer and "
                         "skeleton_lifter have)")  # fmt: skip
    if att[0].shape[-1] == 1:
        raise ValueError(f"--model: this {model.family} lifter attends over a single token (window 1): nothing to plot")
    axis, labels, query = attention_tokens(model, att[0].shape[-1])
    plot_attention(att, args.output, title=f"{model.family}: attention over {axis}s, {args.clip} ({n} windows)",
                   labels=labels, axis=axis, per_head=args.per_head, query=query)  # fmt: skip
    print(f"wrote {args.output} ({len(att)} layers, {att[0].shape[0]} heads, {n} windows of {args.clip})")
    return 0


def _plot_attention(args: argparse.Namespace) -> int:
    import os

    from kinepose.inference import attention_tokens, clip_attention
    from kinepose.models.files import load_model
    from kinepose.viz import plot_attention

    if args.noise_mm < 0:
        raise ValueError(f"--noise-mm must be >= 0, got {args.noise_mm}")
    if not os.path.exists(args.model):
        raise ValueError(f"--model: {args.model!r} is not an existing run folder or model file")
    if os.path.exists(os.path.join(args.model, "lifter.pt")) or args.model.endswith("lifter.pt"):
        return _plot_lifter_attention(args)
    model = load_model(args.model)
    if model.skeleton.name != "humanoid":
        raise ValueError(f"--model: the bundled clips are humanoid motion; this model is for '{model.skeleton.name}'")
    noisy = noisy_clip(args.clip, args.noise_mm, args.seed)[2]
    att, n = clip_attention(model, noisy.float())
    if not att:
        raise ValueError(f"--model: this {model.family} model has no attention layers (sequence transformers, "
                         "hybrid transformer encoders and seed0 attention/graph mixers have)")  # fmt: skip
    if att[0].shape[-1] == 1:
        raise ValueError(f"--model: this {model.family} model attends over a single token (window 1): nothing to plot")
    axis, labels, query = attention_tokens(model, att[0].shape[-1])
    plot_attention(att, args.output, title=f"{model.family}: attention over {axis}s, {args.clip} ({n} windows)",
                   labels=labels, axis=axis, per_head=args.per_head, query=query)  # fmt: skip
    print(f"wrote {args.output} ({len(att)} layers, {att[0].shape[0]} heads, {n} windows of {args.clip})")
    return 0


def _plot_pose(args: argparse.Namespace) -> int:
    import os

    from kinepose.kinematics.fk import forward_kinematics
    from kinepose.viz import animate_skeleton, plot_pose_comparison

    animate = args.frames == "all"
    if animate != args.output.lower().endswith((".gif", ".mp4")):
        raise ValueError("--output: a .gif or .mp4 needs --frames all, and --frames all needs a .gif or .mp4 output")
    if args.noise_mm < 0:
        raise ValueError(f"--noise-mm must be >= 0, got {args.noise_mm}")
    if args.model != "analytic" and not os.path.exists(args.model):
        raise ValueError(f"--model: {args.model!r} is neither 'analytic' nor an existing run folder or model file")
    motion, truth, noisy = noisy_clip(args.clip, args.noise_mm, args.seed)  # (T, J, 3) each
    if not animate and not 0 <= args.frame < motion.num_frames:
        raise ValueError(f"--frame: {args.frame} is outside clip {args.clip!r} (0..{motion.num_frames - 1})")
    if args.model == "analytic":
        from kinepose.kinematics.ik import analytic_ik

        skeleton, name = motion.skeleton, "analytic IK"
        result = analytic_ik(skeleton, noisy)
        quat, root = result.local_quat, result.root_pos
    else:
        from kinepose.inference import predict_clip
        from kinepose.models.files import load_model

        model = load_model(args.model)
        skeleton, name = model.skeleton, f"{model.family} ({os.path.basename(os.path.normpath(args.model))})"
        if skeleton.name != motion.skeleton.name:
            raise ValueError(
                f"--model: the clips are '{motion.skeleton.name}' motion; this model is for '{skeleton.name}'"
            )
        quat, root = predict_clip(model, noisy.float())
    pred = forward_kinematics(skeleton, quat.double(), root.double(), check=False).positions  # (T, J, 3)
    title = f"{name} on {args.clip}, joint noise {args.noise_mm:g} mm"
    if animate:
        from kinepose._progress import progress_enabled

        n = animate_skeleton(
            skeleton, pred, truth, args.output, fps=motion.fps, title=title, progress=progress_enabled()
        )
        print(f"wrote {args.output} ({n} frames)")
    else:
        plot_pose_comparison(skeleton, pred[args.frame], truth[args.frame], args.output,
                             title=f"{title}, frame {args.frame}", overlay=not args.side_by_side)  # fmt: skip
        print(f"wrote {args.output}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from kinepose.viz.report import write_report

    if args.noise_mm < 0:
        raise ValueError(f"--noise-mm must be >= 0, got {args.noise_mm}")
    if args.view is not None and args.view < 0:
        raise ValueError(f"--view: a test camera index >= 0, got {args.view}")
    if args.output is not None:  # before anything is read: never over the run's files
        from kinepose.cli.files import check_output

        if not args.output.lower().endswith(".html"):
            raise ValueError(f"--output: the report is an HTML page: give a .html file, got {args.output}")
        check_output("--output", args.output, (args.run,))
    result = write_report(args.run, args.output, clip=args.clip, noise_mm=args.noise_mm, seed=args.seed,
                          viewer=not args.no_viewer, condition=args.condition, view=args.view)  # fmt: skip
    print(f"wrote {result.path} ({result.bytes / 1024:.0f} KiB: {', '.join(result.sections)})")
    if result.viewer_path:
        print(f"wrote {result.viewer_path} (3D viewer of the clip, linked from the report)")
    return 0


def _default_view_output(path: str) -> str:
    """``FILE.view.html`` in the current folder (not beside the input, which may be read-only). The input's
    extension stays in the name, so the pages of ``kick.npz`` and ``kick.bvh`` do not overwrite each other."""
    import os

    return os.path.basename(path) + ".view.html"


def _cmd_view(args: argparse.Namespace) -> int:
    import os
    import warnings

    from kinepose.cli.files import same_file
    from kinepose.viz.viewer import view_files

    out = args.output or _default_view_output(args.file)
    for given in (args.file, args.truth):
        if given is not None and same_file(out, given):  # checked before anything is read or written
            raise ValueError(f"--output: {out} is the input file {given}; writing the page there would overwrite it")
    skeleton = None
    if args.skeleton is not None:  # in file units: the viewer multiplies positions by --scale after FK
        from kinepose.cli.skeletons import resolve_skeleton

        skeleton = resolve_skeleton(args.skeleton)
    with warnings.catch_warnings(record=True) as caught:  # trimmed clips, unknown fps: printed as notes
        warnings.simplefilter("always")
        n = view_files(out, args.file, args.truth, scale=args.scale, skeleton=skeleton, title=args.title)
    for w in caught:
        print(f"note: {w.message}", file=sys.stderr)
    print(f"wrote {out} ({n} frames, {os.path.getsize(out) / 1024:.0f} KiB, self-contained: works offline)")
    if args.serve:
        _serve(out, args.port)
    elif args.open:
        import pathlib
        import webbrowser

        url = pathlib.Path(os.path.abspath(out)).as_uri()
        if not webbrowser.open(url):
            print(f"no browser found here; open {url} yourself")
    return 0


def _serve(page: str, port: int) -> None:
    """Serve the page, and nothing else, on localhost until Ctrl-C (for a browser on another machine: ssh -L)."""
    import http.server
    import os
    import urllib.parse

    name = os.path.basename(page)
    with open(page, "rb") as f:
        body = f.read()

    class PageOnly(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path not in ("/", "/" + urllib.parse.quote(name)):
                self.send_error(404, "kinepose view serves only its page")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with http.server.ThreadingHTTPServer(("127.0.0.1", port), PageOnly) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/{urllib.parse.quote(name)}"
        print(f"serving {url} (Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {text!r}")
    return port


def add_viz_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``plot``, ``report`` and ``view`` on the ``kinepose`` subcommand parser."""
    p = sub.add_parser(
        "plot",
        help="plots: a pose against the truth (PNG/GIF/MP4), training curves, benchmark errors, attention",
        epilog="examples: kinepose plot pose --model analytic --clip kick --frame 20 --noise-mm 10 --output pose.png\n"
        "          kinepose plot pose --model runs/humanoid_hybrid --clip walk --frames all --output walk.mp4\n"
        "          kinepose plot curves runs/humanoid_hybrid runs/humanoid_iknet --output curves.png\n"
        "          kinepose plot noise benchmarks/results/ik_accuracy.json --metric mpjpe_mm --output noise.png\n"
        "          kinepose plot joints benchmarks/results/ik_accuracy.json --noise-mm 10 --output joints.png\n"
        "          kinepose plot attention --model runs/humanoid_sequence --clip kick --per-head --output att.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plots = p.add_subparsers(dest="what", required=True, metavar="PLOT")
    q = plots.add_parser("curves", help="training curves of runs, per epoch")
    q.add_argument("runs", nargs="+", help="run folders (or their metrics.csv)")
    q.add_argument("--metrics", nargs="+", default=["val/geo_deg", "val/mpjpe_mm"], help="validation columns")
    q.add_argument("--output", required=True, help="image file (.png, .pdf, .svg)")
    for kind, text in (("noise", "error against joint noise"), ("joints", "per-joint error bars at one noise level")):
        q = plots.add_parser(kind, help=f"{text}, from the accuracy benchmark's JSON")
        q.add_argument("benchmark", help="e.g. benchmarks/results/ik_accuracy.json")
        q.add_argument("--output", required=True, help="image file (.png, .pdf, .svg)")
        q.add_argument("--skeleton", default="humanoid", help="skeleton table of the benchmark (default humanoid)")
        q.add_argument("--rows", nargs="+", default=None, help="benchmark rows to draw (default all)")
        if kind == "noise":
            q.add_argument("--metric", choices=["geo_deg", "mpjpe_mm", "geo_observable_deg", "geo_unobservable_deg",
                                                "accel_mm"], default="geo_deg", help="default geo_deg")  # fmt: skip
        else:
            q.add_argument("--noise-mm", type=float, default=10.0, help="noise level (default 10)")
    q = plots.add_parser("attention", help="a model's attention maps over a clip (frames or joints)")
    q.add_argument(
        "--model",
        required=True,
        help="a run folder, model.pt or .ckpt with attention layers, or a "
        "lifting run (lifter.pt: the clip seen by a random camera)",
    )
    q.add_argument("--clip", default="walk", help="bundled DeepMimic clip (default walk)")
    q.add_argument(
        "--noise-mm",
        type=float,
        default=0.0,
        help="Gaussian joint noise on the input, mm (for a lifter: 2D noise in pixels) (default 0)",
    )
    q.add_argument("--seed", type=int, default=0, help="noise seed")
    q.add_argument("--per-head", action="store_true", help="a panel per head, not only their mean")
    q.add_argument("--output", required=True, help="image file (.png, .pdf, .svg)")
    q = plots.add_parser("pose", help="a model's pose on a DeepMimic clip against the truth")
    q.add_argument("--model", required=True, help="'analytic', a run folder, model.pt or .ckpt")
    q.add_argument("--clip", default="walk", help="bundled DeepMimic clip (default walk)")
    q.add_argument("--frame", type=int, default=0, help="frame to draw (default 0)")
    q.add_argument(
        "--frames", choices=["one", "all"], default="one", help="all: animate the clip (.gif or .mp4 output)"
    )
    q.add_argument("--noise-mm", type=float, default=0.0, help="Gaussian joint noise on the input, mm (default 0)")
    q.add_argument("--seed", type=int, default=0, help="noise seed")
    q.add_argument("--side-by-side", action="store_true", help="truth and prediction in two views, not overlaid")
    q.add_argument("--output", required=True, help="image file (.png, .pdf, .svg) or, with --frames all, .gif or .mp4")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser(
        "report",
        help="one self-contained HTML page of a training run (IK or lifting)",
        description="Write RUN/report.html: the config, the metrics table against the analytic solvers, training\n"
        "curves, skeleton views on a held-out clip with per-joint errors, error charts and attention maps (when\n"
        "the model has attention), pictures embedded; and RUN/report_viewer.html, the clip in the 3D viewer.\n\n"
        "For a lifting run (lifter.pt; 2D keypoints -> 3D): the metrics of its eval.json per 2D noise\n"
        "condition, skeleton views of a held-out clip seen by one test camera (--view) under --condition, the\n"
        "2D input of that clip's median frame with its missing joints, per-joint errors and attention maps\n"
        "(no 3D viewer page).",
        epilog="examples: kinepose report runs/humanoid_hybrid --clip kick --noise-mm 10\n"
        "          kinepose report runs/body_lift_ours --clip walk --condition 5px --view 2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", help="a run folder of kinepose train (model.pt, or lifter.pt for a lifting run)")
    p.add_argument("--output", default=None, help="HTML file (default RUN/report.html)")
    p.add_argument("--clip", default=None, help="held-out clip for the pictures (default: the first)")
    p.add_argument("--noise-mm", type=float, default=10.0,
                   help="Gaussian joint noise on that clip, mm (default 10; IK runs only)")  # fmt: skip
    p.add_argument("--condition", choices=LIFT_CONDITIONS, default=None,
                   help="lifting runs: 2D noise condition of the pictures (default 5px+outliers)")  # fmt: skip
    p.add_argument("--view", type=int, default=None,
                   help="lifting runs: test camera of the clip, 0 .. data.views - 1 (default 0)")  # fmt: skip
    p.add_argument("--seed", type=int, default=None,
                   help="noise seed (default 0; lifting runs: 12345, the cameras and noise of eval.json)")  # fmt: skip
    p.add_argument("--no-viewer", action="store_true", help="do not write the 3D viewer page (IK runs)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "view",
        help="3D viewer in the browser: a self-contained HTML page of a motion file",
        description="Write an HTML page that plays FILE in 3D (three.js, shipped inside kinepose: no network "
        "needed): orbit with the mouse, play/pause (space), frame slider (arrow keys), speed. With TRUTH, both "
        "are drawn and the page shows the per-frame MPJPE between them. Then --open it in the default browser, "
        "or --serve it on localhost.",
        epilog="file formats: .npz/.json from kinepose ik (joints or rotations), .bvh (its own skeleton), joint\n"
        "positions .npz/.npy/.csv (give --skeleton; see kinepose --help).\n\n"
        "examples: kinepose view walk_rotations.npz walk_joints.npz --open\n"
        "          kinepose view /usr/share/assimp/models/BVH/01_01.bvh --scale 0.0564 --serve\n"
        "          kinepose view joints.npy --skeleton h36m17 --output joints.html\n"
        "          kinepose view rotations.npz --skeleton my_rig.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="motion to show (.npz, .json, .bvh, .npy, .csv)")
    p.add_argument("truth", nargs="?", default=None, help="optional ground truth, drawn beside it")
    p.add_argument(
        "--output",
        default=None,
        help="HTML file (default: FILE's name + .view.html, e.g. kick.npz.view.html, current folder)",
    )
    p.add_argument("--skeleton", default=None,
                   help="skeleton for files without a tree: a preset (humanoid, hand21...) or a skeleton file "
                        "(.yaml/.yml/.json, .bvh, .urdf), lengths in the files' units")  # fmt: skip
    p.add_argument("--scale", type=float, default=1.0, help="multiply positions to get metres (0.01 for cm)")
    p.add_argument("--title", default=None, help="page title (default: the file names)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--open", action="store_true", help="open the page in the default browser")
    g.add_argument("--serve", action="store_true", help="serve the page on http://127.0.0.1:PORT until Ctrl-C")
    p.add_argument("--port", type=_port, default=8000, help="port for --serve (default 8000; 0 picks a free one)")
    p.set_defaults(func=_cmd_view)
