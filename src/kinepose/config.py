"""Experiment configuration: one YAML file describes a run; ``key.sub=value`` overrides on the command line.

Every key has a default here; an unknown key anywhere (file or override) is an error that names the
key and where it came from, so a typo never silently trains the wrong thing. The resolved config is
saved beside the checkpoint (``config.yaml``) so a run can be repeated.
"""

from __future__ import annotations

import copy
import math
import os
import reprlib
from collections.abc import Callable, Sequence
from typing import Any

import yaml

from kinepose.errors import KineposeError

__all__ = ["DEFAULTS", "load_config", "merge_config", "parse_overrides", "resolve_config"]

DEFAULTS: dict[str, Any] = {
    "name": "run",
    "seed": 0,
    "data": {
        "dataset": "deepmimic",  # deepmimic | synthetic_hand | bvh | npz
        "skeleton": None,  # a preset name or skeleton file (.yaml/.json/.bvh/.urdf) to replay the motion on
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
        # data.dataset: bvh | npz (your own motion, docs/training_own_bvh.md)
        "files": [],  # paths or globs
        "units": "m",  # m | cm | mm | inch | cmu, or metres per file unit
        "split": {"train": [0.0, 1.0], "val": [0.0, 0.0], "test": [0.0, 0.0]},  # fractions of each file
        "train": [],  # or whole files per split (paths or globs)
        "val": [],
        "test": [],
        "bone_scale": [1.0, 1.0],  # per-bone random scaling of the skeleton for training copies
        "bone_scale_copies": 1,
        "hinges": False,  # fit hinge axes of 1-DOF joints from the training rotations
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
_MAX_DEPTH = 64  # nesting levels read from YAML: recipes are 3 deep, and PyYAML's loader recurses per level
_INT64 = 2**63
_BRIEF = reprlib.Repr()
_BRIEF.maxstring, _BRIEF.maxother, _BRIEF.maxlevel = 60, 60, 3


def _pair(low: float, low_open: bool = False) -> Callable[[list], bool]:
    """A [low, high] range whose ends are >= ``low`` (> with ``low_open``), low <= high."""
    return lambda v: (v[0] > low if low_open else v[0] >= low) and v[0] <= v[1]


def _at_least(low: float) -> Callable[[float], bool]:
    return lambda v: v >= low


def _probability(v: float) -> bool:
    return 0.0 <= v <= 1.0


def _positive(v: float) -> bool:
    return v > 0


#: Allowed values of the numeric keys (their type and finiteness are checked against the defaults first).
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (lambda v: 0 <= v < 2**32, "in [0, 2**32)"),
    "data.hand_sequences.train": (_at_least(1), ">= 1"),
    "data.hand_sequences.val": (_at_least(0), ">= 0"),
    "data.hand_sequences.test": (_at_least(0), ">= 0"),
    "data.hand_sequences.length": (_at_least(1), ">= 1"),
    "data.hand_sequences.fps": (_positive, "> 0"),
    "data.noise_mm": (_pair(0.0), "a [low, high] range with 0 <= low <= high"),
    "data.noise_zero_prob": (_probability, "a probability in [0, 1]"),
    "data.val_noise_mm": (_at_least(0.0), ">= 0"),
    "data.translate_m": (_at_least(0.0), ">= 0"),
    "data.scale": (_pair(0.0, low_open=True), "a [low, high] range with 0 < low <= high"),
    "data.joint_dropout": (_probability, "a probability in [0, 1]"),
    "data.batch_size": (_at_least(1), ">= 1"),
    "data.samples_per_epoch": (_at_least(1), ">= 1"),
    "data.num_workers": (_at_least(0), ">= 0"),
    "data.skeleton": (
        lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
        "a preset name or a skeleton file (.yaml/.json/.bvh/.urdf), or null",
    ),
    "data.bone_scale": (_pair(0.0, low_open=True), "a [low, high] range with 0 < low <= high"),
    "data.bone_scale_copies": (_at_least(0), ">= 0"),
    "data.split.train": (lambda v: 0 <= v[0] <= v[1] <= 1, "a [a, b] range with 0 <= a <= b <= 1"),
    "data.split.val": (lambda v: 0 <= v[0] <= v[1] <= 1, "a [a, b] range with 0 <= a <= b <= 1"),
    "data.split.test": (lambda v: 0 <= v[0] <= v[1] <= 1, "a [a, b] range with 0 <= a <= b <= 1"),
    "loss.w_rot": (_at_least(0.0), ">= 0"),
    "loss.w_fk": (_at_least(0.0), ">= 0"),
    "loss.w_pos": (_at_least(0.0), ">= 0"),
    "optim.lr": (_positive, "> 0"),
    "optim.weight_decay": (_at_least(0.0), ">= 0"),
    "optim.step_size": (_at_least(1), ">= 1"),
    "optim.gamma": (_positive, "> 0"),
    "trainer.max_epochs": (_at_least(1), "a positive whole number"),
    "trainer.patience": (_at_least(0), ">= 0"),
    "trainer.devices": (lambda v: v >= 1 or v == -1, ">= 1, or -1 for all"),
    "trainer.log_every_n_steps": (_at_least(1), ">= 1"),
    "trainer.threads": (_at_least(0), ">= 0 (0 leaves torch's setting)"),
}


class _BadYaml(Exception):
    """Why a YAML text could not be read, and the 1-based line where known."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


def _safe_yaml(text: str) -> Any:
    """``yaml.safe_load(text)``, with nesting deeper than :data:`_MAX_DEPTH` refused before loading.

    Raises:
        _BadYaml: malformed YAML, nesting too deep, or a value its constructors refuse.
    """
    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):  # the event parser keeps its own stack
            if isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
                depth += 1
                if depth > _MAX_DEPTH:
                    raise _BadYaml(f"nested too deeply (more than {_MAX_DEPTH} levels)", event.start_mark.line + 1)
            elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
                depth -= 1
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            line = mark.line + 1
        elif isinstance(getattr(exc, "position", None), int):  # a ReaderError: unacceptable character
            line = text.count("\n", 0, exc.position) + 1
        else:
            line = None
        raise _BadYaml(f"malformed YAML ({exc})", line) from exc
    except RecursionError:  # a last resort: the depth check above stops real cases first
        raise _BadYaml("nested too deeply", None) from None
    except (ValueError, OverflowError) as exc:  # constructors: integers of 5000 digits, dates like 2024-02-30
        raise _BadYaml(f"malformed YAML ({exc})", None) from exc


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
                unknown = sorted(str(u) for u in set(value) - set(base[key]))  # str: YAML keys may be numbers
                if unknown:
                    raise KineposeError(f"{source}: unknown config key(s) {[f'{path}.{u}' for u in unknown]}")
                value = {
                    k: _coerce(v, base[key][k], f"{source}: config key '{path}.{k}'", f"{path}.{k}")
                    for k, v in value.items()
                }
            else:
                _check_free_form(value, f"{source}: config key '{path}")
            merged.update(value)
            out[key] = merged
        else:
            out[key] = _coerce(value, base.get(key), f"{source}: config key '{path}'", path)
    return out


def _check_free_form(value: Any, where: str) -> None:
    """Refuse NaN, infinities and self-references anywhere in a free-form value (``model.*``), naming the key."""
    stack: list[tuple[Any, str, bool]] = [(value, where, False)]
    open_ids: set[int] = set()  # containers on the current path: meeting one again is a cycle
    done: set[int] = set()  # YAML aliases share objects: visit each once (no exponential walk)
    while stack:
        v, at, leaving = stack.pop()
        if leaving:
            open_ids.discard(id(v))
            done.add(id(v))
        elif isinstance(v, float) and not math.isfinite(v):
            raise KineposeError(f"{at}' must be a finite number, got {v}")
        elif isinstance(v, dict | list) and id(v) not in done:
            if id(v) in open_ids:
                raise KineposeError(f"{at}' contains itself (a recursive YAML alias)")
            open_ids.add(id(v))
            stack.append((v, at, True))
            items = v.items() if isinstance(v, dict) else enumerate(v)
            stack.extend((x, f"{at}.{k}" if isinstance(v, dict) else f"{at}[{k}]", False) for k, x in items)


def _coerce(value: Any, default: Any, where: str, path: str = "") -> Any:
    """Check a value against its default's type and the key's rule in :data:`_RULES`.

    YAML 1.1 reads ``3e-4`` as a string: numeric strings become numbers where the default is one. Numbers must
    be finite; an int default accepts only whole numbers that fit in 64 bits.
    """
    value = _coerce_type(value, default, where)
    rule = _RULES.get(path)
    if rule is not None and not rule[0](value):
        raise KineposeError(f"{where} must be {rule[1]}, got {_BRIEF.repr(value)}")
    return value


def _coerce_type(value: Any, default: Any, where: str) -> Any:
    if default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise KineposeError(f"{where} must be true or false, got {_BRIEF.repr(value)}")
        return value
    if isinstance(default, int | float):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise KineposeError(f"{where} must be a number, got {_BRIEF.repr(value)}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise KineposeError(f"{where} must be a number, got {_BRIEF.repr(value)}")
        if isinstance(default, int):
            if isinstance(value, float):
                if not value.is_integer():  # also nan and inf
                    raise KineposeError(f"{where} must be a whole number, got {value!r}")
                value = int(value)
            if not -_INT64 <= value < _INT64:
                raise KineposeError(f"{where} must be a whole number that fits in 64 bits, got {_BRIEF.repr(value)}")
            return value
        try:
            value = float(value)
        except OverflowError:  # an integer beyond float64
            raise KineposeError(f"{where} must be a finite number, got {_BRIEF.repr(value)}") from None
        if not math.isfinite(value):
            raise KineposeError(f"{where} must be a finite number, got {value}")
        return value
    if isinstance(default, list):
        if not isinstance(value, list):
            raise KineposeError(f"{where} must be a list like {default!r}, got {_BRIEF.repr(value)}")
        if len(default) == 2 and all(isinstance(d, float) for d in default):  # a numeric range
            if len(value) != 2:
                raise KineposeError(f"{where} must be a [low, high] pair, got {_BRIEF.repr(value)}")
            return [_coerce_type(v, 0.0, where) for v in value]
        if all(isinstance(d, str) for d in default) and not all(isinstance(v, str) for v in value):
            raise KineposeError(f"{where} must be a list of names like {default!r}, got {_BRIEF.repr(value)}")
        return value
    if isinstance(default, str) and not isinstance(value, str):
        raise KineposeError(f"{where} must be a string, got {_BRIEF.repr(value)}")
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
            value = _safe_yaml(raw) if raw != "" else ""
        except _BadYaml as exc:
            raise KineposeError(f"override {key!r}: cannot parse value {_BRIEF.repr(raw)} ({exc})") from exc
        if isinstance(value, str):
            try:
                number = float(value)  # '3e-4': YAML 1.1 keeps it a string
            except ValueError:
                pass
            else:  # 'nan', 'inf' stay names (model.name=nan); where a number is due, _coerce refuses them
                value = number if math.isfinite(number) else value
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise KineposeError(f"override {item!r}: '{part}' is both a value and a section")
        node[parts[-1]] = value
    return out


def load_config(path: str) -> dict:
    """Read a YAML recipe (no defaults applied).

    Raises:
        KineposeError: the file cannot be read, is not UTF-8, is malformed or nested too deeply (the message
            names the file and, where known, the line), or is not a mapping.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise KineposeError(f"cannot read config {path} ({exc})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise KineposeError(f"{path}, line {line}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        data = _safe_yaml(text)
    except _BadYaml as exc:
        where = f", line {exc.line}" if exc.line is not None else ""
        raise KineposeError(f"{path}{where}: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise KineposeError(f"{path}: a config must be a YAML mapping, got {type(data).__name__}")
    return data


def resolve_config(path: str | None = None, overrides: Sequence[str] = (), base: dict | None = None) -> dict:
    """Defaults <- YAML file <- overrides, validated. Returns a new nested dict.

    Raises:
        KineposeError: an unknown key, a value of the wrong type or out of its range, a file that cannot be read;
            the message names the key and where it came from (the file, or ``command-line override``).
    """
    cfg = _merge(DEFAULTS, base or {}, "config")
    sources: list[tuple[str, dict]] = []  # (where, what it set), latest last: who to blame for a bad value
    if path is not None:
        file_cfg = load_config(path)
        cfg = _merge(cfg, file_cfg, path)  # errors name the file as given
        sources.append((path, file_cfg))
        if cfg.get("name") == DEFAULTS["name"]:
            cfg["name"] = os.path.splitext(os.path.basename(path))[0]
    if overrides:
        over = parse_overrides(overrides)
        cfg = _merge(cfg, over, "command-line override")
        sources.append(("command-line override", over))
    if "name" not in cfg["model"]:
        raise KineposeError("config: model.name is required (e.g. hybrid, seed0, sequence, iknet)")
    for key in ("eval_clips", "val_clips"):
        if cfg["data"]["dataset"] == "deepmimic" and not cfg["data"][key]:
            where = next((w for w, c in reversed(sources) if key in c.get("data", {})), "config")
            raise KineposeError(f"{where}: config key 'data.{key}' must name at least one clip")
    return cfg


def merge_config(defaults: dict, path: str | None = None, overrides: Sequence[str] = ()) -> dict:
    """``defaults`` <- YAML file <- overrides, with the same checks as :func:`resolve_config` (unknown keys, types,
    ranges) for recipes that have defaults of their own (the lifting recipes, :mod:`kinepose.training.lifting`)."""
    cfg = copy.deepcopy(defaults)
    if path is not None:
        cfg = _merge(cfg, load_config(path), path)
        if cfg.get("name") == defaults.get("name"):
            cfg["name"] = os.path.splitext(os.path.basename(path))[0]
    if overrides:
        cfg = _merge(cfg, parse_overrides(overrides), "command-line override")
    return cfg
