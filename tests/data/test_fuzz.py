"""Fuzzing the readers: for any input, finite well-shaped output or a KineposeError that names the file or key.

Inputs are real files written by the library's own writers (a bundled clip as BVH, joints, rotations; a
recipe from ``configs/``), mutated byte- and token-wise, plus structured bad values (NaN, inf, 1e400,
huge integers, deep nesting, non-UTF-8 bytes, truncated or damaged zips, ``.npy`` headers announcing huge
shapes). The case generators are plain functions of a :class:`random.Random` so that
``benchmarks/fuzz_readers.py`` runs thousands of the same cases; here hypothesis drives them (and draws
some inputs itself), with a bounded number of examples.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import re
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kinepose.config import DEFAULTS, load_config, parse_overrides, resolve_config
from kinepose.data.formats.bvh import read_bvh, write_motion_bvh
from kinepose.data.formats.io import load_joints, load_rotations, save_joints, save_rotations
from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.errors import FileFormatError, KineposeError
from kinepose.skeleton import Skeleton, skeleton_from_dict, skeleton_to_dict
from kinepose.skeleton.presets import get_skeleton

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "configs" / "humanoid_hybrid.yaml"

# ----------------------------------------------------------------------------------------------- valid inputs


class Valid(dict):
    """The valid inputs by name; a short repr keeps hypothesis' failure reports readable."""

    def __repr__(self) -> str:
        return f"<valid inputs: {', '.join(self)}>"


def valid_inputs(folder: str | os.PathLike) -> Valid:
    """Valid files written by the library's writers (6 frames of the bundled ``walk`` clip), as bytes by name.

    Also ``"joints"``, ``"rotations"``: the arrays of the ``.npz`` files, and ``"skeleton"``: the humanoid as a dict.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    motion = load_deepmimic("walk").slice(0, 6)
    sk = motion.skeleton
    pos = motion.positions()
    write_motion_bvh(folder / "walk.bvh", motion)
    save_joints(folder / "walk_joints.npz", pos, sk.joint_names, fps=motion.fps)
    save_joints(folder / "walk_joints.csv", pos, sk.joint_names)
    np.save(folder / "walk_joints.npy", pos.numpy())
    for ext in (".npz", ".csv", ".json"):
        save_rotations(folder / f"walk_rot{ext}", sk, motion.local_quat, motion.root_pos, motion.fps,
                       observable=[True] * sk.num_joints, joints=pos)  # fmt: skip
    out = Valid(
        {
            "bvh": (folder / "walk.bvh").read_bytes(),
            "joints.npz": (folder / "walk_joints.npz").read_bytes(),
            "joints.npy": (folder / "walk_joints.npy").read_bytes(),
            "joints.csv": (folder / "walk_joints.csv").read_bytes(),
            "rot.npz": (folder / "walk_rot.npz").read_bytes(),
            "rot.csv": (folder / "walk_rot.csv").read_bytes(),
            "rot.json": (folder / "walk_rot.json").read_bytes(),
            "config.yaml": RECIPE.read_bytes(),
            "skeleton": skeleton_to_dict(sk),
        }
    )
    with np.load(folder / "walk_joints.npz") as z:
        out["joints"] = {k: z[k] for k in z.files}
    with np.load(folder / "walk_rot.npz") as z:
        out["rotations"] = {k: z[k] for k in z.files}
    return out


# ----------------------------------------------------------------------------------------------- bad values

#: Tokens that replace numbers, names and punctuation of text files.
BAD_TOKENS = [
    "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e400", "-1e400", "1e-320", "1e308", "-1e308", "9" * 400,
    "-" + "9" * 30, "1" * 5000, "0", "-0", "1.5", "", " ", "0x1F", "1_0", "1e", ".", "--1", "+", "\x00", "\u00e9",
    "\ufeff", "\u2028", "{", "}", "[", "]", ":", ",", '"', "'", "#", "\\", "\t", "\r", "\n", "JOINT", "End Site",
    "ROOT", "MOTION", "CHANNELS 3", "OFFSET", "Frames:", "Frame Time:", "true", "null", "~", "&a", "*a", "!!str",
    "- ", "? ", "%YAML 1.1", "2024-02-30", "1:30",
]  # fmt: skip
#: Byte strings inserted into files: invalid UTF-8, BOMs, control bytes.
BAD_BYTES = [b"\xff", b"\xfe\xff", b"\x00", b"\xe9", b"\xc3", b"\x80\x80", b"\xed\xa0\x80", b"\xef\xbb\xbf",
             b"\r", b"\n\n", b"\x1a", b"\x85", b"\xf4\x90\x80\x80"]  # fmt: skip
#: Values put into JSON documents and skeleton dicts.
BAD_VALUES: list[Any] = [
    float("nan"), float("inf"), -float("inf"), 10**400, -(10**400), 2**64, -1, 0, 1.5, True, False, None, "", "x",
    "nan", [], {}, [[]], [1, 2], [[1, 2, 3]], [None], ["a"], [float("nan")] * 3, {"a": 1}, 1e308, -0.0,
]  # fmt: skip
_TOKEN = re.compile(r"[-+0-9.eE]+|[A-Za-z_]+|\S")


def mutate_bytes(data: bytes, rnd: random.Random) -> bytes:
    """1 to 4 byte-level edits: bit flips, deletions, insertions of bad bytes or tokens, truncation, duplication."""
    out = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op, i = rnd.randrange(7), rnd.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(i, len(out) - 1)] ^= 1 << rnd.randrange(8)
        elif op == 1:
            del out[i : i + rnd.randint(1, 64)]
        elif op == 2:
            out[i:i] = rnd.choice(BAD_BYTES)
        elif op == 3:
            out[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 16)))
        elif op == 4:
            del out[i:]
        elif op == 5:
            j = rnd.randrange(len(out) + 1)
            out[i:i] = out[min(i, j) : max(i, j)][:256]
        else:
            out[i:i] = rnd.choice(BAD_TOKENS).encode("utf-8")
    return bytes(out)


def mutate_tokens(text: str, rnd: random.Random) -> str:
    """Replace 1 to 3 tokens (numbers, words, punctuation) by bad tokens, doubled or dropped tokens."""
    spans = [m.span() for m in _TOKEN.finditer(text)]
    if not spans:
        return rnd.choice(BAD_TOKENS)
    for start, end in sorted(rnd.sample(spans, min(len(spans), rnd.randint(1, 3))), reverse=True):
        old = text[start:end]
        new = rnd.choice([*BAD_TOKENS, old * 2, old + " " + old, "", old.upper(), old.lower()])
        text = text[:start] + new + text[end:]
    return text


def deep_bvh(depth: int) -> bytes:
    """A BVH whose joints are nested ``depth`` levels deep below the root."""
    head = "HIERARCHY\nROOT r\n{\nOFFSET 0 0 0\nCHANNELS 3 Xrotation Yrotation Zrotation\n"
    body = "".join(f"JOINT j{i}\n{{\nOFFSET 0 0 1\n" for i in range(depth)) + "}\n" * depth
    return (head + body + "}\nMOTION\nFrames: 1\nFrame Time: 0.1\n0 0 0\n").encode()


def npy_bytes(header: dict | str, payload: bytes = b"") -> bytes:
    """A ``.npy`` file with a given header (a dict, or the raw header text) and data bytes."""
    text = header if isinstance(header, str) else repr(header)
    raw = text.encode("latin-1", "replace")
    pad = -(10 + len(raw) + 1) % 64
    raw += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(raw).to_bytes(2, "little") + raw + payload


def npz_bytes(arrays: dict[str, Any], compressed: bool = False) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def bad_array(rnd: random.Random, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A small array of an unusual dtype, shape or value (NaN, inf, extremes, strings, structured...)."""
    dtype = rnd.choice(["<f8", ">f8", "<f4", "<f2", "<i8", "<u8", "|i1", "|b1", "<c16", "<U3", "|S3", "<M8[s]",
                        "<m8[s]", "|V8", "<f8,<i4", np.longdouble])  # fmt: skip
    if shape is None:
        shape = rnd.choice([(), (0,), (1,), (15,), (6, 15), (6, 15, 3), (6, 15, 4), (6, 3), (0, 15, 3), (6, 16, 3),
                            (2, 3, 15, 3), (1, 1, 1, 1, 1)])  # fmt: skip
    a = np.zeros(shape, dtype=dtype)
    if a.size and a.dtype.kind in "fc":  # 1e308 becomes inf in float16/32: wanted here
        with np.errstate(over="ignore"):
            a.flat[rnd.randrange(a.size)] = rnd.choice([np.nan, np.inf, -np.inf, 1e308, 0.5, -0.0])
    elif a.size and a.dtype.kind in "iu":
        a.flat[rnd.randrange(a.size)] = np.iinfo(a.dtype).max
    elif a.size and a.dtype.kind in "US":
        a[...] = rnd.choice(["a", "é", "x y", ""]) if a.dtype.kind == "U" else rnd.choice([b"a", b"\xff", b""])
    return a


