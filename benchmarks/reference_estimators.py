"""Benchmark: noise statistics of a reference without its noiseless twin, on the microscope.

The built-in microscope (default settings: counting detector, 120 e-/Å^2 over the tilts,
misalignment, ice, damage) images a phantom made as ``faket simulate`` makes it
(:func:`faket.pipeline.stages.prepare_specimen`'s calls: the default config's particles,
vesicles and fiducials, ``faket.projection`` for the noiseless projections). Each
estimator sees the microscope's counts; the truth is the paired estimator
(:func:`faket.noise.estimate_tilt_stats` with spectra) against the noiseless projections:

- ``paired``: against the projections as the pipeline pairs them;
- ``aligned``: against the projections shifted by the misalignment the microscope applied
  to each tilt (its ``TiltRecord``). No estimator that sees the reference alone can see
  that shift, which lowers the paired ``r`` of some tilts by up to 0.2; ``aligned`` is
  what the paired estimator measures on a tilt-series aligned to its twin.

Estimators (one process, same data):

- ``old band``: :func:`faket.noise.estimate_tilt_stats_unlabelled` (white noise read at
  0.7-0.95 of Nyquist, ``r = sqrt(1 - sigma^2)``);
- ``unlabelled``: :func:`faket.noise.estimate_reference_stats` ``method="unlabelled"``,
  ``noiseless_power`` from the noiseless projections of ANOTHER specimen (seed + 100,
  same settings), as the pipeline would pass its own; ``unlab. 1/k^2``: the default
  power law instead;
- ``even-odd``: ``method="even-odd"``; the halves split the microscope's electrons by
  binomial thinning (p = 0.5) of the counts recovered through its noise transfer
  (``counts = NTF * hits``; the NTF has no zero), so ``even + odd`` is the reference.

Printed per case: ``|r_est - r|`` max and median over tilts against both truths;
``sigma`` against the true noise share ``std(counts - expected) / std(counts)``; the
relative error of ``N(k)`` over 0.05-0.45 cycles/pixel against the aligned paired ``N``
and against the true shot noise's spectrum (``counts - expected``, same rings), all
averaged over blocks of 0.025 cycles/pixel first (a paired ring of a 256-px tilt has
10-20 % noise of its own), median and max over tilts and blocks. The paired ``N`` also
holds the signal that is not linear in the noiseless projection (the microscope's exit
wave is not a weak phase object: its quadratic terms, ice); no noise estimator sees that
as noise, which is why ``N vs shot`` is shown too.

Settings of the estimators were chosen on the tuning cases (``--cases tune``: seeds 0-3);
the default cases use other seeds, defoci and a 7.3 Å pixel.

    python benchmarks/reference_estimators.py                 # validation cases
    python benchmarks/reference_estimators.py --cases tune    # the tuning cases
    python benchmarks/reference_estimators.py --tilts 21      # fewer tilts, faster
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np
import torch

from faket.config import FaketConfig
from faket.microscope import MicroscopeSettings, detector_transfer, simulate_tilt_series
from faket.noise import (
    TiltStats,
    estimate_reference_stats,
    estimate_tilt_stats,
    estimate_tilt_stats_unlabelled,
    noiseless_power_spectrum,
    resample_spectra,
)
from faket.phantom import build_specimen
from faket.pipeline.stages import particle_classes
from faket.projection import project_tilt_series

CASES = {
    "tune": [(0, 10.0, 3.0), (2, 10.0, 5.0), (1, 7.3, 3.0), (3, 7.3, 2.0)],
    "validate": [(10, 10.0, 3.0), (11, 10.0, 4.0), (12, 7.3, 3.0), (13, 7.3, 5.0)],
}
"""(seed, pixel size Å, defocus µm) per case."""

BAND = (0.05, 0.45)
BLOCK = 0.025


@dataclass
class Case:
    """One simulated reference and everything measured on it."""

    label: str
    counts: torch.Tensor
    expected: torch.Tensor
    paired: TiltStats
    aligned: TiltStats
    similar: torch.Tensor
    even: torch.Tensor
    odd: torch.Tensor
    pixel_size_a: float


def grandmodel(seed: int, pixel_size_a: float, angles: list[float]) -> torch.Tensor:
    """Return the volume of the default config's phantom (as prepare_specimen builds it)."""
    config = FaketConfig()
    p = config.phantom.model_copy(update={"voxel_size_a": pixel_size_a})
    config = config.model_copy(update={"phantom": p})
    specimen = build_specimen(
        particle_classes(config),
        p.shape_zyx,
        pixel_size_a,
        slab_voxels=p.slab_voxels,
        n_vesicles=p.vesicles,
        vesicle_radius_a=(10 * p.vesicle_radius_nm[0], 10 * p.vesicle_radius_nm[1]),
        n_fiducials=p.fiducials,
        seed=seed,
    )
    return torch.from_numpy(specimen.grandmodel)


