"""The ``oddoneout`` command line: one command per stage, ``run`` for a whole study, ``demo`` for the default."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from oddoneout.errors import InputError, OddoneoutError
from oddoneout.progress import console

app = typer.Typer(
    help="AI models, people and rating scales as agents in triplet odd-one-out experiments.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


#: Exit status of a command stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED_STATUS = 130
#: What an interrupted collection leaves (``{triplets}``: the folder of the stores under --out).
_COLLECTION_KEPT = "judgments stored so far are kept in {triplets}/; run the same command again to resume"
#: What each command leaves when Ctrl-C stops it, said after ``interrupted:`` (others: the default of
#: :func:`_interrupted`).
_ON_INTERRUPT = {
    "demo": _COLLECTION_KEPT,
    "run": _COLLECTION_KEPT,
    "collect": _COLLECTION_KEPT,
    "fit": "nothing was written; run the same command again to fit",
}


def _interrupted(command: str, out: Any) -> str:
    """The line said when Ctrl-C stops ``command`` (whose ``--out`` is ``out``, if it has one)."""
    from oddoneout.study_folder import StudyFolder

    note = _ON_INTERRUPT.get(command, "stopped before it finished; run the same command again")
    triplets = StudyFolder(out).triplets_folder if "{triplets}" in note else None
    return f"interrupted: {note.format(triplets=triplets)}"


def _clean_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn oddoneout's own errors into one clear line and exit status 2, and Ctrl-C into one line and 130.

    Nothing is printed but that line: no traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (OddoneoutError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            print(_interrupted(func.__name__, kwargs.get("out")), file=sys.stderr)
            raise typer.Exit(code=INTERRUPTED_STATUS) from None

    return wrapper


def _load_triplets(path: Path, items: Path | None, design: str | None) -> Any:
    """:func:`oddoneout.triplets.load_triplets` with the store's readers registered too."""
    import oddoneout.collect.store  # noqa: F401  (registers the .sqlite/.db and .parquet readers)
    import oddoneout.formats  # noqa: F401  (registers the .csv (salmon) and .npz (cblearn, psiz, trial archive) readers)
    from oddoneout.triplets import load_triplets

    return load_triplets(path, items, design=design)


FormatOption = Annotated[
    Optional[str],
    typer.Option("--format", help="The file's format: spose, salmon, cblearn or psiz (default: by suffix)."),
]
TrialTypeOption = Annotated[
    Optional[str], typer.Option("--trial-type", help="With --format: the trials' type, e.g. anchor or ranked:8:2.")
]
NRankedOption = Annotated[
    Optional[int], typer.Option("--n-ranked", help="With --format psiz: options ranked per trial.")
]


def _read_trials(
    path: Path,
    items: Path | None,
    design: str | None,
    file_format: str | None,
    trial_type: str | None,
    n_ranked: int | None,
) -> Any:
    """The trials of a file: by ``--format`` when given (:func:`oddoneout.formats.read_triplets`), else by suffix."""
    if file_format is None:
        if trial_type is not None or n_ranked is not None:
            raise InputError("--trial-type and --n-ranked need --format (spose, salmon, cblearn or psiz)")
        return _load_triplets(path, items, design)
    if design is not None:
        raise InputError("--design applies to a store or its Parquet export, not to a file read with --format")
    from oddoneout.formats import read_triplets

    return read_triplets(path, file_format, items, trial_type=trial_type, n_ranked=n_ranked)


OutDir = Annotated[Path, typer.Option("--out", "-o", help="Output folder of the study.")]
Seed = Annotated[Optional[int], typer.Option(help="Override the study seed.")]


Settings = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a config value, e.g. --set design.n_triplets=7100000 (repeatable)."),
]


Scale = Annotated[
    Optional[str],
    typer.Option(help="Apply the config's \\[scales.NAME] table, e.g. --scale paper (the paper's numbers)."),
]


