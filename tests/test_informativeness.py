"""The selection criterion of adaptive collection: information gain, batches, exclusions (hand-computed cases)."""

from __future__ import annotations

import numpy as np
import pytest

from oddoneout.collect.informativeness import (
    base_rows,
    greedy_diverse,
    information_gain,
    model_hash,
    posterior_probabilities,
    predictive_entropy,
    select_trials,
)
from oddoneout.errors import InputError
from oddoneout.triplets import ANCHOR, ODD_ONE_OUT, trial_type_from_spec


class _Posterior:
    """A stand-in VICE posterior: only ``mu_`` and ``sigma_`` are read."""

    def __init__(self, mu: np.ndarray, sigma: np.ndarray) -> None:
        self.mu_, self.sigma_ = mu, sigma


def test_information_gain_is_the_disagreement_of_the_draws_not_their_noise():
    # trial 0: two draws certain of different answers; trial 1: both draws a coin flip over three
    draws = np.array([[[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]], [[0.0, 1.0, 0.0], [1 / 3, 1 / 3, 1 / 3]]])
    np.testing.assert_allclose(information_gain(draws), [np.log(2), 0.0], atol=1e-12)
    np.testing.assert_allclose(predictive_entropy(draws), [np.log(2), np.log(3)], atol=1e-12)
    # one draw: nothing to disagree on
    np.testing.assert_allclose(information_gain(draws[:1]), [0.0, 0.0], atol=1e-12)


def test_a_posterior_without_spread_gives_no_information_gain():
    mu = np.abs(np.random.default_rng(0).normal(size=(10, 3)))
    trials = base_rows(np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8]]), ODD_ONE_OUT)
    sharp = posterior_probabilities(_Posterior(mu, np.zeros_like(mu)), ODD_ONE_OUT, trials, n_samples=5)
    assert sharp.shape == (5, 3, 3)
    np.testing.assert_allclose(information_gain(sharp), 0.0, atol=1e-12)
    spread = posterior_probabilities(_Posterior(mu, np.ones_like(mu)), ODD_ONE_OUT, trials, n_samples=50)
    assert (information_gain(spread) > 0.01).all()


def test_greedy_batches_take_the_best_trials_within_the_item_cap():
    candidates = np.array([[0, 1, 2], [0, 3, 4], [0, 5, 6], [1, 3, 5], [2, 4, 6]])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    # item 0 at most twice: the third trial showing it is passed over for the next best
    np.testing.assert_array_equal(greedy_diverse(scores, candidates, 3, 7, cap=2), [0, 1, 3])
    np.testing.assert_array_equal(greedy_diverse(scores, candidates, 5, 7, cap=1), [0])  # all others share an item


def test_selected_trials_are_new_base_trials_best_first():
    rng = np.random.default_rng(1)
    mu, sigma = np.abs(rng.normal(size=(12, 3))), np.full((12, 3), 0.5)
    posterior = _Posterior(mu, sigma)
    asked = np.array([[2, 1, 0], [5, 4, 3]])  # shown orders of two base trials
    selection = select_trials(posterior, 12, 30, seed=3, exclude=asked, n_candidates=2000)
    assert len(selection.indices) == 30 and np.all(np.diff(selection.scores) <= 0)
    rows = {tuple(row) for row in selection.indices.tolist()}
    assert len(rows) == 30 and not rows & {(0, 1, 2), (3, 4, 5)}
    assert (np.diff(selection.indices, axis=1) > 0).all()  # base trials: ascending
    counts = np.bincount(selection.indices.ravel(), minlength=12)
    assert counts.max() <= int(np.ceil(1.5 * 3 * 30 / 12))
    again = select_trials(posterior, 12, 30, seed=3, exclude=asked, n_candidates=2000)
    np.testing.assert_array_equal(again.indices, selection.indices)  # seeded
    assert again.model_hash == selection.model_hash == model_hash(posterior)
    assert model_hash(_Posterior(mu, sigma * 2)) != selection.model_hash


@pytest.mark.parametrize("spec", ["anchor", "ranked:4:2"])
def test_reference_trials_keep_the_reference_first(spec):
    kind = trial_type_from_spec(spec)
    mu = np.abs(np.random.default_rng(2).normal(size=(10, 3)))
    selection = select_trials(_Posterior(mu, np.full_like(mu, 0.5)), 10, 8, trial_type=kind, seed=0)
    assert selection.indices.shape == (8, kind.n_shown)
    assert (np.diff(selection.indices[:, 1:], axis=1) > 0).all()  # options ascending after the reference
    rows = np.array([[4, 9, 1]])
    np.testing.assert_array_equal(base_rows(rows, ANCHOR), [[4, 1, 9]])


def test_bad_requests_get_clear_errors():
    posterior = _Posterior(np.ones((6, 2)), np.ones((6, 2)))
    with pytest.raises(InputError, match="unknown selection criterion"):
        select_trials(posterior, 6, 2, criterion="margin")
    with pytest.raises(InputError, match="n_select"):
        select_trials(posterior, 6, 0)
    with pytest.raises(InputError, match="fitted VICE"):
        posterior_probabilities(object(), ODD_ONE_OUT, np.array([[0, 1, 2]]))
