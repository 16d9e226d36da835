"""Training lifters (2D keypoints -> 3D joints): the recipe format, the Lightning task, run folders, evaluation.

A lifting recipe is a YAML file with ``task: lift`` (``kinepose train configs/body_lift_ours.yaml``); every key has
a default in :data:`LIFT_DEFAULTS`. A run folder holds::

    config.yaml     the resolved recipe
    lifter.pt       weights, normalization statistics and the constructor arguments (loads with weights_only)
    eval.json       the held-out clips, per noise condition: MPJPE, PA-MPJPE, bone-length std, acceleration error

Windows are drawn afresh every step (:func:`kinepose.data.lifting.sample_batch`): a random clip, frame and camera,
and detection-like noise, so an epoch is a number of steps, not a pass over a fixed set.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import tempfile
import time

import lightning as L
import torch
import yaml
from torch.utils.data import DataLoader, IterableDataset

from kinepose._atomic import atomic_write
from kinepose._progress import progress_enabled
from kinepose.config import merge_config
from kinepose.data.lifting import KeypointNoise, LiftClip, ViewedClip, lifting_split, normalization_stats, sample_batch
from kinepose.errors import KineposeError
from kinepose.geometry.camera_sampling import CameraRanges
from kinepose.models.lifting import Lifter, create_lifter
from kinepose.models.lifting.files import load_lifter, save_lifter
from kinepose.skeleton.presets import get_skeleton

__all__ = ["EVAL_CONDITIONS", "LIFT_DEFAULTS", "LiftTask", "evaluate_lifter", "load_lifter", "resolve_lift_config",
           "save_lifter", "train_lifter"]  # fmt: skip

LIFT_DEFAULTS: dict = {
    "task": "lift",
    "name": "lift",
    "seed": 0,
    "data": {
        "kind": "body",  # body (humanoid: DeepMimic + CMU + boxing) | hand (hand21: synthetic sequences)
        "train": ["backflip", "cartwheel", "crawl", "dance_a", "getup_facedown", "getup_faceup", "punch", "roll",
                  "spinkick", "cmu_01_01", "cmu_01_03"],
        "val": ["spin"],
        "test": ["walk", "run", "jump", "kick", "dance_b", "boxing"],
        "bvh_folder": "/usr/share/assimp/models/BVH",
        "hand_sequences": {"train": 160, "val": 8, "test": 24, "length": 120, "fps": 30.0},
        "cameras": {"yaw_deg": [-180.0, 180.0], "pitch_deg": [-10.0, 30.0], "distance_m": [3.0, 6.0],
                    "focal_px": [800.0, 1600.0], "image_size": [1000, 1000]},
        "noise": {"sigma_px": [0.0, 6.0], "joint_scale": "detector", "outlier_prob": 0.02, "outlier_px": 60.0,
                  "swap_prob": 0.005, "pair_swap_prob": 0.01, "missing_prob": 0.03},
        "views": 6,  # fixed test cameras per held-out clip
    },
    "model": {"name": "skeleton_lifter"},
    "loss": {"kind": "mpjpe", "w_bones": 0.0},  # mpjpe (VideoPose3D) | mse (masked MSE over visible joints)
    "optim": {"lr": 1e-3, "weight_decay": 0.0, "schedule": "cosine"},  # Adam
    "trainer": {"steps": 3000, "batch_size": 256, "max_minutes": 15.0, "threads": 0, "accelerator": "cpu",
                "devices": 1, "precision": "32-true"},
}  # fmt: skip

#: The noise conditions of every evaluation: name -> KeypointNoise keys.
EVAL_CONDITIONS: dict[str, dict] = {
    "clean": {},
    "2px": {"sigma_px": 2.0},
    "5px": {"sigma_px": 5.0},
    "5px+outliers": {"sigma_px": 5.0, "joint_scale": "detector", "outlier_prob": 0.05, "outlier_px": 60.0,
                     "swap_prob": 0.01, "pair_swap_prob": 0.01, "missing_prob": 0.05},
}  # fmt: skip


def resolve_lift_config(path: str | None = None, overrides=()) -> dict:
    """:data:`LIFT_DEFAULTS` <- the recipe file <- ``key=value`` overrides, checked (unknown keys name the file)."""
    cfg = merge_config(LIFT_DEFAULTS, path, overrides)
    if cfg["task"] != "lift":
        raise KineposeError(f"{path or 'config'}: task must be 'lift', got {cfg['task']!r}")
    if cfg["loss"]["kind"] not in ("mpjpe", "mse"):
        raise KineposeError(f"loss.kind: unknown {cfg['loss']['kind']!r}; use mpjpe or mse")
    CameraRanges.from_config(cfg["data"]["cameras"])  # fail before anything is written
    KeypointNoise.from_config(cfg["data"]["noise"])
    return cfg


def skeleton_of(cfg: dict):
    return get_skeleton("hand21" if cfg["data"]["kind"] == "hand" else "humanoid")


def build_lifter(cfg: dict) -> Lifter:
    model_cfg = dict(cfg["model"])
    return create_lifter(model_cfg.pop("name"), skeleton_of(cfg), **model_cfg)


class _Windows(IterableDataset):
    """Endless random training batches (the loader's batch_size is None: each item is a whole batch)."""

    def __init__(self, clips, window, target_index, cfg: dict) -> None:
        self.clips, self.window, self.target_index = clips, window, target_index
        self.cameras = CameraRanges.from_config(cfg["data"]["cameras"])
        self.noise = KeypointNoise.from_config(cfg["data"]["noise"])
        self.batch_size, self.seed = int(cfg["trainer"]["batch_size"]), int(cfg["seed"])

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + 1)
        while True:
            b = sample_batch(self.clips, self.batch_size, self.window, self.target_index, self.cameras, self.noise, g)
            yield {"keypoints": b.keypoints, "visibility": b.visibility, "target": b.target}


