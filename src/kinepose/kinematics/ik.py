"""Analytic inverse kinematics for any :class:`~kinepose.skeleton.Skeleton`.

Joints are solved root first, each from the already-solved global rotation of its parent and the
positions of the points it moves. The solver of each joint is fixed by the skeleton's structure
(:func:`ik_plan`); the work is done by a compiled kernel (:mod:`kinepose.kinematics._ik_kernel`,
Numba), one pose per iteration, all cores for large batches.

**The points a joint moves** (its *targets*) are its children with a non-zero rest offset and, through
children of zero length (CMU's ``LHipJoint``, ``LowerBack``, ``LeftShoulder``...), the first descendants
that have one. **Split at zero-length joints**: positions cannot tell a joint's rotation from that of a
zero-length child, so the parent takes the rotation that best fits *all* its targets with its
zero-length children at rest, and each zero-length joint then takes the smallest remaining rotation
that reproduces its own children exactly. Where the rig never moves a zero-length joint (CMU's hip
joints) this gives the parent's exact rotation and identity for the zero-length joint.

Solvers:

``kabsch``
    two or more non-collinear targets: the least-squares rotation of the rest vectors onto the observed
    ones (closed form for coplanar rest vectors, the polar decomposition otherwise). Its **global**
    rotation is determined by positions.
``two_bone``
    a ball joint whose single target is a hinge with a target of its own (hip-knee-ankle,
    shoulder-elbow-wrist, finger MCP-PIP-DIP): the hinge angle follows from the angle between the two
    bones; of its two solutions the one that keeps the ball joint closer to rest wins, a violation of the
    hinge limits costing 4 rad per rad, and more than 10 deg outside them ruling a solution out (with
    ``respect_limits``); the hinge is then clamped into its limits; then the ball
    joint takes the first bone exactly onto its observed direction and twists about it to best match
    the second. Determined unless the limb is straight (``IKResult.twist_ambiguous``; solved as ``swing``).
``hinge``
    a hinge joint with targets: the angle about its axis that best aligns them (planar Procrustes),
    clamped to the joint's limits. Determined when its parent's global rotation is.
``swing``
    a ball joint with one target (or only collinear targets): the shortest-arc rotation; the twist about
    the bone is not determined by positions and is zero unless given (``twist``).
``rest``
    a rotated joint with no target (DeepMimic's neck and ankles): identity unless given (``free``).
``end``
    an end site: no rotation.

**Determinacy.** ``determined_global[j]``: the positions fix joint j's rotation relative to the world.
``determined[j]``: they fix its **local** rotation, which also needs its parent's global rotation (a
hand whose forearm's twist is unknown has a known global but an unknown local rotation).
``IKResult.valid`` is the per-frame local determinacy: False where a point it needs is missing or the
limb is straight.

**Missing joints.** A joint whose position holds NaN is missing in that frame: the solvers use the
remaining points (a Kabsch joint with one point left falls back to ``swing``), joints that lose their
points keep their rest (or given) rotation, and ``valid`` is False for them. A missing root is placed
by a rigid fit of its targets (and its rotation solved from them); a frame with no joint at all holds the
nearest frame's root in the rest pose. Infinite values are an error.

For clean positions with the skeleton's bone lengths, ``FK(IK(x)) == x`` to round-off.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import torch

from kinepose._validation import as_tensor, check_joints
from kinepose.errors import KineposeError, NonFiniteError, ShapeError
from kinepose.kinematics import _ik_kernel as K
from kinepose.skeleton.core import Skeleton

__all__ = [
    "IKPlan", "IKResult", "analytic_ik", "determined_mask", "ik_plan", "ik_targets", "moving_zero_length_joints",
    "observable_mask", "zero_length_joints",
]  # fmt: skip

SOLVERS = ("kabsch", "two_bone", "hinge", "anchored", "swing", "rest", "end")
OBSERVABLE_SOLVERS = ("kabsch", "two_bone", "hinge")
_EPS = 1e-9  # metres: a bone shorter than this has zero length
_CODE_NAME = {K.END: "end", K.REST: "rest", K.KABSCH2: "kabsch", K.KABSCH3: "kabsch", K.TWO_BONE: "two_bone",
              K.HINGE: "hinge", K.SWING: "swing", K.ANCHORED: "anchored"}  # fmt: skip


@dataclass
class IKResult:
    """Result of :func:`analytic_ik`.

    Attributes:
        local_quat: (..., J, 4) w,x,y,z local rotations (identity for end sites and undetermined joints
            unless ``twist``/``free`` were given).
        root_pos: (..., 3) root positions.
        global_rotmat: (..., J, 3, 3) global rotations.
        observable: (J,) bool, the same as ``determined_global`` (kept for older code).
        twist_ambiguous: (..., J) bool, True where a two-bone limb is straight in that frame.
        solvers: the solver used for each joint (see the module docstring).
        determined: (J,) bool, True where positions fix the joint's local rotation.
        determined_global: (J,) bool, True where positions fix the joint's global rotation.
        valid: (..., J) bool, ``determined`` in that frame (False where a needed point is missing or a
            limb is straight). None for results that do not track it.
    """

    local_quat: torch.Tensor
    root_pos: torch.Tensor
    global_rotmat: torch.Tensor
    observable: torch.Tensor
    twist_ambiguous: torch.Tensor
    solvers: tuple[str, ...]
    determined: torch.Tensor | None = None
    determined_global: torch.Tensor | None = None
    valid: torch.Tensor | None = None


@dataclass(frozen=True, eq=False)
class IKPlan:
    """A skeleton compiled for the kernel: solver codes and each joint's targets as flat arrays."""

    parents: np.ndarray  # (J,) int64
    solver: np.ndarray  # (J,) int64 kernel codes
    tptr: np.ndarray  # (J + 1,) int64: targets of joint j are tidx[tptr[j]:tptr[j + 1]]
    tidx: np.ndarray  # (T,) int64 target joint indices
    trest: np.ndarray  # (T, 3) rest vector from the joint to each target, in the joint's frame
    basis: np.ndarray  # (J, 3, 3) rows e1, e2, e1 x e2 spanning a coplanar Kabsch joint's rest vectors
    axes: np.ndarray  # (J, 3)
    limits: np.ndarray  # (J, 2) radians, nan = none
    tb_child: np.ndarray  # (J,) hinge child of a two-bone joint (-1 elsewhere)
    tb_grand: np.ndarray  # (J,) its target
    det_local: np.ndarray  # (J,) bool
    det_global: np.ndarray  # (J,) bool
    names: tuple[str, ...]  # solver names


