"""The ``bvh`` and ``npz`` sources: splits by file and by frame ranges, units, mirroring, bone-length augmentation,
hinge fitting, npz round trips and the errors, each naming the file or the key.

References are independent of the code under test: mirrored positions are built by hand (lateral coordinate
negated, partners swapped by name), rotations checked as ``M R M`` with scipy, bone lengths and directions from
the offsets themselves. The CMU parts skip when Debian's ``assimp-testmodels`` is not installed.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from kinepose.data.formats.bvh import CMU_TO_M, write_motion_bvh
from kinepose.data.motion import Motion
from kinepose.data.sources import FROM_FILES, get_source, list_sources, load_split, source_skeleton
from kinepose.data.sources.bvh import UNITS, fit_hinges, mirror_motion, scale_bones, units_scale
from kinepose.data.sources.npz import load_motion_npz, save_motion_npz
from kinepose.errors import FileFormatError, KineposeError
from kinepose.geometry import quat_about_axis, quat_to_matrix, random_quat
from kinepose.kinematics.fk import forward_kinematics
from kinepose.skeleton.core import Skeleton
from kinepose.skeleton.files import skeleton_to_dict

CMU = "/usr/share/assimp/models/BVH/01_01.bvh"
needs_cmu = pytest.mark.skipif(not os.path.exists(CMU), reason="CMU 01_01.bvh (assimp-testmodels) not installed")

NAMES = ["Hips", "LeftUpLeg", "LeftLeg", "LeftLeg_end", "RightUpLeg", "RightLeg", "RightLeg_end", "Spine", "Spine_end"]
PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7]
# left and right differ (an asymmetric rig, as CMU's is): mirroring must move the data to the mirrored skeleton
OFFSETS = [[0, 0, 0], [0.10, -0.05, 0.01], [0.02, -0.40, 0.0], [0, -0.38, 0.05],
           [-0.09, -0.06, 0.0], [-0.01, -0.42, 0.01], [0, -0.36, 0.04], [0, 0.12, -0.01], [0, 0.2, 0]]  # fmt: skip
KINDS = ["ball", "ball", "ball", "end", "ball", "ball", "end", "ball", "end"]


def _skeleton(names=NAMES, parents=PARENTS, offsets=OFFSETS) -> Skeleton:
    pairs = [(1, 4), (2, 5), (3, 6)] if names[1].startswith("Left") else []
    kinds = ["end" if n.endswith("_end") else "ball" for n in names]
    return Skeleton("toy", names, parents, np.array(offsets, float), kinds, left_right=pairs, lateral_axis=0)


def _motion(T: int = 40, seed: int = 0, skeleton: Skeleton | None = None, knee_axis=None) -> Motion:
    sk = skeleton or _skeleton()
    g = torch.Generator().manual_seed(seed)
    q = random_quat((T, sk.num_joints), generator=g, dtype=torch.float64)
    q = torch.nn.functional.normalize(q + 3 * torch.tensor([1.0, 0, 0, 0], dtype=torch.float64), dim=-1)  # moderate
    if knee_axis is not None:  # the left knee turns about one axis only
        angle = torch.linspace(0.1, 1.4, T, dtype=torch.float64)
        q[:, 2] = quat_about_axis(torch.tensor(knee_axis, dtype=torch.float64), angle)
    for j, k in enumerate(sk.kinds):
        if k == "end":
            q[:, j] = torch.tensor([1.0, 0, 0, 0])
    root = torch.randn(T, 3, generator=g, dtype=torch.float64) * 0.1 + torch.tensor([0, 0.9, 0], dtype=torch.float64)
    return Motion(sk, q, root, 30.0, f"toy{seed}")


def _write(tmp_path, name: str, motion: Motion, scale: float = 1.0) -> str:
    path = str(tmp_path / name)
    write_motion_bvh(path, motion, scale=scale)
    return path


def _cfg(**data) -> dict:
    return {"seed": 0, "data": {"dataset": "bvh", **data}}


def test_registered_as_file_sources():
    assert {"bvh", "npz"} <= set(list_sources())
    assert get_source("bvh").skeleton == FROM_FILES and get_source("npz").skeleton == FROM_FILES


def test_split_by_file(tmp_path):
    a, b, _ = (_write(tmp_path, f"{n}.bvh", _motion(30 + 5 * i, seed=i)) for i, n in enumerate("abc"))
    train, val, test = load_split(_cfg(train=[a], val=[b], test=[str(tmp_path / "c*.bvh")]))
    assert [m.name for m in train] == ["a"] and [m.name for m in val] == ["b"] and [m.name for m in test] == ["c"]
    assert (train[0].num_frames, val[0].num_frames, test[0].num_frames) == (30, 35, 40)
    # the rotations come back as written (BVH keeps 10 significant digits)
    torch.testing.assert_close(train[0].local_quat, _motion(30, seed=0).local_quat, atol=1e-7, rtol=0)


def test_split_by_frame_ranges_and_whole_files(tmp_path):
    m = _motion(101, seed=3)
    a = _write(tmp_path, "a.bvh", m)
    b = _write(tmp_path, "b.bvh", _motion(20, seed=4))
    split = {"train": [0.0, 0.8], "val": [0.8, 0.9], "test": [0.9, 1.0]}
    train, val, test = load_split(_cfg(files=[a, b], test=[b], split=split))
    # b is held out whole; a is cut at round(0.8 * 101) = 81 and round(0.9 * 101) = 91
    assert [t.num_frames for t in train] == [81] and [v.num_frames for v in val] == [10]
    assert [t.name for t in test] == ["b", "a[91:101]"] and test[1].num_frames == 10
    whole = load_split(_cfg(files=[a], split={"train": [0, 1], "val": [0, 0]}, val=[b]))[0][0]
    parts = torch.cat([train[0].local_quat, val[0].local_quat, test[1].local_quat])
    torch.testing.assert_close(parts, whole.local_quat)
    torch.testing.assert_close(val[0].root_pos, whole.root_pos[81:91])


def test_default_split_trains_whole_files(tmp_path):
    a, b = _write(tmp_path, "a.bvh", _motion(10)), _write(tmp_path, "b.bvh", _motion(12, seed=1))
    train, val, test = load_split(_cfg(files=[a], val=[b]))
    assert [m.num_frames for m in train] == [10] and [m.name for m in val] == ["b"] and test == []


@pytest.mark.parametrize(
    ("split", "match"),
    [
        ({"train": [0.0, 0.6], "val": [0.5, 1.0]}, "overlap"),
        ({"train": [0.0, 1.2]}, r"data.split.train: expected \[a, b\]"),
        ({"train": [0.5, 0.2]}, r"data.split.train"),
        ({"tune": [0.0, 0.5]}, "unknown part 'tune'"),
        ([0.8, 0.2], "expected a mapping"),
    ],
)
def test_bad_frame_ranges(tmp_path, split, match):
    a = _write(tmp_path, "a.bvh", _motion(10))
    with pytest.raises(KineposeError, match=match):
        load_split(_cfg(files=[a], split=split))


def test_file_errors_name_the_key_and_file(tmp_path):
    a = _write(tmp_path, "a.bvh", _motion(10))
    with pytest.raises(KineposeError, match=r"data.val: .*nothing\*.bvh' matches no file"):
        load_split(_cfg(files=[a], val=[str(tmp_path / "nothing*.bvh")]))
    with pytest.raises(KineposeError, match=r"data.test: .*a.bvh is also in data.train"):
        load_split(_cfg(train=[a], test=[a]))
    with pytest.raises(KineposeError, match="the val part is empty"):
        load_split(_cfg(files=[a]))
    with pytest.raises(KineposeError, match="no motion files"):
        load_split(_cfg(files=[]))
    other = tmp_path / "x.txt"
    other.write_text("not bvh")
    with pytest.raises(KineposeError, match=r"data.files: .*x.txt is not a .bvh file"):
        load_split(_cfg(files=[str(other)], val=[a]))
    broken = tmp_path / "broken.bvh"
    broken.write_text("HIERARCHY\nROOT Hips\n{\n")
    with pytest.raises(FileFormatError, match="broken.bvh"):
        load_split(_cfg(files=[str(broken)], val=[a]))


def test_files_must_share_one_skeleton(tmp_path):
    a = _write(tmp_path, "a.bvh", _motion(10))
    renamed = [n.replace("Spine", "Chest") for n in NAMES]
    b = _write(tmp_path, "b.bvh", _motion(10, skeleton=_skeleton(names=renamed)))
    with pytest.raises(KineposeError, match=r"b.bvh: not the skeleton of .*a.bvh .*extra \['Chest', 'Chest_end'\]"):
        load_split(_cfg(train=[a], val=[b]))
    # other bone lengths are fine (another subject); each clip keeps its own
    longer = _write(tmp_path, "c.bvh", _motion(10, skeleton=_skeleton(offsets=1.1 * np.array(OFFSETS))))
    _, val, _ = load_split(_cfg(train=[a], val=[longer]))
    np.testing.assert_allclose(val[0].skeleton.offsets, 1.1 * np.array(OFFSETS), atol=1e-9)


def test_units(tmp_path):
    m = _motion(8)
    cm = _write(tmp_path, "cm.bvh", m, scale=100.0)  # the file in centimetres
    metres = _write(tmp_path, "m.bvh", m)
    train = load_split(_cfg(train=[cm], val=[metres], units="cm"))[0][0]
    torch.testing.assert_close(train.positions(), m.positions(), atol=1e-8, rtol=0)
    assert units_scale("cmu") == pytest.approx(0.0254 / 0.45) == CMU_TO_M and UNITS["inch"] == 0.0254
    assert units_scale(0.5) == 0.5
    with pytest.raises(KineposeError, match="data.units: unknown unit 'feet'"):
        units_scale("feet")
    with pytest.raises(KineposeError, match="positive"):
        units_scale(-1.0)


def _partner(name: str, names: list[str]) -> int:
    """By name: Left* <-> Right*, and CMU's L*/R* prefixes (LHipJoint, LThumb, RFingers...)."""
    other = name.replace("Left", "#").replace("Right", "Left").replace("#", "Right")
    if other == name and len(name) > 1 and name[0] in "LR" and name[1].isupper():
        other = {"L": "R", "R": "L"}[name[0]] + name[1:]
    return names.index(other) if other in names else names.index(name)


