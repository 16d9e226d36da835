"""Head-pose outputs: the per-frame file (.csv / .json), the plot over time, the annotated photo or video.

Every file is written atomically (a temporary file renamed into place), so a failure leaves no half-written output.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # headless: never open a window

import matplotlib.pyplot as plt
import numpy as np

from kinepose._atomic import atomic_write

if TYPE_CHECKING:
    from kinepose.frontends.headpose import HeadPoseTrack
    from kinepose.frontends.mediapipe import Media

__all__ = ["plot_headpose", "write_headpose", "write_view"]


def _rows(track) -> list[dict]:
    deg = np.degrees(track.ypr)
    rows = []
    for t in range(track.num_frames):
        ok = bool(track.found[t])
        row = {"frame": t, "time_s": None if track.fps is None else t / track.fps, "face_found": ok,
               "num_faces": int(track.num_faces[t])}  # fmt: skip
        row.update(
            {k: (round(float(v), 4) if ok else None) for k, v in zip(("yaw", "pitch", "roll"), deg[t], strict=True)}
        )
        row["rotation"] = track.rotation[t].round(6).tolist() if ok else None
        if track.files:
            row["file"] = os.path.basename(track.files[t])
        rows.append(row)
    return rows


def write_headpose(path: str, track: HeadPoseTrack, rom: dict | None, convention: str) -> None:
    """``.json`` (``{"format": "kinepose-headpose", "convention", "model", "frames": [...], "range_of_motion"}``)
    or ``.csv`` (``frame, time_s, face_found, num_faces, yaw_deg, pitch_deg, roll_deg, r00 .. r22``; empty cells
    where no face was found)."""
    rows = _rows(track)
    if path.lower().endswith(".json"):
        doc = {"format": "kinepose-headpose", "convention": convention, "model": track.model, "source": track.source,
               "fps": track.fps, "units": "degrees", "frames": rows, "range_of_motion": rom}  # fmt: skip
        atomic_write(path, lambda f: f.write(json.dumps(doc, indent=1) + "\n"))
        return
    head = ["frame", "time_s", "face_found", "num_faces", "yaw_deg", "pitch_deg", "roll_deg"]
    head += [f"r{i}{j}" for i in range(3) for j in range(3)] + (["file"] if track.files else [])
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    for r in rows:
        rot = [] if r["rotation"] is None else [f"{v:.6f}" for row in r["rotation"] for v in row]
        cells = [
            str(r["frame"]),
            "" if r["time_s"] is None else f"{r['time_s']:.4f}",
            str(int(r["face_found"])),
            str(r["num_faces"]),
        ]
        cells += ["" if r[k] is None else f"{r[k]:.4f}" for k in ("yaw", "pitch", "roll")]  # fmt: skip
        cells += rot or [""] * 9
        if track.files:
            cells.append(r["file"])
        w.writerow(cells)
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def plot_headpose(path: str, track: HeadPoseTrack, rom: dict | None = None) -> None:
    """Yaw, pitch and roll over time (degrees), the range of motion's extremes marked."""
    deg = np.degrees(track.ypr)
    t = np.arange(track.num_frames) / (track.fps or 1.0)
    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=110)
    for k, (name, colour) in enumerate((("yaw (left +)", "tab:red"), ("pitch (up +)", "tab:green"),
                                         ("roll (left +)", "tab:blue"))):  # fmt: skip
        ax.plot(t, deg[:, k], color=colour, lw=1.4, label=name)
    if rom is not None:
        for key, col in (("rotation_left", 0), ("rotation_right", 0), ("extension", 1), ("flexion", 1),
                         ("lateral_bending_left", 2), ("lateral_bending_right", 2)):  # fmt: skip
            f = rom[key]["frame"]
            ax.plot(t[f], deg[f, col], "k.", ms=6)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_xlabel("seconds" if track.fps else "frame")
    ax.set_ylabel("degrees")
    ax.set_title(f"head pose: {os.path.basename(track.source)} ({int(track.found.sum())}/{track.num_frames} frames "
                 f"with a face)", fontsize=9)  # fmt: skip
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()

    def save(f):
        fig.savefig(f, format="png")

    atomic_write(path, save, binary=True)
    plt.close(fig)


def write_view(path: str, media: Media, track: HeadPoseTrack) -> None:
    """The head's axes drawn on the photo (.jpg) or on every frame (.mp4, the input's frame rate, 10 fps for a
    folder). The caller writes to a temporary path and renames (``kinepose headpose`` does)."""
    import cv2

    from kinepose.frontends.headpose import draw_head_axes

    def annotate(rgb, t):
        if not track.found[t]:
            return rgb
        return draw_head_axes(rgb, track.ypr[t], track.face_centre[t], 1.2 * track.face_size[t])

    if path.lower().endswith(".jpg"):
        img = annotate(next(iter(media.frames())), 0)
        _ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        atomic_write(path, lambda f: f.write(buf.tobytes()), binary=True)
        return
    w, h = media.size
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), float(track.fps or 10.0), (w, h))
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV cannot write an mp4 video here (no mp4v encoder?)")
    try:
        for t, rgb in enumerate(media.frames()):
            if t >= track.num_frames:
                break
            writer.write(cv2.cvtColor(annotate(rgb, t), cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
