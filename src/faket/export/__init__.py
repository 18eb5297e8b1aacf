"""Exports of a faket dataset to other tools' formats: copick projects.

copick is optional (``pip install 'faket[copick]'``) and imported only by an export.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from faket.export.copick import (
    CONFIG_FILE,
    export_copick,
    tomo_type,
    update_dataset_copick,
)

OUTPUTS = ("copick",)
"""The exports ``run.outputs`` may name."""


def write_dataset_outputs(dataset: str | os.PathLike[str], outputs: Sequence[str]) -> None:
    """Write a finished dataset's exports (``run.outputs``): ``copick`` -> ``<dataset>/copick``.

    Each is rewritten only when the dataset changed since it was last written.
    """
    if "copick" in outputs:
        update_dataset_copick(dataset)


__all__ = [
    "CONFIG_FILE",
    "OUTPUTS",
    "export_copick",
    "tomo_type",
    "update_dataset_copick",
    "write_dataset_outputs",
]
