"""The built-in demo: a small dataset made by the pipeline, no user files needed.

:func:`demo_config` is the configuration ``faket demo`` runs: three tomograms of
96 x 256 x 256 voxels at 10 Angstrom with the built-in particle library, vesicles
(radius 15-30 nm, so they fit the 96 nm slab) and gold fiducials in a cellular scene
(:data:`CELLULAR_LAYERS`: membranes, membrane proteins, actin and a microtubule), 41
tilts from -60 to +60 degrees, the built-in reference microscope as the style source,
and both noise models (published and spectral) so the report compares them. Smaller
sizes keep the same field of view (coarser voxels), so the particles still fit.

``crowded=True`` is the picking study's dataset, crowded like SHREC 2021: about 250
particles per tomogram of twelve classes (:data:`CROWDED_BUILTIN` and the three atomic
models of `faket.demo.structures`, :data:`CROWDED_STRUCTURES`, written into
``<output>/structures/`` by :func:`run_demo`), more small ones than large ones,
FAKET_RANDOM (the random-backbone ablation) of the spectral noise model, and 31 tilts
(-60 to +60 by 4 degrees) so that its three style transfers per tomogram fit a laptop.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from faket.config import FaketConfig
from faket.pipeline import DatasetResult, simulate_dataset

DEMO_SIZE = 256
"""Default width and height of the demo's specimens, in voxels."""

DEMO_VOXEL_SIZE_A = 10.0
"""Voxel size at the default size, in Angstrom."""

CROWDED_BUILTIN = {
    "globule": 50,
    "cluster": 30,
    "tripod": 30,
    "dumbbell": 25,
    "ring": 20,
    "barrel": 20,
    "rod": 15,
    "cage": 10,
    "ribosome": 10,
}
"""The crowded demo's built-in particle classes -> count per tomogram."""

CROWDED_STRUCTURES = {"bundle7": 20, "coiledcoil": 10, "helixring": 10}
"""The crowded demo's atomic-model classes (`faket.demo.structures`) -> count per tomogram."""

CELLULAR_LAYERS: dict[str, list[dict[str, object]]] = {
    "membranes": [
        {"shape": "sheet", "count": 1, "size_nm": [5.0, 20.0]},
        {"shape": "ellipsoid", "count": 1, "size_nm": [25.0, 40.0]},
    ],
    "membrane_proteins": [{"builtin": "barrel", "count": 6, "offset_nm": 0.0}],
    "filaments": [
        {"type": "actin", "count": 4, "length_nm": [150.0, 400.0]},
        {"type": "microtubule", "count": 1, "length_nm": [200.0, 400.0]},
    ],
}
"""The demo's cellular layers: a membrane sheet and an ellipsoidal organelle with
transmembrane barrels, actin filaments and a microtubule (`faket.phantom.scene`)."""

STRUCTURES_FOLDER = "structures"
"""Where the crowded demo writes its PDB files, inside the output folder."""


def demo_config(
    output: str | os.PathLike[str],
    *,
    size: int = DEMO_SIZE,
    n_tomograms: int = 3,
    seed: int = 0,
    device: str = "auto",
    precision: str = "auto",
    workers: int = 1,
    threads: int | None = None,
    likeness_steps: int = 300,
    crowded: bool = False,
) -> FaketConfig:
    """Return the demo's configuration.

    Parameters
    ----------
    output : str or PathLike
        Dataset folder.
    size : int
        Specimen width and height in voxels; the depth is ``3 * size // 8``. The voxel
        size is ``10 * 256 / size`` Angstrom, so the field of view stays 256 nm.
    n_tomograms : int
        Number of tomograms.
    seed : int
        Seed of everything random.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    precision : str
        Precision of the style transfer: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
    workers : int
        Tomograms in parallel processes.
    threads : int or None
        CPU threads per tomogram task (``run.threads``; None: torch's default).
    likeness_steps : int
        Training steps of the report's likeness classifiers; 0 leaves the section out.
    crowded : bool
        The picking study's crowded specimens (see the module's docstring); their
        structure files are referenced in ``<output>/structures/`` (`run_demo` writes them).
    """
    config: dict[str, dict[str, object]] = {
        "run": {
            "output": str(output),
            "n_tomograms": n_tomograms,
            "seed": seed,
            "device": device,
            "precision": precision,
            "workers": workers,
            "threads": threads,
        },
        # FAKET with the published noise model (noisy.mrc, faket.mrc) and with the
        # spectral one (noisy_spectral.mrc, faket_spectral.mrc), side by side.
        "noise": {"model": "published", "extra_models": ["spectral"]},
        "report": {"likeness": likeness_steps > 0, "likeness_steps": max(1, likeness_steps)},
        "phantom": {
            "shape_zyx": [max(1, 3 * size // 8), size, size],
            "voxel_size_a": DEMO_VOXEL_SIZE_A * DEMO_SIZE / size,
            "vesicle_radius_nm": [15.0, 30.0],
            **CELLULAR_LAYERS,
        },
    }
    if crowded:
        config["phantom"].update(_crowded_phantom(Path(output)))
        config["style"] = {"ablation_models": ["spectral"]}
        # 31 tilts (-60..+60 by 4): three style transfers per tomogram fit a laptop.
        config["projection"] = {"tilt_step_deg": 4.0}
    return FaketConfig.from_dict(config, source="demo")


def _crowded_phantom(output: Path) -> dict[str, object]:
    """Return the phantom settings the crowded demo adds: its classes and counts."""
    folder = output / STRUCTURES_FOLDER
    return {
        "builtin": dict(CROWDED_BUILTIN),
        "structures": [
            {"path": str(folder / f"{name}.pdb"), "count": n}
            for name, n in CROWDED_STRUCTURES.items()
        ],
        "vesicles": 2,
        "fiducials": 6,
    }


def run_demo(
    output: str | os.PathLike[str],
    *,
    force: bool = False,
    on_phase: Callable[[str, int], None] | None = None,
    on_done: Callable[[int], None] | None = None,
    **settings: object,
) -> DatasetResult:
    """Make the demo dataset in ``output``; ``settings`` go to :func:`demo_config`.

    Returns
    -------
    DatasetResult
        What was made; ``report`` is the path of report.html.
    """
    config = demo_config(Path(output), **settings)  # type: ignore[arg-type]
    if settings.get("crowded"):
        from faket.demo.structures import write_demo_structures

        write_demo_structures(Path(output) / STRUCTURES_FOLDER)
    return simulate_dataset(config, force=force, on_phase=on_phase, on_done=on_done)
