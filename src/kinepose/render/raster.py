"""Analytic ray casting of solid primitives into a z-buffer (numpy, CPU).

Every primitive is given in the OpenCV camera frame (``x`` right, ``y`` down, ``z`` forward, metres). A pixel
``(row i, column j)`` is the ray through ``(u, v) = (j, i)`` (pixel centres at integer coordinates, as OpenCV),
``d = ((u - cx) / fx, (v - cy) / fy, 1)``; the ray parameter along ``d`` is therefore the depth ``z``. For each
primitive only the pixels of its projected bounding box are cast, with closed-form intersections (sphere,
ellipsoid, capsule, oriented box); all primitives of a kind go through one vectorized pass over all their pixels,
then the nearest hit per pixel wins (z-buffer) and only the winners are shaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Canvas", "Primitive"]

#: Hits nearer than this depth (metres) are discarded (the near plane).
NEAR = 1e-3
_CUBE = np.array([[sx, sy, sz] for sx in (-1.0, 1.0) for sy in (-1.0, 1.0) for sz in (-1.0, 1.0)])


@dataclass
class Primitive:
    """One solid in the camera frame.

    Attributes:
        kind: ``"sphere"``, ``"ellipsoid"``, ``"capsule"`` or ``"box"``.
        center: ``(3,)`` centre (sphere, ellipsoid, box) or first end point (capsule).
        radii: ``(3,)`` semi-axes (ellipsoid), half extents (box); ``[r, r, r]`` for sphere and capsule.
        axes: ``(3, 3)`` rotation whose columns are the local axes (ellipsoid, box); unused otherwise.
        end: ``(3,)`` second end point (capsule only).
        color: ``(3,)`` RGB in ``[0, 1]``.
        part: part id written to the part map where this primitive is front-most.
        tone: optional two-tone rule ``(axis, threshold, color2, part2)``: pixels whose hit point has local
            normalized coordinate ``q[axis] > threshold`` (ellipsoid/box local frame, ``q`` in ``[-1, 1]``) get
            ``color2`` and ``part2``.
    """

    kind: str
    center: np.ndarray
    radii: np.ndarray
    color: np.ndarray
    part: int
    axes: np.ndarray = field(default_factory=lambda: np.eye(3))
    end: np.ndarray | None = None
    tone: tuple[int, float, np.ndarray, int] | None = None

    def bounding_sphere(self) -> tuple[np.ndarray, float]:
        """Centre and radius of a sphere enclosing the primitive."""
        if self.kind == "capsule":
            assert self.end is not None
            return (self.center + self.end) / 2, float(np.linalg.norm(self.end - self.center) / 2 + self.radii[0])
        if self.kind == "box":
            return self.center, float(np.linalg.norm(self.radii))
        return self.center, float(np.max(self.radii))


class Canvas:
    """A z-buffer with colour, part and primitive-id buffers for one pinhole camera (no distortion).

    Args:
        fx, fy, cx, cy: intrinsics in pixels.
        width, height: image size in pixels.
        light: ``(3,)`` unit vector towards the light, camera frame.
        ambient, diffuse: shading ``color * (ambient + diffuse * max(0, n . light))``.
    """

    def __init__(
        self,
        fx: float,
        fy: float,
        cx: float,
        cy: float,
        width: int,
        height: int,
        light: np.ndarray,
        ambient: float,
        diffuse: float,
    ) -> None:
        self.fx, self.fy, self.cx, self.cy = float(fx), float(fy), float(cx), float(cy)
        self.width, self.height = int(width), int(height)
        self.dx = (np.arange(self.width, dtype=np.float64) - self.cx) / self.fx  # (W,)
        self.dy = (np.arange(self.height, dtype=np.float64) - self.cy) / self.fy  # (H,)
        self.depth = np.full((self.height, self.width), np.inf)
        self.color = np.zeros((self.height, self.width, 3))
        self.part = np.zeros((self.height, self.width), dtype=np.uint8)
        self.prim = np.full((self.height, self.width), -1, dtype=np.int32)
        self.light = np.asarray(light, dtype=np.float64)
        self.ambient, self.diffuse = float(ambient), float(diffuse)
        self._count = 0

    # ------------------------------------------------------------------------------------------------ bounds
    def _bboxes(self, prims: list[Primitive]) -> list[tuple[int, int, int, int] | None]:
        """Pixel box ``(i0, i1, j0, j1)`` (half-open) of each primitive, None when off screen.

        The box bounds the projection of a cube around the primitive's bounding sphere (for a capsule, of the
        cubes around its two end spheres); a primitive crossing the near plane gets the whole image.
        """
        out: list[tuple[int, int, int, int] | None] = [None] * len(prims)
        corners, front = [], []
        for k, prim in enumerate(prims):
            c, r = prim.bounding_sphere()
            if c[2] + r <= NEAR:
                continue
            if c[2] - r <= NEAR:
                out[k] = (0, self.height, 0, self.width)
                continue
            if prim.kind == "capsule":
                rc = float(prim.radii[0])
                corners.append(np.concatenate([prim.center + rc * _CUBE, prim.end + rc * _CUBE]))
            else:
                corners.append(np.concatenate([c + r * _CUBE, c + r * _CUBE]))
            front.append(k)
        if not front:
            return out
        pts = np.stack(corners)  # (K, 16, 3)
        u = self.fx * pts[..., 0] / pts[..., 2] + self.cx
        v = self.fy * pts[..., 1] / pts[..., 2] + self.cy
        j0 = np.maximum(np.floor(u.min(1)), 0).astype(int)
        j1 = np.minimum(np.ceil(u.max(1)) + 1, self.width).astype(int)
        i0 = np.maximum(np.floor(v.min(1)), 0).astype(int)
        i1 = np.minimum(np.ceil(v.max(1)) + 1, self.height).astype(int)
        for n, k in enumerate(front):
            if j0[n] < j1[n] and i0[n] < i1[n]:
                out[k] = (int(i0[n]), int(i1[n]), int(j0[n]), int(j1[n]))
        return out

    # ------------------------------------------------------------------------------------------------ draw
    def draw(self, prim: Primitive) -> int:
        """Cast one primitive into the buffers; returns its primitive id (its index in drawing order)."""
        return self.draw_all([prim])[0]

    def draw_all(self, prims: list[Primitive]) -> list[int]:
        """Cast several primitives at once (vectorized over all their pixels, per kind); returns their ids.

        The result equals drawing them one by one: the nearest surface wins, ties go to the earlier primitive.
        """
        first = self._count
        self._count += len(prims)
        ids = list(range(first, self._count))
        groups: dict[str, list[tuple[int, tuple[int, int, int, int]]]] = {}
        for k, box in enumerate(self._bboxes(prims)):
            if box is not None:
                groups.setdefault(prims[k].kind, []).append((k, box))
        if not groups:
            return ids
        W = self.width
        pix_l, z_l, own_l = [], [], []
        batches: dict[str, _Batch] = {}
        for kind, items in groups.items():
            if kind == "box":  # occluders only: one at a time
                for k, (i0, i1, j0, j1) in items:
                    shape = (i1 - i0, j1 - j0)
                    dx = np.broadcast_to(self.dx[None, j0:j1], shape)
                    dy = np.broadcast_to(self.dy[i0:i1, None], shape)
                    z = _box_depth(prims[k], dx, dy).ravel()
                    rows, cols = np.divmod(np.arange(z.size), shape[1])
                    pix_l.append((rows + i0) * W + cols + j0)
                    z_l.append(z)
                    own_l.append(np.full(z.size, k))
                continue
            rows_l, cols_l, kk_l = [], [], []
            for n, (_, (i0, i1, j0, j1)) in enumerate(items):
                h, w = i1 - i0, j1 - j0
                rows_l.append(np.repeat(np.arange(i0, i1), w))
                cols_l.append(np.tile(np.arange(j0, j1), h))
                kk_l.append(np.full(h * w, n))
            rows, cols, kk = np.concatenate(rows_l), np.concatenate(cols_l), np.concatenate(kk_l)
            batch = batches[kind] = _Batch(kind, [prims[k] for k, _ in items])
            z = batch.depth(kk, self.dx[cols], self.dy[rows])
            pix_l.append(rows * W + cols)
            z_l.append(z)
            own_l.append(np.asarray([k for k, _ in items])[kk])
        pix, z, own = np.concatenate(pix_l), np.concatenate(z_l), np.concatenate(own_l)
        flat_depth = self.depth.reshape(-1)
        keep = (z > NEAR) & (z < flat_depth[pix])
        pix, z, own = pix[keep], z[keep], own[keep]
        if len(pix) == 0:
            return ids
        order = np.lexsort((own, z, pix))
        ps = pix[order]
        lead = np.ones(len(ps), dtype=bool)
        lead[1:] = ps[1:] != ps[:-1]
        win = order[lead]
        pix, z, own = pix[win], z[win], own[win]
        rows, cols = np.divmod(pix, W)
        dx, dy = self.dx[cols], self.dy[rows]
        color = np.zeros((len(pix), 3))
        part = np.zeros(len(pix), dtype=np.uint8)
        for kind, items in groups.items():
            ks = np.asarray([k for k, _ in items])
            local = np.full(len(prims), -1)
            local[ks] = np.arange(len(ks))
            sel = np.nonzero(local[own] >= 0)[0]
            if len(sel) == 0:
                continue
            kk = local[own[sel]]
            if kind == "box":
                n = np.zeros((len(sel), 3))
                q = np.zeros((len(sel), 3))
                for m in np.unique(kk):
                    s = kk == m
                    n[s], q[s] = _box_surface(prims[ks[m]], z[sel][s], dx[sel][s], dy[sel][s])
            else:
                n, q = batches[kind].surface(kk, z[sel], dx[sel], dy[sel])
            shade = self.ambient + self.diffuse * np.clip(np.einsum("ni,i->n", n, self.light), 0.0, None)
            base = np.stack([prims[k].color for k in ks])[kk]
            pt = np.asarray([prims[k].part for k in ks], dtype=np.uint8)[kk]
            if q is not None:
                for m, k in enumerate(ks):
                    tone = prims[k].tone
                    if tone is None:
                        continue
                    axis, thr, color2, part2 = tone
                    alt = (kk == m) & (q[:, axis] > thr)
                    base[alt] = color2
                    pt[alt] = part2
            color[sel] = base * shade[:, None]
            part[sel] = pt
        flat_depth[pix] = z
        self.color.reshape(-1, 3)[pix] = color
        self.part.reshape(-1)[pix] = part
        self.prim.reshape(-1)[pix] = own + first
        return ids


class _Batch:
    """Parameters of several primitives of one kind, gathered per pixel entry by primitive index ``kk``."""

    def __init__(self, kind: str, prims: list[Primitive]) -> None:
        self.kind = kind
        c = np.stack([p.center for p in prims])  # (K, 3)
        r = np.stack([p.radii for p in prims])  # (K, 3)
        self.c, self.r = c, r
        if kind == "capsule":
            b = np.stack([p.end for p in prims])  # type: ignore[misc]
            ba = b - c
            L = np.linalg.norm(ba, axis=-1)
            u = ba / np.maximum(L, 1e-12)[:, None]
            au = np.einsum("ki,ki->k", c, u)
            self.b, self.L, self.u, self.au = b, L, u, au
            self.a_perp = c - au[:, None] * u
            r0 = r[:, 0]
            self.C = np.einsum("ki,ki->k", self.a_perp, self.a_perp) - r0 * r0
            self.ca = np.einsum("ki,ki->k", c, c) - r0 * r0
            self.cb = np.einsum("ki,ki->k", b, b) - r0 * r0
        elif kind == "ellipsoid":
            axes = np.stack([p.axes for p in prims])  # (K, 3, 3)
            A = axes.transpose(0, 2, 1) / r[:, :, None]  # world -> unit-sphere local
            self.axes, self.A = axes, A
            self.g = np.einsum("kij,kj->ki", A, c)
            self.gg = np.einsum("ki,ki->k", self.g, self.g) - 1.0
        elif kind == "sphere":
            self.cc = np.einsum("ki,ki->k", c, c) - r[:, 0] ** 2

    def _e(self, kk: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        A = self.A[kk]
        return dx[:, None] * A[:, :, 0] + dy[:, None] * A[:, :, 1] + A[:, :, 2]

    def depth(self, kk: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """Depth of the front hit of the ray ``(dx, dy, 1)`` on primitive ``kk`` per entry (inf where missed)."""
        dd = dx * dx + dy * dy + 1.0
        if self.kind == "sphere":
            c = self.c[kk]
            return _front_root(dd, dx * c[:, 0] + dy * c[:, 1] + c[:, 2], self.cc[kk])
        if self.kind == "ellipsoid":
            e = self._e(kk, dx, dy)
            return _front_root(np.einsum("ni,ni->n", e, e), np.einsum("ni,ni->n", e, self.g[kk]), self.gg[kk])
        u, ap = self.u[kk], self.a_perp[kk]
        du = dx * u[:, 0] + dy * u[:, 1] + u[:, 2]
        B = dx * ap[:, 0] + dy * ap[:, 1] + ap[:, 2]
        z = _front_root(np.maximum(dd - du * du, 1e-12), B, self.C[kk])
        fin = np.isfinite(z)
        y = np.where(fin, z, 0.0) * du - self.au[kk]
        for cap, cc, side in ((self.c, self.ca, fin & (y < 0)), (self.b, self.cb, fin & (y > self.L[kk]))):
            if side.any():
                k2 = kk[side]
                c = cap[k2]
                x2, y2 = dx[side], dy[side]
                z[side] = _front_root(dd[side], x2 * c[:, 0] + y2 * c[:, 1] + c[:, 2], cc[k2])
        return z

    def surface(self, kk: np.ndarray, z: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> Surface:
        """Unit normals ``(N, 3)`` and local coordinates (ellipsoids) or None at the hits."""
        p = _points(z, dx, dy)
        if self.kind == "sphere":
            return (p - self.c[kk]) / self.r[kk, :1], None
        if self.kind == "ellipsoid":
            q = z[:, None] * self._e(kk, dx, dy) - self.g[kk]
            n = np.einsum("nj,nij->ni", q / self.r[kk], self.axes[kk])
            n /= np.linalg.norm(n, axis=-1, keepdims=True) + 1e-12
            return n, q
        a, u = self.c[kk], self.u[kk]
        h = np.clip(np.einsum("ni,ni->n", p - a, u), 0.0, self.L[kk])
        return (p - a - h[:, None] * u) / self.r[kk, :1], None


# ---------------------------------------------------------------------------------------------------- solvers
Surface = tuple[np.ndarray, np.ndarray | None]


def _front_root(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Smaller root of ``a z^2 - 2 b z + c = 0`` (inf where none)."""
    disc = b * b - a * c
    ok = disc >= 0
    z = np.full(disc.shape, np.inf)
    z[ok] = (b[ok] - np.sqrt(disc[ok])) / a[ok]
    return z