def ik_targets(skeleton: Skeleton, j: int, moving: frozenset[int] = frozenset()) -> list[tuple[int, np.ndarray]]:
    """The points joint ``j`` moves: ``(joint, rest vector from j in j's frame)`` for each child with a
    non-zero offset and, through zero-length children (except those in ``moving``), their first
    descendants that have one."""
    out: list[tuple[int, np.ndarray]] = []
    for c in skeleton.children[j]:
        off = skeleton.offsets[c]
        if np.linalg.norm(off) > _EPS:
            out.append((c, off.copy()))
        elif skeleton.kinds[c] != "end" and c not in moving:
            out.extend((k, off + r) for k, r in ik_targets(skeleton, c, moving))
    return out


def zero_length_joints(skeleton: Skeleton) -> list[int]:
    """Rotated joints whose rest offset is zero (they sit on their parent)."""
    return [j for j in range(1, skeleton.num_joints)
            if skeleton.kinds[j] != "end" and np.linalg.norm(skeleton.offsets[j]) <= _EPS]  # fmt: skip


def moving_zero_length_joints(skeleton: Skeleton, joints: torch.Tensor, tol_deg: float = 1.0) -> list[str]:
    """Zero-length joints that the motion shows rotating relative to their parent.

    Positions cannot split a rotation between a joint and a zero-length child, but a clip can show that
    a zero-length child moves. The points a joint moves fall into groups: its direct children (rigid with
    it by definition) and, per zero-length child, the points reached through it. Two groups are rigid
    with each other when the angles between their points (seen from the joint) keep their rest values
    (median departure at most ``tol_deg``). The largest set of mutually rigid groups that still fixes the
    joint's rotation (the direct children's group always in it) is kept; the zero-length children outside
    it are moving (when no rigid subset fixes it, all are). CMU's ``LowerBack`` moves (the spine bends over
    the pelvis), its ``LHipJoint`` and ``RHipJoint`` never do. Moving joints are left out of their parent's
    fit (:func:`analytic_ik`'s ``moving``) and take their own rotation.

    Args:
        joints: (..., J, 3) positions (NaN = missing; ignored).
        tol_deg: median departure from the rest angle, in degrees, above which two groups count as moving
            relative to each other.
    """
    from itertools import combinations

    x = as_tensor(joints, "joints").detach().double().reshape(-1, skeleton.num_joints, 3)
    moving: set[int] = set()
    zl = set(zero_length_joints(skeleton))
    for j in range(skeleton.num_joints):
        kids = [c for c in skeleton.children[j] if c in zl]
        if not kids or skeleton.kinds[j] == "end":
            continue
        groups: dict[int, list[tuple[int, np.ndarray]]] = {-1: []}  # -1: direct children
        for c in skeleton.children[j]:
            if c in zl:
                groups[c] = [(k, skeleton.offsets[c] + r) for k, r in ik_targets(skeleton, c, frozenset(moving))]
            elif np.linalg.norm(skeleton.offsets[c]) > _EPS:
                groups[-1].append((c, skeleton.offsets[c].copy()))
        groups = {g: pts for g, pts in groups.items() if pts}
        if len(groups) < 2:
            continue

        def departure(a: list, b: list, j: int = j) -> float:
            worst = 0.0
            for k, u in a:
                for o, v in b:
                    a0 = np.degrees(np.arccos(np.clip(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)), -1, 1)))
                    du, dv = x[:, k] - x[:, j], x[:, o] - x[:, j]
                    cos = (du * dv).sum(-1) / (du.norm(dim=-1) * dv.norm(dim=-1))
                    dev = (torch.rad2deg(torch.arccos(cos.clamp(-1, 1))) - a0).abs()
                    dev = dev[torch.isfinite(dev)]
                    if len(dev):
                        worst = max(worst, float(dev.median()))
            return worst

        names = list(groups)
        rigid = {(a, b): departure(groups[a], groups[b]) <= tol_deg for a, b in combinations(names, 2)}
        best: tuple[int, ...] = ()
        for size in range(len(names), 0, -1):
            for subset in combinations(names, size):
                if -1 in groups and -1 not in subset:
                    continue
                if all(rigid[(a, b)] for a, b in combinations(subset, 2)):
                    pts = np.array([r for g in subset for _, r in groups[g]]).reshape(-1, 3)
                    if _rank(pts) >= 2:
                        best = subset
                        break
            if best:
                break
        # no rigid subset fixes the joint: the split is not known, so every zero-length child moves (the
        # joint itself then has nothing to fit and is undetermined; its children carry the rotation)
        moving.update(c for c in names if c != -1 and c not in best)
    return [skeleton.joint_names[c] for c in sorted(moving)]


