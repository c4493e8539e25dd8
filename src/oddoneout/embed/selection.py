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
    on_fit: Callable[[float], Any] | None = None,
    **params: Any,
) -> tuple[SPoSE, pd.DataFrame]:
    """Fit SPoSE once per ``l1`` and choose the sparsest fit the held-out data cannot tell from the best.

    The triplets are split once (seeded) into a fitting part and a selection part; every
    candidate is fitted on the same fitting part and scored, after pruning, on the selection
    part, so the comparison is paired. The lowest selection cross-entropy is the reference; a
    candidate is *as good* when its mean per-triplet cross-entropy exceeds the reference's by at
    most ``n_se`` standard errors of that paired difference, and the largest such ``l1`` is
    chosen (the one-standard-error rule; Breiman et al. 1984, Hastie et al. 2009, 7.10).

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
        Share of ``triplets`` held out for the selection.
    seed : int
        Seed of the split and of every fit.
    n_se : float
        Standard errors of slack (0: the plain minimum).
    on_fit : callable, optional
        Called with each ``l1`` before its fit; may return a progress callback for the fit.
    **params
        Other :class:`SPoSE` parameters.

    Returns
    -------
    model : SPoSE
        The chosen fitted model.
    scores : DataFrame
        One row per ``l1`` (ascending): ``l1``, ``cross_entropy``, ``accuracy``, ``n_dims``,
        ``n_epochs``, ``excess`` (mean paired difference to the best), ``excess_se`` and
        ``chosen`` (bool).
    """
    if not l1_values:
        raise InputError("select_l1 needs at least one l1 value")
    if not np.isfinite(n_se) or n_se < 0:
        raise InputError(f"n_se must be a non-negative number, got {n_se}")
    fit_part, selection_part = triplets.split(validation_fraction, seed=seed)
    models, losses, rows = [], [], []
    for l1 in sorted(float(v) for v in l1_values):
        model = SPoSE(l1=l1, seed=seed, **params)
        if on_fit is not None:
            model.progress = on_fit(l1)
        with warnings.catch_warnings():
            # a penalty that prunes every dimension is a legitimate candidate: it scores log(3)
            warnings.filterwarnings("ignore", message=".*fell below prune_threshold", category=RuntimeWarning)
            model.fit(fit_part)
        probs = model.predict_proba(selection_part)
        losses.append(-np.log(np.clip(probs[:, 2], 1e-15, None)))
        rows.append(
            {
                "l1": l1,
                "cross_entropy": cross_entropy(probs),
                "accuracy": odd_one_out_accuracy(probs),
                "n_dims": int(model.weights_.shape[1]),
                "n_epochs": int(model.n_epochs_),
            }
        )
        models.append(model)
    scores = pd.DataFrame(rows)
    best = int(np.argmin([loss.mean() for loss in losses]))
    differences = [loss - losses[best] for loss in losses]
    scores["excess"] = [float(d.mean()) for d in differences]
    scores["excess_se"] = [float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else 0.0 for d in differences]
    as_good = scores["excess"] <= n_se * scores["excess_se"] + 1e-12
    chosen = int(np.flatnonzero(as_good.to_numpy())[-1])
    scores["chosen"] = np.arange(len(scores)) == chosen
    return models[chosen], scores
