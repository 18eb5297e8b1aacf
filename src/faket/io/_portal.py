"""CryoET Data Portal downloads: find a tilt-series and its metadata in the folder layout.

The portal's S3 layout, which its client's ``download_everything`` mirrors below the
dataset (``<dataset>/<run>/...``), sources: the portal backend's ``schema/README.md``
(layout 1), its ingestion code and test files (layout 2), and the
``cryoet-data-portal`` client's models::

    <run>/TiltSeries/tiltseries_metadata.json, <run>.mrc, [.rawtlt, .tlt, .mdoc]   (1)
    <run>/TiltSeries/<id>/tiltseries_metadata.json, <name>.mrc, <name>.rawtlt     (2)
    <run>/Alignments/<id>/alignment_metadata.json, <name>.xf | <name>.aln          (2)
    <run>/Frames/frames_metadata.json                                              (2)

``tiltseries_metadata.json`` gives ``mrc_file`` (``mrc_files`` in layout 1),
``pixel_spacing`` (A), ``size`` and ``per_section_parameter``: per image ``z_index``
(its section in the stack), ``raw_angle`` (the nominal angle), ``major_defocus`` /
``minor_defocus`` (A, underfocus positive) and ``frame_acquisition_order``, the key of
the image's frame in ``frames_metadata.json`` (``acquisition_order``,
``exposure_dose``, ``accumulated_dose``, e/A^2). An alignment whose ``tiltseries_path``
names this tilt-series gives the shifts through its IMOD ``.xf`` or AreTomo ``.aln``
file (``alignment_path``); sections missing from its ``per_section_alignment_parameters``
are excluded. Paths in the JSON files start at the bucket's dataset folder; files are
looked up by name in the folder of the JSON file that names them.

copick projects (``ExperimentRuns/<run>/VoxelSpacing<size>/<tomogram>.zarr``, picks,
segmentations: copick 1.31's filesystem layout) hold no tilt-series, so a copick
folder is refused with a message saying so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from faket.errors import FaketInputError
from faket.io._text import read_text
from faket.io.angles import read_tilt_angles
from faket.io.tilt_series_files import TiltSeriesInfo, rank

_METADATA = "tiltseries_metadata.json"
_MAX_NAMES_SHOWN = 8


def read_folder(folder: Path, name: str | None) -> TiltSeriesInfo:
    """Read the tilt-series of a Data Portal dataset, run or ``TiltSeries`` folder."""
    return _read_tilt_series(_find_metadata(folder, name))


# --- finding the tilt-series ----------------------------------------------------------


def _find_metadata(folder: Path, name: str | None) -> Path:
    """Return the ``tiltseries_metadata.json`` that ``folder`` (and ``name``) point to."""
    if (folder / _METADATA).is_file():
        if name is not None:
            raise FaketInputError(f"holds one tilt-series; name={name!r} selects nothing", folder)
        return folder / _METADATA
    if (folder / "TiltSeries").is_dir():
        return _one_of_run(folder, name)
    runs = sorted(d for d in folder.iterdir() if (d / "TiltSeries").is_dir())
    if runs:
        run = _choose(folder, {run.name: run for run in runs}, name, "runs")
        return _one_of_run(run, None)
    _refuse_copick(folder)
    raise FaketInputError(
        f"is a folder without a CryoET Data Portal tilt-series (no TiltSeries/.../{_METADATA})",
        folder,
    )


def _one_of_run(run: Path, name: str | None) -> Path:
    """Return the metadata of the run's only (or ``name``d) tilt-series."""
    tilt_series = run / "TiltSeries"
    if (tilt_series / _METADATA).is_file():  # layout 1: one tilt-series per run
        return _choose(run, {tilt_series.name: tilt_series / _METADATA}, name, "tilt-series")
    found = {f.parent.name: f for f in sorted(tilt_series.glob(f"*/{_METADATA}"))}
    if not found:
        raise FaketInputError(f"has a TiltSeries folder without a {_METADATA}", run)
    return _choose(run, found, name, "tilt-series")


