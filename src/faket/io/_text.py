"""Helpers shared by the text-file readers and writers of :mod:`faket.io`."""

from __future__ import annotations

import math
import os
from pathlib import Path

from faket.errors import FaketInputError


def require_file(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` as a `Path`, or raise `FaketInputError` if it is not a file."""
    file = Path(path)
    if not file.exists():
        raise FaketInputError("file not found", file)
    if file.is_dir():
        raise FaketInputError("is a folder, not a file", file)
    return file


def read_text(path: str | os.PathLike[str], *, kind: str = "text") -> str:
    """Read a whole UTF-8 file (a byte-order mark is dropped).

    Parameters
    ----------
    path : str or PathLike
        The file.
    kind : str
        What the file should be, for the error message ("text", "JSON", ...).

    Raises
    ------
    FaketInputError
        If the file is missing, is a folder, cannot be read or is not UTF-8 text.
    """
    file = require_file(path)
    try:
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise FaketInputError(f"not a {kind} file (it is not UTF-8 text)", file) from None
    except OSError as err:
        raise FaketInputError(f"cannot read the file ({err.strerror})", file) from err


def read_text_lines(path: str | os.PathLike[str]) -> list[str]:
    """Read a UTF-8 text file and return its lines, numbered from 1 as ``lines[n - 1]``.

    Lines are split at line feeds only (Windows CRLF endings are accepted), so the line
    numbers in error messages are the ones a text editor shows. Errors as `read_text`.
    """
    return [line.rstrip("\r") for line in read_text(path).split("\n")]


def to_float(token: str) -> float | None:
    """Return ``token`` as a float (NaN and Inf included), or None if it is not a number."""
    try:
        return float(token)
    except ValueError:
        return None


def is_finite(value: float) -> bool:
    """Return True if ``value`` is neither NaN nor infinite."""
    return math.isfinite(value)


def snippet(text: str, limit: int = 60) -> str:
    """Return ``text`` quoted for an error message, cut to about ``limit`` characters."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)


def format_decimal(value: float, decimals: int) -> str:
    """Format ``value`` with at most ``decimals`` decimals, without trailing zeros.

    ``148.0 -> "148"``, ``12.5 -> "12.5"``, ``-0.0 -> "0"``. Never uses exponent notation,
    so parsers that expect integers still read integral values.
    """
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    return text
