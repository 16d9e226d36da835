"""The rival lifter families (``pose_transformer``, ``tcn``, ``mlp``), parametrized over families and skeletons:
shapes, root at the origin, gradients to every parameter, no NaN with missing joints, determinism, config round
trips; then the TCN's receptive field and its one-pass ``forward_sequence``, the PoseTransformer's attention
masking, and parameter counts computed by hand from the layer sizes."""

from __future__ import annotations

import pytest
import torch

from kinepose.errors import KineposeError, ShapeError
from kinepose.models.lifting import Lifter, create_lifter
from kinepose.skeleton.presets import get_skeleton

#: Small configurations so the suite runs in seconds on one CPU thread (the defaults are checked by parameter count).
SMALL = {
    "pose_transformer": {},
    "tcn": {"filter_widths": "3,3", "channels": 32},
    "mlp": {"linear_size": 32},
}
SKELETONS = ["hand21", "humanoid", "h36m17"]


def _build(name: str, skeleton_name: str, **overrides) -> Lifter:
    return create_lifter(name, get_skeleton(skeleton_name), **{**SMALL[name], **overrides})


def _batch(model: Lifter, gen: torch.Generator, batch: int = 6, frames: int | None = None, dtype=torch.float32):
    T = model.window if frames is None else frames
    kp = torch.randn(batch, T, model.num_joints, 2, generator=gen, dtype=dtype) * 0.5
    vis = 0.5 + 0.5 * torch.rand(batch, T, model.num_joints, generator=gen, dtype=dtype)
    return kp, vis


def _randomize_statistics(model: Lifter, gen: torch.Generator) -> None:
    """Non-trivial normalization buffers and BatchNorm running statistics, so equalities are not vacuous."""
    J = model.num_joints
    model.set_normalization(
        0.1 * torch.randn(J, 2, generator=gen),
        0.5 + torch.rand(J, 2, generator=gen),
        0.1 * torch.randn(J, 3, generator=gen),
        0.05 + 0.1 * torch.rand(J, 3, generator=gen),
    )
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))


family = pytest.mark.parametrize("name", list(SMALL))
skeleton = pytest.mark.parametrize("skeleton_name", SKELETONS)


@family
@skeleton
def test_output_shape_and_root_at_origin(name, skeleton_name, gen):
    torch.manual_seed(0)
    model = _build(name, skeleton_name).eval()
    _randomize_statistics(model, gen)
    kp, vis = _batch(model, gen)
    out = model(kp, vis)
    assert out.joints.shape == (6, model.num_joints, 3)
    assert torch.isfinite(out.joints).all()
    assert torch.equal(out.joints[:, 0], torch.zeros(6, 3))
    assert model(kp).joints.shape == (6, model.num_joints, 3)  # visibility is optional


