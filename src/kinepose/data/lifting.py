"""Training and test data for 2D-to-3D lifting: real motion seen through random virtual cameras, with
detection-like 2D noise.

**Clips** (:class:`LiftClip`): world joint positions ``(T, J, 3)``, metres, y up, on one skeleton's joints.

- Body (``humanoid``, 15 joints): the 15 DeepMimic clips that ship in pybullet, and the real motion capture of
  Debian's ``assimp-testmodels``: CMU trials 01_01 and 01_03 (120 fps, 1/0.45 inch) and ``Boxing_Toes.bvh`` (100 fps,
  cm), mapped onto the humanoid's joints by name (:data:`CMU_TO_HUMANOID`, :data:`BOXING_TO_HUMANOID`; another
  subject's rig, so other proportions) and resampled to about 30 fps.
- Hand (``hand21``): synthetic sequences (:func:`kinepose.data.sources.synthetic_hand.sample_hand_sequences`).

Splits are clip-level (:func:`lifting_split`): no frame of a test clip is in training.

**Views** (:func:`sample_batch`, :func:`view_clips`): each window is seen by a random camera
(:func:`kinepose.geometry.cameras.random_cameras`) looking at the subject; its 2D keypoints get
:class:`KeypointNoise` (Gaussian with a per-joint scale, outliers, left/right swaps, missing joints with visibility
0); the input is in VideoPose3D's screen normalization and the target is the root-relative 3D of the camera frame.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from kinepose.errors import KineposeError
from kinepose.geometry.camera_sampling import CameraRanges
from kinepose.geometry.cameras import Camera, project, world_to_camera
from kinepose.geometry.normalization import centre_keypoints, normalize_screen_coordinates
from kinepose.skeleton.core import Skeleton

__all__ = [
    "BOXING_TO_HUMANOID",
    "CMU_TO_HUMANOID",
    "DETECTOR_SCALE",
    "KeypointNoise",
    "LiftBatch",
    "LiftClip",
    "ViewedClip",
    "add_keypoint_noise",
    "body_clips",
    "hand_clips",
    "joint_noise_scale",
    "lifting_split",
    "sample_batch",
    "view_clips",
]

ASSIMP_BVH = "/usr/share/assimp/models/BVH"

#: CMU's 31-joint rig -> the humanoid's 15 joints (its ``RightUpLeg`` is the hip joint, ``RightArm`` the shoulder).
CMU_TO_HUMANOID = {
    "root": "Hips", "chest": "Spine", "neck": "Neck", "right_hip": "RightUpLeg", "right_knee": "RightLeg",
    "right_ankle": "RightFoot", "right_shoulder": "RightArm", "right_elbow": "RightForeArm", "right_wrist": "RightHand",
    "left_hip": "LeftUpLeg", "left_knee": "LeftLeg", "left_ankle": "LeftFoot", "left_shoulder": "LeftArm",
    "left_elbow": "LeftForeArm", "left_wrist": "LeftHand",
}  # fmt: skip
#: ``Boxing_Toes.bvh``'s 21-joint rig -> the humanoid's 15 joints.
BOXING_TO_HUMANOID = {
    "root": "Hips", "chest": "Chest", "neck": "Neck", "right_hip": "RightHip", "right_knee": "RightKnee",
    "right_ankle": "RightAnkle", "right_shoulder": "RightShoulder", "right_elbow": "RightElbow",
    "right_wrist": "RightWrist", "left_hip": "LeftHip", "left_knee": "LeftKnee", "left_ankle": "LeftAnkle",
    "left_shoulder": "LeftShoulder", "left_elbow": "LeftElbow", "left_wrist": "LeftWrist",
}  # fmt: skip
#: file -> (metres per unit, joint map)
_BVH_CLIPS = {
    "cmu_01_01": ("01_01.bvh", 0.0254 / 0.45, CMU_TO_HUMANOID),
    "cmu_01_03": ("01_03.bvh", 0.0254 / 0.45, CMU_TO_HUMANOID),
    "boxing": ("Boxing_Toes.bvh", 0.01, BOXING_TO_HUMANOID),
}


@dataclass
class LiftClip:
    """World joint positions of one clip: ``joints`` (T, J, 3) float32 metres, y up, on ``skeleton``'s joints."""

    name: str
    joints: torch.Tensor
    fps: float
    skeleton: Skeleton
    source: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])


