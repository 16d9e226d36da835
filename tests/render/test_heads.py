"""Synthetic heads: the head frame from landmarks, the textured render against OpenCV's projection, determinism, and
the real MediaPipe FaceMesh reading the rendered pose back (signs of yaw, pitch and roll included).

Grace Hopper's photo ships with matplotlib; skipped without MediaPipe.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("mediapipe")

import cv2
from matplotlib import cbook
from scipy.spatial.transform import Rotation

from kinepose.frontends.face import FaceLandmarker, FacePhoto, face_models_from_photos
from kinepose.frontends.headpose import ASSETS
from kinepose.geometry.headpose import matrix_to_ypr, ypr_to_matrix
from kinepose.models.headpose import GeometricHeadPose
from kinepose.render.head_dataset import head_trajectories, load_head_set, render_head_set
from kinepose.render.heads import head_frame, render_head

HOPPER = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


@pytest.fixture(scope="module")
def hopper():
    return face_models_from_photos([FacePhoto("grace_hopper", str(HOPPER), 0, "matplotlib")])[0]


def test_head_frame_recovers_a_known_rotation(hopper):
    R0 = Rotation.from_euler("xyz", [0.3, -0.5, 0.2]).as_matrix()
    lm = hopper.vertices @ R0.T + [1.0, 2.0, 3.0]  # the canonical face, rotated and moved
    R, c = head_frame(lm)
    np.testing.assert_allclose(R, R0, atol=1e-9)
    np.testing.assert_allclose(c, lm.mean(0), atol=1e-12)
    with pytest.raises(ValueError, match="468"):
        head_frame(lm[:100])


def test_face_model_is_in_the_head_frame(hopper):
    R, _ = head_frame(hopper.vertices)
    np.testing.assert_allclose(R, np.eye(3), atol=1e-9)  # built in its own anatomical frame
    d = np.linalg.norm(hopper.vertices[263] - hopper.vertices[33])
    assert d == pytest.approx(0.090, abs=1e-9)  # scaled to metres
    a, b, c = (hopper.vertices[hopper.triangles[:, k]] for k in range(3))
    assert (np.cross(b - a, c - a)[:, 2] <= 0).all()  # every triangle faces the camera at rest


def test_render_landmarks_match_opencv_projection_and_are_deterministic(hopper):
    R = ypr_to_matrix(np.radians([25.0, -10.0, 8.0]))
    h1 = render_head(hopper, R, np.random.default_rng(3), size=160)
    h2 = render_head(hopper, R, np.random.default_rng(3), size=160)
    np.testing.assert_array_equal(h1.image, h2.image)
    ref, _ = cv2.projectPoints(hopper.vertices, cv2.Rodrigues(R)[0], h1.t, h1.K, None)
    np.testing.assert_allclose(h1.landmarks, ref[:, 0], atol=1e-6)
    assert h1.image.shape == (160, 160, 3) and h1.image.dtype == np.uint8
    h3 = render_head(hopper, R, np.random.default_rng(4), size=160)
    assert np.abs(h3.image.astype(int) - h1.image).mean() > 5  # another seed, another picture
    # turned 70 deg to the subject's left: the camera sees the right cheek, most of the left side is hidden
    h = render_head(hopper, ypr_to_matrix(np.radians([70.0, 0.0, 0.0])), np.random.default_rng(0), size=160)
    right, left = hopper.vertices[:, 0] < -0.03, hopper.vertices[:, 0] > 0.03
    assert h.visible[right].mean() > 0.9 and h.visible[left].mean() < 0.5
    with pytest.raises(ValueError, match="rotation"):
        render_head(hopper, np.ones((3, 3)), np.random.default_rng(0))


@pytest.mark.parametrize("ypr_deg", [(30.0, 0.0, 0.0), (-30.0, 0.0, 0.0), (0.0, 20.0, 0.0), (0.0, -20.0, 0.0),
                                     (0.0, 0.0, 20.0), (0.0, 0.0, -20.0)])  # fmt: skip
def test_mediapipe_reads_the_rendered_pose_back(hopper, ypr_deg):
    """The real detector on a render and the bundled mean face: every sign of every angle comes back."""
    mean_face = np.load(os.path.join(ASSETS, "mean_face.npy"))
    img = render_head(hopper, ypr_to_matrix(np.radians(ypr_deg)), np.random.default_rng(1), size=256,
                      occlusion=0.0).image  # fmt: skip
    with FaceLandmarker(pose=False) as fl:
        face = fl.process(img).face
    assert face is not None
    got = np.degrees(GeometricHeadPose(mean_face).predict(face[None])[0])
    np.testing.assert_allclose(got, ypr_deg, atol=7.0)


def test_head_set_is_deterministic_and_saves(hopper, tmp_path):
    a = render_head_set([hopper, hopper], sequences=2, frames=3, size=64, seed=5)
    b = render_head_set([hopper, hopper], sequences=2, frames=3, size=64, seed=5, workers=2)
    np.testing.assert_array_equal(a.images, b.images)  # whatever the number of workers
    assert len(a) == 12 and a.sequence.max() == 3 and set(a.identity) == {0, 1}
    np.testing.assert_allclose(matrix_to_ypr(a.rotation), a.ypr, atol=1e-9)
    a.save(tmp_path / "h.npz")
    c = load_head_set(tmp_path / "h.npz")
    np.testing.assert_array_equal(c.images, a.images)
    assert c.identities == ["grace_hopper", "grace_hopper"]
    assert len(a.subset(a.identity == 1)) == 6


def test_trajectories_stay_in_range_and_are_smooth():
    t = head_trajectories(np.random.default_rng(0), 20, 50, (75.0, 40.0, 30.0))
    assert t.shape == (20, 50, 3)
    assert (np.abs(np.degrees(t)) <= np.array([75.0, 40.0, 30.0]) + 1e-9).all()
    assert np.degrees(np.abs(np.diff(t, axis=1))).max() < 15  # neighbouring frames are near-copies
