"""Joint-position inputs and rotation outputs of ``kinepose ik``: round trips, mapping, errors, atomic writes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

import kinepose.data.formats.io as kio
from kinepose.data.formats.bvh import read_bvh, write_bvh
from kinepose.data.formats.io import (
    SUPPORTED_INPUTS,
    SUPPORTED_OUTPUTS,
    JointsFile,
    load_joints,
    load_rotations,
    save_rotations,
)
from kinepose.errors import FileFormatError, KineposeError, ShapeError
from kinepose.geometry import random_quat
from kinepose.kinematics import forward_kinematics, project_to_joint_kinds
from kinepose.skeleton import get_skeleton

T = 4


@pytest.fixture(scope="module")
def sk():
    return get_skeleton("humanoid")


@pytest.fixture(scope="module")
def pose(sk):
    """A random humanoid motion: (T, J, 4) rotations, (T, 3) root positions, (T, J, 3) FK positions."""
    gen = torch.Generator().manual_seed(0)
    q = project_to_joint_kinds(sk, random_quat((T, sk.num_joints), generator=gen, dtype=torch.float64))
    root = torch.randn(T, 3, generator=gen, dtype=torch.float64)
    pos = forward_kinematics(sk, q, root).positions
    return q.numpy(), root.numpy(), pos.numpy()


def _write_csv(path, names, joints, frame_column=True, fmt="%.17g") -> str:
    header = (["frame"] if frame_column else []) + [f"{n}_{a}" for n in names for a in "xyz"]
    lines = [",".join(header)]
    for t, frame in enumerate(joints):
        cells = ([str(t)] if frame_column else []) + [fmt % v for v in frame.reshape(-1)]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _dir_files(folder) -> list[str]:
    return sorted(os.listdir(folder))


def test_supported_extensions():
    assert SUPPORTED_INPUTS == (".npz", ".npy", ".csv", ".bvh")
    assert SUPPORTED_OUTPUTS == (".npz", ".bvh", ".csv", ".json")


# ----------------------------------------------------------------------------------------------- inputs


def test_npz_round_trip(tmp_path, sk, pose):
    pos = pose[2]
    p = tmp_path / "j.npz"
    np.savez(p, joints=pos, joint_names=np.array(sk.joint_names), fps=np.float64(60))
    out = load_joints(p)
    assert isinstance(out, JointsFile)
    assert out.joints.dtype == np.float64 and out.joints.shape == (T, 15, 3)
    np.testing.assert_array_equal(out.joints, pos)
    assert out.joint_names == list(sk.joint_names) and out.fps == 60.0 and out.path == str(p)
    np.testing.assert_array_equal(load_joints(p, sk).joints, pos)
    np.testing.assert_allclose(load_joints(p, sk, scale=0.001).joints, pos * 0.001, rtol=1e-15)


def test_npz_single_frame_and_no_names(tmp_path, sk, pose):
    p = tmp_path / "one.npz"
    np.savez(p, joints=pose[2][1].astype(np.float32))
    out = load_joints(p, sk)
    assert out.joints.shape == (1, 15, 3) and out.fps is None
    np.testing.assert_allclose(out.joints[0], pose[2][1], atol=1e-6)
    assert out.joint_names == list(sk.joint_names)  # the skeleton's order is assumed
    assert load_joints(p).joint_names is None


def test_npy_round_trip(tmp_path, sk, pose):
    p = tmp_path / "j.npy"
    np.save(p, pose[2])
    out = load_joints(p, sk)
    np.testing.assert_array_equal(out.joints, pose[2])
    assert out.fps is None
    np.save(tmp_path / "one.npy", pose[2][0])
    assert load_joints(tmp_path / "one.npy").joints.shape == (1, 15, 3)


@pytest.mark.parametrize("frame_column", [True, False])
def test_csv_round_trip(tmp_path, sk, pose, frame_column):
    p = _write_csv(tmp_path / "j.csv", sk.joint_names, pose[2], frame_column)
    out = load_joints(p, sk)
    np.testing.assert_array_equal(out.joints, pose[2])
    assert out.joint_names == list(sk.joint_names) and out.fps is None
    assert load_joints(p, scale=2.0).joints[0, 3, 1] == 2.0 * pose[2][0, 3, 1]


def test_csv_tolerates_spaces_blank_lines_and_bom(tmp_path):
    p = tmp_path / "j.csv"
    p.write_text("\ufeffframe, a_x, a_y, a_z\n\n0, 1, 2, 3\n1,4,5,6\n\n")
    out = load_joints(p)
    assert out.joint_names == ["a"]
    np.testing.assert_array_equal(out.joints, [[[1, 2, 3]], [[4, 5, 6]]])


def test_bvh_round_trip(tmp_path, sk, pose):
    q, root, pos = pose
    p = tmp_path / "m.bvh"
    order = write_bvh(p, sk, q, root, fps=30.0)
    assert order != list(range(15))  # the humanoid is not depth-first in index order
    raw = load_joints(p)  # file order, end sites named <parent>_end
    assert raw.fps == 30.0 and "left_elbow_end" in raw.joint_names and "left_wrist" not in raw.joint_names
    np.testing.assert_allclose(raw.joints, pos[:, order], atol=1e-6)
    mapped = load_joints(p, sk)  # by name, end sites matched to <parent>_end
    assert mapped.joint_names == list(sk.joint_names)
    np.testing.assert_allclose(mapped.joints, pos, atol=1e-6)
    write_bvh(tmp_path / "cm.bvh", sk, q, root, fps=30.0, scale=100.0)
    np.testing.assert_allclose(load_joints(tmp_path / "cm.bvh", sk, scale=0.01).joints, pos, atol=1e-6)


def test_reorder_by_name_and_drop_extra(tmp_path, sk, pose):
    pos = pose[2]
    perm = np.random.default_rng(1).permutation(15)
    names = [sk.joint_names[i] for i in perm] + ["prop"]
    shuffled = np.concatenate([pos[:, perm], np.ones((T, 1, 3))], axis=1)  # (T, 16, 3)
    np.savez(tmp_path / "s.npz", joints=shuffled, joint_names=np.array(names))
    out = load_joints(tmp_path / "s.npz", sk)
    np.testing.assert_array_equal(out.joints, pos)
    assert out.joint_names == list(sk.joint_names)
    assert load_joints(tmp_path / "s.npz").joint_names == names  # no skeleton: file order kept
    p = _write_csv(tmp_path / "s.csv", names, shuffled)
    np.testing.assert_array_equal(load_joints(p, sk).joints, pos)


def test_missing_joint_named(tmp_path, sk, pose):
    keep = [i for i in range(15) if sk.joint_names[i] not in ("neck", "left_wrist")]
    np.savez(tmp_path / "m.npz", joints=pose[2][:, keep], joint_names=np.array([sk.joint_names[i] for i in keep]))
    with pytest.raises(ShapeError, match=r"m\.npz.*\['neck', 'left_wrist'\].*humanoid"):
        load_joints(tmp_path / "m.npz", sk)


def test_count_mismatch_without_names(tmp_path, sk):
    p = tmp_path / "c.npy"
    np.save(p, np.zeros((2, 17, 3)))
    with pytest.raises(ShapeError) as e:
        load_joints(p, sk)
    assert str(e.value) == (
        f"{p}: has 17 joints, the skeleton 'humanoid' has 15 (joint_names not given, cannot map by name)"
    )


def test_nan_is_a_missing_joint_and_inf_an_error(tmp_path, sk, pose):
    """Issue 9: one occluded joint no longer loses the frame: NaN loads as a missing joint; inf is refused
    naming the frame and the joint (and the CSV line)."""
    pos = pose[2].copy()
    pos[2, 5, 1] = np.nan
    np.savez(tmp_path / "n.npz", joints=pos, joint_names=np.array(sk.joint_names))
    got = load_joints(tmp_path / "n.npz", sk).joints
    missing = np.isnan(got).any(-1)
    assert np.isnan(got[2, 5]).all() and int(missing.sum()) == 1
    p = _write_csv(tmp_path / "nan.csv", sk.joint_names, pos)
    np.testing.assert_array_equal(np.isnan(load_joints(p, sk).joints), np.isnan(got))
    inf = np.where(np.isnan(pos), np.inf, pos)
    np.save(tmp_path / "n.npy", inf)
    with pytest.raises(FileFormatError, match=r"n\.npy: infinite value inf at frame 2 .*joint 5"):
        load_joints(tmp_path / "n.npy")
    p = _write_csv(tmp_path / "n.csv", sk.joint_names, inf)
    with pytest.raises(FileFormatError, match=r"n\.csv, line 4: .*frame 2 .*'right_ankle'") as e:
        load_joints(p)
    assert e.value.line == 4 and e.value.path == p


def test_confidence_below_threshold_is_missing(tmp_path, sk, pose):
    pos = pose[2]
    conf = np.ones(pos.shape[:2])
    conf[0, 3] = 0.2
    np.savez(tmp_path / "c.npz", joints=pos, joint_names=np.array(sk.joint_names), confidence=conf)
    got = load_joints(tmp_path / "c.npz", sk, min_confidence=0.5).joints
    assert np.isnan(got[0, 3]).all() and int(np.isnan(got).any(-1).sum()) == 1
    np.testing.assert_array_equal(load_joints(tmp_path / "c.npz", sk).joints, pos)  # threshold 0: all kept
    # CSV: <joint>_c columns
    header = ["frame"] + [f"{n}_{a}" for n in sk.joint_names for a in "xyz"] + [f"{sk.joint_names[3]}_c"]
    rows = [",".join([str(t)] + [f"{v:.17g}" for v in f.reshape(-1)] + [str(conf[t, 3])]) for t, f in enumerate(pos)]
    (tmp_path / "c.csv").write_text("\n".join([",".join(header), *rows]) + "\n")
    got = load_joints(tmp_path / "c.csv", sk, min_confidence=0.5).joints
    assert np.isnan(got[0, 3]).all() and int(np.isnan(got).any(-1).sum()) == 1
    (tmp_path / "bad.csv").write_text("frame,a_x,a_y,a_z,b_c\n0,1,2,3,0.5\n")
    with pytest.raises(FileFormatError, match=r"confidence columns \['b_c'\] name no joint"):
        load_joints(tmp_path / "bad.csv")


def test_layout_files_convert_onto_the_skeleton(tmp_path):
    """``layout='coco17'``: 17 COCO keypoints (in COCO order, no names) become H36M-17 joints with the pelvis at
    mid-hips and the thorax at mid-shoulders."""
    from kinepose.skeleton import get_layout, get_skeleton

    coco = get_layout("coco17")
    g = np.random.default_rng(0)
    kp = g.normal(size=(4, 17, 3))
    np.save(tmp_path / "coco.npy", kp)
    sk = get_skeleton("h36m17")
    got = load_joints(tmp_path / "coco.npy", sk, layout="coco17").joints
    lh, rh = coco.index("left_hip"), coco.index("right_hip")
    ls, rs = coco.index("left_shoulder"), coco.index("right_shoulder")
    np.testing.assert_allclose(got[:, 0], (kp[:, lh] + kp[:, rh]) / 2)
    thorax = sk.index("thorax")
    np.testing.assert_allclose(got[:, thorax], (kp[:, ls] + kp[:, rs]) / 2)
    with pytest.raises(ShapeError, match="layout 'coco17' has 17"):
        np.save(tmp_path / "short.npy", kp[:, :10])
        load_joints(tmp_path / "short.npy", sk, layout="coco17")


@pytest.mark.parametrize(
    ("text", "line", "pattern"),
    [
        ("", 1, "empty file"),
        ("1,2,3\n4,5,6\n", 1, "header row is required"),
        ("frame,a_x,a_y\n0,1,2\n", 1, "groups of 3"),
        ("frame,a_x,a_z,a_y\n0,1,2,3\n", 1, r"column 3 is 'a_z', expected 'a_y'"),
        ("a_x,a_y,b_z\n0,1,2\n", 1, r"column 3 is 'b_z', expected 'a_z'"),
        ("frame,a_x,a_y,a_z\n", 1, "no data rows"),
        ("frame,a_x,a_y,a_z\n0,1,2,3\n1,1,oops,3\n", 3, r"non-numeric value 'oops' in column 3 \('a_y'\)"),
        ("frame,a_x,a_y,a_z\n0,1,2,3\n\n1,1,2\n", 4, "row has 3 cells, the header has 4 columns"),
        ("a_x,a_y,a_z,a_x,a_y,a_z\n1,2,3,4,5,6\n", None, "duplicate joint names"),
    ],
)
def test_malformed_csv(tmp_path, text, line, pattern):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(FileFormatError, match=pattern) as e:
        load_joints(p)
    assert e.value.path == str(p) and e.value.line == line
    assert str(p) in str(e.value)


def test_bad_files(tmp_path, sk):
    with pytest.raises(FileFormatError, match=r"unsupported joints file extension '\.txt'; supported: .npz, .npy"):
        load_joints(tmp_path / "j.txt")
    with pytest.raises(FileFormatError, match=r"nope\.npz: cannot read"):
        load_joints(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(FileFormatError, match=r"junk\.npz: cannot read"):
        load_joints(tmp_path / "junk.npz")
    np.savez(tmp_path / "k.npz", positions=np.zeros((1, 15, 3)))
    with pytest.raises(FileFormatError, match=r"no array 'joints'.*\['positions'\]"):
        load_joints(tmp_path / "k.npz")
    np.savez(tmp_path / "s.npz", joints=np.zeros((1, 15, 2)))
    with pytest.raises(FileFormatError, match=r"has shape \(1, 15, 2\), expected \(T, J, 3\)"):
        load_joints(tmp_path / "s.npz")
    np.savez(tmp_path / "l.npz", joints=np.zeros((1, 15, 3)), joint_names=np.array(["a", "b"]))
    with pytest.raises(FileFormatError, match="joint_names has 2 entries but joints has 15"):
        load_joints(tmp_path / "l.npz")
    (tmp_path / "b.bvh").write_text("HIERARCHY\nROOT a\n{\n")
    with pytest.raises(FileFormatError, match=r"b\.bvh"):
        load_joints(tmp_path / "b.bvh")
    with pytest.raises(KineposeError, match="scale"):
        load_joints(tmp_path / "s.npz", scale=0.0)


# ----------------------------------------------------------------------------------------------- outputs


@pytest.mark.parametrize("ext", [".npz", ".json", ".csv"])
def test_output_round_trip(tmp_path, sk, pose, ext):
    q, root, pos = pose
    obs = np.arange(15) % 3 == 0
    p = tmp_path / f"r{ext}"
    save_rotations(p, sk, torch.from_numpy(q), root, fps=25.0, observable=obs, joints=pos)
    r = load_rotations(p)
    assert r.local_quat.shape == (T, 15, 4) and r.root_pos.shape == (T, 3)
    assert r.joint_names == list(sk.joint_names)
    if ext == ".csv":
        np.testing.assert_allclose(r.local_quat, q, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(r.root_pos, root, rtol=1e-8, atol=1e-12)
        assert r.parents is None and r.observable is None and r.fps is None and r.joints is None
        header = p.read_text().splitlines()[0].split(",")
        assert header[:8] == ["frame", "root_x", "root_y", "root_z", "root_qw", "root_qx", "root_qy", "root_qz"]
        assert len(header) == 4 + 4 * 15
    else:
        np.testing.assert_allclose(r.local_quat, q, rtol=0, atol=1e-9)
        np.testing.assert_allclose(r.root_pos, root, rtol=0, atol=1e-9)
        np.testing.assert_allclose(r.joints, pos, rtol=0, atol=1e-9)
        assert r.parents == list(sk.parents) and r.fps == 25.0
        np.testing.assert_array_equal(r.observable, obs)


def test_output_defaults(tmp_path, sk, pose):
    q, root, _ = pose
    save_rotations(tmp_path / "d.npz", sk, q, root)
    r = load_rotations(tmp_path / "d.npz")
    assert r.fps == 30.0 and r.joints is None and r.observable.dtype == bool and not r.observable.any()
    save_rotations(tmp_path / "d.json", sk, q, root)
    doc = json.loads((tmp_path / "d.json").read_text())
    assert doc["format"] == "kinepose-rotations" and doc["version"] == 1
    assert doc["quaternion_order"] == "wxyz" and doc["units"] == "metres"
    assert "joints" not in doc and doc["observable"] == [False] * 15
    assert doc["local_quat"][0][0] == q[0, 0].tolist()  # w first, exact


def test_output_bvh(tmp_path, sk, pose):
    q, root, pos = pose
    p = tmp_path / "r.bvh"
    save_rotations(p, sk, q, root, fps=50.0)
    bvh = read_bvh(p)
    assert bvh.fps == 50.0
    read = bvh.positions().numpy()
    for k, name in enumerate(bvh.joint_names):  # compare by name; end sites are '<parent>_end'
        j = sk.index(name) if name in sk.joint_names else sk.index(name.replace("_elbow_end", "_wrist"))
        np.testing.assert_allclose(read[:, k], pos[:, j], atol=1e-6, err_msg=name)
    np.testing.assert_allclose(load_joints(p, sk).joints, pos, atol=1e-6)


def test_output_bvh_options_choose_units_order_and_channels(tmp_path, sk, pose):
    """``bvh_options`` lay the file out as asked: centimetres (offsets x 100, checked on the knee by hand), YXZ
    rotation channels, 6 channels per joint; positions read back within 1e-6 m."""
    q, root, pos = pose
    p = tmp_path / "r.bvh"
    save_rotations(p, sk, q, root, fps=25.0,
                   bvh_options={"rotation_order": "YXZ", "scale": 100.0, "channels_per_joint": 6})  # fmt: skip
    bvh = read_bvh(p)
    knee = bvh.joint_names.index("right_knee")
    np.testing.assert_allclose(bvh.offsets[knee], 100 * sk.offsets[sk.index("right_knee")], atol=1e-9)
    assert bvh.channels[knee] == ["Xposition", "Yposition", "Zposition", "Yrotation", "Xrotation", "Zrotation"]
    assert bvh.channel_layout() == ("YXZ", 6)
    np.testing.assert_allclose(load_joints(p, sk, scale=0.01).joints, pos, atol=1e-6)
    with pytest.raises(KineposeError, match=r"bvh_options: unknown key\(s\) \['units'\]"):
        save_rotations(tmp_path / "x.bvh", sk, q, root, bvh_options={"units": "cm"})
    with pytest.raises(KineposeError, match="rotation_order"):
        save_rotations(tmp_path / "x.bvh", sk, q, root, bvh_options={"rotation_order": "XYX"})
    assert not (tmp_path / "x.bvh").exists()


def test_output_validation(tmp_path, sk, pose):
    q, root, pos = pose
    p = tmp_path / "v.npz"
    with pytest.raises(FileFormatError, match=r"unsupported rotations file extension '\.txt'.*\.npz, \.bvh"):
        save_rotations(tmp_path / "v.txt", sk, q, root)
    with pytest.raises(ShapeError, match="local_quat"):
        save_rotations(p, sk, q[:, :14], root)
    with pytest.raises(ShapeError, match="root_pos"):
        save_rotations(p, sk, q, root[:2])
    with pytest.raises(KineposeError, match="unit quaternions"):
        save_rotations(p, sk, q * 1.01, root)
    with pytest.raises(ShapeError, match="observable"):
        save_rotations(p, sk, q, root, observable=np.ones(14, dtype=bool))
    with pytest.raises(ShapeError, match="joints"):
        save_rotations(p, sk, q, root, joints=pos[:, :3])
    with pytest.raises(KineposeError, match="fps"):
        save_rotations(p, sk, q, root, fps=0.0)
    assert _dir_files(tmp_path) == []


@pytest.mark.parametrize("ext", SUPPORTED_OUTPUTS)
def test_failing_save_is_atomic(tmp_path, sk, pose, monkeypatch, ext):
    q, root, _ = pose
    p = tmp_path / f"out{ext}"
    p.write_text("old content")
    bad = q.copy()
    bad[1, 2, 0] = np.nan
    with pytest.raises(KineposeError, match="local_quat"):
        save_rotations(p, sk, bad, root)
    assert p.read_text() == "old content" and _dir_files(tmp_path) == [p.name]

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises((FileFormatError, OSError), match="No space left"):
        save_rotations(p, sk, q, root)
    assert p.read_text() == "old content" and _dir_files(tmp_path) == [p.name]


def test_failure_mid_write_leaves_no_temp(tmp_path, sk, pose, monkeypatch):
    q, root, _ = pose
    p = tmp_path / "out.json"
    p.write_text("old content")

    def partial(doc, f, **kw):
        f.write('{"format": ')
        raise RuntimeError("interrupted")

    monkeypatch.setattr(kio.json, "dump", partial)
    with pytest.raises(RuntimeError, match="interrupted"):
        save_rotations(p, sk, q, root)
    assert p.read_text() == "old content" and _dir_files(tmp_path) == [p.name]


def test_save_into_missing_folder_creates_it(tmp_path, sk, pose):
    save_rotations(tmp_path / "no" / "r.csv", sk, pose[0], pose[1])
    assert (tmp_path / "no" / "r.csv").exists()


def test_unwritable_target_is_a_clear_error(tmp_path, sk, pose):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where a folder is needed
    with pytest.raises(FileFormatError, match="cannot write"):
        save_rotations(blocker / "r.csv", sk, pose[0], pose[1])
    assert blocker.read_text() == "x"


def test_load_rotations_malformed(tmp_path, sk, pose):
    q, root, _ = pose
    save_rotations(tmp_path / "ok.json", sk, q, root)
    doc = json.loads((tmp_path / "ok.json").read_text())

    def write(name, d):
        (tmp_path / name).write_text(json.dumps(d))
        return tmp_path / name

    with pytest.raises(FileFormatError, match="'format' is 'other', expected 'kinepose-rotations'"):
        load_rotations(write("f.json", {**doc, "format": "other"}))
    with pytest.raises(FileFormatError, match=r"missing key\(s\) \['root_pos'\]"):
        load_rotations(write("m.json", {k: v for k, v in doc.items() if k != "root_pos"}))
    with pytest.raises(FileFormatError, match=r"'root_pos' has shape \(3, 3\)"):
        load_rotations(write("s.json", {**doc, "root_pos": doc["root_pos"][:3]}))
    with pytest.raises(FileFormatError, match=r"'joint_names' has 2 entries, expected 15"):
        load_rotations(write("n.json", {**doc, "joint_names": ["a", "b"]}))
    with pytest.raises(FileFormatError, match="rectangular"):
        load_rotations(write("r.json", {**doc, "local_quat": [[[1, 0, 0, 0]], [[1, 0, 0]]]}))
    (tmp_path / "x.json").write_text('{"format": \n')
    with pytest.raises(FileFormatError, match=r"x\.json, line 2: malformed JSON"):
        load_rotations(tmp_path / "x.json")
    np.savez(tmp_path / "k.npz", local_quat=q)
    with pytest.raises(FileFormatError, match=r"missing array\(s\) \['root_pos'\]"):
        load_rotations(tmp_path / "k.npz")
    (tmp_path / "h.csv").write_text("frame,a_x,a_y,a_z\n0,1,2,3\n")
    with pytest.raises(FileFormatError, match=r"h\.csv, line 1: header must start with frame,root_x"):
        load_rotations(tmp_path / "h.csv")
    (tmp_path / "c.csv").write_text("frame,root_x,root_y,root_z,a_qw,a_qx,a_qy,a_qz\n0,0,0,0,1,0,0,0\n1,0,0,0,1,0,0\n")
    with pytest.raises(FileFormatError, match=r"c\.csv, line 3: row has 7 cells"):
        load_rotations(tmp_path / "c.csv")
    with pytest.raises(FileFormatError, match="read_bvh"):
        load_rotations(tmp_path / "r.bvh")
    with pytest.raises(FileFormatError, match="cannot read"):
        load_rotations(tmp_path / "none.npz")


@pytest.mark.parametrize("ext", [".npz", ".csv"])
def test_save_joints_round_trip(tmp_path, ext):
    from kinepose.data.formats.io import save_joints
    from kinepose.data.sources.deepmimic import load_deepmimic

    m = load_deepmimic("kick")
    truth = m.positions().numpy()
    out = tmp_path / f"kick{ext}"
    save_joints(out, truth, m.skeleton.joint_names, fps=m.fps)
    back = load_joints(out)
    np.testing.assert_array_equal(back.joints, truth)  # %.17g in CSV: exact
    assert back.joint_names == list(m.skeleton.joint_names)
    assert back.fps == (m.fps if ext == ".npz" else None)


def test_save_joints_errors_leave_no_file(tmp_path):
    from kinepose.data.formats.io import save_joints

    x = np.zeros((4, 2, 3))
    target = tmp_path / "j.npz"
    target.write_bytes(b"old")
    bad = [
        (x[:, :1], ["a", "b"], r"joints: expected shape \(T, 2, 3\)"),
        (np.full_like(x, np.nan), ["a", "b"], "joints"),
        (x, ["a", "a"], "joint_names: expected distinct"),
        (x, ["a", "b,c"], "joint_names"),
    ]
    for arr, names, msg in bad:
        with pytest.raises(ValueError, match=msg):
            save_joints(target, arr, names)
    with pytest.raises(ValueError, match="fps"):
        save_joints(target, x, ["a", "b"], fps=0)
    with pytest.raises(ValueError, match=r"\.txt"):
        save_joints(tmp_path / "j.txt", x, ["a", "b"])
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["j.npz"]


def test_cli_clip(tmp_path, capsys):
    from kinepose.cli import main
    from kinepose.data.sources.deepmimic import load_deepmimic

    assert main(["clip", "walk", "--noise-mm", "10", "--output", str(tmp_path / "w.npz")]) == 0
    assert "39 frames" in capsys.readouterr().out
    noisy = load_joints(tmp_path / "w.npz").joints
    clean = load_deepmimic("walk").positions().numpy()
    assert 0.008 < (noisy - clean).std() < 0.012  # 10 mm per coordinate
    assert main(["clip", "nope", "--output", str(tmp_path / "x.npz")]) == 2
    assert main(["clip", "walk", "--noise-mm", "-1", "--output", str(tmp_path / "x.npz")]) == 2
    assert not (tmp_path / "x.npz").exists()


def test_mediapipe_hand_layout_onto_the_hand21_preset(tmp_path):
    from kinepose.skeleton import get_layout, get_skeleton

    sk = get_skeleton("hand21")
    kp = np.random.default_rng(1).normal(size=(3, 21, 3))
    np.save(tmp_path / "mp.npy", kp)
    got = load_joints(tmp_path / "mp.npy", sk, layout="mediapipe_hand").joints
    mp = get_layout("mediapipe_hand")
    # same order, other names: the conversion is a renaming
    assert mp.joint_names != sk.joint_names
    np.testing.assert_allclose(got, kp)


def test_empty_and_na_csv_cells_are_missing_joints(tmp_path, sk, pose):
    """pandas writes NaN as an empty cell, R and spreadsheets as NA: both are missing joints, not errors."""
    pos = pose[2]
    p = _write_csv(tmp_path / "e.csv", sk.joint_names, pos)
    lines = (tmp_path / "e.csv").read_text().splitlines()
    cells = lines[2].split(",")
    cells[1 + 3 * 4] = ""  # frame 1, joint 4, x
    cells[1 + 3 * 6 + 1] = "NA"  # frame 1, joint 6, y
    lines[2] = ",".join(cells)
    (tmp_path / "e.csv").write_text("\n".join(lines) + "\n")
    got = load_joints(p, sk).joints
    missing = np.isnan(got).any(-1)
    assert missing[1, 4] and missing[1, 6] and int(missing.sum()) == 2
    cells[1] = "abc"
    lines[2] = ",".join(cells)
    (tmp_path / "e.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(FileFormatError, match="non-numeric value 'abc'"):
        load_joints(p, sk)
