"""Measured versus predicted similarity on exhaustively judged triplets."""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
import pytest

from oddoneout.embed.rsm import measured_similarity, predicted_similarity, rsm_correlation
from oddoneout.errors import InputError
from oddoneout.triplets import odd_one_out_probabilities

ITEMS = ["a", "b", "c", "d", "e"]
# kept pairs: ab, bc, ab, cd; item "e" is never shown
HAND_TRIPLETS = np.array([["a", "b", "c"], ["a", "b", "c"], ["a", "b", "d"], ["b", "c", "d"]])
HAND_ODD = np.array(["c", "a", "d", "b"])


def hand_expected() -> np.ndarray:
    nan = np.nan
    upper = {("a", "b"): 2 / 3, ("a", "c"): 0.0, ("a", "d"): 0.0, ("b", "c"): 1 / 3, ("b", "d"): 0.0, ("c", "d"): 1.0}
    expected = np.full((5, 5), nan)
    for (i, j), value in upper.items():
        expected[ITEMS.index(i), ITEMS.index(j)] = expected[ITEMS.index(j), ITEMS.index(i)] = value
    return expected


def test_measured_similarity_matches_hand_computed_values():
    similarity = measured_similarity(HAND_TRIPLETS, HAND_ODD, ITEMS)
    np.testing.assert_allclose(similarity, hand_expected(), equal_nan=True)


def test_measured_similarity_is_symmetric_with_nan_diagonal_and_unjudged_pairs():
    similarity = measured_similarity(HAND_TRIPLETS, HAND_ODD, ITEMS)
    np.testing.assert_array_equal(np.isnan(similarity), np.isnan(similarity.T))
    np.testing.assert_allclose(similarity, similarity.T, equal_nan=True)
    assert np.isnan(np.diag(similarity)).all()
    assert np.isnan(similarity[4]).all() and np.isnan(similarity[:, 4]).all()
    assert np.isfinite(similarity[:4, :4][~np.eye(4, dtype=bool)]).all()


def test_measured_similarity_ignores_order_within_triplets():
    rng = np.random.default_rng(0)
    shuffled = np.array([row[rng.permutation(3)] for row in HAND_TRIPLETS])
    assert not np.array_equal(shuffled, HAND_TRIPLETS)
    np.testing.assert_allclose(measured_similarity(shuffled, HAND_ODD, ITEMS), hand_expected(), equal_nan=True)


def test_measured_similarity_follows_item_ids_order():
    reordered = ["e", "d", "c", "b", "a"]
    similarity = measured_similarity(HAND_TRIPLETS, HAND_ODD, reordered)
    np.testing.assert_allclose(similarity, hand_expected()[::-1, ::-1], equal_nan=True)


def test_measured_similarity_rejects_odd_one_out_outside_its_triplet():
    odd = HAND_ODD.copy()
    odd[2] = "c"
    with pytest.raises(InputError, match="row 2"):
        measured_similarity(HAND_TRIPLETS, odd, ITEMS)


def test_measured_similarity_rejects_unknown_ids():
    triplets = HAND_TRIPLETS.astype(object)
    triplets[3, 1] = "zebra"
    with pytest.raises(InputError, match="row 3.*zebra"):
        measured_similarity(triplets, HAND_ODD, ITEMS)
    with pytest.raises(InputError, match="zebra"):
        measured_similarity(HAND_TRIPLETS, np.array(["c", "a", "zebra", "b"]), ITEMS)


def test_measured_similarity_rejects_repeated_items_and_bad_shapes():
    triplets = HAND_TRIPLETS.copy()
    triplets[1] = ["a", "a", "b"]
    with pytest.raises(InputError, match="row 1"):
        measured_similarity(triplets, HAND_ODD, ITEMS)
    with pytest.raises(InputError, match="shape"):
        measured_similarity(HAND_TRIPLETS[:, :2], HAND_ODD, ITEMS)
    with pytest.raises(InputError, match="odd_ids"):
        measured_similarity(HAND_TRIPLETS, HAND_ODD[:3], ITEMS)


def brute_force_predicted(weights: np.ndarray) -> np.ndarray:
    m = weights.shape[0]
    expected = np.full((m, m), np.nan)
    for i in range(m):
        for j in range(m):
            if i == j:
                continue
            kept = []
            for k in range(m):
                if k in (i, j):
                    continue
                logits = np.array([weights[i] @ weights[j], weights[i] @ weights[k], weights[j] @ weights[k]])
                kept.append(np.exp(logits[0]) / np.exp(logits).sum())
            expected[i, j] = np.mean(kept)
    return expected


