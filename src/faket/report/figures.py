"""Figures a person would rather see than read, saved as PNG (matplotlib, no GUI).

Each function takes arrays, draws one figure and writes it atomically to ``path``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from faket.io import atomic_write


def _figure(n_rows: int, n_cols: int, size: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    """Return a new figure (not registered with pyplot) and its 2-D array of axes."""
    fig = Figure(figsize=size)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    return fig, axes


def _save(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Write ``fig`` as PNG, atomically."""
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")


def nearest_tilts(tilt_angles_deg: Sequence[float], wanted_deg: Sequence[float]) -> list[int]:
    """Return the index of the tilt nearest to each wanted angle (duplicates removed)."""
    angles = np.asarray(tilt_angles_deg, dtype=float)
    picked = [int(np.argmin(np.abs(angles - w))) for w in wanted_deg]
    return list(dict.fromkeys(picked))


def plot_projections(
    series: Mapping[str, np.ndarray],
    tilt_angles_deg: Sequence[float],
    path: str | os.PathLike[str],
    *,
    wanted_deg: Sequence[float] = (-60.0, -40.0, 0.0, 40.0, 60.0),
) -> None:
    """Draw chosen tilts of several tilt-series side by side: a row per series.

    Parameters
    ----------
    series : mapping of str to numpy.ndarray
        Name -> ``(n_tilts, ny, nx)`` tilt-series, all with the same tilts.
    tilt_angles_deg : sequence of float
        ``(n_tilts,)`` angles in degrees.
    path : str or PathLike
        PNG to write.
    wanted_deg : sequence of float
        Angles to show; the nearest tilt of each is drawn.

    Each image is drawn with its own 1st-99th percentile grey range.
    """
    columns = nearest_tilts(tilt_angles_deg, wanted_deg)
    fig, axes = _figure(len(series), len(columns), (2.2 * len(columns), 2.3 * len(series)))
    for row, (name, stack) in enumerate(series.items()):
        for col, t in enumerate(columns):
            image = np.asarray(stack[t], dtype=np.float64)
            low, high = np.percentile(image, [1, 99])
            ax = axes[row, col]
            ax.imshow(image, cmap="gray", vmin=low, vmax=high if high > low else low + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"{tilt_angles_deg[t]:+.0f} deg", fontsize=10)
            if col == 0:
                ax.set_ylabel(name, fontsize=10)
    _save(fig, path)


def plot_noise_stats(
    measured: Mapping[str, Mapping[str, np.ndarray]],
    fitted: Mapping[str, Mapping[str, np.ndarray]],
    path: str | os.PathLike[str],
) -> None:
    """Draw per-tilt noise statistics (points) and fitted curves (lines).

    Parameters
    ----------
    measured : mapping
        Label -> {"r", "sigma", "mean", "std"} -> ``(n_tilts,)`` values, drawn as points,
        over ``"angle_deg"`` (the tilt angles) when every entry has it, else the tilt index.
    fitted : mapping
        Label -> the same keys -> ``(n_tilts,)`` curves (e.g. order-2 and order-0 fits),
        drawn as lines.
    path : str or PathLike
        PNG to write.
    """
    keys = ("r", "sigma", "mean", "std")
    titles = {
        "r": "r (signal scale)",
        "sigma": "sigma (noise, std units)",
        "mean": "mean",
        "std": "std",
    }
    fig, axes = _figure(1, 4, (14, 3.2))
    curves = [*measured.values(), *fitted.values()]
    by_angle = all("angle_deg" in v for v in curves)

    def x(values: Mapping[str, np.ndarray]) -> np.ndarray:
        return values["angle_deg"] if by_angle else np.arange(len(values["r"]))

    for ax, key in zip(axes[0], keys, strict=True):
        for label, values in measured.items():
            ax.plot(x(values), values[key], ".", label=label, alpha=0.7)
        for label, values in fitted.items():
            order = np.argsort(x(values))
            ax.plot(x(values)[order], values[key][order], "-", label=label)
        ax.set_title(titles[key], fontsize=10)
        ax.set_xlabel("tilt angle (deg)" if by_angle else "tilt index")
    axes[0, -1].legend(fontsize=8)
    _save(fig, path)


