"""How many dimensions an embedding needs: truncation curves and principal components.

Two questions from the SPoSE papers (Hebart et al. 2020; the LLM/MLLM study):

- *Dimensionality curve*: keep only the ``k`` dimensions with the largest L1 norm (the
  embedding's own order of importance) and score held-out odd-one-out accuracy, and
  optionally the correlation of predicted with measured similarity on an exhaustively judged
  subset, for every ``k``. :func:`saturation_point` reads off the smallest ``k`` that reaches
  ``(1 - tolerance)`` times the full accuracy: the "30 dimensions suffice" figure.
- *Principal components*: how many principal components of the items x dims matrix are
  needed to reach a fraction (95 %, 99 %) of the full held-out accuracy
  (:func:`components_needed`), i.e. how compressible the embedding is when the dimensions
  are allowed to mix.

All accuracies use the SPoSE choice rule (softmax over pair dot products) with ties split
(chance = 1/3), as :func:`oddoneout.embed.evaluate.odd_one_out_accuracy`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from oddoneout.embed.evaluate import choice_scores
from oddoneout.embed.rsm import predicted_similarity, rsm_correlation
from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.triplets import Triplets

#: ``(item_ids, measured)``: the exhaustively judged items and their measured similarity
#: matrix (see :func:`oddoneout.embed.rsm.measured_similarity`), rows/columns in that order.
RsmSubset = tuple[Sequence[str], np.ndarray]


def _as_embedding(embedding_or_weights: Embedding | np.ndarray, test_triplets: Triplets) -> Embedding:
    """An Embedding; bare weights take the test triplets' item ids, row for row."""
    if isinstance(embedding_or_weights, Embedding):
        return embedding_or_weights
    weights = np.asarray(embedding_or_weights, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[0] != test_triplets.n_items:
        raise InputError(
            f"weights of shape {weights.shape} do not match the {test_triplets.n_items} items of the test triplets; "
            "pass an Embedding to align items by id"
        )
    return Embedding(test_triplets.item_ids, weights)


def _aligned(embedding: Embedding, test_triplets: Triplets) -> Triplets:
    if not isinstance(test_triplets, Triplets):
        raise InputError(f"test_triplets must be a Triplets object, got {type(test_triplets).__name__}")
    if len(test_triplets) == 0:
        raise InputError("test_triplets is empty")
    return test_triplets.reindex(embedding.item_ids)


def dims_by_importance(weights: np.ndarray) -> np.ndarray:
    """Dimension indices sorted by decreasing L1 norm (stable: ties keep their order)."""
    return np.argsort(-np.abs(weights).sum(axis=0), kind="stable")


def dimensionality_curve(
    embedding_or_weights: Embedding | np.ndarray,
    test_triplets: Triplets,
    n_dims_grid: Sequence[int] | None = None,
    rsm_subset: RsmSubset | None = None,
) -> pd.DataFrame:
    """Held-out performance using only the top-``k`` dimensions, for ``k`` in a grid.

    Parameters
    ----------
    embedding_or_weights : Embedding or ndarray of shape (n_items, n_dims)
        The embedding. Bare weights must have one row per item of ``test_triplets``.
    test_triplets : Triplets
        Held-out judgments (SPoSE convention, odd one out in column 2).
    n_dims_grid : sequence of int, optional
        Values of ``k`` in ``[1, n_dims]``; default every ``k`` from 1 to ``n_dims``.
    rsm_subset : (item_ids, measured), optional
        Exhaustively judged items and their measured pair similarity; adds column ``rsm_r``,
        the Pearson r between it and the truncated embedding's predicted similarity
        (:func:`oddoneout.embed.rsm.predicted_similarity`).

    Returns
    -------
    DataFrame
        One row per ``k`` (ascending): ``n_dims``, ``accuracy`` (ties split),
        ``cross_entropy`` and, with ``rsm_subset``, ``rsm_r``.

    Raises
    ------
    InputError
        If the embedding has no dimensions, a grid value is outside ``[1, n_dims]``, or an
        item id is missing.
    """
    embedding = _as_embedding(embedding_or_weights, test_triplets)
    aligned = _aligned(embedding, test_triplets)
    n_dims = embedding.n_dims
    if n_dims == 0:
        raise InputError("the embedding has no dimensions")
    grid = list(range(1, n_dims + 1)) if n_dims_grid is None else sorted({int(k) for k in n_dims_grid})
    bad = [k for k in grid if not 1 <= k <= n_dims]
    if not grid or bad:
        raise InputError(f"n_dims_grid values must lie in [1, {n_dims}], got {list(n_dims_grid or [])}")
    ordered = embedding.weights[:, dims_by_importance(embedding.weights)]

    subset_weights, measured = None, None
    if rsm_subset is not None:
        subset_ids, measured = rsm_subset
        measured = np.asarray(measured, dtype=np.float64)
        if measured.shape != (len(subset_ids), len(subset_ids)):
            raise InputError(
                f"rsm_subset: measured similarity of shape {measured.shape} does not match {len(subset_ids)} item ids"
            )
        position = {item: i for i, item in enumerate(embedding.item_ids)}
        missing = [str(item) for item in subset_ids if str(item) not in position]
        if missing:
            raise InputError(f"rsm_subset: item id(s) {missing[:5]} not in the embedding")
        subset_weights = ordered[[position[str(item)] for item in subset_ids]]

    rows = []
    for k in grid:
        accuracy, loss = choice_scores(ordered[:, :k], aligned)
        row = {"n_dims": k, "accuracy": accuracy, "cross_entropy": loss}
        if subset_weights is not None:
            row["rsm_r"] = rsm_correlation(predicted_similarity(subset_weights[:, :k]), measured)
        rows.append(row)
    return pd.DataFrame(rows)


def saturation_point(curve: pd.DataFrame, tolerance: float = 0.01, column: str = "accuracy") -> int:
    """Smallest number of dimensions that reaches ``(1 - tolerance)`` x the full score.

    The full score is the value of ``column`` at the largest ``n_dims`` in ``curve`` (all
    dimensions when the curve comes from :func:`dimensionality_curve` with its default grid).
    With ``tolerance = 0.01`` this is the number of dimensions that keeps 99 % of the
    held-out accuracy, the sense in which "30 dimensions" capture the embedding.

    Parameters
    ----------
    curve : DataFrame
        Columns ``n_dims`` and ``column``.
    tolerance : float
        Relative shortfall allowed, in [0, 1).
    column : str
        Score to use, ``"accuracy"`` by default (or ``"rsm_r"``).

    Returns
    -------
    int
    """
    if not 0.0 <= tolerance < 1.0:
        raise InputError(f"tolerance must lie in [0, 1), got {tolerance}")
    if "n_dims" not in curve or column not in curve or len(curve) == 0:
        raise InputError(f"curve needs the columns 'n_dims' and {column!r} and at least one row")
    ordered = curve.sort_values("n_dims")
    scores = ordered[column].to_numpy(dtype=np.float64)
    target = (1.0 - tolerance) * scores[-1]
    # a tiny slack so that reaching the full score exactly is not lost to rounding
    reached = np.flatnonzero(scores >= target - 1e-12)
    return int(ordered["n_dims"].to_numpy()[reached[0]])


def pca_reconstructions(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, scores, singular values and loadings of the centred items x dims matrix."""
    mean = weights.mean(axis=0)
    u, s, vt = np.linalg.svd(weights - mean, full_matrices=False)
    return mean, u, s, vt


def component_curve(
    embedding_or_weights: Embedding | np.ndarray,
    test_triplets: Triplets,
    n_components_grid: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Held-out accuracy of the embedding reconstructed from its first ``k`` principal components.

    The items x dims matrix ``W`` is centred over items and decomposed by SVD; the rank-``k``
    reconstruction ``mean + U_k S_k V_k^T`` is clipped at 0 (SPoSE similarities are dot
    products of non-negative vectors, and the choice rule is only defined for them in this
    package) and scored with the SPoSE choice rule on ``test_triplets``. Without clipping,
    ``k = rank(W)`` reproduces ``W`` exactly; with clipping too, since ``W >= 0``.

    Returns
    -------
    DataFrame
        ``n_components``, ``accuracy`` (ties split), ``cross_entropy``, ``explained_variance``
        (cumulative share of the variance of ``W``).
    """
    embedding = _as_embedding(embedding_or_weights, test_triplets)
    aligned = _aligned(embedding, test_triplets)
    weights = embedding.weights
    max_k = min(weights.shape)
    if max_k == 0:
        raise InputError("the embedding has no dimensions")
    grid = list(range(1, max_k + 1)) if n_components_grid is None else sorted({int(k) for k in n_components_grid})
    if not grid or any(not 1 <= k <= max_k for k in grid):
        raise InputError(f"n_components_grid values must lie in [1, {max_k}]")
    mean, u, s, vt = pca_reconstructions(weights)
    variance = s**2
    explained = np.cumsum(variance) / variance.sum() if variance.sum() > 0 else np.ones_like(variance)
    rows = []
    for k in grid:
        reconstructed = np.clip(mean + (u[:, :k] * s[:k]) @ vt[:k], 0.0, None)
        accuracy, loss = choice_scores(reconstructed, aligned)
        rows.append(
            {
                "n_components": k,
                "accuracy": accuracy,
                "cross_entropy": loss,
                "explained_variance": float(explained[k - 1]),
            }
        )
    return pd.DataFrame(rows)


def components_needed(
    weights: Embedding | np.ndarray, test_triplets: Triplets, fractions: Sequence[float] = (0.95, 0.99)
) -> dict[float, int]:
    """Principal components needed to reach each fraction of the full held-out accuracy.

    Parameters
    ----------
    weights : Embedding or ndarray of shape (n_items, n_dims)
        The embedding (bare weights: one row per item of ``test_triplets``).
    test_triplets : Triplets
        Held-out judgments.
    fractions : sequence of float
        Each in (0, 1]: the target is ``fraction`` x the accuracy of the full embedding
        (not of the above-chance part).

    Returns
    -------
    dict
        ``{fraction: k}``, the smallest number of components whose clipped reconstruction
        (see :func:`component_curve`) reaches the target; at most ``min(n_items, n_dims)``
        (the full rank reproduces the embedding).
    """
    fractions = [float(f) for f in fractions]
    if not fractions or any(not 0.0 < f <= 1.0 for f in fractions):
        raise InputError(f"fractions must lie in (0, 1], got {fractions}")
    embedding = _as_embedding(weights, test_triplets)
    full = choice_scores(embedding.weights, _aligned(embedding, test_triplets))[0]
    curve = component_curve(embedding, test_triplets)
    accuracies = curve["accuracy"].to_numpy()
    components = curve["n_components"].to_numpy()
    needed = {}
    for fraction in fractions:
        reached = np.flatnonzero(accuracies >= fraction * full - 1e-12)
        needed[fraction] = int(components[reached[0]]) if reached.size else int(components[-1])
    return needed
