"""Named keypoint layouts and conversions between them.

A :class:`Layout` is a detector's or dataset's joint order as named constants: names in the official order,
a kinematic tree (``parents``, root ``-1`` at index 0, ``parents[j] < j``) and the left/right pairs.

===================  ================================================  ======  ==========================
layout               aliases                                           joints  source
===================  ================================================  ======  ==========================
``coco17``           coco, coco_17, mscoco                             17      COCO person_keypoints
``halpe26``          halpe, halpe_26, alphapose26                      26      Halpe FullBody (AlphaPose)
``h36m17``           h36m, human36m, kinepose_h36m17                   17      Human3.6M / VideoPose3D
``mediapipe_pose``   mp33, mediapipe33, mediapipe_pose33, blazepose    33      MediaPipe PoseLandmark
``mediapipe_hand``   hand21, openpose_hand, mp_hand, mediapipe_hand21  21      MediaPipe HandLandmark
``body25``           body_25, openpose_body25, openpose                25      OpenPose BODY_25
``smpl24``           smpl, smpl_24                                     24      SMPL (smplx joint names)
``humanoid``         deepmimic, kinepose_humanoid                      15      kinepose preset humanoid
``kinepose_hand21``  hand21_preset                                     21      kinepose preset hand21
===================  ================================================  ======  ==========================

Sources, one per layout (checked joint by joint against them): COCO's annotation ``keypoints`` field
(https://cocodataset.org/#format-data); Halpe's README (https://github.com/Fang-Haoshu/Halpe-FullBody);
VideoPose3D ``common/h36m_dataset.py`` (the 17 of 32 joints it keeps, shoulders rewired to the thorax) and
MotionBERT's ``coco2h36m`` docstring; MediaPipe ``solutions/pose.py`` ``PoseLandmark`` and
``solutions/hands.py`` ``HandLandmark``; OpenPose ``doc/02_output.md`` ``POSE_BODY_25_BODY_PARTS``; smplx
``joint_names.py`` (``JOINT_NAMES_DICT["smpl"]``). The ``h36m17`` layout uses the names of kinepose's h36m17
preset (``hip`` is the pelvis, ``*_foot`` the ankles, ``neck_nose`` H36M's "Neck/Nose").

Conversions: :func:`convert_layout` maps ``(..., J_src, C)`` points to ``(..., J_dst, C)``; each target joint
is one source joint or a *virtual joint*, a weighted mean of source joints (weights sum to 1, so conversions
commute with translations). :func:`mapping` returns the table (target -> ``((source, weight), ...)``).
COCO -> H36M follows MotionBERT's ``coco2h36m`` (MotionBERT issues #10, #88): pelvis = mid-hips, thorax =
mid-shoulders, spine = midpoint of the two, neck/nose = nose, head = mid-eyes. Halpe -> H36M follows its
``halpe2h36m`` (issues #16, #83): Halpe's own hip, neck and head. VideoPose3D uses no such heuristic: its
in-the-wild models take COCO keypoints as input and learn the H36M output (VideoPose3D issues #114, #140);
use ``coco17`` points directly for those. A target that cannot be formed (COCO's eyes from H36M) comes out
NaN, or raises with ``strict=True``; a NaN source joint makes every target that uses it NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise

import numpy as np
import torch

from kinepose.errors import KineposeError, ShapeError
from kinepose.skeleton import _layout_data as _data
from kinepose.skeleton.core import Skeleton
from kinepose.skeleton.presets.hand import hand21 as _hand21_preset

__all__ = [
    "Layout",
    "convert_layout",
    "get_layout",
    "layout_skeleton",
    "list_conversions",
    "list_layouts",
    "mapping",
    "missing_joints",
]

Table = _data.Table


@dataclass(frozen=True, repr=False)
class Layout:
    """A named keypoint order.

    Args:
        name: the canonical name (``"coco17"``).
        joint_names: ``J`` unique names in the official order.
        parents: ``J`` parent indices: a tree, root ``-1`` at index 0, ``parents[j] < j``.
        left_right: ``(left, right)`` index pairs that mirror each other.
        aliases: other names :func:`get_layout` accepts.
        source: where the order comes from (URL or paper).
        description: one line for tables.
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    left_right: tuple[tuple[int, int], ...] = ()
    aliases: tuple[str, ...] = ()
    source: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        J, n = len(self.joint_names), self.name
        if len(set(self.joint_names)) != J:
            raise KineposeError(f"layout '{n}': duplicate joint names")
        if len(self.parents) != J:
            raise KineposeError(f"layout '{n}': {len(self.parents)} parents for {J} joints")
        if J == 0 or self.parents[0] != -1 or any(not 0 <= p < j for j, p in enumerate(self.parents) if j):
            raise KineposeError(f"layout '{n}': parents must be a tree with root -1 at 0 and parents[j] < j")
        if any(not (0 <= a < J and 0 <= b < J) or a == b for a, b in self.left_right):
            raise KineposeError(f"layout '{n}': bad left/right pairs {self.left_right}")

    def __repr__(self) -> str:
        return f"Layout('{self.name}', {self.num_joints} joints)"

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def __len__(self) -> int:
        return self.num_joints

    def index(self, name: str) -> int:
        """Index of the joint called ``name``."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise KineposeError(
                f"layout '{self.name}' has no joint named {name!r}; joints are {list(self.joint_names)}"
            ) from None

    def indices(self, names: Sequence[str]) -> list[int]:
        return [self.index(n) for n in names]

    @property
    def mirror_index(self) -> tuple[int, ...]:
        """Permutation that swaps each left joint with its right partner (identity elsewhere)."""
        perm = list(range(self.num_joints))
        for a, b in self.left_right:
            perm[a], perm[b] = b, a
        return tuple(perm)


def _pairs(names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """(left, right) pairs of joints whose names differ only by ``left`` <-> ``right``."""
    pos = {n: i for i, n in enumerate(names)}
    return tuple((i, pos[n.replace("left", "right")]) for i, n in enumerate(names) if "left" in n)


_LAYOUTS: dict[str, Layout] = {
    name: Layout(name, names, parents, _pairs(names), aliases, source, desc)
    for name, (names, parents, aliases, source, desc) in _data.LAYOUTS.items()
}


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


_ALIASES: dict[str, str] = {_key(a): lay.name for lay in _LAYOUTS.values() for a in (lay.name, *lay.aliases)}


def list_layouts() -> list[str]:
    """Canonical names accepted by :func:`get_layout` (aliases not included)."""
    return list(_LAYOUTS)


def get_layout(name: str) -> Layout:
    """The layout called ``name`` or one of its aliases (case, ``-`` and ``_`` ignored: ``"COCO-17"`` works)."""
    key = _ALIASES.get(_key(name)) if isinstance(name, str) else None
    if key is None:
        known = "; ".join(f"{lay.name} ({', '.join(lay.aliases)})" for lay in _LAYOUTS.values())
        raise KineposeError(f"unknown keypoint layout {name!r}; known layouts (aliases): {known}")
    return _LAYOUTS[key]


# ----------------------------------------------------------------------------------------------- conversions


def _compose(first: Table, second: Table) -> Table:
    """The table of ``second`` after ``first`` (a -> b, b -> c gives a -> c); a target that needs a joint
    ``first`` cannot form is left out."""
    out: Table = {}
    for target, row in second.items():
        if any(mid not in first for mid, _ in row):
            continue
        acc: dict[str, float] = {}
        for mid, w in row:
            for src, v in first[mid]:
                acc[src] = acc.get(src, 0.0) + w * v  # weight 0 kept: the joint is still a source (NaN, min conf)
        out[target] = tuple(acc.items())
    return out


@cache
def _table(src: str, dst: str) -> Table:
    """The conversion table between two canonical names, in ``dst`` joint order."""
    if src == dst:
        table = {n: ((n, 1.0),) for n in _LAYOUTS[src].joint_names}
    elif (src, dst) in _data.MAPPINGS:
        table = _data.MAPPINGS[(src, dst)]
    elif (src, dst) in _data.ROUTES:
        chain = (src, *_data.ROUTES[(src, dst)], dst)
        table = _data.MAPPINGS[(chain[0], chain[1])]
        for a, b in pairwise(chain[1:]):
            table = _compose(table, _data.MAPPINGS[(a, b)])
    else:
        known = ", ".join(sorted(d for s, d in list_conversions() if s == src)) or "none"
        raise KineposeError(f"no conversion from layout '{src}' to '{dst}'; from '{src}' there are: {known}")
    return {n: table[n] for n in _LAYOUTS[dst].joint_names if n in table}


def list_conversions() -> list[tuple[str, str]]:
    """``(src, dst)`` pairs :func:`convert_layout` knows (direct tables and composed routes; not identities)."""
    return sorted({*_data.MAPPINGS, *_data.ROUTES})


def mapping(src: str, dst: str) -> dict[str, tuple[tuple[str, float], ...]]:
    """The conversion table from ``src`` to ``dst``: target joint -> ``((source joint, weight), ...)``.

    Weights sum to 1. Targets that cannot be formed are absent (see :func:`missing_joints`). Composed routes
    (for example ``mediapipe_pose -> coco17 -> h36m17``) come back multiplied out.
    """
    return dict(_table(get_layout(src).name, get_layout(dst).name))


def missing_joints(src: str, dst: str) -> list[str]:
    """Joints of ``dst`` that cannot be formed from ``src`` (NaN after :func:`convert_layout`)."""
    s, d = get_layout(src).name, get_layout(dst).name
    table = _table(s, d)
    return [n for n in _LAYOUTS[d].joint_names if n not in table]


@cache
def _compiled(src: str, dst: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gather form of a table: ``idx`` (J_dst, K) source indices, ``w`` (J_dst, K) weights, ``missing`` (J_dst,).

    Rows are padded with their own first source at weight 0, so padding adds no NaN a row did not have.
    """
    s, d = _LAYOUTS[src], _LAYOUTS[dst]
    table = _table(src, dst)
    K = max((len(r) for r in table.values()), default=1)
    idx = np.zeros((d.num_joints, K), dtype=np.int64)
    w = np.zeros((d.num_joints, K))
    missing = np.ones(d.num_joints, dtype=bool)
    for j, name in enumerate(d.joint_names):
        row = table.get(name)
        if not row:
            continue
        missing[j] = False
        cols = [s.index(n) for n, _ in row]
        idx[j] = cols + [cols[0]] * (K - len(cols))
        w[j, : len(row)] = [v for _, v in row]
    for a in (idx, w, missing):
        a.setflags(write=False)
    return idx, w, missing


