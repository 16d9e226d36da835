"""Model files (``model.pt``): save and load trained models.

A saved model is self-contained: family, constructor config, the skeleton's data and the weights
(normalization statistics included), so :func:`load_model` needs no config file or preset."""

from __future__ import annotations

import os

import torch

from kinepose import __version__
from kinepose._atomic import atomic_write
from kinepose.errors import KineposeError
from kinepose.models.base import PoseModel
from kinepose.models.registry import create_model
from kinepose.skeleton.files import skeleton_from_dict, skeleton_to_dict

FORMAT = "kinepose-model"


def save_model(path: str, model: PoseModel, extra: dict | None = None) -> None:
    """Write ``model`` to ``path`` atomically."""
    payload = {
        "format": FORMAT,
        "kinepose_version": __version__,
        "family": model.family,
        "config": model.config(),
        "skeleton": skeleton_to_dict(model.skeleton),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra or {},
    }
    atomic_write(path, lambda f: torch.save(payload, f), binary=True)


def load_model(path: str) -> PoseModel:
    """Load a model from ``model.pt``, a run folder holding one, or a Lightning checkpoint (``.ckpt``)."""
    if os.path.isdir(path):
        cand = os.path.join(path, "model.pt")
        if not os.path.exists(cand):
            raise KineposeError(f"{path}: not a run folder (no model.pt inside)")
        path = cand
    if not os.path.exists(path):
        raise KineposeError(f"{path}: no such model file or run folder")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # pickle, zip and torch errors alike: the file is not a saved model
        raise KineposeError(f"{path}: cannot load model ({type(exc).__name__}: {exc})") from exc
    try:
        if isinstance(payload, dict) and payload.get("format") == FORMAT:
            skeleton = skeleton_from_dict(payload["skeleton"])
            model = create_model(payload["family"], skeleton, **payload["config"])
            model.load_state_dict(payload["state_dict"])
        elif isinstance(payload, dict) and "cfg" in payload.get("hyper_parameters", {}):
            model = _model_from_checkpoint(payload)
        else:
            raise KineposeError(f"{path}: not a kinepose model (expected model.pt from `kinepose train` or a .ckpt)")
    except (RuntimeError, KeyError, TypeError) as exc:
        raise KineposeError(
            f"{path}: saved by an incompatible kinepose version or damaged ({type(exc).__name__}: {exc})"
        ) from exc
    return model.eval()


def _model_from_checkpoint(payload: dict) -> PoseModel:
    """The model inside a Lightning checkpoint of a kinepose run (``IKTask`` holds it as ``model``), built without
    Lightning: the stored config names the family and the data source names the skeleton."""
    from kinepose.data.sources import get_source
    from kinepose.skeleton.presets import get_skeleton

    cfg = payload["hyper_parameters"]["cfg"]
    model_cfg = dict(cfg["model"])
    name = model_cfg.pop("name")
    model = create_model(name, get_skeleton(get_source(cfg["data"]["dataset"]).skeleton), **model_cfg)
    prefix = "model."
    state = {k[len(prefix) :]: v for k, v in payload["state_dict"].items() if k.startswith(prefix)}
    model.load_state_dict(state)
    return model


def model_config(path: str) -> dict | None:
    """The resolved training config stored with a model (``model.pt`` of a run, or a run folder)."""
    if os.path.isdir(path):
        path = os.path.join(path, "model.pt")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:
        return None
    if isinstance(payload, dict):
        if payload.get("format") == FORMAT:
            return payload.get("extra", {}).get("config")
        return payload.get("hyper_parameters", {}).get("cfg")
    return None
