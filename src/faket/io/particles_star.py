"""RELION STAR particle lists and ``classes.json`` class tables.

STAR (via ``starfile``), one ``particles`` block with one row per particle:
``rlnCoordinateX/Y/Z`` (voxels), ``rlnAngleRot/Tilt/Psi`` (degrees),
``rlnClassNumber`` (1-based), ``rlnClassName`` (the class name; not a RELION label,
RELION ignores it) and ``rlnImagePixelSize`` (A).

Angles: faket's particle angles are intrinsic ZXZ (see :mod:`faket.io.particles`);
with ``R = Rotation.from_euler("ZXZ", (phi, theta, psi), degrees=True)`` the rotation
that maps the reference onto the particle, the STAR angles are RELION's intrinsic ZYZ
angles of the same rotation, ``(rot, tilt, psi) = R.as_euler("ZYZ", degrees=True)``,
so that ``Rotation.from_euler("ZYZ", (rot, tilt, psi), degrees=True)`` is ``R`` again.
Euler angles are not unique (``theta = 0`` or 180), so a round trip keeps the
rotation, not always the three numbers.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faket.errors import FaketInputError
from faket.io._atomic import atomic_write
from faket.io.json_files import write_json
from faket.io.particles import Particle

_STAR_COLUMNS = (
    "rlnCoordinateX",
    "rlnCoordinateY",
    "rlnCoordinateZ",
    "rlnAngleRot",
    "rlnAngleTilt",
    "rlnAnglePsi",
    "rlnClassNumber",
    "rlnClassName",
)


def zxz_to_zyz(phi: float, theta: float, psi: float) -> tuple[float, float, float]:
    """Convert intrinsic ZXZ angles (degrees) to RELION's intrinsic ZYZ of the same rotation."""
    from scipy.spatial.transform import Rotation

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # gimbal lock: psi set to 0
        angles = Rotation.from_euler("ZXZ", (phi, theta, psi), degrees=True).as_euler(
            "ZYZ", degrees=True
        )
    return float(angles[0]), float(angles[1]), float(angles[2])


def zyz_to_zxz(rot: float, tilt: float, psi: float) -> tuple[float, float, float]:
    """Convert RELION's intrinsic ZYZ angles (degrees) to intrinsic ZXZ of the same rotation."""
    from scipy.spatial.transform import Rotation

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        angles = Rotation.from_euler("ZYZ", (rot, tilt, psi), degrees=True).as_euler(
            "ZXZ", degrees=True
        )
    return float(angles[0]), float(angles[1]), float(angles[2])


def write_particles_star(
    particles: Sequence[Particle],
    class_ids: dict[str, int],
    path: str | os.PathLike[str],
    *,
    pixel_size_a: float,
) -> None:
    """Write particles as a RELION STAR file, atomically.

    Parameters
    ----------
    particles : sequence of Particle
        Centres in voxels, ZXZ angles in degrees.
    class_ids : dict of str to int
        Class number of each class name.
    path : str or PathLike
        The STAR file; its folder must exist.
    pixel_size_a : float
        Voxel size in A, written as ``rlnImagePixelSize``.

    Raises
    ------
    FaketInputError
        Naming ``path``, if a particle's class has no id.
    """
    import pandas as pd
    import starfile

    target = Path(path)
    rows = []
    for p in particles:
        if p.class_name not in class_ids:
            raise FaketInputError(f"class {p.class_name!r} has no class number", target)
        rot, tilt, psi = zxz_to_zyz(p.phi, p.theta, p.psi)
        rows.append((p.x, p.y, p.z, rot, tilt, psi, class_ids[p.class_name], p.class_name))
    frame = pd.DataFrame(rows, columns=list(_STAR_COLUMNS))
    frame["rlnClassNumber"] = frame["rlnClassNumber"].astype(int)
    frame["rlnImagePixelSize"] = float(pixel_size_a)
    with atomic_write(target) as temp:
        starfile.write({"particles": frame}, temp, float_format="%.6f")
        # starfile's first line holds the time of day; drop it so equal lists give
        # equal bytes.
        lines = temp.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if not line.startswith("# Created by the starfile")]
        temp.write_text("".join(kept), encoding="utf-8")


def read_particles_star(path: str | os.PathLike[str]) -> tuple[list[Particle], float | None]:
    """Read a STAR particle list written by `write_particles_star` (or RELION).

    Returns
    -------
    particles : list of Particle
        ZXZ angles in degrees; class names from ``rlnClassName``, else the class number.
    pixel_size_a : float or None
        ``rlnImagePixelSize`` of the first row, if present.

    Raises
    ------
    FaketInputError
        If the file is missing, unreadable or lacks coordinates.
    """
    import starfile

    file = Path(path)
    if not file.is_file():
        raise FaketInputError("no such file", file)
    try:
        data: Any = starfile.read(file, always_dict=True)
    except Exception as err:  # starfile raises many kinds on bad text
        raise FaketInputError(f"not a readable STAR file ({err})", file) from err
    frames = [f for f in data.values() if hasattr(f, "columns")]
    frame = next((f for f in frames if "rlnCoordinateX" in f.columns), None)
    if frame is None:
        raise FaketInputError("no block with rlnCoordinateX/Y/Z", file)
    particles = []
    for _, row in frame.iterrows():
        angles = [float(row.get(k, 0.0)) for k in ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")]
        name = row.get("rlnClassName", row.get("rlnClassNumber", "particle"))
        particles.append(
            Particle(
                str(name),
                float(row["rlnCoordinateX"]),
                float(row["rlnCoordinateY"]),
                float(row["rlnCoordinateZ"]),
                *zyz_to_zxz(*angles),
            )
        )
    pixel = None
    if "rlnImagePixelSize" in frame.columns and len(frame):
        pixel = float(frame["rlnImagePixelSize"].iloc[0])
    return particles, pixel


def write_classes_json(classes: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """Write the class table (``id``, ``name``, ``source``, ``diameter_a``) as JSON, atomically."""
    rows = [
        {
            "id": int(c["id"]),
            "name": str(c["name"]),
            "source": str(c.get("source", "")),
            "diameter_a": float(np.round(float(c.get("diameter_a", 0.0)), 3)),
        }
        for c in classes
    ]
    write_json({"classes": rows}, path)


def read_classes_json(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a class table written by `write_classes_json`.

    Raises
    ------
    FaketInputError
        If the file is missing, not JSON, or a class lacks ``id`` or ``name``.
    """
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        rows = data["classes"]
        return [
            {
                "id": int(r["id"]),
                "name": str(r["name"]),
                "source": str(r.get("source", "")),
                "diameter_a": float(r.get("diameter_a", 0.0)),
            }
            for r in rows
        ]
    except FileNotFoundError as err:
        raise FaketInputError("no such file", file) from err
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise FaketInputError(f"not a faket classes.json ({err})", file) from err
