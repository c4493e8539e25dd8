"""Dimension reproducibility across runs: best matches, split-half, and the choice of the final run."""

import numpy as np
import pytest

from oddoneout.embed.reproducibility import (
    best_match_correlations,
    dimension_reproducibility,
    fisher_z_mean,
    most_reproducible,
    run_reproducibility,
    split_half_reproducibility,
)
from oddoneout.embedding import Embedding
from oddoneout.errors import InputError


def _ids(n):
    return [f"item{i:03d}" for i in range(n)]


def _sparse_weights(rng, n_items, n_dims):
    """Non-negative, sparse, mutually distinct dimensions like a SPoSE solution."""
    return rng.gamma(0.6, 1.0, size=(n_items, n_dims)) * (rng.random((n_items, n_dims)) < 0.5)


def _noisy_copy(rng, weights, noise):
    return weights + noise * np.abs(rng.normal(size=weights.shape))


def test_permuted_rescaled_copy_matches_every_dimension_perfectly():
    rng = np.random.default_rng(0)
    reference = Embedding(_ids(120), _sparse_weights(rng, 120, 8))
    item_order = rng.permutation(120)
    dim_order = rng.permutation(8)
    copy_weights = reference.weights[item_order][:, dim_order] * rng.uniform(0.2, 5.0, 8) + rng.uniform(0, 1, 8)
    # the copy also holds items the reference does not know: they must be ignored
    extra = rng.uniform(0, 1, (5, 8))
    copy = Embedding(
        [reference.item_ids[i] for i in item_order] + [f"extra{i}" for i in range(5)],
        np.vstack([copy_weights, extra]),
    )
    in_sample = best_match_correlations(reference, [copy, copy])
    assert in_sample.shape == (8, 2)
    np.testing.assert_allclose(in_sample, 1.0, atol=1e-10)
    np.testing.assert_allclose(split_half_reproducibility(reference, [copy], seed=3), 1.0, atol=1e-10)
    table = dimension_reproducibility(reference, [copy, copy])
    assert list(table.index) == reference.dim_names
    assert list(table.columns) == ["mean_r", "median_r", "min_r", "split_half_mean_r"]
    np.testing.assert_allclose(table.to_numpy(), 1.0, atol=1e-9)


def test_best_match_falls_with_noise_and_is_low_for_an_unrelated_embedding():
    rng = np.random.default_rng(1)
    reference = Embedding(_ids(200), _sparse_weights(rng, 200, 10))
    mean_r = []
    for noise in [0.1, 0.5, 1.0, 2.0]:
        runs = [Embedding(_ids(200), _noisy_copy(rng, reference.weights, noise)) for _ in range(4)]
        r = best_match_correlations(reference, runs)
        assert np.all(r < 1.0)
        mean_r.append(dimension_reproducibility(reference, runs)["mean_r"].mean())
    assert all(a > b for a, b in zip(mean_r, mean_r[1:])), mean_r
    assert mean_r[0] > 0.95 and mean_r[-1] < 0.8

    unrelated = [Embedding(_ids(200), _sparse_weights(rng, 200, 10)) for _ in range(4)]
    r = best_match_correlations(reference, unrelated)
    assert fisher_z_mean(r.ravel(), axis=0) < 0.3
    assert r.max() < 0.4


