"""SHREC ``particle_locations.txt`` particle lists.

One particle per line, whitespace-separated: ``class_name x y z phi theta psi``.
``x y z`` are voxel coordinates (integers or decimals), ``phi theta psi`` Euler angles
in degrees, ZXZ convention: rotation ``phi`` about Z, then ``theta`` about the new X,
then ``psi`` about the new Z (SHREC 2021 names the columns ``rotation_Z1 rotation_X
rotation_Z2``).

Missing angles: the SHREC simulator writes ``NaN NaN NaN`` for particles that have no
orientation (vesicles, fiducials). They are read as NaN angles (`Particle.has_angles`
is False); a particle's angles are all finite or all NaN. Consumers that need a
rotation treat a particle without angles as unoriented; positions are used as usual.
`write_particle_locations` refuses NaN unless asked to write missing angles
(``missing_angles=True``), and then writes them as ``NaN`` as the simulator does.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from faket.errors import FaketInputError
from faket.io._atomic import atomic_write
from faket.io._text import format_decimal, is_finite, read_text_lines, snippet, to_float

_COORDINATE_DECIMALS = 3
_ANGLE_DECIMALS = 4
_NUMBER_FIELDS = ("x", "y", "z", "phi", "theta", "psi")


@dataclass(frozen=True)
class Particle:
    """One particle of a particle list.

    Attributes
    ----------
    class_name : str
        The particle's class, one word (e.g. a PDB ID such as ``"1BXN"``, ``"vesicle"``).
    x, y, z : float
        Position of the particle's centre in voxels along the volume's X, Y and Z axes,
        i.e. array axes 2, 1 and 0 of a ``(z, y, x)`` volume.
    phi, theta, psi : float
        Orientation as ZXZ Euler angles in degrees: ``phi`` about Z, then ``theta``
        about X, then ``psi`` about Z. Default 0. All three NaN: no orientation (see
        `has_angles`).
    """

    class_name: str
    x: float
    y: float
    z: float
    phi: float = 0.0
    theta: float = 0.0
    psi: float = 0.0

    @property
    def has_angles(self) -> bool:
        """True unless the angles are missing (NaN, as SHREC writes for vesicles)."""
        return not any(math.isnan(float(a)) for a in (self.phi, self.theta, self.psi))


def read_particle_locations(path: str | os.PathLike[str]) -> list[Particle]:
    """Read a SHREC ``particle_locations.txt`` file.

    Each line is ``class_name x y z phi theta psi``, or ``class_name x y z`` (angles 0).
    Angles ``NaN NaN NaN`` (the SHREC simulator's missing orientation) are read as NaN.
    Blank lines and ``#`` comments (whole lines or line ends) are ignored. A file with no
    particles gives an empty list.

    Parameters
    ----------
    path : str or PathLike
        The particle list.

    Returns
    -------
    list of Particle
        In file order; coordinates in voxels, angles in degrees (ZXZ).

    Raises
    ------
    FaketInputError
        If the file is missing or not text, or a line does not have 4 or 7 fields, has a
        coordinate that is not a finite number, an infinite angle, or some but not all
        angles NaN (the message gives the line number).
    """
    file = Path(path)
    particles = []
    for number, line in enumerate(read_text_lines(file), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = text.split()
        if len(fields) not in (4, 7):
            raise FaketInputError(
                f"line {number}: expected 'name x y z [phi theta psi]' (4 or 7 fields), "
                f"got {len(fields)}: {snippet(text)}",
                file,
            )
        values = [
            _parse_value(label, token, number, file)
            for label, token in zip(_NUMBER_FIELDS, fields[1:], strict=False)
        ]
        _check_missing_angles(values[3:], number, file)
        particles.append(Particle(fields[0], *values))
    return particles


def _parse_value(label: str, token: str, number: int, file: Path) -> float:
    """Return one number of line ``number``; an angle may be NaN, nothing may be Inf."""
    value = to_float(token)
    if value is None:
        raise FaketInputError(f"line {number}: {label} {snippet(token)} is not a number", file)
    angle = label in ("phi", "theta", "psi")
    if not is_finite(value) and not (angle and math.isnan(value)):
        raise FaketInputError(f"line {number}: {label} is {token}", file)
    return value


def _check_missing_angles(angles: list[float], number: int, file: Path) -> None:
    """Refuse a line whose angles are partly NaN: all three are missing, or none."""
    missing = [math.isnan(a) for a in angles]
    if any(missing) and not all(missing):
        labels = " ".join(label for label, m in zip(_NUMBER_FIELDS[3:], missing, strict=False) if m)
        raise FaketInputError(f"line {number}: {labels} NaN but not all of phi theta psi", file)


def write_particle_locations(
    particles: Iterable[Particle],
    path: str | os.PathLike[str],
    *,
    missing_angles: bool = False,
) -> None:
    """Write a SHREC ``particle_locations.txt`` file, atomically.

    Each particle is one line ``class_name x y z phi theta psi``. Coordinates are written
    with at most 3 decimals and angles with at most 4, without trailing zeros, so
    integral positions read as integers (``148``) for tools that parse ints, and values
    with that many decimals read back exactly.

    Parameters
    ----------
    particles : iterable of Particle
        The particles, in the order to write. May be empty (an empty file).
    path : str or PathLike
        The file to write; its folder must exist.
    missing_angles : bool, optional
        Write particles whose three angles are NaN (no orientation) with ``NaN NaN NaN``,
        as the SHREC simulator does, instead of refusing them.

    Raises
    ------
    FaketInputError
        Naming ``path``, if a class name is empty or has whitespace or ``#``, or a value
        is NaN (an angle: unless ``missing_angles`` and all three are NaN) or infinite.
        Nothing is written then.
    """
    target = Path(path)
    lines = [
        _format_particle(index, particle, target, missing_angles)
        for index, particle in enumerate(particles)
    ]
    with atomic_write(target) as temp:
        temp.write_text("".join(lines), encoding="utf-8")


def _format_particle(index: int, particle: Particle, target: Path, missing_angles: bool) -> str:
    """Return one line of a particle list, or raise `FaketInputError`."""
    name = particle.class_name
    if not isinstance(name, str) or name.split() != [name] or "#" in name:
        raise FaketInputError(
            f"particle {index}: class name {name!r} must be one word without '#'", target
        )
    fields = [name]
    unoriented = missing_angles and all(
        math.isnan(float(a)) for a in (particle.phi, particle.theta, particle.psi)
    )
    for label in _NUMBER_FIELDS:
        value = float(getattr(particle, label))
        if unoriented and label in ("phi", "theta", "psi"):
            fields.append("NaN")
            continue
        if not is_finite(value):
            raise FaketInputError(f"particle {index} ({name}): {label} is {value}", target)
        decimals = _COORDINATE_DECIMALS if label in ("x", "y", "z") else _ANGLE_DECIMALS
        fields.append(format_decimal(value, decimals))
    return " ".join(fields) + "\n"