def _zip_field(data: bytes, rnd: random.Random) -> bytes:
    """Damage a field of a zip's local or central headers: compression method, sizes, name length, offsets."""
    out = bytearray(data)
    sigs = [m.start() for m in re.finditer(rb"PK\x01\x02|PK\x03\x04|PK\x05\x06", bytes(out))]
    if not sigs:
        return bytes(out)
    at = rnd.choice(sigs)
    sig = bytes(out[at : at + 4])
    # (offset, size) of fields: method, crc, compressed size, uncompressed size, name length (local/central)
    fields = {b"PK\x03\x04": [(8, 2), (14, 4), (18, 4), (22, 4), (26, 2)],
              b"PK\x01\x02": [(10, 2), (16, 4), (20, 4), (24, 4), (28, 2), (42, 4)],
              b"PK\x05\x06": [(8, 2), (10, 2), (12, 4), (16, 4)]}[sig]  # fmt: skip
    off, size = rnd.choice(fields)
    value = rnd.choice([0, 1, 8, 12, 14, 99, 2 ** (8 * size) - 1, 2 ** (8 * size - 1), rnd.randrange(2 ** (8 * size))])
    out[at + off : at + off + size] = value.to_bytes(size, "little")
    return bytes(out)


def _npz_case(valid: bytes, arrays: dict[str, np.ndarray], keys: list[str], rnd: random.Random) -> tuple[str, bytes]:
    choice = rnd.randrange(10)
    if choice == 0:
        a = dict(arrays)
        key = rnd.choice([*keys, "extra"])
        a[key] = bad_array(rnd)
        return f"array {key!r} replaced by {a[key].dtype} {a[key].shape}", npz_bytes(a, rnd.random() < 0.3)
    if choice == 1:
        a = dict(arrays)
        key = rnd.choice(keys)
        del a[key]
        return f"array {key!r} dropped", npz_bytes(a)
    if choice == 2:
        return "mutated bytes", mutate_bytes(valid, rnd)
    if choice == 3:
        return "mutated bytes, compressed", mutate_bytes(npz_bytes(arrays, compressed=True), rnd)
    if choice == 4:
        return "truncated", valid[: rnd.randrange(len(valid))]
    if choice == 5:
        return "damaged zip header field", _zip_field(npz_bytes(arrays, rnd.random() < 0.5), rnd)
    if choice == 6:  # a member whose .npy header announces a huge or impossible shape
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", rnd.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])) as z:
            for k, v in arrays.items():
                z.writestr(f"{k}.npy", _npy_header_case(rnd)[1] if k == keys[0] else _npy(v))
        return f"member {keys[0]!r} with a bad .npy header", buf.getvalue()
    if choice == 7:
        return "random bytes", bytes(rnd.randrange(256) for _ in range(rnd.randrange(300)))
    if choice == 8:
        return "a .npy under an .npz name", _npy(arrays[keys[0]])
    buf = io.BytesIO()  # members that are not .npy files, or a directory of names only
    with zipfile.ZipFile(buf, "w") as z:
        for k in keys:
            z.writestr(rnd.choice([k, f"{k}.npy"]), rnd.choice([b"", b"hello", b"\x93NUMPY", b"\x93NUMPY\x03\x00"]))
    return "members that are not .npy arrays", buf.getvalue()


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _npy_header_case(rnd: random.Random) -> tuple[str, bytes]:
    shape = rnd.choice([(10**13, 15, 3), (2**62, 15, 3), (2**70,), (-1, 15, 3), (6, 15, 3), (), (0, 15, 3),
                        (1,) * 40, (6, 15, 3, 10**6), (True, 15, 3)])  # fmt: skip
    descr = rnd.choice(["<f8", "|O", "<U0", "|V0", "<f8", [("a", "<f8")], [("a", "|O")], "<U1000000000", "<c16"])
    header: dict | str = {"descr": descr, "fortran_order": rnd.random() < 0.2, "shape": shape}
    payload = bytes(8 * rnd.choice([0, 1, 90, 270]))
    if rnd.random() < 0.3:  # a stray byte in the header text (tokenizer and literal errors)
        text = repr(header)
        i = rnd.randrange(len(text))
        header = text[:i] + rnd.choice(["'", '"', "(", "\\", "#", "\x00", "\xff", "{", "1", "L"]) + text[i + 1 :]
    if rnd.random() < 0.1:
        return "unknown .npy version", b"\x93NUMPY\x09\x00" + npy_bytes(header, payload)[8:]
    return f"header {str(header)[:80]}", npy_bytes(header, payload)


