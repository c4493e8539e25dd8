"""The odd-one-out trial and the SPoSE choice rule over item vectors (numpy).

Three items are shown; the answer is the position of the odd one out, so the other two are
the pair kept together. Judgments are stored in the SPoSE convention: the kept pair in the
order shown, then the odd one out (column 2). The choice rule is a softmax over the
similarities of the three pairs: position ``p`` is the odd one out with probability
proportional to ``exp(sim(other two) / temperature)``.
"""

from __future__ import annotations

import numpy as np

from oddoneout.triplets.trial import TrialType

#: For each shown position ``p``: the two positions left when ``p`` is the odd one out, in shown order.
KEPT_PAIRS: tuple[tuple[int, int], ...] = tuple(
    tuple(q for q in range(3) if q != p)
    for p in range(3)  # type: ignore[misc]
)

#: Row ``c``: the shown positions in SPoSE order when position ``c`` is the odd one out
#: (the kept pair in shown order, then ``c``).
SPOSE_POSITIONS = np.array([(*pair, chosen) for chosen, pair in enumerate(KEPT_PAIRS)], dtype=np.int64)


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
    shown = [features[indices[:, p]] for p in range(3)]
    return np.column_stack([(shown[q] * shown[r]).sum(1) for q, r in KEPT_PAIRS])


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


class OddOneOut(TrialType):
    """Three items shown, the odd one out chosen; stored with the odd one out last (SPoSE)."""

    name = "odd_one_out"
    n_shown = 3
    n_choices = 3
    chosen_column = 2

    def __reduce__(self) -> str:
        return "ODD_ONE_OUT"  # unpickled as this module's instance, in a worker process too

    def canonical_positions(self, choice: np.ndarray) -> np.ndarray:
        """Rows of :data:`SPOSE_POSITIONS` for each choice (see :meth:`TrialType.canonical_positions`)."""
        return SPOSE_POSITIONS[np.asarray(choice, dtype=np.int64)]

    def probabilities(
        self, features: np.ndarray, indices: np.ndarray, temperature: float = 1.0, cosine: bool = False
    ) -> np.ndarray:
        """:func:`odd_one_out_probabilities` (see :meth:`TrialType.probabilities`)."""
        return odd_one_out_probabilities(features, indices, temperature, cosine)


#: The odd-one-out trial type.
ODD_ONE_OUT = OddOneOut()
