"""The style stage on whole tilt-series: normalisation, batching, memory, final grey levels."""

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
        (multiples of 16) for detectors too large for memory; None: whole images.
    memory_budget_bytes : int
        Working memory for one batch of tilts; sets how many tilts run at once (at least
        one: :func:`check_memory_budget` refuses a budget one tilt would exceed).
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
    """
    settings = settings or StyleSettings()
    # Each stack is min-max normalised as a whole, one batch of tilts at a time.
    ranges = check_style_inputs(initial, content, style, names)
    n_tilts, ny, nx = initial.shape
    batch = tilts_per_batch(ny, nx, precision, memory_budget_bytes, tile, halo)
    out = torch.empty((n_tilts, ny, nx), dtype=torch.float32, device=initial.device)
    for start in range(0, n_tilts, batch):
        part = slice(start, min(n_tilts, start + batch))
        out[part] = stylize_batch(
            model,
            _normalised(initial, part, ranges[0]),
            _normalised(content, part, ranges[1]),
            _normalised(style, part, ranges[2]),
            settings,
            precision=precision,
            tile=tile,
            halo=halo,
        )
        if progress is not None:
            progress(part.stop - part.start)
    return match_mean_std(out, style)
