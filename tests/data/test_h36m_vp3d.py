"""VideoPose3D's Human3.6M files: the 32 -> 17 reduction, 2D cameras and metadata, the subject split, errors.

The fixtures are written here as VideoPose3D's ``prepare_data_h36m.py`` writes them: ``np.savez`` of pickled
dicts; two subjects, two actions.
"""

from __future__ import annotations

import numpy as np
import pytest

from kinepose.data.formats import H36MSubjects, load_h36m_2d, load_h36m_3d
from kinepose.data.formats.h36m_vp3d import VP3D_H36M17_NAMES
from kinepose.errors import FileFormatError, KineposeError
from kinepose.skeleton.layouts import get_layout
from kinepose.skeleton.presets.h36m import H36M17_NAMES

# VideoPose3D h36m_dataset.py: remove_joints([4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28, 29, 30, 31])
KEPT = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
SUBJECTS = {"S1": ("Walking", "Eating 2"), "S9": ("Walking 1", "Sitting")}
META = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}


def _poses(n: int, s: int, a: int, joints: int = 32) -> np.ndarray:
    """(n, joints, 3): x = joint index, y = frame, z = 10 * subject + action, all exact in float32."""
    out = np.zeros((n, joints, 3), dtype=np.float32)
    out[..., 0] = np.arange(joints)
    out[..., 1] = np.arange(n)[:, None]
    out[..., 2] = 10 * s + a
    return out


def _tree_3d() -> dict:
    return {
        subj: {act: _poses(4 + a, s, a) for a, act in enumerate(acts)}
        for s, (subj, acts) in enumerate(SUBJECTS.items())
    }


def _tree_2d() -> dict:
    return {
        subj: {act: [_poses(5, s, a, 17)[..., :2] + 1000 * c for c in range(4)] for a, act in enumerate(acts)}
        for s, (subj, acts) in enumerate(SUBJECTS.items())
    }


@pytest.fixture
def file_3d(tmp_path) -> str:
    path = tmp_path / "data_3d_h36m.npz"
    np.savez_compressed(path, positions_3d=_tree_3d())
    return str(path)


@pytest.fixture
def file_2d(tmp_path) -> str:
    path = tmp_path / "data_2d_h36m_gt.npz"
    np.savez_compressed(path, positions_2d=_tree_2d(), metadata=META)
    return str(path)


def test_reduction_picks_videopose3d_joints(file_3d):
    out = load_h36m_3d(file_3d)
    assert list(out) == ["S1", "S9"] and list(out["S1"]) == ["Walking", "Eating 2"]
    walk = out["S1"]["Walking"]
    assert walk.shape == (4, 17, 3) and walk.dtype == np.float32
    np.testing.assert_array_equal(walk[0, :, 0], KEPT)  # the joint index encoded in x
    np.testing.assert_array_equal(walk[:, 0, 1], np.arange(4))
    assert out["S9"]["Sitting"].shape == (5, 17, 3) and (out["S9"]["Sitting"][..., 2] == 11).all()


def test_raw_32_joints(file_3d):
    raw = load_h36m_3d(file_3d, joints=32)
    np.testing.assert_array_equal(raw["S1"]["Eating 2"], _poses(5, 0, 1))
    with pytest.raises(KineposeError, match="joints: expected 17 .* or 32"):
        load_h36m_3d(file_3d, joints=16)


def test_kept_order_is_kinepose_h36m17():
    """VideoPose3D's 17 names, spelled as kinepose spells them, are the h36m17 preset's and layout's in order."""

    def spell(name: str) -> str:
        side = {"L": "left_", "R": "right_"}.get(name[0], "") if name[1:2].isupper() else ""
        base = name[1:] if side else name
        return side + base.lower().replace("/", "_")

    assert tuple(spell(n) for n in VP3D_H36M17_NAMES) == H36M17_NAMES == get_layout("h36m17").joint_names


def test_2d_cameras_and_metadata(file_2d):
    pos, meta = load_h36m_2d(file_2d)
    assert meta == META
    cams = pos["S9"]["Walking 1"]
    assert len(cams) == 4 and all(c.shape == (5, 17, 2) for c in cams)
    np.testing.assert_array_equal(cams[2][3, :, 0], np.arange(17) + 2000)  # camera 2, frame 3
    np.testing.assert_array_equal(cams[2][3, :, 1], 2003)
    lay = get_layout("h36m17")  # the symmetry of 'h36m' files is the layout's left/right pairs
    assert sorted(zip(*meta["keypoints_symmetry"], strict=True)) == sorted(lay.left_right)


