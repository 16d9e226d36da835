"""Training and evaluating image + joint fusion models (:class:`kinepose.models.vision.fusion.FusionIK`) on rendered
sets whose backbone features are cached (a frozen backbone runs once per image, not once per step).

:func:`fusion_tokens` computes the image tokens of a :class:`~kinepose.render.dataset.RenderedSet` (the whole frame
and crops around chosen joints); :class:`FusionData` holds tokens and labels; :func:`train_fusion` trains with
Lightning, noise drawn afresh on the joints every step; :func:`evaluate_rotations` gives per-joint geodesic errors.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import lightning as L
import numpy as np
import roma
import torch
from torch.utils.data import DataLoader, IterableDataset

from kinepose._progress import progress_enabled
from kinepose.errors import KineposeError, ShapeError
from kinepose.geometry.rotations import geodesic_distance, quat_to_matrix
from kinepose.models.vision.fusion import FusionIK
from kinepose.training.schedule import TimeAnnealed

__all__ = [
    "FusionData",
    "FusionTask",
    "crop_feature_maps",
    "evaluate_rotations",
    "fusion_crops",
    "fusion_data",
    "fusion_tokens",
    "train_fusion",
]


@dataclass
class FusionData:
    """Cached inputs and labels: ``joints`` (N, J, 3) camera frame, ``tokens`` the image inputs (N, K, F) float16
    backbone tokens, or (N, K, 3, S, S) uint8 crops for a crop CNN, or (N, K, C, h, w) float16 crop maps,
    ``global_cam`` (N, J, 3, 3) and ``local`` (N, J, 3, 3) true rotations (the root's local one in the camera
    frame), ``clip`` (N,) names."""

    joints: torch.Tensor
    tokens: torch.Tensor
    global_cam: torch.Tensor
    local: torch.Tensor
    clip: np.ndarray

    def __len__(self) -> int:
        return int(self.joints.shape[0])


def fusion_tokens(backbone, rset, crop_joints: list[int], parents, *, image_size: int = 128, crop_size: int = 64,
                  scale: float = 0.3, extend: dict[int, float] | None = None, stage: int = -1, grid: int = 0,
                  batch_size: int = 64, progress: bool = False) -> np.ndarray:  # fmt: skip
    """(N, 1 + len(crop_joints), C) float16: backbone features of the whole frame (resized to ``image_size``) then
    of a crop around each of ``crop_joints`` (:func:`~kinepose.models.vision.features.crop_boxes`; ``extend`` per
    joint index moves its crop along its bone, e.g. past the neck to the head). The feature map of ``stage`` is
    averaged to ``grid x grid`` cells and flattened (``C = channels * grid^2``; ``grid=0``: the global mean, which
    keeps no layout: where the face is in the head is what tells where it faces)."""
    from tqdm.auto import tqdm

    from kinepose.models.vision.features import crop_boxes, frames_to_tensor, joint_crops

    backbone.eval()
    extend = extend or {}
    out = []
    with torch.no_grad():
        for a in tqdm(range(0, len(rset), batch_size), desc=f"tokens ({backbone.name})", unit="batch",
                      disable=not progress_enabled(progress), leave=False):  # fmt: skip
            sl = slice(a, a + batch_size)
            imgs = rset.images[sl]
            uv = torch.from_numpy(rset.joints_2d[sl]).float()
            centres = []
            for j in crop_joints:
                c, side = crop_boxes(uv, parents, scale, [j], extend=extend.get(j, 0.0))
                centres.append(c)
            crops = joint_crops(torch.from_numpy(imgs), torch.cat(centres, 1), side, crop_size)  # (b, K, 3, s, s)
            b, k = crops.shape[:2]
            whole = _pooled(backbone, frames_to_tensor(list(imgs), image_size), stage, grid)  # (b, C)
            parts = _pooled(backbone, crops.flatten(0, 1), stage, grid).reshape(b, k, -1)  # (b, K, C)
            out.append(torch.cat([whole[:, None], parts], 1).half().numpy())
    return np.concatenate(out)


def fusion_crops(rset, crop_joints: list[int], parents, *, crop_size: int = 64, scale: float = 0.3,
                 extend: dict[int, float] | None = None, batch_size: int = 256) -> np.ndarray:  # fmt: skip
    """(N, len(crop_joints), 3, crop_size, crop_size) uint8 crops of every image of ``rset`` around ``crop_joints``
    (as :func:`fusion_tokens` cuts them), for a :class:`~kinepose.models.vision.fusion.CropFusion`."""
    from kinepose.models.vision.features import crop_boxes, joint_crops

    extend = extend or {}
    out = []
    for a in range(0, len(rset), batch_size):
        sl = slice(a, a + batch_size)
        uv = torch.from_numpy(rset.joints_2d[sl]).float()
        centres = []
        for j in crop_joints:
            c, side = crop_boxes(uv, parents, scale, [j], extend=extend.get(j, 0.0))
            centres.append(c)
        crops = joint_crops(torch.from_numpy(rset.images[sl]), torch.cat(centres, 1), side, crop_size)
        out.append((crops * 255.0).round().clamp(0, 255).to(torch.uint8).numpy())
    return np.concatenate(out)


def crop_feature_maps(backbone, crops: np.ndarray, stage: int = 2, *, batch_size: int = 256,
                      progress: bool = False) -> np.ndarray:  # fmt: skip
    """(N, K, 3, S, S) uint8 joint crops (:func:`fusion_crops`, or rendered natively) -> (N, K, C, S / s, S / s)
    float16 feature maps of a frozen ``backbone``'s stage ``stage`` (for MobileNetV2 stage 2: 32 channels at stride
    s = 8), the inputs of a :class:`~kinepose.models.vision.fusion.MapEncoder`. Compute them once and cache them (as
    ``benchmarks/fusion.py`` does): the backbone then never runs in the training loop. ``batch_size`` counts frames
    (each backbone call sees ``batch_size * K`` crops)."""
    from tqdm.auto import tqdm

    crops = np.asarray(crops)
    if crops.ndim != 5 or crops.shape[2] != 3 or crops.dtype != np.uint8:
        raise ShapeError(f"crop_feature_maps: crops must be (N, K, 3, S, S) uint8, got {crops.shape} {crops.dtype}")
    N, K = crops.shape[:2]
    if N == 0 or K == 0:
        raise KineposeError(f"crop_feature_maps: no crops (shape {crops.shape})")
    backbone.eval()
    out: np.ndarray | None = None
    with torch.no_grad():
        for a in tqdm(range(0, N, batch_size), desc=f"crop maps ({backbone.name})", unit="batch",
                      disable=not progress_enabled(progress), leave=False):  # fmt: skip
            x = torch.from_numpy(crops[a : a + batch_size]).float().div_(255.0).flatten(0, 1)
            f = backbone.stages(x, stage)[-1]
            if out is None:
                out = np.empty((N, K, *f.shape[1:]), np.float16)
            out[a : a + batch_size] = f.reshape(-1, K, *f.shape[1:]).half().numpy()
    return out


def _pooled(backbone, x: torch.Tensor, stage: int, grid: int) -> torch.Tensor:
    f = backbone.stages(x, stage)[-1]  # (B, C, h, w)
    if grid <= 0:
        return f.mean((-2, -1))
    return torch.nn.functional.adaptive_avg_pool2d(f, grid).flatten(1)  # (B, C * grid^2)


def fusion_data(rset, tokens: np.ndarray) -> FusionData:
    """Labels of ``rset`` (a :class:`~kinepose.render.dataset.RenderedSet`) with its cached ``tokens``."""
    if len(tokens) != len(rset):
        raise KineposeError(f"tokens: {len(tokens)} rows for {len(rset)} images")
    local = quat_to_matrix(torch.from_numpy(rset.local_quat).float())  # (N, J, 3, 3)
    G = torch.from_numpy(rset.global_cam).float()
    local[:, 0] = G[:, 0]  # the root relative to the camera
    return FusionData(torch.from_numpy(rset.joints_cam).float(), torch.from_numpy(np.asarray(tokens)), G, local,
                      np.asarray(rset.clip))  # fmt: skip


class _Batches(IterableDataset):
    def __init__(self, data: FusionData, batch_size: int, noise_mm: tuple[float, float], seed: int) -> None:
        self.data, self.batch_size, self.noise_mm, self.seed = data, batch_size, noise_mm, seed

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + 1)
        d = self.data
        while True:
            i = torch.randint(0, len(d), (self.batch_size,), generator=g)
            lo, hi = self.noise_mm
            sigma = (lo + (hi - lo) * torch.rand(self.batch_size, 1, 1, generator=g)) / 1000.0
            x = d.joints[i] + sigma * torch.randn(d.joints[i].shape, generator=g)
            tok = d.tokens[i]
            tok = tok if tok.dtype == torch.uint8 else tok.float()  # uint8: crops for a CropFusion
            yield {"joints": x[:, None], "tokens": tok, "global": d.global_cam[i], "local": d.local[i]}


def fusion_loss(model: FusionIK, batch: dict, w_global: float = 0.5, w_lengths: float = 1.0) -> torch.Tensor:
    """Geodesic error (rad) of the learned joints' local rotations, plus ``w_global`` times that of the network's
    camera-frame rotations, plus ``w_lengths`` times the relative bone-length error of ``aux_lengths``."""
    out = model(batch["joints"], image_tokens=batch["tokens"] if model.variant != "joints_only" else None)
    idx = model.learned_index
    loss = _geodesic_loss(out.aux["learned_local"], batch["local"][:, idx])
    loss = loss + w_global * _geodesic_loss(out.aux["global_pred"], batch["global"][:, idx])
    if "bone_lengths" in out.aux:
        true = (batch["joints"][:, 0] - batch["joints"][:, 0, [max(p, 0) for p in model.skeleton.parents]]).norm(dim=-1)
        rel = (out.aux["bone_lengths"][:, 1:] - true[:, 1:]).abs() / model.rest_lengths[1:]
        loss = loss + w_lengths * rel.mean()
    return loss


def _geodesic_loss(R1: torch.Tensor, R2: torch.Tensor) -> torch.Tensor:
    """Mean geodesic angle with the arcsine clamped just under 1: its gradient stays finite at 180 deg (roma)."""
    return roma.rotmat_geodesic_distance(R1, R2, clamping=1.0 - 1e-6).mean()


class FusionTask(TimeAnnealed, L.LightningModule):
    """:func:`fusion_loss`, AdamW, a warm-up then cosine decay on the larger of the step and time fractions (a run
    stopped by ``max_seconds`` ends annealed, not halfway down its schedule)."""

    def __init__(self, model: FusionIK, lr: float, steps: int, weight_decay: float = 1e-4,
                 max_seconds: float | None = None) -> None:  # fmt: skip
        super().__init__()
        self.model, self.lr, self.steps, self.weight_decay = model, lr, steps, weight_decay
        self.max_seconds = max_seconds

    def training_step(self, batch: dict, _i: int) -> torch.Tensor:
        return fusion_loss(self.model, batch)

    def configure_optimizers(self):
        groups = [{"params": list(self.model.parameters()), "peak_lr": self.lr, "lr": self.lr}]
        return torch.optim.AdamW(groups, weight_decay=self.weight_decay)


def train_fusion(model: FusionIK, data: FusionData, *, steps: int = 2000, batch_size: int = 128, lr: float = 1e-3,
                 noise_mm: tuple[float, float] = (0.0, 20.0), seed: int = 0, max_minutes: float = 15.0,
                 weight_decay: float = 1e-4, accelerator: str = "cpu",
                 progress: bool | None = None) -> dict:  # fmt: skip
    """Train ``model`` on cached ``data`` (AdamW with ``weight_decay``); sets its normalization from the training
    joints first. Returns ``{"train_seconds", "steps_done"}``."""
    torch.manual_seed(seed)
    rel = data.joints - data.joints[:, :1]
    model.set_normalization(rel.mean(0), rel.std(0))
    task = FusionTask(model, lr, steps, weight_decay=weight_decay, max_seconds=60.0 * max_minutes)
    model.train()  # Lightning keeps the modes it is given (predict_local leaves eval)
    show = progress_enabled() if progress is None else progress
    trainer = L.Trainer(max_steps=steps, max_time={"minutes": max_minutes}, logger=False, enable_checkpointing=False,
                        enable_progress_bar=show, enable_model_summary=False, accelerator=accelerator, devices=1,
                        limit_val_batches=0, num_sanity_val_steps=0)  # fmt: skip
    t0 = time.perf_counter()
    trainer.fit(task, DataLoader(_Batches(data, batch_size, noise_mm, seed), batch_size=None))
    model.eval()
    return {"train_seconds": time.perf_counter() - t0, "steps_done": int(trainer.global_step)}


@torch.no_grad()
def predict_local(model: FusionIK, data: FusionData, noise_mm: float = 0.0, seed: int = 0, batch: int = 512):
    """(N, J, 3, 3) predicted local rotations (the root's in the camera frame) with ``noise_mm`` on the joints."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    x = data.joints + (noise_mm / 1000.0) * torch.randn(data.joints.shape, generator=g)
    out = []
    for a in range(0, len(data), batch):
        sl = slice(a, a + batch)
        tok = None if model.variant == "joints_only" else data.tokens[sl]
        tok = tok if tok is None or tok.dtype == torch.uint8 else tok.float()
        out.append(quat_to_matrix(model(x[sl, None], image_tokens=tok).local_quat))
    return torch.cat(out)


def evaluate_rotations(pred: torch.Tensor, data: FusionData, joints: list[int]) -> dict:
    """Geodesic error in degrees of each of ``joints`` (index -> mean), pooled over every frame."""
    err = torch.rad2deg(geodesic_distance(pred[:, joints], data.local[:, joints]))  # (N, k)
    if not torch.isfinite(err).all():
        raise KineposeError("evaluate_rotations: non-finite rotations")
    return {j: float(err[:, i].mean()) for i, j in enumerate(joints)}


def mean_of(errors: dict, joints: list[int]) -> float:
    vals = [errors[j] for j in joints]
    return float(sum(vals) / len(vals)) if vals else math.nan
