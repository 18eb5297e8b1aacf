"""Files of the evaluation: a ground-truth tomogram folder and predicted particle lists."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faket.errors import FaketInputError
from faket.evaluation.compare import RunScores
from faket.io import atomic_write, read_classes_json, read_mrc, read_particles_star
from faket.io._text import read_text_lines, snippet, to_float

__all__ = [
    "Truth",
    "read_predictions",
    "read_run_scores",
    "read_truth",
    "write_confusion_csv",
]

_RUN_FOLDER = re.compile(r"^(?P<modality>.+)_seed(?P<seed>-?\d+)$")


@dataclass(frozen=True)
class Truth:
    """A ground-truth tomogram: its particles, occupancy mask and class table.

    Attributes
    ----------
    names : list of str
        Class of each particle, in ``particle_locations.txt`` order (index = id - 1).
    xyz : numpy.ndarray
        ``(n, 3)`` centres in voxels.
    occupancy : numpy.ndarray
        ``(nz, ny, nx)`` int64 particle ids, 0 = background.
    class_order : list of str
        Class names by particle size (``diameter_a``, smallest first).
    """

    names: list[str]
    xyz: np.ndarray
    occupancy: np.ndarray
    class_order: list[str]


def read_truth(folder: str | os.PathLike[str]) -> Truth:
    """Read ``particle_locations.txt``, ``occupancy_mask.mrc`` and ``classes.json``.

    ``classes.json`` is optional: without it the classes are ordered by name.

    Raises
    ------
    FaketInputError
        If a file is missing or bad, or the mask holds ids beyond the particle list.
    """
    from faket.io import read_particle_locations

    root = Path(folder)
    if not root.is_dir():
        raise FaketInputError("not a folder", root)
    particles = read_particle_locations(root / "particle_locations.txt")
    mask_path = root / "occupancy_mask.mrc"
    raw = read_mrc(mask_path, ndim=3).data
    occupancy = np.rint(raw).astype(np.int64)
    if occupancy.size and (occupancy.min() < 0 or occupancy.max() > len(particles)):
        raise FaketInputError(
            f"particle ids run to {int(occupancy.max())} but particle_locations.txt "
            f"lists {len(particles)} particles",
            mask_path,
        )
    names = [p.class_name for p in particles]
    classes_path = root / "classes.json"
    if classes_path.exists():
        table = read_classes_json(classes_path)
        order = [c["name"] for c in sorted(table, key=lambda c: (c["diameter_a"], c["name"]))]
    else:
        order = []
    order += sorted(set(names) - set(order))
    xyz = np.array([[p.x, p.y, p.z] for p in particles], dtype=np.float64).reshape(-1, 3)
    return Truth(names, xyz, occupancy, order)


def _canonical(name: str, known: Sequence[str]) -> str | None:
    """Return the known class ``name`` stands for (exact, else case-insensitive)."""
    if name in known:
        return name
    matches = [k for k in known if k.lower() == name.lower()]
    return matches[0] if len(matches) == 1 else None


def read_predictions(
    path: str | os.PathLike[str], known: Sequence[str], shape_zyx: Sequence[int]
) -> tuple[list[str], np.ndarray]:
    """Read a predicted particle list (SHREC text, or RELION STAR by ``.star`` suffix).

    Text lines are ``class x y z [phi theta psi]`` (4 or 7 fields; blank lines and
    ``#`` comments ignored). Class names must be known (matched exactly, else ignoring
    case); rounded coordinates must lie inside the volume.

    Parameters
    ----------
    path : str or PathLike
        The list.
    known : sequence of str
        The class names of the ground truth.
    shape_zyx : sequence of int
        The volume's shape ``(nz, ny, nx)``.

    Returns
    -------
    names : list of str
        The (canonical) class of each prediction, in file order.
    xyz : numpy.ndarray
        ``(n, 3)`` positions in voxels.

    Raises
    ------
    FaketInputError
        Naming the file and the line (or STAR row) of the first bad prediction.
    """
    file = Path(path)
    rows: list[tuple[str, str, list[float]]] = []
    if file.suffix.lower() == ".star":
        particles, _ = read_particles_star(file)
        for i, p in enumerate(particles, start=1):
            rows.append((f"row {i}", p.class_name, [p.x, p.y, p.z]))
    else:
        for number, line in enumerate(read_text_lines(file), start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            fields = text.split()
            if len(fields) not in (4, 7):
                raise FaketInputError(
                    f"line {number}: expected 'class x y z [phi theta psi]' (4 or 7 fields), "
                    f"got {len(fields)}: {snippet(text)}",
                    file,
                )
            values = [to_float(t) for t in fields[1:4]]
            if any(v is None or not np.isfinite(v) for v in values):
                raise FaketInputError(f"line {number}: x y z must be finite numbers", file)
            rows.append((f"line {number}", fields[0], [float(v) for v in values if v is not None]))
    upper = np.array(list(shape_zyx)[::-1])
    names = []
    for where, name, xyz in rows:
        canonical = _canonical(name, known)
        if canonical is None:
            raise FaketInputError(
                f"{where}: unknown class {name!r} (known: {', '.join(known)})", file
            )
        voxel = np.rint(xyz)
        if np.any(voxel < 0) or np.any(voxel >= upper):
            raise FaketInputError(
                f"{where}: x y z {xyz} lies outside the volume (x y z sizes {upper.tolist()})",
                file,
            )
        names.append(canonical)
    xyz_all = np.array([r[2] for r in rows], dtype=np.float64).reshape(-1, 3)
    return names, xyz_all


def write_confusion_csv(
    labels: Sequence[str], confusion: np.ndarray, path: str | os.PathLike[str]
) -> None:
    """Write a confusion matrix as CSV: header ``true/predicted,<labels>``, a row per class."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["true/predicted", *labels])
    for name, row in zip(labels, np.asarray(confusion).tolist(), strict=True):
        writer.writerow([name, *row])
    with atomic_write(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")


def read_run_scores(path: str | os.PathLike[str]) -> RunScores:
    """Read a ``score.json`` with its modality and seed.

    The modality and seed are those recorded in the file (``faket evaluate score
    --modality/--seed``); where absent they come from the parent folder's name
    ``<modality>_seed<k>``; failing that, the modality is the parent folder's name and
    the seed is unknown (None).
    """
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        data["localisation"]["f1"]
        data["classification"]["per_class"]
    except FileNotFoundError as err:
        raise FaketInputError("no such file", file) from err
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise FaketInputError(f"not a faket score.json ({err})", file) from err
    folder = file.resolve().parent.name
    match = _RUN_FOLDER.match(folder)
    modality = data.get("modality") or (match["modality"] if match else folder)
    seed = data.get("seed")
    if seed is None and match:
        seed = int(match["seed"])
    return RunScores(str(modality), None if seed is None else int(seed), data)
