"""Head pose as (yaw, pitch, roll): kinepose's one convention, and the conversions to other codebases'.

The convention, stated once:

- **Camera frame**: OpenCV, x right, y down, z forward (into the scene).
- **Head frame** (column vectors, ``p_cam = R @ p_head``): x towards the subject's **left** (image right when
  the face looks at the camera), y **down** (towards the chin), z from the face **back into the head**. At
  ``yaw = pitch = roll = 0`` the face looks straight into the camera and ``R = I``; the nose direction (face
  forward) is ``-R[:, 2]``.
- **Signs** (anatomical, as a cervical range-of-motion assessment reads them):
  ``yaw > 0`` = head turned to the subject's LEFT (the nose moves towards image right);
  ``pitch > 0`` = chin UP, extension (the nose moves up in the image);
  ``roll > 0`` = head tilted towards the subject's LEFT shoulder (the face turns clockwise on screen).
- **Composition**: ``R = Rx(-pitch) @ Ry(-yaw) @ Rz(roll)``, elementary right-handed rotations, i.e. intrinsic
  X-Y-Z Euler angles ``(-pitch, -yaw, roll)`` (scipy's ``from_euler("XYZ", [-pitch, -yaw, roll])``).
- **Arrays**: ``(..., 3)`` ordered ``(yaw, pitch, roll)``, radians; matrices ``(..., 3, 3)``.

Other codebases (:data:`CONVENTIONS`), as ``(yaw, pitch, roll)`` triplets in the *same order*:

============  ===================  ===============================================================
name          triplet vs. ours     notes
============  ===================  ===============================================================
kinepose      (yaw, pitch, roll)   this module
hopenet       (-yaw, pitch, roll)  Hopenet, FSA-Net, 6DRepNet labels, 300W-LP/AFLW2000 ``Pose_Para``
                                   and their shared ``draw_axis``; degrees in Hopenet, radians in
                                   the ``.mat`` files (:func:`convert_ypr` only flips signs, any unit)
============  ===================  ===============================================================

Aliases of ``hopenet``: ``fsanet``, ``6drepnet``, ``300w_lp``. 300W-LP's ``Pose_Para`` stores
``[pitch, yaw, roll, ...]``: reorder to (yaw, pitch, roll) before converting.

Rotation matrices of other codebases: 6DRepNet regresses ``M = get_R(pitch_h, yaw_h, roll_h) =
Rz(roll_h) Ry(yaw_h) Rx(pitch_h)``, which is ``M = F R^T F`` with ``F = diag(1, -1, -1)``
(:func:`to_sixdrepnet_matrix`). BIWI's ``*_pose.txt`` matrix (rows as in the file) is already ours:
``R = R_biwi`` (:func:`biwi_to_ypr`); FSA-Net's and Hopenet's BIWI labels are its Hopenet triplet. BIWI's
matrices are in the *depth* camera's frame, not the RGB camera's (each sequence's ``rgb.cal`` holds the
rotation between them).

Every function takes any leading batch dims and returns the type it was given: a torch tensor for a tensor
(differentiable), a numpy array for an array (or a list).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from kinepose._validation import as_tensor, check_last_dims
from kinepose.errors import KineposeError
from kinepose.geometry.rotations import euler_to_matrix

__all__ = [
    "CONVENTIONS",
    "HeadPoseConvention",
    "biwi_to_ypr",
    "convert_ypr",
    "from_sixdrepnet_matrix",
    "matrix_to_ypr",
    "mean_ypr",
    "mirror_ypr",
    "to_sixdrepnet_matrix",
    "wrap_angle",
    "ypr_to_matrix",
]

Array = torch.Tensor | np.ndarray | Sequence


@dataclass(frozen=True)
class HeadPoseConvention:
    """A (yaw, pitch, roll) triplet convention: ``theirs = signs * ours``, component by component.

    Attributes:
        name: the canonical name.
        signs: (yaw, pitch, roll) factors, each +1 or -1.
        meaning: what a positive value of each angle means, in words.
    """

    name: str
    signs: tuple[float, float, float]
    meaning: str


#: Every known convention, by name and alias. ``signs`` map kinepose's triplet to theirs (``theirs = signs * ours``).
CONVENTIONS: dict[str, HeadPoseConvention] = {}
_KINEPOSE = HeadPoseConvention(
    "kinepose",
    (1.0, 1.0, 1.0),
    "yaw > 0: turned to the subject's left; pitch > 0: chin up; roll > 0: tilted to the left shoulder",
)
_HOPENET = HeadPoseConvention(
    "hopenet",
    (-1.0, 1.0, 1.0),
    "yaw > 0: turned to the subject's RIGHT (nose to image left); pitch > 0: chin up; roll > 0: tilted to the "
    "subject's left shoulder (Hopenet, FSA-Net, 6DRepNet labels, 300W-LP/AFLW2000 Pose_Para, their draw_axis)",
)
for _alias, _conv in (
    ("kinepose", _KINEPOSE),
    ("hopenet", _HOPENET),
    ("fsanet", _HOPENET),
    ("6drepnet", _HOPENET),
    ("300w_lp", _HOPENET),
):
    CONVENTIONS[_alias] = _conv

_F = (1.0, -1.0, -1.0)  # diag(F): a half turn about x, the y-up/z-back flip between 6DRepNet's frame and ours


def _in(x: Array, name: str) -> tuple[torch.Tensor, bool]:
    """``x`` as a floating tensor, and whether it was a tensor (to give the same type back)."""
    return as_tensor(x, name), isinstance(x, torch.Tensor)


def _out(t: torch.Tensor, was_tensor: bool) -> torch.Tensor | np.ndarray:
    return t if was_tensor else t.detach().cpu().numpy()


def _wrap(a: torch.Tensor) -> torch.Tensor:
    """Angles (radians) wrapped into (-pi, pi]."""
    w = torch.remainder(a + torch.pi, 2 * torch.pi) - torch.pi  # [-pi, pi)
    return torch.where(w <= -torch.pi, w + 2 * torch.pi, w)


def wrap_angle(angle: Array) -> torch.Tensor | np.ndarray:
    """Wrap angles (radians, any shape) into (-pi, pi]."""
    t, was_tensor = _in(angle, "angle")
    return _out(_wrap(t), was_tensor)


def ypr_to_matrix(ypr: Array) -> torch.Tensor | np.ndarray:
    """(yaw, pitch, roll) in kinepose's convention -> head-to-camera rotation matrices.

    Args:
        ypr: (..., 3) radians, (yaw, pitch, roll).
    Returns:
        (..., 3, 3) ``R = Rx(-pitch) @ Ry(-yaw) @ Rz(roll)`` with ``p_cam = R @ p_head``.
    """
    t, was_tensor = _in(ypr, "ypr")
    check_last_dims(t, "ypr", (3,), "yaw, pitch, roll in radians")
    xyz = torch.stack([-t[..., 1], -t[..., 0], t[..., 2]], dim=-1)  # (..., 3) intrinsic X, Y, Z angles
    return _out(euler_to_matrix(xyz, "XYZ"), was_tensor)


def matrix_to_ypr(R: Array, eps: float = 1e-6) -> torch.Tensor | np.ndarray:
    """Head-to-camera rotation matrices -> (yaw, pitch, roll) in kinepose's convention; inverse of
    :func:`ypr_to_matrix` for ``|yaw| < 90`` degrees.

    With ``R = Rx(a) Ry(b) Rz(c)`` (``a = -pitch, b = -yaw, c = roll``): ``b = atan2(R02, hypot(R00, R01))``,
    ``a = atan2(-R12, R22)``, ``c = atan2(-R01, R00)``. At gimbal lock (``cos b <= eps``, ``|yaw| = 90``
    degrees) only ``pitch - roll`` (or ``pitch + roll``) is defined: roll is set to 0 and the pitch is read
    from ``atan2(R21, R11)``, so the result is deterministic and still maps back to ``R``.

    Args:
        R: (..., 3, 3) rotation matrices.
        eps: the ``|cos(yaw)|`` at or below which the gimbal-lock branch is taken (6DRepNet's threshold too).
    Returns:
        (..., 3) (yaw, pitch, roll) radians; yaw in [-pi/2, pi/2], pitch and roll in (-pi, pi].
    """
    t, was_tensor = _in(R, "R")
    check_last_dims(t, "R", (3, 3), "rotation matrices")
    cos_b = torch.sqrt(t[..., 0, 0] ** 2 + t[..., 0, 1] ** 2)  # (...,) = |cos(yaw)|
    b = torch.atan2(t[..., 0, 2], cos_b)
    locked = cos_b <= eps
    a = torch.where(locked, torch.atan2(t[..., 2, 1], t[..., 1, 1]), torch.atan2(-t[..., 1, 2], t[..., 2, 2]))
    c = torch.where(locked, torch.zeros_like(b), torch.atan2(-t[..., 0, 1], t[..., 0, 0]))
    ypr = torch.stack([-b, _wrap(-a), _wrap(c)], dim=-1)  # (..., 3)
    return _out(ypr, was_tensor)


def _convention(name: str, arg: str) -> HeadPoseConvention:
    if not isinstance(name, str) or name.lower() not in CONVENTIONS:
        raise KineposeError(f"{arg}: unknown head-pose convention {name!r}; known: {sorted(CONVENTIONS)}")
    return CONVENTIONS[name.lower()]


def convert_ypr(ypr: Array, src: str, dst: str) -> torch.Tensor | np.ndarray:
    """Convert (yaw, pitch, roll) triplets between conventions (:data:`CONVENTIONS`).

    Only signs change, so any unit works (degrees in, degrees out). Example: a Hopenet prediction
    ``(yaw_h, pitch_h, roll_h)`` is ``(-yaw, pitch, roll)`` in kinepose's convention.

    Args:
        ypr: (..., 3) triplets ordered (yaw, pitch, roll) in convention ``src``.
        src, dst: convention names, e.g. ``"hopenet"`` (aliases ``"fsanet"``, ``"6drepnet"``, ``"300w_lp"``),
            ``"kinepose"``.
    Returns:
        (..., 3) triplets in convention ``dst``, same type as ``ypr``.
    """
    s, d = _convention(src, "src"), _convention(dst, "dst")
    t, was_tensor = _in(ypr, "ypr")
    check_last_dims(t, "ypr", (3,), f"(yaw, pitch, roll) in convention {src!r}")
    signs = torch.tensor([a * b for a, b in zip(s.signs, d.signs, strict=True)], dtype=t.dtype, device=t.device)
    return _out(t * signs, was_tensor)


def to_sixdrepnet_matrix(R: Array) -> torch.Tensor | np.ndarray:
    """kinepose head rotation -> the matrix 6DRepNet regresses, ``M = F @ R^T @ F``, ``F = diag(1, -1, -1)``.

    6DRepNet's ``get_R(pitch_h, yaw_h, roll_h) = Rz(roll_h) @ Ry(yaw_h) @ Rx(pitch_h)`` with its (Hopenet)
    angles; its ``compute_euler_angles_from_rotation_matrices(M)`` returns ``(pitch_h, yaw_h, roll_h)``.

    Args:
        R: (..., 3, 3) kinepose rotations (``p_cam = R @ p_head``).
    Returns:
        (..., 3, 3) 6DRepNet matrices, same type as ``R``.
    """
    t, was_tensor = _in(R, "R")
    check_last_dims(t, "R", (3, 3), "rotation matrices")
    f = torch.tensor(_F, dtype=t.dtype, device=t.device)
    M = f[:, None] * t.transpose(-1, -2) * f[None, :]  # F @ R^T @ F, elementwise since F is diagonal
    return _out(M, was_tensor)


def from_sixdrepnet_matrix(M: Array) -> torch.Tensor | np.ndarray:
    """6DRepNet's regressed matrix -> kinepose head rotation, ``R = F @ M^T @ F`` (the inverse of
    :func:`to_sixdrepnet_matrix`, which is its own inverse).

    Args:
        M: (..., 3, 3) 6DRepNet matrices (``get_R(pitch_h, yaw_h, roll_h)`` or the network's output).
    Returns:
        (..., 3, 3) kinepose rotations, same type as ``M``.
    """
    return to_sixdrepnet_matrix(M)


def biwi_to_ypr(R_biwi: Array, convention: str = "kinepose") -> torch.Tensor | np.ndarray:
    """BIWI ``*_pose.txt`` rotation (rows as in the file) -> (yaw, pitch, roll).

    BIWI's matrix is already kinepose's head-to-camera rotation (``R = R_biwi``): FSA-Net's and Hopenet's
    label formula (``R = R_biwi.T``; ``roll = -atan2(R10, R00)``, ``yaw = -atan2(-R20, hypot(R21, R22))``,
    ``pitch = atan2(R21, R22)``) is the ZYX decomposition ``R_biwi.T = Rz(-roll_h) Ry(-yaw_h) Rx(pitch_h)``,
    and with the Hopenet triplet ``(yaw_h, pitch_h, roll_h) = (-yaw, pitch, roll)`` that is
    ``Rz(-roll) Ry(yaw) Rx(pitch) = (Rx(-pitch) Ry(-yaw) Rz(roll)).T = R.T``. The camera is BIWI's depth camera.

    Args:
        R_biwi: (..., 3, 3) matrices as read from the file, row by row.
        convention: the convention of the result (``"hopenet"`` gives FSA-Net's BIWI labels, in radians).
    Returns:
        (..., 3) (yaw, pitch, roll) radians, same type as ``R_biwi``.
    """
    return convert_ypr(matrix_to_ypr(R_biwi), "kinepose", convention)


def mirror_ypr(ypr: Array) -> torch.Tensor | np.ndarray:
    """The head pose seen in a mirrored picture (left and right swapped about the principal point's column).

    Mirroring is ``M = diag(-1, 1, 1)`` in the camera frame; a head ``R`` becomes the mirrored face ``M R M``, whose
    angles in this convention are ``(-yaw, pitch, -roll)`` exactly (a right turn and a right tilt become left ones).

    Args:
        ypr: (..., 3) radians.
    Returns:
        (..., 3) radians, same type as ``ypr``.
    """
    t, was_tensor = _in(ypr, "ypr")
    check_last_dims(t, "ypr", (3,), "yaw, pitch, roll in radians")
    return _out(t * torch.tensor([-1.0, 1.0, -1.0], dtype=t.dtype, device=t.device), was_tensor)


def mean_ypr(ypr: Array, weights: Sequence[float] | None = None) -> torch.Tensor | np.ndarray:
    """Weighted mean of ``K`` head poses per row: the rotation nearest (Frobenius) to the weighted mean of their
    matrices (the chordal L2 mean, ``roma.special_procrustes``), as angles. Unlike averaging the angles, it does not
    depend on the Euler convention and handles the wrap at 180 degrees.

    Args:
        ypr: (K, ..., 3) radians, ``K`` estimates of the same poses.
        weights: ``K`` finite non-negative weights (equal by default), not all zero.
    Returns:
        (..., 3) radians, same type as ``ypr``.
    """
    import roma

    t, was_tensor = _in(ypr, "ypr")
    check_last_dims(t, "ypr", (3,), "yaw, pitch, roll in radians")
    if t.dim() < 2:
        raise KineposeError(f"ypr: expected (K, ..., 3), K estimates per pose, got shape {tuple(t.shape)}")
    w = torch.ones(t.shape[0], dtype=t.dtype) if weights is None else torch.as_tensor(weights, dtype=t.dtype)
    if w.shape != (t.shape[0],) or not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or float(w.sum()) <= 0:
        raise KineposeError(
            f"weights: expected {t.shape[0]} finite non-negative numbers, not all zero, got {weights!r}"
        )
    R = ypr_to_matrix(t)  # (K, ..., 3, 3)
    w = (w / w.sum()).to(R.device).reshape(-1, *([1] * (R.dim() - 1)))
    return _out(matrix_to_ypr(roma.special_procrustes((w * R).sum(0))), was_tensor)
