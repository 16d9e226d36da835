"""The DeepMimic humanoid, read from the ``humanoid.urdf`` that ships in pybullet's wheel.

15 points: 13 rotated joints (root, chest, neck, and per side hip, knee, ankle, shoulder, elbow; knees
and elbows are hinges about z) and two wrist end sites. Y-up; the character faces +x and its right side
is +z. The URDF is in DeepMimic's units; ``URDF_SCALE = 0.25`` converts to metres (as pybullet's own
DeepMimic environment loads it with ``globalScaling=0.25``).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import numpy as np

from kinepose.errors import FileFormatError, KineposeError
from kinepose.skeleton.core import Skeleton

URDF_SCALE = 0.25

#: Rotated joints in the order of a DeepMimic motion frame (after duration, root position, root rotation).
DEEPMIMIC_JOINTS = (
    "root", "chest", "neck",
    "right_hip", "right_knee", "right_ankle", "right_shoulder", "right_elbow",
    "left_hip", "left_knee", "left_ankle", "left_shoulder", "left_elbow",
)  # fmt: skip


def pybullet_data_path() -> str:
    """Folder of pybullet's bundled data (``pybullet_data``)."""
    try:
        import pybullet_data
    except ImportError as exc:  # pragma: no cover - pybullet is a core dependency
        raise KineposeError("pybullet is not installed; `pip install pybullet` ships the DeepMimic data") from exc
    return pybullet_data.getDataPath()


def humanoid_urdf_path() -> str:
    return os.path.join(pybullet_data_path(), "humanoid", "humanoid.urdf")


def _floats(text: str | None, n: int, path: str, what: str) -> np.ndarray:
    try:
        vals = np.array([float(v) for v in (text or "").split()])
    except ValueError as exc:
        raise FileFormatError(f"{what}: not numbers: {text!r}", path) from exc
    if vals.shape != (n,):
        raise FileFormatError(f"{what}: expected {n} numbers, got {text!r}", path)
    return vals


def humanoid_from_urdf(path: str | None = None, scale: float = URDF_SCALE) -> Skeleton:
    """Build the humanoid :class:`Skeleton` from a DeepMimic-style URDF.

    Spherical joints become ball joints, revolute ones hinges (axis and limits from the URDF), fixed
    ones end sites; the fixed joint that attaches the ``root`` link to ``base`` becomes the root.
    """
    path = path or humanoid_urdf_path()
    try:
        with open(path, "rb") as f:
            raw = f.read().rstrip(b"\x00 \n\r\t")  # the shipped file ends in a NUL byte
        xml = ET.fromstring(raw)
    except OSError as exc:
        raise FileFormatError(f"cannot read URDF ({exc})", path) from exc
    except ET.ParseError as exc:
        raise FileFormatError(f"malformed URDF XML ({exc})", path, exc.position[0]) from exc

    names, parents, offsets, kinds, axes, limits = [], [], [], [], [], []
    link_to_index: dict[str, int] = {}
    for joint in xml.iter("joint"):
        jname = joint.get("name")
        jtype = joint.get("type")
        parent_link = joint.find("parent").get("link")
        child_link = joint.find("child").get("link")
        origin = joint.find("origin")
        xyz = _floats(origin.get("xyz") if origin is not None else "0 0 0", 3, path, f"joint {jname} origin")
        rpy = _floats(origin.get("rpy") if origin is not None else "0 0 0", 3, path, f"joint {jname} rpy")
        if np.abs(rpy).max() > 0:
            raise FileFormatError(f"joint {jname}: non-zero origin rpy is not supported", path)
        if parent_link not in link_to_index:
            if names:  # only the very first joint may hang from the base link
                raise FileFormatError(f"joint {jname}: parent link {parent_link!r} is not defined before", path)
            link_to_index[child_link] = 0
            names.append(jname)
            parents.append(-1)
            offsets.append(np.zeros(3))
            kinds.append("ball")
            axes.append(np.zeros(3))
            limits.append([np.nan, np.nan])
            continue
        link_to_index[child_link] = len(names)
        names.append(jname)
        parents.append(link_to_index[parent_link])
        offsets.append(xyz * scale)
        if jtype == "spherical":
            kinds.append("ball")
            axes.append(np.zeros(3))
            limits.append([np.nan, np.nan])
        elif jtype in ("revolute", "continuous"):
            kinds.append("hinge")
            ax = joint.find("axis")
            axes.append(_floats(ax.get("xyz") if ax is not None else "1 0 0", 3, path, f"joint {jname} axis"))
            lim = joint.find("limit")
            if jtype == "revolute" and lim is not None:
                limits.append([float(lim.get("lower")), float(lim.get("upper"))])
            else:
                limits.append([np.nan, np.nan])
        elif jtype == "fixed":
            kinds.append("end")
            axes.append(np.zeros(3))
            limits.append([np.nan, np.nan])
        else:
            raise FileFormatError(f"joint {jname}: unsupported joint type {jtype!r}", path)

    pairs = [
        (names.index(n), names.index(n.replace("left_", "right_")))
        for n in names
        if n.startswith("left_") and n.replace("left_", "right_") in names
    ]
    return Skeleton("humanoid", names, parents, np.array(offsets), kinds, np.array(axes), np.array(limits),
                    pairs, lateral_axis=2)  # fmt: skip


def humanoid() -> Skeleton:
    """The DeepMimic humanoid of pybullet's ``humanoid/humanoid.urdf``, in metres."""
    return humanoid_from_urdf()
