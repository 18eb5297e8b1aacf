"""Per-tilt noise statistics of a reference tilt-series, measured against its noiseless twin.

FakET models each reference tilt ``P`` as a scaled copy of the noiseless projection ``C``
of the same content plus white noise. After standardising both images (zero mean, unit
population standard deviation), ``Ps = r * Cs + residual``; the scale ``r`` and the
residual's standard deviation ``sigma`` summarise how much of the reference is signal and
how much is noise. With the reference tilt's own ``mean`` and ``std`` they are everything
the noise stage needs to turn a noiseless tilt-series into a realistic noisy one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from faket.conventions import TiltAngles, TiltStack, tilt_parts
from faket.errors import FaketInputError
from faket.noise.spectral import TiltSpectra

__all__ = ["METHODS", "TiltStats", "concatenate_tilt_stats", "estimate_tilt_stats"]

METHODS = ("paired", "unlabelled", "aggregated", "even-odd")
"""How a :class:`TiltStats` was obtained: against a noiseless counterpart, from the
reference alone (power spectrum), as polynomial fits averaged over tomograms, or with the
noise measured from the reference's even/odd half-sets."""

_FIELDS = ("r", "sigma", "mean", "std")


@dataclass(frozen=True, eq=False)
class TiltStats:
    """Per-tilt measurements of one reference tilt-series.

    All curves are 1-D float64 tensors of length ``n_tilts``, one value per tilt in the
    tilt-series' image order. Inputs that are not float64 tensors (lists, float32 tensors)
    are converted on construction; tensors keep their device.

    Attributes
    ----------
    r : torch.Tensor
        ``(n_tilts,)`` float64. Scale of the standardised noiseless tilt in the
        standardised reference tilt (their Pearson correlation for paired estimates).
        Dimensionless.
    sigma : torch.Tensor
        ``(n_tilts,)`` float64. Standard deviation of the noise in the standardised
        reference tilt. Dimensionless (units of the reference tilt's std).
    mean : torch.Tensor
        ``(n_tilts,)`` float64. Mean of each reference tilt, in the reference's grey units.
    std : torch.Tensor
        ``(n_tilts,)`` float64. Population standard deviation of each reference tilt, in
        the reference's grey units.
    tilt_angles_deg : torch.Tensor or None
        ``(n_tilts,)`` float64 tilt angles in degrees, when known. The scalar curves'
        fits use the tilt index; the spectra's fits use these angles.
    method : str
        One of :data:`METHODS`: ``"paired"``, ``"unlabelled"``, ``"aggregated"`` or
        ``"even-odd"``.
    source : str
        Free text saying where the numbers come from (e.g. a file name).
    spectra : TiltSpectra or None
        Per-tilt radial signal transfer and noise power (the spectral noise model), with
        the same ``n_tilts``; None when not measured.

    Notes
    -----
    Equality is identity (``eq=False``): tensors have no single truth value, so compare
    the fields with :func:`torch.equal` instead.
    """

    r: torch.Tensor
    sigma: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    tilt_angles_deg: torch.Tensor | None = None
    method: str = "paired"
    source: str = ""
    spectra: TiltSpectra | None = None

    def __post_init__(self) -> None:
        for name in _FIELDS:
            object.__setattr__(self, name, _as_curve(getattr(self, name), name))
        n = self.r.shape[0]
        lengths = {name: getattr(self, name).shape[0] for name in _FIELDS}
        if self.tilt_angles_deg is not None:
            angles = _as_curve(self.tilt_angles_deg, "tilt_angles_deg")
            object.__setattr__(self, "tilt_angles_deg", angles)
            lengths["tilt_angles_deg"] = angles.shape[0]
        if len(set(lengths.values())) != 1:
            found = ", ".join(f"{k}={v}" for k, v in lengths.items())
            raise ValueError(f"TiltStats curves must all have the same length, got {found}")
        if n == 0:
            raise ValueError("TiltStats needs at least one tilt")
        if self.method not in METHODS:
            raise ValueError(f"TiltStats method must be one of {METHODS}, got {self.method!r}")
        if not isinstance(self.source, str):
            raise ValueError(f"TiltStats source must be a string, got {type(self.source)}")
        if self.spectra is not None:
            if not isinstance(self.spectra, TiltSpectra):
                raise ValueError(
                    f"TiltStats spectra must be a TiltSpectra or None, got {type(self.spectra)}"
                )
            if self.spectra.n_tilts != n:
                raise ValueError(
                    f"TiltStats spectra describe {self.spectra.n_tilts} tilts, the curves {n}"
                )

    @property
    def n_tilts(self) -> int:
        """Number of tilts the curves describe."""
        return int(self.r.shape[0])