def _bvh_clip(name: str, skeleton: Skeleton, fps: float, folder: str) -> LiftClip:
    from kinepose.data.sources.bvh import load_bvh_motion

    file, scale, names = _BVH_CLIPS[name]
    path = os.path.join(folder, file)
    if not os.path.exists(path):
        raise KineposeError(
            f"{path}: not found; the body lifting data uses Debian's assimp-testmodels "
            "(apt-get install assimp-testmodels), or set data.bvh_folder"
        )
    motion = load_bvh_motion(path, scale)
    step = max(1, round(motion.fps / fps))
    pos = motion.positions()[::step]  # (T, J_file, 3)
    idx = [motion.skeleton.index(names[j]) for j in skeleton.joint_names]
    return LiftClip(name, pos[:, idx].float(), motion.fps / step, skeleton, path)


def body_clips(
    deepmimic: Sequence[str] | None = None, bvh: Sequence[str] = tuple(_BVH_CLIPS), fps: float = 30.0,
    bvh_folder: str = ASSIMP_BVH,
) -> dict[str, LiftClip]:  # fmt: skip
    """Body clips on the humanoid: DeepMimic clips by name (all 15 by default) and the assimp-testmodels BVH clips
    ``cmu_01_01``, ``cmu_01_03``, ``boxing`` (resampled to about ``fps``)."""
    from kinepose.data.sources import DEEPMIMIC_CLIPS
    from kinepose.data.sources.deepmimic import load_deepmimic
    from kinepose.skeleton.presets import get_skeleton

    sk = get_skeleton("humanoid")
    out: dict[str, LiftClip] = {}
    for c in DEEPMIMIC_CLIPS if deepmimic is None else deepmimic:
        m = load_deepmimic(c)
        step = max(1, round(m.fps / fps))  # the 60 fps captures to 30 (backflip's 16 and spin's 24 fps stay)
        out[c] = LiftClip(c, m.positions()[::step].float(), m.fps / step, sk, "deepmimic")
    for c in bvh:
        if c not in _BVH_CLIPS:
            raise KineposeError(f"unknown BVH lifting clip {c!r}; use {', '.join(_BVH_CLIPS)}")
        out[c] = _bvh_clip(c, sk, fps, bvh_folder)
    return out


def hand_motions(
    n: int, length: int, seed: int, fps: float = 30.0, prefix: str = "hand", bone_scale: float = 0.1,
    size: tuple[float, float] = (0.85, 1.15),
) -> dict:  # fmt: skip
    """``n`` synthetic hand motions of ``length`` frames from ``seed``, each on its own hand: name ->
    :class:`~kinepose.data.motion.Motion` whose skeleton has the hand's offsets (every bone of the template scaled by
    its own factor in ``1 +- bone_scale``, the whole hand by one in ``size``, so no test hand has the template's
    proportions)."""
    from kinepose.data.motion import Motion
    from kinepose.data.sources.synthetic_hand import sample_hand_sequences

    g = torch.Generator().manual_seed(int(seed))
    out = {}
    for i, m in enumerate(sample_hand_sequences(int(n), int(length), fps=float(fps), generator=g)):
        J = m.skeleton.num_joints
        f = 1 + bone_scale * (2 * torch.rand(J, generator=g, dtype=torch.float64) - 1)
        f = f * (size[0] + (size[1] - size[0]) * torch.rand((), generator=g, dtype=torch.float64))
        sk = m.skeleton.with_offsets(m.skeleton.offsets * f.numpy()[:, None])
        out[f"{prefix}_{i:03d}"] = Motion(sk, m.local_quat, m.root_pos, m.fps, f"{prefix}_{i:03d}")
    return out


def hand_clips(
    n: int, length: int, seed: int, fps: float = 30.0, prefix: str = "hand", bone_scale: float = 0.1,
    size: tuple[float, float] = (0.85, 1.15),
) -> list[LiftClip]:  # fmt: skip
    """The joint positions of :func:`hand_motions` (same arguments) as lifting clips on the template skeleton."""
    from kinepose.data.sources.synthetic_hand import hand21

    template = hand21()  # the template sample_hand_sequences draws on
    return [LiftClip(name, m.positions().float(), m.fps, template, "synthetic_hand")
            for name, m in hand_motions(n, length, seed, fps, prefix, bone_scale, size).items()]  # fmt: skip


