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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input ends with one line on stderr and exit status 2.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status.
    """
    keep_freed_memory_for_reuse()
    try:
        cli.main(args=argv, prog_name="faket", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("faket: aborted", err=True)
        return 130
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except FaketInputError as err:
        click.echo(f"faket: error: {err}", err=True)
        return 2
    except MemoryError:
        click.echo(
            "faket: error: out of memory; process fewer slices at once "
            "(e.g. a smaller --chunk-mib) or use a machine with more memory",
            err=True,
        )
        return 3
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
