"""ONNX export of trained models, checked against onnxruntime.

Graphs (``part="full"``, the iknet, seed0 and sequence families):

- input ``joints`` (batch, window, J, 3): joint positions, metres, world frame; ``window`` is fixed (a
  sequence model is exported with its window), the batch dimension is dynamic. Seed0 models built with
  ``image_features=F`` take a second input ``image_features`` (batch, F).
- outputs ``local_quat`` (batch, J, 4), w,x,y,z local rotations with w >= 0, and ``root_pos`` (batch, 3),
  metres, of the window's target frame (``target_index`` in the metadata).

Every joint is treated as visible: the graphs have no visibility input.

The hybrid family cannot be exported whole. Its geometric solve has no ONNX form: analytic IK registers
the bones of multi-child joints with roma's Kabsch/Horn method (an eigendecomposition inside a custom
autograd function), the Levenberg-Marquardt steps of :func:`kinepose.kinematics.fitting.fit_skeleton` call
``torch.linalg.solve``, and the straight-limb fallback branches on the data; ONNX has no
eigendecomposition, SVD or linear-solve operator, and a trace would freeze the branch. ``part="network"``
exports the hybrid's learned part instead, the same forward with the geometric solve cut out:

- input ``joints`` (batch, window, J, 3) -> output ``denoised_joints`` (batch, J, 3): the target frame after
  the learned, noise-gated denoiser (the output cannot share the input's name in ONNX);
- with the residual head, also input ``geometric_quat`` (batch, J, 4) -> output ``local_quat`` (batch, J, 4):
  the geometric solution rotated by the learned residual rotations.

:func:`predict_onnx` runs that pipeline: the graph, ``fit_skeleton`` of the denoised joints in kinepose
(float64, the stored iteration count and pose prior), the graph again for the residual. The file holds
everything it needs (skeleton, iterations, prior), not the torch weights.

Metadata (``metadata_props``; scalars as plain text, lists and dicts as JSON): ``kinepose_version``,
``family``, ``part``, ``skeleton`` (name), ``joint_names``, ``window``, ``target_index``, ``causal``,
``quaternion_order`` (``wxyz``), ``units``, ``inputs`` / ``outputs`` (name -> shape, ``"batch"`` where
dynamic), ``config``, ``skeleton_data`` (see :func:`kinepose.skeleton.files.skeleton_to_dict`) and, for a
hybrid network, ``fit_iterations`` and ``pose_prior``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from kinepose import __version__
from kinepose._atomic import atomic_write
from kinepose.errors import KineposeError, ShapeError
from kinepose.geometry.rotations import axis_angle_to_quat, quat_identity
from kinepose.kinematics.fk import forward_kinematics, project_to_joint_kinds
from kinepose.models.base import PoseModel

__all__ = [
    "PARTS",
    "TOLERANCE",
    "check_onnx",
    "export_onnx",
    "predict_onnx",
    "read_onnx_metadata",
    "sample_joints",
]

PARTS = ("full", "network")
TOLERANCE = 1e-4  # max abs difference accepted between onnxruntime and torch
_JSON_KEYS = ("joint_names", "inputs", "outputs", "config", "skeleton_data", "pose_prior")
_INT_KEYS = ("window", "target_index", "opset", "fit_iterations")
HYBRID_NOT_EXPORTABLE = (
    "hybrid models cannot be exported to ONNX whole: their geometric solve has no ONNX form (analytic IK "
    "registers bones by Kabsch/Horn through an eigendecomposition, the Levenberg-Marquardt fit calls "
    "torch.linalg.solve, and the straight-limb fallback branches on the data; ONNX has no eigendecomposition, "
    "SVD or linear-solve operator). Export the learned part with part='network' (CLI: --part network); the "
    "geometric solve then runs in kinepose (kinepose.export.onnx.predict_onnx, "
    "kinepose.kinematics.fitting.fit_skeleton)"
)


def _onnx_modules():
    """``(onnx, onnxruntime)``, or a clear error naming the extra that installs them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise KineposeError(
            f"ONNX export needs the onnx and onnxruntime packages ({exc}); pip install 'kinepose[export]'"
        ) from exc
    return onnx, onnxruntime


