"""Fitting SPoSE with several seeds, in parallel, and choosing the final embedding.

SPoSE's objective is not convex: different seeds (initialisation and minibatch order) reach
different local optima, some of whose dimensions are found in every run and some not. As in
Hebart et al. (2020), the model is fitted once per seed, each dimension's reproducibility is
measured as its best-match correlation with the dimensions of the other runs
(:mod:`oddoneout.embed.reproducibility`), and one run is kept.

Rule for the final embedding
----------------------------
The triplets are split once (seeded by ``split_seed``) into a fitting part and a selection
part. Every seed is fitted on the same fitting part and scored on the same selection part, so
the comparison is paired. The default rule ``"cross_entropy"`` keeps the seed with the lowest
held-out cross-entropy (ties within 1e-9: the smallest seed): it is the run that predicts new
judgments best. Its dimensions are annotated with their reproducibility, the Fisher-z mean of
their best-match r over the *other* seeds (``mean_r``, also split-half and min/median), so
unreliable dimensions are flagged rather than silently dropped. The alternative rule
``"reproducibility"`` keeps the run whose dimensions are on average most reproducible
(:func:`~oddoneout.embed.reproducibility.most_reproducible`).

Parallelism
-----------
``backend="process"`` runs the fits in a :class:`concurrent.futures.ProcessPoolExecutor`
with the ``spawn`` start method (safe with torch, which must not be forked after its thread
pools have started); each worker receives the triplets once and uses one torch thread.
``backend="ray"`` runs them as Ray tasks (one CPU each) with the triplets placed once in the
object store; Ray is imported only then, and a local Ray runtime with ``n_jobs`` CPUs is
started (and shut down afterwards) if none is running. Every fit is deterministic on CPU
given its seed, so all backends and any ``n_jobs`` give identical results.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from oddoneout.embed.evaluate import choice_scores
from oddoneout.embed.reproducibility import dimension_reproducibility, most_reproducible, run_reproducibility
from oddoneout.embed.spose import SPoSE
from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.triplets import Triplets

BACKENDS = ("process", "ray")
RULES = ("cross_entropy", "reproducibility")


@dataclass
class SeedFit:
    """One seed's fitted embedding and its scores on the selection triplets."""

    seed: int
    embedding: Embedding
    history: dict[str, list[float]]
    cross_entropy: float
    accuracy: float


@dataclass
class SeedResults:
    """Fits of SPoSE with several seeds and the chosen one.

    Attributes
    ----------
    fits : list of SeedFit
        One per seed, in the order of ``seeds``.
    scores : DataFrame
        Index ``seed``; columns ``val_loss`` (selection cross-entropy), ``val_accuracy``
        (selection accuracy, ties split), ``n_dims``, ``n_epochs`` and ``reproducibility``
        (mean over the run's dimensions of their Fisher-z mean best-match r in the other runs).
    chosen_seed : int
        The seed kept by ``rule``.
    rule : str
        ``"cross_entropy"`` or ``"reproducibility"`` (see the module docstring).
    reproducibility : DataFrame
        Per dimension of the chosen embedding (index ``dim``): ``mean_r``, ``median_r``,
        ``min_r``, ``split_half_mean_r`` over the other seeds, and ``l1_norm``.
    split_seed : int
        Seed of the fitting/selection split.
    """

    fits: list[SeedFit]
    scores: pd.DataFrame
    chosen_seed: int
    rule: str
    reproducibility: pd.DataFrame
    split_seed: int

    @property
    def chosen(self) -> SeedFit:
        """The fit of :attr:`chosen_seed`."""
        return next(fit for fit in self.fits if fit.seed == self.chosen_seed)

    def to_embedding(self) -> Embedding:
        """The chosen embedding, its metadata extended with the model-selection record.

        Adds ``seed_selection``: the rule, the seeds, the chosen seed, the split seed, per-seed
        ``val_loss`` / ``val_accuracy`` / ``n_dims``, and ``dimension_reproducibility``
        (``mean_r`` per dimension name).
        """
        chosen = self.chosen.embedding
        record = {
            "rule": self.rule,
            "seeds": [int(s) for s in self.scores.index],
            "chosen_seed": int(self.chosen_seed),
            "split_seed": int(self.split_seed),
            "val_loss": [float(v) for v in self.scores["val_loss"]],
            "val_accuracy": [float(v) for v in self.scores["val_accuracy"]],
            "n_dims": [int(v) for v in self.scores["n_dims"]],
            "dimension_reproducibility": {str(k): float(v) for k, v in self.reproducibility["mean_r"].items()},
        }
        return Embedding(chosen.item_ids, chosen.weights.copy(), {**chosen.metadata, "seed_selection": record})


# ---------------------------------------------------------------- workers
_WORKER_TRIPLETS: Triplets | None = None


def _init_worker(triplets: Triplets) -> None:
    """Process-pool initializer: receive the triplets once and use one torch thread."""
    global _WORKER_TRIPLETS
    import torch

    torch.set_num_threads(1)
    _WORKER_TRIPLETS = triplets


def _fit_one(triplets: Triplets, seed: int, params: dict[str, Any]) -> tuple[Embedding, dict[str, list[float]]]:
    model = SPoSE(seed=int(seed), **params).fit(triplets)
    return model.to_embedding(), model.history_


def _fit_in_worker(seed: int, params: dict[str, Any]) -> tuple[Embedding, dict[str, list[float]]]:
    assert _WORKER_TRIPLETS is not None, "worker not initialised"
    return _fit_one(_WORKER_TRIPLETS, seed, params)


