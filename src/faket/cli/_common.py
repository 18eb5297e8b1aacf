"""Small helpers shared by the commands: device choice, progress bars, tensors from files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import torch

DEVICE_OPTION = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="Compute device: auto (CUDA when present, else CPU), cpu, cuda or cuda:N.",
)

CHUNK_OPTION = click.option(
    "--chunk-mib",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Working memory per chunk of Y-slices, in MiB.",
)


def resolve_device(name: str) -> torch.device:
    """Return the torch device for a ``--device`` value; a clear error when it is absent."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise click.BadParameter(f"unknown device {name!r}", param_hint="--device") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available on this machine", param_hint="--device")
    return device


@contextmanager
def progress_bar(total: int, description: str, unit: str) -> Iterator[object]:
    """Yield a tqdm progress bar on stderr that disappears when the work is done."""
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=description, unit=unit, leave=False, dynamic_ncols=True) as bar:
        yield bar


class GreedyOptionsCommand(click.Command):
    """A command whose list options take several values after one flag.

    ``--reference a.mrc b.mrc --noiseless c.mrc d.mrc`` is read as if each value had
    its own flag (``--reference a.mrc --reference b.mrc ...``); the flag may also be
    repeated. Options listed in ``greedy_options`` must be declared ``multiple=True``,
    and the command must take no positional arguments after them.
    """

    greedy_options: tuple[str, ...] = ()

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Repeat the current greedy flag before each of its extra values, then parse."""
        expanded: list[str] = []
        current: str | None = None
        for arg in args:
            if arg in self.greedy_options:
                current = arg
            elif arg.startswith("-") and arg != "-":
                current = None
            elif current is not None and expanded[-1] != current:
                expanded.append(current)
            expanded.append(arg)
        return super().parse_args(ctx, expanded)