class _FullGraph(nn.Module):
    """``joints`` (B, window, J, 3) [, ``image_features`` (B, F)] -> ``local_quat`` (B, J, 4), ``root_pos`` (B, 3)."""

    def __init__(self, model: PoseModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, joints: torch.Tensor, image_features: torch.Tensor | None = None):
        extra = {} if image_features is None else {"image_features": image_features}
        out = self.model(joints, **extra)
        return out.local_quat, out.root_pos


class _HybridNetwork(nn.Module):
    """The hybrid's own forward with :func:`fit_skeleton` replaced by ``geometric_quat`` (see module docs):
    ``joints`` (B, window, J, 3) [, ``geometric_quat`` (B, J, 4)] -> ``denoised_joints`` (B, J, 3)
    [, ``local_quat`` (B, J, 4)]. Reusing the forward keeps the graph in step with the model's code."""

    def __init__(self, model: PoseModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, joints: torch.Tensor, geometric_quat: torch.Tensor | None = None):
        from kinepose.models.ik import hybrid

        if geometric_quat is None:  # no residual head: the geometry's output is not used by the graph
            geometric_quat = quat_identity((joints.shape[0], self.model.num_joints), dtype=joints.dtype)

        def given_geometry(skeleton, denoised, **kwargs):  # stands in for fit_skeleton while tracing
            return SimpleNamespace(local_quat=geometric_quat, root_pos=denoised[:, 0])

        with _swap_attr(hybrid, "fit_skeleton", given_geometry):
            out = self.model(joints)
        return (out.joints, out.local_quat) if self.model.use_residual else out.joints


@contextlib.contextmanager
def _swap_attr(obj: object, name: str, value: object) -> Iterator[None]:
    if not hasattr(obj, name):  # the hybrid module changed: fail loudly rather than trace the geometry
        raise KineposeError(f"cannot export the hybrid network: {obj!r} has no attribute {name!r}")
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


@contextlib.contextmanager
def _no_mha_fastpath() -> Iterator[None]:
    """Plain attention ops while tracing: the fused ``_native_multi_head_attention`` that eval mode picks
    without gradients has no ONNX form."""
    old = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(old)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for every submodule, then each one's own mode back (``train(flag)`` would set them all)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in modes:
            m.training = flag


def _graph_spec(model: PoseModel, part: str) -> tuple[nn.Module, list[str], list[str], str]:
    """The module to trace, its input and output names, and the part it really is."""
    if part not in PARTS:
        raise KineposeError(f"part: unknown value {part!r}; choose one of {', '.join(PARTS)}")
    if model.family == "hybrid":
        if part == "full":
            raise KineposeError(HYBRID_NOT_EXPORTABLE)
        if model.use_residual:
            return _HybridNetwork(model), ["joints", "geometric_quat"], ["denoised_joints", "local_quat"], "network"
        return _HybridNetwork(model), ["joints"], ["denoised_joints"], "network"
    # Other families are networks through and through: their "network" part is the whole model.
    inputs = ["joints", "image_features"] if getattr(model, "image_features", 0) else ["joints"]
    return _FullGraph(model), inputs, ["local_quat", "root_pos"], "full"


