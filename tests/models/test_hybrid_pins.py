"""Pins of HybridIK's noise gate and of its temporal filters (``wiener`` and ``filter`` denoisers).

Expected values are computed by hand from joints built so that every bone is longer than the
skeleton's by a chosen amount ``d`` (so the RMS bone-length deviation is exactly ``d``):

- gate = d / (d + noise_scale), read from the target frame only;
- denoised joints = target + gate * sum_k w_k x_k with weights w_k that sum to 0 over the window
  (visible frames only), so the effective filter ``e_target + gate * w`` sums to 1;
- the ``wiener`` weights are the head's output at level / 0.01 (level: the window's mean RMS
  bone-length deviation, metres), minus their mean.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kinepose.kinematics import forward_kinematics
from kinepose.models.ik.hybrid import HybridIK
from kinepose.skeleton import get_skeleton
from kinepose.skeleton.core import Skeleton

W = 5  # window of the filter models


@pytest.fixture(scope="module")
def humanoid() -> Skeleton:
    return get_skeleton("humanoid")


def _stretched(sk: Skeleton, d: float, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """(batch, J, 3) joints of random poses whose every bone is ``d`` metres longer than the skeleton's."""
    off = np.array(sk.offsets)
    n = np.linalg.norm(off[1:], axis=-1, keepdims=True)
    off[1:] *= (n + d) / n
    long = sk.with_offsets(off)
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, sk.num_joints, 4, generator=g, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    root = torch.randn(batch, 3, generator=g, dtype=torch.float64)
    # kinds are not projected here: hinges get any rotation, which leaves bone lengths as they are
    return forward_kinematics(long, q, root, check=False).positions.float()


def _rms_bone_deviation(sk: Skeleton, x: torch.Tensor) -> torch.Tensor:
    """Independent of kinepose: (B, J, 3) -> (B,) RMS over bones of |x_j - x_parent| - rest length."""
    lengths = np.linalg.norm(np.array(sk.offsets)[1:], axis=-1)
    par = list(sk.parents)[1:]
    dev = (x[:, 1:] - x[:, par]).norm(dim=-1) - torch.tensor(lengths, dtype=x.dtype)
    return dev.square().mean(-1).sqrt()


def _denoised(m: HybridIK, x: torch.Tensor, vis: torch.Tensor | None = None) -> torch.Tensor:
    """(B, W, J, 3) -> (B, J, 3) the joints after the denoiser (before the geometry)."""
    with torch.no_grad():
        return m(x, vis).joints


# ---------------------------------------------------------------------------------------------- the gate


@pytest.mark.parametrize(("noise_scale", "d", "gate"), [
    (0.002, 0.0, 0.0), (0.002, 0.002, 0.5), (0.002, 0.006, 0.75), (0.002, 0.018, 0.9),
    (0.01, 0.01, 0.5), (0.01, 0.002, 1 / 6),
])  # fmt: skip
def test_noise_gate_by_hand(humanoid: Skeleton, noise_scale: float, d: float, gate: float) -> None:
    m = HybridIK(humanoid, noise_scale=noise_scale, dim=16, layers=1).eval()
    x = _stretched(humanoid, d, batch=3)
    torch.testing.assert_close(_rms_bone_deviation(humanoid, x), torch.full((3,), d), atol=2e-6, rtol=0)
    got = m.noise_gate(x, None)
    torch.testing.assert_close(got, torch.full((3,), gate), atol=1e-4, rtol=0)


def test_noise_gate_uses_the_default_scale_of_2_mm(humanoid: Skeleton) -> None:
    m = HybridIK(humanoid, dim=16, layers=1).eval()
    assert m.noise_scale == 0.002
    # about 10 mm of joint noise per coordinate gives a bone-length RMS deviation near 14 mm: gate ~0.88
    torch.testing.assert_close(m.noise_gate(_stretched(humanoid, 0.014), None), torch.tensor([0.875]), atol=1e-4,
                               rtol=0)  # fmt: skip


def test_noise_gate_ignores_bones_of_hidden_joints(humanoid: Skeleton) -> None:
    m = HybridIK(humanoid, dim=16, layers=1).eval()
    x = _stretched(humanoid, 0.006)
    wrist = humanoid.index("right_wrist")
    y = x.clone()
    y[0, wrist] += torch.tensor([0.3, 0.0, 0.0])  # a wildly wrong hidden joint
    vis = torch.ones(1, 1, humanoid.num_joints)
    vis[0, 0, wrist] = 0.0
    torch.testing.assert_close(m.noise_gate(y, vis), torch.tensor([0.75]), atol=1e-4, rtol=0)
    assert float(m.noise_gate(y, None)) > 0.95


