"""Ridge regression with one penalty per target, chosen by cross-validation, for few features.

With ``n_features`` small (tens) and many targets (voxels), every ridge fit of
a training set is one eigendecomposition ``X^T X = V diag(s) V^T`` of a
``(n_features, n_features)`` matrix: the weights for penalty ``alpha`` are
``V diag(1 / (s + alpha)) V^T X^T Y``. The squared validation error of those
weights is a quadratic form in feature space, column-wise

``||Y_val - X_val W||^2 = ||Y_val||^2 - 2 diag(W^T X_val^T Y_val) + diag(W^T X_val^T X_val W)``,

so neither the weights nor the validation predictions of all alphas are
formed over the validation samples: per split the targets are touched by two
``(n_features, n_samples) x (n_samples, n_targets)`` products, and per alpha
by one ``(n_features, n_features) x (n_features, n_targets)`` product.
Targets are processed in chunks small enough to stay in cache.

All arithmetic is in float64 whatever the input dtype: the expansion above
subtracts terms of the size of ``||Y_val||^2``, and float64 keeps the rounding
error of that subtraction far below the differences between alphas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from oddoneout.errors import InputError

__all__ = ["ridge_cv_per_target", "ridge_cv_errors", "ridge_fit_per_target"]

#: Targets processed at once inside the solvers (a few MB per array: cache-sized).
TARGET_CHUNK = 1024


def ridge_cv_per_target(
    x_train: np.ndarray,
    y_train: np.ndarray,
    inner_splits: Sequence[tuple[np.ndarray, np.ndarray]],
    alphas: np.ndarray,
    fit_intercept: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Choose a ridge penalty per target by cross-validation and refit on all samples.

    For each target the alpha with the lowest cross-validated error (see
    :func:`ridge_cv_errors`) is chosen; ties go to the smallest alpha. The model
    is then refit on all of ``x_train`` with each target's alpha.

    Parameters
    ----------
    x_train : ndarray of shape (n_samples, n_features)
        Features.
    y_train : ndarray of shape (n_samples, n_targets)
        Targets (e.g. voxel responses).
    inner_splits : sequence of (train, validation) index arrays
        Cross-validation splits of the rows of ``x_train``.
    alphas : ndarray of shape (n_alphas,)
        Positive ridge penalties to choose from.
    fit_intercept : bool, default=True
        Center features and targets on the training rows of every fit (each
        inner split and the refit), as an unpenalized intercept does. The
        intercept of the refit model is ``y_train.mean(0) - x_train.mean(0) @ coefs``
        (zero when the caller has centered both). If False, nothing is
        centered and the model has no intercept.

    Returns
    -------
    best_alpha : ndarray of shape (n_targets,), float64
        Chosen alpha of each target (values of ``alphas``).
    coefs : ndarray of shape (n_features, n_targets), float64
        Ridge weights fit on all samples with each target's alpha.

    Raises
    ------
    InputError
        On mismatched shapes, non-finite values, bad alphas or bad splits.
    """
    x, y, alphas = _check_inputs(x_train, y_train, alphas)
    plans = _plan_splits(x, inner_splits, alphas, fit_intercept)
    full = _Decomposition.of(x, fit_intercept)
    best_alpha = np.empty(y.shape[1])
    coefs = np.empty((x.shape[1], y.shape[1]))
    for chunk in _chunks(y.shape[1]):
        y_chunk = np.ascontiguousarray(y[:, chunk], dtype=np.float64)
        errors = _cv_errors(x, y_chunk, plans, alphas)
        best_alpha[chunk] = alphas[np.argmin(errors, axis=0)]
        coefs[:, chunk] = full.coefs(x, y_chunk, best_alpha[chunk])
    return best_alpha, coefs