def sample_joints(model: PoseModel, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch, window, J, 3) plausible inputs: forward kinematics of random rotations (about 0.4 rad per
    joint, slowly varying over the window) from a drifting root, plus 3 mm noise; metres, float32."""
    sk, W, J = model.skeleton, model.window, model.num_joints
    rv = 0.4 * torch.randn(batch, 1, J, 3, generator=generator) + 0.05 * torch.randn(
        batch, W, J, 3, generator=generator
    )
    q = project_to_joint_kinds(sk, axis_angle_to_quat(rv))  # (B, W, J, 4)
    root = 0.5 * torch.randn(batch, 1, 3, generator=generator) + 0.02 * torch.randn(
        batch, W, 3, generator=generator
    ).cumsum(1)  # (B, W, 3)
    joints = forward_kinematics(sk, q, root).positions  # (B, W, J, 3)
    return (joints + 0.003 * torch.randn(joints.shape, generator=generator)).float()


def _example_inputs(model: PoseModel, names: Sequence[str], batch: int, generator: torch.Generator) -> dict:
    """Inputs for every graph input name, as float32 CPU tensors."""
    joints = sample_joints(model, batch, generator)
    out = {"joints": joints}
    if "image_features" in names:
        out["image_features"] = torch.randn(batch, model.image_features, generator=generator)
    if "geometric_quat" in names:  # the model's own geometric solution of these joints
        with torch.no_grad(), _eval_mode(model):
            out["geometric_quat"] = model(_to_model(model, joints)).aux["geometric_quat"].cpu().float()
    return out


def _to_model(model: PoseModel, x: torch.Tensor) -> torch.Tensor:
    p = next(model.buffers(), None)
    return x if p is None else x.to(p.device)


def _metadata(model: PoseModel, part: str, inputs: dict, outputs: dict, opset: int) -> dict:
    from kinepose.skeleton.files import skeleton_to_dict

    meta = {
        "kinepose_version": __version__,
        "family": model.family,
        "part": part,
        "skeleton": model.skeleton.name,
        "joint_names": list(model.skeleton.joint_names),
        "window": model.window,
        "target_index": model.target_index,
        "causal": bool(model.causal),
        "quaternion_order": "wxyz",
        "units": "metres, radians",
        "visibility": "none: every joint is treated as visible",
        "inputs": inputs,
        "outputs": outputs,
        "opset": opset,
        "config": model.config(),
        "skeleton_data": skeleton_to_dict(model.skeleton),
    }
    if part == "network":
        prior = model.pose_prior
        meta["fit_iterations"] = model.fit_iterations
        meta["pose_prior"] = None if prior is None else {"mean": prior.mean.tolist(), "std": prior.std.tolist()}
    return meta


def _encode(meta: dict) -> dict[str, str]:
    def text(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        return v if isinstance(v, str) else json.dumps(v) if isinstance(v, list | dict) or v is None else str(v)

    return {k: text(v) for k, v in meta.items()}


def _decode(props: dict[str, str]) -> dict:
    out: dict = dict(props)
    for k in _JSON_KEYS:
        if k in out:
            out[k] = json.loads(out[k])
    for k in _INT_KEYS:
        if k in out:
            out[k] = int(out[k])
    if "causal" in out:
        out["causal"] = out["causal"] == "true"
    return out


def export_onnx(
    model: PoseModel,
    path: str | os.PathLike,
    opset: int = 17,
    batch_dynamic: bool = True,
    part: str = "full",
    tolerance: float | None = None,
) -> dict:
    """Write ``model`` as an ONNX graph to ``path`` (atomically: a failure leaves no file).

    Args:
        model: a model of any family (left in the train/eval mode it was in).
        path: the ``.onnx`` file.
        opset: ONNX opset version (17 has LayerNormalization as one operator).
        batch_dynamic: dynamic batch dimension; else the graph takes batches of exactly 1.
        part: ``full`` (the model's whole forward) or ``network`` (a hybrid's learned part, see the module
            docstring; for the other families the same as ``full``).
        tolerance: if given, check the graph with :func:`check_onnx` before writing it and raise a
            :class:`KineposeError` (writing nothing) when onnxruntime and torch differ by more.

    Returns:
        The metadata stored in the file (decoded), plus ``path``, ``bytes`` and, with ``tolerance``, ``parity``.
    """
    onnx, _ = _onnx_modules()
    graph, in_names, out_names, part = _graph_spec(model, part)
    example = _example_inputs(model, in_names, 2 if batch_dynamic else 1, torch.Generator().manual_seed(0))
    args = tuple(_to_model(model, example[n]) for n in in_names)
    batch = "batch" if batch_dynamic else 1
    with torch.no_grad(), _eval_mode(model):
        results = graph(*args)
    shapes = [tuple(t.shape[1:]) for t in (results if isinstance(results, tuple) else (results,))]
    inputs = {n: [batch, *example[n].shape[1:]] for n in in_names}
    outputs = {n: [batch, *s] for n, s in zip(out_names, shapes, strict=True)}
    dynamic = {n: {0: "batch"} for n in in_names + out_names} if batch_dynamic else None
    buffer = io.BytesIO()
    try:
        with torch.no_grad(), _eval_mode(model), _no_mha_fastpath(), warnings.catch_warnings():
            # Tracing warns about every shape check (static: the window and joint count are fixed) and about
            # the deprecated TorchScript exporter; parity at several batch sizes is the real check.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=".*(legacy TorchScript-based ONNX|feature will be removed)")
            warnings.filterwarnings("ignore", message=".*batch_size other than 1.*")
            torch.onnx.export(
                graph,
                args,
                buffer,
                dynamo=False,  # the TorchScript exporter handles every family; dynamo would need onnxscript
                opset_version=opset,
                input_names=in_names,
                output_names=out_names,
                dynamic_axes=dynamic,
            )
    except KineposeError:
        raise
    except Exception as exc:  # the exporter raises many types; all mean "this graph has no ONNX form"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise KineposeError(
            f"cannot export {model.family} model to ONNX opset {opset}: {type(exc).__name__}: {first}"
        ) from exc
    proto = onnx.load_from_string(buffer.getvalue())
    meta = _metadata(model, part, inputs, outputs, opset)
    onnx.helper.set_model_props(proto, _encode(meta))
    proto.producer_name, proto.producer_version = "kinepose", __version__
    proto.doc_string = f"kinepose {model.family} model ({part}); see the metadata and kinepose.export.onnx"
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    if tolerance is not None:
        meta["parity"] = check_onnx(model, data)
        if not meta["parity"] <= tolerance:  # also catches NaN
            raise KineposeError(
                f"ONNX export of the {model.family} model: onnxruntime and torch differ by {meta['parity']:.3g} "
                f"(more than {tolerance:g}); nothing written to {os.fspath(path)}"
            )
    atomic_write(path, lambda f: f.write(data), binary=True)
    meta.update(path=os.fspath(path), bytes=len(data))
    return meta


_SESSIONS: dict[tuple, object] = {}  # onnxruntime sessions of files, by (path, mtime, size, threads)
_MAX_SESSIONS = 8


def _session(source: str | os.PathLike | bytes):
    """An onnxruntime session of ``source``; sessions of files are kept (opening one costs ~45 ms, a call on a
    small model under 1 ms) and opened again when the file changes."""
    src = source if isinstance(source, bytes) else os.fspath(source)
    if not isinstance(src, bytes) and not os.path.exists(src):
        raise KineposeError(f"{src}: no such ONNX file")
    if isinstance(src, bytes):
        return _open_session(src)
    st = os.stat(src)
    key = (os.path.realpath(src), st.st_mtime_ns, st.st_size, torch.get_num_threads())
    if key not in _SESSIONS:
        if len(_SESSIONS) >= _MAX_SESSIONS:
            _SESSIONS.pop(next(iter(_SESSIONS)))
        _SESSIONS[key] = _open_session(src)
    return _SESSIONS[key]


def _open_session(src: str | bytes):
    _, ort = _onnx_modules()
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    try:
        return ort.InferenceSession(src, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own error types: the file is not a valid model
        raise KineposeError(f"{'ONNX bytes' if isinstance(src, bytes) else src}: cannot load ({exc})") from exc


def read_onnx_metadata(source: str | os.PathLike | bytes) -> dict:
    """The kinepose metadata of an exported file (JSON fields decoded); an empty dict for foreign files."""
    return _decode(dict(_session(source).get_modelmeta().custom_metadata_map))


def _quat_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Max over (..., 4) quaternions of min(max|a - b|, max|a + b|): q and -q are the same rotation."""
    return float(np.minimum(np.abs(a - b).max(-1), np.abs(a + b).max(-1)).max(initial=0.0))


