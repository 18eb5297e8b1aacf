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
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from _timing import median_seconds

from faket._runtime import heap_trimmer, keep_freed_memory_for_reuse
from faket.style import StyleSettings, load_backbone, stylize_batch
from faket.style.backbones import VGGFeatures
from faket.style.series import stylize_tilt_series

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tilts", type=int, default=2, help="tilts per timed call")
    parser.add_argument("--full", action="store_true", help="also run 61 x 1024^2 in bf16")
    parser.add_argument("--full-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # As the faket command does; it speeds up the oracle as much (same process).
    keep_freed_memory_for_reuse()
    if args.full_only:
        full_run()
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
