"""Tests of kinepose.geometry cameras: projection and undistortion against OpenCV, back-projection round trips,
look-at conventions, seeded random cameras and their config, the broadcasting rule, gradients, screen
normalization, root-relative joints, the Normalizer, OpenCV/dict I/O and input errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import yaml

from kinepose.errors import KineposeError, ShapeError
from kinepose.geometry import (
    Camera,
    CameraRanges,
    Normalizer,
    back_project,
    back_project_to_world,
    camera_frame_root_relative,
    camera_from_dict,
    camera_from_opencv,
    camera_to_dict,
    camera_to_opencv,
    camera_to_world,
    image_coordinates,
    look_at_camera,
    look_at_extrinsics,
    normalize_screen_coordinates,
    project,
    project_camera_frame,
    random_cameras,
    root_relative,
    undistort_points,
    visible,
    world_to_camera,
)

F64 = torch.float64
CENTER = (0.2, 1.0, -0.3)
N_CAMS = 20
N_PTS = 40


def _uniform(shape, lo, hi, gen):
    return lo + (hi - lo) * torch.rand(*shape, generator=gen, dtype=F64)


def _cameras(gen: torch.Generator, strength: float = 1.0) -> Camera:
    """20 cameras around CENTER with random distortion, tangential terms included (strength 1: strong)."""
    base = random_cameras(N_CAMS, CENTER, principal_jitter_px=40, roll_deg=(-15, 15), generator=gen, dtype=F64)
    bounds = torch.tensor([0.3, 0.1, 0.01, 0.01, 0.05], dtype=F64) * strength
    dist = _uniform((N_CAMS, 5), -1, 1, gen) * bounds
    return Camera(
        fx=base.fx,
        fy=base.fy * 1.02,
        cx=base.cx,
        cy=base.cy,
        R=base.R,
        t=base.t,
        dist=dist,
        width=base.width,
        height=base.height,
    )


def _points(gen: torch.Generator, lead=(N_CAMS,), n=N_PTS) -> torch.Tensor:
    """Points within 0.8 m of CENTER: at least 2.2 m in front of every camera (distance >= 3 m)."""
    return torch.tensor(CENTER, dtype=F64) + _uniform((*lead, n, 3), -0.45, 0.45, gen)


def _reshape(cam: Camera, shape: tuple[int, ...]) -> Camera:
    f = {n: getattr(cam, n).reshape(shape + getattr(cam, n).shape[1:]) for n in ("fx", "fy", "cx", "cy", "R", "t")}
    return Camera(**f, dist=cam.dist.reshape((*shape, 5)), width=cam.width, height=cam.height)


# ----------------------------------------------------------------------------------------------- against OpenCV


def test_project_matches_cv2_project_points(gen):
    cv2 = pytest.importorskip("cv2")
    cams, pts = _cameras(gen), _points(gen)
    assert bool((cams.dist[:, 2:4].abs() > 1e-4).all())  # tangential terms really present
    uv = project(pts, cams)  # (20, 40, 2), one batched call
    for i in range(N_CAMS):
        rvec, _ = cv2.Rodrigues(cams.R[i].numpy())
        ref, _ = cv2.projectPoints(pts[i].numpy(), rvec, cams.t[i].numpy(), cams.K[i].numpy(), cams.dist[i].numpy())
        np.testing.assert_allclose(uv[i].numpy(), ref[:, 0], rtol=0, atol=1e-6)


def test_undistort_points_matches_cv2(gen):
    cv2 = pytest.importorskip("cv2")
    cams, pts = _cameras(gen), _points(gen)
    uv = project(pts, cams)
    for iterations in (5, 20):
        crit = (cv2.TERM_CRITERIA_COUNT, iterations, 0.0)
        norm = undistort_points(uv, cams, iterations=iterations)
        pix = undistort_points(uv, cams, iterations=iterations, output="pixels")
        for i in range(N_CAMS):
            K, d, src = cams.K[i].numpy(), cams.dist[i].numpy(), uv[i].numpy()[:, None]
            ref = cv2.undistortPoints(src, K, d, criteria=crit)[:, 0]
            np.testing.assert_allclose(norm[i].numpy(), ref, rtol=0, atol=1e-12)
            ref_pix = cv2.undistortPoints(src, K, d, P=K, criteria=crit)[:, 0]
            np.testing.assert_allclose(pix[i].numpy(), ref_pix, rtol=0, atol=1e-8)
    # cv2's default criteria are 5 iterations
    ref = cv2.undistortPoints(uv[0].numpy()[:, None], cams.K[0].numpy(), cams.dist[0].numpy())[:, 0]
    np.testing.assert_allclose(undistort_points(uv[0], cams[0], iterations=5).numpy(), ref, rtol=0, atol=1e-12)


def test_undistort_points_outside_the_model_like_cv2():
    """Where the radial factor turns negative OpenCV stops and keeps the distorted position: so do we."""
    cv2 = pytest.importorskip("cv2")
    cam = Camera(fx=800.0, fy=800.0, cx=500.0, cy=400.0, dist=[-0.5, 0.0, 0.001, 0.0, 0.0], width=1000, height=800)
    cam = cam.to(dtype=F64)
    px = torch.tensor([[500.0 + 1.6 * 800, 400.0 + 0.2 * 800], [600.0, 450.0]], dtype=F64)  # far out; inside
    ref = cv2.undistortPoints(px.numpy()[:, None], cam.K.numpy(), cam.dist.numpy())[:, 0]
    out = undistort_points(px, cam, iterations=5)
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out[0].numpy(), [1.6, 0.2], rtol=0, atol=1e-12)


def test_camera_from_opencv_matches_cv2(gen):
    cv2 = pytest.importorskip("cv2")
    cams, pts = _cameras(gen), _points(gen)
    K, d = cams.K[3].numpy(), cams.dist[3].numpy()[None]  # (1, 5) as cv2 returns it
    rvec, _ = cv2.Rodrigues(cams.R[3].numpy())  # (3, 1)
    tvec = cams.t[3].numpy()[:, None]  # (3, 1)
    cam = camera_from_opencv(K, d, rvec, tvec, 1000, 1000)
    assert cam.batch_shape == ()
    ref, _ = cv2.projectPoints(pts[3].numpy(), rvec, tvec, K, d)
    np.testing.assert_allclose(project(pts[3], cam).numpy(), ref[:, 0], rtol=0, atol=1e-6)
    # four coefficients: k3 = 0; eight with zero rational terms: accepted
    four = camera_from_opencv(K, d[0, :4], rvec, tvec, 1000, 1000)
    assert four.dist.tolist() == [*d[0, :4].tolist(), 0.0]
    eight = camera_from_opencv(K, np.concatenate([d[0], np.zeros(3)]), rvec, tvec, 1000, 1000)
    torch.testing.assert_close(eight.dist, cam.dist)
    with pytest.raises(KineposeError, match="dist: coefficients beyond k3"):
        camera_from_opencv(K, np.concatenate([d[0], [0.1, 0, 0]]), rvec, tvec, 1000, 1000)
    # batched, and the inverse camera_to_opencv
    Kb, db, rb, tb = camera_to_opencv(cams)
    back = camera_from_opencv(Kb, db, rb, tb, cams.width, cams.height)
    torch.testing.assert_close(project(pts, back), project(pts, cams), rtol=0, atol=1e-8)


# ----------------------------------------------------------------------------------------------- round trips


def test_round_trip_project_undistort_back_project(gen):
    cams, pts = _cameras(gen, strength=0.3), _points(gen)  # mild distortion
    depth = world_to_camera(pts, cams)[..., 2]
    uv = project(pts, cams)
    assert float((back_project_to_world(uv, depth, cams) - pts).abs().max()) < 1e-6
    pc = back_project(uv, depth, cams)
    assert float((pc - world_to_camera(pts, cams)).abs().max()) < 1e-6
    # undistorted normalized coordinates are exactly X / Z, Y / Z
    xy = undistort_points(uv, cams)
    torch.testing.assert_close(xy, pc[..., :2] / pc[..., 2:], rtol=0, atol=1e-9)


def test_world_camera_transforms(gen):
    cams, pts = _cameras(gen), _points(gen)
    pc = world_to_camera(pts, cams)
    torch.testing.assert_close(pc, (cams.R[:, None] @ pts[..., None])[..., 0] + cams.t[:, None])
    torch.testing.assert_close(camera_to_world(pc, cams), pts)
    torch.testing.assert_close(world_to_camera(cams.center[:, None], cams), torch.zeros(N_CAMS, 1, 3, dtype=F64))
    torch.testing.assert_close(project_camera_frame(pc, cams), project(pts, cams))
    # without distortion the projection is the pinhole K @ X / Z
    pinhole = Camera(fx=cams.fx, fy=cams.fy, cx=cams.cx, cy=cams.cy, width=1000, height=1000)
    h = (pinhole.K[:, None] @ pc[..., None])[..., 0]
    torch.testing.assert_close(project_camera_frame(pc, pinhole), h[..., :2] / h[..., 2:])


def test_K_and_from_K(gen):
    cams = _cameras(gen)
    K = cams.K
    assert K.shape == (N_CAMS, 3, 3)
    assert K[:, 0, 1].abs().max() == 0 and K[:, 2].tolist() == [[0.0, 0.0, 1.0]] * N_CAMS
    again = Camera.from_K(K, width=cams.width, height=cams.height, R=cams.R, t=cams.t, dist=cams.dist)
    torch.testing.assert_close(again.K, K)
    with pytest.raises(KineposeError, match="K: a non-zero skew"):
        Camera.from_K(K + torch.tensor([[0, 1.0, 0], [0, 0, 0], [0, 0, 0]], dtype=F64), width=10, height=10)


# ----------------------------------------------------------------------------------------------- batching


@pytest.mark.parametrize("shape", [(), (5,), (2, 3)], ids=str)
def test_batch_shapes(shape, gen, dtype):
    n = math.prod(shape)
    flat_cams = _cameras(gen)[:n].to(dtype=dtype)
    cams = _reshape(flat_cams, shape)
    pts = _points(gen, lead=shape, n=4).to(dtype)
    uv = project(pts, cams)
    assert uv.shape == (*shape, 4, 2) and uv.dtype == dtype
    flat_pts, flat_uv = pts.reshape(n, 4, 3), uv.reshape(n, 4, 2)
    for i in range(n):
        torch.testing.assert_close(flat_uv[i], project(flat_pts[i], flat_cams[i]))
    assert undistort_points(uv, cams).shape == (*shape, 4, 2)
    assert back_project(uv, torch.ones(*shape, 4, dtype=dtype), cams).shape == (*shape, 4, 3)
    assert visible(pts, cams).shape == (*shape, 4)
    # float32 agrees with float64
    ref = project(pts.double(), cams.to(dtype=F64))
    torch.testing.assert_close(uv.double(), ref, rtol=0, atol=1e-2 if dtype == torch.float32 else 1e-9)


def test_broadcasting_rule_camera_dims_lead(gen):
    """A camera of batch shape (B,) applies to points (B, T, J, 3): its dims are the leading dims."""
    cams = _cameras(gen)[:3]  # (3,)
    pts = _points(gen, lead=(3, 7), n=5)  # (B, T, J, 3)
    uv = project(pts, cams)
    assert uv.shape == (3, 7, 5, 2)
    for b in range(3):
        for t in range(7):
            torch.testing.assert_close(uv[b, t], project(pts[b, t], cams[b]))
    # a size-1 leading dim broadcasts: one sequence seen by 3 cameras
    one = project(pts[:1], cams)
    assert one.shape == (3, 7, 5, 2)
    torch.testing.assert_close(one[2], project(pts[0], cams[2]))
    # a single camera () applies to any batch
    assert project(pts, cams[0]).shape == (3, 7, 5, 2)
    with pytest.raises(ShapeError, match=r"points_world: expected shape \(\*C, \.\.\., J, 3\)"):
        project(torch.zeros(5, 3, dtype=F64), cams)  # (J, 3) for cameras (3,): add the batch dim explicitly
    with pytest.raises(ShapeError, match="points_world: its leading dims"):
        project(_points(gen, lead=(4, 7), n=5), cams)
    with pytest.raises(ShapeError, match="pixels: its leading dims"):
        undistort_points(torch.zeros(2, 5, 2, dtype=F64), cams)


def test_points_behind_the_camera_stay_finite(dtype):
    cam = Camera(
        fx=1000.0, fy=1000.0, cx=500.0, cy=500.0, dist=[0.1, -0.05, 0.01, 0.01, 0.02], width=1000, height=1000
    ).to(dtype=dtype)
    pts = torch.tensor([[0.5, -0.3, 0.0], [2.0, 1.0, -1.0], [30.0, -20.0, -1e3], [0.1, 0.1, 2.0]], dtype=dtype)
    pts.requires_grad_(True)
    uv = project(pts, cam)
    uv.sum().backward()
    assert bool(torch.isfinite(uv).all()) and bool(torch.isfinite(pts.grad).all())
    assert visible(pts, cam).tolist() == [False, False, False, True]


def test_gradcheck_project(gen):
    cams, pts = _cameras(gen)[:2], _points(gen, lead=(2,), n=3)
    pts.requires_grad_(True)
    fx = cams.fx.clone().requires_grad_(True)
    dist = cams.dist.clone().requires_grad_(True)
    t = cams.t.clone().requires_grad_(True)

    def f(p, fx, dist, t):
        cam = Camera(fx=fx, fy=cams.fy, cx=cams.cx, cy=cams.cy, R=cams.R, t=t, dist=dist, width=1000, height=1000)
        return project(p, cam)

    assert torch.autograd.gradcheck(f, (pts, fx, dist, t))
    uv = project(pts, cams).detach()
    assert torch.autograd.gradcheck(lambda x: undistort_points(x, cams), (uv.requires_grad_(True),))


# ----------------------------------------------------------------------------------------------- look-at


def test_look_at_conventions():
    eye, target = torch.tensor([0.0, 1.5, 4.0], dtype=F64), torch.tensor([0.0, 1.0, 0.0], dtype=F64)
    cam = look_at_camera(eye, target, focal_px=1200.0, image_size=(800, 600))
    R = cam.R
    torch.testing.assert_close(R @ R.T, torch.eye(3, dtype=F64))
    assert abs(float(torch.linalg.det(R)) - 1) < 1e-12
    torch.testing.assert_close(cam.center, eye)
    torch.testing.assert_close(project(target[None], cam)[0], torch.tensor([400.0, 300.0], dtype=F64))
    u_up, v_up = project((target + torch.tensor([0.0, 0.1, 0.0], dtype=F64))[None], cam)[0].tolist()
    assert v_up < 300 - 1 and abs(u_up - 400) < 1e-9  # world up is image up (negative v)
    u_x, v_x = project((target + torch.tensor([0.1, 0.0, 0.0], dtype=F64))[None], cam)[0].tolist()
    assert u_x > 400 + 1 and abs(v_x - 300) < 1e-9  # seen from +z, world +x is image right
    # roll > 0 turns the image content clockwise: up becomes right
    rolled = look_at_camera(eye, target, focal_px=1200.0, image_size=(800, 600), roll=math.pi / 2)
    torch.testing.assert_close(project(target[None], rolled)[0], torch.tensor([400.0, 300.0], dtype=F64))
    u_r, v_r = project((target + torch.tensor([0.0, 0.1, 0.0], dtype=F64))[None], rolled)[0].tolist()
    assert u_r > 400 + 1 and abs(v_r - 300) < 1e-9


def test_look_at_batched_and_degenerate(gen):
    eyes = _uniform((6, 3), -5, 5, gen) + torch.tensor([0.0, 0.0, 8.0], dtype=F64)
    R, t = look_at_extrinsics(eyes, torch.zeros(3, dtype=F64))
    assert R.shape == (6, 3, 3) and t.shape == (6, 3)
    z_axis = R[:, 2]  # the viewing direction, in world coordinates
    torch.testing.assert_close(z_axis, -eyes / eyes.norm(dim=-1, keepdim=True))
    with pytest.raises(KineposeError, match="up: parallel"):
        look_at_extrinsics(torch.tensor([0.0, 5.0, 0.0]), torch.zeros(3))
    with pytest.raises(KineposeError, match="eye, target"):
        look_at_extrinsics(torch.ones(3), torch.ones(3))
    with pytest.raises(ShapeError, match="eye"):
        look_at_extrinsics(torch.ones(2), torch.zeros(3))


# ----------------------------------------------------------------------------------------------- random cameras


def test_random_cameras_deterministic():
    def make(seed, dtype=F64):
        g = torch.Generator().manual_seed(seed)
        return random_cameras(8, CENTER, dist_scale=0.1, principal_jitter_px=20, generator=g, dtype=dtype)

    a, b, c = make(1), make(1), make(2)
    for name in ("fx", "cx", "cy", "R", "t", "dist"):
        assert torch.equal(getattr(a, name), getattr(b, name))
        assert not torch.equal(getattr(a, name), getattr(c, name))
    torch.testing.assert_close(make(1, torch.float32).t, a.t.float())


def test_random_cameras_ranges_and_visibility():
    g = torch.Generator().manual_seed(3)
    centers = _uniform((200, 3), -1, 1, g)
    cams = random_cameras(
        200,
        centers,
        yaw_deg=(20, 80),
        pitch_deg=(-5, 25),
        distance_m=(2, 4),
        focal_px=(900, 1100),
        image_size=(640, 480),
        roll_deg=(-8, 8),
        principal_jitter_px=15,
        dist_scale=0.1,
        generator=g,
        dtype=F64,
    )
    assert cams.batch_shape == (200,) and (cams.width, cams.height) == (640, 480)
    offset = cams.center - centers  # (200, 3), camera centre relative to the subject
    d = offset.norm(dim=-1)
    yaw = torch.rad2deg(torch.atan2(offset[:, 0], offset[:, 2]))
    pitch = torch.rad2deg(torch.asin(offset[:, 1] / d))
    up = torch.tensor([0.0, 1.0, 0.0], dtype=F64)
    roll = torch.rad2deg(torch.atan(-(cams.R[:, 0] @ up) / (cams.R[:, 1] @ up)))
    for value, (lo, hi) in ((d, (2, 4)), (yaw, (20, 80)), (pitch, (-5, 25)), (roll, (-8, 8)), (cams.fx, (900, 1100))):
        assert float(value.min()) >= lo - 1e-9 and float(value.max()) <= hi + 1e-9
        assert float(value.max() - value.min()) > 0.8 * (hi - lo)  # the range is actually covered
    torch.testing.assert_close(cams.fy, cams.fx)
    assert float((cams.cx - 320).abs().max()) <= 15 and float((cams.cy - 240).abs().max()) <= 15
    assert float(cams.dist[:, 0].abs().max()) <= 0.1 and float(cams.dist[:, 2:4].abs().max()) <= 0.01
    # every camera sees its centre, at the principal point
    assert bool(visible(centers[:, None], cams).all())
    uv = project(centers[:, None], cams)[:, 0]
    torch.testing.assert_close(uv, torch.stack([cams.cx, cams.cy], dim=-1))


def test_camera_ranges_from_config():
    section = yaml.safe_load(
        """
        cameras:
          yaw_deg: [-90, 90]
          pitch_deg: [0, 20]
          distance_m: 4.5
          focal_px: [1000, 1400]
          image_size: [1280, 720]
          roll_deg: [-3, 3]
          dist_scale: 0.05
        """
    )["cameras"]
    ranges = CameraRanges.from_config(section)
    assert ranges.distance_m == (4.5, 4.5) and ranges.image_size == (1280, 720)
    assert ranges.pitch_deg == (0.0, 20.0) and ranges.principal_jitter_px == 0.0
    a = ranges.sample(5, CENTER, generator=torch.Generator().manual_seed(0), dtype=F64)
    b = random_cameras(5, CENTER, **section, generator=torch.Generator().manual_seed(0), dtype=F64)
    assert torch.equal(a.R, b.R) and torch.equal(a.fx, b.fx)
    torch.testing.assert_close(
        (a.center - torch.tensor(CENTER, dtype=F64)).norm(dim=-1), torch.full((5,), 4.5, dtype=F64)
    )
    assert CameraRanges.from_config(json.loads(json.dumps(ranges.to_config()))) == ranges
    assert CameraRanges.from_config({}) == CameraRanges()
    with pytest.raises(KineposeError, match="unknown key 'colour'"):
        CameraRanges.from_config({**section, "colour": "red"})
    with pytest.raises(KineposeError, match="distance_m"):
        CameraRanges.from_config({"distance_m": [6, 3]})
    with pytest.raises(KineposeError, match="pitch_deg"):
        CameraRanges.from_config({"pitch_deg": [0, 90]})
    with pytest.raises(KineposeError, match="image_size"):
        CameraRanges.from_config({"image_size": [1280]})
    with pytest.raises(ShapeError, match="center"):
        random_cameras(3, torch.zeros(4, 3))


# ----------------------------------------------------------------------------------------------- normalization


def test_screen_normalization_values():
    x = torch.tensor([[0.0, 0.0], [1000.0, 500.0], [500.0, 250.0], [250.0, 100.0]], dtype=F64)
    out = normalize_screen_coordinates(x, 1000, 500)
    expected = torch.tensor([[-1.0, -0.5], [1.0, 0.5], [0.0, 0.0], [-0.5, -0.3]], dtype=F64)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-15)
    torch.testing.assert_close(image_coordinates(out, 1000, 500), x, rtol=0, atol=1e-12)


def test_screen_normalization_per_batch(gen):
    x = _uniform((3, 4, 5, 2), 0, 1000, gen)  # (B, T, J, 2)
    w, h = torch.tensor([1000.0, 640.0, 1920.0], dtype=F64), torch.tensor([500.0, 480.0, 1080.0], dtype=F64)
    out = normalize_screen_coordinates(x, w, h)
    for b in range(3):
        torch.testing.assert_close(out[b], normalize_screen_coordinates(x[b], float(w[b]), float(h[b])))
    torch.testing.assert_close(image_coordinates(out, w, h), x)
    with pytest.raises(ShapeError, match="w, h"):
        normalize_screen_coordinates(x, torch.ones(4), torch.ones(4))
    with pytest.raises(ShapeError, match="x: expected shape"):
        normalize_screen_coordinates(x[..., :1], 1000, 500)


def test_root_relative(gen):
    cams, pts = _cameras(gen), _points(gen, lead=(N_CAMS, 2), n=6)
    rel = root_relative(pts, root_index=2)
    assert rel.shape == pts.shape and float(rel[..., 2, :].abs().max()) == 0
    torch.testing.assert_close(rel[..., 4, :], pts[..., 4, :] - pts[..., 2, :])
    torch.testing.assert_close(root_relative(pts, -1), pts - pts[..., -1:, :])
    cam_rel = camera_frame_root_relative(pts, cams)
    ref = (cams.R[:, None, None] @ (pts - pts[..., :1, :])[..., None])[..., 0]  # translation-free
    torch.testing.assert_close(cam_rel, ref)
    with pytest.raises(KineposeError, match="root_index"):
        root_relative(pts, 6)


def test_normalizer_masked_statistics(gen):
    x = _uniform((50, 6, 2), -3, 5, gen) * torch.tensor([1.0, 10.0], dtype=F64)  # (N, J, 2)
    x[3, 1, 0] = float("nan")
    x[7, 4] = float("nan")
    x[:, 5, 1] = 2.5  # constant: std floored at eps
    mask = torch.rand(50, 6, generator=gen) > 0.3  # one flag per keypoint
    norm = Normalizer((6, 2), eps=1e-4, dtype=F64).fit(x, mask)
    xm = np.where(mask.numpy()[..., None], x.numpy(), np.nan)
    np.testing.assert_allclose(norm.mean.numpy(), np.nanmean(xm, axis=0), rtol=0, atol=1e-12)
    ref_std = np.maximum(np.nanstd(xm, axis=0), 1e-4)
    np.testing.assert_allclose(norm.std.numpy(), ref_std, rtol=0, atol=1e-12)
    assert float(norm.std[5, 1]) == 1e-4
    # per-axis statistics over every leading dim, full-shape mask
    per_axis = Normalizer(2, dtype=F64).fit(x, mask[..., None].expand_as(x))
    np.testing.assert_allclose(per_axis.mean.numpy(), np.nanmean(xm.reshape(-1, 2), axis=0), rtol=0, atol=1e-12)
    # normalize / denormalize are inverse, and normalize standardizes
    y = norm(x)
    torch.testing.assert_close(norm.normalize(x), y, equal_nan=True)
    torch.testing.assert_close(norm.denormalize(y), x, equal_nan=True)
    yv = torch.where(mask[..., None], y, torch.nan)[:, :5]
    np.testing.assert_allclose(np.nanmean(yv.numpy(), axis=0), 0, atol=1e-12)


def test_normalizer_state_dict_round_trip(gen, tmp_path):
    x = _uniform((40, 3), -2, 2, gen).float()
    model = torch.nn.Sequential(Normalizer(3).fit(x), torch.nn.Linear(3, 1))
    assert set(model.state_dict()) >= {"0.mean", "0.std"}
    torch.save(model.state_dict(), tmp_path / "m.pt")
    fresh = torch.nn.Sequential(Normalizer(3), torch.nn.Linear(3, 1))
    assert not torch.equal(fresh[0].mean, model[0].mean)
    fresh.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    assert torch.equal(fresh[0].mean, model[0].mean) and torch.equal(fresh[0].std, model[0].std)
    torch.testing.assert_close(fresh(x), model(x))


def test_normalizer_errors():
    norm = Normalizer((4, 2))
    with pytest.raises(ShapeError, match=r"x: expected shape \(\.\.\., 4, 2\)"):
        norm.fit(torch.zeros(10, 3, 2))
    with pytest.raises(ShapeError, match="mask"):
        norm.fit(torch.zeros(10, 4, 2), torch.ones(3, 4))
    x = torch.randn(10, 4, 2)
    x[:, 2, 1] = float("nan")
    with pytest.raises(KineposeError, match=r"feature \(2, 1\) has no valid entry"):
        norm.fit(x)
    with pytest.raises(ShapeError, match="y: expected shape"):
        norm.denormalize(torch.zeros(3))
    with pytest.raises(KineposeError, match="feature_shape"):
        Normalizer((4, 0))


# ----------------------------------------------------------------------------------------------- dicts, errors


def test_camera_dict_json_round_trip(gen):
    cams, pts = _cameras(gen), _points(gen)
    d = json.loads(json.dumps(camera_to_dict(cams)))
    back = camera_from_dict(d, dtype=F64)
    assert back.batch_shape == cams.batch_shape
    torch.testing.assert_close(project(pts, back), project(pts, cams), rtol=0, atol=1e-9)
    single = camera_from_dict(json.loads(json.dumps(camera_to_dict(cams[0]))), dtype=F64)
    assert single.batch_shape == () and single.R.shape == (3, 3)
    empty = camera_from_dict(camera_to_dict(cams[:0]))
    assert empty.batch_shape == (0,) and empty.R.shape == (0, 3, 3)
    minimal = camera_from_dict({"fx": 500, "fy": 500, "cx": 320, "cy": 240, "width": 640, "height": 480})
    assert minimal.dist.tolist() == [0.0] * 5 and minimal.dtype == torch.get_default_dtype()
    with pytest.raises(KineposeError, match="unknown key 'rvec'"):
        camera_from_dict({**d, "rvec": [0, 0, 0]})
    with pytest.raises(KineposeError, match="missing key 'width'"):
        camera_from_dict({k: v for k, v in d.items() if k != "width"})


def test_camera_input_errors():
    base = {"fx": 1000.0, "fy": 1000.0, "cx": 500.0, "cy": 500.0, "width": 1000, "height": 1000}
    with pytest.raises(ShapeError, match=r"R: expected shape \(\.\.\., 3, 3\)"):
        Camera(**base, R=torch.eye(4))
    with pytest.raises(ShapeError, match=r"t: expected shape \(\.\.\., 3\)"):
        Camera(**base, t=torch.zeros(2))
    with pytest.raises(ShapeError, match=r"dist: expected shape \(\.\.\., 5\)"):
        Camera(**base, dist=torch.zeros(4))
    with pytest.raises(ShapeError, match="do not broadcast"):
        Camera(**{**base, "fx": torch.ones(3) * 1000}, t=torch.zeros(2, 3))
    with pytest.raises(KineposeError, match="width: expected a positive int"):
        Camera(**{**base, "width": 0})
    with pytest.raises(KineposeError, match="height: expected a positive int"):
        Camera(**{**base, "height": 480.5})
    with pytest.raises(KineposeError, match="fx, fy: focal lengths must be positive"):
        Camera(**{**base, "fy": -1.0})
    cam = Camera(**base)
    with pytest.raises(ShapeError, match="points_world"):
        project(torch.zeros(5, 2), cam)
    with pytest.raises(ShapeError, match="points_cam"):
        project_camera_frame(torch.zeros(3), cam)
    with pytest.raises(ShapeError, match="pixels"):
        undistort_points(torch.zeros(5, 3), cam)
    with pytest.raises(KineposeError, match="output"):
        undistort_points(torch.zeros(5, 2), cam, output="ideal")
    with pytest.raises(ShapeError, match="depth"):
        back_project(torch.zeros(5, 2), torch.ones(4), cam)
