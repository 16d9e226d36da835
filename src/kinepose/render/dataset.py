"""Labelled image sets rendered from motion clips: :func:`render_motion_set`, :class:`RenderedSet` (saved as ``.npz``).

Each clip is seen ``views`` times; a view is ``frames_per_view`` consecutive frames (1: a single frame) from one
random camera that frames them, with one subject appearance, so sequence models get real clips and single-frame
models independent views. ``perturb_deg`` rotates chosen joints (e.g. the neck and ankles, which joint positions
cannot determine) by a random rotation per view, so a training set covers more of their range than the clips do;
labels are recomputed by forward kinematics, so images and labels always agree.

Everything random comes from ``seed``; views are rendered in ``workers`` processes and come out in the same order
for any number of workers.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields, replace
from multiprocessing import get_context

import numpy as np
import torch
from tqdm.auto import tqdm

from kinepose._atomic import atomic_write
from kinepose._progress import progress_enabled
from kinepose.errors import KineposeError
from kinepose.geometry.cameras import Camera, project
from kinepose.geometry.crops import crop_boxes
from kinepose.geometry.rotations import axis_angle_to_quat, quat_multiply, quat_normalize
from kinepose.kinematics.fk import forward_kinematics
from kinepose.render.config import RenderConfig
from kinepose.render.renderer import render_clip
from kinepose.render.views import camera_ranges_for
from kinepose.skeleton import Skeleton

__all__ = ["RenderedSet", "load_rendered_set", "render_motion_set"]


@dataclass
class RenderedSet:
    """``N`` rendered images and their labels (camera frame: OpenCV, metres).

    Attributes:
        skeleton: name of the skeleton preset.
        images: ``(N, H, W, 3)`` uint8.
        joints_cam: ``(N, J, 3)`` float32 camera-frame joints.
        joints_2d: ``(N, J, 2)`` float32 pixels.
        visibility: ``(N, J)`` uint8.
        local_quat: ``(N, J, 4)`` float32 w,x,y,z local rotations; the root's relative to the world.
        global_cam: ``(N, J, 3, 3)`` float32 global rotations in the camera frame (``R_cam @ G_world``).
        offsets: ``(N, J, 3)`` float32 rest offsets of the subject (bone lengths may differ per clip).
        K: ``(N, 3, 3)`` float32 intrinsics; ``R`` ``(N, 3, 3)``, ``t`` ``(N, 3)`` world-to-camera.
        clip: ``(N,)`` clip names; ``frame``: ``(N,)`` frame index in the clip; ``view``: ``(N,)`` view index
            (frames of one view share camera and subject, in order).
        crops: ``(N, K, S, S, 3)`` uint8 crops around ``K`` joints rendered at their own resolution (the ``crops``
            of :func:`render_motion_set`), or None.
    """

    skeleton: str
    images: np.ndarray
    joints_cam: np.ndarray
    joints_2d: np.ndarray
    visibility: np.ndarray
    local_quat: np.ndarray
    global_cam: np.ndarray
    offsets: np.ndarray
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    clip: np.ndarray
    frame: np.ndarray
    view: np.ndarray
    crops: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def save(self, path: str | os.PathLike) -> None:
        """Write every field to one ``.npz`` (atomic: a failed write leaves no partial file)."""
        arrays = {f.name: np.asarray(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None}
        atomic_write(path, lambda fh: np.savez(fh, **arrays), binary=True)

    def subset(self, index: np.ndarray) -> RenderedSet:
        """The images at ``index`` (an int array or a boolean mask) and their labels."""
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        return RenderedSet(**{k: (v if k == "skeleton" or v is None else v[index]) for k, v in kw.items()})


def load_rendered_set(path: str | os.PathLike) -> RenderedSet:
    """Read a set written by :meth:`RenderedSet.save`; a clear error for a file that is not one."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as exc:
        raise KineposeError(f"{path}: not a readable rendered set ({type(exc).__name__}: {exc})") from exc
    missing = [f.name for f in fields(RenderedSet) if f.name not in data and f.name != "crops"]
    if missing:
        raise KineposeError(f"{path}: not a rendered set, missing {', '.join(missing)}")
    data["skeleton"] = str(data["skeleton"])
    return RenderedSet(**data)


