"""The compiled core of analytic IK: one pose per loop iteration, scalar 3x3 algebra, no allocation.

:mod:`kinepose.kinematics.ik` turns a :class:`~kinepose.skeleton.Skeleton` into flat plan arrays
(:class:`IKPlanArrays`) once, and calls :func:`solve` on (N, J, 3) joint arrays. Numba compiles the
kernels on first use per dtype and caches the machine code next to this file (``cache=True``), so later
processes start in well under a second. Batches of at least ``PARALLEL_MIN`` poses run on all cores.

Rotation matrices act on column vectors; quaternions are w, x, y, z.
"""

from __future__ import annotations

import math

import numba
import numpy as np

# Solver codes (ik.py names them).
END, REST, KABSCH2, KABSCH3, TWO_BONE, HINGE, SWING, ANCHORED = range(8)
PARALLEL_MIN = 256
_STRAIGHT_SIN = 1e-4
_LIMIT_WEIGHT = 4.0
_LIMIT_SLACK = math.radians(10.0)

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def _in_parent(n, j, k, x, Gp, d, v):
    """d = x_k - x_j (world) and v = Gp^T d (the same vector in the parent's frame of joint j)."""
    for a in range(3):
        d[a] = x[n, k, a] - x[n, j, a]
    for a in range(3):
        v[a] = Gp[0, a] * d[0] + Gp[1, a] * d[1] + Gp[2, a] * d[2]


@_jit
def _copy33(src, dst):
    for i in range(3):
        for j in range(3):
            dst[i, j] = src[i, j]


@_jit
def _matmul(A, B, out):
    for i in range(3):
        for j in range(3):
            out[i, j] = A[i, 0] * B[0, j] + A[i, 1] * B[1, j] + A[i, 2] * B[2, j]


@_jit
def _rot_cs(ax, ay, az, c, s, out):
    """Rotation about the unit axis (ax, ay, az) by the angle whose cosine and sine are c and s."""
    t = 1.0 - c
    out[0, 0] = c + ax * ax * t
    out[0, 1] = ax * ay * t - az * s
    out[0, 2] = ax * az * t + ay * s
    out[1, 0] = ay * ax * t + az * s
    out[1, 1] = c + ay * ay * t
    out[1, 2] = ay * az * t - ax * s
    out[2, 0] = az * ax * t - ay * s
    out[2, 1] = az * ay * t + ax * s
    out[2, 2] = c + az * az * t


@_jit
def _rotvec(ax, ay, az, angle, out):
    """Rotation by ``angle`` about the unit axis (ax, ay, az) (Rodrigues)."""
    _rot_cs(ax, ay, az, math.cos(angle), math.sin(angle), out)


@_jit
def _shortest_arc(u, v, out):
    """Smallest rotation taking direction u to direction v (both non-zero 3-vectors)."""
    nu = math.sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2])
    nv = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    if not (nu > 0 and nv > 0):  # a point on top of its joint: no direction to turn to
        _quat_to_mat(1.0, 0.0, 0.0, 0.0, out)
        return
    ux, uy, uz = u[0] / nu, u[1] / nu, u[2] / nu
    vx, vy, vz = v[0] / nv, v[1] / nv, v[2] / nv
    w = 1.0 + ux * vx + uy * vy + uz * vz
    x, y, z = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
    if w < 1e-9:  # antiparallel: half turn about an axis orthogonal to u
        if abs(ux) < 0.9:
            x, y, z = 0.0, uz, -uy
        else:
            x, y, z = -uz, 0.0, ux
        w = 0.0
    n = math.sqrt(w * w + x * x + y * y + z * z)
    _quat_to_mat(w / n, x / n, y / n, z / n, out)


@_jit
def _quat_to_mat(w, x, y, z, out):
    out[0, 0] = 1 - 2 * (y * y + z * z)
    out[0, 1] = 2 * (x * y - w * z)
    out[0, 2] = 2 * (x * z + w * y)
    out[1, 0] = 2 * (x * y + w * z)
    out[1, 1] = 1 - 2 * (x * x + z * z)
    out[1, 2] = 2 * (y * z - w * x)
    out[2, 0] = 2 * (x * z - w * y)
    out[2, 1] = 2 * (y * z + w * x)
    out[2, 2] = 1 - 2 * (x * x + y * y)


