"""Mirror and colour augmentation of the head-pose image networks (kinepose.training.headpose.flip_images and
jitter_colors): a mirrored picture shows the mirrored scene, the labels follow the convention's rotation algebra
(pinned against scipy), grey pictures match OpenCV's luma, and fit_headpose mirrors the landmark targets with
the pictures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from kinepose.models.headpose.landmarks import HeadPoseOutput
from kinepose.training.headpose import fit_headpose, flip_images, jitter_colors, predict_headpose, resolve_recipe

S, F = 64, 70.0
C = (S - 1) / 2  # the principal point: the image centre (pixel centres at integers)
M = np.diag([-1.0, 1.0, 1.0])


def _project(p: np.ndarray) -> np.ndarray:
    return F * p[..., :2] / p[..., 2:] + C


def _blobs(uv: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float64)
    return sum(np.exp(-((xx - u) ** 2 + (yy - v) ** 2) / (2 * 1.5**2)) * (k + 1) for k, (u, v) in enumerate(uv))


def _scipy_matrix(ypr: np.ndarray) -> np.ndarray:
    """kinepose's convention as documented: R = Rx(-pitch) Ry(-yaw) Rz(roll), intrinsic."""
    return Rotation.from_euler("XYZ", np.column_stack([-ypr[:, 1], -ypr[:, 0], ypr[:, 2]])).as_matrix()


def test_a_mirrored_picture_is_the_picture_of_the_mirrored_head():
    """Landmarks of a head at R, mirrored on screen, are the projections of the mirrored face at the new label."""
    rng = np.random.default_rng(0)
    face = rng.uniform(-0.06, 0.06, (3, 3))  # three head-frame points, distinct weights below tell them apart
    ypr = np.array([[0.5, -0.2, 0.3]])
    R = _scipy_matrix(ypr)[0]
    t = np.array([0.03, -0.02, 1.0])
    img = torch.tensor(_blobs(_project(face @ R.T + t)), dtype=torch.float32)[None, None].expand(1, 3, S, S)
    out, new = flip_images(img.contiguous(), torch.tensor(ypr))
    R2 = _scipy_matrix(new.numpy())[0]
    np.testing.assert_allclose(R2, M @ R @ M, atol=1e-12)
    mirrored = _blobs(_project((face @ M.T) @ R2.T + M @ t))  # the mirrored face M p at M R M, moved by M t
    np.testing.assert_allclose(out[0, 0].numpy(), mirrored, atol=1e-5)


def test_labels_are_negated_yaw_and_roll_for_any_pose():
    g = np.random.default_rng(1)
    ypr = g.uniform(-1, 1, (32, 3)) * [1.4, 0.8, 0.8]
    _, new = flip_images(torch.zeros(32, 3, 4, 4), torch.tensor(ypr))
    np.testing.assert_allclose(_scipy_matrix(new.numpy()), M @ _scipy_matrix(ypr) @ M, atol=1e-12)
    _, back = flip_images(torch.zeros(32, 3, 4, 4), new)
    np.testing.assert_allclose(back.numpy(), ypr)  # an involution


def test_grey_pictures_match_opencv_and_gains_stay_in_range():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(2)
    img = rng.random((5, S, S, 3)).astype(np.float32)
    x = torch.from_numpy(img).permute(0, 3, 1, 2)
    grey = jitter_colors(x, 0.0, 1.0, torch.Generator().manual_seed(0))
    for i in range(5):
        ref = cv2.cvtColor(img[i], cv2.COLOR_RGB2GRAY)
        for c in range(3):
            np.testing.assert_allclose(grey[i, c].numpy(), ref, atol=1e-5)
    assert torch.equal(jitter_colors(x, 0.0, 0.0, None), x.clamp(0, 1))
    flat = torch.full((200, 3, 2, 2), 0.5)
    out = jitter_colors(flat, 0.3, 0.0, torch.Generator().manual_seed(1))
    gains = out[:, :, 0, 0] / 0.5
    assert float(gains.min()) >= 0.7 - 1e-6 and float(gains.max()) <= 1.3 + 1e-6
    assert float(gains.min()) < 0.75 and float(gains.max()) > 1.25  # the whole range is used
    assert float((gains[:, 0] - gains[:, 1]).abs().mean()) > 0.05  # channels differ: colour, not brightness
    some = jitter_colors(x.repeat(80, 1, 1, 1), 0.0, 0.25, torch.Generator().manual_seed(2))
    share = float((some[:, 0] == some[:, 1]).all(-1).all(-1).float().mean())
    assert 0.17 < share < 0.33  # about a quarter grey (binomial, n=400: sd 0.022)


