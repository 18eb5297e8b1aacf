"""The result of :func:`faket.evaluation.dataset_likeness`: pairs, modalities, the floor.

:class:`DatasetLikeness` holds, per modality, one :class:`PairLikeness` per tomogram (the
modality against another tomogram's reference) and the floor's pairs (reference against
reference); its ``table()`` and ``to_dict()`` are what likeness.csv and likeness.json
hold (:func:`write_likeness_csv`).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "METRICS",
    "DatasetLikeness",
    "ModalityLikeness",
    "PairLikeness",
    "write_likeness_csv",
]

METRICS = ("spectrum_log_distance", "grey_w1", "domain_auc")
"""The measures, as named in the result, likeness.json and likeness.csv."""


@dataclass(frozen=True)
class PairLikeness:
    """The measures of one pair: a modality (or a reference) against a reference.

    Attributes
    ----------
    tomogram : int or None
        The modality's tomogram index; None for a floor pair.
    a, b : str
        The compared files: relative to the dataset (``model_0/noisy.mrc``), absolute
        for the user's reference files. ``b`` is always a reference.
    spectrum_log_distance : float
        Mean over the tilts of the spectrum log-distance (decades).
    spectrum_per_tilt : tuple of float
        ``(n_tilts,)`` the spectrum log-distance of each compared tilt.
    grey_w1 : float
        Wasserstein-1 distance of the standardised grey values (units of a tilt's std).
    domain_auc : float
        Held-out ROC AUC of the domain classifier, a positive (0.5: indistinguishable).
    """

    tomogram: int | None
    a: str
    b: str
    spectrum_log_distance: float
    spectrum_per_tilt: tuple[float, ...]
    grey_w1: float
    domain_auc: float

    def to_dict(self) -> dict[str, Any]:
        """Return the pair as a JSON-ready dict."""
        return {
            "tomogram": self.tomogram,
            "a": self.a,
            "b": self.b,
            **{m: getattr(self, m) for m in METRICS},
            "spectrum_per_tilt": list(self.spectrum_per_tilt),
        }


@dataclass(frozen=True)
class ModalityLikeness:
    """One modality's pairs (one per tomogram), or the floor's pairs, and their means.

    Attributes
    ----------
    name : str
        The modality (``noisy``, ``faket_spectral``, ...) or ``floor``.
    pairs : tuple of PairLikeness
        One per tomogram (floor: one per pair of references).
    """

    name: str
    pairs: tuple[PairLikeness, ...]

    def mean(self, metric: str) -> float:
        """Return the mean of ``metric`` (one of `METRICS`) over the pairs."""
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        return float(np.mean([getattr(p, metric) for p in self.pairs]))

    @property
    def spectrum_log_distance(self) -> float:
        """Mean spectrum log-distance over the pairs (decades)."""
        return self.mean("spectrum_log_distance")

    @property
    def grey_w1(self) -> float:
        """Mean grey-value Wasserstein-1 distance over the pairs."""
        return self.mean("grey_w1")

    @property
    def domain_auc(self) -> float:
        """Mean held-out domain AUC over the pairs."""
        return self.mean("domain_auc")


@dataclass(frozen=True)
class DatasetLikeness:
    """The likeness of each modality of a dataset to its microscope, and the floor.

    Attributes
    ----------
    dataset : str
        The dataset folder.
    modalities : dict of str to ModalityLikeness
        In the order noiseless, baseline, noisy, content, faket, then the others by name.
    floor : ModalityLikeness
        Reference against reference of different tomograms (name ``floor``).
    tilts : tuple of int
        The dataset tilt indices compared (even positions train the classifier, odd
        ones test it).
    tilt_angles_deg : tuple of float
        Their angles in degrees.
    zero_tilt : int
        The compared tilt nearest 0 degrees (a dataset tilt index).
    freqs : tuple of float
        ``(n_bins,)`` spectrum bin frequencies in cycles/pixel (one grid for all pairs).
    zero_tilt_log_power : dict of str to tuple of float
        Modality (and ``reference``) -> ``(n_bins,)`` log10 power of the standardised
        zero tilt, averaged over the tomograms (``reference``: over the references).
    settings : dict
        seed, steps, batch_size, patch, tile, max_samples as resolved for the run.
    """

    dataset: str
    modalities: dict[str, ModalityLikeness]
    floor: ModalityLikeness
    tilts: tuple[int, ...]
    tilt_angles_deg: tuple[float, ...]
    zero_tilt: int
    freqs: tuple[float, ...]
    zero_tilt_log_power: dict[str, tuple[float, ...]]
    settings: dict[str, Any] = field(default_factory=dict)

    def ratio(self, modality: str, metric: str) -> float | None:
        """Return the modality's mean ``metric`` divided by the floor's (None: floor 0).

        For the distances, 1 means as close to the reference as another reference is;
        for the AUC, the ratio runs from about 1 to ``1 / floor``.
        """
        floor = self.floor.mean(metric)
        return None if floor == 0 else self.modalities[modality].mean(metric) / floor

    def table(self) -> list[dict[str, Any]]:
        """Return one row per modality, then the floor: the means and the ratios."""
        rows = []
        for name, m in [*self.modalities.items(), ("floor", self.floor)]:
            row: dict[str, Any] = {"modality": name, "n_pairs": len(m.pairs)}
            row.update({metric: m.mean(metric) for metric in METRICS})
            for metric in METRICS:
                row[f"{metric}_ratio"] = 1.0 if name == "floor" else self.ratio(name, metric)
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        """Return the whole result as a JSON-ready dict (the content of likeness.json)."""

        def summary(m: ModalityLikeness) -> dict[str, Any]:
            return {
                **{metric: m.mean(metric) for metric in METRICS},
                "pairs": [p.to_dict() for p in m.pairs],
            }

        modalities = {}
        for name, m in self.modalities.items():
            modalities[name] = summary(m)
            modalities[name]["ratio_to_floor"] = {k: self.ratio(name, k) for k in METRICS}
        return {
            "faket_likeness": 1,
            "dataset": self.dataset,
            "settings": dict(self.settings),
            "tilts": list(self.tilts),
            "tilt_angles_deg": list(self.tilt_angles_deg),
            "zero_tilt": self.zero_tilt,
            "freqs_cycles_per_px": list(self.freqs),
            "zero_tilt_log10_power": {k: list(v) for k, v in self.zero_tilt_log_power.items()},
            "floor": summary(self.floor),
            "modalities": modalities,
            "table": self.table(),
        }


def write_likeness_csv(result: DatasetLikeness, path: str | os.PathLike[str]) -> None:
    """Write `DatasetLikeness.table` as CSV, atomically (6 significant digits).

    Columns: ``modality, n_pairs, spectrum_log_distance, grey_w1, domain_auc,
    spectrum_log_distance_ratio, grey_w1_ratio, domain_auc_ratio``; the last row is the
    floor. A ratio whose floor is 0 is left empty.
    """
    from faket.io import atomic_write

    rows = result.table()
    columns = list(rows[0])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            [
                "" if row[c] is None else f"{row[c]:.6g}" if isinstance(row[c], float) else row[c]
                for c in columns
            ]
        )
    with atomic_write(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
