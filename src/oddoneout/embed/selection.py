"""Choosing SPoSE's sparsity strength by held-out loss."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from oddoneout.embed.evaluate import cross_entropy, odd_one_out_accuracy
from oddoneout.embed.spose import SPoSE
from oddoneout.errors import InputError
from oddoneout.triplets import Triplets


def select_l1(
    triplets: Triplets,
    l1_values: Sequence[float],
    validation_fraction: float = 0.1,
    seed: int = 0,
    n_se: float = 1.0,
    on_fit: Callable[[str], Any] | None = None,
    n_folds: int = 1,
    **params: Any,
) -> tuple[SPoSE, pd.DataFrame]:
    """Fit SPoSE once per ``l1`` and choose the sparsest fit the held-out data cannot tell from the best.

    With ``n_folds = 1`` the triplets are split once (seeded) into a fitting part and a selection
    part; every candidate is fitted on the same fitting part and scored, after pruning, on the
    selection part. With ``n_folds = K >= 2`` they are split into K folds (seeded) and every
    candidate is fitted K times, each time scored on the fold it did not see, so every triplet
    gets one held-out loss per candidate (K-fold cross-validation); the chosen ``l1`` is then
    refitted on all the triplets. Either way the comparison is paired (the same triplets score
    every candidate). The lowest mean held-out cross-entropy is the reference; a candidate is
    *as good* when its mean per-triplet cross-entropy exceeds the reference's by at most ``n_se``
    standard errors of that paired difference, and the largest such ``l1`` is chosen (the
    one-standard-error rule; Breiman et al. 1984, Hastie et al. 2009, 7.10).

    With ``relax=True`` (passed on to :class:`SPoSE`) every candidate is scored after its relaxed
    refit, so the comparison is between supports rather than between amounts of shrinkage: on dense
    planted embeddings the penalised fits' held-out loss preferred 7-8 dimensions (the shrinkage of
    the true weights at the ``l1`` that leaves 6 costs more than the extra dimensions), the relaxed
    ones the true 6 (tests/test_recovery.py).

    Why not the plain minimum (``n_se=0``)? Extra dimensions that fit a few items' noise lower the
    selection loss by amounts far below its sampling error (e.g. 0.0004 nats with 9 instead of
    the true 6 dimensions), so the minimum picks the weakest penalty by chance about as often as
    not; the rule resolves such near-ties towards sparsity.

    Parameters
    ----------
    triplets : Triplets
        Training triplets (the test set must not be among them).
    l1_values : sequence of float
        Candidate sparsity strengths.
    validation_fraction : float
        With ``n_folds = 1``: share of ``triplets`` held out for the selection.
    seed : int
        Seed of the split (or folds) and of every fit.
    n_se : float
        Standard errors of slack (0: the plain minimum).
    on_fit : callable, optional
        Called before every fit with a label (``"0.01"``, or ``"0.01 fold 2/5"`` with folds);
        may return a progress callback for the fit.
    n_folds : int
        1 for a single held-out split, K >= 2 for K-fold cross-validation.
    **params
        Other :class:`SPoSE` parameters.

    Returns
    -------
    model : SPoSE
        The chosen fitted model (with folds: refitted on all ``triplets``).
    scores : DataFrame
        One row per ``l1`` (ascending): ``l1``, ``cross_entropy``, ``accuracy``, ``n_dims``
        (with folds: the mean over folds), ``n_epochs``, ``excess`` (mean paired difference to
        the best), ``excess_se`` and ``chosen`` (bool).
    """
    if not l1_values:
        raise InputError("select_l1 needs at least one l1 value")
    if not np.isfinite(n_se) or n_se < 0:
        raise InputError(f"n_se must be a non-negative number, got {n_se}")
    if not isinstance(n_folds, (int, np.integer)) or n_folds < 1 or n_folds > len(triplets):
        raise InputError(f"n_folds must be an integer from 1 to the number of triplets, got {n_folds!r}")
    if n_folds == 1:
        fit_part, selection_part = triplets.split(validation_fraction, seed=seed)
        held_out = [(fit_part, selection_part, np.arange(len(selection_part)))]
        n_scored = len(selection_part)
    else:
        folds = [np.sort(f) for f in np.array_split(np.random.default_rng(seed).permutation(len(triplets)), n_folds)]
        held_out = [
            (triplets.subset(np.sort(np.concatenate(folds[:k] + folds[k + 1 :]))), triplets.subset(fold), fold)
            for k, fold in enumerate(folds)
        ]
        n_scored = len(triplets)
    models, losses, rows = [], [], []
    for l1 in sorted(float(v) for v in l1_values):
        probs = np.empty((n_scored, 3))
        fold_dims, fold_epochs = [], []
        for k, (fit_part, selection_part, scored_rows) in enumerate(held_out):
            label = f"{l1:g}" if n_folds == 1 else f"{l1:g} fold {k + 1}/{n_folds}"
            model = _fit_quietly(SPoSE(l1=l1, seed=seed, **params), fit_part, on_fit, label)
            probs[scored_rows] = model.predict_proba(selection_part)
            fold_dims.append(model.weights_.shape[1])
            fold_epochs.append(model.n_epochs_)
        losses.append(-np.log(np.clip(probs[:, 2], 1e-15, None)))
        rows.append(
            {
                "l1": l1,
                "cross_entropy": cross_entropy(probs),
                "accuracy": odd_one_out_accuracy(probs),
                "n_dims": float(np.mean(fold_dims)) if n_folds > 1 else int(fold_dims[0]),
                "n_epochs": float(np.mean(fold_epochs)) if n_folds > 1 else int(fold_epochs[0]),
            }
        )
        if n_folds == 1:
            models.append(model)
    scores = pd.DataFrame(rows)
    best = int(np.argmin([loss.mean() for loss in losses]))
    differences = [loss - losses[best] for loss in losses]
    scores["excess"] = [float(d.mean()) for d in differences]
    scores["excess_se"] = [float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else 0.0 for d in differences]
    as_good = scores["excess"] <= n_se * scores["excess_se"] + 1e-12
    chosen = int(np.flatnonzero(as_good.to_numpy())[-1])
    scores["chosen"] = np.arange(len(scores)) == chosen
    if n_folds == 1:
        return models[chosen], scores
    chosen_l1 = float(scores["l1"][chosen])
    final = _fit_quietly(SPoSE(l1=chosen_l1, seed=seed, **params), triplets, on_fit, f"{chosen_l1:g} (all)")
    return final, scores


def _fit_quietly(model: SPoSE, triplets: Triplets, on_fit: Callable[[str], Any] | None, label: str) -> SPoSE:
    """Fit ``model``; a penalty that prunes every dimension is a legitimate candidate (it scores log(3))."""
    if on_fit is not None:
        model.progress = on_fit(label)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*fell below prune_threshold", category=RuntimeWarning)
        model.fit(triplets)
    return model
