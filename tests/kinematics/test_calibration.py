"""Subject calibration: bone lengths from the input (robust, noise bias removed) and unit detection."""

import numpy as np
import pytest
import torch

from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.errors import KineposeError
from kinepose.kinematics import analytic_ik, estimate_noise_std, fit_skeleton, forward_kinematics
from kinepose.kinematics.calibration import (
    UNIT_SCALES,
    calibrate_skeleton,
    check_units,
    estimate_bone_lengths,
    guess_units,
)
from kinepose.metrics import geodesic_error


def scaled_subject(sk, seed: int, lo: float = 0.85, hi: float = 1.15):
    """The template with every bone scaled independently by a factor in [lo, hi]."""
    g = np.random.default_rng(seed)
    off = np.array(sk.offsets) * g.uniform(lo, hi, size=(sk.num_joints, 1))
    off[0] = sk.offsets[0]
    return sk.with_offsets(off, name=f"subject{seed}")


@pytest.fixture(scope="module")
def walk():
    return load_deepmimic("walk")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_scaled_subjects_are_exact_after_calibration(walk, seed):
    """Issue 9: clean joints of subjects with every bone scaled by 0.85-1.15 give FK within 0.01 mm and 0 deg
    on determined joints through analytic IK and the fit, and a noise estimate below 1 mm."""
    tmpl = walk.skeleton
    subj = scaled_subject(tmpl, seed)
    x = forward_kinematics(subj, walk.local_quat, walk.root_pos).positions
    cal = calibrate_skeleton(tmpl, x)
    np.testing.assert_allclose(cal.bone_lengths(), subj.bone_lengths(), atol=1e-9)
    assert float(estimate_noise_std(cal, x).max()) < 1e-3
    assert float(estimate_noise_std(tmpl, x).mean()) > 5e-3  # control: the template reads clean input as noisy
    det = analytic_ik(cal, x).determined.numpy()
    for result in (analytic_ik(cal, x), fit_skeleton(cal, x)):
        fk = forward_kinematics(cal, result.local_quat, result.root_pos).positions
        assert float((fk - x).norm(dim=-1).max()) < 1e-5  # 0.01 mm
        geo = geodesic_error(result.local_quat[:, det], walk.local_quat[:, det], degrees=True)
        assert float(geo.max()) < 1e-3
    # control: the template's own fit is off on this subject
    fk = forward_kinematics(tmpl, *_fit(tmpl, x)).positions
    assert float((fk - x).norm(dim=-1).mean()) > 5e-3


def _fit(sk, x):
    r = fit_skeleton(sk, x)
    return r.local_quat, r.root_pos


def test_noisy_lengths_are_unbiased(walk):
    """At 10 mm noise per coordinate the raw mean length is biased up by about 2 s^2 / L (the perpendicular
    noise); the corrected estimate removes it, and the noise estimate recovers s."""
    tmpl = walk.skeleton
    subj = scaled_subject(tmpl, 5)
    x = forward_kinematics(subj, walk.local_quat.repeat(50, 1, 1), walk.root_pos.repeat(50, 1)).positions
    s = 0.01
    x = x + s * torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    est = estimate_bone_lengths(tmpl, x)
    raw = estimate_bone_lengths(tmpl, x, correct_noise=False)
    bones = est.measured
    true = subj.bone_lengths()[bones]
    assert est.noise_std == pytest.approx(s, rel=0.15)
    bias, bias_raw = (est.lengths[bones] - true).mean(), (raw.lengths[bones] - true).mean()
    assert abs(bias) < 0.0002 and bias_raw > 0.0005  # metres, mean over the 12 bones of 1950 frames
    assert np.abs(est.lengths[bones] - true).max() < 0.002
    # hand check of the bias: the raw (median) length exceeds L by about 2 s^2 / L, on average over bones
    L = subj.bone_lengths()[bones]
    assert bias_raw == pytest.approx(float((2 * s**2 / L).mean()), rel=0.3)