@_jit
def _mat_to_quat(R, q):
    """Shepperd's method; canonical w >= 0."""
    t = R[0, 0] + R[1, 1] + R[2, 2]
    if t >= R[0, 0] and t >= R[1, 1] and t >= R[2, 2]:
        s = math.sqrt(max(1.0 + t, 0.0)) * 2.0
        w, x, y, z = 0.25 * s, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s
    elif R[0, 0] >= R[1, 1] and R[0, 0] >= R[2, 2]:
        s = math.sqrt(max(1.0 + R[0, 0] - R[1, 1] - R[2, 2], 0.0)) * 2.0
        w, x, y, z = (R[2, 1] - R[1, 2]) / s, 0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s
    elif R[1, 1] >= R[2, 2]:
        s = math.sqrt(max(1.0 - R[0, 0] + R[1, 1] - R[2, 2], 0.0)) * 2.0
        w, x, y, z = (R[0, 2] - R[2, 0]) / s, (R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s
    else:
        s = math.sqrt(max(1.0 - R[0, 0] - R[1, 1] + R[2, 2], 0.0)) * 2.0
        w, x, y, z = (R[1, 0] - R[0, 1]) / s, (R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s
    n = math.sqrt(w * w + x * x + y * y + z * z)
    if w < 0:
        n = -n
    q[0], q[1], q[2], q[3] = w / n, x / n, y / n, z / n


@_jit
def _polar3(M, out):
    """Rotation factor of the polar decomposition of M (det M > 0), scaled Newton iteration (Higham).
    Returns False if M is too close to singular, so the caller falls back to an SVD."""
    X = M.copy()
    for _ in range(40):
        c00 = X[1, 1] * X[2, 2] - X[1, 2] * X[2, 1]
        c01 = X[1, 2] * X[2, 0] - X[1, 0] * X[2, 2]
        c02 = X[1, 0] * X[2, 1] - X[1, 1] * X[2, 0]
        det = X[0, 0] * c00 + X[0, 1] * c01 + X[0, 2] * c02
        if not det > 1e-300:
            return False
        c10 = X[0, 2] * X[2, 1] - X[0, 1] * X[2, 2]
        c11 = X[0, 0] * X[2, 2] - X[0, 2] * X[2, 0]
        c12 = X[0, 1] * X[2, 0] - X[0, 0] * X[2, 1]
        c20 = X[0, 1] * X[1, 2] - X[0, 2] * X[1, 1]
        c21 = X[0, 2] * X[1, 0] - X[0, 0] * X[1, 2]
        c22 = X[0, 0] * X[1, 1] - X[0, 1] * X[1, 0]
        z = det ** (-1.0 / 3.0)
        a, b = 0.5 * z, 0.5 / (z * det)
        change = 0.0
        C = (c00, c01, c02, c10, c11, c12, c20, c21, c22)
        for i in range(3):
            for j in range(3):
                v = a * X[i, j] + b * C[3 * i + j]
                change += abs(v - X[i, j])
                X[i, j] = v
        if change < 1e-13:
            break
    _copy33(X, out)
    return True


@_jit
def _kabsch_svd(M, out):
    U, _, Vt = np.linalg.svd(M.astype(np.float64))
    d = np.linalg.det(U @ Vt)
    U[:, 2] *= 1.0 if d > 0 else -1.0
    R = U @ Vt
    for i in range(3):
        for j in range(3):
            out[i, j] = R[i, j]


@_jit
def _pose(n, x, valid, twist, free, use_free, clamp, parents, solver, tptr, tidx, trest, basis, axes, limits,
          tb_child, tb_grand, det_local, det_global, quat, G, det_frame, straight,
          M3, V3, q, gdet, hint, hinted):  # fmt: skip
    J = parents.shape[0]
    L, Gp, T1, T2 = M3[0], M3[1], M3[2], M3[3]
    d, v, u = V3[0], V3[1], V3[2]
    for j in range(J):
        gdet[j] = False  # global rotation determined in this frame
        hinted[j] = False  # a hinge angle left by a two-bone parent for a missing middle joint
    for j in range(J):
        p = parents[j]
        if p >= 0:
            for a in range(3):
                for b in range(3):
                    Gp[a, b] = G[n, p, a, b]
        else:
            for a in range(3):
                for b in range(3):
                    Gp[a, b] = 1.0 if a == b else 0.0
        parent_ok = p < 0 or gdet[p]
        s = solver[j]
        ok = False  # this joint's local rotation determined in this frame
        for a in range(3):
            for b in range(3):
                L[a, b] = 1.0 if a == b else 0.0
        t0, t1 = tptr[j], tptr[j + 1]
        if s == KABSCH2 or s == KABSCH3:
            nvalid = 0
            first = -1
            for t in range(t0, t1):
                if valid[n, tidx[t]]:
                    nvalid += 1
                    if first < 0:
                        first = t
            solved = False
            if valid[n, j] and nvalid >= 2:
                if s == KABSCH2:
                    # r_t = c1 e1 + c2 e2: the best Q = [G e1, G e2] is the polar factor of A = sum d c^T (3x2).
                    a00 = a01 = a10 = a11 = a20 = a21 = 0.0
                    for t in range(t0, t1):
                        k = tidx[t]
                        if not valid[n, k]:
                            continue
                        c1 = trest[t, 0] * basis[j, 0, 0] + trest[t, 1] * basis[j, 0, 1] + trest[t, 2] * basis[j, 0, 2]
                        c2 = trest[t, 0] * basis[j, 1, 0] + trest[t, 1] * basis[j, 1, 1] + trest[t, 2] * basis[j, 1, 2]
                        dx, dy, dz = x[n, k, 0] - x[n, j, 0], x[n, k, 1] - x[n, j, 1], x[n, k, 2] - x[n, j, 2]
                        a00 += dx * c1
                        a01 += dx * c2
                        a10 += dy * c1
                        a11 += dy * c2
                        a20 += dz * c1
                        a21 += dz * c2
                    b00 = a00 * a00 + a10 * a10 + a20 * a20
                    b01 = a00 * a01 + a10 * a11 + a20 * a21
                    b11 = a01 * a01 + a11 * a11 + a21 * a21
                    detb = b00 * b11 - b01 * b01
                    if detb > 1e-12 * (b00 + b11) ** 2 and detb > 0:
                        sq = math.sqrt(detb)
                        tt = math.sqrt(b00 + b11 + 2 * sq)
                        # (A^T A)^(-1/2) = adj(B + sI) / (s t)
                        i00, i01, i11 = (b11 + sq) / (sq * tt), -b01 / (sq * tt), (b00 + sq) / (sq * tt)
                        q1x, q1y, q1z = a00 * i00 + a01 * i01, a10 * i00 + a11 * i01, a20 * i00 + a21 * i01
                        q2x, q2y, q2z = a00 * i01 + a01 * i11, a10 * i01 + a11 * i11, a20 * i01 + a21 * i11
                        q3x, q3y, q3z = q1y * q2z - q1z * q2y, q1z * q2x - q1x * q2z, q1x * q2y - q1y * q2x
                        for a in range(3):  # G = q1 e1^T + q2 e2^T + q3 e3^T
                            e1, e2, e3 = basis[j, 0, a], basis[j, 1, a], basis[j, 2, a]
                            T1[0, a] = q1x * e1 + q2x * e2 + q3x * e3
                            T1[1, a] = q1y * e1 + q2y * e2 + q3y * e3
                            T1[2, a] = q1z * e1 + q2z * e2 + q3z * e3
                        solved = True
                else:
                    for a in range(3):
                        for b in range(3):
                            T2[a, b] = 0.0
                    for t in range(t0, t1):
                        k = tidx[t]
                        if not valid[n, k]:
                            continue
                        for a in range(3):
                            da = x[n, k, a] - x[n, j, a]
                            for b in range(3):
                                T2[a, b] += da * trest[t, b]
                    detm = (T2[0, 0] * (T2[1, 1] * T2[2, 2] - T2[1, 2] * T2[2, 1])
                            - T2[0, 1] * (T2[1, 0] * T2[2, 2] - T2[1, 2] * T2[2, 0])
                            + T2[0, 2] * (T2[1, 0] * T2[2, 1] - T2[1, 1] * T2[2, 0]))  # fmt: skip
                    scale = 0.0
                    for a in range(3):
                        for b in range(3):
                            scale += T2[a, b] * T2[a, b]
                    if nvalid >= 3 and detm > 1e-6 * scale**1.5:
                        solved = _polar3(T2, T1)
                    if not solved and scale > 0:
                        _kabsch_svd(T2, T1)
                        solved = True
                if solved:  # T1 is the global rotation; local = Gp^T T1
                    for a in range(3):
                        for b in range(3):
                            L[a, b] = Gp[0, a] * T1[0, b] + Gp[1, a] * T1[1, b] + Gp[2, a] * T1[2, b]
                    ok = parent_ok and nvalid == t1 - t0
                    gdet[j] = nvalid == t1 - t0
            if not solved and valid[n, j] and first >= 0:  # one usable child point: swing towards it
                k = tidx[first]
                _in_parent(n, j, k, x, Gp, d, v)
                for a in range(3):
                    u[a] = trest[first, a]
                _shortest_arc(u, v, L)
        elif s == ANCHORED:
            # the first target (a child with a bone of its own) exactly, then the twist about it that best
            # fits the points reached through zero-length children (which then take what is left)
            k = tidx[t0]
            if valid[n, j] and valid[n, k]:
                _in_parent(n, j, k, x, Gp, d, v)
                for a in range(3):
                    u[a] = trest[t0, a]
                nv = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
                if nv > 0:
                    _shortest_arc(u, v, T1)
                    nx, ny, nz = v[0] / nv, v[1] / nv, v[2] / nv
                    ss = cc = 0.0
                    for t in range(t0 + 1, t1):
                        k = tidx[t]
                        if not valid[n, k]:
                            continue
                        r0, r1, r2 = trest[t, 0], trest[t, 1], trest[t, 2]
                        px = T1[0, 0] * r0 + T1[0, 1] * r1 + T1[0, 2] * r2
                        py = T1[1, 0] * r0 + T1[1, 1] * r1 + T1[1, 2] * r2
                        pz = T1[2, 0] * r0 + T1[2, 1] * r1 + T1[2, 2] * r2
                        for a in range(3):
                            d[a] = x[n, k, a] - x[n, j, a]
                        qx = Gp[0, 0] * d[0] + Gp[1, 0] * d[1] + Gp[2, 0] * d[2]
                        qy = Gp[0, 1] * d[0] + Gp[1, 1] * d[1] + Gp[2, 1] * d[2]
                        qz = Gp[0, 2] * d[0] + Gp[1, 2] * d[1] + Gp[2, 2] * d[2]
                        pn, qn = px * nx + py * ny + pz * nz, qx * nx + qy * ny + qz * nz
                        px, py, pz = px - pn * nx, py - pn * ny, pz - pn * nz
                        qx, qy, qz = qx - qn * nx, qy - qn * ny, qz - qn * nz
                        ss += (py * qz - pz * qy) * nx + (pz * qx - px * qz) * ny + (px * qy - py * qx) * nz
                        cc += px * qx + py * qy + pz * qz
                    _rotvec(nx, ny, nz, math.atan2(ss, cc), T2)
                    _matmul(T2, T1, L)
        elif s == SWING:
            k = tidx[t0]
            if valid[n, j] and valid[n, k]:
                _in_parent(n, j, k, x, Gp, d, v)
                for a in range(3):
                    u[a] = trest[t0, a]
                nv = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
                if nv > 0:
                    _shortest_arc(u, v, T1)
                    nu = math.sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2])
                    _rotvec(u[0] / nu, u[1] / nu, u[2] / nu, twist[n, j], T2)  # twist about the rest bone
                    _matmul(T1, T2, L)
        elif s == HINGE:
            ax, ay, az = axes[j, 0], axes[j, 1], axes[j, 2]
            ss = cc = 0.0
            nvalid = 0
            if valid[n, j]:
                for t in range(t0, t1):
                    k = tidx[t]
                    if not valid[n, k]:
                        continue
                    nvalid += 1
                    _in_parent(n, j, k, x, Gp, d, v)
                    ux, uy, uz = trest[t, 0], trest[t, 1], trest[t, 2]
                    ua = ux * ax + uy * ay + uz * az
                    va = v[0] * ax + v[1] * ay + v[2] * az
                    ux, uy, uz = ux - ua * ax, uy - ua * ay, uz - ua * az
                    vx, vy, vz = v[0] - va * ax, v[1] - va * ay, v[2] - va * az
                    ss += (uy * vz - uz * vy) * ax + (uz * vx - ux * vz) * ay + (ux * vy - uy * vx) * az
                    cc += ux * vx + uy * vy + uz * vz
            if nvalid == 0 and hinted[j]:
                _rotvec(ax, ay, az, hint[j], L)
            if nvalid > 0:
                rr = math.sqrt(ss * ss + cc * cc)
                ct, st = (cc / rr, ss / rr) if rr > 0 else (1.0, 0.0)
                lo, hi = limits[j, 0], limits[j, 1]
                if clamp and (lo == lo or hi == hi):
                    theta = math.atan2(st, ct)
                    if (lo == lo and theta < lo) or (hi == hi and theta > hi):
                        theta = lo if lo == lo and theta < lo else hi
                        ct, st = math.cos(theta), math.sin(theta)
                _rot_cs(ax, ay, az, ct, st, L)
                ok = parent_ok and nvalid == t1 - t0
                gdet[j] = ok
        elif s == TWO_BONE:
            c, g = tb_child[j], tb_grand[j]
            if valid[n, j] and valid[n, c] and valid[n, g]:
                straight[n, j] = _two_bone(n, j, c, g, x, Gp, trest, tptr, axes, limits, clamp, L, T1, T2, d, v, u)
                ok = parent_ok and not straight[n, j]
                gdet[j] = not straight[n, j]
            elif valid[n, j] and valid[n, c]:
                _in_parent(n, j, c, x, Gp, d, v)
                for a in range(3):
                    u[a] = trest[t0, a]
                _shortest_arc(u, v, L)
            elif valid[n, j] and valid[n, g]:  # the middle joint is missing: bend it to the observed reach
                hint[c] = _two_bone_reach(n, j, c, g, x, Gp, trest, tptr, axes, limits, L, T1, d, v, u)
                hinted[c] = True
        elif s == REST:
            if use_free:
                _quat_to_mat(free[n, j, 0], free[n, j, 1], free[n, j, 2], free[n, j, 3], L)
        _matmul(Gp, L, T1)
        for a in range(3):
            for b in range(3):
                G[n, j, a, b] = T1[a, b]
        if s == END:
            quat[n, j, 0], quat[n, j, 1], quat[n, j, 2], quat[n, j, 3] = 1.0, 0.0, 0.0, 0.0
        else:
            _mat_to_quat(L, q)
            for a in range(4):
                quat[n, j, a] = q[a]
        det_frame[n, j] = ok and det_local[j]


