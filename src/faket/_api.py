"""``faket.simulate``: a whole dataset from a config object, a mapping or a YAML file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from faket.config import FaketConfig

if TYPE_CHECKING:
    from faket.pipeline import DatasetResult


def simulate(
    config: FaketConfig | Mapping[str, Any] | str | os.PathLike[str], **options: Any
) -> DatasetResult:
    """Make the dataset of ``config``, as ``faket simulate`` does.

    Parameters
    ----------
    config : FaketConfig, mapping or path
        A configuration object, its sections as a mapping (``FaketConfig.from_dict``:
        paths as given) or a YAML file (paths relative to the file's folder).
    **options
        Passed to :func:`faket.pipeline.simulate_dataset` (``force``, ``scheduler``,
        ``report``, progress callbacks).

    Returns
    -------
    DatasetResult
        What the run made and skipped, its timings and the report's path.

    Raises
    ------
    faket.errors.FaketInputError
        One line naming the field or file and the problem; nothing is written then.
    """
    from faket.pipeline import simulate_dataset

    if isinstance(config, (str, os.PathLike)):
        config = FaketConfig.from_yaml(config)
    elif not isinstance(config, FaketConfig):
        config = FaketConfig.from_dict(config)
    return simulate_dataset(config, **options)
