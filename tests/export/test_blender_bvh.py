"""BVH export checked by a real consumer: Blender's own BVH importer.

Each case writes a BVH file with kinepose, imports it into a headless Blender (``tests/blender/import_bvh.py``,
importer defaults: armature, scale 1, rotation mode ``NATIVE``, forward ``-Z`` / up ``Y``, start frame 1),
reads back every pose bone's world-space head per frame and compares it with kinepose's forward kinematics.
End sites are not bones in Blender: a joint's ``End Site`` is its bone's tail, compared too.

Blender is Z-up: the importer maps a BVH point ``(x, y, z)`` to ``(x, -z, y)``; we map back with
``(a, b, c) -> (a, c, -b)``. BVH frame ``k`` (0-based) is Blender frame ``1 + k``.

Skipped unless ``blender`` is on PATH (Debian: ``apt-get install --no-install-recommends blender``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from kinepose.cli import main
from kinepose.data.formats.bvh import CM_TO_M, CMU_TO_M, read_bvh, write_bvh, write_motion_bvh
from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.geometry import random_quat
from kinepose.kinematics import forward_kinematics, project_to_joint_kinds
from kinepose.skeleton import Skeleton, get_skeleton

BLENDER = shutil.which("blender")
SCRIPT = Path(__file__).parent / "blender" / "import_bvh.py"
FIXTURES = Path(__file__).parent.parent / "fixtures"
CMU = "/usr/share/assimp/models/BVH/01_01.bvh"
TOL_M = 1e-3  # Blender stores poses and armatures in float32; measured errors are ~1e-6 m

pytestmark = pytest.mark.skipif(BLENDER is None, reason="Blender not installed: apt-get install blender")


def _blender_import(bvh: Path, out: Path) -> dict:
    """Import ``bvh`` in a headless Blender; the script's JSON (Blender world coordinates)."""
    cmd = [BLENDER, "--background", "--factory-startup", "--python-exit-code", "1", "--python", str(SCRIPT)]
    cmd += ["--", str(bvh), str(out)]
    # Blender runs its own Python: keep this interpreter's module paths away from it.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)
    if proc.returncode != 0 or not out.exists():
        pytest.fail(
            f"Blender failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
        )
    return json.loads(out.read_text())


def _to_y_up(p: np.ndarray) -> np.ndarray:
    """Blender world (Z-up) ``(a, b, c)`` back to the BVH's Y-up ``(a, c, -b)``."""
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1)


def _is_end_site(sk: Skeleton, j: int) -> bool:
    """Whether the writer emits joint ``j`` as an ``End Site`` block (no bone in Blender)."""
    return sk.parents[j] >= 0 and sk.kinds[j] == "end" and not sk.children[j]


def _compare(name: str, sk: Skeleton, expected: np.ndarray, data: dict, order: str) -> float:
    """Blender's import (``data``) against kinepose's FK (``expected``, (T, J, 3)): every joint (bone heads)
    and end site (bone tails), every frame. Returns the max error, metres."""
    T, J = expected.shape[:2]
    # One Blender frame per BVH frame, starting at 1.
    assert data["frames"] == list(range(1, T + 1))
    joints = [j for j in range(J) if not _is_end_site(sk, j)]
    ends = [j for j in range(J) if _is_end_site(sk, j)]
    # One bone per ROOT/JOINT, same names and parents; each posed in the file's Euler order.
    assert sorted(data["heads"]) == sorted(sk.joint_names[j] for j in joints)
    for j in joints:
        p = sk.parents[j]
        assert data["parents"][sk.joint_names[j]] == (sk.joint_names[p] if p >= 0 else None)
        assert data["rotation_modes"][sk.joint_names[j]] == order

    names, got, want = [], [], []
    for j in joints:
        names.append(sk.joint_names[j])
        got.append(data["heads"][sk.joint_names[j]])
        want.append(expected[:, j])
    # Blender keeps one End Site per joint (the last) as its bone's tail, nudged if shorter than 1 mm.
    # Every end site of the skeletons tested here is its parent's only end site and longer than that.
    for j in ends:
        p = sk.parents[j]
        assert sum(_is_end_site(sk, c) for c in sk.children[p]) == 1, "test needs one End Site per joint"
        assert np.linalg.norm(sk.offsets[j]) > 1e-3
        names.append(f"{sk.joint_names[j]} (tail of {sk.joint_names[p]})")
        got.append(data["tails"][sk.joint_names[p]])
        want.append(expected[:, j])
    got_y_up = _to_y_up(np.asarray(got, dtype=np.float64))  # (N, T, 3)
    err = np.linalg.norm(got_y_up - np.stack(want), axis=-1)  # (N, T)
    worst, frame = np.unravel_index(int(np.argmax(err)), err.shape)
    max_err = float(err.max())
    print(f"{name}: {len(joints)} joints + {len(ends)} end sites x {T} frames, max error {max_err:.3g} m")
    assert max_err < TOL_M, (
        f"{name}: {names[worst]} off by {max_err:.4g} m at frame {frame} (Blender frame {frame + 1})"
    )
    return max_err


