"""Least-squares skeleton fitting: the rotations whose forward kinematics best match noisy joints.

:func:`analytic_ik` reproduces clean positions exactly, but on noisy ones it follows every noisy bone
direction and errors add up along the chains. :func:`fit_skeleton` starts from the analytic solution
and minimizes ``sum_j w_j |FK(q)_j - x_j|^2`` over the root position and the rotations that positions
determine, with a few Levenberg-Marquardt steps per frame (batched; the Jacobian of forward kinematics
in closed form). Rotations that positions do not determine (joints without a child point) are left as
the initial solution gives them. Hinges keep one degree of freedom.
"""

from __future__ import annotations

import roma
import torch

from kinepose._validation import as_tensor, check_finite, check_joints
from kinepose.ik import IKResult, analytic_ik, ik_plan
from kinepose.kinematics import forward_kinematics_matrix
from kinepose.rotations import matrix_to_quat, quat_identity, quat_to_matrix
from kinepose.skeleton import Skeleton

__all__ = ["fit_skeleton"]


def _skew(v: torch.Tensor) -> torch.Tensor:
    z = torch.zeros_like(v[..., 0])
    return torch.stack(
        [
            torch.stack([z, -v[..., 2], v[..., 1]], -1),
            torch.stack([v[..., 2], z, -v[..., 0]], -1),
            torch.stack([-v[..., 1], v[..., 0], z], -1),
        ],
        -2,
    )


def _descendants(skeleton: Skeleton) -> torch.Tensor:
    """(J, J) float: entry (j, k) is 1 if joint k is j or lies below j."""
    J = skeleton.num_joints
    d = torch.eye(J)
    for k in range(J):
        p = skeleton.parents[k]
        while p >= 0:
            d[p, k] = 1.0
            p = skeleton.parents[p]
    return d


def _layout(skeleton: Skeleton) -> list[tuple[int, str, int]]:
    """(joint, 'ball'|'hinge', first parameter index) for every joint whose rotation moves a point."""
    out, k = [], 3  # parameters 0..2: root translation
    for j, solver in enumerate(ik_plan(skeleton)):
        if solver in ("kabsch", "two_bone", "swing"):
            out.append((j, "ball", k))
            k += 3
        elif solver == "hinge":
            out.append((j, "hinge", k))
            k += 1
    return out


