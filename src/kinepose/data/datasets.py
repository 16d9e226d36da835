"""Datasets of frame windows over motion clips, and batched augmentation.

A sample is the window of ``W`` frames around one target frame of a clip (edges replicate the first
or last frame), with the target frame's true local rotations. Augmentation happens per batch on
tensors (:func:`augment_batch`): random rotation, mirroring, translation, scale, Gaussian joint noise
and joint dropout with a visibility mask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from kinepose.data.motion import Motion
from kinepose.data.transforms import mirror_positions, mirror_root, mirror_rotations
from kinepose.errors import KineposeError
from kinepose.geometry.rotations import quat_canonical, quat_multiply, quat_to_matrix, random_quat
from kinepose.skeleton.core import Skeleton

__all__ = [
    "AugmentConfig",
    "Batch",
    "WindowDataset",
    "augment_batch",
    "frame_windows",
    "normalization_stats",
    "window_index",
]


def window_index(num_frames: int, window: int, target_index: int, frames: torch.Tensor | None = None) -> torch.Tensor:
    """(N, W) frame indices of the windows around ``frames`` (default all ``num_frames``): frame t's window
    is ``t - target_index .. t - target_index + W - 1``, clamped to the clip (edge frames replicated)."""
    t = torch.arange(num_frames) if frames is None else frames
    idx = t[:, None] + torch.arange(window)[None, :] - target_index  # (N, W)
    return idx.clamp(0, num_frames - 1)


def frame_windows(x: torch.Tensor, window: int, target_index: int) -> torch.Tensor:
    """(T, ...) -> (T, W, ...): each frame's window (see :func:`window_index`)."""
    return x[window_index(x.shape[0], window, target_index)]


class WindowDataset(Dataset):
    """Windows over clips. ``samples_per_epoch`` > number of frames repeats frames (shuffled by the loader).

    Items: ``joints`` (W, J, 3) clean positions, ``quat`` (J, 4) target rotations, ``root`` (3,).
    """

    def __init__(self, motions: Sequence[Motion], window: int, target_index: int, samples_per_epoch: int = 0):
        if not motions:
            raise KineposeError("WindowDataset: no clips")
        self.skeleton = motions[0].skeleton
        self.window, self.target_index = window, target_index
        self.positions = [m.positions().float() for m in motions]
        self.quats = [m.local_quat.float() for m in motions]
        self.roots = [m.root_pos.float() for m in motions]
        self.index = [(c, t) for c, m in enumerate(motions) for t in range(m.num_frames)]
        self.length = max(len(self.index), int(samples_per_epoch))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        c, t = self.index[i % len(self.index)]
        idx = window_index(self.positions[c].shape[0], self.window, self.target_index, torch.tensor([t]))[0]
        return {"joints": self.positions[c][idx], "quat": self.quats[c][t], "root": self.roots[c][t]}


@dataclass
class AugmentConfig:
    noise_mm: tuple[float, float] = (0.0, 20.0)
    noise_zero_prob: float = 0.2
    yaw: bool = True
    any_axis: bool = False
    mirror: bool = True
    translate_m: float = 1.0
    scale: tuple[float, float] = (1.0, 1.0)
    joint_dropout: float = 0.0

    @classmethod
    def from_config(cls, data_cfg: dict) -> AugmentConfig:
        return cls(
            noise_mm=tuple(data_cfg["noise_mm"]),
            noise_zero_prob=float(data_cfg["noise_zero_prob"]),
            yaw=bool(data_cfg["yaw"]),
            any_axis=bool(data_cfg["any_axis"]),
            mirror=bool(data_cfg["mirror"]),
            translate_m=float(data_cfg["translate_m"]),
            scale=tuple(data_cfg["scale"]),
            joint_dropout=float(data_cfg["joint_dropout"]),
        )


@dataclass
class Batch:
    """An augmented batch. ``joints`` are the (noisy) inputs, ``clean`` the same windows without noise."""

    joints: torch.Tensor  # (B, W, J, 3)
    clean: torch.Tensor  # (B, W, J, 3)
    target: torch.Tensor  # (B, J, 3) clean joints of the target frame
    quat: torch.Tensor  # (B, J, 4)
    root: torch.Tensor  # (B, 3)
    visibility: torch.Tensor | None  # (B, W, J) or None
    scale: torch.Tensor  # (B,)


