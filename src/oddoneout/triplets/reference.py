"""Trials judged against a reference: the anchor triplet and ranked trials, with their choice rule.

A reference item is shown with ``n`` options; the judge picks the option most similar to the
reference (an *anchor triplet*, ``n = 2``: "which of these two is more similar to the
reference?", the task of NEXT, salmon and cblearn's data sets), or ranks the ``k`` most similar
options in order (a *ranked trial*, psiz's "8-rank-2": 8 options, the 2 most similar ranked).

Layout
------
The reference is shown first (position 0) and stored first. The canonical layout is
``[reference, ranked options in rank order, the other options in shown order]``, so column 1
always holds the (first) chosen option; an anchor triplet is ``[reference, chosen, other]``,
which is cblearn's ``(anchor, near, far)`` convention.

Choice rule
-----------
The similarity of the reference to each option, ``s_j = w_ref . w_j`` (the same dot product
SPoSE's odd-one-out rule uses), divided by the temperature, gives a Plackett-Luce ranking model
(as in psiz): the first choice is a softmax over all options, each later choice a softmax over
the options not yet chosen, so a trial ranking ``k`` options has probability

    prod_{r < k} exp(s_(r)) / sum_{j not among the first r} exp(s_j).

For an anchor triplet this is the softmax over the two options; a guess scores ``ln 2`` nats,
a ranked trial ``sum_{r < k} ln(n - r)``.
"""

from __future__ import annotations

import itertools
from functools import cached_property

import numpy as np

from oddoneout.errors import InputError
from oddoneout.triplets.odd_one_out import ODD_ONE_OUT
from oddoneout.triplets.trial import TrialType


