"""The ``npz`` source: motion as numpy archives, with the same recipe keys as ``bvh``
(:mod:`kinepose.data.sources.bvh`: ``files``, ``units``, ``split``, ``train``/``val``/``test``, ``mirror``,
``bone_scale``).

Keys of one ``.npz`` file (:func:`save_motion_npz` writes them, :func:`load_motion_npz` reads them):

``local_quat``
    (T, J, 4) float, w,x,y,z, each joint's rotation relative to its parent (end sites: identity). Required.
``root_pos``
    (T, 3) float, root positions in file units. Required.
``skeleton``
    a 0-d string array holding the skeleton as JSON, the dict of
    :func:`kinepose.skeleton.files.skeleton_to_dict` (``name``, ``joint_names``, ``parents``, ``offsets`` in file
    units, ``kinds``; optional ``hinge_axes``, ``limits``, ``left_right``, ``lateral_axis``). Required. Written
    with ``np.array(json.dumps(d))``; object arrays are refused (they would need pickle).
``fps``
    scalar frames per second. Optional (30 when absent).
``joints``
    (T, J, 3) float positions in file units. Optional: when present they must equal forward kinematics of the
    rotations within 0.1 mm (after ``units``), so a file whose positions and rotations disagree is refused.

Other arrays are ignored. Every error names the file and the key.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from kinepose._atomic import atomic_write
from kinepose.data.formats._common import _load_npz, _npz_array
from kinepose.data.motion import Motion
from kinepose.data.sources.bvh import _LOADERS, _first_file_skeleton, file_split
from kinepose.errors import FileFormatError, KineposeError
from kinepose.skeleton.core import Skeleton
from kinepose.skeleton.files import skeleton_from_dict, skeleton_to_dict

__all__ = ["NPZ_KEYS", "load_motion_npz", "npz_skeleton", "npz_split", "save_motion_npz"]

NPZ_KEYS = ("local_quat", "root_pos", "skeleton", "fps", "joints")
_JOINTS_TOL_M = 1e-4  # how far stored joints may be from forward kinematics


def save_motion_npz(path: str | os.PathLike, motion: Motion, joints: bool = True) -> None:
    """Write ``motion`` with the keys above (metres; ``joints`` = its forward kinematics when ``joints``)."""
    arrays = {
        "local_quat": motion.local_quat.detach().cpu().double().numpy(),
        "root_pos": motion.root_pos.detach().cpu().double().numpy(),
        "skeleton": np.array(json.dumps(skeleton_to_dict(motion.skeleton))),
        "fps": np.float64(motion.fps),
    }
    if joints:
        arrays["joints"] = motion.positions().detach().cpu().double().numpy()
    atomic_write(os.fspath(path), lambda f: np.savez(f, **arrays), binary=True)


def _skeleton(data, path: str, scale: float) -> Skeleton:
    raw = _npz_array(data, "skeleton", path)
    if raw.shape != () or raw.dtype.kind not in "US":
        raise FileFormatError(f"key 'skeleton': expected a 0-d string array of JSON, got {raw.dtype} {raw.shape}", path)
    try:
        d = json.loads(str(raw[()]))
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"key 'skeleton': not valid JSON ({exc.msg})", path) from exc
    try:
        sk = skeleton_from_dict(d)
    except KineposeError as exc:
        raise FileFormatError(f"key 'skeleton': {exc}", path) from exc
    if scale == 1.0:
        return sk
    return Skeleton(sk.name, sk.joint_names, sk.parents, sk.offsets * scale, sk.kinds, sk.hinge_axes, sk.limits,
                    sk.left_right, sk.lateral_axis)  # fmt: skip


def _float_array(data, key: str, path: str, shape: tuple[int, ...]) -> np.ndarray:
    a = _npz_array(data, key, path)
    if a.dtype.kind not in "fiu":
        raise FileFormatError(f"key {key!r}: expected numbers, got dtype {a.dtype}", path)
    if a.shape != shape:
        want = ", ".join(str(s) for s in shape)
        raise FileFormatError(f"key {key!r}: expected shape ({want}), got {a.shape}", path)
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise FileFormatError(f"key {key!r}: non-finite value at index {where}", path)
    return a


def load_motion_npz(path: str | os.PathLike, scale: float = 1.0) -> Motion:
    """Read one motion archive (keys above); ``scale`` is metres per file unit.

    Raises:
        FileFormatError: a missing key, a wrong shape or dtype, non-finite values, a bad skeleton, quaternions
            that are not unit, or ``joints`` that disagree with the rotations; the message names the file and key.
    """
    spath = os.fspath(path)
    with _load_npz(spath) as data:
        missing = [k for k in ("local_quat", "root_pos", "skeleton") if k not in data.files]
        if missing:
            raise FileFormatError(f"missing key(s) {missing}; a motion archive holds {list(NPZ_KEYS)}", spath)
        sk = _skeleton(data, spath, scale)
        J = sk.num_joints
        q = _npz_array(data, "local_quat", spath)
        if q.ndim != 3 or q.shape[1:] != (J, 4):
            raise FileFormatError(f"key 'local_quat': expected shape (T, {J}, 4) for the skeleton's {J} joints, "
                                  f"got {q.shape}", spath)  # fmt: skip
        T = q.shape[0]
        if T == 0:
            raise FileFormatError("key 'local_quat': no frames", spath)
        q = _float_array(data, "local_quat", spath, (T, J, 4))
        norm = np.linalg.norm(q, axis=-1)
        if np.abs(norm - 1).max() > 1e-3:
            t, j = (int(i) for i in np.unravel_index(np.abs(norm - 1).argmax(), norm.shape))
            raise FileFormatError(f"key 'local_quat': frame {t}, joint '{sk.joint_names[j]}' has norm "
                                  f"{norm[t, j]:.4f}, expected 1 (w, x, y, z unit quaternions)", spath)  # fmt: skip
        root = _float_array(data, "root_pos", spath, (T, 3)) * scale
        fps = 30.0
        if "fps" in data.files:
            f = _npz_array(data, "fps", spath)
            if f.size != 1 or f.dtype.kind not in "fiu" or not (np.isfinite(f).all() and float(f.reshape(())) > 0):
                raise FileFormatError(f"key 'fps': expected one positive number, got {f!r}", spath)
            fps = float(f.reshape(()))
        joints = _float_array(data, "joints", spath, (T, J, 3)) * scale if "joints" in data.files else None
    name = os.path.splitext(os.path.basename(spath))[0]
    motion = Motion(sk, torch.from_numpy(q / norm[..., None]), torch.from_numpy(root), fps, name,
                    {"source": spath, "format": "npz"})  # fmt: skip
    if joints is not None:
        err = np.linalg.norm(motion.positions().numpy() - joints, axis=-1)
        if err.max() > _JOINTS_TOL_M:
            t, j = (int(i) for i in np.unravel_index(err.argmax(), err.shape))
            raise FileFormatError(f"key 'joints': frame {t}, joint '{sk.joint_names[j]}' is {1000 * err[t, j]:.3f} mm "
                                  f"from the forward kinematics of 'local_quat' and 'root_pos' on 'skeleton' (at most "
                                  f"{1000 * _JOINTS_TOL_M:g} mm allowed)", spath)  # fmt: skip
    return motion


_LOADERS[(".npz",)] = load_motion_npz


def npz_split(cfg: dict) -> tuple[list[Motion], list[Motion], list[Motion]]:
    """The ``npz`` source: the keys of :mod:`kinepose.data.sources.bvh`, on ``.npz`` motion archives."""
    return file_split(cfg, load_motion_npz, (".npz",))


def npz_skeleton(cfg: dict) -> Skeleton:
    """The recipe's skeleton: that of its first training archive, in metres."""
    return _first_file_skeleton(cfg, (".npz",), lambda p, s: load_motion_npz(p, s).skeleton)
