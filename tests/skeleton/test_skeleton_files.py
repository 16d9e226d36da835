"""Skeleton files (YAML/JSON): exact round trips in every unit, hand-computed conversions, errors that name the file,
the joint and the field, no overwrite unless asked; and ``load_skeleton``, the name-or-file resolver."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

import kinepose.data.formats  # noqa: F401  (registers the .bvh skeleton reader)
from kinepose.errors import FileFormatError, KineposeError
from kinepose.skeleton import Skeleton, get_skeleton, list_skeletons, skeleton_from_dict, skeleton_to_dict
from kinepose.skeleton.files import detect_left_right
from kinepose.skeleton.presets import load_skeleton, register_skeleton_reader
from kinepose.skeleton.skeleton_file import (
    UNITS,
    read_skeleton,
    read_skeleton_file,
    skeleton_file_text,
    write_skeleton,
)

CMU = "/usr/share/assimp/models/BVH/01_01.bvh"
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")

ARM_YAML = """\
# an arm, centimetres
name: arm
units: cm
lateral_axis: x
joints:
  - {name: chest, parent: null, offset: [0, 140, 0]}
  - name: left_shoulder
    parent: chest
    offset: [18, 0, 0]
    twist_limits: [-90, 45.5]
  - name: left_elbow
    parent: left_shoulder
    kind: hinge
    offset: [30, 0, 0]
    axis: [0, 0, 2]
    limits: [0, 150]
  - {name: left_wrist, parent: left_elbow, kind: end, offset: [25, 0, 1e-1]}
  - {name: right_shoulder, parent: chest, offset: [-18, 0, 0]}
  - {name: right_elbow, parent: right_shoulder, kind: hinge, offset: [-30, 0, 0], axis: [0, 0, -1],
     limits: [null, 150]}
  - {name: right_wrist, parent: right_elbow, kind: end, offset: [-25, 0, 0.1]}
left_right:
  - [left_shoulder, right_shoulder]
  - [left_elbow, right_elbow]
