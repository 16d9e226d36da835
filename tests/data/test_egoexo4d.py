"""Ego-Exo4D hand-pose annotations: values at the right indices, NaN/null/empty hands, frame order, cameras, errors.

The fixtures are written here in the benchmark's format (``handpose/data_preparation`` output): two takes, a few
frames, frame keys out of numeric order, an absent hand, NaN and null joints.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from kinepose.data.formats import EgoExoHandClip, load_egoexo4d_hands
from kinepose.data.formats.egoexo4d import EGOEXO4D_HAND_JOINTS
from kinepose.errors import FileFormatError, KineposeError
from kinepose.metrics import egoexo4d_mpjpe
from kinepose.skeleton.layouts import get_layout

TAKES = ("take-a", "take-b")
FRAMES = {"take-a": ("30", "3", "12"), "take-b": ("7", "100")}  # not in numeric (nor string) order
HAND_IDX = {"right": 0, "left": 1}


def _kp2(k: int, f: int, h: int) -> list:
    return [[f * 100.0 + j, 1000.0 * k + 100.0 * h + j] for j in range(21)]


def _kp3(k: int, f: int, h: int) -> list:
    return [[0.001 * f, 0.1 * k + 0.01 * h, 0.5 + 0.001 * j] for j in range(21)]


def _frame(k: int, f: int, take: str) -> dict:
    doc = {}
    for hand, h in HAND_IDX.items():
        kp2, kp3, valid = _kp2(k, f, h), _kp3(k, f, h), [True] * 21
        doc[f"{hand}_hand_2d"], doc[f"{hand}_hand_3d"] = kp2, kp3
        doc[f"{hand}_hand_bbox"] = [f + 1.0, f + 2.0, f + 3.0, f + 4.0 + h]
        doc[f"{hand}_hand_valid_3d"] = valid
    if take == "take-a" and f == 12:  # left hand not annotated
        for key in ("2d", "3d", "bbox", "valid_3d"):
            doc[f"left_hand_{key}"] = []
    if take == "take-a" and f == 3:  # right hand: joint 5 NaN, joint 7 null, joint 9 one null coordinate
        doc["right_hand_3d"][5] = [math.nan] * 3
        doc["right_hand_3d"][7] = None
        doc["right_hand_3d"][9] = [0.1, None, 0.2]
        doc["right_hand_2d"][5] = [math.nan, math.nan]
        doc["right_hand_2d"][7] = [None, None]
        for j in (5, 7, 9):
            doc["right_hand_valid_3d"][j] = False
        doc["right_hand_valid_3d"][0] = False  # the wrist kept though invalid, as the benchmark does
    doc["metadata"] = {"take_uid": take, "take_name": f"name_{take}", "frame_number": f}
    return doc


def _annotation() -> dict:
    return {t: {fr: _frame(k, int(fr), t) for fr in FRAMES[t]} for k, t in enumerate(TAKES)}


def _write(path, doc) -> str:
    path.write_text(json.dumps(doc))  # json writes NaN as NaN, which Python's json reads back
    return str(path)


def _cameras() -> dict:
    out = {}
    for k, t in enumerate(TAKES):
        K = [[150.0 + k, 0.0, 255.5], [0.0, 150.0 + k, 255.5], [0.0, 0.0, 1.0]]
        ext = {fr: [[1.0, 0, 0, int(fr)], [0, 1.0, 0, k], [0, 0, 1.0, 0]] for fr in FRAMES[t]}
        out[t] = {"camera_intrinsics": K, "camera_extrinsics": ext}
    del out["take-a"]["camera_extrinsics"]["12"]  # a frame with no camera pose
    return out


@pytest.fixture
def anno(tmp_path) -> str:
    return _write(tmp_path / "anno.json", _annotation())


def _clip(clips: list[EgoExoHandClip], take: str, hand: str) -> EgoExoHandClip:
    (c,) = [c for c in clips if c.take_uid == take and c.hand == hand]
    return c


def test_one_clip_per_take_and_hand_frames_sorted(anno):
    clips = load_egoexo4d_hands(anno)
    assert [(c.take_uid, c.hand) for c in clips] == [(t, h) for t in TAKES for h in ("right", "left")]
    a = _clip(clips, "take-a", "right")
    assert a.frames.tolist() == [3, 12, 30] and a.frames.dtype == np.int64
    assert _clip(clips, "take-b", "left").frames.tolist() == [7, 100]
    assert a.keypoints_2d.shape == (3, 21, 2) and a.joints_3d.shape == (3, 21, 3)
    assert a.valid_3d.shape == (3, 21) and a.visible.shape == (3,) and a.bbox.shape == (3, 4)
    assert a.K is None and a.extrinsics is None


def test_values_at_the_right_indices(anno):
    clips = load_egoexo4d_hands(anno)
    for k, take in enumerate(TAKES):
        for hand, h in HAND_IDX.items():
            c = _clip(clips, take, hand)
            for t, f in enumerate(c.frames.tolist()):
                if not c.visible[t]:
                    continue
                want2, want3 = np.array(_kp2(k, f, h)), np.array(_kp3(k, f, h))
                ok = c.valid_3d[t]
                np.testing.assert_array_equal(c.keypoints_2d[t][ok], want2[ok])
                np.testing.assert_array_equal(c.joints_3d[t][ok], want3[ok])
                np.testing.assert_array_equal(c.bbox[t], [f + 1, f + 2, f + 3, f + 4 + h])
    b = _clip(clips, "take-b", "left")  # take index 1, frame 100, left hand (1), joint 20
    np.testing.assert_array_equal(b.keypoints_2d[1, 20], [100 * 100 + 20, 1000 + 100 + 20])
    np.testing.assert_allclose(b.joints_3d[1, 20], [0.1, 0.11, 0.52])


def test_nan_null_and_absent_hand(anno):
    clips = load_egoexo4d_hands(anno)
    r = _clip(clips, "take-a", "right")  # frame 3 is row 0
    for j in (5, 7, 9):
        assert np.isnan(r.joints_3d[0, j]).all() and not r.valid_3d[0, j]
    assert np.isnan(r.keypoints_2d[0, [5, 7]]).all()
    assert np.isfinite(r.keypoints_2d[0, 9]).all()  # its 2D is there
    assert not r.valid_3d[0, 0] and np.isfinite(r.joints_3d[0, 0]).all()  # the kept wrist
    assert r.valid_3d[0].sum() == 17 and r.valid_3d[1:].all()
    left = _clip(clips, "take-a", "left")  # frame 12 (row 1): not annotated
    assert left.visible.tolist() == [True, False, True]
    assert np.isnan(left.keypoints_2d[1]).all() and np.isnan(left.joints_3d[1]).all()
    assert np.isnan(left.bbox[1]).all() and not left.valid_3d[1].any()


def test_hands_argument(anno):
    clips = load_egoexo4d_hands(anno, hands="left")
    assert [c.hand for c in clips] == ["left", "left"]
    assert [c.hand for c in load_egoexo4d_hands(anno, hands=("left", "right"))][:2] == ["left", "right"]
    for bad in ((), ("right", "right"), ("middle",)):
        with pytest.raises(KineposeError, match="hands: expected distinct values"):
            load_egoexo4d_hands(anno, hands=bad)


def test_per_take_camera_file(anno, tmp_path):
    cams = _write(tmp_path / "cams.json", _cameras())
    clips = load_egoexo4d_hands(anno, cams)
    a, b = _clip(clips, "take-a", "right"), _clip(clips, "take-b", "left")
    np.testing.assert_array_equal(a.K, [[150, 0, 255.5], [0, 150, 255.5], [0, 0, 1]])
    assert b.K[0, 0] == 151.0
    assert a.extrinsics.shape == (3, 3, 4)
    np.testing.assert_array_equal(a.extrinsics[:, 0, 3][[0, 2]], [3, 30])  # aligned with the sorted frames
    assert np.isnan(a.extrinsics[1]).all()  # frame 12 has no camera pose
    np.testing.assert_array_equal(b.extrinsics[:, 1, 3], [1, 1])


def test_single_take_camera_files(tmp_path):
    anno = _write(tmp_path / "one.json", {"take-b": _annotation()["take-b"]})
    cam = _cameras()["take-b"]
    for doc in (cam, {"aria01": cam, "cam01": cam, "metadata": {"take_uid": "take-b"}}):  # plain, raw Ego-Exo4D
        (c,) = load_egoexo4d_hands(anno, _write(tmp_path / "cam.json", doc), hands="right")
        assert c.K[0, 0] == 151.0 and c.extrinsics[1, 0, 3] == 100


def test_joint_order_is_mediapipe_hand():
    """Ego-Exo4D's order (wrist, then <finger>_1 next to the wrist .. <finger>_4 the tip) is mediapipe_hand's and
    kinepose_hand21's, index for index; its bones (the benchmark's joint_dist_angle_check: joints 1, 5, 9, 13, 17
    attach to the wrist, others to j - 1) are those layouts' parents."""
    mp = get_layout("mediapipe_hand")
    stage = {"thumb": ("cmc", "mcp", "ip", "tip"), "finger": ("mcp", "pip", "dip", "tip")}
    for name, mp_name in zip(EGOEXO4D_HAND_JOINTS, mp.joint_names, strict=True):
        if name == "wrist":
            assert mp_name == "wrist"
            continue
        finger, k = name.rsplit("_", 1)
        part = stage["thumb" if finger == "thumb" else "finger"][int(k) - 1]
        assert mp_name in (f"{finger}_{part}", f"{finger}_finger_{part}")
    want_parents = [-1] + [0 if j in (1, 5, 9, 13, 17) else j - 1 for j in range(1, 21)]
    assert list(mp.parents) == want_parents == list(get_layout("kinepose_hand21").parents)


