"""The files a run reads, and one digest of their contents for the resume keys.

A finished tomogram is skipped on a re-run only when its key matches; the key covers the
configuration AND the bytes of every file the configuration names (angles file,
structures, reference tilt-series and their angles, stats file, noiseless pairs,
backbone weights). So editing any of them redoes the dataset, while moving nothing and
changing nothing skips it. Hashing a large reference takes seconds, so each file's
SHA-256 is cached in ``<output>/.faket/file_hashes.json`` by its resolved path, size and
modification time: an unchanged file is not read again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from faket.config import FaketConfig
from faket.io import read_json_object, write_json

HASH_CACHE = Path(".faket") / "file_hashes.json"
"""Where, under the dataset folder, the per-file SHA-256 cache is kept."""

_BLOCK_BYTES = 1 << 22


def input_files(config: FaketConfig) -> list[tuple[str, Path]]:
    """Return every file the configuration names, as ``(field, path)`` in a fixed order.

    ``field`` is the configuration field, e.g. ``phantom.structures[0].path``, so an
    error can name it.
    """
    files: list[tuple[str, Path]] = []
    if config.projection.angles_file is not None:
        files.append(("projection.angles_file", config.projection.angles_file))
    for k, entry in enumerate(config.phantom.structures):
        files.append((f"phantom.structures[{k}].path", entry.path))
    for k, protein in enumerate(config.phantom.membrane_proteins):
        if protein.path is not None:
            files.append((f"phantom.membrane_proteins[{k}].path", protein.path))
    for k, filament in enumerate(config.phantom.filaments):
        if filament.path is not None:
            files.append((f"phantom.filaments[{k}].path", filament.path))
    ref = config.reference
    if ref.source == "files":
        from faket.pipeline.references import metadata_files, reference_sources

        for k in range(len(ref.tilt_series)):
            stack, metadata = reference_sources(config, k)
            files.append((f"reference.tilt_series[{k}]", stack))
            files += [(f"reference.angles[{k}]", f) for f in metadata_files(metadata)]
        for name in ("even", "odd"):
            files += [(f"reference.{name}[{k}]", p) for k, p in enumerate(getattr(ref, name))]
        if config.noise.stats_file is not None:
            files.append(("noise.stats_file", config.noise.stats_file))
        for k, path in enumerate(config.noise.noiseless):
            files.append((f"noise.noiseless[{k}]", path))
    if config.style.weights_path is not None:
        files.append(("style.weights_path", config.style.weights_path))
    return files


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def inputs_digest(files: list[tuple[str, Path]], cache: dict[str, dict[str, object]]) -> str:
    """Return one SHA-256 over every file's field, size and content hash.

    Parameters
    ----------
    files : list of (str, Path)
        From `input_files`; each must exist (the pre-flight checks that first).
    cache : dict
        Resolved path -> ``{"size", "mtime_ns", "sha256"}``; entries of unchanged files
        are reused, the others (re)computed and stored in it.

    Returns
    -------
    str
        Hex digest; the same files with the same bytes give the same digest.
    """
    total = hashlib.sha256()
    for field, path in files:
        resolved = str(Path(path).resolve())
        stat = os.stat(resolved)
        entry = cache.get(resolved)
        if not (
            isinstance(entry, dict)
            and entry.get("size") == stat.st_size
            and entry.get("mtime_ns") == stat.st_mtime_ns
            and isinstance(entry.get("sha256"), str)
        ):
            entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
            entry["sha256"] = file_sha256(Path(resolved))
            cache[resolved] = entry
        total.update(f"{field}\0{stat.st_size}\0{entry['sha256']}\n".encode())
    return total.hexdigest()


def read_hash_cache(output: Path) -> dict[str, dict[str, object]]:
    """Return the dataset's file-hash cache (empty when absent or unreadable)."""
    data = read_json_object(output / HASH_CACHE)
    return {k: v for k, v in (data or {}).items() if isinstance(v, dict)}


def write_hash_cache(output: Path, cache: dict[str, dict[str, object]]) -> None:
    """Store the file-hash cache in the dataset folder (atomically)."""
    (output / HASH_CACHE).parent.mkdir(parents=True, exist_ok=True)
    write_json(cache, output / HASH_CACHE)
