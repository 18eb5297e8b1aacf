"""Benchmark: the reference microscope vs FakET's own cost, same machine, same size.

The microscope simulates a 61 x 512 x 512 tilt-series (-60..60 degrees, step 2) of a
256 x 512 x 512 specimen (faket.phantom.demo_specimen, scaled to protein potential),
every step included (projection, ice, CTF, damage, counting, detector).

FakET's cost for the same tilt-series: the noisy and content modalities
(faket.noise.make_modality) and the style transfer (faket.style stylize_tilt_series,
vgg16-hed backbone, bf16 convolutions) are timed on --style-tilts tilts of 512^2 and
scaled linearly to 61 tilts (the style stage is per tilt). The noiseless projection that
FakET also needs is timed on its own (all 61 tilts, faket.projection) and shown as an
extra row, so the ratio is printed with and without it.

    python benchmarks/microscope.py                 # 1 microscope run, 3 style tilts
    python benchmarks/microscope.py --repeats 3     # median of 3 runs each
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from _timing import timed

from faket._runtime import keep_freed_memory_for_reuse
from faket.microscope import MicroscopeSettings, simulate_tilt_series
from faket.noise import TiltStats, make_modality
from faket.phantom import demo_specimen
from faket.projection import project_tilt_series
from faket.style import load_backbone
from faket.style.series import stylize_tilt_series

ANGLES = np.arange(-60.0, 60.0 + 1e-9, 2.0)
PROTEIN_POTENTIAL_V = 8.05
PIXEL_A = 10.0


def synthetic_stats(n_tilts: int) -> list[TiltStats]:
    """Plausible per-tilt statistics (what faket.noise would measure on a reference)."""
    index = torch.linspace(-1, 1, n_tilts, dtype=torch.float64)
    return [
        TiltStats(
            r=0.3 - 0.1 * index.square(),
            sigma=0.95 + 0.03 * index.square(),
            mean=100.0 - 30 * index.square(),
            std=12.0 - 2 * index.square(),
            tilt_angles_deg=None,
            method="paired",
            source=f"synthetic {k}",
        )
        for k in range(2)
    ]


def main() -> None:
    keep_freed_memory_for_reuse()  # as the faket command does, for both sides
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--style-tilts", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    n = args.size
    torch.manual_seed(0)
    volume, _ = demo_specimen((n // 2, n, n), seed=0)
    volume *= PROTEIN_POTENTIAL_V
    threads = torch.get_num_threads()
    print(
        f"specimen {tuple(volume.shape)} float32, {len(ANGLES)} tilts of {n}^2, "
        f"{threads} torch threads, {os.cpu_count()} CPUs"
    )

    settings = MicroscopeSettings()
    t_microscope, result = timed(
        lambda: simulate_tilt_series(volume, ANGLES, PIXEL_A, settings, seed=1), args.repeats
    )
    t_project, noiseless = timed(lambda: project_tilt_series(volume, ANGLES), args.repeats)

    k = args.style_tilts
    stats = synthetic_stats(len(ANGLES))
    few = noiseless[:k].contiguous()
    few_stats = [
        TiltStats(
            r=s.r[:k],
            sigma=s.sigma[:k],
            mean=s.mean[:k],
            std=s.std[:k],
            tilt_angles_deg=None,
            method="paired",
            source=s.source,
        )
        for s in stats
    ]
    t_noise, (noisy, content) = timed(
        lambda: (
            make_modality(few, few_stats, "noisy", seed=1),
            make_modality(few, few_stats, "content", seed=2),
        ),
        args.repeats,
    )
    model = load_backbone("vgg16-hed")
    style = result.counts[:k].contiguous()
    t_style, _ = timed(
        lambda: stylize_tilt_series(model, noisy, content, style, precision="bf16"),
        args.repeats,
    )
    scale = len(ANGLES) / k
    faket_core = (t_noise + t_style) * scale
    faket_total = faket_core + t_project
    rows = [
        ("microscope (61 tilts, everything)", t_microscope),
        (f"FakET noise, noisy + content ({k} tilts x {scale:.1f})", t_noise * scale),
        (f"FakET style bf16 ({k} tilts x {scale:.1f})", t_style * scale),
        ("FakET noise + style (scaled to 61)", faket_core),
        ("projection, 61 tilts (both need it)", t_project),
        ("FakET projection + noise + style", faket_total),
    ]
    print(f"{'stage':<46} {'seconds':>9}")
    for name, seconds in rows:
        print(f"{name:<46} {seconds:9.2f}")
    print(
        f"ratio microscope / FakET (noise + style):              {t_microscope / faket_core:6.2f}"
    )
    print(
        f"ratio microscope / FakET (projection + noise + style): {t_microscope / faket_total:6.2f}"
    )
    print(
        f"(median of {args.repeats} run(s); FakET's noise and style timed on {k} tilts and "
        f"scaled linearly to {len(ANGLES)})"
    )


if __name__ == "__main__":
    main()
