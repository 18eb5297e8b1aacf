"""``faket config``: print an example configuration or check one."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("config")
@click.option("--example", is_flag=True, help="Print a commented example configuration.")
@click.option(
    "--check",
    type=click.Path(path_type=Path),
    default=None,
    metavar="CONFIG.yaml",
    help="Validate a configuration file and print it with every default filled in.",
)
def config(example: bool, check: Path | None) -> None:
    """Print a commented example configuration for faket simulate, or check one.

    \b
    Example:
      faket config --example > run.yaml
      faket config --check run.yaml
    """
    from faket.config import FaketConfig, example_yaml

    if check is not None:
        click.echo(FaketConfig.from_yaml(check).to_yaml(), nl=False)
    elif example:
        click.echo(example_yaml(), nl=False)
    else:
        raise click.UsageError("give --example or --check CONFIG.yaml")
