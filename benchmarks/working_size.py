"""Likeness of FAKET at the native size and at the authors' working sizes, on a dataset.

The authors' style CLI resizes every image to 1024 px before the one-step transfer. This
script stylises tomogram 0's NOISY (of a noise model) towards tomogram 1's reference at
each working size and measures the result against tomogram 2's reference (a third
tomogram: the judge never shows the style's or the content's specimen), next to the floor
(tomogram 1's reference against tomogram 2's) and NOISY itself. Times are one run each.

    .venv/bin/faket demo -o demo_output                       # 3 tomograms at 256 px
    .venv/bin/python benchmarks/working_size.py demo_output --sizes 512 1024
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from faket.evaluation.likeness import domain_auc, spectrum_log_distance
from faket.io import read_mrc
from faket.style import StyleSettings, load_backbone
from faket.style.series import stylize_tilt_series


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--sizes", type=int, nargs="*", default=[512, 1024])
    parser.add_argument("--model", default="spectral", help="noise model suffix: spectral or ''")
    parser.add_argument("--tilt-step", type=int, default=4, help="every Nth tilt (time)")
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args()
    suffix = f"_{args.model}" if args.model and args.model != "published" else ""

    def load(name: str) -> torch.Tensor:
        data = read_mrc(args.dataset / name, ndim=3).data
        return torch.from_numpy(data[:: args.tilt_step].copy())

    noisy, content = load(f"model_0/noisy{suffix}.mrc"), load(f"model_0/content{suffix}.mrc")
    style, judge = load("model_1/reference.mrc"), load("model_2/reference.mrc")
    backbone = load_backbone("vgg16-hed")

    def row(name: str, series: torch.Tensor, seconds: float | None = None) -> None:
        spectrum = spectrum_log_distance(series, judge).distance
        auc = domain_auc(series, judge).auc
        took = "" if seconds is None else f"{seconds:8.1f}"
        print(f"{name:28s} {spectrum:10.4f} {auc:8.3f} {took}", flush=True)

    print(f"{'series':28s} {'spectrum':>10s} {'AUC':>8s} {'seconds':>8s}")
    row("floor (reference 1 vs 2)", style)
    row(f"noisy{suffix}", noisy)
    for size in [None, *args.sizes]:
        start = time.perf_counter()
        result = stylize_tilt_series(
            backbone,
            noisy,
            content,
            style,
            StyleSettings(),
            precision=args.precision,
            working_size=size,
        )
        row(f"faket{suffix} at {size or 'native'}", result, time.perf_counter() - start)


if __name__ == "__main__":
    main()
