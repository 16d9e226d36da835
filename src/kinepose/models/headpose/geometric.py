"""``headpose_geometric``: no learning, the classic rigid fit of the 468 FaceMesh points to a mean face.

The mean face is a training statistic: every training frame's landmarks, normalized (:func:`normalize_face`) and
rotated back into the head frame by its true rotation, averaged. A new frame's rotation is the Kabsch fit
(``roma.rigid_points_registration``, with scale) of that mean face onto its normalized landmarks, which are in the
camera's axes (x right, y down, z away: MediaPipe's weak perspective), so the fit is camera-from-head directly.
"""

from __future__ import annotations

import numpy as np
import torch

from kinepose.models.headpose.landmarks import normalize_face

__all__ = ["GeometricHeadPose"]


class GeometricHeadPose:
    """Kabsch fit to a mean face. ``mean_face``: ``(468, 3)`` in the head frame (normalized units)."""

    def __init__(self, mean_face: np.ndarray | None = None) -> None:
        self.mean_face = None if mean_face is None else np.asarray(mean_face, dtype=np.float64)

    def fit(self, face: np.ndarray, rotation: np.ndarray) -> GeometricHeadPose:
        """Mean face from ``(N, 468, 3)`` landmarks (NaN rows skipped) and their ``(N, 3, 3)`` true rotations."""
        face, rotation = np.asarray(face, dtype=np.float64), np.asarray(rotation, dtype=np.float64)
        if face.ndim != 3 or face.shape[1:] != (468, 3) or rotation.shape != (len(face), 3, 3):
            raise ValueError(f"face (N, 468, 3) and rotation (N, 3, 3) expected, got {face.shape} and {rotation.shape}")
        ok = np.isfinite(face).all(axis=(1, 2))
        if not ok.any():
            raise ValueError("face: no frame with landmarks to build the mean face from")
        f = normalize_face(face[ok])
        self.mean_face = np.einsum("nji,nkj->nki", rotation[ok], f).mean(0)  # R^T x per point
        return self

    def rotation(self, face: np.ndarray, K: np.ndarray | None = None) -> np.ndarray:
        """``(N, 468, 3)`` landmarks -> ``(N, 3, 3)`` camera-from-head rotations (NaN where no face).

        With ``K`` (``(3, 3)`` or ``(N, 3, 3)`` intrinsics, pixels) the fit is PnP instead (``cv2.solvePnP``,
        iterative from EPnP): the mean face's points onto the landmarks' pixel positions, MediaPipe's depth unused.
        """
        import roma

        if self.mean_face is None:
            raise ValueError("GeometricHeadPose: no mean face (call fit, or pass mean_face)")
        face = np.asarray(face, dtype=np.float64)
        ok = np.isfinite(face).all(axis=(1, 2))
        out = np.full((len(face), 3, 3), np.nan)
        if K is not None:
            return self._pnp(face, np.broadcast_to(np.asarray(K, dtype=np.float64), (len(face), 3, 3)), ok, out)
        if ok.any():
            y = torch.as_tensor(normalize_face(face[ok]))
            x = torch.as_tensor(self.mean_face).expand_as(y)
            R, _t, _s = roma.rigid_points_registration(x, y, compute_scaling=True)
            out[ok] = R.numpy()
        return out

    def _pnp(self, face: np.ndarray, K: np.ndarray, ok: np.ndarray, out: np.ndarray) -> np.ndarray:
        import cv2

        obj = np.ascontiguousarray(self.mean_face)
        for i in np.nonzero(ok)[0]:
            img = np.ascontiguousarray(face[i, :, :2])
            good, rvec, tvec = cv2.solvePnP(obj, img, K[i], None, flags=cv2.SOLVEPNP_EPNP)
            if good:
                good, rvec, tvec = cv2.solvePnP(obj, img, K[i], None, rvec, tvec, True, cv2.SOLVEPNP_ITERATIVE)
            if good:
                out[i] = cv2.Rodrigues(rvec)[0]
        return out

    def predict(self, face: np.ndarray, K: np.ndarray | None = None) -> np.ndarray:
        """``(N, 468, 3)`` -> ``(N, 3)`` yaw, pitch, roll radians (NaN where no face); ``K``: see :meth:`rotation`."""
        from kinepose.geometry.headpose import matrix_to_ypr

        R = self.rotation(face, K)
        out = np.full((len(R), 3), np.nan)
        ok = np.isfinite(R).all(axis=(1, 2))
        if ok.any():
            out[ok] = matrix_to_ypr(R[ok])
        return out
