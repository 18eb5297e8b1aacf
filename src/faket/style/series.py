"""The style stage on whole tilt-series: normalisation, working size, batching.

The final grey levels are those of the style, per tilt (:func:`match_mean_std`).
Memory and tiles are planned by :mod:`faket.style.planning` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from faket.conventions import TiltStack, tilt_parts
from faket.errors import FaketInputError
from faket.style.backbones import VGGFeatures
from faket.style.planning import (
    DEFAULT_MEMORY_BUDGET_BYTES,
    MemoryBudgetError,
    auto_tile,
    batch_plan,
    check_memory_budget,
    largest_fitting_tile,
    plan_bytes,
    plan_tiles,
    style_bytes_per_tilt,
    tilts_per_batch,
    transfer_plan,
)
from faket.style.transfer import StyleSettings, stylize_batch

__all__ = [
    "DEFAULT_MEMORY_BUDGET_BYTES",
    "MemoryBudgetError",
    "auto_tile",
    "check_memory_budget",
    "check_style_inputs",
    "largest_fitting_tile",
    "match_mean_std",
    "minmax_range",
    "plan_bytes",
    "plan_tiles",
    "resize_images",
    "style_bytes_per_tilt",
    "stylize_tilt_series",
    "stylized_batches",
    "tilts_per_batch",
    "transfer_plan",
    "working_shape",
]


_RANGE_CHUNK_ELEMENTS = 2**24
"""Values per chunk of a stack's min-max pass (64 MB of float32)."""


def minmax_range(stack: TiltStack, name: str) -> tuple[float, float]:
    """Return the min and max of a whole stack, for its normalisation to [0, 1].

    The stack is read a few tilts at a time, so a stack in a file is never held whole.

    Raises
    ------
    FaketInputError
        If the stack is constant or holds NaN/Inf; ``name`` (a role or a file) is the
        error's path.
    """
    low, high = float("inf"), float("-inf")
    for tilts in tilt_parts(stack.shape, _RANGE_CHUNK_ELEMENTS):
        part = stack[tilts]
        if not torch.isfinite(part).all():
            raise FaketInputError("the tilt-series has NaN or Inf values", name)
        low, high = min(low, float(part.min())), max(high, float(part.max()))
    if high <= low:
        raise FaketInputError(f"the tilt-series is constant ({low})", name)
    return low, high


def _normalised(
    stack: TiltStack, part: slice, value_range: tuple[float, float], device: torch.device
) -> torch.Tensor:
    """Return tilts ``part`` of ``stack`` scaled by the whole stack's range, float32."""
    low, high = value_range
    return ((stack[part].to(device).double() - low) / (high - low)).float()


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


