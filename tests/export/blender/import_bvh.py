"""Headless Blender script: import a BVH file with Blender's own importer and dump its joint positions.

Run by ``tests/test_blender_bvh.py`` as::

    blender --background --factory-startup --python-exit-code 1 \\
        --python tests/blender/import_bvh.py -- IN.bvh OUT.json [ROTATE_MODE]

``ROTATE_MODE`` is the importer's ``rotate_mode`` (default ``'NATIVE'``: each pose bone uses the Euler
order of its BVH channels). The importer runs with its defaults otherwise (armature target, scale 1,
forward ``-Z`` / up ``Y``, so a BVH point ``(x, y, z)`` lands at ``(x, -z, y)`` in Blender's Z-up world),
starting at frame 1 without FPS scaling: BVH frame ``k`` (0-based) is Blender frame ``1 + k``.

OUT.json holds, in Blender world coordinates, for every BVH frame:

- ``heads``: ``{bone: [[x, y, z] per frame]}``, ``armature.matrix_world @ pose_bone.head``: the joint
  positions (Blender makes one bone per ``ROOT``/``JOINT``);
- ``tails``: the same for ``pose_bone.tail``; for a joint with an ``End Site`` the tail is the end site;
- ``frames``: the Blender frames sampled; ``rotation_modes``: per bone; ``parents``: per bone (or null).

Runs under Blender's bundled Python only (it imports ``bpy``).
"""

from __future__ import annotations

import builtins
import json
import sys

# Blender 3.4's BVH importer opens the file with mode 'rU', which Python 3.11 rejects ("invalid mode").
# Drop the 'U' (universal newlines are the default in Python 3) before the importer runs.
_open = builtins.open


def _open_without_u(file, mode="r", *args, **kwargs):
    if isinstance(mode, str) and "U" in mode:
        mode = mode.replace("U", "") or "r"
    return _open(file, mode, *args, **kwargs)


builtins.open = _open_without_u

import addon_utils  # noqa: E402  (Blender modules; after the patch on purpose)
import bpy  # noqa: E402

FRAME_START = 1


def _args() -> tuple[str, str, str]:
    argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    if len(argv) not in (2, 3):
        raise SystemExit("usage: blender --background --python import_bvh.py -- IN.bvh OUT.json [ROTATE_MODE]")
    return argv[0], argv[1], argv[2] if len(argv) == 3 else "NATIVE"


def _frame_count(path: str) -> int:
    with _open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and parts[0].lower() == "frames:":
                return int(parts[1])
    raise SystemExit(f"{path}: no 'Frames:' line")


def main() -> None:
    bvh_path, out_path, rotate_mode = _args()
    if not hasattr(bpy.ops.import_anim, "bvh"):
        addon_utils.enable("io_anim_bvh", default_set=True)

    # Empty scene: the factory startup file holds a cube, a camera and a light.
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj, do_unlink=True)

    result = bpy.ops.import_anim.bvh(
        filepath=bvh_path,
        target="ARMATURE",
        global_scale=1.0,
        frame_start=FRAME_START,
        use_fps_scale=False,
        update_scene_fps=False,
        update_scene_duration=True,
        use_cyclic=False,
        rotate_mode=rotate_mode,
    )
    if result != {"FINISHED"}:
        raise RuntimeError(f"import_anim.bvh returned {result}")
    arms = [o for o in bpy.context.scene.objects if o.type == "ARMATURE"]
    if len(arms) != 1:
        raise RuntimeError(f"expected one armature after the import, found {len(arms)}")
    arm = arms[0]

    n = _frame_count(bvh_path)
    frames = list(range(FRAME_START, FRAME_START + n))
    scene = bpy.context.scene
    names = [b.name for b in arm.pose.bones]
    heads: dict[str, list[list[float]]] = {b: [] for b in names}
    tails: dict[str, list[list[float]]] = {b: [] for b in names}
    for frame in frames:
        scene.frame_set(frame)
        depsgraph = bpy.context.evaluated_depsgraph_get()
        ev = arm.evaluated_get(depsgraph)
        mw = ev.matrix_world
        for pb in ev.pose.bones:
            heads[pb.name].append(list(mw @ pb.head))
            tails[pb.name].append(list(mw @ pb.tail))

    out = {
        "source": bvh_path,
        "blender": bpy.app.version_string,
        "frames": frames,
        "heads": heads,
        "tails": tails,
        "rotation_modes": {pb.name: pb.rotation_mode for pb in arm.pose.bones},
        "parents": {b.name: b.parent.name if b.parent else None for b in arm.data.bones},
    }
    with _open(out_path, "w") as f:
        json.dump(out, f)
    print(f"import_bvh.py: {len(names)} bones x {n} frames -> {out_path}")


main()
