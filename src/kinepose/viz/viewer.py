"""A self-contained HTML page that plays 3D skeleton motion in the browser (three.js, WebGL).

:func:`write_viewer` writes one ``.html`` file holding the three.js bundle vendored in ``kinepose/viz/_vendor``
(MIT license beside it), the page script (``_viewer.html``) and the motion. Its Content-Security-Policy forbids
every network request, so it opens offline from ``file://``. The page shows one colour per sequence with a
legend, a ground grid at the lowest point, a camera framed on the motion, orbit controls (drag, right-drag,
wheel), play/pause, a frame slider, a speed selector (0.25x to 2x) and, for two or more sequences, the
per-frame MPJPE (mm) of the first against the second. Keys: space plays or pauses, left and right step.

Data are Y-up, metres. Positions are embedded as integers of 0.1 mm (:data:`QUANTUM`); frame 0 is absolute and
later frames are differences to the previous one, which keeps pages small (a 2,752-frame, 38-joint CMU clip:
1.5 MB, 0.55 MB of it three.js). Longer clips than ``max_frames`` keep every ``stride``-th frame,
``stride = ceil(T / max_frames)``, and play at ``fps / stride``, still in real time; the page says so.

For tests, the page exposes ``window.kineposeViewer``: ``numFrames``, ``fps``, ``frame``, ``playing`` and
``speed`` (getters), ``setFrame(i)``, ``setPlaying(on)``, ``jointPositions(s)`` (world positions of sequence ``s``'s
rendered joints, a list of ``[x, y, z]``), ``ready`` (true once the first frame is rendered) and ``error``.

:func:`load_view_sequence` reads ``kinepose ik`` outputs, joint files and BVH; :func:`view_files` writes the
page for one file or for a prediction and its truth.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any, NamedTuple

import numpy as np
import torch

from kinepose._atomic import atomic_write
from kinepose.data.formats._common import _load_npz
from kinepose.data.formats.bvh import read_bvh
from kinepose.data.formats.io import SUPPORTED_INPUTS, load_joints, load_rotations
from kinepose.errors import FileFormatError, KineposeError, NonFiniteError, ShapeError
from kinepose.kinematics.fk import forward_kinematics
from kinepose.skeleton.core import Skeleton
from kinepose.skeleton.presets import get_skeleton, list_skeletons

__all__ = [
    "MAX_SEQUENCES",
    "MAX_VIEWER_FRAMES",
    "QUANTUM",
    "SEQUENCE_COLORS",
    "ViewSequence",
    "load_view_sequence",
    "view_files",
    "write_viewer",
]

#: Frames embedded at most by default; longer clips are subsampled with a stride.
MAX_VIEWER_FRAMES = 5000
#: Most sequences one page shows.
MAX_SEQUENCES = 4
#: Metres per embedded integer unit (0.1 mm).
QUANTUM = 1e-4
#: Colours of the sequences in order: prediction blue and truth grey as in :mod:`kinepose.viz.skeleton`.
SEQUENCE_COLORS = ("#1f77b4", "#737373", "#ff7f0e", "#2ca02c")

_MARKER = re.compile(r"/\*KP:(TITLE|DATA|THREE)\*/")


def _as_array(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise KineposeError(f"{name}: expected a numeric array (T, J, 3), got {type(x).__name__} ({exc})") from exc


def _check_tree(parents: Sequence[int], joint_names: Sequence[str]) -> tuple[list[int], list[str]]:
    try:
        par = [int(p) for p in parents]
    except (TypeError, ValueError) as exc:
        raise KineposeError(f"parents: expected a sequence of integers, got {parents!r}") from exc
    if not par or par[0] != -1 or any(not 0 <= p < j for j, p in enumerate(par) if j):
        raise KineposeError(
            f"parents: must be topologically sorted (0 <= parents[j] < j) with the root -1 at index 0, got {par}"
        )
    if isinstance(joint_names, str) or not all(isinstance(n, str) for n in joint_names):
        raise KineposeError("joint_names: expected a sequence of strings, one per joint")
    names = list(joint_names)
    if len(names) != len(par):
        raise ShapeError(f"joint_names: has {len(names)} entries, parents has {len(par)}; expected one per joint")
    return par, names


def _check_sequences(sequences: Mapping[str, Any], num_joints: int) -> dict[str, np.ndarray]:
    if not isinstance(sequences, Mapping) or not 1 <= len(sequences) <= MAX_SEQUENCES:
        n = len(sequences) if isinstance(sequences, Mapping) else type(sequences).__name__
        raise KineposeError(f"sequences: expected a mapping label -> (T, J, 3) positions with 1 to {MAX_SEQUENCES} "
                            f"entries, got {n}")  # fmt: skip
    out: dict[str, np.ndarray] = {}
    first: tuple[int, ...] | None = None
    for label, x in sequences.items():
        name = f"sequences[{label!r}]"
        if not isinstance(label, str) or not label.strip():
            raise KineposeError(f"{name}: labels must be non-empty strings")
        arr = _as_array(x, name)
        if arr.ndim != 3 or arr.shape[0] < 1 or arr.shape[1:] != (num_joints, 3):
            raise ShapeError(f"{name}: expected shape (T, J, 3) with T >= 1 and J={num_joints} (len(parents)), "
                             f"got {tuple(arr.shape)}")  # fmt: skip
        if first is not None and arr.shape != first:
            raise ShapeError(f"{name}: shape {tuple(arr.shape)} differs from the first sequence's {first}")
        bad = ~np.isfinite(arr)
        if bad.any():
            t, j, _ = (int(i) for i in np.argwhere(bad)[0])
            raise NonFiniteError(f"{name}: NaN or infinite value at frame {t}, joint {j} ({int(bad.sum())} in all)")
        first = arr.shape
        out[label] = arr
    return out


def _encode(positions: np.ndarray) -> list[int]:
    """(T, J, 3) metres -> flat integers of :data:`QUANTUM`: frame 0, then per-frame differences."""
    q = np.rint(positions / QUANTUM).astype(np.int64)  # (T, J, 3)
    d = q.copy()
    d[1:] -= q[:-1]
    return d.ravel().tolist()


def _decode(values: Sequence[int], num_joints: int) -> np.ndarray:
    """Inverse of :func:`_encode`: flat integers -> (T, J, 3) metres (used by the tests)."""
    return np.cumsum(np.asarray(values, dtype=np.int64).reshape(-1, num_joints, 3), axis=0) * QUANTUM


def _vendor_text(name: str) -> str:
    return (resources.files("kinepose.viz") / name).read_text(encoding="utf-8")


def write_viewer(
    path: str | os.PathLike,
    parents: Sequence[int],
    joint_names: Sequence[str],
    sequences: Mapping[str, Any],
    fps: float = 30.0,
    title: str | None = None,
    max_frames: int = MAX_VIEWER_FRAMES,
    notes: Sequence[str] = (),
) -> int:
    """Write a self-contained HTML page that plays the sequences in 3D, atomically.

    Everything is validated before the file is touched: on an error an existing page is left as it was.

    Args:
        path: the output ``.html`` (or ``.htm``) file.
        parents: ``J`` parent indices, root -1 first, topologically sorted (the bones drawn).
        joint_names: ``J`` joint names.
        sequences: label -> (T, J, 3) positions, metres, Y-up (numpy or torch), 1 to :data:`MAX_SEQUENCES`
            of the same shape, e.g. ``{"prediction": pred, "ground truth": gt}``. Order sets the colours
            (:data:`SEQUENCE_COLORS`); with two or more, the page shows the MPJPE of the first against the second.
        fps: frames per second of the sequences; playback is real time.
        title: shown on the page and as the document title (default "kinepose viewer").
        max_frames: most frames embedded; a longer clip keeps every ``ceil(T / max_frames)``-th frame.
        notes: extra lines shown under the title (e.g. that two files were trimmed to a common length).

    Returns:
        The number of frames embedded.

    Raises:
        ValueError: a bad argument (its name and the shape expected are in the message).
    """
    spath = os.fspath(path)
    if os.path.splitext(spath)[1].lower() not in (".html", ".htm"):
        raise KineposeError(f"path: {spath}: expected a .html file")
    par, names = _check_tree(parents, joint_names)
    seqs = _check_sequences(sequences, len(par))
    try:
        fps = float(fps)
    except (TypeError, ValueError) as exc:
        raise KineposeError(f"fps: expected a positive number, got {fps!r}") from exc
    if not (math.isfinite(fps) and fps > 0):
        raise KineposeError(f"fps: expected a positive finite number, got {fps}")
    if isinstance(max_frames, bool) or not isinstance(max_frames, int | np.integer) or max_frames < 1:
        raise KineposeError(f"max_frames: expected a positive integer, got {max_frames!r}")
    if isinstance(notes, str) or not all(isinstance(n, str) for n in notes):
        raise KineposeError("notes: expected a sequence of strings")
    title = "kinepose viewer" if title is None else str(title)

    T = next(iter(seqs.values())).shape[0]
    stride = math.ceil(T / max_frames)
    kept = {label: a[::stride] for label, a in seqs.items()}  # (N, J, 3) each
    n_frames = next(iter(kept.values())).shape[0]
    labels = list(kept)
    page_notes = list(notes)
    if stride > 1:
        page_notes.append(f"Showing 1 frame in {stride} of {T} ({fps:g} fps clip at {fps / stride:g} fps), real time")
    mpjpe = None
    if len(labels) >= 2:
        err = 1000.0 * np.linalg.norm(kept[labels[0]] - kept[labels[1]], axis=-1).mean(axis=-1)  # (N,) mm
        mpjpe = np.round(err, 2).tolist()
        page_notes.append(f"MPJPE of {labels[0]} vs {labels[1]}: {float(err.mean()):.1f} mm (mean over shown frames)")
    data = {
        "format": "kinepose-viewer",
        "version": 1,
        "title": title,
        "notes": page_notes,
        "fps": fps / stride,
        "source_fps": fps,
        "stride": stride,
        "source_frames": T,
        "num_frames": n_frames,
        "num_joints": len(par),
        "parents": par,
        "joint_names": names,
        "quantum": QUANTUM,
        "encoding": "int-delta",
        "mpjpe_mm": mpjpe,
        "sequences": [
            {"label": lb, "color": SEQUENCE_COLORS[i], "positions": _encode(kept[lb])} for i, lb in enumerate(labels)
        ],
    }
    # "<" only occurs inside JSON strings, where \u003c is the same character: no "</script>" can end the block.
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    three = _vendor_text("_vendor/three_bundle.min.js")
    if re.search(r"</script|<!--", three, re.IGNORECASE):
        raise KineposeError("kinepose/viz/_vendor/three_bundle.min.js contains '</script' or '<!--'; rebuild it")
    parts = {"TITLE": html.escape(title), "DATA": payload, "THREE": three}
    page = _MARKER.sub(lambda m: parts[m.group(1)], _vendor_text("_viewer.html"))  # one pass: no re-substitution
    atomic_write(spath, lambda f: f.write(page))
    return n_frames


# ----------------------------------------------------------------------------------------------- files


class ViewSequence(NamedTuple):
    """One motion read by :func:`load_view_sequence`.

    Attributes:
        parents: ``J`` parent indices, root -1 first.
        joint_names: ``J`` names, or None when the file has none.
        positions: (T, J, 3) float64 joint positions, metres (times ``scale``).
        fps: frames per second when the file says, else None.
    """

    parents: list[int]
    joint_names: list[str] | None
    positions: np.ndarray
    fps: float | None


def _resolve_skeleton(skeleton: Skeleton | str | None) -> Skeleton | None:
    if skeleton is None or isinstance(skeleton, Skeleton):
        return skeleton
    if isinstance(skeleton, str):
        return get_skeleton(skeleton)
    raise KineposeError(f"skeleton: expected a Skeleton, a preset name or None, got {type(skeleton).__name__}")


def _has_rotations(path: str) -> bool:
    """Whether an ``.npz`` is a rotations file; a damaged archive is a FileFormatError naming it (the checked
    reader of :mod:`kinepose.data.formats`, not ``np.load``, whose errors escape as BadZipFile)."""
    with _load_npz(path) as data:
        return "local_quat" in data.files


def _from_rotations(path: str, scale: float, skeleton: Skeleton | None) -> ViewSequence:
    """A ``kinepose ik`` output (``.npz``/``.json``): its ``joints``, or FK of its rotations on ``skeleton``."""
    r = load_rotations(path)
    if skeleton is None:
        if r.joints is None or r.parents is None:
            lacks = "'joints'" if r.joints is None else "'parents'"
            raise KineposeError(f"skeleton: {path} has rotations but no {lacks}; pass the skeleton they were "
                                f"computed on to get positions by forward kinematics")  # fmt: skip
        return ViewSequence(r.parents, r.joint_names, r.joints * scale, r.fps)
    if r.joint_names is not None:
        try:
            idx = skeleton.remap_from(r.joint_names)
        except KineposeError as exc:
            raise ShapeError(f"skeleton: does not fit {path}: {exc}") from exc
    elif (J := r.local_quat.shape[1]) == skeleton.num_joints:
        idx = list(range(J))
    else:
        raise ShapeError(f"skeleton: '{skeleton.name}' has {skeleton.num_joints} joints, {path} has {J} (no names)")
    if r.joints is not None:
        pos = r.joints[:, idx]  # (T, J, 3)
    else:  # bone lengths are the skeleton's
        quat, root = torch.from_numpy(r.local_quat[:, idx]), torch.from_numpy(r.root_pos)
        pos = forward_kinematics(skeleton, quat, root).positions.numpy()
    return ViewSequence(list(skeleton.parents), list(skeleton.joint_names), pos * scale, r.fps)


def load_view_sequence(
    path: str | os.PathLike, scale: float = 1.0, skeleton: Skeleton | str | None = None
) -> ViewSequence:
    """Read joint positions and the tree that connects them from a file, for :func:`write_viewer`.

    - ``.npz``/``.json`` written by ``kinepose ik`` (``local_quat``, ``parents``...): its ``joints``; without
      them, forward kinematics of ``local_quat``/``root_pos`` on ``skeleton`` (required then).
    - ``.bvh``: the file's own tree and forward kinematics (end sites named ``<parent>_end``).
    - joint positions (``.npz`` with ``joints``, ``.npy``, ``.csv``, see :func:`kinepose.data.formats.io.load_joints`):
      they hold no parents, so ``skeleton`` is required.

    Args:
        path: the file.
        scale: multiplies positions to give metres (0.01 for a BVH in centimetres).
        skeleton: a :class:`~kinepose.skeleton.Skeleton` or a preset name (``humanoid``, ``h36m17``...); with
            one, every format is put in its joint order (by name where the file has names).

    Raises:
        ValueError: unreadable or malformed file, no tree known, the skeleton does not fit (message names which).
    """
    spath = os.fspath(path)
    if not (isinstance(scale, int | float | np.floating) and math.isfinite(scale) and scale > 0):
        raise KineposeError(f"scale: expected a positive finite number, got {scale!r}")
    sk = _resolve_skeleton(skeleton)
    ext = os.path.splitext(spath)[1].lower()
    if ext == ".json" or (ext == ".npz" and os.path.isfile(spath) and _has_rotations(spath)):
        return _from_rotations(spath, scale, sk)
    if ext == ".bvh" and sk is None:
        try:
            bvh = read_bvh(spath)
        except OSError as exc:
            raise FileFormatError(f"cannot read ({exc.strerror or exc})", spath) from exc
        return ViewSequence(list(bvh.parents), list(bvh.joint_names), bvh.positions(scale).numpy(), bvh.fps)
    if sk is None and ext in SUPPORTED_INPUTS:
        raise KineposeError(f"skeleton: {spath} holds joint positions but no parents; pass a skeleton (one of "
                            f"{', '.join(list_skeletons())}, or a Skeleton) to connect them")  # fmt: skip
    joints = load_joints(spath, sk, scale)  # also the error for other extensions
    return ViewSequence(list(sk.parents), list(sk.joint_names), joints.joints, joints.fps)


def _match_joints(first: ViewSequence, other: ViewSequence, path: str, other_path: str) -> np.ndarray:
    """``other``'s positions in ``first``'s joint order: by name, else by count."""
    a, b = first.joint_names, other.joint_names
    if a is None or b is None or a == b:
        if first.positions.shape[1] != other.positions.shape[1]:
            raise ShapeError(f"truth: {other_path} has {other.positions.shape[1]} joints, {path} has "
                             f"{first.positions.shape[1]}; without names in both, the counts must match")  # fmt: skip
        return other.positions
    where = {n: i for i, n in enumerate(b)}
    for j, p in enumerate(first.parents):  # a BVH names end sites "<parent>_end", "<parent>_end2"...
        if a[j] not in where and p >= 0 and j not in first.parents:
            k = [c for c, q in enumerate(first.parents) if q == p and c not in first.parents].index(j)
            alias = f"{a[p]}_end" + (str(k + 1) if k else "")
            if alias in where and alias not in a:
                where[a[j]] = where[alias]
    if other.parents is not None and len(other.parents) == len(b):  # the other way round: the first file is a BVH
        taken = set(a)
        for name in a:
            m = re.fullmatch(r"(.+)_end(\d*)", name)
            if name in where or m is None or m.group(1) not in where:
                continue
            p = where[m.group(1)]
            leaves = [c for c, q in enumerate(other.parents) if q == p and c not in other.parents and b[c] not in taken]
            k = int(m.group(2) or 1) - 1
            if k < len(leaves):
                where[name] = leaves[k]
    missing = [n for n in a if n not in where]
    if missing:
        raise ShapeError(f"truth: {other_path} lacks joints {missing} of {path}; its joints are {b}")
    return other.positions[:, [where[n] for n in a]]


def _load_truth(path: str, scale: float, skeleton: Skeleton | str | None, first: ViewSequence) -> ViewSequence:
    """The truth file; plain joint positions (no tree of their own) borrow the first file's tree, matched by name."""
    ext = os.path.splitext(path)[1].lower()
    rotations = ext == ".json" or (ext == ".npz" and os.path.isfile(path) and _has_rotations(path))
    if skeleton is None and not rotations and ext in SUPPORTED_INPUTS and ext != ".bvh":
        joints = load_joints(path, None, scale)
        return ViewSequence(_preset_tree(joints.joint_names) or first.parents, joints.joint_names, joints.joints,
                            joints.fps)  # fmt: skip
    return load_view_sequence(path, scale, skeleton)


