"""Choosing SPoSE's sparsity strength ``l1`` by held-out cross-entropy: the candidate grid and the rule.

:class:`~oddoneout.embed.spose.SPoSE` fits one model per candidate ``l1`` and calls the functions
here to build the candidates (:func:`auto_l1_grid`, :func:`grow_grid`), to choose among them
(:func:`one_se_rule`) and to describe the choice (:func:`selection_table`, :func:`format_selection`).

Why a grid scaled to the data
-----------------------------
The penalty is ``(l1 / n_items) * ||W||_1`` beside the *mean* cross-entropy of the triplets, so
against the summed log-likelihood of ``n_triplets`` judgments it weighs
``l1 * n_triplets / n_items`` per unit of weight: a fixed prior strength (what a Bayesian would
hold fixed while data accumulate) is an ``l1`` proportional to ``n_items / n_triplets``, one over
the number of triplets per item. Measured on triplets sampled from a real embedding (2,372
adjectives x 21 VICE dimensions, ``benchmarks/recovery_real.py``), the best held-out ``l1`` was
0.015-0.02 at 200 triplets per item and 0.0075 at 600: about 3-4.5 divided by the triplets per
item in both. The automatic grid is therefore ``c / (triplets per item)`` for ``c`` in
:data:`AUTO_L1_SCALES` (a factor of 2 apart), grown by factors of 2 past whichever end holds the
lowest held-out loss (at most :data:`MAX_GROWTH` times), so data that want a much weaker or much
stronger penalty still get it.

Why the one-standard-error rule
-------------------------------
Extra dimensions that fit a few items' noise lower the held-out loss by amounts far below its
sampling error (e.g. 0.0004 nats with 9 instead of the true 6 dimensions), so the plain minimum
picks the weakest penalty by chance about as often as not. The rule (Breiman et al. 1984; Hastie
et al. 2009, 7.10) keeps the largest ``l1`` whose mean held-out loss exceeds the lowest by at most
``n_se`` standard errors of the *paired* per-triplet difference (every candidate is scored on the
same triplets).

Why candidates that warn are passed over
----------------------------------------
A candidate whose fit would itself raise a :class:`~oddoneout.errors.FitWarning` (it kept every
initial dimension, kept none, or is worse than chance on held-out triplets) is not chosen while
another candidate fits without one. A weak penalty on nearly deterministic judgments (a rating
scale read by a cosine rule) stops on held-out loss before anything is pruned: all 100 initial
dimensions, a held-out loss about 0.001 nats below the sparse fit's, an embedding whose size is the
arbitrary ``n_dims``. The grid grows past an end only when that end holds the best of the eligible
candidates. When every candidate warns, the rule runs on all of them, and the warning reaches the
user.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from oddoneout.errors import InputError

#: The automatic grid: these multiples of one over the number of triplets per item.
AUTO_L1_SCALES = (1.0, 2.0, 4.0, 8.0, 16.0)
#: How many candidates the automatic grid may add past its ends.
MAX_GROWTH = 6
#: What ``l1`` takes to ask for the automatic grid.
AUTO = "auto"


def triplets_per_item(n_triplets: int, n_items: int) -> float:
    """Judgments per item of the vocabulary (the unit the automatic grid is scaled by)."""
    return n_triplets / max(n_items, 1)


def auto_l1_grid(n_triplets: int, n_items: int) -> list[float]:
    """The starting candidates of ``l1="auto"``: :data:`AUTO_L1_SCALES` over the triplets per item.

    Parameters
    ----------
    n_triplets : int
        Number of training triplets.
    n_items : int
        Size of the vocabulary.

    Returns
    -------
    list of float
        Ascending candidates, rounded to 3 significant digits (so they read well in tables).
    """
    per_item = max(triplets_per_item(n_triplets, n_items), 1.0)
    return [float(f"{scale / per_item:.3g}") for scale in AUTO_L1_SCALES]


def candidate_values(l1: float | str | Sequence[float], n_triplets: int, n_items: int) -> tuple[list[float], bool]:
    """The ascending ``l1`` candidates an ``l1`` parameter asks for, and whether the grid may grow.

    Parameters
    ----------
    l1 : float, "auto" or sequence of float
        One value (fitted as it is), a list of candidates, or ``"auto"`` (:func:`auto_l1_grid`).
    n_triplets, n_items : int
        The data, for the automatic grid.
    """
    if isinstance(l1, str):
        if l1 != AUTO:
            raise InputError(f"l1 must be a number, a list of numbers or {AUTO!r}, got {l1!r}")
        return auto_l1_grid(n_triplets, n_items), True
    if np.ndim(l1) == 0:
        return [float(l1)], False
    values = sorted({float(v) for v in l1})
    if not values:
        raise InputError("l1 needs at least one candidate value")
    return values, False


def eligible_candidates(warned: Sequence[bool] | None, n_candidates: int) -> np.ndarray:
    """The candidates the rule may choose: those without a fit warning, or all when every one warns
    (or ``warned`` is None)."""
    warned = np.zeros(n_candidates, dtype=bool) if warned is None else np.asarray(warned, dtype=bool)
    return ~warned if not warned.all() else np.ones_like(warned)


def grow_grid(
    values: Sequence[float], mean_losses: Sequence[float], warned: Sequence[bool] | None = None
) -> float | None:
    """The next candidate when the lowest held-out loss lies at an end of the (ascending) grid.

    Twice the largest value when the largest is best, half the smallest when the smallest is best,
    ``None`` otherwise (the minimum is bracketed). With ``warned``, the best is taken among the
    :func:`eligible_candidates`.
    """
    eligible = eligible_candidates(warned, len(values))
    best = int(np.argmin(np.where(eligible, mean_losses, np.inf)))
    if len(values) > 1 and best == len(values) - 1:
        return float(f"{values[-1] * 2:.3g}")
    if best == 0:
        return float(f"{values[0] / 2:.3g}")
    return None


def one_se_rule(
    losses: Sequence[np.ndarray], n_se: float, warned: Sequence[bool] | None = None
) -> tuple[int, np.ndarray, np.ndarray]:
    """Choose among candidates (ascending ``l1``) from their per-triplet held-out losses.

    Parameters
    ----------
    losses : sequence of ndarray of shape (n_scored,)
        One array per candidate, scored on the same triplets in the same order.
    n_se : float
        Standard errors of slack (0: the plain minimum).
    warned : sequence of bool, optional
        Whether each candidate's fit raised a fit warning; only the
        :func:`eligible_candidates` may be chosen (and be the best).

    Returns
    -------
    chosen : int
        Index of the largest eligible candidate whose mean loss exceeds the lowest eligible one's by
        at most ``n_se`` standard errors of the paired difference.
    excess, excess_se : ndarray of shape (n_candidates,)
        Mean paired difference to that best candidate, and its standard error.
    """
    if not np.isfinite(n_se) or n_se < 0:
        raise InputError(f"n_se must be a non-negative number, got {n_se}")
    eligible = eligible_candidates(warned, len(losses))
    best = int(np.argmin(np.where(eligible, [loss.mean() for loss in losses], np.inf)))
    differences = [loss - losses[best] for loss in losses]
    excess = np.array([d.mean() for d in differences])
    excess_se = np.array([d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else 0.0 for d in differences])
    as_good = eligible & (excess <= n_se * excess_se + 1e-12)
    return int(np.flatnonzero(as_good)[-1]), excess, excess_se


def selection_table(
    values: Sequence[float],
    losses: Sequence[np.ndarray],
    accuracy: Sequence[float],
    n_dims: Sequence[float],
    n_epochs: Sequence[float],
    warned: Sequence[bool],
    n_se: float,
) -> pd.DataFrame:
    """One row per candidate: ``l1``, ``cross_entropy``, ``accuracy``, ``n_dims``, ``n_epochs``,
    ``warned``, ``excess``, ``excess_se`` and ``chosen`` (by :func:`one_se_rule`), ascending in ``l1``."""
    chosen, excess, excess_se = one_se_rule(losses, n_se, warned)
    return pd.DataFrame(
        {
            "l1": [float(v) for v in values],
            "cross_entropy": [float(loss.mean()) for loss in losses],
            "accuracy": [float(a) for a in accuracy],
            "n_dims": list(n_dims),
            "n_epochs": list(n_epochs),
            "warned": [bool(w) for w in warned],
            "excess": excess,
            "excess_se": excess_se,
            "chosen": np.arange(len(values)) == chosen,
        }
    )


def format_selection(scores: pd.DataFrame, scheme: str, chance: str = "ln 3 = 1.0986") -> str:
    """The candidates and the choice as lines of text (what the estimator prints to stderr).

    ``chance`` is the cross-entropy of guessing, as said in the text (odd-one-out's by default).
    """
    chosen = scores.loc[scores["chosen"], "l1"].item()
    lines = [
        f"l1 = {chosen:g}, chosen from {len(scores)} candidates by held-out cross-entropy on {scheme} "
        f"(the largest l1 within one paired standard error of the best; chance is {chance}"
        + ("; a candidate whose fit warns is passed over" if scores["warned"].any() else "")
        + "):",
        f"  {'l1':>9} {'cross-entropy':>13} {'excess ± SE':>19} {'accuracy':>9} {'dims':>6} {'epochs':>7}",
    ]
    for row in scores.itertuples():
        mark = "  <- chosen" if row.chosen else "  (warns)" if row.warned else ""
        lines.append(
            f"  {row.l1:>9.4g} {row.cross_entropy:>13.5f} {row.excess:>9.5f} ± {row.excess_se:<7.5f} "
            f"{row.accuracy:>9.4f} {row.n_dims:>6.4g} {row.n_epochs:>7.4g}{mark}"
        )
    return "\n".join(lines)