def _rank(vectors: np.ndarray) -> int:
    if len(vectors) == 0:
        return 0
    s = np.linalg.svd(np.asarray(vectors), compute_uv=False)
    return int((s > 1e-9 * max(1.0, float(s[0]))).sum())


@cache
def _compile(skeleton: Skeleton, moving: frozenset[int] = frozenset()) -> IKPlan:
    J = skeleton.num_joints
    targets = []
    for j in range(J):
        tg = ik_targets(skeleton, j, moving)
        direct = [(k, r) for k, r in tg if skeleton.parents[k] == j]
        if len(direct) < len(tg) and _rank(np.array([r for _, r in direct]).reshape(-1, 3)) >= 2:
            tg = direct  # children with bones of their own fix the joint: zero-length children take the rest
        elif direct and len(direct) < len(tg):
            tg = direct[:1] + [t for t in tg if t[0] != direct[0][0]]  # anchored: that child first
        targets.append(tg)
    solver = np.zeros(J, np.int64)
    basis = np.zeros((J, 3, 3))
    tb_child = np.full(J, -1, np.int64)
    tb_grand = np.full(J, -1, np.int64)
    for j, kind in enumerate(skeleton.kinds):
        tg = targets[j]
        rest = np.array([r for _, r in tg]).reshape(-1, 3)
        if kind == "end":
            solver[j] = K.END
        elif not tg:
            solver[j] = K.REST
        elif kind == "hinge":
            a = skeleton.hinge_axes[j]
            in_plane = rest - np.outer(rest @ a, a)
            solver[j] = K.HINGE if np.linalg.norm(in_plane, axis=-1).max() > _EPS else K.REST
        elif skeleton.parents[tg[0][0]] == j and any(skeleton.parents[k] != j for k, _ in tg):
            solver[j] = K.ANCHORED if _rank(rest) >= 2 else K.SWING
        elif (rank := _rank(rest)) >= 2:
            solver[j] = K.KABSCH3 if rank == 3 else K.KABSCH2
            if rank == 2:
                vt = np.linalg.svd(rest)[2]
                basis[j] = [vt[0], vt[1], np.cross(vt[0], vt[1])]
        else:
            c = tg[0][0]
            direct = skeleton.parents[c] == j
            if len(tg) == 1 and direct and skeleton.kinds[c] == "hinge" and targets[c]:
                g, o_g = targets[c][0]
                if np.linalg.norm(np.cross(skeleton.hinge_axes[c], o_g)) > _EPS:
                    solver[j], tb_child[j], tb_grand[j] = K.TWO_BONE, c, g
                    continue
            solver[j] = K.SWING
    det_global = np.zeros(J, bool)
    det_local = np.zeros(J, bool)
    for j, s in enumerate(solver):
        p = skeleton.parents[j]
        parent_ok = p < 0 or det_global[p]
        if s in (K.KABSCH2, K.KABSCH3, K.TWO_BONE):
            det_global[j], det_local[j] = True, parent_ok
        elif s == K.HINGE:
            det_global[j] = det_local[j] = parent_ok
    tptr = np.cumsum([0] + [len(t) for t in targets]).astype(np.int64)
    tidx = np.array([k for t in targets for k, _ in t], np.int64)
    trest = np.array([r for t in targets for _, r in t], np.float64).reshape(-1, 3)
    return IKPlan(
        np.array(skeleton.parents, np.int64), solver, tptr, tidx, trest, basis,
        np.array(skeleton.hinge_axes), np.array(skeleton.limits), tb_child, tb_grand, det_local, det_global,
        tuple(_CODE_NAME[int(s)] for s in solver),
    )  # fmt: skip


