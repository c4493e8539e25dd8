"""The evaluate stage: held-out accuracy, cross-entropy, noise ceiling, RSM fit and dimensionality.

:func:`evaluate_split` is the evaluation of an embedding on held-out triplets (and, when the
judgments hold them, the repeated and exhaustive designs); the stage and ``oddoneout evaluate``
both call it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oddoneout.embedding import Embedding, split_trial_type
from oddoneout.errors import InputError
from oddoneout.files import read_npy
from oddoneout.pipeline.collect import EXHAUSTIVE_DESIGN, REPEAT_DESIGN
from oddoneout.pipeline.stage import StudyRun, SystemStage
from oddoneout.provenance import provenance
from oddoneout.study_folder import nan_to_none, write_json
from oddoneout.triplets import ANCHOR, ODD_ONE_OUT, Triplets, read_item_ids

_ITEMS = ["item_0", "item_1", "item_2"]


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


def evaluate_split(
    embedding: Embedding,
    test: Triplets,
    judgments: pd.DataFrame | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every held-out figure of an embedding.

    Parameters
    ----------
    embedding : Embedding
        The fitted embedding.
    test : Triplets
        Held-out triplets.
    judgments : DataFrame, optional
        A store's judgments (:func:`~oddoneout.collect.store.read_judgments`): its ``repeats``
        design gives the noise ceiling, its ``exhaustive`` design the measured similarity matrix
        the embedding's is correlated with (``rsm_r``).
    n_bootstrap : int
        Bootstrap resamples of the confidence intervals.
    seed : int
        Bootstrap seed.

    Returns
    -------
    dict
        ``accuracy`` (with ``accuracy_ci``), ``cross_entropy``, ``noise_ceiling`` (with CI and
        ``n_repeated_triplets``), ``rsm_r``, the ``dimensionality`` curve, ``saturation_dims``,
        ``components_95`` / ``components_99``, ``n_dims``; NaN written as ``None``. For trials
        other than odd-one-out also ``trial_type`` and ``chance_cross_entropy``; the noise
        ceiling is that of the first choice, ``rsm_r`` that of an exhaustive anchor design
        (none for ranked trials).
    """
    from oddoneout.embed.evaluate import evaluate_embedding

    if not isinstance(test, Triplets):
        raise InputError("the held-out judgments are of several trial types: evaluate one design at a time (--design)")
    result = evaluate_embedding(embedding, test, n_bootstrap=n_bootstrap, seed=seed)
    if test.trial_type != ODD_ONE_OUT:
        result.update(_reference_trial_checks(embedding, test, judgments, n_bootstrap, seed))
        result = nan_to_none(result)
        result["n_dims"] = embedding.n_dims
        return result
    from oddoneout.embed.evaluate import noise_ceiling

    ok = judgments[judgments["status"] == "ok"] if judgments is not None else None
    repeats = ok[ok["design"] == REPEAT_DESIGN] if ok is not None else None
    if repeats is not None and len(repeats):
        result.update(
            noise_ceiling(
                repeats[_ITEMS].to_numpy(str),
                repeats["odd_one_out"].to_numpy(str),
                n_bootstrap=n_bootstrap,
                seed=seed,
            )
        )
    else:
        result.update({"noise_ceiling": None, "noise_ceiling_ci": None, "n_repeated_triplets": 0})
    exhaustive = ok[ok["design"] == EXHAUSTIVE_DESIGN] if ok is not None else None
    result["rsm_r"] = None
    rsm_subset = None
    if exhaustive is not None and len(exhaustive):
        from oddoneout.embed.rsm import measured_similarity, predicted_similarity, rsm_correlation

        subset = sorted(set(exhaustive[_ITEMS].to_numpy(str).ravel()))
        measured = measured_similarity(
            exhaustive[_ITEMS].to_numpy(str), exhaustive["odd_one_out"].to_numpy(str), subset
        )
        result["rsm_r"] = rsm_correlation(measured, predicted_similarity(embedding.align(subset)))
        result["n_exhaustive_items"] = len(subset)
        rsm_subset = (subset, measured)
    result.update(_dimensionality(embedding, test, rsm_subset))
    result = nan_to_none(result)
    result["n_dims"] = embedding.n_dims
    return result


