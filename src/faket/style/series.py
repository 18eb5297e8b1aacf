"""The style stage on whole tilt-series: normalisation, working size, batching, memory.

The final grey levels are those of the style, per tilt (:func:`match_mean_std`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from faket._precision import PRECISIONS
from faket.errors import FaketInputError
from faket.style.backbones import VGGFeatures
from faket.style.tiling import ALIGN
from faket.style.transfer import StyleSettings, stylize_batch

DEFAULT_MEMORY_BUDGET_BYTES = 2 * 2**30
"""Default working-memory budget of one batch of tilts (2 GiB)."""

_BYTES_PER_PIXEL = {"fp32": 3000, "bf16": 1900, "fp16": 1900}
"""Peak working memory per pixel of one tilt through VGG-16 to relu5_1 (measured at
1024^2: 2.9 KB fp32, 1.85 KB bf16): activations kept for the backward pass, pooling
indices, the content features, the injected feature gradients and backward buffers."""


def minmax_range(stack: torch.Tensor, name: str) -> tuple[float, float]:
    """Return the min and max of a whole stack, for its normalisation to [0, 1].

    Raises
    ------
    FaketInputError
        If the stack is constant or holds NaN/Inf; ``name`` (a role or a file) is the
        error's path.
    """
    if not torch.isfinite(stack).all():
        raise FaketInputError("the tilt-series has NaN or Inf values", name)
    low, high = float(stack.min()), float(stack.max())
    if high <= low:
        raise FaketInputError(f"the tilt-series is constant ({low})", name)
    return low, high


def _normalised(stack: torch.Tensor, part: slice, value_range: tuple[float, float]) -> torch.Tensor:
    """Return tilts ``part`` of ``stack`` scaled by the whole stack's range, float32."""
    low, high = value_range
    return ((stack[part].double() - low) / (high - low)).float()


def working_shape(ny: int, nx: int, working_size: int, *, enlarge: bool = True) -> tuple[int, int]:
    """Return the shape an ``(ny, nx)`` image is resized to for a transfer at ``working_size``.

    The FakET authors' rule (their style CLI's end scale): the longer side becomes
    ``working_size`` pixels and the shorter one ``round(working_size * short / long)``,
    keeping the aspect ratio. Content and initial images are resized up or down
    (``enlarge=True``); the style image only when it is larger (``enlarge=False``): a
    style no larger than ``working_size`` keeps its shape, since the Gram matrices are
    normalised by the number of positions.

    Parameters
    ----------
    ny, nx : int
        Image shape in pixels.
    working_size : int
        Longer side of the working shape, in pixels.
    enlarge : bool
        Whether an image smaller than ``working_size`` is enlarged.

    Returns
    -------
    tuple of int
        ``(wy, wx)`` in pixels.
    """
    if working_size < 1:
        raise ValueError(f"working_size must be a positive number of pixels, got {working_size}")
    longer, shorter = max(ny, nx), min(ny, nx)
    if longer == working_size or (not enlarge and longer <= working_size):
        return ny, nx
    short = round(working_size * shorter / longer)
    if short < 1:
        raise ValueError(
            f"a working size of {working_size} px makes the shorter side of a {ny} x {nx} "
            "image vanish"
        )
    return (working_size, short) if ny >= nx else (short, working_size)


