"""JSON records of the pipeline and the evaluation: atomic writes, tolerant reads."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from faket.io._atomic import atomic_write

__all__ = ["read_json_object", "write_json"]


def write_json(data: Any, path: str | os.PathLike[str]) -> None:
    """Write ``data`` as JSON indented by 2 with a final newline, atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Return a JSON object file's content, or None when missing, unreadable or not an object.

    For markers and logs that a re-run may find absent or from another version.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
