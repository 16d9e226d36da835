"""Run a trained model over whole clips: rotations of every frame, attention maps, a model as a solver.

Models are loaded by :func:`kinepose.models.files.load_model` (no Lightning needed).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from kinepose._validation import as_tensor, check_finite, check_joints
from kinepose.data.datasets import window_index
from kinepose.errors import KineposeError
from kinepose.models.base import PoseModel
from kinepose.skeleton.core import Skeleton

__all__ = ["attention_tokens", "clip_attention", "model_solver", "predict_clip"]


def _check_clip(model: PoseModel, joints: torch.Tensor) -> torch.Tensor:
    """``joints`` as a float32 (T, J, 3) clip for ``model`` (ValueError naming what is wrong); the model in eval
    mode."""
    joints = as_tensor(joints, "joints", torch.float32)
    check_joints(joints, "joints", model.num_joints, model.skeleton.name)
    if bool(torch.isinf(joints).any()):
        check_finite(joints, "joints")  # NaN is a missing joint (see predict_clip); inf an error
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
    subject: Skeleton | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotations of every frame of a clip.

    Args:
        model: a trained model (put in eval mode).
        joints: (T, J, 3) positions, metres. NaN marks a missing joint: it gets visibility 0.
        visibility: optional (T, J) mask.
        batch_size: frames per forward pass.
        progress: show a progress bar.
        subject: the subject's skeleton (the model's with other bone lengths, e.g. from
            :func:`kinepose.kinematics.calibration.calibrate_skeleton`): the model's geometry uses it
            for this clip (:attr:`PoseModel.geometry_skeleton`).

    Returns:
        ``local_quat`` (T, J, 4) and ``root_pos`` (T, 3), float32. Windows at the clip's edges repeat its
        first or last frame.
    """
    joints = _check_clip(model, joints)
    vis = None if visibility is None else visibility.float()
    present = ~torch.isnan(joints).any(-1)  # (T, J)
    if not bool(present.all()):
        vis = present.float() if vis is None else vis * present.float()
        joints = torch.where(present[..., None], joints, torch.zeros_like(joints))
    previous = model.subject
    model.set_subject(subject)
    try:
        return _predict(model, joints, vis, batch_size, progress)
    finally:
        model.set_subject(previous)


def _predict(model: PoseModel, joints: torch.Tensor, vis: torch.Tensor | None, batch_size: int, progress: bool):
    T = joints.shape[0]
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
