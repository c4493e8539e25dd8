"""Trial types: what one judgment shows, which answers it allows and how a model answers it.

A trial type owns every fact that depends on the kind of trial: how many items are shown,
the *canonical layout* in which judgments are stored (which column holds the chosen item),
how a shown order and a choice map onto that layout, and the choice rule that turns item
vectors into answer probabilities. Odd-one-out (:data:`oddoneout.triplets.ODD_ONE_OUT`) is
the first and so far only member; another kind of trial (an anchor triplet, a ranking) is a
new subclass here, not a change to its callers.
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
        Number of possible answers (a choice is an integer in ``0 .. n_choices - 1``).
    chosen_column : int
        Column of the canonical layout that holds the chosen item.
    """

    name: str
    n_shown: int
    n_choices: int
    chosen_column: int

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
        choice : ndarray of shape (n,), int
            The answer of each trial, in shown positions.

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
        choice : ndarray of shape (n,), int
            The answer of each trial.

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
        ndarray of shape (n, n_choices), rows summing to 1.
        """

    def __repr__(self) -> str:
        return f"<trial type {self.name!r}>"
