"""SPoSE estimator: recovery of a known sparse embedding, constraints, determinism, I/O."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from oddoneout.embed.evaluate import odd_one_out_accuracy
from oddoneout.embed.recovery import best_match_r
from oddoneout.embed.spose import SPoSE
from oddoneout.embed.torch_choice import add_cross_entropy_gradient, pair_logits, triplet_cross_entropy
from oddoneout.embed.training import IterateAverage, split_rows
from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.triplets import TrialSet, Triplets, odd_one_out_probabilities, sample_triplets


def sparse_embedding(n_items: int, n_dims: int, seed: int) -> np.ndarray:
    """Each item loads on 1-3 dimensions with weights in [1, 2.5]: an informative choice rule."""
    rng = np.random.default_rng(seed)
    weights = np.zeros((n_items, n_dims))
    for item in range(n_items):
        n_loaded = rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15])
        dims = rng.choice(n_dims, size=n_loaded, replace=False)
        weights[item, dims] = rng.uniform(1.0, 2.5, size=n_loaded)
    return weights


# ---------------------------------------------------------------- recovery (acceptance criterion)
N_TRAIN, N_TEST = 200_000, 20_000


@pytest.fixture(scope="module")
def recovery():
    """SPoSE with default settings fitted to 200k triplets from a 150-item, 6-dim sparse truth."""
    truth = sparse_embedding(150, 6, seed=0)
    data = sample_triplets(truth, N_TRAIN + N_TEST, seed=1)
    train, test = data.subset(np.arange(N_TRAIN)), data.subset(np.arange(N_TRAIN, N_TRAIN + N_TEST))
    model = SPoSE(seed=0).fit(train)
    return truth, train, test, model


def test_recovers_every_true_dimension(recovery):
    truth, _, _, model = recovery
    r = best_match_r(truth, model.weights_)
    assert r.min() >= 0.9, f"best-match r per true dimension: {np.round(r, 3)}"


def test_held_out_accuracy_matches_the_generating_model(recovery):
    truth, _, test, model = recovery
    generating = odd_one_out_accuracy(odd_one_out_probabilities(truth, test.indices))
    learned = model.score(test)
    assert generating > 0.6  # the choice rule is informative, so the comparison means something
    assert abs(learned - generating) <= 0.01, f"learned {learned:.4f} vs generating {generating:.4f}"


def test_weights_are_non_negative_sorted_and_pruned(recovery):
    _, _, _, model = recovery
    weights = model.weights_
    assert weights.min() >= 0.0
    norms = weights.sum(axis=0)
    assert np.all(np.diff(norms) <= 0)
    assert np.all(weights.max(axis=0) > model.prune_threshold)
    assert 6 <= weights.shape[1] < model.n_dims  # the L1 penalty and pruning removed most of the 100


def test_history_records_every_epoch(recovery):
    _, _, _, model = recovery
    history = model.history_
    assert set(history) >= {"epoch", "train_loss", "val_loss", "val_accuracy", "l1_penalty", "n_alive_dims"}
    assert history["epoch"] == list(range(1, model.n_epochs_ + 1))
    assert all(len(values) == model.n_epochs_ for values in history.values())
    assert 1 <= model.best_epoch_ <= model.n_epochs_
    # Training improved the fit: the kept epoch beats the first one and is far better than chance.
    best = model.best_epoch_ - 1
    assert history["val_loss"][best] < history["val_loss"][0] < np.log(3)
    assert history["val_accuracy"][best] > 0.6


# ---------------------------------------------------------------- small fast fits
@pytest.fixture(scope="module")
def small_data():
    truth = sparse_embedding(30, 4, seed=2)
    return truth, sample_triplets(truth, 12_000, seed=3, with_probs=True)


def small_model(**params) -> SPoSE:
    settings = {"n_dims": 20, "l1": 0.01, "max_epochs": 40, "patience": 5, "batch_size": 1024, "seed": 0}
    settings.update(params)
    return SPoSE(**settings)


def hard_only(triplets: Triplets) -> Triplets:
    return Triplets(triplets.item_ids, triplets.indices)


def test_same_seed_gives_identical_weights(small_data):
    _, triplets = small_data
    first = small_model(seed=4).fit(hard_only(triplets))
    second = small_model(seed=4).fit(hard_only(triplets))
    other = small_model(seed=5).fit(hard_only(triplets))
    np.testing.assert_array_equal(first.weights_, second.weights_)
    assert first.history_ == second.history_
    assert first.weights_.shape != other.weights_.shape or not np.array_equal(first.weights_, other.weights_)


def test_fit_leaves_global_torch_state_alone(small_data):
    _, triplets = small_data
    threads = torch.get_num_threads()
    rng_state = torch.random.get_rng_state().clone()
    small_model(max_epochs=2, n_threads=1).fit(hard_only(triplets))
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), rng_state)


def test_soft_labels_are_fitted_when_present(small_data):
    truth, triplets = small_data
    soft = small_model().fit(triplets)
    hard = small_model(soft_labels=False).fit(triplets)
    assert soft.to_embedding().metadata["soft_labels_used"] is True
    assert hard.to_embedding().metadata["soft_labels_used"] is False
    # Soft labels carry more information than single draws: the soft fit follows the
    # generating probabilities at least as closely, and closely in absolute terms.
    test = sample_triplets(truth, 5_000, seed=9, with_probs=True)
    soft_error = np.abs(soft.predict_proba(test) - test.probs).mean()
    hard_error = np.abs(hard.predict_proba(test) - test.probs).mean()
    assert soft_error < 0.01
    assert soft_error < 0.5 * hard_error
    # The validation loss of a soft fit is the cross-entropy against soft labels, which is
    # bounded below by their entropy rather than by 0.
    assert soft.history_["val_loss"] != hard.history_["val_loss"]


def test_l1_penalty_is_normalised_by_the_number_of_items(small_data):
    _, triplets = small_data
    model = small_model(l1=0.02, prune_threshold=0.0, refit=False).fit(hard_only(triplets))
    best = model.best_epoch_ - 1
    expected = 0.02 / triplets.n_items * model.weights_.sum()
    assert model.history_["l1_penalty"][best] == pytest.approx(expected, rel=1e-4)
    refitted = small_model(l1=0.02, prune_threshold=0.0).fit(hard_only(triplets))
    penalty = refitted.to_embedding().metadata["refit"]["final_l1_penalty"]
    assert penalty == pytest.approx(0.02 / triplets.n_items * refitted.weights_.sum(), rel=1e-4)


def test_to_embedding_round_trips_with_metadata(small_data, tmp_path):
    _, triplets = small_data
    model = small_model(l1=0.01, seed=7).fit(hard_only(triplets))
    path = model.to_embedding().save(tmp_path / "embedding.parquet")
    loaded = Embedding.load(path)
    np.testing.assert_array_equal(loaded.weights, model.weights_)
    assert loaded.item_ids == triplets.item_ids
    meta = loaded.metadata
    assert meta["kind"] == "embedding"
    assert meta["method"] == "spose"
    assert meta["seed"] == 7
    assert meta["hyperparameters"]["l1"] == 0.01
    assert meta["hyperparameters"]["n_dims"] == 20
    assert meta["source_triplets_hash"] == hard_only(triplets).hash()
    assert meta["n_triplets"] == len(triplets)
    assert meta["n_epochs"] == model.n_epochs_
    assert meta["best_epoch"] == model.best_epoch_
    assert meta["final_val_loss"] == pytest.approx(model.history_["val_loss"][model.best_epoch_ - 1])
    assert np.isfinite(meta["final_train_loss"])


def test_unused_item_id_gets_zero_weights(small_data):
    _, triplets = small_data
    with_unused = Triplets(triplets.item_ids + ("never_shown",), triplets.indices)
    model = small_model().fit(with_unused)
    assert model.item_ids_[-1] == "never_shown"
    assert model.unseen_item_ids_ == ("never_shown",)
    assert np.all(model.weights_[-1] == 0.0)
    assert model.to_embedding().metadata["n_unseen_items"] == 1
    # Its predictions are those of an item similar to nothing, not an error.
    probs = model.predict_proba(Triplets(with_unused.item_ids, np.array([[0, 1, 30]])))
    assert np.all(np.isfinite(probs))


def test_predict_proba_aligns_ids_and_rejects_unknown_ones(small_data):
    _, triplets = small_data
    model = small_model(max_epochs=5).fit(hard_only(triplets))
    subset = hard_only(triplets).subset(np.arange(100))
    probs = model.predict_proba(subset)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert model.score(subset) == pytest.approx(odd_one_out_accuracy(probs))
    # The same triplets over a shuffled vocabulary give the same predictions.
    shuffled_ids = tuple(reversed(triplets.item_ids))
    lookup = {item: i for i, item in enumerate(shuffled_ids)}
    remapped = np.vectorize(lambda i: lookup[triplets.item_ids[i]])(subset.indices)
    np.testing.assert_allclose(model.predict_proba(Triplets(shuffled_ids, remapped)), probs)
    with pytest.raises(InputError, match="stranger"):
        model.predict_proba(Triplets(("0", "1", "stranger"), np.array([[0, 1, 2]])))


def test_predict_before_fit_raises(small_data):
    _, triplets = small_data
    with pytest.raises(NotFittedError, match="not fitted"):
        SPoSE().predict_proba(triplets)


def test_progress_is_reported_every_epoch(small_data):
    _, triplets = small_data
    calls = []
    model = small_model(max_epochs=3, patience=10, progress=lambda *args: calls.append(args)).fit(triplets)
    validated, refit = calls[:3], calls[3:]
    assert [c[0] for c in validated] == [1, 2, 3] == model.history_["epoch"]
    assert all(c[1] == 3 for c in validated)
    assert set(calls[0][2]) >= {"train_loss", "val_loss", "val_accuracy"}
    # then the refit on all triplets, for as many epochs as the validated fit kept, saying so
    assert [c[0] for c in refit] == list(range(1, model.best_epoch_ + 1))
    assert all(c[1] == model.best_epoch_ and c[2]["refit"] == "all triplets" for c in refit)


def test_fit_without_validation_split(small_data):
    _, triplets = small_data
    model = small_model(validation_fraction=0.0, max_epochs=5).fit(hard_only(triplets))
    assert np.isnan(model.history_["val_loss"]).all()
    assert model.to_embedding().metadata["n_val_triplets"] == 0
    assert "refit" not in model.to_embedding().metadata  # it was fitted on every triplet already
    assert model.weights_.shape[0] == triplets.n_items


def test_too_strong_penalty_prunes_everything_with_a_warning(small_data):
    _, triplets = small_data
    with pytest.warns(RuntimeWarning, match="prune_threshold"):
        model = small_model(l1=50.0, max_epochs=15).fit(hard_only(triplets))
    assert model.weights_.shape == (triplets.n_items, 0)
    np.testing.assert_allclose(model.predict_proba(hard_only(triplets).subset(np.arange(5))), 1 / 3)


@pytest.mark.parametrize(
    "params",
    [
        {"n_dims": 0},
        {"l1": -1.0},
        {"validation_fraction": 1.0},
        {"batch_size": 0},
        {"lr_decay": 0.0},
        {"n_threads": 0},
    ],
)
def test_invalid_parameters_raise(small_data, params):
    _, triplets = small_data
    with pytest.raises(InputError, match=next(iter(params))):
        SPoSE(**params).fit(triplets)


def test_diverging_fit_says_so(small_data):
    _, triplets = small_data
    with pytest.raises(RuntimeError, match="diverged.*smaller lr"):
        small_model(lr=1e30).fit(triplets)


def test_fit_rejects_non_triplets():
    with pytest.raises(InputError, match="Triplets"):
        SPoSE().fit(np.zeros((10, 3), dtype=int))


# ---------------------------------------------------------------- the loss itself
def test_pair_logits_and_loss_match_the_numpy_choice_rule():
    rng = np.random.default_rng(0)
    weights = rng.random((10, 4))
    indices = np.array([[0, 1, 2], [3, 4, 5], [9, 8, 7]])
    logits = pair_logits(torch.as_tensor(weights), torch.as_tensor(indices))
    probs = odd_one_out_probabilities(weights, indices)
    np.testing.assert_allclose(torch.softmax(logits, dim=1).numpy(), probs, rtol=1e-12)
    loss = triplet_cross_entropy(logits)
    assert float(loss) == pytest.approx(-np.log(probs[:, 2]).mean())
    soft = torch.tensor([[0.2, 0.3, 0.5]] * 3, dtype=torch.float64)
    assert float(triplet_cross_entropy(logits, soft)) == pytest.approx(-(soft.numpy() * np.log(probs)).sum(1).mean())


@pytest.mark.parametrize("soft", [False, True])
def test_closed_form_gradient_equals_autograd(soft):
    """The training step's hand-written gradient is the gradient of the loss, repeated items included."""
    rng = np.random.default_rng(1)
    weights = torch.as_tensor(rng.random((12, 5)))
    indices = torch.as_tensor(np.vstack([rng.permutation(12)[:3] for _ in range(40)] + [[0, 1, 2], [0, 1, 2]]))
    targets = torch.as_tensor(rng.dirichlet(np.ones(3), size=len(indices))) if soft else None
    leaf = weights.clone().requires_grad_(True)
    expected_loss = triplet_cross_entropy(pair_logits(leaf, indices), targets)
    expected_loss.backward()
    grad = torch.full_like(weights, 0.25)  # the gradient is added to what is there
    loss = add_cross_entropy_gradient(weights, indices, targets, grad)
    assert float(loss) == pytest.approx(float(expected_loss.detach()), rel=1e-12)
    np.testing.assert_allclose(grad.numpy() - 0.25, leaf.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert np.abs(leaf.grad.numpy()).max() > 1e-3  # a gradient that could be wrong


def test_loss_is_finite_for_huge_similarities():
    weights = torch.tensor([[100.0], [100.0], [0.0]])
    logits = pair_logits(weights, torch.tensor([[2, 0, 1]]))  # observed odd one out has similarity 1e4 to its partner
    loss = triplet_cross_entropy(logits)
    assert torch.isfinite(loss) and float(loss) == pytest.approx(1e4)


# ---------------------------------------------------------------- relaxed refit
def test_relaxed_refit_keeps_the_support_and_removes_the_shrinkage():
    rng = np.random.default_rng(4)
    truth = np.zeros((60, 4))
    for item in range(60):
        dims = rng.choice(4, size=rng.integers(1, 3), replace=False)
        truth[item, dims] = rng.uniform(1.0, 2.5, dims.size)
    triplets = sample_triplets(truth, 30_000, seed=5)
    settings = {"n_dims": 12, "l1": 0.05, "batch_size": 1024, "seed": 0}
    penalised = SPoSE(**settings).fit(triplets)
    relaxed = SPoSE(relax=True, **settings).fit(triplets)
    assert penalised.relaxed_from_epoch_ is None
    # the penalised phase is the same fit; the refit follows it in the history
    start = relaxed.relaxed_from_epoch_
    assert start == penalised.n_epochs_ + 1 and relaxed.n_epochs_ > penalised.n_epochs_
    assert relaxed.history_["train_loss"][: start - 1] == penalised.history_["train_loss"]
    assert all(p == 0.0 for p in relaxed.history_["l1_penalty"][start - 1 :])
    # zeros stay zero and no dimension is added
    assert relaxed.weights_.shape[1] <= penalised.weights_.shape[1]
    k = penalised.weights_.shape[1]
    columns = np.corrcoef(penalised.weights_.T, relaxed.weights_.T)[:k, k:]
    matched = penalised.weights_[:, columns.argmax(axis=0)]
    assert np.all(relaxed.weights_[matched == 0] == 0)
    # without the penalty's shrinkage the weights grow and the training loss falls
    assert relaxed.weights_.sum() > matched.sum()
    penalised_loss = penalised.history_["train_loss"][penalised.best_epoch_ - 1]
    assert min(relaxed.history_["train_loss"][start - 1 :]) < penalised_loss
    assert relaxed.to_embedding().metadata["relaxed_from_epoch"] == start


# ---------------------------------------------------------------- iterate averaging
def test_iterate_average_is_the_polynomial_decay_average():
    average = IterateAverage(torch.tensor([100.0]), eta=8)
    for iterate in (1.0, 2.0, 4.0):
        average.update(torch.tensor([iterate]))
    # r = 9/9 copies 1; r = 9/10 gives 0.1 * 1 + 0.9 * 2 = 1.9; r = 9/11 gives (2 * 1.9 + 9 * 4) / 11
    assert float(average.value) == pytest.approx((2 * 1.9 + 9 * 4) / 11)
    average.restart()
    average.update(torch.tensor([10.0]))
    assert float(average.value) == 10.0
    uniform = IterateAverage(torch.zeros(2), eta=0)
    for iterate in ([1.0, 0.0], [2.0, 3.0], [6.0, 0.0]):
        uniform.update(torch.tensor(iterate))
    np.testing.assert_allclose(uniform.value.numpy(), [3.0, 1.0])


def test_averaging_removes_the_jitter_of_a_constant_step():
    truth = sparse_embedding(100, 5, seed=6)
    triplets = sample_triplets(truth, 40_000, seed=7)
    # a few epochs at a constant, large step (no plateau decay yet): only the estimate differs
    settings = {"n_dims": 20, "l1": 0.005, "lr": 0.1, "batch_size": 256, "max_epochs": 4, "seed": 0}
    averaged = SPoSE(**settings).fit(triplets)
    last = SPoSE(averaging=False, **settings).fit(triplets)
    assert averaged.history_["train_loss"][0] == last.history_["train_loss"][0]  # the same iterates
    for epoch in (2, 3):
        assert averaged.history_["val_loss"][epoch] < last.history_["val_loss"][epoch] - 0.01
    assert averaged.to_embedding().metadata["hyperparameters"]["averaging"] is True


# ---------------------------------------------------------------- refit on all triplets
def test_refit_repeats_the_validated_schedule_on_all_triplets(small_data):
    _, triplets = small_data
    hard = hard_only(triplets)
    validated = small_model(refit=False).fit(hard)
    refitted = small_model().fit(hard)
    # the replay of the validated schedule on the validated rows is the validated fit itself
    train_rows, val_rows = split_rows(len(hard), validated.validation_fraction, validated.seed)
    again = small_model(refit=False)
    again.l1_ = validated.l1_
    again._fit_rows(TrialSet.of(hard), train_rows, val_rows, replay=validated.schedule_)
    np.testing.assert_array_equal(again.weights_, validated.weights_)
    # the refit's weights differ; the held-out record stays the validated fit's
    assert refitted.weights_.shape != validated.weights_.shape or not np.allclose(refitted.weights_, validated.weights_)
    assert refitted.history_ == validated.history_ and refitted.best_epoch_ == validated.best_epoch_
    meta, validated_meta = refitted.to_embedding().metadata, validated.to_embedding().metadata
    assert meta["final_val_loss"] == validated_meta["final_val_loss"]
    assert meta["refit"]["n_triplets"] == len(hard) == meta["n_triplets"]
    assert meta["refit"]["n_epochs"] == validated.schedule_[0].n_epochs == validated.best_epoch_
    assert "refit" not in validated_meta
    assert meta["n_dims_kept"] == refitted.weights_.shape[1]


def test_refit_sees_the_items_of_the_validation_triplets(small_data):
    _, triplets = small_data
    hard = hard_only(triplets)
    indices = hard.indices.copy()
    _, val_rows = split_rows(len(indices), 0.1, 0)
    indices[val_rows[0]] = [0, 1, 30]  # item 30 is in one validation triplet only
    with_late = Triplets(hard.item_ids + ("late",), indices)
    assert small_model(refit=False).fit(with_late).unseen_item_ids_ == ("late",)
    refitted = small_model().fit(with_late)
    assert refitted.unseen_item_ids_ == () and refitted.to_embedding().metadata["n_unseen_items"] == 0


def test_refit_replays_both_phases_of_a_relaxed_fit(small_data):
    _, triplets = small_data
    model = small_model(relax=True).fit(hard_only(triplets))
    penalised, relaxed = model.schedule_
    assert model.to_embedding().metadata["refit"]["n_epochs"] == penalised.n_epochs + relaxed.n_epochs
    assert model.relaxed_from_epoch_ > penalised.n_epochs  # the validated fit ran past its kept epoch
