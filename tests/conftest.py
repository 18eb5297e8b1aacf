"""Shared fixtures: small synthetic phantoms and the devices to test on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

# One CPU thread per test process: on shared, busy cores torch's default (one thread per
# core) oversubscribes them and small convolutions ran 5-50x slower. Tests that need a
# thread count set their own (run.threads).
torch.set_num_threads(1)

_DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=_DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """Every device this machine has: CPU always, CUDA when present."""
    return torch.device(request.param)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded numpy generator, so every test run sees the same data."""
    return np.random.default_rng(20261121)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """Run ``faket`` in-process: ``run_cli(*args) -> (exit code, stdout, stderr)``."""
    from faket.cli import main

    def run(*args: object) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def two_class_tomogram(
    shape_zyx: tuple[int, int, int] = (24, 64, 64),
    per_class: int = 6,
    seed: int = 0,
    noise: float = 0.1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], np.ndarray]:
    """A tomogram with two well-separated particle types on a jittered grid.

    Class 1 ("small"): bright balls of radius 2; class 2 ("large"): dark balls of
    radius 4. Centres are at least 12 voxels apart and 5 voxels from every border.

    Returns
    -------
    image : (nz, ny, nx) float32, class_mask and occupancy : (nz, ny, nx) int64,
    names : class of each particle, xyz : (n, 3) centres in voxels (x, y, z).
    """
    generator = np.random.default_rng(seed)
    nz, ny, nx = shape_zyx
    grid = [(y, x) for y in range(8, ny - 7, 12) for x in range(8, nx - 7, 12)]
    chosen = generator.permutation(len(grid))[: 2 * per_class]
    z, y, x = np.mgrid[:nz, :ny, :nx]
    image = generator.normal(0.0, noise, shape_zyx)
    class_mask = np.zeros(shape_zyx, np.int64)
    occupancy = np.zeros(shape_zyx, np.int64)
    names, centres = [], []
    for k, g in enumerate(chosen):
        label = 1 + k % 2
        radius = 2.0 if label == 1 else 4.0
        cy, cx = grid[g]
        cz = int(generator.integers(6, nz - 6))
        cy, cx = cy + int(generator.integers(-1, 2)), cx + int(generator.integers(-1, 2))
        inside = (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= radius**2
        image[inside] += 1.0 if label == 1 else -1.0
        class_mask[inside] = label
        occupancy[inside] = k + 1
        names.append("small" if label == 1 else "large")
        centres.append((cx, cy, cz))
    return image.astype(np.float32), class_mask, occupancy, names, np.array(centres, float)
