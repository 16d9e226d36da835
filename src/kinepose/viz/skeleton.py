"""3D skeleton views: one pose, a prediction against the truth (PNG), a sequence (GIF or MP4).

Data are Y-up, metres: a point ``(x, y, z)`` is drawn at matplotlib's ``(x, z, y)`` so that y is the vertical
axis; the three axes share one scale. Per-joint errors are shown in millimetres.
"""

from __future__ import annotations

import math
import os
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: never open a window

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FFMpegWriter, PillowWriter
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from kinepose._atomic import atomic_write
from kinepose.skeleton.core import Skeleton

__all__ = ["MAX_GIF_FRAMES", "animate_skeleton", "ffmpeg_executable", "plot_pose_comparison", "plot_skeleton"]

MAX_GIF_FRAMES = 120
MAX_VIDEO_FRAMES = 9000  # 2.5 minutes at 60 fps; longer clips are subsampled (playback stays real-time)
ANIMATION_FORMATS = ("gif", "mp4")
IMAGE_FORMATS = ("png", "pdf", "svg")
ERROR_CMAP = "plasma"


def _as_numpy(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def _check_pose(skeleton: Skeleton, x: Any, name: str, sequence: bool = False) -> np.ndarray:
    arr = _as_numpy(x, name)
    J = len(skeleton.joint_names)
    ok = arr.ndim == 3 and arr.shape[0] > 0 and arr.shape[1:] == (J, 3) if sequence else arr.shape == (J, 3)
    if not ok:
        shape = "(T, J, 3)" if sequence else "(J, 3)"
        raise ValueError(
            f"{name}: expected shape {shape} with J={J} for skeleton '{skeleton.name}', got {tuple(arr.shape)}"
        )
    return arr


def _image_format(path: str | os.PathLike, allowed: tuple[str, ...] = IMAGE_FORMATS) -> str:
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if ext not in allowed:
        raise ValueError(f"{os.fspath(path)}: unsupported output type {ext!r}; use one of {', '.join(allowed)}")
    return ext


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> None:
    """Write ``fig`` atomically (format from the extension: png, pdf or svg) and close it."""
    try:
        fmt = _image_format(path)
        atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi, bbox_inches="tight"), binary=True)
    finally:
        plt.close(fig)


def _to_plot(p: np.ndarray) -> np.ndarray:
    """(..., 3) Y-up data -> (..., 3) matplotlib coordinates (x, z, y), so that y is vertical."""
    return p[..., [0, 2, 1]]


def _new_3d_axes(fig: Figure, *grid: int) -> Axes:
    ax = fig.add_subplot(*(grid or (1, 1, 1)), projection="3d")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("z (m)")
    ax.set_zlabel("y (m), up")
    ax.view_init(elev=15, azim=-60)
    return ax


def _set_equal_limits(ax: Axes, points: np.ndarray) -> None:
    """Same scale on all three axes, around the bounding box of ``points`` (..., 3) in data coordinates."""
    p = _to_plot(points.reshape(-1, 3))
    lo, hi = p.min(0), p.max(0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1e-3) * 1.05
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_zlim(centre[2] - half, centre[2] + half)
    ax.set_box_aspect((1, 1, 1))


def plot_skeleton(
    skeleton: Skeleton,
    joints: Any,
    ax: Axes | None = None,
    color: str = "C0",
    label: str | None = None,
    joint_colors: Any = None,
    vmax: float | None = None,
    alpha: float = 1.0,
) -> Axes:
    """Draw one pose: a line per bone (joint to parent) and a dot per joint.

    Args:
        skeleton: the kinematic tree (its ``parents`` give the bones).
        joints: (J, 3) positions, metres, Y-up.
        ax: a 3D axes to draw into; a new figure and axes when None (the caller saves or closes it).
        color: colour of bones, and of joints when ``joint_colors`` is None.
        label: legend label.
        joint_colors: optional (J,) values (e.g. errors in mm) mapped through a colormap onto the joints.
        vmax: top of the colormap range for ``joint_colors`` (default their maximum).
        alpha: opacity.

    Returns:
        The axes; its ``collections[-1]`` is the joint scatter (a colorbar mappable when coloured).
    """
    p = _to_plot(_check_pose(skeleton, joints, "joints"))
    if ax is None:
        ax = _new_3d_axes(plt.figure(figsize=(5, 5)))
        _set_equal_limits(ax, _check_pose(skeleton, joints, "joints"))
    for j, parent in enumerate(skeleton.parents):
        if parent >= 0:
            seg = p[[parent, j]]  # (2, 3)
            ax.plot(seg[:, 0], seg[:, 1], seg[:, 2], color=color, lw=2, alpha=alpha)
    if joint_colors is None:
        ax.scatter(p[:, 0], p[:, 1], p[:, 2], color=color, s=18, alpha=alpha, label=label, depthshade=False)
    else:
        c = _as_numpy(joint_colors, "joint_colors")
        if c.shape != (len(p),):
            raise ValueError(f"joint_colors: expected shape ({len(p)},), got {tuple(c.shape)}")
        top = float(c.max()) if vmax is None else vmax
        ax.scatter(p[:, 0], p[:, 1], p[:, 2], c=c, cmap=ERROR_CMAP, vmin=0.0, vmax=max(top, 1e-6), s=40,
                   edgecolors="k", linewidths=0.5, alpha=alpha, label=label, depthshade=False)  # fmt: skip
    return ax


