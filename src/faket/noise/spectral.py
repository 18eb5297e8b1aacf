"""Radial signal transfer and noise power per tilt: the spectral noise model's numbers.

The published model describes each standardised reference tilt ``Rs`` as ``r * Cs`` plus
white noise of variance ``sigma**2`` (``Cs`` the standardised noiseless tilt). The
spectral model generalises both numbers to rings of spatial frequency ``k``:

    ``F[Rs](k) = T(|k|) * F[Cs](k) + F[noise](k)``,  ``E |F[noise](k)|**2 = N(|k|)``

``T`` is a signed transfer (a CTF flips its sign between its zeros) and ``N`` the noise
power spectrum. This module holds the container :class:`TiltSpectra` and the ring
geometry and radial interpolation that the estimator and the generator share.

Conventions
-----------
- FFTs are orthonormal (``norm="ortho"``): ``sum |F[x]|**2 == sum x**2`` (Parseval). White
  noise of variance ``v`` has ``E |F(k)|**2 = v`` at every Fourier sample, so ``N(k) = v``
  at every ``k``, and the sum of ``N`` over all ``ny * nx`` Fourier samples of an image is
  its expected noise variance times ``ny * nx``.
- ``T`` and ``N`` are in units of the *standardised* reference tilt (zero mean, unit
  population std): for a paired estimate on an ``ny x nx`` tilt,
  ``sum_k (T(|k|)**2 |F[Cs](k)|**2 + N(|k|)) / (ny * nx) == 1`` (the variance of ``Rs``).
- Frequencies are in cycles per pixel. The ring grid starts at 0 (the DC bin, index 0)
  and runs with a fixed spacing past Nyquist (0.5) to the corner of the Fourier grid
  (``0.5 * sqrt(2)`` for even sizes): about 21 % of a square image's Fourier samples lie
  beyond radius 0.5, and a detector's fall-off there is part of what the model mimics.
- The DC bin holds a copy of the first ring: standardised images have no DC component,
  so the DC value is never used to make an image; copying keeps interpolation below the
  first ring flat.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from faket.noise._rings import interpolate_radial

__all__ = ["TiltSpectra", "resample_spectra"]


@dataclass(frozen=True, eq=False)
class TiltSpectra:
    """Per-tilt radial signal transfer ``T(k)`` and noise power ``N(k)`` of a tilt-series.

    Inputs that are not float64 tensors (lists, float32 tensors) are converted on
    construction; tensors keep their device.

    Attributes
    ----------
    frequency : torch.Tensor
        ``(n_bins,)`` float64 ring centres in cycles/pixel, strictly increasing, starting
        at 0 (the DC bin). Curves are linear between centres and constant beyond the last.
    transfer : torch.Tensor
        ``(n_tilts, n_bins)`` float64 signed radial transfer ``T(k)`` from the standardised
        noiseless tilt to the standardised reference tilt (dimensionless). A negative
        value is a contrast flip, e.g. between CTF zeros.
    noise_power : torch.Tensor
        ``(n_tilts, n_bins)`` float64 radial noise power ``N(k) >= 0`` per Fourier sample
        of an orthonormal FFT, in units of the standardised reference tilt's variance:
        white noise of variance ``v`` has ``N(k) = v`` at every ``k``.

    Notes
    -----
    Equality is identity (``eq=False``), as for :class:`faket.noise.TiltStats`.
    """

    frequency: torch.Tensor
    transfer: torch.Tensor
    noise_power: torch.Tensor

    def __post_init__(self) -> None:
        frequency = _as_float64(self.frequency, "frequency", ndim=1)
        device = frequency.device
        transfer = _as_float64(self.transfer, "transfer", ndim=2).to(device)
        noise_power = _as_float64(self.noise_power, "noise_power", ndim=2).to(device)
        if frequency.shape[0] < 2:
            raise ValueError("TiltSpectra needs at least two frequency bins")
        if float(frequency[0]) != 0.0 or not bool((frequency.diff() > 0).all()):
            raise ValueError("TiltSpectra frequency must start at 0 and increase strictly")
        for name, curves in (("transfer", transfer), ("noise_power", noise_power)):
            if curves.shape[1] != frequency.shape[0] or curves.shape[0] == 0:
                raise ValueError(
                    f"TiltSpectra {name} must have shape (n_tilts, {frequency.shape[0]}), "
                    f"got {tuple(curves.shape)}"
                )
        if transfer.shape != noise_power.shape:
            raise ValueError(
                f"TiltSpectra transfer {tuple(transfer.shape)} and noise_power "
                f"{tuple(noise_power.shape)} must have the same shape"
            )
        if not bool((noise_power >= 0).all()):
            raise ValueError("TiltSpectra noise_power must be >= 0")
        object.__setattr__(self, "frequency", frequency)
        object.__setattr__(self, "transfer", transfer)
        object.__setattr__(self, "noise_power", noise_power)

    @property
    def n_tilts(self) -> int:
        """Number of tilts the curves describe."""
        return int(self.transfer.shape[0])

    @property
    def n_bins(self) -> int:
        """Number of frequency rings."""
        return int(self.frequency.shape[0])

    def to(self, device: torch.device | str) -> TiltSpectra:
        """Return the same spectra with every tensor on ``device``."""
        return TiltSpectra(
            frequency=self.frequency.to(device),
            transfer=self.transfer.to(device),
            noise_power=self.noise_power.to(device),
        )


def _as_float64(values: object, name: str, *, ndim: int) -> torch.Tensor:
    """Return ``values`` as a finite float64 tensor with ``ndim`` axes (device kept)."""
    try:
        t = torch.as_tensor(values, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"TiltSpectra {name} must be an array of numbers") from exc
    if t.ndim != ndim:
        raise ValueError(f"TiltSpectra {name} must be {ndim}-D, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"TiltSpectra {name} contains NaN or infinite values")
    return t


def resample_spectra(spectra: TiltSpectra, frequency: torch.Tensor) -> TiltSpectra:
    """Put ``spectra`` on another ring grid by linear interpolation (ends held constant).

    Parameters
    ----------
    spectra : TiltSpectra
        Curves on their own grid.
    frequency : torch.Tensor
        ``(m,)`` new ring centres, cycles/pixel, starting at 0 and strictly increasing.

    Returns
    -------
    TiltSpectra
        ``(n_tilts, m)`` curves on ``frequency``, float64 on ``spectra``' device.
    """
    f = torch.as_tensor(frequency, dtype=torch.float64).to(spectra.frequency.device)
    return TiltSpectra(
        frequency=f,
        transfer=interpolate_radial(spectra.transfer, spectra.frequency, f),
        noise_power=interpolate_radial(spectra.noise_power, spectra.frequency, f).clamp_min(0),
    )
