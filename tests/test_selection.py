"""L1 selection picks the sparsity that generalises, on triplets from a known embedding."""

import numpy as np
import pytest

from oddoneout.embed.selection import select_l1
from oddoneout.errors import InputError
from oddoneout.triplets import sample_triplets


def test_select_l1_rejects_a_collapsing_penalty_and_finds_the_true_dimensions():
    rng = np.random.default_rng(0)
    weights = np.zeros((80, 4))
    weights[np.arange(80), np.arange(80) % 4] = rng.uniform(1.5, 3.0, 80)
    triplets = sample_triplets(weights, 30000, seed=1)
    best, scores = select_l1(triplets, [0.003, 0.03, 3.0], seed=0, n_se=0.0, n_dims=20)
    by_l1 = scores.set_index("l1")
    assert by_l1.loc[3.0, "n_dims"] == 0 and abs(by_l1.loc[3.0, "cross_entropy"] - np.log(3)) < 1e-6
    chosen = scores.loc[scores["cross_entropy"].idxmin()]
    assert best.l1 == chosen["l1"] != 3.0 and scores.loc[scores["chosen"], "l1"].item() == best.l1
    assert best.weights_.shape[1] >= 4
    assert chosen["accuracy"] > 0.6


def test_k_fold_selection_scores_every_triplet_once_and_refits_on_all():
    rng = np.random.default_rng(2)
    weights = np.zeros((60, 3))
    weights[np.arange(60), np.arange(60) % 3] = rng.uniform(1.5, 3.0, 60)
    triplets = sample_triplets(weights, 12000, seed=3)
    labels = []
    best, scores = select_l1(
        triplets, [0.003, 3.0], seed=0, n_folds=3, n_dims=10, batch_size=1024, on_fit=lambda label: labels.append(label)
    )
    # 2 candidates x 3 folds, then the chosen one on everything
    assert labels == ["0.003 fold 1/3", "0.003 fold 2/3", "0.003 fold 3/3", "3 fold 1/3", "3 fold 2/3", "3 fold 3/3",
                      "0.003 (all)"]  # fmt: skip
    by_l1 = scores.set_index("l1")
    # the collapsing penalty predicts chance on every held-out triplet: log(3) exactly, over all folds
    assert by_l1.loc[3.0, "n_dims"] == 0 and abs(by_l1.loc[3.0, "cross_entropy"] - np.log(3)) < 1e-9
    assert best.l1 == 0.003 and best.weights_.shape[1] >= 3
    assert best._fit_info["n_triplets"] == len(triplets)  # refitted on all the triplets
    # the paired standard error uses one held-out loss per triplet: with 12,000 of them it is small
    assert 0 < by_l1.loc[3.0, "excess_se"] < 0.02 < by_l1.loc[3.0, "excess"]


def test_n_folds_must_be_a_positive_count():
    triplets = sample_triplets(np.eye(6) * 2, 100, seed=0)
    for bad in (0, 1.5, 101):
        with pytest.raises(InputError, match="n_folds"):
            select_l1(triplets, [0.01], n_folds=bad)