@_jit
def _two_bone(n, j, c, g, x, Gp, trest, tptr, axes, limits, clamp, L, T1, T2, d1, d2, u2):
    """Ball joint j whose single child c is a hinge with child g. Writes L; returns True if straight."""
    o_c = trest[tptr[j]]
    o_g = trest[tptr[c]]
    for a in range(3):
        e1 = x[n, c, a] - x[n, j, a]
        e2 = x[n, g, a] - x[n, c, a]
        T1[0, a], T1[1, a] = e1, e2
    for a in range(3):
        d1[a] = Gp[0, a] * T1[0, 0] + Gp[1, a] * T1[0, 1] + Gp[2, a] * T1[0, 2]
        d2[a] = Gp[0, a] * T1[1, 0] + Gp[1, a] * T1[1, 1] + Gp[2, a] * T1[1, 2]
    n1 = math.sqrt(d1[0] ** 2 + d1[1] ** 2 + d1[2] ** 2)
    n2 = math.sqrt(d2[0] ** 2 + d2[1] ** 2 + d2[2] ** 2)
    den = max(n1 * n2, 1e-12)
    cos_phi = (d1[0] * d2[0] + d1[1] * d2[1] + d1[2] * d2[2]) / den
    cx, cy, cz = d1[1] * d2[2] - d1[2] * d2[1], d1[2] * d2[0] - d1[0] * d2[2], d1[0] * d2[1] - d1[1] * d2[0]
    sin_phi = math.sqrt(cx * cx + cy * cy + cz * cz) / den
    _shortest_arc(o_c, d1, T2)  # R1: the first bone onto its observed direction (shared by both solutions)
    if sin_phi < _STRAIGHT_SIN:
        _copy33(T2, L)
        return True
    ax, ay, az = axes[c, 0], axes[c, 1], axes[c, 2]
    # o_c . R_a(theta) o_g = A + B cos(theta) + C sin(theta) must equal |o_c||o_g| cos(phi).
    ag = ax * o_g[0] + ay * o_g[1] + az * o_g[2]
    par = (ax * ag, ay * ag, az * ag)
    A = o_c[0] * par[0] + o_c[1] * par[1] + o_c[2] * par[2]
    B = o_c[0] * (o_g[0] - par[0]) + o_c[1] * (o_g[1] - par[1]) + o_c[2] * (o_g[2] - par[2])
    xg = (ay * o_g[2] - az * o_g[1], az * o_g[0] - ax * o_g[2], ax * o_g[1] - ay * o_g[0])
    C = o_c[0] * xg[0] + o_c[1] * xg[1] + o_c[2] * xg[2]
    R0 = math.sqrt(B * B + C * C)
    ca, sa = B / R0, C / R0  # cos and sin of alpha = atan2(C, B)
    noc = math.sqrt(o_c[0] ** 2 + o_c[1] ** 2 + o_c[2] ** 2)
    nog = math.sqrt(o_g[0] ** 2 + o_g[1] ** 2 + o_g[2] ** 2)
    cd = min(1.0, max(-1.0, (noc * nog * cos_phi - A) / R0))  # cos(delta)
    sd = math.sqrt(max(0.0, 1.0 - cd * cd))
    lo, hi = limits[c, 0], limits[c, 1]
    has_limits = lo == lo or hi == hi
    best = 1e300
    for k in range(2):
        sign = 1.0 if k == 0 else -1.0
        ct, st = ca * cd - sign * sa * sd, sa * cd + sign * ca * sd  # theta = alpha +- delta
        viol = 0.0
        if has_limits:
            theta = math.atan2(st, ct)
            if lo == lo and theta < lo:
                viol += lo - theta
            if hi == hi and theta > hi:
                viol += theta - hi
        out = L if k == 0 else T1
        _swing_twist_bent(o_g, ax, ay, az, ct, st, T2, d1, d2, out, u2)
        tr = min(3.0, max(-1.0, out[0, 0] + out[1, 1] + out[2, 2]))
        # A small violation (noise, a capture slightly past the limit) is traded against a ball joint far
        # from rest, and then clamped by the hinge child; with limits enforced, a candidate more than
        # _LIMIT_SLACK outside them loses to one inside (positions cannot tell the two apart: the limit can).
        score = math.acos((tr - 1.0) / 2.0) + _LIMIT_WEIGHT * viol
        if clamp and viol > _LIMIT_SLACK:
            score += 1e3
        if k == 0:
            best = score
        elif score < best:
            _copy33(T1, L)
    return False


