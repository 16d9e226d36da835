"""Training runs: ``run_training(cfg, out_dir)`` is what ``kinepose train`` calls. A run folder holds::

    config.yaml        the resolved config (repeat the run with `kinepose train config.yaml`)
    model.pt           the best weights (by validation geodesic error), self-contained
    checkpoints/       Lightning checkpoints: best.ckpt, and last.ckpt after every epoch (what --resume continues)
    logs/              CSV metrics (logs/csv/version_0/metrics.csv) and TensorBoard events
    eval.json          final evaluation on the held-out clips at 0 and 10 mm noise

The whole config, and the run folder, are checked before any file is written or removed; a folder that holds a
run (``model.pt`` or ``checkpoints/``) is replaced only with ``force``. Model files are written by
:mod:`kinepose.models.files`.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import signal
import threading
import time
import warnings
from dataclasses import dataclass

import lightning as L
import torch
import yaml
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Callback

from kinepose._atomic import atomic_write
from kinepose._progress import progress_enabled
from kinepose.data.datasets import normalization_stats
from kinepose.data.motion import Motion
from kinepose.errors import KineposeError
from kinepose.metrics.rotations import geodesic_error
from kinepose.models.base import PoseModel
from kinepose.training.datamodule import MotionDataModule
from kinepose.training.resume import _carry_csv_rows, _checkpoint_epoch, _LastCheckpoint, _latest_version
from kinepose.training.task import IKTask, build_model, check_task_config

LAST_CHECKPOINT = os.path.join("checkpoints", "last.ckpt")


LOGGERS = ("csv", "tensorboard", "wandb")


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


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_training`. The run folder keeps its last checkpoint (``resume=True`` goes on)."""

    def __init__(self, run_dir: str) -> None:
        super().__init__(run_dir)
        self.run_dir = run_dir


def check_run_name(name: str) -> None:
    """A run's ``name`` is the folder ``runs/<name>``: it must be one plain folder name, never a way out of runs/.

    Raises:
        KineposeError: an empty name, ``.``/``..``, an absolute path or a path separator, naming the key.
    """
    bad = not name or name in (".", "..") or os.path.isabs(name) or "\0" in name
    if bad or any(sep in name for sep in {"/", "\\", os.sep, os.altsep or "/"}):
        raise KineposeError(f"config key 'name': {name!r} is not a plain folder name (it names runs/<name>: no "
                            f"'/', '\\', '..' or absolute path); pick the run folder with --out instead")  # fmt: skip


def check_config(cfg: dict) -> None:
    """Check everything a run reads from a resolved config before a file is touched: the run name, the data set,
    the model (built once and dropped), the loss, optimizer and schedule names and the logger names.

    Raises:
        KineposeError: naming the first bad key.
    """
    check_run_name(cfg["name"])
    check_task_config(cfg)
    build_model(cfg)  # the data source, the model family, its keys and their values
    for name in cfg["trainer"]["loggers"] or []:
        if name not in LOGGERS:
            raise KineposeError(f"trainer.loggers: unknown logger {name!r}; use csv, tensorboard or wandb")


def check_run_folder(run_dir: str, force: bool = False, resume: bool = False) -> None:
    """Refuse to replace a run that ``run_dir`` holds (``model.pt`` or ``checkpoints/``) unless ``force``; with
    ``resume``, require an unfinished run with a last checkpoint.

    Raises:
        KineposeError: saying what the folder holds and the ways on (--resume, --out, --force, evaluate).
    """
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise KineposeError(f"run folder {run_dir} exists and is not a folder")
    finished = os.path.exists(os.path.join(run_dir, "model.pt"))
    started = os.path.exists(os.path.join(run_dir, "checkpoints"))
    if resume:
        if finished:
            cfg_path = os.path.join(run_dir, "config.yaml")
            raise KineposeError(f"--resume {run_dir}: this run has finished (model.pt is there); score it with "
                                f"`kinepose evaluate {run_dir}`, or train it again with "
                                f"`kinepose train {cfg_path} --out {run_dir} --force`")  # fmt: skip
        if not os.path.isfile(os.path.join(run_dir, LAST_CHECKPOINT)):
            raise KineposeError(f"--resume {run_dir}: nothing to resume (no {LAST_CHECKPOINT}: the run stopped "
                                f"before its first epoch ended); start it again without --resume")  # fmt: skip
        return
    if (finished or started) and not force:
        if finished:
            what, resume_hint = "a finished run (model.pt)", ""
        else:
            what, resume_hint = "an unfinished run (checkpoints/, no model.pt)", f"resume it with --resume {run_dir}, "
        raise KineposeError(f"{run_dir} already holds {what}, and it is kept: {resume_hint}train into a new folder "
                            f"with --out DIR, or replace it with --force")  # fmt: skip


