"""VideoPose3D's temporal convolutional lifter (Pavllo et al., CVPR 2019; ``common/model.py``, ``TemporalModel``).

The 2D keypoints of a window of frames, flattened to ``J * C`` channels per frame, go through a 1D convolution
over time whose kernel is the first filter width ("expand"), then one residual block per further filter width:
a dilated convolution (dilation = product of the widths before it) and a 1x1 convolution, each followed by
BatchNorm, ReLU and Dropout, with the block's input added back from the centre of its slice (causal: from its
last frames). A final 1x1 convolution ("shrink") gives ``J * 3`` outputs per remaining frame. The receptive field
is the product of the widths: "3,3,3" = 27 frames, "3,3,3,3" = 81, "3,3,3,3,3" = 243. The submodule names are
VideoPose3D's (``expand_conv``, ``expand_bn``, ``layers_conv``, ``layers_bn``, ``shrink``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from kinepose.errors import KineposeError, ShapeError
from kinepose.models.layers import check_positive
from kinepose.models.lifting.base import Lifter, LiftOutput
from kinepose.models.lifting.registry import register_lifter
from kinepose.skeleton.core import Skeleton

__all__ = ["TemporalConvLifter", "parse_filter_widths"]


def parse_filter_widths(filter_widths: str | Sequence[int]) -> tuple[int, ...]:
    """``"3,3,3"`` or ``[3, 3, 3]`` -> ``(3, 3, 3)``; every width must be an odd positive integer.

    Raises:
        KineposeError: naming ``filter_widths`` for an empty, non-integer, even or non-positive width.
    """
    if isinstance(filter_widths, str):
        items: list = [w.strip() for w in filter_widths.split(",")]
        try:
            widths = tuple(int(w) for w in items)
        except ValueError:
            msg = f"filter_widths: expected comma-separated integers such as '3,3,3', got {filter_widths!r}"
            raise KineposeError(msg) from None
    elif isinstance(filter_widths, Sequence):
        if not all(isinstance(w, int) and not isinstance(w, bool) for w in filter_widths):
            raise KineposeError(f"filter_widths: expected integers, got {filter_widths!r}")
        widths = tuple(filter_widths)
    else:
        raise KineposeError(f"filter_widths: expected a string such as '3,3,3' or a list, got {filter_widths!r}")
    if not widths or any(w < 1 or w % 2 == 0 for w in widths):
        raise KineposeError(f"filter_widths: every width must be an odd integer >= 1, got {filter_widths!r}")
    return widths


@register_lifter("tcn")
class TemporalConvLifter(Lifter):
    """VideoPose3D's ``TemporalModel`` as a lifter: a window of ``receptive_field`` frames in, its target frame out.

    Input per frame and joint: the standardized (x, y) and, with ``use_visibility``, the visibility (3 channels).
    VideoPose3D feeds only (x, y); we add the visibility so that a missing joint (its coordinates zeroed) is
    distinguishable from a joint at the mean position, the same for every rival. With ``use_visibility=False`` the
    network is VideoPose3D's exactly (8.56M parameters for 27 frames on 17 joints).

    :meth:`forward` (one window, one frame out) strides the convolutions as VideoPose3D's training model
    ``TemporalModelOptimized1f`` does; :meth:`forward_sequence` runs the dilated model once over a whole clip.
    Both use the same weights and agree in eval mode.

    Args:
        skeleton: the skeleton (J joints in and out).
        filter_widths: odd temporal kernel widths, a string ``"3,3,3"`` or a list; the window is their product.
        causal: predict the window's last frame (real time; VideoPose3D's ``causal_shift``) instead of its centre.
        channels: convolution channels (1024 in VideoPose3D).
        dropout: dropout after every convolution but the last (0.25).
        use_visibility: add the visibility as a third input channel per joint.
    """

    def __init__(
        self,
        skeleton: Skeleton,
        filter_widths: str | Sequence[int] = (3, 3, 3),
        causal: bool = False,
        channels: int = 1024,
        dropout: float = 0.25,
        use_visibility: bool = True,
    ) -> None:
        widths = parse_filter_widths(filter_widths)
        super().__init__(skeleton, window=math.prod(widths), causal=causal)
        check_positive(channels=channels)
        if not 0.0 <= dropout < 1.0:
            raise KineposeError(f"dropout must be in [0, 1), got {dropout}")
        self.filter_widths = widths
        self.use_visibility = bool(use_visibility)
        J = skeleton.num_joints
        in_channels = J * (3 if self.use_visibility else 2)
        # pad[i]: frames block i trims on each side; causal_shift[i]: how far its residual slice moves to the end.
        self.pad = [widths[0] // 2]
        self.causal_shift = [widths[0] // 2 if causal else 0]
        self.expand_conv = nn.Conv1d(in_channels, channels, widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1)
        self.layers_conv = nn.ModuleList()
        self.layers_bn = nn.ModuleList()
        dilation = widths[0]
        for w in widths[1:]:
            self.pad.append((w - 1) * dilation // 2)
            self.causal_shift.append(w // 2 * dilation if causal else 0)
            self.layers_conv.append(nn.Conv1d(channels, channels, w, dilation=dilation, bias=False))
            self.layers_bn.append(nn.BatchNorm1d(channels, momentum=0.1))
            self.layers_conv.append(nn.Conv1d(channels, channels, 1, bias=False))
            self.layers_bn.append(nn.BatchNorm1d(channels, momentum=0.1))
            dilation *= w
        self.relu = nn.ReLU()
        self.drop = nn.Dropout(dropout)
        self.shrink = nn.Conv1d(channels, J * 3, 1)

    def _features(self, keypoints: torch.Tensor, visibility: torch.Tensor | None) -> torch.Tensor:
        """(B, T, J, 2) keypoints and (B, T, J) visibility -> (B, J * C, T) network input."""
        B, T = keypoints.shape[:2]
        x = self.normalize_input(keypoints, visibility)  # (B, T, J, 2)
        if self.use_visibility:
            vis = self.effective_visibility(keypoints, visibility).to(x.dtype)  # (B, T, J)
            x = torch.cat([x, vis[..., None]], dim=-1)  # (B, T, J, 3)
        return x.reshape(B, T, -1).transpose(1, 2)  # (B, T, J*C) -> (B, J*C, T)

    def _blocks(self, x: torch.Tensor) -> torch.Tensor:
        """(B, J * C, L) -> (B, J * 3, L - receptive_field + 1): VideoPose3D's ``TemporalModel._forward_blocks``."""
        x = self.drop(self.relu(self.expand_bn(self.expand_conv(x))))
        for i in range(len(self.pad) - 1):
            pad, shift = self.pad[i + 1], self.causal_shift[i + 1]
            res = x[:, :, pad + shift : x.shape[2] - pad + shift]  # centre (causal: last) frames of the slice
            x = self.drop(self.relu(self.layers_bn[2 * i](self.layers_conv[2 * i](x))))
            x = res + self.drop(self.relu(self.layers_bn[2 * i + 1](self.layers_conv[2 * i + 1](x))))
        return self.shrink(x)

    def _blocks_one_frame(self, x: torch.Tensor) -> torch.Tensor:
        """(B, J * C, receptive_field) -> (B, J * 3, 1), computing only what the one output needs.

        VideoPose3D's ``TemporalModelOptimized1f`` (what it trains with): the same weights, every temporal
        convolution strided by its width instead of dilated, so a 243-frame window costs 121 frame positions
        instead of about 860. Equal to :meth:`_blocks` in eval mode; in train mode BatchNorm sees only those
        positions, as in VideoPose3D's training.
        """
        w0 = self.filter_widths[0]
        x = self.drop(self.relu(self.expand_bn(F.conv1d(x, self.expand_conv.weight, stride=w0))))
        for i, w in enumerate(self.filter_widths[1:]):
            shift = w // 2 if self.causal else 0
            res = x[:, :, w // 2 + shift :: w]  # centre (causal: last) frame of every group of w
            x = F.conv1d(x, self.layers_conv[2 * i].weight, stride=w)
            x = self.drop(self.relu(self.layers_bn[2 * i](x)))
            x = res + self.drop(self.relu(self.layers_bn[2 * i + 1](self.layers_conv[2 * i + 1](x))))
        return self.shrink(x)

    def forward(self, keypoints: torch.Tensor, visibility: torch.Tensor | None = None) -> LiftOutput:
        """Args:
            keypoints: (B, W, J, 2) screen-normalized 2D keypoints, W = :attr:`receptive_field`.
            visibility: optional (B, W, J) in [0, 1]; None means all visible.

        Returns:
            :class:`LiftOutput` with ``joints`` (B, J, 3) of frame :attr:`target_index` (centre, or last if causal).
        """
        self.check_input(keypoints, visibility)
        B = keypoints.shape[0]
        raw = self._blocks_one_frame(self._features(keypoints, visibility))  # (B, J*3, 1)
        raw = raw[:, :, 0].reshape(B, self.num_joints, 3)  # (B, J*3) -> (B, J, 3)
        return LiftOutput(joints=self.denormalize_output(raw))

    def _lift_sequence(self, keypoints: torch.Tensor, visibility: torch.Tensor | None = None) -> torch.Tensor:
        """Every frame of whole clips in one convolution pass: (B, T, J, 2) -> (B, T, J, 3).

        The clip is padded by replicating its first frame ``target_index`` times on the left and its last frame
        ``receptive_field - 1 - target_index`` times on the right (causal: all padding on the left), so frame t
        gets the same output as :meth:`forward` on the window of :func:`kinepose.data.datasets.window_index`.
        """
        J = self.num_joints
        if keypoints.dim() != 4 or keypoints.shape[1] < 1 or keypoints.shape[2:] != (J, 2):
            raise ShapeError(
                f"keypoints: tcn.forward_sequence expects clips of shape (B, T, {J}, 2) on skeleton "
                f"'{self.skeleton.name}', got {tuple(keypoints.shape)}"
            )
        if visibility is not None and visibility.shape != keypoints.shape[:-1]:
            raise ShapeError(f"visibility: expected shape {tuple(keypoints.shape[:-1])}, got {tuple(visibility.shape)}")
        B, T = keypoints.shape[:2]
        left, right = self.target_index, self.window - 1 - self.target_index
        idx = torch.arange(-left, T + right, device=keypoints.device).clamp(0, T - 1)  # (T + W - 1,)
        x = self._features(keypoints, visibility)[:, :, idx]  # (B, J*C, T + W - 1)
        raw = self._blocks(x).transpose(1, 2).reshape(B, T, J, 3)  # (B, J*3, T) -> (B, T, J*3) -> (B, T, J, 3)
        return self.denormalize_output(raw)

    def config(self) -> dict:
        """The constructor arguments; ``filter_widths`` as a list of ints (YAML- and JSON-friendly)."""
        cfg = super().config()
        cfg["filter_widths"] = list(self.filter_widths)
        return cfg
