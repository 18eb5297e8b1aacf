"""From a segmentation to a particle list: mean-shift clustering or connected components.

Each class is clustered on its own: the voxels labelled with the class form a point
cloud (or a binary mask) that is split into clusters; a cluster smaller than the
class's minimum size is dropped; each kept cluster becomes one particle at its centre
(the mean-shift mode, or the centroid of a connected component).

Minimum cluster size rule (`min_cluster_voxels`): a fraction (default 0.1) of the
volume, in voxels, of the sphere whose diameter is the class's ``diameter_a`` (from
``classes.json``) over the voxel size, ``fraction * pi / 6 * (diameter_a /
voxel_size_a) ** 3``, rounded down and at least 1. A segmentation network that finds a
particle labels a good part of it, while speckle noise gives a few voxels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import ndimage

from faket.io import Particle

__all__ = ["extract_particles", "labels_from_scores", "min_cluster_voxels"]

METHODS = ("meanshift", "components")


def min_cluster_voxels(diameter_a: float, voxel_size_a: float, fraction: float = 0.1) -> int:
    """Return the smallest cluster (in voxels) kept for a class of the given size.

    Parameters
    ----------
    diameter_a : float
        The class's particle diameter in Angstrom (0 = unknown: the result is 1).
    voxel_size_a : float
        Voxel size of the segmentation in Angstrom.
    fraction : float
        Fraction of the sphere volume, in ``[0, 1]``.

    Returns
    -------
    int
        ``max(1, floor(fraction * pi / 6 * (diameter_a / voxel_size_a) ** 3))``.
    """
    if not voxel_size_a > 0:
        raise ValueError(f"the voxel size must be positive, got {voxel_size_a}")
    if not 0 <= fraction <= 1:
        raise ValueError(f"the fraction must be between 0 and 1, got {fraction}")
    if not diameter_a >= 0:
        raise ValueError(f"the diameter must be >= 0, got {diameter_a}")
    sphere = math.pi / 6 * (diameter_a / voxel_size_a) ** 3
    return max(1, math.floor(fraction * sphere + 1e-9))


def labels_from_scores(scores: np.ndarray) -> np.ndarray:
    """Return the label map of per-class score maps: the arg-max over classes.

    Parameters
    ----------
    scores : numpy.ndarray
        ``(n_labels, nz, ny, nx)`` scores; label 0 is background.

    Returns
    -------
    numpy.ndarray
        ``(nz, ny, nx)`` int64 labels.
    """
    array = np.asarray(scores)
    if array.ndim != 4:
        raise ValueError(f"scores must be (n_labels, nz, ny, nx), got shape {array.shape}")
    return np.argmax(array, axis=0).astype(np.int64)


def _clusters_meanshift(points: np.ndarray, bandwidth_vox: float) -> list[tuple[np.ndarray, int]]:
    """Return ``(centre_zyx, size)`` of each mean-shift cluster of ``points``."""
    from sklearn.cluster import MeanShift

    if len(points) == 1:
        return [(points[0].astype(np.float64), 1)]
    model = MeanShift(bandwidth=bandwidth_vox, bin_seeding=True, cluster_all=True)
    model.fit(points.astype(np.float64))
    sizes = np.bincount(model.labels_, minlength=len(model.cluster_centers_))
    return [(model.cluster_centers_[k], int(sizes[k])) for k in range(len(sizes)) if sizes[k]]


def _clusters_components(mask: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """Return ``(centroid_zyx, size)`` of each 26-connected component of ``mask``."""
    components, n = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if n == 0:
        return []
    index = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(mask, components, index)
    centres = ndimage.center_of_mass(mask, components, index)
    return [(np.asarray(c, dtype=np.float64), int(s)) for c, s in zip(centres, sizes, strict=True)]


def extract_particles(
    labels: np.ndarray,
    class_names: Mapping[int, str],
    *,
    method: str = "meanshift",
    bandwidth_vox: float | Mapping[int, float] | None = None,
    min_voxels: Mapping[int, int] | None = None,
    snap: bool = False,
    sizes: list[int] | None = None,
) -> list[Particle]:
    """Extract particles from a label map, class by class.

    Parameters
    ----------
    labels : numpy.ndarray
        ``(nz, ny, nx)`` integer labels, 0 = background.
    class_names : mapping of int to str
        Label -> class name. Labels not in the mapping (and 0) are ignored.
    method : {"meanshift", "components"}
        Mean-shift clustering of each class's voxel coordinates (scikit-learn
        ``MeanShift``, flat kernel, bin seeding) or 26-connected components.
    bandwidth_vox : float or mapping of int to float, optional
        Mean-shift bandwidth in voxels (required for ``"meanshift"``), about a
        particle's radius: one for every class, or label -> bandwidth for each class
        extracted.
    min_voxels : mapping of int to int, optional
        Label -> minimum cluster size in voxels; smaller clusters are dropped.
        Default 1 for every class (see `min_cluster_voxels`).
    snap : bool
        Move each centre to the nearest voxel carrying the class's label. The centre of
        a hollow particle (a ring, a cage) lies in its hole, outside the particle's
        occupancy, where the SHREC hit test would call it a false positive; the nearest
        labelled voxel is on the particle, at most its inner radius away.

    Returns
    -------
    list of Particle
        By label, then by position (z, y, x); centres in voxels, angles 0.
    """
    array = np.asarray(labels)
    if array.ndim != 3:
        raise ValueError(f"the label map must be 3-D (z, y, x), got shape {array.shape}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    bandwidths: dict[int, float] = {}
    if method == "meanshift":
        for label in class_names:
            if isinstance(bandwidth_vox, Mapping):
                value = bandwidth_vox.get(label)
            else:
                value = bandwidth_vox
            if label != 0 and not (value is not None and value > 0):
                raise ValueError(
                    f"mean-shift needs a positive bandwidth in voxels (class {label}: {value})"
                )
            bandwidths[label] = 0.0 if value is None else float(value)
    particles = []
    for label in sorted(class_names):
        if label == 0:
            continue
        mask = array == label
        if not mask.any():
            continue
        points = np.argwhere(mask) if method == "meanshift" or snap else None
        if method == "meanshift":
            assert points is not None
            clusters = _clusters_meanshift(points, bandwidths[label])
        else:
            clusters = _clusters_components(mask)
        smallest = 1 if min_voxels is None else int(min_voxels.get(label, 1))
        clusters = [(c, s) for c, s in clusters if s >= smallest]
        if snap:
            assert points is not None
            clusters = [
                (points[np.argmin(((points - c) ** 2).sum(axis=1))].astype(np.float64), s)
                for c, s in clusters
            ]
        kept = sorted((tuple(c.tolist()), s) for c, s in clusters)
        for (z, y, x), size in kept:
            particles.append(Particle(class_names[label], float(x), float(y), float(z)))
            if sizes is not None:
                sizes.append(int(size))
    return particles