def reference_similarities(features: np.ndarray, indices: np.ndarray, cosine: bool = False) -> np.ndarray:
    """Similarity of the reference (column 0) to every other column.

    Parameters
    ----------
    features : ndarray of shape (n_items, n_features)
    indices : ndarray of shape (n, 1 + n_options), int
    cosine : bool
        Cosine similarity instead of the dot product.

    Returns
    -------
    ndarray of shape (n, n_options)
    """
    features = np.asarray(features, dtype=np.float64)
    if cosine:
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        features = features / np.where(norms > 0, norms, 1.0)
    indices = np.asarray(indices)
    return np.einsum("nd,nkd->nk", features[indices[:, 0]], features[indices[:, 1:]])


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class Ranked(TrialType):
    """A reference and ``n_options`` options; the ``n_ranked`` most similar options are ranked.

    Parameters
    ----------
    n_options : int
        Options shown beside the reference (at least 2).
    n_ranked : int
        Options ranked, from 1 to ``n_options - 1`` (ranking all but the last says the same as
        ranking all).
    """

    name = "ranked"
    chosen_column = 1

    def __init__(self, n_options: int, n_ranked: int) -> None:
        if not isinstance(n_options, (int, np.integer)) or n_options < 2:
            raise InputError(f"a ranked trial needs at least 2 options, got {n_options!r}")
        if not isinstance(n_ranked, (int, np.integer)) or not 1 <= n_ranked < n_options:
            raise InputError(f"a ranked trial ranks 1 to n_options - 1 = {n_options - 1} options, got {n_ranked!r}")
        self.n_options, self.n_ranked = int(n_options), int(n_ranked)
        self.n_shown = 1 + self.n_options
        self.n_choices = self.n_options

    def __reduce__(self) -> str | tuple:
        return Ranked, (self.n_options, self.n_ranked)

    @property
    def spec(self) -> str:
        """``"ranked:<n_options>:<n_ranked>"``."""
        return f"{self.name}:{self.n_options}:{self.n_ranked}"

    @cached_property
    def orderings(self) -> np.ndarray:
        """Every order of the options, the reference first: ``n_options!`` rows (identity first)."""
        options = itertools.permutations(range(1, self.n_shown))
        return np.array([(0, *order) for order in options], dtype=np.int64)

    def canonical_positions(self, choice: np.ndarray) -> np.ndarray:
        """``[0, ranked positions, the other option positions in shown order]`` for each answer."""
        choice = np.asarray(choice, dtype=np.int64).reshape(-1, self.n_ranked)
        if choice.size and ((choice < 1) | (choice >= self.n_shown)).any():
            raise InputError(f"a {self.spec} answer is a shown position from 1 to {self.n_shown - 1}")
        unranked = np.ones((len(choice), self.n_shown), dtype=bool)
        unranked[:, 0] = False
        np.put_along_axis(unranked, choice, False, axis=1)
        if (unranked.sum(axis=1) != self.n_options - self.n_ranked).any():
            raise InputError(f"a {self.spec} answer ranks an option twice")
        rest = np.nonzero(unranked)[1].reshape(len(choice), -1)
        return np.column_stack([np.zeros(len(choice), dtype=np.int64), choice, rest])

    def probabilities(
        self, features: np.ndarray, indices: np.ndarray, temperature: float = 1.0, cosine: bool = False
    ) -> np.ndarray:
        """First-choice probabilities: softmax of the reference's similarity to each option (column 0: 0)."""
        if temperature <= 0:
            raise ValueError("temperature must be positive")
        log_probs = _log_softmax(reference_similarities(features, indices, cosine) / temperature)
        return np.column_stack([np.zeros(len(log_probs)), np.exp(log_probs)])

    def log_likelihood(self, features: np.ndarray, indices: np.ndarray, temperature: float = 1.0) -> np.ndarray:
        """Plackett-Luce log-probability of each trial's ranking (see the module docstring)."""
        if temperature <= 0:
            raise ValueError("temperature must be positive")
        logits = reference_similarities(features, indices) / temperature
        total = np.zeros(len(logits))
        for rank in range(self.n_ranked):
            total += _log_softmax(logits[:, rank:])[:, 0]
        return np.maximum(total, np.log(1e-15) * self.n_ranked)

    def draw_canonical(
        self, features: np.ndarray, shown: np.ndarray, temperature: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rankings drawn from the Plackett-Luce model (the Gumbel top-k of the logits)."""
        if self.n_ranked == 1:
            return super().draw_canonical(features, shown, temperature, rng)
        logits = reference_similarities(features, shown) / temperature
        perturbed = logits + rng.gumbel(size=logits.shape)
        choice = 1 + np.argsort(-perturbed, axis=1, kind="stable")[:, : self.n_ranked]
        probs = self.probabilities(features, shown, temperature)
        return self.to_canonical(shown, choice), self.to_canonical(probs, choice)


class AnchorTriplet(Ranked):
    """A reference and two options; the option more similar to the reference is chosen.

    Stored as ``[reference, chosen, other]`` (cblearn's ``(anchor, near, far)``).
    """

    name = "anchor"

    def __init__(self) -> None:
        super().__init__(2, 1)

    def __reduce__(self) -> str | tuple:
        return "ANCHOR"  # unpickled as this module's instance

    @property
    def spec(self) -> str:
        """``"anchor"``."""
        return self.name


#: The anchor (2AFC) triplet.
ANCHOR = AnchorTriplet()

#: Trial types without parameters, by name.
_NAMED: dict[str, TrialType] = {ODD_ONE_OUT.name: ODD_ONE_OUT, ANCHOR.name: ANCHOR}


def trial_type_from_spec(spec: str) -> TrialType:
    """The trial type a file names: ``"odd_one_out"``, ``"anchor"`` or ``"ranked:<n_options>:<n_ranked>"``.

    Raises
    ------
    InputError
        For any other text.
    """
    if spec in _NAMED:
        return _NAMED[spec]
    parts = str(spec).split(":")
    if len(parts) == 3 and parts[0] == Ranked.name and all(part.isdigit() for part in parts[1:]):
        return Ranked(int(parts[1]), int(parts[2]))
    raise InputError(
        f"unknown trial type {spec!r}: expected 'odd_one_out', 'anchor' or 'ranked:<options>:<ranked>' "
        "(e.g. ranked:8:2)"
    )
