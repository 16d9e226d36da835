"""Square crops around joints in an image: where a joint's crop lies (:func:`crop_boxes`) and the camera that renders
that crop at its own resolution (:func:`crop_camera`), pixel centres at integers throughout."""

from __future__ import annotations

import torch

from kinepose.geometry.cameras import Camera

__all__ = ["crop_boxes", "crop_camera"]


def crop_boxes(joints_2d: torch.Tensor, parents: list[int] | tuple[int, ...], scale: float = 0.3,
               joints: list[int] | None = None, extend: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Centres ``(B, K, 2)`` and sides ``(B,)`` in pixels of crops around joints.

    A crop's side is ``scale`` times the larger side of the joints' 2D bounding box (at least 8 px). A joint whose
    segment has no child joint (the head on the neck) is best seen past its end: with ``extend`` the centre of the
    crop of joint ``j`` moves ``extend`` times its 2D bone ``j - parent(j)`` further along it (0 for the root).
    """
    uv = joints_2d
    side = (uv.amax(1) - uv.amin(1)).amax(-1).mul(scale).clamp_min(8.0)  # (B,)
    idx = list(range(uv.shape[1])) if joints is None else list(joints)
    par = [max(parents[j], 0) if parents[j] >= 0 else j for j in idx]
    centres = uv[:, idx] + extend * (uv[:, idx] - uv[:, par])  # (B, K, 2)
    return centres, side


def crop_camera(camera: Camera, centre: tuple[float, float], side: float, size: int) -> Camera:
    """The camera whose ``size x size`` image is the square of ``side`` pixels centred at ``centre`` of ``camera`` 's
    image, resampled: pixel ``i`` of the crop sees what the point ``centre - side / 2 + (i + 0.5) * side / size`` of
    the full image sees (the convention of :func:`~kinepose.models.vision.features.joint_crops`), in both axes. Same
    pose, no distortion; ``camera`` has batch shape ``()``."""
    f = float(size) / float(side)
    u0, v0 = float(centre[0]) - 0.5 * float(side), float(centre[1]) - 0.5 * float(side)
    return Camera(fx=camera.fx * f, fy=camera.fy * f, cx=(camera.cx - u0) * f - 0.5, cy=(camera.cy - v0) * f - 0.5,
                  R=camera.R, t=camera.t, width=int(size), height=int(size))  # fmt: skip