def _choose(folder: Path, options: dict[str, Path], name: str | None, kind: str) -> Path:
    """Return ``options[name]``, or the only option when ``name`` is None."""
    names = list(options)
    shown = ", ".join(names[:_MAX_NAMES_SHOWN]) + (", ..." if len(names) > _MAX_NAMES_SHOWN else "")
    if name is None and len(options) == 1:
        return options[names[0]]
    if name is None:
        raise FaketInputError(f"holds {len(options)} {kind} ({shown}); choose one by name", folder)
    if name not in options:
        raise FaketInputError(f"has no {kind} named {name!r} (it has {shown})", folder)
    return options[name]


def _refuse_copick(folder: Path) -> None:
    """Raise if ``folder`` is a copick project or run: copick stores no tilt-series."""
    if (folder / "ExperimentRuns").is_dir() or any(folder.glob("VoxelSpacing*")):
        raise FaketInputError(
            "is a copick project or run; copick stores tomograms, picks and segmentations "
            "but no tilt-series: give the tilt-series' own metadata file (.mdoc, .aln, .tlt, "
            "...) or its CryoET Data Portal folder",
            folder,
        )


# --- reading it -----------------------------------------------------------------------


def _read_tilt_series(metadata_file: Path) -> TiltSeriesInfo:
    """Read a portal tilt-series from its ``tiltseries_metadata.json`` and neighbours."""
    meta = read_json(metadata_file)
    folder = metadata_file.parent
    run = folder.parent if folder.name == "TiltSeries" else folder.parent.parent
    sections = _sections(meta, metadata_file)
    angles = _angles(sections, meta, metadata_file)
    n = angles.size
    order_keys = _section_values(sections, "frame_acquisition_order", n)
    major = _section_values(sections, "major_defocus", n)
    minor = _section_values(sections, "minor_defocus", n)
    dose, prior = _frame_doses(run, order_keys)
    shifts, rotation, excluded = _alignment(run, metadata_file, n)
    pixel = meta.get("pixel_spacing")
    return TiltSeriesInfo(
        angles_deg=angles,
        pixel_size_a=float(pixel) if isinstance(pixel, (int, float)) and pixel > 0 else None,
        acquisition_order=None if order_keys is None else rank(order_keys),
        dose_e_per_a2=dose,
        prior_dose_e_per_a2=prior,
        shifts_px=shifts,
        in_plane_rotation_deg=rotation,
        defocus_um=None if major is None or minor is None else (major + minor) / 2 / 1e4,
        excluded=excluded,
        tilt_series=_stack(meta, folder),
        source=f"{metadata_file} (CryoET Data Portal tilt-series)",
    )


def read_json(file: Path) -> dict[str, Any]:
    """Return a JSON object file's content, or raise `FaketInputError` naming the file."""
    try:
        data = json.loads(read_text(file, kind="JSON"))
    except json.JSONDecodeError as err:
        raise FaketInputError(f"not valid JSON (line {err.lineno}: {err.msg})", file) from None
    if not isinstance(data, dict):
        raise FaketInputError("is not a JSON object", file)
    return data


def _sections(meta: dict[str, Any], file: Path) -> list[dict[str, Any]]:
    """Return ``per_section_parameter`` ordered by ``z_index`` when it covers the stack."""
    sections = meta.get("per_section_parameter") or []
    if not isinstance(sections, list) or not all(isinstance(s, dict) for s in sections):
        raise FaketInputError("per_section_parameter is not a list of objects", file)
    z = [s.get("z_index") for s in sections]
    size = (meta.get("size") or {}).get("z", len(sections))
    if not sections or len(z) != size or set(z) != set(range(size)):
        return []  # partial or absent: angles come from the angle file
    return sorted(sections, key=lambda s: int(s["z_index"]))


def _section_values(sections: list[dict[str, Any]], key: str, n: int) -> np.ndarray | None:
    """Return ``key`` of every section as float64, or None if any section lacks it."""
    values = [s.get(key) for s in sections]
    if len(values) != n or any(not isinstance(v, (int, float)) for v in values):
        return None
    return np.asarray(values, dtype=np.float64)


