"""Lifter files (``lifter.pt``): weights, buffers (normalization statistics, the knn bank), family, constructor
arguments and skeleton name as plain data, so that ``torch.load(weights_only=True)`` reads them (no code runs)."""

from __future__ import annotations

import os

import torch

from kinepose._atomic import atomic_write
from kinepose.errors import KineposeError
from kinepose.models.lifting.base import Lifter
from kinepose.models.lifting.registry import create_lifter

__all__ = ["load_lifter", "save_lifter"]


def save_lifter(path: str, model: Lifter, extra: dict | None = None) -> None:
    """Weights and buffers, family, constructor arguments and skeleton name, as plain data (``weights_only`` loads)."""
    payload = {"format": "kinepose-lifter", "family": model.family, "skeleton": model.skeleton.name,
               "config": model.config(), "state_dict": model.state_dict(), "extra": extra or {}}  # fmt: skip
    atomic_write(path, lambda f: torch.save(payload, f), binary=True)


def load_lifter(path: str | os.PathLike) -> Lifter:
    """A lifter from a run folder or its ``lifter.pt``."""
    path = os.fspath(path)
    file = os.path.join(path, "lifter.pt") if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise KineposeError(f"{path}: no lifter here (expected a lifting run folder or its lifter.pt)")
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise KineposeError(f"{file}: not a kinepose lifter file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != "kinepose-lifter":
        raise KineposeError(f"{file}: not a kinepose lifter file (no 'format: kinepose-lifter')")
    from kinepose.skeleton.presets import get_skeleton

    model = create_lifter(payload["family"], get_skeleton(payload["skeleton"]), **payload["config"])
    model.load_state_dict(payload["state_dict"])
    return model.eval()
