"""Anchor triplets and ranked trials: layouts, choice rules by hand, torch against numpy, fits and recovery."""

from __future__ import annotations

import itertools
import math
import pickle

import numpy as np
import pytest
import torch

from oddoneout.embed.evaluate import choice_scores, evaluate_embedding, noise_ceiling, trial_noise_ceiling
from oddoneout.embed.rsm import measured_anchor_similarity, predicted_anchor_similarity, rsm_correlation
from oddoneout.embed.spose import SPoSE
from oddoneout.embed.torch_choice import (
    TrialTensors,
    add_batch_gradient,
    batch_negative_log_likelihood,
    choice_probabilities,
    log_likelihood,
)
from oddoneout.embed.vice import VICE
from oddoneout.errors import InputError
from oddoneout.triplets import (
    ANCHOR,
    ODD_ONE_OUT,
    Ranked,
    TrialSet,
    Triplets,
    sample_triplets,
    trial_type_from_spec,
)

RANKED = Ranked(4, 2)


# ---------------------------------------------------------------- layouts and the choice rule, by hand
def test_anchor_layout_is_reference_chosen_other():
    shown = np.array([[7, 3, 5], [7, 3, 5]])
    # choosing shown position 2 (item 5) stores [reference, 5, 3]; position 1 stores [7, 3, 5]
    assert ANCHOR.to_canonical(shown, np.array([2, 1])).tolist() == [[7, 5, 3], [7, 3, 5]]
    with pytest.raises(InputError, match="shown position"):
        ANCHOR.canonical_positions(np.array([0]))  # the reference is never an answer
    assert ANCHOR.orderings.tolist() == [[0, 1, 2], [0, 2, 1]]


def test_ranked_layout_puts_the_ranked_options_first_then_the_rest_in_shown_order():
    shown = np.array([[10, 11, 12, 13, 14]])
    # ranked: first the item at position 3, then position 1; the rest (positions 2, 4) follow
    assert RANKED.to_canonical(shown, np.array([[3, 1]])).tolist() == [[10, 13, 11, 12, 14]]
    with pytest.raises(InputError, match="twice"):
        RANKED.canonical_positions(np.array([[2, 2]]))
    assert len(RANKED.orderings) == math.factorial(4) and (RANKED.orderings[:, 0] == 0).all()


def test_anchor_probability_is_the_softmax_of_the_reference_similarities():
    features = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])  # sim(0, 1) = 2, sim(0, 2) = 0
    probs = ANCHOR.probabilities(features, np.array([[0, 1, 2], [0, 2, 1]]))
    near = math.exp(2) / (math.exp(2) + 1)
    np.testing.assert_allclose(probs, [[0, near, 1 - near], [0, 1 - near, near]])
    np.testing.assert_allclose(ANCHOR.log_likelihood(features, np.array([[0, 2, 1]])), [math.log(1 - near)])
    accuracy, loss = choice_scores(features, Triplets(("a", "b", "c"), np.array([[0, 1, 2], [0, 2, 1]]), None, ANCHOR))
    assert accuracy == 0.5 and loss == pytest.approx(-(math.log(near) + math.log(1 - near)) / 2)


def test_a_ranking_has_the_plackett_luce_probability():
    features = np.array([[1.0], [1.0], [2.0], [3.0], [0.5]])  # reference 0: similarities 1, 2, 3, 0.5
    ranking = np.array([[0, 3, 1, 2, 4]])  # item 3 (sim 3) first, then item 1 (sim 1)
    e = np.exp([1.0, 2.0, 3.0, 0.5])
    expected = math.log(e[2] / e.sum()) + math.log(e[0] / (e[0] + e[1] + e[3]))
    np.testing.assert_allclose(RANKED.log_likelihood(features, ranking), [expected])
    first = RANKED.probabilities(features, ranking)
    np.testing.assert_allclose(first[0], [0, e[2], e[0], e[1], e[3]] / e.sum())


def test_chance_is_ln3_ln2_and_the_sum_over_ranks():
    assert ODD_ONE_OUT.chance_cross_entropy == pytest.approx(math.log(3))
    assert ANCHOR.chance_cross_entropy == pytest.approx(math.log(2))
    assert Ranked(8, 2).chance_cross_entropy == pytest.approx(math.log(8) + math.log(7))
    # an embedding with no information scores exactly chance
    zeros = np.zeros((9, 2))
    trials = Triplets(tuple("abcdefghi"), np.array([[0, 1, 2, 3, 4, 5, 6, 7, 8]]), None, Ranked(8, 2))
    assert choice_scores(zeros, trials) == pytest.approx((1 / 8, math.log(8) + math.log(7)))


