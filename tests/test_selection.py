"""L1 selection picks the sparsity that generalises, on triplets from a known embedding."""

import numpy as np

from oddoneout.embed.choice import sample_triplets
from oddoneout.embed.selection import select_l1


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
