"""Figures a person would rather see than read, saved as PNG (matplotlib, no GUI).

Each function takes arrays, draws one figure and writes it atomically to ``path``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from faket.io import atomic_write
from faket.report._panels import Labels, legend_handles, show_classes, show_image


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
    pixel_size_a: float | None = None,
) -> Figure:
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
    pixel_size_a : float or None
        Pixel size in Angstrom: each panel gets a scale bar (`draw_scale_bar`).

    Returns
    -------
    matplotlib.figure.Figure
        The figure written (axes ``[row * n_columns + column]``).

    Each image is stretched to its own 1st-99th percentiles (`contrast_limits`).
    """
    columns = nearest_tilts(tilt_angles_deg, wanted_deg)
    fig, axes = _figure(len(series), len(columns), (2.2 * len(columns), 2.3 * len(series)))
    for row, (name, stack) in enumerate(series.items()):
        for col, t in enumerate(columns):
            ax = axes[row, col]
            show_image(ax, np.asarray(stack[t], dtype=np.float64), pixel_size_a=pixel_size_a)
            if row == 0:
                ax.set_title(f"{tilt_angles_deg[t]:+.0f} deg", fontsize=10)
            if col == 0:
                ax.set_ylabel(name, fontsize=10)
    _save(fig, path)
    return fig


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