def _prepare_run_folder(run_dir: str, cfg: dict) -> None:
    """Remove what belongs to an earlier run (checked, and allowed, by :func:`check_run_folder`); write config.yaml."""
    os.makedirs(run_dir, exist_ok=True)
    for stale in ("model.pt", "eval.json", "checkpoints"):  # never pair a new config with an old model
        path = os.path.join(run_dir, stale)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
    atomic_write(os.path.join(run_dir, "config.yaml"), lambda f: yaml.safe_dump(cfg, f, sort_keys=False))


def _is_rank_zero() -> bool:
    """Whether this is the process that owns the run folder (the first of a multi-process run)."""
    return int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0


def _loggers(cfg: dict, run_dir: str, resume_epoch: int | None = None) -> list:
    """The configured loggers; when resuming (from a checkpoint written at the start of epoch ``resume_epoch``),
    they continue the run's latest logs."""
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    logs = os.path.join(run_dir, "logs")
    out = []
    for name in cfg["trainer"]["loggers"] or []:
        if name == "csv":
            version = _latest_version(os.path.join(logs, "csv")) if resume_epoch is not None else None
            logger = CSVLogger(logs, name="csv", version=version)
            if version is not None and _is_rank_zero():
                _carry_csv_rows(logger, resume_epoch)
            out.append(logger)
        elif name == "tensorboard":
            version = _latest_version(os.path.join(logs, "tensorboard")) if resume_epoch is not None else None
            try:
                out.append(TensorBoardLogger(logs, name="tensorboard", version=version))
            except ModuleNotFoundError:  # tensorboard is optional
                pass
        elif name == "wandb":
            from lightning.pytorch.loggers import WandbLogger  # optional: needs `pip install wandb`

            out.append(WandbLogger(project="kinepose", name=cfg["name"], save_dir=run_dir))
        else:
            raise KineposeError(f"trainer.loggers: unknown logger {name!r}; use csv, tensorboard or wandb")
    return out


class _NoteInterrupt(Callback):
    """Notes a Ctrl-C: Lightning 2.6 catches the KeyboardInterrupt and raises ``SystemExit(1)`` instead."""

    def __init__(self) -> None:
        self.keyboard_interrupt = False

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.keyboard_interrupt = isinstance(exception, KeyboardInterrupt)


