"""The previous kinepose analytic IK (torch, one batched op per joint), kept only for the speed benchmark.

A verbatim copy of ``src/kinepose/kinematics/ik.py`` at commit 8b99287, before the Numba kernel
(:mod:`kinepose.kinematics._ik_kernel`) replaced it; only this paragraph is new. It imports nothing from
``kinepose.kinematics`` (only helpers unchanged since), so ``benchmarks/speed.py`` can time it side by
side with the current solver: ``sys.path.insert(0, "benchmarks"); import _reference_ik_torch``. It lacks
the later features (zero-length bones, missing joints, clamped hinge limits, given twist and free joints).

Original module docstring:
Analytic inverse kinematics for any :class:`~kinepose.skeleton.Skeleton`.

Joints are solved root first, each from the already-solved global rotation of its parent and the
positions of its children. The solver of each joint is fixed by the skeleton's structure
(:func:`ik_plan`):

``kabsch``
    a ball joint with two or more non-collinear child offsets: best rigid fit (roma's special
    Procrustes) of the rest offsets onto the observed child vectors. Fully observable.
``two_bone``
    a ball joint whose single child is a hinge with a child of its own (hip-knee-ankle,
    shoulder-elbow-wrist, finger MCP-PIP-DIP): the hinge angle follows from the angle between the two
    bones; of its two solutions the one that respects the hinge limits (and keeps the ball joint
    closer to rest) wins; then the ball joint takes the first bone exactly onto its observed direction
    and twists about it to best match the second. Observable unless the limb
    is straight, where the twist about the limb is not: those frames are flagged in
    ``IKResult.twist_ambiguous`` and solved as ``swing``.
``hinge``
    a hinge joint with children: the angle about its axis that best aligns its children (planar
    Procrustes). Observable.
``swing``
    a ball joint with one child (or only collinear children): the shortest-arc rotation; the twist
    about the bone is not observable and is left at rest (zero).
``rest``
    a rotated joint with no child point (DeepMimic's neck and ankles): not observable, identity.
``end``
    an end site: no rotation.

For clean positions with the skeleton's bone lengths, ``FK(IK(x)) == x`` to round-off.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import roma
import torch

from kinepose._validation import as_tensor, check_finite, check_joints
from kinepose.geometry.rotations import matrix_to_quat, quat_identity
from kinepose.skeleton.core import Skeleton

__all__ = ["IKResult", "analytic_ik", "ik_plan", "observable_mask"]

SOLVERS = ("kabsch", "two_bone", "hinge", "swing", "rest", "end")
OBSERVABLE_SOLVERS = ("kabsch", "two_bone", "hinge")
_STRAIGHT_SIN = 1e-4  # below this sine between the two bones, a limb counts as straight
_LIMIT_WEIGHT = 4.0  # radians of ball-joint rotation that one radian of hinge-limit violation costs


@dataclass
class IKResult:
    """Result of :func:`analytic_ik`.

    Attributes:
        local_quat: (..., J, 4) w,x,y,z local rotations (identity for end sites and unobservable joints).
        root_pos: (..., 3) root positions.
        global_rotmat: (..., J, 3, 3) global rotations.
        observable: (J,) bool, True where positions determine the joint's full rotation.
        twist_ambiguous: (..., J) bool, True where a two-bone limb is straight in that frame.
        solvers: the solver used for each joint (see the module docstring).
    """

    local_quat: torch.Tensor
    root_pos: torch.Tensor
    global_rotmat: torch.Tensor
    observable: torch.Tensor
    twist_ambiguous: torch.Tensor
    solvers: tuple[str, ...]


def _rank(vectors: np.ndarray, tol: float = 1e-9) -> int:
    if len(vectors) == 0:
        return 0
    return int(np.linalg.matrix_rank(vectors, tol=tol))


@cache
def _plan(skeleton: Skeleton) -> tuple[str, ...]:
    plan = []
    for j, kind in enumerate(skeleton.kinds):
        kids = [c for c in skeleton.children[j] if np.linalg.norm(skeleton.offsets[c]) > 1e-9]
        if kind == "end":
            plan.append("end")
        elif not kids:
            plan.append("rest")
        elif kind == "hinge":
            axis = skeleton.hinge_axes[j]
            in_plane = [skeleton.offsets[c] - axis * (axis @ skeleton.offsets[c]) for c in kids]
            plan.append("hinge" if max(np.linalg.norm(v) for v in in_plane) > 1e-9 else "rest")
        elif _rank(skeleton.offsets[kids]) >= 2:
            plan.append("kabsch")
        else:
            c = kids[0]
            grand = [g for g in skeleton.children[c] if np.linalg.norm(skeleton.offsets[g]) > 1e-9]
            if len(kids) == 1 and skeleton.kinds[c] == "hinge" and grand:
                axis = skeleton.hinge_axes[c]
                o_g = skeleton.offsets[grand[0]]
                if np.linalg.norm(np.cross(axis, o_g)) > 1e-9:
                    plan.append("two_bone")
                    continue
            plan.append("swing")
    return tuple(plan)


def ik_plan(skeleton: Skeleton) -> tuple[str, ...]:
    """The solver each joint of ``skeleton`` uses (one of ``kabsch``, ``two_bone``, ``hinge``, ``swing``,
    ``rest``, ``end``)."""
    return _plan(skeleton)


def observable_mask(skeleton: Skeleton) -> np.ndarray:
    """(J,) bool: True for rotated joints whose full rotation the joint positions determine."""
    return np.array([s in OBSERVABLE_SOLVERS for s in _plan(skeleton)])


def _axis_angle_matrix(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """(3,) unit axis, (N,) angles -> (N, 3, 3) rotation matrices (Rodrigues)."""
    return roma.rotvec_to_rotmat(angle[:, None] * axis)


def _shortest_arc(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(N, 3), (N, 3) non-zero vectors -> (N, 3, 3) smallest rotation taking direction u to direction v."""
    u = u / u.norm(dim=-1, keepdim=True)
    v = v / v.norm(dim=-1, keepdim=True)
    w = 1.0 + (u * v).sum(-1, keepdim=True)
    xyz = torch.linalg.cross(u, v, dim=-1)
    # Antiparallel: rotate by pi about any axis orthogonal to u.
    helper = torch.where(
        u[:, :1].abs() < 0.9,
        torch.tensor([1.0, 0, 0], dtype=u.dtype, device=u.device),
        torch.tensor([0, 1.0, 0], dtype=u.dtype, device=u.device),
    )
    ortho = torch.linalg.cross(u, helper, dim=-1)
    anti = w[:, 0] < 1e-9
    q = torch.where(anti[:, None], torch.cat([torch.zeros_like(w), ortho], -1), torch.cat([w, xyz], -1))
    q = q / q.norm(dim=-1, keepdim=True)
    return roma.unitquat_to_rotmat(torch.cat([q[:, 1:], q[:, :1]], dim=-1))


