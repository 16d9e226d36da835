"""Twist IK: analytic IK for what joint positions determine, small networks for the twists they do not.

Analytic IK (:func:`kinepose.kinematics.analytic_ik`) leaves two things open (its ``swing`` and ``rest``
solvers): the rotation of a one-target ("swing") joint about its rest bone, and the whole rotation of a joint
with no target ("rest"). This model predicts exactly those and hands them back to the geometry, so the
forward kinematics of its output reproduce the input positions exactly whatever the networks say:
``analytic_ik(joints, twist=, free=, moving=)``.

**What a joint reads.** Analytic IK gives every predicted joint ``p`` a frame: for a swing joint its parent's
global rotation times its shortest-arc swing (the frame before a twist of its own), for a rest joint its
parent's global rotation. ``p`` reads its descendants up to ``depth`` bones down, relative to it, in that frame,
divided by a length of its own (their largest rest distance), and their visibility.

**Twist equivariance.** Turning ``p``'s subtree about ``p``'s axis ``a`` (the rest bone for a swing joint, its
own rest offset for a rest joint) by an angle ``alpha`` turns the answer by ``alpha`` too. The model is built
to respect that exactly, so that it extrapolates to twists its training motion never showed: with ``(e1, e2)``
spanning the plane orthogonal to ``a``, each descendant's offset is a complex number ``z_k = v.e1 + i v.e2``
that turns with the subtree. A learned weighted sum ``z_ref = sum_k w_k z_k`` (weights per joint) gives a
reference angle ``phi = arg(z_ref)`` (a bent elbow seen from the upper arm); an MLP per joint reads the
descendants with ``phi`` taken out (invariant) and ``|z_ref|``, and predicts a complex number ``c`` for a twist
joint (twist ``= arg(f e^{i phi} c + d)``) or 6D columns ``C`` for a rest joint (6D ``= f R(a, phi) C + D``,
Zhou et al., first two columns), where ``f = |z_ref| / sqrt(|z_ref|^2 + eps^2)`` fades the equivariant part out
where the reference vanishes (a straight limb) and ``d``, ``D`` are learned per-joint priors (what the joint
does on average). Only the priors break the equivariance.

**Rounds.** A joint's frame depends on its ancestors' twists, which the first round does not know (the forearm
turns with the upper arm), so the model runs ``passes`` rounds with their own weights, each reading its
features in the frames analytic IK gives with the previous round's answer.

Twist joints are the ``swing`` joints and also ``two_bone`` ones, whose twist positions fix except on a
straight limb (analytic IK uses only the swing joints' twists; the others stay in ``aux``). The geometry has no
gradient: for a rotation loss on ``local_quat`` (``kinepose train``) each twist joint's output is multiplied by
``R(a, theta - stop_gradient(theta))``, the identity in value, whose gradient is the loss's for a twist about the
joint's own bone. :meth:`TwistIK.twist_loss` trains on the targets directly: the twist angle of
``swing_twist(L_true, rest bone)`` (:func:`kinepose.geometry.swing_twist`) and the rest joints' true rotations.

``moving`` names the zero-length joints that rotate on their own (find them in training motion with
:func:`kinepose.kinematics.ik.moving_zero_length_joints`; CMU: LowerBack, Neck, LeftFingerBase, LThumb,
RightFingerBase, RThumb). It fixes which joints are ``swing`` or ``rest``, so it is part of the config.
``context`` adds the whole pose in the root's frame (standardized by the ``mean``/``std`` buffers) to every
joint's MLP; it breaks the equivariance and is off by default.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from kinepose.errors import KineposeError
from kinepose.geometry.rotations import (
    quat_about_axis,
    quat_canonical,
    quat_identity,
    quat_multiply,
    quat_to_matrix,
    sixd_to_quat,
)
from kinepose.geometry.swing_twist import swing_twist
from kinepose.kinematics.ik import analytic_ik, ik_plan, ik_targets
from kinepose.models.base import ModelOutput, PoseModel
from kinepose.models.layers import check_positive
from kinepose.models.registry import register_model
from kinepose.skeleton.core import Skeleton

__all__ = ["GroupedMLP", "TwistIK", "twist_axes", "twist_targets"]

TWIST_SOLVERS = ("swing", "two_bone")
_OUT = 8  # per joint: a complex number (twist joints), then 6D columns (rest joints); each uses its part
_EPS = float(__import__("os").environ.get("TW_EPS", "0.3"))


def twist_axes(skeleton: Skeleton, moving=None) -> torch.Tensor:
    """(J, 3) float64 unit rest bone of every joint with an IK target (the rest vector to its first target: the
    axis of analytic IK's twist); zeros for joints without one."""
    idx = frozenset(skeleton.index(n) if isinstance(n, str) else int(n) for n in (moving or ()))
    axes = torch.zeros(skeleton.num_joints, 3, dtype=torch.float64)
    for j in range(skeleton.num_joints):
        t = ik_targets(skeleton, j, idx) if skeleton.kinds[j] != "end" else []
        if t:
            v = torch.from_numpy(t[0][1].copy())
            axes[j] = v / v.norm()
    return axes


def twist_targets(skeleton: Skeleton, local_quat: torch.Tensor, moving=None) -> torch.Tensor:
    """(..., J) radians: the twist of every ``swing`` joint's local rotation (..., J, 4) about its rest bone,
    the ``twist`` with which :func:`~kinepose.kinematics.analytic_ik` reproduces it (0 for other joints)."""
    plan = ik_plan(skeleton, list(moving or ()))
    axes = twist_axes(skeleton, moving).to(local_quat.dtype)
    swing = [j for j, s in enumerate(plan) if s == "swing"]
    out = torch.zeros(local_quat.shape[:-1], dtype=local_quat.dtype, device=local_quat.device)
    if swing:
        _, angle = swing_twist(local_quat[..., swing, :], axes[swing].to(local_quat.device))
        out[..., swing] = angle
    return out


class GroupedMLP(nn.Module):
    """``P`` independent MLPs run at once: (B, P, F) -> (B, P, out), LayerNorm and ReLU after each hidden layer
    (over each joint's own features: batch-size-1 safe). The last layer starts near zero."""

    def __init__(self, groups: int, in_features: int, hidden: int, layers: int, out_features: int) -> None:
        super().__init__()
        sizes = [in_features] + [hidden] * layers + [out_features]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in itertools.pairwise(sizes):
            bound = 1 / math.sqrt(max(a, 1))
            self.weights.append(nn.Parameter(torch.empty(groups, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.zeros(groups, b)))
        with torch.no_grad():
            self.weights[-1].mul_(0.01)
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, P, F); ``extra`` (B, P, hidden) is added to the first hidden layer (a shared context)."""
        n = len(self.weights)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.einsum("bpf,pfo->bpo", x, w) + b  # (B, P, out_i)
            if i == 0 and extra is not None:
                x = x + extra
            if i < n - 1:
                x = torch.relu(self.norms[i](x))
        return x


def _rotate_about(v: torch.Tensor, a: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rodrigues: (..., 3) vectors about unit axes ``a`` (..., 3) by the angle with ``cos``, ``sin`` (...,)."""
    along = (v * a).sum(-1, keepdim=True) * a
    return along + cos[..., None] * (v - along) + sin[..., None] * torch.linalg.cross(a, v, dim=-1)


@register_model("twist")
class TwistIK(PoseModel):
    """Analytic IK plus learned, twist-equivariant twists of swing joints and rotations of rest joints.

    Args:
        skeleton: the skeleton.
        hidden: width of each joint's MLP.
        layers: hidden layers per MLP.
        depth: how many bones down a joint's descendants are read.
        passes: rounds of prediction (each reads its features in the frames the previous round gives).
        context: also give every joint the whole pose in the root's frame (not twist-equivariant).
        moving: zero-length joints that rotate on their own (names), passed to analytic IK.
        respect_limits: analytic IK keeps hinge angles inside the skeleton's limits (then FK reproduces the input
            only up to the limits); off by default, so FK of the output is the input exactly.
    """

    def __init__(
        self,
        skeleton: Skeleton,
        hidden: int = 64,
        layers: int = 2,
        depth: int = 3,
        passes: int = 2,
        context: bool = False,
        moving: list | None = None,
        respect_limits: bool = False,
    ) -> None:
        super().__init__(skeleton, window=1, causal=True)
        check_positive(hidden=hidden, layers=layers, depth=depth, passes=passes)
        moving = [str(m) for m in (moving or [])]
        unknown = [m for m in moving if m not in skeleton.joint_names]
        if unknown:
            raise KineposeError(f"twist: moving joints {unknown} are not joints of skeleton '{skeleton.name}'")
        self.moving, self.respect_limits = moving, bool(respect_limits)
        self.plan = ik_plan(skeleton, moving)  # also checks that the moving joints have zero length
        self.twist_idx = [j for j, s in enumerate(self.plan) if s in TWIST_SOLVERS]
        self.swing_idx = [j for j, s in enumerate(self.plan) if s == "swing"]
        self.rest_idx = [j for j, s in enumerate(self.plan) if s == "rest"]
        self.pred_idx = self.twist_idx + self.rest_idx
        if not self.pred_idx:
            raise KineposeError(f"twist: skeleton '{skeleton.name}' has no swing, two_bone or rest joint; "
                                f"analytic IK alone determines every rotation")  # fmt: skip
        self.passes, self.use_context, self.depth = int(passes), bool(context), int(depth)
        axes = twist_axes(skeleton, moving)
        self.register_buffer("axes", axes, persistent=False)  # (J, 3) float64: exact axes (cast on use)
        offsets = torch.tensor(skeleton.offsets, dtype=torch.float64)
        desc = [self._descendants(p, depth) for p in self.pred_idx]
        P, K, J = len(desc), max(1, max(len(d) for d in desc)), skeleton.num_joints
        table = torch.full((P, K), -1, dtype=torch.long)
        scale = torch.ones(P, dtype=torch.float64)
        frame_axis = torch.zeros(P, 3, dtype=torch.float64)
        for i, (p, d) in enumerate(zip(self.pred_idx, desc, strict=True)):
            table[i, : len(d)] = torch.tensor(d, dtype=torch.long)
            if d:
                scale[i] = max(0.01, max(float(self._rest_from(p, k, offsets).norm()) for k in d))
            if p in self.twist_idx:
                a = axes[p]
            elif skeleton.kinds[p] == "hinge":  # a rest hinge turns about its axis only
                a = torch.as_tensor(skeleton.hinge_axes[p].copy())
            else:
                a = offsets[p]
            frame_axis[i] = (
                a / a.norm() if float(a.norm()) > 1e-9 else torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
            )
        x_axis, y_axis = torch.tensor([1.0, 0, 0], dtype=torch.float64), torch.tensor([0, 1.0, 0], dtype=torch.float64)
        helper = torch.where(frame_axis[:, :1].abs() < 0.9, x_axis, y_axis)
        e1 = torch.linalg.cross(frame_axis, helper, dim=-1)
        e1 = e1 / e1.norm(dim=-1, keepdim=True)
        e2 = torch.linalg.cross(frame_axis, e1, dim=-1)  # (e1, e2, a) right-handed: a twist turns z = v.e1 + i v.e2
        self.register_buffer("desc", table, persistent=False)  # (P, K) descendant joints, -1 = padding
        self.register_buffer("desc_scale", scale, persistent=False)  # (P,) metres
        self.register_buffer("frame_axis", frame_axis, persistent=False)  # (P, 3)
        self.register_buffer("basis", torch.stack([e1, e2], 1), persistent=False)  # (P, 2, 3)
        hinge_rest = [skeleton.kinds[j] == "hinge" for j in self.rest_idx]
        self.register_buffer("rest_hinge", torch.tensor(hinge_rest, dtype=torch.bool), persistent=False)  # (R,)
        n_in = 4 * K + 1
        self.nets = nn.ModuleList(GroupedMLP(P, n_in, hidden, layers, _OUT) for _ in range(self.passes))
        valid = (table >= 0).float()
        self.ref_weight = nn.ParameterList(nn.Parameter(valid.clone()) for _ in range(self.passes))  # (P, K)
        start = torch.tensor([1.0, 0.0, 1.0, 0, 0, 0, 1.0, 0]).repeat(P, 1)  # twist 0; rest at the identity
        self.prior = nn.ParameterList(nn.Parameter(start.clone()) for _ in range(self.passes))  # (P, 8): d, D
        self.log_eps = nn.ParameterList(nn.Parameter(torch.full((P,), math.log(_EPS))) for _ in range(self.passes))
        if self.use_context:
            self.context = nn.ModuleList(nn.Linear(J * 3 + J, P * hidden) for _ in range(self.passes))
            with torch.no_grad():
                for c in self.context:
                    c.weight.mul_(0.1)

    def _descendants(self, p: int, depth: int) -> list[int]:
        out, frontier = [], [p]
        for _ in range(depth):
            frontier = [c for f in frontier for c in self.skeleton.children[f]]
            out += frontier
        return out

    def _rest_from(self, p: int, k: int, offsets: torch.Tensor) -> torch.Tensor:
        v = torch.zeros(3, dtype=offsets.dtype)
        while k != p:
            v = v + offsets[k]  # at rest, offsets add up without rotation
            k = self.skeleton.parents[k]
        return v

    # ------------------------------------------------------------------------------------------- one round

    def _frames(self, G: torch.Tensor, theta: torch.Tensor | None) -> torch.Tensor:
        """(B, P, 3, 3) each predicted joint's frame from analytic IK's global rotations (B, J, 3, 3): a twist
        joint's with its own twist ``theta`` (B, T) taken out, a rest joint's parent's."""
        parents = [max(self.skeleton.parents[j], 0) for j in self.rest_idx]
        tw = G[:, self.twist_idx]  # (B, T, 3, 3)
        if theta is not None and self.twist_idx:
            undo = quat_to_matrix(quat_about_axis(self.axes[self.twist_idx].to(G.dtype), -theta.to(G.dtype)))
            tw = tw @ undo  # G_p R(a, -theta)
        return torch.cat([tw, G[:, parents]], dim=1)

    def _round(self, i: int, x: torch.Tensor, vis: torch.Tensor, G: torch.Tensor, theta: torch.Tensor | None):
        """One round: (B, T, 2) (sin, cos)-ordered raw twist outputs and (B, R, 4) rest rotations."""
        dt = x.dtype
        F = self._frames(G, theta)  # (B, P, 3, 3)
        idx = self.desc.clamp_min(0)  # (P, K)
        rel = x[:, idx] - x[:, self.pred_idx][:, :, None]  # (B, P, K, 3) world offsets of the descendants
        v = torch.einsum("bpji,bpkj->bpki", F, rel) / self.desc_scale[:, None, None].to(dt)  # in p's frame
        seen = vis[:, idx] * (self.desc >= 0).to(dt) * vis[:, self.pred_idx][:, :, None]  # (B, P, K)
        v = v * seen[..., None]
        basis, a = self.basis.to(dt), self.frame_axis.to(dt)
        zr, zi = torch.einsum("bpkc,pc->bpk", v, basis[:, 0]), torch.einsum("bpkc,pc->bpk", v, basis[:, 1])
        along = torch.einsum("bpkc,pc->bpk", v, a)
        w = self.ref_weight[i].to(dt)  # (P, K)
        rr, ri = (w * zr).sum(-1), (w * zi).sum(-1)  # (B, P): z_ref
        m = torch.sqrt(rr.square() + ri.square() + 1e-12)
        cos, sin = rr / m, ri / m  # e^{i phi}
        fade = m / torch.sqrt(m.square() + torch.exp(2 * self.log_eps[i]).to(dt))  # (B, P) in [0, 1)
        cr = zr * cos[..., None] + zi * sin[..., None]  # z_k e^{-i phi}: invariant
        ci = zi * cos[..., None] - zr * sin[..., None]
        feats = torch.cat([torch.stack([cr, ci, along, seen], -1).flatten(2), m[..., None]], -1)  # (B, P, 4K + 1)
        extra = None
        if self.use_context:
            rf = torch.einsum("bji,bkj->bki", G[:, 0], x - x[:, :1])  # the pose in the root's frame
            rf = (rf - self.mean) / self.std * vis[..., None]
            extra = self.context[i](torch.cat([rf.flatten(1), vis], -1)).reshape(x.shape[0], len(self.pred_idx), -1)
        out = self.nets[i](feats, extra)  # (B, P, 8)
        prior = self.prior[i].to(dt)
        T = len(self.twist_idx)
        c_re, c_im = out[..., 0], out[..., 1]
        z_re = fade * (cos * c_re - sin * c_im) + (1 - fade) * prior[:, 0]  # f e^{i phi} c + (1 - f) d
        z_im = fade * (cos * c_im + sin * c_re) + (1 - fade) * prior[:, 1]
        sincos = torch.stack([z_im, z_re], -1)  # (B, P, 2): twist joints and rest hinges
        R = len(self.rest_idx)
        C = out[:, T:, 2:].reshape(out.shape[0], R, 2, 3)  # (B, R, 2, 3) canonical columns
        ar = a[T:, None].expand_as(C)
        f, co, si = (t[:, T:, None].expand(C.shape[:-1]) for t in (fade, cos, sin))
        D = prior[T:, 2:].reshape(R, 2, 3)
        cols = f[..., None] * _rotate_about(C, ar, co, si) + (1 - f[..., None]) * D  # f R(a, phi) C + (1 - f) D
        free = sixd_to_quat(cols.flatten(-2))  # (B, R, 4)
        if bool(self.rest_hinge.any()):  # a rest hinge: the angle about its axis
            sc = sincos[:, T:]
            turn = quat_about_axis(a[T:].expand(sc.shape[0], -1, -1), torch.atan2(sc[..., 0], sc[..., 1]))
            free = torch.where(self.rest_hinge[:, None], quat_canonical(turn), free)
        return sincos[:, :T], free

    # ------------------------------------------------------------------------------------------- forward

    def _solve(self, x: torch.Tensor, theta: torch.Tensor | None, free: torch.Tensor | None):
        B, J = x.shape[0], self.num_joints
        twist = x.new_zeros(B, J)
        rot = quat_identity((B, J), dtype=x.dtype, device=x.device)
        if theta is not None:
            twist[:, self.twist_idx] = theta.detach().to(x.dtype)
            rot[:, self.rest_idx] = free.detach().to(x.dtype)
        with torch.no_grad():
            return analytic_ik(self.geometry_skeleton, x, twist=twist, free=rot, moving=self.moving,
                               respect_limits=self.respect_limits)  # fmt: skip

    def forward(self, joints: torch.Tensor, visibility: torch.Tensor | None = None) -> ModelOutput:
        """Args:
            joints: (B, 1, J, 3) positions, metres.
            visibility: optional (B, 1, J) mask (hidden joints are missing for the geometry).

        Returns:
            :class:`ModelOutput`: ``local_quat`` (B, J, 4), ``root_pos`` (B, 3); in ``aux``: ``twist`` (B, J)
            and ``free`` (B, J, 4), what analytic IK was given (no gradient), and ``rounds``: per round, the raw
            (B, T, 2) ``(sin, cos)`` (unnormalized) of the twist joints and the (B, R, 4) rest rotations.
        """
        self.check_input(joints, visibility)
        dt, dev = joints.dtype, joints.device
        target = joints[:, 0].detach()  # (B, J, 3)
        vis = target.new_ones(target.shape[:2]) if visibility is None else visibility[:, 0].to(dt)
        x_ik = target.double()
        if visibility is not None:
            x_ik = torch.where(vis[..., None] > 0, x_ik, torch.nan)
        xs = target * vis[..., None]
        res = self._solve(x_ik, None, None)
        theta = free = None
        rounds = []
        for i in range(self.passes):
            G = torch.nan_to_num(res.global_rotmat.to(dt))
            sincos, free = self._round(i, xs, vis, G, theta)
            theta = torch.atan2(sincos[..., 0], sincos[..., 1])  # (B, T) radians
            rounds.append((sincos, free))
            res = self._solve(x_ik, theta, free)
        local = res.local_quat.to(dt)  # (B, J, 4): the geometry, exact
        if self.twist_idx:  # straight-through: the identity in value, the gradient of a twist about the bone
            spin = quat_about_axis(self.axes[self.twist_idx].to(dt), theta - theta.detach())  # (B, T, 4)
            idx = torch.tensor(self.twist_idx, device=dev)
            local = local.index_copy(1, idx, quat_multiply(local[:, self.twist_idx], spin))
        if self.rest_idx:
            local = local.index_copy(1, torch.tensor(self.rest_idx, device=dev), free.to(dt))
        B = joints.shape[0]
        twist = joints.new_zeros(B, self.num_joints)
        twist[:, self.twist_idx] = theta.detach()
        rot = quat_identity((B, self.num_joints), dtype=dt, device=dev)
        rot[:, self.rest_idx] = free.detach()
        return ModelOutput(local_quat=local, root_pos=res.root_pos.to(dt),
                           aux={"twist": twist, "free": rot, "rounds": rounds})  # fmt: skip

    # ------------------------------------------------------------------------------------------- training

    def twist_loss(self, out: ModelOutput, true_quat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Losses on what positions cannot give, from the true (B, J, 4) local rotations, every round alike.

        ``twist``: mean ``1 - cos(theta - theta_true)`` over swing joints (last round); ``rest``: mean
        ``1 - cos(angle)`` of the rest joints' rotation error, ``2 (1 - <q, q_true>^2)`` (last round); ``total``:
        the mean over swing and rest joints and over rounds.
        """
        pos = [self.twist_idx.index(j) for j in self.swing_idx]
        axes = self.axes[self.swing_idx].to(true_quat.dtype)
        target = swing_twist(true_quat[:, self.swing_idx], axes)[1] if pos else None  # (B, S)
        true_rest = true_quat[:, self.rest_idx]
        n = max(1, len(self.swing_idx) + len(self.rest_idx))
        losses: dict[str, torch.Tensor] = {}
        total = true_quat.new_zeros(())
        for sincos, free in out.aux["rounds"]:
            terms = true_quat.new_zeros(true_quat.shape[0])
            if pos:
                sc = sincos[:, pos]  # (B, S, 2)
                norm = sc.norm(dim=-1).clamp_min(1e-6)
                cos_err = (sc[..., 0] * torch.sin(target) + sc[..., 1] * torch.cos(target)) / norm
                losses["twist"] = (1 - cos_err).mean()
                terms = terms + (1 - cos_err).sum(-1)
            if self.rest_idx:
                err = 2 * (1 - (free * true_rest).sum(-1).square())  # (B, R): 1 - cos(angle)
                losses["rest"] = err.mean()
                terms = terms + err.sum(-1)
            total = total + terms.mean() / n
        losses["total"] = total / len(out.aux["rounds"])
        return losses