def gen_bvh(valid: dict[str, Any], rnd: random.Random) -> tuple[str, bytes]:
    """A BVH case: mutated tokens or bytes of the valid file, random bytes, deep nesting, bad header numbers."""
    data = valid["bvh"]
    text = data.decode()
    choice = rnd.randrange(9)
    if choice == 0:
        return "mutated bytes", mutate_bytes(data, rnd)
    if choice == 1:
        return "random bytes", bytes(rnd.randrange(256) for _ in range(rnd.randrange(400)))
    if choice == 2:
        tail = "".join(rnd.choice([*BAD_TOKENS, "{", "}", "JOINT a", "OFFSET 0 0 0", "End Site"]) + rnd.choice(" \n")
                       for _ in range(rnd.randrange(30)))  # fmt: skip
        return "HIERARCHY prefix and random tokens", ("HIERARCHY\nROOT a\n{\n" + tail).encode()
    if choice == 3:
        depth = rnd.choice([10, 255, 256, 257, 1000, 5000])
        return f"joints nested {depth} deep", deep_bvh(depth)
    if choice == 4:
        bad = rnd.choice(BAD_TOKENS)
        return f"Frame Time {bad[:20]!r}", re.sub(r"Frame Time:.*", lambda m: f"Frame Time: {bad}", text).encode()
    if choice == 5:
        bad = rnd.choice([*BAD_TOKENS, str(10**18), "99999999999999"])
        return f"Frames {bad[:20]!r}", re.sub(r"Frames:.*", lambda m: f"Frames: {bad}", text).encode()
    if choice == 6:  # no channels at all: the frame count comes only from the header
        n = rnd.choice(["0", "3", "1000000", "10000000000000", "9" * 100])
        return f"no channels, Frames {n[:20]}", f"HIERARCHY\nROOT a\n{{\nOFFSET 0 0 0\n}}\nMOTION\nFrames: {n}\n" \
            f"Frame Time: 0.1\n".encode()  # fmt: skip
    if choice == 7:
        name = rnd.choice([b"\xff\xfe", b"\xe9", b"\x00", b"a b", b"\xed\xa0\x80"])
        return "non-UTF-8 joint name", data.replace(b"JOINT chest", b"JOINT ch" + name + b"est", 1)
    return "mutated tokens", mutate_tokens(text, rnd).encode("utf-8", "surrogatepass")


def gen_joints_npz(valid: dict[str, Any], rnd: random.Random) -> tuple[str, bytes]:
    return _npz_case(valid["joints.npz"], valid["joints"], ["joints", "joint_names", "fps"], rnd)


def gen_rotations_npz(valid: dict[str, Any], rnd: random.Random) -> tuple[str, bytes]:
    keys = ["local_quat", "root_pos", "joint_names", "parents", "observable", "fps", "joints"]
    return _npz_case(valid["rot.npz"], valid["rotations"], keys, rnd)


def gen_joints_npy(valid: dict[str, Any], rnd: random.Random) -> tuple[str, bytes]:
    data = valid["joints.npy"]
    choice = rnd.randrange(6)
    if choice == 0:
        a = bad_array(rnd)
        return f"array of {a.dtype} {a.shape}", _npy(a)
    if choice == 1:
        return _npy_header_case(rnd)
    if choice == 2:
        return "truncated", data[: rnd.randrange(len(data))]
    if choice == 3:
        return "random bytes", bytes(rnd.randrange(256) for _ in range(rnd.randrange(300)))
    if choice == 4:
        return "an .npz under a .npy name", valid["joints.npz"]
    return "mutated bytes", mutate_bytes(data, rnd)