def _joint_errors_mm(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return 1000.0 * np.linalg.norm(pred - truth, axis=-1)  # (..., J)


def plot_pose_comparison(
    skeleton: Skeleton,
    pred: Any,
    truth: Any | None,
    path: str | os.PathLike,
    title: str | None = None,
    overlay: bool = True,
) -> None:
    """A prediction against the truth, joints coloured by their error (mm), written to ``path``.

    Args:
        skeleton: the kinematic tree.
        pred: (J, 3) predicted positions, metres, Y-up.
        truth: (J, 3) true positions, or None to draw the prediction alone.
        path: output image (.png, .pdf or .svg).
        title: figure title.
        overlay: one view with both poses (True) or truth and prediction side by side (False).
    """
    _image_format(path)
    p = _check_pose(skeleton, pred, "pred")
    t = None if truth is None else _check_pose(skeleton, truth, "truth")
    both = p if t is None else np.stack([p, t])
    fig = plt.figure(figsize=(6, 5.5) if overlay or t is None else (10, 5))
    try:
        err = None if t is None else _joint_errors_mm(p, t)
        if t is None or overlay:
            ax_p = ax_t = _new_3d_axes(fig)
        else:
            ax_t, ax_p = _new_3d_axes(fig, 1, 2, 1), _new_3d_axes(fig, 1, 2, 2)
            ax_t.set_title("truth")
            ax_p.set_title("prediction")
        if t is not None:
            plot_skeleton(skeleton, t, ax_t, color="0.45", label="truth", alpha=0.8)
        plot_skeleton(skeleton, p, ax_p, color="C0", label="prediction", joint_colors=err)
        for ax in {id(ax_p): ax_p, id(ax_t): ax_t}.values():
            _set_equal_limits(ax, both)
            ax.legend(loc="upper left", fontsize=8)
        if err is not None:
            fig.colorbar(ax_p.collections[-1], ax=ax_p, shrink=0.6, pad=0.1, label="joint error (mm)")
            note = f"MPJPE {err.mean():.1f} mm, max {err.max():.1f} mm ({skeleton.joint_names[int(err.argmax())]})"
            title = note if title is None else f"{title}\n{note}"
        if title:
            fig.suptitle(title, fontsize=10)
    except BaseException:
        plt.close(fig)
        raise
    save_figure(fig, path)


class _AtomicPillowWriter(PillowWriter):
    """matplotlib's GIF writer, finishing with an atomic write instead of writing the target in place."""

    def finish(self) -> None:
        frames, duration = self._frames, round(1000 / self.fps)

        def write(f: Any) -> None:
            frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:], duration=duration, loop=0)

        atomic_write(self.outfile, write, binary=True)


def ffmpeg_executable() -> str:
    """Path of an ffmpeg program for MP4 output: the one the ``imageio-ffmpeg`` package ships (installed with
    ``kinepose[video]`` and ``kinepose[dev]``), else ``ffmpeg`` on the PATH. Raises ValueError when neither
    exists."""
    import shutil

    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        found = shutil.which("ffmpeg")
        if found:
            return found
    raise ValueError("MP4 output needs ffmpeg: pip install 'kinepose[video]' (ships one) or install ffmpeg")


class _AtomicFFMpegWriter(FFMpegWriter):
    """matplotlib's ffmpeg writer (H.264, yuv420p) encoding to a temporary file that replaces the target
    only once ffmpeg has finished without error."""

    def setup(self, fig: Figure, outfile: str, dpi: float | None = None) -> None:
        self._target = os.fspath(outfile)
        folder = os.path.dirname(os.path.abspath(self._target))
        self._tmp = os.path.join(folder, f".{os.path.basename(self._target)}.{os.getpid()}.tmp.mp4")
        super().setup(fig, self._tmp, dpi)

    def finish(self) -> None:
        super().finish()  # raises CalledProcessError when ffmpeg failed
        os.replace(self._tmp, self._target)

    def discard(self) -> None:
        """Stop ffmpeg (if running) and remove the temporary file, after an error."""
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if os.path.exists(self._tmp):
            os.remove(self._tmp)