def test_predicted_similarity_matches_brute_force_loop():
    weights = np.random.default_rng(1).gamma(1.0, 0.8, size=(6, 3))
    predicted = predicted_similarity(weights)
    np.testing.assert_allclose(predicted, brute_force_predicted(weights), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(predicted, predicted.T, equal_nan=True)
    assert np.isnan(np.diag(predicted)).all()


def test_predicted_similarity_does_not_depend_on_batch_and_conserves_probability():
    weights = np.random.default_rng(2).gamma(1.0, 0.5, size=(9, 4))
    whole = predicted_similarity(weights)
    np.testing.assert_allclose(predicted_similarity(weights, batch=5), whole, equal_nan=True)
    # each triplet contributes a total probability of 1 across its three pairs
    m = weights.shape[0]
    assert np.nansum(np.triu(whole, 1)) * (m - 2) == pytest.approx(comb(m, 3))


def test_predicted_similarity_of_identical_items_is_one_third():
    predicted = predicted_similarity(np.ones((5, 2)))
    off_diagonal = predicted[~np.eye(5, dtype=bool)]
    np.testing.assert_allclose(off_diagonal, 1 / 3)


def test_predicted_similarity_rejects_bad_weights():
    with pytest.raises(InputError, match="at least 3"):
        predicted_similarity(np.ones((2, 3)))
    with pytest.raises(InputError, match="NaN"):
        predicted_similarity(np.array([[1.0], [np.nan], [0.5]]))
    with pytest.raises(InputError, match="shape"):
        predicted_similarity(np.ones(4))


def test_rsm_correlation_uses_upper_triangle_and_skips_nan_pairs():
    a = hand_expected()
    b = a.copy()
    np.testing.assert_allclose(rsm_correlation(a, b), 1.0)
    np.testing.assert_allclose(rsm_correlation(a, 1 - b), -1.0)
    # a NaN in one matrix drops the pair; values below the diagonal are never read
    c = 2 * a + 1
    c[0, 1] = np.nan
    c[np.tril_indices(5, -1)] = 123.0
    np.testing.assert_allclose(rsm_correlation(a, c), 1.0)
    rows, cols = np.triu_indices(4, k=1)
    x, y = a[rows, cols], hand_expected()[rows, cols] ** 2
    np.testing.assert_allclose(rsm_correlation(a, hand_expected() ** 2), np.corrcoef(x, y)[0, 1])


def test_rsm_correlation_rejects_mismatched_or_empty_input():
    with pytest.raises(InputError, match="differ"):
        rsm_correlation(np.zeros((4, 4)), np.zeros((5, 5)))
    with pytest.raises(InputError, match="square"):
        rsm_correlation(np.zeros((4, 3)), np.zeros((4, 3)))
    with pytest.raises(InputError, match="at least 3 pairs"):
        rsm_correlation(np.full((4, 4), np.nan), np.zeros((4, 4)))
    assert np.isnan(rsm_correlation(np.ones((4, 4)), np.arange(16.0).reshape(4, 4)))


def sample_exhaustive(weights: np.ndarray, repeats: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Every triplet of the items ``repeats`` times, with choices drawn from the SPoSE rule."""
    rng = np.random.default_rng(seed)
    indices = np.repeat(np.array(list(combinations(range(weights.shape[0]), 3))), repeats, axis=0)
    probs = odd_one_out_probabilities(weights, indices)
    position = (rng.random(len(indices))[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    odd = indices[np.arange(len(indices)), np.minimum(position, 2)]
    return indices, odd


def test_measured_similarity_recovers_the_generating_embedding():
    rng = np.random.default_rng(3)
    n_items = 20
    true_weights = rng.gamma(0.5, 1.0, size=(n_items, 5))
    ids = [f"item{i:02d}" for i in range(n_items)]
    indices, odd = sample_exhaustive(true_weights, repeats=20, seed=4)
    as_ids = np.array(ids)
    measured = measured_similarity(as_ids[indices], as_ids[odd], ids)
    assert np.isfinite(measured[~np.eye(n_items, dtype=bool)]).all()

    r_true = rsm_correlation(measured, predicted_similarity(true_weights))
    r_random = rsm_correlation(measured, predicted_similarity(rng.gamma(0.5, 1.0, size=(n_items, 5))))
    assert r_true > 0.9
    assert r_random < 0.5
    assert r_true - r_random > 0.5