def lifting_split(data: dict) -> tuple[list[LiftClip], list[LiftClip], list[LiftClip]]:
    """(train, val, test) clips of a lifting recipe's ``data`` section.

    ``kind: body``: ``train``, ``val``, ``test`` name clips of :func:`body_clips` (DeepMimic names, ``cmu_01_01``,
    ``cmu_01_03``, ``boxing``); a clip in two parts is an error. ``kind: hand``: ``hand_sequences`` {train, val,
    test, length} sizes; test from a fixed seed independent of the run's.
    """
    kind = data.get("kind", "body")
    if kind == "hand":
        hs = data["hand_sequences"]
        seed = int(data.get("seed", 0))
        return (
            hand_clips(hs["train"], hs["length"], seed * 1000 + 1, hs.get("fps", 30.0), prefix="hand_train"),
            hand_clips(hs["val"], hs["length"], seed * 1000 + 2, hs.get("fps", 30.0), prefix="hand_val"),
            hand_clips(hs["test"], hs["length"], 987654, hs.get("fps", 30.0), prefix="hand_test"),
        )
    if kind != "body":
        raise KineposeError(f"data.kind: unknown {kind!r}; use body or hand")
    parts = {p: list(data[p]) for p in ("train", "val", "test")}
    seen: dict[str, str] = {}
    for p, names in parts.items():
        for c in names:
            if c in seen:
                raise KineposeError(f"data: clip {c!r} is in both data.{seen[c]} and data.{p}")
            seen[c] = p
    from kinepose.data.sources import DEEPMIMIC_CLIPS

    dm = [c for c in seen if c in DEEPMIMIC_CLIPS]
    bvh = [c for c in seen if c not in DEEPMIMIC_CLIPS]
    clips = body_clips(dm, bvh, bvh_folder=data.get("bvh_folder", ASSIMP_BVH))
    return tuple([clips[c] for c in parts[p]] for p in ("train", "val", "test"))  # type: ignore[return-value]


#: ``joint_scale: detector``: noise multipliers by part of the joint name (first match), others 1. Hips are the
#: least precise body keypoints of 2D detectors (COCO's per-keypoint OKS sigmas: hips 1.07, wrists 0.62, ankles
#: 0.89, shoulders 0.79, relative to the body's scale), wrists and ankles move fastest.
DETECTOR_SCALE = (("hip", 1.5), ("root", 1.5), ("ankle", 1.2), ("wrist", 1.2), ("tip", 1.3), ("elbow", 1.0))


def joint_noise_scale(skeleton: Skeleton, spec: dict | str) -> list[float]:
    """Per-joint noise multipliers of a :class:`KeypointNoise` ``joint_scale``."""
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - set(skeleton.joint_names))
        if unknown:
            raise KineposeError(f"noise.joint_scale: unknown joint(s) {unknown} of skeleton '{skeleton.name}'")
        return [float(spec.get(n, 1.0)) for n in skeleton.joint_names]
    if spec == "none":
        return [1.0] * skeleton.num_joints
    if spec != "detector":
        raise KineposeError(f"noise.joint_scale: unknown {spec!r}; use detector, none or a mapping joint -> factor")
    return [next((f for part, f in DETECTOR_SCALE if part in n), 1.0) for n in skeleton.joint_names]


