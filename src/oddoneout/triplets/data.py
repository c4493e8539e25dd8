"""The triplet data type: judgments as item indices in the canonical layout of their trial type.

A :class:`Triplets` holds odd-one-out judgments as integer item indices in the SPoSE
convention: columns 0 and 1 are the pair kept together, column 2 is the odd one out (see
:mod:`oddoneout.triplets.odd_one_out`). Item ids map indices to stable string ids, so
triplets from different files can be aligned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import ClassVar, Sequence

import numpy as np

from oddoneout.errors import InputError
from oddoneout.provenance import hash_array, hash_text
from oddoneout.triplets.odd_one_out import ODD_ONE_OUT
from oddoneout.triplets.trial import TrialType


def repeated_item_rows(rows: np.ndarray) -> np.ndarray:
    """Indices of the rows of a trial table (ids or indices, any width) that show an item twice."""
    rows = np.asarray(rows)
    repeated = np.zeros(len(rows), dtype=bool)
    for first, second in combinations(range(rows.shape[1]), 2):
        repeated |= rows[:, first] == rows[:, second]
    return np.flatnonzero(repeated)


@dataclass(frozen=True, eq=False)
class Triplets:
    """Odd-one-out judgments over a fixed vocabulary of items.

    Parameters
    ----------
    item_ids : tuple of str
        Vocabulary: index ``i`` in ``indices`` is item ``item_ids[i]``.
    indices : ndarray of shape (n_triplets, 3), int64
        Item indices; column 2 is the chosen odd one out, columns 0-1 the pair kept together.
    probs : ndarray of shape (n_triplets, 3), float64, optional
        Soft labels: probability that the item in each column is the odd one out
        (rows sum to 1). ``None`` when only hard choices exist.

    Attributes
    ----------
    trial_type : TrialType
        The kind of trial the judgments come from (:data:`ODD_ONE_OUT`); it owns the layout
        of the columns and the choice rule.
    """

    trial_type: ClassVar[TrialType] = ODD_ONE_OUT

    item_ids: tuple[str, ...]
    indices: np.ndarray
    probs: np.ndarray | None = None
    _hash: list = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        indices = np.asarray(self.indices)
        width = self.trial_type.n_shown
        if indices.ndim != 2 or indices.shape[1] != width:
            raise InputError(f"triplets must have shape (n, {width}), got {indices.shape}")
        if not np.issubdtype(indices.dtype, np.integer):
            raise InputError(f"triplet indices must be integers, got dtype {indices.dtype}")
        indices = indices.astype(np.int64, copy=False)
        validate_indices(indices, len(self.item_ids))
        if len(set(self.item_ids)) != len(self.item_ids):
            raise InputError("item ids must be unique")
        object.__setattr__(self, "item_ids", tuple(str(i) for i in self.item_ids))
        object.__setattr__(self, "indices", indices)
        if self.probs is not None:
            probs = np.asarray(self.probs, dtype=np.float64)
            if probs.shape != indices.shape:
                raise InputError(f"probs shape {probs.shape} does not match triplets {indices.shape}")
            if not np.all(np.isfinite(probs)) or np.any(probs < 0):
                raise InputError("probs must be finite and non-negative")
            if not np.allclose(probs.sum(axis=1), 1.0, atol=1e-6):
                raise InputError("each row of probs must sum to 1")
            object.__setattr__(self, "probs", probs)

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    @property
    def n_items(self) -> int:
        """Number of items in the vocabulary."""
        return len(self.item_ids)

    def hash(self) -> str:
        """Content hash of ids, indices and probabilities (cached)."""
        if not self._hash:
            parts = [hash_text(*self.item_ids), hash_array(self.indices)]
            if self.probs is not None:
                parts.append(hash_array(self.probs))
            self._hash.append(hash_text(*parts))
        return self._hash[0]

    def subset(self, rows: np.ndarray) -> "Triplets":
        """The triplets at ``rows`` (an index or boolean array), same vocabulary."""
        probs = None if self.probs is None else self.probs[rows]
        return Triplets(self.item_ids, self.indices[rows], probs)

    def split(self, test_fraction: float, seed: int) -> tuple["Triplets", "Triplets"]:
        """Random train/test split of the triplets (not of the items).

        Parameters
        ----------
        test_fraction : float
            Share of triplets held out, in (0, 1).
        seed : int
            Seed of the permutation.
        """
        if not 0.0 < test_fraction < 1.0:
            raise InputError(f"test_fraction must be in (0, 1), got {test_fraction}")
        order = np.random.default_rng(seed).permutation(len(self))
        n_test = max(1, int(round(test_fraction * len(self))))
        return self.subset(np.sort(order[n_test:])), self.subset(np.sort(order[:n_test]))

    def reindex(self, item_ids: Sequence[str]) -> "Triplets":
        """The same triplets expressed over another vocabulary that contains every used id."""
        position = {item: i for i, item in enumerate(item_ids)}
        lookup = np.empty(self.n_items, dtype=np.int64)
        for i, item in enumerate(self.item_ids):
            lookup[i] = position.get(item, -1)
        used = np.unique(self.indices)
        missing = [self.item_ids[i] for i in used if lookup[i] < 0]
        if missing:
            raise InputError(f"unknown item ids: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        return Triplets(tuple(item_ids), lookup[self.indices], self.probs)


def validate_indices(indices: np.ndarray, n_items: int, source: str = "triplets") -> None:
    """Raise :class:`InputError` for out-of-range indices or a repeated item within a triplet."""
    if indices.size == 0:
        raise InputError(f"{source}: no triplets")
    bad = np.flatnonzero(((indices < 0) | (indices >= n_items)).any(axis=1))
    if bad.size:
        row = int(bad[0])
        raise InputError(
            f"{source}: row {row} has an item index out of range [0, {n_items}): "
            f"{indices[row].tolist()} ({bad.size} such rows)"
        )
    repeated = repeated_item_rows(indices)
    if repeated.size:
        row = int(repeated[0])
        raise InputError(
            f"{source}: row {row} repeats an item within the triplet: {indices[row].tolist()} "
            f"({repeated.size} such rows)"
        )
