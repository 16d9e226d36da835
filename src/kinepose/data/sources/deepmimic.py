"""Reader for the DeepMimic motion-capture clips that ship in pybullet's wheel.

File format (``pybullet_data/data/motions/humanoid3d_*.txt``, JSON): ``{"Loop": ..., "Frames": [...]}``,
each frame 44 numbers: frame duration (s), root position (3, metres, Y-up), root rotation (4,
w,x,y,z), then chest, neck, right hip (4 each), right knee angle (1, radians about z), right ankle,
right shoulder (4 each), right elbow angle (1), left hip, left knee, left ankle, left shoulder, left elbow
in the same pattern. Quaternions are normalized on reading (several clips store norms from 0.58 to
1.12); the frame time is the clip's typical
(median non-zero) duration, since the last frame's duration is 0 in most files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import torch

from kinepose.data.motion import Motion
from kinepose.data.sources import DEEPMIMIC_CLIPS, DEFAULT_EVAL_CLIPS, register_source  # noqa: F401
from kinepose.errors import FileFormatError, KineposeError
from kinepose.geometry.rotations import quat_about_axis, quat_canonical, quat_identity
from kinepose.skeleton.presets import get_skeleton
from kinepose.skeleton.presets.humanoid import DEEPMIMIC_JOINTS, pybullet_data_path

__all__ = [
    "DEEPMIMIC_CLIPS",
    "DEFAULT_EVAL_CLIPS",
    "clip_split",
    "deepmimic_clip_path",
    "deepmimic_split",
    "load_deepmimic",
    "load_deepmimic_clips",
]


_FRAME_LEN = 44
# Stored quaternions are not all unit (norms 0.58 to 1.12 occur in kick, roll, backflip): they are
# normalized. A norm outside this range means a corrupt file, not rounding.
_QUAT_NORM_RANGE = (0.25, 4.0)


def deepmimic_clip_path(name: str) -> str:
    """Path of a bundled clip by short name (``"walk"``) or a path to any DeepMimic-format file."""
    if os.path.sep in name or name.endswith(".txt"):
        return name
    if name not in DEEPMIMIC_CLIPS:
        raise KineposeError(f"unknown DeepMimic clip {name!r}; bundled clips: {', '.join(DEEPMIMIC_CLIPS)}")
    return os.path.join(pybullet_data_path(), "data", "motions", f"humanoid3d_{name}.txt")


def _frame_line_numbers(text: str) -> list[int]:
    """1-based line number of each frame's opening bracket (files put one frame per line or so)."""
    lines, depth = [], 0
    line = 1
    for ch in text:
        if ch == "\n":
            line += 1
        elif ch == "[":
            depth += 1
            if depth == 2:
                lines.append(line)
        elif ch == "]":
            depth -= 1
    return lines