def _yaw_quat(angle: torch.Tensor) -> torch.Tensor:
    """(B,) angles -> (B, 4) rotations about +y."""
    half = 0.5 * angle
    z = torch.zeros_like(angle)
    return torch.stack([torch.cos(half), z, torch.sin(half), z], -1)


def augment_batch(
    skeleton: Skeleton,
    batch: dict[str, torch.Tensor],
    target_index: int,
    cfg: AugmentConfig,
    generator: torch.Generator | None = None,
    noise_mm: float | None = None,
) -> Batch:
    """Augment a collated batch. ``noise_mm`` fixes the noise std (validation) and disables the rest."""
    joints, quat, root = batch["joints"].clone(), batch["quat"].clone(), batch["root"].clone()
    B, dtype, dev = joints.shape[0], joints.dtype, joints.device

    def rand(*shape):
        return torch.rand(*shape, generator=generator, dtype=dtype).to(dev)

    scale = torch.ones(B, dtype=dtype, device=dev)
    if noise_mm is None:
        if cfg.mirror and skeleton.left_right:
            flip = rand(B) < 0.5
            if bool(flip.any()):
                joints[flip] = mirror_positions(skeleton, joints[flip])
                quat[flip] = mirror_rotations(skeleton, quat[flip])
                root[flip] = mirror_root(skeleton, root[flip])
        if cfg.any_axis or cfg.yaw:
            if cfg.any_axis:
                q = random_quat((B,), generator=generator, dtype=dtype).to(dev)
            else:
                q = _yaw_quat(2 * math.pi * rand(B))
            R = quat_to_matrix(q)  # (B, 3, 3)
            joints = torch.einsum("bij,bwkj->bwki", R, joints)
            root = torch.einsum("bij,bj->bi", R, root)
            quat[:, 0] = quat_canonical(quat_multiply(q, quat[:, 0]))
        if cfg.translate_m > 0:
            shift = (2 * rand(B, 3) - 1) * cfg.translate_m
            if not cfg.any_axis:
                shift[:, 1] = 0.0  # keep the ground plane
            joints = joints + shift[:, None, None, :]
            root = root + shift
        lo, hi = cfg.scale
        if hi != lo or lo != 1.0:
            scale = lo + (hi - lo) * rand(B)
            joints = joints * scale[:, None, None, None]
            root = root * scale[:, None]
        sigma = (cfg.noise_mm[0] + (cfg.noise_mm[1] - cfg.noise_mm[0]) * rand(B)) / 1000.0
        sigma = torch.where(rand(B) < cfg.noise_zero_prob, torch.zeros_like(sigma), sigma)
    else:
        sigma = torch.full((B,), noise_mm / 1000.0, dtype=dtype, device=dev)
    clean = joints
    noise = torch.randn(joints.shape, generator=generator, dtype=dtype).to(dev)
    noisy = clean + sigma[:, None, None, None] * noise
    visibility = None
    if noise_mm is None and cfg.joint_dropout > 0:
        visibility = (rand(*joints.shape[:-1]) >= cfg.joint_dropout).to(dtype)
        visibility[..., 0] = 1.0  # the root anchors the normalization
        noisy = noisy * visibility[..., None]  # hidden joints carry no information
    return Batch(noisy, clean, clean[:, target_index], quat, root, visibility, scale)


def normalization_stats(
    dataset: WindowDataset, cfg: AugmentConfig, samples: int = 4096, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(J, 3) mean and std of root-relative joint positions under the training augmentation."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(dataset), (samples,), generator=g)
    items = [dataset[int(i)] for i in idx]
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    aug = augment_batch(dataset.skeleton, batch, dataset.target_index, cfg, generator=g)
    rel = aug.clean - aug.clean[..., :1, :]  # (B, W, J, 3)
    rel = rel.reshape(-1, rel.shape[-2], 3)
    return rel.mean(0), rel.std(0)
