"""What a stage checks before it trusts a file an earlier stage wrote.

A stage reads what the stages before it wrote, perhaps long ago and under another config. These
checks compare a file with what the config and the upstream file say it should be, and refuse
(one line: what is stale and what to re-run) instead of computing quietly on the wrong data:

- :func:`check_export`: a system's Parquet export is the snapshot of a readable store (not older
  than it, not left beside a corrupt one) and holds exactly the trials of the config's designs;
- :func:`check_split`: the held-out triplets are those the embedding was fitted beside.
"""

from __future__ import annotations

import logging

import numpy as np

from oddoneout.agents.registry import agent_kind
from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.pipeline.collect import study_designs
from oddoneout.pipeline.stage import StudyRun
from oddoneout.triplets import Triplets

logger = logging.getLogger(__name__)

__all__ = ["StaleInputError", "check_export", "check_split"]


class StaleInputError(InputError):
    """A file a stage reads is not what the config and the stage that writes it say it should be."""


def check_export(run: StudyRun, system: str) -> None:
    """Refuse a system's export that is not the complete snapshot of its store for the config's designs.

    Raises
    ------
    StaleInputError
        When the store behind the export cannot be read, holds judgments the export lacks, or
        the export's trials are not those of the config's designs (fewer: collection did not
        finish; others: they were collected under another trial type, seed, size or item set). Missing
        trials of a system with a request or token budget, or served to people (who are still
        answering), are logged, not refused.
    """
    from oddoneout.collect.store import TripletStore, check_store, export_record, read_key_codes

    files = run.folder.system(system)
    record = export_record(files.export)
    if files.store.exists():
        problems = [f"damaged: {problem}" for problem in check_store(files.store, quick=True)]
        if not problems:
            try:
                with TripletStore.open(files.store) as store:
                    in_store = store.design_counts()
            except InputError as exc:  # the store's own one-line errors (an SQLite failure included)
                problems = [str(exc)]
        if problems:
            raise StaleInputError(
                f"{files.store} cannot be read ({problems[0]}), so its export {files.export.name} cannot be "
                f"trusted: restore the store, or delete triplets/{system}.* and run collect again"
            )
        if in_store != record.get("designs"):
            raise StaleInputError(
                f"{files.export} is older than its store ({sum(record.get('designs', {}).values())} judgments "
                f"exported, {sum(in_store.values())} stored): run collect for {system!r} (it re-exports)"
            )
    item_ids = list(run.stimuli.item_ids)
    if record.get("item_ids") is not None and record["item_ids"] != item_ids:
        raise StaleInputError(
            f"{files.export}: collected over another item set than stimuli.parquet's {len(item_ids)} items: "
            f"collect {system!r} into a new --out, or delete triplets/{system}.* and collect again"
        )
    stored = read_key_codes(files.export)
    designs = study_designs(run.config, item_ids, system, files.store if files.store.is_file() else None)
    extra = sorted(set(stored) - {design.name for design in designs})
    if extra:
        raise StaleInputError(
            f"{files.export} holds design(s) {extra} the config does not ask: collect {system!r} into a new "
            f"--out, or delete triplets/{system}.* and collect again"
        )
    stored_types = record.get("trial_types") or {}
    for design in designs:
        collected_as = stored_types.get(design.name)
        if collected_as is not None and collected_as != design.trial_type.spec:
            raise StaleInputError(
                f"{files.export}: design {design.name!r} was collected as {collected_as} trials, the config asks "
                f"{design.trial_type.spec} trials: collect {system!r} into a new --out, or delete "
                f"triplets/{system}.* and collect again"
            )
        codes = stored.get(design.name, np.zeros(0, dtype=np.int64))
        n_foreign = int((~np.isin(codes, design.key_codes())).sum())
        if n_foreign:
            raise StaleInputError(
                f"{files.export}: {n_foreign} trials of design {design.name!r} are not in the config's design "
                f"(collected under another seed, size or item set): collect {system!r} into a new --out, or "
                f"delete triplets/{system}.* and collect again"
            )
        n_missing = len(design) - codes.size
        if n_missing:
            message = (
                f"{files.export}: {codes.size} of the {len(design)} trials of design {design.name!r} are collected"
            )
            partial = _why_partial(run, system)
            if partial is None:
                raise StaleInputError(f"{message}: run collect for {system!r} (it asks only the missing ones)")
            logger.warning("%s (%s)", message, partial)


def _why_partial(run: StudyRun, system: str) -> str | None:
    """Why a system's design may be fitted before it is complete, or ``None`` when it may not."""
    kind, settings = agent_kind(run.config.systems[system].agent), run.config.systems[system].settings
    if kind.served:
        return "people are still answering"
    if kind.concurrent and (settings.max_requests or settings.max_tokens):
        return "the collection stopped on its budget"
    return None


def check_split(embedding: Embedding, test: Triplets, system: str) -> None:
    """Refuse held-out triplets other than those the embedding was fitted beside.

    Raises
    ------
    StaleInputError
        When the embedding records the hash of its test split and ``test`` has another.
    """
    expected = embedding.metadata.get("test_triplets_hash")
    if expected is not None and expected != test.hash():
        raise StaleInputError(
            f"the test split of {system!r} is not the one its embedding was fitted beside (split/ and "
            f"embeddings/ come from different fits): run fit for {system!r} again"
        )