def test_subject_split(file_3d):
    sp = H36MSubjects()
    assert sp.train == ("S1", "S5", "S6", "S7", "S8") and sp.test == ("S9", "S11")
    assert sp.split("all") == sp.train + sp.test
    data = load_h36m_3d(file_3d)
    with pytest.raises(KineposeError, match=r"subjects \['S11'\] of the 'test' split are missing"):
        sp.select(data, "test")
    assert list(H36MSubjects(train=("S1",), test=("S9",)).select(data, "test")) == ["S9"]
    with pytest.raises(KineposeError, match="split: expected 'train', 'test' or 'all'"):
        sp.split("val")


# ----------------------------------------------------------------------------------------------- errors


def test_3d_errors(tmp_path):
    bad = _tree_3d()
    bad["S9"]["Sitting"] = bad["S9"]["Sitting"][:, :31]
    np.savez(tmp_path / "a.npz", positions_3d=bad)
    with pytest.raises(
        FileFormatError,
        match=r"subject S9 action 'Sitting': positions_3d has shape \(5, 31, 3\), expected \(N, 32, 3\)",
    ):
        load_h36m_3d(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", poses=np.zeros(3))
    with pytest.raises(FileFormatError, match=r"b\.npz: no array 'positions_3d' .* the file holds \['poses'\]"):
        load_h36m_3d(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", positions_3d=np.zeros((4, 32, 3)))
    with pytest.raises(FileFormatError, match="'positions_3d': expected a pickled dict"):
        load_h36m_3d(tmp_path / "c.npz")
    (tmp_path / "d.npz").write_text("not a zip")
    with pytest.raises(FileFormatError, match=r"d\.npz: cannot read as \.npz"):
        load_h36m_3d(tmp_path / "d.npz")
    bad = _tree_3d()
    bad["S1"]["Walking"][2, 5, 1] = np.nan
    np.savez(tmp_path / "e.npz", positions_3d=bad)
    with pytest.raises(
        FileFormatError, match=r"subject S1 action 'Walking': positions_3d has 1 non-finite .* \(2, 5, 1\)"
    ):
        load_h36m_3d(tmp_path / "e.npz")
    np.savez(tmp_path / "f.npz", positions_3d={"S1": [1, 2]})
    with pytest.raises(FileFormatError, match="subject S1: expected a non-empty dict keyed by action"):
        load_h36m_3d(tmp_path / "f.npz")
    with pytest.raises(FileFormatError, match="no such file"):
        load_h36m_3d(tmp_path / "missing.npz")


def test_2d_errors(tmp_path):
    bad = _tree_2d()
    bad["S1"]["Eating 2"][2] = bad["S1"]["Eating 2"][2][:, :16]
    np.savez(tmp_path / "a.npz", positions_2d=bad, metadata=META)
    with pytest.raises(
        FileFormatError,
        match=r"subject S1 action 'Eating 2' camera 2: positions_2d has shape \(5, 16, 2\), expected \(N, 17, 2\)",
    ):
        load_h36m_2d(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", positions_2d=_tree_2d())
    with pytest.raises(FileFormatError, match="no array 'metadata'"):
        load_h36m_2d(tmp_path / "b.npz")
    np.savez(
        tmp_path / "c.npz", positions_2d=_tree_2d(), metadata={"layout_name": "h36m", "keypoints_symmetry": [[], []]}
    )
    with pytest.raises(FileFormatError, match="metadata: missing key 'num_joints'"):
        load_h36m_2d(tmp_path / "c.npz")
    np.savez(tmp_path / "d.npz", positions_2d=_tree_2d(), metadata={**META, "keypoints_symmetry": [[4, 5], [1, 17]]})
    with pytest.raises(FileFormatError, match="keypoints_symmetry .* does not pair joints of 0..16"):
        load_h36m_2d(tmp_path / "d.npz")
    bad = _tree_2d()
    bad["S9"]["Walking 1"] = []
    np.savez(tmp_path / "e.npz", positions_2d=bad, metadata=META)
    with pytest.raises(FileFormatError, match="subject S9 action 'Walking 1': expected a non-empty list of per-camera"):
        load_h36m_2d(tmp_path / "e.npz")
