"""``kinepose ik`` and ``export``: files in, files out."""

from __future__ import annotations

import argparse
import math
import os


def positive_float(text: str) -> float:
    """Argparse type: a finite number > 0 (a frame rate of 0, negative, NaN or inf is an error, not a default)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def same_file(a: str, b: str) -> bool:
    """Whether paths ``a`` and ``b`` name one file: equal after resolving links, or (both existing) the same
    inode, as hard links are."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): then they cannot be one file
        return False


#: What a run folder needs: never a command's output (a JSON, page or graph written there would destroy the run).
RUN_FILES = ("model.pt", "config.yaml", "eval.json")


def frame_rate(text: str) -> float:
    """Argparse type for ``--fps``: finite, > 0, and its frame time ``1 / fps`` finite too (BVH stores the latter)."""
    value = positive_float(text)
    if not math.isfinite(1.0 / value):
        raise argparse.ArgumentTypeError(f"expected a frame rate whose frame time 1/fps is finite, got {text!r}")
    return value


def check_output(option: str, output: str, inputs: tuple[str | None, ...] = ()) -> None:
    """Refuse an ``output`` that is one of the command's ``inputs``, or a file a run folder needs (``model.pt``,
    ``config.yaml``, ``eval.json``, anything in ``checkpoints/``) of a run folder among the inputs or holding the
    output. Called before anything is read or written.

    Raises:
        ValueError: naming ``option`` and the file it would overwrite.
    """
    for given in inputs:
        if given is not None and os.path.exists(given) and same_file(output, given):
            raise ValueError(f"{option}: {output} is the input {given}; writing there would overwrite it")
    folder = os.path.dirname(os.path.abspath(output))
    name = os.path.basename(output)
    in_run = os.path.isfile(os.path.join(folder, "config.yaml")) or os.path.isfile(os.path.join(folder, "model.pt"))
    if (in_run and name in RUN_FILES) or (
        os.path.basename(folder) == "checkpoints" and name.endswith(".ckpt")
    ):  # fmt: skip
        raise ValueError(f"{option}: {output} is a file of the run folder {folder}; writing there would destroy the "
                         f"run: pick another file name")  # fmt: skip


def check_new_file(
    option: str, path: str, source: str, inputs: tuple[str | None, ...] = (), force: bool = False
) -> None:
    """Everything a command checks of one file it will write, before it reads anything: not the input ``source``
    (nor one of ``inputs``, nor a file of a run folder: :func:`check_output`), not a folder, and not an existing file
    unless ``force``.

    Raises:
        ValueError: naming ``option`` and the path.
    """
    if os.path.exists(source) and same_file(path, source):
        raise ValueError(f"{option}: {path} is the input; writing there would overwrite it")
    check_output(option, path, inputs)
    if os.path.isdir(path):
        raise ValueError(f"{option}: {path} is a folder")
    if os.path.lexists(path) and not force:
        raise ValueError(f"{option}: {path} exists; pass --force to replace it")


