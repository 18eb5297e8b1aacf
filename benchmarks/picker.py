"""Picker speed: one training step and the inference of one patch, plain fp32 vs ours.

The reference approach is the straightforward port: float32 tensors in the default
(contiguous, channels-first) layout. Ours autocasts the convolutions to bf16 and keeps
tensors channels-last (``channels_last_3d``), with the loss in float32, as
`faket.evaluation.train_picker` and `segment_tomogram` do. Both run the same network and
Adam step on the same batch in this process; medians of several runs.

    .venv/bin/python benchmarks/picker.py            # paper (56^3, width 1) and laptop (32^3, 0.5)
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext

import torch
from _timing import median_seconds

from faket._runtime import keep_freed_memory_for_reuse
from faket.evaluation.training import make_picker, picker_loss

SETTINGS = {"paper": (1.0, 56, 4), "laptop": (0.5, 32, 4)}
"""Name -> (width, patch, batch); the batch is 4 so both fit the CPU's memory quickly."""


def step_seconds(width: float, patch: int, batch: int, fast: bool, repeats: int) -> float:
    """Median seconds of one Adam step (forward, loss, backward, update) on a batch."""
    net = make_picker(8, width, seed=0)
    images = torch.randn(batch, 1, patch, patch, patch, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 8, (batch, patch, patch, patch))
    if fast:
        net = net.to(memory_format=torch.channels_last_3d)
        images = images.contiguous(memory_format=torch.channels_last_3d)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if fast else nullcontext

    def step() -> None:
        with autocast():
            logits = net.logits(images)
        loss = picker_loss(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up
    return median_seconds(step, repeats)


def inference_seconds(width: float, patch: int, batch: int, fast: bool, repeats: int) -> float:
    """Median seconds of the forward pass and softmax of a batch, without gradients."""
    net = make_picker(8, width, seed=0).eval()
    images = torch.randn(batch, 1, patch, patch, patch, generator=torch.Generator().manual_seed(0))
    if fast:
        net = net.to(memory_format=torch.channels_last_3d)
        images = images.contiguous(memory_format=torch.channels_last_3d)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if fast else nullcontext

    @torch.no_grad()
    def forward() -> None:
        with autocast():
            logits = net.logits(images)
        torch.softmax(logits.float(), dim=1)

    forward()
    return median_seconds(forward, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    args = parser.parse_args()
    keep_freed_memory_for_reuse()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ms per patch")
    print("| setting | what | fp32 (reference) | bf16 channels-last (ours) | speed-up |")
    print("|---|---|---|---|---|")
    for name in args.settings:
        width, patch, batch = SETTINGS[name]
        for what, fn in (("training step", step_seconds), ("inference", inference_seconds)):
            ref = fn(width, patch, batch, False, args.repeats) / batch
            ours = fn(width, patch, batch, True, args.repeats) / batch
            label = f"{name} ({patch}^3, width {width})"
            print(f"| {label} | {what} | {1e3 * ref:.0f} | {1e3 * ours:.0f} | {ref / ours:.1f}x |")


if __name__ == "__main__":
    main()
