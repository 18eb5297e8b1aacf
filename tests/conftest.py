"""Shared fixtures: small synthetic phantoms and the devices to test on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

_DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=_DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """Every device this machine has: CPU always, CUDA when present."""
    return torch.device(request.param)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded numpy generator, so every test run sees the same data."""
    return np.random.default_rng(20261121)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """Run ``faket`` in-process: ``run_cli(*args) -> (exit code, stdout, stderr)``."""
    from faket.cli import main

    def run(*args: object) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
