import math

import numpy as np
import pytest
import torch

from kinepose.data.motion import Motion
from kinepose.data.sources.synthetic_hand import (
    FINGER_MCP_ABD_DEG,
    FINGER_MCP_FLEX_DEG,
    GLOBAL_STEP_DEG,
    HAND_SIZE_RANGE,
    KEY_INTERVAL_S,
    SYNERGIES,
    sample_hand_poses,
    sample_hand_sequences,
)
from kinepose.geometry import quat_apply, quat_geodesic_distance, quat_identity
from kinepose.kinematics import analytic_ik, forward_kinematics, hinge_angles, project_to_joint_kinds
from kinepose.skeleton import get_skeleton

SK = get_skeleton("hand21")
TIPS = [SK.index(f"{f}_tip") for f in ("thumb", "index", "middle", "ring", "little")]
HINGES = [j for j, k in enumerate(SK.kinds) if k == "hinge"]
ENDS = [j for j, k in enumerate(SK.kinds) if k == "end"]


@pytest.fixture(scope="module")
def poses() -> tuple[torch.Tensor, torch.Tensor]:
    """2000 float64 poses with a random wrist, shared by the statistical tests."""
    return sample_hand_poses(2000, torch.Generator().manual_seed(1))


def test_shapes_dtype_and_offsets(dtype, gen):
    q, root, off = sample_hand_poses(16, gen, return_offsets=True, dtype=dtype)
    assert q.shape == (16, 21, 4) and root.shape == (16, 3) and off.shape == (16, 21, 3)
    assert q.dtype == root.dtype == off.dtype == dtype
    # One uniform scale per hand, within the documented range.
    ref = torch.tensor(np.array(SK.offsets))
    ratio = off.double()[:, 1:].norm(dim=-1) / ref[1:].norm(dim=-1)  # (16, 20)
    assert float((ratio - ratio[:, :1]).abs().max()) < 1e-5
    lo, hi = HAND_SIZE_RANGE
    assert float(ratio.min()) >= lo - 1e-6 and float(ratio.max()) <= hi + 1e-6
    x = forward_kinematics(SK, q, root, offsets=off).positions
    assert x.shape == (16, 21, 3) and bool(torch.isfinite(x).all())


def test_unit_canonical_quaternions(poses):
    q, _ = poses
    torch.testing.assert_close(q.norm(dim=-1), torch.ones(q.shape[:-1], dtype=q.dtype))
    assert bool((q[..., 0] >= 0).all())


def test_hinges_within_limits_and_pure(poses):
    q, _ = poses
    ang = hinge_angles(SK, q)[:, HINGES]  # (N, H)
    lim = torch.tensor(SK.limits[HINGES])
    assert bool((ang >= lim[:, 0] - 1e-9).all()) and bool((ang <= lim[:, 1] + 1e-9).all())
    # Hinges rotate only about their axis, end sites are identity: projecting changes nothing.
    torch.testing.assert_close(project_to_joint_kinds(SK, q), q, atol=1e-12, rtol=0)
    torch.testing.assert_close(q[:, ENDS], quat_identity((q.shape[0], len(ENDS)), dtype=q.dtype))
    # Poses use the range: plenty of flexed and of nearly straight fingers.
    pip = torch.rad2deg(ang)
    assert float((pip > 60).float().mean()) > 0.2 and float((pip < 20).float().mean()) > 0.1


def test_finger_mcp_flexion_and_abduction_in_anatomical_frame(poses):
    """Recover MCP flexion (about the PIP hinge axis) and abduction from where the MCP sends its bone."""
    q, _ = poses
    for f in ("index", "middle", "ring", "little"):
        mcp, pip = SK.index(f"{f}_mcp"), SK.index(f"{f}_pip")
        d = torch.tensor(SK.offsets[pip] / np.linalg.norm(SK.offsets[pip]))
        a = torch.tensor(SK.hinge_axes[pip])
        n = torch.linalg.cross(a, d, dim=-1)  # flexion turns d towards n (the palm side)
        v = quat_apply(q[:, mcp], d)  # (N, 3)
        abd = torch.rad2deg(torch.asin((v @ a).clamp(-1, 1)))
        flex = torch.rad2deg(torch.atan2(v @ n, v @ d))
        assert float(abd.min()) >= FINGER_MCP_ABD_DEG[0] - 1e-6 and float(abd.max()) <= FINGER_MCP_ABD_DEG[1] + 1e-6
        assert float(flex.min()) >= FINGER_MCP_FLEX_DEG[0] - 1e-6
        assert float(flex.max()) <= FINGER_MCP_FLEX_DEG[1] + 1e-6
        assert float(flex.std()) > 15  # flexion is the main degree of freedom
        assert float(abd.abs().mean()) < 10


def test_correlations_not_uniform_noise(poses):
    q, _ = poses
    ang = hinge_angles(SK, q)
    pip = {f: ang[:, SK.index(f"{f}_pip")] for f in ("index", "middle", "ring", "little")}
    corr = lambda a, b: float(np.corrcoef(a.numpy(), b.numpy())[0, 1])  # noqa: E731
    assert corr(pip["ring"], pip["little"]) > 0.5
    assert corr(pip["ring"], pip["little"]) > corr(pip["index"], pip["little"])  # neighbours correlate most
    for f in pip:
        assert corr(pip[f], ang[:, SK.index(f"{f}_dip")]) > 0.8
        # DIP ~ 2/3 PIP (away from the clipped ends)
        mid = (pip[f] > 0.3) & (pip[f] < 1.2)
        ratio = (ang[mid, SK.index(f"{f}_dip")] / pip[f][mid]).median()
        assert abs(float(ratio) - 2 / 3) < 0.05


