"""Joint crops (kinepose.models.vision.features): boxes hand-computed, pixels pinned against OpenCV's warpAffine."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from kinepose.errors import KineposeError
from kinepose.models.vision.features import crop_boxes, joint_crops


def test_crop_boxes_by_hand():
    # three joints: root (0, 0), child 1 at (10, 0) of parent 0, child 2 at (10, 20) of parent 1
    uv = torch.tensor([[[0.0, 0.0], [10.0, 0.0], [10.0, 20.0]]])
    parents = [-1, 0, 1]
    centres, side = crop_boxes(uv, parents, scale=0.5)
    assert side.tolist() == [10.0]  # half of the larger side (20) of the 10 x 20 box
    assert centres.tolist() == uv.tolist()
    c, _ = crop_boxes(uv, parents, scale=0.5, joints=[2, 0], extend=0.5)
    # joint 2 moves half its bone (0, 20) further: (10, 30); the root has no bone and stays
    assert c.tolist() == [[[10.0, 30.0], [0.0, 0.0]]]
    _, tiny = crop_boxes(torch.zeros(1, 3, 2), parents, scale=0.5)
    assert tiny.tolist() == [8.0]  # never under 8 px


@pytest.mark.parametrize(("side", "size", "centre"), [(8.0, 16, (20.0, 11.0)), (24.0, 16, (3.5, 30.0))])
def test_joint_crops_match_opencv(side, size, centre):
    """Same bilinear resampling and zero border as cv2.warpAffine (dst -> src map: x_src = a x_dst + t with
    a = side / size, t = c - side / 2 + a / 2); these crops sample source points on OpenCV's 1/32-pixel grid, so
    its fixed-point coordinates are exact."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    a = side / size
    M = np.array([[a, 0.0, centre[0] - side / 2 + a / 2], [0.0, a, centre[1] - side / 2 + a / 2]])
    ref = cv2.warpAffine(img.astype(np.float32) / 255.0, M, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip
    got = joint_crops(torch.from_numpy(img)[None], torch.tensor([[centre]]), torch.tensor([side]), size)
    assert got.shape == (1, 1, 3, size, size)
    np.testing.assert_allclose(got[0, 0].permute(1, 2, 0).numpy(), ref, atol=1e-5)
    if centre[0] - side / 2 < 0:  # the part of the crop left of the image is black
        assert float(got[0, 0, :, :, 0].abs().max()) == 0.0


def test_joint_crops_bad_shapes():
    img = torch.zeros(2, 10, 10, 3, dtype=torch.uint8)
    with pytest.raises(KineposeError, match=r"centres must be \(2, K, 2\)"):
        joint_crops(img, torch.zeros(1, 1, 2), torch.ones(2))
    with pytest.raises(KineposeError, match=r"side must be \(2,\)"):
        joint_crops(img, torch.zeros(2, 1, 2), torch.ones(3))
    with pytest.raises(KineposeError, match="uint8 images must be"):
        joint_crops(torch.zeros(2, 10, 10, 4, dtype=torch.uint8), torch.zeros(2, 1, 2), torch.ones(2))
