"""The eigh ridge solver against direct solves, brute-force CV, scikit-learn and himalaya."""

from __future__ import annotations

import numpy as np
import pytest
from himalaya.backend import get_backend, set_backend
from himalaya.ridge import solve_ridge_cv_svd
from sklearn.linear_model import Ridge

import oddoneout.neural.ridge as ridge_module
from oddoneout.errors import InputError
from oddoneout.neural.data import NeuralData
from oddoneout.neural.encoding import encode
from oddoneout.neural.ridge import ridge_cv_errors, ridge_cv_per_target, ridge_fit_per_target

ALPHAS = np.logspace(-2, 4, 13)


def make_problem(n: int = 150, p: int = 8, v: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Uncentered features and targets whose noise level varies over targets."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, p)) @ rng.standard_normal((p, p)) + 3.0
    noise = np.geomspace(0.1, 30.0, v)
    y = x @ rng.standard_normal((p, v)) + noise * rng.standard_normal((n, v)) - 7.0
    return x, y


def block_splits(n: int, n_folds: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    fold = np.random.default_rng(seed).permutation(np.arange(n) % n_folds)
    return [(np.flatnonzero(fold != b), np.flatnonzero(fold == b)) for b in range(n_folds)]


def direct_fit(x: np.ndarray, y: np.ndarray, alpha: float, fit_intercept: bool) -> tuple[np.ndarray, np.ndarray]:
    """Weights and intercept of (X^T X + alpha I) w = X^T y, on centered data if fit_intercept."""
    x_mean = x.mean(axis=0) if fit_intercept else np.zeros(x.shape[1])
    y_mean = y.mean(axis=0) if fit_intercept else np.zeros(y.shape[1])
    xc = x - x_mean
    weights = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (y - y_mean))
    return weights, y_mean - x_mean @ weights


def brute_force_errors(x, y, splits, alphas, fit_intercept=True) -> np.ndarray:
    errors = np.zeros((len(alphas), y.shape[1]))
    for train, val in splits:
        for i, alpha in enumerate(alphas):
            weights, intercept = direct_fit(x[train], y[train], alpha, fit_intercept)
            errors[i] += np.mean((y[val] - x[val] @ weights - intercept) ** 2, axis=0)
    return errors / len(splits)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_cv_errors_equal_a_direct_solve_per_alpha_and_split(fit_intercept):
    x, y = make_problem()
    splits = block_splits(len(x), 4)[:3] + [
        (np.arange(0, 100), np.arange(100, 120)),  # validation is not all of the rest
        (np.r_[np.arange(50), np.arange(25)], np.arange(50, 150)),  # repeated training rows count twice
    ]

    errors = ridge_cv_errors(x, y, splits, ALPHAS, fit_intercept=fit_intercept)
    expected = brute_force_errors(x, y, splits, ALPHAS, fit_intercept)

    np.testing.assert_allclose(errors, expected, rtol=1e-10)
    # the grid spans under- and over-regularized fits: the best alpha is not the same for all targets
    assert np.unique(expected.argmin(axis=0)).size > 3


def test_chosen_alphas_and_refit_equal_brute_force_inner_cv():
    x, y = make_problem(seed=1)
    splits = block_splits(len(x), 5, seed=1)

    best_alpha, coefs = ridge_cv_per_target(x, y, splits, ALPHAS)

    expected_alpha = ALPHAS[brute_force_errors(x, y, splits, ALPHAS).argmin(axis=0)]
    np.testing.assert_array_equal(best_alpha, expected_alpha)
    for target in range(y.shape[1]):
        weights, _ = direct_fit(x, y[:, [target]], expected_alpha[target], fit_intercept=True)
        np.testing.assert_allclose(coefs[:, target], weights[:, 0], rtol=1e-9, atol=1e-12)


def test_refit_matches_scikit_learn_ridge_with_intercept():
    x, y = make_problem(seed=2)

    for alpha in (0.01, 10.0, 1e4):
        coefs = ridge_fit_per_target(x, y, alpha)
        reference = Ridge(alpha=alpha, fit_intercept=True).fit(x, y)
        intercept = y.mean(axis=0) - x.mean(axis=0) @ coefs  # as documented
        np.testing.assert_allclose(coefs, reference.coef_.T, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(intercept, reference.intercept_, rtol=1e-8)


def test_more_features_than_training_samples_still_match_a_direct_solve():
    x, y = make_problem(n=30, p=40, v=10, seed=3)
    splits = block_splits(len(x), 3, seed=3)

    expected = brute_force_errors(x, y, splits, ALPHAS)
    np.testing.assert_allclose(ridge_cv_errors(x, y, splits, ALPHAS), expected, rtol=1e-8)


def test_results_do_not_depend_on_target_chunks_dtype_or_alpha_order(monkeypatch):
    x, y = make_problem(v=25, seed=4)
    splits = block_splits(len(x), 5, seed=4)
    best_alpha, coefs = ridge_cv_per_target(x, y, splits, ALPHAS)
    errors = ridge_cv_errors(x, y, splits, ALPHAS)

    monkeypatch.setattr(ridge_module, "TARGET_CHUNK", 7)  # 4 chunks, the last one short
    chunked_alpha, chunked_coefs = ridge_cv_per_target(x, y, splits, ALPHAS)
    np.testing.assert_array_equal(chunked_alpha, best_alpha)
    np.testing.assert_allclose(chunked_coefs, coefs, rtol=1e-12)

    shuffled = np.random.default_rng(0).permutation(ALPHAS.size)
    np.testing.assert_allclose(ridge_cv_errors(x, y, splits, ALPHAS[shuffled]), errors[shuffled], rtol=1e-12)

    single_alpha, single_coefs = ridge_cv_per_target(x.astype(np.float32), y.astype(np.float32), splits, ALPHAS)
    assert single_coefs.dtype == np.float64 and single_alpha.dtype == np.float64
    assert np.mean(single_alpha == best_alpha) > 0.9  # float32 rounding of the inputs may flip near-ties
    assert set(single_alpha) <= set(ALPHAS)


def test_alphas_and_weights_equal_himalaya_in_float64():
    x, y = make_problem(n=200, p=12, v=60, seed=5)
    splits = block_splits(len(x), 5, seed=5)
    previous = get_backend().name
    set_backend("numpy")
    try:
        chosen, reference_coefs, _, intercept = solve_ridge_cv_svd(
            x, y, alphas=ALPHAS, cv=splits, fit_intercept=True, local_alpha=True, warn=False
        )
    finally:
        set_backend(previous)
    reference_alpha = ALPHAS[np.abs(np.log(chosen)[:, None] - np.log(ALPHAS)[None, :]).argmin(axis=1)]

    best_alpha, coefs = ridge_cv_per_target(x, y, splits, ALPHAS)

    np.testing.assert_array_equal(best_alpha, reference_alpha)
    np.testing.assert_allclose(coefs, reference_coefs, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(y.mean(axis=0) - x.mean(axis=0) @ coefs, intercept, rtol=1e-7)


def test_encode_with_eigh_agrees_with_the_himalaya_solver():
    rng = np.random.default_rng(6)
    n_stimuli, n_voxels = 240, 80
    features = rng.standard_normal((n_stimuli, 6))
    item_ids = [f"clip_{i:03d}" for i in range(n_stimuli)]
    runs = rng.permutation(np.arange(n_stimuli) % 12)
    noise = np.geomspace(0.3, 10.0, n_voxels)
    responses = features @ rng.standard_normal((6, n_voxels)) + noise * rng.standard_normal((n_stimuli, n_voxels))
    data = NeuralData("sub-01", responses + 5.0, np.array(item_ids), runs, {"all": np.arange(n_voxels)})

    eigh = encode(features, item_ids, data)
    himalaya = encode(features, item_ids, data, solver="himalaya")

    assert eigh.metadata["solver_used"] == "eigh" and himalaya.metadata["solver_used"] == "himalaya"
    np.testing.assert_allclose(eigh.voxel_r, himalaya.voxel_r, atol=1e-3)
    # himalaya computes in float32 here: it may break a near-tie of the CV error the other way,
    # but only between neighbouring alphas of the grid and rarely
    grid = list(eigh.metadata["alphas"])
    steps = np.abs(np.vectorize(grid.index)(eigh.fold_alphas) - np.vectorize(grid.index)(himalaya.fold_alphas))
    assert steps.max() <= 1 and np.mean(steps == 0) > 0.99
    assert eigh.roi_r["all"] > 0.3


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.zeros((5, 2)), np.zeros((4, 3))), "same number of rows"),
        ((np.zeros((5, 2)), np.array([[0.0, np.nan]] * 5)), r"target\(s\) \[1\]"),
        ((np.full((5, 2), np.inf), np.zeros((5, 1))), "x_train"),
    ],
)
def test_bad_arrays_are_rejected(args, message):
    splits = [(np.arange(3), np.arange(3, 5))]
    with pytest.raises(InputError, match=message):
        ridge_cv_per_target(*args, splits, ALPHAS)


def test_bad_alphas_and_splits_are_rejected():
    x, y = make_problem(n=20, v=3)
    good = [(np.arange(15), np.arange(15, 20))]
    with pytest.raises(InputError, match="alphas"):
        ridge_cv_per_target(x, y, good, np.array([1.0, 0.0]))
    with pytest.raises(InputError, match="empty"):
        ridge_cv_per_target(x, y, [], ALPHAS)
    with pytest.raises(InputError, match="inner split 0: validation"):
        ridge_cv_per_target(x, y, [(np.arange(15), np.arange(15, 21))], ALPHAS)
    with pytest.raises(InputError, match="inner split 1: train"):
        ridge_cv_per_target(x, y, good + [(np.array([], dtype=int), np.arange(5))], ALPHAS)