def _mirror_by_hand(sk: Skeleton, x: torch.Tensor) -> torch.Tensor:
    """Lateral (x) coordinate negated, left and right joints swapped by name."""
    names = list(sk.joint_names)
    partner = [_partner(n, names) for n in names]
    out = x.clone()
    out[..., 0] = -out[..., 0]
    return out[..., partner, :]


def test_mirroring_is_exact_on_an_asymmetric_rig(tmp_path):
    m = _motion(25, seed=5)
    mir = mirror_motion(m)
    torch.testing.assert_close(mir.positions(), _mirror_by_hand(m.skeleton, m.positions()), atol=1e-12, rtol=0)
    assert mir.skeleton.joint_names == m.skeleton.joint_names and mir.skeleton.parents == m.skeleton.parents
    # rotations: M R M with M = diag(-1, 1, 1), partners swapped (scipy builds the matrices)
    M = np.diag([-1.0, 1.0, 1.0])
    for j, partner in ((1, 4), (2, 5), (7, 7), (0, 0)):
        q = m.local_quat[:, partner].numpy()
        R = Rotation.from_quat(np.concatenate([q[:, 1:], q[:, :1]], -1)).as_matrix()
        np.testing.assert_allclose(quat_to_matrix(mir.local_quat[:, j]).numpy(), M @ R @ M, atol=1e-12)
    # through the source: mirrored copies join the training part only
    a, b = _write(tmp_path, "a.bvh", m), _write(tmp_path, "b.bvh", _motion(10, seed=6))
    train, val, _ = load_split(_cfg(train=[a], val=[b], mirror=True))
    assert [t.name for t in train] == ["a", "a-mirrored"] and [v.name for v in val] == ["b"]
    torch.testing.assert_close(train[1].positions(), _mirror_by_hand(m.skeleton, train[0].positions()))


