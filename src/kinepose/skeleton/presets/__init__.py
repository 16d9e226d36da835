"""Skeleton presets: data only. ``get_skeleton(name)`` builds one, ``list_skeletons()`` names them."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from kinepose.errors import KineposeError
from kinepose.skeleton.core import Skeleton
from kinepose.skeleton.presets.h36m import h36m17
from kinepose.skeleton.presets.hand import hand21
from kinepose.skeleton.presets.head import head
from kinepose.skeleton.presets.humanoid import humanoid

_PRESETS: dict[str, Callable[[], Skeleton]] = {
    "humanoid": humanoid,
    "hand21": hand21,
    "h36m17": h36m17,
    "head": head,
}
_ALIASES = {"deepmimic": "humanoid", "hand": "hand21", "h36m": "h36m17"}

__all__ = ["get_skeleton", "h36m17", "hand21", "head", "humanoid", "list_skeletons"]


def list_skeletons() -> list[str]:
    """Names accepted by :func:`get_skeleton` (aliases not included)."""
    return list(_PRESETS)


def get_skeleton(name: str) -> Skeleton:
    """The preset skeleton called ``name`` (``humanoid``/``deepmimic``, ``hand21``/``hand``,
    ``h36m17``/``h36m``, ``head``). Built once, then shared."""
    key = _ALIASES.get(name, name)
    if key not in _PRESETS:
        raise KineposeError(
            f"unknown skeleton {name!r}; available: {', '.join(_PRESETS)} (aliases: {', '.join(_ALIASES)})"
        )
    return _build(key)


@cache
def _build(key: str) -> Skeleton:
    return _PRESETS[key]()
