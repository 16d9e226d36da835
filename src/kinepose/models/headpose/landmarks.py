"""MediaPipe landmarks as model inputs, and the landmark MLP baseline (``headpose_landmarks``).

Inputs (:func:`landmark_vector`): FaceMesh's 468 points, centred on their centroid and divided by their RMS radius
(1404 numbers), and Pose's 33 points, centred between the shoulders and divided by the shoulder width (99
numbers); a missing face or body is zeros. The same normalization gives the dual-branch network's auxiliary targets.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = [
    "FACE_DIM",
    "POSE_DIM",
    "LandmarkMLP",
    "facemesh_mirror",
    "landmark_vector",
    "mirror_landmark_vectors",
    "normalize_face",
    "normalize_pose",
]

FACE_DIM, POSE_DIM = 468 * 3, 33 * 3
_L_SHOULDER, _R_SHOULDER = 11, 12
#: MediaPipe Pose's 33 landmarks mirrored (left <-> right; nose 0 stays): eyes 1-6, ears, mouth, then the body.
POSE_MIRROR = np.array([0, 4, 5, 6, 1, 2, 3, 8, 7, 10, 9] + [k + 1 if k % 2 else k - 1 for k in range(11, 33)])


@functools.cache
def facemesh_mirror() -> np.ndarray:
    """``(468,)`` the FaceMesh index of each landmark's mirror image (left <-> right; the midline maps to itself).

    Computed, not typed in: the one-to-one assignment (``scipy.optimize.linear_sum_assignment``, distances) between
    the bundled mean face (``assets/mean_face.npy``, the head frame, x = the subject's left) and its mirror
    ``x -> -x``. It is an involution with 28 midline points, and pairs the eye, mouth and cheek points that define the
    head frame (33/263, 133/362, 61/291, 234/454)."""
    import os

    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    mean = np.load(os.path.join(os.path.dirname(__file__), "assets", "mean_face.npy"))
    _, col = linear_sum_assignment(cdist(mean * [-1.0, 1.0, 1.0], mean))
    if not np.array_equal(col[col], np.arange(468)):  # a symmetric face gives an involution
        raise RuntimeError("facemesh_mirror: the mean face's mirror assignment is not an involution")
    col.setflags(write=False)
    return col


def mirror_landmark_vectors(vectors: torch.Tensor) -> torch.Tensor:
    """:func:`landmark_vector` rows of the mirror picture (left and right swapped): x negated about the centres the
    vector uses (face centroid, shoulder midpoint), the landmarks relabelled (:func:`facemesh_mirror`,
    :data:`POSE_MIRROR`); all-zero parts (no face, no body) stay zero. ``(B, 1503)`` -> ``(B, 1503)``."""
    B = vectors.shape[0]
    sign = torch.tensor([-1.0, 1.0, 1.0], dtype=vectors.dtype, device=vectors.device)
    face = vectors[:, :FACE_DIM].reshape(B, 468, 3)[:, torch.as_tensor(facemesh_mirror().copy())] * sign
    pose = vectors[:, FACE_DIM:].reshape(B, 33, 3)[:, torch.from_numpy(POSE_MIRROR)] * sign
    return torch.cat([face.reshape(B, FACE_DIM), pose.reshape(B, POSE_DIM)], 1)


def normalize_face(face: np.ndarray) -> np.ndarray:
    """``(..., 468, 3)`` pixels -> centred, unit RMS radius; NaN rows (no face) -> zeros."""
    f = np.asarray(face, dtype=np.float64)
    if f.shape[-2:] != (468, 3):
        raise ValueError(f"face: expected (..., 468, 3) FaceMesh landmarks, got {f.shape}")
    c = f - f.mean(-2, keepdims=True)
    r = np.sqrt((c**2).sum(-1).mean(-1))[..., None, None]
    out = c / np.where(r > 0, r, 1.0)
    return np.nan_to_num(out, nan=0.0)


def normalize_pose(pose: np.ndarray) -> np.ndarray:
    """``(..., 33, 3)`` pixels -> centred between the shoulders, unit shoulder width; NaN rows -> zeros."""
    p = np.asarray(pose, dtype=np.float64)
    if p.shape[-2:] != (33, 3):
        raise ValueError(f"pose: expected (..., 33, 3) MediaPipe Pose landmarks, got {p.shape}")
    mid = (p[..., _L_SHOULDER, :] + p[..., _R_SHOULDER, :]) / 2
    w = np.linalg.norm(p[..., _L_SHOULDER, :2] - p[..., _R_SHOULDER, :2], axis=-1)[..., None, None]
    out = (p - mid[..., None, :]) / np.where(w > 0, w, 1.0)
    return np.nan_to_num(out, nan=0.0)


def landmark_vector(face: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """``(..., 468, 3)`` and ``(..., 33, 3)`` (NaN where missing) -> ``(..., 1503)`` float32 model input."""
    f = normalize_face(face).reshape(*np.shape(face)[:-2], FACE_DIM)
    p = normalize_pose(pose).reshape(*np.shape(pose)[:-2], POSE_DIM)
    return np.concatenate([f, p], -1).astype(np.float32)


@dataclass
class HeadPoseOutput:
    """``ypr``: (B, 3) radians (yaw, pitch, roll); ``face``: (B, 1404) and ``pose``: (B, 99) the auxiliary
    landmark predictions (None where the model has no such head)."""

    ypr: torch.Tensor
    face: torch.Tensor | None = None
    pose: torch.Tensor | None = None


class LandmarkMLP(nn.Module):
    """``headpose_landmarks``: (B, 1503) landmark vector -> MLP -> (B, 3) yaw, pitch, roll (radians).

    With ``residual=True`` the network learns on top of the geometric fit instead of from nothing: the Kabsch
    rotation of the mean face onto the landmarks (``roma.rigid_points_registration``, batched and differentiable)
    de-rotates the face into the head frame, the MLP sees that pose-free shape, the body numbers and the fit's own
    rotation (6D), and predicts a correction (axis-angle, starting at zero, so an untrained model *is* the fit);
    the output is fit @ exp(correction). The mean face is a buffer: :meth:`set_mean_face` before training.

    Args:
        hidden: widths of the hidden layers.
        dropout: after each hidden layer.
        use_pose: feed the 99 body numbers (False zeroes them: the face-only ablation).
        residual: correct the geometric fit (above) rather than regress the angles directly.
    """

    def __init__(self, hidden: tuple[int, ...] = (512, 256, 128), dropout: float = 0.1, use_pose: bool = True,
                 residual: bool = False) -> None:  # fmt: skip
        super().__init__()
        layers, d = [], FACE_DIM + POSE_DIM + (6 if residual else 0)
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU(), nn.Dropout(dropout)]
            d = h
        self.net = nn.Sequential(*layers, nn.Linear(d, 3))
        self.use_pose = bool(use_pose)
        self.residual = bool(residual)
        self.register_buffer("mean_face", torch.zeros(468, 3))
        if self.residual:
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)
        self.config = {"hidden": list(hidden), "dropout": dropout, "use_pose": use_pose, "residual": residual}

    def set_mean_face(self, mean_face: np.ndarray | torch.Tensor) -> None:
        """The geometric fit's mean face, ``(468, 3)`` (:class:`~kinepose.models.headpose.GeometricHeadPose`)."""
        self.mean_face.copy_(torch.as_tensor(mean_face, dtype=self.mean_face.dtype))

    def forward(self, x: torch.Tensor) -> HeadPoseOutput:
        if x.dim() != 2 or x.shape[1] != FACE_DIM + POSE_DIM:
            raise ValueError(f"x: expected (B, {FACE_DIM + POSE_DIM}) landmark vectors, got {tuple(x.shape)}")
        if not self.use_pose:
            x = torch.cat([x[:, :FACE_DIM], torch.zeros_like(x[:, FACE_DIM:])], 1)
        if not self.residual:
            return HeadPoseOutput(self.net(x))
        import roma

        from kinepose.geometry.headpose import matrix_to_ypr

        face = x[:, :FACE_DIM].reshape(-1, 468, 3)  # (B, 468, 3) normalized, camera axes
        R0, _t, _s = roma.rigid_points_registration(self.mean_face.expand_as(face), face, compute_scaling=True)
        R0 = R0.detach()  # (B, 3, 3) the fit, camera from head
        shape = face @ R0  # (B, 468, 3) rows R0^T p: the face in the head frame
        z = torch.cat([shape.reshape(-1, FACE_DIM), x[:, FACE_DIM:], R0[..., :2].transpose(1, 2).reshape(-1, 6)], 1)
        R = R0 @ roma.rotvec_to_rotmat(self.net(z))  # (B, 3, 3)
        return HeadPoseOutput(matrix_to_ypr(R))
