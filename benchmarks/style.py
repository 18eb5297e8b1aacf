"""Benchmark: the FakET style transfer vs the plain per-tilt reference implementation.

Both run in this process on the same random images with the default backbone
(vgg16-hed) and the published settings (one Adam step). The reference ("oracle") is
written plainly, as the published code works: one tilt at a time, a 3-channel float32
image in the default memory layout, torch Adam and the EMA. Ours: batched over tilts,
channels-last, the closed-form step, in fp32 and in bf16 (convolutions only).

Like the ``faket`` command, the process keeps freed memory for reuse
(:mod:`faket._runtime`), which serves the oracle as well as ours.

A calibration times this machine's 3x3 convolutions to give a FLOP-bound time per tilt,
and the FLOP count per tilt-series is turned into an estimate for an H100.

    python benchmarks/style.py                   # 512^2 and 1024^2, 3 runs each
    python benchmarks/style.py --full            # also 61 x 1024^2 in bf16, peak RSS

Tiling (fp32; this CPU emulates bf16), each with ``--threads``:

    python benchmarks/style.py --tiled --sizes 1024 2048 --budget-gib 4 6
        untiled vs tiled in one process (interleaved, medians of --repeats): the plans
        chosen for each --budget-gib (auto), --tile 1024 and --tile 512 as faket style runs
        them, and the whole network in tiles of 1024 / 512 (the earlier scheme); time
        ratios and each plan's peak RSS (measured in a child process) against its
        estimate (plan_bytes).
    python benchmarks/style.py --memory --sizes 1024 2048
        the memory estimate against the measured peak RSS, plan by plan (child processes).
    python benchmarks/style.py --large
        one 3500 x 3500 tilt through `faket style --memory-gib 3` (peak RSS of the
        command), and a 5760 x 4092 style against a 512 x 512 tilt (--memory-gib 2).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _timing import median_seconds

from faket._runtime import heap_trimmer, keep_freed_memory_for_reuse, release_free_memory
from faket.style import StyleSettings, load_backbone, stylize_batch
from faket.style.backbones import VGGFeatures
from faket.style.series import plan_bytes, stylize_tilt_series, transfer_plan
from faket.style.tiling import TilePlan

H100_BF16_DENSE_TFLOPS = 989.0  # H100 SXM, dense bf16 tensor-core peak
H100_REALISTIC_FRACTION = 0.4  # a convolution-heavy workload rarely exceeds ~40 % of peak


def oracle(model: VGGFeatures, initial, content, style, settings: StyleSettings):
    """The plain reference: per tilt, 3-channel float32 image, torch Adam + EMA."""

    def gram(f):
        m = f.flatten(2)
        return m @ m.transpose(1, 2) / m.shape[-1]

    def scaled_mse(a, b):
        d = a - b
        return d.pow(2).sum() / (d.abs().sum() + 1e-8)

    total = sum(settings.style_layer_weights)
    weights = [w / total for w in settings.style_layer_weights]
    layers = [settings.content_layer, *settings.style_layers]
    out = []
    for i in range(initial.shape[0]):
        x = initial[i][None, None].repeat(1, 3, 1, 1).requires_grad_(True)
        with torch.no_grad():
            c = model(content[i][None, None].repeat(1, 3, 1, 1), [settings.content_layer])
            s = model(style[i][None, None].repeat(1, 3, 1, 1), settings.style_layers)
            targets = {name: gram(s[name]) for name in settings.style_layers}
        optimiser = torch.optim.Adam([x], lr=settings.step_size)
        decay = settings.ema_decay
        value, accum = (1 - decay) * x.detach().clone(), decay
        for _ in range(settings.iterations):
            f = model(x, layers)
            loss = scaled_mse(f[settings.content_layer], c[settings.content_layer])
            for name, w in zip(settings.style_layers, weights, strict=True):
                loss = loss + w * scaled_mse(gram(f[name]), targets[name])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                x.clamp_(0, 1)
            value, accum = decay * value + (1 - decay) * x.detach(), accum * decay
        out.append((value / (1 - accum)).mean(1)[0])
    return torch.stack(out)


def conv_macs(model: VGGFeatures, ny: int, nx: int, last: str) -> float:
    """Multiply-accumulates of the convolutions up to layer ``last`` for one image."""
    macs, i = 0.0, 0
    stop = model.names.index(last)
    for b, n in enumerate(model.blocks):
        h, w = ny >> b, nx >> b
        for _ in range(n):
            conv = model.conv(i)
            macs += h * w * conv.in_channels * conv.out_channels * 9
            if i == stop:
                return macs
            i += 1
    return macs


def nst_flops_per_tilt(model: VGGFeatures, ny: int, nx: int, settings: StyleSettings) -> float:
    """FLOPs of one tilt: style and image forward to the deepest style layer, content
    forward to the content layer, and the input gradient (about one more image forward)."""
    deepest = max(settings.style_layers, key=model.names.index)
    image = conv_macs(model, ny, nx, deepest)
    content = conv_macs(model, ny, nx, settings.content_layer)
    return 2 * (image + image + content + image * settings.iterations)


def calibrate(precision: str) -> float:
    """Return this machine's 3x3 convolution throughput in FLOP/s (128 -> 128, 256^2)."""
    x = torch.rand(1, 128, 256, 256).contiguous(memory_format=torch.channels_last)
    w = torch.rand(128, 128, 3, 3).contiguous(memory_format=torch.channels_last)
    flops = 2 * 128 * 128 * 9 * 256 * 256
    context = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if precision == "bf16"
        else torch.autocast("cpu", enabled=False)
    )
    times = []
    with torch.no_grad(), context:
        for _ in range(6):
            t0 = time.perf_counter()
            F.conv2d(x, w, padding=1)
            times.append(time.perf_counter() - t0)
    return flops / statistics.median(times[1:])


