"""Training and evaluating D3KE (:class:`kinepose.models.vision.d3ke.D3KE`) on rendered video windows.

A rendered set made with ``frames_per_view = T`` (:func:`kinepose.render.dataset.render_motion_set`) holds views of
``T`` consecutive frames seen by one camera; :func:`d3ke_windows` groups them into windows with their per-frame
backbone features (cached, for a frozen backbone) and the targets of :func:`~kinepose.models.vision.d3ke.d3ke_loss`:
camera-frame joints, virtual markers, the subject's bone scales (its bone lengths over the template's) and local
rotations (the root's relative to the camera). The same windows can hold the frames themselves instead
(:func:`d3ke_frames`), for :class:`~kinepose.models.vision.d3ke.VideoD3KE`, a backbone trained end to end with
D3KE. :func:`train_d3ke` trains either with Lightning, :func:`predict_d3ke` runs a trained model and
:func:`kinematics_errors` gives the benchmark's metrics.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import lightning as L
import numpy as np
import roma
import torch
from torch.utils.data import DataLoader, IterableDataset

from kinepose._progress import progress_enabled
from kinepose.errors import KineposeError
from kinepose.geometry.rotations import quat_to_matrix
from kinepose.models.vision.d3ke import D3KE, MarkerSet, VideoD3KE, d3ke_loss, marker_positions
from kinepose.skeleton.core import Skeleton
from kinepose.training.schedule import TimeAnnealed

__all__ = ["D3KEData", "D3KETask", "d3ke_frames", "d3ke_windows", "kinematics_errors", "predict_d3ke", "train_d3ke"]


@dataclass
class D3KEData:
    """Windows of one rendered set: ``features`` (V, T, F) float16 per-frame backbone features (or (V, T, 3, S, S)
    uint8 frames, :func:`d3ke_frames`, for :class:`~kinepose.models.vision.d3ke.VideoD3KE`), ``joints`` (V, T, J, 3)
    camera frame, ``markers`` (V, T, M, 3), ``scales`` (V, J), ``local_rotmat`` (V, T, J, 3, 3) (the root's relative
    to the camera), ``global_rotmat`` (V, T, J, 3, 3) camera frame, ``clip`` (V,) names."""

    features: torch.Tensor
    joints: torch.Tensor
    markers: torch.Tensor
    scales: torch.Tensor
    local_rotmat: torch.Tensor
    global_rotmat: torch.Tensor
    clip: np.ndarray

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def target(self, index) -> dict:
        return {"joints": self.joints[index], "markers": self.markers[index], "scales": self.scales[index],
                "local_rotmat": self.local_rotmat[index]}  # fmt: skip


def d3ke_windows(rset, features: np.ndarray, skeleton: Skeleton, markers: MarkerSet) -> D3KEData:
    """Group ``rset`` (a :class:`~kinepose.render.dataset.RenderedSet` rendered with ``frames_per_view = T``) into
    its views, with ``features`` (N, F) of its N images, one row per image in the set's order (or (N, 3, S, S) uint8
    frames from :func:`d3ke_frames`).

    Raises:
        KineposeError: when the views do not all have the same number of frames or ``features`` has another
            number of rows.
    """
    features = np.asarray(features)
    frames = features.dtype == np.uint8
    if len(features) != len(rset) or (features.ndim != 2 and not (frames and features.ndim == 4)):
        raise KineposeError(f"d3ke_windows: features must be ({len(rset)}, F) or uint8 frames ({len(rset)}, 3, S, S), "
                            f"got {features.dtype} {features.shape}")  # fmt: skip
    views, counts = np.unique(rset.view, return_counts=True)
    if len(set(counts.tolist())) != 1:
        raise KineposeError(f"d3ke_windows: views have different numbers of frames ({sorted(set(counts.tolist()))})")
    T = int(counts[0])
    order = np.lexsort((rset.frame, rset.view))  # by view, then frame
    V = len(views)
    idx = order.reshape(V, T)
    J = skeleton.num_joints
    joints = torch.from_numpy(rset.joints_cam[idx]).float()  # (V, T, J, 3)
    G = torch.from_numpy(rset.global_cam[idx]).float()
    local = quat_to_matrix(torch.from_numpy(rset.local_quat[idx]).float())
    local[:, :, 0] = G[:, :, 0]
    rest = torch.tensor(skeleton.bone_lengths(), dtype=torch.float32).clamp_min(1e-9)
    sub = torch.from_numpy(np.linalg.norm(rset.offsets[idx[:, 0]], axis=-1)).float()  # (V, J) the subject's bones
    scales = torch.where(rest > 1e-6, sub / rest, torch.ones(J))
    scales[:, 0] = 1.0
    mk = marker_positions(G, joints, markers, scales[:, None])
    x = torch.from_numpy(features[idx])
    return D3KEData(x if frames else x.half(), joints, mk, scales, local, G, np.asarray(rset.clip)[idx[:, 0]])


def d3ke_frames(rset, size: int = 128, batch_size: int = 256) -> np.ndarray:
    """(N, 3, size, size) uint8: every image of ``rset`` resized as the cached-feature path resizes it
    (:func:`~kinepose.models.vision.features.frames_to_tensor`), for :func:`d3ke_windows` and end-to-end training."""
    from kinepose.models.vision.features import frames_to_tensor

    out = np.empty((len(rset), 3, size, size), np.uint8)
    for a in range(0, len(rset), batch_size):
        x = frames_to_tensor(list(rset.images[a : a + batch_size]), size)
        out[a : a + len(x)] = (x * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()
    return out


def _inputs(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == torch.uint8 else x.float()


class _Windows(IterableDataset):
    def __init__(self, data: D3KEData, batch_size: int, seed: int) -> None:
        self.data, self.batch_size, self.seed = data, batch_size, seed

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + 1)
        while True:
            i = torch.randint(0, len(self.data), (self.batch_size,), generator=g)
            yield {"features": _inputs(self.data.features[i]), **self.data.target(i)}


class D3KETask(TimeAnnealed, L.LightningModule):
    """D3KE's loss (weights and betas from ``loss``) and AdamW; the learning rate warms up, then decays on a cosine
    over the larger of the step and time fractions (:func:`~kinepose.training.schedule.warmup_cosine`), so a run
    stopped by ``max_seconds`` ends annealed. For a :class:`VideoD3KE` the backbone's parameters get ``backbone_lr``
    (default ``lr``)."""

    def __init__(self, model: D3KE | VideoD3KE, lr: float, steps: int, loss: dict | None = None,
                 weight_decay: float = 1e-4, max_seconds: float | None = None,
                 backbone_lr: float | None = None) -> None:  # fmt: skip
        super().__init__()
        self.model, self.lr, self.steps, self.weight_decay = model, lr, steps, weight_decay
        self.max_seconds, self.backbone_lr = max_seconds, lr if backbone_lr is None else backbone_lr
        self.loss_kwargs = dict(loss or {})

    def training_step(self, batch: dict, _i: int) -> torch.Tensor:
        out = self.model(batch["features"])
        total, _ = d3ke_loss(out, batch, **self.loss_kwargs)
        return total

    def configure_optimizers(self):
        if isinstance(self.model, VideoD3KE):
            body = [p for p in self.model.backbone.parameters() if p.requires_grad]
            groups = [{"params": list(self.model.d3ke.parameters()), "peak_lr": self.lr, "lr": self.lr}]
            if body:
                groups.append({"params": body, "peak_lr": self.backbone_lr, "lr": self.backbone_lr})
        else:
            groups = [{"params": list(self.model.parameters()), "peak_lr": self.lr, "lr": self.lr}]
        return torch.optim.AdamW(groups, weight_decay=self.weight_decay)


def train_d3ke(model: D3KE | VideoD3KE, data: D3KEData, *, steps: int = 3000, batch_size: int = 32, lr: float = 1e-3,
               loss: dict | None = None, seed: int = 0, max_minutes: float = 15.0, accelerator: str = "cpu",
               backbone_lr: float | None = None, progress: bool | None = None) -> dict:  # fmt: skip
    """Train ``model`` on windows; returns ``{"train_seconds", "steps_done"}``. ``loss``: keyword arguments of
    :func:`~kinepose.models.vision.d3ke.d3ke_loss` (weights, betas). A :class:`D3KE` reads cached features, a
    :class:`VideoD3KE` frames (:func:`d3ke_frames`); ``backbone_lr`` is the latter's backbone learning rate (lower
    for fine-tuning ImageNet weights; default ``lr``).

    Raises:
        KineposeError: the windows are longer than the model's, or hold features where the model reads frames (or
            the other way round).
    """
    frames = data.features.dtype == torch.uint8
    if frames != isinstance(model, VideoD3KE):
        why = (
            "a D3KE reads features, the windows hold frames (use VideoD3KE)"
            if frames
            else ("a VideoD3KE reads frames (d3ke_frames), the windows hold features")
        )
        raise KineposeError(f"train_d3ke: {why}")
    if data.features.shape[1] > model.window:
        raise KineposeError(f"train_d3ke: windows of {data.features.shape[1]} frames, the model takes {model.window}")
    torch.manual_seed(seed)
    model.train()
    task = D3KETask(model, lr, steps, loss, max_seconds=60.0 * max_minutes, backbone_lr=backbone_lr)
    show = progress_enabled() if progress is None else progress
    trainer = L.Trainer(max_steps=steps, max_time={"minutes": max_minutes}, logger=False, enable_checkpointing=False,
                        enable_progress_bar=show, enable_model_summary=False, accelerator=accelerator, devices=1,
                        limit_val_batches=0, num_sanity_val_steps=0)  # fmt: skip
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # frozen BatchNorm layers stay in eval mode on purpose
        warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")
        trainer.fit(task, DataLoader(_Windows(data, batch_size, seed), batch_size=None))
    model.eval()
    return {"train_seconds": time.perf_counter() - t0, "steps_done": int(trainer.global_step)}


@torch.no_grad()
def predict_d3ke(model: D3KE, data: D3KEData, batch: int = 64) -> dict:
    """``{"joints", "markers", "local_rotmat"}`` of every window, stacked (V, T, ...)."""
    model.eval()
    dev = next(model.parameters()).device
    outs = [model(_inputs(data.features[a : a + batch]).to(dev)) for a in range(0, len(data), batch)]
    return {k: torch.cat([getattr(o, k).cpu() for o in outs]) for k in ("joints", "markers", "local_rotmat")}


def kinematics_errors(pred: dict, data: D3KEData, joints: list[int]) -> dict:
    """The benchmark's metrics, every frame of every window: ``angle_deg`` the mean geodesic error of the local
    rotations of ``joints``, ``mpjpe_mm`` and ``marker_mm`` root-relative position errors (the root subtracted from
    the prediction and the truth), ``root_orient_deg`` the root's rotation relative to the camera."""
    R = pred["local_rotmat"][:, :, joints]
    ang = torch.rad2deg(roma.rotmat_geodesic_distance(R, data.local_rotmat[:, :, joints]))
    root_ang = torch.rad2deg(roma.rotmat_geodesic_distance(pred["local_rotmat"][:, :, 0], data.local_rotmat[:, :, 0]))
    pj, tj = pred["joints"], data.joints
    mp = ((pj - pj[:, :, :1]) - (tj - tj[:, :, :1])).norm(dim=-1)
    mk = ((pred["markers"] - pj[:, :, :1]) - (data.markers - tj[:, :, :1])).norm(dim=-1)
    out = {"angle_deg": float(ang.mean()), "mpjpe_mm": 1000 * float(mp.mean()), "marker_mm": 1000 * float(mk.mean()),
           "root_orient_deg": float(root_ang.mean())}  # fmt: skip
    if not all(np.isfinite(v) for v in out.values()):
        raise KineposeError(f"kinematics_errors: non-finite metrics {out}")
    return out
