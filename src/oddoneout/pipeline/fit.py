"""The fit stage: each system's main-design triplets split into training and test, the embedding fitted.

:func:`fit_embedding` is the whole fit (the estimator, the choice of ``l1``, the seeds) for any
training triplets and ``[embedding]`` settings; the stage and ``oddoneout fit`` both call it, so
the command fits exactly what a study with the same settings fits.
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oddoneout.config.sections import EmbeddingSettings
from oddoneout.embedding import Embedding
from oddoneout.pipeline.collect import MAIN_DESIGN
from oddoneout.pipeline.stage import StudyRun, SystemStage
from oddoneout.progress import make_progress, stage
from oddoneout.progress import metrics_text as _metrics_text
from oddoneout.study_folder import StudyFolder
from oddoneout.triplets import Triplets


#: The held-out cross-entropy of guessing (each of the three equally likely): ln 3 nats.
CHANCE_CROSS_ENTROPY = math.log(3)


@dataclass
class FittedEmbedding:
    """What :func:`fit_embedding` returns.

    Attributes
    ----------
    embedding : Embedding
        The embedding, its metadata holding the training ``history``, the ``l1_selection``
        table (one record per candidate ``l1``; ``None`` for VICE) and ``l1_folds``.
    reproducibility : DataFrame or None
        With several ``seeds``: each kept dimension's reproducibility across the other seeds.
    """

    embedding: Embedding
    reproducibility: pd.DataFrame | None = None


def estimator_params(settings: EmbeddingSettings) -> dict[str, Any]:
    """The settings the chosen estimator takes (``l1`` and ``seed`` are passed separately)."""
    from oddoneout.embed.spose import SPoSE
    from oddoneout.embed.vice import VICE

    estimator = VICE if settings.method == "vice" else SPoSE
    accepted = set(inspect.signature(estimator.__init__).parameters) - {"self", "l1", "seed", "progress"}
    return {key: getattr(settings, key) for key in EmbeddingSettings.__dataclass_fields__ if key in accepted}


def fit_embedding(train: Triplets, settings: EmbeddingSettings, seed: int, label: str = "fit") -> FittedEmbedding:
    """Fit the embedding ``settings`` describe to training triplets.

    SPoSE: with a list of ``l1`` values, each is fitted on a further split of ``train`` (or on
    ``l1_folds`` folds) and the sparsest one within ``l1_n_se`` standard errors of the lowest
    held-out cross-entropy is kept (:func:`~oddoneout.embed.selection.select_l1`); a single value
    is fitted the same way, so its held-out loss is reported too. With several ``seeds``, the
    chosen ``l1`` is fitted once per seed (in parallel, :func:`~oddoneout.embed.seeds.fit_seeds`)
    and the seed with the lowest held-out cross-entropy gives the embedding. VICE: one fit.

    Parameters
    ----------
    train : Triplets
        The training triplets (held-out test triplets must not be among them).
    settings : EmbeddingSettings
        The ``[embedding]`` settings.
    seed : int
        Seed of the splits and of every fit.
    label : str
        Shown before each progress bar.

    Returns
    -------
    FittedEmbedding
    """
    from oddoneout.embed.selection import select_l1

    params = estimator_params(settings)
    l1_values = settings.l1 if isinstance(settings.l1, list) else [settings.l1]
    with make_progress() as bar:

        def on_fit(name: str):
            task = bar.add_task(f"{label} {name}", total=settings.max_epochs, unit="epochs", info="")
            return lambda done, total, metrics: bar.update(task, completed=done, info=_metrics_text(metrics))

        if settings.method == "vice":
            from oddoneout.embed.vice import VICE

            model = VICE(seed=seed, progress=on_fit("vice"), **params).fit(train)
            selection = None
        else:
            model, scores = select_l1(
                train,
                l1_values,
                seed=seed,
                n_se=settings.l1_n_se,
                n_folds=settings.l1_folds,
                on_fit=lambda value: on_fit(f"l1={value}"),
                **params,
            )
            selection = scores.to_dict("records")
    reproducibility = None
    seeds = list(settings.seeds)
    if settings.method == "spose" and len(seeds) > 1:
        from oddoneout.embed.seeds import fit_seeds

        with stage(f"{label}: {len(seeds)} seeds x l1={model.l1:g}, {settings.n_jobs} job(s)"):
            results = fit_seeds(
                train, seeds, n_jobs=settings.n_jobs, backend=settings.seed_backend, l1=model.l1, **params
            )
        reproducibility = results.reproducibility
        embedding, history = results.to_embedding(), results.chosen.history
    else:
        embedding, history = model.to_embedding(), model.history_
    embedding.metadata.update(
        {
            "history": {key: [float(v) for v in values] for key, values in history.items()},
            "l1_selection": selection,
            "l1_folds": settings.l1_folds if selection is not None else None,
        }
    )
    embedding.metadata["fit_warnings"] = fit_problems(embedding, settings)
    for problem in embedding.metadata["fit_warnings"]:
        warnings.warn(f"{label}: {problem}", RuntimeWarning, stacklevel=2)
    return FittedEmbedding(embedding, reproducibility)


def fit_problems(embedding: Embedding, settings: EmbeddingSettings) -> list[str]:
    """What is wrong with a fit that users should not publish, each with its likely fix.

    A held-out cross-entropy (of the chosen ``l1`` candidate, or VICE's validation loss) above
    chance, ln 3, means the embedding predicts new judgments worse than guessing; an embedding
    that kept every initial dimension was not made sparse by its penalty.
    """
    selection = embedding.metadata.get("l1_selection")
    if selection:
        held_out = next(row["cross_entropy"] for row in selection if row["chosen"])
    else:
        held_out = embedding.metadata.get("final_val_loss")
    problems = []
    if held_out is not None and math.isfinite(held_out) and held_out > CHANCE_CROSS_ENTROPY:
        problems.append(
            f"held-out cross-entropy {held_out:.3f} is worse than chance (ln 3 = {CHANCE_CROSS_ENTROPY:.3f}): "
            "the embedding overfits its training triplets; give larger l1 values to choose from "
            "(e.g. l1 = [0.01, 0.03, 0.1]), fewer n_dims, or more triplets"
        )
    if embedding.n_dims >= settings.n_dims:
        problems.append(
            f"kept all {settings.n_dims} initial dimensions: the penalty pruned none, so the data may "
            "carry more; give larger l1 values to choose from, or a larger n_dims"
        )
    return problems


def design_triplets(folder: StudyFolder, name: str, design: str) -> Triplets:
    """The ``ok`` judgments of one design of one system's store, as :class:`Triplets`."""
    from oddoneout.collect.store import read_judgments_as_triplets

    return read_judgments_as_triplets(folder.system(name).export, design=design)


class FitStage(SystemStage):
    """Reads ``triplets/<s>.parquet``; writes ``split/<s>_{train,test}.npy``, ``split/<s>_items.txt``,
    ``embeddings/<s>.parquet`` (and ``embeddings/<s>_dims.csv`` with several seeds)."""

    name = "fit"

    def reads_of(self, run: StudyRun, system: str) -> list[Path]:
        return [run.folder.system(system).export]

    def writes_of(self, run: StudyRun, system: str) -> list[Path]:
        files = run.folder.system(system)
        return [files.train, files.test, files.items, files.embedding]

    def run_system(self, run: StudyRun, system: str) -> Embedding:
        config = run.config
        files = run.folder.system(system)
        triplets = design_triplets(run.folder, system, MAIN_DESIGN)
        train, test = triplets.split(config.embedding.test_fraction, seed=config.study.seed)
        files.train.parent.mkdir(parents=True, exist_ok=True)
        np.save(files.train, train.indices)
        np.save(files.test, test.indices)
        files.items.write_text("\n".join(triplets.item_ids) + "\n")
        fitted = fit_embedding(train, config.embedding, config.study.seed, label=f"fit {system}")
        files.embedding.parent.mkdir(parents=True, exist_ok=True)
        if fitted.reproducibility is not None:
            fitted.reproducibility.to_csv(files.dims)
        embedding = fitted.embedding
        embedding.metadata.update({"system": system, "config_hash": config.hash, "test_triplets_hash": test.hash()})
        embedding.save(files.embedding)
        return embedding
