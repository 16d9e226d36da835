"""Synthetic right-hand poses and motions within anatomical joint limits, for training IK networks.

The generator is a low-dimensional **synergy model**, not uniform joint noise:

1. A grasp synergy is drawn from :data:`SYNERGIES` (open hand, relaxed, fist, pinch, point, peace/V,
   OK sign, thumbs-up, and a "free" one centred on half flexion with wide spread). It gives a prototype
   flexion level in ``[0, 1]`` for each of the five fingers, a finger spread level and a thumb (CMC)
   abduction level. Pinch and OK bring the thumb tip within 1 cm of the index tip; in the fist, point and
   peace the thumb lies on the curled fingers.
2. A correlated Gaussian latent (:data:`FLEXION_CORRELATION`: neighbouring fingers correlate strongly,
   the thumb weakly) is added to the prototype in logit space, and the sum is squashed back to ``[0, 1]``
   with a sigmoid.
3. Each level is turned into joint angles (degrees in the constants, radians on the skeleton): a finger
   MCP follows its level with its own range; PIP follows it too, and DIP is coupled to PIP
   (``DIP ~ 2/3 PIP``, the biomechanical coupling of the flexor tendons) plus small noise; MCP abduction
   (spread) shrinks as the finger flexes (the collateral ligaments tighten); a little axial roll. The thumb
   CMC (a ball joint) takes flexion across the palm with the pronation that comes with it from the thumb's
   flexion level, abduction away from the index finger from its abduction level; thumb MCP and IP (hinges)
   follow the flexion level. Every hinge angle is clipped into
   the skeleton's own ``limits``, every ball-joint angle into the ``*_DEG`` ranges below.

Ball joints are built in their anatomical frame, from the skeleton itself: with ``c`` the ball joint's
child hinge (PIP, or thumb MCP), the flexion axis is ``a = skeleton.hinge_axes[c]``, the bone direction is
``d = offsets[c] / |offsets[c]|`` and the abduction axis is ``e = d x a`` (roughly the palm normal for the
fingers). The local rotation is ``q = q(a, flex) * q(e, abd) * q(d, roll)``, w,x,y,z quaternions: an
intrinsic flexion -> abduction -> axial-rotation sequence, as the ISB recommends for finger joints.
Positive flexion turns the finger towards the palm (the skeleton's hinge convention); positive abduction
turns it towards ``+a``, i.e. the radial (thumb) side for the fingers and away from the index finger for
the thumb.

Motion (:func:`sample_hand_sequences`) interpolates the *latent* parameters between random keyframes
(every :data:`KEY_INTERVAL_S` seconds) with the minimum-jerk profile ``6u^5 - 15u^4 + 10u^3`` (continuous
velocity and acceleration, the classic model of human point-to-point movement), and slerps the wrist
rotation with the same profile. The result is smooth, unlike independent samples.

Everything is drawn from one ``torch.Generator`` in float64 and converted to ``dtype`` at the end, so a
seeded generator gives the same poses for every dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from kinepose.data.motion import Motion
from kinepose.errors import KineposeError
from kinepose.geometry.rotations import (
    axis_angle_to_quat,
    quat_about_axis,
    quat_canonical,
    quat_conjugate,
    quat_identity,
    quat_multiply,
    quat_to_axis_angle,
    random_quat,
)
from kinepose.skeleton.core import Skeleton
from kinepose.skeleton.presets.hand import FINGERS, hand21

__all__ = [
    "DIP_PIP_RATIO",
    "FINGER_MCP_ABD_DEG",
    "FINGER_MCP_FLEX_DEG",
    "FINGER_MCP_ROLL_DEG",
    "FLEXION_CORRELATION",
    "GLOBAL_STEP_DEG",
    "HAND_SIZE_RANGE",
    "KEY_INTERVAL_S",
    "MIN_BEND_DEG",
    "SYNERGIES",
    "THUMB_CMC_ABD_DEG",
    "THUMB_CMC_FLEX_DEG",
    "THUMB_CMC_ROLL_DEG",
    "Synergy",
    "sample_hand_poses",
    "sample_hand_sequences",
    "synthetic_hand_split",
]

# ------------------------------------------------------------------------------------------ ranges (degrees)
#: Finger MCP flexion: 20 deg of hyperextension to 90 deg of flexion (positive towards the palm).
FINGER_MCP_FLEX_DEG = (-20.0, 90.0)
#: Finger MCP abduction (positive towards the thumb side); it shrinks as the finger flexes.
FINGER_MCP_ABD_DEG = (-15.0, 15.0)
#: Finger MCP axial roll about the proximal phalanx.
FINGER_MCP_ROLL_DEG = (-5.0, 5.0)
#: Thumb CMC flexion, across the palm, relative to the skeleton's rest thumb.
THUMB_CMC_FLEX_DEG = (-20.0, 30.0)
#: Thumb CMC abduction, positive away from the index finger, relative to the (already abducted) rest thumb.
THUMB_CMC_ABD_DEG = (-25.0, 35.0)
#: Thumb CMC axial roll about the metacarpal; negative is the pronation that comes with flexion.
THUMB_CMC_ROLL_DEG = (-25.0, 10.0)
#: Smallest PIP / thumb-MCP bend: a living finger is never exactly straight, and an exactly straight
#: two-bone chain leaves the ball joint's twist unobservable from positions (see :mod:`kinepose.kinematics.ik`).
MIN_BEND_DEG = 2.0
#: DIP flexion per degree of PIP flexion.
DIP_PIP_RATIO = 2.0 / 3.0
#: Uniform hand-size scale range for ``return_offsets``.
HAND_SIZE_RANGE = (0.85, 1.15)
#: Seconds between consecutive keyframes of a sequence (uniform in this range).
KEY_INTERVAL_S = (0.3, 1.0)
#: Largest wrist rotation between consecutive keyframes when the global rotation is unrestricted.
GLOBAL_STEP_DEG = 60.0

#: Correlation of the five flexion latents (thumb, index, middle, ring, little).
FLEXION_CORRELATION = np.array(
    [
        [1.00, 0.20, 0.15, 0.10, 0.10],
        [0.20, 1.00, 0.50, 0.35, 0.25],
        [0.15, 0.50, 1.00, 0.70, 0.55],
        [0.10, 0.35, 0.70, 1.00, 0.80],
        [0.10, 0.25, 0.55, 0.80, 1.00],
    ]
)
# Standard deviations of the per-joint noise, degrees (independent of the synergies).
_SD_FINGER = {"mcp": 8.0, "pip": 8.0, "dip": 4.0, "abd": 3.0, "roll": 2.5}
_SD_THUMB = {"cmc_flex": 6.0, "cmc_abd": 6.0, "cmc_roll": 4.0, "mcp": 6.0, "ip": 6.0}
# Direction of each finger's spread (index, middle, ring, little; +1 = towards the thumb): the hand fans
# out about the middle finger.
_SPREAD_PATTERN = (1.0, 0.1, -0.6, -1.0)
_SPREAD_FAN_DEG = (-4.0, 15.0)  # fan angle at spread level 0 (fingers pressed together) and 1
_ABD_FLEX_DAMPING = 0.75  # abduction left at full flexion: 1 - this


@dataclass(frozen=True)
class Synergy:
    """A grasp prototype: flexion levels in ``[0, 1]`` (thumb, index, middle, ring, little), finger spread and
    thumb (CMC) abduction levels in ``[0, 1]``, the logit-space noise scale and the sampling weight."""

    flexion: tuple[float, float, float, float, float]
    spread: float
    thumb_abduction: float
    sigma: float = 0.6
    weight: float = 1.0


#: The grasp synergies that poses are drawn from.
SYNERGIES: dict[str, Synergy] = {
    "open": Synergy((0.05, 0.04, 0.04, 0.04, 0.04), 0.85, 0.85),
    "relaxed": Synergy((0.25, 0.22, 0.28, 0.33, 0.38), 0.35, 0.40, weight=1.5),
    "fist": Synergy((0.80, 0.93, 0.95, 0.95, 0.95), 0.10, 0.15),
    "pinch": Synergy((0.50, 0.55, 0.35, 0.40, 0.45), 0.30, 0.20),
    "point": Synergy((0.75, 0.05, 0.92, 0.94, 0.95), 0.20, 0.15),
    "peace": Synergy((0.75, 0.05, 0.05, 0.92, 0.94), 0.90, 0.15),
    "ok": Synergy((0.50, 0.55, 0.10, 0.08, 0.08), 0.60, 0.20),
    "thumbs_up": Synergy((0.04, 0.93, 0.95, 0.95, 0.95), 0.10, 0.10),
    "free": Synergy((0.5, 0.5, 0.5, 0.5, 0.5), 0.5, 0.5, sigma=1.6, weight=2.0),
}

# Latent layout, all unconstrained: 5 flexion logits, spread logit, thumb abduction logit, then standard-normal
# noises: finger MCP, PIP, DIP, abduction, roll (4 each), thumb CMC flex/abd/roll, MCP, IP.
_F, _S, _A = slice(0, 5), 5, 6
_FN = {k: slice(7 + 4 * i, 11 + 4 * i) for i, k in enumerate(_SD_FINGER)}
_TN = {k: 27 + i for i, k in enumerate(_SD_THUMB)}
_LATENT_DIM = 32


def _logit(p: torch.Tensor) -> torch.Tensor:
    return torch.log(p) - torch.log1p(-p)


def _sample_latent(n: int, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 32) float64 latents and the (n,) index of the synergy each came from."""
    syn = list(SYNERGIES.values())
    weights = torch.tensor([s.weight for s in syn], dtype=torch.float64)
    idx = torch.multinomial(weights, n, replacement=True, generator=generator)  # (n,)
    proto = torch.tensor([[*s.flexion, s.spread, s.thumb_abduction] for s in syn], dtype=torch.float64)[idx]  # (n, 7)
    sigma = torch.tensor([s.sigma for s in syn], dtype=torch.float64)[idx][:, None]  # (n, 1)
    chol = torch.linalg.cholesky(torch.from_numpy(FLEXION_CORRELATION))
    eps = torch.randn(n, 7, generator=generator, dtype=torch.float64)
    # Correlated finger flexions; spread and thumb abduction independent.
    noise = torch.cat([eps[:, :5] @ chol.T, eps[:, 5:]], dim=1)
    levels = _logit(proto) + sigma * noise  # (n, 7)
    rest = torch.randn(n, _LATENT_DIM - 7, generator=generator, dtype=torch.float64)
    return torch.cat([levels, rest], dim=1), idx


