"""Behavioural evaluation of embeddings: accuracy, cross-entropy, noise ceilings.

Conventions
-----------
Predicted probabilities are arrays of shape (n, n_shown) aligned with the columns of a
:class:`~oddoneout.triplets.Triplets`: column ``p`` holds the predicted probability that the
item in column ``p`` is the odd one out (or, for anchor and ranked trials, the first choice;
the reference column holds 0). The observed choice is always the trial type's
``chosen_column`` (column 2 for odd-one-out, the SPoSE convention; column 1 for anchor and
ranked trials), so a prediction is right when that column has the largest probability.

Per trial type
--------------
- accuracy: the (first) choice predicted right; chance 1/3 for odd-one-out, 1/2 for an anchor
  triplet, 1/n for a ranked trial of n options (only its first choice counts);
- cross-entropy: minus the mean log-probability of the whole observed answer (for a ranking,
  the Plackett-Luce probability of the ranked options in order); chance ln 3, ln 2 and
  ``sum_{r<k} ln(n - r)``.

Ties
----
Two columns tie when their probabilities are equal up to floating-point noise
(``numpy.isclose`` with ``rtol=1e-9, atol=1e-12``). An embedding in which an item has no
weight at all, for example, predicts exactly 1/3 for each column. Two tie rules exist:

``"split"`` (default)
    A triplet where ``k`` columns share the maximum earns ``1/k`` if column 2 is among them,
    i.e. the expected accuracy of breaking the tie at random. A model with no information
    therefore scores exactly 1/3, the chance level.
``"error"``
    A tie counts as wrong, as in the original SPoSE code (which did so silently). This
    rule is biased below chance for uninformative models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.triplets import ODD_ONE_OUT, Triplets, repeated_item_rows

TIE_RULES = ("split", "error")

#: The cross-entropy of guessing an odd-one-out triplet (each of the three equally likely): ln 3 nats.
CHANCE_CROSS_ENTROPY = float(np.log(3.0))

# Column of the observed (chosen) odd one out in the triplets' canonical layout.
_CHOSEN = ODD_ONE_OUT.chosen_column

# Probabilities closer than this count as tied (see the module docstring).
_TIE_RTOL = 1e-9
_TIE_ATOL = 1e-12
# Floor on predicted probabilities in the cross-entropy, so that a probability that
# underflowed to 0 gives a large finite loss (-log(1e-15) ~ 34.5) instead of inf.
_PROB_FLOOR = 1e-15


def check_probabilities(probs: np.ndarray, name: str = "probs", n_columns: int | None = 3) -> np.ndarray:
    """Validate predicted choice probabilities and return them as float64.

    Parameters
    ----------
    probs : array-like of shape (n, n_columns)
        Non-negative, finite, rows summing to 1 (within 1e-6).
    name : str
        Name used in error messages.
    n_columns : int, optional
        Columns required (3: odd-one-out triplets); ``None`` accepts any number from 2.

    Raises
    ------
    InputError
        On a wrong shape, no rows, a NaN or infinite value, a negative value or a row
        that does not sum to 1; the message names the first offending row.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or (probs.shape[1] != n_columns if n_columns else probs.shape[1] < 2):
        raise InputError(f"{name} must have shape (n, {n_columns or 'n_shown'}), got {probs.shape}")
    if probs.shape[0] == 0:
        raise InputError(f"{name}: no rows")
    bad = np.flatnonzero(~np.isfinite(probs).all(axis=1))
    if bad.size:
        raise InputError(f"{name}: row {int(bad[0])} has a NaN or infinite value ({bad.size} such rows)")
    bad = np.flatnonzero((probs < 0).any(axis=1))
    if bad.size:
        raise InputError(f"{name}: row {int(bad[0])} has a negative probability ({bad.size} such rows)")
    bad = np.flatnonzero(np.abs(probs.sum(axis=1) - 1.0) > 1e-6)
    if bad.size:
        row = int(bad[0])
        raise InputError(f"{name}: row {row} sums to {probs[row].sum():.6g}, not 1 ({bad.size} such rows)")
    return probs


