"""Experiment configuration: one YAML file describes a run; ``key.sub=value`` overrides on the command line.

Every key has a default here; an unknown key anywhere (file or override) is an error that names the
key and where it came from, so a typo never silently trains the wrong thing. The resolved config is
saved beside the checkpoint (``config.yaml``) so a run can be repeated.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import Any

import yaml

from kinepose.errors import KineposeError

__all__ = ["DEFAULTS", "load_config", "parse_overrides", "resolve_config"]

DEFAULTS: dict[str, Any] = {
    "name": "run",
    "seed": 0,
    "data": {
        "dataset": "deepmimic",  # deepmimic | synthetic_hand
        "eval_clips": ["walk", "run", "jump", "kick", "dance_b"],  # never trained on
        "val_clips": ["spin", "punch"],  # early stopping and model selection; not trained on
        "hand_sequences": {"train": 160, "val": 16, "test": 24, "length": 120, "fps": 30.0},
        "noise_mm": [0.0, 20.0],  # per-sample noise std drawn uniformly from this range
        "noise_zero_prob": 0.2,  # fraction of clean samples
        "val_noise_mm": 10.0,
        "yaw": True,  # random rotation about the vertical axis
        "any_axis": False,  # random rotation about any axis instead
        "mirror": True,  # left/right mirroring (skeletons with left/right pairs)
        "translate_m": 1.0,  # uniform random translation in [-t, t] on the ground plane
        "scale": [1.0, 1.0],  # uniform random scale of positions (1 = off)
        "joint_dropout": 0.0,  # probability that a joint is hidden (visibility mask)
        "batch_size": 256,
        "samples_per_epoch": 16384,
        "num_workers": 0,
    },
    "model": {"name": "hybrid"},  # other keys are the model family's constructor arguments
    "loss": {
        "rotation": "geodesic",  # geodesic | quat_mse
        "w_rot": 1.0,
        "w_fk": 1.0,  # FK position loss (metres -> weighted MSE in units of 10 cm)
        "w_pos": 1.0,  # denoised-joint loss, for models that output joints
    },
    "optim": {
        "name": "adam",  # adam | rmsprop
        "lr": 1e-3,
        "weight_decay": 1e-5,
        "schedule": "cosine",  # cosine | step | none
        "step_size": 10,
        "gamma": 0.5,
    },
    "trainer": {
        "max_epochs": 30,
        "patience": 10,  # early stopping on validation geodesic error
        "accelerator": "cpu",
        "devices": 1,
        "strategy": "auto",
        "precision": "32-true",
        "log_every_n_steps": 10,
        "loggers": ["csv", "tensorboard"],  # csv | tensorboard | wandb (optional)
        "progress_bar": True,
        "deterministic": True,
        "threads": 0,  # torch.set_num_threads; 0 = leave as is
    },
}

_FREE_FORM = {"model"}  # sections whose keys are checked by their consumer (the model registry)


def _merge(base: dict, update: dict, source: str, prefix: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        path = f"{prefix}{key}"
        if key not in base and prefix.rstrip(".") not in _FREE_FORM:
            known = ", ".join(sorted(base))
            raise KineposeError(f"{source}: unknown config key '{path}' (known at this level: {known})")
        if isinstance(base.get(key), dict) and path not in _FREE_FORM and key != "hand_sequences":
            if not isinstance(value, dict):
                raise KineposeError(f"{source}: config key '{path}' must be a mapping, got {value!r}")
            out[key] = _merge(base[key], value, source, path + ".")
        elif isinstance(base.get(key), dict):
            if not isinstance(value, dict):
                raise KineposeError(f"{source}: config key '{path}' must be a mapping, got {value!r}")
            merged = copy.deepcopy(base[key])
            if key == "hand_sequences":
                unknown = sorted(set(value) - set(base[key]))
                if unknown:
                    raise KineposeError(f"{source}: unknown config key(s) {[f'{path}.{u}' for u in unknown]}")
                value = {k: _coerce(v, base[key][k], f"{source}: config key '{path}.{k}'") for k, v in value.items()}
            merged.update(value)
            out[key] = merged
        else:
            out[key] = _coerce(value, base.get(key), f"{source}: config key '{path}'")
    return out


def _coerce(value: Any, default: Any, where: str) -> Any:
    """Check a value against its default's type. YAML 1.1 reads ``3e-4`` as a string: numeric strings
    become numbers where the default is one; an int default accepts only whole numbers."""
    if default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise KineposeError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int | float):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise KineposeError(f"{where} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise KineposeError(f"{where} must be a number, got {value!r}")
        if isinstance(default, int):
            if float(value) != int(value):
                raise KineposeError(f"{where} must be a whole number, got {value!r}")
            return int(value)
        return float(value)
    if isinstance(default, list):
        if not isinstance(value, list):
            raise KineposeError(f"{where} must be a list like {default!r}, got {value!r}")
        if len(default) == 2 and all(isinstance(d, float) for d in default):  # a numeric range
            if len(value) != 2:
                raise KineposeError(f"{where} must be a [low, high] pair, got {value!r}")
            return [_coerce(v, 0.0, where) for v in value]
        return value
    if isinstance(default, str) and not isinstance(value, str):
        raise KineposeError(f"{where} must be a string, got {value!r}")
    return value


def parse_overrides(overrides: Sequence[str]) -> dict:
    """``["model.dim=128", "trainer.max_epochs=5"]`` -> nested dict; values parsed as YAML scalars."""
    out: dict = {}
    for item in overrides:
        if "=" not in item:
            raise KineposeError(f"override {item!r}: expected key=value, e.g. trainer.max_epochs=5")
        key, raw = item.split("=", 1)
        if not key or any(not part for part in key.split(".")):
            raise KineposeError(f"override {item!r}: bad key {key!r}")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as exc:
            raise KineposeError(f"override {item!r}: cannot parse value ({exc})") from exc
        if isinstance(value, str):
            try:
                value = float(value)  # '3e-4': YAML 1.1 keeps it a string
            except ValueError:
                pass
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise KineposeError(f"override {item!r}: '{part}' is both a value and a section")
        node[parts[-1]] = value
    return out


def load_config(path: str) -> dict:
    """Read a YAML recipe (no defaults applied)."""
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise KineposeError(f"cannot read config {path} ({exc})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise KineposeError(f"{path}{where}: malformed YAML ({exc})") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise KineposeError(f"{path}: a config must be a YAML mapping, got {type(data).__name__}")
    return data


def resolve_config(path: str | None = None, overrides: Sequence[str] = (), base: dict | None = None) -> dict:
    """Defaults <- YAML file <- overrides, validated. Returns a new nested dict."""
    cfg = _merge(DEFAULTS, base or {}, "config")
    if path is not None:
        cfg = _merge(cfg, load_config(path), os.path.basename(path))
        if cfg.get("name") == DEFAULTS["name"]:
            cfg["name"] = os.path.splitext(os.path.basename(path))[0]
    if overrides:
        cfg = _merge(cfg, parse_overrides(overrides), "command-line override")
    if "name" not in cfg["model"]:
        raise KineposeError("config: model.name is required (e.g. hybrid, seed0, sequence, iknet)")
    for key in ("eval_clips", "val_clips"):
        if cfg["data"]["dataset"] == "deepmimic" and not cfg["data"][key]:
            raise KineposeError(f"config: data.{key} must name at least one clip")
    return cfg