@dataclass
class KeypointNoise:
    """Detection-like corruption of 2D keypoints (pixels).

    Attributes:
        sigma_px: Gaussian std, pixels (a range: each window draws one).
        joint_scale: per-joint multiplier of ``sigma_px`` by joint name (others 1), or ``"detector"``
            (:data:`DETECTOR_SCALE`: detectors are worse on hips and extremities) or ``"none"``.
        outlier_prob: probability that a joint of a frame is an outlier, displaced uniformly in a disc of
            ``outlier_px``.
        swap_prob: probability that a frame's left/right pairs are all swapped (a detector's whole-body label swap).
        pair_swap_prob: probability that one left/right pair of a frame is swapped.
        missing_prob: probability that a joint of a frame is missing (visibility 0, coordinates NaN).
    """

    sigma_px: tuple[float, float] = (0.0, 0.0)
    joint_scale: dict | str = "none"
    outlier_prob: float = 0.0
    outlier_px: float = 60.0
    swap_prob: float = 0.0
    pair_swap_prob: float = 0.0
    missing_prob: float = 0.0

    def __post_init__(self) -> None:
        s = self.sigma_px
        self.sigma_px = (float(s), float(s)) if isinstance(s, int | float) else tuple(float(v) for v in s)
        if len(self.sigma_px) != 2 or not 0 <= self.sigma_px[0] <= self.sigma_px[1]:
            raise KineposeError(f"noise.sigma_px: expected a number or [low, high] with 0 <= low <= high, got {s}")
        for name in ("outlier_prob", "swap_prob", "pair_swap_prob", "missing_prob"):
            if not 0 <= float(getattr(self, name)) <= 1:
                raise KineposeError(f"noise.{name}: must be a probability in [0, 1], got {getattr(self, name)}")

    @classmethod
    def from_config(cls, cfg: dict | None) -> KeypointNoise:
        cfg = dict(cfg or {})
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(cfg) - allowed)
        if unknown:
            raise KineposeError(f"noise: unknown key(s) {unknown}; accepted: {', '.join(sorted(allowed))}")
        return cls(**cfg)