@_jit
def _swing_twist_bent(o_g, ax, ay, az, ct, st, R1, d1, d2, out, u2):
    """``R1`` (taking the first bone onto d1) followed by the twist about d1 that best matches d2 with the
    second bone at rest bent by the hinge angle (cos ``ct``, sin ``st``) about its axis. Writes ``out``."""
    t = 1.0 - ct
    # u2 = R_a(theta) o_g, then p = R1 u2
    r00, r01, r02 = ct + ax * ax * t, ax * ay * t - az * st, ax * az * t + ay * st
    r10, r11, r12 = ay * ax * t + az * st, ct + ay * ay * t, ay * az * t - ax * st
    r20, r21, r22 = az * ax * t - ay * st, az * ay * t + ax * st, ct + az * az * t
    u2[0] = r00 * o_g[0] + r01 * o_g[1] + r02 * o_g[2]
    u2[1] = r10 * o_g[0] + r11 * o_g[1] + r12 * o_g[2]
    u2[2] = r20 * o_g[0] + r21 * o_g[1] + r22 * o_g[2]
    pv = (R1[0, 0] * u2[0] + R1[0, 1] * u2[1] + R1[0, 2] * u2[2],
          R1[1, 0] * u2[0] + R1[1, 1] * u2[1] + R1[1, 2] * u2[2],
          R1[2, 0] * u2[0] + R1[2, 1] * u2[1] + R1[2, 2] * u2[2])  # fmt: skip
    n1 = math.sqrt(d1[0] ** 2 + d1[1] ** 2 + d1[2] ** 2)
    nx, ny, nz = d1[0] / n1, d1[1] / n1, d1[2] / n1
    pn = pv[0] * nx + pv[1] * ny + pv[2] * nz
    px, py, pz = pv[0] - pn * nx, pv[1] - pn * ny, pv[2] - pn * nz
    qn = d2[0] * nx + d2[1] * ny + d2[2] * nz
    qx, qy, qz = d2[0] - qn * nx, d2[1] - qn * ny, d2[2] - qn * nz
    sn = (py * qz - pz * qy) * nx + (pz * qx - px * qz) * ny + (px * qy - py * qx) * nz
    cs = px * qx + py * qy + pz * qz
    r = math.sqrt(sn * sn + cs * cs)
    c, s_ = (cs / r, sn / r) if r > 0 else (1.0, 0.0)  # cos and sin of the twist psi
    # out = R(n, psi) @ R1
    t = 1.0 - c
    r00, r01, r02 = c + nx * nx * t, nx * ny * t - nz * s_, nx * nz * t + ny * s_
    r10, r11, r12 = ny * nx * t + nz * s_, c + ny * ny * t, ny * nz * t - nx * s_
    r20, r21, r22 = nz * nx * t - ny * s_, nz * ny * t + nx * s_, c + nz * nz * t
    for b in range(3):
        t0, t1, t2 = R1[0, b], R1[1, b], R1[2, b]
        out[0, b] = r00 * t0 + r01 * t1 + r02 * t2
        out[1, b] = r10 * t0 + r11 * t1 + r12 * t2
        out[2, b] = r20 * t0 + r21 * t1 + r22 * t2