def _angles(sections: list[dict[str, Any]], meta: dict[str, Any], file: Path) -> np.ndarray:
    """Return the per-section ``raw_angle``, else the angles of the folder's angle file."""
    raw = _section_values(sections, "raw_angle", len(sections))
    if sections and raw is not None:
        return raw
    folder = file.parent
    named = meta.get("raw_tlt_path")
    candidates = [folder / Path(str(named)).name] if named else []
    candidates += sorted(folder.glob("*.rawtlt")) + sorted(folder.glob("*.tlt"))
    for candidate in candidates:
        if candidate.is_file():
            return read_tilt_angles(candidate)
    raise FaketInputError(
        "gives no per-section raw_angle and there is no .rawtlt or .tlt next to it", file
    )


def _frame_doses(
    run: Path, order_keys: np.ndarray | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Return each image's exposure and prior dose from ``Frames/frames_metadata.json``."""
    frames_file = run / "Frames" / "frames_metadata.json"
    if order_keys is None or not frames_file.is_file():
        return None, None
    frames = read_json(frames_file).get("frames") or []
    by_order = {f.get("acquisition_order"): f for f in frames if isinstance(f, dict)}
    rows = [by_order.get(int(key)) for key in order_keys]
    if any(row is None for row in rows):
        return None, None
    dose = [row.get("exposure_dose") for row in rows if row is not None]
    prior = [row.get("accumulated_dose") for row in rows if row is not None]
    return _numbers_or_none(dose), _numbers_or_none(prior)


def _numbers_or_none(values: list[Any]) -> np.ndarray | None:
    """Return ``values`` as float64 if all are numbers, else None."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.float64)
    return None


def _alignment(
    run: Path, metadata_file: Path, n: int
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Return shifts, rotation and excluded images from this tilt-series' only alignment."""
    own = f"{metadata_file.parent.name}/{metadata_file.name}"
    matches = []
    for file in sorted(run.glob("Alignments/*/alignment_metadata.json")):
        meta = read_json(file)
        if str(meta.get("tiltseries_path", "")).endswith(own):
            matches.append((file, meta))
    if len(matches) != 1:
        return None, None, None
    file, meta = matches[0]
    excluded = _excluded_sections(meta, n)
    named = meta.get("alignment_path")
    path = file.parent / Path(str(named)).name if named else None
    if path is None or not path.is_file() or path.suffix not in (".xf", ".aln"):
        return None, None, excluded
    shifts, rotation, dropped = _alignment_file(path, n)
    return shifts, rotation, excluded if excluded is not None else dropped


def _excluded_sections(meta: dict[str, Any], n: int) -> np.ndarray | None:
    """Return True for the sections an alignment leaves out, or None if it lists none."""
    listed = meta.get("per_section_alignment_parameters") or []
    z = {p.get("z_index") for p in listed if isinstance(p, dict)}
    if not z:
        return None
    return np.asarray([i not in z for i in range(n)], dtype=bool)


def _alignment_file(path: Path, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Return shifts, rotation and dropped images of an alignment's ``.xf`` or ``.aln``."""
    if path.suffix == ".aln":
        from faket.io._aretomo import read_aln

        info = read_aln(path)
        shifts = np.asarray(info.shifts_px)
        rotation = np.asarray(info.in_plane_rotation_deg)
        dropped = info.excluded
    else:
        from faket.io._imod import read_xf_rows

        rows = read_xf_rows(path)
        shifts, rotation = rows[:, [5, 4]], np.degrees(np.arctan2(rows[:, 2], rows[:, 0]))
        dropped = None
    if len(shifts) != n:
        raise FaketInputError(f"has {len(shifts)} images, the tilt-series has {n}", path)
    return shifts, rotation, dropped


def _stack(meta: dict[str, Any], folder: Path) -> Path | None:
    """Return the tilt-series MRC: ``mrc_file`` (``mrc_files``), else the folder's only MRC."""
    named = meta.get("mrc_file") or (meta.get("mrc_files") or [None])[0]
    if named and (folder / Path(str(named)).name).is_file():
        return folder / Path(str(named)).name
    stacks = sorted(folder.glob("*.mrc"))
    return stacks[0] if len(stacks) == 1 else None
