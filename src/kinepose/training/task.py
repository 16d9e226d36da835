"""The Lightning task: losses, metrics and optimizers around a :class:`~kinepose.models.PoseModel`.

Its checkpoints carry the random number generators' states too, so that a resumed run draws the same batches,
augmentations and dropout masks as one that was never interrupted.
"""

from __future__ import annotations

import random

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn

from kinepose.data.datasets import AugmentConfig, augment_batch
from kinepose.data.sources import source_skeleton
from kinepose.errors import KineposeError
from kinepose.geometry.rotations import quat_to_matrix
from kinepose.kinematics.fk import forward_kinematics_matrix
from kinepose.metrics.rotations import geodesic_error
from kinepose.models.base import PoseModel
from kinepose.models.losses import ROTATION_LOSSES, fk_position_loss, rotation_loss
from kinepose.models.registry import create_model

RNG_KEY = "kinepose_rng"  # where a checkpoint keeps the random generators' states


def build_model(cfg: dict) -> PoseModel:
    """The model of a config: ``model.name`` with the other ``model`` keys, on the data source's skeleton (its preset,
    or for file sources the skeleton of the recipe's first training file).

    Raises:
        KineposeError: an unknown data set, model family, model key or value.
    """
    model_cfg = dict(cfg["model"])
    name = model_cfg.pop("name")
    skeleton = source_skeleton(cfg)  # a preset, or for the bvh / npz sources that of the recipe's files
    return create_model(name, skeleton, **model_cfg)


def check_task_config(cfg: dict) -> None:
    """Check the loss, optimizer and schedule names of a config (the model is checked by :func:`build_model`).

    Raises:
        KineposeError: naming the bad key.
    """
    loss = cfg["loss"]
    if loss["rotation"] not in ROTATION_LOSSES:  # fail before training, not at the first step
        raise KineposeError(f"loss.rotation: unknown {loss['rotation']!r}; use {' or '.join(ROTATION_LOSSES)}")
    if cfg["optim"]["name"] not in ("adam", "rmsprop"):
        raise KineposeError(f"optim.name: unknown optimizer {cfg['optim']['name']!r}; use adam or rmsprop")
    if cfg["optim"]["schedule"] not in ("cosine", "step", "none"):
        raise KineposeError(f"optim.schedule: unknown {cfg['optim']['schedule']!r}; use cosine, step or none")


def rng_state() -> dict:
    """Torch's CPU generator and Python's ``random`` as plain data (a uint8 tensor and lists): a checkpoint that holds
    them still loads with ``torch.load(weights_only=True)``. Numpy's generator is not used in training."""
    version, state, gauss = random.getstate()
    return {"torch": torch.get_rng_state(), "python": [version, list(state), gauss]}


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    version, values, gauss = state["python"]
    random.setstate((version, tuple(values), gauss))


class IKTask(L.LightningModule):
    """Losses, metrics and optimizers around a :class:`~kinepose.models.PoseModel`."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.save_hyperparameters({"cfg": cfg})
        self.cfg = cfg
        check_task_config(cfg)
        self.model: PoseModel = build_model(cfg)
        self.augment = AugmentConfig.from_config(cfg["data"])
        self.rot_idx = list(self.model.skeleton.rotated_joints)

    @property
    def skeleton(self):
        return self.model.skeleton

    def forward(self, joints, visibility=None):
        return self.model(joints, visibility)

    def _losses(self, batch, out) -> dict[str, torch.Tensor]:
        lc = self.cfg["loss"]
        sk = self.skeleton
        losses = {"rot": rotation_loss(lc["rotation"], out.local_quat[:, self.rot_idx], batch.quat[:, self.rot_idx])}
        if lc["w_fk"] > 0:
            offsets = None
            if not torch.all(batch.scale == 1):
                offsets = sk.offsets_tensor(batch.joints.dtype, batch.joints.device) * batch.scale[:, None, None]
            losses["fk"] = fk_position_loss(sk, out.local_quat, out.root_pos, batch.target, offsets)
        if out.joints is not None and lc["w_pos"] > 0:
            err = ((out.joints - batch.target) * 10.0).square().sum(-1)  # (B, J)
            if batch.visibility is not None:  # a hidden joint's position is not asked for
                vis = batch.visibility[:, self.model.target_index]
                losses["pos"] = (err * vis).sum() / vis.sum().clamp_min(1)
            else:
                losses["pos"] = err.mean()
        total = lc["w_rot"] * losses["rot"] + lc["w_fk"] * losses.get("fk", 0.0) + lc["w_pos"] * losses.get("pos", 0.0)
        losses["total"] = total
        return losses

    def training_step(self, raw, batch_idx):
        batch = augment_batch(self.skeleton, raw, self.model.target_index, self.augment)
        out = self.model(batch.joints, batch.visibility)
        losses = self._losses(batch, out)
        for k, v in losses.items():
            self.log(f"train/{k}", v, on_step=False, on_epoch=True, prog_bar=k == "total", sync_dist=True)
        with torch.no_grad():  # the same metrics as validation, for train-vs-validation curves
            geo, mpjpe = self._metrics(batch, out)
        n = batch.joints.shape[0]
        self.log("train/geo_deg", geo, batch_size=n, on_step=False, on_epoch=True, sync_dist=True)
        self.log("train/mpjpe_mm", mpjpe, batch_size=n, on_step=False, on_epoch=True, sync_dist=True)
        return losses["total"]

    def _metrics(self, batch, out) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean geodesic error (deg) of the rotated joints and MPJPE (mm) of FK(output) against the target."""
        geo = geodesic_error(out.local_quat[:, self.rot_idx], batch.quat[:, self.rot_idx], degrees=True).mean()
        pos = forward_kinematics_matrix(self.skeleton, quat_to_matrix(out.local_quat), out.root_pos).positions
        return geo, 1000.0 * (pos - batch.target).norm(dim=-1).mean()

    def validation_step(self, raw, batch_idx):
        g = torch.Generator().manual_seed(10_000 + batch_idx)
        batch = augment_batch(self.skeleton, raw, self.model.target_index, self.augment, generator=g,
                              noise_mm=float(self.cfg["data"]["val_noise_mm"]))  # fmt: skip
        out = self.model(batch.joints, batch.visibility)
        losses = self._losses(batch, out)
        geo, mpjpe = self._metrics(batch, out)
        n = batch.joints.shape[0]
        self.log("val/loss", losses["total"], batch_size=n, sync_dist=True)
        self.log("val/geo_deg", geo, batch_size=n, prog_bar=True, sync_dist=True)
        self.log("val/mpjpe_mm", mpjpe, batch_size=n, prog_bar=True, sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # last.ckpt is written at an epoch's start, before its shuffle, augmentation and dropout draw anything:
        # resuming from this state repeats them exactly
        checkpoint[RNG_KEY] = rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # only when the trainer resumes a fit: loading weights for inference must not reseed the caller's generators
        trainer = self._trainer
        if RNG_KEY in checkpoint and trainer is not None and trainer.state.fn == TrainerFn.FITTING:
            set_rng_state(checkpoint[RNG_KEY])

    def configure_optimizers(self):
        o = self.cfg["optim"]
        cls = torch.optim.Adam if o["name"] == "adam" else torch.optim.RMSprop
        opt = cls(self.model.parameters(), lr=float(o["lr"]), weight_decay=float(o["weight_decay"]))
        if o["schedule"] == "none":
            return opt
        if o["schedule"] == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(
                opt, T_max=max(1, int(self.cfg["trainer"]["max_epochs"]))
            )
        else:
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=int(o["step_size"]), gamma=float(o["gamma"]))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