def convert_layout(
    points: np.ndarray | torch.Tensor,
    src: str,
    dst: str,
    *,
    confidence: bool = False,
    strict: bool = False,
) -> np.ndarray | torch.Tensor:
    """Convert keypoints from layout ``src`` to layout ``dst``.

    Args:
        points: ``(..., J_src, C)`` numpy array or torch tensor; ``C`` is 2 or 3 (pixels, metres, anything
            affine), or 3 or 4 when ``confidence`` is true.
        src: source layout name or alias (:func:`list_layouts`).
        dst: target layout name or alias.
        confidence: the last channel is a detection confidence, not a coordinate. A target joint's confidence
            is the minimum of its sources' (one weak source makes a weak virtual joint); a missing target's is 0.
        strict: raise if ``dst`` has joints that cannot be formed from ``src``, instead of returning them NaN.

    Returns:
        ``(..., J_dst, C)``, same library, dtype and device (integer input becomes floating point).
        Coordinates of missing targets are NaN; a NaN source coordinate makes every target that uses it NaN.

    Example:
        ``h36m = convert_layout(coco_kp, "coco17", "h36m17")`` for ``coco_kp`` of shape ``(T, 17, 2)``.
    """
    s, d = get_layout(src), get_layout(dst)
    idx, w, missing = _compiled(s.name, d.name)
    if strict and missing.any():
        names = [d.joint_names[j] for j in np.flatnonzero(missing)]
        raise KineposeError(
            f"convert_layout: joints {names} of '{d.name}' cannot be formed from '{s.name}' (strict=True); "
            f"without strict they come out NaN"
        )
    is_torch = isinstance(points, torch.Tensor)
    if is_torch:
        x = points if points.is_floating_point() else points.to(torch.get_default_dtype())
    else:
        x = np.asarray(points)
        x = x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)
    channels = (3, 4) if confidence else (2, 3)
    if x.ndim < 2 or x.shape[-2] != s.num_joints or x.shape[-1] not in channels:
        raise ShapeError(
            f"convert_layout: points has shape {tuple(x.shape)}; layout '{s.name}' expects (..., {s.num_joints}, C) "
            f"with {s.num_joints} joints and C = {' or '.join(map(str, channels))}"
            + (" (coordinates + confidence)" if confidence else " (add confidence=True for a confidence channel)")
        )
    nc = x.shape[-1] - int(confidence)  # coordinate channels
    Jd, K = idx.shape
    if is_torch:
        g = x.index_select(-2, torch.tensor(idx.reshape(-1), device=x.device))
        g = g.reshape(*x.shape[:-2], Jd, K, x.shape[-1])  # (..., J_dst, K, C)
        wt = torch.tensor(w, dtype=x.dtype, device=x.device)
        miss = torch.tensor(missing, device=x.device)
        out = (g[..., :nc] * wt[..., None]).sum(-2).masked_fill(miss[:, None], float("nan"))  # (..., J_dst, nc)
        if confidence:
            conf = g[..., nc].amin(-1).masked_fill(miss, 0.0)  # (..., J_dst)
            out = torch.cat([out, conf[..., None]], dim=-1)
        return out
    g = x[..., idx, :]  # (..., J_dst, K, C)
    out = (g[..., :nc] * w.astype(x.dtype)[..., None]).sum(-2)  # (..., J_dst, nc)
    out[..., missing, :] = np.nan
    if confidence:
        conf = g[..., nc].min(-1)  # (..., J_dst)
        conf[..., missing] = 0.0
        out = np.concatenate([out, conf[..., None]], axis=-1)
    return out