def full_run() -> None:
    """61 x 1024^2 in bf16 through the whole stage; prints time and peak RSS."""
    model = load_backbone("vgg16-hed")
    g = torch.Generator().manual_seed(0)
    stacks = [torch.rand(61, 1024, 1024, generator=g) for _ in range(3)]
    trim = heap_trimmer(2 * 2**30)  # as faket style does with its default budget
    t0 = time.perf_counter()
    stylize_tilt_series(model, *stacks, precision="bf16", progress=trim)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"61 x 1024^2, bf16: {seconds:.0f} s ({seconds / 61:.2f} s per tilt), "
        f"peak RSS {peak:.2f} GiB (inputs 0.73 GiB)"
    )


def bench_size(
    n: int,
    tilts: int,
    repeats: int,
    ours_model: VGGFeatures,
    plain_model: VGGFeatures,
    throughput: dict[str, float],
) -> str:
    """Time the oracle and ours on ``tilts`` random n^2 tilts; return the table row."""
    settings = StyleSettings()
    g = torch.Generator().manual_seed(n)
    images = [torch.rand(tilts, n, n, generator=g) for _ in range(3)]
    flops = nst_flops_per_tilt(ours_model, n, n, settings)
    t_ref = median_seconds(lambda: oracle(plain_model, *images, settings), repeats)
    t32 = median_seconds(lambda: stylize_batch(ours_model, *images, settings), repeats)
    t16 = median_seconds(
        lambda: stylize_batch(ours_model, *images, settings, precision="bf16"), repeats
    )
    t_ref, t32, t16 = (t / tilts for t in (t_ref, t32, t16))
    bound32, bound16 = flops / throughput["fp32"], flops / throughput["bf16"]
    return (
        f"{n:>5}^2 {flops / 1e9:>10.0f} {t_ref:>14.2f} {t32:>12.2f} {t16:>12.2f} "
        f"{t_ref / t32:>6.1f}x {t_ref / t16:>6.1f}x {100 * bound32 / t32:>9.0f}% "
        f"{100 * bound16 / t16:>9.0f}%"
    )


def _peak_of(n: int, plan: TilePlan, threads: int) -> tuple[int, int]:
    """Run one n^2 tilt under ``plan`` in a child process; return (working, total) peak."""
    done = subprocess.run(
        [sys.executable, __file__, "--peak-only", str(n), repr(plan), "--threads", str(threads)],
        check=True,
        capture_output=True,
        text=True,
    )
    working, total = (int(v) for v in done.stdout.split())
    return working, total


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def peak_only(n: int, plan: TilePlan) -> None:
    """Child: one n^2 fp32 tilt (random images) under ``plan``; print its peak RSS.

    Prints the working peak (peak RSS minus the RSS before the transfer, which holds
    the interpreter, torch, the backbone and the three images) and the whole peak.
    """
    model = load_backbone("vgg16-hed")
    g = torch.Generator().manual_seed(n)
    images = [torch.rand(1, n, n, generator=g) for _ in range(3)]
    warm = [torch.rand(1, 96, 96, generator=g) for _ in range(3)]  # oneDNN's first-use state
    stylize_batch(model, *warm, StyleSettings(), plan=TilePlan((2,), (32, None), (8, 0)))
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset the peak to the current RSS
    before = _status_bytes("VmRSS")
    stylize_batch(model, *images, StyleSettings(), plan=plan)
    peak = _status_bytes("VmHWM")
    print(peak - before, peak)