def _points(z: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return np.stack([z * dx, z * dy, z], axis=-1)


def _box_slabs(prim: Primitive, dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    M, s = prim.axes, prim.radii
    e = dx[..., None] * M[0] + dy[..., None] * M[1] + M[2]  # M^T d
    g = M.T @ prim.center
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (g - s) / e
        t2 = (g + s) / e
    tmin = np.minimum(t1, t2)
    tmin = np.where(np.isnan(tmin), -np.inf, tmin)
    tmax = np.where(np.isnan(np.maximum(t1, t2)), np.inf, np.maximum(t1, t2))
    return e, tmin, tmax


def _box_depth(prim: Primitive, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    _, tmin, tmax = _box_slabs(prim, dx, dy)
    near, far = tmin.max(-1), tmax.min(-1)
    return np.where((near <= far) & (near > NEAR), near, np.inf)


def _box_surface(prim: Primitive, z: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> Surface:
    e, tmin, _ = _box_slabs(prim, dx, dy)
    k = tmin.argmax(-1)
    sign = -np.sign(np.take_along_axis(e, k[:, None], -1))[:, 0]
    n_local = np.zeros((len(z), 3))
    n_local[np.arange(len(z)), k] = sign
    q = (z[:, None] * e - prim.axes.T @ prim.center) / prim.radii
    return n_local @ prim.axes.T, q