def _cmd_ik(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from kinepose._progress import progress_enabled
    from kinepose.cli.skeletons import check_model_skeleton, resolve_skeleton
    from kinepose.data.formats.bvh import read_bvh_skeleton
    from kinepose.data.formats.io import load_joints, save_rotations
    from kinepose.kinematics.calibration import calibrate_skeleton, check_units
    from kinepose.kinematics.fk import forward_kinematics
    from kinepose.kinematics.ik import analytic_ik, moving_zero_length_joints, zero_length_joints

    if same_file(args.output, args.input):  # checked first: nothing is loaded or written
        raise ValueError(f"--output: {args.output} is the input file; write the rotations to another file")
    check_output("--output", args.output, (None if args.model == "analytic" else args.model,))
    bvh_in = args.input.lower().endswith(".bvh")
    own = False  # solving on the input file's own skeleton (a .bvh's HIERARCHY)
    if args.model == "analytic":
        if args.skeleton is None and bvh_in:
            skeleton, own = read_bvh_skeleton(args.input, args.scale), True
        else:
            skeleton = resolve_skeleton(args.skeleton or "humanoid", bvh_scale=args.scale)
        model = None
    else:
        from kinepose.models.files import load_model

        model = load_model(args.model)
        skeleton = model.skeleton
        check_model_skeleton(args.skeleton, skeleton)
    scale = _input_scale(args)
    if own and scale != args.scale:  # the file's own skeleton was read with --scale; re-read it in --units
        skeleton = read_bvh_skeleton(args.input, scale)
    data = load_joints(args.input, skeleton=skeleton, scale=scale, layout=args.layout,
                       min_confidence=args.min_confidence)  # fmt: skip
    joints = torch.as_tensor(data.joints)
    fps = args.fps if args.fps is not None else (data.fps or 30.0)
    if not own:  # a file's own rig is consistent by construction; anything else must be in metres
        check_units(skeleton, joints, where=f"--input {args.input}", applied=scale)
    elif args.units is None and args.scale == 1.0:
        _check_rig_units(skeleton, f"--input {args.input}")
    template = skeleton
    if not own and not args.no_calibrate:  # the subject's bone lengths, not the template's
        skeleton = calibrate_skeleton(template, joints, name=template.name)
    moving = moving_zero_length_joints(skeleton, joints) if zero_length_joints(skeleton) else None
    missing = int(torch.isnan(joints).any(-1).sum())
    if model is None:
        result = analytic_ik(skeleton, joints, moving=moving)
        quat, root = result.local_quat, result.root_pos
        flags = {"determined": result.determined.numpy(), "determined_global": result.determined_global.numpy(),
                 "valid": result.valid.numpy()}  # fmt: skip
    else:
        from kinepose.inference import predict_clip

        quat, root = predict_clip(model, joints.float(), progress=progress_enabled(not args.quiet),
                                  subject=None if skeleton is template else skeleton)  # fmt: skip
        quat, root = quat.double(), root.double()
        ref = analytic_ik(skeleton, joints, moving=moving)
        flags = {"determined": ref.determined.numpy(), "determined_global": ref.determined_global.numpy(),
                 "valid": ref.valid.numpy()}  # fmt: skip
    fk = forward_kinematics(skeleton, quat, root, check=False).positions
    bvh_options = None
    if own and args.output.lower().endswith(".bvh"):  # the input's units, rotation order and channels
        from kinepose.data.formats.bvh import read_bvh

        order, channels = read_bvh(args.input).channel_layout()
        bvh_options = {"rotation_order": order, "channels_per_joint": channels, "scale": 1.0 / scale}
    save_rotations(args.output, skeleton, quat.numpy(), root.numpy(), fps=fps,
                   observable=flags["determined_global"], joints=fk.numpy(), bvh_options=bvh_options,
                   **flags)  # fmt: skip
    err = 1000 * float(np.nanmean(np.linalg.norm(fk.numpy() - data.joints, axis=-1)))
    whose = ", the input file's" if own else ""
    on = f"skeleton '{skeleton.name}' ({skeleton.num_joints} joints{whose})"
    print(f"{args.input}: {len(joints)} frames on {on} -> {args.output} (FK of the output is {err:.2f} mm from the "
          f"input)")  # fmt: skip
    if skeleton is not template:
        ratio = np.median(skeleton.bone_lengths()[1:][template.bone_lengths()[1:] > 1e-9]
                          / template.bone_lengths()[1:][template.bone_lengths()[1:] > 1e-9])  # fmt: skip
        print(f"  bone lengths calibrated to the subject (median {ratio:.3f}x the template's; --no-calibrate keeps "
              f"the template's)")  # fmt: skip
    det = flags["determined"]
    rotated = [j for j, k in enumerate(skeleton.kinds) if k != "end"]
    print(f"  {int(det[rotated].sum())} of {len(rotated)} rotated joints determined by the positions (local), "
          f"{int(flags['determined_global'][rotated].sum())} globally" + (f"; {missing} missing joint positions (NaN)"
                                                                          if missing else ""))  # fmt: skip
    return 0


def _check_rig_units(skeleton, path: str, option: str = "--units") -> None:
    """A .bvh solved on its own rig has no template to compare with: refuse a rig whose rest pose is not of
    human size in metres (0.3 to 3 m across) unless the units are given, naming the likely unit."""
    import numpy as np

    from kinepose.kinematics.calibration import UNIT_SCALES
    from kinepose.kinematics.fk import rest_pose

    p = rest_pose(skeleton).numpy()
    extent = float(np.ptp(p, axis=0).max())
    if 0.3 <= extent <= 3.0 or extent == 0:
        return
    unit = min((u for u in UNIT_SCALES if u != "m"), key=lambda u: abs(np.log(extent * UNIT_SCALES[u] / 1.7)))
    fix = (
        f"--units {unit} (or --units m if it is right)"
        if option == "--units"
        else f"--scale {UNIT_SCALES[unit]:.6g} (or --scale 1 if it is right)"
    )
    raise ValueError(f"{path}: the rig is {extent:.4g} units across at rest, not a human size in metres; "
                     f"it looks like {unit}: pass {fix}")  # fmt: skip


def _input_scale(args: argparse.Namespace) -> float:
    from kinepose.kinematics.calibration import UNIT_SCALES

    if args.units is None:
        return args.scale
    if args.scale != 1.0:
        raise ValueError(f"--units {args.units} and --scale {args.scale} both set the input's units: pass one")
    return UNIT_SCALES[args.units]


def _cmd_export(args: argparse.Namespace) -> int:
    from kinepose.export.onnx import TOLERANCE, export_onnx
    from kinepose.models.files import load_model

    if args.format != "onnx":
        raise ValueError(f"--format: unknown export format {args.format!r}; supported: onnx")
    if args.output is not None:
        check_output("--output", args.output, (args.model,))
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
              "and kinepose.kinematics.fitting.fit_skeleton")  # fmt: skip
    return 0