def _tiling_configs(n: int, budgets_gib: list[float]) -> list[tuple[str, TilePlan]]:
    configs = [("untiled", TilePlan())]
    for gib in budgets_gib:
        auto = transfer_plan(n, n, "fp32", memory_budget_bytes=int(gib * 2**30))
        if not auto.is_whole:
            configs.append((f"auto, --memory-gib {gib:g}", auto))
    for tile in (1024, 512):
        if tile < n:
            configs.append((f"--tile {tile}", transfer_plan(n, n, "fp32", tile=tile)))
    for tile in (1024, 512):
        if tile < n:
            configs.append((f"earlier: net in {tile} tiles", TilePlan.single(tile, 96)))
    return configs


def _describe(plan: TilePlan) -> str:
    if plan.is_whole and plan.style_tile is None:
        return "whole"
    bounds = plan.stage_bounds(5)
    stages = ", ".join(
        f"b{a + 1}-{b}:{'whole' if t is None else t}"
        for (a, b), t in zip(bounds, plan.tiles, strict=True)
    )
    cache = " +content cache" if plan.cache_content else ""
    return f"{stages}; style {plan.style_tile or 'whole'}{cache}"


def tiled_run(sizes: list[int], repeats: int, budgets_gib: list[float], threads: int) -> None:
    """Untiled vs tiled per n^2 tilt, interleaved in this process; peaks in children."""
    model = load_backbone("vgg16-hed")
    settings = StyleSettings()
    print(
        f"tiled vs untiled, fp32, {threads} threads, medians of {repeats} (interleaved); "
        "peak = working peak RSS of one tilt in a child process, vs the estimate; "
        "diff = |tiled - untiled| in [0, 1] image units, max and fraction of pixels > 1e-4"
    )
    for n in sizes:
        g = torch.Generator().manual_seed(n)
        images = [torch.rand(1, n, n, generator=g) for _ in range(3)]
        configs = _tiling_configs(n, budgets_gib)
        # Peaks first, in children, while this process holds little memory.
        release_free_memory()
        peaks = {label: _peak_of(n, plan, threads)[0] for label, plan in configs}
        times: dict[str, list[float]] = {label: [] for label, _ in configs}
        results: dict[str, torch.Tensor] = {}
        stylize_batch(model, *images, settings)  # warm-up, untimed
        for _ in range(repeats):
            for label, plan in configs:
                t0 = time.perf_counter()
                results[label] = stylize_batch(model, *images, settings, plan=plan)
                times[label].append(time.perf_counter() - t0)
        base = statistics.median(times["untiled"])
        print(f"{n}^2:")
        print(
            f"  {'config':28s} {'s/tilt':>7s} {'x untiled':>9s} {'peak GiB':>8s} "
            f"{'est. GiB':>8s} {'max diff':>9s} {'> 1e-4':>8s}  plan"
        )
        for label, plan in configs:
            seconds = statistics.median(times[label])
            working = peaks[label]
            estimate = plan_bytes(n, n, plan, "fp32")
            diff = (results[label] - results["untiled"]).abs()
            print(
                f"  {label:28s} {seconds:7.1f} {seconds / base:9.2f} {working / 2**30:8.2f} "
                f"{estimate / 2**30:8.2f} {diff.max().item():9.1e} "
                f"{(diff > 1e-4).float().mean().item():8.1e}  {_describe(plan)}",
                flush=True,
            )
        del images, results
        release_free_memory()  # before the next size's children


