"""Human3.6M as VideoPose3D prepares it (``data/prepare_data_h36m.py``, https://github.com/facebookresearch/VideoPose3D).

``data_3d_h36m.npz``
    ``positions_3d``: a pickled dict ``{subject: {action: (N, 32, 3) float32}}``, world coordinates, metres
    (VideoPose3D divides the dataset's millimetres by 1000), 50 fps.
``data_2d_h36m_<name>.npz`` (``gt``, ``cpn_ft_h36m_dbb``, ``detectron_ft_h36m``...)
    ``positions_2d``: a pickled dict ``{subject: {action: [one (N, J, 2) array per camera]}}``, pixels, the
    four cameras in VideoPose3D's order (54138969, 55011271, 58860488, 60457274); ``metadata``: a pickled
    dict ``{"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[left...], [right...]]}``.
    A 2D sequence can be a few frames longer than its 3D one; VideoPose3D trims it to the mocap length.

**Security**: these files hold pickles, which can run arbitrary code when loaded. They are read with
``allow_pickle=True`` (only the three object arrays above are touched); load only files you trust, such as
those VideoPose3D's own scripts produced.

The 17 joints: VideoPose3D's ``h36m_dataset.py`` removes joints ``[4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28,
29, 30, 31]`` of the 32, keeping :data:`H36M17_FROM_32` = ``[0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19,
25, 26, 27]`` in that order: Hip, RHip, RKnee, RFoot, LHip, LKnee, LFoot, Spine, Thorax, Neck/Nose, Head,
LShoulder, LElbow, LWrist, RShoulder, RElbow, RWrist. That is exactly the order of kinepose's ``h36m17``
layout and preset (``hip, right_hip, right_knee, right_foot, left_hip, ..., right_wrist``; H36M's "Foot" is the
ankle), so no reordering; the 2D files with ``layout_name`` ``"h36m"`` use it too, and their
``keypoints_symmetry`` ``[[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]`` is ``h36m17``'s left/right pairs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from kinepose.errors import FileFormatError, KineposeError

__all__ = ["H36M17_FROM_32", "H36M32_REMOVED", "VP3D_H36M17_NAMES", "H36MSubjects", "load_h36m_2d", "load_h36m_3d"]

#: The joints VideoPose3D removes from H36M's 32.
H36M32_REMOVED = (4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28, 29, 30, 31)
#: The 32-joint indices of the 17 kept joints, in order (= kinepose's ``h36m17`` order).
H36M17_FROM_32 = tuple(j for j in range(32) if j not in H36M32_REMOVED)
#: VideoPose3D's (and the H36M toolbox's) names of the 17 kept joints, in order.
VP3D_H36M17_NAMES = (
    "Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax", "Neck/Nose", "Head",
    "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
)  # fmt: skip

_V = TypeVar("_V")


@dataclass(frozen=True)
class H36MSubjects:
    """The standard Human3.6M subject split (protocols #1 MPJPE and #2 PA-MPJPE): train S1, S5, S6, S7, S8;
    test S9, S11. ``H36MSubjects().select(positions, "test")`` keeps the test subjects of a loaded dict."""

    train: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
    test: tuple[str, ...] = ("S9", "S11")

    @property
    def all(self) -> tuple[str, ...]:
        return self.train + self.test

    def split(self, name: str) -> tuple[str, ...]:
        """The subjects of split ``name``: ``"train"``, ``"test"`` or ``"all"``."""
        if name not in ("train", "test", "all"):
            raise KineposeError(f"split: expected 'train', 'test' or 'all', got {name!r}")
        return getattr(self, name)

    def select(self, data: Mapping[str, _V], split: str) -> dict[str, _V]:
        """The entries of ``data`` (keyed by subject) of split ``split``, in the split's order.

        Raises:
            KineposeError: a subject of the split is missing from ``data`` (named).
        """
        subjects = self.split(split)
        missing = [s for s in subjects if s not in data]
        if missing:
            raise KineposeError(f"subjects {missing} of the {split!r} split are missing; the data has {sorted(data)}")
        return {s: data[s] for s in subjects}


def load_h36m_3d(path: str | os.PathLike, joints: int = 17) -> dict[str, dict[str, np.ndarray]]:
    """Read VideoPose3D's ``data_3d_h36m.npz`` (a trusted file: it is unpickled; see the module docstring).

    Args:
        path: the ``.npz`` file.
        joints: 17 for VideoPose3D's reduction (kinepose's ``h36m17`` order, :data:`H36M17_FROM_32`), 32 for
            all the joints as stored.

    Returns:
        ``{subject: {action: (N, joints, 3)}}`` world positions, metres, the file's float dtype (float32).

    Raises:
        FileFormatError: unreadable file, no ``positions_3d``, a wrong structure or shape (naming subject and
            action), non-finite positions.
        KineposeError: ``joints`` is neither 17 nor 32.
    """
    if joints not in (17, 32):
        raise KineposeError(f"joints: expected 17 (VideoPose3D's reduction) or 32 (as stored), got {joints!r}")
    spath = os.fspath(path)
    tree = _pickled_dict(spath, "positions_3d", "{subject: {action: (N, 32, 3)}}")
    out: dict[str, dict[str, np.ndarray]] = {}
    for subject, actions in _items(tree, spath, "positions_3d", "subject"):
        out[subject] = {}
        for action, value in _items(actions, spath, f"subject {subject}", "action"):
            where = f"subject {subject} action {action!r}"
            arr = _float_array(value, spath, where, "positions_3d")
            if arr.ndim != 3 or arr.shape[1:] != (32, 3) or arr.shape[0] == 0:
                raise FileFormatError(f"{where}: positions_3d has shape {arr.shape}, expected (N, 32, 3)", spath)
            out[subject][action] = arr[:, list(H36M17_FROM_32)] if joints == 17 else arr
    return out


def load_h36m_2d(path: str | os.PathLike) -> tuple[dict[str, dict[str, list[np.ndarray]]], dict[str, Any]]:
    """Read a VideoPose3D ``data_2d_h36m_<name>.npz`` (a trusted file: it is unpickled; see the module docstring).

    Args:
        path: the ``.npz`` file.

    Returns:
        ``(positions, metadata)``: ``{subject: {action: [per camera (N, J, 2) pixels]}}`` with ``J`` =
        ``metadata["num_joints"]``, and the metadata dict (``layout_name`` str, ``num_joints`` int,
        ``keypoints_symmetry`` two lists of joint indices; other keys kept as stored).

    Raises:
        FileFormatError: unreadable file, missing ``positions_2d`` or ``metadata``, bad metadata, a wrong
            structure or shape (naming subject, action and camera), non-finite keypoints.
    """
    spath = os.fspath(path)
    meta = _metadata(_pickled_dict(spath, "metadata", "{'layout_name', 'num_joints', 'keypoints_symmetry'}"), spath)
    J = meta["num_joints"]
    tree = _pickled_dict(spath, "positions_2d", "{subject: {action: [(N, J, 2) per camera]}}")
    out: dict[str, dict[str, list[np.ndarray]]] = {}
    for subject, actions in _items(tree, spath, "positions_2d", "subject"):
        out[subject] = {}
        for action, cams in _items(actions, spath, f"subject {subject}", "action"):
            where = f"subject {subject} action {action!r}"
            if isinstance(cams, np.ndarray) and cams.dtype == object and cams.ndim == 1:
                cams = list(cams)
            if not isinstance(cams, (list, tuple)) or not cams:
                raise FileFormatError(f"{where}: expected a non-empty list of per-camera (N, {J}, 2) arrays, "
                                      f"got {type(cams).__name__}", spath)  # fmt: skip
            arrays = []
            for c, value in enumerate(cams):
                arr = _float_array(value, spath, f"{where} camera {c}", "positions_2d")
                if arr.ndim != 3 or arr.shape[1:] != (J, 2) or arr.shape[0] == 0:
                    raise FileFormatError(f"{where} camera {c}: positions_2d has shape {arr.shape}, "
                                          f"expected (N, {J}, 2) (metadata num_joints = {J})", spath)  # fmt: skip
                arrays.append(arr)
            out[subject][action] = arrays
    return out, meta


# ----------------------------------------------------------------------------------------------- helpers


def _pickled_dict(path: str, key: str, what: str) -> dict:
    """The dict pickled in ``key`` of a trusted ``.npz`` (``np.load(allow_pickle=True)[key].item()``)."""
    if not os.path.isfile(path):
        raise FileFormatError(f"cannot read ({'is a folder' if os.path.isdir(path) else 'no such file'})", path)
    try:
        data = np.load(path, allow_pickle=True)  # trusted files only: see the module docstring
    except Exception as exc:  # not a zip, truncated, or a bare pickle that fails to unpickle: about anything
        raise FileFormatError(f"cannot read as .npz ({type(exc).__name__}: {exc})", path) from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise FileFormatError(f"not an .npz archive (a single {type(data).__name__}); expected key {key!r}", path)
    with data:
        if key not in data.files:
            raise FileFormatError(f"no array {key!r} ({what}); the file holds {sorted(data.files)}", path)
        try:
            arr = data[key]
        except Exception as exc:  # unpickling damaged data raises about anything
            raise FileFormatError(f"cannot read {key!r} ({type(exc).__name__}: {exc})", path) from None
    if arr.dtype != object or arr.shape != () or not isinstance(arr.item(), dict):
        raise FileFormatError(f"{key!r}: expected a pickled dict {what}, got a {arr.dtype} array of shape "
                              f"{arr.shape}", path)  # fmt: skip
    return arr.item()


def _items(tree: Any, path: str, where: str, what: str) -> list[tuple[str, Any]]:
    if not isinstance(tree, dict) or not tree:
        raise FileFormatError(f"{where}: expected a non-empty dict keyed by {what}, got {type(tree).__name__}", path)
    bad = [k for k in tree if not isinstance(k, str)]
    if bad:
        raise FileFormatError(f"{where}: {what} keys must be strings, got {bad[0]!r}", path)
    return list(tree.items())


def _float_array(value: Any, path: str, where: str, key: str) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
        kind = f"{value.dtype} array" if isinstance(value, np.ndarray) else type(value).__name__
        raise FileFormatError(f"{where}: {key} is a {kind}, expected a numeric array", path)
    arr = value if value.dtype.kind == "f" else value.astype(np.float64)
    if arr.size and not np.isfinite(arr).all():
        n, first = int((~np.isfinite(arr)).sum()), tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise FileFormatError(f"{where}: {key} has {n} non-finite value(s), first at index {first}", path)
    return arr


def _metadata(meta: dict, path: str) -> dict[str, Any]:
    for key in ("layout_name", "num_joints", "keypoints_symmetry"):
        if key not in meta:
            raise FileFormatError(f"metadata: missing key {key!r} (has {sorted(meta)})", path)
    J = meta["num_joints"]
    if isinstance(J, bool) or not isinstance(J, (int, np.integer)) or J < 1:
        raise FileFormatError(f"metadata: num_joints must be a positive integer, got {J!r}", path)
    sym = meta["keypoints_symmetry"]
    try:
        left, right = ([int(j) for j in side] for side in sym)
    except (TypeError, ValueError):
        msg = f"metadata: keypoints_symmetry must be [[left...], [right...]], got {sym!r}"
        raise FileFormatError(msg, path) from None
    if len(left) != len(right) or any(not 0 <= j < J for j in left + right):
        raise FileFormatError(f"metadata: keypoints_symmetry {sym!r} does not pair joints of 0..{J - 1}", path)
    return {**meta, "num_joints": int(J), "keypoints_symmetry": [left, right], "layout_name": str(meta["layout_name"])}