def _csv_case(data: bytes, rnd: random.Random) -> tuple[str, bytes]:
    choice = rnd.randrange(4)
    if choice == 0:
        return "mutated bytes", mutate_bytes(data, rnd)
    if choice == 1:
        return "random bytes", bytes(rnd.randrange(256) for _ in range(rnd.randrange(300)))
    if choice == 2:
        lines = data.split(b"\n")
        k = rnd.randrange(len(lines))
        lines[k] = rnd.choice([b"", b",,,", b'"', b'"a', lines[k] * 2, lines[k][: len(lines[k]) // 2], b"\x00" * 5,
                               b"a" * 200_000])  # fmt: skip
        return f"line {k + 1} replaced", b"\n".join(lines)
    return "mutated tokens", mutate_tokens(data.decode(), rnd).encode("utf-8", "surrogatepass")


def gen_joints_csv(valid: dict[str, Any], rnd: random.Random) -> tuple[str, bytes]:
    return _csv_case(valid["joints.csv"], rnd)


def gen_rotations_csv(valid: dict[str, Any], rnd: random.Random) -> tuple[str, bytes]:
    return _csv_case(valid["rot.csv"], rnd)


def _json_paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Paths to every node of a JSON document, but only a few elements of each long list."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _json_paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i in sorted({0, len(doc) - 1, len(doc) // 2}) if doc else []:
            out += _json_paths(doc[i], (*prefix, i))
    return out


def gen_rotations_json(valid: dict[str, Any], rnd: random.Random) -> tuple[str, bytes]:
    """A rotations JSON with a node replaced or deleted, raw-text edits, deep nesting or huge integers."""
    data = valid["rot.json"]
    choice = rnd.randrange(6)
    if choice == 0:
        return "mutated bytes", mutate_bytes(data, rnd)
    if choice == 1:
        return "mutated tokens", mutate_tokens(data.decode(), rnd).encode("utf-8", "surrogatepass")
    if choice == 2:
        depth = rnd.choice([100, 1000, 100_000])
        key = rnd.choice(["local_quat", "fps", "format", "joint_names", "observable"])
        text = data.decode().replace(f'"{key}": ', f'"{key}": ' + "[" * depth + "]" * depth + ', "_": ', 1)
        return f"{key!r} nested {depth} deep", text.encode()
    if choice == 3:
        digits = rnd.choice([310, 400, 4300, 5000])
        key = rnd.choice(["local_quat", "root_pos", "joints", "fps", "version", "parents"])
        text = re.sub(rf'("{key}": \[*)-?[0-9.e+-]+', lambda m: m.group(1) + "1" * digits, data.decode(), count=1)
        return f"{key!r} with a {digits}-digit integer", text.encode()
    doc = json.loads(data)
    path = rnd.choice(_json_paths(doc)[1:])
    node = doc
    for p in path[:-1]:
        node = node[p]
    if choice == 4 and isinstance(node, dict):
        del node[path[-1]]
        return f"{'.'.join(map(str, path))} deleted", json.dumps(doc).encode()
    value = rnd.choice([*BAD_VALUES, "\ud800"])
    node[path[-1]] = value
    return f"{'.'.join(map(str, path))} = {str(value)[:20]}", json.dumps(doc).encode()


def gen_skeleton_dict(valid: dict[str, Any], rnd: random.Random) -> tuple[str, Any]:
    """The humanoid's dict with a key dropped, added, replaced, or one element of a field changed."""
    d = json.loads(json.dumps(valid["skeleton"]))  # a deep copy (NaN limits survive)
    key = rnd.choice(sorted(d))
    choice = rnd.randrange(5)
    if choice == 0:
        del d[key]
        return f"{key!r} dropped", d
    if choice == 1:
        d[rnd.choice(["extra", "_cache", 5])] = 1
        return "an unknown key", d
    if choice == 2:
        d[key] = rnd.choice([*BAD_VALUES, np.zeros((15, 3), dtype=complex), np.array(["a"] * 15, dtype=object),
                             [[1e400] * 3] * 15, [[0.0] * 3] * 14, "[" * 5])  # fmt: skip
        return f"{key!r} = {str(d[key])[:30]}", d
    if choice == 3 and isinstance(d[key], list) and d[key]:
        i = rnd.randrange(len(d[key]))
        d[key][i] = rnd.choice([*BAD_VALUES, 99, -2, 1.0, "knee", "root", [0, 0], [0, 99], [np.nan, 0, 0], [1, 2]])
        return f"{key}[{i}] = {str(d[key][i])[:30]}", d
    if choice == 4:
        return "not a dict", rnd.choice([None, [], "humanoid", 5, list(d.items())])
    d["name"] = rnd.choice(["humanoid", "hand21", "", "x" * 1000, "é"])
    return f"name {d['name'][:20]!r}", d


CONFIG_KEYS = sorted(
    [f"{s}.{k}" for s, sub in DEFAULTS.items() if isinstance(sub, dict) for k in sub]
    + [k for k, v in DEFAULTS.items() if not isinstance(v, dict)]
    + [f"data.hand_sequences.{k}" for k in DEFAULTS["data"]["hand_sequences"]]
    + ["model.dim", "model.x.y", "nope", "data.nope", "optim.lr.x", "model", "data"]
)
#: YAML values for config keys: non-finite, out of range, huge, deep, malformed, wrong type.
BAD_YAML_VALUES = [
    ".nan", ".inf", "-.inf", "nan", "inf", "1e400", "1.0e400", "1" * 400, "1" * 5000, "-1", "0", "1.5", "-0.5", "2",
    "1e-320", "[.nan, 1]", "[1, .inf]", "[-1, 1]", "[2, 1]", "[0, 1e400]", "[1]", "[1, 2, 3]", "true", "null", "~",
    "''", "[" * 1000 + "]" * 1000, "{a: " * 200 + "1" + "}" * 200, "{a: 1}", "[a, b]", "[1, 2]", "2024-02-30",
    "!!python/object:os.system", "&a [*a]", "\x00", "0x10", "1:30", "é", "\udcff", "[[walk]]", "{1: 2, a: 3}",
    "!!binary aGVsbG8=", "2**64", str(2**64), str(-(2**63) - 1), "[" * 50 + "]" * 50,
]  # fmt: skip


def gen_config_yaml(valid: dict[str, Any], rnd: random.Random) -> tuple[str, bytes]:
    """The recipe's YAML mutated, or with one key set to a bad value, deep nesting or non-UTF-8 bytes."""
    data = valid["config.yaml"]
    choice = rnd.randrange(5)
    if choice == 0:
        return "mutated bytes", mutate_bytes(data, rnd)
    if choice == 1:
        return "mutated tokens", mutate_tokens(data.decode(), rnd).encode("utf-8", "surrogatepass")
    if choice == 2:
        depth = rnd.choice([10, 64, 65, 1000, 10_000])
        return f"nested {depth} deep", ("model:\n  x: " + "[" * depth + "]" * depth + "\n").encode()
    if choice == 3:
        return "a Latin-1 byte", data.replace(b"humanoid_hybrid", b"humano\xefd", 1)
    key, value = rnd.choice(CONFIG_KEYS), rnd.choice(BAD_YAML_VALUES)
    parts = key.split(".")
    text = "".join("  " * i + f"{p}:\n" for i, p in enumerate(parts[:-1])) + "  " * (len(parts) - 1)
    text += f"{parts[-1]}: {value}\n"
    return f"{key} = {value[:20]!r}", data + b"\n" + text.encode("utf-8", "surrogatepass")


def gen_override(valid: dict[str, Any], rnd: random.Random) -> tuple[str, list[str]]:
    """One or two ``key=value`` overrides with a bad value or key."""
    out = []
    for _ in range(rnd.choice([1, 1, 2])):
        key = rnd.choice([*CONFIG_KEYS, "a..b", "data.", "=", ""])
        value = rnd.choice([*BAD_YAML_VALUES, mutate_tokens(rnd.choice(BAD_YAML_VALUES), rnd)])
        out.append(f"{key}={value}")
    return f"{' '.join(o[:30] for o in out)!r}", out


# ----------------------------------------------------------------------------------------------- outcomes


def _finite(a: Any) -> bool:
    return a is None or bool(np.isfinite(np.asarray(a, dtype=np.float64)).all())


def check_bvh(b: Any) -> None:
    assert _finite(b.offsets) and _finite(b.motion), "non-finite offsets or motion"
    assert b.offsets.shape == (b.num_joints, 3) and b.motion.ndim == 2
    assert math.isfinite(b.frame_time) and b.frame_time > 0 and math.isfinite(b.fps) and b.fps > 0


def check_joints(j: Any) -> None:
    assert j.joints.ndim == 3 and j.joints.shape[-1] == 3 and j.joints.shape[0] > 0, f"shape {j.joints.shape}"
    assert not np.isinf(j.joints).any(), "infinite joints (NaN is a missing joint, allowed)"
    assert j.joint_names is None or len(j.joint_names) == j.joints.shape[1]
    assert j.fps is None or (math.isfinite(j.fps) and j.fps > 0), f"fps {j.fps}"


def check_rotations(r: Any) -> None:
    T, J = r.local_quat.shape[:2]
    assert r.local_quat.shape == (T, J, 4) and r.root_pos.shape == (T, 3), "shapes"
    assert _finite(r.local_quat) and _finite(r.root_pos) and _finite(r.joints), "non-finite values"
    assert r.joints is None or r.joints.shape == (T, J, 3)
    for v in (r.joint_names, r.parents, r.observable):
        assert v is None or len(v) == J
    assert r.fps is None or (math.isfinite(r.fps) and r.fps > 0), f"fps {r.fps}"


def check_skeleton(s: Any) -> None:
    assert isinstance(s, Skeleton) and _finite(s.offsets) and s.offsets.shape == (s.num_joints, 3)


def check_config(cfg: Any) -> None:
    stack, seen = [cfg], set()
    while stack:
        v = stack.pop()
        if isinstance(v, dict | list):
            if id(v) in seen:  # YAML aliases share values
                continue
            seen.add(id(v))
        if isinstance(v, dict):
            stack += list(v.values())
        elif isinstance(v, list):
            stack += v
        else:
            assert not isinstance(v, float) or math.isfinite(v), f"non-finite value {v}"


def _names_path(msg: str, arg: Any) -> bool:
    return str(arg) in msg


def _names_key(msg: str, arg: Any) -> bool:
    return msg.startswith("skeleton data:")


def _names_override(msg: str, arg: list[str]) -> bool:
    # the key of one of the overrides, or the config section the check is about
    return any(o.split("=", 1)[0] in msg for o in arg) or "config:" in msg or "override" in msg


@dataclass(frozen=True)
class Reader:
    """One reader under test: how to make a case, call the reader on it and check what it returns."""

    name: str
    ext: str  # the case's file extension, "" for in-memory inputs
    generate: Callable[[dict[str, Any], random.Random], tuple[str, Any]]
    call: Callable[[Any], Any]
    check: Callable[[Any], None]
    named: Callable[[str, Any], bool]  # whether an error message names the input (file or key)


READERS = [
    Reader("read_bvh", ".bvh", gen_bvh, read_bvh, check_bvh, _names_path),
    Reader("load_joints .npz", ".npz", gen_joints_npz, load_joints, check_joints, _names_path),
    Reader("load_joints .npy", ".npy", gen_joints_npy, load_joints, check_joints, _names_path),
    Reader("load_joints .csv", ".csv", gen_joints_csv, load_joints, check_joints, _names_path),
    Reader("load_joints .bvh", ".bvh", gen_bvh, load_joints, check_joints, _names_path),
    Reader("load_rotations .npz", ".npz", gen_rotations_npz, load_rotations, check_rotations, _names_path),
    Reader("load_rotations .csv", ".csv", gen_rotations_csv, load_rotations, check_rotations, _names_path),
    Reader("load_rotations .json", ".json", gen_rotations_json, load_rotations, check_rotations, _names_path),
    Reader("skeleton_from_dict", "", gen_skeleton_dict, skeleton_from_dict, check_skeleton, _names_key),
    Reader("resolve_config (YAML file)", ".yaml", gen_config_yaml, resolve_config, check_config, _names_path),
    Reader(
        "resolve_config (overrides)", "", gen_override, lambda o: resolve_config(None, o), check_config, _names_override
    ),
]
OUTCOMES = ("ok", "clear error", "unclear error", "other exception", "non-finite output")


def run_case(reader: Reader, case: tuple[str, Any], folder: str | os.PathLike) -> tuple[str, str]:
    """Run one case: ``(outcome, detail)`` with outcome one of :data:`OUTCOMES` (detail empty when fine)."""
    kind, payload = case
    arg = payload
    if reader.ext:
        arg = os.path.join(folder, f"case{reader.ext}")
        with open(arg, "wb") as f:
            f.write(payload)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BVHWarning on frame counts, numpy casts of odd dtypes
            out = reader.call(arg)
    except KineposeError as exc:
        if reader.named(str(exc), arg):
            return "clear error", ""
        return "unclear error", f"{kind}: {exc}"
    except Exception as exc:  # the escape this fuzzer looks for: classified, not hidden
        return "other exception", f"{type(exc).__name__} on {kind}: {str(exc)[:200]}"
    try:
        reader.check(out)
    except AssertionError as exc:
        return "non-finite output", f"{kind}: {exc}"
    return "ok", ""


# ----------------------------------------------------------------------------------------------- fuzz tests

FUZZ = settings(max_examples=120, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> dict[str, Any]:
    return valid_inputs(tmp_path_factory.mktemp("valid"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cases")


def _assert_fine(reader: Reader, case: tuple[str, Any], folder: Path) -> str:
    outcome, detail = run_case(reader, case, folder)
    assert outcome in ("ok", "clear error"), f"{reader.name}: {outcome}: {detail}"
    return outcome


def test_valid_inputs_read(valid, folder):
    """The unmutated files are read (so the fuzz cases start from inputs that work)."""
    cases = {
        ".bvh": valid["bvh"],
        ".npz": valid["joints.npz"],
        ".npy": valid["joints.npy"],
        ".csv": valid["joints.csv"],
    }
    for r in READERS[:5]:
        assert run_case(r, ("valid", cases[r.ext]), folder) == ("ok", "")
    for r, key in zip(READERS[5:8], ("rot.npz", "rot.csv", "rot.json"), strict=True):
        assert run_case(r, ("valid", valid[key]), folder) == ("ok", "")
    assert run_case(READERS[8], ("valid", valid["skeleton"]), folder) == ("ok", "")
    assert run_case(READERS[9], ("valid", valid["config.yaml"]), folder) == ("ok", "")


@pytest.mark.parametrize("reader", READERS, ids=[r.name for r in READERS])
@FUZZ
@given(rnd=st.randoms(use_true_random=False))
def test_reader_fuzz(valid, folder, reader, rnd):
    _assert_fine(reader, reader.generate(valid, rnd), folder)


@settings(FUZZ, max_examples=80)
@given(data=st.binary(max_size=600), prefix=st.sampled_from([b"", b"HIERARCHY\n", b"HIERARCHY\nROOT a\n{\n"]))
def test_bvh_random_bytes(folder, data, prefix):
    _assert_fine(READERS[0], ("random bytes", prefix + data), folder)
    _assert_fine(READERS[4], ("random bytes", prefix + data), folder)


_ARRAYS = hnp.arrays(
    dtype=hnp.scalar_dtypes() | hnp.unicode_string_dtypes(max_len=3) | hnp.byte_string_dtypes(max_len=3),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4),
)


@settings(FUZZ, max_examples=80)
@given(key=st.sampled_from(["joints", "joint_names", "fps"]), array=_ARRAYS)
def test_joints_npz_any_array(valid, folder, key, array):
    arrays = {**valid["joints"], key: array}
    _assert_fine(READERS[1], (f"{key}: {array.dtype} {array.shape}", npz_bytes(arrays)), folder)


@settings(FUZZ, max_examples=80)
@given(key=st.sampled_from(["local_quat", "root_pos", "joint_names", "parents", "observable", "fps", "joints"]),
       array=_ARRAYS)  # fmt: skip
def test_rotations_npz_any_array(valid, folder, key, array):
    arrays = {**valid["rotations"], key: array}
    _assert_fine(READERS[5], (f"{key}: {array.dtype} {array.shape}", npz_bytes(arrays)), folder)


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=12,
)


@settings(FUZZ, max_examples=100)
@given(key=st.sampled_from(["name", "joint_names", "parents", "offsets", "kinds", "hinge_axes", "limits", "left_right",
                            "lateral_axis"]), value=_JSONISH)  # fmt: skip
def test_skeleton_from_dict_any_value(valid, folder, key, value):
    _assert_fine(READERS[8], (f"{key} = {value!r}"[:80], {**valid["skeleton"], key: value}), folder)


@settings(FUZZ, max_examples=100)
@given(key=st.sampled_from(CONFIG_KEYS), value=st.text(max_size=12) | st.sampled_from(BAD_YAML_VALUES))
def test_overrides_any_text(folder, key, value):
    _assert_fine(READERS[10], (f"{key}={value!r}", [f"{key}={value}"]), folder)


@settings(FUZZ, max_examples=60)
@given(value=_JSONISH, key=st.sampled_from(CONFIG_KEYS))
def test_config_yaml_any_value(valid, folder, key, value):
    parts = key.split(".")
    doc: Any = value
    for p in reversed(parts):
        doc = {p: doc}
    text = valid["config.yaml"] + b"\n" + yaml.safe_dump(doc).encode()
    _assert_fine(READERS[9], (f"{key}: {value!r}"[:80], text), folder)


# ----------------------------------------------------------------------------------------------- regressions
# One per escape the first fuzzer run found; each asserts the error type and that the message names the input.


def test_bvh_nested_1000_deep_is_an_error_with_the_line(tmp_path):
    p = tmp_path / "deep.bvh"
    p.write_bytes(deep_bvh(1000))
    with pytest.raises(FileFormatError, match="nested too deeply") as e:
        read_bvh(p)
    assert str(e.value).startswith(f"{p}, line {e.value.line}: ")
    assert p.read_text().splitlines()[e.value.line - 1] == "JOINT j255"  # the 257th level
    p.write_bytes(deep_bvh(200))  # deep but allowed
    assert read_bvh(p).num_joints == 201


def test_yaml_1000_deep_is_an_error_naming_the_file(tmp_path):
    p = tmp_path / "deep.yaml"
    p.write_text("model:\n  x: " + "[" * 1000 + "]" * 1000 + "\n")
    with pytest.raises(KineposeError, match=r"deep\.yaml, line 2: nested too deeply"):
        load_config(str(p))
    with pytest.raises(KineposeError, match=r"override 'model\.x'.*nested too deeply"):
        parse_overrides(["model.x=" + "[" * 1000 + "]" * 1000])


def test_bvh_subnormal_frame_time(tmp_path, valid):
    p = tmp_path / "ft.bvh"
    p.write_bytes(re.sub(rb"Frame Time:.*", b"Frame Time: 1e-320", valid["bvh"]))
    with pytest.raises(FileFormatError, match=r"Frame Time: '1e-320' is too small") as e:
        load_joints(p)
    line = next(i for i, t in enumerate(p.read_text().splitlines(), 1) if t.startswith("Frame Time"))
    assert str(e.value).startswith(f"{p}, line {line}: ") and e.value.line == line


def test_json_integers_beyond_float64(tmp_path, valid):
    p = tmp_path / "big.json"
    doc = json.loads(valid["rot.json"])
    doc["fps"] = 10**400
    p.write_text(json.dumps(doc))
    with pytest.raises(FileFormatError, match=r"big\.json: 'fps' must be one number"):
        load_rotations(p)
    doc["fps"], doc["root_pos"][0][0] = 30.0, 10**400
    p.write_text(json.dumps(doc))
    with pytest.raises(FileFormatError, match=r"big\.json: 'root_pos': an integer too large"):
        load_rotations(p)
    p.write_text(json.dumps(doc).replace("1" + "0" * 400, "1" * 5000))  # beyond Python's int parsing limit
    with pytest.raises(FileFormatError, match=r"big\.json: malformed JSON"):
        load_rotations(p)


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.max_epochs=.inf", "config key 'trainer.max_epochs' must be a whole number, got inf"),
        ("trainer.max_epochs=.nan", "config key 'trainer.max_epochs' must be a whole number, got nan"),
        ("trainer.max_epochs=0", "config key 'trainer.max_epochs' must be a positive whole number, got 0"),
        ("trainer.max_epochs=" + "1" * 400, "config key 'trainer.max_epochs' must be a whole number that fits in 64"),
        ("optim.lr=.nan", "config key 'optim.lr' must be a finite number, got nan"),
        ("optim.lr=nan", "config key 'optim.lr' must be a finite number, got nan"),
        ("optim.lr=" + "1" * 400, "config key 'optim.lr' must be a finite number"),
        ("optim.lr=0", r"config key 'optim.lr' must be > 0, got 0.0"),
        ("optim.weight_decay=.inf", "config key 'optim.weight_decay' must be a finite number, got inf"),
        ("optim.weight_decay=-1e-5", "config key 'optim.weight_decay' must be >= 0"),
        ("data.noise_mm=[.nan,1]", "config key 'data.noise_mm' must be a finite number, got nan"),
        ("data.noise_mm=[-1,1]", r"config key 'data.noise_mm' must be a \[low, high\] range with 0 <= low <= high"),
        ("data.noise_zero_prob=1.5", r"config key 'data.noise_zero_prob' must be a probability in \[0, 1\]"),
        ("data.batch_size=0", "config key 'data.batch_size' must be >= 1"),
        ("data.scale=[0, 1]", "config key 'data.scale' must be a"),
        ("model.dropout=.nan", "config key 'model.dropout' must be a finite number, got nan"),
        ("data.eval_clips=[[walk]]", "config key 'data.eval_clips' must be a list of names"),
    ],
)
def test_config_values_out_of_range(override, message):
    with pytest.raises(KineposeError, match=re.escape(message) if "\\" not in message else message):
        resolve_config(None, [override])


