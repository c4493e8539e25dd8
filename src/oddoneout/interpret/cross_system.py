"""Comparisons between systems' embeddings of the same items, for many systems at once and fast.

- :func:`system_rsm`: an embedding's item x item similarity as an :class:`oddoneout.rsm.RSM`
  (``"dot"``, ``"pearson"`` or the SPoSE ``"choice"`` probability).
- :func:`systems_rsa`: for every pair of systems, Pearson r between their similarity matrices over
  the pairs of distinct shared items, with a bootstrap CI over items.
- :func:`cross_accuracy`: how well one system's embedding predicts another's held-out triplets.
- :func:`compare_systems_stage`: both for a study folder, written to ``interpret/systems_rsa.csv``
  and ``interpret/cross_accuracy.csv``, and returned for ``summary.json``.

The item bootstrap
------------------
A replicate draws ``n`` items with replacement (item ``i`` drawn ``c_i`` times) and correlates the
two matrices over the pairs of drawn positions that are *different* items: a pair of an item with its
own copy would be a self-similarity, not a pair, so it is excluded. Each distinct pair ``{i, j}``
then appears ``c_i c_j`` times, so the replicate's r is the Pearson r over the upper triangle
weighted by ``c_i c_j``. Its weighted sums are quadratic forms ``c' M c`` of the (zero-diagonal)
matrices ``A``, ``B``, ``A*A``, ``B*B``, ``A*B``: all replicates together cost five
``(n x n) @ (n x n_bootstrap)`` products instead of ``n_bootstrap`` fancy-indexings of the
``n(n-1)/2`` pairs. The result is exactly the resampled-pairs r, with no subsampling. For 2,185
items (2.4M pairs) and 1,000 replicates this takes seconds (see the lead's report for timings).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oddoneout.embedding import Embedding, split_trial_type
from oddoneout.errors import InputError
from oddoneout.files import read_npy
from oddoneout.rsm import RSM
from oddoneout.scoring import pearson_from_sums
from oddoneout.study_folder import StudyFolder, write_table
from oddoneout.triplets import Triplets, read_item_ids

#: Similarities :func:`system_rsm` knows.
SIMILARITIES = ("dot", "pearson", "choice")

#: Items used by the ``"choice"`` similarity when ``max_items`` is not given (it costs O(n^3)).
CHOICE_MAX_ITEMS = 150

#: Columns of :func:`systems_rsa`.
RSA_COLUMNS = ("system_a", "system_b", "similarity", "r", "ci_low", "ci_high", "n_items")

#: Columns of ``interpret/cross_accuracy.csv``.
CROSS_COLUMNS = ("embedding", "triplets", "accuracy", "ci_low", "ci_high", "chance", "n_triplets")


def system_rsm(weights: np.ndarray, item_ids: Sequence[str] | None = None, similarity: str = "dot") -> RSM:
    """Item x item similarity of an embedding's weights.

    Parameters
    ----------
    weights : ndarray of shape (n_items, n_dims)
    item_ids : sequence of str, optional
    similarity : {"dot", "pearson", "choice"}
        ``"dot"``: ``W W'`` (the SPoSE similarity); ``"pearson"``: correlation of the items' weight
        profiles (constant profiles give 0); ``"choice"``: the probability that a pair is kept
        together under the SPoSE choice rule, averaged over every third item
        (:func:`oddoneout.embed.rsm.predicted_similarity`, O(n^3)).

    Returns
    -------
    RSM
    """
    if similarity in ("dot", "pearson"):
        return RSM.from_features(weights, item_ids, similarity)
    if similarity == "choice":
        from oddoneout.embed.rsm import predicted_similarity

        return RSM.from_matrix(predicted_similarity(np.asarray(weights, dtype=np.float64)), item_ids, similarity)
    raise InputError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")


def _bootstrap_r(a: RSM, b: RSM, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """Item-bootstrap replicates of the pair correlation (module docstring), exactly, in batches."""
    n = a.n_items
    # Centring on the full-sample pair means leaves every r unchanged and keeps the sums well conditioned.
    a = a.dense() - a.upper().mean()
    b = b.dense() - b.upper().mean()
    np.fill_diagonal(a, 0.0)
    np.fill_diagonal(b, 0.0)
    # float32 products (the sums are of centred values; float64 finishes each replicate)
    stacked = [m.astype(np.float32) for m in (a, b, a * a, b * b, a * b)]
    replicates = np.empty(n_bootstrap)
    batch = 200
    for start in range(0, n_bootstrap, batch):
        size = min(batch, n_bootstrap - start)
        counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(size)], axis=1)
        # ordered distinct pairs: sum_{i != j} c_i c_j M_ij (each unordered pair twice; ratios cancel the 2)
        weight = counts.sum(axis=0).astype(np.float64) ** 2 - (counts * counts).sum(axis=0)
        counts32 = counts.astype(np.float32)
        sums = (((m @ counts32).astype(np.float64) * counts).sum(axis=0) for m in stacked)
        with np.errstate(invalid="ignore", divide="ignore"):  # no distinct pair drawn: weight 0, r NaN
            replicates[start : start + size] = [pearson_from_sums(*replicate) for replicate in zip(weight, *sums)]
    return np.clip(replicates, -1.0, 1.0)


def pair_rsa(a: RSM, b: RSM, n_bootstrap: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """Pearson r of two RSMs over their pairs ``i < j``, with an item-bootstrap CI.

    Parameters
    ----------
    a, b : RSM
        Over the same items in the same order, every pair defined.
    n_bootstrap : int
        Item resamples (0: no CI, NaN bounds).
    seed : int
    level : float
        Coverage of the percentile interval.

    Returns
    -------
    (r, ci_low, ci_high)
    """
    if a.n_items != b.n_items:
        raise InputError(f"pair_rsa: need two RSMs of one size, got {a.n_items} and {b.n_items} items")
    if a.n_items < 3:
        raise InputError(f"pair_rsa: at least 3 items are needed, got {a.n_items}")
    if not 0 < level < 1:
        raise InputError(f"pair_rsa: level must be in (0, 1), got {level}")
    r = a.compare(b, "pearson")
    if n_bootstrap <= 0:
        return r, float("nan"), float("nan")
    replicates = _bootstrap_r(a, b, int(n_bootstrap), np.random.default_rng(seed))
    tail = (1 - level) / 2
    low, high = np.nanquantile(replicates, [tail, 1 - tail])
    return r, float(low), float(high)


def systems_rsa(
    embeddings: Mapping[str, Embedding],
    similarity: str = "dot",
    n_bootstrap: int = 1000,
    seed: int = 0,
    max_items: int | None = None,
) -> pd.DataFrame:
    """Similarity-structure RSA between every pair of systems.

    Parameters
    ----------
    embeddings : mapping of str to Embedding
        One embedding per system; each pair is compared over the items both have.
    similarity : {"dot", "pearson", "choice"}, default="dot"
        See :func:`system_rsm`.
    n_bootstrap : int, default=1000
        Item resamples for the 95 % CI (0: none). See the module docstring.
    seed : int
        Seed of the item subsample and the bootstrap.
    max_items : int, optional
        Compare a random subset of this many shared items (same subset for estimate and CI).
        Default: all, except ``"choice"`` which uses at most :data:`CHOICE_MAX_ITEMS`.

    Returns
    -------
    DataFrame
        Columns ``system_a, system_b, similarity, r, ci_low, ci_high, n_items``; one row per
        unordered pair, in the mapping's order.

    Raises
    ------
    InputError
        Unknown similarity, fewer than 2 systems, or a pair sharing fewer than 3 items.
    """
    if similarity not in SIMILARITIES:
        raise InputError(f"systems_rsa: similarity must be one of {SIMILARITIES}, got {similarity!r}")
    if len(embeddings) < 2:
        raise InputError(f"systems_rsa: need at least 2 systems, got {list(embeddings)}")
    if max_items is None and similarity == "choice":
        max_items = CHOICE_MAX_ITEMS
    if max_items is not None and max_items < 3:
        raise InputError(f"systems_rsa: max_items must be at least 3, got {max_items}")
    rows = []
    for name_a, name_b in combinations(embeddings, 2):
        a, b = embeddings[name_a], embeddings[name_b]
        shared = set(b.item_ids)
        items = [item for item in a.item_ids if item in shared]
        if len(items) < 3:
            raise InputError(f"systems_rsa: {name_a} and {name_b} share {len(items)} items; at least 3 are needed")
        if max_items is not None and len(items) > max_items:
            chosen = np.sort(np.random.default_rng(seed).choice(len(items), max_items, replace=False))
            items = [items[i] for i in chosen]
        rsms = [system_rsm(e.align(items), items, similarity) for e in (a, b)]
        r, low, high = pair_rsa(*rsms, n_bootstrap=n_bootstrap, seed=seed)
        rows.append((name_a, name_b, similarity, r, low, high, len(items)))
    return pd.DataFrame(rows, columns=list(RSA_COLUMNS))


def cross_accuracy(
    embedding: Embedding, test_triplets: Triplets, n_bootstrap: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Accuracy of ``embedding`` on (another system's) held-out triplets.

    Triplets using an item the embedding lacks are dropped. On a system's own test triplets this
    equals :func:`oddoneout.embed.evaluate.evaluate_embedding`'s accuracy.

    Returns
    -------
    dict
        ``accuracy``, ``ci`` ([low, high], bootstrap over triplets), ``chance`` (of guessing the
        first choice: 1/3 for odd-one-out, 1/2 for anchor trials, 1/n_options for ranked
        trials), ``n_triplets``.
    """
    from oddoneout.embed.evaluate import evaluate_embedding

    known = set(embedding.item_ids)
    usable = np.array([item in known for item in test_triplets.item_ids], dtype=bool)
    keep = usable[test_triplets.indices].all(axis=1)
    if not keep.any():
        raise InputError("cross_accuracy: no held-out triplet uses only items of the embedding")
    kind = test_triplets.trial_type
    subset = Triplets(test_triplets.item_ids, test_triplets.indices[keep], trial_type=kind)
    result = evaluate_embedding(embedding, subset, n_bootstrap=n_bootstrap, seed=seed)
    return {
        "accuracy": result["accuracy"],
        "ci": result["accuracy_ci"],
        "chance": 1 / kind.n_choices,
        "n_triplets": int(keep.sum()),
    }


