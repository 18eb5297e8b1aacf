"""Benchmark: our back-projection vs radontea's backproject_3d (the FakET reference's tool).

Both run in this process (radontea in its own worker processes) on the same pre-filtered
sinogram: a random tilt-series (61 tilts, -60..60 degrees, step 2) filtered with our
ramp, so that only the back-projection is compared. radontea is called as the reference
called it, with its own filtering and weighting off (``filtering=None,
weight_angles=False, padding=False``). Two details make the inputs identical:

- ``filtering=None`` still multiplies the spectrum by 2 pi and zeroes its DC term, i.e.
  removes each row's mean; the filtered rows are given zero mean first, so that is a no-op.
- radontea puts the rotation axis at ``(n - 1) / 2``, ours (and scikit-image's) at
  ``n // 2``: these agree for odd widths, so one zero column is appended to the even
  ``n``-wide sinogram and both back-project that ``n + 1``-wide sinogram into an
  ``(n + 1)^3`` cube. radontea's Z axis runs the other way (the reference flipped it),
  so its volume is flipped along Z before comparing.

radontea's result is then ``2 x`` ours (its scale is ``pi / n_tilts``, ours
``pi / (2 n_tilts)``); the correlation is printed with the ratio.

"ours (cold)" includes assembling the sparse operator (once per geometry), "ours (warm)"
reuses it, as a pipeline does for every tomogram after the first.

    python benchmarks/reconstruction.py                        # 61x256x256 and 61x512x512
    python benchmarks/reconstruction.py --sizes 1024 --ny 64 --reference-slices 4
                                                               # times scaled to ny = 1024
"""

from __future__ import annotations

import argparse
import resource

import numpy as np
import torch
from _timing import timed
from radontea import backproject_3d

from faket.reconstruction import backproject_tilt_series, filter_tilt_series
from faket.reconstruction._operator import _backprojection_csr

ANGLES = np.arange(-60.0, 60.0 + 1e-9, 2.0)


def prefiltered_sinogram(n: int, ny: int) -> torch.Tensor:
    """Random tilt-series (61, ny, n), ramp-filtered, rows of zero mean, one zero column added.

    The result is ``n + 1`` wide (odd), where radontea's axis and ours coincide.
    """
    tilts = torch.randn((len(ANGLES), ny, n), generator=torch.Generator().manual_seed(n))
    filtered = filter_tilt_series(tilts, "ramp")
    filtered -= filtered.mean(dim=-1, keepdim=True)
    return torch.cat([filtered, filtered.new_zeros((len(ANGLES), ny, 1))], dim=2)


def radontea_volume(sinogram: np.ndarray, ncpus: int) -> np.ndarray:
    """radontea's back-projection in our axes (z, y, x), i.e. flipped along Z."""
    volume = backproject_3d(
        sinogram,
        np.deg2rad(ANGLES),
        filtering=None,
        weight_angles=False,
        padding=False,
        ncpus=ncpus,
    )
    return volume[::-1]


def peak_gib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 2**20


def bench_size(n: int, ny: int, repeats: int, reference_slices: int, ncpus: int) -> str:
    """Time both back-projectors on a (61, ny, n) sinogram; return the table row."""
    sinogram = prefiltered_sinogram(n, ny)

    def cold() -> torch.Tensor:
        _backprojection_csr.cache_clear()
        return backproject_tilt_series(sinogram, ANGLES)

    t_cold, _ = timed(cold, repeats)
    t_warm, ours = timed(lambda: backproject_tilt_series(sinogram, ANGLES), repeats)
    ours_peak = peak_gib(resource.RUSAGE_SELF)
    n_ref = ny if reference_slices <= 0 else min(ny, reference_slices)
    ys = slice(ny // 2 - n_ref // 2, ny // 2 - n_ref // 2 + n_ref)
    part = np.ascontiguousarray(sinogram[:, ys, :].numpy(), dtype=np.float64)
    t_ref, ref = timed(lambda: radontea_volume(part, ncpus), repeats)
    ref_peak = peak_gib(resource.RUSAGE_SELF), peak_gib(resource.RUSAGE_CHILDREN)
    # Back-projection time is linear in the number of Y-slices; the operator's assembly
    # (cold - warm) is once per geometry, whatever ny.
    t_ref *= n / n_ref
    t_cold, t_warm = t_cold - t_warm + t_warm * n / ny, t_warm * n / ny
    mine = ours[:, ys, :].numpy().astype(np.float64)
    corr = np.corrcoef(mine.ravel(), ref.ravel())[0, 1]
    ratio = (mine * ref).sum() / (mine * mine).sum()
    deviation = np.abs(ref / 2 - mine).max() / np.abs(mine).max()
    note = []
    if ny != n:
        note.append(f"ours timed on {ny} Y-slices")
    if n_ref != n:
        note.append(f"radontea on {n_ref}")
    return (
        f"61x{n}x{n:<5} {t_ref:>11.2f} {t_cold:>11.2f} {t_warm:>11.2f} "
        f"{t_ref / t_cold:>9.1f}x {t_ref / t_warm:>9.1f}x {corr:>12.8f} {ratio:>6.3f} "
        f"{deviation:>9.1e} {ours_peak:>9.2f} {ref_peak[0]:>9.2f} {ref_peak[1]:>9.2f}"
        + (f"  ({', '.join(note)}; times scaled to {n} slices)" if note else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--ny", type=int, default=0, help="Y-slices to reconstruct (0: as many as the width)"
    )
    parser.add_argument(
        "--reference-slices",
        type=int,
        default=0,
        help="time radontea on this many Y-slices and scale (0: all)",
    )
    parser.add_argument("--ncpus", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; radontea with "
        f"{args.ncpus} processes; 61 tilts, output depth = width (a cube, as the reference)"
    )
    print(
        f"{'sinogram':<13} {'radontea s':>11} {'ours cold':>11} {'ours warm':>11} "
        f"{'ratio cold':>10} {'ratio warm':>10} {'correlation':>12} {'scale':>6} "
        f"{'max dev':>9} {'peak ours':>9} {'peak main':>9} {'workers':>9}"
    )
    for n in args.sizes:
        print(bench_size(n, args.ny or n, args.repeats, args.reference_slices, args.ncpus))
    print(
        "peak resident memory in GiB (getrusage, maxima so far): 'peak ours' this process "
        "after our runs of that size; 'peak main' this process after radontea's (its main "
        "process gathers the volume); 'workers' the largest radontea worker process"
    )


if __name__ == "__main__":
    main()
