"""``knn``: the lifter that learns no network. The 3D pose of the nearest training 2D poses.

Chen and Ramanan's "3D human pose estimation = 2D pose estimation + matching" (CVPR 2017) in its plainest form: a
bank of training views (2D keypoints and their root-relative 3D), the query and the bank both centred on their
visible joints' centroid and divided by their spread, distances over the joints visible in the query only, and the
mean 3D of the ``k`` nearest bank entries (3D stays metric). A query with missing joints is compared with every
bank entry re-centred and re-scaled on the same visible joints. The bank is training
statistics, stored in buffers so that it is saved with the "model"; :meth:`KNNLifter.fit_bank` fills it.

Over a clip (:meth:`KNNLifter.forward_sequence`) the per-frame answers are smoothed by a moving average of
``smooth`` frames (centred, or causal), the no-learning counterpart of the temporal lifters.
"""

from __future__ import annotations

import torch

from kinepose.errors import KineposeError
from kinepose.geometry.normalization import centre_keypoints
from kinepose.kinematics.filters import moving_average
from kinepose.models.layers import check_positive
from kinepose.models.lifting.base import Lifter, LiftOutput
from kinepose.models.lifting.registry import register_lifter
from kinepose.skeleton.core import Skeleton

__all__ = ["KNNLifter"]


@register_lifter("knn")
class KNNLifter(Lifter):
    """Nearest neighbours in a bank of training views. ``bank_size`` entries, ``k`` neighbours averaged."""

    def __init__(self, skeleton: Skeleton, k: int = 8, bank_size: int = 40000, smooth: int = 1,
                 causal: bool = False) -> None:  # fmt: skip
        super().__init__(skeleton, 1, causal)
        check_positive(k=k, bank_size=bank_size, smooth=smooth)
        self.k, self.smooth = int(k), int(smooth)
        J = skeleton.num_joints
        self.register_buffer("bank_2d", torch.zeros(int(bank_size), J, 2))
        self.register_buffer("bank_3d", torch.zeros(int(bank_size), J, 3))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def fit_bank(self, keypoints: torch.Tensor, target: torch.Tensor) -> None:
        """Fill the bank from (N, J, 2) clean training keypoints and their (N, J, 3) root-relative 3D."""
        n = min(keypoints.shape[0], self.bank_2d.shape[0])
        self.bank_2d[:n] = centre_keypoints(keypoints[:n], None)[0]
        self.bank_3d[:n] = target[:n]
        self.filled.fill_(n)

    def _query(self, keypoints: torch.Tensor, visibility: torch.Tensor | None, chunk: int = 2048) -> torch.Tensor:
        """(N, J, 2) -> (N, J, 3), ``chunk`` queries at a time (an (chunk, M) distance matrix at most)."""
        if int(self.filled) == 0:
            raise KineposeError("knn: the bank is empty; fit_bank() it with training views first")
        parts = []
        for i in range(0, keypoints.shape[0], chunk):
            vis = None if visibility is None else visibility[i : i + chunk]
            parts.append(self._query_chunk(keypoints[i : i + chunk], vis))
        return torch.cat(parts)

    def _query_chunk(self, keypoints: torch.Tensor, visibility: torch.Tensor | None) -> torch.Tensor:
        n = int(self.filled)
        q, v = centre_keypoints(keypoints, visibility)  # (N, J, 2), (N, J)
        bank = self.bank_2d[:n]  # (M, J, 2)
        nv = v.sum(-1, keepdim=True).clamp_min(1.0)  # (N, 1)
        # each bank entry is re-centred and re-scaled on the query's visible joints only, so a query with missing
        # joints is compared like with like: centroid c = (v @ b) / nv, spread s^2 = (v @ |b|^2) / nv - |c|^2
        cx, cy = (v @ bank[..., 0].T) / nv, (v @ bank[..., 1].T) / nv  # (N, M)
        s2 = ((v @ bank.square().sum(-1).T) / nv - cx.square() - cy.square()).clamp_min(1e-12)
        # sum_j v |q_j - (b_j - c) / s|^2 = |q|^2_v - 2 (q.b)_v / s + nv  (sum_j v q_j = 0: q is centred on v)
        qq = (q.square().sum(-1) * v).sum(-1, keepdim=True)  # (N, 1)
        cross = (q * v[..., None]).flatten(1) @ bank.flatten(1).T  # (N, M)
        d = qq - 2 * cross / s2.sqrt() + nv
        idx = d.topk(min(self.k, n), dim=1, largest=False).indices  # (N, k)
        return self.bank_3d[:n][idx].mean(1)

    def forward(self, keypoints: torch.Tensor, visibility: torch.Tensor | None = None) -> LiftOutput:
        self.check_input(keypoints, visibility)
        vis = None if visibility is None else visibility[:, 0]
        return LiftOutput(joints=self._query(keypoints[:, 0], vis))

    def _lift_sequence(self, keypoints: torch.Tensor, visibility: torch.Tensor | None = None) -> torch.Tensor:
        B, T = keypoints.shape[:2]
        vis = None if visibility is None else visibility.reshape(B * T, -1)
        out = self._query(keypoints.reshape(B * T, *keypoints.shape[2:]), vis).reshape(B, T, self.num_joints, 3)
        if self.smooth > 1:
            out = torch.stack([moving_average(o, self.smooth, causal=self.causal) for o in out])
        return out
