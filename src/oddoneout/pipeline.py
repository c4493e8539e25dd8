"""The study pipeline: each stage reads the previous stage's files in the output folder and writes its own.

Stages, in order: ``stimuli`` -> ``collect`` -> ``fit`` -> ``evaluate`` -> ``interpret`` -> ``encode``
-> ``report``. :func:`run_study` chains them from a config; each is also a function of its own so
that any stage can be rerun, resumed or swapped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from oddoneout.agents.base import Agent
from oddoneout.agents.registry import agent_kind, build_agent
from oddoneout.config import StudyConfig, check_inputs, dump_config, load_config
from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.progress import console, make_progress, stage
from oddoneout.progress import metrics_text as _metrics_text
from oddoneout.provenance import provenance
from oddoneout.stimuli.stimulus_set import StimulusSet
from oddoneout.study_folder import StudyFolder, nan_to_none, read_json, write_json
from oddoneout.triplets import Triplets, read_item_ids

STAGES = ("stimuli", "collect", "fit", "evaluate", "interpret", "encode", "report")
#: Design names in every system's store.
MAIN_DESIGN, REPEAT_DESIGN, EXHAUSTIVE_DESIGN = "random", "repeats", "exhaustive"


# --- stimuli -----------------------------------------------------------------------------------


def prepare_stimuli(config: StudyConfig, out: Path) -> StimulusSet:
    """Write ``stimuli.parquet`` (and, for the synthetic study, the world: agent views, brain, truth).

    ``[stimuli] source`` is ``"synthetic"``, ``"cowen_keltner"`` (fetched, or read offline from
    ``path`` / ``$ODDONEOUT_COWEN_KELTNER``) or the path of a stimulus table.
    """
    settings = config.stimuli
    if settings.source == "synthetic":
        from oddoneout.studies.synthetic import make_world

        world = make_world(
            n_items=settings.n_items,
            n_subjects=settings.n_subjects,
            n_runs=settings.n_runs,
            voxels_per_roi=settings.voxels_per_roi,
            seed=config.study.seed,
        )
        world.write(out)
        return world.stimuli
    if settings.source == "cowen_keltner":
        from oddoneout.stimuli.cowen_keltner import load_cowen_keltner

        offline = config.resolve(settings.path) if settings.path else None
        stimuli = load_cowen_keltner(source=offline)
        _attach_videos(config, stimuli)
        stimuli.save(StudyFolder(out).stimuli, source="cowen_keltner")
        return stimuli
    stimuli = StimulusSet.load(config.resolve(settings.source))
    _attach_videos(config, stimuli)
    stimuli.save(StudyFolder(out).stimuli, source=str(settings.source))
    return stimuli


def _attach_videos(config: StudyConfig, stimuli: StimulusSet) -> None:
    """Record each item's video file (``[stimuli] videos``) in the table's ``media_path``."""
    if not config.stimuli.videos:
        return
    from oddoneout.stimuli.videos import match_videos

    found = match_videos(config.resolve(config.stimuli.videos), stimuli.item_ids)
    stimuli.table["media_path"] = [str(found[i]) if i in found else None for i in stimuli.table.index]


def load_stimuli(out: Path) -> StimulusSet:
    """The study's stimulus table as written by :func:`prepare_stimuli`."""
    return StimulusSet.load(StudyFolder(out).stimuli)


# --- agents and collection ---------------------------------------------------------------------


def study_designs(config: StudyConfig, item_ids: Sequence[str], name: str | None = None) -> list:
    """The main random design, the repeated design for the noise ceiling, the exhaustive validation subset.

    With ``name``, the system's own ``design`` settings apply (the study's ``[design]`` otherwise).
    """
    from oddoneout.collect.designs import (
        exhaustive_design,
        listed_design,
        random_design,
        read_triplet_list,
        repeated_design,
    )

    settings = config.systems[name].design if name else config.design
    seed = config.study.seed
    if settings.triplets:
        listed = read_triplet_list(config.resolve(settings.triplets))
        main = listed_design(item_ids, listed, seed=seed, n_orderings=settings.n_orderings, name=MAIN_DESIGN)
    else:
        main = random_design(
            item_ids, settings.n_triplets, seed=seed, n_orderings=settings.n_orderings, name=MAIN_DESIGN
        )
    designs = [main]
    if settings.repeated_triplets > 0 and settings.n_repeats > 1:
        designs.append(
            repeated_design(
                item_ids, settings.repeated_triplets, settings.n_repeats, seed=seed + 1, name=REPEAT_DESIGN
            )
        )
    if settings.exhaustive_items >= 3:
        subset = validation_subset(config, item_ids, settings.exhaustive_items)
        designs.append(exhaustive_design(subset, name=EXHAUSTIVE_DESIGN, seed=seed + 2))
    return designs