def test_fit_headpose_mirrors_half_the_batch_with_its_landmark_targets(monkeypatch, loss_targets, tiny_image_net):
    import kinepose.training.headpose as th
    from kinepose.models.headpose.landmarks import mirror_landmark_vectors

    marks = []
    real_aux = th._aux_loss

    def spy_aux(out, face, pose, w_face, w_pose):
        marks.append((face.clone(), pose.clone(), w_face.clone(), w_pose.clone()))
        return real_aux(out, face, pose, w_face, w_pose)

    monkeypatch.setattr(th, "_aux_loss", spy_aux)
    g = np.random.default_rng(4)
    images = g.integers(0, 255, (1, 40, 40, 3), dtype=np.uint8).repeat(64, 0)
    ypr = np.tile([[0.4, 0.1, 0.2]], (64, 1))
    face1, pose1 = g.normal(size=(1, 1404)).astype(np.float32), g.normal(size=(1, 99)).astype(np.float32)
    face, pose = face1.repeat(64, 0), pose1.repeat(64, 0)  # every row alike: a row's target says if it was mirrored
    fit = fit_headpose(tiny_image_net(), images, ypr, kind="images", steps=4, batch_size=32, aux_face=face,
                       aux_pose=pose, aux_weight=0.1, image_size=32, flip=True, color_jitter=0.2,
                       grayscale=0.2)  # fmt: skip
    assert fit.steps == 4 and np.isfinite(fit.final_loss)
    targets = torch.cat(loss_targets).numpy()
    mirrored = np.isclose(targets[:, 0], -0.4)
    assert np.all(mirrored | np.isclose(targets[:, 0], 0.4))
    np.testing.assert_allclose(targets[mirrored, 2], -0.2, rtol=1e-6)
    np.testing.assert_allclose(targets[:, 1], 0.1, rtol=1e-6)
    assert 0.3 < mirrored.mean() < 0.7  # half of 128 draws
    got = torch.cat([torch.cat([f, p], 1) for f, p, _, _ in marks]).numpy()
    plain = np.concatenate([face1, pose1], 1)
    mirror = mirror_landmark_vectors(torch.from_numpy(plain)).numpy()
    assert not np.allclose(mirror, plain)
    np.testing.assert_allclose(got[mirrored], np.repeat(mirror, mirrored.sum(), 0), atol=1e-6)  # mirrored targets
    np.testing.assert_allclose(got[~mirrored], np.repeat(plain, (~mirrored).sum(), 0), atol=1e-6)
    assert all(bool((wf == 1).all() and (wp == 1).all()) for _, _, wf, wp in marks)  # every row counted


def test_mirrored_body_landmarks_swap_sides_and_negate_x():
    """BlazePose: the left shoulder (11) at (+1, 0) becomes the right shoulder (12) at (-1, 0) and so on; the
    vector's body part is centred between the shoulders, so the mirror is a relabelling and an x sign change."""
    from kinepose.models.headpose.landmarks import FACE_DIM, mirror_landmark_vectors

    pose = np.zeros((33, 3))
    pose[11], pose[12], pose[0], pose[15] = (1.0, 0.0, 0.1), (-1.0, 0.2, 0.3), (0.05, -1.0, 0.0), (1.5, 1.2, -0.4)
    v = np.concatenate([np.zeros(FACE_DIM), pose.ravel()])[None]
    out = mirror_landmark_vectors(torch.from_numpy(v)).numpy()[0, FACE_DIM:].reshape(33, 3)
    np.testing.assert_allclose(out[12], [-1.0, 0.0, 0.1])  # was the left shoulder
    np.testing.assert_allclose(out[11], [1.0, 0.2, 0.3])
    np.testing.assert_allclose(out[0], [-0.05, -1.0, 0.0])  # the nose keeps its index
    np.testing.assert_allclose(out[16], [-1.5, 1.2, -0.4])  # left wrist (15) -> right wrist (16)
    assert not out[15].any()
    np.testing.assert_array_equal(mirror_landmark_vectors(torch.zeros(2, v.shape[1])).numpy(), 0)  # nothing found