def _moving(skeleton: Skeleton, moving) -> frozenset[int]:
    if not moving:
        return frozenset()
    idx = frozenset(skeleton.index(m) if isinstance(m, str) else int(m) for m in moving)
    zl = set(zero_length_joints(skeleton))
    bad = [skeleton.joint_names[i] for i in sorted(idx) if i not in zl]
    if bad:
        raise KineposeError(f"moving: {bad} are not zero-length joints of skeleton '{skeleton.name}'; "
                            f"its zero-length joints are {[skeleton.joint_names[i] for i in sorted(zl)]}")  # fmt: skip
    return idx


def ik_plan(skeleton: Skeleton, moving=None) -> tuple[str, ...]:
    """The solver each joint of ``skeleton`` uses (one of ``kabsch``, ``two_bone``, ``hinge``, ``swing``,
    ``rest``, ``end``)."""
    return _compile(skeleton, _moving(skeleton, moving)).names


def observable_mask(skeleton: Skeleton, moving=None) -> np.ndarray:
    """(J,) bool: True for joints whose **global** rotation the joint positions determine."""
    return _compile(skeleton, _moving(skeleton, moving)).det_global.copy()


def determined_mask(skeleton: Skeleton, local: bool = True, moving=None) -> np.ndarray:
    """(J,) bool: True for joints whose local (``local=True``) or global rotation the positions determine."""
    plan = _compile(skeleton, _moving(skeleton, moving))
    return (plan.det_local if local else plan.det_global).copy()