def _perturb(local: torch.Tensor, joints: list[int], deg: float, rng: np.random.Generator) -> torch.Tensor:
    """(T, J, 4) local rotations, ``joints`` turned by one random rotation each (angle ~ N(0, deg) per axis)."""
    if not joints or deg <= 0:
        return local
    aa = torch.as_tensor(rng.normal(0.0, math.radians(deg), (len(joints), 3)), dtype=local.dtype)
    out = local.clone()
    out[:, joints] = quat_normalize(quat_multiply(local[:, joints], axis_angle_to_quat(aa)[None]))  # (T, k, 4)
    return out


def _one_thread() -> None:
    """In a forked worker: torch runs inline (a parent's OpenMP pool does not survive the fork)."""
    torch.set_num_threads(1)


def _render_job(job: tuple) -> dict:
    skeleton, local, root, offsets, name, first, seed, config, fill, view_id, perturb, perturb_deg, crops = job
    rng = np.random.default_rng(seed)
    local = _perturb(local, perturb, perturb_deg, rng)
    fk = forward_kinematics(skeleton, local, root, offsets=offsets)
    x, G = fk.positions, fk.global_rotmat  # (T, J, 3), (T, J, 3, 3)
    T = x.shape[0]
    extent = max(float((x.amax(dim=(0, 1)) - x.amin(dim=(0, 1))).max()), 0.1)
    per_frame = float((x.amax(dim=1) - x.amin(dim=1)).max())
    ranges = camera_ranges_for(max(per_frame, 0.1), config.image_size, fill=fill)
    # the camera looks at the view's centre and is far enough back for its whole motion
    d_lo, d_hi = ranges.distance_m
    scale = max(1.0, extent / max(per_frame, 0.1))
    ranges = replace(ranges, distance_m=(d_lo * scale, d_hi * scale))
    center = x.mean(dim=(0, 1))[None]
    tg = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
    cam: Camera = ranges.sample(1, center, generator=tg, dtype=torch.float64)[0]
    windows = None
    if crops is not None:  # (T, K, 3) squares around the crop joints, as crop_boxes cuts them from the image
        joints, scale, _ = crops
        uv = project(x, cam)  # (T, J, 2)
        windows = np.zeros((T, len(joints), 3))
        for k, (j, extend) in enumerate(joints):
            c, side = crop_boxes(uv, skeleton.parents, scale, [j], extend=extend)
            windows[:, k, :2], windows[:, k, 2] = c[:, 0].numpy(), side.numpy()
    images, lab = render_clip(skeleton, x, G, cam, int(rng.integers(0, 2**62)), config, crop_windows=windows,
                              crop_size=crops[2] if crops else 64)  # fmt: skip
    R = cam.R.double()
    K = np.array([[float(cam.fx), 0, float(cam.cx)], [0, float(cam.fy), float(cam.cy)], [0, 0, 1]])
    return {
        "images": images,
        "joints_cam": lab.joints_cam.astype(np.float32),
        "joints_2d": lab.joints_2d.astype(np.float32),
        "visibility": lab.visibility,
        "local_quat": local.float().numpy(),
        "global_cam": (R @ G.double()).float().numpy(),
        "offsets": np.broadcast_to(offsets.float().numpy(), (T, *offsets.shape)).copy(),
        "K": np.broadcast_to(K.astype(np.float32), (T, 3, 3)).copy(),
        "R": np.broadcast_to(R.float().numpy(), (T, 3, 3)).copy(),
        "t": np.broadcast_to(cam.t.float().numpy(), (T, 3)).copy(),
        "clip": np.array([name] * T),
        "frame": np.arange(first, first + T),
        "view": np.full(T, view_id),
        **({} if lab.crops is None else {"crops": lab.crops}),
    }


