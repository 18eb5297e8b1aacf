"""The picking study's cluster-size rule, fixed on the validation tomogram only.

A segmentation is split into clusters once (`cluster_candidates`: every cluster, its
size in voxels); a rule then keeps the clusters of at least ``fraction`` of the class's
mean particle volume (`keep_large`). Each run chooses its ``fraction`` from
`MIN_FRACTION_GRID` on ITS validation tomogram (`choose_min_fraction`: the value with
the best mean of localisation F1 and macro-F1 there, the smallest on a tie), then
applies it unchanged to the test tomogram: no cluster size is chosen by looking at test
data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from faket.evaluation.extract import extract_particles, min_cluster_voxels
from faket.evaluation.shrec import score_picks
from faket.io import Particle

__all__ = [
    "MIN_FRACTION_GRID",
    "choose_min_fraction",
    "cluster_candidates",
    "keep_large",
    "score_against",
]

MIN_FRACTION_GRID = (0.05, 0.1, 0.15, 0.25, 0.35, 0.5, 0.7, 1.0)
"""Fractions of a class's particle volume that `choose_min_fraction` tries."""


def cluster_candidates(
    labels: np.ndarray,
    classes: Sequence[dict[str, Any]],
    voxel_size_a: float,
    *,
    exclude: Sequence[str] = (),
    method: str = "meanshift",
    snap: bool = True,
) -> tuple[list[Particle], list[int]]:
    """Return every cluster of every class (no size rule) and its size in voxels.

    Per class, mean shift with the class's radius as bandwidth (or connected
    components); see `faket.evaluation.extract_particles`.
    """
    picks: list[Particle] = []
    sizes: list[int] = []
    for row in classes:
        if row["name"] in exclude:
            continue
        radius = max(1.0, row["diameter_a"] / 2 / voxel_size_a)
        picks += extract_particles(
            labels,
            {row["id"]: row["name"]},
            method=method,
            bandwidth_vox=radius,
            snap=snap,
            sizes=sizes,
        )
    return picks, sizes


def keep_large(
    picks: Sequence[Particle],
    sizes: Sequence[int],
    classes: Sequence[dict[str, Any]],
    voxel_size_a: float,
    fraction: float,
    particle_voxels: Mapping[str, float] | None = None,
) -> list[Particle]:
    """Return the picks whose cluster holds at least ``fraction`` of a particle's voxels.

    A class's particle volume is ``particle_voxels[name]`` (labelled voxels per particle
    in the training tomograms, `faket.evaluation.study.particle_volumes`), else the
    sphere of its diameter (`faket.evaluation.min_cluster_voxels`).
    """
    minimum = {}
    for row in classes:
        if particle_voxels is not None and row["name"] in particle_voxels:
            minimum[row["name"]] = max(1, int(fraction * particle_voxels[row["name"]]))
        else:
            minimum[row["name"]] = min_cluster_voxels(row["diameter_a"], voxel_size_a, fraction)
    return [p for p, s in zip(picks, sizes, strict=True) if s >= minimum.get(p.class_name, 1)]


def score_against(truth: Any, picks: Sequence[Particle], exclude: Sequence[str]) -> Any:
    """Return the SHREC scores of ``picks`` against a tomogram's `read_truth` result."""
    xyz = np.array([[p.x, p.y, p.z] for p in picks], dtype=np.float64).reshape(-1, 3)
    return score_picks(
        truth.names,
        truth.xyz,
        truth.occupancy,
        [p.class_name for p in picks],
        xyz,
        class_order=truth.class_order,
        exclude=exclude,
    )


def choose_min_fraction(
    picks: Sequence[Particle],
    sizes: Sequence[int],
    truth: Any,
    classes: Sequence[dict[str, Any]],
    voxel_size_a: float,
    *,
    particle_voxels: Mapping[str, float] | None = None,
    exclude: Sequence[str] = (),
    grid: Sequence[float] = MIN_FRACTION_GRID,
) -> tuple[float, list[dict[str, float]]]:
    """Choose the cluster-size fraction on a validation tomogram.

    Parameters
    ----------
    picks, sizes
        `cluster_candidates` of the validation tomogram's segmentation.
    truth
        The validation tomogram's `faket.evaluation.read_truth`.
    classes, voxel_size_a, particle_voxels
        As `keep_large`.
    exclude : sequence of str
        Classes not scored.
    grid : sequence of float
        The fractions tried.

    Returns
    -------
    fraction : float
        The fraction with the best ``(localisation F1 + macro-F1) / 2``; the smallest
        of equals.
    table : list of dict
        Per fraction: ``fraction``, ``n_picks``, ``localisation_f1``, ``macro_f1``,
        ``objective``.
    """
    if not grid:
        raise ValueError("no cluster-size fractions to choose from")
    table = []
    for fraction in sorted(grid):
        kept = keep_large(picks, sizes, classes, voxel_size_a, fraction, particle_voxels)
        score = score_against(truth, kept, exclude)
        table.append(
            {
                "fraction": float(fraction),
                "n_picks": float(len(kept)),
                "localisation_f1": float(score.f1),
                "macro_f1": float(score.macro_f1_published),
                "objective": (float(score.f1) + float(score.macro_f1_published)) / 2,
            }
        )
    best = max(table, key=lambda row: (row["objective"], -row["fraction"]))
    return best["fraction"], table
