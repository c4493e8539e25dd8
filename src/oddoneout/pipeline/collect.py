"""The collect stage: every design of every system asked of its agent, into the system's store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from oddoneout.agents.base import Agent
from oddoneout.agents.registry import agent_kind, build_agent
from oddoneout.config import StudyConfig
from oddoneout.errors import InputError
from oddoneout.pipeline.stage import StudyRun, SystemStage
from oddoneout.stimuli.stimulus_set import StimulusSet
from oddoneout.study_folder import StudyFolder

if TYPE_CHECKING:
    from oddoneout.collect.adaptive import AdaptivePlan

#: Design names in every system's store.
MAIN_DESIGN, REPEAT_DESIGN, EXHAUSTIVE_DESIGN = "random", "repeats", "exhaustive"


def study_designs(
    config: StudyConfig, item_ids: Sequence[str], name: str | None = None, store: Path | None = None
) -> list:
    """The main random design, the repeated design for the noise ceiling, the exhaustive validation subset.

    With ``name``, the system's own ``design`` settings apply (the study's ``[design]`` otherwise),
    its ``trial_type`` the type of every design. With ``selection = "adaptive"`` the main design is
    replaced by the adaptive plan's holdout and ``adaptive`` designs (:func:`adaptive_plan`): the
    latter holds round 0 and, given the system's ``store``, every round recorded there.
    """
    from oddoneout.collect.designs import listed_design, random_design, read_triplet_list
    from oddoneout.triplets import trial_type_from_spec

    settings = config.systems[name].design if name else config.design
    if settings.selection == "adaptive":
        plan = adaptive_plan(config, item_ids, name)
        return [plan.first_designs()[0], plan.adaptive_design(store), *_extra_designs(config, item_ids, name)]
    seed = config.study.seed
    kind = trial_type_from_spec(settings.trial_type)
    orderings = settings.n_orderings
    if settings.triplets:
        listed = read_triplet_list(config.resolve(settings.triplets), kind.n_shown)
        main = listed_design(item_ids, listed, seed=seed, n_orderings=orderings, name=MAIN_DESIGN, trial_type=kind)
    else:
        main = random_design(
            item_ids, settings.n_triplets, seed=seed, n_orderings=orderings, name=MAIN_DESIGN, trial_type=kind
        )
    return [main, *_extra_designs(config, item_ids, name)]


def _extra_designs(config: StudyConfig, item_ids: Sequence[str], name: str | None) -> list:
    """The repeated design (noise ceiling) and the exhaustive validation subset, as the settings ask."""
    from oddoneout.collect.designs import exhaustive_design, repeated_design
    from oddoneout.triplets import trial_type_from_spec

    settings = config.systems[name].design if name else config.design
    seed = config.study.seed
    kind = trial_type_from_spec(settings.trial_type)
    designs = []
    if settings.repeated_triplets > 0 and settings.n_repeats > 1:
        designs.append(
            repeated_design(
                item_ids,
                settings.repeated_triplets,
                settings.n_repeats,
                seed=seed + 1,
                name=REPEAT_DESIGN,
                trial_type=kind,
            )
        )
    if settings.exhaustive_items >= kind.n_shown:
        subset = validation_subset(config, item_ids, settings.exhaustive_items)
        designs.append(exhaustive_design(subset, name=EXHAUSTIVE_DESIGN, seed=seed + 2, trial_type=kind))
    return designs


def adaptive_plan(config: StudyConfig, item_ids: Sequence[str], name: str | None = None) -> "AdaptivePlan":
    """The adaptive plan of a system with ``[design] selection = "adaptive"`` (or of the study's ``[design]``).

    ``n_triplets`` is the whole budget of base trials; ``holdout_triplets = 0`` holds out the
    ``[embedding] test_fraction`` share of it (the test set a random design's split would give).
    """
    from oddoneout.collect.adaptive import AdaptivePlan
    from oddoneout.triplets import trial_type_from_spec

    settings = config.systems[name].design if name else config.design
    holdout = settings.holdout_triplets or max(1, round(config.embedding.test_fraction * settings.n_triplets))
    return AdaptivePlan.from_budget(
        item_ids,
        settings.n_triplets,
        config.study.seed,
        n_rounds=settings.adaptive_rounds,
        holdout=holdout,
        round_size=settings.adaptive_round_size,
        criterion=settings.adaptive_criterion,
        n_orderings=settings.n_orderings,
        trial_type=trial_type_from_spec(settings.trial_type),
    )


def validation_subset(config: StudyConfig, item_ids: Sequence[str], n_items: int | None = None) -> list[str]:
    """The seeded subset of items asked exhaustively (``[design] exhaustive_items`` of them by default).

    A smaller subset is a prefix of a larger one, so systems asked about fewer items share them.
    """
    n_items = config.design.exhaustive_items if n_items is None else n_items
    if n_items > len(item_ids):
        raise InputError(f"exhaustive_items = {n_items} exceeds the {len(item_ids)} items of the study")
    order = np.random.default_rng(config.study.seed + 2).permutation(len(item_ids))
    return [item_ids[i] for i in np.sort(order[:n_items])]


def collect_system(config: StudyConfig, folder: StudyFolder, name: str, stimuli: StimulusSet) -> dict[str, Any]:
    """Collect (or resume collecting) every design for one system, then export the store to Parquet.

    Local agents are asked in batches by :func:`~oddoneout.collect.runner.collect` (or sharded
    over Ray with ``[collect] executor = "ray"``); remote agents (``openai``) concurrently by
    :func:`~oddoneout.collect.async_runner.collect_remote`, with the system's concurrency,
    retries, timeout, rate limit and budget. A served system (``agent = "human"``) is asked by
    ``oddoneout serve``: here its store, as the server left it, is only exported.
    """
    from oddoneout.collect.store import TripletStore

    files = folder.system(name)
    system, settings = config.systems[name], config.collect
    if agent_kind(system.agent).served:
        return export_store(files.store, files.export, name, reproducible=False)
    files.store.parent.mkdir(parents=True, exist_ok=True)
    adaptive = system.design.selection == "adaptive"
    designs = study_designs(config, stimuli.item_ids, name, files.store)
    out = folder.root
    if adaptive and settings.executor == "ray":
        raise InputError(
            f'system {name!r}: adaptive selection (selection = "adaptive") needs the local or the asynchronous '
            'runner, not [collect] executor = "ray": each round is chosen on the answers to the rounds before'
        )
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
            plan = adaptive_plan(config, stimuli.item_ids, name) if adaptive else None
            extras = _extra_designs(config, stimuli.item_ids, name)
            if agent_kind(system.agent).concurrent:
                remote = system.settings
                options = {
                    "concurrency": remote.concurrency,
                    "max_retries": remote.max_retries,
                    "request_timeout": remote.timeout * 2,
                    "rate_limit": remote.rate_limit or None,
                    "max_requests": remote.max_requests or None,
                    "max_tokens": remote.max_tokens or None,
                    "seed": config.study.seed,
                }
                if plan is None:
                    from oddoneout.collect.async_runner import collect_remote

                    collect_remote(designs, agent, store, **options)
                else:
                    from oddoneout.collect.adaptive import collect_adaptive_remote

                    collect_adaptive_remote(plan, agent, store, extras, **options)
            elif plan is not None:
                from oddoneout.collect.adaptive import collect_adaptive

                collect_adaptive(plan, agent, store, extras, batch_size=system.design.batch_size, progress=True)
            else:
                from oddoneout.collect.runner import collect

                for design in designs:
                    collect(design, agent, store, batch_size=system.design.batch_size, progress=True)
    return export_store(files.store, files.export, name, reproducible=agent_kind(system.agent).reproducible)


def export_store(store_path: Path, export_path: Path, name: str, reproducible: bool) -> dict[str, int]:
    """Export system ``name``'s store to Parquet; its counts by status."""
    from oddoneout.collect.store import TripletStore

    if not store_path.is_file():
        raise InputError(
            f"system {name!r} has no answers yet ({store_path} does not exist): its agent is served to people, "
            f"collect them with `oddoneout serve CONFIG --out OUT --system {name}`"
        )
    with TripletStore.open(store_path) as store:
        store.export_parquet(export_path, answers_reproducible=reproducible)
        return store.counts()


def estimate_study(config: StudyConfig, folder: StudyFolder, systems: Sequence[str] | None = None) -> dict[str, Any]:
    """What collecting each system's remaining trials will take and cost, at the rates of its stored judgments.

    Asks no agent: the designs are counted (:func:`study_designs`) and each system's store, when
    there is one, is read as a pilot (:func:`~oddoneout.collect.cost.estimate`). A system without
    answers gets advice on running a pilot instead of numbers.

    Parameters
    ----------
    config : StudyConfig
        The study (its ``[cost]`` prices price the projection).
    folder : StudyFolder
        Its output folder: the stimulus table (``oddoneout run CONFIG --stage stimuli`` writes it,
        asking no agent) and the stores.
    systems : sequence of str, optional
        The systems to estimate (default: every one).

    Returns
    -------
    dict
        System name -> :func:`~oddoneout.collect.cost.estimate` with the store's cost record as ``pilot_cost``.

    Raises
    ------
    InputError
        When the stimulus table is missing or a system is not in the config.
    """
    from oddoneout.collect.cost import estimate, store_cost
    from oddoneout.collect.store import read_key_codes

    if not folder.stimuli.is_file():
        raise InputError(
            f"{folder.stimuli} is missing: the design is drawn over the study's items; write them first with "
            f"`oddoneout run {config.file} --out {folder.root} --stage stimuli` (it asks no agent)"
        )
    names = list(config.systems) if systems is None else list(systems)
    unknown = [name for name in names if name not in config.systems]
    if unknown:
        raise InputError(f"system(s) {unknown} are not in the config; systems: {list(config.systems)}")
    item_ids = StimulusSet.load(folder.stimuli).item_ids
    estimates = {}
    for name in names:
        store, prices = folder.system(name).store, config.cost.prices(name)
        designs = study_designs(config, item_ids, name, store if store.is_file() else None)
        record = store_cost(store, prices) if store.is_file() else {}
        stored = read_key_codes(store) if store.is_file() else {}
        n_stored = sum(int(np.isin(d.key_codes(), stored.get(d.name, [])).sum()) for d in designs)
        n_planned = sum(len(d) for d in designs) + _unselected_trials(config, item_ids, name, store)
        result = estimate(record, n_planned, n_stored, prices)
        result["pilot_cost"] = record or None
        estimates[name] = result
    return estimates


def _unselected_trials(config: StudyConfig, item_ids: Sequence[str], name: str, store: Path) -> int:
    """Trials of an adaptive system's rounds not selected yet (0 for a random design)."""
    if config.systems[name].design.selection != "adaptive":
        return 0
    from oddoneout.collect.adaptive import recorded_rounds

    plan = adaptive_plan(config, item_ids, name)
    n_recorded = len(recorded_rounds(store, plan)) if store.is_file() else 0
    return (plan.n_rounds - n_recorded) * plan.round_size * plan.n_orderings


class _AgentFactory:
    """Builds a system's agent inside a Ray worker (picklable: holds the config, not the agent)."""

    def __init__(self, config: StudyConfig, out: Path, name: str, stimuli: StimulusSet) -> None:
        self.config, self.out, self.name, self.stimuli = config, out, name, stimuli

    def __call__(self) -> Agent:
        return build_agent(self.config, self.out, self.name, self.stimuli)


class CollectStage(SystemStage):
    """Reads ``stimuli.parquet``; writes ``triplets/<s>.sqlite`` and its export ``triplets/<s>.parquet``."""

    name = "collect"

    def reads_of(self, run: StudyRun, system: str) -> list[Path]:
        return [run.folder.stimuli]

    def writes_of(self, run: StudyRun, system: str) -> list[Path]:
        files = run.folder.system(system)
        return [files.store, files.export]

    def run_system(self, run: StudyRun, system: str) -> dict[str, Any]:
        return collect_system(run.config, run.folder, system, run.stimuli)
