"""Behavioural metrics: accuracy with explicit ties, cross-entropy, bootstrap CIs, noise ceiling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from oddoneout.embed.evaluate import (
    bootstrap_ci,
    cross_entropy,
    evaluate_embedding,
    noise_ceiling,
    odd_one_out_accuracy,
    odd_one_out_credit,
)
from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.triplets import Triplets, odd_one_out_probabilities

THIRD = 1.0 / 3.0


# ---------------------------------------------------------------- accuracy and ties
@pytest.mark.parametrize(
    ("row", "split", "error"),
    [
        ([0.1, 0.2, 0.7], 1.0, 1.0),  # column 2 is the clear maximum
        ([0.7, 0.2, 0.1], 0.0, 0.0),  # another column wins
        ([THIRD, THIRD, THIRD], THIRD, 0.0),  # three-way tie
        ([0.4, 0.2, 0.4], 0.5, 0.0),  # two-way tie that includes column 2
        ([0.4, 0.4, 0.2], 0.0, 0.0),  # two-way tie without column 2
    ],
)
def test_credit_of_single_triplets(row, split, error):
    probs = np.array([row])
    assert odd_one_out_credit(probs, "split")[0] == pytest.approx(split)
    assert odd_one_out_credit(probs, "error")[0] == pytest.approx(error)


def test_accuracy_is_mean_credit():
    probs = np.array([[0.1, 0.2, 0.7], [0.7, 0.2, 0.1], [THIRD, THIRD, THIRD], [0.4, 0.2, 0.4]])
    assert odd_one_out_accuracy(probs) == pytest.approx((1 + 0 + THIRD + 0.5) / 4)
    assert odd_one_out_accuracy(probs, tie_rule="error") == pytest.approx(0.25)


def test_uninformative_model_scores_exactly_chance_with_split_ties():
    probs = np.full((10, 3), THIRD)
    assert odd_one_out_accuracy(probs) == pytest.approx(THIRD, abs=1e-15)
    assert odd_one_out_accuracy(probs, tie_rule="error") == 0.0


def test_accuracy_rejects_bad_input():
    with pytest.raises(InputError, match="row 1"):
        odd_one_out_accuracy(np.array([[0.2, 0.3, 0.5], [np.nan, 0.5, 0.5]]))
    with pytest.raises(InputError, match="shape"):
        odd_one_out_accuracy(np.full((4, 2), 0.5))
    with pytest.raises(InputError, match="sums to"):
        odd_one_out_accuracy(np.array([[0.5, 0.5, 0.5]]))
    with pytest.raises(InputError, match="negative"):
        odd_one_out_accuracy(np.array([[-0.5, 0.5, 1.0]]))
    with pytest.raises(InputError, match="no rows"):
        odd_one_out_accuracy(np.zeros((0, 3)))
    with pytest.raises(InputError, match="tie_rule"):
        odd_one_out_accuracy(np.array([[0.2, 0.3, 0.5]]), tie_rule="random")


# ---------------------------------------------------------------- cross-entropy
def test_cross_entropy_hard_targets():
    assert cross_entropy(np.full((5, 3), THIRD)) == pytest.approx(math.log(3))
    probs = np.array([[0.25, 0.25, 0.5], [0.0, 0.9, 0.1]])
    assert cross_entropy(probs) == pytest.approx((math.log(2) + math.log(10)) / 2)


def test_cross_entropy_soft_targets():
    probs = np.array([[0.2, 0.3, 0.5]])
    targets = np.array([[0.0, 0.5, 0.5]])
    assert cross_entropy(probs, targets) == pytest.approx(-(0.5 * math.log(0.3) + 0.5 * math.log(0.5)))
    # A target of 0 on a probability of 0 contributes nothing, not NaN.
    assert cross_entropy(np.array([[0.0, 0.5, 0.5]]), np.array([[0.0, 0.0, 1.0]])) == pytest.approx(math.log(2))


def test_cross_entropy_is_finite_when_truth_gets_zero_probability():
    value = cross_entropy(np.array([[1.0, 0.0, 0.0]]))
    assert np.isfinite(value) and value > 30


def test_cross_entropy_rejects_bad_targets():
    probs = np.full((2, 3), THIRD)
    with pytest.raises(InputError, match="targets"):
        cross_entropy(probs, np.array([[np.nan, 0.5, 0.5], [0.2, 0.3, 0.5]]))
    with pytest.raises(InputError, match="does not match"):
        cross_entropy(probs, np.full((3, 3), THIRD))


# ---------------------------------------------------------------- bootstrap
def test_bootstrap_ci_of_a_constant_is_the_constant():
    assert bootstrap_ci(np.full(50, 0.1)) == (0.1, 0.1)
    assert bootstrap_ci(np.array([0.7])) == (0.7, 0.7)


def test_bootstrap_ci_contains_the_mean_and_shrinks_with_level():
    values = np.random.default_rng(3).random(400)
    low, high = bootstrap_ci(values, n_bootstrap=2000, seed=1)
    assert low < values.mean() < high
    # Standard error of the mean of U(0, 1) with n = 400 is ~0.0144: a 95 % CI is ~0.057 wide.
    assert 0.04 < high - low < 0.075
    low_80, high_80 = bootstrap_ci(values, n_bootstrap=2000, seed=1, level=0.8)
    assert low < low_80 < high_80 < high


def test_bootstrap_ci_is_deterministic_given_a_seed():
    values = np.random.default_rng(0).random(100)
    assert bootstrap_ci(values, seed=5) == bootstrap_ci(values, seed=5)
    assert bootstrap_ci(values, seed=5) != bootstrap_ci(values, seed=6)


def test_bootstrap_ci_rejects_bad_input():
    with pytest.raises(InputError, match="not finite"):
        bootstrap_ci(np.array([0.1, np.nan]))
    with pytest.raises(InputError, match="non-empty 1-d"):
        bootstrap_ci(np.zeros((2, 2)))
    with pytest.raises(InputError, match="non-empty 1-d"):
        bootstrap_ci(np.array([]))
    with pytest.raises(InputError, match="level"):
        bootstrap_ci(np.array([0.1, 0.2]), level=95)


# ---------------------------------------------------------------- evaluate_embedding
def _embedding() -> Embedding:
    weights = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    return Embedding(("a", "b", "c", "d", "z"), weights, {"method": "test"})


def test_evaluate_embedding_on_hand_computed_triplets():
    # Triplets use a different vocabulary order; evaluation must align by id.
    ids = ("d", "c", "b", "a", "z")
    rows = np.array(
        [
            [3, 2, 0],  # a b | d : right (a.b = 1)
            [3, 0, 2],  # a d | b : wrong, b is the odd one out
            [3, 2, 4],  # a b | z : right
            [4, 1, 3],  # z c | a : c.a = 0, z.a = 0, z.c = 0 -> three-way tie
        ]
    )
    result = evaluate_embedding(_embedding(), Triplets(ids, rows), n_bootstrap=200)
    assert result["accuracy"] == pytest.approx((1 + 0 + 1 + THIRD) / 4)
    assert result["n_triplets"] == 4
    assert result["n_ties"] == 1
    in_embedding_order = np.array([[0, 1, 3], [0, 3, 1], [0, 1, 4], [4, 2, 0]])
    expected_probs = odd_one_out_probabilities(_embedding().weights, in_embedding_order)
    assert result["cross_entropy"] == pytest.approx(-np.log(expected_probs[:, 2]).mean())
    low, high = result["accuracy_ci"]
    assert low <= result["accuracy"] <= high
    assert "cross_entropy_soft" not in result


def test_evaluate_embedding_reports_soft_cross_entropy():
    probs = np.array([[0.1, 0.1, 0.8]])
    result = evaluate_embedding(_embedding(), Triplets(("a", "b", "c"), np.array([[0, 1, 2]]), probs), n_bootstrap=10)
    model = odd_one_out_probabilities(_embedding().weights, np.array([[0, 1, 2]]))
    assert result["cross_entropy_soft"] == pytest.approx(-(probs * np.log(model)).sum())


def test_evaluate_embedding_rejects_unknown_ids():
    triplets = Triplets(("a", "b", "nope"), np.array([[0, 1, 2]]))
    with pytest.raises(InputError, match="nope"):
        evaluate_embedding(_embedding(), triplets)


# ---------------------------------------------------------------- noise ceiling
def test_noise_ceiling_group_of_three_with_two_agreeing():
    triplets = np.array([["a", "b", "c"], ["c", "a", "b"], ["b", "c", "a"]])
    result = noise_ceiling(triplets, np.array(["c", "c", "a"]), n_bootstrap=100)
    assert result["noise_ceiling"] == pytest.approx(2 / 3)
    assert result["noise_ceiling_ci"] == [pytest.approx(2 / 3), pytest.approx(2 / 3)]
    # Of the 3 pairs of judgments, one agrees.
    assert result["pairwise_agreement"] == pytest.approx(1 / 3)
    assert result["n_repeated_triplets"] == 1
    assert result["n_judgments"] == 3


def test_noise_ceiling_averages_groups_and_ignores_single_judgments():
    disagreeing_pair = [[1, 2, 3], [3, 2, 1]]  # two judgments, disagree -> 1/2 (two modal answers)
    agreeing_four = [[4, 5, 6], [6, 4, 5], [5, 6, 4], [4, 6, 5]]  # all agree -> 1
    single = [[7, 8, 9]]  # judged once: no information on noise
    triplets = np.array(disagreeing_pair + agreeing_four + single)
    odd = np.array([1, 3, 6, 6, 6, 6, 9])
    result = noise_ceiling(triplets, odd, n_bootstrap=500)
    assert result["noise_ceiling"] == pytest.approx(0.75)
    assert result["pairwise_agreement"] == pytest.approx((0 + 1) / 2)
    assert result["n_repeated_triplets"] == 2
    assert result["n_judgments"] == 6
    low, high = result["noise_ceiling_ci"]
    assert 0.5 <= low <= 0.75 <= high <= 1.0


def test_noise_ceiling_without_repeats_is_nan():
    result = noise_ceiling(np.array([[1, 2, 3], [1, 2, 4]]), np.array([3, 4]))
    assert math.isnan(result["noise_ceiling"])
    assert result["n_repeated_triplets"] == 0


def test_noise_ceiling_rejects_bad_input():
    with pytest.raises(InputError, match="row 1 chose 'x'"):
        noise_ceiling(np.array([["a", "b", "c"], ["a", "b", "c"]]), np.array(["a", "x"]))
    with pytest.raises(InputError, match="shape"):
        noise_ceiling(np.array([[1, 2, 3]]), np.array([1, 2]))
    with pytest.raises(InputError, match="shape"):
        noise_ceiling(np.array([1, 2, 3]), np.array([1]))
    with pytest.raises(InputError, match="row 0 repeats"):
        noise_ceiling(np.array([[1, 1, 3]]), np.array([3]))