def validation_subset(config: StudyConfig, item_ids: Sequence[str], n_items: int | None = None) -> list[str]:
    """The seeded subset of items asked exhaustively (``[design] exhaustive_items`` of them by default).

    A smaller subset is a prefix of a larger one, so systems asked about fewer items share them.
    """
    n_items = config.design.exhaustive_items if n_items is None else n_items
    if n_items > len(item_ids):
        raise InputError(f"exhaustive_items = {n_items} exceeds the {len(item_ids)} items of the study")
    order = np.random.default_rng(config.study.seed + 2).permutation(len(item_ids))
    return [item_ids[i] for i in np.sort(order[:n_items])]


def collect_system(config: StudyConfig, out: Path, name: str, stimuli: StimulusSet) -> dict[str, Any]:
    """Collect (or resume collecting) every design for one system, then export the store to Parquet.

    Local agents are asked in batches by :func:`~oddoneout.collect.runner.collect` (or sharded
    over Ray with ``[collect] executor = "ray"``); remote agents (``openai``) concurrently by
    :func:`~oddoneout.collect.async_runner.collect_remote`, with the system's concurrency,
    retries, timeout, rate limit and budget.
    """
    from oddoneout.collect.store import TripletStore

    files = StudyFolder(out).system(name)
    files.store.parent.mkdir(parents=True, exist_ok=True)
    designs = study_designs(config, stimuli.item_ids, name)
    system, settings = config.systems[name], config.collect
    if settings.executor == "ray":
        from oddoneout.collect.ray_executor import collect_ray

        # the workers build the agent; the driver never does
        collect_ray(
            designs,
            _AgentFactory(config, out, name, stimuli),
            files.store,
            n_shards=settings.n_shards or None,
            batch_size=system.design.batch_size,
            ray_address=settings.ray_address or None,
        )
    else:
        agent = build_agent(config, out, name, stimuli)
        with TripletStore(files.store, agent=agent.name, model=agent.model, item_ids=stimuli.item_ids) as store:
            if agent_kind(system.agent).concurrent:
                from oddoneout.collect.async_runner import collect_remote

                remote = system.settings
                collect_remote(
                    designs,
                    agent,
                    store,
                    concurrency=remote.concurrency,
                    max_retries=remote.max_retries,
                    request_timeout=remote.timeout * 2,
                    rate_limit=remote.rate_limit or None,
                    max_requests=remote.max_requests or None,
                    max_tokens=remote.max_tokens or None,
                    seed=config.study.seed,
                )
            else:
                from oddoneout.collect.runner import collect

                for design in designs:
                    collect(design, agent, store, batch_size=system.design.batch_size, progress=True)
    with TripletStore.open(files.store) as store:
        store.export_parquet(files.export)
        return store.counts()


class _AgentFactory:
    """Builds a system's agent inside a Ray worker (picklable: holds the config, not the agent)."""

    def __init__(self, config: StudyConfig, out: Path, name: str, stimuli: StimulusSet) -> None:
        self.config, self.out, self.name, self.stimuli = config, out, name, stimuli

    def __call__(self) -> Agent:
        return build_agent(self.config, self.out, self.name, self.stimuli)


# --- fitting and evaluation --------------------------------------------------------------------


def design_triplets(out: Path, name: str, design: str) -> Triplets:
    """The ``ok`` judgments of one design of one system's store, as :class:`Triplets`."""
    from oddoneout.collect.store import read_judgments_as_triplets

    return read_judgments_as_triplets(StudyFolder(out).system(name).export, design=design)