def test_deterministic(gen):
    a = sample_hand_poses(32, torch.Generator().manual_seed(7), return_offsets=True)
    b = sample_hand_poses(32, torch.Generator().manual_seed(7), return_offsets=True)
    c = sample_hand_poses(32, torch.Generator().manual_seed(8), return_offsets=True)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    assert not torch.equal(a[0], c[0])
    f32 = sample_hand_poses(32, torch.Generator().manual_seed(7), dtype=torch.float32)
    assert torch.equal(f32[0], a[0].float())  # same draws whatever the dtype
    s1 = sample_hand_sequences(2, 20, generator=torch.Generator().manual_seed(3))
    s2 = sample_hand_sequences(2, 20, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(m.local_quat, n.local_quat) for m, n in zip(s1, s2, strict=True))


def test_global_rotation_options(gen):
    q, root = sample_hand_poses(64, gen, random_global=False)
    torch.testing.assert_close(q[:, 0], quat_identity((64,), dtype=q.dtype))
    torch.testing.assert_close(root, torch.zeros(64, 3, dtype=root.dtype))
    q, root = sample_hand_poses(256, gen, global_cone_deg=30.0, root_std=0.1)
    angle = torch.rad2deg(quat_geodesic_distance(q[:, 0], quat_identity((256,), dtype=q.dtype)))
    assert float(angle.max()) <= 30.0 + 1e-9 and float(angle.max()) > 20.0
    assert 0.05 < float(root.std()) < 0.2
    q, _ = sample_hand_poses(2000, gen)  # uniform: mean rotation angle of uniform SO(3) is pi/2 + 2/pi
    angle = quat_geodesic_distance(q[:, 0], quat_identity((2000,), dtype=q.dtype))
    assert abs(float(angle.mean()) - (math.pi / 2 + 2 / math.pi)) < 0.05


def test_fk_finite_and_hand_sized(poses, gen):
    q, root = poses
    x = forward_kinematics(SK, q, root).positions
    assert bool(torch.isfinite(x).all())
    reach = (x[:, TIPS] - x[:, :1]).norm(dim=-1)
    assert float(reach.max()) < 0.25 and float(reach.min()) > 0.02
    q, root, off = sample_hand_poses(500, gen, return_offsets=True)
    reach = (forward_kinematics(SK, q, root, offsets=off).positions[:, TIPS] - root[:, None]).norm(dim=-1)
    assert float(reach.max()) < 0.25


def test_analytic_ik_reproduces_positions(poses):
    q, root = poses
    x = forward_kinematics(SK, q, root).positions
    r = analytic_ik(SK, x)
    y = forward_kinematics(SK, r.local_quat, r.root_pos).positions
    assert float((y - x).norm(dim=-1).max()) < 1e-6
    assert not bool(r.twist_ambiguous.any())  # no finger is ever exactly straight


def test_sequences_smooth(gen):
    ms = sample_hand_sequences(4, 150, fps=30.0, generator=gen, return_offsets=True)
    assert len(ms) == 4 and all(isinstance(m, Motion) for m in ms)
    assert all(m.num_frames == 150 and m.fps == 30.0 for m in ms)
    m0 = ms[0]
    assert len(m0.meta["synergies"]) == len(m0.meta["key_times"]) >= 2
    assert set(m0.meta["synergies"]) <= set(SYNERGIES)
    assert m0.meta["offsets"].shape == (21, 3)
    x = torch.stack([m.positions() for m in ms])  # (S, T, J, 3)
    hinge = hinge_angles(SK, torch.stack([m.local_quat for m in ms]))
    assert bool((hinge >= torch.as_tensor(np.nan_to_num(SK.limits[:, 0], nan=-np.pi)) - 1e-9).all())

    def accel(p: torch.Tensor) -> float:
        return float((p[:, 2:] - 2 * p[:, 1:-1] + p[:, :-2]).norm(dim=-1).mean())

    shuffled = x[:, torch.randperm(150, generator=gen)]
    assert accel(x) * 20 < accel(shuffled)
    local = torch.stack([m.positions() for m in sample_hand_sequences(4, 150, generator=gen, random_global=False)])
    assert accel(local) * 20 < accel(local[:, torch.randperm(150, generator=gen)])
    # The wrist's angular speed stays below the minimum-jerk peak, 15/8 * step / shortest key interval.
    q0 = torch.stack([m.local_quat[:, 0] for m in ms])
    step = torch.rad2deg(quat_geodesic_distance(q0[:, 1:], q0[:, :-1]))
    assert float(step.max()) <= 15 / 8 * GLOBAL_STEP_DEG / (KEY_INTERVAL_S[0] * 30.0) + 1e-6


def test_bad_arguments():
    with pytest.raises(ValueError, match="n:"):
        sample_hand_poses(-1)
    with pytest.raises(ValueError, match="size_range"):
        sample_hand_poses(4, return_offsets=True, size_range=(1.2, 0.9))
    with pytest.raises(ValueError, match="length"):
        sample_hand_sequences(2, 0)
    with pytest.raises(ValueError, match="key_interval"):
        sample_hand_sequences(2, 10, key_interval=(0.0, 1.0))
    with pytest.raises(ValueError, match="hand21 joint names"):
        sample_hand_poses(4, skeleton=get_skeleton("h36m17"))
