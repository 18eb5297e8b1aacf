"""The configuration of a ``faket simulate`` run: one pydantic model per stage plus the run.

Every field has a default, a unit where it has one, and a one-line description (shown by
``faket config --example``). Configurations are YAML files: :meth:`FaketConfig.from_yaml`
validates one and reports every problem with its field path; :meth:`FaketConfig.to_yaml`
writes one back.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from faket.conventions import MAX_TILT_DEG
from faket.errors import FaketInputError

PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(ge=1)]
Count = Annotated[int, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_M = TypeVar("_M", bound=_Model)


class RunSettings(_Model):
    """Where the dataset goes, how many tomograms, the seed and the compute resources."""

    output: Path = Field(default=Path("faket_output"), description="Dataset folder (created).")
    n_tomograms: PositiveInt = Field(default=3, description="Number of labelled tomograms to make.")
    seed: int = Field(
        default=0, description="Seed of everything random; tomogram i derives its own."
    )
    device: str = Field(default="auto", description="Compute device: auto, cpu, cuda or cuda:N.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        default="auto",
        description="Precision of the style transfer's convolutions; auto: bf16 where the "
        "hardware has it (GPU, CPU with AMX/AVX-512 BF16), else fp32.",
    )
    workers: PositiveInt = Field(default=1, description="Tomograms run in parallel processes.")
    threads: PositiveInt | None = Field(
        default=None,
        description="CPU threads per tomogram task (null: torch's default, all cores); "
        "with workers > 1 set it to cores / workers.",
    )
    outputs: list[Literal["copick"]] = Field(
        default_factory=list,
        description="Exports written at the end into <output>/<name>/: copick (a copick "
        "project; needs pip install 'faket[copick]').",
    )

    @field_validator("outputs")
    @classmethod
    def _exports_installed(cls, value: list[str]) -> list[str]:
        import importlib.util

        if "copick" in value and importlib.util.find_spec("copick") is None:
            raise ValueError("copick is not installed: pip install 'faket[copick]'")
        return list(dict.fromkeys(value))


class StructureEntry(_Model):
    """A particle class from a file: an atomic model (PDB/mmCIF) or a density map (MRC)."""

    path: Path = Field(description="Atomic model or map file.")
    count: Count = Field(description="Number of particles of this structure per tomogram.")


MembraneShape = Literal["sphere", "ellipsoid", "blob", "torus", "tube", "sheet"]


class MembraneEntry(_Model):
    """Membranes of one shape: closed (sphere, ellipsoid, blob, torus) or open (tube, sheet)."""

    shape: MembraneShape = Field(description="sphere, ellipsoid, blob, torus, tube or sheet.")
    count: Count | None = Field(
        default=None, description="How many (give this or area_fraction; default 1)."
    )
    area_fraction: PositiveFloat | None = Field(
        default=None,
        description="Instead of a count: midplane area per slab XY area (1 = one flat sheet).",
    )
    size_nm: tuple[float, float] | None = Field(
        default=None,
        description="Size range in nm: radius (sphere, tube, torus major, blob mean), "
        "largest semi-axis (ellipsoid), largest height (sheet); null: typical.",
    )

    @model_validator(mode="after")
    def _count_or_fraction(self) -> MembraneEntry:
        if self.count is not None and self.area_fraction is not None:
            raise ValueError("give a count or an area_fraction, not both")
        if self.size_nm is not None and not 0 <= self.size_nm[0] <= self.size_nm[1]:
            raise ValueError("size_nm: the range must be 0 <= smallest <= largest")
        return self


class MembraneProteinEntry(_Model):
    """Proteins of one class placed on the membranes, oriented by the surface normal."""

    builtin: str | None = Field(default=None, description="A built-in particle type, or:")
    path: Path | None = Field(default=None, description="An atomic model or map file.")
    count: Count = Field(description="Number per tomogram.")
    offset_nm: float = Field(
        default=0.0,
        description="Centre's distance from the membrane's midplane along the normal, nm "
        "(0: transmembrane; positive: outside a closed membrane).",
    )
    axis: tuple[float, float, float] = Field(
        default=(0.0, 0.0, 1.0),
        description="The structure's axis (x, y, z of its own frame) set along the normal.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> MembraneProteinEntry:
        if (self.builtin is None) == (self.path is None):
            raise ValueError("give one of builtin or path")
        if self.builtin is not None:
            from faket.phantom import BUILTIN_PARTICLES

            if self.builtin not in BUILTIN_PARTICLES:
                raise ValueError(
                    f"unknown built-in particle {self.builtin}; "
                    f"choose from {', '.join(BUILTIN_PARTICLES)}"
                )
        if not sum(a * a for a in self.axis) > 0:
            raise ValueError("axis: must not be the zero vector")
        return self

    @property
    def name(self) -> str:
        """The class name: the built-in type or the file name's stem."""
        if self.builtin is not None:
            return self.builtin
        assert self.path is not None
        return self.path.name.split(".")[0] or "structure"