class LiftTask(L.LightningModule):
    """The loss and optimizer around a :class:`~kinepose.models.lifting.Lifter`."""

    def __init__(self, cfg: dict, model: Lifter) -> None:
        super().__init__()
        self.cfg, self.model = cfg, model

    def loss(self, batch: dict, out) -> torch.Tensor:
        kind = self.cfg["loss"]["kind"]
        t = self.model.target_index
        if "frames" in out.aux:  # lifters that predict every frame of the window are trained on all of them
            pred, target, vis = out.aux["frames"], batch["target"], batch["visibility"]
        else:
            pred, target, vis = out.joints, batch["target"][:, t], batch["visibility"][:, t]
        err = pred - target
        if kind == "mse":  # the notes' PoseTransformer: masked MSE over the visible joints
            w = vis[..., None]
            loss = (err.square() * w).sum() / (w.sum() * 3).clamp_min(1)
        else:
            loss = err.norm(dim=-1).mean()
        wb = float(self.cfg["loss"]["w_bones"])
        if wb > 0 and out.bone_lengths is not None:
            from kinepose.kinematics.fk import bone_lengths

            true = bone_lengths(self.model.skeleton, batch["target"][:, t])
            loss = loss + wb * (out.bone_lengths[:, 1:] - true[:, 1:]).abs().mean()
        return loss

    def training_step(self, batch, batch_idx):
        out = self.model(batch["keypoints"], batch["visibility"])
        loss = self.loss(batch, out)
        self.log("train/loss", loss, on_step=True, prog_bar=True, batch_size=batch["keypoints"].shape[0])
        return loss

    def configure_optimizers(self):
        o = self.cfg["optim"]
        opt = torch.optim.Adam(self.model.parameters(), lr=float(o["lr"]), weight_decay=float(o["weight_decay"]))
        if o["schedule"] != "cosine":
            return opt
        steps = max(1, int(self.cfg["trainer"]["steps"]))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=float(o["lr"]), total_steps=steps + 1,
                                                    pct_start=0.05)  # fmt: skip
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


