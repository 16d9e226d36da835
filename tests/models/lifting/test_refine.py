"""The 2D fit after lifting (kinepose.models.lifting.refine): real motion (DeepMimic kick) seen by a camera built and
projected with kinepose.geometry.cameras (pinned to cv2.projectPoints in tests/geometry)."""

from __future__ import annotations

import pytest
import torch

from kinepose.errors import KineposeError
from kinepose.geometry.cameras import look_at_camera, project, world_to_camera
from kinepose.geometry.normalization import normalize_screen_coordinates
from kinepose.kinematics.fk import bone_lengths
from kinepose.metrics.positions import mpjpe
from kinepose.models.lifting import create_lifter
from kinepose.models.lifting.refine import RefineConfig, refine_joints
from kinepose.skeleton.presets import get_skeleton

SK = get_skeleton("humanoid")


def _view(focal_px: float = 1200.0, frames: int = 60):
    """(T, J, 2) screen-normalized keypoints and (T, J, 3) root-relative camera-frame joints of the kick clip."""
    from kinepose.data.sources.deepmimic import load_deepmimic

    x = load_deepmimic("kick").positions()[:frames].float()  # (T, J, 3) world, Y up, 30 fps
    centre = x[:, 0].mean(0)
    cam = look_at_camera(centre + torch.tensor([2.5, 0.8, 3.2]), centre, up=(0.0, 1.0, 0.0), focal_px=focal_px)
    xc = world_to_camera(x, cam)
    kp = normalize_screen_coordinates(project(x, cam), 1000, 1000)
    return kp, xc - xc[:, :1]


def _squash_depth(joints: torch.Tensor, factor: float) -> torch.Tensor:
    """Every bone's depth component times ``factor``, lengths kept: a lifter that got depth wrong."""
    P = torch.tensor(SK.parents[1:])
    bones = joints[:, 1:] - joints[:, P]
    L = bones.norm(dim=-1, keepdim=True)
    b = bones * torch.tensor([1.0, 1.0, factor])
    b = b / b.norm(dim=-1, keepdim=True) * L
    out = [joints[:, 0]]
    for j in range(1, SK.num_joints):
        out.append(out[SK.parents[j]] + b[:, j - 1])
    return torch.stack(out, 1)


def test_truth_is_kept():
    """Started at the truth with clean keypoints, the fit stays there: exactly without the smoothness prior (the
    projection model is the camera's), within 2 cm with it (a fast kick is not smooth; 12 mm measured)."""
    kp, target = _view()
    out = refine_joints(SK.parents, kp, None, target, RefineConfig(sigma_accel=1000.0))
    assert float(mpjpe(out, target)) < 1e-4
    out = refine_joints(SK.parents, kp, None, target, RefineConfig())
    assert float(mpjpe(out, target)) < 0.02


def test_depth_errors_are_fixed_by_the_image():
    """Depth of every bone halved (the network's typical error): the fit brings the joints back from the 2D
    keypoints, also when the camera's focal length is not the fit's prior (1,600 px against 1,200)."""
    for focal in (1200.0, 1600.0):
        kp, target = _view(focal)
        bad = _squash_depth(target, 0.5)
        before, after = float(mpjpe(bad, target)), float(mpjpe(refine_joints(SK.parents, kp, None, bad,
                                                                           RefineConfig()), target))  # fmt: skip
        assert before > 0.05
        assert after < 0.35 * before, (focal, before, after)  # measured 0.30x at 1,600 px (prior 1,200 px)


def test_bone_lengths_constant_and_missing_joints():
    kp, target = _view()
    g = torch.Generator().manual_seed(0)
    vis = (torch.rand(kp.shape[:2], generator=g) > 0.1).float()
    kp = torch.where(vis[..., None] > 0, kp, torch.nan)
    out = refine_joints(SK.parents, kp, vis, _squash_depth(target, 0.5), RefineConfig())
    assert torch.isfinite(out).all()
    assert float(bone_lengths(SK, out)[:, 1:].std(0).max()) < 1e-5
    assert float(mpjpe(out, target)) < 0.03


def test_overall_size_is_the_networks():
    """A start 10 % too small stays 10 % too small in size (scale cannot be seen in one view: the mean log bone
    length is kept exactly), while its proportions and pose are fitted."""
    kp, target = _view()
    start = 0.9 * _squash_depth(target, 0.5)
    out = refine_joints(SK.parents, kp, None, start, RefineConfig())
    size = bone_lengths(SK, out)[0, 1:].log().mean() - bone_lengths(SK, target)[0, 1:].log().mean()
    assert abs(float(size) - float(torch.log(torch.tensor(0.9)))) < 1e-5
    assert float(mpjpe(out / 0.9, target)) < 0.03


