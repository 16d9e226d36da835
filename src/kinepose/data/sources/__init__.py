"""Motion sources: a registry of named data sets, each giving a clip-level (train, val, test) split.

``data.dataset`` in a recipe names a source. A source says which skeleton its motion is on and how it splits;
no clip is ever in two parts. Built-in sources are imported only when asked for, so this module is light (the
CLI's help reads it). Two built-ins read your own files: ``bvh`` (:mod:`kinepose.data.sources.bvh`) and ``npz``
(:mod:`kinepose.data.sources.npz`); their skeleton is that of the files (:func:`source_skeleton`). Register your own
with :func:`register_source`::

    @register_source("my_mocap", skeleton="humanoid")
    def my_split(cfg: dict) -> tuple[list[Motion], list[Motion], list[Motion]]: ...
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kinepose.errors import KineposeError

if TYPE_CHECKING:
    from kinepose.data.motion import Motion
    from kinepose.skeleton.core import Skeleton

    Split = tuple[list[Motion], list[Motion], list[Motion]]

__all__ = ["DEEPMIMIC_CLIPS", "DEFAULT_EVAL_CLIPS", "FROM_FILES", "DataSource", "get_source", "list_sources",
           "load_split", "register_source", "source_skeleton"]  # fmt: skip

#: The 15 DeepMimic clips that ship in pybullet's wheel, and the five held out for evaluation by default.
DEEPMIMIC_CLIPS = (
    "backflip", "cartwheel", "crawl", "dance_a", "dance_b", "getup_facedown", "getup_faceup", "jump", "kick",
    "punch", "roll", "run", "spin", "spinkick", "walk",
)  # fmt: skip
DEFAULT_EVAL_CLIPS = ("walk", "run", "jump", "kick", "dance_b")


@dataclass(frozen=True)
class DataSource:
    """A named data set: the preset skeleton of its motion and its split function (``cfg -> (train, val, test)``)."""

    name: str
    skeleton: str
    split: Callable[[dict], Split]


_SOURCES: dict[str, DataSource] = {}
#: The ``skeleton`` of sources whose skeleton is that of their files (:func:`source_skeleton` reads it).
FROM_FILES = "from_files"
#: Built-in sources: name -> (skeleton, "module:function"), imported on first use.
_BUILTIN = {
    "deepmimic": ("humanoid", "kinepose.data.sources.deepmimic:deepmimic_split"),
    "synthetic_hand": ("hand21", "kinepose.data.sources.synthetic_hand:synthetic_hand_split"),
    "bvh": (FROM_FILES, "kinepose.data.sources.bvh:bvh_split"),
    "npz": (FROM_FILES, "kinepose.data.sources.npz:npz_split"),
}
#: Sources whose skeleton is that of their files (``skeleton == FROM_FILES``): name -> "module:function(cfg)".
_FILE_SKELETONS = {
    "bvh": "kinepose.data.sources.bvh:bvh_skeleton",
    "npz": "kinepose.data.sources.npz:npz_skeleton",
}


def register_source(name: str, skeleton: str) -> Callable[[Callable[[dict], Split]], Callable[[dict], Split]]:
    """Decorator registering ``split(cfg) -> (train, val, test)`` as data set ``name`` on preset ``skeleton``."""

    def deco(fn: Callable[[dict], Split]) -> Callable[[dict], Split]:
        if name in _SOURCES or name in _BUILTIN:
            raise KineposeError(f"data source {name!r} registered twice")
        _SOURCES[name] = DataSource(name, skeleton, fn)
        return fn

    return deco


def list_sources() -> list[str]:
    """Names accepted by ``data.dataset``."""
    return sorted({*_BUILTIN, *_SOURCES})


def get_source(name: str) -> DataSource:
    """The source called ``name`` (a clear error listing the others when there is none)."""
    if name in _SOURCES:
        return _SOURCES[name]
    if name not in _BUILTIN:
        raise KineposeError(f"data.dataset: unknown dataset {name!r}; use {' or '.join(list_sources())}")
    skeleton, target = _BUILTIN[name]
    module, fn = target.split(":")
    return DataSource(name, skeleton, getattr(importlib.import_module(module), fn))


def source_skeleton(cfg: dict) -> Skeleton:
    """The skeleton of the config's ``data.dataset``: its preset, or for file sources (``bvh``, ``npz``) that of
    the recipe's first training file."""
    name = cfg["data"]["dataset"]
    source = get_source(name)
    spec = cfg["data"].get("skeleton")
    if spec:  # data.skeleton (kinepose train --skeleton): the motion replayed on a preset or skeleton file
        import kinepose.data.formats.bvh  # noqa: F401  (registers the .bvh skeleton reader)
        from kinepose.skeleton.presets import load_skeleton

        return load_skeleton(spec)
    if source.skeleton == FROM_FILES and name in _FILE_SKELETONS:
        module, fn = _FILE_SKELETONS[name].split(":")
        return getattr(importlib.import_module(module), fn)(cfg)
    from kinepose.skeleton.presets import get_skeleton

    return get_skeleton(source.skeleton)


def load_split(cfg: dict) -> Split:
    """(train, val, test) clips for the config's ``data.dataset``; clip-level, never overlapping. With
    ``data.skeleton``, every clip is replayed on that skeleton (rotations matched by joint name)."""
    split = get_source(cfg["data"]["dataset"]).split(cfg)
    if not cfg["data"].get("skeleton"):
        return split
    from kinepose.data.motion import replay_on_skeleton

    sk = source_skeleton(cfg)
    return tuple([replay_on_skeleton(m, sk, "data.skeleton") for m in part] for part in split)  # type: ignore[return-value]
