"""Small helpers shared by the commands: device choice, progress bars, output checks."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from faket.errors import FaketInputError

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


InputPaths = Path | Iterable[Path] | None


def same_file(a: Path, b: Path) -> bool:
    """Return True if paths ``a`` and ``b`` name one file.

    Both existing: `os.path.samefile` (symbolic and hard links, ``./x`` and ``x``, case on
    case-insensitive file systems). Otherwise the fully resolved paths are compared.
    """
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return _resolved(a) == _resolved(b)


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symbolic-link loop
        return path.absolute()


def _existing_ancestor(folder: Path) -> Path:
    """Return the nearest folder above (or equal to) ``folder`` that exists."""
    current = folder.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def _check_folder(label: str, output: Path, create_folders: bool) -> None:
    """Refuse ``output`` if its folder cannot take it (missing, a file, not writable)."""
    if output.is_dir():
        raise FaketInputError(f"cannot write {label}: a folder of that name exists", output)
    folder = output.parent
    if create_folders:
        folder = _existing_ancestor(folder)
    if not folder.exists():
        raise FaketInputError(f"cannot write {label}: folder {folder} does not exist", output)
    if not folder.is_dir():
        raise FaketInputError(f"cannot write {label}: {folder} is a file, not a folder", output)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise FaketInputError(
            f"cannot write {label}: folder {folder} is not writable (permission denied)", output
        )


def check_outputs(
    outputs: Mapping[str, Path],
    inputs: Mapping[str, InputPaths],
    *,
    create_folders: bool = False,
) -> None:
    """Refuse outputs that would overwrite an input or cannot be written, before any work.

    Call it at the start of a command, before reading or computing anything, with every
    file the command will write (side outputs such as a provenance JSON included).

    Parameters
    ----------
    outputs : mapping of str to Path
        What each output is, as the user knows it (``"-o/--output"``, ``"the provenance
        JSON of -o/--output"``) -> the file to be written.
    inputs : mapping of str to Path, iterable of Path or None
        Option or argument name (``"--angles"``, ``"VOLUME"``) -> the file(s) it reads;
        None for an option not given.
    create_folders : bool
        The command creates missing folders above its outputs: check the nearest
        existing one instead of the output's own folder.

    Raises
    ------
    FaketInputError
        Naming the output file, if it is an input (the same path, or the same file through
        a link), two outputs are the same file, it is an existing folder, or its folder
        does not exist, is a file or is not writable.
    """
    named_inputs: list[tuple[str, Path]] = []
    for name, value in inputs.items():
        if value is None:
            continue
        paths = [value] if isinstance(value, Path) else list(value)
        named_inputs += [(name, Path(p)) for p in paths]
    seen: list[tuple[str, Path]] = []
    for label, output in outputs.items():
        output = Path(output)
        for name, source in named_inputs:
            if same_file(output, source):
                where = str(source) if str(source) == str(output) else f"{source}, the same file"
                raise FaketInputError(
                    f"{label} would overwrite the input {name} ({where}); an output never "
                    "replaces an input: choose another output name",
                    output,
                )
        for other_label, other in seen:
            if same_file(output, other):
                raise FaketInputError(
                    f"{label} and {other_label} would be the same file; choose another output name",
                    output,
                )
        _check_folder(label, output, create_folders)
        seen.append((label, output))
