"""Reproducibility of embedding dimensions across runs (seeds).

Following Hebart et al. (2020), each dimension of a reference embedding is matched to the
dimension of another run's embedding that correlates best with it over items (Pearson r,
items aligned by id); the best-match r is then summarised over runs with a Fisher-z mean.
A split-half variant picks the match on one random half of the items and reports r on the
other half, so a dimension cannot look reproducible merely because the maximum over many
candidate dimensions is inflated on the items it was chosen on.

Conventions
-----------
- The best match is the largest *signed* r (weights are non-negative, so a dimension and its
  match should correlate positively).
- A dimension that is constant over the items at hand (the constant rule of :mod:`oddoneout.scoring`)
  has no defined correlation; it is given r = 0 with every dimension. An embedding with no
  dimensions at all gives best-match r = 0.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.scoring import pearson_matrix

# r = +-1 would map to an infinite Fisher z; clip just inside the open interval
_R_LIMIT = 1.0 - 1e-12


def fisher_z_mean(r: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean of correlations in Fisher-z space, back-transformed to r.

    Parameters
    ----------
    r : ndarray
        Pearson correlations.
    axis : int
        Axis to average over.

    Returns
    -------
    ndarray
        ``tanh(mean(arctanh(r)))``, with ``r`` clipped to ``(-1, 1)`` so that perfect
        correlations stay finite.
    """
    z = np.arctanh(np.clip(np.asarray(r, dtype=np.float64), -_R_LIMIT, _R_LIMIT))
    return np.tanh(z.mean(axis=axis))


def _aligned_others(reference: Embedding, others: Sequence[Embedding]) -> list[np.ndarray]:
    """Each other embedding's weights in the reference's item order, with a clear error."""
    if len(others) == 0:
        raise InputError("reproducibility needs at least one other embedding to compare with the reference")
    aligned = []
    for index, other in enumerate(others):
        try:
            aligned.append(other.align(reference.item_ids))
        except InputError as exc:
            raise InputError(f"other embedding #{index} lacks reference items: {exc}") from exc
    return aligned


def _check_items(reference: Embedding, minimum: int) -> None:
    n_items = len(reference.item_ids)
    if n_items < minimum:
        raise InputError(f"reference embedding has {n_items} items; reproducibility needs at least {minimum}")
    if len(set(reference.item_ids)) != n_items:
        raise InputError("reference embedding has duplicate item ids")


def best_match_correlations(reference: Embedding, others: Sequence[Embedding]) -> np.ndarray:
    """Best-match Pearson r of every reference dimension in every other embedding.

    Parameters
    ----------
    reference : Embedding
        The embedding whose dimensions are matched.
    others : sequence of Embedding
        Other runs. Each must hold every reference item id (extra items are ignored).

    Returns
    -------
    ndarray of shape (reference.n_dims, len(others))
        ``[d, k]`` is the largest r between reference dimension ``d`` and any dimension of
        ``others[k]``, over the reference's items. Constant dimensions give r = 0.

    Raises
    ------
    InputError
        If ``others`` is empty, an other embedding lacks a reference item, or the reference
        has fewer than 3 items or duplicate ids.
    """
    _check_items(reference, 3)
    result = np.zeros((reference.n_dims, len(others)))
    for k, weights in enumerate(_aligned_others(reference, others)):
        if weights.shape[1]:
            result[:, k] = pearson_matrix(reference.weights, weights, undefined=0.0).max(axis=1)
    return result


