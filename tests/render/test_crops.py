"""Crops rendered at their own resolution: the crop camera by hand, a native crop equals the same window cut from a
render at that resolution, the image itself does not change, and rendered sets carry, save and subset the crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.errors import KineposeError
from kinepose.geometry.cameras import Camera, look_at_camera, project
from kinepose.geometry.crops import crop_boxes, crop_camera
from kinepose.kinematics.fk import forward_kinematics
from kinepose.models.vision.features import joint_crops
from kinepose.render import RenderConfig, render_pose
from kinepose.render.dataset import load_rendered_set, render_motion_set
from kinepose.skeleton.presets import get_skeleton

SK = get_skeleton("humanoid")


def _pose():
    q = torch.zeros(SK.num_joints, 4, dtype=torch.float64)
    q[:, 0] = 1
    out = forward_kinematics(SK, q, torch.tensor([0.0, 0.85, 0.0], dtype=torch.float64))
    return out.positions, out.global_rotmat


def test_crop_camera_by_hand():
    f64 = torch.float64
    cam = Camera(fx=torch.tensor(100.0, dtype=f64), fy=110.0, cx=31.5, cy=30.0, width=64, height=64)
    c = crop_camera(cam, (20.0, 40.0), 16.0, 64)  # 16 px of the image -> 64 px: 4x
    assert (c.width, c.height) == (64, 64)
    # full-image point u maps to crop pixel (u - (20 - 8)) * 4 - 0.5 (pixel centres at integers)
    assert float(c.fx) == 400.0 and float(c.fy) == 440.0
    assert float(c.cx) == pytest.approx((31.5 - 12.0) * 4 - 0.5)
    assert float(c.cy) == pytest.approx((30.0 - 32.0) * 4 - 0.5)
    X = torch.tensor([[0.1, -0.05, 2.0], [-0.3, 0.2, 3.0]], dtype=torch.float64)
    uv, uvc = project(X, cam), project(X, c)
    torch.testing.assert_close(uvc, (uv - torch.tensor([12.0, 32.0], dtype=torch.float64)) * 4 - 0.5)
    # and joint_crops' convention: the crop's pixel i samples the image at 12 + (i + 0.5) / 4
    img = torch.zeros(1, 3, 64, 64)
    img[0, :, 32:48, 12:28] = torch.linspace(0, 1, 16)[None, None, :]  # a horizontal ramp over the window
    crop = joint_crops(img, torch.tensor([[[20.0, 40.0]]]), torch.tensor([16.0]), 64)[0, 0, 0]  # (64, 64)
    i = torch.arange(64, dtype=torch.float32)
    want = (12 + (i + 0.5) / 4 - 12).clamp(0, 15) / 15  # the ramp's value at that point, linearly interpolated
    torch.testing.assert_close(crop[20, 2:58], want[2:58], atol=1e-5, rtol=0)  # inside the ramp (points 12-27)


def test_native_crop_equals_the_window_of_a_high_resolution_render():
    x, G = _pose()
    eye, target = torch.tensor([3.0, 1.2, 0.8], dtype=torch.float64), torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    low = look_at_camera(eye, target, focal_px=60.0, image_size=(48, 48))
    # the same camera at 4x: pixel p of it is the point (p + 0.5) / 4 - 0.5 of the low one
    high = Camera(fx=low.fx * 4, fy=low.fy * 4, cx=(low.cx + 0.5) * 4 - 0.5, cy=(low.cy + 0.5) * 4 - 0.5, R=low.R,
                  t=low.t, width=192, height=192)  # fmt: skip
    cfg = RenderConfig(image_size=(48, 48), occluder_prob=0.0, backgrounds=("flat",))
    u, v, side = 22.0, 14.0, 12.0  # a 12 px window, rendered at 48 px: 4x
    img, lab = render_pose(SK, x, G, low, 3, cfg, crop_windows=[[u, v, side]], crop_size=48)
    img_plain, _ = render_pose(SK, x, G, low, 3, cfg)
    np.testing.assert_array_equal(img, img_plain)  # asking for crops does not change the image
    hi, _ = render_pose(
        SK, x, G, high, 3, RenderConfig(image_size=(192, 192), occluder_prob=0.0, backgrounds=("flat",))
    )
    # crop pixel i sees the point u - 6 + (i + 0.5) / 4, which is pixel i + 4u - 22 of the high render
    a, b = int(4 * v - 22), int(4 * u - 22)
    want = hi[a : a + 48, b : b + 48].astype(int)
    got = lab.crops[0].astype(int)
    assert lab.crops.shape == (1, 48, 48, 3) and lab.crops.dtype == np.uint8
    assert (np.abs(got - want) > 2).mean() < 0.01 and np.abs(got - want).mean() < 0.5
    assert np.abs(got.astype(float) - got.mean()).mean() > 10  # not an empty picture: the head and chest are there


def test_bad_crop_windows_are_named():
    x, G = _pose()
    cam = look_at_camera(torch.tensor([3.0, 1.2, 0.8]), torch.tensor([0.0, 1.0, 0.0]), focal_px=60.0,
                         image_size=(48, 48))  # fmt: skip
    cfg = RenderConfig(image_size=(48, 48))
    with pytest.raises(KineposeError, match=r"crop_windows: expected \(K, 3\)"):
        render_pose(SK, x, G, cam, 0, cfg, crop_windows=[[1.0, 2.0]])
    with pytest.raises(KineposeError, match="side > 0"):
        render_pose(SK, x, G, cam, 0, cfg, crop_windows=[[1.0, 2.0, 0.0]])


CROPS = {"neck": 0.4, "left_ankle": 0.0}


@pytest.fixture(scope="module")
def sets():
    clips = {"walk": load_deepmimic("walk").slice(0, 20)}
    cfg = RenderConfig(image_size=(64, 64))
    with_crops = render_motion_set(SK, clips, 4, frames_per_view=2, config=cfg, seed=4, fill=(0.4, 0.5), progress=False,
                                   crops=CROPS,
                                   crop_size=32)  # fmt: skip
    plain = render_motion_set(SK, clips, 4, frames_per_view=2, config=cfg, seed=4, fill=(0.4, 0.5), progress=False)
    return with_crops, plain


def test_rendered_sets_carry_crops_where_crop_boxes_puts_them(sets, tmp_path):
    s, plain = sets
    assert s.crops.shape == (8, 2, 32, 32, 3) and plain.crops is None
    np.testing.assert_array_equal(s.images, plain.images)
    np.testing.assert_array_equal(s.joints_2d, plain.joints_2d)
    # each native crop shows what joint_crops cuts from the image at crop_boxes' window (sharper, same content)
    uv = torch.from_numpy(s.joints_2d).double()
    for k, (name, ext) in enumerate(CROPS.items()):
        c, side = crop_boxes(uv, SK.parents, 0.3, [SK.index(name)], extend=ext)
        inside = ((c[:, 0] - side[:, None] / 2 >= 0) & (c[:, 0] + side[:, None] / 2 <= 63)).all(-1).numpy()
        assert inside.sum() >= 4  # (outside the image joint_crops pads with black, the native crop sees the scene)
        cut = joint_crops(torch.from_numpy(s.images), c, side, 32)[:, 0].permute(0, 2, 3, 1).numpy() * 255
        native, other = s.crops[inside, k].astype(float), s.crops[inside, 1 - k].astype(float)
        err = np.abs(native - cut[inside]).mean((1, 2, 3))
        # a blurry 10-15 px window of a 64 px image against a sharp 32 px render: 6-13 grey levels apart here;
        # the other joint's crop is 22-80 away
        assert (err < 16).all(), (name, err)
        assert (err < 0.5 * np.abs(other - cut[inside]).mean((1, 2, 3))).all(), name
    s.save(tmp_path / "s.npz")
    back = load_rendered_set(tmp_path / "s.npz")
    np.testing.assert_array_equal(back.crops, s.crops)
    np.testing.assert_array_equal(s.subset(np.array([3, 1])).crops, s.crops[[3, 1]])
    plain.save(tmp_path / "p.npz")  # a set without crops (as written before they existed) loads with crops None
    assert load_rendered_set(tmp_path / "p.npz").crops is None and plain.subset(np.array([0])).crops is None


def test_crops_are_deterministic_across_workers_and_bad_names_fail(sets):
    s, _ = sets
    clips = {"walk": load_deepmimic("walk").slice(0, 20)}
    two = render_motion_set(SK, clips, 4, frames_per_view=2, config=RenderConfig(image_size=(64, 64)), seed=4,
                            fill=(0.4, 0.5), progress=False, crops=CROPS, crop_size=32, workers=2)  # fmt: skip
    np.testing.assert_array_equal(two.crops, s.crops)
    with pytest.raises(KineposeError, match=r"crops: joints \['nose'\] are not in skeleton"):
        render_motion_set(SK, clips, 1, progress=False, crops={"nose": 0.0})
    with pytest.raises(KineposeError, match="crop_size: expected an int >= 8"):
        render_motion_set(SK, clips, 1, progress=False, crops=CROPS, crop_size=4)
