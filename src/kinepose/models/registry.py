"""Model registry: ``create_model(name, skeleton, **config)``, ``list_models()``.

Families register themselves with :func:`register_model` when their module is imported; importing
:mod:`kinepose.models` imports every built-in family (``kinepose.models.ik``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from kinepose.errors import KineposeError
from kinepose.models.base import PoseModel
from kinepose.skeleton.core import Skeleton

__all__ = ["create_model", "list_models", "register_model"]

_REGISTRY: dict[str, type[PoseModel]] = {}


def register_model(name: str) -> Callable[[type[PoseModel]], type[PoseModel]]:
    """Class decorator adding a :class:`PoseModel` subclass to the registry under ``name``."""

    def deco(cls: type[PoseModel]) -> type[PoseModel]:
        if name in _REGISTRY:
            raise KineposeError(f"model {name!r} registered twice")
        cls.family = name
        _REGISTRY[name] = cls
        return cls

    return deco


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`."""
    return sorted(_REGISTRY)


def create_model(name: str, skeleton: Skeleton, **config) -> PoseModel:
    """Build model family ``name`` for ``skeleton``; unknown names or config keys raise a clear error."""
    if name not in _REGISTRY:
        raise KineposeError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return build_checked(_REGISTRY[name], name, skeleton, config)


def build_checked(cls: type, name: str, skeleton: Skeleton, config: dict, also: tuple[str, ...] = ()):
    """``cls(skeleton, **config)`` after checking the keys and value types of ``config`` against the constructor's
    signature (YAML gives 1e2 as a float: whole numbers are accepted for ints); the model remembers the resolved
    arguments as ``_config`` (what :meth:`config` returns and model files save). ``also``: keys the caller took
    out of ``config`` before (named among the accepted ones in the error)."""
    config = dict(config)
    params = inspect.signature(cls.__init__).parameters
    allowed = [p for p in params if p not in ("self", "skeleton")]
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        accepted = ", ".join([*allowed, *also])
        raise KineposeError(f"model {name!r}: unknown config key(s) {unknown}; accepted: {accepted}")
    for key, value in list(config.items()):
        default = params[key].default
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise KineposeError(f"model {name!r}: {key} must be true or false, got {value!r}")
        elif isinstance(default, int) and isinstance(value, float) and value.is_integer():
            config[key] = int(value)
        elif isinstance(default, int | float) and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise KineposeError(f"model {name!r}: {key} must be a number, got {value!r}")
        elif isinstance(default, str) and not isinstance(value, str):
            raise KineposeError(f"model {name!r}: {key} must be a string, got {value!r}")
    model = cls(skeleton, **config)
    bound = inspect.signature(cls.__init__).bind(None, skeleton, **config)
    bound.apply_defaults()
    model._config = {k: v for k, v in bound.arguments.items() if k not in ("self", "skeleton")}
    return model