@_jit
def _two_bone_reach(n, j, c, g, x, Gp, trest, tptr, axes, limits, L, T, d, v, u):
    """Ball joint j of a two-bone limb whose middle joint c is missing: the hinge angle that gives the
    observed distance from j to g (inside the limits when one is), then the shortest arc taking the bent
    limb's rest vector onto the observed one (the twist about it is unknown). Writes L; returns the angle."""
    o_c = trest[tptr[j]]
    o_g = trest[tptr[c]]
    for a in range(3):
        d[a] = x[n, g, a] - x[n, j, a]
    for a in range(3):
        v[a] = Gp[0, a] * d[0] + Gp[1, a] * d[1] + Gp[2, a] * d[2]
    dist2 = v[0] * v[0] + v[1] * v[1] + v[2] * v[2]
    ax, ay, az = axes[c, 0], axes[c, 1], axes[c, 2]
    ag = ax * o_g[0] + ay * o_g[1] + az * o_g[2]
    A = o_c[0] * ax * ag + o_c[1] * ay * ag + o_c[2] * az * ag
    B = o_c[0] * (o_g[0] - ax * ag) + o_c[1] * (o_g[1] - ay * ag) + o_c[2] * (o_g[2] - az * ag)
    C = (o_c[0] * (ay * o_g[2] - az * o_g[1]) + o_c[1] * (az * o_g[0] - ax * o_g[2])
         + o_c[2] * (ax * o_g[1] - ay * o_g[0]))  # fmt: skip
    noc2 = o_c[0] ** 2 + o_c[1] ** 2 + o_c[2] ** 2
    nog2 = o_g[0] ** 2 + o_g[1] ** 2 + o_g[2] ** 2
    R0 = math.sqrt(B * B + C * C)
    target = (0.5 * (dist2 - noc2 - nog2) - A) / R0
    delta = math.acos(min(1.0, max(-1.0, target)))
    alpha = math.atan2(C, B)
    lo, hi = limits[c, 0], limits[c, 1]
    theta = (alpha + delta + math.pi) % (2 * math.pi) - math.pi
    other = (alpha - delta + math.pi) % (2 * math.pi) - math.pi
    if (lo == lo and theta < lo) or (hi == hi and theta > hi):
        theta = other
    if lo == lo and theta < lo:
        theta = lo
    if hi == hi and theta > hi:
        theta = hi
    _rotvec(ax, ay, az, theta, T)
    for a in range(3):
        u[a] = o_c[a] + T[a, 0] * o_g[0] + T[a, 1] * o_g[1] + T[a, 2] * o_g[2]
    _shortest_arc(u, v, L)
    return theta


