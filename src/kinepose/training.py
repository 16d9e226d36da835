"""Training with Lightning: the task (losses, metrics, optimizers), the data module, and a run folder.

``run_training(cfg, out_dir)`` is what ``kinepose train`` calls. A run folder holds::

    config.yaml        the resolved config (repeat the run with `kinepose train config.yaml`)
    model.pt           the best weights (by validation geodesic error), self-contained
    checkpoints/       Lightning checkpoints (best and last)
    logs/              CSV metrics (logs/csv/version_0/metrics.csv) and TensorBoard events
    eval.json          final evaluation on the held-out clips at 0 and 10 mm noise
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass

import lightning as L
import torch
import yaml
from torch.utils.data import DataLoader

from kinepose._atomic import atomic_write
from kinepose._progress import progress_enabled
from kinepose.data.datasets import AugmentConfig, WindowDataset, augment_batch, normalization_stats
from kinepose.data.motion import Motion
from kinepose.errors import KineposeError
from kinepose.kinematics import forward_kinematics_matrix
from kinepose.losses import ROTATION_LOSSES, fk_position_loss, rotation_loss
from kinepose.metrics import geodesic_error
from kinepose.models import PoseModel, create_model
from kinepose.rotations import quat_to_matrix
from kinepose.skeletons import get_skeleton

__all__ = [
    "IKTask",
    "MotionDataModule",
    "RunResult",
    "load_split",
    "run_training",
    "seconds_to_text",
    "select_residual_joints",
    "training_pose_prior",
]


# ------------------------------------------------------------------------------------------------ data


def load_split(cfg: dict) -> tuple[list[Motion], list[Motion], list[Motion]]:
    """(train, val, test) clips for the config's dataset; clip-level, never overlapping."""
    data = cfg["data"]
    if data["dataset"] == "deepmimic":
        from kinepose.data.deepmimic import DEEPMIMIC_CLIPS, load_deepmimic

        held = set(data["eval_clips"]) | set(data["val_clips"])
        for c in held:
            if c not in DEEPMIMIC_CLIPS:
                raise KineposeError(f"data: unknown DeepMimic clip {c!r}; clips: {', '.join(DEEPMIMIC_CLIPS)}")
        if set(data["eval_clips"]) & set(data["val_clips"]):
            raise KineposeError("data: eval_clips and val_clips overlap")
        train = [load_deepmimic(c) for c in DEEPMIMIC_CLIPS if c not in held]
        if not train:
            raise KineposeError("data: no training clips left after removing eval_clips and val_clips")
        return train, [load_deepmimic(c) for c in data["val_clips"]], [load_deepmimic(c) for c in data["eval_clips"]]
    if data["dataset"] == "synthetic_hand":
        from kinepose.data.synthetic_hand import sample_hand_sequences

        hs = data["hand_sequences"]
        seed = int(cfg["seed"])

        def make(n: int, offset: int) -> list[Motion]:
            g = torch.Generator().manual_seed(seed * 1000 + offset)
            clips = sample_hand_sequences(int(n), int(hs["length"]), fps=float(hs["fps"]), generator=g)
            for i, m in enumerate(clips):
                m.name = f"hand{offset}_{i:03d}"
            return clips

        # Test sequences use a fixed seed independent of the run's, so every run is judged on the same data.
        test_g = torch.Generator().manual_seed(987654)
        test = sample_hand_sequences(int(hs["test"]), int(hs["length"]), fps=float(hs["fps"]), generator=test_g)
        for i, m in enumerate(test):
            m.name = f"hand_test_{i:03d}"
        return make(hs["train"], 1), make(hs["val"], 2), test
    raise KineposeError(f"data.dataset: unknown dataset {data['dataset']!r}; use deepmimic or synthetic_hand")


class MotionDataModule(L.LightningDataModule):
    """Frame windows over the training and validation clips of a config."""

    def __init__(self, cfg: dict, window: int, target_index: int) -> None:
        super().__init__()
        self.cfg, self.window, self.target_index = cfg, window, target_index
        self.train_clips, self.val_clips, self.test_clips = load_split(cfg)
        data = cfg["data"]
        self.train_set = WindowDataset(self.train_clips, window, target_index, data["samples_per_epoch"])
        self.val_set = WindowDataset(self.val_clips, window, target_index)

    def train_dataloader(self) -> DataLoader:
        d = self.cfg["data"]
        return DataLoader(self.train_set, batch_size=d["batch_size"], shuffle=True, drop_last=True,
                          num_workers=d["num_workers"], persistent_workers=d["num_workers"] > 0)  # fmt: skip

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=1024, shuffle=False, num_workers=0)


