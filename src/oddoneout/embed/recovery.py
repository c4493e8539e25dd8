"""How well a fitted embedding recovers a known, generating one (simulations and benchmarks).

When triplets are sampled from a known embedding (:func:`oddoneout.triplets.sample_triplets`), a fit
can be judged on the generating dimensions it finds. Not every generating dimension can be found
from a given number of triplets, nor matters equally for the judgments: a dimension is *important*
when zeroing it costs the generating model at least :data:`IMPORTANT_ACCURACY_LOSS` of held-out
odd-one-out accuracy (:func:`dimension_importance`), and a generating dimension is *found* when some
learned dimension correlates with it over items at r >= :data:`MATCH_R` (:func:`best_match_r`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oddoneout.embed.evaluate import choice_scores
from oddoneout.scoring import pearson_matrix
from oddoneout.triplets import Triplets

#: Zeroing an important generating dimension costs at least this share of held-out accuracy (0.5 points).
IMPORTANT_ACCURACY_LOSS = 0.005
#: A generating dimension is found when a learned one correlates with it at least this much.
MATCH_R = 0.9


def best_match_r(truth: np.ndarray, learned: np.ndarray) -> np.ndarray:
    """For every generating dimension, the highest Pearson r (over items) with any learned dimension.

    Parameters
    ----------
    truth : ndarray of shape (n_items, n_true)
        The generating embedding.
    learned : ndarray of shape (n_items, n_learned)
        A fitted embedding over the same items in the same order.

    Returns
    -------
    ndarray of shape (n_true,)
        Constant columns correlate 0 with everything; without learned dimensions every r is 0.
    """
    truth, learned = np.asarray(truth, dtype=np.float64), np.asarray(learned, dtype=np.float64)
    if truth.shape[0] != learned.shape[0]:
        raise ValueError(f"truth has {truth.shape[0]} items, learned {learned.shape[0]}")
    if learned.shape[1] == 0:
        return np.zeros(truth.shape[1])
    return pearson_matrix(truth, learned, undefined=0.0).max(axis=1)


def dimension_importance(weights: np.ndarray, triplets: Triplets, temperature: float = 1.0) -> np.ndarray:
    """The held-out accuracy the generating model loses when each of its dimensions is zeroed.

    Parameters
    ----------
    weights : ndarray of shape (n_items, n_dims)
        The generating embedding.
    triplets : Triplets
        Held-out judgments drawn from it (the more, the less noisy the losses).
    temperature : float
        The choice rule's softmax temperature the judgments were drawn with.

    Returns
    -------
    ndarray of shape (n_dims,)
        Accuracy of the full model minus that of the model without the dimension (a share, not
        points; negative when removing the dimension helps on these triplets).
    """
    full = choice_scores(weights, triplets, temperature)[0]
    losses = np.empty(weights.shape[1])
    for dim in range(weights.shape[1]):
        ablated = np.array(weights, dtype=np.float64)
        ablated[:, dim] = 0.0
        losses[dim] = full - choice_scores(ablated, triplets, temperature)[0]
    return losses


@dataclass(frozen=True)
class Recovery:
    """Which generating dimensions a fit found.

    Attributes
    ----------
    match_r : ndarray of shape (n_true,)
        :func:`best_match_r` of every generating dimension.
    important : ndarray of bool, shape (n_true,)
        Which generating dimensions are important.
    """

    match_r: np.ndarray
    important: np.ndarray

    @property
    def important_found(self) -> int:
        """Important generating dimensions matched at r >= :data:`MATCH_R`."""
        return int((self.match_r[self.important] >= MATCH_R).sum())

    @property
    def weaker_found(self) -> int:
        """The other generating dimensions matched at r >= :data:`MATCH_R`."""
        return int((self.match_r[~self.important] >= MATCH_R).sum())

    @property
    def min_important_r(self) -> float:
        """The lowest best-match r of an important dimension (NaN without any)."""
        return float(self.match_r[self.important].min()) if self.important.any() else float("nan")


def recovery(truth: np.ndarray, learned: np.ndarray, importance: np.ndarray) -> Recovery:
    """Best-match r of every generating dimension, and which are important (from :func:`dimension_importance`)."""
    return Recovery(best_match_r(truth, learned), np.asarray(importance) >= IMPORTANT_ACCURACY_LOSS)
