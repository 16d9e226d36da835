"""Head-pose convention: round trips, fixed signs, and the relations to Hopenet / FSA-Net / 6DRepNet, pinned
against their formulas re-typed here as references (Hopenet's ``draw_axis``, FSA-Net's BIWI label code,
6DRepNet's ``get_R`` and ``compute_euler_angles_from_rotation_matrices``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from kinepose.errors import KineposeError, ShapeError
from kinepose.geometry.headpose import (
    CONVENTIONS,
    biwi_to_ypr,
    convert_ypr,
    from_sixdrepnet_matrix,
    matrix_to_ypr,
    mean_ypr,
    mirror_ypr,
    to_sixdrepnet_matrix,
    wrap_angle,
    ypr_to_matrix,
)

RNG = np.random.default_rng(0)


def _random_ypr(shape: tuple[int, ...], max_deg: float = 80.0) -> np.ndarray:
    return np.deg2rad(RNG.uniform(-max_deg, max_deg, size=(*shape, 3)))


# ---------------------------------------------------------------------------------------- references, re-typed


def hopenet_draw_axis(yaw_h: float, pitch_h: float, roll_h: float) -> np.ndarray:
    """Hopenet's ``utils.draw_axis`` (radians in, unit size, no offset): the X, Y, Z axis ends on screen."""
    p, y, r = pitch_h, -yaw_h, roll_h
    x_axis = (np.cos(y) * np.cos(r), np.cos(p) * np.sin(r) + np.cos(r) * np.sin(p) * np.sin(y))
    y_axis = (-np.cos(y) * np.sin(r), np.cos(p) * np.cos(r) - np.sin(p) * np.sin(y) * np.sin(r))
    z_axis = (np.sin(y), -np.cos(y) * np.sin(p))  # out of the screen, towards the viewer
    return np.array([x_axis, y_axis, z_axis])  # (3 axes, 2 screen coords)


def sixdrepnet_get_R(x: float, y: float, z: float) -> np.ndarray:
    """6DRepNet's ``utils.get_R(pitch, yaw, roll)`` = Rz(z) @ Ry(y) @ Rx(x)."""
    Rx = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    Ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    Rz = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


def sixdrepnet_euler(M: np.ndarray) -> np.ndarray:
    """6DRepNet's ``compute_euler_angles_from_rotation_matrices`` (non-singular branch): (pitch, yaw, roll)."""
    sy = np.sqrt(M[0, 0] ** 2 + M[1, 0] ** 2)
    return np.array([np.arctan2(M[2, 1], M[2, 2]), np.arctan2(-M[2, 0], sy), np.arctan2(M[1, 0], M[0, 0])])


def fsanet_biwi_labels(R_file: np.ndarray) -> np.ndarray:
    """FSA-Net's / Hopenet's BIWI label code (radians here): (yaw, pitch, roll) from a pose file's matrix."""
    R = R_file.T
    roll = -np.arctan2(R[1][0], R[0][0])
    yaw = -np.arctan2(-R[2][0], np.sqrt(R[2][1] ** 2 + R[2][2] ** 2))
    pitch = np.arctan2(R[2][1], R[2][2])
    return np.array([yaw, pitch, roll])


# ---------------------------------------------------------------------------------------- matrices


@pytest.mark.parametrize("shape", [(), (5,), (2, 3)])
def test_round_trip_and_rotation_properties(shape):
    ypr = _random_ypr(shape)
    R = ypr_to_matrix(ypr)
    assert isinstance(R, np.ndarray) and R.shape == (*shape, 3, 3) and R.dtype == np.float64
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.swapaxes(R, -1, -2) @ R, np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(matrix_to_ypr(R), ypr, atol=1e-12)


def test_torch_in_torch_out_and_gradients():
    ypr = torch.tensor(_random_ypr((4,)), requires_grad=True)
    R = ypr_to_matrix(ypr)
    assert isinstance(R, torch.Tensor) and R.dtype == torch.float64
    back = matrix_to_ypr(R)
    assert isinstance(back, torch.Tensor)
    torch.testing.assert_close(back, ypr.detach(), atol=1e-12, rtol=0)
    assert torch.autograd.gradcheck(lambda a: matrix_to_ypr(ypr_to_matrix(a)), (ypr,))
    assert isinstance(convert_ypr(ypr.detach(), "kinepose", "hopenet"), torch.Tensor)
    assert isinstance(to_sixdrepnet_matrix(R.detach()), torch.Tensor)


