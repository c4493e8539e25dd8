"""Trial types: what one judgment shows, which answers it allows and how a model answers it.

A trial type owns every fact that depends on the kind of trial: how many items are shown,
the *canonical layout* in which judgments are stored (which column holds the chosen item),
how a shown order and a choice map onto that layout, and the choice rule that turns item
vectors into answer probabilities. The members are odd-one-out
(:data:`oddoneout.triplets.ODD_ONE_OUT`), the anchor triplet (:data:`oddoneout.triplets.ANCHOR`)
and ranked trials (:class:`oddoneout.triplets.Ranked`); :func:`trial_type_from_spec` names them
in files.

Probabilities are always laid out like the items: an array of shape ``(n, n_shown)`` whose
column ``p`` is the probability that the item in column ``p`` is the (first) choice. A column
that cannot be chosen (the reference of an anchor or ranked trial) has probability 0, so a
prediction is right when :attr:`TrialType.chosen_column` holds the largest probability, for
every trial type alike.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from functools import cached_property

import numpy as np


class TrialType(ABC):
    """One kind of trial.

    Attributes
    ----------
    name : str
        Identifier of the trial type.
    n_shown : int
        Items shown in one trial.
    n_choices : int
        Number of items that can be chosen. A choice is the shown position of the chosen item
        (``0 .. n_shown - 1``; the reference, at position 0 of an anchor or ranked trial, is never one).
    chosen_column : int
        Column of the canonical layout that holds the (first) chosen item.
    """

    name: str
    n_shown: int
    n_choices: int
    chosen_column: int
    #: Choices made in one trial (a ranking of ``k`` options makes ``k``).
    n_ranked: int = 1

    @property
    def spec(self) -> str:
        """The name of the trial type in files (parsed by :func:`trial_type_from_spec`)."""
        return self.name

    @property
    def chance_cross_entropy(self) -> float:
        """Cross-entropy (nats per trial) of guessing every answer uniformly."""
        return float(sum(np.log(self.n_choices - j) for j in range(self.n_ranked)))

    @property
    def supports_soft_labels(self) -> bool:
        """Whether a trial's answer can be given as probabilities (one choice per trial)."""
        return self.n_ranked == 1

    @cached_property
    def orderings(self) -> np.ndarray:
        """Every order in which a trial's items can be shown: row ``k`` is a permutation of positions.

        Returns
        -------
        ndarray of shape (n_shown!, n_shown), int64
            Lexicographic order, so ordering ``0`` is the identity.
        """
        return np.array(list(itertools.permutations(range(self.n_shown))), dtype=np.int64)

    @abstractmethod
    def canonical_positions(self, choice: np.ndarray) -> np.ndarray:
        """Shown positions in canonical order, for each choice.

        Parameters
        ----------
        choice : ndarray of shape (n,) or (n, n_ranked), int
            The answer of each trial: the shown position of the chosen item (of each ranked
            item, in rank order, for a ranking).

        Returns
        -------
        ndarray of shape (n, n_shown), int64
            Row ``i`` lists the shown positions of trial ``i`` in canonical column order.
        """

    def to_canonical(self, shown: np.ndarray, choice: np.ndarray) -> np.ndarray:
        """Re-lay values given in shown order (item indices, probabilities) in canonical order.

        Parameters
        ----------
        shown : ndarray of shape (n, n_shown)
            One value per shown position.
        choice : ndarray of shape (n,) or (n, n_ranked), int
            The answer of each trial (see :meth:`canonical_positions`).

        Returns
        -------
        ndarray of shape (n, n_shown)
        """
        return np.take_along_axis(np.asarray(shown), self.canonical_positions(choice), axis=1)

    @abstractmethod
    def probabilities(
        self, features: np.ndarray, indices: np.ndarray, temperature: float = 1.0, cosine: bool = False
    ) -> np.ndarray:
        """The choice rule: probability of each answer given item vectors.

        Parameters
        ----------
        features : ndarray of shape (n_items, n_features)
            One vector per item.
        indices : ndarray of shape (n, n_shown), int
            Item indices of each trial, in the order the answer refers to.
        temperature : float
            Softmax temperature.
        cosine : bool
            Cosine similarity instead of the dot product.

        Returns
        -------
        ndarray of shape (n, n_shown)
            Column ``p``: probability that the item in column ``p`` is the (first) choice; rows sum to 1.
        """

    def log_likelihood(self, features: np.ndarray, indices: np.ndarray, temperature: float = 1.0) -> np.ndarray:
        """Log-probability of each observed answer, for trials in the canonical layout.

        Parameters
        ----------
        features : ndarray of shape (n_items, n_features)
        indices : ndarray of shape (n, n_shown), int
            Trials in the canonical layout (the answer is part of the layout).
        temperature : float

        Returns
        -------
        ndarray of shape (n,)
            Natural logarithms, floored at ``log(1e-15)`` so that a vanishing probability stays finite.
        """
        probs = self.probabilities(features, indices, temperature)
        return np.log(np.maximum(probs[:, self.chosen_column], 1e-15))

    def draw_canonical(
        self, features: np.ndarray, shown: np.ndarray, temperature: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Answers drawn from the choice rule, as trials in the canonical layout.

        Parameters
        ----------
        features : ndarray of shape (n_items, n_features)
        shown : ndarray of shape (n, n_shown), int
            Item indices in shown order.
        temperature : float
        rng : numpy.random.Generator
            Source of one uniform draw per trial (types with several choices per trial draw more).

        Returns
        -------
        canonical : ndarray of shape (n, n_shown), int64
        probs : ndarray of shape (n, n_shown)
            The first-choice probabilities, laid out like ``canonical``.
        """
        probs = self.probabilities(features, shown, temperature)
        choice = (rng.random(len(probs))[:, None] >= np.cumsum(probs, axis=1)).sum(axis=1)
        choice = np.minimum(choice, probs.shape[1] - 1)
        return self.to_canonical(shown, choice), self.to_canonical(probs, choice)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrialType) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec)

    def __repr__(self) -> str:
        return f"<trial type {self.name!r}>"
