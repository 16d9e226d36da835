"""Render a posed skeleton into a labelled training image: :func:`render_pose`, :func:`render_clip`.

An image is a z-buffered ray cast (see :mod:`kinepose.render.raster`) of the subject's solids (see
:mod:`kinepose.render.body`), an optional random or explicit occluder, over a random background, Lambert plus
ambient shading from a random light direction. Everything random comes from one ``numpy`` generator seeded by the
caller, so the same seed gives a bit-identical image. Lens distortion is not modelled (the camera's ``dist`` must be
zero); 2D labels are :func:`kinepose.geometry.cameras.project` of the joints, pixel centres at integer coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from kinepose.errors import KineposeError
from kinepose.geometry.cameras import Camera, project, world_to_camera
from kinepose.geometry.crops import crop_camera
from kinepose.render.body import Appearance, body_primitives, joint_radii, sample_appearance
from kinepose.render.config import PART_NAMES, Occluder, RenderConfig
from kinepose.render.raster import NEAR, Canvas, Primitive
from kinepose.skeleton import Skeleton

__all__ = ["ClipLabels", "RenderLabels", "make_rng", "render_clip", "render_pose"]

_OCC = PART_NAMES.index("occluder")


@dataclass
class RenderLabels:
    """Labels of one rendered image.

    Attributes:
        joints_2d: ``(J, 2)`` float64 pixels, :func:`~kinepose.geometry.cameras.project` of the joints.
        joints_cam: ``(J, 3)`` float64 camera-frame joints (OpenCV frame, metres).
        visibility: ``(J,)`` uint8: 1 where the joint is in front of the camera, inside the image and the front-most
            surface at its pixel is its own segment (or lies no nearer than the joint's surface), else 0.
        camera: the camera (batch shape ``()``).
        part_map: ``(H, W)`` uint8 indices into :data:`~kinepose.render.config.PART_NAMES` (0 background).
        depth: ``(H, W)`` float32 camera depth of the front-most surface (inf on the background).
        background: the background kind drawn.
        occluders: the occluders drawn (random or given), world frame.
        crops: ``(K, S, S, 3)`` uint8 crops rendered at their own resolution (``crop_windows``), or None.
    """

    joints_2d: np.ndarray
    joints_cam: np.ndarray
    visibility: np.ndarray
    camera: Camera
    part_map: np.ndarray
    depth: np.ndarray
    background: str
    occluders: list[Occluder] = field(default_factory=list)
    crops: np.ndarray | None = None


@dataclass
class ClipLabels:
    """Stacked labels of ``T`` frames: the fields of :class:`RenderLabels` with a leading ``T``, cameras ``(T,)``."""

    joints_2d: np.ndarray
    joints_cam: np.ndarray
    visibility: np.ndarray
    camera: Camera
    part_map: np.ndarray
    depth: np.ndarray
    background: list[str]
    crops: np.ndarray | None = None


def make_rng(rng: np.random.Generator | torch.Generator | int | None) -> np.random.Generator:
    """A numpy generator from a seed (int), a numpy generator (used as is) or a torch generator (one draw)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, torch.Generator):
        return np.random.default_rng(int(torch.randint(0, 2**62, (), generator=rng)))
    if rng is None or (isinstance(rng, int | np.integer) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise KineposeError(f"rng: expected an int seed, numpy or torch Generator, got {type(rng).__name__}")


# -------------------------------------------------------------------------------------------------- checks
def _check_pose(skeleton: Skeleton, joints_world: Any, global_rotmat: Any) -> tuple[np.ndarray, np.ndarray]:
    J = skeleton.num_joints
    x = np.asarray(joints_world.detach().cpu() if isinstance(joints_world, torch.Tensor) else joints_world, np.float64)
    if x.shape != (J, 3):
        raise KineposeError(f"joints_world: expected shape ({J}, 3) for skeleton {skeleton.name!r}, got {x.shape}")
    if not np.isfinite(x).all():
        raise KineposeError("joints_world: contains NaN or infinite values")
    G = global_rotmat.detach().cpu() if isinstance(global_rotmat, torch.Tensor) else global_rotmat
    G = np.asarray(G, np.float64)
    if G.shape != (J, 3, 3):
        raise KineposeError(f"global_rotmat: expected shape ({J}, 3, 3) for skeleton {skeleton.name!r}, got {G.shape}")
    if not np.isfinite(G).all():
        raise KineposeError("global_rotmat: contains NaN or infinite values")
    return x, G


def _check_camera(camera: Any, config: RenderConfig) -> None:
    if not isinstance(camera, Camera):
        raise KineposeError(f"camera: expected a kinepose Camera, got {type(camera).__name__}")
    if camera.batch_shape != ():
        raise KineposeError(f"camera: expected a single camera (batch shape ()), got {camera.batch_shape}")
    if (camera.width, camera.height) != config.image_size:
        raise KineposeError(
            f"camera: image size {(camera.width, camera.height)} differs from config.image_size {config.image_size}"
        )
    if bool((camera.dist != 0).any()):
        raise KineposeError("camera: lens distortion is not supported by the renderer (dist must be zero)")


# ------------------------------------------------------------------------------------------------ backgrounds
def _upsample(grid: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear resize of ``(gh, gw, 3)`` to ``(h, w, 3)``."""
    gh, gw = grid.shape[:2]
    ys = np.linspace(0, gh - 1, h)
    xs = np.linspace(0, gw - 1, w)
    y0 = np.minimum(ys.astype(int), gh - 2)
    x0 = np.minimum(xs.astype(int), gw - 2)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bot = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bot * fy


def _background(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    c0, c1 = rng.random(3), rng.random(3)
    angle = rng.uniform(0, 2 * math.pi)
    if kind == "flat":
        return np.broadcast_to(c0, (h, w, 3)).copy()
    yy, xx = np.mgrid[0:h, 0:w]
    s = (math.cos(angle) * xx / w + math.sin(angle) * yy / h)[..., None]
    if kind == "gradient":
        s = (s - s.min()) / max(float(s.max() - s.min()), 1e-9)
        return c0 * (1 - s) + c1 * s
    if kind == "stripes":
        period = rng.uniform(4, 24) / max(h, w)
        m = (np.sin(2 * math.pi * s / period) > 0).astype(np.float64)
        return c0 * (1 - m) + c1 * m
    cells = int(rng.integers(3, 17))
    grid = rng.random((cells + 1, cells + 1, 3))
    fine = rng.random((h, w, 3))
    return 0.85 * _upsample(grid, h, w) + 0.15 * fine


# --------------------------------------------------------------------------------------------------- occluders
def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def _random_occluder(rng: np.random.Generator, config: RenderConfig, xc: np.ndarray, cam: dict) -> Occluder:
    """An occluder in front of a random joint (pixel jitter, a fraction of its depth), sized in image widths."""
    kind = config.occluder_kinds[int(rng.integers(len(config.occluder_kinds)))]
    j = int(rng.integers(len(xc)))
    depth = max(float(xc[j, 2]), 0.05) * rng.uniform(0.3, 0.85)
    jitter = rng.uniform(-0.15, 0.15, 2) * cam["width"]
    u = cam["fx"] * xc[j, 0] / max(xc[j, 2], NEAR) + cam["cx"] + jitter[0]
    v = cam["fy"] * xc[j, 1] / max(xc[j, 2], NEAR) + cam["cy"] + jitter[1]
    center_cam = np.array([(u - cam["cx"]) / cam["fx"] * depth, (v - cam["cy"]) / cam["fy"] * depth, depth])
    radius = 0.5 * rng.uniform(*config.occluder_size) * cam["width"] * depth / cam["fx"]
    rot_cam = _random_rotation(rng)
    if kind == "disc":  # mostly facing the camera
        tilt = _random_rotation(rng)
        rot_cam = 0.7 * np.eye(3) + 0.3 * tilt
        rot_cam, _ = np.linalg.qr(rot_cam)
    size = radius if kind != "box" else radius * rng.uniform(0.4, 1.0, 3)
    color = rng.random(3)
    R, t = cam["R"], cam["t"]
    return Occluder(kind, R.T @ (center_cam - t), size, R.T @ rot_cam, color)


def _occluder_primitive(occ: Occluder, R: np.ndarray, t: np.ndarray) -> Primitive:
    c = R @ occ.center + t
    M = R @ occ.rotation
    if occ.kind == "sphere":
        return Primitive("sphere", c, np.full(3, occ.size[0]), occ.color, _OCC)
    if occ.kind == "disc":
        r = occ.size[0]
        return Primitive("ellipsoid", c, np.array([r, r, 0.04 * r]), occ.color, _OCC, M)
    return Primitive("box", c, occ.size, occ.color, _OCC, M)


# ----------------------------------------------------------------------------------------------------- render
def _camera_numbers(camera: Camera) -> dict:
    return {
        "fx": float(camera.fx),
        "fy": float(camera.fy),
        "cx": float(camera.cx),
        "cy": float(camera.cy),
        "width": camera.width,
        "height": camera.height,
        "R": camera.R.detach().cpu().double().numpy(),
        "t": camera.t.detach().cpu().double().numpy(),
    }


def _light(rng: np.random.Generator, config: RenderConfig) -> tuple[np.ndarray, float, float]:
    cone = math.radians(rng.uniform(*config.light_cone_deg))
    az = rng.uniform(0, 2 * math.pi)
    # towards the camera is -z in the camera frame; tilt by ``cone`` around it
    light = np.array([math.sin(cone) * math.cos(az), math.sin(cone) * math.sin(az), -math.cos(cone)])
    return light, rng.uniform(*config.ambient), rng.uniform(*config.diffuse)


def render_pose(
    skeleton: Skeleton,
    joints_world: Any,
    global_rotmat: Any,
    camera: Camera,
    rng: np.random.Generator | torch.Generator | int | None = 0,
    config: RenderConfig | None = None,
    *,
    appearance: Appearance | None = None,
    occluders: list[Occluder] | None = None,
    crop_windows: Any = None,
    crop_size: int = 64,
) -> tuple[np.ndarray, RenderLabels]:
    """Render one posed subject seen by ``camera``.

    Args:
        skeleton: the skeleton (``humanoid`` and ``hand21`` get detailed bodies, others a capsule per bone).
        joints_world: ``(J, 3)`` world joint positions, metres (tensor or array).
        global_rotmat: ``(J, 3, 3)`` global joint rotations (as :func:`~kinepose.kinematics.fk.forward_kinematics`).
        camera: one undistorted :class:`~kinepose.geometry.cameras.Camera` of size ``config.image_size``.
        rng: seed, numpy or torch generator; everything random (appearance, background, light, occluder) comes
            from it in a fixed order.
        config: the :class:`RenderConfig` (default ``RenderConfig()``).
        appearance: a fixed subject appearance (see :func:`~kinepose.render.body.sample_appearance`); default
            one drawn from ``rng``.
        occluders: explicit occluders (world frame) replacing the random one; ``[]`` for none.
        crop_windows: optional ``(K, 3)`` squares ``(u, v, side)`` in pixels of this image (centre, side; pixel
            centres at integers, as :func:`~kinepose.geometry.crops.crop_boxes` gives them). Each is rendered again
            at ``crop_size x crop_size`` through :func:`~kinepose.geometry.crops.crop_camera`: the same scene
            (subject, light, occluder), its background resampled from this image's, the same pixel noise, as if it
            were cut from a higher-resolution picture. They come back in ``labels.crops``.

    Returns:
        ``image`` ``(H, W, 3)`` uint8 and its :class:`RenderLabels`.
    """
    config = RenderConfig() if config is None else config
    if not isinstance(config, RenderConfig):
        raise KineposeError(f"config: expected a RenderConfig, got {type(config).__name__}")
    x, G = _check_pose(skeleton, joints_world, global_rotmat)
    _check_camera(camera, config)
    gen = make_rng(rng)
    cam = _camera_numbers(camera)
    R, t = cam["R"], cam["t"]
    W, H = config.image_size
    ss = config.supersample
    # draws in a fixed order: appearance, background, light, occluder, noise
    ap = sample_appearance(gen, config) if appearance is None else appearance
    bg_kind = config.backgrounds[int(gen.integers(len(config.backgrounds)))]
    background = _background(bg_kind, H * ss, W * ss, gen)
    light, ambient, diffuse = _light(gen, config)
    xc = x @ R.T + t  # (J, 3) camera frame
    has_occ = gen.random() < config.occluder_prob
    if occluders is None:
        occluders = [_random_occluder(gen, config, xc, cam)] if has_occ else []
    canvas = Canvas(
        cam["fx"] * ss, cam["fy"] * ss, (cam["cx"] + 0.5) * ss - 0.5, (cam["cy"] + 0.5) * ss - 0.5, W * ss, H * ss,
        light, ambient, diffuse,
    )  # fmt: skip
    parts = body_primitives(skeleton, x, G, ap)
    prims = [
        Primitive(
            p.kind, R @ p.center + t, p.radii, p.color, p.part, R @ p.axes, None if p.end is None else R @ p.end + t,
            p.tone,
        )
        for p in (bp.prim for bp in parts)
    ]  # fmt: skip
    for occ in occluders:
        if not isinstance(occ, Occluder):
            raise KineposeError(f"occluders: expected Occluder objects, got {type(occ).__name__}")
        prims.append(_occluder_primitive(occ, R, t))
    pids = canvas.draw_all(prims)
    owners: list[set[int]] = [set() for _ in range(skeleton.num_joints)]
    for bp, pid in zip(parts, pids, strict=False):
        for j in bp.joints:
            owners[j].add(pid)
    mask = np.isfinite(canvas.depth)
    img = np.where(mask[..., None], canvas.color, background)
    if ss > 1:
        img = img.reshape(H, ss, W, ss, 3).mean(axis=(1, 3))
    img = img * 255.0
    if config.noise_std > 0:
        img = img + gen.normal(0.0, config.noise_std, img.shape)
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    crops = None
    if crop_windows is not None:
        crops = _render_crops(prims, background, camera, crop_windows, int(crop_size), ss, light, ambient, diffuse,
                              config, gen)  # fmt: skip

    # labels
    xt = torch.as_tensor(x, dtype=torch.float64)
    cam64 = camera if camera.dtype == torch.float64 else camera.to(dtype=torch.float64)
    uv = project(xt, cam64).numpy()
    pc = world_to_camera(xt, cam64).numpy()
    radius = joint_radii(skeleton, parts)
    vis = np.zeros(skeleton.num_joints, dtype=np.uint8)
    for j in range(skeleton.num_joints):
        if pc[j, 2] <= NEAR:
            continue
        col, row = int(np.rint(uv[j, 0])), int(np.rint(uv[j, 1]))
        if not (0 <= col < W and 0 <= row < H):
            continue
        ci, cj = row * ss + ss // 2, col * ss + ss // 2
        front, zf = int(canvas.prim[ci, cj]), float(canvas.depth[ci, cj])
        ok = front < 0 or front in owners[j] or zf >= pc[j, 2] - config.visibility_margin * radius[j]
        vis[j] = 1 if ok else 0
    part_map = canvas.part[ss // 2 :: ss, ss // 2 :: ss].copy()
    depth = canvas.depth[ss // 2 :: ss, ss // 2 :: ss].astype(np.float32)
    labels = RenderLabels(uv, pc, vis, camera, part_map, depth, bg_kind, list(occluders), crops)
    return image, labels


def _bilinear(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(H, W, C) sampled at the grid ``rows x cols`` (pixel centres at integers), bilinear, edges clamped."""
    H, W = image.shape[:2]
    r = np.clip(rows, 0, H - 1)
    c = np.clip(cols, 0, W - 1)
    r0, c0 = np.minimum(np.floor(r).astype(int), H - 2).clip(0), np.minimum(np.floor(c).astype(int), W - 2).clip(0)
    r1, c1 = np.minimum(r0 + 1, H - 1), np.minimum(c0 + 1, W - 1)
    fr, fc = (r - r0)[:, None, None], (c - c0)[None, :, None]
    top = image[r0][:, c0] * (1 - fc) + image[r0][:, c1] * fc
    bot = image[r1][:, c0] * (1 - fc) + image[r1][:, c1] * fc
    return top * (1 - fr) + bot * fr


def _render_crops(prims: list[Primitive], background: np.ndarray, camera: Camera, windows: Any, size: int, ss: int,
                  light: np.ndarray, ambient: float, diffuse: float, config: RenderConfig,
                  gen: np.random.Generator) -> np.ndarray:  # fmt: skip
    """(K, size, size, 3) uint8: the scene's primitives (camera frame) seen through each window's crop camera."""
    w = np.asarray(windows, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != 3 or not np.isfinite(w).all() or (w[:, 2] <= 0).any():
        raise KineposeError(f"crop_windows: expected (K, 3) finite (u, v, side) with side > 0, got shape {w.shape}")
    if isinstance(size, bool) or size < 1:
        raise KineposeError(f"crop_size: expected an int >= 1, got {size!r}")
    n = size * ss
    out = np.zeros((len(w), size, size, 3), np.uint8)
    for k, (u, v, side) in enumerate(w):
        cc = _camera_numbers(crop_camera(camera, (u, v), side, size))
        canvas = Canvas(cc["fx"] * ss, cc["fy"] * ss, (cc["cx"] + 0.5) * ss - 0.5, (cc["cy"] + 0.5) * ss - 0.5, n, n,
                        light, ambient, diffuse)  # fmt: skip
        canvas.draw_all(prims)
        # the background under the crop: canvas pixel p of the crop is image point u - side/2 + (p + 0.5) side / n,
        # which is pixel ((that + 0.5) * ss - 0.5) of the supersampled background
        p = (np.arange(n) + 0.5) * side / n
        gx = ((u - 0.5 * side + p) + 0.5) * ss - 0.5
        gy = ((v - 0.5 * side + p) + 0.5) * ss - 0.5
        under = _bilinear(background, gy, gx)  # numpy, not torch: this runs in forked render workers
        img = np.where(np.isfinite(canvas.depth)[..., None], canvas.color, under)
        if ss > 1:
            img = img.reshape(size, ss, size, ss, 3).mean(axis=(1, 3))
        img = img * 255.0
        if config.noise_std > 0:
            img = img + gen.normal(0.0, config.noise_std, img.shape)
        out[k] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out


def render_clip(
    skeleton: Skeleton,
    joints_world: Any,
    global_rotmat: Any,
    cameras: Camera,
    rng: np.random.Generator | torch.Generator | int | None = 0,
    config: RenderConfig | None = None,
    *,
    same_subject: bool = True,
    crop_windows: Any = None,
    crop_size: int = 64,
) -> tuple[np.ndarray, ClipLabels]:
    """Render ``T`` frames ``joints_world (T, J, 3)``, ``global_rotmat (T, J, 3, 3)``.

    ``cameras`` is one camera (all frames) or a batch ``(T,)`` (one per frame). With ``same_subject`` one appearance
    is drawn for the whole clip; background, light and occluder are drawn per frame. Frame ``i`` uses its own
    generator seeded from ``rng`` and ``i``, so frames can be rendered in any order or in parallel.
    ``crop_windows`` ``(T, K, 3)``: per frame, the crops of :func:`render_pose` (``labels.crops`` ``(T, K, S, S, 3)``).

    Returns:
        ``images`` ``(T, H, W, 3)`` uint8 and stacked :class:`ClipLabels`.
    """
    config = RenderConfig() if config is None else config
    x = np.asarray(joints_world.detach().cpu() if isinstance(joints_world, torch.Tensor) else joints_world, np.float64)
    G = global_rotmat.detach().cpu() if isinstance(global_rotmat, torch.Tensor) else global_rotmat
    G = np.asarray(G, np.float64)
    J = skeleton.num_joints
    if x.ndim != 3 or x.shape[1:] != (J, 3):
        raise KineposeError(f"joints_world: expected shape (T, {J}, 3), got {x.shape}")
    T = x.shape[0]
    if G.shape != (T, J, 3, 3):
        raise KineposeError(f"global_rotmat: expected shape ({T}, {J}, 3, 3), got {G.shape}")
    if not isinstance(cameras, Camera) or cameras.batch_shape not in ((), (T,)):
        got = cameras.batch_shape if isinstance(cameras, Camera) else type(cameras).__name__
        raise KineposeError(f"cameras: expected a Camera of batch shape () or ({T},), got {got}")
    base = make_rng(rng)
    seed = int(base.integers(0, 2**62))
    ap = sample_appearance(np.random.default_rng([seed, 2**32]), config) if same_subject else None
    images = np.zeros((T, config.image_size[1], config.image_size[0], 3), dtype=np.uint8)
    labels: list[RenderLabels] = []
    if crop_windows is not None and np.shape(crop_windows)[:1] != (T,):
        raise KineposeError(f"crop_windows: expected ({T}, K, 3), got shape {np.shape(crop_windows)}")
    for i in range(T):
        cam = cameras if cameras.batch_shape == () else cameras[i]
        images[i], lab = render_pose(skeleton, x[i], G[i], cam, np.random.default_rng([seed, i]), config, appearance=ap,
                                     crop_windows=None if crop_windows is None else crop_windows[i],
                                     crop_size=crop_size)  # fmt: skip
        labels.append(lab)
    cam_all = cameras if cameras.batch_shape == (T,) else Camera(
        fx=cameras.fx.expand(T), fy=cameras.fy.expand(T), cx=cameras.cx.expand(T), cy=cameras.cy.expand(T),
        R=cameras.R.expand(T, 3, 3), t=cameras.t.expand(T, 3), dist=cameras.dist.expand(T, 5),
        width=cameras.width, height=cameras.height,
    )  # fmt: skip
    return images, ClipLabels(
        joints_2d=np.stack([lab.joints_2d for lab in labels]) if T else np.zeros((0, J, 2)),
        joints_cam=np.stack([lab.joints_cam for lab in labels]) if T else np.zeros((0, J, 3)),
        visibility=np.stack([lab.visibility for lab in labels]) if T else np.zeros((0, J), np.uint8),
        camera=cam_all,
        part_map=np.stack([lab.part_map for lab in labels]) if T else np.zeros((0, *images.shape[1:3]), np.uint8),
        depth=np.stack([lab.depth for lab in labels]) if T else np.zeros((0, *images.shape[1:3]), np.float32),
        background=[lab.background for lab in labels],
        crops=None if crop_windows is None or not T else np.stack([lab.crops for lab in labels]),
    )
