"""RELION 5 STAR particle lists and ``classes.json`` class tables.

Layout (written via ``starfile``), as RELION 5's tomography programs read it:

- ``data_optics``: one optics group, ``rlnOpticsGroup`` 1, ``rlnOpticsGroupName``
  (the tomogram's name), ``rlnTomoTiltSeriesPixelSize`` and ``rlnImagePixelSize``
  (both the voxel size in A: faket's coordinates are on the specimen's grid).
- ``data_particles``: one row per particle, ``rlnTomoName``, ``rlnTomoParticleName``
  (``<tomo>/<1-based index>``), ``rlnOpticsGroup``, ``rlnCoordinateX/Y/Z`` (voxels, as
  in RELION 4), ``rlnCenteredCoordinateX/Y/ZAngst`` (A from the tomogram centre, when
  the tomogram's shape is given), ``rlnAngleRot/Tilt/Psi`` (degrees),
  ``rlnClassNumber`` (1-based) and ``rlnClassName`` (not a RELION label; RELION
  ignores it).

Centre: RELION 5 puts the tomogram centre at ``(size / 2)`` voxels along each axis
(``TomogramSet::loadTomogram``: ``centre = (w0 / 2.0, h0 / 2.0, d0 / 2.0)``) and
``rlnCenteredCoordinateXAngst = (rlnCoordinateX - nx / 2) * rlnTomoTiltSeriesPixelSize``
(``ParticleSet::getParticleCoordDecenteredPixel``), likewise for Y and Z.

Angles: faket's particle angles are intrinsic ZXZ (see :mod:`faket.io.particles`);
``R = Rotation.from_euler("ZXZ", (phi, theta, psi), degrees=True)`` maps the reference
onto the placed particle, acting on ``(x, y, z)``. RELION's angles describe the
inverse: its matrix ``Rotation.from_euler("ZYZ", (rot, tilt, psi), degrees=True)``
(``Euler_angles2matrix`` transposed) is ``R.inv()``. So the STAR angles are
``(rot, tilt, psi) = R.inv().as_euler("ZYZ", degrees=True)`` (checked against the
``eulerangles`` package's RELION convention: ZYZ, intrinsic, right-handed, passive).
Euler angles are not unique (tilt 0 or 180), so a round trip keeps the rotation, not
always the three numbers. A particle without angles (NaN, see
:mod:`faket.io.particles`) is written with angles 0: RELION has no missing value.

Old faket files (before RELION 5 layout) had no ``data_optics`` block, an
``rlnClassName`` column and angles of ``R`` itself (``R.as_euler("ZYZ")``);
`read_particles_star` tells them apart by that (no optics block, ``rlnClassName``)
and reads their angles accordingly. Any other file is read with RELION's convention.
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

_AXES = ("X", "Y", "Z")
_ANGLES = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")


def zxz_to_relion(phi: float, theta: float, psi: float) -> tuple[float, float, float]:
    """Return RELION's ``(rot, tilt, psi)`` (degrees) of a particle with faket ZXZ angles.

    The ZYZ Euler angles of ``R.inv()``, with ``R`` the ZXZ rotation that places the
    particle (see the module docstring).
    """
    from scipy.spatial.transform import Rotation

    rotation = Rotation.from_euler("ZXZ", (phi, theta, psi), degrees=True).inv()
    return _euler(rotation, "ZYZ")


def relion_to_zxz(rot: float, tilt: float, psi: float) -> tuple[float, float, float]:
    """Return faket's ZXZ angles (degrees) of a particle with RELION angles (inverse of above)."""
    from scipy.spatial.transform import Rotation

    rotation = Rotation.from_euler("ZYZ", (rot, tilt, psi), degrees=True).inv()
    return _euler(rotation, "ZXZ")


def zxz_to_zyz(phi: float, theta: float, psi: float) -> tuple[float, float, float]:
    """Convert intrinsic ZXZ angles (degrees) to intrinsic ZYZ of the same rotation."""
    from scipy.spatial.transform import Rotation

    return _euler(Rotation.from_euler("ZXZ", (phi, theta, psi), degrees=True), "ZYZ")


