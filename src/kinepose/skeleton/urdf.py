"""Skeletons from any URDF robot description (``xml.etree``; no pybullet needed).

Points: one kinepose joint per URDF joint (named after it), at the origin of its child link, plus the root. The
root is the root link (the one that is no joint's child), named after it, unless that link has a single child joint
that is ``fixed`` or ``floating``: then the root link is only a world anchor (DeepMimic's ``base``) and the root is
that joint, with its origin as the rest position.

Joint types:

- ``revolute``, ``continuous``: ``hinge`` about the joint's ``<axis>`` (default ``1 0 0``, normalized), limits
  ``<limit lower upper>`` radians for ``revolute`` (none for ``continuous``, for a missing ``<limit>``, and, as
  pybullet reads them, for ``lower > upper``).
- ``spherical`` (DeepMimic's, a pybullet extension): ``ball``.
- ``fixed``: an ``end`` site at the child link's origin; the child link is merged into its parent's body, so joints
  below it hang from the parent's kinepose joint, their offsets composed through the fixed transform.
- ``floating`` only as the root's single child (see above); ``prismatic``, ``planar`` and a ``floating`` joint
  elsewhere are errors: kinepose skeletons rotate only. ``<mimic>`` is ignored.

Rest rotations. A URDF child link frame is its parent's rotated by the joint origin's ``rpy`` (``Rz(yaw) @ Ry(pitch)
@ Rx(roll)``), then by the joint's motion. A kinepose skeleton's rest pose has identity local rotations, so every
kinepose joint frame is world-aligned at rest. The reader folds the rest rotations into the data: with ``W`` the
rest rotation of a link relative to the root (the product of the ``rpy`` rotations down the tree):

- ``offsets[j] = W_parent_link @ xyz_j`` (times ``scale``), the joint origin in the world-aligned parent frame;
- ``hinge_axes[j] = W_child_link @ axis_j``: the axis in world-aligned coordinates; hinge angles and limits are
  the URDF's unchanged (``L_j = Rot(W a, q) = W Rot(a, q) W^T``);
- a ball joint's URDF rotation ``Q`` (in its joint frame) is the kinepose local rotation ``W Q W^T``;
  :attr:`URDFSkeleton.rest_rotations` holds each joint's ``W``;
- positions are the URDF link origins: kinepose FK of the converted rotations equals the URDF's FK (tested against
  pybullet in ``tests/skeleton/test_urdf.py``).

Left/right pairs come from the joint names (:func:`~kinepose.skeleton.files.detect_left_right`), the lateral axis
from their rest positions.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kinepose.errors import FileFormatError, KineposeError
from kinepose.skeleton.core import Skeleton
from kinepose.skeleton.files import detect_left_right, infer_lateral_axis

__all__ = ["URDFSkeleton", "read_urdf", "rpy_matrix", "skeleton_from_urdf"]

_HINGES = ("revolute", "continuous")
_SUPPORTED = (*_HINGES, "spherical", "fixed", "floating")


@dataclass(frozen=True)
class URDFSkeleton:
    """A URDF read by :func:`read_urdf`.

    Attributes:
        skeleton: the kinepose skeleton (world-aligned joint frames at rest, see the module docstring).
        rest_rotations: (J, 3, 3) ``W_j``, the rest rotation of joint ``j``'s URDF link frame relative to the root:
            a URDF ball rotation ``Q`` of joint ``j`` is the local rotation ``W_j Q W_j^T``.
        links: ``J`` names of the URDF link at each joint (the root link for the root).
        path: the file read.
    """

    skeleton: Skeleton
    rest_rotations: np.ndarray
    links: tuple[str, ...]
    path: str


def rpy_matrix(rpy: np.ndarray) -> np.ndarray:
    """(3, 3) rotation of URDF roll, pitch, yaw (radians): ``Rz(yaw) @ Ry(pitch) @ Rx(roll)`` (fixed axes x, y, z)."""
    r, p, y = (float(v) for v in rpy)
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


def skeleton_from_urdf(path: str | os.PathLike, scale: float = 1.0, name: str | None = None) -> Skeleton:
    """The :class:`Skeleton` of a URDF file (see the module docstring). ``scale`` multiplies lengths (URDF files
    are in metres; DeepMimic's are not: ``URDF_SCALE = 0.25``); ``name`` defaults to the file's stem."""
    return read_urdf(path, scale, name).skeleton


def read_urdf(path: str | os.PathLike, scale: float = 1.0, name: str | None = None) -> URDFSkeleton:
    """Read a URDF file into a :class:`URDFSkeleton` (the skeleton and its rest rotations).

    Raises:
        FileFormatError: unreadable or malformed XML, no ``<robot>``, a joint without parent or child link, a link
            that is the child of two joints, no single root link, an unsupported joint type, numbers that do not
            parse; the message names the file and the joint.
    """
    spath = os.fspath(path)
    if not (np.isfinite(scale) and scale > 0):
        raise KineposeError(f"scale: expected a positive finite number, got {scale}")
    robot = _parse(spath)
    links = [link.get("name") for link in robot.findall("link")]
    joints = [_joint(j, spath) for j in robot.findall("joint")]
    if not joints and not links:
        raise FileFormatError("the robot has neither links nor joints", spath)
    known = set(links)
    child_of: dict[str, str] = {}
    for j in joints:
        for role in ("parent", "child"):
            if j[role] not in known:
                raise FileFormatError(f"joint {j['name']!r}: {role} link {j[role]!r} is not a <link> of the robot",
                                      spath)  # fmt: skip
        if j["child"] in child_of:
            raise FileFormatError(f"joint {j['name']!r}: link {j['child']!r} is already the child of joint "
                                  f"{child_of[j['child']]!r}", spath)  # fmt: skip
        child_of[j["child"]] = j["name"]
    roots = [n for n in links if n not in child_of]
    if len(roots) != 1:
        raise FileFormatError(f"expected one root link (a link that is no joint's child), found {roots or 'none'}",
                              spath)  # fmt: skip
    root_link = roots[0]

    # Per link: its kinepose body (joint index), its origin relative to that joint (world-aligned, scaled) and W.
    body: dict[str, int] = {}
    corner: dict[str, np.ndarray] = {}
    rest: dict[str, np.ndarray] = {}
    names, parents, offsets, kinds, axes, limits, W, link_of = [], [], [], [], [], [], [], []

    def add(jname: str, parent: int, offset: np.ndarray, kind: str, axis, lim, w: np.ndarray, link: str) -> int:
        names.append(jname)
        parents.append(parent)
        offsets.append(offset)
        kinds.append(kind)
        axes.append(np.zeros(3) if axis is None else axis)
        limits.append([np.nan, np.nan] if lim is None else lim)
        W.append(w)
        link_of.append(link)
        return len(names) - 1

    root_children = [j for j in joints if j["parent"] == root_link]
    pending = list(joints)
    if len(root_children) == 1 and root_children[0]["type"] in ("fixed", "floating"):
        anchor = root_children[0]
        w = rpy_matrix(anchor["rpy"])
        add(anchor["name"], -1, anchor["xyz"] * scale, "ball", None, None, w, anchor["child"])
        body[anchor["child"]], corner[anchor["child"]], rest[anchor["child"]] = 0, np.zeros(3), w
        pending.remove(anchor)
    else:
        add(root_link, -1, np.zeros(3), "ball", None, None, np.eye(3), root_link)
        body[root_link], corner[root_link], rest[root_link] = 0, np.zeros(3), np.eye(3)

    while pending:  # file order where it is topological, else the first joint whose parent link is placed
        j = next((j for j in pending if j["parent"] in body), None)
        if j is None:
            raise FileFormatError(f"joints {[j['name'] for j in pending]} do not hang from the root link "
                                  f"{root_link!r} (a cycle?)", spath)  # fmt: skip
        pending.remove(j)
        pl, cl = j["parent"], j["child"]
        w_p = rest[pl]
        w_c = w_p @ rpy_matrix(j["rpy"])
        offset = corner[pl] + w_p @ (j["xyz"] * scale)
        if j["type"] == "floating":
            raise FileFormatError(f"joint {j['name']!r}: a floating joint is supported only as the root link's "
                                  f"single child", spath)  # fmt: skip
        if j["type"] == "fixed":
            add(j["name"], body[pl], offset, "end", None, None, w_c, cl)
            body[cl], corner[cl], rest[cl] = body[pl], offset, w_c  # merged into the parent's body
            continue
        if j["type"] in _HINGES:
            a = j["axis"] / np.linalg.norm(j["axis"])
            k = add(j["name"], body[pl], offset, "hinge", w_c @ a, j["limits"], w_c, cl)
        else:
            k = add(j["name"], body[pl], offset, "ball", None, None, w_c, cl)
        body[cl], corner[cl], rest[cl] = k, np.zeros(3), w_c

    pairs = detect_left_right(names)
    offsets_arr = np.array(offsets, dtype=np.float64)
    try:
        sk = Skeleton(name or Path(spath).stem, names, parents, offsets_arr, kinds, np.array(axes), np.array(limits),
                      pairs, lateral_axis=infer_lateral_axis(offsets_arr, parents, pairs))  # fmt: skip
    except KineposeError as exc:
        raise FileFormatError(str(exc), spath) from None
    return URDFSkeleton(sk, np.array(W), tuple(link_of), spath)


def _parse(path: str) -> ET.Element:
    try:
        with open(path, "rb") as f:
            raw = f.read().rstrip(b"\x00 \n\r\t")  # pybullet's humanoid.urdf ends in a NUL byte
    except OSError as exc:
        raise FileFormatError(f"cannot read URDF ({exc.strerror or exc})", path) from exc
    try:
        robot = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise FileFormatError(f"malformed URDF XML ({exc})", path, exc.position[0]) from None
    if robot.tag != "robot":
        raise FileFormatError(f"expected a <robot> element at the top of a URDF, got <{robot.tag}>", path)
    return robot


def _joint(el: ET.Element, path: str) -> dict:
    jname = el.get("name")
    if not jname:
        raise FileFormatError("a <joint> without a name", path)
    jtype = el.get("type")
    if jtype not in _SUPPORTED:
        why = "kinepose skeletons have rotational joints only" if jtype in ("prismatic", "planar") else "unknown"
        raise FileFormatError(f"joint {jname!r}: unsupported type {jtype!r} ({why}; supported: "
                              f"{', '.join(_SUPPORTED)})", path)  # fmt: skip
    out: dict = {"name": jname, "type": jtype}
    for role in ("parent", "child"):
        node = el.find(role)
        if node is None or not node.get("link"):
            raise FileFormatError(f"joint {jname!r}: no <{role} link=...>", path)
        out[role] = node.get("link")
    origin = el.find("origin")
    out["xyz"] = _floats(origin.get("xyz") if origin is not None else None, 3, path, jname, "origin xyz")
    out["rpy"] = _floats(origin.get("rpy") if origin is not None else None, 3, path, jname, "origin rpy")
    axis = el.find("axis")
    out["axis"] = _floats(axis.get("xyz") if axis is not None else "1 0 0", 3, path, jname, "axis xyz")
    if jtype in _HINGES and np.linalg.norm(out["axis"]) < 1e-12:
        raise FileFormatError(f"joint {jname!r}: axis xyz is zero", path)
    out["limits"] = None
    lim = el.find("limit")
    if jtype == "revolute" and lim is not None:
        lo = _floats(lim.get("lower", "0"), 1, path, jname, "limit lower")[0]
        hi = _floats(lim.get("upper", "0"), 1, path, jname, "limit upper")[0]
        out["limits"] = [lo, hi] if lo <= hi else None  # pybullet: lower > upper means no limit
    return out


def _floats(text: str | None, n: int, path: str, joint: str, what: str) -> np.ndarray:
    if text is None:
        return np.zeros(n)
    try:
        vals = np.array([float(v) for v in text.split()])
    except ValueError:
        raise FileFormatError(f"joint {joint!r}: {what}: expected {n} numbers, got {text!r}", path) from None
    if vals.shape != (n,) or not np.isfinite(vals).all():
        raise FileFormatError(f"joint {joint!r}: {what}: expected {n} finite numbers, got {text!r}", path)
    return vals