# ------------------------------------------------------------------------------------------------ task


class IKTask(L.LightningModule):
    """Losses, metrics and optimizers around a :class:`~kinepose.models.PoseModel`."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.save_hyperparameters({"cfg": cfg})
        self.cfg = cfg
        model_cfg = dict(cfg["model"])
        name = model_cfg.pop("name")
        skeleton = get_skeleton("hand21" if cfg["data"]["dataset"] == "synthetic_hand" else "humanoid")
        self.model: PoseModel = create_model(name, skeleton, **model_cfg)
        self.augment = AugmentConfig.from_config(cfg["data"])
        loss = cfg["loss"]
        if loss["rotation"] not in ROTATION_LOSSES:  # fail before training, not at the first step
            raise KineposeError(f"loss.rotation: unknown {loss['rotation']!r}; use {' or '.join(ROTATION_LOSSES)}")
        if cfg["optim"]["name"] not in ("adam", "rmsprop"):
            raise KineposeError(f"optim.name: unknown optimizer {cfg['optim']['name']!r}; use adam or rmsprop")
        if cfg["optim"]["schedule"] not in ("cosine", "step", "none"):
            raise KineposeError(f"optim.schedule: unknown {cfg['optim']['schedule']!r}; use cosine, step or none")
        self.rot_idx = list(skeleton.rotated_joints)

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


# ------------------------------------------------------------------------------------------------ selection


def training_pose_prior(clips: list[Motion], mirror: bool = True):
    """Gaussian pose prior of the training clips' rotations (with their mirror images if ``mirror``)."""
    from kinepose.data.transforms import mirror_rotations
    from kinepose.fitting import PosePrior

    q = torch.cat([m.local_quat for m in clips])
    sk = clips[0].skeleton
    if mirror and sk.left_right:
        q = torch.cat([q, mirror_rotations(sk, q)])
    return PosePrior.from_rotations(q)


@torch.no_grad()
def select_residual_joints(
    model: PoseModel,
    clips: list[Motion],
    noise_mm: tuple[float, ...] = (0.0, 10.0),
    min_gain_deg: float = 0.2,
    min_gain_rel: float = 0.03,
) -> dict:
    """For hybrid models: keep the learned residual only on joints where it clearly beats the geometric
    solution on the validation clips (mean geodesic error over ``noise_mm`` levels lower by at least
    ``min_gain_deg`` and ``min_gain_rel``); switch it off elsewhere. Validation clips are few, so a small
    win there is not trusted to carry over."""
    from kinepose.inference import predict_clip

    if not hasattr(model, "residual_mask") or not getattr(model, "use_residual", False):
        return {}
    model.eval()
    rot = list(model.skeleton.rotated_joints)
    model.residual_mask.fill_(1.0)
    with_res, without = [], []
    g = torch.Generator().manual_seed(4242)
    for m in clips:
        x = m.positions().float()
        for nz in noise_mm:
            noisy = x + (nz / 1000.0) * torch.randn(x.shape, generator=g)
            model.residual_mask.fill_(1.0)
            q1, _ = predict_clip(model, noisy)
            model.residual_mask.fill_(0.0)
            q0, _ = predict_clip(model, noisy)
            true = m.local_quat.float()
            with_res.append(geodesic_error(q1[:, rot], true[:, rot], degrees=True))
            without.append(geodesic_error(q0[:, rot], true[:, rot], degrees=True))
    a, b = torch.cat(with_res).mean(0), torch.cat(without).mean(0)
    keep = ((b - a >= min_gain_deg) & (b - a >= min_gain_rel * b)).float()
    model.residual_mask.copy_(keep)
    names = [model.skeleton.joint_names[j] for j in rot]
    return {n: {"with_residual_deg": float(x), "geometric_deg": float(y), "kept": bool(k)}
            for n, x, y, k in zip(names, a, b, keep, strict=True)}  # fmt: skip


# ------------------------------------------------------------------------------------------------ runs


@dataclass
class RunResult:
    run_dir: str
    model: PoseModel
    train_seconds: float
    best_val_geo_deg: float
    epochs: int
    residual_selection: dict
    is_global_zero: bool = True  # False in the other processes of a multi-process (DDP) run


