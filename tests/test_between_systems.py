"""Comparisons between systems: similarity-structure RSA (hand-computed) and cross-prediction."""

import numpy as np
import pytest

from oddoneout.embed.choice import sample_triplets
from oddoneout.embed.evaluate import evaluate_embedding
from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.interpret.between_systems import cross_accuracy, systems_rsa


def test_rsa_matches_a_hand_computed_case():
    ids = ["a", "b", "c", "d"]
    a = Embedding(ids, np.array([[1.0, 0], [0, 1], [1, 1], [2, 0]]))
    b = Embedding(ids, np.array([[1.0], [2], [0], [1]]))
    # pairs ab ac ad bc bd cd: dot products a = 0 1 2 1 0 2, b = 2 0 1 0 2 0
    expected = np.corrcoef([0, 1, 2, 1, 0, 2], [2, 0, 1, 0, 2, 0])[0, 1]
    assert systems_rsa(a, b, n_bootstrap=0)["r"] == pytest.approx(expected)
    # item order and extra items do not matter: only shared items, aligned by id
    shuffled = Embedding(["e", "d", "c", "b", "a"], np.array([[5.0], [1], [0], [2], [1]]))
    assert systems_rsa(a, shuffled, n_bootstrap=0)["r"] == pytest.approx(expected)
    assert systems_rsa(a, shuffled, n_bootstrap=0)["n_items"] == 4


def test_identical_structures_give_one_and_the_ci_covers_the_estimate():
    rng = np.random.default_rng(0)
    weights = rng.gamma(1.0, 1.0, (60, 5))
    ids = [f"i{k}" for k in range(60)]
    same = systems_rsa(Embedding(ids, weights), Embedding(ids, weights * 3), n_bootstrap=50)
    assert same["r"] == pytest.approx(1.0) and same["ci"][0] == pytest.approx(1.0)
    other = Embedding(ids, weights + rng.gamma(1.0, 1.0, (60, 5)))
    noisy = systems_rsa(Embedding(ids, weights), other, n_bootstrap=100)
    assert 0 < noisy["ci"][0] <= noisy["r"] <= noisy["ci"][1] < 1
    with pytest.raises(InputError, match="share 2 items"):
        systems_rsa(Embedding(["x", "y", "z"], weights[:3]), Embedding(["x", "y", "w"], weights[:3]))


def test_cross_accuracy_on_own_triplets_equals_the_evaluation_and_a_stranger_is_near_chance():
    rng = np.random.default_rng(1)
    weights = rng.gamma(0.5, 1.0, (50, 4))
    ids = [f"i{k}" for k in range(50)]
    test = sample_triplets(weights, 5000, seed=2, item_ids=tuple(ids))
    own = Embedding(list(test.item_ids), weights)
    result = cross_accuracy(own, test, n_bootstrap=50)
    assert result["accuracy"] == pytest.approx(evaluate_embedding(own, test, n_bootstrap=50)["accuracy"])
    stranger = Embedding(list(test.item_ids), rng.gamma(0.5, 1.0, (50, 4)))
    assert abs(cross_accuracy(stranger, test, n_bootstrap=50)["accuracy"] - 1 / 3) < 0.05
    assert result["accuracy"] > 0.5
