"""Training and evaluating :class:`~kinepose.models.vision.image_hand.ImageHand` on rendered hand crops.

Data: synthetic hand motions (:func:`kinepose.data.sources.synthetic_hand.sample_hand_sequences`) on per-bone scaled
hands (:func:`kinepose.data.lifting.hand_motions`, the hands of :func:`kinepose.data.lifting.hand_clips`), rendered by
:func:`kinepose.render.dataset.render_motion_set` as single frames seen by random cameras framing the hand
(:func:`render_hand_crops`); :func:`hand_crops` takes the images and their root-relative camera-frame joints.

Training, both with Lightning (AdamW, warm-up then cosine decay of the learning rate, the loss the MPJPE of the
J - 1 joints but the wrist):

- :func:`train_hand_head`: the head alone on cached features of a frozen backbone (:func:`cache_features`);
- :func:`train_image_hand`: backbone and head end to end on the images (brightness and contrast jitter).

The schedule runs on the larger of the step fraction and the time fraction of ``max_minutes``, so a run stopped by
its time cap has annealed its learning rate by then. :func:`predict_hands` runs a model, :func:`evaluate_hands`
scores it as the Ego-Exo4D hand benchmark does (:func:`kinepose.metrics.positions.egoexo4d_mpjpe`,
:func:`~kinepose.metrics.positions.egoexo4d_pa_mpjpe`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from kinepose._progress import progress_enabled
from kinepose.data.lifting import hand_motions
from kinepose.data.motion import Motion
from kinepose.errors import KineposeError, ShapeError
from kinepose.metrics.positions import egoexo4d_mpjpe, egoexo4d_pa_mpjpe
from kinepose.models.vision.image_hand import ImageHand
from kinepose.render.config import RenderConfig
from kinepose.render.dataset import RenderedSet, render_motion_set
from kinepose.skeleton.presets import get_skeleton
from kinepose.training.schedule import TimeAnnealed

__all__ = [
    "HandCrops",
    "ImageHandTask",
    "cache_features",
    "evaluate_hands",
    "hand_crops",
    "hand_loss",
    "hand_motions",
    "predict_hands",
    "render_hand_crops",
    "target_stats",
    "train_hand_head",
    "train_image_hand",
]


# ---------------------------------------------------------------------------------------------------------- data
def render_hand_crops(motions: dict[str, Motion], views: int, *, image_size: int = 128, seed: int = 0,
                      fill: tuple[float, float] = (0.5, 0.8), config: RenderConfig | None = None, workers: int = 1,
                      progress: bool = True, desc: str = "render hands") -> RenderedSet:  # fmt: skip
    """``views`` single-frame views of every motion (random frame, camera, background, lighting, skin, occluder),
    square ``image_size`` images framing the hand (it spans ``fill`` of the side): hand crops. ``config``: the
    :class:`RenderConfig` (its ``image_size`` replaced)."""
    config = replace(RenderConfig() if config is None else config, image_size=(int(image_size), int(image_size)))
    return render_motion_set(get_skeleton("hand21"), motions, views, config=config, seed=seed, fill=fill,
                             workers=workers, progress=progress, desc=desc)  # fmt: skip


@dataclass
class HandCrops:
    """Hand crops and their labels: ``images`` (N, H, W, 3) uint8, ``joints`` (N, J, 3) float32 root-relative camera
    frame joints (metres, the wrist at 0), ``joints_2d`` (N, J, 2) float32 pixels, ``clip`` (N,) names, and
    ``features`` (N, F) float16 cached backbone features (or None)."""

    images: np.ndarray
    joints: torch.Tensor
    joints_2d: torch.Tensor
    clip: np.ndarray
    features: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def with_features(self, features: np.ndarray | torch.Tensor) -> HandCrops:
        """A copy holding ``features`` (N, F), one row per crop."""
        f = torch.as_tensor(np.asarray(features)).half()
        if f.dim() != 2 or f.shape[0] != len(self):
            raise ShapeError(f"HandCrops.with_features: features must be ({len(self)}, F), got {tuple(f.shape)}")
        return replace(self, features=f)

    def subset(self, index) -> HandCrops:
        """The crops at ``index`` (a slice, an int array or a boolean mask) and their labels."""
        index = index if isinstance(index, slice) else np.asarray(index)
        t = index if isinstance(index, slice) else torch.from_numpy(index)
        return HandCrops(self.images[index], self.joints[t], self.joints_2d[t], self.clip[index],
                         None if self.features is None else self.features[t])  # fmt: skip


def hand_crops(rset: RenderedSet, features: np.ndarray | None = None) -> HandCrops:
    """The crops of a rendered ``hand21`` set; targets ``rset.joints_cam`` minus the wrist (root-relative)."""
    if rset.skeleton != "hand21":
        raise KineposeError(f"hand_crops: the set is rendered on skeleton {rset.skeleton!r}, not 'hand21'")
    x = torch.from_numpy(np.asarray(rset.joints_cam)).float()  # (N, J, 3)
    data = HandCrops(np.asarray(rset.images), x - x[:, :1], torch.from_numpy(np.asarray(rset.joints_2d)).float(),
                     np.asarray(rset.clip))  # fmt: skip
    return data if features is None else data.with_features(features)


@torch.no_grad()
def cache_features(model: ImageHand, images: np.ndarray, batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """(N, F) float16 :meth:`ImageHand.features` of (N, H, W, 3) uint8 ``images``, ``batch_size`` per pass, for
    :func:`train_hand_head` (meaningful for a frozen backbone: the features do not change while the head trains)."""
    from tqdm.auto import tqdm

    model.eval()
    dev = next(model.parameters()).device
    out = [model.features(torch.from_numpy(np.asarray(images[a : a + batch_size])).to(dev)).half().cpu().numpy()
           for a in tqdm(range(0, len(images), batch_size), desc="features", unit="batch",
                         disable=not progress_enabled(progress), leave=False)]  # fmt: skip
    if not out:
        raise KineposeError("cache_features: no images")
    return np.concatenate(out)


def target_stats(joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(J, 3) mean and std of (N, J, 3) root-relative joints (for :meth:`HandHead.set_normalization`)."""
    return joints.mean(0), joints.std(0)