@_jit
def _solve_serial(x, valid, twist, free, use_free, clamp, parents, solver, tptr, tidx, trest, basis, axes, limits,
                  tb_child, tb_grand, det_local, det_global, quat, G, det_frame, straight):  # fmt: skip
    M3, V3 = np.empty((5, 3, 3), np.float64), np.empty((3, 3), np.float64)  # scratch in float64 for any input
    q, gdet = np.empty(4, np.float64), np.zeros(parents.shape[0], np.bool_)
    hint, hinted = np.zeros(parents.shape[0], np.float64), np.zeros(parents.shape[0], np.bool_)
    for n in range(x.shape[0]):
        _pose(n, x, valid, twist, free, use_free, clamp, parents, solver, tptr, tidx, trest, basis, axes, limits,
              tb_child, tb_grand, det_local, det_global, quat, G, det_frame, straight,
              M3, V3, q, gdet, hint, hinted)  # fmt: skip


@numba.njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def _solve_parallel(x, valid, twist, free, use_free, clamp, parents, solver, tptr, tidx, trest, basis, axes, limits,
                    tb_child, tb_grand, det_local, det_global, quat, G, det_frame, straight, chunks):  # fmt: skip
    N = x.shape[0]
    size = (N + chunks - 1) // chunks
    for c in numba.prange(chunks):
        M3, V3 = np.empty((5, 3, 3), np.float64), np.empty((3, 3), np.float64)
        q, gdet = np.empty(4, np.float64), np.zeros(parents.shape[0], np.bool_)
        hint, hinted = np.zeros(parents.shape[0], np.float64), np.zeros(parents.shape[0], np.bool_)
        for n in range(c * size, min(N, (c + 1) * size)):
            _pose(n, x, valid, twist, free, use_free, clamp, parents, solver, tptr, tidx, trest, basis, axes, limits,
                  tb_child, tb_grand, det_local, det_global, quat, G, det_frame, straight,
                  M3, V3, q, gdet, hint, hinted)  # fmt: skip


