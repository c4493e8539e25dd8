"""Measured versus predicted pair similarity on an exhaustively judged item subset.

The SPoSE papers validate an embedding on a small item set for which every triplet was
judged: the *measured* similarity of a pair is the share of judged triplets containing the
pair in which the pair was kept together (the third item was the odd one out); the
*predicted* similarity is the same share under the embedding's choice rule, averaged over
every possible third item. The two similarity matrices are then correlated.

For anchor triplets the exhaustive design asks every reference with every pair of other
subset items (``m * C(m - 1, 2)`` trials): the measured similarity of a pair is the share of its
trials (either item the reference, the other an option) in which the option was chosen, the
predicted one the same share under the anchor rule, averaged over every other option
(:func:`measured_anchor_similarity`, :func:`predicted_anchor_similarity`). Ranked trials have no
exhaustive design here: ``C(m - 1, n)`` option sets per reference are too many to ask, so they are
validated by held-out accuracy, cross-entropy and the noise ceiling.
"""

from __future__ import annotations

from itertools import combinations, islice
from typing import Sequence

import numpy as np
from scipy.special import expit

from oddoneout.embed.evaluate import check_judgments
from oddoneout.errors import InputError
from oddoneout.rsm import RSM, upper_triangle
from oddoneout.triplets import ANCHOR, KEPT_PAIRS, Triplets, odd_one_out_probabilities, repeated_item_rows


def _index_of(ids: np.ndarray, item_ids: Sequence[str], what: str) -> np.ndarray:
    """Map string ids to positions in ``item_ids``; unknown ids raise naming the first row at fault."""
    lookup = {str(item): position for position, item in enumerate(item_ids)}
    unique, inverse = np.unique(ids.astype(str), return_inverse=True)
    positions = np.array([lookup.get(str(u), -1) for u in unique], dtype=np.int64)[inverse].reshape(ids.shape)
    unknown = positions < 0
    if unknown.any():
        row = int(np.argwhere(unknown)[0][0])
        bad = str(ids[unknown][0])
        raise InputError(f"{what} row {row}: id {bad!r} is not among item_ids")
    return positions


def measured_similarity(item_triplets: np.ndarray, odd_ids: np.ndarray, item_ids: Sequence[str]) -> np.ndarray:
    """Share of judged triplets containing a pair in which the pair was kept together.

    Parameters
    ----------
    item_triplets : ndarray of shape (n, 3), str
        The three items shown in each judged triplet, in any order.
    odd_ids : ndarray of shape (n,), str
        The item chosen as the odd one out in each triplet; one of the row's three items.
    item_ids : sequence of str
        The items indexing the rows and columns of the result.

    Returns
    -------
    ndarray of shape (m, m), float64
        Symmetric; entry ``(i, j)`` is the number of triplets where ``i`` and ``j`` were kept
        together divided by the number of triplets containing both. NaN where the pair was
        never judged, and on the diagonal.

    Raises
    ------
    InputError
        On a malformed shape, an id not in ``item_ids``, a triplet with a repeated item, or an
        odd one out that is not one of its row's items.
    """
    item_ids = [str(i) for i in item_ids]
    if len(set(item_ids)) != len(item_ids):
        raise InputError("item_ids must be unique")
    triplets, odd = check_judgments(item_triplets, odd_ids)
    m = len(item_ids)
    if triplets.shape[0] == 0:
        return np.full((m, m), np.nan)

    shown = _index_of(triplets, item_ids, "item_triplets")
    chosen = _index_of(odd, item_ids, "odd_ids")
    repeated = repeated_item_rows(shown)
    if repeated.size:
        row = int(repeated[0])
        raise InputError(f"item_triplets row {row}: triplet {[str(t) for t in triplets[row]]} repeats an item")
    is_odd = shown == chosen[:, None]
    not_in_row = ~is_odd.any(axis=1)
    if not_in_row.any():
        row = int(np.flatnonzero(not_in_row)[0])
        raise InputError(
            f"odd_ids row {row}: odd one out {str(odd[row])!r} is not one of the triplet "
            f"{[str(t) for t in triplets[row]]}"
        )

    judged = np.zeros((m, m))
    together = np.zeros((m, m))
    # position p is the odd one out; the pair at the other two positions was kept together
    for p, (q, r) in enumerate(KEPT_PAIRS):
        np.add.at(judged, (shown[:, q], shown[:, r]), 1.0)
        np.add.at(together, (shown[is_odd[:, p], q], shown[is_odd[:, p], r]), 1.0)
    return _pair_share(together, judged)


def _pair_share(counted: np.ndarray, judged: np.ndarray) -> np.ndarray:
    """``counted / judged`` per unordered pair (both roles summed), NaN where never judged and on the diagonal."""
    judged, counted = judged + judged.T, counted + counted.T
    with np.errstate(invalid="ignore", divide="ignore"):
        similarity = np.where(judged > 0, counted / judged, np.nan)
    np.fill_diagonal(similarity, np.nan)
    return similarity