def ridge_cv_errors(
    x_train: np.ndarray,
    y_train: np.ndarray,
    inner_splits: Sequence[tuple[np.ndarray, np.ndarray]],
    alphas: np.ndarray,
    fit_intercept: bool = True,
) -> np.ndarray:
    """Cross-validated squared error of every alpha on every target.

    The error of a split is the mean squared error over its validation rows;
    the cross-validated error is the mean of the splits' errors (the negated
    criterion of himalaya's ``solve_ridge_cv_svd`` with its default
    ``l2_neg_loss``).

    Parameters
    ----------
    x_train, y_train, inner_splits, alphas, fit_intercept
        As in :func:`ridge_cv_per_target`.

    Returns
    -------
    errors : ndarray of shape (n_alphas, n_targets), float64
        Rows in the order of ``alphas`` as given.
    """
    x, y, sorted_alphas = _check_inputs(x_train, y_train, alphas)
    plans = _plan_splits(x, inner_splits, sorted_alphas, fit_intercept)
    errors = np.empty((sorted_alphas.size, y.shape[1]))
    for chunk in _chunks(y.shape[1]):
        errors[:, chunk] = _cv_errors(x, np.ascontiguousarray(y[:, chunk], dtype=np.float64), plans, sorted_alphas)
    unsorted = np.empty_like(errors)
    unsorted[np.argsort(np.asarray(alphas, dtype=np.float64).ravel(), kind="stable")] = errors
    return unsorted


def ridge_fit_per_target(
    x_train: np.ndarray,
    y_train: np.ndarray,
    alpha: np.ndarray | float,
    fit_intercept: bool = True,
) -> np.ndarray:
    """Ridge weights of each target with its own penalty.

    Parameters
    ----------
    x_train : ndarray of shape (n_samples, n_features)
    y_train : ndarray of shape (n_samples, n_targets)
    alpha : float or ndarray of shape (n_targets,)
        Positive penalty of each target.
    fit_intercept : bool, default=True
        As in :func:`ridge_cv_per_target`.

    Returns
    -------
    coefs : ndarray of shape (n_features, n_targets), float64
    """
    x, y, _ = _check_inputs(x_train, y_train, np.atleast_1d(alpha))
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (y.shape[1],))
    full = _Decomposition.of(x, fit_intercept)
    coefs = np.empty((x.shape[1], y.shape[1]))
    for chunk in _chunks(y.shape[1]):
        coefs[:, chunk] = full.coefs(x, np.ascontiguousarray(y[:, chunk], dtype=np.float64), alpha[chunk])
    return coefs


# ----------------------------------------------------------------------------- internals


def _chunks(n_targets: int) -> list[slice]:
    return [slice(start, min(start + TARGET_CHUNK, n_targets)) for start in range(0, n_targets, TARGET_CHUNK)]


def _check_inputs(x: np.ndarray, y: np.ndarray, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim != 2 or x.shape[1] == 0 or x.shape[0] == 0:
        raise InputError(f"x_train must have shape (n_samples >= 1, n_features >= 1), got {x.shape}")
    if y.ndim != 2 or y.shape[0] != x.shape[0]:
        raise InputError(f"y_train of shape {y.shape} does not match x_train of shape {x.shape} (same number of rows)")
    if not np.all(np.isfinite(x)):
        raise InputError("x_train contains NaN or infinite values")
    finite = np.isfinite(y.sum(axis=0))  # one pass; NaN/inf propagate into the column sum
    if not np.all(finite):
        bad = np.flatnonzero(~finite)
        raise InputError(f"y_train contains NaN or infinite values in target(s) {bad[:5].tolist()}")
    alphas = np.sort(np.atleast_1d(np.asarray(alphas, dtype=np.float64)))
    if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas <= 0):
        raise InputError(f"alphas must be a non-empty 1-D array of positive finite values, got {alphas!r}")
    return x, y, alphas


