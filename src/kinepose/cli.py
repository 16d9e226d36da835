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
    import torch

    from kinepose.data.deepmimic import load_deepmimic
    from kinepose.data.io import save_joints

    if args.noise_mm < 0:
        raise ValueError(f"--noise-mm must be >= 0, got {args.noise_mm}")
    m = load_deepmimic(args.name)
    joints = m.positions()  # (T, J, 3)
    g = torch.Generator().manual_seed(args.seed)
    joints = joints + (args.noise_mm / 1000.0) * torch.randn(joints.shape, generator=g, dtype=joints.dtype)
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


def _plot_attention(args: argparse.Namespace) -> int:
    import os

    import torch

    from kinepose.data.deepmimic import load_deepmimic
    from kinepose.inference import attention_tokens, clip_attention, load_model
    from kinepose.viz import plot_attention

    if args.noise_mm < 0:
        raise ValueError(f"--noise-mm must be >= 0, got {args.noise_mm}")
    if not os.path.exists(args.model):
        raise ValueError(f"--model: {args.model!r} is not an existing run folder or model file")
    model = load_model(args.model)
    if model.skeleton.name != "humanoid":
        raise ValueError(f"--model: the bundled clips are humanoid motion; this model is for '{model.skeleton.name}'")
    motion = load_deepmimic(args.clip)
    truth = motion.positions()
    g = torch.Generator().manual_seed(args.seed)
    noisy = truth + (args.noise_mm / 1000.0) * torch.randn(truth.shape, generator=g, dtype=truth.dtype)
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

    import torch

    from kinepose.data.deepmimic import load_deepmimic
    from kinepose.kinematics import forward_kinematics
    from kinepose.viz import animate_skeleton, plot_pose_comparison

    animate = args.frames == "all"
    if animate != args.output.lower().endswith((".gif", ".mp4")):
        raise ValueError("--output: a .gif or .mp4 needs --frames all, and --frames all needs a .gif or .mp4 output")
    if args.noise_mm < 0:
        raise ValueError(f"--noise-mm must be >= 0, got {args.noise_mm}")
    if args.model != "analytic" and not os.path.exists(args.model):
        raise ValueError(f"--model: {args.model!r} is neither 'analytic' nor an existing run folder or model file")
    motion = load_deepmimic(args.clip)
    if not animate and not 0 <= args.frame < motion.num_frames:
        raise ValueError(f"--frame: {args.frame} is outside clip {args.clip!r} (0..{motion.num_frames - 1})")
    truth = motion.positions()  # (T, J, 3)
    g = torch.Generator().manual_seed(args.seed)
    noisy = truth + (args.noise_mm / 1000.0) * torch.randn(truth.shape, generator=g, dtype=truth.dtype)
    if args.model == "analytic":
        from kinepose.ik import analytic_ik

        skeleton, name = motion.skeleton, "analytic IK"
        result = analytic_ik(skeleton, noisy)
        quat, root = result.local_quat, result.root_pos
    else:
        from kinepose.inference import load_model, predict_clip

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
    from kinepose.report import write_report

    if args.noise_mm < 0:
        raise ValueError(f"--noise-mm must be >= 0, got {args.noise_mm}")
    result = write_report(args.run, args.output, clip=args.clip, noise_mm=args.noise_mm, seed=args.seed,
                          viewer=not args.no_viewer)  # fmt: skip
    print(f"wrote {result.path} ({result.bytes / 1024:.0f} KiB: {', '.join(result.sections)})")
    if result.viewer_path:
        print(f"wrote {result.viewer_path} (3D viewer of the clip, linked from the report)")
    return 0


def _default_view_output(path: str) -> str:
    """``FILE.view.html`` in the current folder (not beside the input, which may be read-only)."""
    import os

    return os.path.splitext(os.path.basename(path))[0] + ".view.html"


def _cmd_view(args: argparse.Namespace) -> int:
    import os
    import warnings

    from kinepose.viz.viewer import view_files

    out = args.output or _default_view_output(args.file)
    if os.path.abspath(out) in {os.path.abspath(args.file), os.path.abspath(args.truth or args.file)}:
        raise ValueError(f"--output: {out} would overwrite an input file")
    with warnings.catch_warnings(record=True) as caught:  # trimmed clips, unknown fps: printed as notes
        warnings.simplefilter("always")
        n = view_files(out, args.file, args.truth, scale=args.scale, skeleton=args.skeleton, title=args.title)
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
    q.add_argument("--model", required=True, help="a run folder, model.pt or .ckpt with attention layers")
    q.add_argument("--clip", default="walk", help="bundled DeepMimic clip (default walk)")
    q.add_argument("--noise-mm", type=float, default=0.0, help="Gaussian joint noise on the input, mm (default 0)")
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
        help="one self-contained HTML page of a training run",
        description="Write RUN/report.html: the config, the metrics table against the analytic solvers, training "
        "curves, skeleton views on a held-out clip with per-joint errors, error charts and attention maps (when "
        "the model has attention), pictures embedded; and RUN/report_viewer.html, the clip in the 3D viewer.",
        epilog="example: kinepose report runs/humanoid_hybrid --clip kick --noise-mm 10",
    )
    p.add_argument("run", help="a run folder of kinepose train")
    p.add_argument("--output", default=None, help="HTML file (default RUN/report.html)")
    p.add_argument("--clip", default=None, help="held-out clip for the pictures (default: the first)")
    p.add_argument("--noise-mm", type=float, default=10.0, help="Gaussian joint noise on that clip, mm (default 10)")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--no-viewer", action="store_true", help="do not write the 3D viewer page")
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
        "          kinepose view joints.npy --skeleton h36m17 --output joints.html",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="motion to show (.npz, .json, .bvh, .npy, .csv)")
    p.add_argument("truth", nargs="?", default=None, help="optional ground truth, drawn beside it")
    p.add_argument("--output", default=None, help="HTML file (default: FILE's name + .view.html, current folder)")
    p.add_argument("--skeleton", default=None, help="skeleton preset for files without a tree (humanoid, hand21...)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply positions to get metres (0.01 for cm)")
    p.add_argument("--title", default=None, help="page title (default: the file names)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--open", action="store_true", help="open the page in the default browser")
    g.add_argument("--serve", action="store_true", help="serve the page on http://127.0.0.1:PORT until Ctrl-C")
    p.add_argument("--port", type=_port, default=8000, help="port for --serve (default 8000; 0 picks a free one)")
    p.set_defaults(func=_cmd_view)
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
