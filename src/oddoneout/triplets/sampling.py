"""Random triplets and answers drawn from a choice rule (simulations, tests, designs)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from oddoneout.provenance import hash_text
from oddoneout.triplets.data import Triplets
from oddoneout.triplets.odd_one_out import ODD_ONE_OUT
from oddoneout.triplets.trial import TrialType


def random_triplet_indices(n_items: int, n_triplets: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform random triplets of three distinct items (repeats across rows allowed).

    Parameters
    ----------
    n_items : int
        Size of the vocabulary (at least 3).
    n_triplets : int
        Number of rows.
    rng : numpy.random.Generator
        Source of randomness (advanced by three integer draws of ``n_triplets``).

    Returns
    -------
    ndarray of shape (n_triplets, 3), int64
    """
    if n_items < 3:
        raise ValueError("need at least 3 items")
    first = rng.integers(0, n_items, n_triplets)
    second = (first + rng.integers(1, n_items, n_triplets)) % n_items
    third = rng.integers(0, n_items - 2, n_triplets)
    # map third onto the n_items - 2 values that differ from first and second
    low, high = np.minimum(first, second), np.maximum(first, second)
    third = third + (third >= low)
    third = third + (third >= high)
    return np.column_stack([first, second, third]).astype(np.int64)


def random_trial_indices(n_items: int, n_shown: int, n_trials: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform random trials of ``n_shown`` distinct items (repeats across rows allowed).

    Three items are drawn as :func:`random_triplet_indices` draws them; more are drawn row-wise
    and rows with a repeated item drawn again.

    Returns
    -------
    ndarray of shape (n_trials, n_shown), int64
    """
    if n_shown == 3:
        return random_triplet_indices(n_items, n_trials, rng)
    if n_items < n_shown:
        raise ValueError(f"need at least {n_shown} items")
    rows = rng.integers(0, n_items, (n_trials, n_shown))
    while True:
        ordered = np.sort(rows, axis=1)
        bad = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
        if not bad.size:
            return rows.astype(np.int64)
        rows[bad] = rng.integers(0, n_items, (bad.size, n_shown))


def draw_choices(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One answer per row, drawn from its probabilities (one uniform draw per row).

    Parameters
    ----------
    probs : ndarray of shape (n, n_choices)
        Rows summing to 1.
    rng : numpy.random.Generator
        Source of the ``n`` uniform draws.

    Returns
    -------
    ndarray of shape (n,), int64
        Answer ``c`` where the draw falls in ``[cumsum[c - 1], cumsum[c])``; an answer of
        probability 0 is never drawn.
    """
    return choices_from_draws(probs, rng.random(len(probs)))


def choices_from_draws(probs: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """One answer per row: the answer whose cumulative probability interval holds the row's draw.

    Parameters
    ----------
    probs : ndarray of shape (n, n_choices)
        Rows summing to 1.
    draws : ndarray of shape (n,)
        One uniform number in [0, 1) per row (from a generator, or :func:`keyed_uniforms`).

    Returns
    -------
    ndarray of shape (n,), int64
    """
    choice = (np.asarray(draws)[:, None] >= np.cumsum(probs, axis=1)).sum(axis=1)
    # rows sum to 1 only up to rounding: a draw above the last cumulative sum takes the last answer
    return np.minimum(choice, probs.shape[1] - 1).astype(np.int64)


_MULTIPLIERS = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)


def keyed_uniforms(seed: int, keys: Sequence[tuple[str, int, int, int]], draw: int = 0) -> np.ndarray:
    """One uniform number in [0, 1) per trial key, a function of the seed, the key and ``draw`` alone.

    An agent that draws its answers from these gives every trial the same answer whichever
    batch, process or order it is asked in, so a killed and resumed collection, another batch
    size or a parallel run store the same judgments as one uninterrupted run.

    Parameters
    ----------
    seed : int
        The agent's seed (non-negative).
    keys : sequence of (design, triplet_index, ordering, repeat)
        The trials' store keys.
    draw : int
        Which of a trial's independent numbers (0, 1, ...): an answer drawn in several steps (a
        ranking, choice by choice) takes number ``r`` for step ``r``. Number 0 is the one a
        trial has always had.

    Returns
    -------
    ndarray of shape (len(keys),), float64
    """
    if not keys:
        return np.zeros(0)
    names, triplet_index, ordering, repeat = zip(*keys)
    name_codes = {name: int(hash_text(str(seed), name)[:16], 16) for name in set(names)}
    columns = [
        np.array([name_codes[name] for name in names], dtype=np.uint64),
        np.asarray(triplet_index, dtype=np.int64).astype(np.uint64),
        np.asarray(ordering, dtype=np.int64).astype(np.uint64),
        np.asarray(repeat, dtype=np.int64).astype(np.uint64),
    ]
    if draw:
        columns.append(np.full(len(keys), draw, dtype=np.uint64))
    value = np.zeros(len(keys), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in columns:  # splitmix64-style: add a column, multiply, fold the high bits down
            for multiplier in _MULTIPLIERS:
                value = (value ^ column) * np.uint64(multiplier)
                value ^= value >> np.uint64(31)
    return (value >> np.uint64(11)).astype(np.float64) * 2.0**-53


def sample_triplets(
    features: np.ndarray,
    n_triplets: int,
    seed: int,
    temperature: float = 1.0,
    item_ids: tuple[str, ...] | None = None,
    with_probs: bool = False,
    trial_type: TrialType = ODD_ONE_OUT,
) -> Triplets:
    """Draw random trials and their answers from the choice rule of ``trial_type``.

    Parameters
    ----------
    features : ndarray of shape (n_items, n_features)
        Item vectors of the simulated judge.
    n_triplets : int
        Number of judgments.
    seed : int
        Seed of the triplets and the answers.
    temperature : float
        Softmax temperature of the choice rule.
    item_ids : tuple of str, optional
        Vocabulary; ``"0", "1", ...`` by default.
    with_probs : bool
        Keep the generating (first-choice) probabilities as soft labels.
    trial_type : TrialType
        Odd-one-out by default; :data:`~oddoneout.triplets.ANCHOR` or a
        :class:`~oddoneout.triplets.Ranked` shows a reference first.

    Returns
    -------
    Triplets
        In the canonical layout of ``trial_type``, soft labels laid out like the items.
    """
    rng = np.random.default_rng(seed)
    n_items = features.shape[0]
    shown = random_trial_indices(n_items, trial_type.n_shown, n_triplets, rng)
    canonical, probs = trial_type.draw_canonical(features, shown, temperature, rng)
    ids = item_ids if item_ids is not None else tuple(str(i) for i in range(n_items))
    return Triplets(ids, canonical, probs if with_probs else None, trial_type)
