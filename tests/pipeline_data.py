"""Small pipeline configurations shared by the pipeline tests (not a test module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faket.config import FaketConfig
from faket.io import write_mrc, write_tilt_angles

SHAPE = (32, 64, 64)
VOXEL_A = 40.0
N_TILTS = 11
ANGLES = np.linspace(-60.0, 60.0, N_TILTS)


def tiny_config(output: Path, **run: object) -> FaketConfig:
    """Two 32 x 64 x 64 tomograms at 40 A, 11 tilts, the random backbone, one thread.

    Both noise models: the published one (noisy.mrc, faket.mrc) and the spectral one
    (noisy_spectral.mrc, faket_spectral.mrc).
    """
    return FaketConfig.from_dict(
        {
            "run": {
                "threads": 1,  # equal in every executor: bit-identical files
                "output": str(output),
                "n_tomograms": 2,
                "seed": 3,
                "device": "cpu",
                "precision": "fp32",
                **run,
            },
            "phantom": {
                "shape_zyx": list(SHAPE),
                "voxel_size_a": VOXEL_A,
                "builtin": {"ribosome": 2, "ring": 3, "globule": 4},
                "vesicles": 1,
                "fiducials": 2,
            },
            "projection": {"tilt_min_deg": -60, "tilt_max_deg": 60, "tilt_step_deg": 12},
            "style": {"backbone": "random"},
            "noise": {"extra_models": ["spectral"]},
            "report": {"likeness_steps": 20},  # the likeness section, quickly
        }
    )


def user_reference_files(folder: Path, seed: int = 0) -> dict[str, Path]:
    """Write a reference tilt-series, its angles and a noiseless pair into ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    clean = rng.standard_normal((N_TILTS, SHAPE[1], SHAPE[2])).astype(np.float32)
    noisy = (clean + rng.standard_normal(clean.shape)).astype(np.float32)
    files = {
        "reference": folder / "ref.mrc",
        "angles": folder / "ref.tlt",
        "noiseless": folder / "ref_noiseless.mrc",
    }
    write_mrc(noisy, files["reference"], voxel_size_a=VOXEL_A)
    write_mrc(clean, files["noiseless"], voxel_size_a=VOXEL_A)
    write_tilt_angles(ANGLES, files["angles"])
    return files


def files_config(output: Path, files: dict[str, Path], **sections: dict) -> FaketConfig:
    """`tiny_config` with one user reference (paired statistics) and any section changed."""
    data = tiny_config(output, n_tomograms=1).model_dump(mode="json")
    data["reference"] = {
        "source": "files",
        "tilt_series": [str(files["reference"])],
        "angles": [str(files["angles"])],
    }
    data["noise"] = {**data["noise"], "noiseless": [str(files["noiseless"])]}
    for name, values in sections.items():
        data[name] = {**data[name], **values}
    return FaketConfig.from_dict(data)
