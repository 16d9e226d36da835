"""The BIWI Kinect Head Pose Database (Fanelli et al., 2013): ``hpdb/`` folders of frames with pose files.

::

    hpdb/01 .. hpdb/24          one folder per sequence (20 people; 4 of them recorded twice)
        frame_00003_rgb.png     the colour image (640 x 480)
        frame_00003_pose.txt    lines 1-3: the 3 x 3 rotation, row by row; line 4 blank;
                                line 5: the head centre x y z, millimetres, in the depth camera's frame
        rgb.cal                 the RGB camera: 3 lines of K, a blank line, the distortion (one line), a blank
                                line, the 3 x 3 rotation and the translation of the RGB camera w.r.t. the depth
                                camera (then, in some copies, the image size)

The rotation as read (rows as in the file) is already kinepose's head-to-camera rotation
(:mod:`kinepose.geometry.headpose`, ``p_cam = R @ p_head``, ``yaw > 0`` = turned to the subject's left), in the
depth camera's frame; ``ypr`` is :func:`~kinepose.geometry.headpose.matrix_to_ypr` of it. FSA-Net's and
Hopenet's BIWI labels are its Hopenet triplet, ``convert_ypr(ypr, "kinepose", "fsanet")`` (in degrees).
Only the existence of the images is checked; nothing is decoded.

Splits are by sequence (frames of one sequence are near-duplicates): :func:`biwi_split`, and
:func:`leave_subjects_out` to keep both recordings of a person on one side.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from kinepose.errors import FileFormatError, KineposeError
from kinepose.geometry.headpose import matrix_to_ypr

__all__ = ["BiwiCalibration", "BiwiSet", "biwi_split", "leave_subjects_out", "load_biwi", "read_biwi_calibration",
           "read_biwi_pose"]  # fmt: skip

_POSE = re.compile(r"^frame_(\d+)_pose\.txt$")


@dataclass(frozen=True)
class BiwiCalibration:
    """A sequence's ``rgb.cal``.

    Attributes:
        K: (3, 3) intrinsics, pixels.
        distortion: the distortion coefficients as listed, or None if absent.
        extrinsic_R: (3, 3) rotation of the RGB camera w.r.t. the depth camera, or None if absent.
        extrinsic_t: (3,) its translation (millimetres), or None if absent.
        image_size: (width, height), or None if absent.
    """

    K: np.ndarray
    distortion: np.ndarray | None = None
    extrinsic_R: np.ndarray | None = None
    extrinsic_t: np.ndarray | None = None
    image_size: tuple[int, int] | None = None


@dataclass
class BiwiSet:
    """BIWI frames, one row per frame, ordered by sequence then frame number.

    Attributes:
        image_paths: ``N`` paths of the ``*_rgb.png`` images.
        rotation: (N, 3, 3) float64 head rotations as in the files (kinepose's convention, depth camera frame).
        ypr: (N, 3) float64 (yaw, pitch, roll) radians, kinepose's convention.
        centre_mm: (N, 3) float64 head centres, millimetres, depth camera frame.
        sequence: (N,) int64 sequence numbers (the folder names, 1 to 24).
        frame: (N,) int64 frame numbers (from the file names).
        intrinsics: sequence number -> :class:`BiwiCalibration` of its ``rgb.cal``.
        root: the folder holding the sequence folders.
        skipped: pose files left out because their image is missing (``missing="skip"``).
    """

    image_paths: list[str]
    rotation: np.ndarray
    ypr: np.ndarray
    centre_mm: np.ndarray
    sequence: np.ndarray
    frame: np.ndarray
    intrinsics: dict[int, BiwiCalibration]
    root: str = ""
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.image_paths)

    @property
    def n_skipped(self) -> int:
        """How many frames were left out for a missing image."""
        return len(self.skipped)

    def indices(self, sequences: Iterable[int]) -> np.ndarray:
        """(M,) int64 indices of the frames of ``sequences`` (e.g. ``biwi_split(...)["test"]``)."""
        return np.flatnonzero(np.isin(self.sequence, np.asarray(list(sequences), dtype=np.int64)))

    def subset(self, idx: np.ndarray | Iterable[int]) -> BiwiSet:
        """The frames at ``idx`` (int indices or a boolean mask), intrinsics of their sequences only."""
        idx = np.asarray(idx)
        idx = np.flatnonzero(idx) if idx.dtype == bool else idx.astype(np.int64)
        seqs = {int(s) for s in self.sequence[idx]}
        return replace(
            self,
            image_paths=[self.image_paths[i] for i in idx],
            rotation=self.rotation[idx],
            ypr=self.ypr[idx],
            centre_mm=self.centre_mm[idx],
            sequence=self.sequence[idx],
            frame=self.frame[idx],
            intrinsics={s: c for s, c in self.intrinsics.items() if s in seqs},
        )


def _number_lines(path: str) -> list[tuple[int, list[float]]]:
    """(1-based line number, numbers) of every non-blank line; an unparsable line is an error."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"cannot read ({exc})", path) from exc
    out = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            nums = [float(tok) for tok in line.split()]
        except ValueError:
            raise FileFormatError(f"expected numbers separated by spaces, got {line.strip()[:60]!r}", path, i) from None
        bad = [v for v in nums if not math.isfinite(v)]
        if bad:
            raise FileFormatError(f"non-finite value {bad[0]} in {line.strip()[:60]!r}", path, i)
        out.append((i, nums))
    return out


def _take(rows: list[tuple[int, list[float]]], k: int, count: int, what: str, path: str) -> np.ndarray:
    """Rows ``k .. k + count`` of ``rows`` as a (count, 3) array; each must hold 3 numbers."""
    if len(rows) < k + count:
        last = rows[-1][0] if rows else None
        raise FileFormatError(f"ends before {what} (expected {count} line(s) of 3 numbers)", path, last)
    for line, nums in rows[k : k + count]:
        if len(nums) != 3:
            raise FileFormatError(f"{what}: expected 3 numbers, got {len(nums)}", path, line)
    return np.array([nums for _, nums in rows[k : k + count]], dtype=np.float64)


def read_biwi_pose(path: str | os.PathLike, atol: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """Read a ``frame_XXXXX_pose.txt``.

    Args:
        path: the file.
        atol: tolerance on ``|det R - 1|`` and on every entry of ``R R^T - I`` (the files hold 6 decimals).
    Returns:
        ``(R, centre_mm)``: (3, 3) float64 rotation, rows as in the file, and (3,) float64 head centre (mm).
    Raises:
        FileFormatError: not 4 lines of 3 finite numbers, or not a rotation (naming the file and line).
    """
    spath = os.fspath(path)
    rows = _number_lines(spath)
    R = _take(rows, 0, 3, "rotation row", spath)
    centre = _take(rows, 3, 1, "head centre x y z (mm)", spath)[0]
    if len(rows) > 4:
        raise FileFormatError(f"unexpected extra line ({len(rows)} non-blank lines, expected 4)", spath, rows[4][0])
    det = float(np.linalg.det(R))
    ortho = float(np.abs(R @ R.T - np.eye(3)).max())
    if abs(det - 1.0) > atol or ortho > atol:
        raise FileFormatError(f"lines {rows[0][0]}-{rows[2][0]} are not a rotation matrix (det {det:.6g}, "
                              f"max |R R^T - I| {ortho:.3g}, tolerance {atol})", spath, rows[0][0])  # fmt: skip
    return R, centre


def read_biwi_calibration(path: str | os.PathLike) -> BiwiCalibration:
    """Read a sequence's ``rgb.cal``: the first three lines of numbers are K; then, where present, the
    distortion line, three rotation rows, the translation and the image size.

    Raises:
        FileFormatError: unreadable, K not three lines of 3 numbers with positive focal lengths, or a present
            extrinsic line that is not 3 numbers (naming the file and line).
    """
    spath = os.fspath(path)
    rows = _number_lines(spath)
    K = _take(rows, 0, 3, "intrinsics K row", spath)
    if not (K[0, 0] > 0 and K[1, 1] > 0 and np.allclose(K[2], (0, 0, 1))):
        raise FileFormatError(f"K = {K.tolist()} is not an intrinsics matrix (fx, fy > 0, last row 0 0 1)",
                              spath, rows[0][0])  # fmt: skip
    rest = rows[3:]
    dist = np.array(rest[0][1], dtype=np.float64) if rest else None
    R = _take(rest, 1, 3, "extrinsic rotation row", spath) if len(rest) > 1 else None
    t = _take(rest, 4, 1, "extrinsic translation", spath)[0] if len(rest) > 4 else None
    size = None
    if len(rest) > 5:
        line, nums = rest[5]
        if len(nums) != 2:
            raise FileFormatError(f"image size: expected 2 numbers (width height), got {len(nums)}", spath, line)
        size = (int(nums[0]), int(nums[1]))
    return BiwiCalibration(K, dist, R, t, size)


def _sequence_dirs(root: str) -> dict[int, str]:
    if not os.path.isdir(root):
        raise FileFormatError("BIWI root folder not found", root)
    if os.path.isdir(os.path.join(root, "hpdb")):
        root = os.path.join(root, "hpdb")
    dirs = {
        int(n): os.path.join(root, n) for n in os.listdir(root) if n.isdigit() and os.path.isdir(os.path.join(root, n))
    }
    if not dirs:
        raise FileFormatError("no sequence folders (01 .. 24) found, neither here nor under hpdb/", root)
    return dirs


def load_biwi(
    root: str | os.PathLike, sequences: Iterable[int] | None = None, missing: str = "error", atol: float = 1e-2
) -> BiwiSet:
    """Load BIWI's pose labels, image paths and RGB calibrations (layout in the module docstring).

    Args:
        root: the ``hpdb`` folder, or a folder holding ``hpdb/``.
        sequences: sequence numbers to load (default: every numbered folder).
        missing: a pose file without its ``*_rgb.png``: ``"error"`` (default) or ``"skip"`` (listed in
            :attr:`BiwiSet.skipped`).
        atol: rotation tolerance of :func:`read_biwi_pose`.
    Returns:
        :class:`BiwiSet`.
    Raises:
        FileFormatError: a missing root, sequence folder, ``rgb.cal`` or image (``missing="error"``), a folder
            without pose files, a malformed pose or calibration file (file and line named).
    """
    if missing not in ("error", "skip"):
        raise KineposeError(f"missing: expected 'error' or 'skip', got {missing!r}")
    dirs = _sequence_dirs(os.fspath(root))
    wanted = sorted(dirs) if sequences is None else sorted({int(s) for s in sequences})
    if not wanted:
        raise FileFormatError("sequences: an empty list selects nothing (None loads every sequence)", root)
    paths, rots, centres, seqs, frames, skipped = [], [], [], [], [], []
    calib: dict[int, BiwiCalibration] = {}
    for s in wanted:
        if s not in dirs:
            raise FileFormatError(f"sequence folder {s:02d} not found (have {sorted(dirs)})",
                                  os.path.join(os.fspath(root), f"{s:02d}"))  # fmt: skip
        folder = dirs[s]
        cal = os.path.join(folder, "rgb.cal")
        if not os.path.isfile(cal):
            raise FileFormatError("missing rgb.cal (the RGB camera calibration of the sequence)", cal)
        calib[s] = read_biwi_calibration(cal)
        found = sorted((int(m.group(1)), m.group(1)) for n in os.listdir(folder) if (m := _POSE.match(n)))
        if not found:
            raise FileFormatError("no frame_XXXXX_pose.txt files in this sequence folder", folder)
        for num, digits in found:
            pose = os.path.join(folder, f"frame_{digits}_pose.txt")
            image = os.path.join(folder, f"frame_{digits}_rgb.png")
            if not os.path.isfile(image):
                if missing == "error":
                    raise FileFormatError(f"image missing for {os.path.basename(pose)} (pass missing='skip' to "
                                          "leave such frames out)", image)  # fmt: skip
                skipped.append(pose)
                continue
            R, c = read_biwi_pose(pose, atol)
            paths.append(image)
            rots.append(R)
            centres.append(c)
            seqs.append(s)
            frames.append(num)
    rotation = np.array(rots, dtype=np.float64).reshape(-1, 3, 3)
    return BiwiSet(
        image_paths=paths,
        rotation=rotation,
        ypr=np.asarray(matrix_to_ypr(rotation), dtype=np.float64).reshape(-1, 3),
        centre_mm=np.array(centres, dtype=np.float64).reshape(-1, 3),
        sequence=np.array(seqs, dtype=np.int64),
        frame=np.array(frames, dtype=np.int64),
        intrinsics=calib,
        root=os.fspath(root),
        skipped=skipped,
    )


# ----------------------------------------------------------------------------------------------- splits


def _ids(values: Iterable[int], name: str) -> tuple[int, ...]:
    try:
        return tuple(sorted({int(v) for v in values}))
    except (TypeError, ValueError) as exc:
        raise KineposeError(f"{name}: expected sequence numbers (ints), got {values!r}") from exc


def biwi_split(
    seq_ids: Iterable[int],
    protocol: str = "70/30",
    train: Iterable[int] | None = None,
    test: Iterable[int] | None = None,
) -> dict[str, tuple[int, ...]]:
    """Split BIWI by sequence, never by frame.

    ``"70/30"`` (deterministic): the sorted sequences, the first two thirds train, the rest test
    (``round(n / 3)`` test sequences); for all 24 that is 01-16 train and 17-24 test, the 16/8 proportion that
    papers call BIWI's 70/30 protocol. *Which* 16 differs from paper to paper: to match one, pass its
    ``train=`` and/or ``test=`` sequences (the other side defaults to the remaining ones; ``protocol`` is then
    ignored). Sequences of one person recorded
    twice may land on both sides; use :func:`leave_subjects_out` to prevent that.

    Args:
        seq_ids: the available sequence numbers (e.g. ``np.unique(biwi.sequence)``).
        protocol: ``"70/30"``.
        train, test: explicit sequence numbers.
    Returns:
        ``{"train": (...), "test": (...)}`` sorted sequence numbers.
    """
    ids = _ids(seq_ids, "seq_ids")
    if train is not None or test is not None:
        tr = _ids(train, "train") if train is not None else None
        te = _ids(test, "test") if test is not None else None
        for name, part in (("train", tr), ("test", te)):
            unknown = sorted(set(part or ()) - set(ids))
            if unknown:
                raise KineposeError(f"{name}: sequences {unknown} are not in seq_ids {list(ids)}")
        tr = tr if tr is not None else tuple(i for i in ids if i not in set(te or ()))
        te = te if te is not None else tuple(i for i in ids if i not in set(tr))
        if set(tr) & set(te):
            raise KineposeError(f"train and test share sequences {sorted(set(tr) & set(te))}")
        if not tr or not te:
            raise KineposeError(f"empty split: train {list(tr)}, test {list(te)}")
        return {"train": tr, "test": te}
    if protocol != "70/30":
        raise KineposeError(f"protocol: expected '70/30' (or pass train=/test=), got {protocol!r}")
    if len(ids) < 2:
        raise KineposeError(f"seq_ids: a split needs at least 2 sequences, got {list(ids)}")
    n_test = max(1, round(len(ids) / 3))
    return {"train": ids[:-n_test], "test": ids[-n_test:]}


def leave_subjects_out(subject_of: Mapping[int, str], test_subjects: str | Iterable[str]) -> dict[str, tuple[int, ...]]:
    """Split sequences by person: every sequence of a test subject goes to test, all others to train.

    Args:
        subject_of: sequence number -> subject id (BIWI records 4 of its 20 people twice; the mapping is
            not part of the download's folder names, so it is passed in).
        test_subjects: one subject id or several.
    Returns:
        ``{"train": (...), "test": (...)}`` sorted sequence numbers.
    """
    wanted = {test_subjects} if isinstance(test_subjects, str) else set(test_subjects)
    known = set(subject_of.values())
    unknown = sorted(map(str, wanted - known))
    if unknown:
        raise KineposeError(f"test_subjects: {unknown} not among the subjects {sorted(map(str, known))}")
    test = tuple(sorted(int(s) for s, who in subject_of.items() if who in wanted))
    train = tuple(sorted(int(s) for s, who in subject_of.items() if who not in wanted))
    if not test or not train:
        raise KineposeError(f"empty split: train {list(train)}, test {list(test)} (test_subjects {sorted(wanted)})")
    return {"train": train, "test": test}
