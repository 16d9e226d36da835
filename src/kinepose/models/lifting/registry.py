"""Lifter registry: ``create_lifter(name, skeleton, **config)``, ``list_lifters()``.

Families register themselves with :func:`register_lifter` when their module is imported; importing
:mod:`kinepose.models.lifting` imports every built-in family.
"""

from __future__ import annotations

from collections.abc import Callable

from kinepose.errors import KineposeError
from kinepose.models.lifting.base import Lifter
from kinepose.models.registry import build_checked
from kinepose.skeleton.core import Skeleton

__all__ = ["create_lifter", "list_lifters", "register_lifter"]

_REGISTRY: dict[str, type[Lifter]] = {}


def register_lifter(name: str) -> Callable[[type[Lifter]], type[Lifter]]:
    """Class decorator adding a :class:`Lifter` subclass to the registry under ``name``."""

    def deco(cls: type[Lifter]) -> type[Lifter]:
        if name in _REGISTRY:
            raise KineposeError(f"lifter {name!r} registered twice")
        cls.family = name
        _REGISTRY[name] = cls
        return cls

    return deco


def list_lifters() -> list[str]:
    """Names accepted by :func:`create_lifter`."""
    return sorted(_REGISTRY)


def create_lifter(name: str, skeleton: Skeleton, **config) -> Lifter:
    """Build lifter family ``name`` for ``skeleton``; unknown names or config keys raise a clear error.

    Every family takes ``refine`` (``true``, ``false`` or a mapping of
    :class:`~kinepose.models.lifting.refine.RefineConfig` fields): whole clips fitted to their 2D keypoints after
    lifting. The fit looks at the whole clip, so a causal lifter refuses it."""
    import inspect

    from kinepose.models.lifting.refine import RefineConfig

    if name not in _REGISTRY:
        raise KineposeError(f"unknown lifter {name!r}; available: {', '.join(list_lifters())}")
    cls = _REGISTRY[name]
    config = dict(config)
    native = "refine" in inspect.signature(cls.__init__).parameters
    refine = RefineConfig.from_value(config.get("refine") if native else config.pop("refine", None))
    if refine is not None and config.get("causal", False) is True:
        raise KineposeError(f"model {name!r}: refine needs the whole clip (it fits past and future frames together); "
                            "a causal lifter cannot use it: set refine: false or causal: false")  # fmt: skip
    model = build_checked(cls, name, skeleton, config, () if native else ("refine",))
    model.refine = refine
    return model