def test_specs_name_the_trial_types_and_survive_pickling():
    for kind in (ODD_ONE_OUT, ANCHOR, Ranked(8, 2)):
        assert trial_type_from_spec(kind.spec) == kind
        assert pickle.loads(pickle.dumps(kind)) == kind
    assert pickle.loads(pickle.dumps(ODD_ONE_OUT)) is ODD_ONE_OUT
    for bad in ("triad", "ranked:8", "ranked:2:2", "ranked:x:1"):
        with pytest.raises(InputError):
            trial_type_from_spec(bad)


def test_triplets_check_their_width_and_soft_labels_per_type():
    with pytest.raises(InputError, match=r"\(n, 5\)"):
        Triplets(tuple("abcde"), np.array([[0, 1, 2]]), None, RANKED)
    with pytest.raises(InputError, match="soft labels"):
        Triplets(tuple("abcde"), np.array([[0, 1, 2, 3, 4]]), np.full((1, 5), 0.2), RANKED)
    same = Triplets(("a", "b", "c"), np.array([[0, 1, 2]]))
    # the trial type is part of the content: the same rows as anchor triplets hash differently
    assert same.hash() != Triplets(("a", "b", "c"), np.array([[0, 1, 2]]), None, ANCHOR).hash()


def test_sampled_answers_follow_the_choice_rule():
    rng = np.random.default_rng(0)
    features = rng.gamma(1.0, 1.0, (30, 3))
    for kind in (ANCHOR, RANKED):
        trials = sample_triplets(features, 40_000, seed=1, trial_type=kind)
        assert trials.trial_type == kind and trials.indices.shape == (40_000, kind.n_shown)
        # the observed first choice agrees with the model's favourite as often as the model says
        probs = kind.probabilities(features, trials.indices)
        expected = probs.max(axis=1).mean()
        observed = (probs.argmax(axis=1) == kind.chosen_column).mean()
        assert observed == pytest.approx(expected, abs=0.01)


# ---------------------------------------------------------------- torch against numpy
@pytest.mark.parametrize("kind", [ODD_ONE_OUT, ANCHOR, RANKED], ids=lambda k: k.spec)
def test_torch_choice_rule_matches_numpy(kind):
    rng = np.random.default_rng(1)
    features = rng.random((20, 4))
    trials = sample_triplets(features, 200, seed=2, trial_type=kind)
    weights = torch.as_tensor(features)
    indices = torch.as_tensor(trials.indices)
    np.testing.assert_allclose(
        log_likelihood(kind, weights, indices).numpy(), kind.log_likelihood(features, trials.indices)
    )
    np.testing.assert_allclose(
        choice_probabilities(kind, weights, indices).numpy(), kind.probabilities(features, trials.indices)
    )