def _fill_missing_root(plan: IKPlan, x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Place a missing root by a rigid fit (rotation and translation) of its targets' rest vectors; a frame
    with no joint at all takes the root of the nearest frame that has one. Marks the placed roots valid (so
    the root's rotation is solved from its targets) and returns the frames placed (the caller marks them
    undetermined)."""
    frames = np.flatnonzero(~valid[:, 0])
    if len(frames) == 0:
        return frames
    idx, rest = plan.tidx[plan.tptr[0] : plan.tptr[1]], plan.trest[plan.tptr[0] : plan.tptr[1]]
    empty = []
    for n in frames:
        ok = valid[n, idx]
        if not ok.any():
            seen = np.flatnonzero(valid[n])
            if len(seen) == 0:
                empty.append(n)
                continue
            x[n, 0] = x[n, seen].mean(0)  # nothing better to go on; the root stays marked undetermined
            continue
        r, d = rest[ok], x[n, idx[ok]]
        if ok.sum() >= 2 and _rank(r - r.mean(0)) >= 2:
            rc, dc = r - r.mean(0), d - d.mean(0)
            u, _, vt = np.linalg.svd(dc.T @ rc)
            R = u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
            x[n, 0] = d.mean(0) - R @ r.mean(0)
        else:
            x[n, 0] = (d - r).mean(0)
    placed = np.setdiff1d(frames, empty)
    valid[placed, 0] = True
    if empty:
        have = np.flatnonzero(valid[:, 0])
        if len(have) == 0:
            raise KineposeError("joints: no frame has a joint with a position (all NaN)")
        for n in empty:  # an empty frame (a detector dropout) holds the nearest frame's root, in the rest pose
            x[n, 0] = x[have[np.argmin(np.abs(have - n))], 0]
    return frames


def analytic_ik(
    skeleton: Skeleton,
    joints: torch.Tensor,
    twist: torch.Tensor | None = None,
    free: torch.Tensor | None = None,
    respect_limits: bool = True,
    moving=None,
) -> IKResult:
    """Solve local rotations and root position from joint positions.

    Args:
        skeleton: the kinematic tree.
        joints: (..., J, 3) positions of every joint of ``skeleton`` (end sites included), metres, float32
            or float64 (kept). NaN marks a missing joint (see the module docstring).
        twist: optional (..., J) radians: each ``swing`` joint's rotation about its rest bone (what
            positions cannot tell; e.g. predicted by a model). Other joints ignore it.
        free: optional (..., J, 4) w,x,y,z rotations for ``rest`` joints (no point determines them).
        respect_limits: keep hinge angles within the skeleton's limits (default). Motion capture that
            itself leaves the limits (DeepMimic's dance_b hyperextends both knees by up to 6 deg in 4 frames)
            is then reproduced only up to the limit; ``False`` solves such frames exactly.
        moving: zero-length joints (names or indices) that rotate on their own, so their points are left
            out of their parent's fit (see :func:`moving_zero_length_joints`, which finds them in a clip).

    Returns:
        :class:`IKResult`. ``local_quat`` is canonical (``w >= 0``). FK of the result reproduces the
        (present) joints whatever ``twist`` and ``free`` are.
    """
    joints = as_tensor(joints, "joints")
    check_joints(joints, "joints", skeleton.num_joints, skeleton.name)
    batch = joints.shape[:-2]
    J = skeleton.num_joints
    dev = joints.device
    torch_dtype = joints.dtype if joints.dtype in (torch.float32, torch.float64) else torch.float32
    x = joints.detach().to("cpu", torch_dtype).reshape(-1, J, 3).numpy()
    if np.isinf(x).any():
        bad = np.argwhere(np.isinf(x))[0]
        where = tuple(int(i) for i in bad)
        raise NonFiniteError(f"joints: {int(np.isinf(x).sum())} infinite value(s), first at index {where} "
                             f"(NaN marks a missing joint; inf is not allowed)")  # fmt: skip
    valid = ~np.isnan(x).any(-1)
    plan = _compile(skeleton, _moving(skeleton, moving))
    placed = np.zeros(0, np.int64)
    if not valid.all():
        x = np.where(valid[..., None], x, 0.0).astype(x.dtype)
        placed = _fill_missing_root(plan, x, valid)
    x = np.ascontiguousarray(x)
    N = x.shape[0]
    tw = fr = None
    if twist is not None:
        tw = as_tensor(twist, "twist").detach().cpu()
        if tuple(tw.shape) != (*batch, J):
            raise ShapeError(f"twist: expected shape {(*batch, J)}, got {tuple(tw.shape)}")
        tw = tw.reshape(N, J).numpy()
    if free is not None:
        fr = as_tensor(free, "free").detach().cpu()
        if tuple(fr.shape) != (*batch, J, 4):
            raise ShapeError(f"free: expected shape {(*batch, J, 4)}, got {tuple(fr.shape)}")
        fr = fr.reshape(N, J, 4).numpy()
        fr = fr / np.linalg.norm(fr, axis=-1, keepdims=True)
    quat, G, det_frame, straight = K.solve(plan, x, valid, tw, fr, respect_limits)
    det_frame[placed, 0] = False  # a root placed by a fit of its children is not measured
    root = x[:, 0].copy()

    def out(a: np.ndarray, *shape: int) -> torch.Tensor:
        return torch.from_numpy(a).reshape(*batch, *shape).to(dev)

    return IKResult(
        local_quat=out(quat, J, 4),
        root_pos=out(root, 3),
        global_rotmat=out(G, J, 3, 3),
        observable=torch.from_numpy(plan.det_global.copy()),
        twist_ambiguous=out(straight, J),
        solvers=plan.names,
        determined=torch.from_numpy(plan.det_local.copy()),
        determined_global=torch.from_numpy(plan.det_global.copy()),
        valid=out(det_frame, J),
    )