def _fit_with_processes(triplets: Triplets, seeds: Sequence[int], n_jobs: int, params: dict[str, Any]) -> list:
    if n_jobs == 1:
        return [_fit_one(triplets, seed, params) for seed in seeds]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(n_jobs, len(seeds)), mp_context=context, initializer=_init_worker, initargs=(triplets,)
    ) as pool:
        futures = [pool.submit(_fit_in_worker, seed, params) for seed in seeds]
        return [future.result() for future in futures]


def _fit_with_ray(triplets: Triplets, seeds: Sequence[int], n_jobs: int, params: dict[str, Any]) -> list:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is an optional dependency
        raise InputError("backend='ray' needs the ray package (pip install 'ray[default]')") from exc

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=n_jobs, include_dashboard=False, log_to_driver=False)
    try:

        @ray.remote(num_cpus=1)
        def fit_task(data: Triplets, seed: int, task_params: dict[str, Any]):
            import torch

            torch.set_num_threads(1)
            return _fit_one(data, seed, task_params)

        data_ref = ray.put(triplets)
        return ray.get([fit_task.remote(data_ref, int(seed), params) for seed in seeds])
    finally:
        if started_here:
            ray.shutdown()


# ---------------------------------------------------------------- public API
def _check_arguments(triplets: Triplets, seeds: Sequence[int], n_jobs: int, backend: str, rule: str) -> list[int]:
    if not isinstance(triplets, Triplets):
        raise InputError(f"fit_seeds expects a Triplets object, got {type(triplets).__name__}")
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if rule not in RULES:
        raise InputError(f"unknown rule {rule!r}; expected one of {RULES}")
    if not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise InputError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    seeds = list(seeds)
    if len(seeds) < 2:
        raise InputError(f"fit_seeds needs at least 2 seeds to measure reproducibility, got {seeds}")
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in seeds):
        raise InputError(f"seeds must be integers, got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise InputError(f"seeds must be distinct, got {seeds}")
    return [int(s) for s in seeds]


def fit_seeds(
    triplets: Triplets,
    seeds: Sequence[int],
    *,
    n_jobs: int = 1,
    backend: str = "process",
    rule: str = "cross_entropy",
    selection_fraction: float = 0.1,
    split_seed: int = 0,
    **spose_kwargs: Any,
) -> SeedResults:
    """Fit one SPoSE per seed (in parallel), measure reproducibility and choose the final run.

    Parameters
    ----------
    triplets : Triplets
        Training triplets (keep the test set out of them).
    seeds : sequence of int
        At least two distinct seeds; each fit uses one as :class:`SPoSE`'s ``seed``.
    n_jobs : int
        Fits running at the same time (1: sequentially, in this process).
    backend : {"process", "ray"}
        Process pool (spawn) or Ray tasks; see the module docstring.
    rule : {"cross_entropy", "reproducibility"}
        How the final run is chosen; see the module docstring.
    selection_fraction : float
        Share of ``triplets`` held out (once, for every seed) to score and choose the runs.
    split_seed : int
        Seed of that split and of the split-half item split in the reproducibility table.
    **spose_kwargs
        Other :class:`SPoSE` parameters (not ``seed``, ``progress``).

    Returns
    -------
    SeedResults

    Raises
    ------
    InputError
        On fewer than two or repeated seeds, an unknown backend or rule, ``n_jobs < 1``, or
        an invalid SPoSE parameter.
    """
    seeds = _check_arguments(triplets, seeds, n_jobs, backend, rule)
    for name in ("seed", "progress"):
        if name in spose_kwargs:
            raise InputError(f"fit_seeds sets {name!r} itself; do not pass it")
    SPoSE(**spose_kwargs)._check_params()  # fail fast, before any worker starts
    fit_part, selection_part = triplets.split(selection_fraction, seed=split_seed)

    fit = _fit_with_ray if backend == "ray" else _fit_with_processes
    outputs = fit(fit_part, seeds, int(n_jobs), dict(spose_kwargs))

    fits = []
    for seed, (embedding, history) in zip(seeds, outputs):
        aligned = selection_part.reindex(embedding.item_ids)
        accuracy, loss = choice_scores(embedding.weights, aligned)
        fits.append(SeedFit(seed, embedding, history, loss, accuracy))
    embeddings = [f.embedding for f in fits]
    run_scores = run_reproducibility(embeddings)
    scores = pd.DataFrame(
        {
            "val_loss": [f.cross_entropy for f in fits],
            "val_accuracy": [f.accuracy for f in fits],
            "n_dims": [f.embedding.n_dims for f in fits],
            "n_epochs": [int(f.embedding.metadata["n_epochs"]) for f in fits],
            "reproducibility": run_scores,
        },
        index=pd.Index(seeds, name="seed"),
    )
    if rule == "cross_entropy":
        losses = scores["val_loss"].to_numpy()
        tied = np.flatnonzero(losses <= losses.min() + 1e-9)
        chosen_index = int(min(tied, key=lambda i: seeds[i]))
    else:
        chosen_index = most_reproducible(embeddings)
    chosen = fits[chosen_index]
    others = [f.embedding for i, f in enumerate(fits) if i != chosen_index]
    table = dimension_reproducibility(chosen.embedding, others, seed=split_seed)
    table["l1_norm"] = chosen.embedding.weights.sum(axis=0)
    return SeedResults(fits, scores, chosen.seed, rule, table, int(split_seed))
