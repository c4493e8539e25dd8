"""Comparisons between systems' embeddings of the same items: similarity-structure RSA and cross-prediction.

- :func:`systems_rsa`: Pearson r between two systems' item x item similarity matrices (the SPoSE
  similarity, dot products of the embeddings), over the pairs of distinct items, with a bootstrap
  CI over items: each replicate resamples items with replacement and correlates the two matrices
  over the pairs of resampled positions that are different items (a pair of an item with its own
  copy would be a self-similarity, not a pair).
- :func:`cross_accuracy`: how well system A's embedding predicts system B's held-out judgments
  (odd-one-out accuracy with a bootstrap CI over triplets; chance 1/3).
- :func:`compare_systems_stage`: both for every pair of a study's systems, written to
  ``interpret/systems_rsa.csv`` and ``interpret/cross_accuracy.csv``.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.triplets import Triplets, read_item_ids


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


def _similarity(weights: np.ndarray) -> np.ndarray:
    weights = weights.astype(np.float64)
    return weights @ weights.T


def systems_rsa(a: Embedding, b: Embedding, n_bootstrap: int = 200, seed: int = 0, ci: float = 0.95) -> dict[str, Any]:
    """Correlation of two embeddings' similarity structures over their common items.

    Parameters
    ----------
    a, b : Embedding
        Two systems' embeddings (the items they share are compared).
    n_bootstrap : int
        Item resamples for the confidence interval (0: none).
    seed : int
        Seed of the resampling.
    ci : float
        Coverage of the percentile interval.

    Returns
    -------
    dict
        ``r``, ``ci`` ([low, high] or None), ``n_items``.

    Raises
    ------
    InputError
        When the embeddings share fewer than 3 items.
    """
    items = [item for item in a.item_ids if item in set(b.item_ids)]
    if len(items) < 3:
        raise InputError(f"systems_rsa: the embeddings share {len(items)} items; at least 3 are needed")
    sim_a, sim_b = _similarity(a.align(items)), _similarity(b.align(items))
    upper = np.triu_indices(len(items), k=1)
    r = _pearson(sim_a[upper], sim_b[upper])
    interval = None
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        replicates = np.empty(n_bootstrap)
        for k in range(n_bootstrap):
            sample = rng.integers(0, len(items), len(items))
            rows, cols = sample[upper[0]], sample[upper[1]]
            distinct = rows != cols
            replicates[k] = _pearson(sim_a[rows[distinct], cols[distinct]], sim_b[rows[distinct], cols[distinct]])
        tail = (1 - ci) / 2
        low, high = np.nanquantile(replicates, [tail, 1 - tail])
        interval = [float(low), float(high)]
    return {"r": r, "ci": interval, "n_items": len(items)}


def cross_accuracy(embedding: Embedding, test: Triplets, n_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Accuracy of ``embedding`` on another system's held-out triplets (items it lacks are dropped)."""
    from oddoneout.embed.evaluate import evaluate_embedding

    known = set(embedding.item_ids)
    keep = np.array([all(test.item_ids[i] in known for i in row) for row in test.indices], dtype=bool)
    if not keep.any():
        raise InputError("cross_accuracy: no held-out triplet uses only items of the embedding")
    subset = Triplets(test.item_ids, test.indices[keep])
    result = evaluate_embedding(embedding, subset, n_bootstrap=n_bootstrap, seed=seed)
    return {"accuracy": result["accuracy"], "ci": result["accuracy_ci"], "n_triplets": int(keep.sum())}


def compare_systems_stage(
    out: Path, systems: Sequence[str], seed: int = 0, n_bootstrap: int = 200
) -> dict[str, Mapping[str, Any]]:
    """Systems RSA for every pair and cross-prediction for every ordered pair of ``systems``.

    Reads ``embeddings/<s>.parquet`` and the held-out split (``split/<s>_test.npy``,
    ``split/<s>_items.txt``); writes ``interpret/systems_rsa.csv`` and
    ``interpret/cross_accuracy.csv``. Systems without an embedding are skipped.

    Returns
    -------
    dict
        ``{"systems_rsa": {"a|b": {"r", "ci", "n_items"}}, "cross_accuracy": {"a|b": {...}}}``
        (``a|b``: embedding of ``a`` on the held-out triplets of ``b``), for ``summary.json``.
    """
    embeddings = {
        name: Embedding.load(out / "embeddings" / f"{name}.parquet")
        for name in systems
        if (out / "embeddings" / f"{name}.parquet").is_file()
    }
    embeddings = {name: e for name, e in embeddings.items() if e.n_dims > 0}
    rsa_rows, cross_rows = [], []
    for a, b in combinations(embeddings, 2):
        result = systems_rsa(embeddings[a], embeddings[b], n_bootstrap=n_bootstrap, seed=seed)
        low, high = result["ci"] or (np.nan, np.nan)
        rsa_rows.append({"system_a": a, "system_b": b, "r": result["r"], "ci_low": low, "ci_high": high,
                         "n_items": result["n_items"]})  # fmt: skip
    for b in embeddings:
        test_path, items_path = out / "split" / f"{b}_test.npy", out / "split" / f"{b}_items.txt"
        if not (test_path.is_file() and items_path.is_file()):
            continue
        test = Triplets(read_item_ids(items_path), np.load(test_path))
        for a in embeddings:
            result = cross_accuracy(embeddings[a], test, n_bootstrap=n_bootstrap, seed=seed)
            low, high = result["ci"]
            cross_rows.append({"embedding": a, "triplets": b, "accuracy": result["accuracy"], "ci_low": low,
                               "ci_high": high, "chance": 1 / 3, "n_triplets": result["n_triplets"]})  # fmt: skip
    folder = out / "interpret"
    folder.mkdir(parents=True, exist_ok=True)
    rsa = pd.DataFrame(rsa_rows, columns=["system_a", "system_b", "r", "ci_low", "ci_high", "n_items"])
    cross = pd.DataFrame(
        cross_rows, columns=["embedding", "triplets", "accuracy", "ci_low", "ci_high", "chance", "n_triplets"]
    )
    rsa.to_csv(folder / "systems_rsa.csv", index=False)
    cross.to_csv(folder / "cross_accuracy.csv", index=False)
    return {
        "systems_rsa": {
            f"{row.system_a}|{row.system_b}": {"r": row.r, "ci": [row.ci_low, row.ci_high], "n_items": row.n_items}
            for row in rsa.itertuples()
        },
        "cross_accuracy": {
            f"{row.embedding}|{row.triplets}": {"accuracy": row.accuracy, "ci": [row.ci_low, row.ci_high]}
            for row in cross.itertuples()
        },
    }