def zyz_to_zxz(rot: float, tilt: float, psi: float) -> tuple[float, float, float]:
    """Convert intrinsic ZYZ angles (degrees) to intrinsic ZXZ of the same rotation."""
    from scipy.spatial.transform import Rotation

    return _euler(Rotation.from_euler("ZYZ", (rot, tilt, psi), degrees=True), "ZXZ")


def _euler(rotation: Any, axes: str) -> tuple[float, float, float]:
    """Return a rotation's intrinsic Euler angles in degrees (gimbal lock: last angle 0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # gimbal lock: scipy sets one angle
        angles = rotation.as_euler(axes, degrees=True)
    return float(angles[0]), float(angles[1]), float(angles[2])


def write_particles_star(
    particles: Sequence[Particle],
    class_ids: dict[str, int],
    path: str | os.PathLike[str],
    *,
    pixel_size_a: float,
    tomo_name: str = "tomogram",
    tomo_shape_zyx: Sequence[int] | None = None,
) -> None:
    """Write particles as a RELION 5 STAR file (optics and particles blocks), atomically.

    Parameters
    ----------
    particles : sequence of Particle
        Centres in voxels, ZXZ angles in degrees.
    class_ids : dict of str to int
        Class number of each class name.
    path : str or PathLike
        The STAR file; its folder must exist.
    pixel_size_a : float
        Voxel size in A (``rlnTomoTiltSeriesPixelSize`` and ``rlnImagePixelSize``).
    tomo_name : str, optional
        ``rlnTomoName`` of every particle (one word), e.g. the tomogram folder's name.
    tomo_shape_zyx : sequence of int, optional
        The tomogram's ``(nz, ny, nx)`` in voxels; with it the rows also get
        ``rlnCenteredCoordinateX/Y/ZAngst``.

    Raises
    ------
    FaketInputError
        Naming ``path``, if a particle's class has no id or ``tomo_name`` is not one word.
    """
    import pandas as pd
    import starfile

    target = Path(path)
    if tomo_name.split() != [tomo_name]:
        raise FaketInputError(f"tomogram name {tomo_name!r} must be one word", target)
    frame = pd.DataFrame(
        [_star_row(i, p, class_ids, tomo_name, target) for i, p in enumerate(particles)],
        columns=[
            "rlnTomoName",
            "rlnTomoParticleName",
            "rlnOpticsGroup",
            *(f"rlnCoordinate{a}" for a in _AXES),
            *_ANGLES,
            "rlnClassNumber",
            "rlnClassName",
        ],
    )
    if tomo_shape_zyx is not None:
        centre_xyz = np.asarray(tuple(tomo_shape_zyx)[::-1], dtype=float) / 2.0
        for k, axis in enumerate(_AXES):
            offset = frame[f"rlnCoordinate{axis}"].astype(float) - centre_xyz[k]
            frame[f"rlnCenteredCoordinate{axis}Angst"] = offset * float(pixel_size_a)
    for column in ("rlnOpticsGroup", "rlnClassNumber"):
        frame[column] = frame[column].astype(int)
    optics = pd.DataFrame(
        {
            "rlnOpticsGroup": [1],
            "rlnOpticsGroupName": [tomo_name],
            "rlnTomoTiltSeriesPixelSize": [float(pixel_size_a)],
            "rlnImagePixelSize": [float(pixel_size_a)],
        }
    )
    with atomic_write(target) as temp:
        starfile.write({"optics": optics, "particles": frame}, temp, float_format="%.6f")
        # starfile's first line holds the time of day; drop it so equal lists give
        # equal bytes.
        lines = temp.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if not line.startswith("# Created by the starfile")]
        temp.write_text("".join(kept), encoding="utf-8")


def _star_row(
    index: int, p: Particle, class_ids: dict[str, int], tomo_name: str, target: Path
) -> tuple[Any, ...]:
    """Return one particles-block row (see `write_particles_star`)."""
    if p.class_name not in class_ids:
        raise FaketInputError(f"class {p.class_name!r} has no class number", target)
    angles = zxz_to_relion(p.phi, p.theta, p.psi) if p.has_angles else (0.0, 0.0, 0.0)
    written = [round(a, 6) + 0.0 for a in angles]  # as written: %.6f, and no -0
    return (
        tomo_name,
        f"{tomo_name}/{index + 1}",
        1,
        p.x,
        p.y,
        p.z,
        *written,
        class_ids[p.class_name],
        p.class_name,
    )


def read_particles_star(
    path: str | os.PathLike[str], *, tomo_shape_zyx: Sequence[int] | None = None
) -> tuple[list[Particle], float | None]:
    """Read a STAR particle list written by `write_particles_star`, an older faket, or RELION.

    Parameters
    ----------
    path : str or PathLike
        The STAR file.
    tomo_shape_zyx : sequence of int, optional
        The tomogram's ``(nz, ny, nx)`` in voxels; needed only for a file with
        ``rlnCenteredCoordinateX/Y/ZAngst`` and no ``rlnCoordinateX/Y/Z``.

    Returns
    -------
    particles : list of Particle
        ZXZ angles in degrees; class names from ``rlnClassName``, else the class number.
    pixel_size_a : float or None
        ``rlnTomoTiltSeriesPixelSize`` (else ``rlnImagePixelSize``) of the optics block,
        else ``rlnImagePixelSize`` of the first particle, if present.

    Raises
    ------
    FaketInputError
        If the file is missing, unreadable or lacks coordinates.
    """
    file = Path(path)
    blocks = _read_blocks(file)
    frame = next((f for f in blocks.values() if "rlnCoordinateX" in f.columns), None)
    if frame is None:
        frame = next(
            (f for f in blocks.values() if "rlnCenteredCoordinateXAngst" in f.columns), None
        )
    if frame is None:
        raise FaketInputError(
            "no block with rlnCoordinateX/Y/Z or rlnCenteredCoordinateX/Y/ZAngst", file
        )
    optics = blocks.get("optics")
    pixel = _pixel_size(optics, frame)
    old_faket = optics is None and "rlnClassName" in frame.columns
    xyz = _coordinates(frame, pixel, tomo_shape_zyx, file)
    particles = []
    for (_, row), position in zip(frame.iterrows(), xyz, strict=True):
        angles = [float(row.get(k, 0.0)) for k in _ANGLES]
        name = row.get("rlnClassName", row.get("rlnClassNumber", "particle"))
        zxz = zyz_to_zxz(*angles) if old_faket else relion_to_zxz(*angles)
        x, y, z = (float(v) for v in position)
        particles.append(Particle(str(name), x, y, z, *zxz))
    return particles, pixel


def _read_blocks(file: Path) -> dict[str, Any]:
    """Return the STAR file's loop blocks (pandas frames) by name."""
    import starfile

    if not file.is_file():
        raise FaketInputError("no such file", file)
    try:
        data: Any = starfile.read(file, always_dict=True)
    except Exception as err:  # starfile raises many kinds on bad text
        raise FaketInputError(f"not a readable STAR file ({err})", file) from err
    return {str(k): f for k, f in data.items() if hasattr(f, "columns")}


def _pixel_size(optics: Any, frame: Any) -> float | None:
    """Return the pixel size in A from the optics block, else the particles block."""
    for block in (optics, frame):
        if block is None or not len(block):
            continue
        for column in ("rlnTomoTiltSeriesPixelSize", "rlnImagePixelSize"):
            if column in block.columns:
                return float(block[column].iloc[0])
    return None


def _coordinates(
    frame: Any, pixel: float | None, shape_zyx: Sequence[int] | None, file: Path
) -> np.ndarray:
    """Return ``(n, 3)`` particle centres ``(x, y, z)`` in voxels."""
    if "rlnCoordinateX" in frame.columns:
        return frame[[f"rlnCoordinate{a}" for a in _AXES]].to_numpy(dtype=float)
    if shape_zyx is None or pixel is None:
        raise FaketInputError(
            "has only rlnCenteredCoordinate*Angst: the tomogram shape and a pixel size "
            "(rlnTomoTiltSeriesPixelSize) are needed to place the particles",
            file,
        )
    centred = frame[[f"rlnCenteredCoordinate{a}Angst" for a in _AXES]].to_numpy(dtype=float)
    return centred / pixel + np.asarray(tuple(shape_zyx)[::-1], dtype=float) / 2.0


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
