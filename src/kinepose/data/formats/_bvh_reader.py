"""The BVH reader's parser: tokens of the HIERARCHY block, then the MOTION block's numbers.

Kept apart from :mod:`kinepose.data.formats.bvh` (the ``BVH`` type, ``read_bvh`` and the writer) so each stays
readable. Every malformed input raises :class:`~kinepose.errors.FileFormatError` with the 1-based line.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from kinepose.errors import FileFormatError

__all__ = ["CHANNELS", "BVHWarning", "parse_bvh_lines"]

#: Channel names by lower-case spelling.
CHANNELS = {f"{a}{k}".lower(): f"{a}{k}" for a in "XYZ" for k in ("position", "rotation")}
_TOKEN = re.compile(r"[{}]|[^\s{}]+")
_HEADER_TOKEN = re.compile(r":|[^\s:]+")
#: Deepest joint nesting read (real skeletons are a few dozen deep); deeper files are an error, not a crash
#: of the recursive parser.
MAX_DEPTH = 256
# With no channels at all the frame lines are empty and only the header says how many frames there are.
_MAX_EMPTY_FRAMES = 1_000_000


class BVHWarning(UserWarning):
    """A BVH file was read, but something in it was off (e.g. a wrong ``Frames:`` count)."""


class _HierarchyParser:
    """Recursive descent over whitespace/brace tokens; every error names the 1-based line."""

    def __init__(self, tokens: list[tuple[str, int]], path: str, last_line: int) -> None:
        self.tokens, self.path, self.last_line, self.i = tokens, path, last_line, 0
        self.names: list[str | None] = []
        self.taken: set[str] = set()  # the joint names, for a duplicate check that stays fast on huge files
        self.parents: list[int] = []
        self.offsets: list[np.ndarray] = []
        self.channels: list[list[str]] = []
        self.end_site: list[bool] = []

    def error(self, msg: str, line: int) -> FileFormatError:
        return FileFormatError(msg, self.path, line)

    def peek(self) -> tuple[str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self, what: str) -> tuple[str, int]:
        if self.i >= len(self.tokens):
            raise self.error(f"unexpected end of file, expected {what}", self.last_line)
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def parse(self) -> None:
        if not self.tokens:
            raise self.error("missing HIERARCHY: the file is empty", 1)
        tok, line = self.next("HIERARCHY")
        if tok.upper() != "HIERARCHY":
            raise self.error(f"missing HIERARCHY: a BVH file starts with 'HIERARCHY', got {tok!r}", line)
        tok, line = self.next("ROOT")
        if tok.upper() != "ROOT":
            raise self.error(f"missing ROOT: expected 'ROOT <name>' after HIERARCHY, got {tok!r}", line)
        self.joint(-1, False, 1)
        nxt = self.peek()
        if nxt is None:
            raise self.error("missing MOTION section after the ROOT block", self.last_line)
        tok, line = nxt
        if tok.upper() == "MOTION":
            self.i += 1
            return
        if tok == "}":
            raise self.error("unbalanced braces: '}' without a matching '{'", line)
        if tok.upper() == "ROOT":
            raise self.error("a second ROOT: files with several roots are not supported", line)
        raise self.error(f"missing MOTION: expected 'MOTION' after the ROOT block, got {tok!r}", line)

    def joint(self, parent: int, end: bool, depth: int) -> None:
        if depth > MAX_DEPTH:
            line = self.tokens[self.i - 1][1]  # the JOINT or End Site keyword
            raise self.error(f"joints nested too deeply: more than {MAX_DEPTH} levels", line)
        if end:
            name: str | None = None
        else:
            tok, line = self.next("a joint name")
            if tok in ("{", "}"):
                raise self.error("missing joint name before '{'", line)
            parts = [tok]
            while (nxt := self.peek()) is not None and nxt[1] == line and nxt[0] not in ("{", "}"):
                parts.append(nxt[0])  # a name with spaces, on one line
                self.i += 1
            name = " ".join(parts)
            if name in self.taken:
                raise self.error(f"duplicate joint name {name!r}", line)
            self.taken.add(name)
        what = "End Site" if end else f"joint {name!r}"
        tok, line = self.next(f"'{{' opening {what}")
        if tok != "{":
            raise self.error(f"expected '{{' opening {what}, got {tok!r}", line)
        open_line = line
        j = len(self.names)
        self.names.append(name)
        self.parents.append(parent)
        self.offsets.append(np.full(3, np.nan))
        self.channels.append([])
        self.end_site.append(end)
        has_offset = False
        while True:
            if self.peek() is None:
                raise self.error(
                    f"unbalanced braces: the block of {what} opened at line {open_line} is not "
                    f"closed before the end of the file",
                    self.last_line,
                )
            tok, line = self.next("'}'")
            up = tok.upper()
            if tok == "}":
                break
            if up == "OFFSET":
                if has_offset:
                    raise self.error(f"bad OFFSET: a second OFFSET in {what}", line)
                self.offsets[j] = self.numbers(3, "OFFSET", line)
                has_offset = True
            elif up == "CHANNELS":
                self.channels[j] = self.channel_list(line)
                if end and self.channels[j]:
                    raise self.error("an End Site cannot have channels", line)
            elif up == "JOINT":
                if end:
                    raise self.error("an End Site cannot have child joints", line)
                self.joint(j, False, depth + 1)
            elif up == "END":
                tok2, line2 = self.next("'Site' after 'End'")
                if tok2.upper() != "SITE":
                    raise self.error(f"expected 'End Site', got 'End {tok2}'", line2)
                if end:
                    raise self.error("an End Site cannot have children", line)
                self.joint(j, True, depth + 1)
            elif up == "MOTION" or tok == "{":
                raise self.error(
                    f"unbalanced braces: the block of {what} opened at line {open_line} is not closed before {tok!r}",
                    line,
                )
            else:
                raise self.error(f"unexpected {tok!r} in the block of {what}", line)
        if not has_offset:
            raise self.error(f"bad OFFSET: {what} (opened at line {open_line}) has no OFFSET", line)

    def numbers(self, n: int, what: str, kw_line: int) -> np.ndarray:
        out = np.empty(n)
        for k in range(n):
            tok, line = self.next(f"{n} numbers after {what}")
            try:
                out[k] = float(tok)
            except ValueError:
                raise self.error(f"bad {what}: expected {n} numbers (line {kw_line}), got {tok!r}", line) from None
            if not np.isfinite(out[k]):
                raise self.error(f"bad {what}: non-finite value {tok!r}", line)
        return out

    def channel_list(self, kw_line: int) -> list[str]:
        tok, line = self.next("the channel count after CHANNELS")
        try:
            n = int(tok)
        except ValueError:
            n = -1
        if n < 0:
            raise self.error(f"bad CHANNELS: expected a channel count, got {tok!r}", line)
        out = []
        for _ in range(n):
            tok, line = self.next(f"{n} channel names after CHANNELS")
            c = CHANNELS.get(tok.lower())
            if c is None:
                raise self.error(
                    f"unknown channel name {tok!r} (CHANNELS at line {kw_line} announced {n}); expected "
                    f"Xposition, Yposition, Zposition, Xrotation, Yrotation or Zrotation",
                    line,
                )
            out.append(c)
        return out


def _end_site_names(names: list[str | None], parents: list[int]) -> list[str]:
    taken = {n for n in names if n is not None}
    out = []
    for n, p in zip(names, parents, strict=True):
        if n is None:
            base = f"{names[p]}_end"
            n, k = base, 1
            while n in taken:
                k += 1
                n = f"{base}{k}"
            taken.add(n)
        out.append(n)
    return out


def parse_bvh_lines(lines: list[str], path: str) -> tuple:
    # hierarchy tokens up to the MOTION keyword that follows a closing brace
    tokens: list[tuple[str, int]] = []
    motion_at: tuple[int, int] | None = None  # (line index, column after MOTION)
    for li, text in enumerate(lines):
        for m in _TOKEN.finditer(text):
            tok = m.group()
            if tok.upper() == "MOTION" and tokens and tokens[-1][0] == "}":
                motion_at = (li, m.end())
            tokens.append((tok, li + 1))
            if motion_at:
                break
        if motion_at:
            break
    last_line = max(len(lines), 1)
    hp = _HierarchyParser(tokens, path, last_line)
    hp.parse()
    if motion_at is None:  # unreachable: parse() only returns after the MOTION keyword
        raise FileFormatError("missing MOTION section", path, last_line)
    names = _end_site_names(hp.names, hp.parents)
    C = sum(len(c) for c in hp.channels)

    # header: Frames: N  Frame Time: t  (split on ':' so 'Frames:3069' and 'Frames :' both work)
    li, col = motion_at
    head: list[tuple[str, int]] = []
    rest = lines[li][col:]
    while len(head) < 7:
        head.extend((m.group(), li + 1) for m in _HEADER_TOKEN.finditer(rest))
        if len(head) >= 7:
            break
        li += 1
        if li >= len(lines):
            raise FileFormatError("missing 'Frames: N' / 'Frame Time: t' after MOTION", path, last_line)
        rest = lines[li]
    expect = ("frames", ":", None, "frame", "time", ":", None)
    for (tok, line), want in zip(head[:7], expect, strict=True):
        if want is not None and tok.lower() != want:
            raise FileFormatError(f"expected 'Frames: N' then 'Frame Time: t' after MOTION, got {tok!r}", path, line)
    (n_tok, n_line), (t_tok, t_line) = head[2], head[6]
    try:
        announced = int(n_tok)
    except ValueError:
        announced = -1
    if announced < 0:
        raise FileFormatError(f"Frames: expected a frame count, got {n_tok!r}", path, n_line)
    try:
        frame_time = float(t_tok)
    except ValueError:
        frame_time = float("nan")
    if not (np.isfinite(frame_time) and frame_time > 0):
        raise FileFormatError(f"Frame Time: expected a positive number of seconds, got {t_tok!r}", path, t_line)
    if not np.isfinite(1.0 / frame_time):  # a subnormal such as 1e-320: the frame rate would be infinite
        raise FileFormatError(f"Frame Time: {t_tok!r} is too small, its frame rate is infinite", path, t_line)
    if len(head) > 7:
        raise FileFormatError(f"unexpected {head[7][0]!r} after 'Frame Time: {t_tok}'", path, head[7][1])

    # frames: one non-blank line each
    rows: list[list[str]] = []
    row_lines: list[int] = []
    for k in range(li + 1, len(lines)):
        parts = lines[k].split()
        if not parts:
            continue
        if len(parts) != C:
            raise FileFormatError(
                f"frame line has {len(parts)} values, but the hierarchy declares {C} channels", path, k + 1
            )
        rows.append(parts)
        row_lines.append(k + 1)
    if C == 0:
        if announced > _MAX_EMPTY_FRAMES:
            raise FileFormatError(
                f"Frames: {announced} frames announced for a hierarchy without channels (at most "
                f"{_MAX_EMPTY_FRAMES} are read)",
                path,
                n_line,
            )
        motion = np.zeros((announced, 0))
    else:
        try:
            motion = np.array(rows, dtype=np.float64).reshape(len(rows), C)
        except ValueError:
            raise _non_numeric(rows, row_lines, path) from None
        bad = ~np.isfinite(motion)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise FileFormatError(f"non-finite value {rows[r][c]!r} in a frame line (channel {c})", path, row_lines[r])
        if len(rows) != announced:
            warnings.warn(
                f"{path}: the header announces {announced} frames but the file holds {len(rows)} complete "
                f"frame lines; using {len(rows)}",
                BVHWarning,
                stacklevel=3,
            )
    return names, hp.parents, np.array(hp.offsets), hp.channels, hp.end_site, frame_time, motion


def _non_numeric(rows: list[list[str]], row_lines: list[int], path: str) -> FileFormatError:
    """The error naming the first value numpy cannot parse as a float."""
    for parts, line in zip(rows, row_lines, strict=True):
        for p in parts:
            try:
                np.float64(p)
            except ValueError:
                return FileFormatError(f"non-numeric value {p!r} in a frame line", path, line)
    return FileFormatError("non-numeric value in the frame lines", path, row_lines[0] if row_lines else None)
