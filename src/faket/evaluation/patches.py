"""Training patches for the picker: where they are cut, how they are normalised and turned.

Patches are cubes of ``patch`` voxels cut from ``(nz, ny, nx)`` volumes. A training patch
is centred on a listed particle, at its real ``(z, y, x)`` = ``(round(z), round(y),
round(x))`` from the particle list's ``x y z`` (DeepFinder's published sampler swapped two
axes; the test suite pins this order), moved by a random shift of up to a quarter patch
along each axis and clamped so it lies inside the volume. A background patch is centred
on a random voxel whose class label is background (`background_centres`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "background_centres",
    "centres_zyx",
    "epoch_rng",
    "patch_start",
    "rotate_about_tilt_axis",
    "standardise_patches",
]


def centres_zyx(xyz: np.ndarray) -> np.ndarray:
    """Return particle centres as integer voxel indices ``(z, y, x)``.

    Parameters
    ----------
    xyz : numpy.ndarray
        ``(n, 3)`` centres in voxels, columns ``x, y, z`` as in ``particle_locations.txt``.

    Returns
    -------
    numpy.ndarray
        ``(n, 3)`` int64, columns ``z, y, x``, rounded to the nearest voxel.
    """
    array = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    return np.rint(array[:, ::-1]).astype(np.int64)


def patch_start(centre_zyx: Sequence[int], patch: int, shape_zyx: Sequence[int]) -> np.ndarray:
    """Return the first voxel of the patch centred at ``centre_zyx``, clamped into the volume.

    The patch covers ``start .. start + patch - 1`` along each axis, with the centre at
    ``start + patch // 2`` unless the clamp moved it.

    Raises
    ------
    ValueError
        If the volume is smaller than the patch along an axis.
    """
    shape = np.asarray(shape_zyx, dtype=np.int64)
    if np.any(shape < patch):
        raise ValueError(f"a volume of shape {tuple(shape.tolist())} is smaller than the patch")
    start = np.asarray(centre_zyx, dtype=np.int64) - patch // 2
    return np.clip(start, 0, shape - patch)


def background_centres(labels: torch.Tensor, n: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``n`` random voxels ``(z, y, x)`` that ``labels`` calls background (0).

    Drawn uniformly over the background by rejection: uniform voxels of the volume,
    those labelled 0 kept, until ``n`` are found.

    Raises
    ------
    ValueError
        If the volume has no background voxel.
    """
    shape = np.asarray(labels.shape, dtype=np.int64)
    flat = labels.reshape(-1)
    found: list[np.ndarray] = []
    count, tries = 0, 0
    while count < n:
        tries += 1
        if tries > 1000:
            raise ValueError("the class mask has (almost) no background voxel to sample")
        candidates = rng.integers(0, shape, size=(max(2 * (n - count), 16), 3))
        index = np.ravel_multi_index(tuple(candidates.T), tuple(shape))
        keep = candidates[(flat[torch.from_numpy(index).to(flat.device)] == 0).cpu().numpy()]
        found.append(keep[: n - count])
        count += len(found[-1])
    return np.concatenate(found).reshape(-1, 3) if found else np.zeros((0, 3), np.int64)


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """Return the generator of one epoch's sampling (order, shifts, rotations).

    Derived from ``(seed, epoch)`` alone, so a resumed training samples as an
    uninterrupted one would.
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), 0x9A7C4]))


def standardise_patches(patches: torch.Tensor) -> torch.Tensor:
    """Return each patch with zero mean and unit standard deviation.

    Parameters
    ----------
    patches : torch.Tensor
        ``(B, ...)`` floating point; statistics are per item over all other axes. A
        constant patch becomes zeros.
    """
    flat = patches.reshape(patches.shape[0], -1).float()
    mean = flat.mean(dim=1, keepdim=True)
    std = flat.std(dim=1, correction=0, keepdim=True)
    out = (flat - mean) / torch.where(std > 0, std, torch.ones_like(std))
    return out.reshape(patches.shape).to(patches.dtype)


def rotate_about_tilt_axis(volume: torch.Tensor) -> torch.Tensor:
    """Return ``volume`` turned by 180 degrees about the tilt axis (Y).

    A turn of 180 degrees about Y maps ``(z, y, x)`` to ``(-z, y, -x)``: the last three
    axes are ``(z, y, x)``, so Z and X are reversed.
    """
    return torch.flip(volume, dims=(-3, -1))