def test_config_values_in_range_still_pass():
    cfg = resolve_config(None, ["optim.lr=3e-4", "data.noise_mm=[0, 5]", "trainer.max_epochs=2.0", "model.name=nan"])
    assert cfg["optim"]["lr"] == 3e-4 and cfg["data"]["noise_mm"] == [0.0, 5.0]
    assert cfg["trainer"]["max_epochs"] == 2 and cfg["model"]["name"] == "nan"


def test_npy_header_announcing_1e13_rows(tmp_path):
    p = tmp_path / "huge.npy"
    p.write_bytes(npy_bytes({"descr": "<f8", "fortran_order": False, "shape": (10**13, 15, 3)}, bytes(720)))
    with pytest.raises(FileFormatError, match=r"huge\.npy: .*announces shape \(10000000000000, 15, 3\)"):
        load_joints(p)
    q = tmp_path / "huge.npz"  # the same header inside an archive
    with zipfile.ZipFile(q, "w") as z:
        z.writestr("joints.npy", p.read_bytes())
    with pytest.raises(FileFormatError, match=r"huge\.npz: cannot read array 'joints': the header announces"):
        load_joints(q)


def test_npy_header_with_a_stray_byte(tmp_path):
    good = _npy(np.zeros((2, 15, 3)))
    p = tmp_path / "stray.npy"
    p.write_bytes(good[:10] + b"'" + good[11:])  # '{' -> "'": the tokenizer fails (tokenize.TokenError)
    with pytest.raises(FileFormatError, match=r"stray\.npy: cannot read as \.npy \(bad \.npy header"):
        load_joints(p)


