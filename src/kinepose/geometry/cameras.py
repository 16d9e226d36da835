"""Pinhole cameras with the OpenCV distortion model: projection, undistortion, back-projection, look-at.

Conventions:

- OpenCV camera frame: ``x`` right, ``y`` down in the image, ``z`` forward (the viewing direction).
  The world is y-up, as in our motion data. Metres and radians; pixels for image coordinates.
- Extrinsics map world to camera with column vectors: ``X_cam = R @ X_world + t``. The camera centre in
  the world is ``-R^T t`` (:attr:`Camera.center`).
- Distortion coefficients are OpenCV's first five, ``(k1, k2, p1, p2, k3)``. With ``x, y`` the normalized
  coordinates ``X / Z, Y / Z`` and ``r^2 = x^2 + y^2``:
  ``x_d = x (1 + k1 r^2 + k2 r^4 + k3 r^6) + 2 p1 x y + p2 (r^2 + 2 x^2)``,
  ``y_d = y (1 + k1 r^2 + k2 r^4 + k3 r^6) + p1 (r^2 + 2 y^2) + 2 p2 x y``,
  ``u = fx x_d + cx``, ``v = fy y_d + cy`` -- the model of ``cv2.projectPoints``.
- **Broadcasting rule**: a camera of batch shape ``C`` (``Camera.batch_shape``, e.g. ``()``, ``(B,)``)
  applies to points of shape ``(*C, *rest, J, 3)``: the camera's batch dims are the *leading* dims of the
  points, every further dim (time, joints...) shares that camera. The leading dims broadcast as usual
  (a size-1 dim on either side is expanded), so cameras ``(B,)`` with points ``(1, T, J, 3)`` project one
  sequence into ``B`` views. Points must have at least ``len(C)`` leading dims plus ``(J, 3)``.
- Points at or behind the camera plane (``z <= z_min``) are projected as if at depth ``z_min``
  (default :data:`Z_MIN`): the pixels are huge but finite, and the gradient with respect to their depth is
  zero. The radial polynomial is evaluated at ``min(r^2, R2_MAX)`` so that such points cannot overflow to
  inf or NaN (no point with ``r^2 > R2_MAX``, i.e. more than 89.4 degrees off axis, is ever inside an
  image). Use :func:`visible` to mask them out.

Every function takes any number of leading dims, float32 or float64, and is differentiable with respect to
points and camera parameters.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any, Literal

import numpy as np
import torch

from kinepose._validation import check_last_dims
from kinepose.errors import KineposeError, ShapeError
from kinepose.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle

__all__ = [
    "R2_MAX",
    "Z_MIN",
    "Camera",
    "back_project",
    "back_project_to_world",
    "camera_from_dict",
    "camera_from_opencv",
    "camera_to_dict",
    "camera_to_opencv",
    "camera_to_world",
    "look_at_camera",
    "look_at_extrinsics",
    "project",
    "project_camera_frame",
    "undistort_points",
    "visible",
    "world_to_camera",
]

#: Depth (metres) that points at or behind the camera plane are clamped to before the division by z.
Z_MIN = 1e-4
#: Largest squared normalized radius fed to the radial distortion polynomial (guards against overflow).
R2_MAX = 1e4

_FIELDS = ("fx", "fy", "cx", "cy", "R", "t", "dist", "width", "height")


def _image_size(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) <= 0:
        raise KineposeError(f"{name}: expected a positive int (pixels), got {value!r}")
    return int(value)


@dataclass(eq=False, kw_only=True)
class Camera:
    """A batch of pinhole cameras with OpenCV distortion; every tensor field shares the batch shape ``C``.

    Attributes:
        fx, fy: Focal lengths in pixels, shape ``C``.
        cx, cy: Principal point in pixels, shape ``C``.
        R: World-to-camera rotations ``(*C, 3, 3)``; ``X_cam = R @ X_world + t``. Default identity.
        t: Translations ``(*C, 3)`` in metres. Default zero.
        dist: Distortion ``(*C, 5)`` in OpenCV order ``(k1, k2, p1, p2, k3)``. Default zero.
        width, height: Image size in pixels (ints, shared by the whole batch).

    Fields given as floats, lists or arrays are converted to the dtype and device of the tensor fields
    (the default dtype if there are none), then all are broadcast to the common batch shape.
    """

    fx: torch.Tensor
    fy: torch.Tensor
    cx: torch.Tensor
    cy: torch.Tensor
    width: int
    height: int
    R: torch.Tensor = None  # type: ignore[assignment]
    t: torch.Tensor = None  # type: ignore[assignment]
    dist: torch.Tensor = None  # type: ignore[assignment]
    _batch: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        given = {n: getattr(self, n) for n in ("fx", "fy", "cx", "cy", "R", "t", "dist")}
        tensors = [v for v in given.values() if isinstance(v, torch.Tensor)]
        floats = [v.dtype for v in tensors if v.is_floating_point()]
        dtype = functools.reduce(torch.promote_types, floats) if floats else torch.get_default_dtype()
        device = tensors[0].device if tensors else None
        defaults = {"R": torch.eye(3), "t": torch.zeros(3), "dist": torch.zeros(5)}
        out: dict[str, torch.Tensor] = {}
        for name, v in given.items():
            v = defaults[name] if v is None else v
            if isinstance(v, torch.Tensor):
                out[name] = v.to(device=device, dtype=dtype)
            else:
                try:
                    out[name] = torch.as_tensor(np.asarray(v, dtype=np.float64), dtype=dtype, device=device)
                except (TypeError, ValueError) as exc:
                    raise KineposeError(f"{name}: cannot convert {type(v).__name__} to a tensor ({exc})") from exc
        check_last_dims(out["R"], "R", (3, 3), "world-to-camera rotations")
        check_last_dims(out["t"], "t", (3,), "world-to-camera translations")
        check_last_dims(out["dist"], "dist", (5,), "distortion k1, k2, p1, p2, k3")
        shapes = {n: tuple(v.shape[: v.ndim - {"R": 2, "t": 1, "dist": 1}.get(n, 0)]) for n, v in out.items()}
        try:
            batch = tuple(torch.broadcast_shapes(*shapes.values()))
        except RuntimeError as exc:
            raise ShapeError(f"Camera: the batch shapes of the fields do not broadcast: {shapes}") from exc
        for name, v in out.items():
            setattr(self, name, v.expand(batch + tuple(v.shape[len(shapes[name]) :])))
        if not bool((self.fx > 0).all() and (self.fy > 0).all()):
            raise KineposeError("fx, fy: focal lengths must be positive (pixels)")
        self.width = _image_size("width", self.width)
        self.height = _image_size("height", self.height)
        self._batch = batch

    @classmethod
    def from_K(
        cls,
        K: torch.Tensor,
        *,
        width: int,
        height: int,
        R: torch.Tensor | None = None,
        t: torch.Tensor | None = None,
        dist: torch.Tensor | None = None,
    ) -> Camera:
        """Build cameras from intrinsic matrices ``K`` ``(*C, 3, 3)`` (zero skew, last row ``0, 0, 1``)."""
        K = torch.as_tensor(K)
        check_last_dims(K, "K", (3, 3), "intrinsic matrices [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]")
        if bool((K[..., 0, 1] != 0).any()):
            raise KineposeError("K: a non-zero skew K[..., 0, 1] is not supported")
        return cls(
            fx=K[..., 0, 0],
            fy=K[..., 1, 1],
            cx=K[..., 0, 2],
            cy=K[..., 1, 2],
            width=width,
            height=height,
            R=R,
            t=t,
            dist=dist,
        )

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The camera batch shape ``C`` (``()`` for a single camera)."""
        return self._batch

    @property
    def dtype(self) -> torch.dtype:
        return self.fx.dtype

    @property
    def device(self) -> torch.device:
        return self.fx.device

    @property
    def K(self) -> torch.Tensor:
        """Intrinsic matrices ``(*C, 3, 3)``: ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``."""
        zero, one = torch.zeros_like(self.fx), torch.ones_like(self.fx)
        rows = [self.fx, zero, self.cx, zero, self.fy, self.cy, zero, zero, one]
        return torch.stack(rows, dim=-1).reshape(*self._batch, 3, 3)

    @property
    def center(self) -> torch.Tensor:
        """Camera centres in world coordinates ``(*C, 3)``: ``-R^T t``."""
        return -(self.R.transpose(-1, -2) @ self.t[..., None])[..., 0]

    def __getitem__(self, index: Any) -> Camera:
        """Index the batch dims, e.g. ``cams[0]`` or ``cams[:, 1]``."""
        f = {n: getattr(self, n)[index] for n in _FIELDS[:7]}
        return Camera(**f, width=self.width, height=self.height)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Camera:
        """A copy on another device and/or dtype."""
        f = {n: getattr(self, n).to(device=device, dtype=dtype) for n in _FIELDS[:7]}
        return Camera(**f, width=self.width, height=self.height)