def test_outliers_pull_little_unlike_least_squares():
    """5 % of the joints 60 px off: the Cauchy fit stays near the clean fit; least squares (robust scale far beyond
    the residuals) is dragged."""
    kp, target = _view()
    g = torch.Generator().manual_seed(1)
    hit = torch.rand(kp.shape[:2], generator=g) < 0.05
    noisy = kp + hit[..., None] * 0.12 * torch.nn.functional.normalize(torch.randn(*kp.shape, generator=g), dim=-1)
    start = _squash_depth(target, 0.5)
    robust = float(mpjpe(refine_joints(SK.parents, noisy, None, start, RefineConfig()), target))
    l2 = float(mpjpe(refine_joints(SK.parents, noisy, None, start, RefineConfig(robust=10.0)), target))
    assert robust < 0.025
    assert l2 > 1.5 * robust, (robust, l2)


def test_left_right_swaps_are_relabelled():
    """A detector's label swaps: every left/right pair swapped on 10 % of the frames, one pair on another 10 %. The
    fit with relabelling checks the labels against its pose and ends, on those frames, where the fit on the unswapped
    keypoints does; with ``relabel: 0`` the robust loss alone leaves them 4 to 10 mm worse."""
    kp, target = _view()
    g = torch.Generator().manual_seed(2)
    mirror = list(SK.mirror_index)
    whole = torch.rand(kp.shape[0], generator=g) < 0.1
    swapped = torch.where(whole[:, None, None], kp[:, mirror], kp)
    one = (~whole) & (torch.rand(kp.shape[0], generator=g) < 0.1)
    a, b = SK.left_right[0]
    swapped[one, a], swapped[one, b] = kp[one, b], kp[one, a]
    assert int(whole.sum()) > 2 and int(one.sum()) > 2
    start, hit = _squash_depth(target, 0.5), whole | one

    def err(keypoints, config):  # mean error (m) over the swapped frames
        out = refine_joints(SK.parents, keypoints, None, start, config, SK.left_right)
        return float((out - target).norm(dim=-1)[hit].mean())

    wide = RefineConfig(robust=0.04)  # a wider robust scale than the default 0.02, so the swaps pull harder
    clean, fixed, off = err(kp, wide), err(swapped, wide), err(swapped, RefineConfig(robust=0.04, relabel=0))
    assert fixed < clean + 0.001, (clean, fixed)  # measured 20.3 mm both
    assert off > fixed + 0.005, (off, fixed)  # measured 30.1 mm (24.8 against 20.7 at the default scale)


def test_a_batch_of_clips_is_fitted_as_each_alone():
    """Clips of one length fitted at once (the benchmark fits all views of a clip together) give what fitting each
    alone gives: the clips' problems are independent and Adam is elementwise."""
    kp1, t1 = _view(1200.0, frames=30)
    kp2, t2 = _view(1600.0, frames=30)
    kp, start = torch.stack([kp1, kp2]), torch.stack([_squash_depth(t1, 0.5), _squash_depth(t2, 0.6)])
    cfg = RefineConfig(steps=60)
    both = refine_joints(SK.parents, kp, None, start, cfg, SK.left_right)
    for b in range(2):
        alone = refine_joints(SK.parents, kp[b], None, start[b], cfg, SK.left_right)
        torch.testing.assert_close(both[b], alone, atol=1e-5, rtol=0)
    torch.manual_seed(4)
    m = create_lifter("skeleton_lifter", SK, window=5, dim=32, layers=1, heads=2, refine={"steps": 30}).eval()
    with torch.no_grad():
        out = m.forward_sequence(kp)
        for b in range(2):
            torch.testing.assert_close(out[b], m.forward_sequence(kp[b : b + 1])[0], atol=1e-5, rtol=0)


