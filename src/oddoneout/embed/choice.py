"""The SPoSE choice rule: which item of a triplet is the odd one out, given item vectors."""

from __future__ import annotations

import numpy as np

from oddoneout.triplets import Triplets


def pair_similarities(features: np.ndarray, indices: np.ndarray, cosine: bool = False) -> np.ndarray:
    """Similarity of the pair left when each position is removed.

    Parameters
    ----------
    features : ndarray of shape (n_items, n_features)
    indices : ndarray of shape (n, 3), int
    cosine : bool
        Cosine similarity instead of the dot product.

    Returns
    -------
    ndarray of shape (n, 3)
        Column ``p`` is the similarity of the two items other than position ``p``.
    """
    features = np.asarray(features, dtype=np.float64)
    if cosine:
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        features = features / np.where(norms > 0, norms, 1.0)
    a, b, c = (features[indices[:, p]] for p in range(3))
    return np.column_stack([(b * c).sum(1), (a * c).sum(1), (a * b).sum(1)])


def odd_one_out_probabilities(
    features: np.ndarray, indices: np.ndarray, temperature: float = 1.0, cosine: bool = False
) -> np.ndarray:
    """Probability that each position is the odd one out: softmax of the remaining pair's similarity.

    Parameters
    ----------
    features : ndarray of shape (n_items, n_features)
    indices : ndarray of shape (n, 3), int
    temperature : float
        Softmax temperature; 1 is the SPoSE model itself.
    cosine : bool
        Use cosine similarity instead of the dot product.

    Returns
    -------
    ndarray of shape (n, 3), rows summing to 1.
    """
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    logits = pair_similarities(features, indices, cosine) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True)


def random_triplet_indices(n_items: int, n_triplets: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform random triplets of three distinct items (repeats across rows allowed)."""
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


def sample_triplets(
    features: np.ndarray,
    n_triplets: int,
    seed: int,
    temperature: float = 1.0,
    item_ids: tuple[str, ...] | None = None,
    with_probs: bool = False,
) -> Triplets:
    """Draw random triplets and odd-one-out choices from the SPoSE choice rule.

    Returns :class:`Triplets` in the SPoSE convention (odd one out in column 2), with the
    generating probabilities as soft labels when ``with_probs``.
    """
    rng = np.random.default_rng(seed)
    n_items = features.shape[0]
    shown = random_triplet_indices(n_items, n_triplets, rng)
    probs = odd_one_out_probabilities(features, shown, temperature)
    choice = (rng.random(n_triplets)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    choice = np.minimum(choice, 2)
    order = np.array([[1, 2, 0], [0, 2, 1], [0, 1, 2]])[choice]
    rows = np.arange(n_triplets)[:, None]
    ids = item_ids if item_ids is not None else tuple(str(i) for i in range(n_items))
    return Triplets(ids, shown[rows, order], probs[rows, order] if with_probs else None)
