"""Learning-rate schedules shared by the image trainers."""

from __future__ import annotations

import math
import time

__all__ = ["TimeAnnealed", "warmup_cosine"]


def warmup_cosine(progress: float, warmup: float = 0.05) -> float:
    """The learning-rate factor at ``progress`` in [0, 1] of training: a linear warm-up over the first ``warmup``,
    then a cosine decay to 0 at ``progress = 1``. Trainers capped by time pass the larger of the step and time
    fractions, so a run the cap stops still ends annealed."""
    if progress < warmup:
        return (progress + 1e-3) / (warmup + 1e-3)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (progress - warmup) / (1.0 - warmup))))


class TimeAnnealed:
    """Mixin for a LightningModule with ``steps`` (planned) and ``max_seconds`` (a time cap or None): before every
    batch, each optimizer group's ``lr`` becomes its ``peak_lr`` times :func:`warmup_cosine` of the larger of the
    step and time fractions."""

    steps: int
    max_seconds: float | None

    def on_train_start(self) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        frac = self.global_step / max(self.steps, 1)
        if self.max_seconds:
            frac = max(frac, (time.perf_counter() - self._t0) / self.max_seconds)
        f = warmup_cosine(min(frac, 1.0))
        for group in self.trainer.optimizers[0].param_groups:
            group["lr"] = group["peak_lr"] * f
