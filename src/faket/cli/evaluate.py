"""``faket evaluate``: picking scores, particles from segmentations, comparisons, likeness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from faket.cli._common import (
    DEVICE_OPTION,
    GreedyOptionsCommand,
    check_outputs,
    resolve_device,
    same_file,
)


@click.group()
def evaluate() -> None:
    """Score particle picks, extract picks from segmentations, compare runs, likeness."""


@evaluate.command()
@click.option(
    "--truth",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Tomogram folder with particle_locations.txt, occupancy_mask.mrc [, classes.json].",
)
@click.option(
    "--predicted",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Predicted particles: SHREC text (class x y z [phi theta psi]) or RELION .star.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="score.json to write; <stem>_confusion.csv/.png and <stem>_f1.png go beside it.",
)
@click.option(
    "--exclude",
    multiple=True,
    help="Class left out of the evaluation; repeatable (SHREC 2021: 4V94, vesicle).",
)
@click.option("--modality", default=None, help="Modality recorded in score.json (for compare).")
@click.option("--seed", type=int, default=None, help="Seed recorded in score.json (for compare).")
@click.option("--no-plots", is_flag=True, help="Skip the PNG figures.")
def score(
    truth: Path,
    predicted: Path,
    output: Path,
    exclude: tuple[str, ...],
    modality: str | None,
    seed: int | None,
    no_plots: bool,
) -> None:
    """Score predicted particles against a ground-truth tomogram (SHREC 2021 metrics).

    \b
    Example:
      faket evaluate score --truth model_9/ --predicted picks.txt -o score.json \\
          --exclude 4V94 --exclude vesicle --modality faket --seed 1
    """
    stem = output.with_suffix("")
    outputs = {"-o/--output": output, "its confusion CSV": Path(f"{stem}_confusion.csv")}
    if not no_plots:
        outputs["its confusion figure"] = Path(f"{stem}_confusion.png")
        outputs["its F1 figure"] = Path(f"{stem}_f1.png")
    check_outputs(
        outputs,
        {
            "--predicted": predicted,
            "--truth": [
                truth / name
                for name in ("particle_locations.txt", "occupancy_mask.mrc", "classes.json")
            ],
        },
        create_folders=True,
    )
    from faket.evaluation import score_picks
    from faket.evaluation.files import (
        read_predictions,
        read_truth,
        write_confusion_csv,
    )
    from faket.io import write_json

    gt = read_truth(truth)
    names, xyz = read_predictions(predicted, gt.class_order, gt.occupancy.shape)
    result = score_picks(
        gt.names, gt.xyz, gt.occupancy, names, xyz, class_order=gt.class_order, exclude=exclude
    )
    record = {"modality": modality, "seed": seed, "truth": str(truth), "predicted": str(predicted)}
    record.update(result.to_dict())
    output.parent.mkdir(parents=True, exist_ok=True)
    write_confusion_csv(result.labels, result.confusion, f"{stem}_confusion.csv")
    real = {n: s["f1"] for n, s in result.per_class.items() if s["support"] > 0}
    if not no_plots:
        from faket.evaluation.plots import plot_class_f1, plot_confusion

        plot_confusion(result.labels, result.confusion, f"{stem}_confusion.png")
        plot_class_f1(real, f"{stem}_f1.png")
    write_json(record, output)
    click.echo(
        f"localisation: TP {result.true_positives}  FP {result.false_positives}  "
        f"FN {result.false_negatives}  (predicted {result.n_predicted}, "
        f"truth {result.n_truth}, duplicates {result.n_duplicates})"
    )
    click.echo(
        f"localisation precision {result.precision:.4f}  recall {result.recall:.4f}  "
        f"F1 {result.f1:.4f}"
    )
    click.echo(f"macro-F1 (published, incl. background) {result.macro_f1_published:.4f}")
    click.echo(f"macro-F1 (real classes only)           {result.macro_f1_real:.4f}")
    click.echo(f"{'class':<12} {'n':>5} {'precision':>9} {'recall':>7} {'F1':>7}")
    for name, stats in result.per_class.items():
        if stats["support"] > 0:
            click.echo(
                f"{name:<12} {stats['support']:>5} {stats['precision']:>9.4f} "
                f"{stats['recall']:>7.4f} {stats['f1']:>7.4f}"
            )


@evaluate.command()
@click.argument("segmentation", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--classes",
    "classes_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="classes.json: label ids, names and diameters (Angstrom).",
)
@click.option(
    "--method",
    type=click.Choice(["meanshift", "components"]),
    default="meanshift",
    show_default=True,
    help="Mean-shift clustering or connected components, per class.",
)
@click.option(
    "--bandwidth",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Mean-shift bandwidth in voxels, about a particle's radius [default: each class's "
    "radius, diameter_a / 2 / voxel size, from --classes; needed when a class has no "
    "diameter].",
)
@click.option(
    "--min-fraction",
    type=click.FloatRange(0, 1),
    default=0.1,
    show_default=True,
    help="Drop clusters smaller than this fraction of the class's sphere volume.",
)
@click.option(
    "--voxel-size",
    type=float,
    default=None,
    help="Voxel size in Angstrom [default: from the segmentation's header].",
)
@click.option("--exclude", multiple=True, help="Class not to extract; repeatable.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Particle list to write (SHREC text).",
)
def extract(
    segmentation: Path,
    classes_path: Path,
    method: str,
    bandwidth: float | None,
    min_fraction: float,
    voxel_size: float | None,
    exclude: tuple[str, ...],
    output: Path,
) -> None:
    """Extract particles from a label map (3-D MRC, label = class id, 0 = background).

    Each class is clustered on its own, by mean-shift (bandwidth: --bandwidth, else the
    class's radius) or connected components. Clusters smaller than --min-fraction of the
    sphere of the class's diameter are dropped.

    \b
    Example:
      faket evaluate extract seg.mrc --classes model_9/classes.json \\
          --method meanshift --bandwidth 4 -o picks.txt
    """
    check_outputs(
        {"-o/--output": output},
        {"SEGMENTATION": segmentation, "--classes": classes_path},
        create_folders=True,
    )

    import numpy as np

    from faket.errors import FaketInputError
    from faket.evaluation import extract_particles, min_cluster_voxels
    from faket.io import read_classes_json, read_mrc, write_particle_locations

    volume = read_mrc(segmentation, ndim=3)
    labels = np.rint(volume.data).astype(np.int64)
    size = voxel_size if voxel_size is not None else volume.voxel_size_a
    if size is None or not size > 0:
        raise FaketInputError("no voxel size in the header; pass --voxel-size", segmentation)
    table = [c for c in read_classes_json(classes_path) if c["name"] not in exclude]
    names = {c["id"]: c["name"] for c in table}
    minimum = {c["id"]: min_cluster_voxels(c["diameter_a"], size, min_fraction) for c in table}
    bandwidths: float | dict[int, float] | None = bandwidth
    if method == "meanshift" and bandwidth is None:
        unknown = [c["name"] for c in table if not c["diameter_a"] > 0]
        if unknown:
            raise click.BadParameter(
                f"mean-shift needs a bandwidth, and class {unknown[0]!r} has no diameter in "
                f"{classes_path} to take its radius from; give --bandwidth",
                param_hint="--bandwidth",
            )
        bandwidths = {c["id"]: max(1.0, c["diameter_a"] / 2 / size) for c in table}
    particles = extract_particles(
        labels, names, method=method, bandwidth_vox=bandwidths, min_voxels=minimum
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    write_particle_locations(particles, output)
    click.echo(f"{len(particles)} particles -> {output}")


@evaluate.command()
@click.argument("scores", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for compare.md, compare.csv, compare_metrics.png, compare_classes.png.",
)
@click.option("--bootstrap-seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option(
    "--resamples",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Bootstrap resamples.",
)
def compare(scores: tuple[Path, ...], output: Path, bootstrap_seed: int, resamples: int) -> None:
    """Compare score.json files over modalities and seeds (mean, bootstrap 68/95 % CI).

    Each file's modality and seed come from score.json (score --modality/--seed), else
    from its folder's name <modality>_seed<k>, else the folder name is the modality.

    \b
    Example:
      faket evaluate compare runs/*/score.json -o compare/
    """
    check_outputs(
        {
            f"-o/--output's {name}": output / name
            for name in ("compare.md", "compare.csv", "compare_metrics.png", "compare_classes.png")
        },
        {"SCORES": scores},
        create_folders=True,
    )
    from faket.evaluation import summarise_runs
    from faket.evaluation.files import read_run_scores
    from faket.evaluation.plots import plot_compare_metrics
    from faket.evaluation.report import write_compare_tables

    runs = [read_run_scores(p) for p in scores]
    summary = summarise_runs(runs, n_resamples=resamples, seed=bootstrap_seed)
    output.mkdir(parents=True, exist_ok=True)
    markdown = write_compare_tables(summary, runs, output)
    headline = ["localisation_f1", "macro_f1_published", "macro_f1_real"]
    plot_compare_metrics(summary, headline, output / "compare_metrics.png")
    classes = list(dict.fromkeys(m for s in summary.values() for m in s if m.startswith("f1_")))
    if classes:
        plot_compare_metrics(summary, classes, output / "compare_classes.png")
    click.echo(markdown)


class _StudyCommand(GreedyOptionsCommand):
    greedy_options = ("--modalities",)


@evaluate.command(cls=_StudyCommand)
@click.argument("dataset", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--modalities",
    multiple=True,
    default=(),
    help="Training modalities (tomogram_<name>.mrc); several values after one flag "
    "[default: every modality the training tomograms have].",
)
@click.option("--train", "train_text", default="0-5", show_default=True, help="Training tomograms.")
@click.option("--val", "val_text", default="6", show_default=True, help="Validation tomogram.")
@click.option("--test", "test_index", type=int, default=7, show_default=True, help="Test tomogram.")
@click.option(
    "--preset",
    type=click.Choice(["paper", "laptop"]),
    default="paper",
    show_default=True,
    help="paper: DeepFinder as in FakET (GPU); laptop: small net and patches for a 2-core CPU.",
)
@click.option("--seeds", type=click.IntRange(min=1), default=None, help="Seeds per modality.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epochs per run.")
@click.option("--width", type=float, default=None, help="Channel multiplier (1 = 32/48/64).")
@click.option("--patch", type=int, default=None, help="Patch side in voxels (multiple of 4).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Patches per step.")
@click.option("--learning-rate", type=float, default=None, help="Adam's step size.")
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
    default=None,
    help="Autocast of the convolutions; auto: bf16 where the hardware runs it natively "
    "(GPU, CPU with AMX), else fp32 [default: fp32 for paper, auto for laptop].",
)
@click.option(
    "--background-fraction",
    type=click.FloatRange(0, 0.9),
    default=None,
    help="Fraction of training patches centred on random background voxels "
    "[default: 0 for paper (DeepFinder's sampler), 0.25 for laptop].",
)
@click.option(
    "--steps-per-epoch",
    type=click.IntRange(min=1),
    default=None,
    help="Adam steps per epoch [default: 100 for paper (DeepFinder), 40 for laptop].",
)
@click.option(
    "--val-patches",
    type=click.IntRange(min=1),
    default=None,
    help="Most particle patches of the validation loss [default: all for paper, 48 for laptop].",
)
@click.option(
    "--loss",
    type=click.Choice(["dice+ce", "dice"]),
    default=None,
    help="Soft Dice plus cross-entropy, or DeepFinder's soft Dice alone [default: dice+ce].",
)
@click.option(
    "--segment-patch",
    type=click.IntRange(min=4),
    default=None,
    help="Inference patch side in voxels [default: the training patch for paper, 48 for laptop].",
)
@click.option(
    "--segment-step",
    type=click.IntRange(min=1),
    default=None,
    help="Step between inference patches in voxels [default: half a patch for paper, "
    "40 for laptop].",
)
@click.option(
    "--cluster",
    type=click.Choice(["meanshift", "components"]),
    default="meanshift",
    show_default=True,
    help="Particles from the segmentation: mean-shift (bandwidth = class radius) or "
    "connected components (faster on poor segmentations).",
)
@click.option(
    "--min-fraction",
    type=click.FloatRange(0, 1),
    default=None,
    help="Drop clusters under this fraction of the class's mean particle volume "
    "(voxels per particle in the training labels) [default: each run chooses it on the "
    "validation tomogram].",
)
@click.option(
    "--bin",
    "bin_factor",
    type=click.IntRange(min=1),
    default=None,
    help="The picker works on tomograms binned by this factor; picks are scored at full "
    "size [default: 1 for paper, 2 for laptop].",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Runs at once, in processes (CPU; with 2 cores: --jobs 2 --threads 1).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads per run [default: cores / jobs; one job: torch's default]. On busy "
    "cores torch's default oversubscribes: 1 thread per job is faster.",
)
@click.option(
    "--exclude",
    multiple=True,
    default=("vesicle", "membrane", "actin", "microtubule"),
    show_default=True,
    help="Class neither extracted nor scored (extended objects); repeatable.",
)
@DEVICE_OPTION
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Study folder (a re-run resumes finished runs and trainings).",
)
def study(
    dataset: Path,
    modalities: tuple[str, ...],
    train_text: str,
    val_text: str,
    test_index: int,
    preset: str,
    seeds: int | None,
    epochs: int | None,
    width: float | None,
    patch: int | None,
    batch_size: int | None,
    learning_rate: float | None,
    precision: str | None,
    background_fraction: float | None,
    steps_per_epoch: int | None,
    val_patches: int | None,
    loss: str | None,
    segment_patch: int | None,
    segment_step: int | None,
    cluster: str,
    min_fraction: float | None,
    bin_factor: int | None,
    jobs: int,
    threads: int | None,
    exclude: tuple[str, ...],
    device: str,
    output: Path,
) -> None:
    """Train a picker per modality and seed, test all on one held-out tomogram, compare.

    Reproduces FakET's Table 1 on a faket simulate dataset: a DeepFinder-style 3-D U-Net
    per modality and seed, trained on --train, best epoch on --val, tested on the --test
    tomogram's REFERENCE reconstruction (NOISELESS on its noiseless one), SHREC 2021
    scores, and a comparison (compare/, report.html, study.json).

    \b
    Example (2 CPU cores; see the README for the wall time):
      faket demo -o study_data --tomograms 5 --crowded --workers 2 --threads 1
      faket evaluate study study_data/ --preset laptop --train 0-2 --val 3 \\
          --test 4 --jobs 2 --threads 1 -o study/
    \b
    Paper scale (GPU):
      faket evaluate study DATASET/ --train 0-8 --val 9 --test 10 --preset paper -o study/
    """
    from tqdm.auto import tqdm

    from faket._precision import resolve_precision
    from faket._runtime import keep_freed_memory_for_reuse
    from faket.evaluation.study import (
        PRESET_SEEDS,
        PRESETS,
        StudyPlan,
        available_modalities,
        check_inputs,
        parse_indices,
        run_study,
        with_overrides,
    )
    from faket.evaluation.study_plan import PRESET_BIN, PRESET_SEGMENT

    if same_file(output, dataset):
        from faket.errors import FaketInputError

        raise FaketInputError(
            "-o/--output is the DATASET folder; write the study to a folder of its own", output
        )
    keep_freed_memory_for_reuse()
    torch_device = resolve_device(device)
    try:
        precision = precision or ("auto" if preset == "laptop" else None)
        settings = with_overrides(
            PRESETS[preset],
            epochs=epochs,
            width=width,
            patch=patch,
            batch_size=batch_size,
            learning_rate=learning_rate,
            precision=None if precision is None else resolve_precision(precision, torch_device),
            loss=loss,
            background_fraction=background_fraction,
            steps_per_epoch=steps_per_epoch,
            val_patches=val_patches,
        )
        train = parse_indices(train_text)
        val = parse_indices(val_text)
        if not modalities:
            modalities = tuple(available_modalities(dataset, train[0]))
            if not modalities:
                raise click.UsageError(f"no tomogram_<modality>.mrc in {dataset}/model_{train[0]}")
        default_patch, default_step = PRESET_SEGMENT[preset]
        plan = StudyPlan(
            dataset=dataset,
            output=output,
            modalities=tuple(dict.fromkeys(modalities)),
            train=tuple(train),
            val=tuple(val),
            test=test_index,
            seeds=tuple(range(seeds or PRESET_SEEDS[preset])),
            settings=settings,
            exclude=exclude,
            segment_step=segment_step or (default_step if segment_patch is None else None),
            segment_patch=segment_patch or default_patch,
            cluster=cluster,
            min_fraction=min_fraction,
            bin=bin_factor or PRESET_BIN[preset],
            jobs=jobs,
            threads=threads,
        )
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    check_inputs(plan)
    if torch_device.type == "cpu" and preset == "paper":
        click.echo(
            "faket: note: the paper preset is sized for a GPU and takes days on a CPU; "
            "--preset laptop is sized for a 2-core CPU",
            err=True,
        )
    n_runs = len(plan.modalities) * len(plan.seeds)
    bars: dict[str, object] = {}

    def progress(step: str, done: int, total: int) -> None:
        bar = bars.get(step)
        if bar is None:
            bar = tqdm(total=total or None, desc=step, leave=False, dynamic_ncols=True)
            bars[step] = bar
        bar.update(done - bar.n)  # type: ignore[attr-defined]

    with tqdm(total=n_runs, desc="runs", unit="run", leave=False, dynamic_ncols=True) as runs:

        def on_run(modality: str, seed: int, record: dict[str, object]) -> None:
            for bar in bars.values():
                bar.close()  # type: ignore[attr-defined]
            bars.clear()
            loc = record["localisation"]["f1"]  # type: ignore[index]
            macro = record["classification"]["macro_f1_published"]  # type: ignore[index]
            runs.write(f"{modality} seed {seed}: localisation F1 {loc:.3f}, macro-F1 {macro:.3f}")
            runs.update(1)

        run_study(plan, torch_device, progress=progress, on_run=on_run)
    click.echo((output / "compare" / "compare.md").read_text(encoding="utf-8"))
    click.echo(f"wrote {output}/ ; open {output}/report.html")


def _parse_tilts(text: str) -> list[int]:
    """Parse tilt indices: ``"0-40"``, ``"20"``, ``"0,2,10-20"`` -> sorted unique ints."""
    out: set[int] = set()
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            first = int(low)
            last = int(high) if high else first
            if last < first or first < 0:
                raise ValueError
            out.update(range(first, last + 1))
    except ValueError:
        raise click.BadParameter(
            f"cannot read tilt indices {text!r}; write e.g. 0-40 or 0,2,10-20",
            param_hint="--tilts",
        ) from None
    return sorted(out)


class _LikenessCommand(GreedyOptionsCommand):
    greedy_options = ("--modalities",)


@evaluate.command(cls=_LikenessCommand)
@click.argument("dataset", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for likeness.json, likeness.csv and likeness.png.",
)
@click.option(
    "--modalities",
    multiple=True,
    help="Modalities (file stems: noisy, faket, noisy_spectral, content); several values "
    "after one flag [default: every <name>.mrc in all tomogram folders except labels, "
    "references, reconstructions and content].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every measure.")
@click.option(
    "--tilts",
    "tilts_text",
    default=None,
    help="Tilt indices to compare, e.g. 0-40 or 0,2,10-20 [default: all].",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=300,
    show_default=True,
    help="Training steps of each domain classifier.",
)
@click.option(
    "--patch",
    type=click.IntRange(min=8),
    default=None,
    help="Classifier patch side in pixels [default: 16, less for images under 32 px].",
)
@DEVICE_OPTION
def likeness(
    dataset: Path,
    output: Path,
    modalities: tuple[str, ...],
    seed: int,
    tilts_text: str | None,
    steps: int,
    patch: int | None,
    device: str,
) -> None:
    """How alike each modality is to the microscope, next to the floor of two references.

    For each tomogram and modality, the modality's tilt-series is compared with the
    reference of ANOTHER tomogram (the one that styled it): power-spectrum log-distance,
    Wasserstein-1 distance of the standardised grey values, and the held-out AUC of a
    small CNN that tells patches of the two apart (0.5 = indistinguishable). The floor is
    the same between references of two different tomograms; ratios near 1 mean "as close
    to the microscope as another tomogram of it".

    \b
    Example (about a minute on 2 CPU cores for a 64 px demo):
      faket demo -o demo --size 64 --tomograms 3
      faket evaluate likeness demo/ -o demo/likeness/
    \b
    Only some modalities and tilts:
      faket evaluate likeness DATASET/ -o likeness/ --modalities noisy faket \\
          --tilts 10-50 --seed 1
    """
    check_outputs(
        {
            f"-o/--output's {name}": output / name
            for name in ("likeness.json", "likeness.csv", "likeness.png")
        },
        {"DATASET": [dataset / "dataset.json"]},
        create_folders=True,
    )
    tilts = None if tilts_text is None else _parse_tilts(tilts_text)
    torch_device = resolve_device(device)

    from tqdm.auto import tqdm

    from faket.evaluation.likeness_dataset import dataset_likeness, write_likeness_csv
    from faket.io import write_json
    from faket.report.figures import plot_likeness

    bars: list[Any] = []

    def progress(done: int, total: int) -> None:
        if not bars:  # opened once the inputs are checked, so an error stays one line
            bars.append(
                tqdm(total=total, desc="likeness", unit="pair", leave=False, dynamic_ncols=True)
            )
        bars[0].update(done - bars[0].n)

    try:
        result = dataset_likeness(
            dataset,
            modalities=modalities or None,
            tilts=tilts,
            seed=seed,
            steps=steps,
            patch=patch,
            device=torch_device,
            progress=progress,
        )
    finally:
        for bar in bars:
            bar.close()
    output.mkdir(parents=True, exist_ok=True)
    record = result.to_dict()
    write_likeness_csv(result, output / "likeness.csv")
    plot_likeness(record, output / "likeness.png")
    write_json(record, output / "likeness.json")
    click.echo(
        f"{'modality':<16} {'spectrum':>9} {'W1':>7} {'AUC':>6}   "
        f"{'spectrum/floor':>14} {'W1/floor':>8} {'AUC/floor':>9}"
    )
    for row in result.table():
        ratios = [row[f"{m}_ratio"] for m in ("spectrum_log_distance", "grey_w1", "domain_auc")]
        shown = ["-" if r is None else f"{r:.2f}" for r in ratios]
        click.echo(
            f"{row['modality']:<16} {row['spectrum_log_distance']:>9.4f} {row['grey_w1']:>7.4f} "
            f"{row['domain_auc']:>6.3f}   {shown[0]:>14} {shown[1]:>8} {shown[2]:>9}"
        )
    click.echo(f"wrote {output}/likeness.json, likeness.csv, likeness.png")