def shift(images: torch.Tensor, dy: float, dx: float) -> torch.Tensor:
    """Move an image's content by ``(+dy, +dx)`` pixels (Fourier shift, as the microscope)."""
    fy = torch.fft.fftfreq(images.shape[-2], dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(images.shape[-1], dtype=torch.float64)[None, :]
    ramp = torch.exp(-2j * math.pi * (fy * dy + fx * dx))
    return torch.fft.ifft2(torch.fft.fft2(images.to(torch.float64)) * ramp).real


def split_counts(
    counts: torch.Tensor, blur_px: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split the counting detector's electrons into two halves by binomial thinning."""
    c = counts.to(torch.float64)
    _, ntf = detector_transfer(tuple(c.shape[-2:]), blur_px, like=c)
    hits = torch.fft.ifft2(torch.fft.fft2(c) / ntf).real.round().clamp_min(0.0)
    g = torch.Generator().manual_seed(seed)
    even = torch.binomial(hits, torch.full_like(hits, 0.5), generator=g)

    def detect(h: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifft2(torch.fft.fft2(h) * ntf).real

    return detect(even), detect(hits - even)


def make_case(seed: int, pixel_size_a: float, defocus_um: float, angles: list[float]) -> Case:
    volume = grandmodel(seed, pixel_size_a, angles)
    noiseless = project_tilt_series(volume, angles)
    settings = MicroscopeSettings(
        slab_nm=volume.shape[0] * pixel_size_a / 10, defocus_um=defocus_um
    )
    result = simulate_tilt_series(volume, angles, pixel_size_a, settings, seed=seed + 1)
    aligned = torch.stack(
        [shift(noiseless[i], t.shift_y_px, t.shift_x_px) for i, t in enumerate(result.tilts)]
    )
    similar = project_tilt_series(grandmodel(seed + 100, pixel_size_a, angles), angles)
    even, odd = split_counts(result.counts, settings.detector_blur_px, seed + 2)
    return Case(
        label=f"seed {seed}, {pixel_size_a:g} A, {defocus_um:g} um",
        counts=result.counts,
        expected=result.noiseless,
        paired=estimate_tilt_stats(result.counts, noiseless, spectra=True),
        aligned=estimate_tilt_stats(result.counts, aligned, spectra=True),
        similar=similar,
        even=even,
        odd=odd,
        pixel_size_a=pixel_size_a,
    )


def estimates(case: Case) -> dict[str, TiltStats]:
    kw = {"pixel_size_a": case.pixel_size_a, "tilt_angles_deg": None}
    similar = noiseless_power_spectrum(case.similar)
    return {
        "old band": estimate_tilt_stats_unlabelled(case.counts),
        "unlabelled": estimate_reference_stats(
            case.counts, method="unlabelled", noiseless_power=similar, **kw
        ),
        "unlab. 1/k^2": estimate_reference_stats(case.counts, method="unlabelled", **kw),
        "even-odd": estimate_reference_stats(
            case.counts,
            method="even-odd",
            even=case.even,
            odd=case.odd,
            noiseless_power=similar,
            **kw,
        ),
    }


def block_errors(
    estimate: TiltStats, frequency: torch.Tensor, n_true: torch.Tensor
) -> torch.Tensor:
    """Relative errors of N per tilt and block of 0.025 cycles/px in the band (flattened)."""
    assert estimate.spectra is not None
    f = frequency
    n_est = resample_spectra(estimate.spectra, f).noise_power
    out = []
    for lo in np.arange(BAND[0], BAND[1] - 1e-9, BLOCK):
        ring = (f >= lo) & (f < lo + BLOCK)
        out.append(n_est[:, ring].mean(1) / n_true[:, ring].mean(1) - 1)
    return torch.stack(out, 1).abs().flatten()


def noise_share(case: Case) -> torch.Tensor:
    noise = case.counts.to(torch.float64) - case.expected.to(torch.float64)
    return noise.std(dim=(-2, -1)) / case.counts.to(torch.float64).std(dim=(-2, -1))


def shot_noise_power(case: Case) -> tuple[torch.Tensor, torch.Tensor]:
    """The true noise spectrum ``counts - expected`` in units of the standardised tilt."""
    frequency, power = noiseless_power_spectrum(case.counts.double() - case.expected.double())
    return frequency, power * noise_share(case).square()[:, None]


def row(name: str, est: TiltStats, case: Case) -> tuple[str, dict[str, torch.Tensor]]:
    d_al = (est.r - case.aligned.r).abs()
    d_pa = (est.r - case.paired.r).abs()
    d_sig = (est.sigma - noise_share(case)).abs()
    errors = {"r_al": d_al, "r_pa": d_pa, "sigma": d_sig}
    cells = [
        f"{name:>13}",
        f"{d_al.max():6.3f} {d_al.median():6.3f}",
        f"{d_pa.max():6.3f} {d_pa.median():6.3f}",
        f"{d_sig.max():6.3f}",
    ]
    if est.spectra is not None:
        assert case.aligned.spectra is not None
        aligned = case.aligned.spectra
        errors["N"] = block_errors(est, aligned.frequency, aligned.noise_power)
        errors["N_shot"] = block_errors(est, *shot_noise_power(case))
        cells.append(f"{errors['N'].median():6.3f} {errors['N'].max():6.3f}")
        cells.append(f"{errors['N_shot'].median():6.3f} {errors['N_shot'].max():6.3f}")
    else:
        cells.append(f"{'-':>6} {'-':>6} | {'-':>6} {'-':>6}")
    return " | ".join(cells), errors


HEADER = (
    f"{'estimator':>13} | {'|dr| vs aligned':^13} | {'|dr| vs paired':^13} | "
    f"{'|dsig|':>6} | {'N vs aligned':^13} | {'N vs shot':^13}\n"
    f"{'':>13} | {'max':>6} {'median':>6} | {'max':>6} {'median':>6} | {'max':>6} | "
    f"{'median':>6} {'max':>6} | {'median':>6} {'max':>6}"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", choices=sorted(CASES), default="validate")
    parser.add_argument("--tilts", type=int, default=41, help="tilts from -60 to 60 degrees")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    angles = np.linspace(-60.0, 60.0, args.tilts).tolist()
    print(
        f"Built-in microscope, default settings, {args.tilts} tilts -60..60 deg, "
        f"default phantom (96 x 256 x 256 voxels). Errors per tilt; N over "
        f"{BAND[0]}-{BAND[1]} cycles/px in blocks of {BLOCK}; sigma vs the true noise share."
    )
    pooled: dict[str, dict[str, list[torch.Tensor]]] = {}
    for seed, pixel_size_a, defocus_um in CASES[args.cases]:
        case = make_case(seed, pixel_size_a, defocus_um, angles)
        print(
            f"\n{case.label}: paired r {case.paired.r.min():.2f}-{case.paired.r.max():.2f}, "
            f"aligned r {case.aligned.r.min():.2f}-{case.aligned.r.max():.2f}"
        )
        print(HEADER)
        for name, est in estimates(case).items():
            line, errors = row(name, est, case)
            print(line)
            for key, values in errors.items():
                pooled.setdefault(name, {}).setdefault(key, []).append(values)
    print(f"\nAll {args.cases} cases pooled (max / median over every tilt, block):")
    for name, errors in pooled.items():
        cells = [f"{name:>13}"]
        for key in ("r_al", "r_pa", "sigma", "N", "N_shot"):
            if key in errors:
                v = torch.cat(errors[key])
                within = (
                    f" ({(v <= 0.2).double().mean():.0%} <= 0.2)" if key.startswith("N") else ""
                )
                cells.append(f"{key} {v.max():.3f} / {v.median():.3f}{within}")
        print("  ".join(cells))


if __name__ == "__main__":
    main()