def compare_systems_stage(
    out: Path | StudyFolder, systems: Sequence[str], seed: int = 0, n_bootstrap: int = 1000, similarity: str = "dot"
) -> dict[str, dict[str, Any]]:
    """Systems RSA for every pair and cross-prediction for every ordered pair of a study's systems.

    Reads ``embeddings/<s>.parquet`` and the held-out split (``split/<s>_test.npy`` over
    ``split/<s>_items.txt``); writes ``interpret/systems_rsa.csv`` and ``interpret/cross_accuracy.csv``.
    Systems without an embedding (or with zero dimensions) are skipped; fewer than two give empty tables.

    Returns
    -------
    dict
        ``{"systems_rsa": {"a|b": {"r", "ci", "n_items"}}, "cross_accuracy": {"a|b": {"accuracy",
        "ci", "chance", "n_triplets"}}}`` (``a|b``: embedding of ``a`` on the triplets of ``b``).
    """
    folder = StudyFolder.of(out)
    embeddings = {}
    for name in systems:
        path = folder.system(name).embedding
        if path.is_file() and (embedding := Embedding.load(path)).n_dims > 0:
            embeddings[name] = embedding
    rsa = (
        systems_rsa(embeddings, similarity=similarity, n_bootstrap=n_bootstrap, seed=seed)
        if len(embeddings) >= 2
        else pd.DataFrame(columns=list(RSA_COLUMNS))
    )
    cross_rows = []
    for b in embeddings:
        files = folder.system(b)
        test_path, items_path = files.test, files.items
        if not (test_path.is_file() and items_path.is_file()):
            continue
        test = Triplets(
            read_item_ids(items_path), read_npy(test_path), trial_type=split_trial_type(embeddings[b].metadata)
        )
        for a in embeddings:
            result = cross_accuracy(embeddings[a], test, n_bootstrap=n_bootstrap, seed=seed)
            low, high = result["ci"]
            cross_rows.append((a, b, result["accuracy"], low, high, result["chance"], result["n_triplets"]))
    cross = pd.DataFrame(cross_rows, columns=list(CROSS_COLUMNS))
    write_table(rsa, folder.systems_rsa, index=False)
    write_table(cross, folder.cross_accuracy, index=False)
    return {
        "systems_rsa": {
            f"{row.system_a}|{row.system_b}": {
                "r": float(row.r), "ci": [float(row.ci_low), float(row.ci_high)], "n_items": int(row.n_items)
            }
            for row in rsa.itertuples()
        },
        "cross_accuracy": {
            f"{row.embedding}|{row.triplets}": {
                "accuracy": float(row.accuracy), "ci": [float(row.ci_low), float(row.ci_high)],
                "chance": float(row.chance), "n_triplets": int(row.n_triplets),
            }
            for row in cross.itertuples()
        },
    }  # fmt: skip
