"""Learning-rate schedules shared by the image trainers."""

from __future__ import annotations

import math

__all__ = ["warmup_cosine"]


def warmup_cosine(progress: float, warmup: float = 0.05) -> float:
    """The learning-rate factor at ``progress`` in [0, 1] of training: a linear warm-up over the first ``warmup``,
    then a cosine decay to 0 at ``progress = 1``. Trainers capped by time pass the larger of the step and time
    fractions, so a run the cap stops still ends annealed."""
    if progress < warmup:
        return (progress + 1e-3) / (warmup + 1e-3)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (progress - warmup) / (1.0 - warmup))))