@torch.no_grad()
def lift_viewed(model: Lifter, clips: list[ViewedClip], batch: bool = False) -> list[torch.Tensor]:
    """Each clip's (T, J, 3) prediction: one :meth:`Lifter.forward_sequence` call per clip, or with ``batch`` one
    per clip length (all views of a clip at once: what makes the 2D fit, run per clip batch, fast)."""
    model.eval()
    if not batch:
        return [model.forward_sequence(c.keypoints[None], c.visibility[None])[0] for c in clips]
    out: list = [None] * len(clips)
    by_length: dict[int, list[int]] = {}
    for i, c in enumerate(clips):
        by_length.setdefault(len(c.keypoints), []).append(i)
    for idx in by_length.values():
        kp = torch.stack([clips[i].keypoints for i in idx])
        pred = model.forward_sequence(kp, torch.stack([clips[i].visibility for i in idx]))
        for k, i in enumerate(idx):
            out[i] = pred[k]
    return out


@torch.no_grad()
def evaluate_lifter(model: Lifter, clips: list[ViewedClip], batch: bool = False) -> dict:
    """MPJPE and PA-MPJPE (mm, over all frames), bone-length std (mm: per clip and bone over time, averaged),
    acceleration error (mm/frame^2) and inference ms per frame, on viewed clips (``batch``: see
    :func:`lift_viewed`)."""
    from kinepose.kinematics.fk import bone_lengths
    from kinepose.metrics.positions import mpjpe, pa_mpjpe
    from kinepose.metrics.temporal import acceleration_error

    t0 = time.perf_counter()
    preds = lift_viewed(model, clips, batch)
    seconds = time.perf_counter() - t0
    pred, true = torch.cat(preds), torch.cat([c.target for c in clips])
    bone_std = [bone_lengths(model.skeleton, p)[:, 1:].std(0).mean() for p in preds]
    accel = [acceleration_error(p, c.target) for p, c in zip(preds, clips, strict=True) if len(p) > 2]
    frames = int(pred.shape[0])
    return {
        "mpjpe_mm": 1000 * float(mpjpe(pred, true)),
        "pa_mpjpe_mm": 1000 * float(pa_mpjpe(pred, true)),
        "bone_std_mm": 1000 * float(torch.stack(bone_std).mean()),
        "accel_mm": 1000 * float(torch.stack(accel).mean()) if accel else float("nan"),
        "ms_per_frame": 1000 * seconds / max(frames, 1),
        "frames": frames,
    }


def eval_views(cfg: dict, clips: list[LiftClip], seed: int = 12345) -> dict[str, list[ViewedClip]]:
    """The held-out clips seen by the recipe's fixed test cameras under every :data:`EVAL_CONDITIONS` noise."""
    from kinepose.data.lifting import view_clips

    cams = CameraRanges.from_config(cfg["data"]["cameras"])
    views = int(cfg["data"]["views"])
    return {k: view_clips(clips, cams, KeypointNoise.from_config(v), views, seed, noise_seed=seed + 1 + i)
            for i, (k, v) in enumerate(EVAL_CONDITIONS.items())}  # fmt: skip


def _is_lift_run(folder: str) -> bool:
    """A folder written by :func:`train_lifter`: its ``lifter.pt``, or a ``config.yaml`` with ``task: lift``."""
    if os.path.isfile(os.path.join(folder, "lifter.pt")):
        return True
    cfg = os.path.join(folder, "config.yaml")
    try:
        with open(cfg, encoding="utf-8") as f:
            return (yaml.safe_load(f) or {}).get("task") == "lift"
    except (OSError, yaml.YAMLError, AttributeError):
        return False


def _check_run_dir(out_dir: str, force: bool) -> None:
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise KineposeError(f"--out {out_dir}: exists and is not a folder")
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        if not _is_lift_run(out_dir):
            raise KineposeError(f"--out {out_dir}: a folder that holds other files (not a lifting run); use an empty "
                                "or new folder")  # fmt: skip
        if not force:
            raise KineposeError(f"--out {out_dir}: holds a lifting run; pass --force to replace it")


