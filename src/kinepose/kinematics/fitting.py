"""Least-squares skeleton fitting: the rotations whose forward kinematics best match noisy joints.

:func:`analytic_ik` reproduces clean positions exactly, but on noisy ones it follows every noisy bone
direction and errors add up along the chains. :func:`fit_skeleton` starts from the analytic solution
and minimizes ``sum_j w_j |FK(q)_j - x_j|^2`` over the root position and the rotations that positions
determine, with a few Levenberg-Marquardt steps per frame (batched; the Jacobian of forward kinematics
in closed form). Rotations that positions do not determine (joints without a child point) are left as
the initial solution gives them. Hinges keep one degree of freedom.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import roma
import torch

from kinepose._validation import as_tensor, check_finite, check_joints
from kinepose.errors import ShapeError
from kinepose.geometry.rotations import matrix_to_quat, quat_identity, quat_to_matrix
from kinepose.kinematics.fk import forward_kinematics_matrix
from kinepose.kinematics.ik import IKResult, analytic_ik, ik_plan
from kinepose.skeleton.core import Skeleton

__all__ = ["PosePrior", "bone_length_deviation", "estimate_noise_std", "fit_skeleton"]


@dataclass
class PosePrior:
    """Independent Gaussians on each joint's local rotation vector (axis * angle, radians).

    Attributes:
        mean: (J, 3) mean rotation vectors.
        std: (J, 3) standard deviations (floored, so no degree of freedom is frozen).
    """

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def from_rotations(cls, local_quat: torch.Tensor, min_std: float = 0.05) -> PosePrior:
        """Estimate from (N, J, 4) w,x,y,z local rotations (e.g. every frame of the training clips)."""
        rv = roma.rotmat_to_rotvec(quat_to_matrix(local_quat.double()))  # (N, J, 3)
        return cls(rv.mean(0), rv.std(0).clamp_min(min_std))


def bone_length_deviation(
    skeleton: Skeleton, joints: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """(..., J, 3) joints -> (...,) RMS difference (metres) between bone lengths and the skeleton's, over
    the bones whose two ends have non-zero ``weights`` (..., J) (all bones by default)."""
    parents = torch.tensor([max(p, 0) for p in skeleton.parents], device=joints.device)
    lengths = (joints - joints[..., parents, :]).norm(dim=-1)[..., 1:]  # (..., J - 1)
    rest = skeleton.offsets_tensor(joints.dtype, joints.device).norm(dim=-1)[1:]
    sq = (lengths - rest).square()
    if weights is None:
        return sq.mean(-1).sqrt()
    both = ((weights[..., 1:] > 0) & (weights[..., parents[1:]] > 0)).to(sq.dtype)
    return ((sq * both).sum(-1) / both.sum(-1).clamp_min(1)).sqrt()


def estimate_noise_std(skeleton: Skeleton, joints: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """(..., J, 3) joints -> (...,) noise std estimate (metres) from bone lengths: with i.i.d. Gaussian
    noise of std s per coordinate, a bone's length deviates from its rest length with std ~ s * sqrt(2)."""
    return bone_length_deviation(skeleton, joints, weights) / 2.0**0.5


def _prior_rows(prior: PosePrior, L: torch.Tensor, layout, axes: torch.Tensor):
    """Per parameter (after the 3 translations): residual (N, P - 3) and std (P - 3,) of the prior."""
    rv = roma.rotmat_to_rotvec(L)  # (N, J, 3)
    mean, std = prior.mean.to(L), prior.std.to(L)
    res, sd = [], []
    for j, kind, _ in layout:
        if kind == "ball":
            res.append(rv[:, j] - mean[j])
            sd.append(std[j])
        else:
            a = axes[j]
            res.append(((rv[:, j] - mean[j]) * a).sum(-1, keepdim=True))
            sd.append((std[j] * a.abs()).sum().reshape(1))
    return torch.cat(res, -1), torch.cat(sd)


