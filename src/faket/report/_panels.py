"""Drawing helpers of the report's image panels: grey range, scale bar, class colours."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap, to_rgba
from matplotlib.patches import Patch, Rectangle

PERCENTILES = (1.0, 99.0)
"""The grey range of every image panel: these percentiles of the pixels shown."""

SCALE_BAR_GID = "scale-bar"
"""The matplotlib ``gid`` of a scale bar's rectangle (tests find it by this)."""

_OUTLINE: list[patheffects.AbstractPathEffect] = [
    patheffects.withStroke(linewidth=2.5, foreground="black")
]


def contrast_limits(
    image: np.ndarray, percentiles: tuple[float, float] = PERCENTILES
) -> tuple[float, float]:
    """Return the grey range ``(low, high)`` that stretches ``image`` for display.

    Parameters
    ----------
    image : numpy.ndarray
        The pixels shown, any shape; non-finite values are ignored.
    percentiles : (float, float)
        Lower and upper percentiles (0-100) of the finite pixels.

    Returns
    -------
    (float, float)
        The percentiles' values; ``high = low + 1`` when they are equal (a flat image),
        ``(0, 1)`` when no pixel is finite.
    """
    values = np.asarray(image, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(values, percentiles))
    return (low, high) if high > low else (low, low + 1.0)


def scale_bar_nm(field_of_view_nm: float) -> float:
    """Return the scale bar length: the largest 1, 2 or 5 x 10^k nm within a quarter of the field.

    Parameters
    ----------
    field_of_view_nm : float
        Width of the image in nm (> 0).
    """
    if not field_of_view_nm > 0:
        raise ValueError(f"field_of_view_nm must be positive, got {field_of_view_nm}")
    quarter = field_of_view_nm / 4.0
    decade = 10.0 ** math.floor(math.log10(quarter))
    return max(m * decade for m in (1.0, 2.0, 5.0) if m * decade <= quarter * (1 + 1e-9))


def scale_bar_pixels(length_nm: float, pixel_size_a: float) -> float:
    """Return the length in pixels of ``length_nm`` at ``pixel_size_a`` Angstrom per pixel."""
    return length_nm * 10.0 / pixel_size_a


def _length_text(length_nm: float) -> str:
    return f"{length_nm / 1000:g} µm" if length_nm >= 1000 else f"{length_nm:g} nm"


def draw_scale_bar(ax: Axes, width_px: int, height_px: int, pixel_size_a: float) -> float:
    """Draw a labelled scale bar in the lower left corner of an image panel.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The panel, drawn with ``imshow`` (data units = pixels, origin upper left).
    width_px, height_px : int
        The image's width and height in pixels.
    pixel_size_a : float
        Its pixel size in Angstrom.

    Returns
    -------
    float
        The bar's length in pixels (its length in nm is `scale_bar_nm` of the width).
    """
    length_nm = scale_bar_nm(width_px * pixel_size_a / 10.0)
    length = scale_bar_pixels(length_nm, pixel_size_a)
    margin = 0.05 * width_px
    thick = max(0.02 * height_px, 0.5)
    y = height_px - 0.5 - margin - thick
    bar = Rectangle(
        (margin - 0.5, y), length, thick, facecolor="white", edgecolor="black", linewidth=0.8
    )
    bar.set_gid(SCALE_BAR_GID)
    ax.add_patch(bar)
    text = ax.text(
        margin - 0.5 + length / 2,
        y - 0.5 * thick,
        _length_text(length_nm),
        color="white",
        ha="center",
        va="bottom",
        fontsize=7,
    )
    text.set_path_effects(_OUTLINE)
    return length


