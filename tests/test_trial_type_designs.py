"""Designs of anchor and ranked trials: the reference first, no reference asked twice with the same options,
the options counterbalanced, repeats, exhaustive subsets and listed trials."""

from math import comb

import numpy as np
import pytest

from oddoneout.collect.designs import (
    ORDERING_SEQUENCE,
    all_reference_trials,
    exhaustive_design,
    listed_design,
    n_base_trials,
    ordering_sequence,
    random_design,
    read_triplet_list,
    repeated_design,
)
from oddoneout.errors import InputError
from oddoneout.triplets import ANCHOR, ODD_ONE_OUT, Ranked

ITEMS = [f"item{i:03d}" for i in range(30)]
RANKED = Ranked(4, 2)


def _base(design):
    """Each trial as (reference, sorted options)."""
    return np.column_stack([design.items[:, :1], np.sort(design.items[:, 1:], axis=1)])


def _n_distinct(rows):
    return len({tuple(row) for row in rows.tolist()})


def test_the_odd_one_out_sequence_is_the_latin_squares_it_always_was():
    assert np.array_equal(ordering_sequence(ODD_ONE_OUT), ORDERING_SEQUENCE)
    assert ordering_sequence(ANCHOR).tolist() == [0, 1]
    sequence = ordering_sequence(RANKED)
    assert len(sequence) == 8
    shown = RANKED.orderings[sequence]
    assert (shown[:, 0] == 0).all()  # the reference stays first
    for half in (shown[:4], shown[4:]):  # each half puts every option in every option position once
        assert all(sorted(column) == [1, 2, 3, 4] for column in half[:, 1:].T)


@pytest.mark.parametrize("kind", [ANCHOR, RANKED])
def test_random_design_never_repeats_a_reference_with_the_same_options(kind):
    design = random_design(ITEMS, 400, seed=1, trial_type=kind)
    assert design.trial_type == kind and design.items.shape == (400, kind.n_shown)
    base = _base(design)
    assert _n_distinct(base) == 400
    assert np.array_equal(design.triplet_index, np.arange(400))
    # the shown order is an ordering of the options of the base trial, the reference first
    position = {item: i for i, item in enumerate(ITEMS)}
    shown = np.vectorize(position.get)(design.items)
    sorted_base = np.column_stack([shown[:, :1], np.sort(shown[:, 1:], axis=1)])
    assert np.array_equal(np.take_along_axis(sorted_base, kind.orderings[design.ordering], axis=1), shown)
    counts = np.bincount(design.ordering, minlength=len(kind.orderings))[ordering_sequence(kind)]
    assert counts.max() - counts.min() <= 1  # one ordering each, balanced over the sequence


def test_the_same_items_with_another_reference_are_another_trial():
    items = ITEMS[:4]
    total = n_base_trials(4, ANCHOR)
    assert total == 4 * comb(3, 2) == 12
    design = random_design(items, total, seed=0, trial_type=ANCHOR)
    assert _n_distinct(_base(design)) == 12  # every reference with every pair of the others
    with pytest.raises(InputError, match=r"4 \* C\(3, 2\) = 12 exist"):
        random_design(items, 13, seed=0, trial_type=ANCHOR)


@pytest.mark.parametrize("n_orderings", [2, 4, 8])
def test_counterbalanced_orderings_permute_the_options_only(n_orderings):
    design = random_design(ITEMS, 200, seed=3, n_orderings=n_orderings, trial_type=RANKED)
    assert len(design) == 200 * n_orderings
    for index in (0, 77, 199):
        rows = design.items[design.triplet_index == index]
        assert len(set(rows[:, 0])) == 1 and len({tuple(r) for r in rows.tolist()}) == n_orderings
    if n_orderings == 4:  # one Latin square: every option in every option position once
        rows = design.items[design.triplet_index == 5][:, 1:]
        assert all(len(set(column)) == 4 for column in rows.T)
    with pytest.raises(InputError, match="n_orderings must be an integer in 1..2"):
        random_design(ITEMS, 10, seed=0, n_orderings=3, trial_type=ANCHOR)


def test_repeats_exhaustive_and_prefix_stability():
    repeats = repeated_design(ITEMS, 50, 3, seed=2, trial_type=ANCHOR)
    assert len(repeats) == 150 and set(repeats.repeat.tolist()) == {0, 1, 2}
    for index in range(50):  # the two orderings of an anchor trial alternate over its repeats
        rows = repeats.items[repeats.triplet_index == index]
        assert (
            len({tuple(r) for r in rows[:2].tolist()}) == 2
            and _n_distinct(_base(repeats.subset(repeats.triplet_index == index))) == 1
        )
    subset = ITEMS[:7]
    exhaustive = exhaustive_design(subset, trial_type=ANCHOR)
    assert len(exhaustive) == 7 * comb(6, 2) and _n_distinct(_base(exhaustive)) == len(exhaustive)
    assert np.array_equal(all_reference_trials(7, ANCHOR)[:3], [[0, 1, 2], [0, 1, 3], [0, 1, 4]])
    assert len(exhaustive_design(subset, trial_type=RANKED)) == 7 * comb(6, 4)
    with pytest.raises(InputError, match="too many to ask every one"):
        exhaustive_design([f"v{i}" for i in range(200)], trial_type=Ranked(8, 2))
    many = [f"v{i}" for i in range(300)]  # drawn by rejection: a longer design extends a shorter one
    short = random_design(many, 700, seed=9, n_orderings=2, trial_type=RANKED)
    long = random_design(many, 1500, seed=9, n_orderings=2, trial_type=RANKED)
    in_short = long.triplet_index < 700
    assert short.keys() == [key for key, keep in zip(long.keys(), in_short) if keep]
    assert np.array_equal(short.items, long.items[in_short])


def test_listed_reference_trials(tmp_path):
    path = tmp_path / "anchor.txt"
    path.write_text("# reference, then the options\nitem000 item001 item002\nitem003,item000,item001\n")
    listed = read_triplet_list(path, ANCHOR.n_shown)
    design = listed_design(ITEMS, listed, shuffle_order=False, trial_type=ANCHOR)
    assert design.shown() == [("item000", "item001", "item002"), ("item003", "item000", "item001")]
    shuffled = listed_design(ITEMS, listed, seed=1, n_orderings=2, trial_type=ANCHOR)
    assert len(shuffled) == 4 and set(shuffled.items[:, 0]) == {"item000", "item003"}
    # another reference over the same items is another trial; the same reference and options twice is not
    listed_design(ITEMS, [["item000", "item001", "item002"], ["item001", "item000", "item002"]], trial_type=ANCHOR)
    with pytest.raises(InputError, match="is listed twice"):
        listed_design(ITEMS, [["item000", "item001", "item002"], ["item000", "item002", "item001"]], trial_type=ANCHOR)
    with pytest.raises(InputError, match=r"must be an \(n, 5\) table"):
        listed_design(ITEMS, [["item000", "item001", "item002"]], trial_type=RANKED)
    with pytest.raises(InputError, match="line 2: expected 5 item ids, found 3"):
        read_triplet_list(path, RANKED.n_shown)


def test_a_design_shows_at_most_a_reference_and_eight_options():
    with pytest.raises(InputError, match="at most 9 items per trial"):
        random_design([f"v{i}" for i in range(40)], 10, seed=0, trial_type=Ranked(9, 2))
    design = random_design([f"v{i}" for i in range(40)], 30, seed=0, n_orderings=16, trial_type=Ranked(8, 2))
    assert design.ordering.max() < 40320 and len(np.unique(design.key_codes())) == len(design)