def test_lengths_are_robust_to_outlier_frames(walk):
    tmpl = walk.skeleton
    x = walk.positions().clone()
    x[::10, 5] += 0.5  # a detector that jumps: 10% of the frames put one ankle 50 cm off
    est = estimate_bone_lengths(tmpl, x)
    np.testing.assert_allclose(est.lengths[est.measured], tmpl.bone_lengths()[est.measured], atol=0.01)


def test_missing_joints_do_not_stop_calibration(walk):
    """A joint never seen: its bones take the other side's measured lengths when it has a left/right
    partner (a hidden knee: the other leg's thigh and shin), else the template's."""
    sk = walk.skeleton
    subj = scaled_subject(sk, 4)
    x = forward_kinematics(subj, walk.local_quat, walk.root_pos).positions.clone()
    knee, other, neck = sk.index("right_knee"), sk.index("left_knee"), sk.index("neck")
    x[:, knee] = float("nan")
    x[:, neck] = float("nan")
    est = estimate_bone_lengths(sk, x)
    assert est.measured[knee] and est.lengths[knee] == pytest.approx(subj.bone_lengths()[other], abs=1e-9)
    assert not est.measured[neck] and est.lengths[neck] == pytest.approx(sk.bone_lengths()[neck])


@pytest.mark.parametrize(
    ("factor", "unit"), [(1000.0, "mm"), (100.0, "cm"), (10.0, "dm"), (1 / 0.0254, "inch"), (0.45 / 0.0254, "cmu")]
)
def test_units_are_detected_and_named(walk, factor, unit):
    x = walk.positions() * factor
    with pytest.raises(KineposeError, match=rf"--scale {UNIT_SCALES[unit]:g} \(or --units {unit}\)"):
        check_units(walk.skeleton, x, where="walk.csv")
    assert guess_units(factor) == unit
    check_units(walk.skeleton, x * UNIT_SCALES[unit])  # converted: accepted


def test_units_accept_real_proportions_and_reject_nonsense(walk):
    sk = walk.skeleton
    for scale in (0.8, 1.0, 1.2):  # a child, the template, a tall adult: metres
        assert check_units(sk, walk.positions() * scale) == pytest.approx(scale, rel=1e-6)
    with pytest.raises(KineposeError, match="matches no unit"):
        check_units(sk, walk.positions() * 300.0)


def test_another_rigs_pelvis_and_shoulders_are_learned(walk):
    """A subject whose hips sit wider and higher and whose shoulders are narrower (rest directions differ
    from the template's, not only lengths): calibrating lengths alone leaves FK centimetres off; with the
    rigid groups' shapes (generalized Procrustes) analytic IK is exact again, and the recovered shape has
    the subject's angles between the bones."""
    tmpl = walk.skeleton
    off = np.array(tmpl.offsets)
    for name, shift in (("right_hip", [-0.03, 0.02, 0.0]), ("left_hip", [0.03, 0.02, 0.0]),
                        ("right_shoulder", [0.02, -0.01, 0.0]), ("left_shoulder", [-0.02, -0.01, 0.0])):  # fmt: skip
        off[tmpl.index(name)] += shift
    subj = tmpl.with_offsets(off, name="wide")
    x = forward_kinematics(subj, walk.local_quat, walk.root_pos).positions
    lengths_only = calibrate_skeleton(tmpl, x, directions=False)
    fk = forward_kinematics(lengths_only, *_fit(lengths_only, x)).positions
    assert float((fk - x).norm(dim=-1).mean()) > 0.005
    cal = calibrate_skeleton(tmpl, x)
    r = analytic_ik(cal, x)
    fk = forward_kinematics(cal, r.local_quat, r.root_pos).positions
    assert float((fk - x).norm(dim=-1).max()) < 1e-6
    for parent in ("root", "chest"):
        kids = list(tmpl.children[tmpl.index(parent)])
        a, b = np.array(cal.offsets)[kids], off[kids]
        np.testing.assert_allclose(a @ a.T, b @ b.T, atol=1e-9)  # same shape: lengths and angles