def add_keypoint_noise(
    skeleton: Skeleton, px: torch.Tensor, noise: KeypointNoise, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt (B, T, J, 2) pixel keypoints; returns (noisy keypoints with NaN where missing, (B, T, J) visibility).

    The Gaussian std is drawn once per window (``sigma_px`` range); outliers, swaps and missing joints per frame."""
    B, T, J, _ = px.shape
    dtype = px.dtype

    def rand(*shape):
        return torch.rand(*shape, generator=generator, dtype=dtype)

    out = px.clone()
    lo, hi = noise.sigma_px
    if hi > 0:
        sigma = lo + (hi - lo) * rand(B)
        scale = torch.tensor(joint_noise_scale(skeleton, noise.joint_scale), dtype=dtype)
        out = out + torch.randn(out.shape, generator=generator, dtype=dtype) * (
            sigma[:, None, None, None] * scale[:, None]
        )
    pairs = skeleton.left_right
    if pairs and noise.swap_prob > 0:
        swap = rand(B, T) < noise.swap_prob
        mirror = torch.tensor(skeleton.mirror_index)
        out = torch.where(swap[..., None, None], out[:, :, mirror], out)
    if pairs and noise.pair_swap_prob > 0:
        for a, b in pairs:
            s = (rand(B, T) < noise.pair_swap_prob)[..., None]
            pa, pb = out[:, :, a].clone(), out[:, :, b].clone()
            out[:, :, a] = torch.where(s, pb, pa)
            out[:, :, b] = torch.where(s, pa, pb)
    if noise.outlier_prob > 0:
        hit = rand(B, T, J) < noise.outlier_prob
        angle = 2 * math.pi * rand(B, T, J)
        radius = noise.outlier_px * rand(B, T, J).sqrt()
        shift = torch.stack([torch.cos(angle), torch.sin(angle)], -1) * radius[..., None]
        out = torch.where(hit[..., None], out + shift, out)
    vis = torch.ones(B, T, J, dtype=dtype)
    if noise.missing_prob > 0:
        vis = (rand(B, T, J) >= noise.missing_prob).to(dtype)
        out = torch.where(vis[..., None] > 0, out, torch.full_like(out, float("nan")))
    return out, vis


@dataclass
class LiftBatch:
    """Inputs and targets of a batch of windows.

    keypoints: (B, W, J, 2) screen-normalized 2D (NaN where missing); visibility (B, W, J); target (B, W, J, 3)
    root-relative camera-frame 3D of every frame of the window, metres; pixels (B, W, J, 2) the noisy pixel keypoints.
    """

    keypoints: torch.Tensor
    visibility: torch.Tensor
    target: torch.Tensor
    pixels: torch.Tensor


def _view(
    skeleton: Skeleton, world: torch.Tensor, cams: Camera, noise: KeypointNoise, generator: torch.Generator | None
) -> LiftBatch:
    """(B, W, J, 3) world joints seen by (B,) cameras -> a :class:`LiftBatch`."""
    cam_pts = world_to_camera(world, cams)  # (B, W, J, 3)
    target = cam_pts - cam_pts[..., :1, :]
    px = project(world, cams)  # (B, W, J, 2)
    noisy, vis = add_keypoint_noise(skeleton, px, noise, generator)
    kp = normalize_screen_coordinates(noisy, cams.width, cams.height)
    return LiftBatch(kp, vis, target, noisy)


def sample_batch(
    clips: Sequence[LiftClip],
    batch_size: int,
    window: int,
    target_index: int,
    cameras: CameraRanges,
    noise: KeypointNoise,
    generator: torch.Generator | None = None,
) -> LiftBatch:
    """A batch of random windows (clips weighted by their frame counts; edges replicate the first and last frame),
    each seen by its own random camera looking at the window's target-frame root."""
    from kinepose.data.datasets import window_index

    lengths = torch.tensor([c.num_frames for c in clips], dtype=torch.float64)
    ci = torch.multinomial(lengths / lengths.sum(), batch_size, replacement=True, generator=generator)
    windows = []
    for c in ci.tolist():
        T = clips[c].num_frames
        t = torch.randint(T, (1,), generator=generator)
        windows.append(clips[c].joints[window_index(T, window, target_index, t)[0]])
    world = torch.stack(windows)  # (B, W, J, 3)
    center = world[:, target_index, 0]  # (B, 3) the target frame's root
    cams = cameras.sample(batch_size, center, generator=generator)
    return _view(clips[0].skeleton, world, cams, noise, generator)


@dataclass
class ViewedClip:
    """A whole test clip seen by one fixed camera: :class:`LiftBatch` fields with B = 1 dropped, and the camera."""

    name: str
    keypoints: torch.Tensor  # (T, J, 2)
    visibility: torch.Tensor  # (T, J)
    target: torch.Tensor  # (T, J, 3)
    pixels: torch.Tensor  # (T, J, 2)
    camera: Camera
    fps: float


def view_clips(
    clips: Sequence[LiftClip], cameras: CameraRanges, noise: KeypointNoise, views: int = 2, seed: int = 0,
    noise_seed: int | None = None,
) -> list[ViewedClip]:  # fmt: skip
    """Every clip seen by ``views`` fixed random cameras, each looking at the clip's mean root. The cameras come from
    ``seed`` alone (the same under every noise), the noise from ``noise_seed`` (default ``seed + 1``)."""
    g_cam = torch.Generator().manual_seed(int(seed))
    g_noise = torch.Generator().manual_seed(int(seed) + 1 if noise_seed is None else int(noise_seed))
    all_cams = []
    for clip in clips:  # every camera first: they do not depend on the noise drawn
        center = clip.joints[:, 0].mean(0, keepdim=True).expand(views, 3)
        all_cams.append(cameras.sample(views, center, generator=g_cam))
    out = []
    for clip, cams in zip(clips, all_cams, strict=True):
        world = clip.joints[None].expand(views, *clip.joints.shape)  # (V, T, J, 3)
        b = _view(clip.skeleton, world, cams, noise, g_noise)
        for v in range(views):
            out.append(ViewedClip(f"{clip.name}@{v}", b.keypoints[v], b.visibility[v], b.target[v], b.pixels[v],
                                  cams[v], clip.fps))  # fmt: skip
    return out


def normalization_stats(batch: LiftBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(J, 2) mean/std of the visible keypoints, centred per frame (what :meth:`Lifter.normalize_input` standardizes),
    and (J, 3) mean/std of the root-relative targets."""
    kp, vis = centre_keypoints(batch.keypoints, batch.visibility)
    kp = kp.reshape(-1, *kp.shape[-2:])  # (N, J, 2)
    vis = vis.reshape(-1, vis.shape[-1])  # (N, J)
    valid = (vis > 0)[..., None] & torch.isfinite(kp)
    n = valid.sum(0).clamp_min(1)
    x = torch.where(valid, kp, torch.zeros_like(kp))
    mean = x.sum(0) / n
    std = (torch.where(valid, (kp - mean).square(), torch.zeros_like(kp)).sum(0) / n).sqrt()
    tgt = batch.target.reshape(-1, *batch.target.shape[-2:])
    return mean, std, tgt.mean(0), tgt.std(0)


def as_numpy_clip(v: ViewedClip) -> dict[str, np.ndarray]:
    """A viewed clip as plain arrays (for files and benchmarks)."""
    return {"keypoints": v.keypoints.numpy(), "visibility": v.visibility.numpy(), "target": v.target.numpy()}