class _DropInterruptNotice(logging.Filter):
    """Drops Lightning's "Detected KeyboardInterrupt, attempting graceful shutdown" line: the caller says how to
    resume instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Detected KeyboardInterrupt" not in record.getMessage()


# lightning_utilities logs rank-zero messages to whichever of these two its module attribute was last set to
_RANK_ZERO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


def _fit(trainer: L.Trainer, task: IKTask, dm: MotionDataModule, ckpt_path: str | None, run_dir: str) -> None:
    """``trainer.fit``, with Ctrl-C raised as :class:`TrainingInterrupted` and the SIGINT handler left as it was."""
    note = _NoteInterrupt()
    trainer.callbacks.append(note)
    main_thread = threading.current_thread() is threading.main_thread()
    sigint = signal.getsignal(signal.SIGINT) if main_thread else None
    notice = _DropInterruptNotice()
    for name in _RANK_ZERO_LOGGERS:
        logging.getLogger(name).addFilter(notice)
    try:
        with warnings.catch_warnings():
            if ckpt_path is not None:  # resuming: of course the checkpoint folder is not empty
                warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")
            # weights_only: the checkpoint is read as plain data and tensors, never unpickled code
            trainer.fit(task, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
    except SystemExit:
        if note.keyboard_interrupt:
            raise TrainingInterrupted(run_dir) from None
        raise
    finally:
        for name in _RANK_ZERO_LOGGERS:
            logging.getLogger(name).removeFilter(notice)
        if main_thread and sigint is not None:  # Lightning ignores SIGINT from a first Ctrl-C on, for good
            signal.signal(signal.SIGINT, sigint)
        trainer.callbacks.remove(note)


def run_training(
    cfg: dict, run_dir: str, enable_checkpointing: bool = True, force: bool = False, resume: bool = False
) -> RunResult:
    """Train the model a resolved config describes; write the run folder; return the best model.

    The whole config, the data split and the run folder are checked before any file is written or removed.

    Args:
        cfg: a resolved config (:func:`kinepose.config.resolve_config`).
        run_dir: the run folder.
        enable_checkpointing: write ``checkpoints/`` (best.ckpt, last.ckpt); a run without them cannot resume.
        force: replace the run that ``run_dir`` holds (``model.pt`` or ``checkpoints/``); refused otherwise.
        resume: continue the unfinished run in ``run_dir`` from ``checkpoints/last.ckpt``; ``cfg`` must be its
            ``config.yaml``. With a fixed seed the result is that of an uninterrupted run.

    Raises:
        KineposeError: a bad config, or a run folder that would be replaced (see ``force``) or cannot be resumed.
        TrainingInterrupted: Ctrl-C during training; the last checkpoint stays for ``resume``.
    """
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from kinepose.models.files import save_model

    if resume and (force or not enable_checkpointing):
        raise KineposeError("resume continues a run from its checkpoints: not with force or without checkpointing")
    check_config(cfg)
    rank_zero = _is_rank_zero()
    if rank_zero:
        check_run_folder(run_dir, force=force, resume=resume)
    last_path = os.path.join(run_dir, LAST_CHECKPOINT)
    resume_epoch = _checkpoint_epoch(last_path) if resume else None
    tr = cfg["trainer"]
    if tr["threads"]:
        torch.set_num_threads(int(tr["threads"]))
    L.seed_everything(int(cfg["seed"]), workers=True, verbose=False)
    task = IKTask(cfg)
    dm = MotionDataModule(cfg, task.model.window, task.model.target_index)
    mean, std = normalization_stats(dm.train_set, task.augment, seed=int(cfg["seed"]))
    task.model.set_normalization(mean, std)
    if hasattr(task.model, "set_pose_prior"):
        task.model.set_pose_prior(training_pose_prior(dm.train_clips, mirror=task.augment.mirror))

    callbacks = [EarlyStopping(monitor="val/geo_deg", mode="min", patience=int(tr["patience"]))]
    ckpt = last = None
    if enable_checkpointing:
        ckpt = ModelCheckpoint(dirpath=os.path.join(run_dir, "checkpoints"), monitor="val/geo_deg", mode="min",
                               filename="best")  # fmt: skip
        last = _LastCheckpoint(last_path)
        callbacks += [ckpt, last]  # best.ckpt by validation error; last.ckpt, what a resume continues from
    try:  # Lightning checks accelerator, devices, strategy and precision here: before the run folder changes
        trainer = L.Trainer(
            max_epochs=int(tr["max_epochs"]),
            accelerator=tr["accelerator"],
            devices=tr["devices"],
            strategy=tr["strategy"],
            precision=tr["precision"],
            log_every_n_steps=int(tr["log_every_n_steps"]),
            logger=_loggers(cfg, run_dir, resume_epoch) or False,
            enable_progress_bar=progress_enabled(bool(tr["progress_bar"])),
            enable_model_summary=False,
            enable_checkpointing=enable_checkpointing,
            callbacks=callbacks,
            deterministic=bool(tr["deterministic"]),
            num_sanity_val_steps=0,
        )
    except KineposeError:
        raise
    except (MisconfigurationException, ImportError, ValueError, RuntimeError) as exc:
        keys = "trainer.accelerator, trainer.devices, trainer.strategy or trainer.precision"
        raise KineposeError(f"{keys}: Lightning refuses the setting ({type(exc).__name__}: {exc})") from exc
    if rank_zero and not resume:
        _prepare_run_folder(run_dir, cfg)  # only now: a bad config, data split or trainer setting changed nothing
    t0 = time.perf_counter()
    _fit(trainer, task, dm, last_path if resume else None, run_dir)
    seconds = last.seconds if last is not None else time.perf_counter() - t0
    if ckpt is not None and ckpt.best_model_path and trainer.is_global_zero:
        best = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=True)
        task.load_state_dict(best["state_dict"])
    best_geo = float(ckpt.best_model_score) if ckpt is not None and ckpt.best_model_score is not None else math.nan
    model = task.model.cpu().eval()
    selection = select_residual_joints(model, dm.val_clips) if trainer.is_global_zero else {}
    if trainer.is_global_zero and selection and ckpt is not None:
        _patch_checkpoints([ckpt.best_model_path, last_path], model)
    if trainer.is_global_zero:
        save_model(os.path.join(run_dir, "model.pt"), model,
                   extra={"config": cfg, "train_seconds": seconds, "epochs": trainer.current_epoch,
                          "residual_selection": selection, "best_val_geo_deg": best_geo})  # fmt: skip
    return RunResult(run_dir, model, seconds, best_geo, int(trainer.current_epoch), selection, trainer.is_global_zero)


def _patch_checkpoints(paths: list[str], model: PoseModel) -> None:
    """Write the residual mask chosen after training into the Lightning checkpoints, so that loading a
    ``.ckpt`` gives the same model as ``model.pt``."""
    for path in set(paths) - {""}:
        if os.path.exists(path):
            data = torch.load(path, map_location="cpu", weights_only=True)
            data["state_dict"]["model.residual_mask"] = model.residual_mask.detach().cpu().clone()
            atomic_write(path, lambda f, d=data: torch.save(d, f), binary=True)


def seconds_to_text(s: float) -> str:
    return f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s"