@dataclass
class _Decomposition:
    """Eigendecomposition of the (centered) Gram matrix of some rows of X."""

    rows: np.ndarray | None  # None: all rows
    x_mean: np.ndarray | None  # None: no centering
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, fit_intercept: bool, rows: np.ndarray | None = None) -> "_Decomposition":
        x_rows = x if rows is None else x[rows]
        x_mean = x_rows.mean(axis=0) if fit_intercept else None
        centered = x_rows if x_mean is None else x_rows - x_mean
        s, v = np.linalg.eigh(centered.T @ centered)
        return cls(rows, x_mean, np.clip(s, 0.0, None), v)  # rounding can make 0 eigenvalues negative

    def projected_xty(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``V^T Xc^T Yc`` over the rows, and the targets' mean over the rows (None without centering)."""
        x_rows, y_rows = (x, y) if self.rows is None else (x[self.rows], y[self.rows])
        xty = x_rows.T @ y_rows
        y_mean = None
        if self.x_mean is not None:
            y_mean = y_rows.mean(axis=0)
            xty -= len(x_rows) * np.outer(self.x_mean, y_mean)
        return self.eigenvectors.T @ xty, y_mean

    def coefs(self, x: np.ndarray, y: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        projected, _ = self.projected_xty(x, y)
        return self.eigenvectors @ (projected / (self.eigenvalues[:, None] + alpha[None, :]))


@dataclass
class _SplitPlan:
    """Everything about one inner split that does not depend on the targets."""

    fit: _Decomposition
    validation: np.ndarray
    complement: bool  # the validation rows are exactly the rows left out of training
    x_validation_raw: np.ndarray  # x[validation]
    x_validation: np.ndarray  # in the eigenbasis, centered on the training mean
    validation_gram: np.ndarray  # x_validation^T x_validation
    shrink: np.ndarray  # (n_alphas, n_features): 1 / (s + alpha)


def _plan_splits(
    x: np.ndarray, splits: Sequence[tuple[np.ndarray, np.ndarray]], alphas: np.ndarray, fit_intercept: bool
) -> list[_SplitPlan]:
    n_samples = x.shape[0]
    if len(splits) == 0:
        raise InputError("inner_splits is empty; at least one (train, validation) split is needed")
    plans = []
    for i, (train, val) in enumerate(splits):
        train, val = np.asarray(train), np.asarray(val)
        for name, index in (("train", train), ("validation", val)):
            if (
                index.ndim != 1
                or index.size == 0
                or not np.issubdtype(index.dtype, np.integer)
                or index.min() < 0
                or index.max() >= n_samples
            ):
                raise InputError(
                    f"inner split {i}: {name} indices must be a non-empty 1-D integer array "
                    f"within [0, {n_samples}), got {index!r}"
                )
        fit = _Decomposition.of(x, fit_intercept, rows=train)
        left_out = np.setdiff1d(np.arange(n_samples), train)
        complement = np.unique(train).size == train.size and np.array_equal(np.sort(val), left_out)
        x_val_raw = x[val]
        x_val = (x_val_raw if fit.x_mean is None else x_val_raw - fit.x_mean) @ fit.eigenvectors
        shrink = 1.0 / (fit.eigenvalues[None, :] + alphas[:, None])
        plans.append(_SplitPlan(fit, val, complement, x_val_raw, x_val, x_val.T @ x_val, shrink))
    return plans


def _cv_errors(x: np.ndarray, y: np.ndarray, plans: list[_SplitPlan], alphas: np.ndarray) -> np.ndarray:
    """Mean over splits of the validation mean squared error, shape (n_alphas, n_targets)."""
    errors = np.zeros((alphas.size, y.shape[1]))
    xty, y_sum = x.T @ y, y.sum(axis=0)
    for plan in plans:
        y_val = y[plan.validation]
        if plan.complement:  # X_train^T Y_train from the full product: no gather of the training rows
            n_train = x.shape[0] - plan.validation.size
            xty_train = xty - plan.x_validation_raw.T @ y_val
            y_mean = None
            if plan.fit.x_mean is not None:
                y_mean = (y_sum - y_val.sum(axis=0)) / n_train
                xty_train -= n_train * np.outer(plan.fit.x_mean, y_mean)
            projected = plan.fit.eigenvectors.T @ xty_train
        else:
            projected, y_mean = plan.fit.projected_xty(x, y)  # V^T X_train^T Y_train
        if y_mean is not None:
            y_val -= y_mean  # a copy: fancy indexing
        cross = projected * (plan.x_validation.T @ y_val)
        split_error = np.einsum("ij,ij->j", y_val, y_val)[None, :] - 2.0 * (plan.shrink @ cross)
        for a in range(alphas.size):
            weights = plan.shrink[a][:, None] * projected  # ridge weights in the eigenbasis
            split_error[a] += np.einsum("ij,ij->j", weights, plan.validation_gram @ weights)
        errors += split_error / plan.validation.size
    return errors / len(plans)