def predicted_similarity(weights: np.ndarray, batch: int = 20000) -> np.ndarray:
    """Probability that a pair is kept together under the SPoSE choice rule, averaged over third items.

    Entry ``(i, j)`` is the mean over every ``k`` other than ``i`` and ``j`` of
    ``P(k is the odd one out | i, j, k)``, with the softmax over the three dot products. All
    ``C(m, 3)`` triplets are evaluated exactly, ``batch`` at a time.

    Parameters
    ----------
    weights : ndarray of shape (m, n_dims)
        Item embedding; rows are items.
    batch : int
        Triplets evaluated per step (bounds memory only; the result does not depend on it).

    Returns
    -------
    ndarray of shape (m, m), float64
        Symmetric, NaN on the diagonal.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2:
        raise InputError(f"weights must have shape (n_items, n_dims), got {weights.shape}")
    if not np.all(np.isfinite(weights)):
        raise InputError("weights contain NaN or infinite values")
    if batch < 1:
        raise InputError(f"batch must be positive, got {batch}")
    m = weights.shape[0]
    if m < 3:
        raise InputError(f"predicted similarity needs at least 3 items, got {m}")

    kept = np.zeros((m, m))
    triplets = combinations(range(m), 3)
    while True:
        chunk = np.array(list(islice(triplets, batch)), dtype=np.int64).reshape(-1, 3)
        if chunk.shape[0] == 0:
            break
        probs = odd_one_out_probabilities(weights, chunk)
        # column p: probability that position p is the odd one out, i.e. the other two are kept
        for p, (q, r) in enumerate(KEPT_PAIRS):
            np.add.at(kept, (chunk[:, q], chunk[:, r]), probs[:, p])
    kept = (kept + kept.T) / (m - 2)
    np.fill_diagonal(kept, np.nan)
    return kept


def measured_anchor_similarity(triplets: Triplets, item_ids: Sequence[str]) -> np.ndarray:
    """Share of anchor trials pairing two items (one the reference, one an option) in which the option was chosen.

    Parameters
    ----------
    triplets : Triplets
        Anchor triplets (:data:`~oddoneout.triplets.ANCHOR`), ``[reference, chosen, other]``.
    item_ids : sequence of str
        The items indexing the rows and columns of the result; trials using any other item are
        left out.

    Returns
    -------
    ndarray of shape (m, m), float64
        Symmetric; NaN where the pair was never judged, and on the diagonal.
    """
    if triplets.trial_type != ANCHOR:
        raise InputError(f"measured anchor similarity needs anchor triplets, got {triplets.trial_type.spec}")
    item_ids = [str(i) for i in item_ids]
    if len(set(item_ids)) != len(item_ids):
        raise InputError("item_ids must be unique")
    position = {item: k for k, item in enumerate(item_ids)}
    lookup = np.array([position.get(item, -1) for item in triplets.item_ids], dtype=np.int64)
    rows = lookup[triplets.indices]
    rows = rows[(rows >= 0).all(axis=1)]
    m = len(item_ids)
    judged, chosen = np.zeros((m, m)), np.zeros((m, m))
    for column in (1, 2):
        np.add.at(judged, (rows[:, 0], rows[:, column]), 1.0)
    np.add.at(chosen, (rows[:, 0], rows[:, 1]), 1.0)
    return _pair_share(chosen, judged)


def predicted_anchor_similarity(weights: np.ndarray) -> np.ndarray:
    """Probability that an option is chosen for a reference under the anchor rule, averaged over the other option.

    Entry ``(i, j)`` is the mean, over both roles (``i`` the reference and ``j`` the option, and
    the reverse) and every third item ``k``, of ``sigmoid(w_r . w_o - w_r . w_k)``: exactly the
    share :func:`measured_anchor_similarity` estimates from an exhaustive anchor design.

    Parameters
    ----------
    weights : ndarray of shape (m, n_dims)

    Returns
    -------
    ndarray of shape (m, m), float64
        Symmetric, NaN on the diagonal.
    """
    weights = np.asarray(weights, dtype=np.float64)
    m = weights.shape[0]
    if weights.ndim != 2 or m < 3 or not np.all(np.isfinite(weights)):
        raise InputError(f"predicted similarity needs finite weights of at least 3 items, got shape {weights.shape}")
    similarity = weights @ weights.T
    won = np.zeros((m, m))  # won[r, o]: mean over k of P(o chosen over k | reference r)
    for r in range(m):
        p = expit(similarity[r][:, None] - similarity[r][None, :])  # p[o, k]
        valid = np.ones((m, m), dtype=bool)
        valid[r, :] = valid[:, r] = False
        np.fill_diagonal(valid, False)
        won[r] = np.where(valid, p, 0.0).sum(axis=1) / (m - 2)
    predicted = (won + won.T) / 2
    np.fill_diagonal(predicted, np.nan)
    return predicted


def rsm_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two similarity matrices over their upper triangles.

    Pairs that are NaN in either matrix are left out; the diagonal is never used
    (:meth:`oddoneout.rsm.RSM.compare`).

    Parameters
    ----------
    a, b : ndarray of shape (m, m)

    Returns
    -------
    float
        Pearson r; NaN when either matrix is constant over the pairs used.
    """
    a, b = upper_triangle(np.asarray(a, dtype=np.float64)), upper_triangle(np.asarray(b, dtype=np.float64))
    if a.shape != b.shape:
        raise InputError(f"similarity matrices differ in shape: {a.size} and {b.size} pairs")
    return RSM.from_pairs(a).compare(RSM.from_pairs(b), "pearson")