class FilamentEntry(_Model):
    """Filaments of one type along smooth random paths (actin, microtubule, or helical)."""

    type: Literal["actin", "microtubule", "helical"] = Field(
        description="actin, microtubule, or helical (a user's monomer on a helix)."
    )
    count: Count = Field(description="Number per tomogram.")
    length_nm: tuple[PositiveFloat, PositiveFloat] = Field(
        default=(200.0, 600.0), description="Shortest and longest length, nm (the box cuts)."
    )
    persistence_length_nm: PositiveFloat | None = Field(
        default=None, description="Persistence length, nm (null: actin 10 um, microtubule 1 mm)."
    )
    path: Path | None = Field(
        default=None, description="helical: the monomer's atomic model or map file."
    )
    builtin: str | None = Field(default=None, description="helical: or a built-in monomer type.")
    rise_nm: PositiveFloat | None = Field(default=None, description="helical: rise per monomer.")
    twist_deg: float | None = Field(default=None, description="helical: twist per monomer.")
    radius_nm: float | None = Field(
        default=None, ge=0, description="helical: monomer centres' distance from the axis."
    )
    starts: PositiveInt = Field(default=1, description="helical: number of helix starts.")

    @model_validator(mode="after")
    def _range(self) -> FilamentEntry:
        if self.length_nm[1] < self.length_nm[0]:
            raise ValueError("length_nm: the longest is below the shortest")
        helical = (self.path, self.builtin, self.rise_nm, self.twist_deg, self.radius_nm)
        if self.type != "helical" and any(v is not None for v in helical):
            raise ValueError(
                f"path, builtin, rise_nm, twist_deg, radius_nm are for helical, not {self.type}"
            )
        if self.type == "helical":
            if (self.path is None) == (self.builtin is None):
                raise ValueError("a helical filament needs one of path or builtin (its monomer)")
            if None in (self.rise_nm, self.twist_deg, self.radius_nm):
                raise ValueError("a helical filament needs rise_nm, twist_deg and radius_nm")
        if self.builtin is not None:
            from faket.phantom import BUILTIN_PARTICLES

            if self.builtin not in BUILTIN_PARTICLES:
                raise ValueError(f"unknown built-in particle {self.builtin}")
        return self

    @property
    def name(self) -> str:
        """The class name: actin, microtubule, or the monomer's type or file stem."""
        if self.type != "helical":
            return self.type
        if self.builtin is not None:
            return f"{self.builtin}_filament"
        assert self.path is not None
        return self.path.name.split(".")[0] or "filament"