def test_steps_zero_is_the_network_and_config_checks():
    kp, target = _view(frames=10)
    out = refine_joints(SK.parents, kp, None, target, RefineConfig(steps=0))
    torch.testing.assert_close(out, target, atol=1e-6, rtol=0)
    assert RefineConfig.from_value(False) is None and RefineConfig.from_value(None) is None
    assert RefineConfig.from_value(True) == RefineConfig()
    assert RefineConfig.from_value({"steps": 5}).steps == 5
    with pytest.raises(KineposeError, match=r"refine: unknown key\(s\) \['stpes'\]"):
        RefineConfig.from_value({"stpes": 5})
    with pytest.raises(KineposeError, match="refine.sigma: must be a finite number > 0"):
        RefineConfig(sigma=0.0)
    with pytest.raises(KineposeError, match="refine.steps"):
        RefineConfig(steps=-1)
    with pytest.raises(KineposeError, match="refine.relabel: must be an integer >= 0"):
        RefineConfig(relabel=1.5)
    with pytest.raises(KineposeError, match="refine.flip: must be true or false"):
        RefineConfig(flip="yes")
    with pytest.raises(KineposeError, match="refine: expected true, false or a mapping"):
        RefineConfig.from_value("yes")


def test_ours_refined_is_still_one_skeleton_so_ik_reproduces_it(tmp_path):
    """Ours with the fit on: the rigid groups survive the fit, so FK(IK(output)) == output; the setting is saved."""
    from kinepose.kinematics.calibration import calibrate_skeleton
    from kinepose.kinematics.fk import forward_kinematics
    from kinepose.kinematics.ik import analytic_ik
    from kinepose.models.lifting.files import load_lifter, save_lifter

    torch.manual_seed(4)
    m = create_lifter("skeleton_lifter", SK, window=5, dim=32, layers=1, heads=2, refine={"steps": 40}).eval()
    kp, _ = _view(frames=30)
    with torch.no_grad():
        out = m.forward_sequence(kp[None])[0].double()
        m.refine = None
        raw = m.forward_sequence(kp[None])[0].double()
    assert float((out - raw).norm(dim=-1).mean()) > 0.01  # the fit moved the untrained net's output
    sub = calibrate_skeleton(SK, out)
    res = analytic_ik(sub, out, respect_limits=False)
    fk = forward_kinematics(sub, res.local_quat, res.root_pos).positions
    assert float((fk - out).norm(dim=-1).max()) < 1e-5
    m.refine = RefineConfig(steps=7, sigma=0.02)  # set after construction: saved as it is now
    save_lifter(str(tmp_path / "l.pt"), m)
    assert load_lifter(str(tmp_path / "l.pt")).refine == RefineConfig(steps=7, sigma=0.02)
    m.refine = None
    save_lifter(str(tmp_path / "off.pt"), m)
    assert load_lifter(str(tmp_path / "off.pt")).refine is None


def test_flip_prior_is_the_mirrored_views_mean():
    """flip: the direction prior averages the network on the keypoints and on their mirror image; on an untrained
    (asymmetric) network that moves the fit, and the output is still one skeleton."""
    torch.manual_seed(5)
    m = create_lifter("skeleton_lifter", SK, window=1, dim=32, layers=1, heads=2, refine={"steps": 40}).eval()
    kp, _ = _view(frames=20)
    with torch.no_grad():
        on = m.forward_sequence(kp[None])[0]
        m.refine = RefineConfig(steps=40, flip=False)
        off = m.forward_sequence(kp[None])[0]
    assert float((on - off).norm(dim=-1).mean()) > 1e-3
    assert float(bone_lengths(SK, on)[:, 1:].std(0).max()) < 1e-5


@pytest.mark.parametrize("family", ["mlp", "knn", "tcn"])
def test_every_family_takes_refine(family, tmp_path):
    """``refine`` is a config key of every family: the clip output is the family's own output fitted by
    refine_joints (the same numbers), windows pass unchanged, and the setting survives save/load."""
    from kinepose.models.lifting.files import load_lifter, save_lifter

    torch.manual_seed(0)
    extra = {"filter_widths": "3,3"} if family == "tcn" else {}
    kp, joints = _view(frames=12)
    m = create_lifter(family, SK, refine={"steps": 20}, **extra).eval()
    if family == "knn":
        m.fit_bank(kp, joints)
    with torch.no_grad():
        out = m.forward_sequence(kp[None])
        raw = m._lift_sequence(kp[None])
        ref = refine_joints(SK.parents, kp[None], None, raw, RefineConfig(steps=20), SK.left_right)
    torch.testing.assert_close(out, ref)
    assert float((out - raw).norm(dim=-1).mean()) > 1e-4  # the fit moved it
    assert float(bone_lengths(SK, out[0])[:, 1:].std(0).max()) < 1e-5
    save_lifter(str(tmp_path / "lifter.pt"), m)
    back = load_lifter(tmp_path)
    assert back.refine == RefineConfig(steps=20)
    back.refine = None
    assert "refine" not in create_lifter(family, SK, **extra).config()
    with torch.no_grad():
        torch.testing.assert_close(back.forward_sequence(kp[None]), raw)