# ------------------------------------------------------------------------------------------------------ training
def hand_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MPJPE (metres) of (B, J, 3) root-relative joints over the J - 1 joints but the root."""
    return (pred[:, 1:] - target[:, 1:]).norm(dim=-1).mean()


class _Batches(IterableDataset):
    """Endless random batches of ``features`` (mode ``"features"``) or uint8 ``images`` with their joints."""

    def __init__(self, data: HandCrops, batch_size: int, seed: int, mode: str) -> None:
        self.data, self.batch_size, self.seed, self.mode = data, batch_size, seed, mode

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + 1)
        while True:
            i = torch.randint(0, len(self.data), (self.batch_size,), generator=g)
            if self.mode == "features":
                x = self.data.features[i].float()
            else:
                x = torch.from_numpy(self.data.images[i.numpy()])  # (B, H, W, 3) uint8
            yield {"x": x, "joints": self.data.joints[i]}


class ImageHandTask(TimeAnnealed, L.LightningModule):
    """:func:`hand_loss`, AdamW, the learning rate scheduled on the larger of the step and time fractions.

    Args:
        model: the model.
        mode: ``"features"`` (batches of cached features, the head trains) or ``"images"`` (end to end).
        lr: peak learning rate of the head; ``backbone_lr`` the backbone's (default ``lr``).
        steps: planned steps; ``max_seconds`` the time cap the schedule also follows (None: steps only).
        jitter: in ``"images"`` mode, the scale of a random brightness and contrast change per image.
    """

    def __init__(self, model: ImageHand, mode: str, lr: float, steps: int, max_seconds: float | None = None,
                 backbone_lr: float | None = None, weight_decay: float = 1e-4,
                 jitter: float = 0.0) -> None:  # fmt: skip
        super().__init__()
        self.model, self.mode, self.lr, self.steps, self.max_seconds = model, mode, lr, steps, max_seconds
        self.backbone_lr = lr if backbone_lr is None else backbone_lr
        self.weight_decay, self.jitter = weight_decay, float(jitter)

    def _images(self, x: torch.Tensor) -> torch.Tensor:
        x = self.model.prepare(x)  # (B, 3, S, S) in [0, 1]
        if self.jitter > 0:  # lighting is not a cue
            B = x.shape[0]
            gain = 1.0 + self.jitter * torch.randn(B, 1, 1, 1, device=x.device)
            shift = 0.5 * self.jitter * torch.randn(B, 1, 1, 1, device=x.device)
            x = ((x - 0.5) * gain + 0.5 + shift).clamp(0.0, 1.0)
        return x

    def training_step(self, batch: dict, _i: int) -> torch.Tensor:
        if self.mode == "features":
            pred = self.model(features=batch["x"])
        else:
            pred = self.model(images=self._images(batch["x"]))
        return hand_loss(pred, batch["joints"])

    def configure_optimizers(self):
        head = [p for p in self.model.head.parameters() if p.requires_grad]
        groups = [{"params": head, "peak_lr": self.lr, "lr": self.lr}]
        if self.mode == "images":
            body = [p for p in self.model.backbone.parameters() if p.requires_grad]
            if body:
                groups.append({"params": body, "peak_lr": self.backbone_lr, "lr": self.backbone_lr})
        return torch.optim.AdamW(groups, weight_decay=self.weight_decay)


def _fit(model: ImageHand, data: HandCrops, mode: str, *, steps: int, batch_size: int, lr: float,
         backbone_lr: float | None, jitter: float, seed: int, max_minutes: float, accelerator: str,
         progress: bool | None, normalize: bool) -> dict:  # fmt: skip
    if len(data) == 0:
        raise KineposeError("image_hand training: no crops")
    if tuple(data.joints.shape[1:]) != (model.num_joints, 3):
        raise ShapeError(f"image_hand training: joints must be (N, {model.num_joints}, 3), got "
                         f"{tuple(data.joints.shape)}")  # fmt: skip
    torch.manual_seed(seed)
    if normalize:
        model.head.set_normalization(*target_stats(data.joints))
    model.train()
    task = ImageHandTask(model, mode, lr, steps, 60.0 * max_minutes, backbone_lr, jitter=jitter)
    show = progress_enabled() if progress is None else progress
    trainer = L.Trainer(max_steps=steps, max_time={"minutes": max_minutes}, logger=False, enable_checkpointing=False,
                        enable_progress_bar=show, enable_model_summary=False, accelerator=accelerator, devices=1,
                        limit_val_batches=0, num_sanity_val_steps=0)  # fmt: skip
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # a frozen backbone stays in eval mode on purpose
        warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")
        trainer.fit(task, DataLoader(_Batches(data, batch_size, seed, mode), batch_size=None))
    model.eval()
    return {"train_seconds": time.perf_counter() - t0, "steps_done": int(trainer.global_step)}


def train_hand_head(model: ImageHand, data: HandCrops, *, steps: int = 3000, batch_size: int = 256, lr: float = 1e-3,
                    seed: int = 0, max_minutes: float = 15.0, accelerator: str = "cpu", progress: bool | None = None,
                    normalize: bool = True) -> dict:  # fmt: skip
    """Train ``model``'s head on ``data.features`` (cached :func:`cache_features` of a frozen backbone); returns
    ``{"train_seconds", "steps_done"}``. ``normalize``: first set the head's output statistics from ``data``.

    Raises:
        KineposeError: ``data`` holds no features, or the backbone is not frozen (its features would change).
    """
    if data.features is None:
        raise KineposeError("train_hand_head: data holds no cached features (HandCrops.with_features)")
    if not model.frozen:
        raise KineposeError("train_hand_head: the backbone is not frozen; cached features stand for it only when "
                            "it is (create_image_hand(..., freeze=True)), else use train_image_hand")  # fmt: skip
    if data.features.shape[1] != model.in_features:
        raise ShapeError(f"train_hand_head: features of {data.features.shape[1]} numbers, the model reads "
                         f"{model.in_features}")  # fmt: skip
    return _fit(model, data, "features", steps=steps, batch_size=batch_size, lr=lr, backbone_lr=None, jitter=0.0,
                seed=seed, max_minutes=max_minutes, accelerator=accelerator, progress=progress,
                normalize=normalize)  # fmt: skip


def train_image_hand(model: ImageHand, data: HandCrops, *, steps: int = 2000, batch_size: int = 32, lr: float = 1e-3,
                     backbone_lr: float | None = None, jitter: float = 0.15, seed: int = 0, max_minutes: float = 15.0,
                     accelerator: str = "cpu", progress: bool | None = None,
                     normalize: bool = True) -> dict:  # fmt: skip
    """Train ``model`` end to end on ``data.images`` (the backbone too unless it is frozen); returns
    ``{"train_seconds", "steps_done"}``. ``backbone_lr``: the backbone's peak learning rate (default ``lr``; lower
    for fine-tuning ImageNet weights); ``jitter``: brightness and contrast augmentation."""
    return _fit(model, data, "images", steps=steps, batch_size=batch_size, lr=lr, backbone_lr=backbone_lr,
                jitter=jitter, seed=seed, max_minutes=max_minutes, accelerator=accelerator, progress=progress,
                normalize=normalize)  # fmt: skip


# ---------------------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def predict_hands(
    model: ImageHand, data: HandCrops, *, from_features: bool = False, batch_size: int = 64
) -> torch.Tensor:
    """(N, J, 3) root-relative joints of every crop of ``data``, from its images or (``from_features``) from its
    cached features, on the CPU."""
    model.eval()
    dev = next(model.parameters()).device
    if from_features and data.features is None:
        raise KineposeError("predict_hands: from_features=True but data holds no cached features")
    outs = []
    for a in range(0, len(data), batch_size):
        if from_features:
            outs.append(model(features=data.features[a : a + batch_size].float().to(dev)).cpu())
        else:
            outs.append(model(images=torch.from_numpy(data.images[a : a + batch_size]).to(dev)).cpu())
    if not outs:
        raise KineposeError("predict_hands: no crops")
    return torch.cat(outs)


def evaluate_hands(pred: torch.Tensor, true: torch.Tensor, valid: torch.Tensor | None = None) -> dict:
    """The Ego-Exo4D hand evaluation of (N, J, 3) predictions against the truth: ``mpjpe_mm`` (wrist-relative, per
    hand over its valid joints, the wrist counting with error 0, then over hands) and ``pa_mpjpe_mm`` (after the
    best similarity transform per hand), millimetres. ``valid``: (N, J) bool, the annotated joints (default all).

    Raises:
        ShapeError: shapes differ. NonFiniteError: a valid joint is not finite.
    """
    pred, true = torch.as_tensor(pred), torch.as_tensor(true)
    if pred.shape != true.shape or pred.dim() != 3 or pred.shape[-1] != 3:
        raise ShapeError(f"evaluate_hands: pred and true must both be (N, J, 3), got {tuple(pred.shape)} and "
                         f"{tuple(true.shape)}")  # fmt: skip
    pred, true = pred.double(), true.double()
    valid = torch.ones(pred.shape[:-1], dtype=torch.bool) if valid is None else torch.as_tensor(valid)
    return {"mpjpe_mm": 1000 * float(egoexo4d_mpjpe(pred, true, valid)),
            "pa_mpjpe_mm": 1000 * float(egoexo4d_pa_mpjpe(pred, true, valid))}  # fmt: skip