def test_mixed_batch_gradient_in_closed_form_matches_autograd():
    rng = np.random.default_rng(3)
    features = rng.random((25, 3))
    batch = [
        TrialTensors(kind, torch.as_tensor(sample_triplets(features, 50, seed=4, trial_type=kind).indices))
        for kind in (ODD_ONE_OUT, ANCHOR, RANKED)
    ]
    soft = sample_triplets(features, 40, seed=5, trial_type=ANCHOR, with_probs=True)
    batch.append(TrialTensors(ANCHOR, torch.as_tensor(soft.indices), torch.as_tensor(soft.probs)))
    weights = torch.as_tensor(features, dtype=torch.float64)
    grad = torch.zeros_like(weights)
    loss = add_batch_gradient(weights, batch, grad)
    leaf = weights.clone().requires_grad_(True)
    expected = batch_negative_log_likelihood(leaf, batch)
    expected.backward()
    assert float(loss) == pytest.approx(float(expected.detach()))
    np.testing.assert_allclose(grad.numpy(), leaf.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- fits
def planted(n_items: int = 60, n_dims: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    weights = np.zeros((n_items, n_dims))
    weights[np.arange(n_items), np.arange(n_items) % n_dims] = rng.uniform(1.5, 2.5, n_items)
    extra = rng.choice(n_items, n_items // 3, replace=False)
    weights[extra, rng.integers(0, n_dims, extra.size)] += rng.uniform(0.5, 1.5, extra.size)
    return weights


def _train_test(truth, kind, per_item, seed=1, n_test=20_000):
    n_train = per_item * len(truth)
    data = sample_triplets(truth, n_train + n_test, seed=seed, trial_type=kind)
    return data.subset(np.arange(n_train)), data.subset(np.arange(n_train, n_train + n_test))


@pytest.mark.parametrize("kind", [ANCHOR, RANKED], ids=lambda k: k.spec)
def test_spose_recovers_a_planted_embedding_from_each_trial_type(kind):
    truth = planted()
    train, test = _train_test(truth, kind, per_item=600)
    model = SPoSE(n_dims=20, verbose=0, n_threads=2).fit(train)
    generating = choice_scores(truth, test)[0]
    assert model.score(test) >= generating - 0.01, (model.score(test), generating)
    assert model.weights_.shape[1] < 20 and model.fit_warnings_ == []
    assert model.to_embedding().metadata["trial_types"] == {kind.spec: len(train)}
    result = evaluate_embedding(model.to_embedding(), test, n_bootstrap=50)
    assert result["trial_type"] == kind.spec
    assert result["cross_entropy"] < result["chance_cross_entropy"] - 0.1


def test_one_fit_learns_from_mixed_trial_types():
    truth = planted(seed=5)
    odd_train, odd_test = _train_test(truth, ODD_ONE_OUT, per_item=150, seed=2)
    anchor_train, anchor_test = _train_test(truth, ANCHOR, per_item=150, seed=3)
    mixed = SPoSE(n_dims=20, verbose=0, n_threads=2).fit([odd_train, anchor_train])
    alone = SPoSE(n_dims=20, verbose=0, n_threads=2).fit(anchor_train)
    assert mixed.to_embedding().metadata["trial_types"] == {"odd_one_out": len(odd_train), "anchor": len(anchor_train)}
    # the odd-one-out judgments inform the anchor predictions: the mixed fit predicts them at least as well
    assert mixed.score(anchor_test) >= alone.score(anchor_test) - 0.002
    for test in (odd_test, anchor_test):
        assert mixed.score(test) >= choice_scores(truth, test)[0] - 0.02
    with pytest.raises(InputError, match="vocabulary"):
        TrialSet((odd_train, Triplets(tuple("xyz"), np.array([[0, 1, 2]]), None, ANCHOR)))


def test_vice_learns_from_anchor_triplets():
    truth = planted(seed=7)
    train, test = _train_test(truth, ANCHOR, per_item=300, seed=4)
    model = VICE(n_dims=10, max_epochs=60, verbose=0, n_threads=2, seed=0).fit(train)
    assert model.score(test) >= choice_scores(truth, test)[0] - 0.03


# ---------------------------------------------------------------- noise ceiling and exhaustive validation
def test_noise_ceiling_groups_trials_by_role_and_set_of_items():
    ids = tuple("abcdef")
    # anchor: reference 0 with options {1, 2} three times (chosen 1, 1, 2); reference 1 with {0, 2} once;
    # [2, 1, 0] is another reference, so it does not join the first group
    anchor = Triplets(ids, np.array([[0, 1, 2], [0, 1, 2], [0, 2, 1], [1, 0, 2], [2, 1, 0], [2, 0, 1]]), None, ANCHOR)
    result = trial_noise_ceiling(anchor, n_bootstrap=10)
    # groups: (0 | 1, 2): answers 1, 1, 2 -> modal 2/3; (2 | 0, 1): answers 1, 0 -> 1/2
    assert result["n_repeated_triplets"] == 2 and result["n_judgments"] == 5
    assert result["noise_ceiling"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    # ranked: the first choice is the answer; the order of the options does not matter
    ranked = Triplets(ids, np.array([[0, 1, 2, 3, 4], [0, 1, 4, 2, 3], [0, 3, 1, 2, 4]]), None, RANKED)
    assert trial_noise_ceiling(ranked, n_bootstrap=10)["noise_ceiling"] == pytest.approx(2 / 3)
    # odd-one-out: the same as the id-based noise ceiling
    odd = sample_triplets(np.random.default_rng(0).random((6, 2)), 300, seed=1)
    names = np.array(odd.item_ids)[odd.indices]
    expected = noise_ceiling(names, names[:, 2], n_bootstrap=10)
    assert trial_noise_ceiling(odd, n_bootstrap=10) == expected


def test_exhaustive_anchor_design_measures_what_the_embedding_predicts():
    truth = planted(n_items=12, n_dims=3, seed=9)
    m = len(truth)
    combos = [(r, a, b) for r in range(m) for a, b in itertools.combinations([k for k in range(m) if k != r], 2)]
    shown = np.repeat(np.array(combos), 40, axis=0)
    probs = ANCHOR.probabilities(truth, shown)
    choice = np.where(np.random.default_rng(2).random(len(shown)) < probs[:, 1], 1, 2)
    trials = Triplets(tuple(map(str, range(m))), ANCHOR.to_canonical(shown, choice), None, ANCHOR)
    measured = measured_anchor_similarity(trials, trials.item_ids)
    predicted = predicted_anchor_similarity(truth)
    assert rsm_correlation(measured, predicted) > 0.97
    # by hand: two items with one dimension, every option chosen with the sigmoid of the similarity gap
    line = np.array([[1.0], [2.0], [0.0]])
    by_hand = predicted_anchor_similarity(line)
    # reference 0 (similarities 2 to item 1, 0 to item 2) chooses 1 with sigmoid(2);
    # reference 1 (2 to item 0, 0 to item 2) chooses 0 with sigmoid(2)
    assert by_hand[0, 1] == pytest.approx(1 / (1 + math.exp(-2)))
