"""Turn a noiseless tilt-series into the noisy, content and baseline modalities.

Per tilt: standardise the noiseless image, multiply it by ``r``, add white Gaussian noise
of standard deviation ``sigma * sigma_scale``, then give the result exactly the target
mean and std. The modalities differ only in how the measured statistics are pooled
(polynomial order over the tilt index) and in how much noise is added:

- ``noisy`` (FakET's initial image): order 2, full noise.
- ``content`` (FakET's content image): order 2, a quarter of the noise.
- ``baseline`` (the Gaussian-noise baseline): order 0, full noise.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from numbers import Integral

import torch

from faket.conventions import TiltAngles, TiltStack, tilt_parts
from faket.errors import FaketInputError
from faket.noise.aggregate import aggregate_tilt_stats
from faket.noise.stats import TiltStats, _check_tilt_stack, _constant_tilts, _nonfinite_tilts

__all__ = [
    "MODALITIES",
    "NOISE_MODELS",
    "ModalitySpec",
    "apply_noise",
    "collect_parts",
    "make_modality",
    "modality_parts",
    "noise_parts",
]

_PART_VALUES = 2**24
"""The noise formula runs on parts of about this many pixels (64 MiB in float32) at a time,
so its temporaries stay small next to the series: the stage holds the input and the
output, 2 series, not the 6 of a whole-stack evaluation (3 GB each at 61 x 3500^2)."""


def _tilt_parts(shape: torch.Size) -> Iterator[slice]:
    """Yield slices of whole tilts of ``shape``, about ``_PART_VALUES`` pixels each."""
    return tilt_parts(shape, _PART_VALUES)


@dataclass(frozen=True)
class ModalitySpec:
    """How to make one modality from measured statistics.

    Attributes
    ----------
    order : int
        Degree of the polynomial fitted over the tilt index before averaging tomograms.
    sigma_scale : float
        Factor on the fitted noise level ``sigma``.
    description : str
        One line for help texts and reports.
    """

    order: int
    sigma_scale: float
    description: str


MODALITIES: dict[str, ModalitySpec] = {
    "noisy": ModalitySpec(
        order=2,
        sigma_scale=1.0,
        description="order-2 fitted r, sigma, mean, std; full noise (FakET's initial image)",
    ),
    "content": ModalitySpec(
        order=2,
        sigma_scale=0.25,
        description="order-2 fitted statistics; a quarter of the noise (FakET's content image)",
    ),
    "baseline": ModalitySpec(
        order=0,
        sigma_scale=1.0,
        description="one global r, sigma, mean, std; full noise (Gaussian-noise baseline)",
    ),
}
"""The modalities the noise stage makes, by name."""

NOISE_MODELS: dict[str, str] = {
    "published": "scalar signal scale r and white Gaussian noise of sigma per tilt (FakET)",
    "spectral": "radial signal transfer T(k) and coloured noise power N(k) per tilt",
}
"""The noise models :func:`make_modality` can apply, with one line each."""


def _refuse_constant_tilts(noiseless: torch.Tensor, name: str | None, first: int = 0) -> None:
    """Raise FaketInputError naming the constant tilts of ``noiseless`` (and ``name``).

    ``noiseless`` holds tilts ``first, first + 1, ...`` of the series the message names.
    """
    constant = _constant_tilts(noiseless)
    if not bool(constant.any()):
        return
    bad = torch.nonzero(constant).flatten().tolist()
    value = float(noiseless[bad[0]].flatten()[0])
    bad = [first + i for i in bad]
    which = "tilt" if len(bad) == 1 else "tilts"
    listed = ", ".join(str(i) for i in bad[:10]) + (", ..." if len(bad) > 10 else "")
    subject = which if name is not None else f"noiseless {which}"
    raise FaketInputError(
        f"{subject} {listed} {'is a constant image' if len(bad) == 1 else 'are constant images'}"
        f" ({value:g}), which cannot be standardised (std 0); is the projected volume empty?",
        name,
    )


def _standardise_or_zero(x: torch.Tensor) -> torch.Tensor:
    """Standardise each tilt of ``x`` (population std); constant tilts become zeros."""
    mean = x.mean(dim=(-2, -1), keepdim=True)
    std = x.std(dim=(-2, -1), correction=0, keepdim=True)
    constant = _constant_tilts(x)[:, None, None]
    safe_std = torch.where(constant | (std == 0), torch.ones_like(std), std)
    return torch.where(constant, torch.zeros_like(x), (x - mean) / safe_std)


def apply_noise(
    noiseless: torch.Tensor,
    stats: TiltStats,
    *,
    sigma_scale: float = 1.0,
    seed: int,
    name: str | None = None,
) -> torch.Tensor:
    """Make a noisy tilt-series from a noiseless one and per-tilt statistics.

    For tilt ``i``: ``x = r[i] * standardise(noiseless[i]) + sigma[i] * sigma_scale * n``
    with ``n`` standard white Gaussian noise; the output is
    ``standardise(x) * std[i] + mean[i]``.

    The final re-standardisation is a decision: ``x`` has variance ``r**2 + (sigma *
    sigma_scale)**2``, which is not 1 for fitted curves or a reduced ``sigma_scale``.
    Standardising it gives every output tilt exactly the target mean and std (up to
    floating-point rounding), so the modalities share the grey levels of the reference
    data, as the method prescribes ("shift and scale each tilt to the aggregated mean and
    std").

    A constant noiseless tilt (e.g. an empty volume's projection) has no defined
    standardisation (0 / 0) and is refused: the output would be pure noise that carries
    none of the content it is meant to label.

    Parameters
    ----------
    noiseless : torch.Tensor
        ``(n_tilts, ny, nx)`` floating tilt-series, tilt axis Y.
    stats : TiltStats
        Per-tilt target curves with ``n_tilts`` equal to the stack's, usually from
        :func:`faket.noise.aggregate_tilt_stats`; ``std`` > 0 and ``sigma`` >= 0.
    sigma_scale : float, default 1.0
        Factor on ``sigma`` (0.25 for the content modality), >= 0.
    seed : int
        Seed of the ``torch.Generator`` on ``noiseless``' device that draws the noise.
        The same seed, input, dtype and device give bit-identical output.
    name : str, optional
        How errors name ``noiseless`` (e.g. its file); the message then reads
        ``"<name>: <problem>"``.

    Returns
    -------
    torch.Tensor
        ``(n_tilts, ny, nx)``, dtype and device of ``noiseless``, in the stats' grey units.
        Computed in the input's dtype (float32 for half-precision inputs).

    Raises
    ------
    faket.errors.FaketInputError
        If ``noiseless`` is not a finite floating ``(n_tilts, ny, nx)`` tensor, has a
        constant tilt (the message names the tilt indices) or its tilt count differs
        from the stats'.
    ValueError
        If ``sigma_scale`` is negative, a ``std`` is not positive, a ``sigma`` is negative
        or ``seed`` is not an integer.
    """
    _check_noiseless(noiseless, name, tensor=True)
    parts = noise_parts(noiseless, stats, sigma_scale=sigma_scale, seed=seed, name=name)
    return collect_parts(parts, noiseless)


def noise_parts(
    noiseless: TiltStack,
    stats: TiltStats,
    *,
    sigma_scale: float = 1.0,
    seed: int,
    name: str | None = None,
    device: torch.device | str | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield :func:`apply_noise`'s output as ``(first tilt, tilts)``, a part at a time.

    ``noiseless`` may be a tilt-series in a file, read a part at a time; ``device``
    (default: ``noiseless``' device, the CPU for a file) is where the parts are made.
    The other arguments are checked when it is called, each part's values as it is read.
    """
    _check_noiseless(noiseless, name, tensor=False)
    _check_noise_settings(noiseless, stats, sigma_scale, seed, name)
    if not bool((stats.sigma >= 0).all()):
        raise ValueError("every tilt's sigma must be >= 0")
    where = parts_device(noiseless, device)
    return _noise_parts(noiseless, stats, float(sigma_scale), int(seed), name, where)


def parts_device(noiseless: TiltStack, device: torch.device | str | None) -> torch.device:
    """Return where the parts of ``noiseless`` are made: ``device``, else its own (CPU)."""
    if device is not None:
        return torch.device(device)
    return noiseless.device if isinstance(noiseless, torch.Tensor) else torch.device("cpu")


def _check_noiseless(noiseless: TiltStack, name: str | None, *, tensor: bool) -> None:
    """Raise FaketInputError (naming ``name``) unless ``noiseless`` is a usable stack.

    Its shape and dtype only: the values are checked a part at a time as they are read
    (:func:`_checked_part`). With ``tensor``, it must be a :class:`torch.Tensor`.
    """
    try:
        if tensor and not isinstance(noiseless, torch.Tensor):
            raise FaketInputError(
                f"noiseless must be a torch.Tensor, got {type(noiseless).__name__}"
            )
        _check_tilt_stack(noiseless, "noiseless")
    except FaketInputError as err:
        if name is None:
            raise
        raise FaketInputError(err.problem, name) from None


def _check_noise_settings(
    noiseless: TiltStack, stats: TiltStats, sigma_scale: float, seed: int, name: str | None
) -> None:
    """Raise unless ``stats``, ``sigma_scale`` and ``seed`` suit ``noiseless`` (either model)."""
    if not isinstance(stats, TiltStats):
        raise ValueError(f"stats must be a TiltStats, got {type(stats).__name__}")
    if stats.n_tilts != noiseless.shape[0]:
        raise FaketInputError(
            f"the noise statistics describe {stats.n_tilts} tilts but the noiseless "
            f"tilt-series has {noiseless.shape[0]}",
            name,
        )
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    sigma_scale = float(sigma_scale)
    if not sigma_scale >= 0.0 or sigma_scale == float("inf"):
        raise ValueError(f"sigma_scale must be finite and >= 0, got {sigma_scale}")
    if not bool((stats.std > 0).all()):
        raise ValueError("every tilt's target std must be positive")


def _checked_part(
    noiseless: TiltStack, part: slice, name: str | None, device: torch.device
) -> torch.Tensor:
    """Read tilts ``part`` of ``noiseless`` onto ``device``; refuse NaN/Inf or constant tilts."""
    tilts = torch.as_tensor(noiseless[part]).to(device)
    bad = [part.start + i for i in _nonfinite_tilts(tilts)]
    if bad:
        raise FaketInputError(f"noiseless has NaN or infinite values in tilt(s) {bad[:10]}", name)
    _refuse_constant_tilts(tilts, name, first=part.start)
    return tilts


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Return the dtype the noise formula runs in: float32 or float64 as given, else float32."""
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def noise_field_part(
    generator: torch.Generator, tilts: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """Draw the next part of a tilt-series' white Gaussian field, the shape of ``tilts``.

    The field of a series is drawn a part of whole tilts at a time, in tilt order
    (:func:`_tilt_parts`, which depends only on the series' shape), from one generator:
    every modality, model and reader of the same series and seed gets the same field.
    On the CPU, for tilts of a multiple of 16 pixels, it is also one ``torch.randn`` of
    the whole stack (the generator's normal draws come in blocks of 16).
    """
    return torch.randn(tilts.shape, generator=generator, device=tilts.device, dtype=dtype)


def _noise_parts(
    noiseless: TiltStack,
    stats: TiltStats,
    sigma_scale: float,
    seed: int,
    name: str | None,
    device: torch.device,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield :func:`apply_noise`'s output as ``(first tilt, tilts)``, a part at a time."""
    generator = torch.Generator(device=device).manual_seed(seed)

    def per_tilt(values: torch.Tensor, part: slice, dtype: torch.dtype) -> torch.Tensor:
        return values[part].to(device=device, dtype=dtype)[:, None, None]

    for part in _tilt_parts(torch.Size(noiseless.shape)):
        tilts = _checked_part(noiseless, part, name, device)
        compute = _compute_dtype(tilts.dtype)
        signal = _standardise_or_zero(tilts.to(compute))
        noise = per_tilt(stats.sigma * sigma_scale, part, compute)
        x = per_tilt(stats.r, part, compute) * signal
        x += noise * noise_field_part(generator, tilts, compute)
        out = _standardise_or_zero(x) * per_tilt(stats.std, part, compute)
        yield part.start, (out + per_tilt(stats.mean, part, compute)).to(tilts.dtype)


def collect_parts(parts: Iterator[tuple[int, torch.Tensor]], like: torch.Tensor) -> torch.Tensor:
    """Gather ``(first tilt, tilts)`` parts into one tensor of ``like``'s shape, dtype, device."""
    out = torch.empty_like(like)
    for start, tilts in parts:
        out[start : start + tilts.shape[0]] = tilts
    return out


def make_modality(
    noiseless: torch.Tensor,
    measured: Sequence[TiltStats],
    modality: str,
    *,
    seed: int,
    name: str | None = None,
    model: str = "published",
    at: TiltAngles | None = None,
) -> torch.Tensor:
    """Make one modality (``noisy``, ``content`` or ``baseline``) of a noiseless tilt-series.

    Aggregates ``measured`` with the modality's polynomial order
    (:func:`faket.noise.aggregate_tilt_stats`) and applies the result with its
    ``sigma_scale`` (:func:`apply_noise`, or :func:`faket.noise.apply_spectral_noise` for
    the spectral model); see :data:`MODALITIES`.

    Parameters
    ----------
    noiseless : torch.Tensor
        ``(n_tilts, ny, nx)`` floating tilt-series, tilt axis Y.
    measured : sequence of TiltStats
        Per-tilt statistics of the reference tomograms, each with ``n_tilts`` tilts.
    modality : str
        A key of :data:`MODALITIES`.
    seed : int
        Seed of the noise.
    name : str, optional
        How errors name ``noiseless`` (e.g. its file), as in :func:`apply_noise`.
    model : str, default "published"
        A key of :data:`NOISE_MODELS`: ``"published"`` (scalar ``r`` and white noise of
        ``sigma``) or ``"spectral"`` (radial transfer and coloured noise; every entry of
        ``measured`` needs ``spectra``). Both draw the same white field from ``seed``.
    at : (n_tilts,) sequence of float, optional
        The tilt angles of ``noiseless`` (degrees): the fits over each reference's own
        angles are evaluated there, so references in any order, scheme or tilt count
        serve. Default: the references' angles, tilt by tilt (the same count needed).

    Returns
    -------
    torch.Tensor
        ``(n_tilts, ny, nx)``, dtype and device of ``noiseless``.

    Raises
    ------
    ValueError
        If ``modality`` or ``model`` is unknown (the message lists the valid ones), the
        spectral model lacks spectra, or as raised by
        :func:`faket.noise.aggregate_tilt_stats` and :func:`apply_noise`.
    """
    _check_noiseless(noiseless, name, tensor=True)
    parts = modality_parts(noiseless, measured, modality, seed=seed, name=name, model=model, at=at)
    return collect_parts(parts, noiseless)


def modality_parts(
    noiseless: TiltStack,
    measured: Sequence[TiltStats],
    modality: str,
    *,
    seed: int,
    name: str | None = None,
    model: str = "published",
    at: TiltAngles | None = None,
    device: torch.device | str | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Make one modality as :func:`make_modality` does, a part of whole tilts at a time.

    For series too large to hold twice: ``noiseless`` may be a tilt-series in a file
    (:class:`faket.io.tilt_stack.MrcTilts`), read a part at a time, and each part of
    the output is yielded as it is made, the same values as :func:`make_modality`'s.
    The settings are checked when it is called; each part's values as it is read
    (NaN/Inf or a constant tilt raise then, naming the tilts).

    Parameters
    ----------
    noiseless : TiltStack
        ``(n_tilts, ny, nx)`` floating tilt-series (a tensor, or one read from a file).
    measured, modality, seed, name, model, at
        As :func:`make_modality`.
    device : torch.device or str, optional
        Where the parts are made; default: ``noiseless``' device (the CPU for a file).

    Returns
    -------
    iterator of (int, torch.Tensor)
        ``(first tilt, tilts)`` in tilt order, ``tilts`` of ``(k, ny, nx)`` in the input's
        dtype (float32 from a file).
    """
    if modality not in MODALITIES:
        raise ValueError(
            f"unknown modality {modality!r}; valid modalities are {', '.join(MODALITIES)}"
        )
    if model not in NOISE_MODELS:
        raise ValueError(
            f"unknown noise model {model!r}; valid models are {', '.join(NOISE_MODELS)}"
        )
    spec = MODALITIES[modality]
    if model == "spectral":
        from faket.noise.spectral_generate import spectral_noise_parts

        missing = [i for i, s in enumerate(measured) if s.spectra is None]
        if missing:
            raise ValueError(
                f"the spectral noise model needs spectra for every reference; tomogram(s) "
                f"{missing[:10]} have none (measure them with estimate_tilt_stats(..., "
                "spectra=True))"
            )
        stats = aggregate_tilt_stats(measured, spec.order, at=at)
        return spectral_noise_parts(
            noiseless, stats, sigma_scale=spec.sigma_scale, seed=seed, name=name, device=device
        )
    stats = aggregate_tilt_stats(measured, spec.order, at=at)
    return noise_parts(
        noiseless, stats, sigma_scale=spec.sigma_scale, seed=seed, name=name, device=device
    )
