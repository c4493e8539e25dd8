"""Triplet designs: which triplets are asked, in which shown order, and how many times.

A design is a table of trials. Each trial shows a *base triplet* (three distinct items,
in ascending vocabulary order) in one of the six orderings of :data:`PERMUTATIONS`, and
is identified by the key ``(design name, triplet_index, ordering, repeat)``: the key the
store uses, so a design can be collected, killed and resumed trial by trial.

Orderings are counterbalanced. With several orderings per triplet the orderings follow
:data:`ORDERING_SEQUENCE`, whose two halves are Latin squares (three orderings in which
every item takes every position once); the starting point in the sequence is balanced
within every block of consecutive triplets, so every ordering is shown equally often (to
within a block) over the design and over any part of it.

Random designs are prefix-stable: the same seed with more triplets gives the same first
triplets, orderings and keys, so a design can be extended and the store asks only the new
trials. (This holds while ``n_triplets`` stays under a quarter of all possible triplets, or
always when there are at most 2**22 possible triplets, i.e. up to 295 items.)
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from math import comb
from pathlib import Path
from typing import Sequence

import numpy as np

from oddoneout.errors import InputError
from oddoneout.files import read_npy
from oddoneout.triplets import ODD_ONE_OUT, random_triplet_indices, repeated_item_rows

#: The six orderings of a triplet: ordering ``k`` shows ``base[PERMUTATIONS[k]]``.
PERMUTATIONS = ODD_ONE_OUT.orderings

#: Orderings in the order they are assigned to a triplet asked several times:
#: (0,1,2) (1,2,0) (2,0,1) then (0,2,1) (2,1,0) (1,0,2); each half is a Latin square.
ORDERING_SEQUENCE = np.array([0, 3, 4, 1, 5, 2], dtype=np.int64)

# Bit layout of the int64 key code (see ``TripletDesign.key_codes``).
_REPEAT_BITS = 20
_ORDERING_BITS = 3
_TRIPLET_BITS = 63 - _REPEAT_BITS - _ORDERING_BITS


@dataclass(frozen=True, eq=False)
class TripletDesign:
    """A table of triplet trials.

    Parameters
    ----------
    name : str
        Design name, the first part of every trial key (``"random"``, ``"repeats"``...).
    items : ndarray of shape (n, 3), str
        Item ids in the order shown.
    triplet_index : ndarray of shape (n,), int
        Base triplet of each trial; trials showing the same unordered triplet share it.
    ordering : ndarray of shape (n,), int in 0..5
        Row of :data:`PERMUTATIONS` applied to the base triplet to get the shown order.
    repeat : ndarray of shape (n,), int
        Repeat number of the trial (0 for the first asking).
    seed : int or None
        Seed the design was drawn with.
    """

    name: str
    items: np.ndarray
    triplet_index: np.ndarray
    ordering: np.ndarray
    repeat: np.ndarray
    seed: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"design name must be a non-empty string, got {self.name!r}")
        items = np.asarray(self.items).astype(str)
        if items.ndim != 2 or items.shape[1] != 3:
            raise InputError(f"design {self.name!r}: items must have shape (n, 3), got {items.shape}")
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
        _check_range(self.name, "ordering", columns["ordering"], len(PERMUTATIONS))
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
        """The trials at ``rows`` (indices, a boolean mask or a slice), same name and seed."""
        return TripletDesign(
            self.name, self.items[rows], self.triplet_index[rows], self.ordering[rows], self.repeat[rows], self.seed
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

    def shown(self) -> list[tuple[str, str, str]]:
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


def _validate_item_ids(item_ids: Sequence[str]) -> np.ndarray:
    ids = np.asarray([str(i) for i in item_ids])
    if ids.ndim != 1 or ids.size < 3:
        raise InputError(f"a triplet design needs at least 3 item ids, got {ids.size}")
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


def _ordering_offsets(n_triplets: int, n_orderings: int, rng: np.random.Generator) -> np.ndarray:
    """Random start of each triplet in :data:`ORDERING_SEQUENCE`, balanced in blocks.

    Every block of consecutive triplets (6, or 2 with three orderings) uses each start once,
    so any prefix of the design is balanced to within one block.
    """
    # with three orderings, start at 0 or 3 so the three form one of the two Latin squares
    starts = np.array([0, 3]) if n_orderings == 3 else np.arange(len(ORDERING_SEQUENCE))
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
) -> TripletDesign:
    """Lay out ``n_rounds`` rounds over the base triplets: round ``j`` asks every triplet once.

    Round ``j`` shows triplet ``t`` in ordering ``ORDERING_SEQUENCE[(offset_t + j) % 6]`` when
    ``n_orderings > 1`` and in the round-0 ordering otherwise.
    """
    n_triplets = len(base)
    offsets = _ordering_offsets(n_triplets, n_orderings, rng)
    triplet_index = np.tile(np.arange(n_triplets, dtype=np.int64), n_rounds)
    rounds = np.repeat(np.arange(n_rounds, dtype=np.int64), n_triplets)
    steps = rounds if n_orderings > 1 else np.zeros_like(rounds)
    ordering = ORDERING_SEQUENCE[(np.tile(offsets, n_rounds) + steps) % len(ORDERING_SEQUENCE)]
    shown = np.take_along_axis(base[triplet_index], PERMUTATIONS[ordering], axis=1)
    repeat = rounds if rounds_are_repeats else np.zeros_like(rounds)
    return TripletDesign(name, ids[shown], triplet_index, ordering, repeat, seed)


def _check_count(value: int, what: str, low: int, high: int | None = None) -> int:
    if not isinstance(value, (int, np.integer)) or value < low or (high is not None and value > high):
        bound = f"in {low}..{high}" if high is not None else f">= {low}"
        raise InputError(f"{what} must be an integer {bound}, got {value!r}")
    return int(value)


def random_design(
    item_ids: Sequence[str], n_triplets: int, seed: int, n_orderings: int = 1, name: str = "random"
) -> TripletDesign:
    """Uniform random triplets, no unordered triplet drawn twice, orderings counterbalanced.

    Parameters
    ----------
    item_ids : sequence of str
        The items (at least 3, unique).
    n_triplets : int
        Number of distinct unordered triplets, at most C(n_items, 3).
    seed : int
        Seed of the draw, the orderings and their assignment.
    n_orderings : int
        How many orderings of each triplet are shown (1..6), as separate trials. With 1 each
        triplet is shown once in a random ordering, the six orderings used equally often; with 3
        every item of a triplet takes every position once.
    name : str
        Design name.

    Returns
    -------
    TripletDesign
        ``n_triplets * n_orderings`` trials, laid out in rounds: every triplet in its first
        ordering, then every triplet in its second ordering, and so on (so a collection cut short
        still covers distinct triplets). ``triplet_index`` numbers triplets in draw order.
    """
    ids = _validate_item_ids(item_ids)
    n_triplets = _check_count(n_triplets, "n_triplets", 1)
    n_orderings = _check_count(n_orderings, "n_orderings", 1, 6)
    triplet_rng, ordering_rng = _generators(seed)
    base = _sample_unique_triplets(len(ids), n_triplets, triplet_rng)
    return _build(name, ids, base, n_orderings, n_orderings, ordering_rng, seed, rounds_are_repeats=False)


def repeated_design(
    item_ids: Sequence[str],
    n_triplets: int,
    n_repeats: int,
    seed: int,
    name: str = "repeats",
    same_order: bool = False,
) -> TripletDesign:
    """Random distinct triplets each asked ``n_repeats`` times, for the noise ceiling.

    Parameters
    ----------
    item_ids : sequence of str
        The items.
    n_triplets : int
        Number of distinct unordered triplets.
    n_repeats : int
        Times each triplet is asked (>= 2); trial ``repeat`` is 0..n_repeats-1.
    seed : int
        Seed of the draw and the orderings.
    name : str
        Design name.
    same_order : bool
        Show every repeat in the same ordering. By default each repeat of a triplet gets a
        different ordering (cycling after six), so agreement across repeats measures consistency
        that does not hinge on the shown order: the ceiling an order-free embedding can reach.

    Returns
    -------
    TripletDesign
        ``n_triplets * n_repeats`` trials in rounds (all triplets' repeat 0, then repeat 1...), so
        repeats of one triplet are spread over the collection.
    """
    ids = _validate_item_ids(item_ids)
    n_triplets = _check_count(n_triplets, "n_triplets", 1)
    n_repeats = _check_count(n_repeats, "n_repeats", 2, 2**_REPEAT_BITS - 1)
    triplet_rng, ordering_rng = _generators(seed)
    base = _sample_unique_triplets(len(ids), n_triplets, triplet_rng)
    n_orderings = 1 if same_order else min(n_repeats, len(PERMUTATIONS))
    return _build(name, ids, base, n_repeats, n_orderings, ordering_rng, seed, rounds_are_repeats=True)


def exhaustive_design(
    item_ids: Sequence[str], name: str = "exhaustive", seed: int = 0, n_orderings: int = 1
) -> TripletDesign:
    """Every one of the C(n, 3) triplets of ``item_ids`` (e.g. a 66-item validation subset).

    Parameters
    ----------
    item_ids : sequence of str
        The subset of items.
    name : str
        Design name.
    seed : int
        Seed of the counterbalanced orderings.
    n_orderings : int
        Orderings shown per triplet (1..6), as in :func:`random_design`.

    Returns
    -------
    TripletDesign
        ``triplet_index`` is the lexicographic rank of the triplet over ``item_ids`` order.
    """
    ids = _validate_item_ids(item_ids)
    n_orderings = _check_count(n_orderings, "n_orderings", 1, 6)
    _, ordering_rng = _generators(seed)
    return _build(
        name, ids, all_triplets(len(ids)), n_orderings, n_orderings, ordering_rng, seed, rounds_are_repeats=False
    )


def listed_design(
    item_ids: Sequence[str],
    triplets: np.ndarray | Sequence[Sequence[str]],
    seed: int = 0,
    n_orderings: int = 1,
    name: str = "listed",
    shuffle_order: bool = True,
) -> TripletDesign:
    """A design over triplets the user lists (e.g. the triplets another study asked).

    Parameters
    ----------
    item_ids : sequence of str
        The items.
    triplets : array (n, 3) of item ids or of item indices, or a sequence of 3-id sequences
        The triplets to ask; each unordered triplet at most once.
    seed : int
        Seed of the orderings.
    n_orderings : int
        Orderings of each triplet shown (1..6), counterbalanced as in :func:`random_design`.
    name : str
        Design name.
    shuffle_order : bool
        Show each triplet in a counterbalanced random ordering (default). With ``False`` and
        ``n_orderings = 1`` each triplet is shown in the order listed.

    Raises
    ------
    InputError
        When a triplet names an unknown item, repeats an item, or is listed twice; the message
        gives the row.
    """
    ids = _validate_item_ids(item_ids)
    rows = np.asarray(triplets)
    if rows.ndim != 2 or rows.shape[1] != 3 or len(rows) == 0:
        raise InputError(f"design {name!r}: the listed triplets must be an (n, 3) table, got shape {rows.shape}")
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
    _, first, counts = np.unique(np.sort(base, axis=1), axis=0, return_index=True, return_counts=True)
    if (counts > 1).any():
        duplicated = np.sort(base, axis=1)[first[counts > 1][0]].tolist()
        raise InputError(f"design {name!r}: the triplet {[str(ids[i]) for i in duplicated]} is listed twice")
    n_orderings = _check_count(n_orderings, "n_orderings", 1, 6)
    _, ordering_rng = _generators(seed)
    if not shuffle_order and n_orderings == 1:
        n = len(base)
        zeros = np.zeros(n, dtype=np.int64)
        return TripletDesign(name, ids[base], np.arange(n, dtype=np.int64), zeros, zeros.copy(), seed)
    return _build(name, ids, base, n_orderings, n_orderings, ordering_rng, seed, rounds_are_repeats=False)


def read_triplet_list(path: str | Path) -> np.ndarray:
    """Read a list of triplets to ask: ``.npy`` (n x 3 item indices) or text, three item ids per line.

    Text lines are split on commas, tabs or spaces; blank lines and lines starting with ``#`` are
    skipped. A line without exactly three fields is an :class:`InputError` naming it.
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
        if len(fields) != 3:
            raise InputError(f"{path}, line {number}: expected three item ids, found {len(fields)}")
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
