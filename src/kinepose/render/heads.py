"""Synthetic heads at exact poses from real faces, as 300W-LP was made from 300W.

MediaPipe FaceMesh fitted to a real photo gives 468 points in 3D (:mod:`kinepose.frontends.face`); the photo is
their texture. :func:`face_model` puts them in the head frame of :mod:`kinepose.geometry.headpose` (an anatomical
frame built from the landmarks themselves: eye, mouth and cheek pairs give the left axis, forehead to chin the down
axis), in metres, and triangulates them. :func:`render_head` rotates that textured mesh by an exact rotation and
draws it with OpenCV (painter's order, back faces culled, the texture mapped back from the photo by barycentric
coordinates, Lambert shading relative to the photo's own, so a frontal render reproduces the photo) on top of a
hair ellipsoid, a neck and shoulders (which do not turn with the head), a random background, light, colour, noise,
blur and occluders. Deterministic given the generator.

What it cannot show: the texture of the side of a head seen frontally in the photo is stretched at large yaw, and
ears and hair are an ellipsoid; the same limits 300W-LP has.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FaceModel", "HeadRender", "face_model", "head_frame", "render_head"]

#: Symmetric landmark pairs (subject's left, subject's right): outer and inner eye corners, mouth corners, cheeks.
LEFT_RIGHT_PAIRS = ((263, 33), (362, 133), (291, 61), (454, 234))
#: Forehead top and chin, the down axis.
FOREHEAD, CHIN = 10, 152
#: Adult outer-eye-corner distance, metres: the scale of each face.
EYE_CORNERS_M = 0.090
#: Rotation centre in the landmarks' centroid frame, metres (down, back into the head).
PIVOT = np.array([0.0, 0.03, 0.085])


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # comes with mediapipe (opencv-contrib-python)
        raise ImportError(f"OpenCV is not installed ({exc}): pip install 'kinepose[mediapipe]'") from exc
    return cv2


def head_frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The head's axes and centroid from FaceMesh landmarks.

    Args:
        landmarks: ``(468, 3)`` in any right-handed frame with x right, y down, z away from the camera (FaceMesh's
            pixels, or metres).

    Returns:
        ``R (3, 3)`` whose columns are the head's x (subject's left), y (down) and z (into the head) axes in that
        frame, and the centroid ``(3,)``.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (468, 3):
        raise ValueError(f"landmarks: expected (468, 3) FaceMesh points, got {lm.shape}")
    x = sum(lm[a] - lm[b] for a, b in LEFT_RIGHT_PAIRS)
    x = x / np.linalg.norm(x)
    y = lm[CHIN] - lm[FOREHEAD]
    y = y - (y @ x) * x
    y = y / np.linalg.norm(y)
    return np.stack([x, y, np.cross(x, y)], axis=1), lm.mean(axis=0)


@dataclass(frozen=True)
class FaceModel:
    """A textured face mesh in the head frame.

    Attributes:
        name: identity.
        vertices: ``(468, 3)`` metres, head frame (origin at the rotation centre).
        uv: ``(468, 2)`` pixel coordinates of each vertex in :attr:`texture`.
        texture: ``(H, W, 3)`` uint8 RGB, the photo cropped around the face.
        triangles: ``(F, 3)`` vertex indices, counter-clockwise seen from the front.
        source_rotation: ``(3, 3)`` the head's rotation in the photo (MediaPipe's weak-perspective axes).
        skin: ``(3,)`` RGB in [0, 1]; hair: ``(3,)`` RGB in [0, 1].
    """

    name: str
    vertices: np.ndarray
    uv: np.ndarray
    texture: np.ndarray
    triangles: np.ndarray
    source_rotation: np.ndarray
    skin: np.ndarray
    hair: np.ndarray


def _patch_color(img: np.ndarray, xy: np.ndarray, r: int) -> np.ndarray:
    h, w = img.shape[:2]
    x, y = int(np.clip(xy[0], r, w - r - 1)), int(np.clip(xy[1], r, h - r - 1))
    return np.median(img[y - r : y + r + 1, x - r : x + r + 1].reshape(-1, 3), axis=0) / 255.0


def face_model(name: str, photo: np.ndarray, landmarks: np.ndarray) -> FaceModel:
    """Build a :class:`FaceModel` from a photo and FaceMesh's landmarks on it.

    Args:
        name: identity.
        photo: ``(H, W, 3)`` uint8 RGB.
        landmarks: ``(468, 3)`` FaceMesh pixels (x, y, and z scaled by the width).
    """
    from scipy.spatial import Delaunay

    lm = np.asarray(landmarks, dtype=np.float64)
    R, centroid = head_frame(lm)
    scale = EYE_CORNERS_M / np.linalg.norm(lm[263] - lm[33])
    verts = scale * (lm - centroid) @ R - PIVOT  # (468, 3) head frame
    tri = Delaunay(verts[:, :2]).simplices.astype(np.int64)
    a, b, c = verts[tri[:, 0]], verts[tri[:, 1]], verts[tri[:, 2]]
    flip = np.cross(b - a, c - a)[:, 2] > 0  # the front faces the camera (-z): normals must point to -z
    tri[flip] = tri[flip][:, [0, 2, 1]]
    # crop the photo around the face (1.6 x its box) to keep the model small
    lo, hi = lm[:, :2].min(0), lm[:, :2].max(0)
    half = 0.8 * (hi - lo).max()
    mid = (lo + hi) / 2
    x0, y0 = np.maximum(np.floor(mid - half).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(mid + half).astype(int), [photo.shape[1], photo.shape[0]])
    tex = np.ascontiguousarray(photo[y0:y1, x0:x1])
    uv = lm[:, :2] - [x0, y0]
    skin = _patch_color(tex, uv[[50, 280]].mean(0), 3)  # cheeks
    up = uv[FOREHEAD] + 0.18 * (uv[FOREHEAD] - uv[CHIN])
    hair = _patch_color(tex, up, 3)
    return FaceModel(name, verts, uv, tex, tri, R, skin, hair)


@dataclass
class HeadRender:
    """One rendered head.

    Attributes:
        image: ``(S, S, 3)`` uint8 RGB.
        landmarks: ``(468, 2)`` the mesh's vertices projected, pixels.
        visible: ``(468,)`` bool, the vertex lies on a triangle facing the camera.
        K: ``(3, 3)`` camera intrinsics; t: ``(3,)`` the head's rotation centre in the camera, metres.
        occluded: an occluder was drawn over the face.
    """

    image: np.ndarray
    landmarks: np.ndarray
    visible: np.ndarray
    K: np.ndarray
    t: np.ndarray
    occluded: bool


def _project(X: np.ndarray, K: np.ndarray) -> np.ndarray:
    return (X[:, :2] / X[:, 2:3]) * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]


def _fibonacci(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    phi, th = np.arccos(1 - 2 * i / n), np.pi * (1 + 5**0.5) * i
    return np.stack([np.cos(th) * np.sin(phi), np.sin(th) * np.sin(phi), np.cos(phi)], axis=1)


_SPHERE = _fibonacci(240)


def _background(rng: np.random.Generator, s: int) -> np.ndarray:
    cv2 = _cv2()
    c0, c1 = rng.random(3), rng.random(3)
    yy, xx = np.mgrid[0:s, 0:s] / s
    a = rng.uniform(0, 2 * np.pi)
    m = (np.cos(a) * xx + np.sin(a) * yy)[..., None]
    img = c0 * (1 - (m - m.min()) / np.ptp(m)) + c1 * (m - m.min()) / np.ptp(m)
    blobs = cv2.resize(rng.random((int(rng.integers(3, 12)),) * 2 + (3,)), (s, s), interpolation=cv2.INTER_CUBIC)
    img = 0.7 * img + 0.3 * np.clip(blobs, 0, 1)
    for _ in range(int(rng.integers(0, 4))):  # furniture-like rectangles
        p, q = rng.integers(0, s, 2), rng.integers(0, s, 2)
        cv2.rectangle(img, tuple(int(v) for v in p), tuple(int(v) for v in q), rng.random(3).tolist(), -1)
    return img


def render_head(face: FaceModel, R: np.ndarray, rng: np.random.Generator, size: int = 256,
                occlusion: float = 0.25, scene: np.random.Generator | None = None) -> HeadRender:  # fmt: skip
    """Draw ``face`` rotated by ``R`` (camera from head, column vectors).

    Args:
        face: the identity.
        R: ``(3, 3)`` the head's rotation in the camera (OpenCV axes); identity = looking into the camera.
        rng: per-image randomness (noise, occluder, jitter).
        size: image side, pixels.
        occlusion: probability of an occluder over the face.
        scene: randomness of the scene (camera, background, light, clothes); ``rng`` if None. Frames of one
            sequence share it, so they look alike, as the frames of a video do.
    """
    cv2 = _cv2()
    R = np.asarray(R, dtype=np.float64)
    if R.shape != (3, 3):
        raise ValueError(f"R: expected a (3, 3) rotation matrix, got shape {R.shape}")
    if not np.allclose(R.T @ R, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0:
        raise ValueError(f"R: not a rotation matrix (R^T R != I or det {np.linalg.det(R):.3g} != 1)")
    sc = rng if scene is None else scene
    s = int(size)
    f = s * sc.uniform(1.6, 2.4)
    d = f * 0.24 / (s * sc.uniform(0.5, 0.62))
    K = np.array([[f, 0, s / 2], [0, f, s / 2], [0, 0, 1.0]])
    t = np.array([sc.normal(0, 0.01), (0.40 * s - s / 2) * d / f + sc.normal(0, 0.005), d])
    light = sc.normal(size=3) + np.array([0.0, 0.0, 1.5])
    light /= np.linalg.norm(light)
    ambient = sc.uniform(0.35, 0.65)
    img = _background(sc, s)
    shirt = sc.random(3)

    def px(P):  # camera points -> int pixel polygon
        return np.round(_project(np.atleast_2d(P), K)).astype(np.int32)

    # shoulders and neck (the torso does not turn with the head)
    base = t + np.array([0.0, 0.075, 0.01])
    torso = np.array([[-0.20, 0.10, 0], [-0.15, 0.065, 0], [0.15, 0.065, 0], [0.20, 0.10, 0], [0.25, 0.5, 0],
                      [-0.25, 0.5, 0]]) + base  # fmt: skip
    cv2.fillConvexPoly(img, px(torso), (shirt * sc.uniform(0.6, 1.0)).tolist())
    neck = np.array([[-0.05, -0.08, 0.02], [0.05, -0.08, 0.02], [0.055, 0.08, 0.02], [-0.055, 0.08, 0.02]]) + base
    cv2.fillConvexPoly(img, px(neck), (face.skin * 0.8).tolist())
    # hair / back of the head: an ellipsoid turning with the head
    hair = face.hair if sc.random() < 0.8 else face.skin
    ell = (_SPHERE * [0.078, 0.098, 0.100] + [0, -0.052, 0.005]) @ R.T + t
    cv2.fillConvexPoly(img, cv2.convexHull(px(ell)), (hair * sc.uniform(0.7, 1.0)).tolist())
    # the face mesh
    X = face.vertices @ R.T + t  # (468, 3)
    uvp = _project(X, K)
    tri = face.triangles
    a, b, c = X[tri[:, 0]], X[tri[:, 1]], X[tri[:, 2]]
    n = np.cross(b - a, c - a)
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    front = np.einsum("fi,fi->f", n, (a + b + c) / 3) < 0
    order = np.nonzero(front)[0]
    order = order[np.argsort(-(a[order, 2] + b[order, 2] + c[order, 2]))]  # far first
    ids = np.full((s, s), -1, np.int32)
    P = np.round(uvp * 16).astype(np.int32)  # 4 fractional bits
    for k in order:
        cv2.fillConvexPoly(ids, P[tri[k]], int(k), lineType=cv2.LINE_8, shift=4)
    ys, xs = np.nonzero(ids >= 0)
    k = ids[ys, xs]
    A, B, C = uvp[tri[k, 0]], uvp[tri[k, 1]], uvp[tri[k, 2]]
    e1, e2, q = B - A, C - A, np.stack([xs, ys], 1) - A
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    det = np.where(np.abs(det) < 1e-9, 1e-9, det)
    l1 = np.clip((q[:, 0] * e2[:, 1] - q[:, 1] * e2[:, 0]) / det, 0, 1)
    l2 = np.clip((e1[:, 0] * q[:, 1] - e1[:, 1] * q[:, 0]) / det, 0, 1 - l1)
    l0 = 1 - l1 - l2
    src = l0[:, None] * face.uv[tri[k, 0]] + l1[:, None] * face.uv[tri[k, 1]] + l2[:, None] * face.uv[tri[k, 2]]
    mapx = np.full((s, s), -1.0, np.float32)
    mapy = np.full((s, s), -1.0, np.float32)
    mapx[ys, xs], mapy[ys, xs] = src[:, 0], src[:, 1]
    tex = cv2.remap(face.texture, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) / 255.0
    # Lambert shading relative to the frontal light the photo already has
    n_head = n @ R  # normals in the head frame
    lit = ambient + (1 - ambient) * np.maximum(0.0, -(n @ light))
    lit0 = ambient + (1 - ambient) * np.maximum(0.0, -n_head[:, 2])
    shade = np.clip(lit / np.maximum(lit0, 0.2), 0.35, 1.6)
    img[ys, xs] = tex[ys, xs] * shade[k, None]
    visible = np.zeros(468, bool)
    visible[tri[front].ravel()] = True
    # occluder: a hand, a cup, a microphone...
    occluded = bool(rng.random() < occlusion) and bool(visible.any())
    if occluded:
        vis = np.nonzero(visible)[0]
        cx, cy = uvp[vis[int(rng.integers(len(vis)))]]
        fw = float(np.ptp(uvp[visible, 0])) if visible.any() else s * 0.2
        ax = (int(fw * rng.uniform(0.12, 0.3)), int(fw * rng.uniform(0.12, 0.3)))
        col = rng.random(3).tolist()
        if rng.random() < 0.5:
            cv2.ellipse(img, (int(cx), int(cy)), ax, float(rng.uniform(0, 180)), 0, 360, col, -1)
        else:
            cv2.rectangle(img, (int(cx - ax[0]), int(cy - ax[1])), (int(cx + ax[0]), int(cy + ax[1])), col, -1)
    # camera: colour gains, noise, sometimes blur
    img = img * rng.uniform(0.85, 1.15, 3) + rng.uniform(-0.05, 0.05)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (3, 3), 0)
    img = img + rng.normal(0, rng.uniform(0, 0.02), img.shape)
    image = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    return HeadRender(image, uvp, visible, K, t, occluded)