def resize_images(images: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Resample a batch of grey images to ``shape`` as the FakET authors' style CLI does.

    Their resampler is scikit-image's ``resize(image, shape, order=1,
    anti_aliasing=True)`` (default ``mode="reflect"``); this is the same operation in
    torch, so it runs on any device: per axis with ``factor = n_in / n_out``,

    - when shrinking (``factor > 1``), a Gaussian low-pass of sigma ``(factor - 1) / 2``
      pixels (kernel radius ``int(4 sigma + 0.5)``, as ``scipy.ndimage.gaussian_filter``);
    - then linear interpolation at ``(i + 0.5) * factor - 0.5`` (pixel centres onto pixel
      centres);

    with whole-sample mirroring beyond the edges (``d c b | a b c d | c b a``) for both.
    Weights are non-negative and sum to 1, so a [0, 1] image stays in [0, 1].

    Parameters
    ----------
    images : torch.Tensor
        ``(batch, ny, nx)`` floating point, any device.
    shape : tuple of int
        ``(wy, wx)`` output shape in pixels; an axis of equal size is left unchanged.

    Returns
    -------
    torch.Tensor
        ``(batch, wy, wx)``, same dtype and device.
    """
    out = images
    for dim, n_out in ((1, shape[0]), (2, shape[1])):
        out = _resample_axis(out, int(n_out), dim)
    return out


def _mirror(index: torch.Tensor, n: int) -> torch.Tensor:
    """Map integer indices onto ``0 .. n - 1`` by whole-sample mirroring at the edges."""
    if n == 1:
        return torch.zeros_like(index)
    period = 2 * (n - 1)
    index = index.remainder(period)
    return torch.where(index >= n, period - index, index)


def _along(values: torch.Tensor, dim: int, ndim: int) -> torch.Tensor:
    """Return 1-D ``values`` shaped to broadcast along axis ``dim`` of an ``ndim`` tensor."""
    shape = [1] * ndim
    shape[dim] = -1
    return values.view(shape)


def _resample_axis(x: torch.Tensor, n_out: int, dim: int) -> torch.Tensor:
    """Resample axis ``dim`` of ``x`` to ``n_out`` samples; see :func:`resize_images`."""
    n = x.shape[dim]
    if n_out == n:
        return x
    if n_out < 1:
        raise ValueError(f"cannot resize an axis to {n_out} pixels")
    factor = n / n_out
    if factor > 1:  # low-pass before shrinking
        sigma = (factor - 1) / 2
        radius = int(4 * sigma + 0.5)
        offsets = torch.arange(-radius, radius + 1, device=x.device)
        kernel = torch.exp(-0.5 * (offsets.double() / sigma) ** 2)
        kernel = (kernel / kernel.sum()).to(x.dtype)
        positions = torch.arange(n, device=x.device)
        blurred = torch.zeros_like(x)
        for k, weight in zip(offsets.tolist(), kernel, strict=True):
            blurred += weight * x.index_select(dim, _mirror(positions + k, n))
        x = blurred
    source = (torch.arange(n_out, dtype=torch.float64, device=x.device) + 0.5) * factor - 0.5
    low = source.floor()
    frac = _along((source - low).to(x.dtype), dim, x.ndim)
    low_index = low.long()
    below = x.index_select(dim, _mirror(low_index, n))
    above = x.index_select(dim, _mirror(low_index + 1, n))
    return (1 - frac) * below + frac * above


def match_mean_std(images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Shift and scale each image to the mean and population std of its reference image.

    Parameters
    ----------
    images, reference : torch.Tensor
        ``(n, ny, nx)`` and ``(n, sy, sx)``.

    Returns
    -------
    torch.Tensor
        ``(n, ny, nx)`` in the reference's units and dtype.
    """
    x = images.double()
    ref = reference.double()
    mean = x.mean((1, 2), keepdim=True)
    std = x.std((1, 2), correction=0, keepdim=True)
    std = torch.where(std > 0, std, torch.ones_like(std))
    ref_mean = ref.mean((1, 2), keepdim=True)
    ref_std = ref.std((1, 2), correction=0, keepdim=True)
    return ((x - mean) / std * ref_std + ref_mean).to(reference.dtype)


