"""Which trials to ask next: the informativeness of candidate trials under a fitted model.

Adaptive collection (:mod:`oddoneout.collect.adaptive`) asks trials in rounds: fit a model with
an approximate posterior on the answers so far, score a pool of random candidate trials, ask the
best of them, repeat. The criterion is the expected information gain about the embedding,

.. math:: I(y; W) = H\\big[\\mathbb{E}_{W \\sim q}\\, p(y \\mid W)\\big] - \\mathbb{E}_{W \\sim q}\\, H[p(y \\mid W)],

the mutual information between a trial's answer ``y`` and the embedding ``W`` under the
approximate posterior ``q`` (Houlsby et al. 2011, "BALD"; the same quantity Crowd Kernel
Learning maximises over the head's position, Tamuz et al. 2011, and NEXT's InfoGain sampler).
It is high where the posterior draws *disagree* on the answer, not where every draw predicts a
coin flip: the predictive entropy alone (``criterion="entropy"``, uncertainty sampling) prefers
trials whose answer is noise under any embedding, which teach nothing.

``q`` is VICE's variational posterior (:class:`~oddoneout.embed.vice.VICE`: a Gaussian per
weight, the embedding a ReLU of a draw), or the members of an ensemble of fits (e.g. SPoSE fits
on bootstrap resamples). Every dimension of the posterior is drawn, pruned ones included: early
rounds have too few answers for any dimension to pass VICE's pruning test, yet their posterior
already says which items are uncertain.

A batch is chosen greedily by score with a diversity constraint: no item is shown more than
``max_per_item`` times in one batch (by default 1.5 times its share in a balanced batch), so a
batch does not spend itself on a few uncertain items, and items keep being covered.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from oddoneout.errors import InputError
from oddoneout.provenance import hash_text
from oddoneout.triplets import ODD_ONE_OUT, TrialSet, TrialType, Triplets, random_trial_indices

#: Posterior draws of a VICE model scored per candidate.
N_POSTERIOR_SAMPLES = 20
#: Candidates scored per selected trial.
CANDIDATES_PER_TRIAL = 20
#: VICE settings of the selecting model (:func:`fit_selection_model`).
SELECTION_VICE: dict[str, object] = {"n_dims": 30}
#: Largest share of a balanced batch one item may take (see :func:`greedy_diverse`).
ITEM_SHARE_CAP = 1.5


def information_gain(sample_probs: np.ndarray) -> np.ndarray:
    """Mutual information between each trial's answer and the model (BALD), in nats.

    Parameters
    ----------
    sample_probs : ndarray of shape (n_samples, n_trials, n_choices)
        Choice probabilities of each trial under each posterior draw (or ensemble member).

    Returns
    -------
    ndarray of shape (n_trials,)
        ``H[mean_s p_s] - mean_s H[p_s]``; 0 where all draws agree, at most ``ln n_choices``.
    """
    return predictive_entropy(sample_probs) - _entropy(sample_probs).mean(axis=0)


def predictive_entropy(sample_probs: np.ndarray) -> np.ndarray:
    """Entropy of each trial's posterior predictive distribution (uncertainty sampling), in nats."""
    return _entropy(np.asarray(sample_probs).mean(axis=0))


def _entropy(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    return -(probs * np.log(np.clip(probs, 1e-300, None))).sum(axis=-1)


#: Criteria by name: each maps posterior choice probabilities to one score per candidate.
CRITERIA: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "information_gain": information_gain,
    "entropy": predictive_entropy,
}


def posterior_probabilities(
    model: object | Sequence[object],
    trial_type: TrialType,
    indices: np.ndarray,
    n_samples: int = N_POSTERIOR_SAMPLES,
    seed: int = 0,
) -> np.ndarray:
    """Choice probabilities of ``indices`` under draws from a model's approximate posterior.

    Parameters
    ----------
    model : fitted VICE, or a sequence of fitted estimators
        VICE: ``n_samples`` draws of its variational posterior over every dimension. A sequence
        (an ensemble of SPoSE or VICE fits): each member's predicted probabilities.
    trial_type : TrialType
    indices : ndarray of shape (n, trial_type.n_shown)
        Trials in the canonical layout of ``trial_type`` (reference first for reference types).
    n_samples : int
        Draws of a VICE posterior.
    seed : int
        Seed of the draws.

    Returns
    -------
    ndarray of shape (n_draws, n, trial_type.n_shown)
        Laid out like ``indices`` (the reference column 0 for reference types).
    """
    indices = np.asarray(indices, dtype=np.int64)
    if isinstance(model, (list, tuple)):
        if not model:
            raise InputError("an ensemble needs at least one fitted model")
        return np.stack([member._predict(trial_type, indices) for member in model])
    mu, sigma = getattr(model, "mu_", None), getattr(model, "sigma_", None)
    if mu is None or sigma is None:
        raise InputError(
            f"a posterior needs a fitted VICE model or an ensemble of fitted models, got {type(model).__name__}"
        )
    rng = np.random.default_rng(seed)
    draws = [np.maximum(mu + sigma * rng.standard_normal(mu.shape), 0.0) for _ in range(n_samples)]
    return np.stack([trial_type.probabilities(draw, indices) for draw in draws])


def base_rows(rows: np.ndarray, trial_type: TrialType) -> np.ndarray:
    """Each trial as its base trial: the items an ordering moves in ascending order.

    Odd-one-out: all three sorted; anchor and ranked: the reference first, the options sorted.
    Two orderings of one trial give equal rows.
    """
    rows = np.array(rows, dtype=np.int64, copy=True)
    first = 0 if trial_type == ODD_ONE_OUT else 1
    rows[:, first:] = np.sort(rows[:, first:], axis=1)
    return rows


