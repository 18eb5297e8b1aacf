"""Bodies: labelled pieces of matter drawn on a local grid, placed in a box by a corner.

A scene (`faket.phantom.scene`) is assembled from bodies made by the generators
(membranes, membrane proteins, filaments) and then filled with soluble particles by
`faket.phantom.specimen.build_specimen`. A body is drawn once on its own small grid;
``corner_zyx`` is the box index of its grid's voxel ``(0, 0, 0)`` (it may lie outside the
box: the part outside is cut, as a slab cuts a membrane).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Body:
    """One labelled instance of matter on a local grid.

    Attributes
    ----------
    class_name : str
        The instance's class (e.g. ``"membrane"``, ``"actin"``).
    potential : np.ndarray
        ``(dz, dy, dx)`` float32 potential in V on the local grid.
    label : np.ndarray
        ``(dz, dy, dx)`` bool: the voxels that belong to the instance.
    corner_zyx : tuple of int
        Box index of the local grid's voxel ``(0, 0, 0)``.
    centre_zyx : tuple of float
        The instance's reference point in box voxels ``(z, y, x)`` (listed as its position).
    angles_zxz_deg : tuple of float
        ZXZ Euler angles in degrees (the convention of `faket.phantom.specimen`); NaN for
        bodies without an orientation (a membrane, a filament as a whole).
    extra : dict
        Generator-specific records (surface points and normals, polylines, monomers).
    """

    class_name: str
    potential: np.ndarray
    label: np.ndarray
    corner_zyx: tuple[int, int, int]
    centre_zyx: tuple[float, float, float]
    angles_zxz_deg: tuple[float, float, float] = (float("nan"),) * 3
    extra: dict[str, object] = field(default_factory=dict)


def clip_window(
    corner_zyx: tuple[int, int, int], local_shape: tuple[int, ...], box_shape: tuple[int, ...]
) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """Return the box slices and local slices of a local grid's overlap with the box.

    Returns None when the grid lies wholly outside the box.
    """
    box, local = [], []
    for c, n, size in zip(corner_zyx, local_shape, box_shape, strict=True):
        start, stop = max(int(c), 0), min(int(c) + int(n), int(size))
        if stop <= start:
            return None
        box.append(slice(start, stop))
        local.append(slice(start - int(c), stop - int(c)))
    return tuple(box), tuple(local)


def overlaps(occupied: np.ndarray, body: Body) -> bool:
    """Return whether ``body``'s label meets a True voxel of the box mask ``occupied``."""
    window = clip_window(body.corner_zyx, body.label.shape, occupied.shape)
    if window is None:
        return False
    box, local = window
    return bool(np.any(occupied[box][body.label[local]]))


def mark(occupied: np.ndarray, body: Body) -> None:
    """Set ``occupied`` True where ``body`` is labelled (in place; the box part only)."""
    window = clip_window(body.corner_zyx, body.label.shape, occupied.shape)
    if window is not None:
        box, local = window
        occupied[box] |= body.label[local]


def paste(
    grandmodel: np.ndarray,
    class_mask: np.ndarray,
    occupancy: np.ndarray,
    body: Body,
    class_id: int,
    instance_id: int,
    *,
    replace: bool = False,
) -> None:
    """Draw ``body`` into a box's potential and masks (in place).

    The potential is added everywhere on the body's grid; with ``replace``, the box's
    potential inside the body's label is first set to 0 (a membrane protein displaces the
    lipid it sits in). Masks take ``class_id`` and ``instance_id`` inside the label.
    """
    window = clip_window(body.corner_zyx, body.label.shape, grandmodel.shape)
    if window is None:
        return
    box, local = window
    label = body.label[local]
    if replace:
        grandmodel[box][label] = 0.0
    grandmodel[box] += body.potential[local]
    class_mask[box][label] = class_id
    occupancy[box][label] = instance_id