def _design_trials(judgments: pd.DataFrame | None, design: str) -> Triplets | None:
    """The ``ok`` judgments of one design of a frame of judgments (one trial type), or ``None`` without any."""
    import pyarrow as pa

    from oddoneout.collect.judgment_rows import ANSWER_COLUMNS, triplets_from_table

    if judgments is None:
        return None
    rows = judgments[judgments["design"] == design]
    if not len(rows):
        return None
    table = pa.Table.from_pandas(rows[list(ANSWER_COLUMNS)], preserve_index=False)
    parts = triplets_from_table(table, None, f"design {design!r}")
    return parts[0] if len(parts) == 1 else None


def _reference_trial_checks(
    embedding: Embedding, test: Triplets, judgments: pd.DataFrame | None, n_bootstrap: int, seed: int
) -> dict[str, Any]:
    """Noise ceiling, exhaustive-design ``rsm_r`` and dimensionality of an embedding on anchor or ranked trials."""
    from oddoneout.embed.evaluate import trial_noise_ceiling

    result: dict[str, Any] = {"noise_ceiling": None, "noise_ceiling_ci": None, "n_repeated_triplets": 0}
    repeats = _design_trials(judgments, REPEAT_DESIGN)
    if repeats is not None and repeats.trial_type == test.trial_type:
        result.update(trial_noise_ceiling(repeats, n_bootstrap=n_bootstrap, seed=seed))
    result["rsm_r"] = None
    exhaustive = _design_trials(judgments, EXHAUSTIVE_DESIGN)
    if exhaustive is not None and exhaustive.trial_type == ANCHOR:
        from oddoneout.embed.rsm import measured_anchor_similarity, predicted_anchor_similarity, rsm_correlation

        subset = sorted({exhaustive.item_ids[i] for i in np.unique(exhaustive.indices)})
        measured = measured_anchor_similarity(exhaustive, subset)
        result["rsm_r"] = rsm_correlation(measured, predicted_anchor_similarity(embedding.align(subset)))
        result["n_exhaustive_items"] = len(subset)
    result.update(_dimensionality(embedding, test, None))
    return result


class EvaluateStage(SystemStage):
    """Reads ``embeddings/<s>.parquet``, the test split and the store's export; writes ``evaluation/<s>.json``."""

    name = "evaluate"

    def reads_of(self, run: StudyRun, system: str) -> list[Path]:
        files = run.folder.system(system)
        return [files.embedding, files.test, files.items, files.export]

    def writes_of(self, run: StudyRun, system: str) -> list[Path]:
        return [run.folder.system(system).evaluation]

    def run_system(self, run: StudyRun, system: str) -> dict[str, Any]:
        from oddoneout.collect.store import read_judgments
        from oddoneout.pipeline.checks import check_export, check_split

        files = run.folder.system(system)
        check_export(run, system)
        embedding = Embedding.load(files.embedding)
        kind = split_trial_type(embedding.metadata)
        test = Triplets(read_item_ids(files.items), read_npy(files.test), trial_type=kind)
        check_split(embedding, test, system)
        judgments = read_judgments(files.export)
        result = evaluate_split(
            embedding, test, judgments, n_bootstrap=run.config.evaluation.n_bootstrap, seed=run.config.study.seed
        )
        result["n_judgments"] = int(len(judgments))
        result["n_failed"] = int((judgments["status"] != "ok").sum())
        result["history"] = embedding.metadata.get("history", {})
        result["provenance"] = provenance("evaluation", system=system, embedding=str(files.embedding.name))
        write_json(files.evaluation, result)
        return result
