"""Analytic phantoms: balls and shells with known projections, for tests and the demo.

Voxel ``(z, y, x)`` has its centre at integer coordinates. Shapes are antialiased by
supersampling: each voxel holds the fraction of its ``supersample**3`` sub-samples that
fall inside the shape, so their projections approach the analytic chord lengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


def _fine_grid(
    shape: tuple[int, int, int], supersample: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    offsets = (torch.arange(supersample, dtype=dtype) + 0.5) / supersample - 0.5
    axes = [(torch.arange(n, dtype=dtype)[:, None] + offsets).reshape(-1) for n in shape]
    zz = axes[0][:, None, None]
    yy = axes[1][None, :, None]
    xx = axes[2][None, None, :]
    return zz, yy, xx


def _coarsen(fine: torch.Tensor, shape: tuple[int, int, int], supersample: int) -> torch.Tensor:
    nz, ny, nx = shape
    s = supersample
    return fine.reshape(nz, s, ny, s, nx, s).mean(dim=(1, 3, 5))


def ball(
    shape: tuple[int, int, int],
    centre_zyx: Sequence[float],
    radius: float,
    *,
    supersample: int = 4,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Return a ball of density 1 with partial-volume edges.

    Parameters
    ----------
    shape : tuple of int
        ``(nz, ny, nx)`` of the volume, in voxels.
    centre_zyx : sequence of float
        Centre of the ball, ``(z, y, x)`` in voxels.
    radius : float
        Radius in voxels.
    supersample : int
        Sub-samples per voxel and axis for the partial-volume edge.
    dtype : torch.dtype
        Floating dtype of the result.

    Returns
    -------
    torch.Tensor
        ``(nz, ny, nx)`` on the CPU, values in [0, 1]. Its projection along any direction
        through the centre approaches the chord length ``2 sqrt(radius^2 - d^2)`` at
        distance ``d`` from the centre.
    """
    zz, yy, xx = _fine_grid(shape, supersample, dtype)
    cz, cy, cx = (float(c) for c in centre_zyx)
    inside = ((zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2) <= radius**2
    return _coarsen(inside.to(dtype), shape, supersample)


@dataclass(frozen=True)
class Sphere:
    """One spherical object of a demo phantom.

    Attributes
    ----------
    centre_zyx : tuple of float
        Centre in voxels, ``(z, y, x)``.
    radius : float
        Outer radius in voxels.
    density : float
        Density inside (arbitrary units, e.g. relative potential).
    shell : float
        Thickness of a hollow shell in voxels; 0 makes a filled ball.
    label : int
        Class id of the object (1-based; 0 is background).
    """

    centre_zyx: tuple[float, float, float]
    radius: float
    density: float = 1.0
    shell: float = 0.0
    label: int = 1


def spheres_volume(
    shape: tuple[int, int, int],
    spheres: Sequence[Sphere],
    *,
    supersample: int = 2,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Return the sum of balls and hollow shells, with partial-volume edges.

    Parameters
    ----------
    shape : tuple of int
        ``(nz, ny, nx)`` of the volume, in voxels.
    spheres : sequence of Sphere
        The objects; overlapping densities add.
    supersample : int
        Sub-samples per voxel and axis.
    dtype : torch.dtype
        Floating dtype of the result.

    Returns
    -------
    torch.Tensor
        ``(nz, ny, nx)`` on the CPU.
    """
    volume = torch.zeros(shape, dtype=dtype)
    for sphere in spheres:
        # Work in the sphere's bounding box only, so many small objects stay cheap.
        lo = [max(0, int(c - sphere.radius) - 1) for c in sphere.centre_zyx]
        hi = [
            min(n, int(c + sphere.radius) + 2)
            for c, n in zip(sphere.centre_zyx, shape, strict=True)
        ]
        if any(h <= low for low, h in zip(lo, hi, strict=True)):
            continue
        box = (hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2])
        centre = [c - low for c, low in zip(sphere.centre_zyx, lo, strict=True)]
        filled = ball(box, centre, sphere.radius, supersample=supersample, dtype=dtype)
        if sphere.shell > 0:
            inner = max(sphere.radius - sphere.shell, 0.0)
            filled = filled - ball(box, centre, inner, supersample=supersample, dtype=dtype)
        volume[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] += sphere.density * filled
    return volume


def demo_specimen(
    shape: tuple[int, int, int] = (64, 128, 128), *, seed: int = 0
) -> tuple[torch.Tensor, list[Sphere]]:
    """Return a small built-in specimen: balls of three sizes and a few vesicle shells.

    The objects sit in a central slab of half the box's depth, without overlaps, at
    seeded random positions; it needs no files and takes well under a second.

    Parameters
    ----------
    shape : tuple of int
        ``(nz, ny, nx)`` of the box, in voxels.
    seed : int
        Seed of the placement.

    Returns
    -------
    volume : torch.Tensor
        ``(nz, ny, nx)`` float32 density.
    spheres : list of Sphere
        The objects placed, with their class labels (1 small, 2 medium, 3 large ball,
        4 vesicle shell).
    """
    nz, ny, nx = shape
    generator = torch.Generator().manual_seed(seed)
    kinds = [  # (radius fraction of nx, density, shell, label, count)
        (0.10, 0.6, 0.02, 4, 2),
        (0.06, 1.0, 0.0, 3, 4),
        (0.04, 1.0, 0.0, 2, 8),
        (0.025, 1.0, 0.0, 1, 12),
    ]
    placed: list[Sphere] = []
    slab = (nz * 0.25, nz * 0.75)
    for fraction, density, shell_fraction, label, count in kinds:
        radius = max(1.5, fraction * nx)
        shell = max(1.0, shell_fraction * nx) if shell_fraction > 0 else 0.0
        for _ in range(count):
            for _attempt in range(200):
                u = torch.rand(3, generator=generator, dtype=torch.float64).tolist()
                z = slab[0] + radius + u[0] * max(slab[1] - slab[0] - 2 * radius, 0.0)
                y = radius + u[1] * (ny - 2 * radius)
                x = radius + u[2] * (nx - 2 * radius)
                if all(
                    (z - s.centre_zyx[0]) ** 2
                    + (y - s.centre_zyx[1]) ** 2
                    + (x - s.centre_zyx[2]) ** 2
                    > (radius + s.radius + 1) ** 2
                    for s in placed
                ):
                    placed.append(Sphere((z, y, x), radius, density, shell, label))
                    break
    return spheres_volume(shape, placed), placed