def plot_power_spectra(
    spectra: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | os.PathLike[str]
) -> None:
    """Draw radially averaged power spectra on a log scale, one line per series.

    Parameters
    ----------
    spectra : mapping of str to (numpy.ndarray, numpy.ndarray)
        Name -> (frequencies in cycles/pixel, power), each ``(n_bins,)``. Powers are
        divided by their median, so series in different units share one axis.
    path : str or PathLike
        PNG to write.
    """
    fig, axes = _figure(1, 1, (6, 4))
    ax = axes[0, 0]
    for name, (freq, power) in spectra.items():
        power = np.asarray(power, dtype=np.float64)
        ax.semilogy(freq, power / np.median(power[power > 0]), label=name)
    ax.set_xlabel("spatial frequency (cycles/pixel)")
    ax.set_ylabel("power / median")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_tomogram_slices(
    tomograms: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    *,
    points_zyx: Sequence[tuple[float, float, float]] = (),
) -> None:
    """Draw the central XY and XZ slices of each tomogram, a row per tomogram.

    Parameters
    ----------
    tomograms : mapping of str to numpy.ndarray
        Name -> ``(nz, ny, nx)`` volume, all of one shape.
    path : str or PathLike
        PNG to write.
    points_zyx : sequence of (z, y, x)
        Particle centres in voxels; those within 3 voxels of a slice are circled on it.

    Each slice is drawn with its own 1st-99th percentile grey range.
    """
    fig, axes = _figure(len(tomograms), 2, (8, 2.6 * len(tomograms)))
    points = np.asarray(points_zyx, dtype=float).reshape(-1, 3)
    for row, (name, volume) in enumerate(tomograms.items()):
        nz, ny, nx = volume.shape
        views = [
            (f"XY (z = {nz // 2})", volume[nz // 2], points[:, 0], points[:, [2, 1]], nz // 2),
            (
                f"XZ (y = {ny // 2})",
                volume[:, ny // 2],
                points[:, 1],
                points[:, [2, 0]],
                ny // 2,
            ),
        ]
        for col, (title, image, depth, xy, centre) in enumerate(views):
            ax = axes[row, col]
            low, high = np.percentile(image, [1, 99])
            ax.imshow(image, cmap="gray", vmin=low, vmax=high if high > low else low + 1)
            near = np.abs(depth - centre) <= 3
            if near.any():
                ax.scatter(xy[near, 0], xy[near, 1], s=60, facecolors="none", edgecolors="r")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=10)
            if col == 0:
                ax.set_ylabel(name, fontsize=10)
    _save(fig, path)


def plot_particle_gallery(
    maps: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    *,
    voxel_size_a: float,
) -> None:
    """Draw each particle map's projections along Z (top row) and along X (bottom row).

    Parameters
    ----------
    maps : mapping of str to numpy.ndarray
        Name -> ``(n, n, n)`` centred map (e.g. `faket.phantom.builtin_particle`).
    path : str or PathLike
        PNG to write.
    voxel_size_a : float
        Voxel size in A; the axes are in nm, centred on the particle.

    Dense matter is drawn dark, as in a micrograph; each panel has its own grey range.
    """
    fig, axes = _figure(2, len(maps), (1.9 * len(maps), 4.2))
    for col, (name, volume) in enumerate(maps.items()):
        half = volume.shape[0] / 2 * voxel_size_a / 10.0
        for row, axis in enumerate((0, 2)):
            ax = axes[row, col]
            ax.imshow(-volume.sum(axis=axis), cmap="gray", extent=(-half, half, half, -half))
            ax.tick_params(labelsize=7)
            if row == 0:
                ax.set_title(name, fontsize=10)
        axes[1, col].set_xlabel("nm", fontsize=8)
    axes[0, 0].set_ylabel("along Z", fontsize=9)
    axes[1, 0].set_ylabel("along X", fontsize=9)
    _save(fig, path)


_LIKENESS_PANELS = (
    ("spectrum_log_distance", "power-spectrum log-distance\n(decades; 0 = same shape)"),
    ("grey_w1", "grey-value Wasserstein-1\n(tilt std units)"),
    ("domain_auc", "domain classifier AUC, held-out tilts\n(0.5 = indistinguishable)"),
)


def plot_likeness(likeness: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Draw how alike each modality is to the microscope, next to the floor.

    Three panels show one measure each: a bar per modality (its mean over tomograms), a
    dot per tomogram, and the floor (two references of different tomograms) as a dashed
    line. The fourth panel shows the radial power spectra at the tilt nearest 0 degrees,
    each modality's averaged over tomograms, the reference's (black) over the references.

    Parameters
    ----------
    likeness : mapping
        The likeness record (`faket.evaluation.DatasetLikeness.to_dict`, the content of
        likeness.json): ``modalities`` (name -> the three means and ``pairs``), ``floor``
        (the same), ``freqs_cycles_per_px`` ``(n_bins,)``, ``zero_tilt_log10_power``
        (name -> ``(n_bins,)`` log10 power, ``reference`` included) and
        ``tilt_angles_deg`` / ``tilts`` / ``zero_tilt`` for the title.
    path : str or PathLike
        PNG to write.
    """
    modalities = likeness["modalities"]
    names = list(modalities)
    floor = likeness["floor"]
    fig, axes = _figure(1, 4, (4.0 * 4, 3.6))
    x = np.arange(len(names))
    for ax, (metric, title) in zip(axes[0, :3], _LIKENESS_PANELS, strict=True):
        means = [float(modalities[n][metric]) for n in names]
        ax.bar(x, means, color="tab:blue", alpha=0.6)
        for k, name in enumerate(names):
            values = [float(p[metric]) for p in modalities[name]["pairs"]]
            ax.plot(np.full(len(values), k), values, "k.", markersize=4)
        ax.axhline(float(floor[metric]), color="tab:red", linestyle="--", label="floor")
        if metric == "domain_auc":
            ax.axhline(0.5, color="0.5", linestyle=":", label="chance")
            ax.set_ylim(0.0, 1.05)
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    ax = axes[0, 3]
    freqs = np.asarray(likeness["freqs_cycles_per_px"], dtype=np.float64)
    spectra = likeness["zero_tilt_log10_power"]
    for name in names:
        if name in spectra:
            ax.semilogy(freqs, 10.0 ** np.asarray(spectra[name]), label=name, linewidth=1)
    if "reference" in spectra:
        ax.semilogy(freqs, 10.0 ** np.asarray(spectra["reference"]), "k", label="reference")
    angle = None
    if "zero_tilt" in likeness and "tilts" in likeness:
        angle = likeness["tilt_angles_deg"][list(likeness["tilts"]).index(likeness["zero_tilt"])]
    ax.set_title(
        "radial power spectrum, standardised"
        + ("" if angle is None else f"\n(tilt at {float(angle):+.0f} deg)"),
        fontsize=9,
    )
    ax.set_xlabel("spatial frequency (cycles/pixel)")
    ax.set_ylabel("power (tilt variance = 1)")
    ax.legend(fontsize=7)
    _save(fig, path)
