"""SHREC ``particle_locations.txt`` particle lists.

One particle per line, whitespace-separated: ``class_name x y z phi theta psi``.
``x y z`` are voxel coordinates (integers or decimals), ``phi theta psi`` Euler angles
in degrees, ZXZ convention: rotation ``phi`` about Z, then ``theta`` about the new X,
then ``psi`` about the new Z (SHREC 2021 names the columns ``rotation_Z1 rotation_X
rotation_Z2``).
"""

from __future__ import annotations

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
        about X, then ``psi`` about Z. Default 0.
    """

    class_name: str
    x: float
    y: float
    z: float
    phi: float = 0.0
    theta: float = 0.0
    psi: float = 0.0


def read_particle_locations(path: str | os.PathLike[str]) -> list[Particle]:
    """Read a SHREC ``particle_locations.txt`` file.

    Each line is ``class_name x y z phi theta psi``, or ``class_name x y z`` (angles 0).
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
        If the file is missing or not text, or a line does not have 4 or 7 fields or has
        a value that is not a finite number (the message gives the line number).
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
        values = []
        for label, token in zip(_NUMBER_FIELDS, fields[1:], strict=False):
            value = to_float(token)
            if value is None:
                raise FaketInputError(
                    f"line {number}: {label} {snippet(token)} is not a number", file
                )
            if not is_finite(value):
                raise FaketInputError(f"line {number}: {label} is {token}", file)
            values.append(value)
        particles.append(Particle(fields[0], *values))
    return particles


def write_particle_locations(particles: Iterable[Particle], path: str | os.PathLike[str]) -> None:
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

    Raises
    ------
    FaketInputError
        Naming ``path``, if a class name is empty or has whitespace or ``#``, or a value
        is NaN or infinite. Nothing is written then.
    """
    target = Path(path)
    lines = [_format_particle(index, particle, target) for index, particle in enumerate(particles)]
    with atomic_write(target) as temp:
        temp.write_text("".join(lines), encoding="utf-8")


def _format_particle(index: int, particle: Particle, target: Path) -> str:
    """Return one line of a particle list, or raise `FaketInputError`."""
    name = particle.class_name
    if not isinstance(name, str) or name.split() != [name] or "#" in name:
        raise FaketInputError(
            f"particle {index}: class name {name!r} must be one word without '#'", target
        )
    fields = [name]
    for label in _NUMBER_FIELDS:
        value = float(getattr(particle, label))
        if not is_finite(value):
            raise FaketInputError(f"particle {index} ({name}): {label} is {value}", target)
        decimals = _COORDINATE_DECIMALS if label in ("x", "y", "z") else _ANGLE_DECIMALS
        fields.append(format_decimal(value, decimals))
    return " ".join(fields) + "\n"
