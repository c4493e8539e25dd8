"""An agent that answers from item feature vectors: the odd one out leaves the most similar pair.

This is how the study simulates the human-category and human-dimension systems from each
video's rating vector (34 category shares or 14 dimension means).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from oddoneout.agents.base import Answer, TrialKey
from oddoneout.errors import InputError
from oddoneout.triplets import pair_similarities

#: Pair similarities (cosine) closer than this to the maximum count as tied.
TIE_TOLERANCE = 1e-12


def validate_features(features: np.ndarray, item_ids: Sequence[str], name: str) -> tuple[np.ndarray, pd.Index]:
    """Check a feature matrix against its item ids; return it as float64 and the id index.

    Raises :class:`InputError` for a shape mismatch, repeated ids or non-finite values.
    """
    features = np.asarray(features, dtype=np.float64)
    ids = pd.Index([str(i) for i in item_ids])
    if features.ndim != 2 or features.shape[0] != len(ids):
        raise InputError(f"agent {name!r}: features of shape {features.shape} do not match {len(ids)} item ids")
    if features.shape[1] == 0:
        raise InputError(f"agent {name!r}: features have no columns")
    if ids.has_duplicates:
        raise InputError(f"agent {name!r}: repeated item ids {ids[ids.duplicated()].unique()[:5].tolist()}")
    bad = np.flatnonzero(~np.isfinite(features).all(axis=1))
    if bad.size:
        raise InputError(f"agent {name!r}: item {ids[bad[0]]!r} has a NaN or infinite feature")
    return features, ids


def shown_indices(item_index: pd.Index, shown: Sequence[tuple[str, str, str]], name: str) -> np.ndarray:
    """Item indices (n, 3) of shown triplets; :class:`InputError` naming the first unknown id."""
    array = np.asarray(shown, dtype=object)
    if array.ndim != 2 or array.shape[1] != 3:
        raise InputError(f"agent {name!r}: every shown triplet needs exactly 3 item ids")
    flat = array.reshape(-1)
    indices = item_index.get_indexer(flat.astype(str))
    if (indices < 0).any():
        row = int(np.flatnonzero(indices < 0)[0])
        raise InputError(f"agent {name!r}: unknown item id {flat[row]!r} (triplet {row // 3})")
    return indices.reshape(-1, 3)


def _triplet_hash(indices: np.ndarray) -> np.ndarray:
    """A deterministic pseudo-random uint64 per unordered triplet (independent of the shown order)."""
    ordered = np.sort(indices, axis=1).astype(np.uint64)
    with np.errstate(over="ignore"):
        value = ordered[:, 0] * np.uint64(0x9E3779B97F4A7C15)
        value = (value ^ ordered[:, 1]) * np.uint64(0xBF58476D1CE4E5B9)
        value = (value ^ ordered[:, 2]) * np.uint64(0x94D049BB133111EB)
        value ^= value >> np.uint64(31)
    return value


def most_similar_pair_choice(similarities: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Position of the odd one out: the item left out of the most similar pair.

    Parameters
    ----------
    similarities : ndarray of shape (n, 3)
        Column ``p``: similarity of the pair left when position ``p`` is removed.
    indices : ndarray of shape (n, 3)
        Item indices of the triplets, used only to break ties.

    Returns
    -------
    ndarray of shape (n,), int64

    Notes
    -----
    Ties (pair similarities within :data:`TIE_TOLERANCE` of the largest, e.g. three mutually
    orthogonal one-hot profiles) are broken by a hash of the unordered triplet: the tied items
    are ranked by item index and the hash picks one. The answer is therefore deterministic,
    does not depend on the order shown, and favours no item or position systematically.
    """
    tied = similarities >= similarities.max(axis=1, keepdims=True) - TIE_TOLERANCE
    choice = np.argmax(similarities, axis=1)
    n_tied = tied.sum(axis=1)
    rows = np.flatnonzero(n_tied > 1)
    if rows.size:
        rank_key = np.where(tied[rows], indices[rows], np.iinfo(np.int64).max)
        by_item = np.argsort(rank_key, axis=1, kind="stable")
        pick = (_triplet_hash(indices[rows]) % n_tied[rows].astype(np.uint64)).astype(np.int64)
        choice[rows] = by_item[np.arange(rows.size), pick]
    return choice.astype(np.int64)


class SimilarityAgent:
    """Answers triplets from item feature vectors by cosine similarity.

    Parameters
    ----------
    features : ndarray of shape (n_items, n_features)
        One vector per item (e.g. rating scales).
    item_ids : sequence of str
        Id of each row of ``features``.
    name : str
        The system the agent stands for (``"human_category"``...).
    model : str
        Model identifier recorded with each judgment.
    center : bool
        Subtract each feature's mean across items first. Raw 1-9 ratings are all positive and
        nearly parallel, so without centring cosine similarity barely separates items.
    standardize : bool
        Z-score each feature across items (centres too); constant features become 0.

    Notes
    -----
    The odd one out is the item left out of the most cosine-similar pair; ties are broken
    as in :func:`most_similar_pair_choice`. Deterministic and vectorised.
    """

    prompt_hash: str | None = None

    def __init__(
        self,
        features: np.ndarray,
        item_ids: Sequence[str],
        name: str,
        model: str = "cosine-similarity",
        center: bool = False,
        standardize: bool = False,
    ) -> None:
        features, self.item_index = validate_features(features, item_ids, name)
        if center or standardize:
            features = features - features.mean(axis=0)
        if standardize:
            scale = features.std(axis=0)
            features = features / np.where(scale > 0, scale, 1.0)
        self.features = features
        self.name = name
        self.model = model
        self.center = center
        self.standardize = standardize

    def choices(self, indices: np.ndarray) -> np.ndarray:
        """Position (0-2) of the odd one out for item-index triplets of shape (n, 3)."""
        return most_similar_pair_choice(pair_similarities(self.features, indices, cosine=True), indices)

    def judge(self, shown: Sequence[tuple[str, str, str]], keys: Sequence[TrialKey] | None = None) -> list[Answer]:
        """Answer triplets of item ids in the order shown (deterministic: ``keys`` are not needed)."""
        if len(shown) == 0:
            return []
        choices = self.choices(shown_indices(self.item_index, shown, self.name))
        return [Answer(choice) for choice in choices.tolist()]
