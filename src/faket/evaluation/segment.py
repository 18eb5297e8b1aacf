"""Segmenting a whole tomogram with the picker: overlapping patches, averaged probabilities.

Patches of ``patch`` voxels are cut on a grid with step ``step`` along each axis (the
last patch of an axis is moved back to end at the border, so every voxel is covered);
each patch is standardised as in training, and the class probabilities of overlapping
patches are averaged voxel by voxel. The label is the arg-max of the average (taken on
the sum, as every class of a voxel has the same number of patches).

Memory stays bounded: patches run in batches, and the running sums cover only the Z
planes that the current row of patches touches (``C x (patch + step) x ny x nx``
float32), whose labels are written as soon as no later patch reaches them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from faket._precision import autocast_context
from faket.evaluation.patches import standardise_patches
from faket.evaluation.unet import DeepFinderNet

__all__ = ["patch_grid", "segment_tomogram"]


def patch_grid(n: int, patch: int, step: int) -> list[int]:
    """Return the patch starts along an axis of ``n`` voxels: ``0, step, ...`` and ``n - patch``.

    Raises
    ------
    ValueError
        If the axis is shorter than the patch or the step is not in ``1 .. patch``.
    """
    if n < patch:
        raise ValueError(f"an axis of {n} voxels is shorter than the patch ({patch})")
    if not 1 <= step <= patch:
        raise ValueError(f"the step must be between 1 and the patch side, got {step}")
    starts = list(range(0, n - patch + 1, step))
    if starts[-1] != n - patch:
        starts.append(n - patch)
    return starts


@torch.no_grad()
def segment_tomogram(
    net: DeepFinderNet,
    tomogram: torch.Tensor,
    *,
    patch: int,
    step: int | None = None,
    batch_size: int = 4,
    precision: str = "fp32",
    on_patches: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Return the label map of a tomogram: arg-max of the averaged patch probabilities.

    Parameters
    ----------
    net : DeepFinderNet
        The trained picker, on the tomogram's device.
    tomogram : torch.Tensor
        ``(nz, ny, nx)`` float32; every side at least ``patch``.
    patch : int
        Patch side in voxels (a multiple of 4; the training patch is a good choice).
    step : int, optional
        Distance between patch starts; default ``patch // 2`` (each voxel is seen by up
        to eight patches).
    batch_size : int
        Patches per forward pass.
    precision : str
        ``fp32``, ``bf16`` or ``fp16`` autocast of the convolutions.
    on_patches : callable, optional
        Called with the number of patches after each batch (progress).

    Returns
    -------
    torch.Tensor
        ``(nz, ny, nx)`` int64 labels on the tomogram's device.
    """
    if tomogram.ndim != 3:
        raise ValueError(f"expected a (nz, ny, nx) tomogram, got shape {tuple(tomogram.shape)}")
    step = patch // 2 if step is None else step
    nz, ny, nx = tomogram.shape
    zs, ys, xs = (patch_grid(n, patch, step) for n in (nz, ny, nx))
    autocast = autocast_context(tomogram.device, precision)
    net.eval()
    labels = torch.empty((nz, ny, nx), dtype=torch.int64, device=tomogram.device)
    low = 0  # first Z plane of the running sums
    sums = torch.zeros((net.n_classes, 0, ny, nx), device=tomogram.device)
    for row, z in enumerate(zs):
        grow = z + patch - low - sums.shape[1]
        if grow > 0:
            sums = torch.cat([sums, sums.new_zeros((net.n_classes, grow, ny, nx))], dim=1)
        corners = [(y, x) for y in ys for x in xs]
        for first in range(0, len(corners), batch_size):
            part = corners[first : first + batch_size]
            cubes = torch.stack(
                [tomogram[z : z + patch, y : y + patch, x : x + patch] for y, x in part]
            )
            images = standardise_patches(cubes.float()).unsqueeze(1)
            with autocast():
                logits = net.logits(images.contiguous(memory_format=torch.channels_last_3d))
            probabilities = torch.softmax(logits.float(), dim=1)
            for (y, x), p in zip(part, probabilities, strict=True):
                sums[:, z - low : z - low + patch, y : y + patch, x : x + patch] += p
            if on_patches is not None:
                on_patches(len(part))
        done = zs[row + 1] if row + 1 < len(zs) else nz
        if done > low:
            labels[low:done] = torch.argmax(sums[:, : done - low], dim=0)
            sums = sums[:, done - low :]
            low = done
    return labels
