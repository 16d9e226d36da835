"""Input normalization for lifting models: VideoPose3D screen coordinates, root-relative joints, feature statistics.

- :func:`normalize_screen_coordinates` maps pixels to ``[-1, 1]`` along the image width, keeping the aspect
  ratio (VideoPose3D's ``common/camera.py``): ``x / w * 2 - [1, h / w]``.
- :func:`root_relative` subtracts the root joint; :func:`camera_frame_root_relative` does it in the camera
  frame, the usual target of a 2D -> 3D lifting model.
- :class:`Normalizer` is a ``torch.nn.Module`` holding per-feature ``mean`` and ``std`` buffers, so the
  statistics are saved in the ``state_dict`` of the model that owns it.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import torch

from kinepose._validation import check_last_dims
from kinepose.errors import KineposeError, ShapeError
from kinepose.geometry.cameras import Camera, world_to_camera

__all__ = [
    "Normalizer",
    "camera_frame_root_relative",
    "centre_keypoints",
    "image_coordinates",
    "normalize_screen_coordinates",
    "root_relative",
]


def _size(x: torch.Tensor, w: torch.Tensor | float, h: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """``w``, ``h`` as tensors viewed to broadcast with ``x[..., 0]``: their dims are the leading dims of ``x``."""
    check_last_dims(x, "x", (2,), "image coordinates (u, v)")
    w = torch.as_tensor(w, dtype=x.dtype, device=x.device)
    h = torch.as_tensor(h, dtype=x.dtype, device=x.device)
    msg = f"w, h: shapes {tuple(w.shape)}, {tuple(h.shape)} must be scalars or the leading dims of x {tuple(x.shape)}"
    try:
        batch = torch.broadcast_shapes(w.shape, h.shape)
        torch.broadcast_shapes(batch, x.shape[: len(batch)])
    except RuntimeError as exc:
        raise ShapeError(msg) from exc
    if len(batch) > x.ndim - 1:
        raise ShapeError(msg)
    view = tuple(batch) + (1,) * (x.ndim - 1 - len(batch))
    return w.expand(batch).reshape(view), h.expand(batch).reshape(view)


def normalize_screen_coordinates(x: torch.Tensor, w: torch.Tensor | float, h: torch.Tensor | float) -> torch.Tensor:
    """Pixels ``(..., 2)`` -> screen coordinates ``x / w * 2 - [1, h / w]`` (u in ``[-1, 1]``, aspect kept).

    Args:
        x: ``(..., 2)`` pixel coordinates ``(u, v)``.
        w, h: Image width and height in pixels: scalars, or tensors whose shape is the leading dims of ``x``
            (e.g. ``(B,)`` for ``x`` of shape ``(B, T, J, 2)``).
    """
    w, h = _size(x, w, h)
    return torch.stack([x[..., 0] / w * 2 - 1, x[..., 1] / w * 2 - h / w], dim=-1)


def image_coordinates(x: torch.Tensor, w: torch.Tensor | float, h: torch.Tensor | float) -> torch.Tensor:
    """Inverse of :func:`normalize_screen_coordinates`: ``(x + [1, h / w]) * w / 2``, shape ``(..., 2)``."""
    w, h = _size(x, w, h)
    return torch.stack([(x[..., 0] + 1) * w / 2, (x[..., 1] + h / w) * w / 2], dim=-1)


def root_relative(points: torch.Tensor, root_index: int = 0) -> torch.Tensor:
    """Joints ``(..., J, C)`` minus their root joint ``points[..., root_index, :]`` (same shape; the root is 0)."""
    check_last_dims(points, "points", (None, None), "joints (..., J, C)")
    n_joints = points.shape[-2]
    if isinstance(root_index, bool) or not isinstance(root_index, Integral) or not -n_joints <= root_index < n_joints:
        raise KineposeError(f"root_index: expected an int in [-{n_joints}, {n_joints}), got {root_index!r}")
    r = int(root_index) % n_joints
    return points - points[..., r : r + 1, :]


def camera_frame_root_relative(points_world: torch.Tensor, cam: Camera, root_index: int = 0) -> torch.Tensor:
    """World joints ``(*C, ..., J, 3)`` -> camera-frame joints relative to the root: ``R @ (X - X_root)``."""
    return root_relative(world_to_camera(points_world, cam), root_index)


class Normalizer(torch.nn.Module):
    """Per-feature standardization ``(x - mean) / std`` with the statistics in buffers (saved in state_dicts).

    Args:
        feature_shape: The trailing feature shape, e.g. ``(J, 2)`` for per-joint-and-axis statistics of
            keypoints ``(..., J, 2)``, or ``2`` for one statistic per axis.
        eps: Floor of ``std`` (features that never vary are divided by ``eps``, not 0).
        dtype: Of the buffers (default dtype).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, feature_shape: int | Sequence[int], *, eps: float = 1e-6, dtype: torch.dtype | None = None):
        super().__init__()
        shape = (feature_shape,) if isinstance(feature_shape, Integral) else tuple(feature_shape)
        if not all(isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in shape):
            raise KineposeError(f"feature_shape: expected positive ints, got {feature_shape!r}")
        if not eps > 0:
            raise KineposeError(f"eps: expected a positive number, got {eps!r}")
        self.feature_shape: tuple[int, ...] = tuple(int(s) for s in shape)
        self.eps = float(eps)
        self.register_buffer("mean", torch.zeros(self.feature_shape, dtype=dtype))
        self.register_buffer("std", torch.ones(self.feature_shape, dtype=dtype))

    def _check(self, x: torch.Tensor, name: str) -> None:
        check_last_dims(x, name, self.feature_shape, f"features of shape {self.feature_shape} last")

    @torch.no_grad()
    def fit(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> Normalizer:
        """Set ``mean`` and ``std`` (population, ``ddof=0``) per feature over all leading dims of ``x``.

        Entries where ``mask == 0`` or ``x`` is NaN or infinite are ignored.

        Args:
            x: ``(..., *feature_shape)`` data.
            mask: Same shape as ``x``, or ``x``'s shape without its last dim (one flag per point, e.g.
                ``(..., J)`` keypoint visibility), or anything that broadcasts to ``x``.

        Returns:
            ``self``, fitted.

        Raises:
            KineposeError: If a feature has no valid entry at all.
        """
        self._check(x, "x")
        valid = torch.isfinite(x)
        if mask is not None:
            mask = torch.as_tensor(mask, device=x.device)
            if tuple(mask.shape) == tuple(x.shape[:-1]):
                mask = mask[..., None]
            try:
                mask = mask.broadcast_to(x.shape)
            except RuntimeError as exc:
                raise ShapeError(
                    f"mask: expected shape {tuple(x.shape)}, {tuple(x.shape[:-1])} or one that broadcasts to x, "
                    f"got {tuple(mask.shape)}"
                ) from exc
            valid = valid & (mask != 0)
        dims = tuple(range(x.ndim - len(self.feature_shape)))  # every leading dim
        count = valid.sum(dims)  # (*feature_shape)
        if bool((count == 0).any()):
            idx = tuple(torch.nonzero(count == 0)[0].tolist())
            raise KineposeError(f"x: feature {idx} has no valid entry (all masked or NaN); cannot fit it")
        xd = torch.where(valid, x, 0).double()  # float64 sums: accurate for millions of samples
        mean = xd.sum(dims) / count
        var = torch.where(valid, xd - mean, 0).square().sum(dims) / count
        self.mean.copy_(mean)
        self.std.copy_(var.sqrt().clamp_min(self.eps))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / std`` for ``x`` of shape ``(..., *feature_shape)``."""
        self._check(x, "x")
        return (x - self.mean) / self.std

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Same as calling the module: ``(x - mean) / std``."""
        return self(x)

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize`: ``y * std + mean``, shape ``(..., *feature_shape)``."""
        self._check(y, "y")
        return y * self.std + self.mean

    def extra_repr(self) -> str:
        return f"feature_shape={self.feature_shape}, eps={self.eps}"


def centre_keypoints(
    keypoints: torch.Tensor, visibility: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre each frame's 2D keypoints on its visible joints' centroid and divide by their RMS spread.

    Args:
        keypoints: (..., J, 2), NaN where a joint is missing.
        visibility: optional (..., J); joints with visibility 0 count as missing.

    Returns:
        (..., J, 2) centred, unit-spread keypoints (missing joints 0), and the (..., J) 0/1 visibility used.
        Invariant to the subject's position and size in the image (camera distance, focal length).
    """
    finite = torch.isfinite(keypoints).all(-1)
    v = finite.to(keypoints.dtype) if visibility is None else (visibility > 0).to(keypoints.dtype) * finite
    x = torch.nan_to_num(keypoints, nan=0.0)
    c = (x * v[..., None]).sum(-2) / v.sum(-1, keepdim=True).clamp_min(1.0)  # (..., 2)
    rel = (x - c[..., None, :]) * v[..., None]
    s = (rel.square().sum(-1).sum(-1) / v.sum(-1).clamp_min(1.0)).sqrt().clamp_min(1e-6)  # (...,)
    return rel / s[..., None, None], v
