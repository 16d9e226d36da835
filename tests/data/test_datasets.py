import pytest
import torch

from kinepose.data.datasets import AugmentConfig, WindowDataset, augment_batch, frame_windows, normalization_stats
from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.kinematics import forward_kinematics


def test_frame_windows_replicate_edges():
    x = torch.arange(5)
    w = frame_windows(x, 3, 2)  # causal: the target is the last frame of the window
    assert w.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4]]
    w = frame_windows(x, 3, 1)  # centred
    assert w.tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 4]]


@pytest.fixture(scope="module")
def batch():
    clips = [load_deepmimic("walk"), load_deepmimic("kick")]
    ds = WindowDataset(clips, window=5, target_index=2, samples_per_epoch=200)
    assert len(ds) == 200
    items = [ds[i] for i in range(0, 200, 3)]
    return ds, {k: torch.stack([it[k] for it in items]) for k in items[0]}


def test_augmentation_keeps_rotations_consistent_with_positions(batch):
    ds, raw = batch
    cfg = AugmentConfig(noise_mm=(0.0, 0.0), noise_zero_prob=1.0, yaw=True, mirror=True, translate_m=2.0)
    aug = augment_batch(ds.skeleton, raw, 2, cfg, generator=torch.Generator().manual_seed(0))
    pos = forward_kinematics(ds.skeleton, aug.quat, aug.root).positions
    torch.testing.assert_close(pos, aug.target, atol=1e-5, rtol=0)
    assert not torch.allclose(aug.target, raw["joints"][:, 2])  # something did change
    torch.testing.assert_close(aug.joints, aug.clean)  # no noise asked for


def test_scale_any_axis_and_noise_levels(batch):
    ds, raw = batch
    cfg = AugmentConfig(noise_mm=(10.0, 10.0), noise_zero_prob=0.0, any_axis=True, scale=(0.8, 1.2))
    aug = augment_batch(ds.skeleton, raw, 2, cfg, generator=torch.Generator().manual_seed(1))
    offsets = ds.skeleton.offsets_tensor() * aug.scale[:, None, None]
    pos = forward_kinematics(ds.skeleton, aug.quat, aug.root, offsets=offsets).positions
    torch.testing.assert_close(pos, aug.target, atol=1e-5, rtol=0)
    noise = (aug.joints - aug.clean).std()
    assert 0.009 < float(noise) < 0.011
    fixed = augment_batch(ds.skeleton, raw, 2, cfg, generator=torch.Generator().manual_seed(1), noise_mm=5.0)
    torch.testing.assert_close(fixed.clean, raw["joints"])  # validation: noise only
    assert 0.0045 < float((fixed.joints - fixed.clean).std()) < 0.0055


def test_joint_dropout_mask(batch):
    ds, raw = batch
    cfg = AugmentConfig(joint_dropout=0.3)
    aug = augment_batch(ds.skeleton, raw, 2, cfg, generator=torch.Generator().manual_seed(2))
    assert aug.visibility is not None and aug.visibility.shape == raw["joints"].shape[:-1]
    assert bool((aug.visibility[..., 0] == 1).all())  # the root stays visible
    assert 0.2 < float(1 - aug.visibility[..., 1:].mean()) < 0.4
    hidden = aug.visibility == 0
    assert bool((aug.joints[hidden] == 0).all())


def test_normalization_stats(batch):
    ds, _ = batch
    mean, std = normalization_stats(ds, AugmentConfig(), samples=512)
    assert mean.shape == std.shape == (15, 3)
    assert float(std[0].abs().max()) == 0.0  # root-relative: the root is always at 0
    assert bool((std[1:] > 0.01).all())
