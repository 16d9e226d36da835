"""Metrics of 3D lifting: MPJVE, acceleration error, bone-length std, the Ego-Exo4D hand protocol.

Hand-computed values on small arrays, masks, batch shapes, invariances and input errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import roma
import torch

from kinepose.errors import KineposeError, NonFiniteError, ShapeError
from kinepose.metrics import (
    BoneLengthStd,
    acceleration_error,
    bone_length_std,
    egoexo4d_mpjpe,
    egoexo4d_pa_mpjpe,
    mpjve,
    pa_mpjpe,
)

F64 = torch.float64


def _similarity(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One random similarity transform s R x + t per sample of points (..., J, 3)."""
    batch = x.shape[:-2]
    q = torch.randn(*batch, 4, generator=g, dtype=x.dtype)
    R = roma.unitquat_to_rotmat(q / q.norm(dim=-1, keepdim=True))  # (..., 3, 3)
    s = 0.5 + 1.5 * torch.rand(*batch, 1, 1, generator=g, dtype=x.dtype)
    t = torch.randn(*batch, 1, 3, generator=g, dtype=x.dtype)
    return s * (x @ R.transpose(-1, -2)) + t


# ----------------------------------------------------------------------------------------------- MPJVE


@pytest.mark.parametrize("batch", [(), (5,), (2, 3)])
def test_mpjve_constant_velocity_error(batch):
    T, J = 6, 4
    target = torch.randn(*batch, T, J, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    drift = torch.arange(T, dtype=F64)[:, None, None] * torch.tensor([0.0, 0.3, 0.4], dtype=F64)  # 0.5 per frame
    pred = target + drift
    assert mpjve(pred, target).item() == pytest.approx(0.5)
    assert mpjve(pred, target, fps=30).item() == pytest.approx(15.0)  # metres per second
    assert mpjve(target + 7.0, target).item() == pytest.approx(0.0, abs=1e-12)  # an offset has no velocity


def test_mpjve_hand_computed_and_mask():
    # one joint; the difference pred - target goes (0,0,0) -> (3,4,0) -> (3,4,2): velocity errors 5 and 2
    target = np.zeros((3, 1, 3))
    pred = np.array([[[0.0, 0, 0]], [[3.0, 4, 0]], [[3.0, 4, 2]]])
    assert mpjve(pred, target).item() == pytest.approx(3.5)
    # frame 2 hidden: only the velocity 0 -> 1 (both ends visible) counts
    assert mpjve(pred, target, mask=np.array([[True], [True], [False]])).item() == pytest.approx(5.0)
    # a (J,) mask broadcasts over frames; joint 1 is hidden everywhere
    pred2 = np.concatenate([pred, np.full((3, 1, 3), 9.0) * np.arange(3)[:, None, None]], axis=1)
    assert mpjve(pred2, np.zeros((3, 2, 3)), mask=[True, False]).item() == pytest.approx(3.5)


def test_mpjve_errors():
    x = torch.zeros(1, 2, 3)
    with pytest.raises(ShapeError, match="velocity needs T >= 2"):
        mpjve(x, x)
    y = torch.zeros(3, 2, 3)
    with pytest.raises(KineposeError, match="fps: expected a finite number"):
        mpjve(y, y, fps=0)
    with pytest.raises(NonFiniteError, match="pred"):
        mpjve(y.clone().index_fill_(0, torch.tensor([1]), math.nan), y)
    with pytest.raises(KineposeError, match="no joint is masked in at two consecutive frames"):
        mpjve(y, y, mask=torch.tensor([[True, False], [False, True], [True, False]]))
    with pytest.raises(ShapeError, match="target"):
        mpjve(y, torch.zeros(3, 2, 2))


def test_acceleration_error_shares_the_conventions():
    """(..., T, J, 3) on dim -3, per frame^2, scaled by fps^2: d = t^2 along x has acceleration 2 per frame^2."""
    T = 5
    d = torch.zeros(2, T, 3, 3, dtype=F64)
    d[..., 0] = (torch.arange(T, dtype=F64) ** 2)[:, None]
    assert acceleration_error(d, torch.zeros_like(d)).item() == pytest.approx(2.0)
    assert acceleration_error(d, torch.zeros_like(d), fps=10).item() == pytest.approx(200.0)
    assert mpjve(d, torch.zeros_like(d)).item() == pytest.approx((1 + 3 + 5 + 7) / 4)  # |t+1|^2 - t^2 = 2t + 1


# ----------------------------------------------------------------------------------------------- bone length std


def _chain(lengths: list[list[float]]) -> torch.Tensor:
    """(T, J, 3) chain along x: joint j at the sum of the first j bone lengths of each frame."""
    L = torch.tensor(lengths, dtype=F64)  # (T, B)
    x = torch.cat([torch.zeros(L.shape[0], 1, dtype=F64), L.cumsum(-1)], dim=-1)  # (T, J)
    return torch.stack([x, torch.zeros_like(x), torch.zeros_like(x)], dim=-1)


def test_bone_length_std_hand_computed():
    # bone 0 (joint 0 -> 1) constant 2; bone 1 (1 -> 2) alternates 1 and 3: mean 2, population std 1
    joints = _chain([[2.0, 1.0], [2.0, 3.0], [2.0, 1.0], [2.0, 3.0]])
    out = bone_length_std(joints, [-1, 0, 1])
    assert isinstance(out, BoneLengthStd) and out.children == (1, 2)
    torch.testing.assert_close(out.per_bone, torch.tensor([0.0, 1.0], dtype=F64))
    assert out.mean.item() == pytest.approx(0.5) and out.valid.all()
    # a branching tree: joint 3 hangs off the root at (0, 5, 0) in every frame -> std 0
    branch = torch.cat([joints, torch.tensor([0.0, 5.0, 0.0], dtype=F64).expand(4, 1, 3)], dim=1)
    out = bone_length_std(branch, [-1, 0, 1, 0])
    torch.testing.assert_close(out.per_bone, torch.tensor([0.0, 1.0, 0.0], dtype=F64))


def test_bone_length_std_mask_and_batch():
    joints = _chain([[2.0, 1.0], [2.0, 3.0], [2.0, 1.0], [2.0, 3.0]])
    # joint 2 hidden in the frames where bone 1 is 3 long: it is constant over the frames left
    mask = torch.ones(4, 3, dtype=torch.bool)
    mask[[1, 3], 2] = False
    out = bone_length_std(joints, [-1, 0, 1], mask=mask)
    torch.testing.assert_close(out.per_bone, torch.tensor([0.0, 0.0], dtype=F64))
    # joint 2 hidden everywhere: bone 1 has no frame (NaN, not valid, out of the mean)
    out = bone_length_std(joints, [-1, 0, 1], mask=[True, True, False])
    assert out.valid.tolist() == [True, False] and math.isnan(out.per_bone[1].item()) and out.mean.item() == 0.0
    batch = torch.stack([joints, 2 * joints])  # (2, T, J, 3): the second clip's std doubles
    out = bone_length_std(batch, [-1, 0, 1])
    assert out.per_bone.shape == (2, 2)
    torch.testing.assert_close(out.per_bone[1], torch.tensor([0.0, 2.0], dtype=F64))
    assert out.mean.item() == pytest.approx(0.75)


def test_bone_length_std_gradients_finite_for_constant_bones():
    joints = _chain([[2.0, 1.0], [2.0, 3.0], [2.0, 1.0]]).requires_grad_()
    bone_length_std(joints, [-1, 0, 1]).mean.backward()
    assert torch.isfinite(joints.grad).all()


def test_bone_length_std_errors():
    joints = _chain([[1.0], [1.0]])
    with pytest.raises(ShapeError, match="parents: expected 2 indices"):
        bone_length_std(joints, [-1, 0, 1])
    with pytest.raises(ShapeError, match="parents"):
        bone_length_std(joints, [-1, 1])  # its own parent
    with pytest.raises(ShapeError, match="needs T >= 2 frames"):
        bone_length_std(joints[:1], [-1, 0])
    with pytest.raises(KineposeError, match="no bone"):
        bone_length_std(joints, [-1, -1])
    with pytest.raises(KineposeError, match="no bone has both ends masked in"):
        bone_length_std(joints, [-1, 0], mask=[True, False])


# ----------------------------------------------------------------------------------------------- Ego-Exo4D


def test_egoexo4d_mpjpe_is_wrist_relative():
    g = torch.Generator().manual_seed(2)
    target = torch.randn(4, 21, 3, generator=g, dtype=F64)
    valid = torch.ones(4, 21, dtype=torch.bool)
    shifted = target + torch.randn(4, 1, 3, generator=g, dtype=F64)  # another wrist position, same hand shape
    assert egoexo4d_mpjpe(shifted, target, valid).item() == pytest.approx(0.0, abs=1e-12)


def test_egoexo4d_mpjpe_hand_computed_per_hand_mean():
    # wrist-relative errors: hand A joints (0, 2, 50), joint 2 invalid -> mean(0, 2) = 1;
    # hand B (0, 4, 4), all valid -> 8/3. The protocol averages per hand: (1 + 8/3) / 2 (pooled would be 2).
    target = torch.zeros(2, 3, 3, dtype=F64)
    target[:, 1:, 0] = 1.0
    pred = target.clone()
    pred[0, 1, 1] += 2.0
    pred[0, 2, 2] += 50.0
    pred[1, 1:, 2] += 4.0
    valid = torch.tensor([[True, True, False], [True, True, True]])
    assert egoexo4d_mpjpe(pred, target, valid).item() == pytest.approx((1 + 8 / 3) / 2)
    assert egoexo4d_mpjpe(pred + 3.0, target - 1.0, valid).item() == pytest.approx((1 + 8 / 3) / 2)
    # NaN at the invalid joint of the target, as in the benchmark's files, is allowed
    target[0, 2] = math.nan
    assert egoexo4d_mpjpe(pred, target, valid).item() == pytest.approx((1 + 8 / 3) / 2)
    # a hand with no valid joint is skipped
    none = torch.tensor([[True, True, False], [False, False, False]])
    assert egoexo4d_mpjpe(pred, target, none).item() == pytest.approx(1.0)


def test_egoexo4d_mpjpe_matches_the_benchmark_formula():
    """The benchmark's evaluate.py with --offset: pred (wrist-relative) + GT wrist against the GT, valid joints,
    mean per hand, then over hands."""
    g = torch.Generator().manual_seed(3)
    gt = torch.randn(6, 21, 3, generator=g, dtype=F64)
    pred_rel = gt - gt[:, :1] + 0.05 * torch.randn(6, 21, 3, generator=g, dtype=F64)
    pred_rel[:, 0] = 0.0  # a wrist-relative prediction
    valid = torch.rand(6, 21, generator=g) > 0.3
    want = np.mean([
        np.linalg.norm((pred_rel[i] + gt[i, 0] - gt[i])[valid[i]].numpy(), axis=-1).mean() for i in range(6)
    ])  # fmt: skip
    assert egoexo4d_mpjpe(pred_rel, gt, valid).item() == pytest.approx(want, rel=1e-12)


def test_egoexo4d_pa_mpjpe_invariant_under_similarity():
    g = torch.Generator().manual_seed(4)
    target = torch.randn(5, 21, 3, generator=g, dtype=F64)
    pred = target + 0.1 * torch.randn(5, 21, 3, generator=g, dtype=F64)
    valid = torch.rand(5, 21, generator=g) > 0.25
    ref = egoexo4d_pa_mpjpe(pred, target, valid)
    torch.testing.assert_close(egoexo4d_pa_mpjpe(_similarity(pred, g), target, valid), ref)
    assert egoexo4d_pa_mpjpe(_similarity(target, g), target, valid).item() == pytest.approx(0.0, abs=1e-9)
    # per hand, it is PA-MPJPE over the hand's valid joints alone (the alignment ignores the others)
    per_hand = [pa_mpjpe(pred[i][valid[i]], target[i][valid[i]]) for i in range(5)]
    torch.testing.assert_close(ref, torch.stack(per_hand).mean())
    # NaN at invalid joints, the wrist included, is allowed
    bad = valid.clone()
    bad[:, 0] = False
    nan_target = target.masked_fill(~bad[..., None], math.nan)
    torch.testing.assert_close(egoexo4d_pa_mpjpe(pred, nan_target, bad), egoexo4d_pa_mpjpe(pred, target, bad))


def test_egoexo4d_errors():
    x = torch.zeros(2, 21, 3)
    valid = torch.ones(2, 21, dtype=torch.bool)
    nan_valid = x.clone()
    nan_valid[1, 4, 0] = math.nan
    with pytest.raises(NonFiniteError, match=r"target: non-finite value at index \(1, 4, 0\)"):
        egoexo4d_mpjpe(x, nan_valid, valid)
    nan_wrist = x.clone()
    nan_wrist[0, 0] = math.nan
    no_wrist = valid.clone()
    no_wrist[:, 0] = False
    with pytest.raises(NonFiniteError, match="the wrist"):  # wrist-relative needs the wrist, valid or not
        egoexo4d_mpjpe(nan_wrist, x, no_wrist)
    assert egoexo4d_pa_mpjpe(nan_wrist, x, no_wrist).item() == pytest.approx(0.0)  # PA does not
    with pytest.raises(KineposeError, match="no joint is valid"):
        egoexo4d_mpjpe(x, x, torch.zeros(2, 21, dtype=torch.bool))
    with pytest.raises(ShapeError, match="valid: expected shape"):
        egoexo4d_mpjpe(x, x, torch.ones(2, 20, dtype=torch.bool))
    with pytest.raises(KineposeError, match="valid: expected booleans"):
        egoexo4d_mpjpe(x, x, torch.full((2, 21), 0.5))
    with pytest.raises(ShapeError, match="pred has shape"):
        egoexo4d_pa_mpjpe(x, torch.zeros(3, 21, 3), valid)