def test_offset_denoiser_is_scaled_by_the_gate(humanoid: Skeleton) -> None:
    """With a constant correction c from the head (weights 0, bias c), denoised = target + gate * c * std."""
    m = HybridIK(humanoid, dim=16, layers=1).eval()
    J = humanoid.num_joints
    c = torch.linspace(-0.01, 0.01, J * 3)
    with torch.no_grad():
        m.denoise_head.weight.zero_()
        m.denoise_head.bias.copy_(c)
    x = torch.cat([_stretched(humanoid, 0.0), _stretched(humanoid, 0.002, seed=1)])[:, None]  # (2, 1, J, 3)
    out = _denoised(m, x)
    torch.testing.assert_close(out[0], x[0, 0])  # clean joints pass unchanged
    torch.testing.assert_close(out[1], x[1, 0] + 0.5 * c.reshape(J, 3), atol=2e-5, rtol=0)


# ------------------------------------------------------------------------------------------- the filters


def _filter_model(sk: Skeleton, denoiser: str, causal: bool = False, seed: int = 0) -> HybridIK:
    torch.manual_seed(seed)
    return HybridIK(sk, window=W, causal=causal, encoder="gru", denoiser=denoiser, dim=16, layers=1).eval()


def _randomize_head(m: HybridIK, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.denoise_head.parameters():
            p.copy_(torch.randn(p.shape, generator=g))


def _noisy_window(sk: Skeleton, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """(batch, W, J, 3): a clean pose sequence plus 10 mm noise."""
    g = torch.Generator().manual_seed(seed)
    base = _stretched(sk, 0.0, batch=batch, seed=seed)[:, None]  # (B, 1, J, 3)
    drift = torch.linspace(0, 0.04, W)[None, :, None, None] * torch.tensor([1.0, 0.0, 0.5])
    return base + drift + 0.01 * torch.randn(batch, W, sk.num_joints, 3, generator=g)


@pytest.mark.parametrize("denoiser", ["wiener", "filter"])
@pytest.mark.parametrize("causal", [False, True])
def test_constant_signal_passes_unchanged(humanoid: Skeleton, denoiser: str, causal: bool) -> None:
    """Weights summing to 1: a window whose frames are all the same noisy frame comes out as that frame."""
    m = _filter_model(humanoid, denoiser, causal)
    _randomize_head(m)
    noisy = _noisy_window(humanoid)[:, :1].expand(-1, W, -1, -1).contiguous()
    assert float(m.noise_gate(noisy[:, 0], None).min()) > 0.8  # the gate is open: the filter does act
    torch.testing.assert_close(_denoised(m, noisy), noisy[:, 0], atol=1e-5, rtol=0)  # float32 round-off


@pytest.mark.parametrize("denoiser", ["wiener", "filter"])
def test_filter_commutes_with_translation(humanoid: Skeleton, denoiser: str) -> None:
    """Sum of weights 1, tested on arbitrary heads: shifting every frame by u shifts the output by u."""
    m = _filter_model(humanoid, denoiser)
    _randomize_head(m)
    x = _noisy_window(humanoid)
    u = torch.tensor([0.3, -0.2, 0.1])
    base = _denoised(m, x)
    assert float((base - x[:, m.target_index]).abs().max()) > 1e-3  # the filter changes the joints
    torch.testing.assert_close(_denoised(m, x + u), base + u, atol=2e-5, rtol=0)


def test_wiener_response_to_a_ramp_by_hand(humanoid: Skeleton) -> None:
    """Head: hidden unit 0 = tanh(level / 0.01), output k = beta_k * unit 0. Every bone of every frame is
    d = 6 mm long, so level = d, the gate is 0.75 and the weights are tanh(0.6) * (beta - mean(beta)).
    Input: x_k = x_0 + k v (a ramp in time, window offline: target k = 2). By hand:
    denoised = x_2 + gate * tanh(0.6) * v * sum_k (beta_k - mean beta) k."""
    m = _filter_model(humanoid, "wiener")
    beta = torch.tensor([1.0, 0.5, 0.0, -2.0, 0.5])  # mean 0: sum_k beta_k k = 0.5 - 6 + 2 = -3.5
    with torch.no_grad():
        for p in m.denoise_head.parameters():
            p.zero_()
        m.denoise_head[0].weight[0, 0] = 1.0
        m.denoise_head[2].weight[:, 0] = beta
    x0 = _stretched(humanoid, 0.006)  # (1, J, 3)
    v = torch.tensor([0.02, 0.0, -0.01])
    x = torch.stack([x0 + k * v for k in range(W)], 1)  # (1, W, J, 3)
    expected = x[:, 2] + 0.75 * math.tanh(0.6) * (-3.5) * v
    torch.testing.assert_close(_denoised(m, x), expected, atol=2e-5, rtol=0)


def test_wiener_level_is_the_window_mean(humanoid: Skeleton) -> None:
    """Frames stretched by d_k = 2, 4, 6, 12, 16 mm: level = 8 mm (the mean), the gate the target frame's
    (6 mm: 0.75). Same head as above: denoised = x_2 + 0.75 * tanh(0.8) * sum_k (beta_k - mean beta) x_k."""
    m = _filter_model(humanoid, "wiener")
    beta = torch.tensor([1.0, 0.5, 0.0, -2.0, 0.5])
    with torch.no_grad():
        for p in m.denoise_head.parameters():
            p.zero_()
        m.denoise_head[0].weight[0, 0] = 1.0
        m.denoise_head[2].weight[:, 0] = beta
    x = torch.stack([_stretched(humanoid, d, seed=0) for d in (0.002, 0.004, 0.006, 0.012, 0.016)], 1)
    expected = x[:, 2] + 0.75 * math.tanh(0.8) * torch.einsum("k,bkjc->bjc", beta - beta.mean(), x)
    torch.testing.assert_close(_denoised(m, x), expected, atol=2e-5, rtol=0)


def test_wiener_impulse_response_by_hand(humanoid: Skeleton) -> None:
    """Constant head output b (weights 0, bias b): the filter is e_target + gate * (b - mean b). An impulse
    of one joint at frame k moves that joint's output by gate * (b_k - mean b) times the impulse; the
    impulse keeps bone lengths of the target frame as they are only if k is not the target, so the gate
    is the target frame's: 0.5 at d = 2 mm."""
    m = _filter_model(humanoid, "wiener", causal=True)  # target = last frame
    b = torch.tensor([0.2, -0.4, 0.1, 0.3, 0.8])  # mean 0.2
    with torch.no_grad():
        m.denoise_head[2].weight.zero_()
        m.denoise_head[2].bias.copy_(b)
    x = _stretched(humanoid, 0.002)[:, None].expand(-1, W, -1, -1).contiguous()  # constant: passes unchanged
    j, imp = humanoid.index("left_knee"), torch.tensor([0.0, 0.05, 0.0])
    for k in range(W - 1):
        y = x.clone()
        y[0, k, j] += imp
        out = _denoised(m, y)
        expected = x[:, -1].clone()
        expected[0, j] += 0.5 * (b[k] - b.mean()) * imp
        torch.testing.assert_close(out, expected, atol=2e-5, rtol=0)


def test_hidden_frames_get_no_weight(humanoid: Skeleton) -> None:
    """With visibility, a joint's hidden frames get weight 0 and its visible ones still sum to 0: moving a
    hidden (non-target) frame of a joint changes nothing, and translation still commutes."""
    m = _filter_model(humanoid, "wiener")
    _randomize_head(m)
    x = _noisy_window(humanoid, batch=1)
    j = humanoid.index("right_wrist")  # an end site: its bone is excluded from the level and the gate
    vis = torch.ones(1, W, humanoid.num_joints)
    vis[0, 0, j] = vis[0, 4, j] = 0.0
    base = _denoised(m, x, vis)
    y = x.clone()
    y[0, 0, j] += torch.tensor([0.5, 0.5, 0.0])
    y[0, 4, j] -= torch.tensor([0.0, 0.3, 0.3])
    torch.testing.assert_close(_denoised(m, y, vis), base, atol=2e-6, rtol=0)
    u = torch.tensor([-0.1, 0.2, 0.05])
    torch.testing.assert_close(_denoised(m, x + u, vis), base + u, atol=2e-5, rtol=0)
