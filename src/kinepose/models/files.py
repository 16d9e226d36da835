"""Model files (``model.pt``): save and load trained models.

A saved model is self-contained: family, constructor config, the skeleton's data and the weights
(normalization statistics included), so :func:`load_model` needs no config file or preset.

Model files are loaded with ``torch.load(weights_only=True)``: tensors and plain data only, so a file passed to
``--model`` cannot run code. :func:`save_model` writes nothing else.
"""

from __future__ import annotations

import datetime
import os
import pickle
import warnings

import torch

from kinepose import __version__
from kinepose._atomic import atomic_write
from kinepose.errors import KineposeError
from kinepose.models.base import PoseModel
from kinepose.models.registry import create_model
from kinepose.skeleton.files import skeleton_from_dict, skeleton_to_dict

FORMAT = "kinepose-model"


class _HoldsPythonObjects(KineposeError):
    """A model file of pickled Python objects beyond tensors and plain data: refused, never unpickled."""


def save_model(path: str, model: PoseModel, extra: dict | None = None) -> None:
    """Write ``model`` to ``path`` atomically.

    Raises:
        KineposeError: a value of ``extra`` or the model config is not plain data (it could not be loaded back).
    """
    payload = {
        "format": FORMAT,
        "kinepose_version": __version__,
        "family": model.family,
        "config": _plain(model.config(), "config"),
        "skeleton": skeleton_to_dict(model.skeleton),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": _plain(extra or {}, "extra"),
    }
    atomic_write(path, lambda f: torch.save(payload, f), binary=True)


def _plain(value: object, where: str) -> object:
    """``value`` as what ``torch.load(weights_only=True)`` reads back: numpy values and paths become plain data;
    anything else that is not plain data is refused before writing, rather than saved as an unloadable file."""
    import numpy as np

    if isinstance(value, (np.ndarray, np.generic)):  # first: np.float64 is a float, yet pickles as numpy's
        return value.tolist()
    if value is None or type(value) in (bool, int, float, str):
        return value
    for base in (bool, int, float, str):  # subclasses (IntEnum...) pickle as their class: keep the plain value
        if isinstance(value, base):
            return base(value)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (datetime.date, datetime.time)):  # YAML parses bare dates in a config into these
        return value.isoformat()
    if isinstance(value, dict):
        return {_plain(k, f"{where} key {k!r}"): _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise KineposeError(f"cannot save the model: {where} is a {type(value).__name__}, not plain data")


def _load_payload(path: str) -> object:
    """``torch.load`` of a model file without running code in it.

    Raises:
        KineposeError: the file holds pickled Python objects beyond tensors and plain data, or cannot be read.
    """
    try:
        with warnings.catch_warnings():  # torch's note on a bare pickle's protocol would only precede our error
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # the weights-only unpickler stopped at an opcode: nothing was run
        if _is_pickle(path):
            raise _HoldsPythonObjects(
                f"{path}: not loaded: it holds Python objects (saved by an older kinepose, or not a kinepose "
                "model); kinepose loads model files without running code in them: retrain with this version"
            ) from exc
        raise KineposeError(f"{path}: cannot load model (not a model file, or damaged)") from exc
    except Exception as exc:  # zip, EOF and torch errors alike: the file is not a saved model
        raise KineposeError(f"{path}: cannot load model ({type(exc).__name__}: {exc})") from exc


def _is_pickle(path: str) -> bool:
    """Whether ``path`` holds a well-formed pickle (bare, or a torch zip archive's ``data.pkl``), so that a
    refusal by the weights-only unpickler means Python objects rather than a damaged file. Only decodes opcodes
    (``pickletools.genops``): nothing in the file is run."""
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
                if not names:
                    return False
                with z.open(names[0]) as f:
                    for _ in pickletools.genops(f):  # stops at the first STOP; raises on a bad opcode
                        pass
        else:
            with open(path, "rb") as f:
                for _ in pickletools.genops(f):
                    pass
    except Exception:  # ValueError on a bad opcode, zip and read errors alike: not a well-formed pickle
        return False
    return True


def load_model(path: str) -> PoseModel:
    """Load a model from ``model.pt``, a run folder holding one, or a Lightning checkpoint (``.ckpt``).

    Raises:
        KineposeError: no such file, a file of Python objects (never run), or not a kinepose model.
    """
    if os.path.isdir(path):
        cand = os.path.join(path, "model.pt")
        if not os.path.exists(cand):
            raise KineposeError(f"{path}: not a run folder (no model.pt inside)")
        path = cand
    if not os.path.exists(path):
        raise KineposeError(f"{path}: no such model file or run folder")
    payload = _load_payload(path)
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
    from kinepose.data.sources import source_skeleton

    cfg = payload["hyper_parameters"]["cfg"]
    model_cfg = dict(cfg["model"])
    name = model_cfg.pop("name")
    model = create_model(name, source_skeleton(cfg), **model_cfg)
    prefix = "model."
    state = {k[len(prefix) :]: v for k, v in payload["state_dict"].items() if k.startswith(prefix)}
    model.load_state_dict(state)
    return model


def model_config(path: str) -> dict | None:
    """The resolved training config stored with a model (``model.pt`` of a run, or a run folder); ``None`` when
    the file is missing, unreadable or holds none.

    Raises:
        KineposeError: the file holds pickled Python objects (it is not loaded, so nothing in it runs).
    """
    if os.path.isdir(path):
        path = os.path.join(path, "model.pt")
    try:
        payload = _load_payload(path)
    except _HoldsPythonObjects:  # said loudly: "no config" would hide a file that must not be used
        raise
    except KineposeError:
        return None
    if isinstance(payload, dict):
        if payload.get("format") == FORMAT:
            return payload.get("extra", {}).get("config")
        return payload.get("hyper_parameters", {}).get("cfg")
    return None
