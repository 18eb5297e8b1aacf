"""Read and write per-tilt noise statistics as a small, human-readable JSON file.

Layout (version 1)::

    {
      "format": "faket-noise-stats",
      "version": 1,
      "tomograms": [
        {
          "source": "tomo_01.mrc",
          "method": "paired",
          "tilt_angles_deg": [-60.0, -58.0, ...],
          "r": [0.31, ...],
          "sigma": [0.95, ...],
          "mean": [12.1, ...],
          "std": [3.4, ...]
        }
      ]
    }

``tilt_angles_deg`` may be ``null``. Lists are written on one line each. Numbers are
written with Python's shortest round-trip representation, so a float64 value reads back
bit-identical.

Version 2 adds, per tomogram, an optional ``"spectra"`` object (the spectral noise model,
:class:`faket.noise.TiltSpectra`), or ``null``::

    "spectra": {
      "frequency": [0.0, 0.0039, ...],
      "transfer": [
        [0.12, ...],
        ...
      ],
      "noise_power": [
        [0.85, ...],
        ...
      ]
    }

``frequency`` holds the ``n_bins`` ring centres in cycles/pixel (from 0, strictly
increasing); ``transfer`` and ``noise_power`` one row of ``n_bins`` values per tilt, one
line per row. :func:`write_noise_stats` writes version 2 only when some tomogram has
spectra, and version 1 otherwise, so files of the published model stay byte-identical
and readable by older faket releases. :func:`read_noise_stats` reads both versions.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from faket.errors import FaketInputError
from faket.io._atomic import atomic_write
from faket.io._text import read_text
from faket.noise.spectral import TiltSpectra
from faket.noise.stats import METHODS, TiltStats

__all__ = [
    "NOISE_STATS_FORMAT",
    "NOISE_STATS_VERSION",
    "NOISE_STATS_VERSIONS",
    "read_noise_stats",
    "write_noise_stats",
]

NOISE_STATS_FORMAT = "faket-noise-stats"
"""Value of the ``"format"`` key that identifies a noise-statistics file."""

NOISE_STATS_VERSION = 2
"""Newest layout, written by :func:`write_noise_stats` when some tomogram has spectra
(version 1 otherwise)."""

NOISE_STATS_VERSIONS = (1, 2)
"""Layouts that :func:`read_noise_stats` reads."""

_CURVES = ("r", "sigma", "mean", "std")
_KEYS = ("source", "method", "tilt_angles_deg", *_CURVES)
_SPECTRA_KEYS = ("frequency", "transfer", "noise_power")

_R_TOLERANCE = 1e-6
"""How far beyond [-1, 1] a measured ``r`` may lie (float rounding of a correlation)."""


def _json_list(values: torch.Tensor) -> str:
    return json.dumps([float(v) for v in values.detach().cpu().tolist()], allow_nan=False)


def _json_rows(values: torch.Tensor, indent: str) -> str:
    rows = ",\n".join(indent + "  " + _json_list(row) for row in values)
    return "[\n" + rows + "\n" + indent + "]"


def _format_spectra(spectra: TiltSpectra | None) -> str:
    if spectra is None:
        return "null"
    indent = "        "
    fields = [
        f'"frequency": {_json_list(spectra.frequency)}',
        f'"transfer": {_json_rows(spectra.transfer, indent)}',
        f'"noise_power": {_json_rows(spectra.noise_power, indent)}',
    ]
    return "{\n" + indent + (",\n" + indent).join(fields) + "\n      }"


def _format(stats: Sequence[TiltStats]) -> str:
    version = 1 if all(s.spectra is None for s in stats) else NOISE_STATS_VERSION
    blocks = []
    for s in stats:
        angles = "null" if s.tilt_angles_deg is None else _json_list(s.tilt_angles_deg)
        fields = [
            f'"source": {json.dumps(s.source, ensure_ascii=False)}',
            f'"method": {json.dumps(s.method)}',
            f'"tilt_angles_deg": {angles}',
            *(f'"{name}": {_json_list(getattr(s, name))}' for name in _CURVES),
        ]
        if version >= 2:
            fields.append(f'"spectra": {_format_spectra(s.spectra)}')
        blocks.append("    {\n      " + ",\n      ".join(fields) + "\n    }")
    return (
        "{\n"
        f'  "format": "{NOISE_STATS_FORMAT}",\n'
        f'  "version": {version},\n'
        '  "tomograms": [\n' + ",\n".join(blocks) + "\n  ]\n}\n"
    )


def write_noise_stats(stats: Sequence[TiltStats], path: str | os.PathLike[str]) -> None:
    """Write the statistics of one or more tomograms to a JSON file, atomically.

    Parameters
    ----------
    stats : sequence of TiltStats
        One entry per tomogram, in the order they should be read back.
    path : str or PathLike
        The file to write (conventionally ``*.json``). Its folder must exist; an existing
        file is replaced only once the new one is complete.

    Raises
    ------
    ValueError
        If ``stats`` is empty or holds something other than TiltStats.
    faket.errors.FaketInputError
        If the folder does not exist or cannot be written.

    Notes
    -----
    Writes version 2 (with a ``"spectra"`` object or null per tomogram) when some
    tomogram has spectra, else version 1, byte-identical to what earlier releases wrote.
    """
    if isinstance(stats, TiltStats):
        stats = [stats]
    if len(stats) == 0:
        raise ValueError("there are no noise statistics to write (empty sequence)")
    for i, s in enumerate(stats):
        if not isinstance(s, TiltStats):
            raise ValueError(f"item {i} is a {type(s).__name__}, not TiltStats")
    text = _format(stats)
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _non_finite(name: str) -> float:
    """Read JSON's ``NaN``/``Infinity`` tokens as floats; `_numbers` names where they are."""
    return float(name)