def solve(
    plan,
    x: np.ndarray,
    valid: np.ndarray,
    twist: np.ndarray | None,
    free: np.ndarray | None,
    respect_limits: bool = True,
):
    """Run the kernel. ``x`` (N, J, 3) float32/float64 with missing joints set to 0 and ``valid`` (N, J) False
    there; ``twist`` (N, J) radians about each swing joint's rest bone; ``free`` (N, J, 4) rotations of joints
    that no point determines. Returns quat (N, J, 4), G (N, J, 3, 3), det_frame (N, J), straight (N, J)."""
    N, J = x.shape[:2]
    dt = x.dtype
    quat = np.empty((N, J, 4), dt)
    G = np.empty((N, J, 3, 3), dt)
    det_frame = np.zeros((N, J), np.bool_)
    straight = np.zeros((N, J), np.bool_)
    tw = np.zeros((N, J), dt) if twist is None else np.ascontiguousarray(twist, dtype=dt)
    fr = np.zeros((1, J, 4), dt) if free is None else np.ascontiguousarray(free, dtype=dt)
    args = (x, valid, tw, fr, free is not None, respect_limits, plan.parents, plan.solver, plan.tptr, plan.tidx,
            plan.trest, plan.basis, plan.axes, plan.limits,
            plan.tb_child, plan.tb_grand, plan.det_local, plan.det_global, quat, G, det_frame, straight)  # fmt: skip
    if N >= PARALLEL_MIN:
        _solve_parallel(*args, numba.get_num_threads() * 4)
    else:
        _solve_serial(*args)
    return quat, G, det_frame, straight
