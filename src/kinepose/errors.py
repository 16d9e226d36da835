"""Error types. Every one is a ``ValueError`` so callers can catch bad input uniformly."""

from __future__ import annotations


class KineposeError(ValueError):
    """Base class of kinepose's input errors."""


class ShapeError(KineposeError):
    """A tensor or array has the wrong shape (wrong joint count, wrong last dimension...)."""


class NonFiniteError(KineposeError):
    """A tensor or array holds NaN or infinite values where finite ones are required."""


class FileFormatError(KineposeError):
    """A file could not be parsed; the message names the file and, where known, the line."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.line = line