def _numbers(value: Any, where: str, key: str, path: Path) -> list[float]:
    if not isinstance(value, list):
        raise FaketInputError(f'{where} "{key}" must be a list of numbers', path)
    for k, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise FaketInputError(f'{where} "{key}" must be a list of numbers, found {v!r}', path)
        if not math.isfinite(v):
            raise FaketInputError(
                f'{where}, tilt {k}: "{key}" is {v}; every value must be finite', path
            )
    return [float(v) for v in value]


_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "r": (
        lambda v: abs(v) <= 1 + _R_TOLERANCE,
        "outside [-1, 1] (r is the correlation of a tilt with its noiseless image)",
    ),
    "sigma": (lambda v: v >= 0, "a noise level must be >= 0"),
    "std": (lambda v: v > 0, "a tilt's standard deviation must be positive"),
}


def _check_ranges(curves: dict[str, list[float]], where: str, path: Path) -> None:
    """Refuse the first value out of its field's range, naming the field and the tilt."""
    for key, (allowed, rule) in _RULES.items():
        for k, v in enumerate(curves[key]):
            if not allowed(v):
                raise FaketInputError(f'{where}, tilt {k}: "{key}" is {v:g}; {rule}', path)


def _finite_row(value: Any, where: str, key: str, path: Path) -> list[float]:
    """Check one list of a spectra field: numbers, all finite (errors name the bin)."""
    if not isinstance(value, list):
        raise FaketInputError(f'{where}: spectra "{key}" must be a list of numbers', path)
    for b, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise FaketInputError(
                f'{where}: spectra "{key}" must be a list of numbers, found {v!r}', path
            )
        if not math.isfinite(v):
            raise FaketInputError(
                f'{where}, bin {b}: spectra "{key}" is {v}; every value must be finite', path
            )
    return [float(v) for v in value]


def _frequency(value: Any, where: str, path: Path) -> list[float]:
    frequency = _finite_row(value, where, "frequency", path)
    if len(frequency) < 2:
        raise FaketInputError(f'{where}: spectra "frequency" needs at least 2 rings', path)
    if frequency[0] != 0.0:
        raise FaketInputError(
            f'{where}, bin 0: spectra "frequency" is {frequency[0]:g}; the first ring is DC (0)',
            path,
        )
    for b in range(1, len(frequency)):
        if not frequency[b] > frequency[b - 1]:
            raise FaketInputError(
                f'{where}, bin {b}: spectra "frequency" is {frequency[b]:g}; ring centres '
                f"must increase strictly (previous {frequency[b - 1]:g})",
                path,
            )
    return frequency


def _spectra_rows(
    value: Any, where: str, key: str, n_tilts: int, n_bins: int, path: Path
) -> list[list[float]]:
    """Check a spectra field: ``n_tilts`` rows of ``n_bins`` finite numbers."""
    if not isinstance(value, list) or len(value) != n_tilts:
        found = f"{len(value)} rows" if isinstance(value, list) else f"a {type(value).__name__}"
        raise FaketInputError(
            f'{where}: spectra "{key}" must be a list of one row per tilt ({n_tilts}), got {found}',
            path,
        )
    rows = []
    for k, row in enumerate(value):
        numbers = _finite_row(row, f"{where}, tilt {k}", key, path)
        if len(numbers) != n_bins:
            raise FaketInputError(
                f'{where}, tilt {k}: spectra "{key}" has {len(numbers)} values, expected '
                f'one per ring of "frequency" ({n_bins})',
                path,
            )
        rows.append(numbers)
    return rows