def check_style_inputs(
    initial: TiltStack,
    content: TiltStack,
    style: TiltStack,
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
    if tuple(initial.shape) != tuple(content.shape):
        raise FaketInputError(
            f"shape {tuple(content.shape)} differs from {names[0]} {tuple(initial.shape)}",
            names[1],
        )
    if style.shape[0] != initial.shape[0]:
        raise FaketInputError(
            f"has {style.shape[0]} tilts but {names[0]} has {initial.shape[0]}", names[2]
        )
    return [minmax_range(x, n) for x, n in zip((initial, content, style), names, strict=True)]


def stylize_tilt_series(
    model: VGGFeatures,
    initial: TiltStack,
    content: TiltStack,
    style: TiltStack,
    settings: StyleSettings | None = None,
    *,
    precision: str = "fp32",
    tile: int | None = None,
    halo: int = 96,
    memory_budget_bytes: int | None = None,
    working_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    names: tuple[str, str, str] = ("initial", "content", "style"),
) -> torch.Tensor:
    """Make the FakET tilt-series: stylise ``initial`` with ``content`` and ``style``.

    Parameters
    ----------
    model : VGGFeatures
        Frozen backbone, on the device the work runs on.
    initial : TiltStack
        ``(n_tilts, ny, nx)`` noisy tilt-series (the NOISY modality), tilt axis Y: a
        tensor, or tilts read from a file on demand
        (:class:`faket.io.tilt_stack.MrcTilts`).
    content : TiltStack
        ``(n_tilts, ny, nx)`` content tilt-series (the CONTENT modality).
    style : TiltStack
        ``(n_tilts, sy, sx)`` reference tilt-series of ANOTHER tomogram, the same tilts.
    settings : StyleSettings, optional
        Loss and optimiser; default: the published settings.
    precision : str
        ``fp32``, ``bf16`` or ``fp16`` for the convolutions.
    tile, halo : int or None
        Tile the detector in cores of ``tile`` pixels (a multiple of 16) for detectors
        too large for memory, with at most ``halo`` pixels of context (a multiple of 16;
        each stage takes the context that makes it exact, :mod:`faket.style.tiling`).
        None: whole tilts, or with a budget the tiles :func:`transfer_plan` chooses.
        With ``working_size``, tiles are cut from the resized images.
    memory_budget_bytes : int, optional
        Working memory for one batch of tilts (at the working shape): it sets how many
        tilts run at once, and one tilt that would exceed it runs in tiles chosen to
        fit (:func:`plan_tiles`). None (default): batches of
        :data:`DEFAULT_MEMORY_BUDGET_BYTES` and no automatic tiling.
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
        style's units and dtype, on the backbone's device.

    Raises
    ------
    FaketInputError
        If the tilt counts differ, shapes of initial and content differ, or a stack is
        constant or holds NaN/Inf.
    MemoryBudgetError
        If nothing fits ``memory_budget_bytes`` (a :class:`ValueError`).
    ValueError
        If ``working_size`` is not positive, or so small that a side would vanish.
    """
    out: torch.Tensor | None = None
    for start, tilts in stylized_batches(
        model,
        initial,
        content,
        style,
        settings,
        precision=precision,
        tile=tile,
        halo=halo,
        memory_budget_bytes=memory_budget_bytes,
        working_size=working_size,
        names=names,
    ):
        if out is None:
            out = tilts.new_empty((int(initial.shape[0]), *tilts.shape[1:]))
        out[start : start + tilts.shape[0]] = tilts
        if progress is not None:
            progress(int(tilts.shape[0]))
    assert out is not None  # a tilt-series has at least one tilt
    return out


def stylized_batches(
    model: VGGFeatures,
    initial: TiltStack,
    content: TiltStack,
    style: TiltStack,
    settings: StyleSettings | None = None,
    *,
    precision: str = "fp32",
    tile: int | None = None,
    halo: int = 96,
    memory_budget_bytes: int | None = None,
    working_size: int | None = None,
    names: tuple[str, str, str] = ("initial", "content", "style"),
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield the FakET tilt-series of :func:`stylize_tilt_series` one batch at a time.

    Every stack is read one batch of tilts at a time (after one pass for its value
    range) and each batch is final when yielded, so a caller that writes the batches
    (:class:`faket.io.tilt_stack.MrcTiltWriter`) holds one batch, not the series.
    Parameters, errors and values as :func:`stylize_tilt_series`.

    Yields
    ------
    start : int
        Index of the batch's first tilt.
    tilts : torch.Tensor
        ``(k, ny, nx)`` stylised tilts ``start .. start+k-1``, each with the mean and
        std of its style tilt, in the style's dtype, on the backbone's device.
    """
    settings = settings or StyleSettings()
    # Each stack is min-max normalised as a whole, one batch of tilts at a time.
    ranges = check_style_inputs(initial, content, style, names)
    n_tilts, ny, nx = (int(n) for n in initial.shape)
    shape, style_shape = (ny, nx), (int(style.shape[1]), int(style.shape[2]))
    if working_size is not None:
        shape = working_shape(ny, nx, working_size)
        style_shape = working_shape(*style_shape, working_size, enlarge=False)
    plan, batch = batch_plan(
        shape, precision, style_shape, model.blocks, settings, tile, halo, memory_budget_bytes
    )
    device = _device_of(model)
    for start in range(0, n_tilts, batch):
        part = slice(start, min(n_tilts, start + batch))
        reference = style[part].to(device)
        result = stylize_batch(
            model,
            resize_images(_normalised(initial, part, ranges[0], device), shape),
            resize_images(_normalised(content, part, ranges[1], device), shape),
            resize_images(_normalised(style, part, ranges[2], device), style_shape),
            settings,
            precision=precision,
            plan=plan,
        )
        yield start, match_mean_std(resize_images(result, (ny, nx)), reference)


def _device_of(model: VGGFeatures) -> torch.device:
    """Return the device of the backbone's weights (the CPU for one without any)."""
    for weight in model.parameters():
        return weight.device
    return torch.device("cpu")
