"""The offline renderer: determinism, labels, visibility, analytic silhouettes, head/hand/foot orientation, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kinepose.errors import KineposeError
from kinepose.geometry.cameras import look_at_camera, project
from kinepose.kinematics.fk import forward_kinematics
from kinepose.render import PART_NAMES, Occluder, RenderConfig, render_clip, render_pose, render_views
from kinepose.render.raster import Canvas, Primitive
from kinepose.skeleton.presets import get_skeleton

SIZE = (128, 128)
NO_OCC = RenderConfig(image_size=SIZE, occluder_prob=0.0)


def _pose(name: str, local: dict[str, tuple[float, float, float, float]] | None = None):
    sk = get_skeleton(name)
    q = torch.zeros(sk.num_joints, 4, dtype=torch.float64)
    q[:, 0] = 1
    for joint, quat in (local or {}).items():
        q[sk.index(joint)] = torch.tensor(quat, dtype=torch.float64)
    root = torch.tensor([0.0, 0.85, 0.0] if name == "humanoid" else sk.offsets[0], dtype=torch.float64)
    out = forward_kinematics(sk, q, root)
    return sk, out.positions, out.global_rotmat


def _camera(eye, target, focal=160.0, size=SIZE):
    return look_at_camera(
        torch.tensor(eye, dtype=torch.float64), torch.tensor(target, dtype=torch.float64), focal_px=focal,
        image_size=size,
    )  # fmt: skip


def _front_body_camera(focal: float = 70.0):
    """The humanoid faces +x: a camera on +x looking back at its chest."""
    return _camera((4.0, 1.0, 0.0), (0.0, 0.9, 0.0), focal)


def _count(labels, part: str) -> int:
    return int((labels.part_map == PART_NAMES.index(part)).sum())


def test_same_seed_same_image_and_different_seed_differs():
    sk, x, G = _pose("humanoid")
    cam = _front_body_camera()
    cfg = RenderConfig(image_size=SIZE, occluder_prob=1.0, noise_std=2.0)
    a, la = render_pose(sk, x, G, cam, 123, cfg)
    b, lb = render_pose(sk, x, G, cam, 123, cfg)
    c, _ = render_pose(sk, x, G, cam, 124, cfg)
    assert a.dtype == np.uint8 and a.shape == (128, 128, 3)
    assert np.array_equal(a, b) and np.array_equal(la.part_map, lb.part_map)
    assert np.array_equal(la.visibility, lb.visibility)
    assert not np.array_equal(a, c)


def test_clip_and_views_are_deterministic_and_stacked():
    sk, x, G = _pose("humanoid")
    xs, Gs = x.expand(3, -1, -1), G.expand(3, -1, -1, -1)
    imgs, lab = render_clip(sk, xs, Gs, _front_body_camera(), 5, NO_OCC)
    again, _ = render_clip(sk, xs, Gs, _front_body_camera(), 5, NO_OCC)
    assert imgs.shape == (3, 128, 128, 3) and lab.joints_2d.shape == (3, sk.num_joints, 2)
    assert lab.camera.batch_shape == (3,)
    assert np.array_equal(imgs, again)
    v1, l1, f1 = render_views(sk, xs, Gs, 4, 9, RenderConfig(image_size=(96, 80)))
    v2, _, f2 = render_views(sk, xs, Gs, 4, 9, RenderConfig(image_size=(96, 80)))
    assert v1.shape == (4, 80, 96, 3) and np.array_equal(v1, v2) and np.array_equal(f1, f2)
    assert l1.visibility.shape == (4, sk.num_joints)


def test_2d_labels_are_the_camera_projection():
    sk, x, G = _pose("humanoid")
    cam = _camera((3.0, 1.5, 2.0), (0.0, 0.9, 0.0), 90.0)
    _, lab = render_pose(sk, x, G, cam, 0, NO_OCC)
    np.testing.assert_allclose(lab.joints_2d, project(x, cam.to(dtype=torch.float64)).numpy(), rtol=0, atol=1e-9)
    pc = (x.numpy() @ cam.R.numpy().T) + cam.t.numpy()
    np.testing.assert_allclose(lab.joints_cam, pc, atol=1e-9)
    assert lab.camera is cam


@pytest.mark.parametrize("kind", ["sphere", "box", "disc"])
def test_occluder_between_camera_and_joint_hides_it(kind):
    sk, x, G = _pose("humanoid")
    cam = _front_body_camera()
    j = sk.index("right_wrist")
    _, free = render_pose(sk, x, G, cam, 0, NO_OCC, occluders=[])
    assert free.visibility[j] == 1
    mid = (cam.center.numpy() + x[j].numpy()) / 2
    facing_x = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # the disc's normal along +x
    occ = Occluder(kind, mid, 0.05, rotation=facing_x, color=(1.0, 0.0, 0.0))
    _, hidden = render_pose(sk, x, G, cam, 0, NO_OCC, occluders=[occ])
    assert hidden.visibility[j] == 0
    u, v = np.rint(hidden.joints_2d[j]).astype(int)
    assert hidden.part_map[v, u] == PART_NAMES.index("occluder")
    others = [k for k in range(sk.num_joints) if k != j]
    assert (hidden.visibility[others] == free.visibility[others]).all()


def test_joint_outside_the_image_is_not_visible():
    sk, x, G = _pose("humanoid")
    cam = _camera((1.2, 0.2, 0.0), (0.0, 0.2, 0.0), 200.0)  # close to the feet: the head is out of the image
    _, lab = render_pose(sk, x, G, cam, 0, NO_OCC)
    assert lab.visibility[sk.index("neck")] == 0


def _canvas(focal=100.0, size=(128, 128)) -> Canvas:
    return Canvas(focal, focal, size[0] / 2, size[1] / 2, size[0], size[1], np.array([0, 0, -1.0]), 0.3, 0.7)


@pytest.mark.parametrize("center", [(0.0, 0.0, 3.0), (0.3, -0.2, 2.5)])
def test_sphere_silhouette_matches_the_analytic_projection(center):
    f, r = 100.0, 0.25
    c = np.array(center)
    cv = _canvas(f)
    cv.draw(Primitive("sphere", c, np.full(3, r), np.ones(3), 1))
    mask = np.isfinite(cv.depth)
    rows, cols = np.nonzero(mask)
    z = float(np.linalg.norm(c))  # distance to the centre; radius of the silhouette cone
    rho = f * r / math.sqrt(z * z - r * r)
    if center[0] == 0:
        assert abs(math.sqrt(mask.sum() / math.pi) - rho) < 1.0
        assert abs(cols.mean() - 64) < 1.0 and abs(rows.mean() - 64) < 1.0
    else:  # the silhouette's centre: the projection of the cone's axis ellipse centre, near the centre's projection
        u, v = f * c[0] / c[2] + 64, f * c[1] / c[2] + 64
        assert abs(cols.mean() - u) < 1.0 and abs(rows.mean() - v) < 1.0
    # depth at the centre pixel: the front of the sphere
    i, j = round(f * c[1] / c[2] + 64), round(f * c[0] / c[2] + 64)
    assert abs(cv.depth[i, j] - (c[2] - r)) < 0.02


def test_box_silhouette_facing_the_camera():
    f, h, z = 100.0, 0.2, 3.0
    cv = _canvas(f)
    cv.draw(Primitive("box", np.array([0.0, 0.0, z]), np.full(3, h), np.ones(3), 1))
    mask = np.isfinite(cv.depth)
    side = 2 * h * f / (z - h)  # the front face; the other faces are hidden on the axis
    assert abs(math.sqrt(mask.sum()) - side) < 1.5
    assert abs(cv.depth[64, 64] - (z - h)) < 1e-9
    assert cv.color[64, 64].max() == pytest.approx(1.0)  # the front face's normal faces the light


def test_capsule_silhouette_area_and_depth():
    f, r, L, z = 100.0, 0.1, 0.8, 4.0
    cv = _canvas(f)
    a, b = np.array([-L / 2, 0.0, z]), np.array([L / 2, 0.0, z])
    cv.draw(Primitive("capsule", a, np.full(3, r), np.ones(3), 1, end=b))
    mask = np.isfinite(cv.depth)
    expected = (f / z) ** 2 * (2 * r * L + math.pi * r * r)
    assert abs(mask.sum() / expected - 1) < 0.06
    assert abs(cv.depth[64, 64] - (z - r)) < 1e-6
    cols = np.nonzero(mask[64])[0]
    assert abs((cols.max() - cols.min() + 1) - f * (L + 2 * r) / z) <= 2


def test_face_patch_follows_the_neck_rotation():
    cam = _camera((2.0, 1.5, 0.0), (0.0, 1.5, 0.0), 250.0)  # in front of the face (+x)
    sk, x, G = _pose("humanoid")
    _, front = render_pose(sk, x, G, cam, 0, NO_OCC)
    assert _count(front, "face") > 30
    s = math.sqrt(0.5)
    sk, x, G = _pose("humanoid", {"neck": (0.0, 0.0, 1.0, 0.0)})  # 180 degrees about y
    _, back = render_pose(sk, x, G, cam, 0, NO_OCC)
    assert _count(back, "face") == 0 and _count(back, "head") > 100
    sk, x, G = _pose("humanoid", {"neck": (s, 0.0, s, 0.0)})  # 90 degrees: profile, part of the face shows
    _, side = render_pose(sk, x, G, cam, 0, NO_OCC)
    assert 0 < _count(side, "face") < _count(front, "face")


def test_feet_point_forward_with_coloured_toes():
    sk, x, G = _pose("humanoid")
    side = _camera((0.0, 0.1, -2.0), (0.0, 0.1, 0.0), 200.0)  # left side view of the feet
    _, lab = render_pose(sk, x, G, side, 0, NO_OCC)
    toes = np.argwhere(lab.part_map == PART_NAMES.index("toes"))
    foot = np.argwhere(lab.part_map == PART_NAMES.index("foot"))
    assert len(toes) > 10 and len(foot) > 10
    # from -z looking at +z, world +x (the subject's front) is image left: toes left of the heel part
    assert toes[:, 1].mean() < foot[:, 1].mean()


def test_palm_side_and_back_of_hand_differ():
    sk, x, G = _pose("hand21")
    center = x.mean(0).numpy()
    front = _camera(tuple(center + np.array([0, 0, 0.5])), tuple(center), 250.0)  # the palm faces +z
    back = _camera(tuple(center - np.array([0, 0, 0.5])), tuple(center), 250.0)
    _, lf = render_pose(sk, x, G, front, 0, NO_OCC)
    _, lb = render_pose(sk, x, G, back, 0, NO_OCC)
    assert _count(lf, "palm") > 50 and _count(lf, "back_of_hand") == 0
    assert _count(lb, "back_of_hand") > 50 and _count(lb, "palm") == 0
    assert _count(lf, "finger") > 20
    assert lf.visibility.sum() > 15


def test_supersampled_render_keeps_labels():
    sk, x, G = _pose("humanoid")
    cam = _front_body_camera()
    _, one = render_pose(sk, x, G, cam, 3, NO_OCC)
    img, two = render_pose(sk, x, G, cam, 3, RenderConfig(image_size=SIZE, occluder_prob=0.0, supersample=2))
    assert img.shape == (128, 128, 3)
    np.testing.assert_array_equal(one.joints_2d, two.joints_2d)
    assert (one.part_map != two.part_map).mean() < 0.03


def test_generic_skeleton_renders():
    """A skeleton with no body model of its own (h36m17) is drawn as one capsule per bone."""
    from kinepose.render import model_kind

    sk, x, G = _pose("h36m17")
    assert model_kind(sk) == "generic"
    cam = _camera(tuple(x.mean(0).numpy() + np.array([0, 0, 4.0])), tuple(x.mean(0).numpy()), 150.0)
    _, lab = render_pose(sk, x, G, cam, 0, NO_OCC)
    assert (lab.part_map > 0).sum() > 100
    np.testing.assert_allclose(lab.joints_2d, project(x, cam).numpy(), atol=1e-6)


def test_bad_inputs_raise_naming_the_argument():
    sk, x, G = _pose("humanoid")
    cam = _front_body_camera()
    with pytest.raises(KineposeError, match="joints_world"):
        render_pose(sk, x[:-1], G, cam, 0, NO_OCC)
    bad = x.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(KineposeError, match="joints_world"):
        render_pose(sk, bad, G, cam, 0, NO_OCC)
    with pytest.raises(KineposeError, match="global_rotmat"):
        render_pose(sk, x, G[:, :2], cam, 0, NO_OCC)
    with pytest.raises(KineposeError, match="image_size"):
        RenderConfig(image_size=(0, 128))
    with pytest.raises(KineposeError, match="image_size"):
        RenderConfig(image_size=(128,))
    with pytest.raises(KineposeError, match="camera"):
        render_pose(sk, x, G, cam, 0, RenderConfig(image_size=(64, 64)))
    with pytest.raises(KineposeError, match="occluder_prob"):
        RenderConfig(occluder_prob=1.5)
    with pytest.raises(KineposeError, match="backgrounds"):
        RenderConfig(backgrounds=("plaid",))
    with pytest.raises(KineposeError, match="rng"):
        render_pose(sk, x, G, cam, "seed", NO_OCC)
    with pytest.raises(KineposeError, match="occluder kind"):
        Occluder("cone", (0, 0, 0), 1.0)
