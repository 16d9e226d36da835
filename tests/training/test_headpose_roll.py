"""Roll augmentation of the head-pose image networks (kinepose.training.headpose.roll_images): the picture of a
camera turned about its optical axis, pinned against projecting the turned 3D points, OpenCV's warpAffine, scipy's
rotation and the convention's statement that roll > 0 turns the face clockwise on screen."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from kinepose.geometry.headpose import ypr_to_matrix
from kinepose.models.headpose.landmarks import LandmarkMLP
from kinepose.training.headpose import fit_headpose, resolve_recipe, roll_images, roll_landmarks

S, F = 64, 70.0
C = (S - 1) / 2  # the principal point: the image centre (pixel centres at integers)


def _project(p: np.ndarray) -> np.ndarray:
    return F * p[..., :2] / p[..., 2:] + C


def _blob(uv: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float64)
    return np.exp(-((xx - uv[0]) ** 2 + (yy - uv[1]) ** 2) / (2 * 1.5**2))


def _centroid(img: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float64)
    w = np.clip(img - 0.05, 0, None)
    return np.array([(w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()])


def test_a_turned_image_shows_the_turned_points():
    rng = np.random.default_rng(0)
    p = np.column_stack([rng.uniform(-0.12, 0.12, 4), rng.uniform(-0.12, 0.12, 4), rng.uniform(0.8, 1.2, 4)])
    theta = np.radians([25.0, -40.0, 10.0, 0.0])
    imgs = torch.tensor(np.stack([_blob(_project(q)) for q in p]), dtype=torch.float32)[:, None].expand(-1, 3, S, S)
    out, _, _ = roll_images(imgs.contiguous(), torch.tensor(theta), torch.zeros(4, 3))
    for i in range(4):
        turned = Rotation.from_euler("z", theta[i]).as_matrix() @ p[i]  # scipy's Rz = [[c, -s, 0], [s, c, 0], ...]
        np.testing.assert_allclose(_centroid(out[i, 0].numpy()), _project(turned), atol=0.15)


def test_matches_opencv_rotation():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(1)
    img = rng.random((S, S, 3)).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 2.0)  # smooth, so both bilinear resamplings agree
    deg = 30.0
    out, _, _ = roll_images(torch.from_numpy(img).permute(2, 0, 1)[None], torch.tensor([math.radians(deg)]),
                            torch.zeros(1, 3))  # fmt: skip
    # cv2's positive angle is counter-clockwise on screen; ours is clockwise (y down)
    M = cv2.getRotationMatrix2D((C, C), -deg, 1.0)
    ref = cv2.warpAffine(img, M, (S, S), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inner = slice(12, S - 12)  # away from the corners, which the borders fill differently
    diff = np.abs(out[0].permute(1, 2, 0).numpy()[inner, inner] - ref[inner, inner])
    assert diff.max() < 2e-3, diff.max()


def test_labels_turn_with_the_camera():
    g = torch.Generator().manual_seed(2)
    ypr = (torch.rand(16, 3, generator=g) - 0.5) * torch.tensor([2.0, 1.2, 1.0])
    theta = (torch.rand(16, generator=g) - 0.5) * 1.2
    _, new, _ = roll_images(torch.zeros(16, 3, 8, 8), theta, ypr)
    Rz = torch.from_numpy(Rotation.from_euler("z", theta.numpy()[:, None]).as_matrix())
    expected = Rz @ ypr_to_matrix(ypr.double())
    np.testing.assert_allclose(ypr_to_matrix(new.double()).numpy(), expected.numpy(), atol=1e-5)
    # a frontal face seen by a camera turned by theta: pure roll theta (roll > 0 turns the face clockwise on screen,
    # as a theta > 0 turn of the picture does)
    _, front, _ = roll_images(torch.zeros(2, 3, 8, 8), torch.tensor([0.3, -0.2]), torch.zeros(2, 3))
    np.testing.assert_allclose(front.numpy(), [[0, 0, 0.3], [0, 0, -0.2]], atol=1e-6)


def test_landmarks_turn_as_the_pixels_do_and_missing_rows_stay_zero():
    rng = np.random.default_rng(3)
    uv = np.column_stack([rng.uniform(16, 48, 2), rng.uniform(16, 48, 2)])
    imgs = torch.tensor(np.stack([_blob(q) for q in uv]), dtype=torch.float32)[:, None].expand(-1, 3, S, S)
    marks = torch.tensor([[uv[0, 0] - C, uv[0, 1] - C, 0.7], [0.0, 0.0, 0.0]], dtype=torch.float32)  # 2nd: missing
    marks = marks.reshape(2, 3)
    theta = torch.tensor([0.5, 0.5])
    out, _, (turned,) = roll_images(imgs.contiguous(), theta, torch.zeros(2, 3), (marks,))
    np.testing.assert_allclose(turned[0, :2].numpy() + C, _centroid(out[0, 0].numpy()), atol=0.15)
    assert float(turned[0, 2]) == pytest.approx(0.7)
    assert torch.equal(turned[1], torch.zeros(3))
    with pytest.raises(ValueError, match="must be square"):
        roll_images(torch.zeros(1, 3, 8, 10), torch.zeros(1), torch.zeros(1, 3))


def test_fit_headpose_turns_images_labels_and_landmark_targets(monkeypatch, tiny_image_net):
    """Training with roll_deg: every batch goes through roll_images with the labels and both landmark targets, and
    the loss sees what it returns (a turn that left the labels alone would change nothing here)."""
    import kinepose.training.headpose as th

    calls = []

    def spy(images, theta, ypr, landmarks=()):
        out = roll_images(images, theta, ypr, landmarks)
        calls.append((theta.abs().max().item(), len(landmarks), [t.shape for t in landmarks]))
        return out

    monkeypatch.setattr(th, "roll_images", spy)
    g = np.random.default_rng(4)
    images = g.integers(0, 255, (12, 40, 40, 3), dtype=np.uint8)
    face, pose = g.normal(size=(12, 1404)).astype(np.float32), g.normal(size=(12, 99)).astype(np.float32)
    face[3] = 0  # a frame where MediaPipe found no face
    torch.manual_seed(0)
    fit = fit_headpose(tiny_image_net(), images, g.uniform(-0.5, 0.5, (12, 3)), kind="images", steps=5, batch_size=4,
                       aux_face=face, aux_pose=pose, aux_weight=0.1, image_size=32, roll_deg=20.0)  # fmt: skip
    assert fit.steps == 5 and np.isfinite(fit.final_loss)
    assert len(calls) == 5 and all(n == 2 for _, n, _ in calls)
    assert all(shapes == [(4, 1404), (4, 99)] for _, _, shapes in calls)
    assert 0 < max(t for t, _, _ in calls) <= math.radians(20.0)
    calls.clear()
    fit_headpose(tiny_image_net(), images, np.zeros((12, 3)), kind="images", steps=2, batch_size=4, image_size=32)
    assert calls == []  # roll_deg 0: no turn
    fit_v = fit_headpose(LandmarkMLP((16,), 0.0, True, False), g.normal(size=(12, 1503)).astype(np.float32),
                         g.uniform(-0.5, 0.5, (12, 3)), kind="vectors", steps=3, batch_size=4,
                         roll_deg=20.0)  # fmt: skip
    assert fit_v.steps == 3
    assert resolve_recipe({"roll_deg": 15})["roll_deg"] == 15
    with pytest.raises(Exception, match="roll_deg"):
        resolve_recipe({"roll_deg": 120})
    with pytest.raises(Exception, match="cached features"):
        resolve_recipe({"model": "headpose_dual", "freeze": True, "roll_deg": 10})


def test_turned_landmarks_give_the_turned_pose_to_the_kabsch_fit():
    """The Kabsch fit (kinepose.models.headpose.GeometricHeadPose, no learning) on landmark vectors turned by
    roll_landmarks gives the pose roll_landmarks turned: landmarks and labels turn consistently."""
    from kinepose.geometry.headpose import matrix_to_ypr
    from kinepose.models.headpose import GeometricHeadPose, landmark_vector

    rng = np.random.default_rng(5)
    mean = rng.normal(size=(468, 3)) * [0.07, 0.09, 0.04]
    R = Rotation.random(12, random_state=6).as_matrix()
    R = ypr_to_matrix(np.clip(matrix_to_ypr(R), -0.9, 0.9))
    faces = 250.0 * np.einsum("nij,kj->nki", R, mean) + [320, 240, 0]
    geo = GeometricHeadPose().fit(faces, R)
    vec = torch.from_numpy(landmark_vector(faces, np.full((12, 33, 3), np.nan)))  # no body: zeros
    theta = torch.linspace(-0.6, 0.6, 12)
    ypr = torch.from_numpy(geo.predict(faces))
    new_ypr, (turned,) = roll_landmarks(theta, ypr, (vec,))
    turned_faces = turned[:, :1404].reshape(12, 468, 3).double().numpy()  # normalized units: the fit is scale-free
    np.testing.assert_allclose(geo.predict(turned_faces), new_ypr.numpy(), atol=1e-4)
    assert torch.equal(turned[:, 1404:], torch.zeros(12, 99))