def fit_system(config: StudyConfig, out: Path, name: str) -> Embedding:
    """Split the main design's triplets, fit the embedding on the training part, write both.

    With a list of ``l1`` values, each is fitted on a further split of the training part and the
    sparsest one within ``l1_n_se`` standard errors of the lowest held-out cross-entropy is kept
    (:func:`~oddoneout.embed.selection.select_l1`). With several ``seeds``, that ``l1`` is fitted
    once per seed (in parallel, :func:`~oddoneout.embed.seeds.fit_seeds`); the seed with the
    lowest held-out cross-entropy gives the embedding, and each of its dimensions' reproducibility
    across the other seeds goes to ``embeddings/<system>_dims.csv``.
    """
    from oddoneout.embed.selection import select_l1

    settings, seed = config.embedding, config.study.seed
    files = StudyFolder(out).system(name)
    triplets = design_triplets(out, name, MAIN_DESIGN)
    train, test = triplets.split(settings.test_fraction, seed=seed)
    files.train.parent.mkdir(parents=True, exist_ok=True)
    np.save(files.train, train.indices)
    np.save(files.test, test.indices)
    files.items.write_text("\n".join(triplets.item_ids) + "\n")
    params = {
        key: getattr(settings, key)
        for key in (
            "n_dims",
            "lr",
            "batch_size",
            "max_epochs",
            "patience",
            "prune_threshold",
            "relax",
            "averaging",
            "device",
        )
    }
    l1_values = settings.l1 if isinstance(settings.l1, list) else [settings.l1]
    with make_progress() as bar:

        def on_fit(label: str):
            task = bar.add_task(f"fit {name} {label}", total=settings.max_epochs, unit="epochs", info="")
            return lambda done, total, metrics: bar.update(task, completed=done, info=_metrics_text(metrics))

        if settings.method == "vice":
            from oddoneout.embed.vice import VICE

            del params["prune_threshold"], params["relax"], params["averaging"]  # SPoSE only
            model = VICE(seed=seed, progress=on_fit("vice"), **params).fit(train)
            selection = None
        else:
            model, scores = select_l1(
                train,
                l1_values,
                seed=seed,
                n_se=settings.l1_n_se,
                n_folds=settings.l1_folds,
                on_fit=lambda label: on_fit(f"l1={label}"),
                **params,
            )
            selection = scores.to_dict("records")
    seeds = list(settings.seeds)
    if settings.method == "spose" and len(seeds) > 1:
        from oddoneout.embed.seeds import fit_seeds

        with stage(f"fit {name}: {len(seeds)} seeds x l1={model.l1:g}, {settings.n_jobs} job(s)"):
            results = fit_seeds(
                train, seeds, n_jobs=settings.n_jobs, backend=settings.seed_backend, l1=model.l1, **params
            )
        files.embedding.parent.mkdir(parents=True, exist_ok=True)
        results.reproducibility.to_csv(files.dims)
        embedding, history = results.to_embedding(), results.chosen.history
    else:
        embedding, history = model.to_embedding(), model.history_
    history = {key: [float(v) for v in values] for key, values in history.items()}
    embedding.metadata.update(
        {
            "system": name,
            "config_hash": config.hash,
            "test_triplets_hash": test.hash(),
            "history": history,
            "l1_selection": selection,
            "l1_folds": settings.l1_folds if selection is not None else None,
        }
    )
    embedding.save(files.embedding)
    return embedding


def _dimensionality(embedding: Embedding, test: Triplets, rsm_subset: Any) -> dict[str, Any]:
    """Held-out accuracy (and RSM r) with the top-k dimensions, where it saturates, PCs needed."""
    from oddoneout.embed.dimensionality import components_needed, dimensionality_curve, saturation_point

    if embedding.n_dims == 0:
        return {"dimensionality": None, "saturation_dims": None, "components_95": None, "components_99": None}
    curve = dimensionality_curve(embedding, test, rsm_subset=rsm_subset)
    components = components_needed(embedding, test, fractions=(0.95, 0.99))
    return {
        "dimensionality": {column: curve[column].tolist() for column in curve.columns},
        "saturation_dims": saturation_point(curve, tolerance=0.01),
        "components_95": components[0.95],
        "components_99": components[0.99],
    }