def tied_maximum(probs: np.ndarray) -> np.ndarray:
    """Boolean mask of the shape of ``probs``: which columns share each row's maximum probability."""
    probs = np.asarray(probs, dtype=np.float64)
    row_max = probs.max(axis=1, keepdims=True)
    return np.isclose(probs, row_max, rtol=_TIE_RTOL, atol=_TIE_ATOL)


def odd_one_out_credit(probs: np.ndarray, tie_rule: str = "split") -> np.ndarray:
    """Per-triplet credit (between 0 and 1) for predicting column 2 as the odd one out.

    Parameters
    ----------
    probs : ndarray of shape (n, 3)
        Predicted probability that each column is the odd one out.
    tie_rule : {"split", "error"}
        How a tie for the maximum is scored (see the module docstring).

    Returns
    -------
    ndarray of shape (n,)
        1 for a right prediction, 0 for a wrong one, ``1/k`` for a ``k``-way tie that
        includes column 2 under the ``"split"`` rule.
    """
    return choice_credit(check_probabilities(probs), _CHOSEN, tie_rule)


def choice_credit(probs: np.ndarray, chosen_column: int, tie_rule: str = "split") -> np.ndarray:
    """Per-trial credit (between 0 and 1) for predicting the observed choice, any trial type.

    Parameters
    ----------
    probs : ndarray of shape (n, n_shown)
        Predicted probability of each column (see the module's conventions).
    chosen_column : int
        Column of the observed (first) choice: the trial type's ``chosen_column``.
    tie_rule : {"split", "error"}
        How a tie for the maximum is scored (see the module docstring).

    Returns
    -------
    ndarray of shape (n,)
    """
    if tie_rule not in TIE_RULES:
        raise InputError(f"tie_rule must be one of {TIE_RULES}, got {tie_rule!r}")
    probs = check_probabilities(probs, n_columns=None)
    at_max = tied_maximum(probs)
    n_tied = at_max.sum(axis=1)
    if tie_rule == "split":
        return at_max[:, chosen_column] / n_tied
    return (at_max[:, chosen_column] & (n_tied == 1)).astype(np.float64)


def odd_one_out_accuracy(probs: np.ndarray, tie_rule: str = "split") -> float:
    """Share of triplets whose observed odd one out (column 2) has the highest predicted probability.

    Parameters
    ----------
    probs : ndarray of shape (n, 3)
        Predicted probability that each column is the odd one out.
    tie_rule : {"split", "error"}
        ``"split"`` gives ``1/k`` credit when ``k`` columns tie for the maximum and column 2
        is one of them (chance is exactly 1/3); ``"error"`` counts every tie as wrong.

    Returns
    -------
    float
        Accuracy in [0, 1].
    """
    return float(odd_one_out_credit(probs, tie_rule).mean())


def cross_entropy(probs: np.ndarray, targets: np.ndarray | None = None, chosen_column: int | None = None) -> float:
    """Mean cross-entropy (nats) of predicted choice probabilities.

    Parameters
    ----------
    probs : ndarray of shape (n, 3)
        Predicted probability that each column is the odd one out (with ``chosen_column``:
        shape (n, n_shown), the probability that each column is the choice).
    targets : ndarray of the shape of ``probs``, optional
        Soft labels (rows summing to 1). ``None`` uses the hard choice: column 2.
    chosen_column : int, optional
        Column of the observed choice of another trial type than odd-one-out (see
        :attr:`~oddoneout.triplets.TrialType.chosen_column`); ``None``: an odd-one-out triplet.

    Returns
    -------
    float
        ``mean_i -sum_p targets[i, p] * log(probs[i, p])``; with hard targets
        ``mean_i -log(probs[i, 2])``. Probabilities are floored at 1e-15 so the result is
        finite. Chance (uniform predictions) gives ``log(3)``.
    """
    n_columns = 3 if chosen_column is None else None
    probs = check_probabilities(probs, n_columns=n_columns)
    log_probs = np.log(np.maximum(probs, _PROB_FLOOR))
    if targets is None:
        return float(-log_probs[:, _CHOSEN if chosen_column is None else chosen_column].mean())
    targets = check_probabilities(targets, name="targets", n_columns=n_columns)
    if targets.shape != probs.shape:
        raise InputError(f"targets shape {targets.shape} does not match probs {probs.shape}")
    # 0 * log(p) is 0 even where p underflowed, hence the explicit mask.
    terms = np.where(targets > 0, targets * log_probs, 0.0)
    return float(-terms.sum(axis=1).mean())


