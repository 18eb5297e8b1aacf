"""Benchmark: one FakET tomogram end to end through `faket simulate`, each stage timed.

A SHREC-sized specimen (default 512 x 1024 x 1024 voxels at 5 A, 61 tilts of -60..60),
the built-in microscope as the reference (of a second specimen, as the method needs),
both noise modalities, the style transfer and the reconstruction of every modality, in
this process (so the peak resident memory is the run's). The FakET part is what a user
who has a reference pays per tomogram: projection + noise + style + the FAKET
reconstruction (timed again on its own after the run, with the run's settings).

The authors' pipeline on 61 x 1024^2 on this project's machines took about 23 min for
the projection (radontea's per-slice Radon transform) and about 21 min for the style
transfer (their per-tilt loop); ``--authors-s`` sets that reference figure, and the
ratio is printed.

    python benchmarks/pipeline.py                                # SHREC-sized, 61 tilts
    python benchmarks/pipeline.py --shape 64 256 256 --voxel 20 --vesicles 0  # quick
    python benchmarks/pipeline.py --precision bf16 --threads 16  # e.g. an AMX machine
    python benchmarks/pipeline.py --shape 100 3500 3500 --voxel 10 --tilt-step 60  # 3 tilts
    python benchmarks/pipeline.py --shape 32 3500 3500 --voxel 20 --working-size 1024

Memory: each stage's peak resident memory (Linux), next to the estimate the run checks
before it starts; the largest is the run's peak.

Like the ``faket`` command, the process keeps freed memory for reuse
(:mod:`faket._runtime`); without it, glibc maps and zeroes each large activation afresh
and the style stage takes about twice as long on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from faket._runtime import (
    keep_freed_memory_for_reuse,
    peak_resident_bytes,
    release_free_memory,
    reset_peak_resident,
    returning_freed_memory,
)
from faket.config import FaketConfig
from faket.io import read_json_object
from faket.io.tilt_stack import MrcTilts
from faket.pipeline import simulate_dataset
from faket.pipeline.stages import reconstruct_series

AUTHORS_S = 23 * 60 + 21 * 60
"""The authors' projection + style transfer of 61 x 1024^2 on this project's machines."""

_CLASSES = ("ribosome", "barrel", "cage", "ring", "globule", "rod")
"""Built-in classes the particles are spread over (evenly)."""

FAKET_STAGES = ("project", "modalities", "style", "reconstruct_faket")
"""The stages of the FakET part, as timed."""


def config(args: argparse.Namespace, output: Path) -> FaketConfig:
    """The run: one tomogram, the microscope's reference of a second specimen."""
    per_class = max(1, args.particles // len(_CLASSES))
    return FaketConfig.from_dict(
        {
            "run": {
                "output": str(output),
                "n_tomograms": 1,
                "device": args.device,
                "precision": args.precision,
                "threads": args.threads,
                "seed": 0,
            },
            "phantom": {
                "shape_zyx": list(args.shape),
                "voxel_size_a": args.voxel,
                "builtin": dict.fromkeys(_CLASSES, per_class),
                "vesicles": args.vesicles,
                "fiducials": args.fiducials,
            },
            "projection": {
                "tilt_min_deg": -60,
                "tilt_max_deg": 60,
                "tilt_step_deg": args.tilt_step,
            },
            "style": {"memory_gib": args.memory_gib, "working_size": args.working_size},
            "noise": {"extra_models": []},
        }
    )


def run(args: argparse.Namespace, output: Path) -> tuple[dict[str, float], dict[str, float], int]:
    """Run the dataset; return tomogram 0's and the reference's stage seconds and peaks.

    Peaks are each stage's resident high-water mark (GiB), from the run's provenance; the
    third value is the run's memory estimate per task (bytes), made before it starts.
    """
    cfg = config(args, output)
    t0 = time.perf_counter()
    result = simulate_dataset(cfg, report=False)
    seconds = {"wall": time.perf_counter() - t0}
    assert result.plan is not None
    plan = result.plan
    seconds.update(result.timings_s[0])
    provenance = read_json_object(plan.specimens[0].folder / "provenance.json") or {}
    peaks = dict(provenance.get("peak_memory_gib", {}))
    for spec in plan.specimens[1:]:  # the reference's specimen: phase 1 only
        marker = read_json_object(spec.folder / "specimen.json") or {}
        for key, into in (("timings_s", seconds), ("peak_memory_gib", peaks)):
            into.update({f"reference specimen: {k}": v for k, v in marker.get(key, {}).items()})
    faket = MrcTilts(plan.specimens[0].folder / "faket.mrc")
    release_free_memory()  # as each stage of the run starts (StageTimer)
    reset_peak_resident()
    t0 = time.perf_counter()
    with returning_freed_memory():  # as the pipeline's reconstruction stage
        reconstruct_series(plan, faket, plan.tilt_angles_deg, plan.voxel_size_a)
    seconds["reconstruct_faket"] = time.perf_counter() - t0
    peaks["reconstruct_faket"] = round(peak_resident_bytes() / 2**30, 3)
    return seconds, peaks, plan.resources.memory_bytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[512, 1024, 1024])
    parser.add_argument("--voxel", type=float, default=5.0, help="voxel size, A")
    parser.add_argument("--particles", type=int, default=1500)
    parser.add_argument("--vesicles", type=int, default=4)
    parser.add_argument("--fiducials", type=int, default=20)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--memory-gib", type=float, default=4.0)
    parser.add_argument(
        "--working-size",
        type=int,
        default=None,
        help="style at this many pixels on the long side (the authors' CLI: 1024)",
    )
    parser.add_argument(
        "--tilt-step",
        type=float,
        default=2.0,
        help="degrees; 2: 61 tilts, 60: 3 (per-tilt figures)",
    )
    parser.add_argument("--authors-s", type=float, default=AUTHORS_S)
    parser.add_argument("--keep", type=Path, default=None, help="write the dataset here")
    args = parser.parse_args()
    keep_freed_memory_for_reuse()  # as `faket` does (faket.cli.main)
    with tempfile.TemporaryDirectory() as tmp:
        seconds, peaks, estimate = run(args, args.keep or Path(tmp) / "dataset")
    nz, ny, nx = args.shape
    n_tilts = int(round(120 / args.tilt_step)) + 1
    print(
        f"one tomogram of {nz} x {ny} x {nx} at {args.voxel:g} A, {n_tilts} tilts, {sys.platform}"
    )
    print(f"  {'stage':<34s} {'s':>8s} {'peak GiB':>9s}")
    for name, value in seconds.items():
        peak = f"{peaks[name]:9.2f}" if name in peaks else ""
        print(f"  {name:<34s} {value:8.1f} {peak}")
    part = sum(seconds.get(k, 0.0) for k in FAKET_STAGES)
    print(f"FakET part ({' + '.join(FAKET_STAGES)}): {part:.1f} s ({part / 60:.1f} min)")
    if (ny, nx) == (1024, 1024) and n_tilts == 61 and args.working_size is None:
        ratio = f"ratio authors / ours {args.authors_s / part:.1f}x"
    else:
        ratio = "no ratio: their figure is for a 1024^2 detector at full size"
    print(f"authors' projection + style of 61 x 1024^2: {args.authors_s:.0f} s; {ratio}")
    peak = max(peaks.values(), default=float("nan"))  # Linux; the stages reset the mark
    print(f"peak resident memory {peak:.2f} GiB (the run's estimate: {estimate / 2**30:.2f} GiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