# ----------------------------------------------------------------------------------------------- broadcasting


def _lead(cam: Camera, x: torch.Tensor, name: str, channel_dims: int) -> int:
    """Check that ``x`` starts with the camera batch dims; return how many singleton dims a per-camera scalar
    needs (after the batch dims) to broadcast against ``x`` without its ``channel_dims`` trailing dims."""
    batch, n = cam.batch_shape, len(cam.batch_shape)
    per_point = "(J, 3)" if channel_dims else "(J,)"
    if x.ndim < n + 1 + channel_dims:
        raise ShapeError(
            f"{name}: expected shape (*C, ..., {per_point[1:-1]}) with the camera batch shape C={batch} leading, "
            f"got {tuple(x.shape)}"
        )
    try:
        torch.broadcast_shapes(tuple(x.shape[:n]), batch)
    except RuntimeError as exc:
        raise ShapeError(
            f"{name}: its leading dims {tuple(x.shape[:n])} do not broadcast with the camera batch shape {batch} "
            f"(the camera's batch dims must be the leading dims), got shape {tuple(x.shape)}"
        ) from exc
    return x.ndim - n - channel_dims


def _v(p: torch.Tensor, n: int, k: int, trailing: int = 0) -> torch.Tensor:
    """View a camera field ``(*C, *trailing)`` as ``(*C, 1 x k, *trailing)``."""
    s = tuple(p.shape)
    return p.reshape(s[:n] + (1,) * k + s[n:])