def split_half_reproducibility(reference: Embedding, others: Sequence[Embedding], seed: int = 0) -> np.ndarray:
    """Best-match r with the match chosen on one half of the items and r measured on the other.

    Parameters
    ----------
    reference : Embedding
        The embedding whose dimensions are matched.
    others : sequence of Embedding
        Other runs. Each must hold every reference item id.
    seed : int
        Seed of the random split of the reference items into half A (``n // 2`` items, used
        to choose the match) and half B (the rest, used to report r). The same split serves
        every other embedding.

    Returns
    -------
    ndarray of shape (reference.n_dims, len(others))
        r on half B between each reference dimension and its half-A best match
        (ties in the choice: the first dimension). Constant-on-half dimensions give r = 0.

    Raises
    ------
    InputError
        As :func:`best_match_correlations`; the reference also needs at least 6 items.
    """
    _check_items(reference, 6)
    aligned = _aligned_others(reference, others)
    order = np.random.default_rng(seed).permutation(len(reference.item_ids))
    half_a, half_b = order[: len(order) // 2], order[len(order) // 2 :]
    rows = np.arange(reference.n_dims)
    result = np.zeros((reference.n_dims, len(others)))
    for k, weights in enumerate(aligned):
        if weights.shape[1] == 0:
            continue
        chosen = pearson_matrix(reference.weights[half_a], weights[half_a], undefined=0.0).argmax(axis=1)
        result[:, k] = pearson_matrix(reference.weights[half_b], weights[half_b], undefined=0.0)[rows, chosen]
    return result


def dimension_reproducibility(reference: Embedding, others: Sequence[Embedding], seed: int = 0) -> pd.DataFrame:
    """Per-dimension summary of best-match correlations over runs.

    Parameters
    ----------
    reference : Embedding
        The embedding whose dimensions are summarised.
    others : sequence of Embedding
        Other runs.
    seed : int
        Seed of the split-half item split.

    Returns
    -------
    DataFrame
        Index ``dim`` (``reference.dim_names``); columns ``mean_r`` (Fisher-z mean of the
        best-match r, back-transformed), ``median_r``, ``min_r`` and ``split_half_mean_r``
        (Fisher-z mean of :func:`split_half_reproducibility`).
    """
    in_sample = best_match_correlations(reference, others)
    split_half = split_half_reproducibility(reference, others, seed=seed)
    return pd.DataFrame(
        {
            "mean_r": fisher_z_mean(in_sample, axis=1),
            "median_r": np.median(in_sample, axis=1),
            "min_r": in_sample.min(axis=1),
            "split_half_mean_r": fisher_z_mean(split_half, axis=1),
        },
        index=pd.Index(reference.dim_names, name="dim"),
    )


def run_reproducibility(embeddings: Sequence[Embedding]) -> np.ndarray:
    """How reproducible each run's dimensions are in the other runs.

    Parameters
    ----------
    embeddings : sequence of Embedding
        At least two runs over the same items.

    Returns
    -------
    ndarray of shape (len(embeddings),)
        For run ``i``: the mean over its dimensions of the Fisher-z mean (back-transformed)
        best-match r in all other runs; ``-inf`` for a run with no dimensions.
    """
    if len(embeddings) < 2:
        raise InputError(f"run reproducibility needs at least 2 embeddings, got {len(embeddings)}")
    scores = np.full(len(embeddings), -np.inf)
    for i, reference in enumerate(embeddings):
        others = [e for j, e in enumerate(embeddings) if j != i]
        try:
            matches = best_match_correlations(reference, others)
        except InputError as exc:
            raise InputError(f"embedding #{i} as reference: {exc}") from exc
        if reference.n_dims:
            scores[i] = float(fisher_z_mean(matches, axis=1).mean())
    return scores


def most_reproducible(embeddings: Sequence[Embedding]) -> int:
    """Index of the run whose dimensions are on average most reproducible in the others.

    This is the rule for choosing the final embedding among runs with different seeds: the
    highest :func:`run_reproducibility` score; ties (within 1e-12) go to the lowest index.

    Parameters
    ----------
    embeddings : sequence of Embedding
        At least two runs over the same items.

    Returns
    -------
    int
        Index into ``embeddings``.
    """
    scores = run_reproducibility(embeddings)
    return int(np.flatnonzero(scores >= scores.max() - 1e-12)[0])
