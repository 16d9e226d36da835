"""A labelled set of synthetic heads: identities x sequences x frames, with exact yaw, pitch and roll.

Every sequence is one identity moving its head smoothly (a sum of two sinusoids per angle, clipped to the ranges)
in one scene (camera, background, light, clothes), so neighbouring frames look alike as in BIWI's videos: a random
frame split puts near-copies of a test frame in training, which :mod:`kinepose.data.splits` refuses by default.
Deterministic given the seed, whatever the number of workers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from kinepose.render.heads import FaceModel, render_head

__all__ = ["HeadSet", "head_trajectories", "load_head_set", "render_head_set"]

#: Default half-ranges, degrees: yaw, pitch, roll (BIWI spans about +-75, +-60, +-50; 300W-LP +-90 yaw).
RANGES_DEG = (75.0, 40.0, 30.0)


@dataclass
class HeadSet:
    """Rendered heads and their labels.

    Attributes:
        images: ``(N, S, S, 3)`` uint8 RGB.
        ypr: ``(N, 3)`` radians, :mod:`kinepose.geometry.headpose`'s convention.
        rotation: ``(N, 3, 3)`` camera from head.
        identity: ``(N,)`` index into :attr:`identities`; sequence: ``(N,)`` global sequence id; frame: ``(N,)``.
        landmarks: ``(N, 468, 2)`` projected mesh vertices (the exact 2D landmarks), pixels.
        K: ``(N, 3, 3)`` intrinsics; occluded: ``(N,)`` bool.
        identities: identity names.
    """

    images: np.ndarray
    ypr: np.ndarray
    rotation: np.ndarray
    identity: np.ndarray
    sequence: np.ndarray
    frame: np.ndarray
    landmarks: np.ndarray
    K: np.ndarray
    occluded: np.ndarray
    identities: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, idx: np.ndarray) -> HeadSet:
        """The frames ``idx`` (an index array or boolean mask)."""
        keys = ("images", "ypr", "rotation", "identity", "sequence", "frame", "landmarks", "K", "occluded")
        return HeadSet(**{k: getattr(self, k)[idx] for k in keys}, identities=list(self.identities))

    def save(self, path: str | os.PathLike) -> None:
        """Atomic ``.npz``."""
        from kinepose._atomic import atomic_write

        payload = {k: v for k, v in self.__dict__.items() if k != "identities"}
        payload["identities"] = np.array(self.identities)
        atomic_write(path, lambda f: np.savez(f, **payload), binary=True)


def load_head_set(path: str | os.PathLike) -> HeadSet:
    """Read :meth:`HeadSet.save`'s file."""
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    d["identities"] = [str(s) for s in d["identities"]]
    return HeadSet(**d)


def head_trajectories(rng: np.random.Generator, sequences: int, frames: int,
                      ranges_deg: tuple[float, float, float] = RANGES_DEG) -> np.ndarray:  # fmt: skip
    """Smooth head motions, ``(sequences, frames, 3)`` radians: an offset and two sinusoids per angle, clipped."""
    half = np.radians(np.asarray(ranges_deg, dtype=np.float64))  # (3,)
    tt = np.linspace(0.0, 1.0, frames)[None, :, None]  # (1, T, 1)
    c = rng.uniform(-0.4, 0.4, (sequences, 1, 3))
    out = c.copy()
    for _ in range(2):
        amp = rng.uniform(0.2, 0.7, (sequences, 1, 3))
        w = 2 * np.pi * rng.uniform(0.3, 1.5, (sequences, 1, 3))
        out = out + amp * np.sin(w * tt + rng.uniform(0, 2 * np.pi, (sequences, 1, 3)))
    return np.clip(out, -1.0, 1.0) * half


def _render_sequence(job: tuple) -> dict:
    face, ident, seq, ypr, size, seed, occlusion = job
    from kinepose.geometry.headpose import ypr_to_matrix

    Rs = ypr_to_matrix(ypr)  # (T, 3, 3)
    out = {k: [] for k in ("images", "landmarks", "K", "occluded")}
    for f in range(len(ypr)):
        scene = np.random.default_rng([seed, ident, seq, 0])  # the same scene for every frame of the sequence
        h = render_head(face, Rs[f], np.random.default_rng([seed, ident, seq, 1, f]), size, occlusion, scene)
        out["images"].append(h.image)
        out["landmarks"].append(h.landmarks.astype(np.float32))
        out["K"].append(h.K)
        out["occluded"].append(h.occluded)
    return {k: np.stack(v) for k, v in out.items()} | {"rotation": Rs}


def render_head_set(faces: list[FaceModel], sequences: int = 8, frames: int = 40, size: int = 192, seed: int = 0,
                    ranges_deg: tuple[float, float, float] = RANGES_DEG, occlusion: float = 0.2, workers: int = 1,
                    progress: bool = False) -> HeadSet:  # fmt: skip
    """Render ``sequences`` sequences of ``frames`` frames for every identity.

    Args:
        faces: one :class:`FaceModel` per identity (:func:`kinepose.frontends.face.face_models_from_photos`).
        sequences: sequences per identity; frames: frames per sequence.
        size: image side, pixels.
        seed: everything random derives from it (and the identity, sequence and frame indices).
        ranges_deg: half-ranges of yaw, pitch and roll, degrees.
        occlusion: probability of an occluder per frame.
        workers: processes (fork); the result does not depend on it.
        progress: a progress bar over sequences.
    """
    if not faces:
        raise ValueError("faces: need at least one FaceModel")
    if sequences < 1 or frames < 1:
        raise ValueError(f"sequences and frames must be >= 1, got {sequences} and {frames}")
    jobs = []
    for i, face in enumerate(faces):
        traj = head_trajectories(np.random.default_rng([seed, i, 99]), sequences, frames, ranges_deg)
        jobs += [(face, i, s, traj[s], size, seed, occlusion) for s in range(sequences)]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), unit="seq", desc="heads", disable=not progress, leave=False)
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            parts = []
            for part in pool.imap(_render_sequence, jobs):
                parts.append(part)
                bar.update(1)
    else:
        parts = []
        for job in jobs:
            parts.append(_render_sequence(job))
            bar.update(1)
    bar.close()
    ypr = np.concatenate([j[3] for j in jobs])
    ident = np.concatenate([np.full(frames, j[1]) for j in jobs])
    seq = np.concatenate([np.full(frames, k) for k in range(len(jobs))])
    frame = np.tile(np.arange(frames), len(jobs))
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return HeadSet(cat["images"], ypr, cat["rotation"], ident, seq, frame, cat["landmarks"], cat["K"],
                   cat["occluded"], [f.name for f in faces])  # fmt: skip