def choice_scores(features: np.ndarray, trials: Triplets, temperature: float = 1.0) -> tuple[float, float]:
    """Accuracy (ties split) and cross-entropy of the choice rule on ``features`` for trials of any type.

    Parameters
    ----------
    features : ndarray of shape (n_items, n_features)
        One vector per item of ``trials.item_ids``.
    trials : Triplets
        Judgments whose indices are rows of ``features``.
    temperature : float
        The choice rule's softmax temperature.

    Returns
    -------
    (float, float)
        Accuracy as :func:`choice_credit` (for odd-one-out :func:`odd_one_out_accuracy`) and the
        mean cross-entropy of the whole answer (see the module's "Per trial type").
    """
    kind = trials.trial_type
    probs = kind.probabilities(features, trials.indices, temperature)
    accuracy = float(choice_credit(probs, kind.chosen_column).mean())
    if kind.n_ranked > 1:
        return accuracy, float(-kind.log_likelihood(features, trials.indices, temperature).mean())
    return accuracy, cross_entropy(probs, chosen_column=None if kind == ODD_ONE_OUT else kind.chosen_column)


def bootstrap_ci(
    values: np.ndarray, n_bootstrap: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean.

    Parameters
    ----------
    values : ndarray of shape (n,)
        Independent observations (e.g. per-triplet credits, per-group agreements).
    n_bootstrap : int
        Number of resamples (with replacement, size ``n``).
    seed : int
        Seed of the resampling.
    level : float
        Confidence level in (0, 1).

    Returns
    -------
    (float, float)
        Lower and upper bounds. A constant sample gives exactly ``(c, c)``; a single
        value ``c`` gives ``(c, c)`` as well.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise InputError(f"bootstrap values must be a non-empty 1-d array, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise InputError(f"bootstrap values: element {int(np.flatnonzero(~np.isfinite(values))[0])} is not finite")
    if not 0.0 < level < 1.0:
        raise InputError(f"level must be in (0, 1), got {level}")
    if int(n_bootstrap) < 1:
        raise InputError(f"n_bootstrap must be at least 1, got {n_bootstrap}")
    if values.min() == values.max():
        # Resampled means of a constant differ from it only by rounding.
        return float(values[0]), float(values[0])
    # Resample in batches so memory stays near 32 MB whatever the sample size.
    batch = max(1, (1 << 22) // values.size)
    result = stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=int(n_bootstrap),
        batch=batch,
        confidence_level=level,
        method="percentile",
        vectorized=True,
        random_state=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return float(low), float(high)


def evaluate_embedding(
    embedding: Embedding, triplets: Triplets, n_bootstrap: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Accuracy and cross-entropy of an embedding on (held-out) trials of any trial type.

    The trial type's choice rule on the embedding's dot-product similarity predicts the
    answers (odd-one-out: the softmax of the remaining pair's similarity; anchor and ranked
    trials: Plackett-Luce over the reference's similarity to each option). Scores use the
    observed (hard) choices; when the trials carry soft labels, their cross-entropy is reported too.

    Parameters
    ----------
    embedding : Embedding
    triplets : Triplets
        Judgments to predict; re-expressed over the embedding's item ids.
    n_bootstrap : int
        Resamples of the triplets for the accuracy confidence interval.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``accuracy`` (tie rule ``"split"``), ``accuracy_ci`` ([low, high], 95 % percentile
        bootstrap over triplets), ``cross_entropy`` (nats, hard choices), ``n_triplets``,
        ``n_ties`` (triplets whose maximum is shared by several columns) and, when
        ``triplets.probs`` exists, ``cross_entropy_soft``; for trials other than odd-one-out
        also ``trial_type`` and ``chance_cross_entropy``.

    Raises
    ------
    InputError
        If the triplets use an item id the embedding lacks.
    """
    aligned = triplets.reindex(embedding.item_ids)
    kind = aligned.trial_type
    probs = kind.probabilities(embedding.weights, aligned.indices)
    credit = choice_credit(probs, kind.chosen_column, "split")
    low, high = bootstrap_ci(credit, n_bootstrap=n_bootstrap, seed=seed)
    result: dict[str, Any] = {
        "accuracy": float(credit.mean()),
        "accuracy_ci": [low, high],
        "cross_entropy": choice_scores(embedding.weights, aligned)[1],
        "n_triplets": len(aligned),
        "n_ties": int((tied_maximum(probs).sum(axis=1) > 1).sum()),
    }
    if aligned.probs is not None:
        column = None if kind == ODD_ONE_OUT else kind.chosen_column
        result["cross_entropy_soft"] = cross_entropy(probs, aligned.probs, column)
    if kind != ODD_ONE_OUT:
        result["trial_type"] = kind.spec
        result["chance_cross_entropy"] = kind.chance_cross_entropy
    return result


def noise_ceiling(
    item_triplets: np.ndarray, odd_ids: np.ndarray, n_bootstrap: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Noise ceiling of odd-one-out accuracy from repeated judgments of the same triplet.

    Judgments are grouped by their unordered triplet of items. For every group with at
    least two judgments, the agreement is the share of its judgments that pick the group's
    modal (most frequent) odd one out: ``max_count / n``. This is the accuracy of the best
    possible deterministic predictor of that group, and, when several answers tie for the
    mode, also the expected agreement with one modal answer picked at random, so ties need
    no special rule. The ceiling is the mean over groups (each triplet weighs the same).

    Parameters
    ----------
    item_triplets : array-like of shape (n, 3)
        Item ids (strings or integers) of each judged triplet, in any order.
    odd_ids : array-like of shape (n,)
        The item chosen as the odd one out in each judgment; must be one of its triplet.
    n_bootstrap : int
        Resamples of the groups for the confidence interval.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``noise_ceiling`` (float), ``noise_ceiling_ci`` ([low, high], 95 % percentile
        bootstrap over groups), ``pairwise_agreement`` (mean over groups of the
        probability that two different judgments of the triplet agree:
        ``sum_c c (c - 1) / (n (n - 1))``), ``n_repeated_triplets`` (groups with two or
        more judgments) and ``n_judgments`` (judgments in those groups). Without any
        repeated triplet the ceiling, its interval and the agreement are NaN.

    Raises
    ------
    InputError
        On a shape mismatch, a triplet repeating an item, or an odd one out that is not
        in its triplet (the message names the row).
    """
    return _ceiling(_group_repeated_judgments(item_triplets, odd_ids), n_bootstrap, seed)


def trial_noise_ceiling(triplets: Triplets, n_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Noise ceiling of accuracy from repeated trials of any trial type (see :func:`noise_ceiling`).

    Trials are the same when they show the same items in the same roles, whatever the order:
    for odd-one-out the same unordered triplet; for anchor and ranked trials the same reference
    with the same set of options. A trial's answer is its (first) choice, the one accuracy scores.

    Parameters
    ----------
    triplets : Triplets
        Judgments in their trial type's canonical layout.
    n_bootstrap, seed : int
        Of the confidence interval (resampling groups).

    Returns
    -------
    dict
        As :func:`noise_ceiling`.
    """
    kind = triplets.trial_type
    indices = triplets.indices
    if kind == ODD_ONE_OUT:
        keys = np.sort(indices, axis=1)
    else:  # the reference keeps its role; the options are a set
        keys = np.column_stack([indices[:, :1], np.sort(indices[:, 1:], axis=1)])
    return _ceiling(_count_repeats(keys, triplets.chosen), n_bootstrap, seed)


def _ceiling(groups: "_RepeatedGroups", n_bootstrap: int, seed: int) -> dict[str, Any]:
    """The noise ceiling, its interval and the pairwise agreement of counted repeated groups."""
    if groups.n_groups == 0:
        nan = float("nan")
        return {
            "noise_ceiling": nan,
            "noise_ceiling_ci": [nan, nan],
            "pairwise_agreement": nan,
            "n_repeated_triplets": 0,
            "n_judgments": 0,
        }
    modal_share = groups.max_count / groups.size
    pair_agreement = groups.same_answer_pairs / (groups.size * (groups.size - 1) / 2)
    low, high = bootstrap_ci(modal_share, n_bootstrap=n_bootstrap, seed=seed)
    return {
        "noise_ceiling": float(modal_share.mean()),
        "noise_ceiling_ci": [low, high],
        "pairwise_agreement": float(pair_agreement.mean()),
        "n_repeated_triplets": int(groups.n_groups),
        "n_judgments": int(groups.size.sum()),
    }


@dataclass(frozen=True)
class _RepeatedGroups:
    """Per-group counts of the unordered triplets judged at least twice."""

    size: np.ndarray  # judgments in the group
    max_count: np.ndarray  # judgments that chose the modal odd one out
    same_answer_pairs: np.ndarray  # pairs of judgments that chose the same odd one out

    @property
    def n_groups(self) -> int:
        return int(self.size.size)


def check_judgments(item_triplets: np.ndarray, odd_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Judgments as id arrays: ``item_triplets`` of shape (n, 3) and ``odd_ids`` of shape (n,)."""
    item_triplets = np.asarray(item_triplets)
    odd_ids = np.asarray(odd_ids)
    if item_triplets.ndim != 2 or item_triplets.shape[1] != 3:
        raise InputError(f"item_triplets must have shape (n, 3), got {item_triplets.shape}")
    if odd_ids.shape != (item_triplets.shape[0],):
        raise InputError(f"odd_ids must have shape ({item_triplets.shape[0]},), got {odd_ids.shape}")
    return item_triplets, odd_ids


def _group_repeated_judgments(item_triplets: np.ndarray, odd_ids: np.ndarray) -> _RepeatedGroups:
    """Group judgments by unordered triplet and count the answers of each repeated group."""
    item_triplets, odd_ids = check_judgments(item_triplets, odd_ids)
    if odd_ids.size == 0:
        raise InputError("noise ceiling: no judgments")
    # Integer codes for the ids, whatever their type.
    vocabulary, codes = np.unique(np.concatenate([item_triplets.ravel(), odd_ids]), return_inverse=True)
    triplet_codes = codes[: item_triplets.size].reshape(item_triplets.shape)
    odd_codes = codes[item_triplets.size :]
    repeated = repeated_item_rows(triplet_codes)
    if repeated.size:
        row = int(repeated[0])
        raise InputError(f"noise ceiling: row {row} repeats an item within the triplet: {item_triplets[row].tolist()}")
    outside = ~(triplet_codes == odd_codes[:, None]).any(axis=1)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise InputError(
            f"noise ceiling: row {row} chose {odd_ids[row].item()!r}, which is not in its triplet "
            f"{item_triplets[row].tolist()} ({int(outside.sum())} such rows)"
        )
    return _count_repeats(np.sort(triplet_codes, axis=1), odd_codes)


def _count_repeats(keys: np.ndarray, answers: np.ndarray) -> _RepeatedGroups:
    """Group judgments by their rows of ``keys`` (non-negative integers) and count each group's integer answers."""
    _, group = np.unique(keys, axis=0, return_inverse=True)
    group = group.ravel()
    n_groups = int(group.max()) + 1
    size = np.bincount(group, minlength=n_groups)
    n_answers = int(answers.max()) + 1
    # Count each (group, answer) pair once.
    answers, answer_count = np.unique(group * n_answers + answers, return_counts=True)
    answer_group = answers // n_answers
    max_count = np.zeros(n_groups, dtype=np.int64)
    np.maximum.at(max_count, answer_group, answer_count)
    same_pairs = np.bincount(answer_group, weights=answer_count * (answer_count - 1) / 2, minlength=n_groups)
    keep = size >= 2
    return _RepeatedGroups(size[keep].astype(np.float64), max_count[keep].astype(np.float64), same_pairs[keep])
