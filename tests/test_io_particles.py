"""Tests for faket.io.particles: SHREC particle_locations.txt."""

from __future__ import annotations

import dataclasses
import math
import os

import pytest

from faket.errors import FaketInputError
from faket.io import Particle, read_particle_locations, write_particle_locations


def _check_error(error: pytest.ExceptionInfo[FaketInputError], path, *fragments: str):
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, message


def test_round_trip_is_exact_and_integers_stay_integers(tmp_path):
    particles = [
        Particle("1BXN", 148.0, 12.5, 3.0, 10.0, -20.25, 359.1234),
        Particle("vesicle", 0.125, 511.0, 99.999, 0.0, 0.0, 0.0),
        Particle("4V94", -2.0, 7.0, 8.0, -0.0, 90.0, 1e-9),
    ]
    path = tmp_path / "particle_locations.txt"
    write_particle_locations(particles, path)
    assert path.read_text().splitlines() == [
        "1BXN 148 12.5 3 10 -20.25 359.1234",
        "vesicle 0.125 511 99.999 0 0 0",
        "4V94 -2 7 8 0 90 0",
    ]
    result = read_particle_locations(path)
    assert result[:2] == particles[:2]
    assert result[2] == dataclasses.replace(particles[2], phi=0.0, psi=0.0)
    assert os.listdir(tmp_path) == ["particle_locations.txt"]


def test_coordinates_round_to_three_decimals(tmp_path):
    path = tmp_path / "p.txt"
    write_particle_locations([Particle("a", 1.23456, 2.0, 3.0, 1.234567, 0.0, 0.0)], path)
    assert path.read_text() == "a 1.235 2 3 1.2346 0 0\n"


def test_shrec_lines_with_comments_blank_lines_and_short_lines(tmp_path):
    path = tmp_path / "particle_locations.txt"
    path.write_text(
        "# class x y z phi theta psi\n"
        "\n"
        "1BXN\t148 12 3   10.5 20 30\n"
        "fiducial 1.5 2.5 3.5  # no angles\n"
        "   \n"
    )
    assert read_particle_locations(path) == [
        Particle("1BXN", 148.0, 12.0, 3.0, 10.5, 20.0, 30.0),
        Particle("fiducial", 1.5, 2.5, 3.5),
    ]


def test_empty_list_round_trips(tmp_path):
    path = tmp_path / "none.txt"
    write_particle_locations([], path)
    assert path.read_text() == ""
    assert read_particle_locations(path) == []


def test_particle_defaults_and_frozen():
    particle = Particle("a", 1.0, 2.0, 3.0)
    assert (particle.phi, particle.theta, particle.psi) == (0.0, 0.0, 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        particle.x = 5.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a 1 2 3\nb 1 2 3 4 5\n", "line 2: expected 'name x y z [phi theta psi]'"),
        ("a 1 2\n", "line 1: expected 'name x y z [phi theta psi]' (4 or 7 fields), got 3"),
        ("\n\na 1 two 3\n", "line 3: y 'two' is not a number"),
        ("a 1 2 3 4 5 psi\n", "line 1: psi 'psi' is not a number"),
        ("a 1 2 nan\n", "line 1: z is nan"),
        ("a 1 2 3 inf 0 0\n", "line 1: phi is inf"),
        ("a 1 2 3 NaN 0 0\n", "line 1: phi NaN but not all of phi theta psi"),
        ("a 1 2 3 0 nan NaN\n", "line 1: theta psi NaN but not all of phi theta psi"),
        ("vesicle NaN 2 3 NaN NaN NaN\n", "line 1: x is NaN"),
    ],
)
def test_bad_lines_are_refused_with_line_number(tmp_path, text, fragment):
    path = tmp_path / "particle_locations.txt"
    path.write_text(text)
    with pytest.raises(FaketInputError) as error:
        read_particle_locations(path)
    _check_error(error, path, fragment)


def test_missing_file_is_refused(tmp_path):
    path = tmp_path / "particle_locations.txt"
    with pytest.raises(FaketInputError) as error:
        read_particle_locations(path)
    _check_error(error, path, "file not found")


@pytest.mark.parametrize(
    ("particle", "fragment"),
    [
        (Particle("two words", 1, 2, 3), "particle 1: class name 'two words' must be one word"),
        (Particle("", 1, 2, 3), "particle 1: class name '' must be one word"),
        (Particle("a#b", 1, 2, 3), "without '#'"),
        (Particle("a", float("nan"), 2, 3), "particle 1 (a): x is nan"),
        (Particle("a", 1, 2, 3, psi=float("inf")), "particle 1 (a): psi is inf"),
    ],
)
def test_bad_particles_are_refused_and_nothing_written(tmp_path, particle, fragment):
    path = tmp_path / "out.txt"
    with pytest.raises(FaketInputError) as error:
        write_particle_locations([Particle("ok", 1, 2, 3), particle], path)
    _check_error(error, path, fragment)
    assert os.listdir(tmp_path) == []


# As the SHREC 2021 simulator writes them: vesicles and fiducials have no orientation.
SHREC_LINES = (
    "4V94 263 379 111 -98.6 141.2 -118.7\n"
    "vesicle 277 398 110 NaN NaN NaN\n"
    "fiducial 62 150 90 nan nan nan\n"
)


def test_shrec_lines_with_nan_angles_read_as_missing_angles(tmp_path):
    path = tmp_path / "particle_locations.txt"
    path.write_text(SHREC_LINES)
    protein, vesicle, fiducial = read_particle_locations(path)
    assert protein == Particle("4V94", 263.0, 379.0, 111.0, -98.6, 141.2, -118.7)
    assert protein.has_angles
    for particle, name, xyz in (
        (vesicle, "vesicle", (277, 398, 110)),
        (fiducial, "fiducial", (62, 150, 90)),
    ):
        assert particle.class_name == name and (particle.x, particle.y, particle.z) == xyz
        assert all(math.isnan(a) for a in (particle.phi, particle.theta, particle.psi))
        assert not particle.has_angles


def test_missing_angles_are_written_as_nan_only_when_asked(tmp_path):
    path = tmp_path / "particle_locations.txt"
    path.write_text(SHREC_LINES)
    particles = read_particle_locations(path)
    out = tmp_path / "out.txt"
    with pytest.raises(FaketInputError) as error:
        write_particle_locations(particles, out)
    _check_error(error, out, "particle 1 (vesicle): phi is nan")
    assert not out.exists()
    write_particle_locations(particles, out, missing_angles=True)
    assert out.read_text().splitlines() == [
        "4V94 263 379 111 -98.6 141.2 -118.7",
        "vesicle 277 398 110 NaN NaN NaN",
        "fiducial 62 150 90 NaN NaN NaN",
    ]
    # Partly missing angles are still refused: they are not "missing by design".
    with pytest.raises(FaketInputError) as error:
        write_particle_locations(
            [Particle("a", 1, 2, 3, float("nan"), 0, 0)], out, missing_angles=True
        )
    _check_error(error, out, "particle 0 (a): phi is nan")
