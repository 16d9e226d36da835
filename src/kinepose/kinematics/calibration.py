"""Subject calibration: the bone lengths of the person in the input, and the units the input is in.

Presets hold one template's proportions; a real subject is taller, shorter, long-legged. IK, the fit and
every learned model's geometry should use the subject's bone lengths, not the template's:
:func:`calibrate_skeleton` returns the template with each bone scaled to the length measured on the
input (directions at rest are kept). :func:`check_units` stops input whose bones are about 10x, 100x or
1000x the skeleton's, naming the likely unit and the ``--scale`` to pass.

Bone lengths from noisy joints are biased upwards: with independent Gaussian noise of std ``s`` per
coordinate on both ends, ``E[|d + e|^2] = L^2 + 6 s^2`` and the observed length is about normal around
``L + 2 s^2 / L`` (the radial part adds variance ``2 s^2``, the two perpendicular parts lengthen the bone).
:func:`estimate_bone_lengths` takes the median length over frames (robust to outlier frames) and solves
``m = L + 2 s^2 / L`` for ``L``, with ``s`` estimated from the spread of the lengths themselves (their
radial noise has variance ``2 s^2``; the median over bones of a MAD-based variance is robust to bones that
stretch for real).
"""

from __future__ import annotations

import numpy as np
import torch

from kinepose._validation import as_tensor, check_joints
from kinepose.errors import KineposeError
from kinepose.skeleton.core import Skeleton

__all__ = ["UNIT_SCALES", "BoneLengths", "calibrate_skeleton", "check_units", "estimate_bone_lengths", "guess_units"]

#: metres per input unit; ``cmu`` is the CMU/cgspeed BVH convention (1/0.45 inch).
UNIT_SCALES = {"m": 1.0, "dm": 0.1, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "cmu": 0.0254 / 0.45}
_EPS = 1e-9


class BoneLengths:
    """Result of :func:`estimate_bone_lengths`.

    Attributes:
        lengths: (J,) estimated length of the bone ending at each joint (metres; the root's is 0 and
            bones that are zero in the skeleton stay 0).
        measured: (J,) bool, True where enough frames saw both ends.
        noise_std: the estimated joint noise std per coordinate (metres).
        frames: (J,) number of frames that saw both ends of each bone.
    """

    def __init__(self, lengths: np.ndarray, measured: np.ndarray, noise_std: float, frames: np.ndarray) -> None:
        self.lengths, self.measured, self.noise_std, self.frames = lengths, measured, noise_std, frames

    def __repr__(self) -> str:
        return f"BoneLengths({int(self.measured.sum())} bones measured, noise {1000 * self.noise_std:.2f} mm)"


def _observed_lengths(skeleton: Skeleton, joints: torch.Tensor) -> np.ndarray:
    x = as_tensor(joints, "joints").detach().double().cpu()
    check_joints(x, "joints", skeleton.num_joints, skeleton.name)
    x = x.reshape(-1, skeleton.num_joints, 3).numpy()
    parents = np.array([max(p, 0) for p in skeleton.parents])
    return np.linalg.norm(x - x[:, parents], axis=-1)  # (N, J), NaN where an end is missing


def estimate_bone_lengths(
    skeleton: Skeleton, joints: torch.Tensor, min_frames: int = 1, correct_noise: bool = True
) -> BoneLengths:
    """Bone lengths of the subject in ``joints`` (..., J, 3), robust to noise and outliers over frames.

    Args:
        skeleton: the skeleton whose topology (and zero-length bones) the joints follow.
        min_frames: bones seen in fewer frames keep the skeleton's length (``measured`` False).
        correct_noise: remove the noise bias ``2 s^2 / L``.
    """
    obs = _observed_lengths(skeleton, joints)
    rest = skeleton.bone_lengths()
    bones = [j for j in range(1, skeleton.num_joints) if rest[j] > _EPS]
    lengths = np.zeros(skeleton.num_joints)
    measured = np.zeros(skeleton.num_joints, bool)
    frames = np.zeros(skeleton.num_joints, int)
    var = []
    sq = {}
    for j in bones:
        v = obs[:, j][np.isfinite(obs[:, j])]
        frames[j] = len(v)
        if len(v) < min_frames or len(v) == 0:
            continue
        sq[j] = float(np.median(v))
        mad = np.median(np.abs(v - np.median(v)))
        var.append((1.4826 * mad) ** 2)
        measured[j] = True
    noise = float(np.sqrt(np.median(var) / 2.0)) if var else 0.0
    partner = {a: b for a, b in skeleton.left_right} | {b: a for a, b in skeleton.left_right}
    for j in bones:
        k = partner.get(j)
        if not measured[j] and k is not None and measured[k] and abs(rest[j] - rest[k]) < 0.1 * rest[j]:
            sq[j], frames[j], measured[j] = sq[k], frames[k], True  # a hidden knee: the other leg's bones
    for j in bones:
        if measured[j]:
            m = sq[j]  # median length ~ L + 2 s^2 / L (the perpendicular noise lengthens every bone)
            corr = 8.0 * noise**2 if correct_noise else 0.0
            lengths[j] = 0.5 * (m + float(np.sqrt(max(m * m - corr, 0.0))))
        else:
            lengths[j] = rest[j]
    return BoneLengths(lengths, measured, noise, frames)