# ----------------------------------------------------------------------------------------------- skeletons


def _rest_positions(layout: Layout) -> np.ndarray:
    """(J, 3) rest positions, metres, in the h36m17 preset's frame (Y up, facing +z, left at +x)."""
    if layout.num_joints == 21 and layout.parents == _data.HAND21_PARENTS:  # the hand layouts: kinepose's hand
        hand = _hand21_preset()
        pos = np.zeros((21, 3))
        for j, p in enumerate(hand.parents):
            pos[j] = hand.offsets[j] + (pos[p] if p >= 0 else 0.0)
        return pos
    table = {**_data.REST_LEFT, **_data.REST_OVERRIDES.get(layout.name, {})}
    out = []
    for n in layout.joint_names:
        mirrored = n.replace("right", "left")
        if n in table:
            out.append(table[n])
        elif mirrored in table:
            x, y, z = table[mirrored]
            out.append((-x, y, z))
        else:  # pragma: no cover - a data bug, caught by the tests over every layout
            raise KineposeError(f"layout '{layout.name}': no rest position for joint {n!r}")
    return np.array(out, dtype=np.float64)


@cache
def _skeleton(name: str) -> Skeleton:
    layout = _LAYOUTS[name]
    pos = _rest_positions(layout)
    offsets = np.array([pos[j] - (pos[p] if p >= 0 else 0.0) for j, p in enumerate(layout.parents)])
    has_child = {p for p in layout.parents if p >= 0}
    kinds = ["ball" if j in has_child else "end" for j in range(layout.num_joints)]
    return Skeleton(layout.name, layout.joint_names, layout.parents, offsets, kinds,
                    left_right=layout.left_right, lateral_axis=0)  # fmt: skip


def layout_skeleton(name: str) -> Skeleton:
    """A :class:`Skeleton` with the layout's names, order and tree, for plotting and for IK of layouts that
    have no preset.

    Rest pose: a plausible standing adult (arms down, palms in; hands: kinepose's open hand21 rest), metres,
    Y up, facing +z, the subject's left at +x, mid-hips at the origin. Joints with children are ``"ball"``,
    leaves ``"end"``; no hinges or limits (use :func:`~kinepose.skeleton.get_skeleton` for the presets).
    Built once, then shared.
    """
    return _skeleton(get_layout(name).name)
