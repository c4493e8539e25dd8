"""VICE estimator: recovery of a known sparse embedding, FDR pruning, determinism, I/O."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.exceptions import NotFittedError
from test_spose import sparse_embedding

from oddoneout.embed.evaluate import odd_one_out_accuracy
from oddoneout.embed.reproducibility import best_match_correlations
from oddoneout.embed.vice import (
    VICE,
    positive_weight_pvalues,
    significant_dimensions,
    spike_and_slab_log_density,
)
from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.triplets import Triplets, odd_one_out_probabilities, sample_triplets


def hard_only(triplets: Triplets) -> Triplets:
    return Triplets(triplets.item_ids, triplets.indices)


# ---------------------------------------------------------------- recovery
N_TRUE, N_TRAIN, N_TEST = 5, 60_000, 20_000


@pytest.fixture(scope="module")
def recovery():
    """VICE fitted to 60k triplets from a 100-item, 5-dimension sparse truth (20 initial dims).

    Two posterior draws per step: with one (or another seed) this short fit sometimes ends
    with a true dimension still duplicated (kept twice, r ~ 0.98 with each copy).
    """
    truth = sparse_embedding(100, N_TRUE, seed=0)
    data = sample_triplets(truth, N_TRAIN + N_TEST, seed=1)
    train, test = data.subset(np.arange(N_TRAIN)), data.subset(np.arange(N_TRAIN, N_TRAIN + N_TEST))
    model = VICE(n_dims=20, n_samples_train=2, max_epochs=100, seed=0).fit(train)
    return truth, train, test, model


def test_pruning_keeps_about_the_true_number_of_dimensions(recovery):
    truth, train, _, model = recovery
    assert abs(model.weights_.shape[1] - N_TRUE) <= 1, model.n_significant_
    # No kept dimension is noise: each one is a copy of some true dimension.
    r = best_match_correlations(model.to_embedding(), [Embedding(train.item_ids, truth)])[:, 0]
    assert r.min() >= 0.9, f"best-match r per kept dimension: {np.round(r, 3)}"


def test_recovers_every_true_dimension(recovery):
    truth, train, _, model = recovery
    r = best_match_correlations(Embedding(train.item_ids, truth), [model.to_embedding()])[:, 0]
    assert r.min() >= 0.9, f"best-match r per true dimension: {np.round(r, 3)}"


def test_held_out_accuracy_matches_the_generating_model(recovery):
    truth, _, test, model = recovery
    generating = odd_one_out_accuracy(odd_one_out_probabilities(truth, test.indices))
    assert generating > 0.6
    assert abs(model.score(test) - generating) <= 0.015
    # The point-estimate embedding relu(mu) predicts about as well as the posterior.
    embedding_accuracy = odd_one_out_accuracy(odd_one_out_probabilities(model.weights_, test.indices))
    assert abs(embedding_accuracy - generating) <= 0.015


def test_fitted_attributes_are_consistent(recovery):
    _, train, _, model = recovery
    n_items = train.n_items
    assert model.mu_.shape == model.sigma_.shape == (n_items, 20)
    assert np.all(model.sigma_ > 0)
    kept = model.kept_dims_
    assert set(kept) == set(np.flatnonzero(model.n_significant_ >= model.prune_min_items))
    np.testing.assert_array_equal(model.weights_, np.maximum(model.mu_[:, kept], 0.0))
    assert model.weights_.min() >= 0.0
    assert np.all(np.diff(model.weights_.sum(axis=0)) <= 0)
    # The posterior spread was learned: no longer the near-deterministic start, and wider
    # for weights the prior pulled onto the spike than for the kept, data-supported ones.
    pruned = np.setdiff1d(np.arange(20), kept)
    assert np.median(model.sigma_[:, kept]) < np.median(model.sigma_[:, pruned])
    assert np.median(model.sigma_[:, pruned]) > 0.1


def test_history_records_every_epoch(recovery):
    _, _, _, model = recovery
    history = model.history_
    assert set(history) == {"epoch", "train_loss", "kl", "val_loss", "val_accuracy", "n_alive_dims"}
    assert history["epoch"] == list(range(1, model.n_epochs_ + 1))
    assert all(len(values) == model.n_epochs_ for values in history.values())
    best = model.best_epoch_ - 1
    assert history["val_loss"][best] < history["val_loss"][0] < np.log(3)
    assert history["n_alive_dims"][best] == model.weights_.shape[1]
    assert history["n_alive_dims"][best] < history["n_alive_dims"][0]
    assert all(kl > 0 for kl in history["kl"])


# ---------------------------------------------------------------- pruning rule
def mu_sigma_for(pvalues: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and unit standard deviations whose one-sided p-values are ``pvalues``."""
    return stats.norm.isf(pvalues), np.ones_like(pvalues)