def calibrate_skeleton(
    skeleton: Skeleton, joints: torch.Tensor, name: str | None = None, directions: bool = True, **kwargs
) -> Skeleton:
    """The skeleton with each bone scaled to the subject's length measured on ``joints`` (joint kinds, hinge
    axes and limits kept; the root's offset and zero-length bones unchanged). With ``directions``, the
    children of a joint that two or more of them fix (pelvis, thorax, wrist) also take the subject's own
    rest directions (the shape of that rigid group, estimated over the frames): another rig's hips sit
    wider or higher than the template's. ``kwargs`` go to :func:`estimate_bone_lengths`."""
    est = estimate_bone_lengths(skeleton, joints, **kwargs)
    rest = skeleton.bone_lengths()
    off = np.array(skeleton.offsets, dtype=np.float64)
    for j in range(1, skeleton.num_joints):
        if rest[j] > _EPS and est.measured[j]:
            off[j] = off[j] * (est.lengths[j] / rest[j])
    if directions:
        off = _rigid_directions(skeleton, joints, off)
    return skeleton.with_offsets(off, name=name or f"{skeleton.name}-subject")


def _rigid_directions(skeleton: Skeleton, joints: torch.Tensor, off: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Rest directions of the children of joints that two or more children fix (pelvis: hips and spine;
    thorax: neck and shoulders): the subject's own shape of that rigid group, by generalized Procrustes over
    the frames (each frame registered to the current shape, the shape re-estimated as the mean), its
    overall rotation aligned back to the template's, each child keeping its calibrated length."""
    import roma

    x = as_tensor(joints, "joints").detach().double().cpu().reshape(-1, skeleton.num_joints, 3)
    out = off.copy()
    for j in range(skeleton.num_joints):
        kids = [c for c in skeleton.children[j] if np.linalg.norm(off[c]) > _EPS]
        if len(kids) < 2 or np.linalg.matrix_rank(off[kids], tol=1e-9) < 2:
            continue
        d = x[:, kids] - x[:, j : j + 1]  # (N, K, 3)
        d = d[torch.isfinite(d).all(-1).all(-1)]
        if len(d) < 1:
            continue
        lengths = torch.tensor(np.linalg.norm(off[kids], axis=-1))
        template = torch.tensor(off[kids])
        shape = template.clone()
        for _ in range(rounds):
            G = roma.rigid_vectors_registration(shape.expand_as(d), d)  # (N, 3, 3): G @ shape ~ d
            shape = (G.transpose(-1, -2) @ d.transpose(-1, -2)).transpose(-1, -2).mean(0)
            shape = shape * (lengths / shape.norm(dim=-1))[:, None]
        R = roma.rigid_vectors_registration(shape[None], template[None])[0]  # the gauge: closest to the template
        out[kids] = (shape @ R.T).numpy()
    return out


def bone_ratio(skeleton: Skeleton, joints: torch.Tensor) -> float:
    """Median over bones of (median observed length / the skeleton's length)."""
    obs = _observed_lengths(skeleton, joints)
    rest = skeleton.bone_lengths()
    ratios = []
    for j in range(1, skeleton.num_joints):
        if rest[j] > 1e-6:
            v = obs[:, j][np.isfinite(obs[:, j])]
            if len(v) and np.median(v) > 0:
                ratios.append(np.median(v) / rest[j])
    if not ratios:
        raise KineposeError(f"joints: no bone of skeleton '{skeleton.name}' is seen with both ends")
    return float(np.median(ratios))


def guess_units(ratio: float) -> str | None:
    """The unit (a key of :data:`UNIT_SCALES`) that a bone-length ratio points to, or None if it looks like
    metres (within a factor of 2.5 of the skeleton)."""
    if 1 / 2.5 < ratio < 2.5:
        return None
    best = min(UNIT_SCALES, key=lambda u: abs(np.log(ratio * UNIT_SCALES[u])))
    return best if abs(np.log(ratio * UNIT_SCALES[best])) < np.log(2.5) else "unknown"


def check_units(skeleton: Skeleton, joints: torch.Tensor, where: str = "joints", applied: float = 1.0) -> float:
    """Raise :class:`KineposeError` if the joints' bones are far (beyond 2.5x) from the skeleton's lengths:
    the message names the likely unit and the ``--scale`` that converts it, given that the joints were
    already multiplied by ``applied`` (the user's ``--scale``/``--units``). Returns the bone ratio."""
    ratio = bone_ratio(skeleton, joints) / applied
    unit = guess_units(ratio)
    if 1 / 2.5 < ratio * applied < 2.5:
        return ratio * applied
    if unit == "unknown":
        raise KineposeError(
            f"{where}: the file's bones are {ratio:.4g} times as long as those of skeleton '{skeleton.name}' (median); "
            f"that matches no unit kinepose knows ({', '.join(UNIT_SCALES)}): pass --scale {1 / ratio:.4g} "
            f"or check that the joints follow this skeleton"
        )
    if unit in (None, "m"):
        raise KineposeError(
            f"{where}: with --scale/--units {applied:g} the bones are {ratio * applied:.4g} times as long as those of "
            f"skeleton '{skeleton.name}' (median), but as given they match it: the joints are in metres already; "
            f"drop --scale/--units"
        )
    scale = UNIT_SCALES[unit]
    unit_text = {"dm": "decimetres", "cm": "centimetres", "mm": "millimetres", "inch": "inches",
                 "cmu": "CMU BVH units (1/0.45 inch)"}[unit]  # fmt: skip
    raise KineposeError(
        f"{where}: the file's bones are {ratio:.4g} times as long as those of skeleton '{skeleton.name}' (median): "
        f"the joints look like {unit_text}; pass --scale {scale:g} (or --units {unit})"
    )