def evaluate_system(config: StudyConfig, out: Path, name: str) -> dict[str, Any]:
    """Held-out accuracy (with CI), cross-entropy and the noise ceiling of one system."""
    from oddoneout.collect.store import read_judgments
    from oddoneout.embed.evaluate import evaluate_embedding, noise_ceiling

    files = StudyFolder(out).system(name)
    n_bootstrap, seed = config.evaluation.n_bootstrap, config.study.seed
    embedding = Embedding.load(files.embedding)
    item_ids = read_item_ids(files.items)
    test = Triplets(item_ids, np.load(files.test))
    result = evaluate_embedding(embedding, test, n_bootstrap=n_bootstrap, seed=seed)
    judgments = read_judgments(files.export)
    repeats = judgments[(judgments["design"] == REPEAT_DESIGN) & (judgments["status"] == "ok")]
    if len(repeats):
        ceiling = noise_ceiling(
            repeats[["item_0", "item_1", "item_2"]].to_numpy(str),
            repeats["odd_one_out"].to_numpy(str),
            n_bootstrap=n_bootstrap,
            seed=seed,
        )
    else:
        ceiling = {"noise_ceiling": None, "noise_ceiling_ci": None, "n_repeated_triplets": 0}
    result.update(ceiling)
    exhaustive = judgments[(judgments["design"] == EXHAUSTIVE_DESIGN) & (judgments["status"] == "ok")]
    result["rsm_r"] = None
    rsm_subset = None
    if len(exhaustive):
        from oddoneout.embed.rsm import measured_similarity, predicted_similarity, rsm_correlation

        subset = sorted(set(exhaustive[["item_0", "item_1", "item_2"]].to_numpy(str).ravel()))
        measured = measured_similarity(
            exhaustive[["item_0", "item_1", "item_2"]].to_numpy(str), exhaustive["odd_one_out"].to_numpy(str), subset
        )
        result["rsm_r"] = rsm_correlation(measured, predicted_similarity(embedding.align(subset)))
        result["n_exhaustive_items"] = len(subset)
        rsm_subset = (subset, measured)
    result.update(_dimensionality(embedding, test, rsm_subset))
    result = nan_to_none(result)
    result["n_judgments"] = int(len(judgments))
    result["n_failed"] = int((judgments["status"] != "ok").sum())
    result["n_dims"] = embedding.n_dims
    result["history"] = embedding.metadata.get("history", {})
    result["provenance"] = provenance("evaluation", system=name, embedding=str(files.embedding.name))
    write_json(files.evaluation, result)
    return result


# --- interpretation and brain ------------------------------------------------------------------


def interpret_system(config: StudyConfig, out: Path, name: str, stimuli: StimulusSet) -> dict[str, Path]:
    """Every interpretation analysis of one system (:func:`~oddoneout.interpret.stage.interpret_embedding`)."""
    from oddoneout.interpret.stage import interpret_embedding

    embedding = Embedding.load(StudyFolder(out).system(name).embedding)
    return interpret_embedding(config.interpret, out, name, embedding, stimuli, seed=config.study.seed)


def compare_systems(config: StudyConfig, out: Path, systems: Sequence[str]) -> dict[str, Any]:
    """RSA between systems' similarity structures and cross-prediction of held-out triplets."""
    from oddoneout.interpret.cross_system import compare_systems_stage

    result = compare_systems_stage(out, systems, seed=config.study.seed, n_bootstrap=1000)
    write_json(StudyFolder(out).between_systems, nan_to_none(result))
    return result


def encode_systems(config: StudyConfig, out: Path, systems: Sequence[str]) -> pd.DataFrame:
    """The brain stage (:func:`~oddoneout.neural.stage.run_neural_stage`)."""
    from oddoneout.neural.stage import run_neural_stage

    return run_neural_stage(config, out, systems)


# --- summary and the whole run -----------------------------------------------------------------


