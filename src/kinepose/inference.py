"""Run a trained model (or the analytic solver) over whole clips, and save/load models.

A saved model (``model.pt``) is self-contained: family, constructor config, the skeleton's data and the
weights (normalization statistics included), so ``load_model`` needs no config file or preset.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from kinepose import __version__
from kinepose._atomic import atomic_write
from kinepose._validation import as_tensor, check_finite, check_joints
from kinepose.data.datasets import window_index
from kinepose.errors import KineposeError
from kinepose.models import PoseModel, create_model
from kinepose.skeleton import Skeleton

__all__ = [
    "attention_tokens",
    "clip_attention",
    "load_model",
    "model_config",
    "model_solver",
    "predict_clip",
    "save_model",
    "skeleton_from_dict",
    "skeleton_to_dict",
]

FORMAT = "kinepose-model"


def skeleton_to_dict(skeleton: Skeleton) -> dict:
    return {
        "name": skeleton.name,
        "joint_names": list(skeleton.joint_names),
        "parents": list(skeleton.parents),
        "offsets": np.asarray(skeleton.offsets).tolist(),
        "kinds": list(skeleton.kinds),
        "hinge_axes": np.asarray(skeleton.hinge_axes).tolist(),
        "limits": np.asarray(skeleton.limits).tolist(),
        "left_right": [list(p) for p in skeleton.left_right],
        "lateral_axis": skeleton.lateral_axis,
    }


def skeleton_from_dict(d: dict) -> Skeleton:
    from kinepose.skeletons import get_skeleton, list_skeletons

    sk = Skeleton(**{**d, "left_right": [tuple(p) for p in d["left_right"]]})
    if d["name"] in list_skeletons():  # share the preset object (and its caches) when it is the same
        preset = get_skeleton(d["name"])
        a, b = skeleton_to_dict(preset), skeleton_to_dict(sk)
        if all(np.allclose(np.asarray(a[k], float), np.asarray(b[k], float), equal_nan=True)
               for k in ("offsets", "hinge_axes", "limits")) and all(
            a[k] == b[k] for k in ("joint_names", "parents", "kinds", "left_right", "lateral_axis")
        ):  # fmt: skip
            return preset
    return sk


def save_model(path: str, model: PoseModel, extra: dict | None = None) -> None:
    """Write ``model`` to ``path`` atomically."""
    payload = {
        "format": FORMAT,
        "kinepose_version": __version__,
        "family": model.family,
        "config": model.config(),
        "skeleton": skeleton_to_dict(model.skeleton),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra or {},
    }
    atomic_write(path, lambda f: torch.save(payload, f), binary=True)


def load_model(path: str) -> PoseModel:
    """Load a model from ``model.pt``, a run folder holding one, or a Lightning checkpoint (``.ckpt``)."""
    if os.path.isdir(path):
        cand = os.path.join(path, "model.pt")
        if not os.path.exists(cand):
            raise KineposeError(f"{path}: not a run folder (no model.pt inside)")
        path = cand
    if not os.path.exists(path):
        raise KineposeError(f"{path}: no such model file or run folder")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # pickle, zip and torch errors alike: the file is not a saved model
        raise KineposeError(f"{path}: cannot load model ({type(exc).__name__}: {exc})") from exc
    try:
        if isinstance(payload, dict) and payload.get("format") == FORMAT:
            skeleton = skeleton_from_dict(payload["skeleton"])
            model = create_model(payload["family"], skeleton, **payload["config"])
            model.load_state_dict(payload["state_dict"])
        elif isinstance(payload, dict) and "cfg" in payload.get("hyper_parameters", {}):
            from kinepose.training import IKTask  # Lightning checkpoint of a kinepose run

            task = IKTask(payload["hyper_parameters"]["cfg"])
            task.load_state_dict(payload["state_dict"])
            model = task.model
        else:
            raise KineposeError(f"{path}: not a kinepose model (expected model.pt from `kinepose train` or a .ckpt)")
    except (RuntimeError, KeyError, TypeError) as exc:
        raise KineposeError(
            f"{path}: saved by an incompatible kinepose version or damaged ({type(exc).__name__}: {exc})"
        ) from exc
    return model.eval()


def model_config(path: str) -> dict | None:
    """The resolved training config stored with a model (``model.pt`` of a run, or a run folder)."""
    if os.path.isdir(path):
        path = os.path.join(path, "model.pt")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:
        return None
    if isinstance(payload, dict):
        if payload.get("format") == FORMAT:
            return payload.get("extra", {}).get("config")
        return payload.get("hyper_parameters", {}).get("cfg")
    return None


def _check_clip(model: PoseModel, joints: torch.Tensor) -> torch.Tensor:
    """``joints`` as a float32 (T, J, 3) clip for ``model`` (ValueError naming what is wrong); the model in eval
    mode."""
    joints = as_tensor(joints, "joints", torch.float32)
    check_joints(joints, "joints", model.num_joints, model.skeleton.name)
    check_finite(joints, "joints")
    if joints.dim() != 3:
        raise KineposeError(f"joints: expected a clip of shape (T, J, 3), got {tuple(joints.shape)}")
    model.eval()
    return joints


@torch.no_grad()
def predict_clip(
    model: PoseModel,
    joints: torch.Tensor,
    visibility: torch.Tensor | None = None,
    batch_size: int = 512,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotations of every frame of a clip.

    Args:
        model: a trained model (put in eval mode).
        joints: (T, J, 3) positions, metres.
        visibility: optional (T, J) mask.
        batch_size: frames per forward pass.
        progress: show a progress bar.

    Returns:
        ``local_quat`` (T, J, 4) and ``root_pos`` (T, 3), float32. Windows at the clip's edges repeat its
        first or last frame.
    """
    joints = _check_clip(model, joints)
    T = joints.shape[0]
    vis = None if visibility is None else visibility.float()
    quats, roots = [], []
    with tqdm(total=T, desc="frames", unit="frame", disable=not progress, leave=False) as bar:
        for s in range(0, T, batch_size):  # windows built per batch: a long clip's (T, W, J, 3) never exists
            idx = window_index(T, model.window, model.target_index, torch.arange(s, min(s + batch_size, T)))  # (B, W)
            out = model(joints[idx], None if vis is None else vis[idx])
            quats.append(out.local_quat)
            roots.append(out.root_pos)
            bar.update(len(out.local_quat))
    return torch.cat(quats), torch.cat(roots)


