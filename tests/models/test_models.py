"""Model families, parametrized over the registry: output contract, gradients, masks, errors, attention.

Every name in ``list_models()`` is tested; families without an entry in ``TINY``/``VARIANTS`` run with
their default config, with the size keys in ``SHRINK`` made small where they accept them.
"""

from __future__ import annotations

import inspect
import re

import pytest
import torch

from kinepose.errors import KineposeError, ShapeError
from kinepose.geometry import quat_identity, random_quat
from kinepose.kinematics import forward_kinematics, random_pose, rest_pose
from kinepose.models import create_model, list_models
from kinepose.models.heads import HEAD_KINDS
from kinepose.models.ik.seed0 import MIXERS
from kinepose.models.ik.sequence import ENCODERS
from kinepose.models.layers import bone_vectors, tree_neighbourhood
from kinepose.skeleton import get_skeleton

SKELETONS = ("humanoid", "hand21")
TINY = {
    "iknet": {"hidden": 32, "layers": 2},
    "seed0": {"dim": 32, "mixer_layers": 2, "dense_layers": 1},
    "sequence": {"dim": 32, "layers": 2, "window": 4},
    "twist": {"hidden": 32, "layers": 2, "context": True},
}
VARIANTS = {
    "iknet": [{"head": h} for h in HEAD_KINDS],
    "seed0": [{"mixer": m} for m in MIXERS] + [{"mixer": "graph", "graph_hops": 2, "head": "quat"}],
    "sequence": [{"encoder": e, "causal": c} for e in ENCODERS for c in (True, False)],
}
# Families without an entry above (added later) get their size-like keys shrunk if they accept them.
SHRINK = {"dim": 32, "hidden": 32, "layers": 2}
CASES = [(name, v) for name in list_models() for v in VARIANTS.get(name, [{}])]
CASE_IDS = [name + "".join(f"-{k}={v}" for k, v in v.items()) for name, v in CASES]


def _tiny(name: str) -> dict:
    if name in TINY:
        return TINY[name]
    accepted = inspect.signature(_family(name).__init__).parameters
    return {k: v for k, v in SHRINK.items() if k in accepted}


def _family(name: str) -> type:
    return type(create_model(name, get_skeleton("hand21")))


def _build(name: str, variant: dict, skeleton: str, seed: int = 0):
    """A tiny model of family ``name`` with ``variant`` on top of its tiny config, seeded."""
    torch.manual_seed(seed)
    return create_model(name, get_skeleton(skeleton), **{**_tiny(name), **variant})


@torch.no_grad()
def _perturb(model) -> None:
    """Move every parameter a little, as training would, so zero-initialized heads become active."""
    g = torch.Generator().manual_seed(7)
    for p in model.parameters():
        p.add_(0.05 * torch.randn(p.shape, generator=g))


def _joints(model, batch: int = 2, seed: int = 1) -> torch.Tensor:
    """(B, window, J, 3) plausible poses: FK of random rotations from a random root position."""
    g = torch.Generator().manual_seed(seed)
    sk, T = model.skeleton, model.window
    q = random_pose(sk, (batch, T), generator=g, dtype=torch.float32)  # reachable: hinges inside their limits
    root = torch.randn(batch, T, 3, generator=g)
    return forward_kinematics(sk, q, root).positions  # (B, T, J, 3)


def _check_attention(attention: list[torch.Tensor], batch: int) -> None:
    for a in attention:
        assert a.dim() == 4 and a.shape[0] == batch and a.shape[-1] == a.shape[-2]
        torch.testing.assert_close(a.sum(-1), torch.ones_like(a[..., 0]))