def _prior_cost(prior: PosePrior, L: torch.Tensor, layout, axes: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    res, sd = _prior_rows(prior, L, layout, axes)
    return sigma**2 * (res / sd).square().sum(-1)


def _inv_right_jacobian(phi: torch.Tensor) -> torch.Tensor:
    """(N, 3) rotation vectors -> (N, 3, 3) inverse right Jacobians of SO(3): the derivative of
    ``rotvec(R exp(d))`` with respect to ``d`` at 0, ``I + [phi]/2 + (1/t^2 - (1 + cos t)/(2 t sin t)) [phi]^2``."""
    t = phi.norm(dim=-1)[:, None, None]
    K = _skew(phi)
    small = t < 1e-4
    ts = torch.where(small, torch.ones_like(t), t)
    c = torch.where(small, torch.full_like(t, 1.0 / 12.0), 1.0 / ts**2 - (1 + torch.cos(ts)) / (2 * ts * torch.sin(ts)))
    eye = torch.eye(3, dtype=phi.dtype, device=phi.device).expand_as(K)
    return eye + 0.5 * K + c * (K @ K)


def _prior_terms(prior: PosePrior, L: torch.Tensor, layout, axes: torch.Tensor, sigma: torch.Tensor):
    """Gauss-Newton (N, P, P) and gradient (N, P) contributions of the prior. A ball joint's rotation vector
    moves with its increment through the inverse right Jacobian of SO(3) (exact: the fit then reaches the
    posterior's minimum; taking it as the identity stopped 0.1-0.5% above it); a hinge's angle moves 1:1."""
    res, sd = _prior_rows(prior, L, layout, axes)
    w2 = (sigma[:, None] / sd) ** 2  # (N, P - 3)
    N, P = L.shape[0], res.shape[-1] + 3
    H = torch.zeros(N, P, P, dtype=L.dtype, device=L.device)
    g = torch.zeros(N, P, dtype=L.dtype, device=L.device)
    rv = roma.rotmat_to_rotvec(L)  # (N, J, 3)
    for j, kind, k in layout:
        i = k - 3  # index into res / w2
        if kind == "ball":
            Jp = _inv_right_jacobian(rv[:, j])  # (N, 3, 3)
            W = w2[:, i : i + 3]  # (N, 3)
            H[:, k : k + 3, k : k + 3] = Jp.transpose(1, 2) @ (W[..., None] * Jp)
            g[:, k : k + 3] = (Jp.transpose(1, 2) @ (W * res[:, i : i + 3])[..., None])[..., 0]
        else:
            H[:, k, k] = w2[:, i]
            g[:, k] = w2[:, i] * res[:, i]
    return H, g


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
    prior: PosePrior | None = None,
    noise_std: torch.Tensor | float | None = None,
    respect_limits: bool = True,
) -> IKResult:
    """Fit the skeleton's rotations and root position to (noisy) joint positions.

    Args:
        skeleton: the kinematic tree (its rest offsets are the bone lengths used).
        joints: (..., J, 3) target positions, metres.
        init: starting solution; by default :func:`kinepose.kinematics.ik.analytic_ik` of ``joints``.
        iterations: Levenberg-Marquardt steps (each a batched linear solve per frame).
        weights: optional (..., J) non-negative weights of the joints (e.g. a visibility mask).
        prior: optional Gaussian pose prior; the fit then maximizes the posterior
            ``|FK - x|^2 / noise^2 + |(rotvec - mean) / std|^2`` instead of the likelihood alone.
        noise_std: joint noise standard deviation (metres) weighing the prior: a float or (...,) per
            frame; default :func:`estimate_noise_std` (zero, so no prior, for exactly consistent joints).
        respect_limits: keep hinge angles inside the skeleton's limits (projected steps; default).

    Joints holding NaN are missing: they get weight 0 and the fit uses the others. Fit a subject whose
    proportions differ from the template with its own skeleton (:func:`kinepose.kinematics.calibration.
    calibrate_skeleton`): the fit, the noise estimate and the prior all use the skeleton's bone lengths.

    Returns:
        An :class:`IKResult` with the fitted ``local_quat``, ``root_pos`` and ``global_rotmat``;
        ``observable`` and ``twist_ambiguous`` as in the initial solution.
    """
    joints = as_tensor(joints, "joints")
    check_joints(joints, "joints", skeleton.num_joints, skeleton.name)
    if bool(torch.isinf(joints).any()):
        check_finite(joints, "joints")
    init = init if init is not None else analytic_ik(skeleton, joints, respect_limits=respect_limits)
    batch, J = joints.shape[:-2], skeleton.num_joints
    x = joints.reshape(-1, J, 3)
    N, dtype = x.shape[0], x.dtype
    dev = x.device
    if weights is not None and weights.shape != joints.shape[:-1]:
        raise ShapeError(f"weights: expected shape {tuple(joints.shape[:-1])}, got {tuple(weights.shape)}")
    w = torch.ones(N, J, dtype=dtype, device=dev) if weights is None else weights.reshape(-1, J).to(dtype)
    present = ~torch.isnan(x).any(-1)  # NaN joints are missing: weight 0, and the fit uses the rest
    if not bool(present.all()):
        w = w * present.to(dtype)
        x = torch.where(present[..., None], x, torch.zeros_like(x))
    sw = w.sqrt()[..., None].expand(N, J, 3).reshape(N, J * 3)
    L = quat_to_matrix(init.local_quat.reshape(-1, J, 4).to(dtype))
    root = init.root_pos.reshape(-1, 3).to(dtype)
    layout = _layout(skeleton)
    axes = skeleton.hinge_axes_tensor(dtype, dev)
    off = skeleton.offsets_tensor(dtype, dev)

    desc = _descendants(skeleton).to(dev)  # (J, J): k is j or below j

    limits = torch.as_tensor(np.array(skeleton.limits), dtype=dtype, device=dev)

    def apply(L0: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """(N, J, 3, 3) local rotations moved by (N, P) parameters (right-multiplied increments); hinge
        angles are kept inside the skeleton's limits (a projected step)."""
        mats = list(L0.unbind(1))
        for j, kind, k in layout:
            if kind == "ball":
                mats[j] = L0[:, j] @ roma.rotvec_to_rotmat(p[:, k : k + 3])
            else:
                a = axes[j]
                angle = roma.rotmat_to_rotvec(L0[:, j]) @ a + p[:, k]  # the hinge's angle after the step
                lo, hi = limits[j]
                if respect_limits and not bool(torch.isnan(lo)):
                    angle = torch.maximum(angle, lo)
                if respect_limits and not bool(torch.isnan(hi)):
                    angle = torch.minimum(angle, hi)
                mats[j] = roma.rotvec_to_rotmat(angle[:, None] * a)
        return torch.stack(mats, 1)

    pj = [j for j, _, _ in layout]  # joints with parameters, in parameter order
    dmask = desc[pj].to(dtype)  # (Q, J)
    # Column selector: ball joints keep their 3 columns, hinges one column along their axis.
    select = torch.zeros(len(pj), 3, sum(3 if k == "ball" else 1 for _, k, _ in layout), dtype=dtype, device=dev)
    for q, (j, kind, k) in enumerate(layout):
        if kind == "ball":
            select[q, :, k - 3 : k] = torch.eye(3, dtype=dtype, device=dev)
        else:
            select[q, :, k - 3] = axes[j]

    def jacobian(pos: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        """(N, 3J, P) derivative of the weighted positions. For an increment d at joint j (local frame),
        a point k below j moves by -[x_k - x_j]_x G_j d; a hinge's d is its axis times the angle."""
        rel = (pos[:, None, :, :] - pos[:, pj, None, :]) * dmask[None, :, :, None]  # (N, Q, J, 3)
        blocks = -_skew(rel) @ G[:, pj, None]  # (N, Q, J, 3, 3)
        rot_cols = torch.einsum("nqjab,qbp->njap", blocks, select)  # (N, J, 3, P - 3)
        trans = torch.eye(3, dtype=dtype, device=dev).expand(N, J, 3, 3)  # root translation moves every joint
        Jm = torch.cat([trans, rot_cols], dim=-1)  # (N, J, 3, P)
        return Jm.reshape(N, J * 3, -1) * sw[..., None]

    sigma = None
    if prior is not None:
        if noise_std is None:
            sigma = estimate_noise_std(skeleton, x, w)
        else:
            sigma = torch.as_tensor(noise_std, dtype=dtype, device=dev).expand(*batch).reshape(N)

    def cost(fk_out, Lc) -> torch.Tensor:
        c = ((fk_out.positions - x).square().sum(-1) * w).sum(-1)  # (N,)
        if prior is not None:
            c = c + _prior_cost(prior, Lc, layout, axes, sigma)
        return c

    lam = torch.full((N,), 1e-3, dtype=dtype, device=dev)
    fk = forward_kinematics_matrix(skeleton, L, root, off)
    current = cost(fk, L)
    for _ in range(iterations):
        r = (fk.positions - x).reshape(N, -1) * sw  # (N, 3J)
        Jm = jacobian(fk.positions, fk.global_rotmat)
        JtJ = Jm.transpose(1, 2) @ Jm
        g = Jm.transpose(1, 2) @ r[..., None]
        if prior is not None:
            pH, pg = _prior_terms(prior, L, layout, axes, sigma)
            JtJ = JtJ + pH
            g = g + pg[..., None]
        diag = torch.diagonal(JtJ, dim1=1, dim2=2)
        A = JtJ + torch.diag_embed(lam[:, None] * diag + 1e-9)
        step = -torch.linalg.solve(A, g)[..., 0]  # (N, P)
        L_new = apply(L, step)
        root_new = root + step[:, :3]
        fk_new = forward_kinematics_matrix(skeleton, L_new, root_new, off)
        new = cost(fk_new, L_new)
        better = new < current
        L = torch.where(better[:, None, None, None], L_new, L)
        root = torch.where(better[:, None], root_new, root)
        fk = forward_kinematics_matrix(skeleton, L, root, off)
        current = torch.where(better, new, current)
        lam = torch.where(better, lam * 0.3, lam * 10.0).clamp(1e-9, 1e6)

    quat = matrix_to_quat(L)
    end = torch.tensor([k == "end" for k in skeleton.kinds], device=dev)[:, None]
    quat = torch.where(end, quat_identity((J,), dtype=dtype, device=dev), quat)
    return IKResult(
        local_quat=quat.reshape(*batch, J, 4),
        root_pos=root.reshape(*batch, 3),
        global_rotmat=fk.global_rotmat.reshape(*batch, J, 3, 3),
        observable=init.observable,
        twist_ambiguous=init.twist_ambiguous,
        solvers=init.solvers,
    )