"""


def _same(a: Skeleton, b: Skeleton) -> None:
    """Bit-for-bit equal skeletons (hinge rows only for axes and limits: other rows are not stored)."""
    assert (a.name, a.joint_names, a.parents, a.kinds, a.left_right, a.lateral_axis) == (
        b.name, b.joint_names, b.parents, b.kinds, b.left_right, b.lateral_axis)  # fmt: skip
    assert np.array_equal(a.offsets, b.offsets)
    hinge = [k == "hinge" for k in a.kinds]
    assert np.array_equal(a.hinge_axes[hinge], b.hinge_axes[hinge])
    assert np.array_equal(a.limits[hinge], b.limits[hinge], equal_nan=True)


def _odd_skeleton() -> Skeleton:
    """Random float64 offsets, axes and limits: most have no short decimal in cm, inch or degrees."""
    rng = np.random.default_rng(7)
    names = ["root", "a", "b", "c", "d_tip"]
    axes = np.zeros((5, 3))
    axes[2] = rng.normal(size=3)
    axes[2] /= np.linalg.norm(axes[2])
    limits = np.full((5, 2), np.nan)
    limits[2] = np.sort(rng.uniform(-3, 3, 2))
    return Skeleton("odd", names, [-1, 0, 1, 2, 3], rng.normal(size=(5, 3)), ["ball", "ball", "hinge", "ball", "end"],
                    axes, limits)  # fmt: skip


# ----------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("ext", [".yaml", ".yml", ".json"])
@pytest.mark.parametrize("units", list(UNITS))
def test_presets_round_trip_exactly_in_every_unit(tmp_path, ext, units):
    for name in list_skeletons():
        sk = get_skeleton(name)
        path = tmp_path / f"{name}{ext}"
        write_skeleton(sk, path, units=units)
        back = read_skeleton_file(path)
        _same(back.skeleton, sk)
        assert back.units == units and dict(back.twist_limits) == {}


@pytest.mark.parametrize("units", list(UNITS))
def test_arbitrary_floats_round_trip_exactly(tmp_path, units):
    """Values without a short decimal in the unit (or in degrees) still read back to the same float64 bits."""
    sk = _odd_skeleton()
    twist = {"a": (-1.2345678901234567, 0.98765432109876)}
    for ext in (".yaml", ".json"):
        path = tmp_path / f"odd_{units}{ext}"
        write_skeleton(sk, path, units=units, twist_limits=twist)
        back = read_skeleton_file(path)
        _same(back.skeleton, sk)
        assert dict(back.twist_limits) == twist


@pytest.mark.skipif(not os.path.exists(CMU), reason="Debian package assimp-testmodels not installed")
def test_bvh_and_urdf_skeletons_round_trip(tmp_path):
    from kinepose.data.formats.bvh import CMU_TO_M

    for sk in (load_skeleton(CMU, CMU_TO_M), load_skeleton(os.path.join(FIXTURES, "mixamo_rig.bvh"), 0.01)):
        for ext in (".yaml", ".json"):
            write_skeleton(sk, tmp_path / f"{sk.name}{ext}", units="cm")
            _same(read_skeleton(tmp_path / f"{sk.name}{ext}"), sk)


def test_hand_written_yaml_reads_as_computed_by_hand(tmp_path):
    path = tmp_path / "arm.yaml"
    path.write_text(ARM_YAML)
    f = read_skeleton_file(path)
    sk = f.skeleton
    assert sk.name == "arm" and f.units == "cm" and f.path == str(path)
    assert sk.joint_names == ("chest", "left_shoulder", "left_elbow", "left_wrist", "right_shoulder",
                              "right_elbow", "right_wrist")  # fmt: skip
    assert sk.parents == (-1, 0, 1, 2, 0, 4, 5)
    assert sk.kinds == ("ball", "ball", "hinge", "end", "ball", "hinge", "end")  # kind defaults to ball
    # centimetres -> metres: 140 cm = 1.4 m, 18 cm = 0.18 m, 1e-1 cm (YAML without a dot) = 0.001 m
    assert sk.offsets[0].tolist() == [0.0, 1.4, 0.0]
    assert sk.offsets[1].tolist() == [0.18, 0.0, 0.0]
    assert sk.offsets[3].tolist() == [0.25, 0.0, 0.001]
    assert sk.offsets[6].tolist() == [-0.25, 0.0, 0.001]
    assert sk.hinge_axes[2].tolist() == [0.0, 0.0, 1.0]  # [0, 0, 2] normalized
    assert sk.limits[2].tolist() == [0.0, 150 * math.pi / 180]  # degrees -> radians
    assert math.isnan(sk.limits[5, 0]) and sk.limits[5, 1] == 150 * math.pi / 180  # null: no lower limit
    assert np.isnan(sk.limits[[0, 1, 3, 4, 6]]).all()
    assert sk.left_right == ((1, 4), (2, 5)) and sk.lateral_axis == 0
    assert dict(f.twist_limits) == {"left_shoulder": (-math.pi / 2, 45.5 * math.pi / 180)}


def test_json_holds_the_same_fields(tmp_path):
    path = tmp_path / "arm.yaml"
    path.write_text(ARM_YAML)
    yaml_file = read_skeleton_file(path)
    doc = {
        "name": "arm", "units": "cm", "lateral_axis": 0,
        "joints": [
            {"name": "chest", "parent": None, "offset": [0, 140, 0]},
            {"name": "left_shoulder", "parent": "chest", "offset": [18, 0, 0], "twist_limits": [-90, 45.5]},
            {"name": "left_elbow", "parent": "left_shoulder", "kind": "hinge", "offset": [30, 0, 0],
             "axis": [0, 0, 2], "limits": [0, 150]},
            {"name": "left_wrist", "parent": "left_elbow", "kind": "end", "offset": [25, 0, 0.1]},
            {"name": "right_shoulder", "parent": "chest", "offset": [-18, 0, 0]},
            {"name": "right_elbow", "parent": "right_shoulder", "kind": "hinge", "offset": [-30, 0, 0],
             "axis": [0, 0, -1], "limits": [None, 150]},
            {"name": "right_wrist", "parent": "right_elbow", "kind": "end", "offset": [-25, 0, 0.1]},
        ],
        "left_right": [["left_shoulder", "right_shoulder"], ["left_elbow", "right_elbow"]],
    }  # fmt: skip
    (tmp_path / "arm.json").write_text(json.dumps(doc))
    json_file = read_skeleton_file(tmp_path / "arm.json")
    _same(json_file.skeleton, yaml_file.skeleton)
    assert dict(json_file.twist_limits) == dict(yaml_file.twist_limits)


def test_written_text_is_readable_and_short(tmp_path):
    """Shortest decimals: the h36m17 preset in centimetres has whole numbers, its limits whole degrees."""
    text = skeleton_file_text(get_skeleton("h36m17"), units="cm")
    assert "offset: [0, -45, 0]" in text and "limits: [0, 150]" in text and 'lateral_axis: "x"' in text
    doc = json.loads(skeleton_file_text(get_skeleton("h36m17"), "json", units="mm"))
    assert doc["format"] == "kinepose-skeleton" and doc["version"] == 1 and doc["units"] == "mm"
    assert doc["joints"][2] == {"name": "right_knee", "parent": "right_hip", "kind": "hinge", "offset": [0, -450, 0],
                                "axis": [1.0, 0.0, 0.0], "limits": [0, 150]}  # fmt: skip


def test_non_hinge_axes_are_not_stored(tmp_path):
    """A subset turns a hinge with no kept child into an end site whose axis row stays: the file drops it."""
    sub, _ = get_skeleton("h36m17").subset(["hip", "right_hip", "right_knee", "left_hip", "left_knee"])
    assert sub.kinds[2] == "end" and sub.hinge_axes[2].tolist() == [1.0, 0.0, 0.0]
    write_skeleton(sub, tmp_path / "sub.yaml")
    back = read_skeleton(tmp_path / "sub.yaml")
    _same(back, sub)
    assert back.hinge_axes[2].tolist() == [0.0, 0.0, 0.0]


def test_dict_functions_unchanged():
    """Model files keep using skeleton_to_dict / skeleton_from_dict; the preset object comes back."""
    d = skeleton_to_dict(get_skeleton("humanoid"))
    assert sorted(d) == ["hinge_axes", "joint_names", "kinds", "lateral_axis", "left_right", "limits", "name",
                         "offsets", "parents"]  # fmt: skip
    assert skeleton_from_dict(d) is get_skeleton("humanoid")


# ----------------------------------------------------------------------------------------------- writing safely


def test_write_never_overwrites_unless_asked(tmp_path):
    path = tmp_path / "h.yaml"
    path.write_text("precious")
    with pytest.raises(KineposeError, match="exists; pass overwrite=True"):
        write_skeleton(get_skeleton("head"), path)
    assert path.read_text() == "precious"
    write_skeleton(get_skeleton("head"), path, overwrite=True)
    _same(read_skeleton(path), get_skeleton("head"))


def test_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "h.json"
    path.write_text("precious")
    with pytest.raises(KineposeError, match="units"):
        write_skeleton(get_skeleton("head"), path, units="furlong", overwrite=True)
    with pytest.raises(KineposeError, match="'nose' is a end joint"):
        write_skeleton(get_skeleton("head"), path, twist_limits={"nose": (0, 1)}, overwrite=True)
    with pytest.raises(FileFormatError, match="unknown skeleton file extension '.txt'"):
        write_skeleton(get_skeleton("head"), tmp_path / "h.txt")
    assert path.read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["h.json"]


# ----------------------------------------------------------------------------------------------- errors

_ROOT = "  - {name: root, parent: null, offset: [0, 1, 0]}\n"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("joints: []\n", "'joints' must be a non-empty list"),
        ("units: feet\njoints:\n" + _ROOT, "'units' must be one of m, cm, mm, inch, got 'feet'"),
        ("colour: red\njoints:\n" + _ROOT, r"unknown field\(s\) \['colour'\]"),
        ("format: bvh\njoints:\n" + _ROOT, "'format' must be 'kinepose-skeleton'"),
        ("version: 2\njoints:\n" + _ROOT, "'version' 2 is not one this kinepose reads"),
        ("lateral_axis: w\njoints:\n" + _ROOT, "'lateral_axis' must be x, y or z"),
        ("joints:\n  - {name: root, parent: hips}\n", r"joint 0 \('root'\): 'parent' must be null"),
        ("joints:\n" + _ROOT + "  - {name: a, parent: b, offset: [0, 1, 0]}\n"
         "  - {name: b, parent: root, offset: [1, 0, 0]}\n",
         r"joint 1 \('a'\): 'parent' 'b' is not a joint listed before it"),
        ("joints:\n" + _ROOT + "  - {name: a, offset: [0, 1, 0]}\n", r"joint 1 \('a'\): 'parent' is missing"),
        ("joints:\n" + _ROOT + "  - {name: root, parent: root, offset: [0, 1, 0]}\n", "'name' repeats joint 0"),
        ("joints:\n" + _ROOT + "  - {name: 1, parent: root, offset: [0, 1, 0]}\n",
         r"joint 1: 'name' must be a non-empty"),
        ("joints:\n" + _ROOT + "  - {name: a, parent: root}\n", r"joint 1 \('a'\): 'offset' is missing"),
        ("joints:\n" + _ROOT + "  - {name: a, parent: root, offset: [0, 1]}\n",
         r"joint 1 \('a'\): 'offset' must be a list of 3 numbers \(m\)"),
        ("joints:\n" + _ROOT + "  - {name: a, parent: root, offset: [0, yes, 0]}\n", r"'offset' must be a list of 3"),
        ("joints:\n" + _ROOT + "  - {name: a, parent: root, offset: [0, .inf, 0]}\n",
         "'offset' holds Infinity, not a finite"),
        ("joints:\n" + _ROOT + "  - {name: a, parent: root, offset: [0, 1e999, 0]}\n", "not a finite number"),
        ("units: cm\njoints:\n" + _ROOT + "  - {name: a, parent: root, offset: [0, 1e99999999, 0]}\n",
         "not a finite number"),
        ("joints:\n" + _ROOT + "  - {name: a, parent: root, kind: knee, offset: [0, 1, 0]}\n",
         r"joint 1 \('a'\): 'kind' must be one of ball, hinge, end, got 'knee'"),
        ("joints:\n" + _ROOT + "  - {name: a, parent: root, kind: hinge, offset: [0, 1, 0]}\n",
         r"joint 1 \('a'\): 'axis' is missing"),
        ("joints:\n" + _ROOT + "  - {name: a, parent: root, kind: hinge, offset: [0, 1, 0], axis: [0, 0, 0]}\n",
         "'axis' must not be zero"),
        ("joints:\n" + _ROOT + "  - {name: a, parent: root, offset: [0, 1, 0], axis: [1, 0, 0]}\n",
         r"joint 1 \('a'\): 'axis' is for hinge joints, this one is ball"),
        ("joints:\n" + _ROOT + "  - {name: a, parent: root, kind: hinge, offset: [0, 1, 0], axis: [1, 0, 0], "
         "limits: [90, 10]}\n", r"joint 1 \('a'\): 'limits' lower bound is above the upper bound"),
        ("joints:\n" + _ROOT + "  - {name: a, parent: root, kind: end, offset: [0, 1, 0], twist_limits: [0, 1]}\n",
         "'twist_limits' is for ball joints, this one is end"),
        ("joints:\n" + _ROOT + "  - {name: a, parent: root, kind: end, offset: [0, 1, 0]}\n"
         "  - {name: b, parent: a, offset: [0, 1, 0]}\n", r"joint 2 \('b'\): 'parent' 'a' is an end site"),
        ("joints:\n" + _ROOT + "  - {name: a, parent: root, offset: [0, 1, 0], colour: red}\n",
         r"joint 1 \('a'\): unknown field\(s\) \['colour'\]"),
        ("joints:\n" + _ROOT + "left_right: [[root, hand]]\n", "'left_right' entry 0 .* names no joint 'hand'"),
        ("joints:\n" + _ROOT + "left_right: [root]\n", "'left_right' entry 0 must be a \\[left, right\\] pair"),
        ("joints:\n  - {name: root, kind: end}\n", "the root cannot be an end site"),
    ],
)  # fmt: skip
def test_errors_name_the_file_the_joint_and_the_field(tmp_path, body, match):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(FileFormatError, match=match) as info:
        read_skeleton(path)
    assert str(info.value).startswith(f"{path}: ")


def test_syntax_errors_name_the_line(tmp_path):
    (tmp_path / "a.yaml").write_text("name: x\njoints:\n  - {name: root\n  - oops: [\n")
    with pytest.raises(FileFormatError, match=r"a.yaml, line \d+: malformed YAML"):
        read_skeleton(tmp_path / "a.yaml")
    (tmp_path / "b.json").write_text('{"name": "x",\n "joints": [}\n')
    with pytest.raises(FileFormatError, match=r"b.json, line 2: malformed JSON"):
        read_skeleton(tmp_path / "b.json")
    (tmp_path / "c.json").write_text('{"joints": [{"name": "r", "parent": null, "offset": [0, NaN, 0]}]}')
    with pytest.raises(FileFormatError, match="NaN is not a number"):
        read_skeleton(tmp_path / "c.json")
    (tmp_path / "d.yaml").write_text("joints: " + "[" * 200 + "]" * 200 + "\n")
    with pytest.raises(FileFormatError, match="nested more than 32 levels"):
        read_skeleton(tmp_path / "d.yaml")
    (tmp_path / "e.yaml").write_bytes(b"name: \xff\n")
    with pytest.raises(FileFormatError, match="not UTF-8"):
        read_skeleton(tmp_path / "e.yaml")
    with pytest.raises(FileFormatError, match="cannot read .No such file"):
        read_skeleton(tmp_path / "missing.yaml")
    (tmp_path / "f.yaml").write_text("- just\n- a list\n")
    with pytest.raises(FileFormatError, match="expected a mapping"):
        read_skeleton(tmp_path / "f.yaml")


# ----------------------------------------------------------------------------------------------- the resolver


def test_load_skeleton_by_name_or_file(tmp_path):
    assert load_skeleton("humanoid") is get_skeleton("humanoid")
    assert load_skeleton("h36m") is get_skeleton("h36m17")  # aliases
    sk = get_skeleton("hand21")
    assert load_skeleton(sk) is sk
    write_skeleton(sk, tmp_path / "hand.yml", units="mm")
    _same(load_skeleton(str(tmp_path / "hand.yml")), sk)
    _same(load_skeleton(tmp_path / "hand.yml"), sk)  # a PathLike too
    doubled = load_skeleton("hand21", scale=2.0)
    assert doubled.name == "hand21*2" and np.array_equal(doubled.offsets, 2 * sk.offsets)
    with pytest.raises(KineposeError, match="unknown skeleton 'octopus': not a preset .* nor a skeleton file"):
        load_skeleton("octopus")
    with pytest.raises(FileFormatError, match="no such file"):
        load_skeleton(str(tmp_path / "missing.json"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FileFormatError, match="not a skeleton file"):
        load_skeleton(str(tmp_path / "notes.txt"))
    with pytest.raises(KineposeError, match="scale: expected a positive finite number"):
        load_skeleton("humanoid", scale=0)


def test_load_skeleton_reads_bvh_headers_through_the_registered_reader(tmp_path):
    from kinepose.data.formats.bvh import read_bvh, read_bvh_skeleton

    path = os.path.join(FIXTURES, "mocapbank_rig.bvh")
    sk = load_skeleton(path, scale=0.01)
    ref = read_bvh(path).skeleton(0.01)
    _same(sk, ref)
    assert sk.offsets[sk.index("Spine1")].tolist() == [0.0, 0.18, -0.01]  # OFFSET 0 18 -1 cm
    register_skeleton_reader(".bvh", read_bvh_skeleton)  # the same reader again: fine
    with pytest.raises(KineposeError, match="already has a reader"):
        register_skeleton_reader(".BVH", lambda p, s: sk)
    with pytest.raises(KineposeError, match="not a free file extension"):
        register_skeleton_reader(".yaml", lambda p, s: sk)


def test_detect_left_right_on_rig_names():
    names = ["mixamorig:Hips", "mixamorig:LeftArm", "mixamorig:RightArm", "LHipJoint", "RHipJoint", "lhip", "rhip",
             "hand.L", "hand.R", "Spine"]  # fmt: skip
    assert detect_left_right(names) == ((1, 2), (3, 4), (5, 6), (7, 8))


def test_the_examples_of_the_docs_read_and_agree(tmp_path):
    """docs/skeleton_files.md: its YAML and JSON examples are valid and describe the same skeleton."""
    import re

    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "skeleton_files.md")).read()
    blocks = dict(re.findall(r"```(yaml|json)\n(.*?)```", doc, flags=re.S))
    (tmp_path / "arm.yaml").write_text(blocks["yaml"])
    (tmp_path / "arm.json").write_text(blocks["json"])
    a, b = read_skeleton_file(tmp_path / "arm.yaml"), read_skeleton_file(tmp_path / "arm.json")
    _same(a.skeleton, b.skeleton)
    assert dict(a.twist_limits) == dict(b.twist_limits) == {"left_shoulder": (-math.pi / 2, math.pi / 4)}
    assert a.skeleton.num_joints == 7 and a.skeleton.offsets[0, 1] == 1.4
    assert a.skeleton.limits[2, 1] == pytest.approx(2.618, abs=1e-3)


@pytest.mark.parametrize("ext", [".yaml", ".json", ".urdf"])
def test_damaged_files_give_a_skeleton_or_a_kinepose_error(tmp_path, ext):
    """300 seeded random edits of a valid file (deleted spans, inserted YAML/JSON/XML tokens, huge numbers, NUL):
    each reads to a finite skeleton or raises a KineposeError, never another exception."""
    import random

    from kinepose.skeleton.urdf import skeleton_from_urdf

    if ext == ".urdf":
        from kinepose.skeleton.presets.humanoid import humanoid_urdf_path

        text = open(humanoid_urdf_path(), "rb").read().rstrip(b"\x00").decode()
    else:
        text = skeleton_file_text(get_skeleton("hand21"), "yaml" if ext == ".yaml" else "json", units="cm")
    read = skeleton_from_urdf if ext == ".urdf" else read_skeleton
    tokens = ["null", "-", "[", "]", "{", "}", ":", ",", "1e999", ".nan", "NaN", "\x00", "&a", "*a", '"', "'", "\n",
              "!!python/object/apply:os.system", "-0", "1e-3", "<", "/>", 'type="planar"', "~", "yes",
              "9" * 5000]  # fmt: skip
    rng = random.Random(ext)
    outcomes = {"ok": 0, "error": 0}
    for case in range(300):
        chars = list(text)
        for _ in range(rng.randint(1, 4)):
            op, k = rng.random(), rng.randrange(len(chars))
            if op < 0.3:
                del chars[k : k + rng.randint(1, 20)]
            elif op < 0.6:
                chars.insert(k, rng.choice(tokens))
            elif op < 0.8:
                chars[k] = chr(rng.randrange(32, 127))
            else:
                chars[k:k] = chars[rng.randrange(len(chars)) :][:50]
        path = tmp_path / f"case{case}{ext}"
        path.write_text("".join(chars))
        try:
            sk = read(path)
        except KineposeError:
            outcomes["error"] += 1
            continue
        assert np.isfinite(sk.offsets).all() and np.isfinite(sk.hinge_axes).all(), case
        outcomes["ok"] += 1
    assert outcomes["ok"] >= 3 and outcomes["error"] >= 30, outcomes  # both paths are exercised


def test_bvh_without_the_data_layer_is_a_clear_error():
    """The skeleton layer alone cannot read BVH (its reader is in the data layer): the error says what to import."""
    import subprocess
    import sys

    code = (
        "from kinepose.skeleton.presets import load_skeleton\n"
        "try:\n"
        f"    load_skeleton({os.path.join(FIXTURES, 'mixamo_rig.bvh')!r})\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
        "import kinepose.data.formats\n"
        f"print(load_skeleton({os.path.join(FIXTURES, 'mixamo_rig.bvh')!r}, 0.01).num_joints)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.strip().splitlines()
    assert first.startswith("KineposeError") and "needs kinepose.data.formats imported" in first
    assert second == "78"