def _lerp(lo: float, hi: float, t: torch.Tensor) -> torch.Tensor:
    return lo + (hi - lo) * t


def _clip_deg(x_deg: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Clip degrees into [lo, hi] degrees and return radians."""
    return torch.deg2rad(x_deg.clamp(lo, hi))


@dataclass(frozen=True)
class _HandIndex:
    """Joint indices of the hand (ball joint, two hinges) per finger and the ball-joint frames."""

    ball: tuple[int, ...]
    hinge1: tuple[int, ...]
    hinge2: tuple[int, ...]
    frames: torch.Tensor  # (5, 3, 3): rows flexion axis a, abduction axis e, bone direction d (float64)


def _hand_index(skeleton: Skeleton) -> _HandIndex:
    try:
        names = [
            (f"{f}_cmc", f"{f}_mcp", f"{f}_ip") if f == "thumb" else (f"{f}_mcp", f"{f}_pip", f"{f}_dip")
            for f in FINGERS
        ]
        ball, h1, h2 = (tuple(skeleton.index(n[i]) for n in names) for i in range(3))
    except KineposeError as exc:
        raise KineposeError(f"skeleton: synthetic hands need the hand21 joint names ({exc})") from None
    frames = []
    for b, c, g in zip(ball, h1, h2, strict=True):
        if skeleton.kinds[b] != "ball" or skeleton.kinds[c] != "hinge" or skeleton.kinds[g] != "hinge":
            raise KineposeError(
                f"skeleton '{skeleton.name}': expected a ball joint '{skeleton.joint_names[b]}' followed by "
                f"hinges '{skeleton.joint_names[c]}', '{skeleton.joint_names[g]}'"
            )
        d = skeleton.offsets[c] / np.linalg.norm(skeleton.offsets[c])
        a = skeleton.hinge_axes[c] - d * (skeleton.hinge_axes[c] @ d)  # exactly orthogonal to the bone
        a = a / np.linalg.norm(a)
        frames.append(np.stack([a, np.cross(d, a), d]))
    return _HandIndex(ball, h1, h2, torch.from_numpy(np.stack(frames)))


def _hinge_deg_limits(skeleton: Skeleton, j: int) -> tuple[float, float]:
    lo, hi = np.degrees(skeleton.limits[j])
    return (float(lo) if np.isfinite(lo) else -180.0, float(hi) if np.isfinite(hi) else 180.0)


def _latent_to_local(skeleton: Skeleton, hand: _HandIndex, z: torch.Tensor) -> torch.Tensor:
    """(N, 32) float64 latents -> (N, J, 4) w,x,y,z local rotations (root identity)."""
    N = z.shape[0]
    f = torch.sigmoid(z[:, _F])  # (N, 5) flexion levels, thumb first
    spread, tab = torch.sigmoid(z[:, _S]), torch.sigmoid(z[:, _A])  # (N,)
    ball_deg = torch.zeros(N, 5, 3, dtype=z.dtype)  # flexion, abduction, roll per ball joint
    hinge_rad = torch.zeros(N, 5, 2, dtype=z.dtype)

    # Fingers (index..little): MCP follows f, PIP follows f, DIP coupled to PIP.
    ff = f[:, 1:]  # (N, 4)
    sd = _SD_FINGER
    ball_deg[:, 1:, 0] = (_lerp(0.0, 85.0, ff) + sd["mcp"] * z[:, _FN["mcp"]]).clamp(*FINGER_MCP_FLEX_DEG)
    fan = _lerp(*_SPREAD_FAN_DEG, spread)[:, None] * torch.tensor(_SPREAD_PATTERN, dtype=z.dtype)  # (N, 4)
    abd = (fan + sd["abd"] * z[:, _FN["abd"]]) * (1.0 - _ABD_FLEX_DAMPING * ff)
    ball_deg[:, 1:, 1] = abd.clamp(*FINGER_MCP_ABD_DEG)
    ball_deg[:, 1:, 2] = (sd["roll"] * z[:, _FN["roll"]]).clamp(*FINGER_MCP_ROLL_DEG)
    pip_deg = _lerp(0.0, 100.0, ff) + sd["pip"] * z[:, _FN["pip"]]
    for k in range(4):
        lo, hi = _hinge_deg_limits(skeleton, hand.hinge1[k + 1])
        pip_deg[:, k] = pip_deg[:, k].clamp(max(lo, MIN_BEND_DEG), hi)
        dip_deg = DIP_PIP_RATIO * pip_deg[:, k] + sd["dip"] * z[:, _FN["dip"]][:, k]
        hinge_rad[:, k + 1, 0] = torch.deg2rad(pip_deg[:, k])
        hinge_rad[:, k + 1, 1] = _clip_deg(dip_deg, *_hinge_deg_limits(skeleton, hand.hinge2[k + 1]))

    # Thumb: flexion level -> CMC flexion across the palm with some pronation, MCP and IP; abduction level ->
    # CMC abduction. This skeleton's rest thumb is already opposed: pinch contact sits near CMC
    # (flexion, abduction, roll) = (5, -12, -10) deg.
    ft, st = f[:, 0], _SD_THUMB
    cmc = (
        _lerp(-10.0, 15.0, ft) + st["cmc_flex"] * z[:, _TN["cmc_flex"]],
        _lerp(-20.0, 30.0, tab) + st["cmc_abd"] * z[:, _TN["cmc_abd"]],
        _lerp(0.0, -15.0, ft) + st["cmc_roll"] * z[:, _TN["cmc_roll"]],
    )
    for i, rng in enumerate((THUMB_CMC_FLEX_DEG, THUMB_CMC_ABD_DEG, THUMB_CMC_ROLL_DEG)):
        ball_deg[:, 0, i] = cmc[i].clamp(*rng)
    lo, hi = _hinge_deg_limits(skeleton, hand.hinge1[0])
    mcp = (_lerp(5.0, 60.0, ft) + st["mcp"] * z[:, _TN["mcp"]]).clamp(max(lo, MIN_BEND_DEG), hi)
    hinge_rad[:, 0, 0] = torch.deg2rad(mcp)
    ip = _lerp(5.0, 75.0, ft) + st["ip"] * z[:, _TN["ip"]]
    hinge_rad[:, 0, 1] = _clip_deg(ip, *_hinge_deg_limits(skeleton, hand.hinge2[0]))

    q = quat_identity((N, skeleton.num_joints), dtype=z.dtype)
    axes = torch.from_numpy(np.array(skeleton.hinge_axes))  # (J, 3)
    ang = torch.deg2rad(ball_deg)  # (N, 5, 3)
    fr = hand.frames.to(z.dtype)  # (5, 3, 3) rows a, e, d
    q_ball = quat_multiply(
        quat_multiply(quat_about_axis(fr[:, 0], ang[..., 0]), quat_about_axis(fr[:, 1], ang[..., 1])),
        quat_about_axis(fr[:, 2], ang[..., 2]),
    )  # (N, 5, 4): flexion, then abduction, then roll (intrinsic)
    q[:, list(hand.ball)] = q_ball
    q[:, list(hand.hinge1)] = quat_about_axis(axes[list(hand.hinge1)], hinge_rad[..., 0])
    q[:, list(hand.hinge2)] = quat_about_axis(axes[list(hand.hinge2)], hinge_rad[..., 1])
    return quat_canonical(q)


def _random_axis_angle(n: int, max_deg: float, generator: torch.Generator | None, cube_root: bool) -> torch.Tensor:
    """(n, 4) rotations about uniform random axes by angles in [0, max_deg] (uniform in the rotation-vector
    ball when ``cube_root``, uniform in angle otherwise)."""
    axis = torch.randn(n, 3, generator=generator, dtype=torch.float64)
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    angle = math.radians(max_deg) * (u.pow(1.0 / 3.0) if cube_root else u)
    return axis_angle_to_quat(axis * angle[:, None])


def _global_rotations(
    n: int, random_global: bool, global_cone_deg: float | None, generator: torch.Generator | None
) -> torch.Tensor:
    """(n, 4) wrist rotations: identity, uniform over SO(3), or within ``global_cone_deg`` of identity."""
    if not random_global:
        return quat_identity((n,), dtype=torch.float64)
    if global_cone_deg is None:
        return random_quat((n,), generator=generator, dtype=torch.float64)
    return _random_axis_angle(n, global_cone_deg, generator, cube_root=True)


def _hand_scale(n: int, size_range: tuple[float, float], generator: torch.Generator | None) -> torch.Tensor:
    lo, hi = size_range
    if not 0 < lo <= hi:
        raise KineposeError(f"size_range: expected 0 < low <= high, got {size_range}")
    return _lerp(lo, hi, torch.rand(n, generator=generator, dtype=torch.float64))


def _check_common(skeleton: Skeleton | None, global_cone_deg: float | None, root_std: float) -> Skeleton:
    if global_cone_deg is not None and not global_cone_deg >= 0:
        raise KineposeError(f"global_cone_deg: expected a non-negative angle in degrees, got {global_cone_deg}")
    if not root_std >= 0:
        raise KineposeError(f"root_std: expected a non-negative standard deviation in metres, got {root_std}")
    return hand21() if skeleton is None else skeleton


def sample_hand_poses(
    n: int,
    generator: torch.Generator | None = None,
    skeleton: Skeleton | None = None,
    random_global: bool = True,
    *,
    global_cone_deg: float | None = None,
    root_std: float = 0.0,
    return_offsets: bool = False,
    size_range: tuple[float, float] = HAND_SIZE_RANGE,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Independent realistic hand poses from the synergy model (see the module docstring).

    Args:
        n: number of poses.
        generator: seeded ``torch.Generator`` for reproducible poses (default: torch's global RNG).
        skeleton: a hand with the :func:`~kinepose.skeleton.presets.hand.hand21` joint names (default hand21).
        random_global: random wrist orientation; ``False`` keeps the identity.
        global_cone_deg: with ``random_global``, ``None`` draws the wrist rotation uniformly over SO(3);
            an angle (degrees) draws it uniformly from the ball of rotation vectors of that radius.
        root_std: standard deviation (metres) of a Gaussian root translation added to the rest root.
        return_offsets: also return per-sample rest offsets for a random uniform hand size.
        size_range: (low, high) of that uniform scale.
        dtype: floating dtype of the outputs (sampling is float64, so values agree across dtypes).

    Returns:
        ``local_quat`` (n, J, 4) w,x,y,z unit quaternions (identity at end sites, hinges pure rotations
        about their axes within the skeleton's limits), ``root_pos`` (n, 3) metres, and with
        ``return_offsets`` ``offsets`` (n, J, 3) metres, to pass to ``forward_kinematics(..., offsets=)``.
    """
    if int(n) != n or n < 0:
        raise KineposeError(f"n: expected a non-negative integer number of poses, got {n!r}")
    skeleton = _check_common(skeleton, global_cone_deg, root_std)
    hand = _hand_index(skeleton)
    z, _ = _sample_latent(int(n), generator)
    q = _latent_to_local(skeleton, hand, z)  # (n, J, 4)
    q[:, 0] = _global_rotations(int(n), random_global, global_cone_deg, generator)
    root = torch.from_numpy(np.array(skeleton.offsets[0])).expand(int(n), 3)
    root = root + root_std * torch.randn(int(n), 3, generator=generator, dtype=torch.float64)
    out = (q.to(dtype), root.to(dtype))
    if not return_offsets:
        return out
    scale = _hand_scale(int(n), size_range, generator)
    offsets = scale[:, None, None] * torch.from_numpy(np.array(skeleton.offsets))  # (n, J, 3)
    return (*out, offsets.to(dtype))


def _minimum_jerk(u: torch.Tensor) -> torch.Tensor:
    """The minimum-jerk (smootherstep) profile on [0, 1]: zero velocity and acceleration at both ends."""
    return u * u * u * (u * (6.0 * u - 15.0) + 10.0)


def _slerp(q0: torch.Tensor, q1: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Shortest-arc slerp of (..., 4) w,x,y,z unit quaternions at fractions (...,)."""
    rel = quat_canonical(quat_multiply(quat_conjugate(q0), q1))
    return quat_canonical(quat_multiply(q0, axis_angle_to_quat(w[..., None] * quat_to_axis_angle(rel))))


def sample_hand_sequences(
    num_sequences: int,
    length: int,
    fps: float = 30.0,
    generator: torch.Generator | None = None,
    skeleton: Skeleton | None = None,
    random_global: bool = True,
    *,
    global_cone_deg: float | None = None,
    global_step_deg: float = GLOBAL_STEP_DEG,
    root_std: float = 0.0,
    key_interval: tuple[float, float] = KEY_INTERVAL_S,
    return_offsets: bool = False,
    size_range: tuple[float, float] = HAND_SIZE_RANGE,
    dtype: torch.dtype = torch.float64,
) -> list[Motion]:
    """Smooth hand motions: synergy latents at random keyframes, interpolated with a minimum-jerk profile.

    Args:
        num_sequences: number of clips.
        length: frames per clip.
        fps: frames per second.
        generator, skeleton, random_global, global_cone_deg, root_std, size_range, dtype: as in
            :func:`sample_hand_poses`; the root translation is keyframed and interpolated too.
        global_step_deg: with ``random_global`` and no cone, the first wrist rotation is uniform over SO(3)
            and each next keyframe turns it by up to this many degrees about a random axis.
        key_interval: (low, high) seconds between keyframes.
        return_offsets: store a random hand size per clip as ``meta["offsets"]`` (J, 3) and
            ``meta["scale"]`` (``Motion.positions()`` still uses the skeleton's offsets).

    Returns:
        ``num_sequences`` :class:`~kinepose.data.motion.Motion` clips of ``length`` frames; ``meta`` holds the
        keyframe times (``"key_times"``, seconds, (K,)) and synergy names (``"synergies"``).
    """
    if int(num_sequences) != num_sequences or num_sequences < 0:
        raise KineposeError(f"num_sequences: expected a non-negative integer, got {num_sequences!r}")
    if int(length) != length or length < 1:
        raise KineposeError(f"length: expected a positive integer number of frames, got {length!r}")
    if not fps > 0:
        raise KineposeError(f"fps: expected a positive frame rate, got {fps}")
    lo_s, hi_s = key_interval
    if not 0 < lo_s <= hi_s:
        raise KineposeError(f"key_interval: expected 0 < low <= high seconds, got {key_interval}")
    skeleton = _check_common(skeleton, global_cone_deg, root_std)
    hand = _hand_index(skeleton)
    S, T = int(num_sequences), int(length)
    K = math.ceil((T - 1) / fps / lo_s) + 3  # keys: enough to cover the clip even after the phase shift

    gaps = _lerp(lo_s, hi_s, torch.rand(S, K - 1, generator=generator, dtype=torch.float64))  # (S, K-1)
    phase = torch.rand(S, 1, generator=generator, dtype=torch.float64) * gaps[:, :1]  # start between keys
    key_t = torch.cat([torch.zeros(S, 1, dtype=torch.float64), gaps.cumsum(1)], dim=1) - phase  # (S, K)
    z, syn = _sample_latent(S * K, generator)
    z, syn = z.reshape(S, K, _LATENT_DIM), syn.reshape(S, K)
    if random_global and global_cone_deg is None:
        keys = [random_quat((S,), generator=generator, dtype=torch.float64)]
        steps = _random_axis_angle(S * (K - 1), global_step_deg, generator, cube_root=False).reshape(S, K - 1, 4)
        for k in range(K - 1):
            keys.append(quat_canonical(quat_multiply(keys[-1], steps[:, k])))
        g_key = torch.stack(keys, dim=1)  # (S, K, 4)
    else:
        g_key = _global_rotations(S * K, random_global, global_cone_deg, generator).reshape(S, K, 4)
    root_key = torch.from_numpy(np.array(skeleton.offsets[0])) + root_std * torch.randn(
        S, K, 3, generator=generator, dtype=torch.float64
    )  # (S, K, 3)

    t = (torch.arange(T, dtype=torch.float64) / fps).expand(S, T).contiguous()  # (S, T)
    seg = (torch.searchsorted(key_t, t, right=True) - 1).clamp(0, K - 2)  # (S, T) key before each frame
    t0, t1 = key_t.gather(1, seg), key_t.gather(1, seg + 1)
    w = _minimum_jerk(((t - t0) / (t1 - t0)).clamp(0.0, 1.0))  # (S, T)

    def at(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:  # (S, K, C) gathered at (S, T) -> (S, T, C)
        return x.gather(1, s[..., None].expand(S, T, x.shape[-1]))

    z_t = (1 - w[..., None]) * at(z, seg) + w[..., None] * at(z, seg + 1)  # (S, T, 32)
    q = _latent_to_local(skeleton, hand, z_t.reshape(S * T, _LATENT_DIM)).reshape(S, T, -1, 4)  # (S, T, J, 4)
    q[:, :, 0] = _slerp(at(g_key, seg), at(g_key, seg + 1), w)
    root = (1 - w[..., None]) * at(root_key, seg) + w[..., None] * at(root_key, seg + 1)  # (S, T, 3)
    scale = _hand_scale(S, size_range, generator) if return_offsets else None

    names = list(SYNERGIES)
    out = []
    for s in range(S):
        k0, k1 = int(seg[s, 0]), int(seg[s, -1]) + 2  # the keys that shape this clip
        meta: dict = {"key_times": key_t[s, k0:k1].to(dtype), "synergies": [names[i] for i in syn[s, k0:k1].tolist()]}
        if scale is not None:
            meta["scale"] = float(scale[s])
            meta["offsets"] = (float(scale[s]) * torch.from_numpy(np.array(skeleton.offsets))).to(dtype)
        out.append(Motion(skeleton, q[s].to(dtype), root[s].to(dtype), float(fps), f"synthetic_hand_{s:04d}", meta))
    return out


def synthetic_hand_split(cfg: dict) -> tuple[list[Motion], list[Motion], list[Motion]]:
    """The ``synthetic_hand`` source: ``data.hand_sequences`` sizes; train and val from the run's seed, test
    from a fixed seed independent of it, so every run is judged on the same data."""
    hs = cfg["data"]["hand_sequences"]
    seed = int(cfg["seed"])

    def make(n: int, offset: int) -> list[Motion]:
        g = torch.Generator().manual_seed(seed * 1000 + offset)
        clips = sample_hand_sequences(int(n), int(hs["length"]), fps=float(hs["fps"]), generator=g)
        for i, m in enumerate(clips):
            m.name = f"hand{offset}_{i:03d}"
        return clips

    test_g = torch.Generator().manual_seed(987654)
    test = sample_hand_sequences(int(hs["test"]), int(hs["length"]), fps=float(hs["fps"]), generator=test_g)
    for i, m in enumerate(test):
        m.name = f"hand_test_{i:03d}"
    return make(hs["train"], 1), make(hs["val"], 2), test
