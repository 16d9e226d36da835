"""Position metrics: per-joint errors, MPJPE and its aligned variants (Procrustes, scale), 3D PCK/AUC.

Positions are metres, shape ``(..., J, 3)``; ``mask`` arguments are ``(..., J)`` visibility masks (see
:mod:`kinepose.metrics`)."""

from __future__ import annotations

import roma
import torch

from kinepose._validation import as_tensor, check_finite
from kinepose.errors import KineposeError, ShapeError
from kinepose.metrics._common import ArrayLike, _masked_mean, _positions, _weights


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