def tilts_per_batch(
    ny: int, nx: int, precision: str, memory_budget_bytes: int, tile: int | None, halo: int
) -> int:
    """Return how many tilts fit the memory budget at once (at least 1)."""
    per_tilt = style_bytes_per_tilt(ny, nx, precision, tile, halo)
    return max(1, memory_budget_bytes // per_tilt)


def largest_fitting_tile(
    ny: int, nx: int, precision: str, memory_budget_bytes: int, halo: int
) -> int | None:
    """Return the largest tile core (a multiple of 16) whose tile fits the budget.

    Only tiles smaller than the image are considered; None when not even a 16-pixel
    core with ``halo`` pixels of context fits.
    """
    largest = (max(ny, nx) - 1) // ALIGN * ALIGN  # a tile at least the image is no tile
    for tile in range(largest, ALIGN - 1, -ALIGN):
        if style_bytes_per_tilt(ny, nx, precision, tile, halo) <= memory_budget_bytes:
            return tile
    return None


class MemoryBudgetError(ValueError):
    """One tilt (or one tile of it) needs more working memory than the budget allows.

    Attributes
    ----------
    needed_bytes : int
        Estimated peak working memory of one tilt (one tile when tiling).
    budget_bytes : int
        The budget.
    fitting_tile : int or None
        The largest tile core that fits the budget with the same halo, if any.
    """

    def __init__(self, needed_bytes: int, budget_bytes: int, fitting_tile: int | None) -> None:
        self.needed_bytes = needed_bytes
        self.budget_bytes = budget_bytes
        self.fitting_tile = fitting_tile
        advice = (
            f"tile={fitting_tile} fits" if fitting_tile is not None else "no tile fits this halo"
        )
        super().__init__(
            f"one tilt needs about {needed_bytes / 2**30:.2f} GiB of working memory, more "
            f"than memory_budget_bytes ({budget_bytes / 2**30:.2f} GiB); {advice}"
        )


def check_memory_budget(
    ny: int, nx: int, precision: str, memory_budget_bytes: int, tile: int | None, halo: int
) -> None:
    """Refuse settings under which one tilt (or tile) needs more memory than the budget.

    :func:`stylize_tilt_series` batches as many tilts as the budget holds, but always runs
    at least one; call this first to refuse, before any work, a budget that one tilt
    would exceed.

    Raises
    ------
    MemoryBudgetError
        With the estimated need and the largest tile that would fit.
    """
    needed = style_bytes_per_tilt(ny, nx, precision, tile, halo)
    if needed > memory_budget_bytes:
        fitting = largest_fitting_tile(ny, nx, precision, memory_budget_bytes, halo)
        raise MemoryBudgetError(needed, memory_budget_bytes, fitting)


def check_style_inputs(
    initial: torch.Tensor,
    content: torch.Tensor,
    style: torch.Tensor,
    names: tuple[str, str, str] = ("initial", "content", "style"),
) -> list[tuple[float, float]]:
    """Check the three stacks of :func:`stylize_tilt_series`; return their value ranges.

    Raises
    ------
    FaketInputError
        As :func:`stylize_tilt_series`, naming the stack by ``names``.
    """
    for name, stack in zip(names, (initial, content, style), strict=True):
        if stack.ndim != 3:
            raise FaketInputError(
                f"a tilt-series must be 3-D (tilt, y, x), got {tuple(stack.shape)}", name
            )
    if initial.shape != content.shape:
        raise FaketInputError(
            f"shape {tuple(content.shape)} differs from {names[0]} {tuple(initial.shape)}",
            names[1],
        )
    if style.shape[0] != initial.shape[0]:
        raise FaketInputError(
            f"has {style.shape[0]} tilts but {names[0]} has {initial.shape[0]}", names[2]
        )
    return [minmax_range(x, n) for x, n in zip((initial, content, style), names, strict=True)]


def style_bytes_per_tilt(
    ny: int, nx: int, precision: str, tile: int | None = None, halo: int = 96
) -> int:
    """Return the working memory of one tilt (or its largest tile with halo), in bytes."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}")
    if tile is not None:
        ny, nx = min(ny, tile + 2 * halo), min(nx, tile + 2 * halo)
    return _BYTES_PER_PIXEL[precision] * ny * nx


def stylize_tilt_series(
    model: VGGFeatures,
    initial: torch.Tensor,
    content: torch.Tensor,
    style: torch.Tensor,
    settings: StyleSettings | None = None,
    *,
    precision: str = "fp32",
    tile: int | None = None,
    halo: int = 96,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    working_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    names: tuple[str, str, str] = ("initial", "content", "style"),
) -> torch.Tensor:
    """Make the FakET tilt-series: stylise ``initial`` with ``content`` and ``style``.

    Parameters
    ----------
    model : VGGFeatures
        Frozen backbone, on the device the work runs on.
    initial : torch.Tensor
        ``(n_tilts, ny, nx)`` noisy tilt-series (the NOISY modality), tilt axis Y.
    content : torch.Tensor
        ``(n_tilts, ny, nx)`` content tilt-series (the CONTENT modality).
    style : torch.Tensor
        ``(n_tilts, sy, sx)`` reference tilt-series of ANOTHER tomogram, the same tilts.
    settings : StyleSettings, optional
        Loss and optimiser; default: the published settings.
    precision : str
        ``fp32``, ``bf16`` or ``fp16`` for the convolutions.
    tile, halo : int or None
        Tile the detector in cores of ``tile`` pixels with ``halo`` pixels of context
        (multiples of 16) for detectors too large for memory; None: whole images. With
        ``working_size``, tiles are cut from the resized images.
    memory_budget_bytes : int
        Working memory for one batch of tilts (at the working shape); sets how many tilts
        run at once (at least one: :func:`check_memory_budget` refuses a budget one tilt
        would exceed).
    working_size : int, optional
        Run the transfer with the longer image side at this many pixels, as the FakET
        authors' CLI does (its end scale; 1024 in the paper, SHREC's native size): each
        normalised initial and content tilt is resized to :func:`working_shape` (aspect
        kept), the style tilt too if it is larger, by :func:`resize_images`; the result
        is resized back to ``(ny, nx)`` by the same resampler before the matching to the
        style's mean and std. None (default): the native size, no resampling.
    progress : callable, optional
        Called with the number of tilts finished after each batch.
    names : tuple of str
        How error messages name the initial, content and style stacks (e.g. files).

    Returns
    -------
    torch.Tensor
        ``(n_tilts, ny, nx)``, each tilt with the mean and std of its style tilt, in the
        style's units and dtype, on the inputs' device.

    Raises
    ------
    FaketInputError
        If the tilt counts differ, shapes of initial and content differ, or a stack is
        constant or holds NaN/Inf.
    ValueError
        If ``working_size`` is not positive, or so small that a side would vanish.
    """
    settings = settings or StyleSettings()
    # Each stack is min-max normalised as a whole, one batch of tilts at a time.
    ranges = check_style_inputs(initial, content, style, names)
    n_tilts, ny, nx = initial.shape
    shape, style_shape = (ny, nx), (int(style.shape[1]), int(style.shape[2]))
    if working_size is not None:
        shape = working_shape(ny, nx, working_size)
        style_shape = working_shape(*style_shape, working_size, enlarge=False)
    batch = tilts_per_batch(*shape, precision, memory_budget_bytes, tile, halo)
    out = torch.empty((n_tilts, ny, nx), dtype=torch.float32, device=initial.device)
    for start in range(0, n_tilts, batch):
        part = slice(start, min(n_tilts, start + batch))
        result = stylize_batch(
            model,
            resize_images(_normalised(initial, part, ranges[0]), shape),
            resize_images(_normalised(content, part, ranges[1]), shape),
            resize_images(_normalised(style, part, ranges[2]), style_shape),
            settings,
            precision=precision,
            tile=tile,
            halo=halo,
        )
        out[part] = resize_images(result, (ny, nx))
        if progress is not None:
            progress(part.stop - part.start)
    return match_mean_std(out, style)