def test_pvalues_are_the_posterior_mass_at_or_below_zero():
    mu = np.array([[0.0, 1.0], [-2.0, 3.0]])
    sigma = np.array([[1.0, 0.5], [1.0, 1.0]])
    expected = stats.norm.cdf(0.0, loc=mu, scale=sigma)
    np.testing.assert_allclose(positive_weight_pvalues(mu, sigma), expected)
    with pytest.raises(InputError, match="sigma"):
        positive_weight_pvalues(mu, np.zeros_like(mu))


def test_clearly_positive_dimension_is_kept_and_empty_one_removed():
    n_items = 40
    mu = np.full((n_items, 3), -1.0)
    sigma = np.full((n_items, 3), 0.1)
    mu[:10, 0] = 1.0  # ten items far above 0: kept
    mu[:, 1] = 0.0  # p = 0.5 everywhere: removed
    mu[:4, 2] = 1.0  # only four significant items: one short of min_items
    keep, n_significant = significant_dimensions(mu, sigma, alpha=0.05, min_items=5)
    np.testing.assert_array_equal(n_significant, [10, 0, 4])
    np.testing.assert_array_equal(keep, [True, False, False])
    keep, _ = significant_dimensions(mu, sigma, alpha=0.05, min_items=4)
    np.testing.assert_array_equal(keep, [True, False, True])


def test_benjamini_hochberg_correction_across_items():
    # The textbook example: thresholds i / m * alpha = 0.005, 0.010, 0.015...; only the two
    # smallest p-values pass, although five are below alpha uncorrected.
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    mu, sigma = mu_sigma_for(p[:, None])
    keep, n_significant = significant_dimensions(mu, sigma, alpha=0.05, min_items=2)
    assert n_significant.tolist() == [2] and keep.tolist() == [True]
    assert not significant_dimensions(mu, sigma, alpha=0.05, min_items=3)[0][0]
    # Five items at p = 0.01 among 100 are not enough after correction (5/100 * 0.05 < 0.01).
    p = np.full(100, 0.9)
    p[:5] = 0.01
    mu, sigma = mu_sigma_for(p[:, None])
    assert significant_dimensions(mu, sigma, alpha=0.05, min_items=1)[1].tolist() == [0]
    # The correction runs per dimension: the same column next to a strong one is unaffected.
    strong = np.full(100, 1e-8)
    mu, sigma = mu_sigma_for(np.column_stack([p, strong]))
    assert significant_dimensions(mu, sigma, alpha=0.05, min_items=1)[1].tolist() == [0, 100]


def test_spike_and_slab_density_matches_scipy():
    x = np.linspace(-3, 3, 13)
    expected = np.log(0.3 * stats.norm.pdf(x, scale=0.25) + 0.7 * stats.norm.pdf(x, scale=1.0))
    got = spike_and_slab_log_density(torch.as_tensor(x), pi=0.3, spike=0.25, slab=1.0)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    far = spike_and_slab_log_density(torch.tensor([40.0], dtype=torch.float64), 0.5, 0.25, 1.0)
    assert torch.isfinite(far).all()  # the spike underflows; logsumexp keeps the slab


# ---------------------------------------------------------------- small fast fits
@pytest.fixture(scope="module")
def small_data():
    truth = sparse_embedding(30, 4, seed=2)
    return truth, sample_triplets(truth, 12_000, seed=3, with_probs=True)


def small_model(**params) -> VICE:
    settings = {"n_dims": 10, "max_epochs": 8, "patience": 5, "batch_size": 1024, "lr": 0.05, "seed": 0}
    settings.update(params)
    return VICE(**settings)


def test_same_seed_gives_identical_results(small_data):
    _, triplets = small_data
    first = small_model(seed=4).fit(hard_only(triplets))
    second = small_model(seed=4).fit(hard_only(triplets))
    other = small_model(seed=5).fit(hard_only(triplets))
    np.testing.assert_array_equal(first.mu_, second.mu_)
    np.testing.assert_array_equal(first.sigma_, second.sigma_)
    assert first.history_ == second.history_
    assert not np.array_equal(first.mu_, other.mu_)
    subset = triplets.subset(np.arange(200))
    np.testing.assert_array_equal(first.predict_proba(subset), second.predict_proba(subset))


