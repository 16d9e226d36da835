"""POTTER backbone (kinepose.models.vision.potter): pure torch, so nothing here needs torchvision."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from kinepose.errors import KineposeError
from kinepose.models.vision.potter import POTTER_CONFIGS, PoolAttn, PotterBackbone, create_potter

NAMES = ["potter_s12", "potter_xs"]


def _naive_adaptive_mean(values: list[float], size: int) -> list[float]:
    """1-D adaptive average pooling to ``size`` bins, bin i = values[floor(i L / size) : ceil((i + 1) L / size)]."""
    n = len(values)
    out = []
    for i in range(size):
        a, b = (i * n) // size, math.ceil((i + 1) * n / size)
        out.append(sum(values[a:b]) / (b - a))
    return out


def _naive_pooled_product(m: list[list[float]], r: int) -> list[list[float]]:
    """For a (R, Q) matrix: (rows each pooled to r) @ (columns each pooled to r), written out with loops."""
    rows = [_naive_adaptive_mean(row, r) for row in m]  # (R, r)
    cols_t = [_naive_adaptive_mean([m[i][j] for i in range(len(m))], r) for j in range(len(m[0]))]  # (Q, r)
    return [[sum(rows[i][k] * cols_t[j][k] for k in range(r)) for j in range(len(m[0]))] for i in range(len(m))]


@pytest.mark.parametrize("name", NAMES)
def test_stages_have_the_channels_and_strides(name):
    torch.manual_seed(0)
    bb = create_potter(name).eval()
    assert isinstance(bb, PotterBackbone) and bb.name == name
    dims = POTTER_CONFIGS[name].dims
    assert bb.channels == (32, *dims) and bb.out_features == dims[-1]
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        maps = bb.stages(x)
        assert [tuple(m.shape) for m in maps] == [(2, c, 64 // s, 96 // s) for c, s in
                                                  zip(bb.channels, (2, 4, 8, 16, 32), strict=True)]  # fmt: skip
        assert all(torch.isfinite(m).all() for m in maps)
        assert torch.allclose(bb(x), maps[-1].mean((-2, -1)), atol=1e-6)
        assert torch.allclose(bb(x, stage=2), maps[2].mean((-2, -1)), atol=1e-6)
        assert len(bb.stages(x, upto=1)) == 2 and len(bb.stages(x, upto=-2)) == 4


def test_backward_reaches_every_parameter():
    """A loss on every stage's map reaches every parameter; one on the last stage only, all but the output norms of
    the stages before it (they normalize maps returned, not the ones that go on, as in the official fork_feat)."""
    torch.manual_seed(0)
    bb = create_potter("potter_xs").train()
    x = torch.rand(2, 3, 64, 96)
    maps = bb.stages(x)
    assert all(torch.isfinite(m).all() for m in maps)
    sum(m.pow(2).mean() for m in maps).backward()
    for n, p in bb.named_parameters():
        assert p.grad is not None, n
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, n
    bb.zero_grad(set_to_none=True)
    bb(x).pow(2).sum().backward()
    unused = {n for n, p in bb.named_parameters() if p.grad is None}
    assert unused == {f"potter_stages.{i}.norm.{w}" for i in range(3) for w in ("weight", "bias")}
    assert all(torch.isfinite(p.grad).all() for p in bb.parameters() if p.grad is not None)


def test_init_is_deterministic_given_the_seed():
    torch.manual_seed(3)
    a = create_potter("potter_xs").state_dict()
    torch.manual_seed(3)
    b = create_potter("potter_xs").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert "mean" not in a and "std" not in a  # non-persistent normalization buffers


def test_freeze_stops_training_and_keeps_eval():
    bb = create_potter("potter_xs", freeze=True)
    assert bb.frozen and not bb.training
    assert all(not p.requires_grad for p in bb.parameters())
    bb.train()
    assert not bb.training and all(not m.training for m in bb.modules())
    free = create_potter("potter_xs").train()
    assert free.training and not free.frozen and all(p.requires_grad for p in free.parameters())


def test_errors():
    bb = create_potter("potter_xs")
    with pytest.raises(KineposeError, match=r"images must be \(B, 3, H, W\) RGB in \[0, 1\], got \(3, 64, 64\)"):
        bb(torch.rand(3, 64, 64))
    with pytest.raises(KineposeError, match="got \\(1, 1, 64, 64\\)"):
        bb.stages(torch.rand(1, 1, 64, 64))
    with pytest.raises(KineposeError, match=r"stage 5 out of range \(5 stages: 0 to 4\)"):
        bb(torch.rand(1, 3, 64, 64), stage=5)
    with pytest.raises(KineposeError, match="stage -6 out of range"):
        bb.stages(torch.rand(1, 3, 64, 64), upto=-6)
    with pytest.raises(KineposeError, match="unknown POTTER backbone 'potter_xxl'; available: potter_s12"):
        create_potter("potter_xxl")
    with pytest.raises(KineposeError, match="unknown options \\['width'\\]"):
        create_potter("potter_xs", width=3)
    with pytest.raises(KineposeError, match="not divisible by the 32 segments"):
        create_potter("potter_xs", dims=(48, 64, 128, 256))
    with pytest.raises(KineposeError, match="needs 4 stages"):
        create_potter("potter_xs", layers=(2, 2, 2))


def test_weights(tmp_path):
    with pytest.raises(KineposeError, match="no ImageNet weights for POTTER ship here"):
        create_potter("potter_xs", pretrained=True)
    with pytest.raises(KineposeError, match="weights file '/nonexistent.pth' does not exist"):
        create_potter("potter_xs", pretrained=True, weights="/nonexistent.pth")
    torch.manual_seed(1)
    src = create_potter("potter_xs")
    path = tmp_path / "potter_xs.pt"
    torch.save(src.state_dict(), path)
    torch.manual_seed(2)
    loaded = create_potter("potter_xs", pretrained=True, weights=path, freeze=True)
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), loaded.state_dict().values(), strict=True))
    assert loaded.frozen
    with pytest.raises(KineposeError, match="is not a state dict of this backbone"):
        create_potter("potter_s12", weights=path)  # other shapes
    bad = tmp_path / "junk.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(KineposeError, match="is not a state dict of this backbone"):
        create_potter("potter_xs", weights=bad)


@pytest.mark.parametrize("rank", [1, 4])
def test_patch_wise_pooling_attention_matches_a_loop_reference(rank):
    """Per channel: (the map's rows each pooled to ``rank`` columns) @ (its columns each pooled to ``rank`` rows),
    on a 5 x 7 map whose adaptive bins overlap. With rank 1 it is the outer product of the row and column means."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 7)
    got = PoolAttn(3, pool_rank=rank, segments=1).patch_attention(x)
    want = torch.tensor([[_naive_pooled_product(x[b, c].tolist(), rank) for c in range(3)] for b in range(2)])
    assert torch.allclose(got, want, atol=1e-5)
    if rank == 1:
        outer = torch.einsum("bch,bcw->bchw", x.mean(-1), x.mean(-2))
        assert torch.allclose(got, outer, atol=1e-5)


def test_embed_wise_pooling_attention_matches_a_loop_reference():
    """Per patch: its channels as a (segments, C / segments) matrix, channel s * (C / S) + j at (s, j) (the
    official ``view(B, HW, 32, -1)``), then the same pooled product; C / S = 2 < rank 4 makes the pooling repeat."""
    torch.manual_seed(0)
    b, c, h, w, s, r = 2, 6, 2, 3, 3, 4
    x = torch.randn(b, c, h, w)
    got = PoolAttn(c, pool_rank=r, segments=s).embed_attention(x)
    want = torch.zeros(b, c, h, w)
    q = c // s
    for bi in range(b):
        for i in range(h):
            for j in range(w):
                m = [[x[bi, si * q + k, i, j].item() for k in range(q)] for si in range(s)]
                prod = _naive_pooled_product(m, r)
                for si in range(s):
                    for k in range(q):
                        want[bi, si * q + k, i, j] = prod[si][k]
    assert torch.allclose(got, want, atol=1e-5)


def test_pool_attn_composition():
    """PoolAttn = dwconv3x3(GroupNorm1(dwconv3x3(patch) + dwconv3x3(embed))), with random affine norm weights."""
    torch.manual_seed(0)
    mod = PoolAttn(64)
    with torch.no_grad():
        mod.norm.weight.normal_()
        mod.norm.bias.normal_()
    x = torch.randn(2, 64, 6, 5)

    def dw(conv, t):
        return F.conv2d(t, conv.weight, conv.bias, padding=1, groups=t.shape[1])

    with torch.no_grad():
        t = dw(mod.proj0, mod.patch_attention(x)) + dw(mod.proj1, mod.embed_attention(x))
        mu = t.mean((1, 2, 3), keepdim=True)
        var = t.var((1, 2, 3), unbiased=False, keepdim=True)
        t = (t - mu) / torch.sqrt(var + 1e-5) * mod.norm.weight.view(1, -1, 1, 1) + mod.norm.bias.view(1, -1, 1, 1)
        assert torch.allclose(mod(x), dw(mod.proj2, t), atol=1e-5)


def test_parameter_counts():
    # One POTTER block of width d, MLP ratio 4: norm1, norm2 and PoolAttn's norm 3 * 2d; PoolAttn's three depthwise
    # 3x3 convs 3 * (9d + d) = 30d; MLP fc1 d * 4d + 4d and fc2 4d * d + d; layer scales 2d -> 8 d^2 + 43 d.
    # d = 64: 35,520; 128: 136,576; 320: 832,960; 512: 2,119,168. S12 blocks: 2 * 35,520 + 2 * 136,576
    # + 6 * 832,960 + 2 * 2,119,168 = 9,580,288.
    # Patch embeddings (3x3 convs): 32 -> 64: 18,432 + 64 = 18,496; 64 -> 128: 73,856; 128 -> 320: 368,960;
    # 320 -> 512: 1,475,072 -> 1,936,384. Stage output GroupNorms: 2 * (64 + 128 + 320 + 512) = 2,048.
    # Stem: conv 3 -> 32, 3x3: 864 + 32, GroupNorm 64 -> 960.
    # Total: 9,580,288 + 1,936,384 + 2,048 + 960 = 11,519,680.
    # The official poolattnformer_s12 (same blocks; a 7x7 stride-4 embedding 3 * 64 * 49 + 64 = 9,472 instead of
    # the stem and first 3x3 embedding; final norm 1,024; 1000-class head 513,000; no stage norms):
    # 9,580,288 + 9,472 + 73,856 + 368,960 + 1,475,072 + 1,024 + 513,000 = 12,021,672, the "12M" of its README.
    def count(m):
        return sum(p.numel() for p in m.parameters())

    bb = create_potter("potter_s12")
    assert count(bb) == 11_519_680
    blocks = sum(count(s.blocks) for s in bb.potter_stages)
    assert blocks == 9_580_288
    assert blocks + 9_472 + 73_856 + 368_960 + 1_475_072 + 1_024 + 513_000 == 12_021_672
    # potter_xs: blocks 2 * (9,568 + 35,520 + 136,576 + 535,296) = 1,433,920; embeddings 9,248 + 18,496 + 73,856
    # + 295,168 = 396,768; stage norms 960; stem 960 -> 1,832,608.
    assert count(create_potter("potter_xs")) == 1_832_608