def fit_skeleton(
    skeleton: Skeleton,
    joints: torch.Tensor,
    init: IKResult | None = None,
    iterations: int = 8,
    weights: torch.Tensor | None = None,
) -> IKResult:
    """Fit the skeleton's rotations and root position to (noisy) joint positions.

    Args:
        skeleton: the kinematic tree (its rest offsets are the bone lengths used).
        joints: (..., J, 3) target positions, metres.
        init: starting solution; by default :func:`kinepose.ik.analytic_ik` of ``joints``.
        iterations: Levenberg-Marquardt steps (each a batched linear solve per frame).
        weights: optional (..., J) non-negative weights of the joints (e.g. a visibility mask).

    Returns:
        An :class:`IKResult` with the fitted ``local_quat``, ``root_pos`` and ``global_rotmat``;
        ``observable`` and ``twist_ambiguous`` as in the initial solution.
    """
    joints = as_tensor(joints, "joints")
    check_joints(joints, "joints", skeleton.num_joints, skeleton.name)
    check_finite(joints, "joints")
    init = init if init is not None else analytic_ik(skeleton, joints)
    batch, J = joints.shape[:-2], skeleton.num_joints
    x = joints.reshape(-1, J, 3)
    N, dtype = x.shape[0], x.dtype
    w = torch.ones(N, J, dtype=dtype) if weights is None else weights.reshape(-1, J).to(dtype)
    sw = w.sqrt()[..., None].expand(N, J, 3).reshape(N, J * 3)
    L = quat_to_matrix(init.local_quat.reshape(-1, J, 4).to(dtype))
    root = init.root_pos.reshape(-1, 3).to(dtype)
    layout = _layout(skeleton)
    axes = skeleton.hinge_axes_tensor(dtype)
    off = skeleton.offsets_tensor(dtype)

    desc = _descendants(skeleton)  # (J, J) bool: k is j or below j

    def apply(L0: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """(N, J, 3, 3) local rotations moved by (N, P) parameters (right-multiplied increments)."""
        mats = list(L0.unbind(1))
        for j, kind, k in layout:
            v = p[:, k : k + 3] if kind == "ball" else axes[j] * p[:, k : k + 1]
            mats[j] = L0[:, j] @ roma.rotvec_to_rotmat(v)
        return torch.stack(mats, 1)

    pj = [j for j, _, _ in layout]  # joints with parameters, in parameter order
    dmask = desc[pj].to(dtype)  # (Q, J)
    # Column selector: ball joints keep their 3 columns, hinges one column along their axis.
    select = torch.zeros(len(pj), 3, 3 + sum(3 if k == "ball" else 1 for _, k, _ in layout) - 3, dtype=dtype)
    for q, (j, kind, k) in enumerate(layout):
        if kind == "ball":
            select[q, :, k - 3 : k] = torch.eye(3, dtype=dtype)
        else:
            select[q, :, k - 3] = axes[j]

    def jacobian(pos: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        """(N, 3J, P) derivative of the weighted positions. For an increment d at joint j (local frame),
        a point k below j moves by -[x_k - x_j]_x G_j d; a hinge's d is its axis times the angle."""
        rel = (pos[:, None, :, :] - pos[:, pj, None, :]) * dmask[None, :, :, None]  # (N, Q, J, 3)
        blocks = -_skew(rel) @ G[:, pj, None]  # (N, Q, J, 3, 3)
        rot_cols = torch.einsum("nqjab,qbp->njap", blocks, select)  # (N, J, 3, P - 3)
        trans = torch.eye(3, dtype=dtype).expand(N, J, 3, 3)  # root translation moves every joint
        Jm = torch.cat([trans, rot_cols], dim=-1)  # (N, J, 3, P)
        return Jm.reshape(N, J * 3, -1) * sw[..., None]

    lam = torch.full((N,), 1e-3, dtype=dtype)
    fk = forward_kinematics_matrix(skeleton, L, root, off)
    current = ((fk.positions - x).square().sum(-1) * w).sum(-1)  # (N,)
    for _ in range(iterations):
        r = (fk.positions - x).reshape(N, -1) * sw  # (N, 3J)
        Jm = jacobian(fk.positions, fk.global_rotmat)
        JtJ = Jm.transpose(1, 2) @ Jm
        g = Jm.transpose(1, 2) @ r[..., None]
        diag = torch.diagonal(JtJ, dim1=1, dim2=2)
        A = JtJ + torch.diag_embed(lam[:, None] * diag + 1e-9)
        step = -torch.linalg.solve(A, g)[..., 0]  # (N, P)
        L_new = apply(L, step)
        root_new = root + step[:, :3]
        fk_new = forward_kinematics_matrix(skeleton, L_new, root_new, off)
        new = ((fk_new.positions - x).square().sum(-1) * w).sum(-1)
        better = new < current
        L = torch.where(better[:, None, None, None], L_new, L)
        root = torch.where(better[:, None], root_new, root)
        fk = forward_kinematics_matrix(skeleton, L, root, off)
        current = torch.where(better, new, current)
        lam = torch.where(better, lam * 0.3, lam * 10.0).clamp(1e-9, 1e6)

    quat = matrix_to_quat(L)
    end = torch.tensor([k == "end" for k in skeleton.kinds])[:, None]
    quat = torch.where(end, quat_identity((J,), dtype=dtype), quat)
    return IKResult(
        local_quat=quat.reshape(*batch, J, 4),
        root_pos=root.reshape(*batch, 3),
        global_rotmat=fk.global_rotmat.reshape(*batch, J, 3, 3),
        observable=init.observable,
        twist_ambiguous=init.twist_ambiguous,
        solvers=init.solvers,
    )