def _swing_twist(u1: torch.Tensor, u2: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor) -> torch.Tensor:
    """Rotation (N, 3, 3) taking direction u1 exactly onto d1, then twisting about d1 so that u2 best
    matches d2. Better conditioned than a 2-vector Kabsch fit when the two bones are nearly parallel."""
    R1 = _shortest_arc(u1, d1)
    n = d1 / d1.norm(dim=-1, keepdim=True)
    v = (R1 @ u2[..., None])[..., 0]
    p = v - (v * n).sum(-1, keepdim=True) * n
    q = d2 - (d2 * n).sum(-1, keepdim=True) * n
    psi = torch.atan2((torch.linalg.cross(p, q, dim=-1) * n).sum(-1), (p * q).sum(-1))
    return roma.rotvec_to_rotmat(psi[:, None] * n) @ R1


def _register(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Rotation R (N, 3, 3) minimizing sum_i |R src_i - dst_i|^2; src (N, K, 3) or (K, 3), dst (N, K, 3)."""
    return roma.rigid_vectors_registration(src.expand_as(dst), dst)


def _wrap(a: torch.Tensor) -> torch.Tensor:
    return torch.remainder(a + torch.pi, 2 * torch.pi) - torch.pi


def analytic_ik(skeleton: Skeleton, joints: torch.Tensor) -> IKResult:
    """Solve local rotations and root position from joint positions.

    Args:
        skeleton: the kinematic tree.
        joints: (..., J, 3) positions of every joint of ``skeleton`` (end sites included), metres.

    Returns:
        :class:`IKResult`. ``local_quat`` is canonical (``w >= 0``).
    """
    joints = as_tensor(joints, "joints")
    check_joints(joints, "joints", skeleton.num_joints, skeleton.name)
    check_finite(joints, "joints")
    batch = joints.shape[:-2]
    J = skeleton.num_joints
    x = joints.reshape(-1, J, 3)  # (N, J, 3)
    N, dtype = x.shape[0], x.dtype
    dev = x.device
    off = skeleton.offsets_tensor(dtype, dev)
    axes = skeleton.hinge_axes_tensor(dtype, dev)
    plan = _plan(skeleton)
    eye = torch.eye(3, dtype=dtype, device=dev).expand(N, 3, 3)
    G: list[torch.Tensor] = [eye] * J  # global rotations, filled root first
    local: list[torch.Tensor] = [eye] * J
    ambiguous = torch.zeros(N, J, dtype=torch.bool, device=dev)

    for j in range(J):
        p = skeleton.parents[j]
        Gp = eye if p < 0 else G[p]
        solver = plan[j]
        kids = [c for c in skeleton.children[j] if float(off[c].norm()) > 1e-9]
        if solver in ("end", "rest"):
            L = eye
        elif solver == "kabsch":
            d = x[:, kids] - x[:, j : j + 1]  # (N, K, 3) world
            d_local = (Gp.transpose(-1, -2) @ d.transpose(-1, -2)).transpose(-1, -2)
            L = _register(off[kids], d_local)
        elif solver == "hinge":
            a = axes[j]
            d = x[:, kids] - x[:, j : j + 1]
            v = (Gp.transpose(-1, -2) @ d.transpose(-1, -2)).transpose(-1, -2)  # (N, K, 3) in parent frame
            u = off[kids]  # (K, 3)
            u_p = u - (u @ a)[:, None] * a
            v_p = v - (v @ a)[..., None] * a
            s = (torch.linalg.cross(u_p.expand_as(v_p), v_p, dim=-1) @ a).sum(-1)
            c = (u_p * v_p).sum(-1).sum(-1)
            L = _axis_angle_matrix(a, torch.atan2(s, c))
        elif solver == "swing":
            c0 = kids[0]
            v = (Gp.transpose(-1, -2) @ (x[:, c0] - x[:, j])[..., None])[..., 0]
            L = _shortest_arc(off[c0].expand_as(v), v)
        else:  # two_bone
            L, straight = _two_bone(skeleton, j, kids[0], x, Gp, off, axes)
            ambiguous[:, j] = straight
        local[j] = L
        G[j] = Gp @ L

    local_rot = torch.stack(local, dim=1)  # (N, J, 3, 3)
    glob = torch.stack(G, dim=1)
    quat = matrix_to_quat(local_rot)
    ident = quat_identity((J,), dtype=dtype, device=dev)
    end = torch.tensor([k == "end" for k in skeleton.kinds], device=dev)[:, None]
    quat = torch.where(end, ident, quat)
    return IKResult(
        local_quat=quat.reshape(*batch, J, 4),
        root_pos=x[:, 0].reshape(*batch, 3),
        global_rotmat=glob.reshape(*batch, J, 3, 3),
        observable=torch.from_numpy(observable_mask(skeleton)),
        twist_ambiguous=ambiguous.reshape(*batch, J),
        solvers=plan,
    )


def _two_bone(
    skeleton: Skeleton, j: int, c: int, x: torch.Tensor, Gp: torch.Tensor, off: torch.Tensor, axes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ball joint ``j`` whose single child ``c`` is a hinge. Returns local rotation (N, 3, 3) of ``j``
    and the (N,) straight-limb flags."""
    g = next(k for k in skeleton.children[c] if float(off[k].norm()) > 1e-9)
    a, o_c, o_g = axes[c], off[c], off[g]
    # Observed bones, in the parent's frame of j.
    Gp_T = Gp.transpose(-1, -2)
    d1 = (Gp_T @ (x[:, c] - x[:, j])[..., None])[..., 0]
    d2 = (Gp_T @ (x[:, g] - x[:, c])[..., None])[..., 0]
    n1, n2 = d1.norm(dim=-1), d2.norm(dim=-1)
    cos_phi = (d1 * d2).sum(-1) / (n1 * n2).clamp_min(1e-12)
    sin_phi = torch.linalg.cross(d1, d2, dim=-1).norm(dim=-1) / (n1 * n2).clamp_min(1e-12)
    # o_c . R_a(theta) o_g = A + B cos(theta) + C sin(theta) must equal |o_c||o_g| cos(phi).
    o_g_par = a * (a @ o_g)
    A = o_c @ o_g_par
    B = o_c @ (o_g - o_g_par)
    C = o_c @ torch.linalg.cross(a, o_g, dim=-1)
    R0 = torch.sqrt(B * B + C * C)
    alpha = torch.atan2(C, B)
    target = (o_c.norm() * o_g.norm() * cos_phi - A) / R0
    delta = torch.acos(target.clamp(-1.0, 1.0))
    lo, hi = (float(v) for v in skeleton.limits[c])
    candidates = []
    for theta in (_wrap(alpha + delta), _wrap(alpha - delta)):
        u2 = _axis_angle_matrix(a, theta) @ o_g  # (N, 3) second bone at rest, hinge bent by theta
        L = _swing_twist(o_c.expand_as(d1), u2, d1, d2)
        violation = torch.zeros_like(theta)
        if np.isfinite(lo):
            violation = violation + (lo - theta).clamp_min(0)
        if np.isfinite(hi):
            violation = violation + (theta - hi).clamp_min(0)
        rest = torch.eye(3, dtype=L.dtype, device=L.device).expand_as(L)
        score = roma.rotmat_geodesic_distance(L, rest) + _LIMIT_WEIGHT * violation
        candidates.append((L, score))
    (L1, s1), (L2, s2) = candidates
    L = torch.where((s1 <= s2)[:, None, None], L1, L2)
    straight = sin_phi < _STRAIGHT_SIN
    if bool(straight.any()):
        swing = _shortest_arc(o_c.expand_as(d1), d1)
        L = torch.where(straight[:, None, None], swing, L)
    return L, straight