@torch.no_grad()
def clip_attention(model: PoseModel, joints: torch.Tensor, max_windows: int = 256) -> tuple[list[torch.Tensor], int]:
    """The model's attention maps over a clip, averaged over its windows.

    Args:
        model: a trained model.
        joints: (T, J, 3) positions, metres.
        max_windows: at most about this many windows, spread evenly over the clip, are run.

    Returns:
        One (heads, N, N) map per layer (N = the window's frames for sequence models, the joints for seed0's
        attention mixers), empty when the model has no attention layers; and the number of windows averaged.
    """
    joints = _check_clip(model, joints)
    T = joints.shape[0]
    frames = torch.arange(0, T, max(1, -(-T // max_windows)))  # at most max_windows, spread over the clip
    sample = joints[window_index(T, model.window, model.target_index, frames)]  # (N, W, J, 3)
    att = model(sample).attention or []
    return [a.float().mean(0) for a in att], len(sample)  # [(heads, N, N)] * layers


def attention_tokens(model: PoseModel, num_tokens: int) -> tuple[str, list[str] | None, int | None]:
    """What the tokens of a model's attention maps are, for plots.

    Returns:
        ``(axis, labels, query)``: ``("frame", offsets from the predicted frame, the predicted frame's index)``
        when the maps run over the model's window; ``("joint", joint names, None)`` over the skeleton's joints;
        ``("token", None, None)`` otherwise.
    """
    if model.window > 1 and num_tokens == model.window:
        return "frame", [f"{i - model.target_index:+d}" for i in range(model.window)], model.target_index
    if num_tokens == model.num_joints:
        return "joint", list(model.skeleton.joint_names), None
    return "token", None, None


def model_solver(model: PoseModel) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """A trained model as a solver for :func:`kinepose.evaluation.evaluate_solver`."""

    def solve(joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return predict_clip(model, joints.float())

    return solve