def load_deepmimic(name_or_path: str, dtype: torch.dtype = torch.float64) -> Motion:
    """Read one DeepMimic clip into a :class:`Motion` on the ``humanoid`` skeleton.

    Args:
        name_or_path: a bundled clip's short name (see :data:`DEEPMIMIC_CLIPS`) or a file path.
        dtype: dtype of the returned tensors.
    """
    path = deepmimic_clip_path(name_or_path)
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise FileFormatError(f"cannot read DeepMimic clip ({exc})", path) from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"not valid JSON ({exc.msg})", path, exc.lineno) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("Frames"), list) or not doc["Frames"]:
        raise FileFormatError("expected a JSON object with a non-empty 'Frames' list", path)
    frame_lines = _frame_line_numbers(text)
    rows = doc["Frames"]
    for i, row in enumerate(rows):
        line = frame_lines[i] if i < len(frame_lines) else None
        if not isinstance(row, list) or len(row) != _FRAME_LEN:
            n = len(row) if isinstance(row, list) else type(row).__name__
            raise FileFormatError(f"frame {i} has {n} values, expected {_FRAME_LEN}", path, line)
        if not all(isinstance(v, int | float) and np.isfinite(v) for v in row):
            raise FileFormatError(f"frame {i} holds a non-numeric or non-finite value", path, line)
    data = np.asarray(rows, dtype=np.float64)  # (T, 44)

    skeleton = get_skeleton("humanoid")
    T, J = data.shape[0], skeleton.num_joints
    quat = quat_identity((T, J), dtype=torch.float64)
    col = 4  # after duration and root position
    for name in DEEPMIMIC_JOINTS:
        j = skeleton.index(name)
        if skeleton.kinds[j] == "hinge":
            angle = torch.from_numpy(data[:, col])
            axis = torch.from_numpy(skeleton.hinge_axes[j].copy())
            quat[:, j] = quat_about_axis(axis, angle)
            col += 1
        else:
            q = torch.from_numpy(data[:, col : col + 4])
            norm = q.norm(dim=-1)
            bad = torch.nonzero((norm < _QUAT_NORM_RANGE[0]) | (norm > _QUAT_NORM_RANGE[1]))
            if len(bad):
                i = int(bad[0])
                line = frame_lines[i] if i < len(frame_lines) else None
                raise FileFormatError(
                    f"frame {i}: quaternion of joint '{name}' has norm {float(norm[i]):.4f}, expected about 1",
                    path,
                    line,
                )
            quat[:, j] = q / norm[:, None]
            col += 4
    durations = data[:, 0]
    positive = durations[durations > 0]
    frame_time = float(np.median(positive)) if len(positive) else 1.0 / 30.0
    clip = os.path.splitext(os.path.basename(path))[0].removeprefix("humanoid3d_")
    return Motion(
        skeleton,
        quat_canonical(quat).to(dtype),
        torch.from_numpy(data[:, 1:4].copy()).to(dtype),
        fps=1.0 / frame_time,
        name=clip,
        meta={"path": path, "loop": doc.get("Loop"), "durations": durations},
    )


def load_deepmimic_clips(names: Sequence[str] = DEEPMIMIC_CLIPS, dtype: torch.dtype = torch.float64) -> list[Motion]:
    """Read several bundled clips (all 15 by default)."""
    return [load_deepmimic(n, dtype) for n in names]


def clip_split(
    eval_clips: Sequence[str] = DEFAULT_EVAL_CLIPS, clips: Sequence[str] = DEEPMIMIC_CLIPS
) -> tuple[list[str], list[str]]:
    """Clip-level train/eval split: no clip contributes frames to both sides.

    Returns:
        ``(train_clips, eval_clips)``, disjoint, both in ``clips`` order.
    """
    unknown = [c for c in eval_clips if c not in clips]
    if unknown:
        raise KineposeError(f"eval clips {unknown} are not among the clips {list(clips)}")
    train = [c for c in clips if c not in eval_clips]
    if not train:
        raise KineposeError("clip_split: every clip is an evaluation clip; nothing is left to train on")
    return train, [c for c in clips if c in eval_clips]


def deepmimic_split(cfg: dict) -> tuple[list[Motion], list[Motion], list[Motion]]:
    """The ``deepmimic`` source: ``data.eval_clips`` and ``data.val_clips`` held out, every other clip trains."""
    data = cfg["data"]
    held = set(data["eval_clips"]) | set(data["val_clips"])
    for c in held:
        if c not in DEEPMIMIC_CLIPS:
            raise KineposeError(f"data: unknown DeepMimic clip {c!r}; clips: {', '.join(DEEPMIMIC_CLIPS)}")
    if set(data["eval_clips"]) & set(data["val_clips"]):
        raise KineposeError("data: eval_clips and val_clips overlap")
    train = [load_deepmimic(c) for c in DEEPMIMIC_CLIPS if c not in held]
    if not train:
        raise KineposeError("data: no training clips left after removing eval_clips and val_clips")
    return train, [load_deepmimic(c) for c in data["val_clips"]], [load_deepmimic(c) for c in data["eval_clips"]]