def test_mirroring_skips_rigs_without_pairs(tmp_path):
    names = ["root", "a", "a_end", "b", "b_end"]
    sk = _skeleton(names=names, parents=[-1, 0, 1, 0, 3], offsets=[[0, 0, 0], [0.1, 0, 0], [0.2, 0, 0],
                                                                     [0, 0.1, 0], [0, 0.2, 0]])  # fmt: skip
    a, b = _write(tmp_path, "a.bvh", _motion(6, skeleton=sk)), _write(tmp_path, "b.bvh", _motion(6, 1, skeleton=sk))
    train, _, _ = load_split(_cfg(train=[a], val=[b], mirror=True))
    assert [t.name for t in train] == ["a"]
    with pytest.raises(KineposeError, match="no left/right joint pairs"):
        mirror_motion(train[0])


@needs_cmu
def test_mirroring_cmu_fk_of_mirrored_rotations_is_mirrored_positions():
    from kinepose.data.sources.bvh import load_bvh_motion

    m = load_bvh_motion(CMU, CMU_TO_M).slice(0, 200)
    mir = mirror_motion(m)
    torch.testing.assert_close(mir.positions(), _mirror_by_hand(m.skeleton, m.positions()), atol=1e-9, rtol=0)
    assert float(np.abs(mir.skeleton.offsets - m.skeleton.offsets).max()) > 0.01  # CMU's rig is not symmetric