class PhantomSettings(_Model):
    """The specimens ("grandmodels"): box, voxel size, particles, vesicles, fiducials."""

    shape_zyx: tuple[PositiveInt, PositiveInt, PositiveInt] = Field(
        default=(96, 256, 256), description="Box size (nz, ny, nx) in voxels."
    )
    voxel_size_a: PositiveFloat = Field(default=10.0, description="Voxel size in Angstrom.")
    slab_voxels: PositiveInt | None = Field(
        default=None,
        description="Sample slab thickness in voxels, centred in Z (null: the box's nz).",
    )
    builtin: dict[str, Count] = Field(
        default_factory=lambda: {"ribosome": 6, "cage": 6, "ring": 8, "rod": 8, "globule": 16},
        description="Built-in particle type -> count per tomogram.",
    )
    structures: list[StructureEntry] = Field(
        default_factory=list, description="Particle classes from files, with counts."
    )
    vesicles: Count = Field(default=2, description="Vesicles (lipid bilayers) per tomogram.")
    vesicle_radius_nm: tuple[PositiveFloat, PositiveFloat] = Field(
        default=(20.0, 40.0), description="Smallest and largest vesicle radius, nm."
    )
    fiducials: Count = Field(default=6, description="Gold fiducials (5-10 nm) per tomogram.")
    membranes: list[MembraneEntry] = Field(
        default_factory=list, description="Membranes of any shape (bilayers), drawn first."
    )
    membrane_proteins: list[MembraneProteinEntry] = Field(
        default_factory=list, description="Proteins placed on the membranes by their normal."
    )
    filaments: list[FilamentEntry] = Field(
        default_factory=list, description="Actin filaments and microtubules."
    )
    volume_fraction: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Fill the cytosol with the soluble particles to this labelled volume "
        "fraction (counts become proportions; null: place the counts).",
    )
    cache_dir: Path | None = Field(
        default=None,
        description="Cache of structure maps (null: $FAKET_CACHE_DIR or ~/.cache/faket).",
    )

    @field_validator("builtin")
    @classmethod
    def _known_types(cls, value: dict[str, int]) -> dict[str, int]:
        from faket.phantom import BUILTIN_PARTICLES

        unknown = sorted(set(value) - set(BUILTIN_PARTICLES))
        if unknown:
            raise ValueError(
                f"unknown built-in particle {', '.join(unknown)}; "
                f"choose from {', '.join(BUILTIN_PARTICLES)}"
            )
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> PhantomSettings:
        n = sum(self.builtin.values()) + sum(s.count for s in self.structures)
        n += len(self.membranes) + len(self.filaments)
        if n + self.vesicles + self.fiducials == 0:
            raise ValueError(
                "no particles, vesicles or fiducials: the specimens would be empty "
                "(their projections constant)"
            )
        return self

    @model_validator(mode="after")
    def _slab_fits(self) -> PhantomSettings:
        if self.slab_voxels is not None and self.slab_voxels > self.shape_zyx[0]:
            raise ValueError(f"slab_voxels {self.slab_voxels} is thicker than the box's nz")
        if self.vesicle_radius_nm[1] < self.vesicle_radius_nm[0]:
            raise ValueError("vesicle_radius_nm: the largest radius is below the smallest")
        if self.membrane_proteins and not self.membranes:
            raise ValueError("membrane_proteins: there are no membranes to place them on")
        if self.volume_fraction is not None and not (
            sum(self.builtin.values()) + sum(s.count for s in self.structures)
        ):
            raise ValueError("volume_fraction: no soluble particle classes to fill it with")
        return self


