"""The Python API: ``faket``'s entry points, and the README's example run as written."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import faket
from faket.io import read_mrc

README = Path(__file__).resolve().parents[1] / "README.md"


def test_each_entry_point_is_the_object_its_module_defines():
    assert set(faket.__all__) == {"__version__", *faket._ENTRY_POINTS}
    for name, module in faket._ENTRY_POINTS.items():
        assert getattr(faket, name) is getattr(importlib.import_module(module), name), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        faket.nope  # noqa: B018


def test_import_faket_loads_no_torch():
    """``faket --help`` must answer at once: the entry points load on first use."""
    code = "import sys, faket; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def _readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- api-example -->\n```python\n(.*?)```", text, re.S)
    assert match, "README.md has no <!-- api-example --> python block"
    return match.group(1)


def test_the_readme_example_runs_and_writes_what_it_says(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(_readme_example(), str(README), "exec"), {"__name__": "readme"})
    assert "[0] made in" in capsys.readouterr().out
    dataset = tmp_path / "api_dataset"
    assert (dataset / "dataset.json").is_file() and (dataset / "model_0" / "faket.mrc").is_file()
    tomogram = read_mrc(tmp_path / "faket_tomogram.mrc", ndim=3)
    assert tomogram.data.shape == (32, 64, 64) and np.isfinite(tomogram.data).all()
    assert tomogram.voxel_size_a == pytest.approx(40.0)