def test_bone_scale_keeps_fk_consistent(tmp_path):
    m = _motion(20, seed=7)
    s = scale_bones(m, 0.9, 1.1, torch.Generator().manual_seed(0))
    factors = torch.tensor(s.meta["bone_scale"], dtype=torch.float64)
    assert bool(((factors >= 0.9) & (factors <= 1.1)).all()) and float(factors.std()) > 0
    torch.testing.assert_close(s.local_quat, m.local_quat)
    fk = forward_kinematics(s.skeleton, s.local_quat, s.root_pos)
    x, G = fk.positions, fk.global_rotmat
    off = torch.tensor(OFFSETS, dtype=torch.float64)
    for j, p in enumerate(PARENTS):
        if p >= 0:  # each bone, seen from its parent, is its rest offset times its own factor
            local = torch.einsum("tba,tb->ta", G[:, p], x[:, j] - x[:, p])
            torch.testing.assert_close(local, (factors[j] * off[j]).expand_as(local), atol=1e-12, rtol=0)
    a, b = _write(tmp_path, "a.bvh", m), _write(tmp_path, "b.bvh", _motion(10, seed=8))
    train, _, _ = load_split(_cfg(train=[a], val=[b], mirror=True, bone_scale=[0.8, 1.2], bone_scale_copies=2))
    assert [t.name for t in train] == ["a", "a-mirrored"] + ["a-bones", "a-mirrored-bones"] * 2
    with pytest.raises(KineposeError, match="data.bone_scale"):
        load_split(_cfg(train=[a], val=[b], bone_scale=[1.2, 0.8]))


def test_fit_hinges_finds_a_one_axis_joint(tmp_path):
    axis = np.array([0.6, 0.0, 0.8])
    m = _motion(30, seed=9, knee_axis=axis)
    hs, found = fit_hinges([m])
    assert list(found) == ["LeftLeg"] and hs.kinds[2] == "hinge"
    np.testing.assert_allclose(hs.hinge_axes[2], axis, atol=1e-9)  # angles are positive: the sign is kept
    lo, hi = found["LeftLeg"]["limits_deg"]
    assert lo == pytest.approx(np.degrees(0.1) - 10, abs=1e-6) and hi == pytest.approx(np.degrees(1.4) + 10, abs=1e-6)
    a, b = _write(tmp_path, "a.bvh", m), _write(tmp_path, "b.bvh", _motion(10, seed=10))
    assert source_skeleton(_cfg(train=[a], val=[b], hinges=True)).kinds[2] == "hinge"
    assert source_skeleton(_cfg(train=[a], val=[b])).kinds[2] == "ball"


def test_npz_round_trip_and_source(tmp_path):
    m = _motion(15, seed=11)
    path = str(tmp_path / "clip.npz")
    save_motion_npz(path, m)
    back = load_motion_npz(path)
    torch.testing.assert_close(back.local_quat, m.local_quat, atol=1e-15, rtol=0)
    torch.testing.assert_close(back.root_pos, m.root_pos)
    assert back.fps == 30.0 and back.skeleton.joint_names == m.skeleton.joint_names
    np.testing.assert_array_equal(back.skeleton.offsets, m.skeleton.offsets)
    assert back.skeleton.left_right == m.skeleton.left_right
    cm = load_motion_npz(path, scale=0.01)  # units apply to offsets, root and joints alike
    torch.testing.assert_close(cm.positions(), 0.01 * m.positions())
    other = str(tmp_path / "other.npz")
    save_motion_npz(other, _motion(9, seed=12), joints=False)
    train, val, _ = load_split({"seed": 0, "data": {"dataset": "npz", "train": [path], "val": [other]}})
    assert [t.name for t in train] == ["clip"] and val[0].num_frames == 9
    assert source_skeleton({"data": {"dataset": "npz", "train": [path]}}).joint_names == tuple(NAMES)


def _npz(tmp_path, **arrays) -> str:
    m = _motion(5, seed=13)
    skeleton = np.array(json.dumps(skeleton_to_dict(m.skeleton)))
    base = {"local_quat": m.local_quat.numpy(), "root_pos": m.root_pos.numpy(), "skeleton": skeleton,
            "joints": m.positions().numpy()}  # fmt: skip
    base.update(arrays)
    path = str(tmp_path / "bad.npz")
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return path


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"root_pos": None}, r"missing key\(s\) \['root_pos'\]"),
        ({"local_quat": np.zeros((5, 3, 4))}, r"key 'local_quat': expected shape \(T, 9, 4\)"),
        ({"local_quat": np.full((5, 9, 4), 0.5) * np.array([1, 1, 1, 3])}, "key 'local_quat': frame 0.*norm"),
        ({"root_pos": np.full((5, 3), np.nan)}, "key 'root_pos': non-finite"),
        ({"skeleton": np.array("{not json")}, "key 'skeleton': not valid JSON"),
        ({"skeleton": np.array(json.dumps({"name": "x"}))}, "key 'skeleton': .*missing key"),
        ({"joints": np.zeros((5, 9, 3))}, r"key 'joints': frame \d+, joint '\w+' is [\d.]+ mm from the forward kin"),
        ({"fps": np.array([-1.0])}, "key 'fps'"),
    ],
)
def test_npz_errors_name_file_and_key(tmp_path, arrays, match):
    path = _npz(tmp_path, **arrays)
    with pytest.raises(FileFormatError, match=match) as info:
        load_motion_npz(path)
    assert "bad.npz" in str(info.value)