@family
@skeleton
def test_backward_reaches_every_parameter(name, skeleton_name, gen):
    torch.manual_seed(0)
    model = _build(name, skeleton_name).train()
    kp, vis = _batch(model, gen, batch=8)
    weights = torch.randn(8, model.num_joints, 3, generator=gen)
    (model(kp, vis).joints * weights).sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient reaches {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient in {pname}"
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient everywhere in {pname}"


@family
@skeleton
def test_missing_joints_and_frames_give_no_nan(name, skeleton_name, gen):
    torch.manual_seed(0)
    model = _build(name, skeleton_name)
    kp, vis = _batch(model, gen, batch=8)
    vis[0, :, 1:4] = 0.0  # some joints missing
    vis[1, model.target_index] = 0.0  # a whole frame missing (the only frame of a single-frame lifter)
    vis[2] = 0.0  # a whole window missing
    kp[vis == 0] = float("nan")  # missing coordinates may be anything, NaN included
    for mode in (True, False):
        model.train(mode)
        model.zero_grad()
        joints = model(kp, vis).joints
        assert torch.isfinite(joints).all(), f"{name}: NaN output with missing joints (train={mode})"
        if mode:
            joints.sum().backward()
            assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@family
@skeleton
def test_coordinates_of_a_missing_joint_are_ignored(name, skeleton_name, gen):
    torch.manual_seed(0)
    model = _build(name, skeleton_name).eval()
    kp, vis = _batch(model, gen)
    vis[:, :, 2] = 0.0
    moved = kp.clone()
    moved[:, :, 2] += 5.0
    torch.testing.assert_close(model(kp, vis).joints, model(moved, vis).joints, rtol=0, atol=0)


@family
@skeleton
def test_eval_mode_is_deterministic(name, skeleton_name, gen):
    torch.manual_seed(0)
    model = _build(name, skeleton_name).eval()
    kp, vis = _batch(model, gen)
    assert torch.equal(model(kp, vis).joints, model(kp, vis).joints)


@family
def test_config_round_trip(name, gen):
    torch.manual_seed(0)
    skel = get_skeleton("humanoid")
    model = create_lifter(name, skel, **SMALL[name]).eval()
    _randomize_statistics(model, gen)
    twin = create_lifter(name, skel, **model.config()).eval()
    assert twin.config() == model.config()
    assert type(twin) is type(model) and twin.window == model.window
    twin.load_state_dict(model.state_dict())
    kp, vis = _batch(model, gen)
    assert torch.equal(twin(kp, vis).joints, model(kp, vis).joints)


@family
def test_wrong_input_shape_raises(name, gen):
    model = _build(name, "humanoid")
    kp, vis = _batch(model, gen)
    with pytest.raises(ShapeError, match="keypoints"):
        model(kp[:, :, :10])
    with pytest.raises(ShapeError, match="visibility"):
        model(kp, vis[:, :, :10])


# --- TCN -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("widths", "field"), [("3,3,3", 27), ("3,3,3,3", 81), ("3,3,3,3,3", 243), ([3, 3, 3], 27), ("5,3", 15)]
)
@pytest.mark.parametrize("causal", [False, True])
def test_tcn_receptive_field_and_target_index(widths, field, causal):
    model = create_lifter("tcn", get_skeleton("humanoid"), filter_widths=widths, causal=causal, channels=8)
    assert model.window == model.receptive_field == field
    assert 1 + 2 * sum(model.pad) == field  # VideoPose3D's receptive_field()
    assert model.target_index == (field - 1 if causal else field // 2)
    assert model.config()["filter_widths"] == [int(w) for w in str(widths).strip("[]").split(",")]


@pytest.mark.parametrize("widths", ["3,3,3", "5,3"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("frames", [40, 4])
def test_tcn_forward_sequence_equals_sliding_forward(widths, causal, frames, gen):
    """One dilated pass over the padded clip == the strided one-frame forward on every window."""
    torch.manual_seed(0)
    model = create_lifter("tcn", get_skeleton("h36m17"), filter_widths=widths, causal=causal, channels=16)
    _randomize_statistics(model, gen)
    model = model.double().eval()
    kp, vis = _batch(model, gen, batch=2, frames=frames, dtype=torch.float64)
    vis[0, 5:9, 3] = 0.0
    vis[1, 2] = 0.0
    one_pass = model.forward_sequence(kp, vis)
    sliding = Lifter.forward_sequence(model, kp, vis)  # the base: forward() on every window, edges replicated
    assert one_pass.shape == (2, frames, model.num_joints, 3)
    torch.testing.assert_close(one_pass, sliding, rtol=0, atol=1e-6)


@pytest.mark.parametrize("causal", [False, True])
def test_tcn_causal_model_ignores_the_future(causal, gen):
    torch.manual_seed(0)
    model = create_lifter("tcn", get_skeleton("humanoid"), filter_widths="3,3", causal=causal, channels=16).eval()
    kp, vis = _batch(model, gen, batch=1, frames=30)
    later = kp.clone()
    later[:, 15:] += 1.0  # change frames 15..29
    changed = (model.forward_sequence(kp, vis) - model.forward_sequence(later, vis)).abs().amax(dim=(0, 2, 3)) > 0
    first_changed = int(changed.nonzero()[0])
    assert first_changed == (15 if causal else 15 - model.window // 2)


@pytest.mark.parametrize("widths", ["3,4,3", "2", "", "3,,3", "a,b", [3, 2], [0], [3, 3.0], [True], 3, None])
def test_tcn_bad_filter_widths_raise(widths):
    with pytest.raises(KineposeError, match="filter_widths"):
        create_lifter("tcn", get_skeleton("humanoid"), filter_widths=widths, channels=8)


# --- PoseTransformer --------------------------------------------------------------------------------------------


@skeleton
def test_pose_transformer_attention_shape_and_key_masking(skeleton_name, gen):
    torch.manual_seed(0)
    model = _build("pose_transformer", skeleton_name).eval()
    J = model.num_joints
    kp, vis = _batch(model, gen, batch=3)
    vis[0, 0, 4] = 0.0
    vis[1, 0, [1, 2]] = 0.0
    vis[2, 0] = 0.0  # nothing visible: attention left unmasked, output finite
    out = model(kp, vis)
    assert out.attention_over == "joints" and len(out.attention) == 4
    for attn in out.attention:
        assert attn.shape == (3, 8, J, J)
        torch.testing.assert_close(attn.sum(-1), torch.ones(3, 8, J))
        assert torch.equal(attn[0, :, :, 4], torch.zeros(8, J))  # no query attends to the invisible joint
        assert torch.equal(attn[1, :, :, 1:3], torch.zeros(8, J, 2))
        assert (attn[0, :, :, 5] > 0).all() and (attn[2] > 0).all()
    assert torch.isfinite(out.joints).all()


@skeleton
def test_pose_transformer_parameter_count(skeleton_name):
    model = create_lifter("pose_transformer", get_skeleton(skeleton_name))
    J, C, hidden = model.num_joints, 32, 64
    ln = 2 * C
    block = ln + (C * 3 * C + 3 * C) + (C * C + C) + ln + (C * hidden + hidden) + (hidden * C + C)
    expected = (2 * C + C) + J * C + 4 * block + ln + (C * 3 + 3)
    assert block == 8544
    assert sum(p.numel() for p in model.parameters()) == expected == 34435 + 32 * J


@pytest.mark.parametrize("use_visibility", [False, True])
def test_tcn_parameter_count_matches_videopose3d(use_visibility):
    model = create_lifter("tcn", get_skeleton("h36m17"), filter_widths="3,3,3", use_visibility=use_visibility)
    J, C, c_in = 17, 1024, 3 if use_visibility else 2
    bn = 2 * C
    expand = J * c_in * C * 3 + bn  # the convolutions have no bias (their BatchNorm has one)
    block = (C * C * 3 + bn) + (C * C + bn)
    expected = expand + 2 * block + (C * J * 3 + J * 3)
    n = sum(p.numel() for p in model.parameters())
    assert n == expected
    if not use_visibility:
        assert n == 8_555_571 and round(n / 1e6, 2) == 8.56  # VideoPose3D: 8.56M for 27 frames on 17 joints


@pytest.mark.parametrize("skeleton_name", ["hand21", "humanoid"])
def test_mlp_parameter_count(skeleton_name):
    model = create_lifter("mlp", get_skeleton(skeleton_name))
    J, C = model.num_joints, 1024
    layer = C * C + C + 2 * C  # Linear + BatchNorm
    expected = (J * 3 * C + C + 2 * C) + 2 * (2 * layer) + (C * J * 3 + J * 3)
    assert sum(p.numel() for p in model.parameters()) == expected


# --- bad arguments ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "config", "match"),
    [
        ("pose_transformer", {"window": 3}, "window"),
        ("mlp", {"window": 27}, "window"),
        ("pose_transformer", {"embed_dim": 30}, "heads"),
        ("pose_transformer", {"dropout": 1.0}, "dropout"),
        ("tcn", {"channels": 0}, "channels"),
        ("pose_transformer", {"windw": 1}, "unknown config key"),
        ("tcn", {"kernel": 3}, "unknown config key"),
        ("mlp", {"hidden": 64}, "unknown config key"),
        ("tcn", {"causal": 1}, "causal"),
    ],
)
def test_bad_arguments_raise(name, config, match):
    with pytest.raises(KineposeError, match=match):
        create_lifter(name, get_skeleton("humanoid"), **config)