def _intrinsics(cam: Camera, k: int) -> tuple[torch.Tensor, ...]:
    n = len(cam.batch_shape)
    return tuple(_v(p, n, k) for p in (cam.fx, cam.fy, cam.cx, cam.cy))


# ----------------------------------------------------------------------------------------------- transforms


def world_to_camera(points_world: torch.Tensor, cam: Camera) -> torch.Tensor:
    """World points ``(*C, ..., J, 3)`` -> camera-frame points ``R @ X + t`` of the same shape."""
    check_last_dims(points_world, "points_world", (None, 3), "world points (..., J, 3)")
    k, n = _lead(cam, points_world, "points_world", 1), len(cam.batch_shape)
    R, t = _v(cam.R, n, k), _v(cam.t, n, k)  # (*C, 1.., 3, 3), (*C, 1.., 3)
    return (R * points_world[..., None, :]).sum(-1) + t  # mul-sum rather than matmul: promotes dtypes


def camera_to_world(points_cam: torch.Tensor, cam: Camera) -> torch.Tensor:
    """Camera-frame points ``(*C, ..., J, 3)`` -> world points ``R^T (X - t)`` of the same shape."""
    check_last_dims(points_cam, "points_cam", (None, 3), "camera-frame points (..., J, 3)")
    k, n = _lead(cam, points_cam, "points_cam", 1), len(cam.batch_shape)
    R, t = _v(cam.R, n, k), _v(cam.t, n, k)
    return (R * (points_cam - t)[..., :, None]).sum(-2)  # sum_i R_ij d_i = (R^T d)_j


# ----------------------------------------------------------------------------------------------- projection