def test_matches_scipy_intrinsic_xyz():
    ypr = _random_ypr((20,))
    ref = Rotation.from_euler("XYZ", np.stack([-ypr[:, 1], -ypr[:, 0], ypr[:, 2]], -1)).as_matrix()
    np.testing.assert_allclose(ypr_to_matrix(ypr), ref, atol=1e-12)


def test_fixed_signs():
    deg = np.deg2rad
    assert np.allclose(ypr_to_matrix(np.zeros(3)), np.eye(3))
    nose = -ypr_to_matrix(deg([30.0, 0, 0]))[:, 2]  # face forward in the camera frame
    assert nose[0] > 0.4  # turned to the subject's left: the nose moves to image right
    nose = -ypr_to_matrix(deg([0, 20.0, 0]))[:, 2]
    assert nose[1] < -0.3  # chin up: the nose moves up in the image (y down)
    R = ypr_to_matrix(deg([0, 0, 15.0]))
    assert R[1, 0] > 0.2  # tilt to the left shoulder: the head's x axis (subject's left) tips down
    np.testing.assert_allclose(R[:2, :2], [[np.cos(deg(15)), -np.sin(deg(15))], [np.sin(deg(15)), np.cos(deg(15))]])


def test_gimbal_lock_is_deterministic_and_exact():
    for yaw in (90.0, -90.0):
        ypr = np.deg2rad([yaw, 10.0, 5.0])
        R = ypr_to_matrix(ypr)
        out = matrix_to_ypr(R)
        assert out[2] == 0.0 and abs(out[0] - ypr[0]) < 1e-12
        np.testing.assert_allclose(ypr_to_matrix(out), R, atol=1e-12)
        np.testing.assert_array_equal(matrix_to_ypr(R), out)


def test_wrap_to_half_open_interval():
    w = wrap_angle(np.array([np.pi, -np.pi, 3 * np.pi, 0.5, -0.5 - 2 * np.pi]))
    np.testing.assert_allclose(w, [np.pi, np.pi, np.pi, 0.5, -0.5], atol=1e-12)
    # a pitch of 180 degrees comes back as +pi, never -pi
    out = matrix_to_ypr(ypr_to_matrix(np.array([0.0, np.pi, 0.0])))
    assert np.pi - 1e-9 < out[1] <= np.pi


def test_shape_errors():
    with pytest.raises(ShapeError, match="ypr"):
        ypr_to_matrix(np.zeros((4, 2)))
    with pytest.raises(ShapeError, match="R"):
        matrix_to_ypr(np.zeros((3, 4)))


# ---------------------------------------------------------------------------------------- other codebases


def test_hopenet_draw_axis_draws_our_axes():
    """draw_axis(Hopenet triplet) draws R[:2, 0] (x), R[:2, 1] (y) and -R[:2, 2] (towards the viewer)."""
    for ypr in _random_ypr((50,), max_deg=85.0):
        R = ypr_to_matrix(ypr)
        axes = hopenet_draw_axis(*convert_ypr(ypr, "kinepose", "hopenet"))
        np.testing.assert_allclose(axes, np.stack([R[:2, 0], R[:2, 1], -R[:2, 2]]), atol=1e-12)


@pytest.mark.parametrize("alias", ["hopenet", "fsanet", "6drepnet", "300w_lp", "HOPENET"])
def test_convert_hopenet_signs(alias):
    ypr = np.deg2rad([[30.0, 20.0, 15.0]])
    np.testing.assert_allclose(convert_ypr(ypr, "kinepose", alias), ypr * [-1, 1, 1])
    np.testing.assert_allclose(convert_ypr(convert_ypr(ypr, "kinepose", alias), alias, "kinepose"), ypr)
    np.testing.assert_allclose(convert_ypr(ypr, alias, "hopenet"), ypr)
    assert CONVENTIONS[alias.lower()].name == "hopenet"


def test_convert_unknown_name():
    with pytest.raises(KineposeError, match="dst: unknown head-pose convention 'opengl'"):
        convert_ypr(np.zeros(3), "kinepose", "opengl")


