"""The style stage on whole tilt-series: normalisation, batching, memory, final grey levels."""

from __future__ import annotations

from collections.abc import Callable

import torch

from faket._precision import PRECISIONS
from faket.errors import FaketInputError
from faket.style.backbones import VGGFeatures
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
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}")
    if tile is not None:  # the largest tile with its halo is what is held at once
        ny, nx = min(ny, tile + 2 * halo), min(nx, tile + 2 * halo)
    per_tilt = _BYTES_PER_PIXEL[precision] * ny * nx
    return max(1, memory_budget_bytes // per_tilt)


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
        Working memory for one batch of tilts; sets how many tilts run at once.
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
    # Each stack is min-max normalised as a whole, one batch of tilts at a time.
    ranges = [minmax_range(x, n) for x, n in zip((initial, content, style), names, strict=True)]
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
