"""Group statistics of ROI scores: paired t-tests across subjects, FDR, winners, bootstrap CIs.

Inputs are long tables ``subject, system, roi, r`` (``encoding/roi_r.csv``, or
:meth:`oddoneout.neural.searchlight.SearchlightResult.to_frame` for RSA). As in the study, systems
are compared within each ROI by two-tailed paired t-tests across subjects, and the p-values are
corrected by the Benjamini-Hochberg false discovery rate.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from oddoneout.errors import InputError
from oddoneout.scoring import pearson
from oddoneout.study_folder import ROI_COLUMNS

__all__ = ["bh_fdr", "compare_systems", "against_zero", "winners", "bootstrap_roi_r"]


def bh_fdr(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values).

    ``q_(i) = min_{j >= i} min(1, m p_(j) / j)`` over the p-values sorted ascending; NaN
    p-values are left out of ``m`` and stay NaN.

    Parameters
    ----------
    p_values : array_like of shape (m,)

    Returns
    -------
    ndarray of shape (m,)
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    q = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise InputError("p-values must lie in [0, 1]")
    values = p[finite]
    m = values.size
    if m == 0:
        return q
    order = np.argsort(values, kind="stable")
    scaled = values[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    out = np.empty(m)
    out[order] = adjusted
    q[finite] = out
    return q


def _check_table(roi_table: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ROI_COLUMNS if c not in roi_table.columns]
    if missing:
        raise InputError(f"ROI table lacks column(s) {missing}; expected {list(ROI_COLUMNS)}")
    table = roi_table.loc[:, list(ROI_COLUMNS)].copy()
    table["r"] = pd.to_numeric(table["r"], errors="coerce")
    duplicated = table.duplicated(["subject", "system", "roi"])
    if duplicated.any():
        row = table[duplicated].iloc[0]
        raise InputError(
            f"ROI table has several rows for subject {row.subject!r}, system {row.system!r}, ROI {row.roi!r}"
        )
    return table


def compare_systems(
    roi_table: pd.DataFrame,
    alpha: float = 0.05,
    fdr: str = "all",
    systems: list[str] | None = None,
) -> pd.DataFrame:
    """Paired two-tailed t-tests between every two systems within each ROI, FDR-corrected.

    Parameters
    ----------
    roi_table : DataFrame
        Columns ``subject, system, roi, r``.
    alpha : float, default=0.05
        FDR level for ``significant``.
    fdr : {"all", "roi"}, default="all"
        Correct over all tests of the table, or separately within each ROI.
    systems : list of str, optional
        Systems to compare, in this order (default: order of first appearance).

    Returns
    -------
    DataFrame
        One row per ROI and pair of systems: ``roi, system_a, system_b, n_subjects, mean_diff``
        (mean over subjects of ``r_a - r_b``), ``t, p, q, significant`` (``q < alpha``). Only
        subjects with a finite r for both systems count; with fewer than 2 of them, or zero
        variance of the differences, t and p are NaN.
    """
    if fdr not in ("all", "roi"):
        raise InputError(f"fdr must be 'all' or 'roi', got {fdr!r}")
    table = _check_table(roi_table)
    systems = list(dict.fromkeys(table["system"])) if systems is None else list(systems)
    wide = table.pivot(index=["roi", "subject"], columns="system", values="r")
    unknown = [s for s in systems if s not in wide.columns]
    if unknown:
        raise InputError(f"system(s) {unknown} are not in the ROI table")
    rows = []
    for roi in dict.fromkeys(table["roi"]):
        by_subject = wide.loc[roi]
        for a, b in combinations(systems, 2):
            pair = by_subject[[a, b]].dropna()
            diff = (pair[a] - pair[b]).to_numpy()
            t = p = np.nan
            if diff.size >= 2 and np.std(diff) > 0:
                t, p = stats.ttest_rel(pair[a], pair[b])
            rows.append(
                {
                    "roi": roi,
                    "system_a": a,
                    "system_b": b,
                    "n_subjects": int(diff.size),
                    "mean_diff": float(diff.mean()) if diff.size else np.nan,
                    "t": float(t),
                    "p": float(p),
                }
            )
    result = pd.DataFrame(rows, columns=["roi", "system_a", "system_b", "n_subjects", "mean_diff", "t", "p"])
    if fdr == "all":
        result["q"] = bh_fdr(result["p"].to_numpy())
    else:
        result["q"] = np.nan
        for roi, index in result.groupby("roi", sort=False).groups.items():
            result.loc[index, "q"] = bh_fdr(result.loc[index, "p"].to_numpy())
    result["significant"] = result["q"] < alpha
    return result


def against_zero(roi_table: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """One-sample two-tailed t-test of each system's r against 0 in each ROI, FDR over the table.

    Returns
    -------
    DataFrame
        ``roi, system, n_subjects, mean_r, sem, t, p, q, significant``.
    """
    table = _check_table(roi_table)
    rows = []
    for (roi, system), group in table.groupby(["roi", "system"], sort=False):
        r = group["r"].dropna().to_numpy()
        t = p = np.nan
        if r.size >= 2 and np.std(r) > 0:
            t, p = stats.ttest_1samp(r, 0.0)
        sem = float(np.std(r, ddof=1) / np.sqrt(r.size)) if r.size >= 2 else np.nan
        rows.append(
            {
                "roi": roi,
                "system": system,
                "n_subjects": int(r.size),
                "mean_r": float(r.mean()) if r.size else np.nan,
                "sem": sem,
                "t": float(t),
                "p": float(p),
            }
        )
    result = pd.DataFrame(rows, columns=["roi", "system", "n_subjects", "mean_r", "sem", "t", "p"])
    result["q"] = bh_fdr(result["p"].to_numpy())
    result["significant"] = result["q"] < alpha
    return result


def winners(
    roi_table: pd.DataFrame,
    comparisons: pd.DataFrame | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """The best system of each ROI and whether it beats every other system significantly.

    Parameters
    ----------
    roi_table : DataFrame
        Columns ``subject, system, roi, r``.
    comparisons : DataFrame, optional
        Output of :func:`compare_systems` (computed with defaults if not given).
    alpha : float, default=0.05

    Returns
    -------
    DataFrame
        One row per ROI: ``roi, best_system, mean_r`` (its mean over subjects), ``runner_up,
        n_beaten`` (systems it beats with ``q < alpha`` and a positive mean difference),
        ``n_others, max_q`` (largest q against the others) and ``wins`` (beats all others).
    """
    table = _check_table(roi_table)
    comparisons = compare_systems(table, alpha=alpha) if comparisons is None else comparisons
    means = table.groupby(["roi", "system"], sort=False)["r"].mean()
    rows = []
    for roi in dict.fromkeys(table["roi"]):
        ranking = means.loc[roi].sort_values(ascending=False)
        best = str(ranking.index[0])
        tests = comparisons[
            (comparisons["roi"] == roi) & ((comparisons["system_a"] == best) | (comparisons["system_b"] == best))
        ]
        sign = np.where(tests["system_a"] == best, 1.0, -1.0)
        beaten = (tests["q"] < alpha) & (sign * tests["mean_diff"] > 0)
        rows.append(
            {
                "roi": roi,
                "best_system": best,
                "mean_r": float(ranking.iloc[0]),
                "runner_up": str(ranking.index[1]) if len(ranking) > 1 else None,
                "n_beaten": int(beaten.sum()),
                "n_others": int(len(ranking) - 1),
                "max_q": float(tests["q"].max()) if len(tests) else np.nan,
                "wins": bool(len(ranking) > 1 and beaten.sum() == len(ranking) - 1),
            }
        )
    return pd.DataFrame(rows)


def bootstrap_roi_r(
    observed: np.ndarray,
    predicted: np.ndarray,
    voxels: np.ndarray | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    fold: np.ndarray | None = None,
) -> tuple[float, tuple[float, float], np.ndarray]:
    """Bootstrap over stimuli of an ROI's mean voxel r between held-out predictions and responses.

    Stimuli (rows) are resampled with replacement, the same rows for every voxel, and the
    mean over the ROI's voxels of the Pearson r is recomputed. With ``fold`` given, resampling is
    stratified by test fold and r is computed within each fold and averaged (the default
    ``fold_mean`` score of :func:`oddoneout.neural.encoding.encode`); otherwise r is computed
    over all rows (``concatenated``).

    :class:`oddoneout.neural.encoding.EncodingResult` keeps no predictions; use
    :func:`oddoneout.neural.banded.heldout_predictions` to obtain them.

    Parameters
    ----------
    observed, predicted : ndarray of shape (n_stimuli, n_voxels)
        Held-out responses and predictions.
    voxels : ndarray of int, optional
        The ROI's voxel indices (default: all).
    n_boot : int
    ci : float
        Central interval width (percentile bootstrap).
    seed : int
    fold : ndarray of shape (n_stimuli,), optional
        Test fold of each row.

    Returns
    -------
    r : float
        The ROI's mean r on the original rows.
    interval : (float, float)
        Percentile confidence interval.
    replicates : ndarray of shape (n_boot,)
    """
    observed = np.asarray(observed, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    if observed.shape != predicted.shape or observed.ndim != 2:
        raise InputError(f"observed {observed.shape} and predicted {predicted.shape} must be equal 2-D shapes")
    if voxels is not None:
        observed, predicted = observed[:, voxels], predicted[:, voxels]
    if not 0 < ci < 1:
        raise InputError(f"ci must lie in (0, 1), got {ci}")
    if int(n_boot) != n_boot or n_boot < 1:
        raise InputError(f"n_boot must be a positive integer, got {n_boot!r}")
    n = observed.shape[0]
    groups = [np.arange(n)] if fold is None else [np.flatnonzero(fold == f) for f in np.unique(fold)]
    if fold is not None and np.asarray(fold).shape != (n,):
        raise InputError(f"fold must have one entry per row ({n})")

    def score(rows_per_group: list[np.ndarray]) -> float:
        return float(np.mean([_mean_r(observed[rows], predicted[rows]) for rows in rows_per_group]))

    rng = np.random.default_rng(seed)
    replicates = np.array(
        [score([rng.choice(g, size=g.size, replace=True) for g in groups]) for _ in range(int(n_boot))]
    )
    tail = (1 - ci) / 2
    low, high = np.quantile(replicates, [tail, 1 - tail])
    return score(groups), (float(low), float(high)), replicates


def _mean_r(observed: np.ndarray, predicted: np.ndarray) -> float:
    """Mean over columns of the Pearson r (0 where a column is constant)."""
    return float(pearson(observed, predicted).mean())
