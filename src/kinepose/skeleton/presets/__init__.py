"""Skeleton presets: data only. ``get_skeleton(name)`` builds one, ``list_skeletons()`` names them.

``load_skeleton(name_or_path)`` takes a preset name or a skeleton file: YAML/JSON
(:mod:`kinepose.skeleton.skeleton_file`), URDF (:mod:`kinepose.skeleton.urdf`), or any extension registered with
:func:`register_skeleton_reader` (the BVH reader of :mod:`kinepose.data.formats.bvh` registers ``.bvh`` when it is
imported: it lives in the data layer, above this one).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache

from kinepose.errors import FileFormatError, KineposeError
from kinepose.skeleton.core import Skeleton
from kinepose.skeleton.presets.h36m import h36m17
from kinepose.skeleton.presets.hand import hand21
from kinepose.skeleton.presets.head import head
from kinepose.skeleton.presets.humanoid import humanoid
from kinepose.skeleton.skeleton_file import SKELETON_FILE_EXTENSIONS, read_skeleton

_PRESETS: dict[str, Callable[[], Skeleton]] = {
    "humanoid": humanoid,
    "hand21": hand21,
    "h36m17": h36m17,
    "head": head,
}
_ALIASES = {"deepmimic": "humanoid", "hand": "hand21", "h36m": "h36m17"}

__all__ = [
    "SKELETON_EXTENSIONS",
    "get_skeleton",
    "h36m17",
    "hand21",
    "head",
    "humanoid",
    "list_skeletons",
    "load_skeleton",
    "register_skeleton_reader",
]

#: ``reader(path, scale) -> Skeleton`` by lower-case file extension; ``scale`` multiplies lengths (1: file units).
SkeletonReader = Callable[[str, float], Skeleton]
_READERS: dict[str, SkeletonReader] = {}
#: The file extensions :func:`load_skeleton` knows (``.bvh`` once :mod:`kinepose.data.formats.bvh` is imported).
SKELETON_EXTENSIONS = (*SKELETON_FILE_EXTENSIONS, ".urdf", ".bvh")


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


def register_skeleton_reader(extension: str, reader: SkeletonReader) -> None:
    """Let :func:`load_skeleton` read files ending in ``extension`` (``".bvh"``) with ``reader(path, scale)``.

    Registering the same reader again is a no-op; another reader for a taken extension is an error.
    """
    ext = extension.lower()
    if not ext.startswith(".") or ext in (*SKELETON_FILE_EXTENSIONS, ".urdf"):
        raise KineposeError(f"register_skeleton_reader: {extension!r} is not a free file extension")
    if _READERS.get(ext, reader) is not reader:
        raise KineposeError(f"register_skeleton_reader: {ext} already has a reader")
    _READERS[ext] = reader


def load_skeleton(name_or_path: str | os.PathLike | Skeleton, scale: float | None = None) -> Skeleton:
    """A skeleton by preset name or from a file.

    - a preset name (:func:`list_skeletons`, aliases too): :func:`get_skeleton`;
    - ``.yaml``/``.yml``/``.json``: a skeleton file (:func:`~kinepose.skeleton.skeleton_file.read_skeleton`; its
      ``units`` give metres);
    - ``.urdf``: :func:`~kinepose.skeleton.urdf.skeleton_from_urdf` (URDF lengths are metres);
    - ``.bvh``: the file's ``HIERARCHY`` (:meth:`kinepose.data.formats.bvh.BVH.skeleton`), in file units: pass
      ``scale`` (0.01 for centimetres); needs :mod:`kinepose.data.formats` imported (the CLI does).

    A string with one of these extensions is always a file, any other a preset name. A :class:`Skeleton` is
    returned as is (scaled if asked).

    Args:
        name_or_path: preset name, file path, or a Skeleton.
        scale: multiplies every length after the file's own units (None: 1). For presets and files with units a
            scale other than 1 gives a renamed copy (``<name>*<scale>``).

    Raises:
        KineposeError: an unknown preset name (the message lists presets and file types), a bad ``scale``.
        FileFormatError: a missing or malformed file (naming the file, and the joint and field where it can).
    """
    try:
        factor = 1.0 if scale is None else float(scale)
    except (TypeError, ValueError):
        factor = float("nan")
    if not 0 < factor < float("inf"):
        raise KineposeError(f"scale: expected a positive finite number, got {scale!r}")
    if isinstance(name_or_path, Skeleton):
        return _scaled(name_or_path, factor)
    spec = os.fspath(name_or_path)
    ext = os.path.splitext(spec)[1].lower()
    if ext not in SKELETON_EXTENSIONS and ext not in _READERS:
        if os.path.isfile(spec):
            raise FileFormatError(
                f"not a skeleton file: expected one of {', '.join(SKELETON_EXTENSIONS)} (or a preset name: "
                f"{', '.join(_PRESETS)})",
                spec,
            )
        try:
            return _scaled(get_skeleton(spec), factor)
        except KineposeError:
            raise KineposeError(
                f"unknown skeleton {spec!r}: not a preset ({', '.join(_PRESETS)}; aliases {', '.join(_ALIASES)}) "
                f"nor a skeleton file ({', '.join(SKELETON_EXTENSIONS)})"
            ) from None
    if not os.path.isfile(spec):
        raise FileFormatError(f"cannot read skeleton ({'is a folder' if os.path.isdir(spec) else 'no such file'})",
                              spec)  # fmt: skip
    if ext in SKELETON_FILE_EXTENSIONS:
        return _scaled(read_skeleton(spec), factor)
    if ext == ".urdf":
        from kinepose.skeleton.urdf import skeleton_from_urdf

        return skeleton_from_urdf(spec, scale=factor)
    reader = _READERS.get(ext)
    if reader is None:
        raise KineposeError(f"{spec}: reading skeletons from {ext} files needs kinepose.data.formats imported "
                            f"(import kinepose.data.formats, or use kinepose.data.formats.bvh.read_bvh)")  # fmt: skip
    return reader(spec, factor)


def _scaled(skeleton: Skeleton, factor: float) -> Skeleton:
    if factor == 1.0:
        return skeleton
    return skeleton.with_offsets(skeleton.offsets * factor, name=f"{skeleton.name}*{factor:g}")