class ProjectionSettings(_Model):
    """The tilt scheme of the noiseless projections (tilt axis Y)."""

    tilt_min_deg: float = Field(
        default=-60.0, ge=-MAX_TILT_DEG, le=MAX_TILT_DEG, description="First tilt angle, degrees."
    )
    tilt_max_deg: float = Field(
        default=60.0, ge=-MAX_TILT_DEG, le=MAX_TILT_DEG, description="Last tilt angle, degrees."
    )
    tilt_step_deg: PositiveFloat = Field(default=3.0, description="Step between tilts, degrees.")
    angles_file: Path | None = Field(
        default=None, description="Tilt angles file (.tlt/.rawtlt); replaces min/max/step when set."
    )
    angles_from: Literal["settings", "reference"] = Field(
        default="settings",
        description="settings: the angles above; reference: adopt the first reference "
        "tilt-series' angles, ascending (reference.source files).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> ProjectionSettings:
        if self.tilt_max_deg < self.tilt_min_deg:
            raise ValueError("tilt_max_deg is below tilt_min_deg")
        if self.angles_from == "reference" and self.angles_file is not None:
            raise ValueError("angles_from reference and angles_file both set the tilt angles")
        return self


class ReferenceSettings(_Model):
    """The style source: the user's unlabelled tilt-series or the built-in microscope."""

    source: Literal["microscope", "files"] = Field(
        default="microscope",
        description="microscope: image other specimens with faket.microscope; files: yours.",
    )
    tilt_series: list[Path] = Field(
        default_factory=list,
        description="Reference tilt-series: MRC stacks (.mrc, .st, .ali) or CryoET Data "
        "Portal run folders (source: files).",
    )
    angles: list[Path] = Field(
        default_factory=list,
        description="One metadata file per tilt_series, in its image order: .tlt, .rawtlt, "
        ".mdoc, .aln, Warp .xml or RELION .star (empty: the .mdoc/.aln/.xml/.tlt/.rawtlt "
        "next to each stack; a tilt_series may also be a CryoET Data Portal folder).",
    )
    even: list[Path] = Field(
        default_factory=list,
        description="Even half-set tilt-series, one per tilt_series (noise.method even-odd).",
    )
    odd: list[Path] = Field(
        default_factory=list,
        description="Odd half-set tilt-series, one per tilt_series (noise.method even-odd).",
    )
    pixel_size_a: list[PositiveFloat] = Field(
        default_factory=list,
        description="Pixel size of each tilt_series in Angstrom, or one for all (empty: "
        "the MRC header's, else the metadata's); references are Fourier-rescaled to the "
        "phantom's voxel size.",
    )
    angle_tolerance_deg: PositiveFloat = Field(
        default=0.5,
        description="Largest difference between a run angle and the reference tilt paired "
        "with it, degrees (tilts are matched by angle, never by position).",
    )
    voltage_kv: PositiveFloat = Field(
        default=300.0, description="Acceleration voltage of the references, kV (CTF fit)."
    )
    spherical_aberration_mm: float = Field(
        default=2.7, ge=0, description="Spherical aberration Cs of the references, mm (CTF fit)."
    )
    amplitude_contrast: float = Field(
        default=0.07, ge=0, lt=1, description="Amplitude contrast of the references (CTF fit)."
    )
    microscope: dict[str, Any] = Field(
        default_factory=dict,
        description="MicroscopeSettings overrides, e.g. {defocus_um: 4} (source: microscope).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ReferenceSettings:
        if self.source == "files":
            n = len(self.tilt_series)
            if not n:
                raise ValueError("source 'files' needs at least one path in tilt_series")
            if len(self.angles) not in (0, n):
                raise ValueError(f"{n} tilt_series but {len(self.angles)} angles files")
            for name in ("even", "odd"):
                if getattr(self, name) and len(getattr(self, name)) != n:
                    raise ValueError(f"{n} tilt_series but {len(getattr(self, name))} {name} files")
            if bool(self.even) != bool(self.odd):
                raise ValueError("even and odd half-sets come together: give both or neither")
            if len(self.pixel_size_a) not in (0, 1, n):
                raise ValueError(
                    f"pixel_size_a: give one value for all or one per tilt_series ({n}), "
                    f"got {len(self.pixel_size_a)}"
                )
        from faket.microscope import MicroscopeSettings

        try:
            MicroscopeSettings(**self.microscope)
        except TypeError as err:
            raise ValueError(f"microscope: {err}") from None
        return self


NoiseModel = Literal["published", "spectral"]


NoiseMethod = Literal["auto", "paired", "unlabelled", "even-odd", "file"]


class NoiseSettings(_Model):
    """The noise model, and how its statistics are measured on the references."""

    method: NoiseMethod = Field(
        default="auto",
        description="How the references' statistics are measured: paired (against "
        "noiseless twins), unlabelled (each reference alone: a CTF fit of its spectrum), "
        "even-odd (the noise from reference.even - reference.odd), file (stats_file); "
        "auto: file, paired, even-odd or unlabelled, the first whose inputs are given "
        "(the microscope source: paired).",
    )
    model: NoiseModel = Field(
        default="published",
        description="Noise model of NOISY and CONTENT (so of FAKET): published (r and sigma "
        "per tilt: flat transfer, white noise) or spectral (per tilt a radial signal "
        "transfer T(k) and noise power spectrum N(k)).",
    )
    extra_models: list[NoiseModel] = Field(
        default_factory=list,
        description="Further noise models, each also made into NOISY, CONTENT and FAKET "
        "(files <modality>_<model>.mrc), for comparisons in one dataset.",
    )

    stats_file: Path | None = Field(
        default=None, description="Noise statistics JSON (faket noise estimate) to use as they are."
    )
    noiseless: list[Path] = Field(
        default_factory=list,
        description="Noiseless tilt-series paired with reference.tilt_series, to estimate.",
    )

    @model_validator(mode="after")
    def _distinct_models(self) -> NoiseSettings:
        models = [self.model, *self.extra_models]
        if len(set(models)) != len(models):
            raise ValueError(
                f"extra_models {self.extra_models} repeat a model (model: {self.model})"
            )
        return self

    @property
    def models(self) -> tuple[str, ...]:
        """Every noise model of the run, the primary one first."""
        return (self.model, *self.extra_models)


class StyleConfig(_Model):
    """The neural style transfer that makes FAKET from NOISY, CONTENT and the reference."""

    backbone: Literal["vgg16-hed", "vgg19-imagenet", "random"] = Field(
        default="vgg16-hed", description="Feature network (random: the published ablation)."
    )
    weights_path: Path | None = Field(
        default=None, description="Weights file of the backbone (null: default)."
    )
    iterations: PositiveInt = Field(default=1, description="Adam iterations (published: 1).")
    step_size: PositiveFloat = Field(
        default=0.15, description="Adam step size, [0, 1] image units."
    )
    tile: PositiveInt | None = Field(
        default=None,
        description="Tile size in pixels (multiple of 16) for large detectors; null: whole "
        "tilts, or tiles chosen to fit memory_gib.",
    )
    memory_gib: Annotated[float, Field(ge=0.1)] = Field(
        default=2.0,
        description="Working memory of the transfer in GiB, per batch of tilts and per "
        "tilt: a tilt that needs more runs in tiles chosen to fit (the same result).",
    )
    working_size: Annotated[int, Field(ge=16)] | None = Field(
        default=None,
        description="Resize the images to this size for the transfer and back (the "
        "authors' CLI works at 1024); null: the native size.",
    )
    ablation_models: list[NoiseModel] = Field(
        default_factory=list,
        description="Noise models whose NOISY is also styled with a randomly initialised "
        "backbone (the paper's FAKET_RANDOM ablation), into faket_random<suffix>.mrc.",
    )

    @property
    def memory_bytes(self) -> int:
        """``memory_gib`` in bytes."""
        return int(self.memory_gib * 2**30)

    @field_validator("tile")
    @classmethod
    def _tile_multiple_of_16(cls, value: int | None) -> int | None:
        if value is not None and value % 16:
            raise ValueError(f"tile must be a multiple of 16 pixels, got {value}")
        return value


class ReconstructionSettings(_Model):
    """Filtered back-projection of every modality."""

    binning: PositiveInt = Field(default=1, description="Binning factor of the tilt-series first.")
    binning_method: Literal["fourier", "spline"] = Field(
        default="fourier", description="Binning: Fourier crop or cubic spline (the reference's)."
    )
    filter_name: Literal["ramp", "approx-shrec"] = Field(
        default="ramp", description="Filter: ramp or the reverse-engineered SHREC filter."
    )
    thickness: PositiveInt | None = Field(
        default=None,
        description="Tomogram depth in (binned) voxels; null: the specimen's nz / binning.",
    )


class ReportSettings(_Model):
    """The dataset's report (report.html): what it measures besides the figures."""

    likeness: bool = Field(
        default=True,
        description="Measure how alike each modality is to another tomogram's reference "
        "(spectrum, grey values, a domain classifier), next to the floor of two references.",
    )
    likeness_steps: PositiveInt = Field(
        default=300, description="Training steps of each likeness domain classifier."
    )


class FaketConfig(_Model):
    """A whole ``faket simulate`` run."""

    run: RunSettings = Field(default=RunSettings(), description="Run settings.")
    phantom: PhantomSettings = Field(default=PhantomSettings(), description="Specimens.")
    projection: ProjectionSettings = Field(default=ProjectionSettings(), description="Tilt scheme.")
    reference: ReferenceSettings = Field(default=ReferenceSettings(), description="Style source.")
    noise: NoiseSettings = Field(default=NoiseSettings(), description="Noise statistics.")
    style: StyleConfig = Field(default=StyleConfig(), description="Style transfer.")
    reconstruction: ReconstructionSettings = Field(
        default=ReconstructionSettings(), description="Reconstruction."
    )
    report: ReportSettings = Field(default=ReportSettings(), description="The report.")

    def tomogram_thickness(self) -> int:
        """Return the tomograms' depth in binned voxels: the setting, or nz / binning."""
        r = self.reconstruction
        return r.thickness or max(1, self.phantom.shape_zyx[0] // r.binning)

    def microscope_settings(self) -> Any:
        """Return the reference microscope's settings: the slab from the phantom, overrides."""
        from faket.microscope import MicroscopeSettings

        p = self.phantom
        slab_nm = (p.slab_voxels or p.shape_zyx[0]) * p.voxel_size_a / 10
        return MicroscopeSettings(**{"slab_nm": slab_nm, **self.reference.microscope})

    @model_validator(mode="after")
    def _fits_together(self) -> FaketConfig:
        width = self.phantom.shape_zyx[2] // self.reconstruction.binning
        if width < 1:
            raise ValueError(
                f"reconstruction.binning {self.reconstruction.binning} leaves no pixel of the "
                f"detector width {self.phantom.shape_zyx[2]}"
            )
        thickness = self.tomogram_thickness()
        if thickness > width:
            what = (
                "reconstruction.thickness"
                if self.reconstruction.thickness
                else "the default thickness (phantom nz / binning)"
            )
            raise ValueError(
                f"{what} {thickness} is larger than the binned detector width {width}; "
                "set reconstruction.thickness to at most that, or widen phantom.shape_zyx"
            )
        if self.reference.source == "microscope":
            try:
                self.microscope_settings()
            except (TypeError, ValueError) as err:
                raise ValueError(f"reference.microscope: {err}") from None
        return self

    def noise_method(self) -> str:
        """Return the noise statistics' method, ``noise.method`` with ``auto`` resolved."""
        method, noise, ref = self.noise.method, self.noise, self.reference
        if method != "auto":
            return method
        if ref.source == "microscope":
            return "paired"
        if noise.stats_file is not None:
            return "file"
        if noise.noiseless:
            return "paired"
        return "even-odd" if ref.even else "unlabelled"

    @model_validator(mode="after")
    def _method_has_inputs(self) -> FaketConfig:
        method, noise, ref = self.noise_method(), self.noise, self.reference
        files = ref.source == "files"
        if noise.noiseless and len(noise.noiseless) != len(ref.tilt_series):
            raise ValueError(
                f"{len(noise.noiseless)} noise.noiseless files for "
                f"{len(ref.tilt_series)} reference.tilt_series"
            )
        needs = {
            "file": (noise.stats_file is not None, "noise.stats_file"),
            "paired": (not files or bool(noise.noiseless), "noise.noiseless files"),
            "even-odd": (files and bool(ref.even), "reference.even and reference.odd files"),
        }
        given, what = needs.get(method, (True, ""))
        if not given:
            raise ValueError(
                f"noise.method {method} needs {what}"
                + ("" if files else (" (with reference.source files)"))
            )
        if method == "file" and not files:
            raise ValueError("noise.method file needs reference.source files")
        if self.projection.angles_from == "reference" and not files:
            raise ValueError("projection.angles_from reference needs reference.source files")
        return self

    @model_validator(mode="after")
    def _ablation_models_run(self) -> FaketConfig:
        ablation = self.style.ablation_models
        unknown = sorted(set(ablation) - set(self.noise.models))
        if unknown:
            raise ValueError(
                f"style.ablation_models {', '.join(unknown)} is not a noise model of the run "
                f"(noise.model, noise.extra_models: {', '.join(self.noise.models)})"
            )
        if len(set(ablation)) != len(ablation):
            raise ValueError(f"style.ablation_models {ablation} repeat a model")
        if ablation and self.style.backbone == "random":
            raise ValueError(
                "style.ablation_models with style.backbone random: FAKET_RANDOM would repeat FAKET"
            )
        return self

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "config") -> FaketConfig:
        """Validate a mapping; errors become one :class:`FaketInputError` naming each field."""
        try:
            return cls.model_validate({} if data is None else data)
        except ValidationError as err:
            problems = []
            for e in err.errors():
                where = ".".join(str(p) for p in e["loc"]) or "(top level)"
                problems.append(f"{where}: {e['msg']}")
            raise FaketInputError("invalid configuration: " + "; ".join(problems), source) from None

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> FaketConfig:
        """Read and validate a YAML configuration file.

        Raises
        ------
        FaketInputError
            If the file is missing, larger than 1 MiB, binary or not UTF-8, is not YAML,
            uses YAML aliases (``*name``: refused, so a small file cannot expand into a
            huge one), or a field is invalid (field path named).

        Notes
        -----
        Relative paths in the file (inputs, ``run.output``, the cache) are relative to
        the file's folder, not to the current one: a configuration next to its data
        runs from anywhere.
        """
        file = Path(path)
        config = cls.from_dict(_load_yaml(file), source=str(file))
        return resolve_paths(config, file.absolute().parent)

    def to_yaml(self, path: str | os.PathLike[str] | None = None) -> str:
        """Return the configuration as YAML, and write it to ``path`` when given (atomically)."""
        text = yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
        if path is not None:
            from faket.io import atomic_write

            with atomic_write(path) as tmp:
                tmp.write_text(text, encoding="utf-8")
        return text

    def content_hash(self) -> str:
        """Return a SHA-256 of everything that changes the tomograms' files.

        Not ``run.workers``, ``run.output``, ``run.outputs`` (exports of the finished
        tomograms) nor the ``report`` section (the report is redrawn on every run).
        """
        data = self.model_dump(mode="json")
        data["run"].pop("workers")
        data["run"].pop("output")
        data["run"].pop("outputs")
        data.pop("report")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def resolve_paths(model: _M, base: Path) -> _M:
    """Return ``model`` with every relative path field (nested, in lists) made ``base / path``."""
    update: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        new = _resolved(value, base)
        if new is not value:
            update[name] = new
    return model.model_copy(update=update) if update else model


def _resolved(value: Any, base: Path) -> Any:
    if isinstance(value, Path):
        return value if value.is_absolute() else base / value
    if isinstance(value, _Model):
        return resolve_paths(value, base)
    if isinstance(value, list) and any(isinstance(v, Path | _Model) for v in value):
        return [_resolved(v, base) for v in value]
    return value


MAX_CONFIG_BYTES = 2**20
"""The largest configuration file read (1 MiB); real ones are a few KB."""


class _AliasError(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases: a YAML "billion laughs" cannot expand."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D102
        if self.check_event(yaml.AliasEvent):
            raise _AliasError(self.peek_event().anchor)
        return super().compose_node(parent, index)


def _load_yaml(file: Path) -> Any:
    """Return the parsed content of a YAML configuration file; one-line errors."""
    if not file.is_file():
        raise FaketInputError("no such configuration file", file)
    try:
        with open(file, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise FaketInputError(f"cannot read the file ({err.strerror})", file) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise FaketInputError("larger than 1 MiB: not a faket configuration", file)
    if b"\0" in raw:
        raise FaketInputError("a binary file, not a YAML configuration", file)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FaketInputError(
            f"not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); save it as UTF-8",
            file,
        ) from None
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader)
    except _AliasError as err:
        raise FaketInputError(
            f"YAML aliases (*{err.name}) are not allowed in a configuration; write the value out",
            file,
        ) from None
    except yaml.YAMLError as err:
        raise FaketInputError(f"not valid YAML ({str(err).splitlines()[0]})", file) from None


def example_yaml() -> str:
    """Return the default configuration as YAML with each field's description as a comment."""
    lines = [
        "# faket simulate configuration: every field shows its default.",
        "# Run: faket simulate this.yaml",
    ]
    defaults = FaketConfig().model_dump(mode="json")
    for section, info in FaketConfig.model_fields.items():
        model = info.annotation
        lines.append("")
        lines.append(f"# {model.__doc__.splitlines()[0]}")  # type: ignore[union-attr]
        lines.append(f"{section}:")
        for name, field in model.model_fields.items():  # type: ignore[union-attr]
            value = yaml.safe_dump({name: defaults[section][name]}, default_flow_style=True)
            value = value.strip()[1:-1]
            lines.append(f"  # {field.description}")
            lines.append(f"  {value}")
    return "\n".join(lines) + "\n"