def greedy_diverse(scores: np.ndarray, candidates: np.ndarray, n_select: int, n_items: int, cap: int) -> np.ndarray:
    """Rows of ``candidates`` chosen by descending score, no item more than ``cap`` times.

    Returns
    -------
    ndarray of int64
        Up to ``n_select`` row numbers of ``candidates``, best first (fewer when the cap leaves
        no more candidates).
    """
    counts = np.zeros(n_items, dtype=np.int64)
    chosen: list[int] = []
    for row in np.argsort(-scores, kind="stable"):
        shown = candidates[row]
        if (counts[shown] < cap).all():
            counts[shown] += 1
            chosen.append(int(row))
            if len(chosen) == n_select:
                break
    return np.array(chosen, dtype=np.int64)


@dataclass(frozen=True)
class Selection:
    """Trials chosen for the next round, with what chose them.

    Attributes
    ----------
    indices : ndarray of shape (n, n_shown), int64
        Base trials (:func:`base_rows`), best first.
    scores : ndarray of shape (n,)
        Their criterion values (nats).
    criterion : str
    model_hash : str
        Hash of the selecting model's posterior (its parameters).
    seed : int
        Seed of the candidate pool and the posterior draws.
    """

    indices: np.ndarray
    scores: np.ndarray
    criterion: str
    model_hash: str
    seed: int


def model_hash(model: object | Sequence[object]) -> str:
    """Hash of a fitted model's parameters (of every member of an ensemble)."""
    members = model if isinstance(model, (list, tuple)) else [model]
    parts: list[str] = []
    for member in members:
        for name in ("mu_", "sigma_", "weights_"):
            value = getattr(member, name, None)
            if value is not None:
                array = np.ascontiguousarray(value, dtype=np.float64)
                parts.append(name + hashlib.sha256(array.tobytes()).hexdigest())
    if not parts:
        raise InputError(f"cannot hash an unfitted model: {type(model).__name__}")
    return hash_text(*parts)


def select_trials(
    model: object | Sequence[object],
    n_items: int,
    n_select: int,
    *,
    trial_type: TrialType = ODD_ONE_OUT,
    criterion: str = "information_gain",
    seed: int = 0,
    exclude: np.ndarray | None = None,
    n_candidates: int | None = None,
    max_per_item: int | None = None,
    n_samples: int = N_POSTERIOR_SAMPLES,
) -> Selection:
    """The ``n_select`` most informative of a pool of random candidate trials.

    Parameters
    ----------
    model : fitted VICE, or a sequence of fitted estimators
        The approximate posterior (:func:`posterior_probabilities`).
    n_items : int
        Size of the vocabulary.
    n_select : int
        Trials to choose.
    trial_type : TrialType
    criterion : {"information_gain", "entropy"}
        See :data:`CRITERIA`.
    seed : int
        Seed of the candidates and of the posterior draws.
    exclude : ndarray of shape (m, n_shown), optional
        Trials already asked (in any ordering); their base trials are never chosen again.
    n_candidates : int, optional
        Size of the random pool; ``CANDIDATES_PER_TRIAL * n_select`` by default.
    max_per_item : int, optional
        Most trials of the batch one item may be shown in; by default ``ITEM_SHARE_CAP`` times
        its share of a balanced batch, rounded up.
    n_samples : int
        Posterior draws of a VICE model.

    Returns
    -------
    Selection
        Fewer than ``n_select`` trials only when the pool, the exclusions and the cap leave fewer.
    """
    if criterion not in CRITERIA:
        raise InputError(f"unknown selection criterion {criterion!r}; choose one of {sorted(CRITERIA)}")
    if n_select < 1:
        raise InputError(f"n_select must be at least 1, got {n_select}")
    width = trial_type.n_shown
    rng = np.random.default_rng(seed)
    pool = n_candidates if n_candidates is not None else CANDIDATES_PER_TRIAL * n_select
    candidates = base_rows(random_trial_indices(n_items, width, pool, rng), trial_type)
    candidates = np.unique(candidates, axis=0)
    if exclude is not None and len(exclude):
        asked = base_rows(np.asarray(exclude, dtype=np.int64).reshape(-1, width), trial_type)
        both = np.concatenate([asked, candidates])
        _, first, inverse = np.unique(both, axis=0, return_index=True, return_inverse=True)
        candidates = candidates[first[inverse.ravel()[len(asked) :]] >= len(asked)]
    candidates = candidates[rng.permutation(len(candidates))]  # np.unique sorted them: break ties at random
    probs = posterior_probabilities(model, trial_type, candidates, n_samples=n_samples, seed=seed)
    scores = CRITERIA[criterion](probs)
    cap = max_per_item if max_per_item is not None else int(np.ceil(ITEM_SHARE_CAP * width * n_select / n_items))
    rows = greedy_diverse(scores, candidates, n_select, n_items, max(cap, 1))
    return Selection(candidates[rows], scores[rows], criterion, model_hash(model), seed)


def fit_selection_model(trials: Triplets | TrialSet | Sequence[Triplets], seed: int = 0) -> object:
    """The approximate posterior a round's selection scores candidates under: VICE on ``trials``.

    Fitted with :data:`SELECTION_VICE` settings and ``seed``; the pruning warning of an early
    round (no dimension significant yet) is expected and silenced: every dimension is drawn.
    """
    import warnings

    from oddoneout.embed.vice import VICE

    model = VICE(**SELECTION_VICE, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(trials)
    return model