def test_sixdrepnet_matrix_is_get_R_of_the_hopenet_triplet():
    for ypr in _random_ypr((50,)):
        yaw_h, pitch_h, roll_h = convert_ypr(ypr, "kinepose", "6drepnet")
        R = ypr_to_matrix(ypr)
        M = to_sixdrepnet_matrix(R)
        np.testing.assert_allclose(M, sixdrepnet_get_R(pitch_h, yaw_h, roll_h), atol=1e-12)
        np.testing.assert_allclose(sixdrepnet_euler(M), [pitch_h, yaw_h, roll_h], atol=1e-12)
        np.testing.assert_allclose(from_sixdrepnet_matrix(M), R, atol=1e-15)


def test_fsanet_biwi_labels_are_the_hopenet_triplet_of_the_file_matrix():
    """R == R_biwi: FSA-Net's BIWI labels, converted from Hopenet's convention, equal matrix_to_ypr(R_biwi)."""
    for R_b in Rotation.from_euler("XYZ", _random_ypr((50,))).as_matrix():
        ours = matrix_to_ypr(R_b)
        np.testing.assert_allclose(ours, convert_ypr(fsanet_biwi_labels(R_b), "hopenet", "kinepose"), atol=1e-12)
        np.testing.assert_allclose(biwi_to_ypr(R_b), ours, atol=0)
        np.testing.assert_allclose(biwi_to_ypr(R_b, "fsanet"), fsanet_biwi_labels(R_b), atol=1e-12)


def test_mirror_ypr_is_the_mirrored_rotation():
    """The mirrored picture's pose is M R M (M = diag(-1, 1, 1)), computed with scipy's matrices."""
    ypr = _random_ypr((50,))
    M = np.diag([-1.0, 1.0, 1.0])
    R = Rotation.from_euler("XYZ", np.column_stack([-ypr[:, 1], -ypr[:, 0], ypr[:, 2]])).as_matrix()
    np.testing.assert_allclose(ypr_to_matrix(mirror_ypr(ypr)), M @ R @ M, atol=1e-12)
    np.testing.assert_allclose(mirror_ypr(mirror_ypr(ypr)), ypr, atol=0)
    assert isinstance(mirror_ypr(torch.as_tensor(ypr)), torch.Tensor)


def test_mean_ypr_is_the_slerp_midpoint_and_follows_the_weights():
    from scipy.spatial.transform import Slerp

    a, b = _random_ypr((20,), 60.0), _random_ypr((20,), 60.0)
    Ra, Rb = ypr_to_matrix(a), ypr_to_matrix(b)
    mid = np.stack([Slerp([0, 1], Rotation.from_matrix([x, y]))(0.5).as_matrix() for x, y in zip(Ra, Rb, strict=True)])
    np.testing.assert_allclose(ypr_to_matrix(mean_ypr(np.stack([a, b]))), mid, atol=1e-9)  # two: chordal = geodesic
    np.testing.assert_allclose(mean_ypr(np.stack([a, b]), weights=[1.0, 0.0]), a, atol=1e-9)
    np.testing.assert_allclose(mean_ypr(np.stack([a, b]), weights=[2.0, 2.0]), mean_ypr(np.stack([a, b])), atol=1e-12)


def test_mean_ypr_handles_the_wrap_that_averaging_angles_gets_wrong():
    """Rolls of +179 and -179 degrees are 2 degrees apart: their mean is 180 (the angle average says 0)."""
    p = np.deg2rad([[[10.0, 5.0, 179.0]], [[10.0, 5.0, -179.0]]])
    got = np.rad2deg(mean_ypr(p))[0]
    np.testing.assert_allclose(got[:2], [10.0, 5.0], atol=1e-9)
    assert abs(abs(got[2]) - 180.0) < 1e-9


def test_mean_ypr_errors():
    with pytest.raises(KineposeError, match="weights"):
        mean_ypr(np.zeros((2, 4, 3)), weights=[1.0])
    with pytest.raises(KineposeError, match="weights"):
        mean_ypr(np.zeros((2, 4, 3)), weights=[0.0, 0.0])
    with pytest.raises(KineposeError, match="K estimates"):
        mean_ypr(np.zeros(3))
    with pytest.raises(ShapeError):
        mean_ypr(np.zeros((2, 4)))
