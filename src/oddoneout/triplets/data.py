"""The judgment data type: trials as item indices in the canonical layout of their trial type.

A :class:`Triplets` holds judgments of one trial type as integer item indices in that type's
canonical layout: for odd-one-out the SPoSE convention (columns 0 and 1 the pair kept
together, column 2 the odd one out, :mod:`oddoneout.triplets.odd_one_out`), for anchor and
ranked trials the reference, then the chosen options in rank order, then the others
(:mod:`oddoneout.triplets.reference`). Item ids map indices to stable string ids, so trials
from different files can be aligned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Sequence

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
    """Judgments of one trial type over a fixed vocabulary of items.

    The name is the field's: most trial types show three items. Ranked trials show more.

    Parameters
    ----------
    item_ids : tuple of str
        Vocabulary: index ``i`` in ``indices`` is item ``item_ids[i]``.
    indices : ndarray of shape (n_trials, trial_type.n_shown), int64
        Item indices in the canonical layout of ``trial_type``; for odd-one-out column 2 is
        the chosen odd one out, columns 0-1 the pair kept together; for anchor and ranked
        trials column 0 is the reference and column 1 the (first) chosen option.
    probs : ndarray of shape (n_trials, trial_type.n_shown), float64, optional
        Soft labels: probability that the item in each column is the choice (rows sum to 1;
        0 for a reference). ``None`` when only hard choices exist; trial types with several
        choices per trial (rankings) have none.
    trial_type : TrialType
        The kind of trial (:data:`~oddoneout.triplets.ODD_ONE_OUT` by default,
        :data:`~oddoneout.triplets.ANCHOR`, :class:`~oddoneout.triplets.Ranked`); it owns the
        layout of the columns and the choice rule.
    """

    item_ids: tuple[str, ...]
    indices: np.ndarray
    probs: np.ndarray | None = None
    trial_type: TrialType = ODD_ONE_OUT
    _hash: list = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        indices = np.asarray(self.indices)
        width = self.trial_type.n_shown
        if indices.ndim != 2 or indices.shape[1] != width:
            raise InputError(f"triplets must have shape (n, {width}), got {indices.shape}")
        if not isinstance(self.trial_type, TrialType):
            raise InputError(f"trial_type must be a TrialType, got {self.trial_type!r}")
        if not np.issubdtype(indices.dtype, np.integer):
            raise InputError(f"triplet indices must be integers, got dtype {indices.dtype}")
        indices = indices.astype(np.int64, copy=False)
        validate_indices(indices, len(self.item_ids))
        if len(set(self.item_ids)) != len(self.item_ids):
            raise InputError("item ids must be unique")
        object.__setattr__(self, "item_ids", tuple(str(i) for i in self.item_ids))
        object.__setattr__(self, "indices", indices)
        if self.probs is not None:
            if not self.trial_type.supports_soft_labels:
                raise InputError(f"{self.trial_type.spec} trials make several choices: they have no soft labels")
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
    def chosen(self) -> np.ndarray:
        """Index of the (first) chosen item of each trial."""
        return self.indices[:, self.trial_type.chosen_column]

    @property
    def n_items(self) -> int:
        """Number of items in the vocabulary."""
        return len(self.item_ids)

    def hash(self) -> str:
        """Content hash of ids, indices and probabilities (cached)."""
        if not self._hash:
            parts = [hash_text(*self.item_ids), hash_array(self.indices)]
            if self.trial_type != ODD_ONE_OUT:  # odd-one-out hashes are those of earlier versions
                parts.append(hash_text(self.trial_type.spec))
            if self.probs is not None:
                parts.append(hash_array(self.probs))
            self._hash.append(hash_text(*parts))
        return self._hash[0]

    def subset(self, rows: np.ndarray) -> "Triplets":
        """The triplets at ``rows`` (an index or boolean array), same vocabulary."""
        probs = None if self.probs is None else self.probs[rows]
        return Triplets(self.item_ids, self.indices[rows], probs, self.trial_type)

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
        return Triplets(tuple(item_ids), lookup[self.indices], self.probs, self.trial_type)


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


@dataclass(frozen=True, eq=False)
class TrialSet:
    """Judgments of one or more trial types over one vocabulary: the input of a fit.

    Rows are numbered through the parts in order (the rows of ``parts[0]`` first).

    Parameters
    ----------
    parts : tuple of Triplets
        One or more, all over the same ``item_ids``.
    """

    parts: tuple[Triplets, ...]
    _hash: list = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = tuple(self.parts)
        if not parts or not all(isinstance(part, Triplets) for part in parts):
            raise InputError("a fit needs one or more Triplets objects")
        first = parts[0].item_ids
        for part in parts[1:]:
            if part.item_ids != first:
                raise InputError(
                    "trials of one fit must share a vocabulary: re-express them with "
                    "Triplets.reindex(item_ids) over one list of item ids"
                )
        object.__setattr__(self, "parts", parts)

    @classmethod
    def of(cls, trials: "Triplets | TrialSet | Sequence[Triplets]") -> "TrialSet":
        """``trials`` as a :class:`TrialSet` (one part for a single :class:`Triplets`)."""
        if isinstance(trials, TrialSet):
            return trials
        if isinstance(trials, Triplets):
            return cls((trials,))
        if isinstance(trials, (list, tuple)):
            return cls(tuple(trials))
        raise InputError(f"expected Triplets or a list of them, got {type(trials).__name__}")

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def offsets(self) -> np.ndarray:
        """First row of each part, then the total: shape ``(n_parts + 1,)``."""
        return np.concatenate([[0], np.cumsum([len(part) for part in self.parts])]).astype(np.int64)

    @property
    def item_ids(self) -> tuple[str, ...]:
        """The shared vocabulary."""
        return self.parts[0].item_ids

    @property
    def n_items(self) -> int:
        """Number of items in the vocabulary."""
        return len(self.item_ids)

    @property
    def has_probs(self) -> bool:
        """Whether every part carries soft labels."""
        return all(part.probs is not None for part in self.parts)

    def hash(self) -> str:
        """The part's hash for one part, else a hash of the parts' hashes (cached)."""
        if not self._hash:
            single = len(self.parts) == 1
            self._hash.append(self.parts[0].hash() if single else hash_text(*(p.hash() for p in self.parts)))
        return self._hash[0]

    def part_rows(self, rows: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """The ``rows`` (sorted or not) that fall in each part, as rows of that part (empty parts left out)."""
        rows = np.asarray(rows, dtype=np.int64)
        offsets = self.offsets
        which = np.searchsorted(offsets, rows, side="right") - 1
        return [(k, rows[which == k] - offsets[k]) for k in range(len(self.parts)) if np.any(which == k)]

    def subset(self, rows: np.ndarray) -> "TrialSet":
        """The trials at ``rows``, by part (parts with none left out; at least one must remain)."""
        return TrialSet(tuple(self.parts[k].subset(local) for k, local in self.part_rows(rows)))

    def used_items(self, rows: np.ndarray) -> np.ndarray:
        """Indices of the items shown in ``rows``."""
        used = [np.unique(self.parts[k].indices[local]) for k, local in self.part_rows(rows)]
        return np.unique(np.concatenate(used)) if used else np.zeros(0, dtype=np.int64)

    @property
    def chance_cross_entropy(self) -> float:
        """Mean cross-entropy per trial of guessing (each part's chance, weighted by its size)."""
        sizes = np.array([len(part) for part in self.parts], dtype=np.float64)
        chances = np.array([part.trial_type.chance_cross_entropy for part in self.parts])
        return float((sizes * chances).sum() / sizes.sum())
