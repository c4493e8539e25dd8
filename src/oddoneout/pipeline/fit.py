"""The fit stage: each system's main-design triplets split into training and test, the embedding fitted.

:func:`fit_embedding` is the whole fit (the estimator, the choice of ``l1``, the seeds) for any
training triplets and ``[embedding]`` settings; the stage and ``oddoneout fit`` both call it, so
the command fits exactly what a study with the same settings fits.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oddoneout.atomic import atomic_open, write_text
from oddoneout.config.sections import EmbeddingSettings
from oddoneout.embedding import TEST_TRIAL_TYPE, Embedding
from oddoneout.errors import FitWarning
from oddoneout.pipeline.collect import MAIN_DESIGN
from oddoneout.pipeline.stage import StudyRun, SystemStage
from oddoneout.progress import make_progress, stage
from oddoneout.progress import metrics_text as _metrics_text
from oddoneout.settings import Settings
from oddoneout.study_folder import StudyFolder, write_table
from oddoneout.triplets import ODD_ONE_OUT, TrialSet, Triplets

logger = logging.getLogger(__name__)


@dataclass
class FittedEmbedding:
    """What :func:`fit_embedding` returns.

    Attributes
    ----------
    embedding : Embedding
        The embedding, its metadata holding the training ``history``, the chosen ``l1`` with the
        ``l1_selection`` table (one record per candidate; SPoSE only), and ``fit_warnings``.
    reproducibility : DataFrame or None
        With several ``seeds``: each kept dimension's reproducibility across the other seeds.
    """

    embedding: Embedding
    reproducibility: pd.DataFrame | None = None


def estimator_params(settings: EmbeddingSettings) -> dict[str, Any]:
    """The settings the chosen estimator takes (``seed`` and ``progress`` are passed separately)."""
    accepted = set(inspect.signature(_estimator(settings).__init__).parameters) - {"self", "seed", "progress"}
    return {key: getattr(settings, key) for key in EmbeddingSettings.__dataclass_fields__ if key in accepted}


def _estimator(settings: EmbeddingSettings) -> type:
    from oddoneout.embed.spose import SPoSE
    from oddoneout.embed.vice import VICE

    return VICE if settings.method == "vice" else SPoSE


def fit_embedding(
    train: Triplets | TrialSet, settings: EmbeddingSettings, seed: int, label: str = "fit"
) -> FittedEmbedding:
    """Fit the embedding ``settings`` describe to training triplets.

    The estimator (SPoSE or VICE) is built from the settings and fitted; SPoSE chooses its ``l1``
    itself (``l1 = "auto"`` or a list; see :class:`~oddoneout.embed.spose.SPoSE`). With several
    ``seeds``, the chosen ``l1`` is then fitted once per seed (in parallel,
    :func:`~oddoneout.embed.seeds.fit_seeds`) and the seed with the lowest held-out cross-entropy
    gives the embedding. A fit that should not be published as it is warns
    (:class:`~oddoneout.errors.FitWarning`) and lists why in the metadata's ``fit_warnings``.

    Parameters
    ----------
    train : Triplets or TrialSet
        The training trials, of one trial type or several over one vocabulary (held-out test
        trials must not be among them).
    settings : EmbeddingSettings
        The ``[embedding]`` settings.
    seed : int
        Seed of the splits and of every fit.
    label : str
        Shown before the progress bar.

    Returns
    -------
    FittedEmbedding
    """
    params = estimator_params(settings)
    with make_progress() as bar:
        task = bar.add_task(f"{label} {settings.method}", total=settings.max_epochs, unit="epochs", info="")

        def progress(done: int, total: int, metrics: dict[str, float]) -> None:
            bar.update(task, completed=done, info=_metrics_text(metrics))

        model = _estimator(settings)(seed=seed, progress=progress, **params).fit(train)
    reproducibility = None
    seeds = list(settings.seeds)
    if settings.method == "spose" and len(seeds) > 1:
        from oddoneout.embed.seeds import fit_seeds

        with stage(f"{label}: {len(seeds)} seeds x l1={model.l1_:g}, {settings.n_jobs} job(s)"):
            results = fit_seeds(
                train,
                seeds,
                n_jobs=settings.n_jobs,
                backend=settings.seed_backend,
                **{**params, "l1": model.l1_, "verbose": 0},
            )
        reproducibility = results.reproducibility
        embedding, history = results.to_embedding(), results.chosen.history
        chosen_by = model.to_embedding().metadata
        embedding.metadata.update({key: chosen_by[key] for key in ("l1_selection", "l1_scheme")})
        for problem in embedding.metadata.get("fit_warnings", []):  # warned in a worker, not here
            warnings.warn(f"{label}: {problem}", FitWarning, stacklevel=2)
    else:
        embedding, history = model.to_embedding(), model.history_
    embedding.metadata["history"] = {key: [float(v) for v in values] for key, values in history.items()}
    return FittedEmbedding(embedding, reproducibility)


def design_triplets(folder: StudyFolder, name: str, design: str, settings: Settings | None = None) -> Triplets:
    """The ``ok`` judgments of one design of one system's store, as :class:`Triplets` (of the design's trial type).

    Parameters
    ----------
    folder : StudyFolder
    name : str
        The system.
    design : str
        The design kept.
    settings : Settings, optional
        The system's settings: a served system's (:class:`~oddoneout.agents.registry.HumanSettings`)
        exclusion rules leave out the judgments of excluded participant sessions, read from the lease
        book in its store (the export keeps them: they count as collected).
    """
    from oddoneout.collect.quality import fit_exclusions
    from oddoneout.collect.store import read_judgments_as_triplets

    files = folder.system(name)
    return read_judgments_as_triplets(files.export, design=design, exclude=fit_exclusions(files.store, settings))


def system_split(run: StudyRun, system: str) -> tuple[Triplets, Triplets]:
    """A system's training and test triplets.

    A random main design is split at random (``[embedding] test_fraction``, the study seed); an
    adaptive system (``[design] selection = "adaptive"``) trains on its ``adaptive`` design and is
    tested on its ``holdout`` design, random trials no selection ever saw (adaptively chosen trials
    are the ones the model was least sure of: no fair test set).
    """
    from oddoneout.collect.adaptive import ADAPTIVE_DESIGN, HOLDOUT_DESIGN

    config = run.config
    settings = config.systems[system].settings
    if config.systems[system].design.selection == "adaptive":
        train = design_triplets(run.folder, system, ADAPTIVE_DESIGN, settings)
        return train, design_triplets(run.folder, system, HOLDOUT_DESIGN, settings).reindex(train.item_ids)
    triplets = design_triplets(run.folder, system, MAIN_DESIGN, settings)
    return triplets.split(config.embedding.test_fraction, seed=config.study.seed)


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
        from oddoneout.pipeline.checks import check_export

        config = run.config
        files = run.folder.system(system)
        check_export(run, system)
        train, test = system_split(run, system)
        for path, part in ((files.train, train), (files.test, test)):
            with atomic_open(path, "wb") as handle:  # a file, not a path: numpy would append ".npy"
                np.save(handle, part.indices)
        write_text(files.items, "\n".join(train.item_ids) + "\n")
        fitted = fit_embedding(train, config.embedding, config.study.seed, label=f"fit {system}")
        if fitted.reproducibility is not None:
            write_table(fitted.reproducibility, files.dims)
        embedding = fitted.embedding
        # as split/<s>_test.npy holds it (no soft labels)
        saved_test = Triplets(test.item_ids, test.indices, trial_type=test.trial_type)
        recorded = {"system": system, "config_hash": config.hash, "test_triplets_hash": saved_test.hash()}
        if test.trial_type != ODD_ONE_OUT:  # odd-one-out embeddings record what earlier versions did
            recorded[TEST_TRIAL_TYPE] = test.trial_type.spec
        embedding.metadata.update(recorded)
        embedding.save(files.embedding)
        return embedding
