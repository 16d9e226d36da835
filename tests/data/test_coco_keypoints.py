"""COCO keypoint files: values, visibility and NaN, image names, layout check and conversion, errors.

The fixture is written here in COCO's ``person_keypoints_<split>.json`` format: two images, three annotations
(one with unlabelled keypoints, one crowd)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kinepose.data.formats import CocoKeypoints, load_coco_keypoints
from kinepose.errors import FileFormatError
from kinepose.skeleton.layouts import get_layout

COCO = get_layout("coco17")
NAMES = list(COCO.joint_names)  # COCO's own spelling: "nose", "left_eye", ...


def _kp(a: int, hidden: tuple[int, ...] = ()) -> list:
    flat = []
    for j in range(17):
        if j in hidden:
            flat += [0, 0, 0]
        else:
            flat += [100.0 * a + j, 10.0 * j + 0.5, 1 if j % 2 else 2]
    return flat


def _doc() -> dict:
    return {
        "info": {"description": "tiny"},
        "images": [{"id": 5, "file_name": "000000000005.jpg", "width": 640, "height": 480},
                   {"id": 9, "file_name": "000000000009.jpg", "width": 640, "height": 480}],
        "annotations": [
            {"id": 101, "image_id": 9, "category_id": 1, "keypoints": _kp(0), "num_keypoints": 17,
             "bbox": [1.0, 2.0, 30.0, 40.0], "area": 1200.0, "iscrowd": 0},
            {"id": 102, "image_id": 5, "category_id": 1, "keypoints": _kp(1, hidden=(1, 2, 15)), "num_keypoints": 14,
             "bbox": [5, 6, 7, 8], "iscrowd": 0},
            {"id": 103, "image_id": 9, "category_id": 1, "keypoints": [0] * 51, "num_keypoints": 0,
             "bbox": [0, 0, 100, 100], "iscrowd": 1},
        ],
        "categories": [{"id": 1, "name": "person", "supercategory": "person", "keypoints": NAMES,
                        "skeleton": [[16, 14], [14, 12], [17, 15]]}],
    }  # fmt: skip


def _write(path, doc) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


@pytest.fixture
def coco(tmp_path) -> CocoKeypoints:
    return load_coco_keypoints(_write(tmp_path / "person_keypoints_val.json", _doc()))


def test_values_and_order(coco):
    assert len(coco) == 3 and coco.layout == "coco17"
    assert coco.annotation_ids.tolist() == [101, 102, 103] and coco.image_ids.tolist() == [9, 5, 9]
    assert coco.file_names == ["000000000009.jpg", "000000000005.jpg", "000000000009.jpg"]
    assert coco.keypoints.shape == (3, 17, 2) and coco.visibility.shape == (3, 17)
    np.testing.assert_array_equal(coco.keypoints[0, :, 0], np.arange(17))
    np.testing.assert_array_equal(coco.keypoints[1, 16], [116, 160.5])  # annotation 1, right_ankle
    np.testing.assert_array_equal(coco.visibility[0], [1 if j % 2 else 2 for j in range(17)])
    np.testing.assert_array_equal(coco.bbox, [[1, 2, 30, 40], [5, 6, 7, 8], [0, 0, 100, 100]])
    assert coco.iscrowd.tolist() == [False, False, True]


def test_unlabelled_keypoints_are_nan(coco):
    assert np.isnan(coco.keypoints[1, [1, 2, 15]]).all() and (coco.visibility[1, [1, 2, 15]] == 0).all()
    assert np.isfinite(np.delete(coco.keypoints[1], [1, 2, 15], axis=0)).all()
    assert np.isnan(coco.keypoints[2]).all() and (coco.visibility[2] == 0).all()
    assert (coco.visibility > 0).sum(-1).tolist() == [17, 14, 0]  # num_keypoints


def test_to_layout_2d(coco):
    h36m = coco.to_layout("h36m17")
    lay = get_layout("h36m17")
    assert h36m.shape == (3, 17, 2)
    mid_hips = (coco.keypoints[0, COCO.index("left_hip")] + coco.keypoints[0, COCO.index("right_hip")]) / 2
    np.testing.assert_allclose(h36m[0, lay.index("hip")], mid_hips)  # MotionBERT's coco2h36m pelvis
    np.testing.assert_array_equal(h36m[0, lay.index("left_wrist")], coco.keypoints[0, COCO.index("left_wrist")])
    assert np.isnan(h36m[1, lay.index("head")]).all()  # mid-eyes, both unlabelled in annotation 102
    assert np.isnan(h36m[1, lay.index("left_foot")]).all()  # its left ankle is unlabelled
    assert np.isfinite(h36m[1, lay.index("right_foot")]).all()
    assert coco.to_layout("coco17").shape == (3, 17, 2)


def test_spelling_is_normalized(tmp_path):
    doc = _doc()
    doc["categories"][0]["keypoints"] = [n.replace("_", "-").title() for n in NAMES]  # "Left-Eye"
    assert len(load_coco_keypoints(_write(tmp_path / "a.json", doc))) == 3
    doc["categories"][0]["keypoints"] = [n.title().replace("_", "") for n in NAMES]  # "LeftEye"
    assert len(load_coco_keypoints(_write(tmp_path / "b.json", doc))) == 3


# ----------------------------------------------------------------------------------------------- errors


def _bad(tmp_path, edit) -> str:
    doc = _doc()
    edit(doc)
    return _write(tmp_path / "bad.json", doc)


def test_keypoints_of_wrong_length_name_the_annotation(tmp_path):
    path = _bad(tmp_path, lambda d: d["annotations"][1].__setitem__("keypoints", _kp(1)[:48]))
    with pytest.raises(FileFormatError, match=r"bad\.json: annotation id 102: keypoints has 48 values, expected 51"):
        load_coco_keypoints(path)


def test_category_names_mismatch(tmp_path):
    names = [*NAMES]
    names[3], names[4] = names[4], names[3]  # ears swapped
    path = _bad(tmp_path, lambda d: d["categories"][0].__setitem__("keypoints", names))
    with pytest.raises(
        FileFormatError, match=r"category 1 \('person'\): keypoint 3 is 'right_ear', layout 'coco17' has 'left_ear'"
    ):
        load_coco_keypoints(path)
    path = _bad(tmp_path, lambda d: d["categories"][0].__setitem__("keypoints", NAMES[:13]))
    with pytest.raises(FileFormatError, match="has 13 keypoint names, layout 'coco17' has 17"):
        load_coco_keypoints(path)
    path = _bad(tmp_path, lambda d: d["categories"][0].pop("keypoints"))
    with pytest.raises(FileFormatError, match="no category has 'keypoints' names"):
        load_coco_keypoints(path)


def test_not_json_and_missing_keys(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{'images': []}")
    with pytest.raises(FileFormatError, match=r"x\.json, line 1: not valid JSON"):
        load_coco_keypoints(p)
    with pytest.raises(FileFormatError, match="missing key 'annotations'"):
        load_coco_keypoints(_bad(tmp_path, lambda d: d.pop("annotations")))
    with pytest.raises(FileFormatError, match="a results list is not an annotation file"):
        load_coco_keypoints(_write(tmp_path / "res.json", [{"image_id": 1, "keypoints": [0] * 51}]))
    with pytest.raises(FileFormatError, match="annotation id 101: missing key 'bbox'"):
        load_coco_keypoints(_bad(tmp_path, lambda d: d["annotations"][0].pop("bbox")))


def test_other_bad_values(tmp_path):
    def vis3(d):
        d["annotations"][0]["keypoints"][5 * 3 + 2] = 3

    cases = [
        (vis3, "annotation id 101: keypoint 5 has visibility 3, expected 0, 1 or 2"),
        (
            lambda d: d["annotations"][2].__setitem__("image_id", 77),
            "annotation id 103: image_id 77 is not in 'images'",
        ),
        (
            lambda d: d["annotations"][0].__setitem__("bbox", [1, 2, 3]),
            "annotation id 101: bbox has 3 values, expected 4",
        ),
        (
            lambda d: d["annotations"][0]["keypoints"].__setitem__(0, "x"),
            "annotation id 101: keypoints: expected a flat list",
        ),
        (
            lambda d: d["annotations"][1].__setitem__("category_id", 2),
            "annotation id 102: category_id 2 is not a keypoint",
        ),
        (lambda d: d["images"][0].pop("file_name"), r"images\[0\]: expected an object with 'id' and 'file_name'"),
    ]
    for edit, match in cases:
        with pytest.raises(FileFormatError, match=match):
            load_coco_keypoints(_bad(tmp_path, edit))