def show_image(
    ax: Axes,
    image: np.ndarray,
    *,
    pixel_size_a: float | None = None,
    percentiles: tuple[float, float] = PERCENTILES,
) -> tuple[float, float]:
    """Draw a grey image stretched to its own percentiles, no ticks, with a scale bar.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The panel.
    image : numpy.ndarray
        ``(ny, nx)`` image.
    pixel_size_a : float or None
        Its pixel size in Angstrom; None draws no scale bar.
    percentiles : (float, float)
        The grey range, see `contrast_limits`.

    Returns
    -------
    (float, float)
        The grey range used.
    """
    low, high = contrast_limits(image, percentiles)
    ax.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if pixel_size_a is not None:
        draw_scale_bar(ax, image.shape[1], image.shape[0], pixel_size_a)
    return low, high


@dataclass(frozen=True)
class Labels:
    """A tomogram's labels, as the report draws them.

    Attributes
    ----------
    class_mask : numpy.ndarray
        ``(nz, ny, nx)`` integer class ids, 0 = background (``class_mask.mrc``).
    voxel_size_a : float
        Its voxel size in Angstrom.
    names : mapping of int to str
        Class id -> name, in legend order (``classes.json``).
    points_zyx : numpy.ndarray
        ``(n, 3)`` particle centres in class-mask voxels (``particle_locations.txt``).
    point_names : sequence of str
        ``(n,)`` the class name of each particle.
    """

    class_mask: np.ndarray
    voxel_size_a: float
    names: Mapping[int, str]
    points_zyx: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    point_names: Sequence[str] = ()

    def counts(self) -> dict[str, int]:
        """Return the number of particles of each class, in legend order (zeros included)."""
        counts = dict.fromkeys(self.names.values(), 0)
        for name in self.point_names:
            counts[name] = counts.get(name, 0) + 1
        return counts

    def colours(self) -> dict[str, tuple[float, float, float, float]]:
        """Return each class name's RGBA colour (tab10, then tab20b, in legend order)."""
        return {name: class_colour(k) for k, name in enumerate(self.counts())}


def class_colour(index: int) -> tuple[float, float, float, float]:
    """Return the RGBA colour of the ``index``-th class (0-based)."""
    palette = [f"C{k}" for k in range(10)]
    if index < len(palette):
        return to_rgba(palette[index])
    import matplotlib as mpl

    extra = mpl.colormaps["tab20b"]
    return tuple(float(c) for c in extra((index - len(palette)) % 20))  # type: ignore[return-value]


def class_colormap(labels: Labels) -> tuple[ListedColormap, np.ndarray]:
    """Return a colour map and a lookup from class id to its index (0: background, black).

    ``lookup[class_mask]`` gives the colour map's index of each voxel; ids with no name
    are drawn grey.
    """
    colours = labels.colours()
    ids = [int(i) for i in labels.names]
    size = max([0, *ids, int(labels.class_mask.max(initial=0))]) + 1
    lookup = np.full(size, len(colours) + 1, dtype=np.int64)
    lookup[0] = 0
    table = [(0.0, 0.0, 0.0, 1.0)]
    for k, (class_id, name) in enumerate(labels.names.items()):
        lookup[int(class_id)] = k + 1
        table.append(colours[name])
    table.append((0.5, 0.5, 0.5, 1.0))
    return ListedColormap(table), lookup


def show_classes(ax: Axes, mask_slice: np.ndarray, labels: Labels) -> None:
    """Draw a slice of the class mask in the classes' colours, background black."""
    cmap, lookup = class_colormap(labels)
    index = lookup[np.clip(np.asarray(mask_slice, dtype=np.int64), 0, len(lookup) - 1)]
    ax.imshow(index, cmap=cmap, vmin=-0.5, vmax=cmap.N - 0.5, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    draw_scale_bar(ax, mask_slice.shape[1], mask_slice.shape[0], labels.voxel_size_a)


def legend_handles(labels: Labels) -> list[Patch]:
    """Return one legend entry per class: its colour and ``name (count)``."""
    colours = labels.colours()
    return [
        Patch(facecolor=colours[name], edgecolor="black", label=f"{name} ({n})")
        for name, n in labels.counts().items()
    ]
