"""Correlation and fit scores shared by every analysis: Pearson r, R^2 and z-scoring statistics.

The constant rule
-----------------
A correlation is undefined for a column (or row) with no spread. In floating point a column that
is constant in exact arithmetic (e.g. a ridge prediction that is the intercept alone, or the mean
of a constant column) keeps tiny residues after centring, and an r computed on them is noise. So
one rule decides, everywhere in the package, whether a column varies:

    ``||x - mean(x)|| > CONSTANT_RTOL * ||x||``

i.e. its spread about its mean is more than one part in a million of its size (float32
resolution). An all-zero column is constant. What an undefined r is reported as (0 for
per-voxel encoding scores, NaN for a comparison of matrices) is each caller's choice, given as
``undefined``. The same rule gives a constant feature column a z-scoring scale of 1
(:func:`zscore_stats`).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CONSTANT_RTOL",
    "varies",
    "pearson",
    "pearson_matrix",
    "pearson_from_sums",
    "r2",
    "zscore_stats",
]

#: Relative spread at or below which a column counts as constant (see the module docstring).
CONSTANT_RTOL = 1e-6


def varies(values: np.ndarray, axis: int = 0) -> np.ndarray | bool:
    """Whether each column (``axis=0``) or row (``axis=1``) of ``values`` has a spread, by the constant rule.

    Parameters
    ----------
    values : ndarray
        1-D (one vector: a bool is returned) or 2-D.
    axis : int, default=0
        Axis along which the observations run.

    Returns
    -------
    bool or ndarray of bool
    """
    values = np.asarray(values, dtype=np.float64)
    centred = values - values.mean(axis=axis, keepdims=True)
    return _norm(centred, axis) > CONSTANT_RTOL * _norm(values, axis)


def pearson(x: np.ndarray, y: np.ndarray, axis: int = 0, undefined: float = 0.0) -> np.ndarray | float:
    """Pearson r of paired columns (``axis=0``) or rows (``axis=1``) of ``x`` and ``y``.

    Parameters
    ----------
    x, y : ndarray of one shape
        1-D vectors (a float is returned) or 2-D batches of vectors.
    axis : int, default=0
        Axis along which the observations run.
    undefined : float, default=0.0
        The r of a pair in which either vector is constant (module docstring).

    Returns
    -------
    float or ndarray
        ``r[k] = corr(x[:, k], y[:, k])`` for ``axis=0``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"pearson: shapes differ, {x.shape} and {y.shape}")
    x_centred = x - x.mean(axis=axis, keepdims=True)
    y_centred = y - y.mean(axis=axis, keepdims=True)
    x_norm, y_norm = _norm(x_centred, axis), _norm(y_centred, axis)
    ok = (x_norm > CONSTANT_RTOL * _norm(x, axis)) & (y_norm > CONSTANT_RTOL * _norm(y, axis))
    numerator = (x_centred * y_centred).sum(axis=axis)
    if x.ndim == 1:
        return float(numerator / (x_norm * y_norm)) if ok else float(undefined)
    r = np.full(numerator.shape, float(undefined))
    r[ok] = numerator[ok] / (x_norm[ok] * y_norm[ok])
    return r


def pearson_matrix(x: np.ndarray, y: np.ndarray, undefined: float = np.nan) -> np.ndarray:
    """Pearson r of every column of ``x`` with every column of ``y`` (rows are observations).

    Parameters
    ----------
    x : ndarray of shape (n, p)
    y : ndarray of shape (n, q)
    undefined : float, default=NaN
        The r of a pair in which either column is constant.

    Returns
    -------
    ndarray of shape (p, q)
        Clipped to [-1, 1].
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x_centred = x - x.mean(axis=0)
    y_centred = y - y.mean(axis=0)
    x_norm, y_norm = _norm(x_centred, 0), _norm(y_centred, 0)
    x_ok = x_norm > CONSTANT_RTOL * _norm(x, 0)
    y_ok = y_norm > CONSTANT_RTOL * _norm(y, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (x_centred.T @ y_centred) / np.outer(x_norm, y_norm)
    r[~(x_ok[:, None] & y_ok[None, :])] = undefined
    return np.clip(r, -1.0, 1.0)


def pearson_from_sums(
    n: float, sx: float, sy: float, sxx: float, syy: float, sxy: float, undefined: float = np.nan
) -> float:
    """Pearson r of ``n`` pairs from their sums ``sum x``, ``sum y``, ``sum x^2``, ``sum y^2``, ``sum x y``.

    The constant rule reads ``sum (x - mean)^2 <= CONSTANT_RTOL^2 * sum x^2`` here.
    """
    var_x = sxx - sx * sx / n
    var_y = syy - sy * sy / n
    limit = CONSTANT_RTOL**2
    if var_x <= limit * max(sxx, 1e-300) or var_y <= limit * max(syy, 1e-300):
        return float(undefined)
    return float((sxy - sx * sy / n) / np.sqrt(var_x * var_y))


def r2(observed: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Column-wise ``1 - SS_res / SS_tot`` around the mean of each observed column; 0 where that column is constant.

    Parameters
    ----------
    observed, predicted : ndarray of shape (n, k)

    Returns
    -------
    ndarray of shape (k,)
        May be negative.
    """
    residual = ((observed - predicted) ** 2).sum(axis=0)
    total = ((observed - observed.mean(axis=0)) ** 2).sum(axis=0)
    out = np.zeros(observed.shape[1])
    ok = total > CONSTANT_RTOL**2 * (observed * observed).sum(axis=0)
    out[ok] = 1.0 - residual[ok] / total[ok]
    return out


def zscore_stats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations; a constant column (the constant rule) gets a scale of 1.

    Parameters
    ----------
    values : ndarray of shape (n, k)

    Returns
    -------
    mean, scale : ndarray of shape (k,)
    """
    mean = values.mean(axis=0)
    scale = values.std(axis=0)
    scale[scale <= CONSTANT_RTOL * np.sqrt(np.mean(values * values, axis=0))] = 1.0
    return mean, scale


def _norm(values: np.ndarray, axis: int) -> np.ndarray:
    return np.sqrt((values * values).sum(axis=axis))