def _preset_tree(names: Sequence[str] | None) -> list[int] | None:
    """Parents, in the order of ``names``, of the skeleton preset with exactly these joints (None if none)."""
    if not names:
        return None
    for preset in list_skeletons():
        sk = get_skeleton(preset)
        if sorted(sk.joint_names) == sorted(names):
            at = {n: i for i, n in enumerate(names)}
            by_name = {
                n: (sk.joint_names[p] if p >= 0 else None) for n, p in zip(sk.joint_names, sk.parents, strict=True)
            }
            return [at[by_name[n]] if by_name[n] is not None else -1 for n in names]
    return None


def view_files(
    output_html: str | os.PathLike,
    file: str | os.PathLike,
    truth: str | os.PathLike | None = None,
    scale: float = 1.0,
    skeleton: Skeleton | str | None = None,
    title: str | None = None,
    max_frames: int = MAX_VIEWER_FRAMES,
) -> int:
    """Write a viewer page for one file, or for a prediction against the truth (:func:`load_view_sequence`).

    The truth's joints are matched to the file's by name (a BVH's ``<parent>_end`` stands for a missing leaf),
    or by order when either has no names. A truth of plain joint positions (``.npz``/``.npy``/``.csv``) needs no
    ``skeleton``: it is drawn on the file's tree. Clips of different lengths are trimmed to the shorter, with a warning
    that the page repeats. The frame rate is the file's, else the truth's, else 30.

    Returns:
        The number of frames embedded.
    """
    path = os.fspath(file)
    first = load_view_sequence(path, scale, skeleton)
    names = first.joint_names or [f"joint_{j}" for j in range(len(first.parents))]
    notes: list[str] = []
    fps = first.fps
    if truth is None:
        sequences = {os.path.basename(path): first.positions}
    else:
        tpath = os.fspath(truth)
        other = _load_truth(tpath, scale, skeleton, first)
        pos = _match_joints(first, other, path, tpath)
        T, Tt = len(first.positions), len(pos)
        if T != Tt:
            notes.append(f"{os.path.basename(path)} has {T} frames, {os.path.basename(tpath)} has {Tt}: "
                         f"showing the first {min(T, Tt)} of each")  # fmt: skip
        if fps is not None and other.fps is not None and not math.isclose(fps, other.fps, rel_tol=1e-4):
            notes.append(f"frame rates differ ({fps:g} and {other.fps:g} fps): playing at {fps:g} fps")
        fps = fps or other.fps
        n = min(T, Tt)
        sequences = {
            f"prediction ({os.path.basename(path)})": first.positions[:n],
            f"ground truth ({os.path.basename(tpath)})": pos[:n],
        }
        title = title or f"{os.path.basename(path)} vs {os.path.basename(tpath)}"
    if fps is None:
        notes.append("the file gives no frame rate: playing at 30 fps")
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    return write_viewer(output_html, first.parents, names, sequences, fps or 30.0, title or os.path.basename(path),
                        max_frames, notes)  # fmt: skip