def _spectra(value: Any, where: str, n_tilts: int, path: Path) -> TiltSpectra | None:
    """Read a tomogram's optional ``"spectra"`` object (version 2)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FaketInputError(f'{where}: "spectra" must be a JSON object or null', path)
    missing = [k for k in _SPECTRA_KEYS if k not in value]
    if missing:
        raise FaketInputError(f'{where}: "spectra" lacks the key(s) {", ".join(missing)}', path)
    frequency = _frequency(value["frequency"], where, path)
    n_bins = len(frequency)
    transfer = _spectra_rows(value["transfer"], where, "transfer", n_tilts, n_bins, path)
    noise = _spectra_rows(value["noise_power"], where, "noise_power", n_tilts, n_bins, path)
    for k, row in enumerate(noise):
        for b, v in enumerate(row):
            if v < 0:
                raise FaketInputError(
                    f'{where}, tilt {k}, bin {b}: spectra "noise_power" is {v:g}; '
                    "a noise power must be >= 0",
                    path,
                )
    f64 = torch.float64
    return TiltSpectra(
        frequency=torch.tensor(frequency, dtype=f64),
        transfer=torch.tensor(transfer, dtype=f64),
        noise_power=torch.tensor(noise, dtype=f64),
    )


def _tomogram(entry: Any, i: int, path: Path, version: int = 1) -> TiltStats:
    where = f"tomogram {i}"
    if not isinstance(entry, dict):
        raise FaketInputError(f"{where} must be a JSON object", path)
    missing = [k for k in _KEYS if k not in entry]
    if missing:
        raise FaketInputError(f"{where} lacks the key(s) {', '.join(missing)}", path)
    source, method = entry["source"], entry["method"]
    if not isinstance(source, str):
        raise FaketInputError(f'{where}: "source" must be a string', path)
    if method not in METHODS:
        raise FaketInputError(
            f'{where}: "method" must be one of {", ".join(METHODS)}, got {method!r}', path
        )
    curves = {k: _numbers(entry[k], where, k, path) for k in _CURVES}
    angles = entry["tilt_angles_deg"]
    if angles is not None:
        curves["tilt_angles_deg"] = _numbers(angles, where, "tilt_angles_deg", path)
    lengths = {k: len(v) for k, v in curves.items()}
    if len(set(lengths.values())) != 1:
        found = ", ".join(f"{k} {n}" for k, n in lengths.items())
        raise FaketInputError(f"{where} has lists of different lengths ({found})", path)
    if lengths["r"] == 0:
        raise FaketInputError(f"{where} has no tilts", path)
    _check_ranges(curves, where, path)
    spectra = _spectra(entry.get("spectra"), where, lengths["r"], path) if version >= 2 else None
    try:
        return TiltStats(
            r=torch.tensor(curves["r"], dtype=torch.float64),
            sigma=torch.tensor(curves["sigma"], dtype=torch.float64),
            mean=torch.tensor(curves["mean"], dtype=torch.float64),
            std=torch.tensor(curves["std"], dtype=torch.float64),
            tilt_angles_deg=(
                None
                if angles is None
                else torch.tensor(curves["tilt_angles_deg"], dtype=torch.float64)
            ),
            method=method,
            source=source,
            spectra=spectra,
        )
    except ValueError as err:  # pragma: no cover - the checks above catch what it checks
        raise FaketInputError(f"{where}: {err}", path) from err


def read_noise_stats(path: str | os.PathLike[str]) -> list[TiltStats]:
    """Read the statistics written by :func:`write_noise_stats`.

    Parameters
    ----------
    path : str or PathLike
        A ``faket-noise-stats`` JSON file.

    Returns
    -------
    list of TiltStats
        One per tomogram, in file order; float64 tensors on the CPU.

    Raises
    ------
    faket.errors.FaketInputError
        With a one-line message naming ``path`` if the file is missing or unreadable, is
        not JSON, is not a ``faket-noise-stats`` file of a known version, lacks a key,
        has lists of different lengths, or holds non-numeric or non-finite numbers or a
        value out of its range: ``r`` outside ``[-1, 1]`` (it is a correlation),
        ``sigma < 0`` or ``std <= 0``. The message names the tomogram, the tilt index,
        the field and the value. In version 2, ``"spectra"`` must be null or hold a
        ``frequency`` list (from 0, strictly increasing) and one row per tilt of one
        finite value per ring in ``transfer`` and ``noise_power`` (``>= 0``); errors name
        the tilt and the bin.

    Notes
    -----
    Version 1 files read exactly as before (a ``"spectra"`` key in them is ignored);
    their ``spectra`` are None, as are those of version 2 tomograms without spectra.
    """
    file = Path(path)
    text = read_text(file, kind="JSON")
    try:
        data = json.loads(text, parse_constant=_non_finite)
    except json.JSONDecodeError as err:
        raise FaketInputError(
            f"not a JSON file ({err.msg} at line {err.lineno}, column {err.colno})", file
        ) from None
    if not isinstance(data, dict) or data.get("format") != NOISE_STATS_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise FaketInputError(
            f'not a noise-statistics file ("format" is {found!r}, expected {NOISE_STATS_FORMAT!r})',
            file,
        )
    version = data.get("version")
    if version not in NOISE_STATS_VERSIONS or isinstance(version, bool):
        raise FaketInputError(
            f"unsupported noise-statistics version {version!r} "
            f"(this faket reads versions {', '.join(map(str, NOISE_STATS_VERSIONS))})",
            file,
        )
    tomograms = data.get("tomograms")
    if not isinstance(tomograms, list) or len(tomograms) == 0:
        raise FaketInputError('"tomograms" must be a non-empty list', file)
    return [_tomogram(entry, i, file, int(version)) for i, entry in enumerate(tomograms)]