def _config_path(config: Path) -> Path:
    """The config file, or the built-in study of that name (``cowen_keltner``, ``studies/cowen_keltner.toml``)."""
    if config.is_file():
        return config
    from oddoneout.studies import builtin_config

    try:
        return builtin_config(config.name.removesuffix(".toml"))
    except FileNotFoundError as exc:
        raise InputError(f"study config not found: {config} ({exc})") from None


def _overrides(seed: int | None, settings: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Config overrides from ``--seed`` and ``--set section.key=value`` (values parsed as TOML, else text)."""
    import tomllib

    overrides: dict[str, dict[str, Any]] = {}
    for setting in settings or []:
        key, sep, text = setting.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not section or not name:
            raise InputError(f"--set expects section.key=value, got {setting!r}")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        overrides.setdefault(section, {})[name] = value
    if seed is not None:
        overrides.setdefault("study", {})["seed"] = seed
    return overrides


@app.command()
@_clean_errors
def demo(
    out: OutDir = Path("oddoneout-demo"),
    seed: Seed = None,
) -> None:
    """Run the built-in SYNTHETIC emotion study end to end (a few minutes on 2 cores)."""
    from oddoneout.pipeline import run_study
    from oddoneout.studies import builtin_config
    from oddoneout.study_folder import StudyFolder

    run_study(builtin_config("synthetic"), out, overrides=_overrides(seed))
    console.print(f"report: {StudyFolder(out).report}")


@app.command()
@_clean_errors
def run(
    config: Annotated[Path, typer.Argument(help="Study config (TOML).")],
    out: OutDir = Path("oddoneout-out"),
    stage: Annotated[Optional[list[str]], typer.Option(help="Run only these stages (repeatable).")] = None,
    system: Annotated[Optional[list[str]], typer.Option(help="Run only these systems (repeatable).")] = None,
    seed: Seed = None,
    settings: Settings = None,
    scale: Scale = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Run nothing: print what collecting will cost (oddoneout estimate).")
    ] = False,
) -> None:
    """Run a study from its config: stimuli, collect, fit, evaluate, interpret, encode, report.

    CONFIG is a TOML file or the name of a built-in study (synthetic, cowen_keltner).
    """
    from oddoneout.pipeline import STAGE_NAMES, run_study

    if dry_run:
        _print_estimate(_config_path(config), out, system, _overrides(seed, settings), scale)
        return

    run_study(
        _config_path(config),
        out,
        stages=stage or STAGE_NAMES,
        systems=system,
        overrides=_overrides(seed, settings),
        scale=scale,
    )


def _print_estimate(config_path: Path, out: Path, systems: list[str] | None, overrides: dict, scale: str | None,
                    as_json: bool = False) -> None:  # fmt: skip
    """Print what each system's remaining trials will take and cost (``oddoneout estimate``, ``run --dry-run``)."""
    from oddoneout.collect.cost import format_estimate
    from oddoneout.config import load_config
    from oddoneout.pipeline.collect import estimate_study
    from oddoneout.study_folder import StudyFolder

    config = load_config(config_path, overrides=overrides, scale=scale)
    estimates = estimate_study(config, StudyFolder(out), systems)
    if as_json:
        print(json.dumps(estimates, indent=2, default=str))
        return
    print("\n".join(line for name, result in estimates.items() for line in format_estimate(name, result)))


@app.command()
@_clean_errors
def estimate(
    config: Annotated[Path, typer.Argument(help="Study config (TOML).")],
    out: OutDir = Path("oddoneout-out"),
    system: Annotated[Optional[list[str]], typer.Option(help="Estimate only these systems (repeatable).")] = None,
    seed: Seed = None,
    settings: Settings = None,
    scale: Scale = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON to stdout.")] = False,
) -> None:
    """What collecting the rest of each system's design will take and cost, at the rates of a pilot; asks no agent.

    Counts each system's design trials and, when its store in OUT/triplets/ holds answers (a pilot,
    e.g. collected with max_requests = 50), projects requests, tokens, images, wall, CPU and GPU
    time and the price (the config's cost table) of the trials not stored yet. Needs OUT/stimuli/
    (oddoneout run CONFIG --stage stimuli).
    """
    _print_estimate(_config_path(config), out, system, _overrides(seed, settings), scale, as_json)


@app.command()
@_clean_errors
def collect(
    config: Annotated[Path, typer.Argument(help="Study config (TOML).")],
    out: OutDir = Path("oddoneout-out"),
    system: Annotated[Optional[list[str]], typer.Option(help="Collect only these systems (repeatable).")] = None,
    seed: Seed = None,
    settings: Settings = None,
    scale: Scale = None,
) -> None:
    """Collect judgments for a study's systems into OUT/triplets/ (resumes what is missing)."""
    from oddoneout.pipeline import run_study

    run_study(
        _config_path(config),
        out,
        stages=("collect",),
        systems=system,
        overrides=_overrides(seed, settings),
        scale=scale,
    )


@app.command()
@_clean_errors
def serve(
    config: Annotated[Path, typer.Argument(help='Study config (TOML) with a system of agent = "human".')],
    out: OutDir = Path("oddoneout-out"),
    system: Annotated[Optional[str], typer.Option(help="The system to serve (default: the only human one).")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    seed: Seed = None,
    settings: Settings = None,
) -> None:
    """Serve the online odd-one-out experiment of a human system; answers go to OUT/triplets/SYSTEM.sqlite.

    Needs $ODDONEOUT_SERVE_SECRET (signs session tokens) and $ODDONEOUT_PARTICIPANT_SALT (salts
    participant ids), each at least 32 characters and the same across restarts.
    """
    try:
        from oddoneout.serve.server import serve_study
    except ImportError as exc:  # starlette or uvicorn missing
        raise InputError(f"oddoneout serve needs the serve extra: pip install 'oddoneout[serve]' ({exc})") from None

    serve_study(_config_path(config), out, system=system, host=host, port=port, overrides=_overrides(seed, settings))


@app.command()
@_clean_errors
def adapt(
    config: Annotated[Path, typer.Argument(help='Study config (TOML) with a served system of selection = "adaptive".')],
    out: OutDir = Path("oddoneout-out"),
    system: Annotated[Optional[str], typer.Option(help="The served system (default: the only human one).")] = None,
    seed: Seed = None,
    settings: Settings = None,
) -> None:
    """Select and record the next adaptive round of a served system, on the answers stored so far.

    Safe beside a running server (one SQLite transaction in OUT/triplets/SYSTEM.sqlite), which
    leases the new round from its next lease on. Judgments of sessions the exclusion rules exclude
    are left out, as the fit leaves them out.
    """
    from oddoneout.collect.adaptive import adapt_served
    from oddoneout.collect.quality import fit_exclusions
    from oddoneout.collect.store import TripletStore
    from oddoneout.config import load_config
    from oddoneout.pipeline.collect import adaptive_plan
    from oddoneout.serve.experiment import pick_system
    from oddoneout.study_folder import StudyFolder

    loaded = load_config(_config_path(config), _overrides(seed, settings))
    name = pick_system(loaded, system)
    if loaded.systems[name].design.selection != "adaptive":
        raise InputError(f'system {name!r} does not select adaptively: set selection = "adaptive" in its design')
    store = StudyFolder(out).system(name).store
    if not store.is_file():
        raise InputError(f"{store} does not exist: serve {name!r} first (round 0 is random), then adapt")
    with TripletStore.open(store) as opened:
        item_ids = opened.item_ids
    if item_ids is None:
        raise InputError(f"{store} records no vocabulary: it is not a served system's store")
    excluded = fit_exclusions(store, loaded.systems[name].settings)
    recorded = adapt_served(adaptive_plan(loaded, item_ids, name), store, excluded)
    if recorded is None:
        console.print(f"every planned round of {name!r} is recorded already (raise adaptive_rounds for more)")
    else:
        console.print(f"round {recorded.round} recorded in {store}: a server running on {out} asks it from now on")


@app.command()
@_clean_errors
def export_jspsych(
    source: Annotated[Path, typer.Argument(help="A study folder, or a served system's store (.sqlite).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON file to write.")],
    system: Annotated[Optional[str], typer.Option(help="The served system (default: the only human one).")] = None,
) -> None:
    """Write a served system's answers as jsPsych data: one JSON array of trial objects (catch trials flagged)."""
    from oddoneout.serve.jspsych import export_jspsych as write_jspsych

    console.print(f"{write_jspsych(source, out, system=system)} trials -> {out}")


def _settings(cls: type, command: str, section: str, given: dict[str, Any]) -> Any:
    """A config section's settings from the options given (the others keep the section's defaults)."""
    from oddoneout.settings import Where, build

    table = {key: value for key, value in given.items() if value is not None}
    return build(cls, table, Where(Path(f"oddoneout {command}"), section))


@app.command()
@_clean_errors
def fit(
    triplets: Annotated[
        Path,
        typer.Argument(
            help="Triplets: .npy/.txt (N x 3, odd one out last), .parquet, .sqlite, .csv, .npz (cblearn, psiz, "
            "trial archive), --format."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Embedding file to write (.parquet).")],
    items: Annotated[Optional[Path], typer.Option(help="Item ids, one per line, for index files.")] = None,
    design: Annotated[Optional[str], typer.Option(help="For a store/export: only this design.")] = None,
    file_format: FormatOption = None,
    trial_type: TrialTypeOption = None,
    n_ranked: NRankedOption = None,
    model_name: Annotated[
        Optional[str], typer.Option("--model", help="spose (L1-sparse) or vice (variational, spike-and-slab).")
    ] = None,
    n_dims: Annotated[Optional[int], typer.Option(help="Initial number of dimensions.")] = None,
    l1: Annotated[
        Optional[list[float]],
        typer.Option(
            help="SPoSE L1 strength (penalty l1/n_items * |W|_1); repeat it to choose by held-out loss. "
            "Default: chosen from a grid scaled to the triplets per item."
        ),
    ] = None,
    l1_folds: Annotated[Optional[int], typer.Option(help="Folds of the l1 choice (1: one held-out split).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Triplets per batch.")] = None,
    max_epochs: Annotated[Optional[int], typer.Option(help="Maximum number of epochs.")] = None,
    patience: Annotated[Optional[int], typer.Option(help="Epochs without improvement before stopping.")] = None,
    device: Annotated[Optional[str], typer.Option(help="torch device: cpu, cuda, cuda:1...")] = None,
    relax: Annotated[
        Optional[bool], typer.Option("--relax/--no-relax", help="SPoSE: refit the kept weights without the penalty.")
    ] = None,
    refit: Annotated[
        Optional[bool],
        typer.Option(
            "--refit/--no-refit", help="SPoSE: after the validated fit, fit again on every triplet (the default)."
        ),
    ] = None,
    averaging: Annotated[
        Optional[bool],
        typer.Option("--averaging/--no-averaging", help="SPoSE: the estimate is the running average of the iterates."),
    ] = None,
    seeds: Annotated[
        Optional[list[int]], typer.Option("--seeds", help="SPoSE: fit once per seed (repeat it), keep the best.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the splits and the fits.")] = 0,
) -> None:
    """Fit a SPoSE (or VICE) embedding to triplets, exactly as a study's fit stage with these [embedding] settings.

    Options left out take the [embedding] defaults of a study config.
    """
    from oddoneout.config.sections import SPOSE_ONLY, EmbeddingSettings
    from oddoneout.pipeline import fit_embedding
    from oddoneout.study_folder import write_table

    options = dict(
        method=model_name,
        n_dims=n_dims,
        l1=(l1[0] if len(l1) == 1 else list(l1)) if l1 else None,
        l1_folds=l1_folds,
        lr=lr,
        batch_size=batch_size,
        max_epochs=max_epochs,
        patience=patience,
        device=device,
        relax=relax,
        refit=refit,
        averaging=averaging,
        seeds=list(seeds) if seeds else None,
    )
    # `seeds` is no estimator parameter, but pipeline.fit_embedding fits several seeds for SPoSE only
    spose_only = [name for name in (*SPOSE_ONLY, "seeds") if options.get(name) is not None]
    if model_name == "vice" and spose_only:
        flags = [f"--{'no-' if options[name] is False else ''}{name.replace('_', '-')}" for name in spose_only]
        raise InputError(f"{', '.join(flags)}: for --model spose only")
    settings = _settings(EmbeddingSettings, "fit", "embedding", options)
    data = _read_trials(triplets, items, design, file_format, trial_type, n_ranked)
    fitted = fit_embedding(data, settings, seed=seed)
    embedding = fitted.embedding
    embedding.metadata["source_file"] = str(triplets)
    embedding.save(out)
    if fitted.reproducibility is not None:
        write_table(fitted.reproducibility, out.with_name(f"{out.stem}_dims.csv"))
    console.print(f"{embedding.n_dims} dimensions from {len(data)} triplets -> {out}")


@app.command()
@_clean_errors
def evaluate(
    embedding: Annotated[Path, typer.Argument(help="Embedding file (.parquet).")],
    triplets: Annotated[
        Path, typer.Argument(help="Held-out triplets (.npy/.txt/.parquet/.sqlite/.csv/.npz, --format).")
    ],
    items: Annotated[Optional[Path], typer.Option(help="Item ids, one per line, for index files.")] = None,
    design: Annotated[Optional[str], typer.Option(help="For a store/export: only this design.")] = None,
    file_format: FormatOption = None,
    trial_type: TrialTypeOption = None,
    n_ranked: NRankedOption = None,
    n_bootstrap: Annotated[
        Optional[int], typer.Option(help="Bootstrap resamples for the CIs (default: the study's).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON to stdout.")] = False,
) -> None:
    """Held-out accuracy (95% bootstrap CI), cross-entropy and dimensionality of an embedding (the evaluate stage's)."""
    from oddoneout.config.sections import EvaluationSettings
    from oddoneout.embedding import Embedding
    from oddoneout.pipeline import evaluate_split

    settings = _settings(EvaluationSettings, "evaluate", "evaluation", {"n_bootstrap": n_bootstrap})
    result = evaluate_split(
        Embedding.load(embedding),
        _read_trials(triplets, items, design, file_format, trial_type, n_ranked),
        n_bootstrap=settings.n_bootstrap,
        seed=seed,
    )
    if as_json:
        print(json.dumps(result, indent=2, default=float))
    else:
        low, high = result["accuracy_ci"] or (float("nan"), float("nan"))
        console.print(
            f"accuracy {result['accuracy']:.4f} (95% CI {low:.4f}-{high:.4f}), "
            f"cross-entropy {result['cross_entropy']:.4f}, {result['n_triplets']} triplets, "
            f"{result['n_dims']} dimensions (accuracy saturates at {result['saturation_dims']})"
        )


@app.command()
@_clean_errors
def interpret(
    embedding: Annotated[Path, typer.Argument(help="Embedding file (.parquet).")],
    stimuli: Annotated[Path, typer.Option(help="Stimulus table with rating columns (.parquet/.csv).")],
    dest: Annotated[Path, typer.Option("--out", "-o", help="Folder to write interpret/<embedding>_*.csv into.")] = Path(
        "."
    ),
    top_k: Annotated[Optional[int], typer.Option(help="Top items per dimension (default: the study's).")] = None,
    map_method: Annotated[Optional[str], typer.Option(help="Item map: tsne, umap or none.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the map and the graph layout.")] = 0,
) -> None:
    """Every interpretation analysis of the interpret stage: rating correlations, top items, classes, map, graph."""
    from oddoneout.config.sections import InterpretSettings
    from oddoneout.embedding import Embedding
    from oddoneout.interpret.stage import interpret_embedding
    from oddoneout.stimuli import StimulusSet

    settings = _settings(InterpretSettings, "interpret", "interpret", {"top_k": top_k, "map_method": map_method})
    written = interpret_embedding(
        settings, dest, embedding.stem, Embedding.load(embedding), StimulusSet.load(stimuli), seed=seed
    )
    for kind, path in written.items():
        console.print(f"{kind}: {path}")


@app.command()
@_clean_errors
def encode(
    embedding: Annotated[Path, typer.Argument(help="Embedding file (.parquet).")],
    neural: Annotated[list[Path], typer.Argument(help="Subject data files (.npz written by oddoneout).")],
    dest: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write encoding/<embedding>_<subject>.npz into.")
    ] = Path("."),
    n_folds: Annotated[Optional[int], typer.Option(help="Outer folds (blocks of runs) (default: the study's).")] = None,
    backend: Annotated[
        Optional[str], typer.Option(help="himalaya backend: numpy, torch, torch_cuda (default: the study's).")
    ] = None,
) -> None:
    """Voxel-wise ridge encoding of brain responses from an embedding, as the encode stage fits it."""
    from oddoneout.config.sections import NeuralSettings
    from oddoneout.embedding import Embedding
    from oddoneout.neural.data import NeuralData
    from oddoneout.neural.stage import encode_embedding
    from oddoneout.study_folder import StudyFolder

    settings = _settings(NeuralSettings, "encode", "neural", {"n_folds": n_folds, "backend": backend})
    emb = Embedding.load(embedding)
    folder = StudyFolder(dest)
    for path in neural:
        data = NeuralData.load(path)
        result = encode_embedding(settings, emb, data)
        result.save(folder.encoding_result(embedding.stem, data.subject))
        rois = ", ".join(f"{roi} {r:.3f}" for roi, r in result.roi_r.items())
        console.print(f"{data.subject}: mean r by ROI: {rois}")


def _served_settings(store: Path) -> tuple[Any, str, dict[str, Any] | None]:
    """The settings of the served system whose store ``store`` is, where they come from, and the system's prices.

    The system's table in its study folder's ``config.toml`` (``OUT/triplets/<system>.sqlite``);
    ``None`` and ``"defaults"`` for a store outside a study folder or of another kind of system,
    whose sessions are then judged by the defaults of :class:`~oddoneout.agents.registry.HumanSettings`.
    The prices are the system's of the study's ``[cost]`` table (``None`` outside a study folder).
    """
    from oddoneout.agents.registry import HumanSettings
    from oddoneout.config import load_config
    from oddoneout.study_folder import StudyFolder

    folder = StudyFolder(store.parent.parent)
    if store.parent.name != "triplets" or not folder.config.is_file():
        return None, "defaults", None
    try:
        config = load_config(folder.config)
    except InputError as exc:  # a status must still be shown: say why the study's rules are not used
        print(f"note: {folder.config} cannot be read ({exc}): sessions judged by the defaults", file=sys.stderr)
        return None, "defaults", None
    system = config.systems.get(store.stem)
    if system is None or folder.system(store.stem).store != store:
        return None, "defaults", None
    prices = config.cost.prices(store.stem)
    if not isinstance(system.settings, HumanSettings):
        return None, "defaults", prices
    return system.settings, str(folder.config), prices


@app.command()
@_clean_errors
def status(
    stores: Annotated[
        list[Path],
        typer.Argument(help="Triplet stores (.sqlite) or exports (.parquet); a folder: every store in it."),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON to stdout (an object for one file, else a list).")
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Instead, check each file whole (SQLite integrity_check; an export is read): "
            "ok or corrupt per file, exit status 1 if any is corrupt.",
        ),
    ] = False,
) -> None:
    """Counts by status, throughput, tokens, cost and position bias of a collection (or, with --check, its integrity).

    The cost's price is at the prices of the study's cost table (OUT/config.toml) for a store in a
    study folder; elsewhere it is n/a.

    A served system's store (in a study folder: OUT, or OUT/triplets/SYSTEM.sqlite) shows each
    participant session, judged by the system's min_rt_ms and exclusion rules in OUT/config.toml
    (a store outside a study folder: by the defaults of agent = "human").
    """
    from oddoneout.collect.status import check_file, find_stores, format_check, format_status, store_status

    paths = find_stores(stores)
    if check:
        problems = {path: check_file(path) for path in paths}
        if as_json:
            records = [{"path": str(path), "ok": not found, "problems": found} for path, found in problems.items()]
            print(json.dumps(records, indent=2))
        else:
            print("\n".join(format_check(path, found) for path, found in problems.items()))
        if any(problems.values()):
            raise typer.Exit(code=1)
        return
    results = []
    for path in paths:
        settings, source, prices = _served_settings(path)
        result = store_status(path, settings=settings, prices=prices)
        if "rules" in result:
            result["rules"]["source"] = source
        results.append(result)
    if as_json:
        one_file = len(stores) == 1 and not stores[0].is_dir()
        print(json.dumps(results[0] if one_file else results, indent=2, default=str))
    else:
        print("\n\n".join(format_status(result) for result in results))


@app.command()
@_clean_errors
def fetch(
    dataset: Annotated[
        str,
        typer.Argument(
            help="Data set to fetch: cowen_keltner (stimuli), or a similarity data set: food_similarity, "
            "car_similarity, material_similarity, musician_similarity, nature_scene_similarity, "
            "vogue_cover_similarity, imagenet_similarity_v1, imagenet_similarity_v2, things_similarity, "
            "things_odd_one_out (docs/datasets.md)."
        ),
    ] = "cowen_keltner",
    source: Annotated[
        Optional[Path], typer.Option("--from", help="Offline folder holding the files (checked, not copied).")
    ] = None,
    data_dir: Annotated[
        Optional[Path], typer.Option(help="Cache folder (default $ODDONEOUT_DATA or ~/.cache/oddoneout).")
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out",
            "-o",
            help="Also write cowen_keltner's stimulus table here (.parquet), or a similarity data set's trials "
            "(.npz trial archive, read by `oddoneout fit`).",
        ),
    ] = None,
) -> None:
    """Fetch (download or read offline) and verify a public data set's files by checksum."""
    if dataset != "cowen_keltner":
        _fetch_similarity_dataset(dataset, source, data_dir, out)
        return
    from oddoneout.stimuli.cowen_keltner import load_cowen_keltner

    stimuli = load_cowen_keltner(source=source, data_dir=data_dir)
    console.print(f"{dataset}: {len(stimuli)} items verified")
    if out is not None:
        console.print(f"stimulus table: {stimuli.save(out, source=dataset)}")


def _fetch_similarity_dataset(name: str, source: Path | None, data_dir: Path | None, out: Path | None) -> None:
    from oddoneout.datasets import dataset_names, fetch_dataset

    if name not in dataset_names():
        raise typer.BadParameter(f"unknown data set {name!r}; available: cowen_keltner, {', '.join(dataset_names())}")
    if out is not None and out.suffix != ".npz":
        raise typer.BadParameter(f"{out}: the trials of {name} are written as a .npz trial archive")
    data = fetch_dataset(name, source=source, data_dir=data_dir)
    trials = data.triplets
    console.print(f"{name}: {len(trials)} {trials.trial_type.spec} trials over {trials.n_items} items verified")
    for note in data.notes:
        console.print(f"  {note}", markup=False)
    console.print(f"  cite: {data.citation}\n  license: {data.license}", markup=False)
    if out is not None:
        console.print(f"trials: {data.save(out)}")


@app.command()
@_clean_errors
def report(out: Annotated[Path, typer.Argument(help="Study output folder.")]) -> None:
    """(Re)write OUT/report.html from the files of a study run, as its report stage does (settings: OUT/config.toml)."""
    from oddoneout.config import load_config
    from oddoneout.pipeline.report import write_study_report
    from oddoneout.study_folder import StudyFolder

    folder = StudyFolder(out)
    config = load_config(folder.config) if folder.config.is_file() else None
    console.print(f"report: {write_study_report(folder, config)}")


if __name__ == "__main__":
    app()