def test_refine_refused_on_causal_lifters():
    with pytest.raises(KineposeError, match="causal"):
        create_lifter("tcn", SK, filter_widths="3,3", causal=True, refine=True)
    with pytest.raises(KineposeError, match="causal"):
        create_lifter("skeleton_lifter", SK, window=3, causal=True, refine=True)
    m = create_lifter("tcn", SK, filter_widths="3,3", causal=True).eval()
    m.refine = RefineConfig(steps=5)
    kp, _ = _view(frames=12)
    with pytest.raises(KineposeError, match="causal"):
        m.forward_sequence(kp[None])


def test_bone_directions_invert_decode_skeleton():
    from kinepose.models.lifting.skeleton_lifter import bone_directions, decode_skeleton

    _, joints = _view(frames=8)
    d = bone_directions(SK.parents, joints)
    torch.testing.assert_close(d.norm(dim=-1), torch.ones(8, SK.num_joints))
    lengths = torch.cat([torch.zeros(1), bone_lengths(SK, joints)[0, 1:]])
    torch.testing.assert_close(decode_skeleton(SK.parents, d, lengths.expand(8, -1)), joints, atol=1e-6, rtol=0)


def test_pose_bank_prior_guides_the_fit(tmp_path):
    """With a pose bank, the fit's direction prior mixes in the bones of the nearest training views. A bank holding
    this clip's own views (k = 1: each frame finds itself) with bank_weight 1 makes the prior the truth, so an
    untrained network's fit lands near the truth (under 1 cm measured, against 0.7 m without the bank);
    bank_weight 0 is exactly the fit without a bank; the bank and its settings are saved with the lifter."""
    from kinepose.models.lifting.files import load_lifter, save_lifter

    torch.manual_seed(6)
    kp, truth = _view(frames=30)
    small = {"window": 1, "dim": 32, "layers": 1, "heads": 2, "refine": {"steps": 300, "sigma_direction": 0.1}}
    m = create_lifter("skeleton_lifter", SK, bank=30, bank_k=1, bank_weight=1.0, **small).eval()
    with pytest.raises(KineposeError, match="pose bank is empty"):
        m.forward_sequence(kp[None])
    m.fit_bank(kp, truth)
    plain = create_lifter("skeleton_lifter", SK, **small).eval()
    plain.load_state_dict(m.state_dict(), strict=False)  # the same network, no bank
    with torch.no_grad():
        guided = m.forward_sequence(kp[None])[0]
        alone = plain.forward_sequence(kp[None])[0]
        m.bank_weight = 0.0
        torch.testing.assert_close(m.forward_sequence(kp[None])[0], alone)
        m.bank_weight = 1.0
    err_guided, err_alone = float(mpjpe(guided, truth)), float(mpjpe(alone, truth))
    assert err_guided < 0.02 and err_alone > 3 * err_guided, (err_guided, err_alone)
    assert float(bone_lengths(SK, guided)[:, 1:].std(0).max()) < 1e-5  # still one skeleton
    save_lifter(str(tmp_path / "l.pt"), m)
    back = load_lifter(str(tmp_path / "l.pt"))
    assert back.config()["bank"] == 30 and back.bank.k == 1 and back.bank_weight == 1.0
    torch.testing.assert_close(back.bank.bank_3d, m.bank.bank_3d)
    with torch.no_grad():
        torch.testing.assert_close(back.forward_sequence(kp[None])[0], guided)
    # set_bank: attach a filled knn lifter's bank (what the benchmark does with the knn row's run)
    knn = create_lifter("knn", SK, k=1, bank_size=30)
    with pytest.raises(KineposeError, match="needs a filled knn lifter"):
        plain.set_bank(knn)
    knn.fit_bank(kp, truth)
    plain.set_bank(knn, weight=1.0)
    assert plain.config()["bank"] == 30 and plain.config()["bank_weight"] == 1.0
    with torch.no_grad():
        torch.testing.assert_close(plain.forward_sequence(kp[None])[0], guided)
    with pytest.raises(KineposeError, match=r"bank_weight must be in \[0, 1\]"):
        create_lifter("skeleton_lifter", SK, bank=10, bank_weight=1.5)
    with pytest.raises(KineposeError, match="no pose bank"):
        create_lifter("skeleton_lifter", SK).fit_bank(kp, truth)
