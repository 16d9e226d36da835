"""Training runs: ``run_training(cfg, out_dir)`` is what ``kinepose train`` calls. A run folder holds::

    config.yaml        the resolved config (repeat the run with `kinepose train config.yaml`)
    model.pt           the best weights (by validation geodesic error), self-contained
    checkpoints/       Lightning checkpoints (best and last)
    logs/              CSV metrics (logs/csv/version_0/metrics.csv) and TensorBoard events
    eval.json          final evaluation on the held-out clips at 0 and 10 mm noise

Model files are written by :mod:`kinepose.models.files`.
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

from kinepose._atomic import atomic_write
from kinepose._progress import progress_enabled
from kinepose.data.datasets import normalization_stats
from kinepose.data.motion import Motion
from kinepose.errors import KineposeError
from kinepose.metrics.rotations import geodesic_error
from kinepose.models.base import PoseModel
from kinepose.training.datamodule import MotionDataModule
from kinepose.training.task import IKTask


def training_pose_prior(clips: list[Motion], mirror: bool = True):
    """Gaussian pose prior of the training clips' rotations (with their mirror images if ``mirror``)."""
    from kinepose.data.transforms import mirror_rotations
    from kinepose.kinematics.fitting import PosePrior

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

    from kinepose.models.files import save_model

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