@pytest.mark.parametrize("clip", ["kick", "walk"])
def test_deepmimic_humanoid_clip_matches_blender(tmp_path, clip):
    """A real motion-capture clip (all frames) on the DeepMimic humanoid: hinges, childless joints, end sites."""
    m = load_deepmimic(clip)
    bvh = tmp_path / f"{clip}.bvh"
    order = write_motion_bvh(bvh, m, rotation_order="ZXY")
    assert sorted(order) == list(range(m.skeleton.num_joints))
    data = _blender_import(bvh, tmp_path / f"{clip}.json")
    _compare(clip, m.skeleton, m.positions().double().numpy(), data, "ZXY")


@pytest.mark.parametrize(("skeleton", "order"), [("hand21", "XYZ"), ("h36m17", "YXZ")])
def test_random_poses_match_blender(tmp_path, skeleton, order):
    """Random poses (hinges projected, end sites identity) with a moving root, another rotation order."""
    sk = get_skeleton(skeleton)
    gen = torch.Generator().manual_seed(0)
    T = 24
    q = project_to_joint_kinds(sk, random_quat((T, sk.num_joints), generator=gen, dtype=torch.float64))
    t = torch.linspace(0, 1, T, dtype=torch.float64)[:, None]
    root_pos = torch.tensor([0.3, 0.9, -0.4], dtype=torch.float64) + t * torch.tensor([0.5, 0.1, 0.8])
    root_pos = root_pos + 0.05 * torch.randn(T, 3, generator=gen, dtype=torch.float64)
    bvh = tmp_path / f"{skeleton}.bvh"
    write_bvh(bvh, sk, q, root_pos, 30.0, rotation_order=order)
    data = _blender_import(bvh, tmp_path / f"{skeleton}.json")
    _compare(skeleton, sk, forward_kinematics(sk, q, root_pos).positions.double().numpy(), data, order)


def _scaled(data: dict, scale: float) -> dict:
    """Blender's positions of a file in other units than metres (the importer's ``global_scale`` is 1), in metres."""
    out = dict(data)
    for key in ("heads", "tails"):
        out[key] = {b: (np.asarray(v, dtype=np.float64) * scale).tolist() for b, v in data[key].items()}
    return out


@pytest.mark.parametrize("rig", ["cmu", "mixamo", "mocapbank"])
def test_ik_output_of_bvh_rigs_imports_in_blender(tmp_path, rig):
    """``kinepose ik --model analytic`` on a BVH rig (CMU 01_01's first 120 frames in its 1/0.45-inch unit, the Mixamo
    and MocapBank fixtures in centimetres): Blender imports the output with the input's bones (names, parents, Euler
    order) and poses them where our reader puts them; and those positions are the input's."""
    if rig == "cmu":
        if not os.path.exists(CMU):
            pytest.skip("Debian package assimp-testmodels not installed")
        lines = Path(CMU).read_text().splitlines()
        at = next(i for i, line in enumerate(lines) if line.lower().startswith("frames:"))
        path = tmp_path / "01_01_head.bvh"
        path.write_text("\n".join([*lines[:at], "Frames: 120", *lines[at + 1 : at + 2 + 120]]) + "\n")
        scale = CMU_TO_M
    else:
        path, scale = FIXTURES / f"{rig}_rig.bvh", CM_TO_M
    out = tmp_path / "out.bvh"
    assert main(["ik", "--model", "analytic", "--input", str(path), "--scale", str(scale), "--output", str(out)]) == 0
    written, source = read_bvh(out), read_bvh(path)
    assert written.joint_names == source.joint_names and written.parents == source.parents
    order = source.channel_layout()[0]
    data = _blender_import(out, tmp_path / "out.json")
    _compare(rig, written.skeleton(scale), written.positions(scale).numpy(), _scaled(data, scale), order)
    err = float((written.positions(scale) - source.positions(scale)).norm(dim=-1).max())
    assert err < 1e-6, f"{rig}: the output's positions are {err:.3g} m from the input's"
