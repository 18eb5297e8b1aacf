"""Optional back-end: IMOD's ``tilt`` program, called through temporary files.

IMOD (https://bio3d.colorado.edu/imod/) must be installed with ``tilt`` on PATH. The
tilt-series and angles are written to a temporary folder, ``tilt`` runs R-weighted
back-projection with its own radial filter (``RADIAL cutoff falloff`` with
``FalloffIsTrueSigma 1``: flat ramp up to ``cutoff`` cycles per pixel, then a Gaussian
fall-off of that sigma), and its output (``PERPENDICULAR``: one X-Z section per Y, file
shape ``(ny, thickness, nx)``) is read back as ``(thickness, ny, nx)``.

As in the FakET reference, the tilt angles are passed to IMOD unchanged and IMOD's Z
axis is taken as this package's. IMOD is not installed where this code was written, so
the orientation has not been checked here against :mod:`faket.projection`: reconstruct a
projected phantom once to check it on your installation.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from faket.conventions import TiltAngles
from faket.io import read_mrc, write_mrc, write_tilt_angles
from faket.reconstruction.backproject import check_slab

IMOD_PROGRAM = "tilt"
"""The IMOD program this back-end runs."""

DEFAULT_IMOD_RADIAL = (0.35, 0.035)
"""IMOD's (eTomo's) default radial filter: cutoff and Gaussian sigma, cycles per pixel."""


def imod_available() -> bool:
    """Return True if IMOD's ``tilt`` program is on PATH."""
    return shutil.which(IMOD_PROGRAM) is not None


def imod_tilt_command(
    projections: Path,
    output: Path,
    angles_file: Path,
    thickness: int,
    radial: tuple[float, float] = DEFAULT_IMOD_RADIAL,
) -> list[str]:
    """Return the ``tilt`` command line (a list for `subprocess.run`, no shell)."""
    cutoff, falloff = radial
    return [
        IMOD_PROGRAM,
        "-InputProjections",
        str(projections),
        "-OutputFile",
        str(output),
        "-TILTFILE",
        str(angles_file),
        "-THICKNESS",
        str(int(thickness)),
        "-RADIAL",
        f"{cutoff:g},{falloff:g}",
        "-FalloffIsTrueSigma",
        "1",
        "-PERPENDICULAR",
        "-MODE",
        "2",
    ]


def reconstruct_with_imod(
    tilt_series: torch.Tensor,
    tilt_angles_deg: TiltAngles,
    *,
    thickness: int | None = None,
    z_offset: int = 0,
    z_flip: bool = False,
    radial: tuple[float, float] = DEFAULT_IMOD_RADIAL,
) -> torch.Tensor:
    """Reconstruct with IMOD's ``tilt`` (R-weighted back-projection) via temporary files.

    Parameters
    ----------
    tilt_series : torch.Tensor
        ``(n_tilts, ny, width)`` floating point, any device; tilt axis = Y. Unfiltered:
        IMOD applies its own radial filter.
    tilt_angles_deg : sequence of float or torch.Tensor
        ``(n_tilts,)`` degrees.
    thickness, z_offset, z_flip
        The output slab, as for :func:`faket.reconstruction.backproject_tilt_series`;
        IMOD reconstructs ``thickness + 2 |z_offset|`` slices and the slab is cut out.
    radial : tuple of float
        IMOD's ``RADIAL`` cutoff and fall-off sigma in cycles per pixel.

    Returns
    -------
    torch.Tensor
        ``(thickness, ny, width)`` float32, on the device of ``tilt_series``.

    Raises
    ------
    RuntimeError
        If IMOD is not installed, or ``tilt`` fails (its last output lines are quoted).
    """
    if not imod_available():
        raise RuntimeError(
            "IMOD is not installed: its 'tilt' program is not on PATH "
            "(install IMOD from https://bio3d.colorado.edu/imod/ or use the torch back-end)"
        )
    if tilt_series.ndim != 3:
        raise ValueError(
            f"tilt_series must be 3-D (n_tilts, ny, nx); got shape {tuple(tilt_series.shape)}"
        )
    angles = torch.as_tensor(tilt_angles_deg, dtype=torch.float64).reshape(-1)
    if angles.numel() != tilt_series.shape[0]:
        raise ValueError(
            f"{angles.numel()} tilt angles were given for {tilt_series.shape[0]} projections"
        )
    width = tilt_series.shape[2]
    thickness = check_slab(width, thickness, z_offset)
    margin = abs(int(z_offset))
    total = thickness + 2 * margin
    with tempfile.TemporaryDirectory(prefix="faket-imod-") as folder:
        tmp = Path(folder)
        write_mrc(tilt_series, tmp / "projections.mrc")
        write_tilt_angles(angles.numpy(), tmp / "angles.tlt")
        command = imod_tilt_command(
            tmp / "projections.mrc", tmp / "tomogram.mrc", tmp / "angles.tlt", total, radial
        )
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not (tmp / "tomogram.mrc").exists():
            tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
            raise RuntimeError(f"IMOD tilt failed (exit status {done.returncode}): {tail}")
        sections = read_mrc(tmp / "tomogram.mrc", ndim=3).data  # (ny, total, width)
    volume = torch.from_numpy(sections).permute(1, 0, 2)
    start = total // 2 + int(z_offset) - thickness // 2
    volume = volume[start : start + thickness]
    if z_flip:
        volume = volume.flip(0)
    return volume.contiguous().to(tilt_series.device)