def test_split_half_removes_the_inflation_of_a_pure_noise_dimension():
    rng = np.random.default_rng(2)
    n_items, n_noise_dims = 60, 100
    signal = _sparse_weights(rng, n_items, 1)
    reference = Embedding(_ids(n_items), np.hstack([signal, rng.uniform(0, 1, (n_items, 1))]))
    others = []
    for _ in range(20):
        noise_dims = rng.uniform(0, 1, (n_items, n_noise_dims))
        others.append(Embedding(_ids(n_items), np.hstack([_noisy_copy(rng, signal, 0.05), noise_dims])))
    in_sample = best_match_correlations(reference, others)
    split_half = split_half_reproducibility(reference, others, seed=0)
    # the real dimension reproduces either way
    assert in_sample[0].min() > 0.95 and split_half[0].min() > 0.9
    # the noise dimension: the max over 100 noise dimensions is clearly positive in-sample...
    assert in_sample[1].mean() > 0.25
    # ...but the match chosen on half A does not carry over to half B
    assert abs(split_half[1].mean()) < 0.15
    assert in_sample[1].mean() - split_half[1].mean() > 0.2
    # the split is seeded: same seed, same answer; another seed, another split
    np.testing.assert_array_equal(split_half, split_half_reproducibility(reference, others, seed=0))
    assert not np.array_equal(split_half, split_half_reproducibility(reference, others, seed=1))


def test_most_reproducible_picks_the_planted_consensus_run():
    rng = np.random.default_rng(3)
    truth = _sparse_weights(rng, 150, 6)
    noise_levels = [1.5, 1.2, 1.5, 0.05, 1.0, 1.4]  # run 3 is almost the truth; the others are noisy
    runs = [Embedding(_ids(150), _noisy_copy(rng, truth, noise)) for noise in noise_levels]
    scores = run_reproducibility(runs)
    assert scores.shape == (6,)
    assert np.argmax(scores) == 3
    assert most_reproducible(runs) == 3
    # the second-least-noisy run comes second
    assert np.argsort(scores)[-2] == 4


def test_most_reproducible_ties_go_to_the_lowest_index_and_empty_runs_lose():
    rng = np.random.default_rng(4)
    weights = _sparse_weights(rng, 40, 3)
    empty = Embedding(_ids(40), np.zeros((40, 0)))
    same = [Embedding(_ids(40), weights) for _ in range(3)]
    assert most_reproducible(same) == 0
    assert most_reproducible([empty] + same) == 1
    assert run_reproducibility([empty] + same)[0] == -np.inf


def test_constant_dimension_gets_zero_correlation():
    rng = np.random.default_rng(5)
    weights = _sparse_weights(rng, 50, 3)
    weights[:, 1] = 0.1  # constant, with a value whose mean is not exact in floating point
    reference = Embedding(_ids(50), weights)
    other = Embedding(_ids(50), weights.copy())
    r = best_match_correlations(reference, [other])
    assert r[1, 0] == 0.0
    np.testing.assert_allclose(r[[0, 2], 0], 1.0)
    assert split_half_reproducibility(reference, [other])[1, 0] == 0.0
    no_dims = Embedding(_ids(50), np.zeros((50, 0)))
    np.testing.assert_array_equal(best_match_correlations(reference, [no_dims]), 0.0)


def test_fisher_z_mean_keeps_perfect_correlations_finite():
    assert fisher_z_mean(np.array([1.0, 1.0])) == pytest.approx(1.0)
    assert fisher_z_mean(np.array([0.5, -0.5])) == pytest.approx(0.0)
    # z-averaging weighs high correlations more than the plain mean does
    assert fisher_z_mean(np.array([0.9, 0.1])) > 0.5


def test_bad_input_raises_input_error_naming_the_fault():
    rng = np.random.default_rng(6)
    reference = Embedding(_ids(30), _sparse_weights(rng, 30, 2))
    missing = Embedding(_ids(30)[:-1], reference.weights[:-1])
    with pytest.raises(InputError, match=r"#1.*item029"):
        best_match_correlations(reference, [reference, missing])
    with pytest.raises(InputError, match="item029"):
        split_half_reproducibility(reference, [missing])
    with pytest.raises(InputError, match="item029"):
        most_reproducible([reference, missing])
    with pytest.raises(InputError, match="at least one other"):
        dimension_reproducibility(reference, [])
    with pytest.raises(InputError, match="at least 2"):
        most_reproducible([reference])
    tiny = Embedding(_ids(4), _sparse_weights(rng, 4, 2))
    with pytest.raises(InputError, match="at least 6"):
        split_half_reproducibility(tiny, [tiny])