def _loggers(cfg: dict, run_dir: str) -> list:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    out = []
    for name in cfg["trainer"]["loggers"] or []:
        if name == "csv":
            out.append(CSVLogger(os.path.join(run_dir, "logs"), name="csv"))
        elif name == "tensorboard":
            try:
                out.append(TensorBoardLogger(os.path.join(run_dir, "logs"), name="tensorboard"))
            except ModuleNotFoundError:  # tensorboard is optional
                pass
        elif name == "wandb":
            from lightning.pytorch.loggers import WandbLogger  # optional: needs `pip install wandb`

            out.append(WandbLogger(project="kinepose", name=cfg["name"], save_dir=run_dir))
        else:
            raise KineposeError(f"trainer.loggers: unknown logger {name!r}; use csv, tensorboard or wandb")
    return out


def run_training(cfg: dict, run_dir: str, enable_checkpointing: bool = True) -> RunResult:
    """Train the model a resolved config describes; write the run folder; return the best model."""
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from kinepose.inference import save_model

    tr = cfg["trainer"]
    if tr["threads"]:
        torch.set_num_threads(int(tr["threads"]))
    L.seed_everything(int(cfg["seed"]), workers=True, verbose=False)
    if int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0:
        os.makedirs(run_dir, exist_ok=True)
        for stale in ("model.pt", "eval.json", "checkpoints"):  # never pair a new config with an old model
            path = os.path.join(run_dir, stale)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
        atomic_write(os.path.join(run_dir, "config.yaml"), lambda f: yaml.safe_dump(cfg, f, sort_keys=False))

    task = IKTask(cfg)
    dm = MotionDataModule(cfg, task.model.window, task.model.target_index)
    mean, std = normalization_stats(dm.train_set, task.augment, seed=int(cfg["seed"]))
    task.model.set_normalization(mean, std)
    if hasattr(task.model, "set_pose_prior"):
        task.model.set_pose_prior(training_pose_prior(dm.train_clips, mirror=task.augment.mirror))

    callbacks = [EarlyStopping(monitor="val/geo_deg", mode="min", patience=int(tr["patience"]))]
    ckpt = None
    if enable_checkpointing:
        ckpt = ModelCheckpoint(dirpath=os.path.join(run_dir, "checkpoints"), monitor="val/geo_deg", mode="min",
                               save_last=True, filename="best")  # fmt: skip
        callbacks.append(ckpt)
    trainer = L.Trainer(
        max_epochs=int(tr["max_epochs"]),
        accelerator=tr["accelerator"],
        devices=tr["devices"],
        strategy=tr["strategy"],
        precision=tr["precision"],
        log_every_n_steps=int(tr["log_every_n_steps"]),
        logger=_loggers(cfg, run_dir) or False,
        enable_progress_bar=progress_enabled(bool(tr["progress_bar"])),
        enable_model_summary=False,
        enable_checkpointing=enable_checkpointing,
        callbacks=callbacks,
        deterministic=bool(tr["deterministic"]),
        num_sanity_val_steps=0,
    )
    t0 = time.perf_counter()
    trainer.fit(task, datamodule=dm)
    seconds = time.perf_counter() - t0
    if ckpt is not None and ckpt.best_model_path and trainer.is_global_zero:
        best = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=False)
        task.load_state_dict(best["state_dict"])
    best_geo = float(ckpt.best_model_score) if ckpt is not None and ckpt.best_model_score is not None else math.nan
    model = task.model.cpu().eval()
    selection = select_residual_joints(model, dm.val_clips) if trainer.is_global_zero else {}
    if trainer.is_global_zero and selection and ckpt is not None:
        _patch_checkpoints(ckpt, model)
    if trainer.is_global_zero:
        save_model(os.path.join(run_dir, "model.pt"), model,
                   extra={"config": cfg, "train_seconds": seconds, "epochs": trainer.current_epoch,
                          "residual_selection": selection, "best_val_geo_deg": best_geo})  # fmt: skip
    return RunResult(run_dir, model, seconds, best_geo, int(trainer.current_epoch), selection, trainer.is_global_zero)


def _patch_checkpoints(ckpt, model: PoseModel) -> None:
    """Write the residual mask chosen after training into the Lightning checkpoints, so that loading a
    ``.ckpt`` gives the same model as ``model.pt``."""
    for path in {ckpt.best_model_path, ckpt.last_model_path} - {""}:
        if os.path.exists(path):
            data = torch.load(path, map_location="cpu", weights_only=False)
            data["state_dict"]["model.residual_mask"] = model.residual_mask.detach().cpu().clone()
            atomic_write(path, lambda f, d=data: torch.save(d, f), binary=True)


def seconds_to_text(s: float) -> str:
    return f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s"
