"""Likeness of a dataset's modalities to its microscope, next to the floor of two references.

A dataset made by ``faket simulate`` (see :mod:`faket.pipeline.layout`) holds, for each
tomogram ``i``, the modality tilt-series ``model_<i>/<modality>.mrc`` and a reference
tilt-series of the microscope. For every tomogram and modality, :func:`dataset_likeness`
compares the modality with the reference of ANOTHER tomogram, the one that styled it
(dataset.json's ``style_reference``, never the reference of its own content), with the
three measures of :mod:`faket.evaluation.likeness`. The FLOOR is the same three numbers
between two references of different tomograms: how unlike two tilt-series of one
microscope are when only the specimen changes. A modality that looks like the microscope
scores about the floor; the ratio to the floor says how far it is.

Which files are modalities: every ``*.mrc`` of a tomogram folder that is not a label
volume (grandmodel, class_mask, occupancy_mask), a reconstruction (``tomogram_*``), the
folder's own reference (``reference*``) or ``content*`` (the NST's content input, a
modality only when asked for), and that every tomogram folder has. New modalities such as
``noisy_spectral.mrc`` are found without code changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faket.errors import FaketInputError
from faket.evaluation.likeness import (
    compare_tilt_series,
    default_patch,
    default_spectrum_tile,
)
from faket.evaluation.likeness_result import (
    METRICS,
    DatasetLikeness,
    ModalityLikeness,
    PairLikeness,
    write_likeness_csv,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "METRICS",
    "DatasetLikeness",
    "ModalityLikeness",
    "PairLikeness",
    "dataset_likeness",
    "find_modalities",
    "write_likeness_csv",
]

_ORDER = ("noiseless", "baseline", "noisy", "content", "faket")
_LABEL_VOLUMES = ("grandmodel", "class_mask", "occupancy_mask")


# -------------------------------------------------------------------------- the plan


def _modality_key(name: str) -> tuple[int, str]:
    base = name.split("_", 1)[0]
    return (_ORDER.index(base) if base in _ORDER else len(_ORDER), name)


def find_modalities(folder: str | os.PathLike[str]) -> list[str]:
    """Return the modality tilt-series of one tomogram folder, by file name.

    Every ``<name>.mrc`` except the label volumes (grandmodel, class_mask,
    occupancy_mask), reconstructions (``tomogram_*``), references (``reference*``) and
    ``content*``; ordered noiseless, baseline, noisy, content, faket, then by name
    (``noisy_spectral`` after ``noisy``).
    """
    names = []
    for file in Path(folder).glob("*.mrc"):
        name = file.name[: -len(".mrc")]
        if name in _LABEL_VOLUMES or name.startswith(("tomogram_", "reference", "content")):
            continue
        if file.is_file() and not name.startswith("."):
            names.append(name)
    return sorted(names, key=_modality_key)


@dataclass(frozen=True)
class _Plan:
    references: list[Path]
    tomograms: list[tuple[int, Path, int]]  # (index, folder, reference position)
    modalities: list[str]
    tilts: list[int]
    angles: list[float]
    side: int


def _read_index(root: Path) -> dict[str, Any]:
    from faket.io import read_json_object

    path = root / "dataset.json"
    if not root.is_dir():
        raise FaketInputError("no such dataset folder", root)
    if not path.is_file():
        raise FaketInputError("no dataset.json; not a dataset made by faket simulate", path)
    index = read_json_object(path)
    if index is None:
        raise FaketInputError("unreadable dataset.json (not a JSON object)", path)
    for key, kind in (
        ("tomograms", list),
        ("reference_specimens", list),
        ("tilt_angles_deg", list),
        ("reference_source", str),
    ):
        if not isinstance(index.get(key), kind):
            raise FaketInputError(f"dataset.json has no valid {key!r}", path)
    return index


def _header_shape(path: Path) -> tuple[int, int, int]:
    """Return ``(nz, ny, nx)`` from an MRC header, a one-line error if it cannot be read."""
    import warnings

    import mrcfile

    if not path.is_file():
        raise FaketInputError("missing tilt-series", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.open(path, mode="r", header_only=True, permissive=True) as mrc:
                header = mrc.header
                return int(header.nz), int(header.ny), int(header.nx)
    except (ValueError, OSError, EOFError) as err:
        raise FaketInputError(f"unreadable MRC file ({err})", path) from None


def _plan(
    root: Path,
    modalities: Sequence[str] | None,
    tilts: Sequence[int] | None,
) -> _Plan:
    index = _read_index(root)
    microscope = index["reference_source"] == "microscope"
    if microscope:
        references = [root / str(name) / "reference.mrc" for name in index["reference_specimens"]]
    else:
        references = [root / str(name) for name in index["reference_specimens"]]  # absolute
    if len(references) < 2:
        where = references[0] if references else root / "dataset.json"
        raise FaketInputError(
            "the likeness floor needs references of two different tomograms and this "
            "dataset has one (make it with 2 or more tomograms, or 2 reference files)",
            where,
        )
    tomograms: list[tuple[int, Path, int]] = []
    for entry in index["tomograms"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("folder"), str):
            raise FaketInputError("dataset.json: a tomogram without a folder", root)
        i = entry.get("index")
        i = i if isinstance(i, int) and not isinstance(i, bool) else len(tomograms)
        k = entry.get("style_reference")
        if not isinstance(k, int) or not 0 <= k < len(references) or (microscope and k == i):
            k = (i + 1) % len(references)  # the next specimen: never its own content
        tomograms.append((i, root / entry["folder"], k))
    if not tomograms:
        raise FaketInputError("dataset.json lists no tomograms", root / "dataset.json")
    if modalities is None:
        found = [set(find_modalities(folder)) for _, folder, _ in tomograms]
        names = sorted(set.intersection(*found), key=_modality_key)
        if not names:
            raise FaketInputError("no modality tilt-series in every tomogram folder", root)
    else:
        names = list(dict.fromkeys(modalities))
        for name in names:
            if not name or Path(name).name != name or name.endswith(".mrc"):
                raise FaketInputError(f"modality {name!r} is not a file stem like 'noisy'")
            if name == "reference":
                raise FaketInputError(
                    "'reference' is not a modality: references against references are the floor"
                )
    angles = [float(a) for a in index["tilt_angles_deg"]]
    n_tilts = len(angles)
    picked = list(range(n_tilts)) if tilts is None else sorted(set(int(t) for t in tilts))
    if picked and not 0 <= picked[0] <= picked[-1] < n_tilts:
        raise FaketInputError(f"tilts must lie in 0..{n_tilts - 1}, got {picked[0]}..{picked[-1]}")
    if len(picked) < 2:
        raise FaketInputError("the likeness needs at least 2 tilts (even ones train, odd test)")
    files = references + [folder / f"{m}.mrc" for _, folder, _ in tomograms for m in names]
    sides = []
    for path in files:
        nz, ny, nx = _header_shape(path)
        if nz != n_tilts:
            raise FaketInputError(
                f"{nz} tilts, but the dataset has {n_tilts} (tilt_angles_deg of dataset.json)",
                path,
            )
        sides.append(min(ny, nx))
    if min(sides) < 8:
        raise FaketInputError(
            "images must be at least 8 pixels on a side", files[int(np.argmin(sides))]
        )
    return _Plan(references, tomograms, names, picked, [angles[t] for t in picked], min(sides))


def _label(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def dataset_likeness(
    dataset_dir: str | os.PathLike[str],
    *,
    modalities: Sequence[str] | None = None,
    tilts: Sequence[int] | None = None,
    seed: int = 0,
    steps: int = 300,
    batch_size: int = 32,
    patch: int | None = None,
    tile: int | None = None,
    max_samples: int = 200_000,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> DatasetLikeness:
    """Compare every modality of a dataset with another tomogram's reference; and the floor.

    For tomogram ``i`` and each modality, the modality's tilt-series is compared with the
    reference that styled tomogram ``i`` (dataset.json's ``style_reference``; with the
    built-in microscope the reference of specimen ``(i + 1) mod n``, never tomogram
    ``i``'s own). The floor compares reference ``k`` with reference ``(k + 1) mod m`` for
    each of the ``m`` references (one pair when ``m == 2``): different tomograms of one
    microscope. Every input is checked (headers, tilt counts) before the first
    comparison.

    Parameters
    ----------
    dataset_dir : str or PathLike
        A dataset folder made by ``faket simulate`` / ``faket demo`` (with dataset.json).
    modalities : sequence of str, optional
        File stems to compare (``noisy``, ``faket_spectral``, ``content``); default every
        modality found in all tomogram folders (`find_modalities`).
    tilts : sequence of int, optional
        Dataset tilt indices to compare (at least 2); default all.
    seed : int
        Seed of the grey-value subsample and of every classifier (the same in each pair,
        so the modalities are measured with the same draws).
    steps, batch_size, patch : int
        The domain classifier's training steps, patches per series per step, and patch
        side (default `faket.evaluation.likeness.default_patch` of the smallest image).
    tile : int, optional
        Welch tile of the spectra (default `default_spectrum_tile` of the smallest image;
        one grid for every pair).
    max_samples : int
        Grey values per series for the Wasserstein-1 distance.
    device : str or torch.device
        Where the comparisons run.
    progress : callable, optional
        Called with (pairs done, pairs in all): with 0 once every input is checked, then
        after each comparison.

    Returns
    -------
    DatasetLikeness

    Raises
    ------
    FaketInputError
        Naming the file: no dataset.json, fewer than two references (no floor), a
        missing or unreadable tilt-series, a tilt count that differs from the dataset's.
    """
    root = Path(dataset_dir)
    plan = _plan(root, modalities, tilts)
    t = default_spectrum_tile(plan.side) if tile is None else min(tile, plan.side)
    p = default_patch(plan.side) if patch is None else patch
    if not 8 <= p <= plan.side:
        raise FaketInputError(
            f"patch must be from 8 to the smallest image side ({plan.side} px), got {p}"
        )
    zero = int(np.argmin(np.abs(np.asarray(plan.angles))))
    cache: dict[Path, torch.Tensor] = {}

    def load(path: Path) -> torch.Tensor:
        if path not in cache:
            if len(cache) >= 2:
                cache.pop(next(iter(cache)))
            cache[path] = _read_tilts(path, plan.tilts).to(device)
        return cache[path]

    floor_pairs = [(k, (k + 1) % len(plan.references)) for k in range(len(plan.references))]
    floor_pairs = floor_pairs[:1] if len(plan.references) == 2 else floor_pairs
    total = len(plan.tomograms) * len(plan.modalities) + len(floor_pairs)
    done = 0
    if progress is not None:
        progress(0, total)  # the inputs are checked: the work starts
    spectra: dict[str, list[np.ndarray]] = {}
    freqs = np.zeros(0)

    def compare(tomogram: int | None, a: Path, b: Path, name: str) -> PairLikeness:
        nonlocal done, freqs
        try:
            result = compare_tilt_series(
                load(a),
                load(b),
                tile=t,
                max_samples=max_samples,
                patch=p,
                steps=steps,
                batch_size=batch_size,
                seed=seed,
            )
        except FaketInputError:
            raise
        except ValueError as err:  # e.g. a constant tilt
            raise FaketInputError(f"cannot compare it with {_label(b, root)}: {err}", a) from None
        freqs = result.spectrum.freqs
        spectra.setdefault(name, []).append(result.spectrum.log_power_a[zero])
        if name == "reference":
            spectra[name].append(result.spectrum.log_power_b[zero])
        done += 1
        if progress is not None:
            progress(done, total)
        return PairLikeness(
            tomogram=tomogram,
            a=_label(a, root),
            b=_label(b, root),
            spectrum_log_distance=result.spectrum.distance,
            spectrum_per_tilt=tuple(float(v) for v in result.spectrum.per_tilt),
            grey_w1=result.grey_w1,
            domain_auc=result.domain.auc,
        )

    pairs: dict[str, list[PairLikeness]] = {m: [] for m in plan.modalities}
    for i, folder, k in plan.tomograms:
        for m in plan.modalities:
            pairs[m].append(compare(i, folder / f"{m}.mrc", plan.references[k], m))
    floor = [
        compare(None, plan.references[j], plan.references[k], "reference") for j, k in floor_pairs
    ]
    return DatasetLikeness(
        dataset=str(root),
        modalities={m: ModalityLikeness(m, tuple(v)) for m, v in pairs.items()},
        floor=ModalityLikeness("floor", tuple(floor)),
        tilts=tuple(plan.tilts),
        tilt_angles_deg=tuple(plan.angles),
        zero_tilt=plan.tilts[zero],
        freqs=tuple(float(f) for f in freqs),
        zero_tilt_log_power={
            k: tuple(float(v) for v in np.mean(v_list, axis=0)) for k, v_list in spectra.items()
        },
        settings={
            "seed": seed,
            "steps": steps,
            "batch_size": batch_size,
            "patch": p,
            "tile": t,
            "max_samples": max_samples,
        },
    )


def _read_tilts(path: Path, tilts: list[int]) -> Any:
    """Return tilts ``tilts`` of a series as one float32 tensor, reading only those.

    The series is never held whole (with `read_mrc`'s float32 copy and finite check,
    2.75 series at 61 x 3500^2).
    """
    import torch

    from faket.io.tilt_stack import MrcTilts

    data = MrcTilts(path).take(tilts)
    bad = int((~torch.isfinite(data)).sum())
    if bad:
        raise FaketInputError(f"{bad} of {data.numel()} values are NaN or Inf", path)
    return data