def memory_run(sizes: list[int], threads: int) -> None:
    """The memory estimate against the measured peak RSS, plan by plan."""
    print(f"memory estimate (plan_bytes) vs measured working peak RSS, fp32, {threads} threads")
    print(f"  {'size':>6s} {'measured GiB':>12s} {'estimate GiB':>12s} {'ratio':>6s}  plan")
    for n in sizes:
        plans = [TilePlan()] if n <= 1024 else []
        plans += [transfer_plan(n, n, "fp32", memory_budget_bytes=gib * 2**30) for gib in (1, 2, 4)]
        plans += [transfer_plan(n, n, "fp32", tile=n // 2), TilePlan.single(n // 4, 96)]
        plans += [TilePlan((2, 3), (n // 4, n // 2, None), (8, 16, 0), n // 2, 64, True)]
        for plan in dict.fromkeys(plans):  # unique, in order
            working, _ = _peak_of(n, plan, threads)
            estimate = plan_bytes(n, n, plan, "fp32")
            print(
                f"  {n:>5}^2 {working / 2**30:12.2f} {estimate / 2**30:12.2f} "
                f"{working / estimate:6.2f}  {_describe(plan)}",
                flush=True,
            )


def _faket_style(folder: Path, shape: tuple[int, int], style_shape: tuple[int, int], gib: float):
    """Write one random tilt of each stack and run `faket style` on it in a child process."""
    import numpy as np

    from faket.io import write_mrc

    rng = np.random.default_rng(0)
    for name, (ny, nx) in (("init", shape), ("content", shape), ("style", style_shape)):
        data = rng.standard_normal((1, ny, nx), dtype=np.float32)
        write_mrc(data, folder / f"{name}.mrc", voxel_size_a=10.0)
    out = folder / f"faket_{shape[0]}_{style_shape[0]}.mrc"
    args = ["style", "--init", "init.mrc", "--content", "content.mrc", "--style", "style.mrc"]
    args += ["-o", out.name, "--memory-gib", str(gib), "--precision", "fp32"]
    code = (
        "import resource, sys; from faket.cli import main; code = main(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)"
    )
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, cwd=folder, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    peak = int(done.stdout.split()[-1]) * 1024  # the command's own peak RSS (KiB on Linux)
    return seconds, peak


def large_run() -> None:
    """One 3500^2 tilt under --memory-gib 3; a 5760 x 4092 style against 512^2."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for shape, style_shape, gib in (
            ((3500, 3500), (3500, 3500), 3.0),
            ((512, 512), (5760, 4092), 2.0),
        ):
            seconds, peak = _faket_style(folder, shape, style_shape, gib)
            inputs = 4 * (2 * shape[0] * shape[1] + style_shape[0] * style_shape[1])
            print(
                f"faket style, one {shape[0]} x {shape[1]} tilt, style {style_shape[0]} x "
                f"{style_shape[1]}, --memory-gib {gib:g}: {seconds:.0f} s, peak RSS of the "
                f"command {peak / 2**30:.2f} GiB ({peak / 1e9:.2f} GB; inputs "
                f"{inputs / 2**30:.2f} GiB)",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tilts", type=int, default=2, help="tilts per timed call")
    parser.add_argument("--full", action="store_true", help="also run 61 x 1024^2 in bf16")
    parser.add_argument("--full-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tiled", action="store_true", help="untiled vs tiled (fp32)")
    parser.add_argument("--memory", action="store_true", help="memory estimate vs peak RSS")
    parser.add_argument("--large", action="store_true", help="3500^2 under --memory-gib 3")
    parser.add_argument(
        "--budget-gib", type=float, nargs="+", default=[4.0, 6.0], help="budgets of --tiled's auto"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads (tiling modes)")
    parser.add_argument("--peak-only", nargs=2, metavar=("N", "PLAN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    # As the faket command does; it speeds up the oracle as much (same process).
    keep_freed_memory_for_reuse()
    if args.full_only:
        full_run()
        return
    if args.peak_only or args.tiled or args.memory:
        torch.set_num_threads(args.threads)
    if args.peak_only:
        peak_only(int(args.peak_only[0]), eval(args.peak_only[1], {"TilePlan": TilePlan}))
        return
    if args.tiled or args.memory or args.large:
        sizes = args.sizes if "--sizes" in sys.argv else [1024, 2048]
        if args.tiled:
            tiled_run(sizes, args.repeats, args.budget_gib, args.threads)
        if args.memory:
            memory_run(sizes, args.threads)
        if args.large:
            large_run()
        return
    settings = StyleSettings()
    ours_model = load_backbone("vgg16-hed")  # channels-last
    plain_model = load_backbone("vgg16-hed").to(memory_format=torch.contiguous_format)
    throughput = {p: calibrate(p) for p in ("fp32", "bf16")}
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; 3x3 conv throughput: "
        f"fp32 {throughput['fp32'] / 1e9:.0f} GFLOP/s, bf16 {throughput['bf16'] / 1e9:.0f} GFLOP/s"
    )
    print(
        f"{'size':>6} {'GFLOP/tilt':>10} {'oracle s/tilt':>14} {'fp32 s/tilt':>12} "
        f"{'bf16 s/tilt':>12} {'fp32 x':>7} {'bf16 x':>7} {'fp32 %FLOP':>10} {'bf16 %FLOP':>10}"
    )
    for n in args.sizes:
        print(bench_size(n, args.tilts, args.repeats, ours_model, plain_model, throughput))
    series_flops = 61 * nst_flops_per_tilt(ours_model, 1024, 1024, settings)
    ideal = series_flops / (H100_BF16_DENSE_TFLOPS * 1e12)
    print(
        f"61 x 1024^2 tilt-series: {series_flops / 1e12:.0f} TFLOP; on an H100 (bf16, "
        f"{H100_BF16_DENSE_TFLOPS:.0f} TFLOP/s peak): {ideal:.2f} s at peak, "
        f"{ideal / H100_REALISTIC_FRACTION:.2f} s at {H100_REALISTIC_FRACTION:.0%} of peak"
    )
    if args.full:
        subprocess.run([sys.executable, __file__, "--full-only"], check=True)


if __name__ == "__main__":
    main()