def animate_skeleton(
    skeleton: Skeleton,
    pred: Any,
    truth: Any | None = None,
    path: str | os.PathLike = "x.gif",
    fps: float = 30.0,
    title: str | None = None,
    max_frames: int | None = None,
    progress: bool = False,
) -> int:
    """A sequence as a looping GIF or an MP4 video (H.264), the prediction's joints coloured by their error when
    ``truth`` is given. Both play in real time.

    Args:
        skeleton: the kinematic tree.
        pred: (T, J, 3) positions, metres, Y-up.
        truth: optional (T, J, 3) true positions.
        path: output .gif or .mp4 (MP4 needs ffmpeg, see :func:`ffmpeg_executable`).
        fps: frame rate of the sequence; playback stays real-time after subsampling.
        title: title above every frame.
        max_frames: at most this many frames are drawn (every ``ceil(T / max_frames)``-th frame). Default:
            :data:`MAX_GIF_FRAMES` for a GIF; for an MP4 every frame up to 60 fps, at most
            :data:`MAX_VIDEO_FRAMES`.
        progress: show a progress bar over the frames drawn.

    Returns:
        The number of frames written.
    """
    fmt = _image_format(path, ANIMATION_FORMATS)
    if fps <= 0:
        raise ValueError(f"fps: must be > 0, got {fps}")
    p = _check_pose(skeleton, pred, "pred", sequence=True)
    t = None if truth is None else _check_pose(skeleton, truth, "truth", sequence=True)
    if t is not None and t.shape != p.shape:
        raise ValueError(f"truth: shape {tuple(t.shape)} differs from pred {tuple(p.shape)}")
    if max_frames is None:
        per_60fps = math.ceil(len(p) / max(1, math.ceil(fps / 60)))
        max_frames = MAX_GIF_FRAMES if fmt == "gif" else min(per_60fps, MAX_VIDEO_FRAMES)
    step = max(1, math.ceil(len(p) / max(1, max_frames)))
    frames = range(0, len(p), step)
    err = None if t is None else _joint_errors_mm(p, t)  # (T, J)
    vmax = None if err is None else max(float(err.max()), 1e-6)
    everything = p if t is None else np.concatenate([p, t])
    os.makedirs(os.path.dirname(os.path.abspath(os.fspath(path))), exist_ok=True)
    if fmt == "mp4":
        matplotlib.rcParams["animation.ffmpeg_path"] = ffmpeg_executable()
        writer: Any = _AtomicFFMpegWriter(fps=fps / step, codec="h264", bitrate=-1)
    else:
        writer = _AtomicPillowWriter(fps=max(fps / step, 1.0))
    fig = plt.figure(figsize=(5, 5))
    started = False
    try:
        ax = _new_3d_axes(fig)
        if err is not None:
            sm = plt.cm.ScalarMappable(cmap=ERROR_CMAP, norm=matplotlib.colors.Normalize(0.0, vmax))
            fig.colorbar(sm, ax=ax, shrink=0.6, pad=0.1, label="joint error (mm)")
        # setup/grab/finish by hand rather than writer.saving(): that one finishes (writes) even on an error
        with matplotlib.rc_context({"savefig.bbox": None}):  # every frame the same size
            writer.setup(fig, os.fspath(path), dpi=80 if fmt == "gif" else 120)
            started = True
            for i in tqdm(frames, desc=f"drawing {os.path.basename(os.fspath(path))}", unit="frame",
                          disable=not progress, leave=False):  # fmt: skip
                ax.cla()
                ax.set_xlabel("x (m)")
                ax.set_ylabel("z (m)")
                ax.set_zlabel("y (m), up")
                if t is not None:
                    plot_skeleton(skeleton, t[i], ax, color="0.45", label="truth", alpha=0.8)
                plot_skeleton(skeleton, p[i], ax, color="C0", label="prediction",
                              joint_colors=None if err is None else err[i], vmax=vmax)  # fmt: skip
                _set_equal_limits(ax, everything)
                ax.set_title(f"{title + ' - ' if title else ''}frame {i} ({i / fps:.2f} s)", fontsize=9)
                writer.grab_frame()
            writer.finish()
    except BaseException:
        if started and isinstance(writer, _AtomicFFMpegWriter):
            writer.discard()
        raise
    finally:
        plt.close(fig)
    return len(frames)