def _rounded(value: Any, digits: int = 6) -> Any:
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, (list, tuple)):
        return [_rounded(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    return value


def summarize(config: StudyConfig, out: Path) -> dict[str, Any]:
    """Write ``summary.json``: per system the behavioural figures, per ROI and system the mean encoding r.

    Numbers are rounded to 6 decimals and no timestamps are written, so equal inputs give an
    identical file.
    """
    from oddoneout.interpret.stage import interpretation_summary

    keys = (
        "rsm_r",
        "saturation_dims",
        "components_95",
        "components_99",
        "n_judgments",
        "n_failed",
        "n_dims",
        "accuracy",
        "accuracy_ci",
        "cross_entropy",
        "noise_ceiling",
        "noise_ceiling_ci",
        "n_repeated_triplets",
    )
    folder = StudyFolder(out)
    systems = {}
    for name in config.systems:
        path = folder.system(name).evaluation
        if path.is_file():
            evaluation = read_json(path)
            systems[name] = {k: _rounded(evaluation.get(k)) for k in keys}
    from oddoneout.neural.stage import neural_summary

    summary = {
        "study": config.study.name,
        "synthetic": config.stimuli.source == "synthetic",
        "seed": config.study.seed,
        "provenance": provenance("summary", config_hash=config.hash),
        "systems": systems,
        "interpretation": _rounded(interpretation_summary(out, list(config.systems))),
        "between_systems": _rounded(read_json(folder.between_systems, missing_ok=True)),
        **neural_summary(out),
    }
    write_json(folder.summary, summary)
    return summary


def run_study(
    config_path: str | Path,
    out: str | Path,
    stages: Sequence[str] = STAGES,
    systems: Sequence[str] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    scale: str | None = None,
) -> dict[str, Any]:
    """Run the stages of a study config into ``out`` and return the summary.

    Parameters
    ----------
    config_path : path
        Study config (TOML).
    out : path
        Output folder (created). Re-running into the same folder resumes collection.
    stages : sequence of str
        Which of :data:`STAGES` to run (in pipeline order).
    systems : sequence of str, optional
        Restrict to these systems (default: all in the config).
    overrides : dict, optional
        ``{section: {key: value}}`` applied over the config file.
    scale : str, optional
        A ``[scales.NAME]`` table of the config to apply (e.g. ``"paper"``).
    """
    config = load_config(config_path, overrides, scale=scale)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"output folder {out} is a file: give --out a folder")
    unknown_stages = sorted(set(stages) - set(STAGES))
    if unknown_stages:
        raise InputError(f"unknown stage(s) {unknown_stages}; stages: {list(STAGES)}")
    names = list(systems) if systems else list(config.systems)
    unknown = sorted(set(names) - set(config.systems))
    if unknown:
        raise InputError(f"unknown system(s) {unknown}; the config has {sorted(config.systems)}")
    folder = StudyFolder(out)
    check_inputs(config, stages if folder.stimuli.is_file() else ["stimuli", *stages], names)
    out.mkdir(parents=True, exist_ok=True)
    folder.config.write_text(dump_config(config))
    timings: dict[str, float] = {}

    def timed(label: str, func: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        with stage(label):
            result = func()
        timings[label] = round(time.perf_counter() - start, 2)
        return result

    if "stimuli" in stages or not folder.stimuli.is_file():
        timed("stimuli", lambda: prepare_stimuli(config, out))
    stimuli = load_stimuli(out)
    for name in names:
        if "collect" in stages:
            timed(f"collect {name}", lambda: collect_system(config, out, name, stimuli))
        if "fit" in stages:
            timed(f"fit {name}", lambda: fit_system(config, out, name))
        if "evaluate" in stages:
            timed(f"evaluate {name}", lambda: evaluate_system(config, out, name))
        if "interpret" in stages:
            timed(f"interpret {name}", lambda: interpret_system(config, out, name, stimuli))
    if "interpret" in stages and len(names) > 1:
        timed("compare systems", lambda: compare_systems(config, out, names))
    if "encode" in stages:
        timed("encode", lambda: encode_systems(config, out, names))
    summary = summarize(config, out)
    if "report" in stages:
        from oddoneout.report.html import write_report

        title, interactive = config.report.title or None, config.interpret.interactive
        timed("report", lambda: write_report(out, title=title, interactive=interactive))
    timings["total"] = round(sum(timings.values()), 2)
    write_json(folder.timings, timings)
    console.print(f"[bold green]done[/] in {timings['total']:.1f} s: {folder.summary}")
    return summary
