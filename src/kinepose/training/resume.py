"""What makes a run resumable: ``checkpoints/last.ckpt`` after every epoch (:class:`_LastCheckpoint`), the
loop state of an epoch's start, run folders that moved, and logs that continue where the run stopped."""

from __future__ import annotations

import csv
import glob
import os
import re
import time
import warnings

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.trainer.states import TrainerFn

from kinepose.errors import KineposeError


def _latest_version(folder: str) -> int | None:
    """The highest N of ``folder/version_N`` (a logger's runs), or None."""
    found = [re.fullmatch(r"version_(\d+)", os.path.basename(p)) for p in glob.glob(os.path.join(folder, "version_*"))]
    numbers = [int(m.group(1)) for m in found if m]
    return max(numbers) if numbers else None


def _carry_csv_rows(logger, next_epoch: int) -> None:
    """Keep the rows of a resumed run's CSV log from before its checkpoint (epochs < ``next_epoch``): Lightning's
    CSV writer deletes the metrics.csv it continues, so they are read first and written back at once."""
    path = os.path.join(logger.log_dir, "metrics.csv")
    if not os.path.isfile(path):
        return
    with open(path, newline="", encoding="utf-8") as f:  # rows of the interrupted epoch are logged again
        rows = [r for r in csv.DictReader(f) if r.get("epoch") and float(r["epoch"]) < next_epoch]
    with warnings.catch_warnings():  # its "previous log files will be deleted": not so, they are written back
        warnings.filterwarnings("ignore", message="Experiment logs directory")
        experiment = logger.experiment  # the writer: it removes the old file here
    experiment.metrics.extend({k: v for k, v in r.items() if v != ""} for r in rows)
    experiment.save()


class _LastCheckpoint(Checkpoint):
    """Writes ``checkpoints/last.ckpt`` when an epoch has ended (at the next one's start, and when training ends):
    the state a resumed run continues from.

    Lightning 2.6's ``ModelCheckpoint(save_last=True)`` rewrites last.ckpt only when the monitored checkpoint
    improves, which would send a resumed run back to its best epoch. A checkpoint from the end of validation does
    not resume either: Lightning then repeats the epoch's end, where early stopping finds no validation metric.
    At the next epoch's start everything of the last one (early stopping, the scheduler step, its logged rows) is
    done and no random number of the new one is drawn yet. The training time so far travels in the checkpoint.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.seconds_before = 0.0  # training time of the run before it was resumed
        self._t0 = time.perf_counter()
        self._first_epoch = True
        self._saving = False

    @property
    def seconds(self) -> float:
        """Training time of the run, resumed parts included."""
        return self.seconds_before + time.perf_counter() - self._t0

    def state_dict(self) -> dict:
        return {"train_seconds": self.seconds}

    def load_state_dict(self, state_dict: dict) -> None:
        self.seconds_before = float(state_dict.get("train_seconds", 0.0))

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        # Lightning restores the best checkpoint's score only for an unchanged (absolute) checkpoint folder, and
        # keeps its old path: a run folder that moved would lose its best epoch, or read another folder's
        here = os.path.dirname(os.path.realpath(self.path))
        for state in (checkpoint.get("callbacks") or {}).values():
            old = state.get("dirpath") if isinstance(state, dict) else None
            if isinstance(old, str) and old != here:
                _relocate(state, old, here)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.perf_counter()
        self._first_epoch = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # resuming a run that early stopping had already ended (it died before model.pt): no epoch more
        es = trainer.early_stopping_callback
        if es is not None and es.stopped_epoch > 0:
            trainer.should_stop = True

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # not at a fit's first epoch: a fresh run has nothing to keep yet, and a resumed one has drawn its first
        # shuffle already (Lightning makes the first iterator before this hook), so its checkpoint stays as it is
        if self._first_epoch:
            self._first_epoch = False
            return
        self._save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer)

    def _save(self, trainer: L.Trainer) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        self._saving = True
        try:
            trainer.save_checkpoint(self.path, weights_only=False)  # the whole training state
        finally:
            self._saving = False

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if self._saving and "loops" in checkpoint:  # last.ckpt only, not best.ckpt
            _as_epoch_start(checkpoint["loops"]["fit_loop"])


def _relocate(state: dict, old: str, new: str) -> None:
    """Move the paths in a ``ModelCheckpoint`` state from folder ``old`` to folder ``new``."""

    def move(path: object) -> object:
        if isinstance(path, str) and (path == old or path.startswith(old + os.sep)):
            return new + path[len(old) :]
        return path

    for key in ("dirpath", "best_model_path", "kth_best_model_path", "last_model_path"):
        if key in state:
            state[key] = move(state[key])
    if isinstance(state.get("best_k_models"), dict):
        state["best_k_models"] = {move(k): v for k, v in state["best_k_models"].items()}


def _as_epoch_start(fit_loop: dict) -> None:
    """Make the loop state of a checkpoint written at an epoch's start read as that epoch's start.

    Lightning resets the per-epoch counters of its batch loop only after the ``on_train_epoch_start`` hook; left as
    they are, a resumed run would take the new epoch for one whose batches are all done and go straight to its
    end. This sets them as the reset does (``reset_on_run``; the validation loop's total too).
    """

    def zero(counts: dict) -> None:
        for key in counts:
            counts[key] = 0

    batches = fit_loop["epoch_loop.batch_progress"]
    zero(batches["current"])
    batches["is_last_batch"] = False
    zero(fit_loop["epoch_loop.scheduler_progress"]["current"])
    for progress in fit_loop["epoch_loop.automatic_optimization.optim_progress"]["optimizer"].values():
        zero(progress["current"])
    val = fit_loop["epoch_loop.val_loop.batch_progress"]
    zero(val["total"])
    zero(val["current"])
    val["is_last_batch"] = False
    # Lightning restarts such an epoch with one empty iteration that counts a batch for the loggers' step:
    # one less here keeps the logged steps those of an uninterrupted run
    fit_loop["epoch_loop.state_dict"]["_batches_that_stepped"] -= 1


def _checkpoint_epoch(path: str) -> int:
    """The epoch a Lightning checkpoint was written at."""
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])
    except Exception as exc:  # a damaged file: say which, rather than fail deep inside Lightning
        raise KineposeError(f"{path}: cannot read the checkpoint to resume from ({type(exc).__name__}: {exc})") from exc