@pytest.fixture(params=SKELETONS)
def skeleton(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize(("name", "config"), CASES, ids=CASE_IDS)
class TestEveryModel:
    def test_output_contract(self, name: str, config: dict, skeleton: str) -> None:
        model = _build(name, config, skeleton).eval()
        joints = _joints(model)
        out = model(joints)
        J = model.num_joints
        assert out.local_quat.shape == (2, J, 4) and out.root_pos.shape == (2, 3)
        assert torch.isfinite(out.local_quat).all()
        torch.testing.assert_close(out.local_quat.norm(dim=-1), torch.ones(2, J))
        assert (out.local_quat[..., 0] >= 0).all()
        ends = [j for j, k in enumerate(model.skeleton.kinds) if k == "end"]
        torch.testing.assert_close(out.local_quat[:, ends], quat_identity((2, len(ends))))
        torch.testing.assert_close(out.root_pos, joints[:, model.target_index, 0], atol=1e-6, rtol=0)
        if out.attention is not None:
            _check_attention(out.attention, 2)

    def test_gradients_reach_every_parameter(self, name: str, config: dict, skeleton: str) -> None:
        model = _build(name, config, skeleton).train()
        out = model(_joints(model))
        g = torch.Generator().manual_seed(2)
        loss = (out.local_quat * random_quat(out.local_quat.shape[:-1], generator=g)).sum()
        if out.joints is not None:  # models that also denoise positions train that part on them
            loss = loss + (out.joints * torch.randn(out.joints.shape, generator=g)).sum()
        loss.backward()
        for pname, p in model.named_parameters():
            assert p.grad is not None, f"{pname} receives no gradient"
            assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
        assert any(p.grad.abs().sum() > 0 for p in model.parameters())

    def test_batch_of_one_and_determinism(self, name: str, config: dict, skeleton: str) -> None:
        model = _build(name, config, skeleton)
        joints = _joints(model, batch=3)
        model.train()
        model(joints[:1]).local_quat.sum().backward()  # batch size 1 trains (no BatchNorm)
        model.eval()
        with torch.no_grad():
            a, b, batched = model(joints[:1]), model(joints[:1]), model(joints)
        assert torch.equal(a.local_quat, b.local_quat)
        torch.testing.assert_close(a.local_quat[0], batched.local_quat[0], atol=1e-5, rtol=1e-5)

    def test_visibility(self, name: str, config: dict, skeleton: str) -> None:
        model = _build(name, config, skeleton).eval()
        _perturb(model)
        joints = _joints(model)
        vis = torch.ones(joints.shape[:-1])
        with torch.no_grad():
            free = model(joints).local_quat
            all_seen = model(joints, vis).local_quat
            vis[:, :, 1] = 0  # joint 1 hangs from the root in every preset
            masked = model(joints, vis).local_quat
            on_root = joints.clone()
            on_root[:, :, 1] = joints[:, :, 0]  # same normalized position (0) as a masked joint
            at_root = model(on_root).local_quat
        torch.testing.assert_close(all_seen, free)
        assert torch.isfinite(masked).all()
        assert not torch.allclose(masked, free)
        assert not torch.allclose(masked, at_root)  # the mask itself reaches the network

    def test_wrong_shapes_raise(self, name: str, config: dict, skeleton: str) -> None:
        model = _build(name, config, skeleton)
        joints = _joints(model)
        B, T, J, _ = joints.shape
        for bad in (torch.zeros(B, T + 1, J, 3), torch.zeros(B, T, J - 1, 3), torch.zeros(B, J, 3)):
            with pytest.raises(ShapeError, match=re.escape(str(tuple(bad.shape)))):
                model(bad)
        with pytest.raises(ShapeError, match="visibility"):
            model(joints, torch.ones(B, T, J + 1))

    def test_normalization_round_trip(self, name: str, config: dict, skeleton: str) -> None:
        if name == "twist" and skeleton == "hand21":
            pytest.skip("positions fix every rotation of hand21: the twist model's output is analytic IK's")
        model = _build(name, config, skeleton).eval()
        joints = _joints(model)
        J = model.num_joints
        _perturb(model)
        before = model(joints).local_quat
        model.set_normalization(0.05 * torch.randn(J, 3), 0.1 + torch.rand(J, 3))
        after = model(joints).local_quat
        assert not torch.allclose(before, after)
        fresh = _build(name, config, skeleton, seed=123).eval()  # different weights until loaded
        fresh.load_state_dict(model.state_dict())
        torch.testing.assert_close(fresh(joints).local_quat, after)


@pytest.mark.parametrize("name", list_models())
def test_unknown_config_key_lists_accepted_keys(name: str) -> None:
    accepted = list(inspect.signature(_family(name).__init__).parameters)
    with pytest.raises(KineposeError, match="accepted") as info:
        create_model(name, get_skeleton("humanoid"), not_a_key=1)
    assert "not_a_key" in str(info.value)
    for key in accepted[2:]:  # skip self, skeleton
        assert key in str(info.value)


@pytest.mark.parametrize(
    ("name", "config", "layers", "tokens"),
    [
        ("seed0", {"mixer": "attention", "mixer_layers": 3}, 3, "J"),
        ("seed0", {"mixer": "graph", "mixer_layers": 2}, 2, "J"),
        ("sequence", {"encoder": "transformer", "layers": 2, "causal": True}, 2, "T"),
        ("sequence", {"encoder": "transformer", "layers": 1, "causal": False, "window": 5}, 1, "T"),
    ],
)
def test_attention_maps(name: str, config: dict, layers: int, tokens: str, skeleton: str) -> None:
    model = _build(name, config, skeleton).train()  # weights are exact even with dropout on
    out = model(_joints(model, batch=3))
    N = model.num_joints if tokens == "J" else model.window
    assert isinstance(out.attention, list) and len(out.attention) == layers
    for a in out.attention:
        assert a.shape == (3, 4, N, N)
    _check_attention(out.attention, 3)


@pytest.mark.parametrize("config", [{"mixer": "lstm"}, {"mixer": "gru"}, {"encoder": "lstm"}, {"encoder": "gru"}])
def test_recurrent_models_return_no_attention(config: dict) -> None:
    name = "seed0" if "mixer" in config else "sequence"
    model = _build(name, config, "humanoid")
    assert model(_joints(model)).attention is None


def _hop_distance(parents: tuple[int, ...]) -> torch.Tensor:
    """(J, J) number of tree edges between joints, by breadth-first search (independent of the model)."""
    J = len(parents)
    nbrs = [[p for p in (parents[j],) if p >= 0] + [c for c in range(J) if parents[c] == j] for j in range(J)]
    dist = torch.full((J, J), J + 1)
    for s in range(J):
        dist[s, s], frontier, d = 0, [s], 0
        while frontier:
            d, nxt = d + 1, []
            for n in (n for f in frontier for n in nbrs[f]):
                if dist[s, n] > J:
                    dist[s, n] = d
                    nxt.append(n)
            frontier = nxt
    return dist


@pytest.mark.parametrize("hops", [1, 2])
def test_graph_attention_stays_in_tree_neighbourhood(hops: int, skeleton: str) -> None:
    model = _build("seed0", {"mixer": "graph", "graph_hops": hops}, skeleton).eval()
    out = model(_joints(model))
    near = _hop_distance(model.skeleton.parents) <= hops  # (J, J)
    assert torch.equal(tree_neighbourhood(model.skeleton, hops), near)
    for a in out.attention:
        assert torch.all(a[..., ~near] == 0)
        assert torch.all(a[..., near] > 0)


def test_tree_neighbourhood_humanoid() -> None:
    sk = get_skeleton("humanoid")
    one = tree_neighbourhood(sk, 1)
    assert one[1].nonzero().flatten().tolist() == [0, 1, 2, 6, 12]  # chest: root, itself, neck, shoulders
    assert tree_neighbourhood(sk, 2)[4].nonzero().flatten().tolist() == [0, 3, 4, 5]  # right knee


def test_bone_vectors_are_unit_at_rest_and_masked() -> None:
    sk = get_skeleton("hand21")
    x = rest_pose(sk) + torch.tensor([0.3, -1.0, 2.0])  # (J, 3), translated
    bones = bone_vectors(sk, x)
    assert torch.equal(bones[0], torch.zeros(3))
    torch.testing.assert_close(bones[1:].norm(dim=-1), torch.ones(sk.num_joints - 1))
    vis = torch.ones(sk.num_joints)
    vis[5] = 0  # index_mcp: its own bone and its child's are unknown
    masked = bone_vectors(sk, x, vis)
    assert masked[5].abs().sum() == 0 and masked[6].abs().sum() == 0
    torch.testing.assert_close(masked[7], bones[7])


def test_seed0_image_features() -> None:
    sk = get_skeleton("humanoid")
    model = _build("seed0", {"image_features": 8}, "humanoid")
    joints, feats = _joints(model), torch.randn(2, 8)
    out = model(joints, image_features=feats)
    out.local_quat.sum().backward()
    assert model.image_proj.weight.grad is not None
    model.eval()
    flipped = model(joints, image_features=-feats).local_quat
    assert not torch.allclose(model(joints, image_features=feats).local_quat, flipped)
    with pytest.raises(KineposeError, match="image_features=8"):
        model(joints)
    with pytest.raises(ShapeError, match=r"\(2, 8\)"):
        model(joints, image_features=torch.randn(2, 5))
    plain = create_model("seed0", sk, **TINY["seed0"])
    with pytest.raises(KineposeError, match="image_features=0"):
        plain(joints, image_features=feats)


@pytest.mark.parametrize(
    ("name", "config", "listed"),
    [
        ("seed0", {"mixer": "mlp"}, MIXERS),
        ("sequence", {"encoder": "tcn"}, ENCODERS),
        ("iknet", {"head": "axis_angle"}, HEAD_KINDS),
        ("seed0", {"head": "matrix"}, HEAD_KINDS),
    ],
)
def test_unknown_choice_lists_choices(name: str, config: dict, listed: tuple[str, ...]) -> None:
    with pytest.raises(KineposeError, match=", ".join(listed)):
        create_model(name, get_skeleton("humanoid"), **{**TINY[name], **config})


def test_bad_sizes_raise() -> None:
    sk = get_skeleton("humanoid")
    with pytest.raises(KineposeError, match="divisible"):
        create_model("sequence", sk, dim=30, heads=4)
    with pytest.raises(KineposeError, match="graph_hops"):
        create_model("seed0", sk, dim=32, mixer="graph", graph_hops=0)
    with pytest.raises(KineposeError, match="layers"):
        create_model("iknet", sk, layers=0)


def test_target_index_and_window() -> None:
    sk = get_skeleton("humanoid")
    assert create_model("iknet", sk).window == 1 and create_model("seed0", sk, dim=32).window == 1
    causal = create_model("sequence", sk, window=9, dim=32, layers=1)
    offline = create_model("sequence", sk, window=9, causal=False, dim=32, layers=1)
    assert (causal.target_index, offline.target_index, offline.receptive_field) == (8, 4, 9)


def test_hybrid_refuses_configs_that_learn_nothing():
    from kinepose.errors import KineposeError

    with pytest.raises(KineposeError, match="encoder would learn nothing"):
        create_model("hybrid", get_skeleton("humanoid"), denoise=False, residual=False)
    with pytest.raises(KineposeError, match="needs a window"):
        create_model("hybrid", get_skeleton("humanoid"), denoiser="wiener")


@pytest.mark.parametrize("window, causal", [(5, True), (4, False)])
def test_predict_clip_and_attention_match_whole_clip_windows(window, causal):
    """predict_clip builds windows batch by batch and clip_attention samples windows; both must equal running
    the model on every window of the clip at once (edge frames replicated)."""
    from kinepose.data.datasets import frame_windows
    from kinepose.inference import clip_attention, predict_clip

    model = _build("sequence", {"window": window, "causal": causal, "encoder": "transformer"}, "humanoid")
    _perturb(model)
    model.eval()
    clip = _joints(model, batch=1)[0].repeat(6, 1, 1)[:23]  # (23, J, 3): 23 frames
    clip = clip + 0.01 * torch.randn(clip.shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full = model(frame_windows(clip, model.window, model.target_index))  # (23, ...)
    q, r = predict_clip(model, clip, batch_size=7)
    torch.testing.assert_close(q, full.local_quat)
    torch.testing.assert_close(r, full.root_pos)
    att, n = clip_attention(model, clip, max_windows=100)
    assert n == 23 and len(att) == len(full.attention)
    torch.testing.assert_close(att[0], full.attention[0].mean(0))  # (heads, W, W), mean over the windows
    _, n = clip_attention(model, clip, max_windows=5)
    assert n == 5  # every ceil(23 / 5) = 5th frame: 0, 5, 10, 15, 20


def test_seed0_attention_runs_over_joints():
    """seed0's attention mixer: maps over the skeleton's joints, labelled by joint name, no query frame."""
    from kinepose.inference import attention_tokens, clip_attention

    model = _build("seed0", {"mixer": "attention"}, "humanoid")
    clip = _joints(model, batch=6)[:, 0]  # (6, J, 3): six single-frame poses as a clip
    att, n = clip_attention(model, clip)
    J = model.num_joints
    assert n == 6 and att and all(a.shape[-2:] == (J, J) for a in att)
    torch.testing.assert_close(att[0].sum(-1), torch.ones(att[0].shape[:-1]))  # rows are distributions
    assert attention_tokens(model, J) == ("joint", list(model.skeleton.joint_names), None)
