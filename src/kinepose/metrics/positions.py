"""Position metrics: per-joint errors, MPJPE and its aligned variants (Procrustes, scale), 3D PCK/AUC.

Positions are metres, shape ``(..., J, 3)``; ``mask`` arguments are ``(..., J)`` visibility masks (see
:mod:`kinepose.metrics`)."""

from __future__ import annotations

import roma
import torch

from kinepose._validation import as_tensor, check_finite, check_last_dims, check_same_shape
from kinepose.errors import KineposeError, NonFiniteError, ShapeError
from kinepose.metrics._common import ArrayLike, _masked_mean, _positions, _weights

__all__ = [
    "auc_3d",
    "egoexo4d_mpjpe",
    "egoexo4d_pa_mpjpe",
    "joint_errors",
    "mpjpe",
    "n_mpjpe",
    "pa_mpjpe",
    "pck_3d",
    "procrustes_align",
]


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


# ------------------------------------------------------------------------------------ Ego-Exo4D hand protocol


def _egoexo_inputs(
    pred: ArrayLike, target: ArrayLike, valid: ArrayLike, need_wrist: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Checked ``pred``, ``target`` with every entry that is not needed set to 0, and ``valid`` as (..., J) bool.

    Needed: the valid joints, and the wrist (joint 0) of every sample with a valid joint if ``need_wrist``;
    those must be finite, the others may be NaN (Ego-Exo4D's ground truth is NaN at invalid joints).
    """
    p, t = as_tensor(pred, "pred"), as_tensor(target, "target")
    check_last_dims(p, "pred", (None, 3), "hand joints (..., J, 3)")
    check_last_dims(t, "target", (None, 3), "hand joints (..., J, 3)")
    check_same_shape(p, t, "pred", "target")
    if p.numel() == 0:
        raise ShapeError(f"pred: empty input of shape {tuple(p.shape)}; a metric needs at least one value")
    dtype = torch.promote_types(p.dtype, t.dtype)
    p, t = p.to(dtype), t.to(device=p.device, dtype=dtype)
    v = as_tensor(valid, "valid").to(p.device)
    try:
        ok = torch.broadcast_shapes(v.shape, p.shape[:-1]) == p.shape[:-1]
    except RuntimeError:
        ok = False
    if v.ndim == 0 or not ok:
        raise ShapeError(f"valid: expected shape (..., J) broadcasting to {tuple(p.shape[:-1])} (the joints of "
                         f"pred {tuple(p.shape)}), got {tuple(v.shape)}")  # fmt: skip
    if not bool(((v == 0) | (v == 1)).all()):
        raise KineposeError("valid: expected booleans (True = joint counted) or 0/1")
    v = (v != 0).expand(p.shape[:-1])  # (..., J)
    need = v.clone()
    if need_wrist:
        need[..., 0] |= v.any(-1)
    for x, name in ((p, "pred"), (t, "target")):
        bad = need[..., None] & ~torch.isfinite(x)
        if bool(bad.any()):
            where = tuple(torch.nonzero(bad)[0].tolist())
            what = "valid joints and the wrist (joint 0)" if need_wrist else "valid joints"
            raise NonFiniteError(f"{name}: non-finite value at index {where}; the {what} must be finite")
    zero = torch.zeros((), dtype=dtype, device=p.device)
    return torch.where(need[..., None], p, zero), torch.where(need[..., None], t, zero), v


def _per_sample_mean(err: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Mean of ``err`` (..., J) over the valid joints of each sample, then over the samples that have one."""
    n = v.sum(-1)  # (...,)
    has = n > 0
    if not bool(has.any()):
        raise KineposeError(f"valid: no joint is valid (all False, shape {tuple(v.shape)})")
    per_sample = (err * v).sum(-1) / n.clamp_min(1)  # (...,)
    return per_sample[has].mean()


def egoexo4d_mpjpe(pred: ArrayLike, target: ArrayLike, valid: ArrayLike) -> torch.Tensor:
    """MPJPE of the Ego-Exo4D hand ego-pose benchmark, on wrist-relative poses.

    Both ``pred`` and ``target`` have their wrist (joint 0) subtracted; the error is the mean Euclidean
    distance over each hand's valid joints, then the mean over the hands (samples) with at least one valid
    joint, each hand counting once (the benchmark's ``handpose/evaluation/evaluate.py``; with a wrist-relative
    prediction it equals that script's ``--offset`` MPJPE). A valid wrist counts, with error 0. Units are the
    caller's: metres in, metres out (the benchmark reports millimetres: multiply by 1000).

    Args:
        pred, target: hand joints (..., J, 3) (J = 21, wrist first, as :mod:`kinepose.data.formats.egoexo4d`
            reads them); each leading index is one hand.
        valid: (..., J) bool (or broadcastable), the joints that count (the file's ``valid_3d``). ``pred`` and
            ``target`` may hold NaN at invalid joints; valid joints and the wrist must be finite.
    Returns:
        Scalar tensor, in the units of the inputs.
    Raises:
        ShapeError: bad shapes. NonFiniteError: a valid joint or a needed wrist is NaN/inf. KineposeError: no
            valid joint at all, or ``valid`` not boolean.
    """
    p, t, v = _egoexo_inputs(pred, target, valid, need_wrist=True)
    rel_p, rel_t = p - p[..., :1, :], t - t[..., :1, :]  # (..., J, 3), wrist-relative
    return _per_sample_mean(torch.linalg.vector_norm(rel_p - rel_t, dim=-1), v)


def egoexo4d_pa_mpjpe(pred: ArrayLike, target: ArrayLike, valid: ArrayLike) -> torch.Tensor:
    """PA-MPJPE of the Ego-Exo4D hand benchmark: MPJPE over each hand's valid joints after the best similarity
    transform (rotation, translation, scale; :func:`procrustes_align`) fit on those valid joints alone.

    Averaged as :func:`egoexo4d_mpjpe` (per hand, then over hands). Translation-invariant, so wrist-relative and
    camera-relative poses give the same value. Units are the caller's.

    Args:
        pred, target: hand joints (..., J, 3); each leading index is one hand.
        valid: (..., J) bool (or broadcastable); ``pred`` and ``target`` may hold NaN at invalid joints.
    Returns:
        Scalar tensor, in the units of the inputs.
    """
    p, t, v = _egoexo_inputs(pred, target, valid, need_wrist=False)
    aligned = procrustes_align(p, t, scale=True, weights=v.to(p.dtype))  # invalid joints: weight 0
    return _per_sample_mean(torch.linalg.vector_norm(aligned - t, dim=-1), v)
