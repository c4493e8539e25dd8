"""Choosing SPoSE's sparsity strength by held-out loss."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Sequence

from oddoneout.embed.evaluate import cross_entropy, odd_one_out_accuracy
from oddoneout.embed.spose import SPoSE
from oddoneout.errors import InputError
from oddoneout.triplets import Triplets


def select_l1(
    triplets: Triplets,
    l1_values: Sequence[float],
    validation_fraction: float = 0.1,
    seed: int = 0,
    on_fit: Callable[[float], Any] | None = None,
    **params: Any,
) -> tuple[SPoSE, list[dict[str, float]]]:
    """Fit SPoSE once per ``l1`` and keep the model with the lowest held-out cross-entropy.

    The triplets are split once (seeded) into a fitting part and a selection part; every
    candidate is fitted on the same fitting part and scored, after pruning, on the selection
    part, so the comparison is paired.

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
    on_fit : callable, optional
        Called with each ``l1`` before its fit; may return a progress callback for the fit.
    **params
        Other :class:`SPoSE` parameters.

    Returns
    -------
    best : SPoSE
        The fitted model with the lowest selection cross-entropy (ties: the sparser, larger ``l1``).
    scores : list of dict
        Per candidate: ``l1``, ``cross_entropy``, ``accuracy``, ``n_dims``, ``n_epochs``.
    """
    if not l1_values:
        raise InputError("select_l1 needs at least one l1 value")
    fit_part, selection_part = triplets.split(validation_fraction, seed=seed)
    scores, models = [], []
    for l1 in sorted(float(v) for v in l1_values):
        model = SPoSE(l1=l1, seed=seed, **params)
        if on_fit is not None:
            model.progress = on_fit(l1)
        with warnings.catch_warnings():
            # a penalty that prunes every dimension is a legitimate candidate: it scores log(3)
            warnings.filterwarnings("ignore", message=".*fell below prune_threshold", category=RuntimeWarning)
            model.fit(fit_part)
        probs = model.predict_proba(selection_part)
        scores.append(
            {
                "l1": l1,
                "cross_entropy": cross_entropy(probs),
                "accuracy": odd_one_out_accuracy(probs),
                "n_dims": int(model.weights_.shape[1]),
                "n_epochs": int(model.n_epochs_),
            }
        )
        models.append(model)
    best = min(range(len(scores)), key=lambda i: (round(scores[i]["cross_entropy"], 6), -scores[i]["l1"]))
    return models[best], scores