def check_onnx(
    model: PoseModel, path: str | os.PathLike | bytes, batch_sizes: Sequence[int] = (1, 7), seed: int = 0
) -> float:
    """Max abs difference between onnxruntime (CPU) and torch on the same inputs (:func:`sample_joints`).

    ``local_quat`` is compared up to sign per quaternion; ``root_pos`` and ``denoised_joints`` (metres)
    directly. A hybrid network's ``local_quat`` is given torch's own geometric solution, so the numbers
    measure the graph alone. A graph with a fixed batch size is checked at that size only.

    Args:
        model: the torch model the file was exported from.
        path: the ``.onnx`` file, or its bytes.
        batch_sizes: batch sizes to run (the dynamic batch dimension).
        seed: seed of the random inputs.
    """
    sess = _session(path)
    names = [i.name for i in sess.get_inputs()]
    fixed = sess.get_inputs()[0].shape[0]
    sizes = [fixed] if isinstance(fixed, int) else list(batch_sizes)
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for b in sizes:
        feed = _example_inputs(model, names, b, gen)
        got = dict(
            zip([o.name for o in sess.get_outputs()], sess.run(None, {n: feed[n].numpy() for n in names}), strict=True)
        )
        with torch.no_grad(), _eval_mode(model):
            extra = {"image_features": _to_model(model, feed["image_features"])} if "image_features" in feed else {}
            ref = model(_to_model(model, feed["joints"]), **extra)
        if "local_quat" in got:
            worst = max(worst, _quat_diff(got["local_quat"], ref.local_quat.cpu().numpy()))
        if "root_pos" in got:
            worst = max(worst, float(np.abs(got["root_pos"] - ref.root_pos.cpu().numpy()).max()))
        if "denoised_joints" in got:
            worst = max(worst, float(np.abs(got["denoised_joints"] - ref.joints.cpu().numpy()).max()))
    return worst


