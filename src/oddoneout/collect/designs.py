"""Trial designs: which trials are asked, in which shown order, and how many times.

A design is a table of trials of one trial type (odd-one-out by default; anchor and ranked
trials, :mod:`oddoneout.triplets.reference`). Each trial shows a *base trial* in one of the
orderings of its type (:attr:`TrialType.orderings <oddoneout.triplets.TrialType.orderings>`), and
is identified by the key ``(design name, triplet_index, ordering, repeat)``: the key the store
uses, so a design can be collected, killed and resumed trial by trial. An odd-one-out base trial
is three distinct items in ascending vocabulary order, shown in one of the six orderings of
:data:`PERMUTATIONS`; an anchor or ranked base trial is a reference followed by its options in
ascending vocabulary order, and an ordering permutes the options only (the reference is always
shown first). "Without repetition" means no unordered triplet, respectively no reference with
the same set of options, is drawn twice.

Orderings are counterbalanced. With several orderings per trial the orderings follow
:func:`ordering_sequence`: the rotations of the items that move (all three of a triplet, the
options of a reference trial), then the rotations of their mirror image, each half a Latin
square (every item takes every position once); for odd-one-out that is :data:`ORDERING_SEQUENCE`.
The starting point in the sequence is balanced within every block of consecutive trials, so
every ordering is shown equally often (to within a block) over the design and over any part of it.

Random designs are prefix-stable: the same seed with more trials gives the same first trials,
orderings and keys, so a design can be extended and the store asks only the new trials. (This
holds while ``n_triplets`` stays under a quarter of all possible base trials, or always when
there are at most 2**22 of them, e.g. up to 295 items for odd-one-out.)
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from math import comb, factorial
from pathlib import Path
from typing import Sequence

import numpy as np

from oddoneout.errors import InputError
from oddoneout.files import read_npy
from oddoneout.triplets import ODD_ONE_OUT, TrialType, random_trial_indices, random_triplet_indices, repeated_item_rows

#: The six orderings of a triplet: ordering ``k`` shows ``base[PERMUTATIONS[k]]``.
PERMUTATIONS = ODD_ONE_OUT.orderings

#: Orderings in the order they are assigned to a triplet asked several times:
#: (0,1,2) (1,2,0) (2,0,1) then (0,2,1) (2,1,0) (1,0,2); each half is a Latin square.
ORDERING_SEQUENCE = np.array([0, 3, 4, 1, 5, 2], dtype=np.int64)

# Bit layout of the int64 key code (see ``TripletDesign.key_codes``; codes are never stored): the
# orderings of 8 options and a reference (8! = 40320) fit the ordering field.
_REPEAT_BITS = 16
_ORDERING_BITS = 16
_TRIPLET_BITS = 63 - _REPEAT_BITS - _ORDERING_BITS
#: Most items a designed trial shows (a reference and 8 options): its orderings are numbered in 16 bits.
MAX_SHOWN = 9


def _orderings(trial_type: TrialType) -> np.ndarray:
    """The orderings of ``trial_type``; an InputError for a type showing more than :data:`MAX_SHOWN` items."""
    if not isinstance(trial_type, TrialType):
        raise InputError(f"trial_type must be a TrialType, got {trial_type!r}")
    if trial_type.n_shown > MAX_SHOWN:
        raise InputError(
            f"a design shows at most {MAX_SHOWN} items per trial (a reference and {MAX_SHOWN - 1} options); "
            f"{trial_type.spec} trials show {trial_type.n_shown}"
        )
    return trial_type.orderings


def _moving_positions(trial_type: TrialType) -> np.ndarray:
    """The shown positions an ordering moves (all of a triplet; the options of a reference trial)."""
    orderings = _orderings(trial_type)
    return np.flatnonzero((orderings != np.arange(trial_type.n_shown)).any(axis=0))


def _ordering_number(trial_type: TrialType, permutation: Sequence[int]) -> int:
    """Row of ``trial_type.orderings`` holding ``permutation`` (its lexicographic rank among them)."""
    moving = [int(p) for p in np.asarray(permutation)[_moving_positions(trial_type)]]
    number, left = 0, sorted(moving)
    for value in moving:
        at = left.index(value)
        number += at * factorial(len(left) - 1)
        left.pop(at)
    return number


def ordering_sequence(trial_type: TrialType = ODD_ONE_OUT) -> np.ndarray:
    """Orderings in the order they are assigned to a trial shown in several orderings.

    The rotations of the moving positions (all three of an odd-one-out trial, the options of an
    anchor or ranked trial), then the rotations of their mirror image; each half is a Latin
    square, every moving item taking every moving position once. Orderings appearing twice (an
    anchor trial's two options have two orderings in all) are kept once.

    Returns
    -------
    ndarray of int64
        Rows of ``trial_type.orderings``; :data:`ORDERING_SEQUENCE` for odd-one-out.
    """
    moving = _moving_positions(trial_type)
    m = len(moving)
    sequence: list[int] = []
    for mirror in (False, True):
        for r in range(m):
            permutation = np.arange(trial_type.n_shown)
            steps = [(-(j + r)) % m if mirror else (j + r) % m for j in range(m)]
            permutation[moving] = moving[steps]
            number = _ordering_number(trial_type, permutation)
            if number not in sequence:
                sequence.append(number)
    return np.array(sequence, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class TripletDesign:
    """A table of trials of one trial type (triplets by default; the name is the odd-one-out one's).

    Parameters
    ----------
    name : str
        Design name, the first part of every trial key (``"random"``, ``"repeats"``...).
    items : ndarray of shape (n, trial_type.n_shown), str
        Item ids in the order shown (for anchor and ranked trials the reference first).
    triplet_index : ndarray of shape (n,), int
        Base trial of each trial; trials showing the same unordered triplet (the same reference
        with the same set of options) share it.
    ordering : ndarray of shape (n,), int
        Row of ``trial_type.orderings`` (:data:`PERMUTATIONS` for triplets) applied to the base
        trial to get the shown order.
    repeat : ndarray of shape (n,), int
        Repeat number of the trial (0 for the first asking).
    seed : int or None
        Seed the design was drawn with.
    trial_type : TrialType
        The kind of trial (:data:`~oddoneout.triplets.ODD_ONE_OUT` by default).
    """

    name: str
    items: np.ndarray
    triplet_index: np.ndarray
    ordering: np.ndarray
    repeat: np.ndarray
    seed: int | None = None
    trial_type: TrialType = ODD_ONE_OUT

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"design name must be a non-empty string, got {self.name!r}")
        n_orderings = len(_orderings(self.trial_type))
        width = self.trial_type.n_shown
        items = np.asarray(self.items).astype(str)
        if items.ndim != 2 or items.shape[1] != width:
            raise InputError(
                f"design {self.name!r}: items of {self.trial_type.spec} trials must have shape (n, {width}), "
                f"got {items.shape}"
            )
        n = items.shape[0]
        columns = {}
        for field_name in ("triplet_index", "ordering", "repeat"):
            values = np.asarray(getattr(self, field_name))
            if values.shape != (n,):
                raise InputError(f"design {self.name!r}: {field_name} must have shape ({n},), got {values.shape}")
            if n and not np.issubdtype(values.dtype, np.integer):
                raise InputError(f"design {self.name!r}: {field_name} must be integers, got {values.dtype}")
            columns[field_name] = values.astype(np.int64)
        _check_range(self.name, "triplet_index", columns["triplet_index"], 2**_TRIPLET_BITS)
        _check_range(self.name, "ordering", columns["ordering"], n_orderings)
        _check_range(self.name, "repeat", columns["repeat"], 2**_REPEAT_BITS)
        same = repeated_item_rows(items)
        if same.size:
            row = int(same[0])
            raise InputError(f"design {self.name!r}: row {row} repeats an item: {items[row].tolist()}")
        object.__setattr__(self, "items", items)
        for field_name, values in columns.items():
            object.__setattr__(self, field_name, values)
        codes = self.key_codes()
        unique, first = np.unique(codes, return_index=True)
        if unique.size != n:
            duplicated = np.setdiff1d(np.arange(n), first)[0]
            raise InputError(f"design {self.name!r}: row {duplicated} repeats the key {self._key(duplicated)}")

    def __len__(self) -> int:
        return int(self.items.shape[0])

    def _key(self, row: int) -> tuple[str, int, int, int]:
        return (self.name, int(self.triplet_index[row]), int(self.ordering[row]), int(self.repeat[row]))

    def subset(self, rows: np.ndarray | slice | Sequence[int]) -> "TripletDesign":
        """The trials at ``rows`` (indices, a boolean mask or a slice), same name, seed and trial type."""
        return TripletDesign(
            self.name,
            self.items[rows],
            self.triplet_index[rows],
            self.ordering[rows],
            self.repeat[rows],
            self.seed,
            self.trial_type,
        )

    def keys(self) -> list[tuple[str, int, int, int]]:
        """Store key of every trial: ``(name, triplet_index, ordering, repeat)``."""
        return list(
            zip(
                itertools.repeat(self.name, len(self)),
                self.triplet_index.tolist(),
                self.ordering.tolist(),
                self.repeat.tolist(),
            )
        )

    def key_codes(self) -> np.ndarray:
        """Each trial's key within the design packed into one int64 (for fast set operations)."""
        return encode_keys(self.triplet_index, self.ordering, self.repeat)

    def shown(self) -> list[tuple[str, ...]]:
        """Item ids of every trial in the order shown, as the agents take them."""
        return [tuple(row) for row in self.items.tolist()]


def encode_keys(triplet_index: np.ndarray, ordering: np.ndarray, repeat: np.ndarray) -> np.ndarray:
    """Pack ``(triplet_index, ordering, repeat)`` into one int64 per trial."""
    triplet_index = np.asarray(triplet_index, dtype=np.int64)
    ordering = np.asarray(ordering, dtype=np.int64)
    repeat = np.asarray(repeat, dtype=np.int64)
    return (triplet_index << (_ORDERING_BITS + _REPEAT_BITS)) | (ordering << _REPEAT_BITS) | repeat


def _check_range(name: str, field_name: str, values: np.ndarray, upper: int) -> None:
    bad = np.flatnonzero((values < 0) | (values >= upper))
    if bad.size:
        row = int(bad[0])
        raise InputError(f"design {name!r}: row {row} has {field_name} {values[row]} outside [0, {upper})")


def _validate_item_ids(item_ids: Sequence[str], trial_type: TrialType = ODD_ONE_OUT) -> np.ndarray:
    ids = np.asarray([str(i) for i in item_ids])
    width = trial_type.n_shown
    if ids.ndim != 1 or ids.size < width:
        what = "a triplet design" if trial_type == ODD_ONE_OUT else f"a design of {trial_type.spec} trials"
        raise InputError(f"{what} needs at least {width} item ids, got {ids.size}")
    unique, counts = np.unique(ids, return_counts=True)
    if unique.size != ids.size:
        raise InputError(f"item ids must be unique; repeated: {unique[counts > 1][:5].tolist()}")
    return ids


def all_triplets(n_items: int) -> np.ndarray:
    """Every unordered triplet of ``n_items`` items as ascending index rows, in lexicographic order.

    Returns
    -------
    ndarray of shape (C(n_items, 3), 3), int64
    """
    first, second = np.triu_indices(n_items, 1)
    n_third = n_items - 1 - second  # how many k > second each pair (first, second) takes
    total = int(n_third.sum())
    starts = np.cumsum(n_third) - n_third
    third = np.repeat(second + 1, n_third) + (np.arange(total) - np.repeat(starts, n_third))
    return np.column_stack([np.repeat(first, n_third), np.repeat(second, n_third), third]).astype(np.int64)


#: Designs over at most this many possible triplets are drawn from a permutation of all of them.
_ENUMERATE_LIMIT = 2**22
#: Triplets drawn per round of rejection sampling (fixed, so a longer design extends a shorter one).
_DRAW_CHUNK = 2**16


def _sample_unique_triplets(n_items: int, n_triplets: int, rng: np.random.Generator) -> np.ndarray:
    """``n_triplets`` distinct unordered triplets drawn uniformly, as ascending index rows in draw order.

    The draw is prefix-stable: with the same generator state, asking for more triplets returns
    the same first ones (as long as both requests fall in the same regime below).
    """
    total = comb(n_items, 3)
    if n_triplets > total:
        raise InputError(
            f"cannot draw {n_triplets} distinct triplets from {n_items} items: only C({n_items}, 3) = {total} exist"
        )
    if total <= _ENUMERATE_LIMIT or 4 * n_triplets >= total:
        # Few possible triplets, or most of them wanted: rejection would stall, so permute them all.
        return all_triplets(n_items)[rng.permutation(total)[:n_triplets]]
    if n_items >= 2**21:
        raise InputError(f"too many items for a triplet design: {n_items}")
    # Sparse request: draw uniformly in fixed-size chunks and keep the first occurrence of each
    # sorted-triplet code (first occurrences of an i.i.d. stream are a uniform random sequence
    # without repetition, and those of a longer stream begin with those of a shorter one).
    chunks: list[np.ndarray] = []
    expected_draws = -total * np.log1p(-n_triplets / total)  # coupon collector, n_triplets <= total / 4
    target = int(expected_draws * 1.01) + _DRAW_CHUNK
    while True:
        while len(chunks) * _DRAW_CHUNK < target:
            chunks.append(np.sort(random_triplet_indices(n_items, _DRAW_CHUNK, rng), axis=1))
        drawn = np.concatenate(chunks)
        codes = (drawn[:, 0] * n_items + drawn[:, 1]) * n_items + drawn[:, 2]
        _, first = np.unique(codes, return_index=True)
        if first.size >= n_triplets:
            return drawn[np.sort(first)[:n_triplets]]
        target += 2 * (n_triplets - first.size) + _DRAW_CHUNK


def _ordering_offsets(
    n_triplets: int, n_orderings: int, rng: np.random.Generator, trial_type: TrialType = ODD_ONE_OUT
) -> np.ndarray:
    """Random start of each trial in :func:`ordering_sequence`, balanced in blocks.

    Every block of consecutive trials (as many as the sequence is long, or 2 when the orderings
    asked are one Latin square) uses each start once, so any prefix of the design is balanced
    to within one block.
    """
    length = len(ordering_sequence(trial_type))
    square = len(_moving_positions(trial_type))
    # with a Latin square's worth of orderings, start at 0 or at its size so they form one of the two squares
    starts = np.array([0, square]) if n_orderings == square and length == 2 * square else np.arange(length)
    n_blocks = -(-n_triplets // len(starts))
    return rng.permuted(np.tile(starts, (n_blocks, 1)), axis=1).ravel()[:n_triplets]


def _generators(seed: int | None) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the triplets and for their orderings."""
    triplets, orderings = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(triplets), np.random.default_rng(orderings)


def _build(
    name: str,
    ids: np.ndarray,
    base: np.ndarray,
    n_rounds: int,
    n_orderings: int,
    rng: np.random.Generator,
    seed: int | None,
    rounds_are_repeats: bool,
    trial_type: TrialType = ODD_ONE_OUT,
) -> TripletDesign:
    """Lay out ``n_rounds`` rounds over the base trials: round ``j`` asks every base trial once.

    Round ``j`` shows base trial ``t`` in ordering ``sequence[(offset_t + j) % len(sequence)]``
    (``sequence`` = :func:`ordering_sequence`) when ``n_orderings > 1`` and in the round-0
    ordering otherwise.
    """
    sequence = ordering_sequence(trial_type)
    n_triplets = len(base)
    offsets = _ordering_offsets(n_triplets, n_orderings, rng, trial_type)
    triplet_index = np.tile(np.arange(n_triplets, dtype=np.int64), n_rounds)
    rounds = np.repeat(np.arange(n_rounds, dtype=np.int64), n_triplets)
    steps = rounds if n_orderings > 1 else np.zeros_like(rounds)
    ordering = sequence[(np.tile(offsets, n_rounds) + steps) % len(sequence)]
    shown = np.take_along_axis(base[triplet_index], trial_type.orderings[ordering], axis=1)
    repeat = rounds if rounds_are_repeats else np.zeros_like(rounds)
    return TripletDesign(name, ids[shown], triplet_index, ordering, repeat, seed, trial_type)


def _check_orderings(value: int, trial_type: TrialType) -> int:
    """``n_orderings`` checked against the orderings the trial type's sequence offers."""
    return _check_count(value, "n_orderings", 1, len(ordering_sequence(trial_type)))


def _combinations(n: int, k: int) -> np.ndarray:
    """Every ``k``-subset of ``range(n)`` as ascending rows, in lexicographic order."""
    if k == 3:
        return all_triplets(n)
    if k == 2:
        return np.column_stack(np.triu_indices(n, 1)).astype(np.int64)
    flat = itertools.chain.from_iterable(itertools.combinations(range(n), k))
    return np.fromiter(flat, dtype=np.int64, count=comb(n, k) * k).reshape(-1, k)


def all_reference_trials(n_items: int, trial_type: TrialType) -> np.ndarray:
    """Every reference with every set of options of ``n_items`` items, in lexicographic order.

    Returns
    -------
    ndarray of shape (n_items * C(n_items - 1, n_options), 1 + n_options), int64
        Rows ``[reference, options in ascending order]``, sorted by reference, then options.
    """
    n_options = trial_type.n_shown - 1
    options = _combinations(n_items - 1, n_options)
    rows = [
        np.column_stack([np.full(len(options), reference), options + (options >= reference)])
        for reference in range(n_items)
    ]
    return np.concatenate(rows).astype(np.int64)


def n_base_trials(n_items: int, trial_type: TrialType = ODD_ONE_OUT) -> int:
    """How many distinct base trials ``n_items`` items make: C(n, 3) triplets, n * C(n - 1, k) reference trials."""
    if trial_type == ODD_ONE_OUT:
        return comb(n_items, 3)
    return n_items * comb(n_items - 1, trial_type.n_shown - 1)


def _unordered(rows: np.ndarray, trial_type: TrialType) -> np.ndarray:
    """Each row with the items an ordering moves sorted: equal for two orderings of one base trial."""
    moving = _moving_positions(trial_type)
    out = np.array(rows, copy=True)
    out[:, moving] = np.sort(out[:, moving], axis=1)
    return out


def _sample_unique_reference_trials(
    n_items: int, trial_type: TrialType, n_trials: int, rng: np.random.Generator
) -> np.ndarray:
    """``n_trials`` distinct base reference trials drawn uniformly, as ``[reference, ascending options]`` rows.

    Prefix-stable as :func:`_sample_unique_triplets`: distinct means another reference or another
    set of options.
    """
    total = n_base_trials(n_items, trial_type)
    if n_trials > total:
        raise InputError(
            f"cannot draw {n_trials} distinct {trial_type.spec} trials from {n_items} items: only "
            f"{n_items} * C({n_items - 1}, {trial_type.n_shown - 1}) = {total} exist"
        )
    if total <= _ENUMERATE_LIMIT or 4 * n_trials >= total:
        return all_reference_trials(n_items, trial_type)[rng.permutation(total)[:n_trials]]
    chunks: list[np.ndarray] = []
    expected_draws = -total * np.log1p(-n_trials / total)
    target = int(expected_draws * 1.01) + _DRAW_CHUNK
    while True:
        while len(chunks) * _DRAW_CHUNK < target:
            drawn = random_trial_indices(n_items, trial_type.n_shown, _DRAW_CHUNK, rng)
            chunks.append(_unordered(drawn, trial_type))
        drawn = np.concatenate(chunks)
        _, first = np.unique(drawn, axis=0, return_index=True)
        if first.size >= n_trials:
            return drawn[np.sort(first)[:n_trials]]
        target += 2 * (n_trials - first.size) + _DRAW_CHUNK


def _sample_base(n_items: int, n_triplets: int, rng: np.random.Generator, trial_type: TrialType) -> np.ndarray:
    """Distinct base trials of ``trial_type`` drawn uniformly (:func:`_sample_unique_triplets` for triplets)."""
    if trial_type == ODD_ONE_OUT:
        return _sample_unique_triplets(n_items, n_triplets, rng)
    return _sample_unique_reference_trials(n_items, trial_type, n_triplets, rng)


def _check_count(value: int, what: str, low: int, high: int | None = None) -> int:
    if not isinstance(value, (int, np.integer)) or value < low or (high is not None and value > high):
        bound = f"in {low}..{high}" if high is not None else f">= {low}"
        raise InputError(f"{what} must be an integer {bound}, got {value!r}")
    return int(value)


def random_design(
    item_ids: Sequence[str],
    n_triplets: int,
    seed: int,
    n_orderings: int = 1,
    name: str = "random",
    trial_type: TrialType = ODD_ONE_OUT,
) -> TripletDesign:
    """Uniform random trials, no base trial drawn twice, orderings counterbalanced.

    Parameters
    ----------
    item_ids : sequence of str
        The items (at least as many as a trial shows, unique).
    n_triplets : int
        Number of distinct base trials: unordered triplets, at most C(n_items, 3); for anchor and
        ranked trials references with a set of options, at most n_items * C(n_items - 1, n_options).
    seed : int
        Seed of the draw, the orderings and their assignment.
    n_orderings : int
        How many orderings of each base trial are shown, as separate trials (1..6 for triplets,
        up to ``len(ordering_sequence(trial_type))``). With 1 each trial is shown once in a random
        ordering, every ordering of the sequence used equally often; with a Latin square's worth
        (3 for triplets) every moving item takes every moving position once.
    name : str
        Design name.
    trial_type : TrialType
        The kind of trial (odd-one-out by default).

    Returns
    -------
    TripletDesign
        ``n_triplets * n_orderings`` trials, laid out in rounds: every base trial in its first
        ordering, then every one in its second ordering, and so on (so a collection cut short
        still covers distinct base trials). ``triplet_index`` numbers base trials in draw order.
    """
    ids = _validate_item_ids(item_ids, trial_type)
    n_triplets = _check_count(n_triplets, "n_triplets", 1)
    n_orderings = _check_orderings(n_orderings, trial_type)
    triplet_rng, ordering_rng = _generators(seed)
    base = _sample_base(len(ids), n_triplets, triplet_rng, trial_type)
    return _build(
        name, ids, base, n_orderings, n_orderings, ordering_rng, seed, rounds_are_repeats=False, trial_type=trial_type
    )


def repeated_design(
    item_ids: Sequence[str],
    n_triplets: int,
    n_repeats: int,
    seed: int,
    name: str = "repeats",
    same_order: bool = False,
    trial_type: TrialType = ODD_ONE_OUT,
) -> TripletDesign:
    """Random distinct base trials each asked ``n_repeats`` times, for the noise ceiling.

    Parameters
    ----------
    item_ids : sequence of str
        The items.
    n_triplets : int
        Number of distinct base trials (unordered triplets; references with a set of options).
    n_repeats : int
        Times each base trial is asked (>= 2); trial ``repeat`` is 0..n_repeats-1.
    seed : int
        Seed of the draw and the orderings.
    name : str
        Design name.
    same_order : bool
        Show every repeat in the same ordering. By default each repeat of a base trial gets a
        different ordering (cycling after :func:`ordering_sequence`: six for triplets, two for
        anchor trials), so agreement across repeats measures consistency that does not hinge on
        the shown order: the ceiling an order-free embedding can reach.
    trial_type : TrialType
        The kind of trial (odd-one-out by default).

    Returns
    -------
    TripletDesign
        ``n_triplets * n_repeats`` trials in rounds (all base trials' repeat 0, then repeat 1...),
        so repeats of one base trial are spread over the collection.
    """
    ids = _validate_item_ids(item_ids, trial_type)
    n_triplets = _check_count(n_triplets, "n_triplets", 1)
    n_repeats = _check_count(n_repeats, "n_repeats", 2, 2**_REPEAT_BITS - 1)
    triplet_rng, ordering_rng = _generators(seed)
    base = _sample_base(len(ids), n_triplets, triplet_rng, trial_type)
    n_orderings = 1 if same_order else min(n_repeats, len(ordering_sequence(trial_type)))
    return _build(
        name, ids, base, n_repeats, n_orderings, ordering_rng, seed, rounds_are_repeats=True, trial_type=trial_type
    )


#: Most base trials an exhaustive design of anchor or ranked trials enumerates.
_EXHAUSTIVE_LIMIT = 2**26


def exhaustive_design(
    item_ids: Sequence[str],
    name: str = "exhaustive",
    seed: int = 0,
    n_orderings: int = 1,
    trial_type: TrialType = ODD_ONE_OUT,
) -> TripletDesign:
    """Every base trial of ``item_ids`` (e.g. a 66-item validation subset).

    For triplets the C(n, 3) unordered triplets; for anchor and ranked trials every reference
    with every set of options, n * C(n - 1, n_options) of them (an anchor design of a 30-item
    subset asks 12,180).

    Parameters
    ----------
    item_ids : sequence of str
        The subset of items.
    name : str
        Design name.
    seed : int
        Seed of the counterbalanced orderings.
    n_orderings : int
        Orderings shown per base trial, as in :func:`random_design`.
    trial_type : TrialType
        The kind of trial (odd-one-out by default).

    Returns
    -------
    TripletDesign
        ``triplet_index`` is the lexicographic rank of the base trial over ``item_ids`` order
        (for reference trials by reference, then options).
    """
    ids = _validate_item_ids(item_ids, trial_type)
    n_orderings = _check_orderings(n_orderings, trial_type)
    _, ordering_rng = _generators(seed)
    if trial_type == ODD_ONE_OUT:
        base = all_triplets(len(ids))
    else:
        total = n_base_trials(len(ids), trial_type)
        if total > _EXHAUSTIVE_LIMIT:
            raise InputError(
                f"design {name!r}: {len(ids)} items make {total:,} {trial_type.spec} trials, too many to ask "
                f"every one (at most {_EXHAUSTIVE_LIMIT:,}): use fewer items"
            )
        base = all_reference_trials(len(ids), trial_type)
    return _build(
        name, ids, base, n_orderings, n_orderings, ordering_rng, seed, rounds_are_repeats=False, trial_type=trial_type
    )


def listed_design(
    item_ids: Sequence[str],
    triplets: np.ndarray | Sequence[Sequence[str]],
    seed: int = 0,
    n_orderings: int = 1,
    name: str = "listed",
    shuffle_order: bool = True,
    trial_type: TrialType = ODD_ONE_OUT,
) -> TripletDesign:
    """A design over trials the user lists (e.g. the triplets another study asked).

    Parameters
    ----------
    item_ids : sequence of str
        The items.
    triplets : array (n, trial_type.n_shown) of item ids or of item indices, or a sequence of id sequences
        The trials to ask (for anchor and ranked trials the reference first); each unordered
        triplet (each reference with a set of options) at most once.
    seed : int
        Seed of the orderings.
    n_orderings : int
        Orderings of each trial shown, counterbalanced as in :func:`random_design`.
    name : str
        Design name.
    shuffle_order : bool
        Show each trial in a counterbalanced random ordering (default). With ``False`` and
        ``n_orderings = 1`` each trial is shown in the order listed.
    trial_type : TrialType
        The kind of trial (odd-one-out by default).

    Raises
    ------
    InputError
        When a trial names an unknown item, repeats an item, or is listed twice; the message
        gives the row.
    """
    ids = _validate_item_ids(item_ids, trial_type)
    width = trial_type.n_shown
    rows = np.asarray(triplets)
    if rows.ndim != 2 or rows.shape[1] != width or len(rows) == 0:
        what = "triplets" if trial_type == ODD_ONE_OUT else f"{trial_type.spec} trials"
        raise InputError(f"design {name!r}: the listed {what} must be an (n, {width}) table, got shape {rows.shape}")
    if rows.dtype.kind in "iu":
        base = rows.astype(np.int64)
        bad = np.flatnonzero(((base < 0) | (base >= len(ids))).any(axis=1))
        if len(bad):
            raise InputError(f"design {name!r}: row {bad[0]} has an index outside 0..{len(ids) - 1}")
    else:
        position = {item: i for i, item in enumerate(ids.tolist())}
        unknown = [(r, item) for r, row in enumerate(rows.tolist()) for item in row if str(item) not in position]
        if unknown:
            raise InputError(f"design {name!r}: row {unknown[0][0]} names unknown item {unknown[0][1]!r}")
        base = np.array([[position[str(item)] for item in row] for row in rows.tolist()], dtype=np.int64)
    repeated = repeated_item_rows(base)
    if len(repeated):
        raise InputError(f"design {name!r}: row {repeated[0]} repeats an item")
    unordered = _unordered(base, trial_type)
    _, first, counts = np.unique(unordered, axis=0, return_index=True, return_counts=True)
    if (counts > 1).any():
        duplicated = unordered[first[counts > 1][0]].tolist()
        what = "triplet" if trial_type == ODD_ONE_OUT else "trial"
        raise InputError(f"design {name!r}: the {what} {[str(ids[i]) for i in duplicated]} is listed twice")
    n_orderings = _check_orderings(n_orderings, trial_type)
    _, ordering_rng = _generators(seed)
    if not shuffle_order and n_orderings == 1:
        n = len(base)
        zeros = np.zeros(n, dtype=np.int64)
        return TripletDesign(name, ids[base], np.arange(n, dtype=np.int64), zeros, zeros.copy(), seed, trial_type)
    return _build(
        name, ids, base, n_orderings, n_orderings, ordering_rng, seed, rounds_are_repeats=False, trial_type=trial_type
    )


def read_triplet_list(path: str | Path, n_shown: int = 3) -> np.ndarray:
    """Read a list of trials to ask: ``.npy`` (n x n_shown item indices) or text, ``n_shown`` item ids per line.

    Text lines are split on commas, tabs or spaces; blank lines and lines starting with ``#`` are
    skipped. A line without exactly ``n_shown`` fields (three for triplets; for anchor and ranked
    trials the reference, then the options) is an :class:`InputError` naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"triplet list not found: {path}")
    if path.suffix == ".npy":
        return read_npy(path, remedy="save the list again with numpy.save, or fix [design] triplets")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f for f in re.split(r"[,\t ]+", line) if f]
        if len(fields) != n_shown:
            expected = "three" if n_shown == 3 else str(n_shown)
            raise InputError(f"{path}, line {number}: expected {expected} item ids, found {len(fields)}")
        rows.append(fields)
    if not rows:
        raise InputError(f"{path}: no triplets")
    return np.array(rows, dtype=str)


def concat_designs(*designs: TripletDesign) -> list[TripletDesign]:
    """Several designs to collect into one store, checked for distinct names.

    Keys are ``(design name, triplet_index, ordering, repeat)``, so distinct names keep every
    trial distinct. :func:`oddoneout.collect.runner.collect` accepts the returned list.
    """
    if not designs:
        raise InputError("concat_designs needs at least one design")
    for design in designs:
        if not isinstance(design, TripletDesign):
            raise InputError(f"not a TripletDesign: {design!r}")
    names = [design.name for design in designs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"designs to combine must have distinct names; repeated: {repeated}")
    return list(designs)
