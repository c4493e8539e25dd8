"""Random triplets and answers drawn from a choice rule (simulations, tests, designs)."""

from __future__ import annotations

import numpy as np

from oddoneout.triplets.data import Triplets


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
    draws = rng.random(len(probs))
    choice = (draws[:, None] >= np.cumsum(probs, axis=1)).sum(axis=1)
    # rows sum to 1 only up to rounding: a draw above the last cumulative sum takes the last answer
    return np.minimum(choice, probs.shape[1] - 1).astype(np.int64)


def sample_triplets(
    features: np.ndarray,
    n_triplets: int,
    seed: int,
    temperature: float = 1.0,
    item_ids: tuple[str, ...] | None = None,
    with_probs: bool = False,
) -> Triplets:
    """Draw random triplets and their answers from the choice rule of :attr:`Triplets.trial_type`.

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
        Keep the generating probabilities as soft labels.

    Returns
    -------
    Triplets
        In the canonical layout (odd one out in column 2), soft labels laid out like the items.
    """
    trial_type = Triplets.trial_type
    rng = np.random.default_rng(seed)
    n_items = features.shape[0]
    shown = random_triplet_indices(n_items, n_triplets, rng)
    probs = trial_type.probabilities(features, shown, temperature)
    choice = draw_choices(probs, rng)
    ids = item_ids if item_ids is not None else tuple(str(i) for i in range(n_items))
    soft = trial_type.to_canonical(probs, choice) if with_probs else None
    return Triplets(ids, trial_type.to_canonical(shown, choice), soft)
