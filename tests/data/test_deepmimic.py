import json

import numpy as np
import pytest
import torch

from kinepose.data.sources.deepmimic import DEEPMIMIC_CLIPS, DEFAULT_EVAL_CLIPS, clip_split, load_deepmimic
from kinepose.errors import FileFormatError, KineposeError
from kinepose.geometry import quat_to_xyzw
from kinepose.kinematics import hinge_angles


def test_all_15_clips_load():
    assert len(DEEPMIMIC_CLIPS) == 15
    for clip in DEEPMIMIC_CLIPS:
        m = load_deepmimic(clip)
        assert m.local_quat.shape == (m.num_frames, 15, 4)
        torch.testing.assert_close(m.local_quat.norm(dim=-1), torch.ones(m.num_frames, 15, dtype=torch.float64))
        assert (m.local_quat[..., 0] >= 0).all()
        assert 10 <= m.fps <= 61
    walk = load_deepmimic("walk")
    assert walk.num_frames == 39 and walk.fps == pytest.approx(1 / 0.033332)
    # knee angles as stored in the file (column 20: right knee)
    raw = np.array(json.load(open(walk.meta["path"]))["Frames"])
    np.testing.assert_allclose(hinge_angles(walk.skeleton, walk.local_quat)[:, 4].numpy(), raw[:, 20], atol=1e-12)


def test_clip_split_is_disjoint():
    train, ev = clip_split()
    assert ev == [c for c in DEEPMIMIC_CLIPS if c in DEFAULT_EVAL_CLIPS]
    assert set(ev) == {"walk", "run", "jump", "kick", "dance_b"}
    assert not set(train) & set(ev) and len(train) + len(ev) == 15
    with pytest.raises(KineposeError, match="not among the clips"):
        clip_split(["walk", "moonwalk"])


@pytest.mark.parametrize("clip", DEFAULT_EVAL_CLIPS)
def test_fk_matches_pybullet(clip):
    """Our FK against pybullet's own forward kinematics of the same URDF (globalScaling 0.25)."""
    pb = pytest.importorskip("pybullet")
    from kinepose.skeleton.presets.humanoid import humanoid_urdf_path

    m = load_deepmimic(clip)
    sk = m.skeleton
    pos = m.positions().numpy()
    angles = hinge_angles(sk, m.local_quat)
    cid = pb.connect(pb.DIRECT)
    try:
        body = pb.loadURDF(humanoid_urdf_path(), globalScaling=0.25, physicsClientId=cid)
        names = [
            pb.getJointInfo(body, i, physicsClientId=cid)[1].decode()
            for i in range(pb.getNumJoints(body, physicsClientId=cid))
        ]
        idx = [sk.index(n) for n in names]
        err = 0.0
        for t in range(m.num_frames):
            pb.resetBasePositionAndOrientation(
                body, m.root_pos[t].tolist(), quat_to_xyzw(m.local_quat[t, 0]).tolist(), physicsClientId=cid
            )
            for i, j in enumerate(idx):
                if sk.kinds[j] == "ball" and j > 0:
                    pb.resetJointStateMultiDof(body, i, quat_to_xyzw(m.local_quat[t, j]).tolist(), physicsClientId=cid)
                elif sk.kinds[j] == "hinge":
                    pb.resetJointState(body, i, float(angles[t, j]), physicsClientId=cid)
            for i, j in enumerate(idx):
                link = pb.getLinkState(body, i, computeForwardKinematics=True, physicsClientId=cid)
                err = max(err, float(np.abs(np.array(link[4]) - pos[t, j]).max()))
    finally:
        pb.disconnect(cid)
    assert err < 1e-6, f"max FK difference to pybullet {err} m"


def _write(tmp_path, frames, name="clip.txt"):
    p = tmp_path / name
    p.write_text(json.dumps({"Loop": "none", "Frames": frames}).replace("], [", "],\n["))
    return str(p)


def test_malformed_clips(tmp_path):
    good = json.load(open(load_deepmimic("run").meta["path"]))["Frames"][:3]
    with pytest.raises(FileFormatError, match="line 2: frame 1 has 43 values, expected 44"):
        _write_and_load = _write(tmp_path, [good[0], good[1][:-1], good[2]])
        load_deepmimic(_write_and_load)
    bad = [list(f) for f in good]
    bad[2][5] = 0.0
    bad[2][4:8] = [0.0, 0.0, 0.0, 0.0]
    with pytest.raises(FileFormatError, match="line 3: frame 2: quaternion of joint 'root' has norm 0"):
        load_deepmimic(_write(tmp_path, bad))
    p = tmp_path / "broken.txt"
    p.write_text('{"Frames": [[1, 2,\n 3]')
    with pytest.raises(FileFormatError, match="broken.txt, line 2: not valid JSON"):
        load_deepmimic(str(p))
    p.write_text('{"Frames": []}')
    with pytest.raises(FileFormatError, match="non-empty 'Frames'"):
        load_deepmimic(str(p))
    with pytest.raises(KineposeError, match="unknown DeepMimic clip 'moonwalk'"):
        load_deepmimic("moonwalk")
    with pytest.raises(FileFormatError, match="cannot read"):
        load_deepmimic(str(tmp_path / "missing.txt"))


@pytest.mark.parametrize("clip", DEFAULT_EVAL_CLIPS)
def test_bvh_round_trip_on_clips(clip, tmp_path):
    """Issue requirement: BVH write -> read gives the same joint positions to 1e-6 m."""
    from kinepose.data.formats.bvh import read_bvh, write_motion_bvh

    m = load_deepmimic(clip)
    path = tmp_path / f"{clip}.bvh"
    order = write_motion_bvh(path, m)
    back = read_bvh(path)
    assert back.num_frames == m.num_frames and back.frame_time == pytest.approx(m.frame_time, rel=1e-9)
    err = (back.positions() - m.positions()[:, order]).norm(dim=-1).max()
    assert float(err) < 1e-6
    # and through a Motion on the skeleton read from the file
    again = back.to_motion()
    torch.testing.assert_close(again.positions(), m.positions()[:, order], atol=1e-6, rtol=0)
