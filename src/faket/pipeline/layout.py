"""Where a dataset's files go, which of them faket writes, and the per-specimen seeds.

Dataset layout (``run.output``)::

    dataset.json                 index: tomograms, modalities, files, config hash
    config.yaml                  the configuration of the run
    noise_stats.json             per-reference noise statistics (phase 2)
    report.html, report/*.png    the human report
    .faket/file_hashes.json      SHA-256 of each input file, cached by size and mtime
    references/                  the user's references reconstructed (source: files)
    model_<i>/                   one per tomogram, i = 0 .. n_tomograms - 1
        grandmodel.mrc, class_mask.mrc, occupancy_mask.mrc      labels (phantom)
        particle_locations.txt, particles.star, classes.json   particle lists
        objects.xml              DeepFinder object list (class_mask.mrc: int8 ids)
        tilt_angles.tlt, noiseless.mrc                          noiseless projections
        tilt_angles.xf           identity IMOD transforms: the simulated modalities are aligned
        reference.mrc            the microscope's image of this content (source: microscope)
        reference.tlt, .xf, .aln, .defocus, .tilts.json         what the microscope applied:
                                 angles, IMOD/AreTomo alignments, defocus, per-tilt record
        baseline.mrc, noisy.mrc, content.mrc, faket.mrc         the modalities
        faket_random.mrc         FAKET with the random backbone (style.ablation_models)
        tomogram_<modality>.mrc  reconstructions (noiseless, baseline, noisy, faket, reference)
        specimen.json            phase-1 completion marker
        provenance.json          config, versions, seed, device, timings; written LAST
    reference_<j>/               extra reference specimen when n_tomograms == 1 (j = 1)
    copick/                      copick project (``run.outputs: [copick]``), written whole

Only these names are faket's: ``--force`` removes them and nothing else, and a run
removes the hidden temporary files (``.<name>.tmp-<8 hex>...``) an interrupted run left
next to them.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np

from faket.config import FaketConfig
from faket.io.alignments import ALIGNMENT_SUFFIXES
from faket.io.specimen_files import SPECIMEN_FILES

MODALITY_FILES = ("baseline", "noisy", "content", "faket")
"""The modalities made from the noiseless projections, in the order they are made."""

MODEL_MODALITIES = ("noisy", "content", "faket")
"""The modalities each noise model makes (BASELINE is the published model's, order 0)."""

RECONSTRUCTED = ("noiseless", "baseline", "noisy", "faket", "reference")
"""The tilt-series reconstructed into ``tomogram_<name>.mrc`` (primary noise model)."""

RANDOM_FAKET = "faket_random"
"""FAKET styled with the random backbone (``style.ablation_models``): ``faket_random<suffix>``."""

NOISE_MODELS = ("published", "spectral")
"""Every noise model (`faket.config.NoiseSettings`)."""


def model_suffix(model: str, primary: str) -> str:
    """Return the file-name suffix of a noise model's modalities: "" or ``_<model>``."""
    return "" if model == primary else f"_{model}"


def modality_names(models: tuple[str, ...], ablation: tuple[str, ...] = ()) -> list[str]:
    """Return the modality tilt-series of a run, primary model first (``noisy_spectral`` ...).

    Parameters
    ----------
    models : tuple of str
        The run's noise models, the primary one first (`NoiseSettings.models`).
    ablation : tuple of str
        The models also styled with the random backbone (``style.ablation_models``):
        each adds ``faket_random<suffix>`` after the model's FAKET.
    """
    names: list[str] = []
    for model in models:
        suffix = model_suffix(model, models[0])
        names += (
            MODALITY_FILES if model == models[0] else [f"{m}{suffix}" for m in MODEL_MODALITIES]
        )
        if model in ablation:
            names.append(f"{RANDOM_FAKET}{suffix}")
    return names


def reconstructed_names(models: tuple[str, ...], ablation: tuple[str, ...] = ()) -> list[str]:
    """Return the tilt-series reconstructed into ``tomogram_<name>.mrc``, reference last.

    ``ablation`` as in `modality_names`: each adds ``faket_random<suffix>``.
    """
    names = list(RECONSTRUCTED[:-1])
    if models[0] in ablation:
        names.append(RANDOM_FAKET)
    for model in models[1:]:
        names += [f"noisy_{model}", f"faket_{model}"]
        if model in ablation:
            names.append(f"{RANDOM_FAKET}_{model}")
    return [*names, RECONSTRUCTED[-1]]


_SUFFIXES = tuple(f"_{model}" for model in NOISE_MODELS)

LABEL_FILES = SPECIMEN_FILES
"""The phantom stage's files in each tomogram folder."""

SPECIMEN_FOLDER_FILES = (
    *LABEL_FILES,
    "tilt_angles.tlt",
    "tilt_angles.xf",
    "noiseless.mrc",
    "reference.mrc",
    *(f"reference{suffix}" for suffix in ALIGNMENT_SUFFIXES),
    *(f"{m}.mrc" for m in MODALITY_FILES),
    *(f"{m}_{model}.mrc" for model in NOISE_MODELS for m in MODEL_MODALITIES),
    *(f"tomogram_{m}.mrc" for m in RECONSTRUCTED),
    *(f"tomogram_{m}_{model}.mrc" for model in NOISE_MODELS for m in ("noisy", "faket")),
    *(f"{t}{RANDOM_FAKET}{s}.mrc" for t in ("", "tomogram_") for s in ("", *_SUFFIXES)),
    "specimen.json",
    "provenance.json",
)
"""Every file faket may write in a ``model_<i>`` or ``reference_<j>`` folder."""

DATASET_FILES = ("dataset.json", "config.yaml", "noise_stats.json", "report.html")
"""The files faket writes at the dataset's root."""

DATASET_FOLDERS = ("report", "references", ".faket")
"""The folders at the root whose files are all faket's."""

EXPORT_FOLDERS = ("copick",)
"""The folders at the root that the exports (``run.outputs``) write whole, files nested."""

_SPECIMEN_FOLDER = re.compile(r"^(model|reference)_\d+$")
_TEMP_FILE = re.compile(r"^\..+\.tmp-[0-9a-f]{8}")


def n_specimens(config: FaketConfig) -> int:
    """Return how many specimens phase 1 builds: the tomograms, plus one reference if n == 1.

    With the microscope as reference, tomogram ``i`` is styled with the reference of
    specimen ``(i + 1) mod n``; with one tomogram that would be its own content, so a
    second specimen is made only to be imaged as the reference.
    """
    n = config.run.n_tomograms
    return 2 if n == 1 and config.reference.source == "microscope" else n


def style_source(config: FaketConfig, index: int) -> int:
    """Return which reference styles tomogram ``index`` (never the one of its own content)."""
    if config.reference.source == "files":
        return index % len(config.reference.tilt_series)
    return (index + 1) % n_specimens(config)


def specimen_dir(config: FaketConfig, index: int) -> Path:
    """Return the folder of specimen ``index``: ``model_<i>`` or ``reference_<i>``."""
    kind = "model" if index < config.run.n_tomograms else "reference"
    return Path(config.run.output) / f"{kind}_{index}"


def specimen_seed(config: FaketConfig, index: int) -> int:
    """Return the seed of specimen ``index``, derived from ``run.seed`` (independent streams)."""
    state = np.random.SeedSequence([config.run.seed, index]).generate_state(1)
    return int(state[0] & 0x7FFFFFFF)


def written_by_faket(path: Path, output: Path) -> bool:
    """Return whether ``path`` is (or may become) one of the dataset's own files."""
    try:
        relative = Path(path).resolve().relative_to(Path(output).resolve())
    except ValueError:
        return False
    parts = relative.parts
    if len(parts) == 1:
        return parts[0] in DATASET_FILES
    if parts[0] in DATASET_FOLDERS or parts[0] in EXPORT_FOLDERS:
        return True
    return (
        len(parts) == 2
        and bool(_SPECIMEN_FOLDER.match(parts[0]))
        and (parts[1] in SPECIMEN_FOLDER_FILES)
    )


def _faket_folders(output: Path) -> list[Path]:
    """Return the dataset's folders that hold faket's files (those that exist)."""
    folders = [output, *(output / name for name in DATASET_FOLDERS)]
    if output.is_dir():
        folders += [p for p in output.iterdir() if p.is_dir() and _SPECIMEN_FOLDER.match(p.name)]
    return [f for f in folders if f.is_dir()]


def remove_stale_temporaries(output: Path) -> list[Path]:
    """Remove the hidden temporary files an interrupted run left in the dataset.

    Only names of faket's atomic writes (``.<name>.tmp-<8 hex>...``) in faket's folders.
    Run it before a run starts, never while another run writes to the same folder.
    """
    removed = []
    for folder in _faket_folders(output):
        for file in folder.iterdir():
            if file.is_file() and _TEMP_FILE.match(file.name):
                file.unlink(missing_ok=True)
                removed.append(file)
    exports = tuple(f".{name}.tmp-" for name in EXPORT_FOLDERS)  # an export's folder
    for folder in output.iterdir() if output.is_dir() else []:
        if folder.is_dir() and folder.name.startswith(exports) and _TEMP_FILE.match(folder.name):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def written_files(output: Path) -> list[Path]:
    """Return the dataset's files that faket wrote (the layout's names), those that exist."""
    return [
        file
        for folder in _faket_folders(output)
        for file in folder.iterdir()
        if file.is_file() and written_by_faket(file, output)
    ]


def remove_written_files(output: Path) -> list[Path]:
    """Remove the files faket wrote in a dataset (for ``--force``); keep everything else.

    Folders that are empty afterwards are removed too; a folder that holds a file of the
    user's stays, with that file.
    """
    removed = remove_stale_temporaries(output)
    for name in EXPORT_FOLDERS:
        if (output / name).is_dir():
            shutil.rmtree(output / name)
            removed.append(output / name)
    for file in written_files(output):
        file.unlink()
        removed.append(file)
    for folder in _faket_folders(output):
        if folder != output and not any(folder.iterdir()):
            folder.rmdir()
    return removed
