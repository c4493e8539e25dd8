"""An agent that answers from item feature vectors: the odd one out leaves the most similar pair.

This is how the study simulates the human-category and human-dimension systems from each
video's rating vector (34 category shares or 14 dimension means). Anchor and ranked trials are
answered the same way: the option most similar to the reference is chosen (the options ranked
by their similarity to it).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from oddoneout.agents.base import EVERY_TRIAL_TYPE, Answer, TrialKey
from oddoneout.errors import InputError
from oddoneout.triplets import ODD_ONE_OUT, TrialType, pair_similarities, reference_similarities

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


def shown_indices(item_index: pd.Index, shown: Sequence[tuple[str, ...]], name: str, width: int = 3) -> np.ndarray:
    """Item indices (n, width) of shown trials; :class:`InputError` naming the first unknown id."""
    array = np.asarray(shown, dtype=object)
    if array.ndim != 2 or array.shape[1] != width:
        what = "triplet" if width == 3 else "trial"
        raise InputError(f"agent {name!r}: every shown {what} needs exactly {width} item ids")
    flat = array.reshape(-1)
    indices = item_index.get_indexer(flat.astype(str))
    if (indices < 0).any():
        row = int(np.flatnonzero(indices < 0)[0])
        what = "triplet" if width == 3 else "trial"
        raise InputError(f"agent {name!r}: unknown item id {flat[row]!r} ({what} {row // width})")
    return indices.reshape(-1, width)


def _triplet_hash(indices: np.ndarray) -> np.ndarray:
    """A deterministic pseudo-random uint64 per unordered triplet (independent of the shown order)."""
    ordered = np.sort(indices, axis=1).astype(np.uint64)
    with np.errstate(over="ignore"):
        value = ordered[:, 0] * np.uint64(0x9E3779B97F4A7C15)
        value = (value ^ ordered[:, 1]) * np.uint64(0xBF58476D1CE4E5B9)
        value = (value ^ ordered[:, 2]) * np.uint64(0x94D049BB133111EB)
        value ^= value >> np.uint64(31)
    return value


def _item_hash(trial_hash: np.ndarray, items: np.ndarray) -> np.ndarray:
    """A pseudo-random uint64 per item of a trial (an order in which to take tied items)."""
    with np.errstate(over="ignore"):
        value = (trial_hash[:, None] ^ items.astype(np.uint64)) * np.uint64(0xBF58476D1CE4E5B9)
        value ^= value >> np.uint64(31)
    return value


def most_similar_options(similarities: np.ndarray, indices: np.ndarray, n_ranked: int = 1) -> np.ndarray:
    """Shown positions of the options most similar to the reference, most similar first.

    Parameters
    ----------
    similarities : ndarray of shape (n, n_options)
        Similarity of the reference (shown at position 0) to each option (shown at 1..n_options).
    indices : ndarray of shape (n, 1 + n_options)
        Item indices of the trials, used only to break ties.
    n_ranked : int
        How many options to rank.

    Returns
    -------
    ndarray of shape (n, n_ranked), int64
        Shown positions (1..n_options).

    Notes
    -----
    Options whose similarities lie within :data:`TIE_TOLERANCE` of each other (in a chain) are
    tied; tied options are taken in an order given by a hash of the trial's items and each
    option's item index, so the answer is deterministic, does not depend on the order shown,
    and favours no item or position systematically.
    """
    n = len(similarities)
    order = np.argsort(-similarities, axis=1, kind="stable")
    descending = np.take_along_axis(similarities, order, axis=1)
    steps = np.cumsum(descending[:, :-1] - descending[:, 1:] > TIE_TOLERANCE, axis=1)
    level = np.empty_like(order)
    np.put_along_axis(level, order, np.column_stack([np.zeros(n, dtype=np.int64), steps]), axis=1)
    tie_break = _item_hash(_triplet_hash(indices), indices[:, 1:])
    ranked = np.lexsort((tie_break, level), axis=-1)
    return (1 + ranked[:, :n_ranked]).astype(np.int64)


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
    """Answers trials of every type from item feature vectors by cosine similarity.

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
    as in :func:`most_similar_pair_choice`. An anchor or ranked trial is answered with the
    options most cosine-similar to the reference (:func:`most_similar_options`). Deterministic
    and vectorised.
    """

    prompt_hash: str | None = None
    trial_types = EVERY_TRIAL_TYPE

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

    def rankings(self, indices: np.ndarray, trial_type: TrialType) -> np.ndarray:
        """Shown positions of the ``trial_type.n_ranked`` options most similar to the reference, shape (n, n_ranked)."""
        similarities = reference_similarities(self.features, indices, cosine=True)
        return most_similar_options(similarities, indices, trial_type.n_ranked)

    def judge(
        self,
        shown: Sequence[tuple[str, ...]],
        keys: Sequence[TrialKey] | None = None,
        trial_type: TrialType = ODD_ONE_OUT,
    ) -> list[Answer]:
        """Answer trials of item ids in the order shown (deterministic: ``keys`` are not needed)."""
        if len(shown) == 0:
            return []
        indices = shown_indices(self.item_index, shown, self.name, trial_type.n_shown)
        if trial_type == ODD_ONE_OUT:
            return [Answer(choice) for choice in self.choices(indices).tolist()]
        rankings = self.rankings(indices, trial_type).tolist()
        if trial_type.n_ranked == 1:
            return [Answer(ranking[0]) for ranking in rankings]
        return [Answer(ranking[0], ranking=tuple(ranking)) for ranking in rankings]