def _as_curve(values: object, name: str) -> torch.Tensor:
    """Return ``values`` as a finite 1-D float64 tensor (same device if it is a tensor)."""
    try:
        t = torch.as_tensor(values, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"TiltStats {name} must be a 1-D sequence of numbers") from exc
    if t.ndim != 1:
        raise ValueError(f"TiltStats {name} must be 1-D, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"TiltStats {name} contains NaN or infinite values")
    return t


def _as_angles(
    tilt_angles_deg: TiltAngles | None, n_tilts: int, device: torch.device
) -> torch.Tensor | None:
    """Check tilt angles against ``n_tilts`` and return them as float64 on ``device``."""
    if tilt_angles_deg is None:
        return None
    angles = torch.as_tensor(tilt_angles_deg, dtype=torch.float64, device=device)
    if angles.ndim != 1 or angles.shape[0] != n_tilts:
        raise FaketInputError(
            f"got {angles.numel()} tilt angles for a tilt-series of {n_tilts} tilts"
        )
    return angles


def _check_tilt_series(x: torch.Tensor, name: str) -> None:
    """Raise FaketInputError unless ``x`` is a finite, floating ``(n_tilts, ny, nx)`` tensor."""
    if not isinstance(x, torch.Tensor):
        raise FaketInputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    _check_tilt_stack(x, name)
    bad = _nonfinite_tilts(x)
    if bad:
        raise FaketInputError(f"{name} has NaN or infinite values in tilt(s) {bad[:10]}")


def _check_tilt_stack(x: TiltStack, name: str) -> None:
    """Raise FaketInputError unless ``x`` is a non-empty ``(n_tilts, ny, nx)`` floating stack.

    A tensor or one read from a file (its values are not read here).
    """
    if not isinstance(x, torch.Tensor) and not hasattr(x, "shape"):
        raise FaketInputError(
            f"{name} must be a torch.Tensor or a tilt stack, got {type(x).__name__}"
        )
    if len(x.shape) != 3:
        raise FaketInputError(
            f"{name} must be a tilt-series of shape (n_tilts, ny, nx), got shape {tuple(x.shape)}"
        )
    if isinstance(x, torch.Tensor) and not x.is_floating_point():
        raise FaketInputError(f"{name} must have a floating-point dtype, got {x.dtype}")
    if min(x.shape) == 0:
        raise FaketInputError(f"{name} is empty (shape {tuple(x.shape)})")


_FINITE_PART_VALUES = 2**22
"""Values one part of the finite check reads (``torch.isfinite`` of a whole detector-scale
series holds about 1.75 copies of it: 4.9 GiB for 61 x 3500^2)."""


def _nonfinite_tilts(x: torch.Tensor) -> list[int]:
    """Return the indices of the tilts of ``x`` that hold NaN or Inf, a part at a time."""
    bad: list[int] = []
    for part in tilt_parts(x.shape, _FINITE_PART_VALUES):
        finite = torch.isfinite(x[part]).flatten(1).all(dim=1)
        bad += (torch.nonzero(~finite).flatten() + part.start).tolist()
    return bad


def _constant_tilts(x: torch.Tensor) -> torch.Tensor:
    """Return a ``(n_tilts,)`` bool mask of the tilts whose pixels are all equal.

    Exact equality of the extremes, not ``std == 0``: the std of a constant image
    computed in floating point can come out as a tiny non-zero rounding residue.
    """
    flat = x.flatten(1)
    return flat.amax(dim=1) == flat.amin(dim=1)


def _standardise64(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Standardise each tilt in float64; return ``(standardised, mean, std)``.

    Means and population stds are ``(n_tilts,)``. Tilts must not be constant.
    """
    x64 = x.to(torch.float64)
    mean = x64.mean(dim=(-2, -1))
    std = x64.std(dim=(-2, -1), correction=0)
    return (x64 - mean[:, None, None]) / std[:, None, None], mean, std


def estimate_tilt_stats(
    reference: torch.Tensor,
    noiseless: torch.Tensor,
    *,
    tilt_angles_deg: TiltAngles | None = None,
    spectra: bool = False,
) -> TiltStats:
    """Measure per-tilt signal scale ``r``, noise level ``sigma``, mean and std.

    For each tilt, both images are standardised (zero mean, unit population std): ``Ps``
    and ``Cs``. Then ``r`` is the scale that minimises ``std(Ps - r * Cs)`` and ``sigma``
    is the standard deviation of the residual ``Ps - r * Cs``.

    Why no search is needed: both images have zero mean, so
    ``var(Ps - a * Cs) = var(Ps) - 2 a cov(Ps, Cs) + a**2 var(Cs) = 1 - 2 a rho + a**2``
    with ``rho = mean(Ps * Cs)`` the Pearson correlation. This parabola in ``a`` has its
    minimum at ``a = rho``, so ``r`` is exactly the correlation coefficient. The minimum
    value is ``1 - r**2``, so the paired estimates satisfy ``r**2 + sigma**2 == 1`` (up to
    rounding); ``sigma`` is nevertheless computed from the residual itself.

    Parameters
    ----------
    reference : torch.Tensor
        ``(n_tilts, ny, nx)`` floating tilt-series of the microscope to mimic, tilt axis Y,
        in its own grey units.
    noiseless : torch.Tensor
        ``(n_tilts, ny, nx)`` noiseless projections of the same content (same shape,
        tilts in the same order). Any floating dtype and device; sums are taken in float64.
    tilt_angles_deg : torch.Tensor or sequence of float, optional
        ``(n_tilts,)`` tilt angles in degrees, stored with the result.
    spectra : bool, default False
        Also measure the radial transfer and noise power per tilt (the spectral model,
        :func:`faket.noise.estimate_tilt_spectra` with its default settings) from the
        same standardised images. ``r`` and ``sigma`` are the same either way.

    Returns
    -------
    TiltStats
        ``method="paired"``; ``r`` and ``sigma`` dimensionless, ``mean`` and ``std`` in the
        reference's grey units (population std). float64, on ``reference``'s device.
        ``spectra`` is a :class:`faket.noise.TiltSpectra` when asked for, else None.

    Raises
    ------
    faket.errors.FaketInputError
        If the shapes differ, a tensor is not a finite floating ``(n_tilts, ny, nx)``
        tilt-series, a tilt of either input is constant (its std is 0; the message names
        the tilt indices), or the tilt angles do not match the tilt count.

    Notes
    -----
    Memory: a few float64 copies of the stack. For very large stacks call it on chunks of
    tilts; every tilt is measured independently, so the results concatenate exactly.
    """
    _check_pair(reference, noiseless, "r and sigma")
    angles = _as_angles(tilt_angles_deg, reference.shape[0], reference.device)
    p, mean, std = _standardise64(reference)
    c, _, _ = _standardise64(noiseless.to(reference.device))
    r = (p * c).mean(dim=(-2, -1))
    sigma = (p - r[:, None, None] * c).std(dim=(-2, -1), correction=0)
    found = None
    if spectra:
        from faket.noise.spectral_estimate import spectra_of_standardised

        found = spectra_of_standardised(p, c)
    return TiltStats(
        r=r,
        sigma=sigma,
        mean=mean,
        std=std,
        tilt_angles_deg=angles,
        method="paired",
        spectra=found,
    )


def concatenate_tilt_stats(parts: list[TiltStats]) -> TiltStats:
    """Join the statistics of consecutive parts of one tilt-series, in order.

    Every tilt is measured on its own, so measuring a series a part of its tilts at a
    time and joining the parts gives the statistics of the whole series.

    Parameters
    ----------
    parts : list of TiltStats
        The parts, in tilt order; one method and source, all with tilt angles or none,
        all with spectra on the same rings or none.

    Returns
    -------
    TiltStats
        One entry per tilt of every part, in order.
    """
    if not parts:
        raise ValueError("concatenate_tilt_stats needs at least one part")
    first = parts[0]
    if any(q.method != first.method or q.source != first.source for q in parts):
        raise ValueError("the parts come from different methods or sources")
    angles = [q.tilt_angles_deg for q in parts]
    if any(a is None for a in angles) and not all(a is None for a in angles):
        raise ValueError("some parts have tilt angles and some do not")
    spectra = None
    if any(q.spectra is not None for q in parts):
        found = [q.spectra for q in parts]
        if any(f is None for f in found):
            raise ValueError("some parts have spectra and some do not")
        rings = [f.frequency for f in found if f is not None]
        if any(not torch.equal(r, rings[0]) for r in rings):
            raise ValueError("the parts' spectra are on different frequency rings")
        spectra = TiltSpectra(
            rings[0],
            torch.cat([f.transfer for f in found if f is not None]),
            torch.cat([f.noise_power for f in found if f is not None]),
        )
    fields = {name: torch.cat([getattr(q, name) for q in parts]) for name in _FIELDS}
    return TiltStats(
        **fields,
        tilt_angles_deg=None
        if angles[0] is None
        else torch.cat([a for a in angles if a is not None]),
        method=first.method,
        source=first.source,
        spectra=spectra,
    )


def _check_pair(reference: torch.Tensor, noiseless: torch.Tensor, what: str) -> None:
    """Raise FaketInputError unless the two tilt-series form a valid training pair.

    ``what`` names the quantities that a constant tilt leaves undefined.
    """
    _check_tilt_series(reference, "reference")
    _check_tilt_series(noiseless, "noiseless")
    if reference.shape != noiseless.shape:
        raise FaketInputError(
            f"reference shape {tuple(reference.shape)} differs from noiseless shape "
            f"{tuple(noiseless.shape)}; they must show the same tilts of the same content"
        )
    for name, x in (("reference", reference), ("noiseless", noiseless)):
        constant = _constant_tilts(x)
        if bool(constant.any()):
            bad = torch.nonzero(constant).flatten().tolist()
            raise FaketInputError(
                f"{name} tilt(s) {bad[:10]} are constant images (std 0); "
                f"{what} are undefined for them"
            )
