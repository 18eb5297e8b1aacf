"""The style transfer fed from files and yielding batches: the in-memory run is the oracle.

Reading the stacks from MRC files a batch at a time (the pipeline's way) and writing
the yielded batches must give exactly the tensor that :func:`stylize_tilt_series`
returns from in-memory stacks: the same normalisation ranges, batches and matching.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faket.errors import FaketInputError
from faket.io import read_mrc, write_mrc
from faket.io.tilt_stack import MrcTilts, MrcTiltWriter
from faket.style import StyleSettings, load_backbone
from faket.style.planning import _RUNTIME_BYTES
from faket.style.series import (
    minmax_range,
    style_bytes_per_tilt,
    stylize_tilt_series,
    stylized_batches,
    working_shape,
)

SHALLOW = StyleSettings(style_layers=("relu1_1", "relu2_1"), style_layer_weights=(256.0, 64.0))


@pytest.fixture(scope="module")
def model():
    return load_backbone("random")


def stacks(shape=(5, 32, 48), seed=3):
    g = torch.Generator().manual_seed(seed)
    initial, content = (torch.rand(shape, generator=g) * 30 - 4 for _ in range(2))
    style = torch.rand(shape, generator=g) * torch.arange(1.0, shape[0] + 1)[:, None, None]
    return initial, content, style + 10


@pytest.mark.parametrize("working_size", [None, 40])
def test_stacks_read_from_files_give_the_in_memory_result(model, tmp_path, working_size):
    initial, content, style = stacks()
    # A budget of two tilts: three batches (2, 2, 1), so parts and batches both matter.
    ny, nx = (32, 48) if working_size is None else working_shape(32, 48, working_size)
    one = style_bytes_per_tilt(
        ny, nx, "fp32", style_shape=(ny, nx), blocks=model.blocks, settings=SHALLOW
    )
    per_tilt = one - _RUNTIME_BYTES  # the runtime's share counts once per batch
    budget = _RUNTIME_BYTES + 2 * per_tilt + per_tilt // 2
    kwargs = {"memory_budget_bytes": budget, "working_size": working_size}
    expected = stylize_tilt_series(model, initial, content, style, SHALLOW, **kwargs)
    files = []
    for name, stack in zip(("noisy", "content", "style"), (initial, content, style), strict=True):
        write_mrc(stack, tmp_path / f"{name}.mrc")
        files.append(MrcTilts(tmp_path / f"{name}.mrc"))
    starts = []
    with MrcTiltWriter(tmp_path / "faket.mrc", tuple(initial.shape)) as out:
        for start, tilts in stylized_batches(model, *files, SHALLOW, **kwargs):
            starts.append((start, tilts.shape[0]))
            out.write(start, tilts)
    assert starts == [(0, 2), (2, 2), (4, 1)]
    written = torch.from_numpy(read_mrc(tmp_path / "faket.mrc").data)
    assert torch.equal(written, expected)


def test_the_range_pass_reads_parts_and_names_the_file(tmp_path, monkeypatch):
    import faket.style.series as series

    data = np.random.default_rng(1).normal(0, 1, (9, 16, 16)).astype(np.float32)
    write_mrc(data, tmp_path / "s.mrc")
    monkeypatch.setattr(series, "_RANGE_CHUNK_ELEMENTS", 3 * 16 * 16)  # parts of 3 tilts
    low, high = minmax_range(MrcTilts(tmp_path / "s.mrc"), "s.mrc")
    assert (low, high) == (float(data.min()), float(data.max()))
    bad = torch.from_numpy(data.copy())
    bad[8, 0, 0] = float("inf")  # in the last part only
    with pytest.raises(FaketInputError, match="noisy.mrc.*NaN or Inf"):
        minmax_range(bad, "noisy.mrc")
    with pytest.raises(FaketInputError, match="constant"):
        minmax_range(torch.ones(4, 8, 8), "flat.mrc")