def test_predict_proba_averages_draws_and_aligns_ids(small_data):
    _, triplets = small_data
    model = small_model().fit(hard_only(triplets))
    subset = hard_only(triplets).subset(np.arange(300))
    probs = model.predict_proba(subset)
    assert probs.shape == (300, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_array_equal(probs, model.predict_proba(subset))  # seeded draws
    assert model.score(subset) == pytest.approx(odd_one_out_accuracy(probs))
    # With one draw the prediction is a single sampled embedding's; averaging changes it.
    one_draw = model.set_params(n_samples_eval=1).predict_proba(subset)
    model.set_params(n_samples_eval=20)
    assert not np.allclose(one_draw, probs)
    shuffled_ids = tuple(reversed(triplets.item_ids))
    lookup = {item: i for i, item in enumerate(shuffled_ids)}
    remapped = np.vectorize(lambda i: lookup[triplets.item_ids[i]])(subset.indices)
    np.testing.assert_allclose(model.predict_proba(Triplets(shuffled_ids, remapped)), probs)
    with pytest.raises(InputError, match="stranger"):
        model.predict_proba(Triplets(("0", "1", "stranger"), np.array([[0, 1, 2]])))


def test_soft_labels_are_fitted_when_present(small_data):
    _, triplets = small_data
    soft = small_model(max_epochs=3).fit(triplets)
    hard = small_model(max_epochs=3, soft_labels=False).fit(triplets)
    assert soft.to_embedding().metadata["soft_labels_used"] is True
    assert hard.to_embedding().metadata["soft_labels_used"] is False
    assert soft.history_["train_loss"] != hard.history_["train_loss"]


def test_to_embedding_round_trips_with_metadata(small_data, tmp_path):
    _, triplets = small_data
    model = small_model(seed=7).fit(hard_only(triplets))
    loaded = Embedding.load(model.to_embedding().save(tmp_path / "embedding.parquet"))
    np.testing.assert_array_equal(loaded.weights, model.weights_)
    assert loaded.item_ids == triplets.item_ids
    meta = loaded.metadata
    assert meta["method"] == "vice"
    assert meta["seed"] == 7
    assert meta["hyperparameters"]["n_dims"] == 10
    assert meta["hyperparameters"]["spike"] == 0.25
    assert meta["source_triplets_hash"] == hard_only(triplets).hash()
    assert meta["n_epochs"] == model.n_epochs_
    assert meta["kept_dims"] == model.kept_dims_.tolist()
    assert meta["n_dims_kept"] == model.weights_.shape[1]


def test_unused_item_id_gets_zero_weights(small_data):
    _, triplets = small_data
    with_unused = Triplets(triplets.item_ids + ("never_shown",), triplets.indices)
    model = small_model(max_epochs=3).fit(with_unused)
    assert model.unseen_item_ids_ == ("never_shown",)
    assert np.all(model.weights_[-1] == 0.0)
    assert np.all(model.mu_[-1] == 0.0) and np.all(model.sigma_[-1] == 0.0)
    probs = model.predict_proba(Triplets(with_unused.item_ids, np.array([[0, 1, 30]])))
    assert np.all(np.isfinite(probs))


def test_fit_leaves_global_torch_state_alone(small_data):
    _, triplets = small_data
    threads = torch.get_num_threads()
    rng_state = torch.random.get_rng_state().clone()
    small_model(max_epochs=2).fit(hard_only(triplets))
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), rng_state)


def test_no_surviving_dimension_warns(small_data):
    _, triplets = small_data
    with pytest.warns(RuntimeWarning, match="significantly positive"):
        model = small_model(max_epochs=2, prune_min_items=31).fit(hard_only(triplets))
    assert model.weights_.shape == (30, 0)
    np.testing.assert_allclose(model.predict_proba(hard_only(triplets).subset(np.arange(5))), 1 / 3)


def test_progress_and_verbose_report_every_epoch(small_data, capsys):
    _, triplets = small_data
    calls = []
    small_model(max_epochs=3, patience=10, verbose=True, progress=lambda *a: calls.append(a)).fit(triplets)
    assert [c[0] for c in calls] == [1, 2, 3]
    assert set(calls[0][2]) == {"train_loss", "kl", "val_loss", "val_accuracy", "n_alive_dims"}
    assert capsys.readouterr().err.count("VICE epoch") == 3


@pytest.mark.parametrize(
    "params",
    [
        {"n_dims": 0},
        {"n_samples_eval": 0},
        {"prior_pi": 1.0},
        {"slab": 0.1},
        {"validation_fraction": 1.0},
        {"prune_alpha": 0.0},
        {"prune_min_items": 0},
        {"n_threads": 0},
    ],
)
def test_invalid_parameters_raise(small_data, params):
    _, triplets = small_data
    with pytest.raises(InputError, match=next(iter(params))):
        VICE(**params).fit(triplets)


def test_predict_before_fit_and_non_triplets_raise(small_data):
    _, triplets = small_data
    with pytest.raises(NotFittedError, match="not fitted"):
        VICE().predict_proba(triplets)
    with pytest.raises(InputError, match="Triplets"):
        VICE().fit(np.zeros((10, 3), dtype=int))
