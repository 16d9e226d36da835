"""Pose-estimation metrics: MPJPE and its aligned variants, rotation errors, acceleration, 3D PCK/AUC.

Conventions (as everywhere in kinepose):

- Positions are metres, shape ``(..., J, 3)``; any number of leading dims, all of which are
  "samples" (per-sample alignments such as Procrustes run over the ``J`` points of each sample).
- Quaternions are ``(w, x, y, z)``, real part first, shape ``(..., J, 4)``.
- Outputs are metres and radians unless a ``degrees=True`` argument says otherwise.
- ``mask`` arguments are ``(..., J)`` visibility masks (bool, or non-negative floats used as
  weights) that broadcast against the joints' leading shape; means run over masked-in joints only.

Inputs may be numpy arrays or tensors, float32 or float64 (mixed inputs are promoted). Bad shapes
raise ``ShapeError``, NaN/inf raise ``NonFiniteError``; both name the argument and its shape.
Every function is pure and differentiable where the maths is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import roma
import torch

from kinepose._validation import as_tensor, check_finite, check_last_dims, check_same_shape
from kinepose.errors import KineposeError, ShapeError
from kinepose.rotations import quat_geodesic_distance

__all__ = [
    "acceleration_error",
    "auc_3d",
    "euler_mae",
    "geodesic_error",
    "joint_errors",
    "mpjpe",
    "n_mpjpe",
    "pa_mpjpe",
    "pck_3d",
    "procrustes_align",
]

ArrayLike = torch.Tensor | np.ndarray | Sequence

# ------------------------------------------------------------------------------------------------ checks


def _pair(
    a: ArrayLike, b: ArrayLike, name_a: str, name_b: str, dims: tuple[int | None, ...], what: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert, check trailing dims, equal shapes, finiteness and non-emptiness; promote to one dtype."""
    ta, tb = as_tensor(a, name_a), as_tensor(b, name_b)
    check_last_dims(ta, name_a, dims, what)
    check_last_dims(tb, name_b, dims, what)
    check_same_shape(ta, tb, name_a, name_b)
    if ta.numel() == 0:
        raise ShapeError(f"{name_a}: empty input of shape {tuple(ta.shape)}; a metric needs at least one value")
    check_finite(ta, name_a)
    check_finite(tb, name_b)
    dtype = torch.promote_types(ta.dtype, tb.dtype)
    return ta.to(dtype), tb.to(dtype)


