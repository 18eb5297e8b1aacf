"""Benchmark: our projection vs scikit-image's radon applied per Y-slice (the reference).

Both run in this process on the same random volume and the published 61 tilts
(-60..60 degrees, step 2). Prints median times over --repeats runs, their ratio and
the largest deviation relative to the projection's range.

"ours (cold)" includes assembling the sparse operator (once per geometry), "ours (warm)"
reuses it, as a pipeline does for every tomogram after the first.

    python benchmarks/projection.py                    # 128^3 and 256^3, reference too
    python benchmarks/projection.py --sizes 1024 --reference-slices 8
                                                       # reference timed on 8 slices, scaled
"""

from __future__ import annotations

import argparse
import resource

import numpy as np
import torch
from _timing import timed
from skimage.transform import radon

from faket.projection import detector_length, project_tilt_series
from faket.projection._operator import _radon_matrix

ANGLES = np.arange(-60.0, 60.0 + 1e-9, 2.0)


def reference_projection(volume: np.ndarray, y_slices: range) -> np.ndarray:
    """Per-slice scikit-image radon, centred crop to nx, negation: (n_tilts, len(y), nx)."""
    nz, _, nx = volume.shape
    start = detector_length(nz, nx) // 2 - nx // 2
    out = np.empty((len(ANGLES), len(y_slices), nx), dtype=np.float32)
    for i, y in enumerate(y_slices):
        out[:, i, :] = -radon(volume[:, y, :], theta=ANGLES, circle=False)[start : start + nx].T
    return out


def bench_size(n: int, repeats: int, reference_slices: int) -> str:
    """Time both approaches on a random n^3 volume; return the table row."""
    volume = torch.rand((n, n, n), generator=torch.Generator().manual_seed(n))

    def cold() -> torch.Tensor:
        _radon_matrix.cache_clear()
        return project_tilt_series(volume, ANGLES)

    t_cold, _ = timed(cold, repeats)
    t_warm, ours = timed(lambda: project_tilt_series(volume, ANGLES), repeats)
    n_ref = n if reference_slices <= 0 else min(n, reference_slices)
    ys = range(n // 2 - n_ref // 2, n // 2 - n_ref // 2 + n_ref)
    t_ref, ref = timed(lambda: reference_projection(volume.numpy(), ys), repeats)
    t_ref *= n / n_ref
    deviation = np.abs(ours[:, ys.start : ys.stop, :].numpy() - ref).max() / np.ptp(ref)
    return (
        f"{n:>5}^3 {t_ref:>12.2f} {t_cold:>12.2f} {t_warm:>12.2f} "
        f"{t_ref / t_cold:>10.1f}x {t_ref / t_warm:>10.1f}x {deviation:>14.1e}"
        + ("" if n_ref == n else f"  (reference: {n_ref} slices, scaled)")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--reference-slices",
        type=int,
        default=0,
        help="time the reference on this many Y-slices and scale to the volume (0: all)",
    )
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, 61 tilts, float32")
    header = f"{'size':>6} {'reference s':>12} {'ours cold s':>12} {'ours warm s':>12}"
    print(header + f" {'ratio cold':>11} {'ratio warm':>11} {'max dev/range':>14}")
    for n in args.sizes:
        print(bench_size(n, args.repeats, args.reference_slices))
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak resident memory of this process: {peak_gib:.1f} GiB")


if __name__ == "__main__":
    main()
