"""Whole-tomogram segmentation with overlapping patches, against a brute-force average."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faket.evaluation.patches import standardise_patches
from faket.evaluation.segment import patch_grid, segment_tomogram
from faket.evaluation.training import make_picker


@pytest.mark.parametrize(("n", "patch", "step"), [(20, 8, 4), (21, 8, 4), (8, 8, 4), (30, 12, 5)])
def test_patch_grid_covers_every_voxel_and_ends_at_the_border(
    n: int, patch: int, step: int
) -> None:
    starts = patch_grid(n, patch, step)
    covered = np.zeros(n, bool)
    for s in starts:
        covered[s : s + patch] = True
    assert covered.all() and starts[0] == 0 and starts[-1] == n - patch
    assert all(0 < b - a <= step for a, b in zip(starts, starts[1:], strict=False))


def test_patch_grid_rejects_an_axis_shorter_than_the_patch() -> None:
    with pytest.raises(ValueError, match="shorter than the patch"):
        patch_grid(6, 8, 4)
    with pytest.raises(ValueError, match="step"):
        patch_grid(16, 8, 9)


def _brute_force_labels(net, volume: torch.Tensor, patch: int, step: int) -> np.ndarray:
    """Average every patch's probabilities into one full-size array, then arg-max."""
    nz, ny, nx = volume.shape
    total = np.zeros((net.n_classes, nz, ny, nx))
    count = np.zeros((nz, ny, nx))
    with torch.no_grad():
        for z in patch_grid(nz, patch, step):
            for y in patch_grid(ny, patch, step):
                for x in patch_grid(nx, patch, step):
                    cube = volume[z : z + patch, y : y + patch, x : x + patch]
                    p = net(standardise_patches(cube[None]).unsqueeze(1))[0].double().numpy()
                    total[:, z : z + patch, y : y + patch, x : x + patch] += p
                    count[z : z + patch, y : y + patch, x : x + patch] += 1
    return np.argmax(total / count, axis=0)


@pytest.mark.parametrize(("shape", "step", "batch"), [((20, 28, 24), 4, 3), ((12, 16, 20), 6, 8)])
def test_segmentation_equals_the_brute_force_average_of_all_patches(
    shape: tuple[int, int, int], step: int, batch: int
) -> None:
    torch.manual_seed(0)
    net = make_picker(4, 0.25, seed=3)
    volume = torch.randn(shape)
    labels = segment_tomogram(net, volume, patch=12, step=step, batch_size=batch)
    expected = _brute_force_labels(net, volume, 12, step)
    assert labels.shape == shape and labels.dtype == torch.int64
    # Float32 sums in another order: arg-max ties may flip on a handful of voxels.
    assert np.mean(labels.numpy() == expected) > 0.999
    assert len(np.unique(expected)) > 1  # a net that labels everything alike proves nothing


def test_segmentation_keeps_the_device_and_checks_its_input(device: torch.device) -> None:
    net = make_picker(3, 0.25, seed=0).to(device)
    labels = segment_tomogram(net, torch.randn(8, 12, 16, device=device), patch=8, batch_size=2)
    assert labels.device.type == device.type and labels.shape == (8, 12, 16)
    with pytest.raises(ValueError, match="tomogram"):
        segment_tomogram(net, torch.randn(1, 8, 8, 8, device=device), patch=8)