def test_recipe_checks():
    assert resolve_recipe({"model": "headpose_dual", "flip": True, "color_jitter": 0.2})["flip"] is True
    with pytest.raises(Exception, match="flip must be true or false"):
        resolve_recipe({"model": "headpose_dual", "flip": 1})
    with pytest.raises(Exception, match="color_jitter"):
        resolve_recipe({"model": "headpose_dual", "color_jitter": 1.5})
    with pytest.raises(Exception, match="cached features"):
        resolve_recipe({"model": "headpose_dual", "freeze": True, "flip": True})
    with pytest.raises(Exception, match="reads no pictures"):
        resolve_recipe({"model": "headpose_landmarks", "grayscale": 0.2})
    assert resolve_recipe({"flip": True})["flip"] is True  # landmark models mirror their vectors


def test_facemesh_mirror_pairs_the_documented_points():
    from kinepose.models.headpose.landmarks import POSE_MIRROR, facemesh_mirror

    m = facemesh_mirror()
    np.testing.assert_array_equal(m[m], np.arange(468))
    # MediaPipe's face mesh map: eye corners, mouth corners, cheeks, brows, tragus; the nose tip, the point between
    # the eyes, the lips' midline, forehead and chin on the midline
    for a, b in ((33, 263), (133, 362), (61, 291), (234, 454), (70, 300), (105, 334), (127, 356)):
        assert (m[a], m[b]) == (b, a)
    for c in (1, 4, 6, 10, 13, 14, 152, 168):
        assert m[c] == c
    np.testing.assert_array_equal(POSE_MIRROR[POSE_MIRROR], np.arange(33))
    # BlazePose: nose 0; left/right eye (inner 1/4, centre 2/5, outer 3/6), ears 7/8, mouth 9/10, shoulders 11/12,
    # elbows 13/14, wrists 15/16, ..., foot index 31/32
    assert POSE_MIRROR[0] == 0 and POSE_MIRROR[1] == 4 and POSE_MIRROR[6] == 3 and POSE_MIRROR[7] == 8
    assert POSE_MIRROR[11] == 12 and POSE_MIRROR[24] == 23 and POSE_MIRROR[32] == 31


def test_mirrored_landmarks_give_the_mirrored_pose_to_the_kabsch_fit():
    """The geometric fit (no learning) of a symmetric face on mirrored landmark vectors answers (-yaw, pitch, -roll):
    the vectors and the labels mirror consistently. (The bundled mean face itself is a little asymmetric: its
    mirror plane, over all 468 points, is about 0.7 deg of roll off the head frame's, which the 4 eye, mouth and
    cheek pairs define, so its own fit would differ by twice that in roll.)"""
    from kinepose.frontends.headpose import ASSETS
    from kinepose.geometry.headpose import matrix_to_ypr
    from kinepose.models.headpose.geometric import GeometricHeadPose
    from kinepose.models.headpose.landmarks import FACE_DIM, facemesh_mirror, landmark_vector, mirror_landmark_vectors

    raw = np.load(f"{ASSETS}/mean_face.npy")
    mean = (raw + raw[facemesh_mirror()] * [-1, 1, 1]) / 2  # symmetric under the mirror table
    g = np.random.default_rng(5)
    ypr = g.uniform(-1, 1, (16, 3)) * [1.0, 0.5, 0.4]
    R = _scipy_matrix(ypr)
    face = np.einsum("nij,kj->nki", R, mean) * 40 + [96, 96, 0]  # pixels, x right, y down, z away
    pose = g.normal(size=(16, 33, 3)) * 20
    vec = torch.from_numpy(landmark_vector(face, pose))
    mirrored = mirror_landmark_vectors(vec).numpy()
    geo = GeometricHeadPose(mean)
    back = mirrored[:, :FACE_DIM].reshape(16, 468, 3)
    np.testing.assert_allclose(matrix_to_ypr(geo.rotation(back)), ypr * [-1, 1, -1], atol=1e-6)
    np.testing.assert_allclose(mirror_landmark_vectors(torch.from_numpy(mirrored)).numpy(), vec.numpy(), atol=1e-6)
    zero = mirror_landmark_vectors(torch.zeros(2, vec.shape[1]))
    assert torch.equal(zero, torch.zeros_like(zero))  # no face, no body: still none


