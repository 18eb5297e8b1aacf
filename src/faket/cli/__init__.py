"""The ``faket`` command line: parses arguments and calls the package's API.

Commands import their heavy dependencies (torch, matplotlib) inside the command, so
``faket --help`` answers at once.
"""

from __future__ import annotations

import sys

import click

from faket import __version__
from faket._runtime import keep_freed_memory_for_reuse
from faket.cli.config import config
from faket.cli.demo import demo
from faket.cli.evaluate import evaluate
from faket.cli.export import export
from faket.cli.microscope import microscope
from faket.cli.noise import noise
from faket.cli.phantom import phantom
from faket.cli.project import project
from faket.cli.reconstruct import reconstruct
from faket.cli.simulate import simulate
from faket.cli.style import style
from faket.errors import FaketInputError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="faket")
def cli() -> None:
    """Simulate realistic, fully labelled cryo-ET tilt-series and tomograms (FakET).

    Volumes and tilt-series are MRC files with axes (z, y, x) and (tilt, y, x); the
    tilt axis is Y; tilt angles are in degrees (IMOD .tlt/.rawtlt or SHREC
    alignment_simulated.txt); pixel sizes are in Angstrom.
    """


cli.add_command(project)
cli.add_command(noise)
cli.add_command(style)
cli.add_command(demo)
cli.add_command(reconstruct)
cli.add_command(phantom)
cli.add_command(microscope)
cli.add_command(simulate)
cli.add_command(config)
cli.add_command(evaluate)
cli.add_command(export)


_MEMORY_HINTS = {
    "project": "process fewer Y-slices at once (a smaller --chunk-mib)",
    "reconstruct": "process fewer Y-slices at once (a smaller --chunk-mib)",
    "style": "tile the detector (e.g. --tile 256) or give a smaller --memory-gib",
}
_GENERIC_MEMORY_HINT = "use smaller inputs"
# click >= 8.2 raises this usage error for a bare group (``faket``); its message is the help.
_NO_ARGS_IS_HELP: type[click.UsageError] | tuple[()] = getattr(
    click.exceptions, "NoArgsIsHelpError", ()
)


def _command_name(args: list[str]) -> str:
    """Return the (sub)command ``args`` run, e.g. ``"project"`` or ``"noise apply"``."""
    words: list[str] = []
    command: click.Command | None = cli
    for arg in args:
        if not isinstance(command, click.Group) or arg.startswith("-"):
            break
        command = command.commands.get(arg)
        if command is None:
            break
        words.append(arg)
    return " ".join(words)


def _is_out_of_memory(err: BaseException) -> bool:
    """Return True for Python's MemoryError and torch's out-of-memory errors (CPU, CUDA)."""
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError":
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and (
        "can't allocate memory" in text or "CUDA out of memory" in text
    )


def _one_line(text: str) -> str:
    """Join the non-empty lines of ``text`` into one line."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _param_name(param: click.Parameter | None) -> str | None:
    """Return how the user spells ``param``: ``--width``, ``-o/--output`` or ``VOLUME``."""
    if param is None:
        return None
    if isinstance(param, click.Option):
        return "/".join(param.opts)
    return param.human_readable_name


def _usage_line(err: click.UsageError) -> str:
    """Return click's usage error as one line: ``faket: error: --width: <problem> (...)``."""
    subject: str | None = None
    problem = err.message
    if isinstance(err, click.NoSuchOption):
        subject, problem = err.option_name, "no such option"
        if err.possibilities:
            problem += f" (did you mean {', '.join(sorted(err.possibilities))}?)"
    elif isinstance(err, click.MissingParameter):
        subject = _param_name(err.param)
        kind = err.param_type or (err.param.param_type_name if err.param else "parameter")
        problem = f"missing; this {kind} is required"
    elif isinstance(err, click.BadParameter):
        hint = err.param_hint
        if hint is not None and not isinstance(hint, str):
            hint = "/".join(hint)
        subject = hint or _param_name(err.param)
    command = err.ctx.command_path if err.ctx is not None else "faket"
    problem = _one_line(problem).rstrip(".")
    prefix = f"{subject}: " if subject else ""
    return f"faket: error: {prefix}{problem} (see '{command} --help')"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input ends with one line on stderr and exit status 2.

    Bad input (a :class:`~faket.errors.FaketInputError`, or a bad option value, a missing
    option or an unknown option, as click finds them) prints one line ``faket: error:
    <file or option>: <problem>`` on stderr and returns 2. Running out of memory prints
    one line with a hint that fits the command and returns 3.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    keep_freed_memory_for_reuse()
    try:
        cli.main(args=args, prog_name="faket", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("faket: aborted", err=True)
        return 130
    except _NO_ARGS_IS_HELP as err:
        err.show()  # the help text itself
        return err.exit_code
    except click.UsageError as err:
        click.echo(_usage_line(err), err=True)
        return err.exit_code
    except click.ClickException as err:
        click.echo(f"faket: error: {_one_line(err.format_message())}", err=True)
        return err.exit_code
    except FaketInputError as err:
        click.echo(f"faket: error: {_one_line(str(err))}", err=True)
        return 2
    except (MemoryError, RuntimeError) as err:
        if not _is_out_of_memory(err):
            raise
        command = _command_name(args)
        hint = _MEMORY_HINTS.get(command, _GENERIC_MEMORY_HINT)
        name = f"faket {command}" if command else "faket"
        click.echo(
            f"faket: error: out of memory in {name}; {hint}, or use a machine with more memory",
            err=True,
        )
        return 3
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