def test_damaged_and_unknown_compression_npz(tmp_path, valid):
    raw = bytearray(npz_bytes(valid["joints"], compressed=True))
    damaged = bytearray(raw)
    start = raw.index(b"joints.npy") + len("joints.npy")
    damaged[start + 40 : start + 60] = b"\xff" * 20  # inside the deflate stream: zlib.error
    p = tmp_path / "damaged.npz"
    p.write_bytes(bytes(damaged))
    with pytest.raises(FileFormatError, match=r"damaged\.npz: cannot read array 'joints'"):
        load_joints(p)
    for sig, off in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # method 99 in local and central headers
        for m in re.finditer(re.escape(sig), bytes(raw)):
            raw[m.start() + off : m.start() + off + 2] = (99).to_bytes(2, "little")
    p.write_bytes(bytes(raw))
    with pytest.raises(FileFormatError, match=r"damaged\.npz: cannot read array 'joints' \(.*compression"):
        load_joints(p)


def test_truncated_npz(tmp_path, valid):
    for name, key in (("j.npz", "joints.npz"), ("r.npz", "rot.npz")):
        p = tmp_path / name
        p.write_bytes(valid[key][: len(valid[key]) // 2])
        with pytest.raises(FileFormatError, match=rf"{re.escape(name)}: cannot read as \.npz"):
            (load_joints if name == "j.npz" else load_rotations)(p)


def test_non_utf8_joint_names_and_yaml(tmp_path, valid):
    p = tmp_path / "names.npz"
    np.savez(p, joints=valid["joints"]["joints"], joint_names=np.array([b"\xff\xfe"] * 15))
    with pytest.raises(FileFormatError, match=r"names\.npz: 'joint_names': entry 0 is not UTF-8"):
        load_joints(p)
    bad_code = np.frombuffer(b"\xff\xff\xff\xff" * 15, dtype="<U1")  # beyond U+10FFFF: numpy's tolist crashes
    np.savez(p, joints=valid["joints"]["joints"], joint_names=bad_code)
    with pytest.raises(FileFormatError, match=r"names\.npz: 'joint_names': entry 0 is not valid Unicode"):
        load_joints(p)
    y = tmp_path / "latin.yaml"
    y.write_bytes(b"name: run\nmodel: {name: caf\xe9}\n")
    with pytest.raises(KineposeError, match=r"latin\.yaml, line 2: not UTF-8 text"):
        resolve_config(str(y))


def test_zero_d_observable(tmp_path, valid):
    p = tmp_path / "obs.npz"
    np.savez(p, **{**valid["rotations"], "observable": np.array(True)})
    with pytest.raises(FileFormatError, match=r"obs\.npz: 'observable' must be a 1-D boolean array"):
        load_rotations(p)


def test_garbage_and_object_arrays_do_not_suggest_allow_pickle(tmp_path):
    for name in ("g.npz", "g.npy"):
        p = tmp_path / name
        p.write_bytes(b"garbage, neither zip nor npy")
        with pytest.raises(FileFormatError) as e:
            load_joints(p)
        assert "pickle" not in str(e.value) and str(p) in str(e.value)
    p = tmp_path / "o.npy"
    p.write_bytes(npy_bytes({"descr": "|O", "fortran_order": False, "shape": (2,)}, bytes(16)))
    with pytest.raises(FileFormatError, match=r"object arrays are not read; store strings as a unicode array") as e:
        load_joints(p)
    assert "pickle" not in str(e.value)
    q = tmp_path / "o.npz"
    np.savez(q, joints=np.zeros((1, 15, 3)), joint_names=np.array(["a"] * 15, dtype=object), allow_pickle=True)
    with pytest.raises(FileFormatError, match=r"o\.npz: cannot read array 'joint_names': .*np\.array\(names\)") as e:
        load_joints(q)
    assert "pickle" not in str(e.value)


def test_npy_under_npz_name(tmp_path):
    p = tmp_path / "a.npz"
    p.write_bytes(_npy(np.zeros((1, 15, 3))))
    with pytest.raises(FileFormatError, match=r"a\.npz: holds a single \.npy array, not an \.npz archive"):
        load_joints(p)


@pytest.mark.parametrize(
    "change, key",
    [
        ({"offsets": [[0.0, 0.0]] * 15}, "offsets"),
        ({"offsets": [[1e400, 0, 0]] * 15}, "offsets"),
        ({"parents": [0] * 15}, "parents"),
        ({"parents": [-1, 1.5] + [0] * 13}, "parents"),
        ({"kinds": ["knee"] * 15}, "kinds"),
        ({"left_right": [[0, 99]]}, "left_right"),
        ({"left_right": [[1]]}, "left_right"),
        ({"lateral_axis": 3}, "lateral_axis"),
        ({"joint_names": ["a"] * 15}, "joint_names"),
        ({"limits": "x"}, "limits"),
        ({"hinge_axes": [[0.0, 0.0, 0.0]] * 15}, "hinge_axes"),
    ],
)
def test_skeleton_from_dict_names_the_key(valid, change, key):
    with pytest.raises(KineposeError, match=rf"^skeleton data: '{key}' "):
        skeleton_from_dict({**valid["skeleton"], **change})


def test_skeleton_from_dict_missing_and_unknown_keys(valid):
    d = dict(valid["skeleton"])
    del d["offsets"]
    with pytest.raises(KineposeError, match=r"missing key\(s\) \['offsets'\]"):
        skeleton_from_dict(d)
    with pytest.raises(KineposeError, match=r"unknown key\(s\) \['_cache'\]"):
        skeleton_from_dict({**valid["skeleton"], "_cache": {}})
    with pytest.raises(KineposeError, match="expected a dict, got list"):
        skeleton_from_dict([])
    assert skeleton_from_dict(valid["skeleton"]) is get_skeleton("humanoid")


# ----------------------------------------------------------------------------------------------- CLI


def _bad_files(folder: Path, valid: dict[str, Any]) -> list[Path]:
    files = {
        "deep.bvh": deep_bvh(1000),
        "frame_time.bvh": re.sub(rb"Frame Time:.*", b"Frame Time: 1e-320", valid["bvh"]),
        "huge.npy": npy_bytes({"descr": "<f8", "fortran_order": False, "shape": (10**13, 15, 3)}),
        "stray.npy": _npy(np.zeros((2, 15, 3)))[:10] + b"'" + _npy(np.zeros((2, 15, 3)))[11:],
        "truncated.npz": valid["joints.npz"][:300],
        "names.npz": npz_bytes({**valid["joints"], "joint_names": np.array([b"\xff"] * 15)}),
        "random.csv": b"\xff\xfe\x00garbage",
    }  # fmt: skip
    out = []
    for name, data in files.items():
        (folder / name).write_bytes(data)
        out.append(folder / name)
    return out


def test_cli_ik_bad_inputs_exit_2_with_one_error_line(tmp_path, valid, capsys):
    from kinepose.cli import main

    out = tmp_path / "out.npz"
    for bad in _bad_files(tmp_path, valid):
        code = main(["ik", "--model", "analytic", "--input", str(bad), "--output", str(out), "--quiet"])
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert code == 2, (bad.name, captured.err)
        assert len(lines) == 1 and lines[0].startswith("kinepose ik: error: "), (bad.name, captured.err)
        assert str(bad) in lines[0] and "Traceback" not in captured.err + captured.out
        assert not out.exists()


# ----------------------------------------------------------------------------------------------- valid arrays


@settings(FUZZ, max_examples=60)
@given(
    array=hnp.arrays(
        dtype=hnp.integer_dtypes(endianness="?")
        | hnp.floating_dtypes(endianness="?")
        | hnp.boolean_dtypes()
        | hnp.unicode_string_dtypes(min_len=1, max_len=3),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4),
    ),
    fortran=st.booleans(),
    version=st.sampled_from([(1, 0), (2, 0)]),
)
def test_checked_npy_reader_reads_what_numpy_reads(folder, array, fortran, version):
    """The header-checking reader that replaced ``np.load`` gives the same arrays on valid files."""
    from kinepose.data.formats._common import _load_npz, _npz_array, _read_npy

    array = np.asfortranarray(array) if fortran else array
    p = folder / "valid.npy"
    with open(p, "wb") as f:
        np.lib.format.write_array(f, array, version=version)
    got = _read_npy(str(p))
    assert got.dtype == array.dtype and got.shape == array.shape
    np.testing.assert_array_equal(got, np.load(p))
    q = folder / "valid.npz"
    np.savez_compressed(q, a=array)
    with _load_npz(str(q)) as data:
        np.testing.assert_array_equal(_npz_array(data, "a", str(q)), array)