def test_fit_headpose_mirrors_landmark_vectors(loss_targets):
    from kinepose.models.headpose.landmarks import LandmarkMLP

    g = np.random.default_rng(6)
    fit = fit_headpose(LandmarkMLP((16,), 0.0, True, False), g.normal(size=(40, 1503)).astype(np.float32),
                       np.tile([[0.3, 0.2, 0.1]], (40, 1)), kind="vectors", steps=4, batch_size=20,
                       flip=True)  # fmt: skip
    assert fit.steps == 4
    t = torch.cat(loss_targets).numpy()
    mirrored = np.isclose(t[:, 0], -0.3)
    assert 0.25 < mirrored.mean() < 0.75
    np.testing.assert_allclose(t[mirrored, 2], -0.1, rtol=1e-6)


class _HalfSums(torch.nn.Module):
    """yaw = right half minus left half of the picture, pitch = its mean (both mirror-consistent), roll = a bias
    plus ``skew`` times the left half (``skew != 0`` breaks mirror consistency)."""

    def __init__(self, skew: float = 0.0) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.tensor(0.1))
        self.skew = skew

    def forward(self, x):
        w = x.shape[-1] // 2
        left, right = x[..., :w].mean((1, 2, 3)), x[..., w:].mean((1, 2, 3))
        return HeadPoseOutput(torch.stack([right - left, x.mean((1, 2, 3)), self.bias + self.skew * left], 1))


def test_flip_tta_averages_a_prediction_with_the_mirrored_prediction_of_the_mirror():
    from kinepose.geometry.headpose import mean_ypr

    imgs = np.random.default_rng(1).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    # a model that answers the mirror picture with the mirror pose: TTA changes nothing but the roll's bias, which
    # the mirror negates (so the average cancels it)
    plain = predict_headpose(_HalfSums(), imgs, kind="images")
    tta = predict_headpose(_HalfSums(), imgs, kind="images", flip_tta=True)
    np.testing.assert_allclose(tta[:, :2], plain[:, :2], atol=1e-6)
    np.testing.assert_allclose(tta[:, 2], 0.0, atol=1e-6)
    # any model: the mean rotation of its answer and the mirrored answer on the flipped picture
    model = _HalfSums(skew=2.0)
    a = predict_headpose(model, imgs, kind="images")
    b = predict_headpose(model, np.ascontiguousarray(imgs[:, :, ::-1]), kind="images") * [-1, 1, -1]
    np.testing.assert_allclose(predict_headpose(model, imgs, kind="images", flip_tta=True, batch_size=2),
                               mean_ypr(np.stack([a, b])), atol=1e-6)  # fmt: skip


def test_flip_tta_on_landmark_vectors_and_not_on_features():
    from kinepose.errors import KineposeError
    from kinepose.models.headpose.landmarks import mirror_landmark_vectors

    class Lin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(1503, 3)

        def forward(self, x):
            return HeadPoseOutput(0.1 * torch.tanh(self.lin(x)))

    torch.manual_seed(0)
    model, x = Lin(), np.random.default_rng(2).normal(size=(4, 1503)).astype(np.float32)
    a = predict_headpose(model, x, kind="vectors")
    b = predict_headpose(model, mirror_landmark_vectors(torch.from_numpy(x)).numpy(), kind="vectors") * [-1, 1, -1]
    from kinepose.geometry.headpose import mean_ypr

    np.testing.assert_allclose(predict_headpose(model, x, kind="vectors", flip_tta=True), mean_ypr(np.stack([a, b])),
                               atol=1e-6)  # fmt: skip
    with pytest.raises(KineposeError, match="cannot be mirrored"):
        predict_headpose(model, x, kind="features", flip_tta=True)