def train_lifter(cfg: dict, out_dir: str, force: bool = False, progress: bool | None = None) -> dict:
    """Train (or, for ``knn``, only fill the bank of) the recipe's lifter into ``out_dir`` (ours' optional pose bank
    is filled too); returns eval.json's content.

    Everything (recipe, data, folder) is checked before a file is written; an existing run is replaced only with
    ``force``."""
    cfg = copy.deepcopy(cfg)
    _check_run_dir(out_dir, force)
    model = build_lifter(cfg)  # bad model keys fail here, before any file
    train, _val, test = lifting_split(cfg["data"])
    if not train or not test:
        raise KineposeError("data: the training and test parts must each name at least one clip")
    torch.manual_seed(int(cfg["seed"]))
    threads = int(cfg["trainer"]["threads"])
    if threads > 0:
        torch.set_num_threads(threads)
    cams = CameraRanges.from_config(cfg["data"]["cameras"])
    g = torch.Generator().manual_seed(int(cfg["seed"]))
    stats = sample_batch(train, 8192, 1, 0, cams, KeypointNoise.from_config(cfg["data"]["noise"]), g)
    model.set_normalization(*normalization_stats(stats))
    t0 = time.perf_counter()
    steps_done = 0
    knn = model if model.family == "knn" else getattr(model, "bank", None)  # ours' optional pose bank
    if knn is not None:  # clean training views (the same ones a knn recipe with this seed and size gets)
        bank = sample_batch(train, knn.bank_2d.shape[0], 1, 0, cams, KeypointNoise(), g)
        knn.fit_bank(bank.keypoints[:, 0], bank.target[:, 0])
    if model.family != "knn":
        task = LiftTask(cfg, model)
        loader = DataLoader(_Windows(train, model.window, model.target_index, cfg), batch_size=None)
        show = progress_enabled() if progress is None else progress
        trainer = L.Trainer(
            max_steps=int(cfg["trainer"]["steps"]), max_time={"minutes": float(cfg["trainer"]["max_minutes"])},
            logger=False, enable_checkpointing=False, enable_progress_bar=show, enable_model_summary=False,
            accelerator=cfg["trainer"]["accelerator"], devices=cfg["trainer"]["devices"],
            precision=cfg["trainer"]["precision"], limit_val_batches=0, num_sanity_val_steps=0,
        )  # fmt: skip
        trainer.fit(task, loader)
        steps_done = int(trainer.global_step)
    train_seconds = time.perf_counter() - t0
    model.cpu().eval()
    results = {"train_seconds": train_seconds, "parameters": sum(p.numel() for p in model.parameters()),
               "steps_done": steps_done, "steps": int(cfg["trainer"]["steps"]),
               "family": model.family, "config": model.config(), "test": {}}  # fmt: skip
    fitted = getattr(model, "refine", None) is not None  # the 2D fit runs over all views of a clip at once
    for cond, views in eval_views(cfg, test).items():
        results["test"][cond] = evaluate_lifter(model, views, batch=fitted)
    # write the new run beside the old one, then swap: a failure leaves the old run as it was
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(out_dir))}.", dir=parent)
    try:
        save_lifter(os.path.join(tmp, "lifter.pt"), model, {"train_seconds": train_seconds})
        atomic_write(os.path.join(tmp, "config.yaml"), lambda f: yaml.safe_dump(cfg, f, sort_keys=False))
        atomic_write(os.path.join(tmp, "eval.json"), lambda f: json.dump(results, f, indent=1))
        if os.path.isdir(out_dir):
            old = tmp + ".old"
            os.replace(out_dir, old)  # checked above: a lifting run, replaced with force
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return results


def steps_per_minute_hint(seconds: float, steps: int) -> str:
    """'N steps/min' for logs."""
    return f"{steps / max(seconds, 1e-9) * 60:.0f} steps/min" if math.isfinite(seconds) else "?"