def render_motion_set(
    skeleton: Skeleton,
    clips: dict,
    views: int,
    *,
    frames_per_view: int = 1,
    config: RenderConfig | None = None,
    seed: int = 0,
    fill: tuple[float, float] = (0.55, 0.85),
    perturb: tuple[str, ...] = (),
    perturb_deg: float = 0.0,
    workers: int = 1,
    progress: bool = True,
    desc: str = "render",
    crops: dict[str, float] | None = None,
    crop_size: int = 64,
    crop_scale: float = 0.3,
) -> RenderedSet:
    """Render ``views`` views of every clip (see the module docstring).

    Args:
        skeleton: the skeleton of every clip.
        clips: name -> :class:`~kinepose.data.motion.Motion` on ``skeleton`` (its own offsets: the subject's).
        views: views per clip.
        frames_per_view: consecutive frames per view (1 for independent single frames; at most the clip's length).
        config: the :class:`RenderConfig`.
        seed: everything random (frames, cameras, appearance, perturbations) comes from it.
        fill: fraction of the image's smaller side one frame of the subject spans.
        perturb: names of joints whose local rotation gets a random extra turn per view; ``perturb_deg`` its std.
        workers: processes (fork) rendering views in parallel; the result does not depend on it.
        crops: joint name -> ``extend``: per image, a ``crop_size`` square around each such joint is rendered again
            at its own resolution (:func:`~kinepose.render.renderer.render_pose`'s ``crop_windows``), where
            :func:`~kinepose.geometry.crops.crop_boxes` (``crop_scale``, ``extend``) puts it in the image; in
            ``RenderedSet.crops``. The images themselves do not change.
    """
    config = RenderConfig() if config is None else config
    if int(views) != views or views < 1:
        raise KineposeError(f"views: expected an int >= 1, got {views!r}")
    if int(frames_per_view) != frames_per_view or frames_per_view < 1:
        raise KineposeError(f"frames_per_view: expected an int >= 1, got {frames_per_view!r}")
    if not clips:
        raise KineposeError("clips: no clips to render")
    bad = [p for p in perturb if p not in skeleton.joint_names]
    if bad:
        raise KineposeError(f"perturb: joints {bad} are not in skeleton {skeleton.name!r}")
    pj = [skeleton.index(p) for p in perturb]
    crop_spec = None
    if crops:
        bad = [c for c in crops if c not in skeleton.joint_names]
        if bad:
            raise KineposeError(f"crops: joints {bad} are not in skeleton {skeleton.name!r}")
        if isinstance(crop_size, bool) or int(crop_size) != crop_size or crop_size < 8:
            raise KineposeError(f"crop_size: expected an int >= 8, got {crop_size!r}")
        if not 0 < float(crop_scale) < math.inf:
            raise KineposeError(f"crop_scale: expected a finite number > 0, got {crop_scale!r}")
        crop_spec = (tuple((skeleton.index(c), float(e)) for c, e in crops.items()), float(crop_scale), int(crop_size))
    master = np.random.default_rng(seed)
    jobs = []
    for name, m in clips.items():
        if m.skeleton.joint_names != skeleton.joint_names:
            raise KineposeError(f"clip {name!r}: its skeleton {m.skeleton.name!r} is not {skeleton.name!r}")
        T = m.num_frames
        if T < frames_per_view:
            raise KineposeError(f"clip {name!r}: {T} frames, fewer than frames_per_view={frames_per_view}")
        offsets = torch.tensor(np.array(m.skeleton.offsets), dtype=torch.float64)
        for _ in range(int(views)):
            first = int(master.integers(0, T - frames_per_view + 1))
            sl = slice(first, first + frames_per_view)
            jobs.append((skeleton, m.local_quat[sl].double(), m.root_pos[sl].double(), offsets, name, first,
                         int(master.integers(0, 2**62)), config, fill, len(jobs), pj, float(perturb_deg),
                         crop_spec))  # fmt: skip
    bar = tqdm(total=len(jobs) * frames_per_view, desc=desc, unit="img", disable=not progress_enabled(progress),
               leave=False)  # fmt: skip
    parts = []
    if workers > 1:
        with ProcessPoolExecutor(int(workers), mp_context=get_context("fork"), initializer=_one_thread) as pool:
            for out in pool.map(_render_job, jobs, chunksize=max(1, len(jobs) // (8 * workers))):
                parts.append(out)
                bar.update(len(out["frame"]))
    else:
        for job in jobs:
            parts.append(_render_job(job))
            bar.update(len(parts[-1]["frame"]))
    bar.close()
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return RenderedSet(skeleton=skeleton.name, **merged)