def _distort(x: torch.Tensor, y: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    k1, k2, p1, p2, k3 = d.unbind(-1)
    r2 = x * x + y * y
    r2c = r2.clamp_max(R2_MAX)
    radial = 1 + ((k3 * r2c + k2) * r2c + k1) * r2c
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return xd, yd


def project_camera_frame(points_cam: torch.Tensor, cam: Camera, *, z_min: float = Z_MIN) -> torch.Tensor:
    """Project camera-frame points to pixels with intrinsics and distortion (no extrinsics).

    Args:
        points_cam: ``(*C, ..., J, 3)`` points in the camera frame, metres.
        cam: Cameras of batch shape ``C``.
        z_min: Depths below it are clamped to it (points behind the camera stay finite).

    Returns:
        ``(*C, ..., J, 2)`` pixel coordinates ``(u, v)``, identical to ``cv2.projectPoints`` for ``z > z_min``.
    """
    check_last_dims(points_cam, "points_cam", (None, 3), "camera-frame points (..., J, 3)")
    k, n = _lead(cam, points_cam, "points_cam", 1), len(cam.batch_shape)
    z = points_cam[..., 2].clamp_min(z_min)
    xd, yd = _distort(points_cam[..., 0] / z, points_cam[..., 1] / z, _v(cam.dist, n, k))
    fx, fy, cx, cy = _intrinsics(cam, k)
    return torch.stack([fx * xd + cx, fy * yd + cy], dim=-1)


def project(points_world: torch.Tensor, cam: Camera, *, z_min: float = Z_MIN) -> torch.Tensor:
    """Project world points ``(*C, ..., J, 3)`` to pixels ``(*C, ..., J, 2)`` (see :func:`project_camera_frame`)."""
    return project_camera_frame(world_to_camera(points_world, cam), cam, z_min=z_min)


def visible(points_world: torch.Tensor, cam: Camera, *, z_min: float = Z_MIN) -> torch.Tensor:
    """Boolean ``(*C, ..., J)``: in front of the camera (``z > z_min``) and inside ``[0, width] x [0, height]``."""
    pc = world_to_camera(points_world, cam)
    uv = project_camera_frame(pc, cam, z_min=z_min)
    u, v = uv[..., 0], uv[..., 1]
    return (pc[..., 2] > z_min) & (u >= 0) & (u <= cam.width) & (v >= 0) & (v <= cam.height)


def undistort_points(
    pixels: torch.Tensor,
    cam: Camera,
    *,
    iterations: int = 20,
    output: Literal["normalized", "pixels"] = "normalized",
) -> torch.Tensor:
    """Remove lens distortion from pixels by OpenCV's fixed-point iteration (as ``cv2.undistortPoints``).

    ``iterations=5`` reproduces ``cv2.undistortPoints``'s default; the default 20 converges to float64
    precision for mild distortion. As in OpenCV, a point whose radial factor turns negative (far outside
    the model's valid range) is left at its distorted normalized position.

    Args:
        pixels: ``(*C, ..., J, 2)`` distorted pixel coordinates.
        cam: Cameras of batch shape ``C``.
        iterations: Number of fixed-point iterations.
        output: ``"normalized"`` for ideal normalized coordinates ``(X / Z, Y / Z)``, ``"pixels"`` for the
            same points in the ideal (distortion-free) pinhole image ``fx x + cx, fy y + cy``.

    Returns:
        ``(*C, ..., J, 2)`` undistorted coordinates.
    """
    check_last_dims(pixels, "pixels", (None, 2), "pixel coordinates (..., J, 2)")
    if output not in ("normalized", "pixels"):
        raise KineposeError(f"output: expected 'normalized' or 'pixels', got {output!r}")
    k, n = _lead(cam, pixels, "pixels", 1), len(cam.batch_shape)
    fx, fy, cx, cy = _intrinsics(cam, k)
    k1, k2, p1, p2, k3 = _v(cam.dist, n, k).unbind(-1)
    x0, y0 = (pixels[..., 0] - cx) / fx, (pixels[..., 1] - cy) / fy
    x, y = x0, y0
    stopped = torch.zeros(x0.shape, dtype=torch.bool, device=x0.device)
    for _ in range(iterations):
        r2 = x * x + y * y
        icdist = 1 / (1 + ((k3 * r2 + k2) * r2 + k1) * r2)
        stopped = stopped | (icdist < 0)
        dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        x, y = torch.where(stopped, x0, (x0 - dx) * icdist), torch.where(stopped, y0, (y0 - dy) * icdist)
    if output == "pixels":
        x, y = fx * x + cx, fy * y + cy
    return torch.stack([x, y], dim=-1)


def back_project(pixels: torch.Tensor, depth: torch.Tensor, cam: Camera, *, iterations: int = 20) -> torch.Tensor:
    """Lift distorted pixels ``(*C, ..., J, 2)`` at z-depths ``(*C, ..., J)`` to camera-frame points ``(..., J, 3)``.

    ``depth`` is the camera-frame ``Z`` (not the distance along the ray); it broadcasts with ``pixels[..., 0]``.
    """
    check_last_dims(pixels, "pixels", (None, 2), "pixel coordinates (..., J, 2)")
    depth = torch.as_tensor(depth, dtype=pixels.dtype, device=pixels.device)
    try:
        torch.broadcast_shapes(tuple(depth.shape), tuple(pixels.shape[:-1]))
    except RuntimeError as exc:
        raise ShapeError(
            f"depth: expected shape {tuple(pixels.shape[:-1])} (pixels' shape without the last dim), "
            f"got {tuple(depth.shape)}"
        ) from exc
    xy = undistort_points(pixels, cam, iterations=iterations) * depth[..., None]
    return torch.cat([xy, depth[..., None].expand_as(xy[..., :1])], dim=-1)


def back_project_to_world(
    pixels: torch.Tensor, depth: torch.Tensor, cam: Camera, *, iterations: int = 20
) -> torch.Tensor:
    """:func:`back_project`, then to world coordinates: ``(*C, ..., J, 3)``."""
    return camera_to_world(back_project(pixels, depth, cam, iterations=iterations), cam)


# ----------------------------------------------------------------------------------------------- look-at


def _vec3(v: Any, name: str, like: torch.Tensor | None = None) -> torch.Tensor:
    if not isinstance(v, torch.Tensor):
        v = torch.as_tensor(np.asarray(v, dtype=np.float64), dtype=torch.get_default_dtype())
    if like is not None:
        v = v.to(device=like.device, dtype=like.dtype)
    check_last_dims(v, name, (3,), "3D vectors")
    return v


def look_at_extrinsics(
    eye: torch.Tensor, target: torch.Tensor, up: Any = (0.0, 1.0, 0.0), roll: torch.Tensor | float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """World-to-camera ``R (..., 3, 3)``, ``t (..., 3)`` of cameras at ``eye`` looking at ``target``.

    The camera ``z`` axis points from ``eye`` to ``target``, ``x = normalize(z x up)`` is image right and
    ``y = z x x`` is image down, so world ``up`` appears upward in the image (negative ``v``). ``roll``
    (radians, ``(...,)``) then turns the camera about its viewing axis: camera coordinates are rotated
    by ``roll`` from ``x`` towards ``y``, i.e. the image content turns clockwise for ``roll > 0``.

    Args:
        eye, target, up: ``(..., 3)`` world points and up directions; leading dims broadcast.
        roll: Roll angles in radians, scalar or ``(...,)``.

    Raises:
        KineposeError: If ``eye == target`` or ``up`` is parallel to the viewing direction.
    """
    eye = _vec3(eye, "eye")
    target, up = _vec3(target, "target", eye), _vec3(up, "up", eye)
    fwd = target - eye
    fnorm = fwd.norm(dim=-1, keepdim=True)
    if bool((fnorm <= 1e-12).any()):
        raise KineposeError("eye, target: the camera position equals the target; no viewing direction")
    z = fwd / fnorm
    right = torch.linalg.cross(z, up.expand_as(z), dim=-1)
    rnorm = right.norm(dim=-1, keepdim=True)
    if bool((rnorm <= 1e-6 * up.norm(dim=-1, keepdim=True)).any()):
        raise KineposeError("up: parallel to the viewing direction target - eye; choose another up vector")
    x = right / rnorm
    y = torch.linalg.cross(z, x, dim=-1)
    R = torch.stack([x, y, z], dim=-2)  # rows are the camera axes in world coordinates
    roll = torch.as_tensor(roll, dtype=R.dtype, device=R.device)
    c, s = torch.cos(roll), torch.sin(roll)
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    Rz = torch.stack([c, -s, zero, s, c, zero, zero, zero, one], dim=-1).reshape(*c.shape, 3, 3)
    R = Rz @ R
    return R, -(R @ eye[..., None])[..., 0]


def look_at_camera(
    eye: torch.Tensor,
    target: torch.Tensor,
    up: Any = (0.0, 1.0, 0.0),
    *,
    focal_px: torch.Tensor | float = 1000.0,
    image_size: tuple[int, int] = (1000, 1000),
    principal_point: torch.Tensor | None = None,
    dist: torch.Tensor | None = None,
    roll: torch.Tensor | float = 0.0,
) -> Camera:
    """A :class:`Camera` at ``eye`` ``(..., 3)`` looking at ``target`` (see :func:`look_at_extrinsics`).

    Args:
        focal_px: Focal length ``fx = fy`` in pixels, scalar or ``(...,)``.
        image_size: ``(width, height)`` in pixels.
        principal_point: ``(..., 2)`` ``(cx, cy)``; default the image centre ``(width / 2, height / 2)``.
        dist: ``(..., 5)`` distortion ``(k1, k2, p1, p2, k3)``; default none.
        roll: Roll about the viewing axis, radians.
    """
    R, t = look_at_extrinsics(eye, target, up, roll)
    w, h = image_size
    pp = torch.tensor([w / 2, h / 2], dtype=R.dtype, device=R.device) if principal_point is None else principal_point
    pp = torch.as_tensor(pp, dtype=R.dtype, device=R.device)
    check_last_dims(pp, "principal_point", (2,), "(cx, cy) pixels")
    return Camera(fx=focal_px, fy=focal_px, cx=pp[..., 0], cy=pp[..., 1], R=R, t=t, dist=dist, width=w, height=h)


# ----------------------------------------------------------------------------------------------- OpenCV, dicts


def camera_from_opencv(
    K: Any, dist: Any, rvec: Any, tvec: Any, width: int, height: int, *, dtype: torch.dtype | None = None
) -> Camera:
    """Cameras from OpenCV's ``K (*C, 3, 3)``, ``dist (*C, N)``, ``rvec (*C, 3)`` (Rodrigues), ``tvec (*C, 3)``.

    ``dist`` may have 4 coefficients (``k3 = 0``) or 5; longer OpenCV vectors (rational, thin prism, tilt) are
    accepted only if the extra coefficients are zero. With a single ``K (3, 3)``, the other arrays may have
    any shape OpenCV gives (``(1, 5)``, ``(3, 1)``...) and are flattened. Arrays default to float64.
    """
    dtype = dtype or torch.float64
    K, dist, rvec, tvec = (
        a.to(dtype) if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dtype)
        for a in (K, dist, rvec, tvec)
    )
    if K.ndim == 2:
        dist, rvec, tvec = dist.reshape(-1), rvec.reshape(-1), tvec.reshape(-1)
    check_last_dims(dist, "dist", (None,), "OpenCV distortion coefficients")
    if dist.shape[-1] < 4:
        raise ShapeError(f"dist: expected at least 4 coefficients (k1, k2, p1, p2[, k3, ...]), got {tuple(dist.shape)}")
    if dist.shape[-1] > 5 and bool((dist[..., 5:] != 0).any()):
        raise KineposeError("dist: coefficients beyond k3 (rational, thin prism, tilt) are not supported")
    dist = dist[..., :5] if dist.shape[-1] >= 5 else torch.cat([dist, torch.zeros_like(dist[..., :1])], dim=-1)
    check_last_dims(rvec, "rvec", (3,), "Rodrigues rotation vectors")
    check_last_dims(tvec, "tvec", (3,), "translations")
    return Camera.from_K(K, width=width, height=height, R=axis_angle_to_matrix(rvec), t=tvec, dist=dist)


def camera_to_opencv(cam: Camera) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(K (*C, 3, 3), dist (*C, 5), rvec (*C, 3), tvec (*C, 3))`` for ``cv2.projectPoints`` and friends."""
    return cam.K, cam.dist, matrix_to_axis_angle(cam.R), cam.t


def camera_to_dict(cam: Camera) -> dict[str, Any]:
    """A JSON-safe dict of plain (nested) lists and ints: keys fx, fy, cx, cy, R, t, dist, width, height."""
    out: dict[str, Any] = {n: getattr(cam, n).detach().cpu().double().tolist() for n in _FIELDS[:7]}
    out["width"], out["height"] = cam.width, cam.height
    return out


def camera_from_dict(
    d: Mapping[str, Any], *, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> Camera:
    """Inverse of :func:`camera_to_dict` (``R``, ``t``, ``dist`` optional). Unknown or missing keys raise."""
    unknown = sorted(set(d) - set(_FIELDS))
    if unknown:
        raise KineposeError(f"camera dict: unknown key {unknown[0]!r}; expected keys {list(_FIELDS)}")
    missing = [n for n in ("fx", "fy", "cx", "cy", "width", "height") if n not in d]
    if missing:
        raise KineposeError(f"camera dict: missing key {missing[0]!r}")
    dtype = dtype or torch.get_default_dtype()
    f = {
        n: torch.as_tensor(np.asarray(d[n], dtype=np.float64), dtype=dtype, device=device)
        for n in _FIELDS[:7]
        if d.get(n) is not None
    }
    batch = tuple(f["fx"].shape)
    for n, tail in (("R", (3, 3)), ("t", (3,)), ("dist", (5,))):
        if n in f and f[n].numel() == 0:  # an empty batch loses its trailing dims in a list: restore them
            f[n] = f[n].reshape(*batch, *tail)
    return Camera(**f, width=d["width"], height=d["height"])