def test_loaded_ground_truth_scores_zero_against_itself(anno):
    c = _clip(load_egoexo4d_hands(anno), "take-a", "right")  # NaN at invalid joints is allowed by the metric
    assert egoexo4d_mpjpe(c.joints_3d, c.joints_3d, c.valid_3d).item() == 0.0


# ----------------------------------------------------------------------------------------------- errors


def _bad(tmp_path, edit) -> str:
    doc = _annotation()
    edit(doc)
    return _write(tmp_path / "bad.json", doc)


def test_not_json(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"take-a": {"3": ')
    with pytest.raises(FileFormatError, match=r"x\.json, line 1: not valid JSON"):
        load_egoexo4d_hands(p)
    with pytest.raises(FileFormatError, match="no such file"):
        load_egoexo4d_hands(tmp_path / "missing.json")
    with pytest.raises(FileFormatError, match="expected a non-empty object"):
        load_egoexo4d_hands(_write(tmp_path / "list.json", [1, 2]))


def test_wrong_joint_count(tmp_path):
    path = _bad(tmp_path, lambda d: d["take-a"]["12"]["right_hand_2d"].pop())
    with pytest.raises(
        FileFormatError, match=r"bad\.json: take take-a frame 12: right_hand_2d has 20 joints, expected 21"
    ):
        load_egoexo4d_hands(path)


def test_wrong_coordinate_count_and_values(tmp_path):
    def three_coords(d):
        d["take-b"]["7"]["left_hand_2d"][4] = [1.0, 2.0, 3.0]

    with pytest.raises(
        FileFormatError, match="take take-b frame 7: left_hand_2d: joint 4 has 3 coordinates, expected 2"
    ):
        load_egoexo4d_hands(_bad(tmp_path, three_coords))

    def text(d):
        d["take-b"]["7"]["left_hand_3d"][4] = ["a", 0, 0]

    with pytest.raises(FileFormatError, match="left_hand_3d: expected numbers"):
        load_egoexo4d_hands(_bad(tmp_path, text))

    def inf(d):
        d["take-b"]["7"]["left_hand_3d"][4] = [math.inf, 0, 0]

    with pytest.raises(FileFormatError, match="joint 4 has an infinite coordinate"):
        load_egoexo4d_hands(_bad(tmp_path, inf))


def test_missing_key(tmp_path):
    path = _bad(tmp_path, lambda d: d["take-b"]["100"].pop("right_hand_3d"))
    with pytest.raises(FileFormatError, match="take take-b frame 100: missing key 'right_hand_3d'"):
        load_egoexo4d_hands(path)

    def no_left(d):
        for fr in d["take-a"].values():
            for key in ("2d", "3d", "bbox", "valid_3d"):
                fr.pop(f"left_hand_{key}")

    path = _bad(tmp_path, no_left)
    with pytest.raises(FileFormatError, match="take take-a frame 30: missing key 'left_hand_3d'"):
        load_egoexo4d_hands(path)
    assert len(load_egoexo4d_hands(path, hands="right")) == 2  # the right hand alone reads


def test_bbox_only_file_reads(tmp_path):
    """The test split's public file holds only the boxes: 2D/3D come back NaN, no joint valid."""
    doc = {t: {fr: {"right_hand_bbox": [1, 2, 3, 4], "left_hand_bbox": [], "metadata": {}} for fr in FRAMES[t]}
           for t in TAKES}  # fmt: skip
    clips = load_egoexo4d_hands(_write(tmp_path / "boxes.json", doc))
    r, left = clips[0], clips[1]
    assert r.visible.all() and not left.visible.any()
    assert np.isnan(r.joints_3d).all() and not r.valid_3d.any()
    np.testing.assert_array_equal(r.bbox[0], [1, 2, 3, 4])


def test_other_bad_values(tmp_path):
    cases = [
        (lambda d: d["take-a"].__setitem__("x1", d["take-a"]["3"]), "take take-a: frame key 'x1' is not an integer"),
        (
            lambda d: d["take-a"]["3"].__setitem__("left_hand_bbox", [1, 2, 3]),
            r"left_hand_bbox has 3 values, expected 4",
        ),
        (lambda d: d["take-a"]["30"]["right_hand_valid_3d"].pop(), "right_hand_valid_3d has 20 joints, expected 21"),
        (lambda d: d["take-a"]["30"]["right_hand_valid_3d"].__setitem__(2, "yes"), "valid_3d: expected booleans"),
        (lambda d: d["take-b"].__setitem__("7", []), "take take-b frame 7: expected an object, got list"),
        (lambda d: d.__setitem__("take-b", {}), "take take-b: expected a non-empty object"),
    ]
    for edit, match in cases:
        with pytest.raises(FileFormatError, match=match):
            load_egoexo4d_hands(_bad(tmp_path, edit))


def test_valid_joint_without_position(tmp_path):
    def nan_valid(d):
        d["take-b"]["7"]["right_hand_3d"][3] = None  # valid_3d still True

    with pytest.raises(
        FileFormatError, match=r"take take-b frame 7: right_hand_valid_3d marks joint 3 \(thumb_3\) valid"
    ):
        load_egoexo4d_hands(_bad(tmp_path, nan_valid))


def test_camera_errors(anno, tmp_path):
    cams = _cameras()
    del cams["take-b"]
    with pytest.raises(FileFormatError, match="take take-b of the annotation file has no camera entry"):
        load_egoexo4d_hands(anno, _write(tmp_path / "c1.json", cams))
    with pytest.raises(FileFormatError, match="holds one take's camera .* the annotation file has 2 takes"):
        load_egoexo4d_hands(anno, _write(tmp_path / "c2.json", _cameras()["take-a"]))
    cams = _cameras()
    cams["take-a"]["camera_intrinsics"] = [[1, 0], [0, 1]]
    with pytest.raises(FileFormatError, match=r"take take-a: camera_intrinsics has shape \(2, 2\), expected \(3, 3\)"):
        load_egoexo4d_hands(anno, _write(tmp_path / "c3.json", cams))
    cams = _cameras()
    cams["take-b"]["camera_extrinsics"]["7"] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    with pytest.raises(FileFormatError, match=r"camera_extrinsics frame 7 has shape \(3, 3\), expected \(3, 4\)"):
        load_egoexo4d_hands(anno, _write(tmp_path / "c4.json", cams))
    cams = _cameras()
    del cams["take-b"]["camera_extrinsics"]
    with pytest.raises(FileFormatError, match="take take-b: missing key 'camera_extrinsics'"):
        load_egoexo4d_hands(anno, _write(tmp_path / "c5.json", cams))


def test_hand_crops_from_the_image_folder(tmp_path):
    """Images at img_dir/{split}/{take_name}/{frame:06d}.jpg (the benchmark's layout): each annotated hand cut
    around its box (square, 1.25 x the longer side) and resized; keypoints mapped by the same affine as
    cv2.transform; the box's centre lands at the crop's centre; a missing image names its path."""
    import cv2

    from kinepose.data.formats import egoexo4d_hand_crops
    from kinepose.errors import FileFormatError

    frames = {"5": None, "9": None}
    doc = {"uid-1": {}}
    for fr in frames:
        f = int(fr)
        box = [100.0 + f, 200.0, 180.0 + f, 240.0]  # 80 x 40: the crop side is 1.25 * 80 = 100 px
        kp2 = [[box[0] + 4 * j, 210.0 + j] for j in range(21)]
        doc["uid-1"][fr] = {"right_hand_2d": kp2, "right_hand_3d": [[0.0, 0.0, 0.4]] * 21, "right_hand_bbox": box,
                            "right_hand_valid_3d": [True] * 21, "left_hand_2d": [], "left_hand_3d": [],
                            "left_hand_bbox": [], "left_hand_valid_3d": [],
                            "metadata": {"take_uid": "uid-1", "take_name": "cmu_bike_01_2",
                                         "frame_number": f}}  # fmt: skip
    anno = _write(tmp_path / "anno.json", doc)
    right = load_egoexo4d_hands(anno, hands="right")[0]
    assert right.take_name == "cmu_bike_01_2"
    img_dir = tmp_path / "aria"
    (img_dir / "train" / "cmu_bike_01_2").mkdir(parents=True)
    with pytest.raises(FileFormatError, match=r"train/cmu_bike_01_2/000005.jpg"):
        egoexo4d_hand_crops(right, img_dir, "train", size=64)
    for fr in frames:
        img = np.zeros((512, 512, 3), np.uint8)
        x1, y1, x2, y2 = (int(v) for v in doc["uid-1"][fr]["right_hand_bbox"])
        img[y1:y2, x1:x2] = (0, 0, 255)  # BGR red box
        cv2.imwrite(str(img_dir / "train" / "cmu_bike_01_2" / f"{int(fr):06d}.jpg"), img)
    crops = egoexo4d_hand_crops(right, img_dir, "train", size=64)
    assert crops.images.shape == (2, 64, 64, 3) and list(crops.frames) == [5, 9]
    red = crops.images[0, ..., 0] > 128  # RGB: the box is red
    ys, xs = np.nonzero(red)
    assert abs(xs.mean() - 31.5) < 1.0 and abs(ys.mean() - 31.5) < 1.0  # the box's centre at the crop's centre
    assert abs((xs.max() - xs.min() + 1) - 64 * 80 / 100) <= 2  # 80 px of the 100 px side
    ref = cv2.transform(right.keypoints_2d[:1].astype(np.float64), crops.affine[0])[0]
    np.testing.assert_allclose(crops.keypoints_2d[0], ref, atol=1e-9)
    (img_dir / "train" / "cmu_bike_01_2" / "000009.jpg").unlink()
    assert list(egoexo4d_hand_crops(right, img_dir, "train", size=64, skip_missing=True).frames) == [5]