def spectrum_axis(
    ax: Axes, freqs_cycles_per_px: np.ndarray, pixel_size_a: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Set up a power-spectrum panel up to Nyquist; return the kept bins and their x.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The panel.
    freqs_cycles_per_px : numpy.ndarray
        ``(n_bins,)`` bin frequencies in cycles/pixel.
    pixel_size_a : float or None
        Pixel size in Angstrom: x in 1/Angstrom (``cycles/pixel / pixel_size_a``) up to
        ``0.5 / pixel_size_a``, with the resolution in Angstrom on a top axis. None: x in
        cycles/pixel up to 0.5.

    Returns
    -------
    keep : numpy.ndarray
        ``(n_bins,)`` bool, the bins at or below Nyquist (0.5 cycles/pixel).
    x : numpy.ndarray
        The kept bins' x values.
    """
    freqs = np.asarray(freqs_cycles_per_px, dtype=np.float64)
    keep = freqs <= 0.5 + 1e-9
    scale = 1.0 if pixel_size_a is None else 1.0 / pixel_size_a
    ax.set_xlim(0.0, 0.5 * scale)
    if pixel_size_a is None:
        ax.set_xlabel("spatial frequency (cycles/pixel), up to Nyquist")
        return keep, freqs[keep]
    ax.set_xlabel("spatial frequency (1/Å), up to Nyquist")
    top = ax.secondary_xaxis("top")
    ticks = list(np.linspace(0.0, 0.5 * scale, 6)[1:])
    top.set_xticks(ticks, [f"{1.0 / t:.3g}" for t in ticks])
    top.set_xlabel("resolution (Å)")
    return keep, freqs[keep] * scale


def plot_power_spectra(
    spectra: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike[str],
    *,
    pixel_size_a: float | None = None,
) -> Figure:
    """Draw radially averaged power spectra on a log scale up to Nyquist, one line per series.

    Parameters
    ----------
    spectra : mapping of str to (numpy.ndarray, numpy.ndarray)
        Name -> (frequencies in cycles/pixel, power), each ``(n_bins,)``. Powers are
        divided by their median, so series in different units share one axis. Bins past
        Nyquist (0.5 cycles/pixel, the corners of the 2-D spectrum) are left out.
    path : str or PathLike
        PNG to write.
    pixel_size_a : float or None
        Pixel size in Angstrom; see `spectrum_axis`.

    Returns
    -------
    matplotlib.figure.Figure
        The figure written; its first axes is the spectrum panel.
    """
    fig, axes = _figure(1, 1, (7, 4.2))
    ax = axes[0, 0]
    for name, (freq, power) in spectra.items():
        keep, x = spectrum_axis(ax, freq, pixel_size_a)
        kept = np.asarray(power, dtype=np.float64)[keep]
        ax.semilogy(x, kept / np.median(kept[kept > 0]), label=name, linewidth=1.2)
    ax.set_ylabel("power / median")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
    return fig


def _tomogram_points(
    labels: Labels, shape: tuple[int, ...], pixel_size_a: float | None
) -> np.ndarray:
    """Map the particle centres from class-mask voxels to tomogram voxels (shared centre)."""
    b = 1.0 if pixel_size_a is None else pixel_size_a / labels.voxel_size_a
    points = np.asarray(labels.points_zyx, dtype=np.float64).reshape(-1, 3)
    nz = labels.class_mask.shape[0]
    return np.column_stack(
        [(points[:, 0] - nz / 2) / b + shape[0] / 2, points[:, 1] / b, points[:, 2] / b]
    )


def _central_views(volume: np.ndarray) -> list[tuple[str, np.ndarray, int, int]]:
    """Return (title, slice, depth axis, centre) of a volume's central XY and XZ slices."""
    nz, ny, _ = volume.shape
    return [
        (f"XY (z = {nz // 2})", volume[nz // 2], 0, nz // 2),
        (f"XZ (y = {ny // 2})", volume[:, ny // 2], 1, ny // 2),
    ]


def plot_tomogram_slices(
    tomograms: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    *,
    pixel_size_a: float | None = None,
    labels: Labels | None = None,
) -> Figure:
    """Draw the central XY and XZ slices of each tomogram, a row per tomogram.

    Parameters
    ----------
    tomograms : mapping of str to numpy.ndarray
        Name -> ``(nz, ny, nx)`` volume, all of one shape.
    path : str or PathLike
        PNG to write.
    pixel_size_a : float or None
        The tomograms' voxel size in Angstrom: scale bars, and the particle centres of
        ``labels`` scaled from its voxels to the tomograms'.
    labels : Labels or None
        The specimen's labels: particles within 3 voxels of a slice are circled in their
        class colour, a last row shows the class mask's central slices, and a legend gives
        each class's colour and particle count.

    Returns
    -------
    matplotlib.figure.Figure
        The figure written; axes ``[2 * row + column]`` (column 0: XY, 1: XZ).

    Each slice is stretched to its own 1st-99th percentiles (`contrast_limits`).
    """
    n_rows = len(tomograms) + (labels is not None)
    fig, axes = _figure(n_rows, 2, (9.5, 2.6 * n_rows))
    for row, (name, volume) in enumerate(tomograms.items()):
        for col, (title, image, depth, centre) in enumerate(_central_views(volume)):
            ax = axes[row, col]
            show_image(ax, image, pixel_size_a=pixel_size_a)
            if labels is not None:
                _circle_particles(ax, labels, volume.shape, pixel_size_a, depth, centre)
            if row == 0:
                ax.set_title(title, fontsize=10)
            if col == 0:
                ax.set_ylabel(name, fontsize=10)
    if labels is not None:
        for col, (title, image, _, _) in enumerate(_central_views(labels.class_mask)):
            show_classes(axes[-1, col], image, labels)
            axes[-1, col].set_title(f"class mask {title}", fontsize=9)
        axes[-1, 0].set_ylabel("labels", fontsize=10)
        axes[0, 1].legend(
            handles=legend_handles(labels),
            loc="upper left",
            bbox_to_anchor=(1.03, 1.0),
            fontsize=8,
            title="class (particles)",
            title_fontsize=8,
        )
    _save(fig, path)
    return fig


def _circle_particles(
    ax: Axes,
    labels: Labels,
    shape: tuple[int, ...],
    pixel_size_a: float | None,
    depth_axis: int,
    centre: int,
) -> None:
    """Circle, in their class colours, the particles within 3 voxels of a slice."""
    points = _tomogram_points(labels, shape, pixel_size_a)
    near = np.abs(points[:, depth_axis] - centre) <= 3
    if not near.any():
        return
    colours = labels.colours()
    grey = (0.5, 0.5, 0.5, 1.0)
    edge = [colours.get(n, grey) for n, k in zip(labels.point_names, near, strict=True) if k]
    vertical = points[near, 1 if depth_axis == 0 else 0]  # y on XY slices, z on XZ
    ax.scatter(points[near, 2], vertical, s=60, facecolors="none", edgecolors=edge)


def plot_thumbnails(
    slices: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    *,
    pixel_size_a: float | None = None,
    labels: Labels | None = None,
) -> Figure:
    """Draw one row of small images: a slice of each modality, then the class mask's.

    Parameters
    ----------
    slices : mapping of str to numpy.ndarray
        Name -> ``(ny, nx)`` image (e.g. each tomogram's central XY slice).
    path : str or PathLike
        PNG to write.
    pixel_size_a : float or None
        The images' pixel size in Angstrom (scale bars).
    labels : Labels or None
        Adds the central XY slice of the class mask in the class colours.

    Returns
    -------
    matplotlib.figure.Figure
        The figure written, one axes per image, class mask last.

    Each image is stretched to its own 1st-99th percentiles (`contrast_limits`).
    """
    n = len(slices) + (labels is not None)
    fig, axes = _figure(1, n, (1.6 * n, 1.85))
    for ax, (name, image) in zip(axes[0], slices.items(), strict=False):
        show_image(ax, image, pixel_size_a=pixel_size_a)
        ax.set_title(name, fontsize=8)
    if labels is not None:
        mask = labels.class_mask
        show_classes(axes[0, -1], mask[mask.shape[0] // 2], labels)
        axes[0, -1].set_title("class mask", fontsize=8)
    _save(fig, path)
    return fig


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


def plot_likeness(
    likeness: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    pixel_size_a: float | None = None,
) -> Figure:
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
    pixel_size_a : float or None
        The tilt-series' pixel size in Angstrom: the spectrum panel in 1/Angstrom (see
        `spectrum_axis`); None: in cycles/pixel. Either way it stops at Nyquist.

    Returns
    -------
    matplotlib.figure.Figure
        The figure written; axes 3 is the spectrum panel.
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
    keep, freqs = spectrum_axis(ax, np.asarray(likeness["freqs_cycles_per_px"]), pixel_size_a)
    spectra = likeness["zero_tilt_log10_power"]
    for name in names:
        if name in spectra:
            power = 10.0 ** np.asarray(spectra[name])[keep]
            ax.semilogy(freqs, power, label=name, linewidth=1)
    if "reference" in spectra:
        power = 10.0 ** np.asarray(spectra["reference"])[keep]
        ax.semilogy(freqs, power, "k", label="reference")
    angle = None
    if "zero_tilt" in likeness and "tilts" in likeness:
        angle = likeness["tilt_angles_deg"][list(likeness["tilts"]).index(likeness["zero_tilt"])]
    ax.set_title(
        "radial power spectrum, standardised"
        + ("" if angle is None else f"\n(tilt at {float(angle):+.0f} deg)"),
        fontsize=9,
    )
    ax.set_ylabel("power (tilt variance = 1)")
    ax.legend(fontsize=7)
    _save(fig, path)
    return fig
