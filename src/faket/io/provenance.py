"""Provenance JSON: what made an output file (settings, versions, device, timings)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from faket.io.json_files import write_json

_MRC_SUFFIXES = (".mrc.gz", ".mrc.bz2", ".mrc", ".rec", ".st", ".ali")


def provenance_path(output: str | os.PathLike[str]) -> Path:
    """Return the provenance JSON next to ``output`` (``TOMO.mrc`` -> ``TOMO.provenance.json``)."""
    out = Path(output)
    name = out.name
    for suffix in _MRC_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return out.with_name(name + ".provenance.json")


def versions() -> dict[str, str]:
    """Return the versions of faket, torch and Python."""
    import torch

    import faket

    return {
        "faket_version": faket.__version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
    }


def write_provenance(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Write ``record`` with :func:`versions` as indented JSON, atomically."""
    write_json({**versions(), **record}, path)