def _positions(pred: ArrayLike, target: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    return _pair(pred, target, "pred", "target", (None, 3), "joint positions (..., J, 3)")


def _weights(mask: ArrayLike | None, joints_shape: torch.Size, like: torch.Tensor, name: str) -> torch.Tensor | None:
    """A ``(..., J)`` mask/weight array -> non-negative float weights of exactly ``joints_shape``."""
    if mask is None:
        return None
    m = as_tensor(mask, name)
    if m.ndim == 0 or m.shape[-1] != joints_shape[-1]:
        raise ShapeError(
            f"{name}: expected shape (..., J) with J = {joints_shape[-1]} joints, matching the positions' "
            f"{tuple(joints_shape)}, got {tuple(m.shape)}"
        )
    try:
        full = torch.broadcast_shapes(m.shape, joints_shape)
    except RuntimeError:
        full = None
    if full != joints_shape:
        raise ShapeError(
            f"{name}: shape {tuple(m.shape)} does not broadcast to the joints' shape {tuple(joints_shape)}"
        )
    check_finite(m, name)
    m = m.to(dtype=like.dtype, device=like.device)
    if bool((m < 0).any()):
        raise KineposeError(f"{name}: weights must be >= 0 (True/1 = joint counted), got a negative value")
    return m.expand(joints_shape)


def _masked_mean(values: torch.Tensor, w: torch.Tensor | None, name: str = "mask") -> torch.Tensor:
    """Mean of ``values`` (..., J) over everything, weighted by ``w`` if given; error if ``w`` is all zero."""
    if w is None:
        return values.mean()
    total = w.sum()
    if not bool(total > 0):
        raise KineposeError(f"{name}: no joint is masked in (all entries False/0, shape {tuple(w.shape)})")
    return (values * w).sum() / total


# -------------------------------------------------------------------------------------------- positions


def joint_errors(pred: ArrayLike, target: ArrayLike) -> torch.Tensor:
    """Euclidean distance per joint.

    Args:
        pred, target: joint positions (..., J, 3), metres.
    Returns:
        (..., J) distances, metres.
    """
    p, t = _positions(pred, target)
    return torch.linalg.vector_norm(p - t, dim=-1)


def mpjpe(pred: ArrayLike, target: ArrayLike, mask: ArrayLike | None = None) -> torch.Tensor:
    """Mean per-joint position error.

    Args:
        pred, target: joint positions (..., J, 3), metres.
        mask: optional (..., J) visibility mask; the mean runs over masked-in joints only.
    Returns:
        Scalar tensor, metres.
    """
    p, t = _positions(pred, target)
    return _masked_mean(torch.linalg.vector_norm(p - t, dim=-1), _weights(mask, p.shape[:-1], p, "mask"))


def procrustes_align(
    pred: ArrayLike, target: ArrayLike, scale: bool = True, weights: ArrayLike | None = None
) -> torch.Tensor:
    """Align ``pred`` onto ``target`` by the best similarity transform of each sample.

    Minimises ``sum_j w_j |s R pred_j + t - target_j|^2`` over a proper rotation ``R`` (no reflection:
    roma solves the *special* orthogonal Procrustes problem, Kabsch/Umeyama), translation ``t`` and,
    if ``scale``, a uniform scale ``s > 0`` (else ``s = 1``).

    Degenerate samples, whose ``pred`` points all coincide (or have a single point of non-zero
    weight), have no unique rotation or scale: they get ``R = I``, ``s = 1`` and the translation that
    matches the weighted centroids, so no NaN appears (in values or gradients).

    Args:
        pred, target: joint positions (..., J, 3), metres; each leading index is one sample.
        scale: also fit a uniform scale.
        weights: optional (..., J) non-negative per-joint weights (e.g. a visibility mask); a sample
            whose weights are all zero is aligned with uniform weights.
    Returns:
        Aligned ``pred``, (..., J, 3), metres.
    """
    x, y = _positions(pred, target)
    w = _weights(weights, x.shape[:-1], x, "weights")
    if x.shape[-2] == 1:  # a single point: translation alone matches it exactly
        return y.clone()
    w = torch.ones_like(x[..., 0]) if w is None else w
    w = torch.where(w.sum(-1, keepdim=True) > 0, w, torch.ones_like(w))
    w = w / w.sum(-1, keepdim=True)  # (..., J), sums to 1
    xmean = (w[..., None] * x).sum(-2)  # (..., 3)
    ymean = (w[..., None] * y).sum(-2)  # (..., 3)
    var_x = (w * (x - xmean[..., None, :]).square().sum(-1)).sum(-1)  # (...,)
    # Coinciding points still show rounding noise after centring; treat that as zero spread.
    eps = torch.finfo(x.dtype).eps
    tol = (8 * eps) ** 2 * (x.square().sum(-1).amax(-1) + torch.finfo(x.dtype).tiny)
    degenerate = var_x <= tol  # (...,)

    # Feed roma a well-posed stand-in for degenerate samples (points spread along x, uniform weights),
    # so that neither its outputs nor its gradients hold NaN; their results are replaced below.
    stand_in = torch.zeros_like(x)
    stand_in[..., 0] = torch.arange(x.shape[-2], dtype=x.dtype, device=x.device)
    deg3 = degenerate[..., None, None]
    x_safe = torch.where(deg3, stand_in, x)
    w_safe = torch.where(degenerate[..., None], torch.full_like(w, 1.0 / w.shape[-1]), w)
    if scale:
        R, t, s = roma.rigid_points_registration(x_safe, y, weights=w_safe, compute_scaling=True)
    else:
        R, t = roma.rigid_points_registration(x_safe, y, weights=w_safe)
        s = torch.ones_like(var_x)
    eye = torch.eye(3, dtype=x.dtype, device=x.device).expand_as(R)
    R = torch.where(deg3, eye, R)  # (..., 3, 3)
    s = torch.where(degenerate, torch.ones_like(s), s)  # (...,)
    t = torch.where(degenerate[..., None], ymean - xmean, t)  # (..., 3)
    return s[..., None, None] * (x @ R.transpose(-1, -2)) + t[..., None, :]  # p' = s R p + t, (..., J, 3)


def pa_mpjpe(pred: ArrayLike, target: ArrayLike, mask: ArrayLike | None = None) -> torch.Tensor:
    """MPJPE after Procrustes (similarity) alignment of each sample, see :func:`procrustes_align`.

    Args:
        pred, target: joint positions (..., J, 3), metres.
        mask: optional (..., J) visibility mask; it also weights the alignment, so hidden joints
            neither move it nor count in the mean.
    Returns:
        Scalar tensor, metres.
    """
    p, t = _positions(pred, target)
    w = _weights(mask, p.shape[:-1], p, "mask")
    aligned = procrustes_align(p, t, scale=True, weights=w)
    return _masked_mean(torch.linalg.vector_norm(aligned - t, dim=-1), w)


def n_mpjpe(pred: ArrayLike, target: ArrayLike, mask: ArrayLike | None = None) -> torch.Tensor:
    """MPJPE after the optimal per-sample scale of ``pred`` (VideoPose3D's N-MPJPE).

    ``s = sum_j <target_j, pred_j> / sum_j |pred_j|^2`` over the (masked-in) joints of each sample,
    with no centring or rotation. A sample whose ``pred`` is all zeros gets ``s = 0``.

    Args:
        pred, target: joint positions (..., J, 3), metres.
        mask: optional (..., J) visibility mask, used both for the scale and for the mean.
    Returns:
        Scalar tensor, metres.
    """
    p, t = _positions(pred, target)
    w = _weights(mask, p.shape[:-1], p, "mask")
    wj = torch.ones_like(p[..., 0]) if w is None else w  # (..., J)
    num = (wj * (t * p).sum(-1)).sum(-1)  # (...,)
    den = (wj * p.square().sum(-1)).sum(-1)  # (...,)
    s = num / den.clamp_min(torch.finfo(p.dtype).tiny)
    return _masked_mean(torch.linalg.vector_norm(s[..., None, None] * p - t, dim=-1), w)


def acceleration_error(pred: ArrayLike, target: ArrayLike) -> torch.Tensor:
    """Mean error of the second finite difference (acceleration) of joint trajectories.

    ``mean || (p[t+1] - 2 p[t] + p[t-1]) - (q[t+1] - 2 q[t] + q[t-1]) ||`` over frames ``1..T-2``,
    joints and leading dims. No frame-rate scaling is applied.

    Args:
        pred, target: sequences (..., T, J, 3), metres, with T >= 3 frames.
    Returns:
        Scalar tensor, metres per frame^2 (multiply by fps^2 for m/s^2).
    """
    p, t = _pair(pred, target, "pred", "target", (None, None, 3), "sequences (..., T, J, 3)")
    if p.shape[-3] < 3:
        raise ShapeError(
            f"pred: acceleration needs T >= 3 frames on dim -3 of (..., T, J, 3), got shape {tuple(p.shape)}"
        )
    d = p - t  # acceleration is linear: diff of accelerations = acceleration of the difference
    acc = d[..., 2:, :, :] - 2 * d[..., 1:-1, :, :] + d[..., :-2, :, :]  # (..., T-2, J, 3)
    return torch.linalg.vector_norm(acc, dim=-1).mean()


def _thresholds(values: ArrayLike, like: torch.Tensor, name: str) -> torch.Tensor:
    th = as_tensor(values, name).to(dtype=like.dtype, device=like.device)
    if th.ndim > 1 or th.numel() == 0:
        raise ShapeError(
            f"{name}: expected a scalar or a non-empty 1-D list of thresholds, got shape {tuple(th.shape)}"
        )
    check_finite(th, name)
    if bool((th < 0).any()):
        raise KineposeError(f"{name}: thresholds must be >= 0 metres, got {th.tolist()}")
    return th.reshape(-1)


def pck_3d(pred: ArrayLike, target: ArrayLike, threshold: float = 0.15, mask: ArrayLike | None = None) -> torch.Tensor:
    """3D PCK: fraction of joints whose error is strictly below ``threshold`` (MPI-INF-3DHP style).

    Args:
        pred, target: joint positions (..., J, 3), metres.
        threshold: distance in metres (150 mm by default).
        mask: optional (..., J) visibility mask; the fraction runs over masked-in joints only.
    Returns:
        Scalar tensor in [0, 1].
    """
    p, t = _positions(pred, target)
    th = _thresholds(threshold, p, "threshold")
    if th.numel() != 1:
        raise ShapeError(f"threshold: expected a single value, got shape {tuple(th.shape)}; use auc_3d for a list")
    err = torch.linalg.vector_norm(p - t, dim=-1)
    return _masked_mean((err < th[0]).to(p.dtype), _weights(mask, p.shape[:-1], p, "mask"))


def auc_3d(
    pred: ArrayLike,
    target: ArrayLike,
    thresholds: ArrayLike | None = None,
    mask: ArrayLike | None = None,
) -> torch.Tensor:
    """Area under the 3D-PCK curve: the mean of :func:`pck_3d` over ``thresholds``.

    The default, ``torch.linspace(0, 0.15, 31)`` metres, mimics MPI-INF-3DHP's ``mpii_compute_3d_pck.m``.
    As PCK counts errors strictly below each threshold, the threshold 0 counts nothing, so a perfect
    prediction scores 30/31 with the default thresholds (as in the common implementations).

    Args:
        pred, target: joint positions (..., J, 3), metres.
        thresholds: 1-D thresholds in metres.
        mask: optional (..., J) visibility mask.
    Returns:
        Scalar tensor in [0, 1].
    """
    p, t = _positions(pred, target)
    th = torch.linspace(0, 0.15, 31, dtype=p.dtype) if thresholds is None else thresholds
    th = _thresholds(th, p, "thresholds")
    w = _weights(mask, p.shape[:-1], p, "mask")
    err = torch.linalg.vector_norm(p - t, dim=-1)  # (..., J)
    hits = (err[..., None] < th).to(p.dtype)  # (..., J, K)
    return _masked_mean(hits.mean(-1), w)  # mean over thresholds, then over joints = mean of PCKs


# -------------------------------------------------------------------------------------------- rotations


def geodesic_error(pred_quat: ArrayLike, target_quat: ArrayLike, degrees: bool = False) -> torch.Tensor:
    """Angle of the relative rotation between two quaternions, invariant to their signs.

    Both are normalised first; the angle is ``4 atan2(|q1 - s q2|, |q1 + s q2|)`` with
    ``s = sign(<q1, q2>)`` (equal to ``2 acos |<q1, q2>|`` but accurate for tiny and near-pi angles).

    Args:
        pred_quat, target_quat: (..., J, 4) quaternions, w, x, y, z (real part first); non-zero.
        degrees: return degrees instead of radians.
    Returns:
        (..., J) angles in [0, pi] radians (or [0, 180] degrees).
    """
    q1, q2 = _pair(pred_quat, target_quat, "pred_quat", "target_quat", (4,), "w, x, y, z quaternions")
    for q, name in ((q1, "pred_quat"), (q2, "target_quat")):
        norm = torch.linalg.vector_norm(q, dim=-1)
        if bool((norm <= torch.finfo(q.dtype).tiny).any()):
            idx = tuple(torch.nonzero(norm <= torch.finfo(q.dtype).tiny)[0].tolist())
            raise KineposeError(f"{name}: zero quaternion at index {idx} (shape {tuple(q.shape)})")
    q1 = q1 / torch.linalg.vector_norm(q1, dim=-1, keepdim=True)
    q2 = q2 / torch.linalg.vector_norm(q2, dim=-1, keepdim=True)
    angle = quat_geodesic_distance(q1, q2)
    return torch.rad2deg(angle) if degrees else angle


def euler_mae(pred: ArrayLike, target: ArrayLike, degrees: bool = True) -> torch.Tensor:
    """Mean absolute error of each Euler angle (e.g. head-pose yaw, pitch, roll), with wrap-around.

    Each difference is wrapped into [-180, 180) degrees ([-pi, pi) radians) before its absolute
    value is taken, so 179 vs -179 degrees is an error of 2.

    Args:
        pred, target: (..., 3) angles, degrees if ``degrees`` else radians.
        degrees: unit of both the inputs and the output.
    Returns:
        (3,) mean absolute error per component, in the input unit.
    """
    p, t = _pair(pred, target, "pred", "target", (3,), "Euler angles")
    half = 180.0 if degrees else torch.pi
    d = torch.remainder(p - t + half, 2 * half) - half  # (..., 3) in [-half, half)
    return d.abs().reshape(-1, 3).mean(0)