def predict_onnx(
    path: str | os.PathLike | bytes, joints: torch.Tensor | np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotations of windows of joints from an exported file, with onnxruntime (and kinepose's geometric
    solve for a hybrid network: the graph, :func:`kinepose.kinematics.fitting.fit_skeleton`, the graph again).

    Args:
        path: an ``.onnx`` file written by :func:`export_onnx` (not a seed0 one with image features).
        joints: (B, window, J, 3) positions, metres.

    Returns:
        ``local_quat`` (B, J, 4) w,x,y,z and ``root_pos`` (B, 3), float32.
    """
    sess = _session(path)
    meta = _decode(dict(sess.get_modelmeta().custom_metadata_map))
    if "family" not in meta:
        raise KineposeError(f"{path}: not an ONNX file written by kinepose (no kinepose metadata)")
    x = np.asarray(joints, dtype=np.float32)
    J, W = len(meta["joint_names"]), meta["window"]
    if x.ndim != 4 or x.shape[1:] != (W, J, 3):
        raise ShapeError(f"joints: expected shape (B, {W}, {J}, 3) for this {meta['family']} model, got {x.shape}")
    names = [i.name for i in sess.get_inputs()]
    if "image_features" in names:
        raise KineposeError(f"{path}: this seed0 graph also needs image_features; run it with onnxruntime directly")
    if meta["part"] == "full":
        quat, root = sess.run(["local_quat", "root_pos"], {"joints": x})
        return torch.from_numpy(quat), torch.from_numpy(root)
    from kinepose.kinematics.fitting import PosePrior, fit_skeleton
    from kinepose.skeleton.files import skeleton_from_dict

    feed = {"joints": x}
    if "geometric_quat" in names:  # first pass: only the denoised joints are used
        feed["geometric_quat"] = quat_identity((x.shape[0], J)).numpy()
    denoised = torch.from_numpy(sess.run(["denoised_joints"], feed)[0])  # (B, J, 3)
    p = meta["pose_prior"]
    prior = (
        None
        if p is None
        else PosePrior(torch.tensor(p["mean"], dtype=torch.float64), torch.tensor(p["std"], dtype=torch.float64))
    )
    geo = fit_skeleton(
        skeleton_from_dict(meta["skeleton_data"]), denoised.double(), iterations=meta["fit_iterations"], prior=prior
    )
    quat = geo.local_quat.float()
    if "geometric_quat" in names:
        feed["geometric_quat"] = quat.numpy()
        quat = torch.from_numpy(sess.run(["local_quat"], feed)[0])
    return quat, geo.root_pos.float()
