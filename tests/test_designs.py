"""Triplet designs: sizes, uniqueness of unordered triplets, determinism, counterbalanced orderings."""

from math import comb

import numpy as np
import pytest

from oddoneout.collect.designs import (
    ORDERING_SEQUENCE,
    PERMUTATIONS,
    TripletDesign,
    all_triplets,
    concat_designs,
    exhaustive_design,
    random_design,
    repeated_design,
)
from oddoneout.errors import InputError

ITEMS = [f"item{i:03d}" for i in range(40)]


def unordered(design: TripletDesign) -> np.ndarray:
    return np.sort(design.items, axis=1)


def n_distinct_rows(rows: np.ndarray) -> int:
    return len({tuple(row) for row in rows.tolist()})


def test_random_design_has_requested_size_and_no_repeated_triplet():
    design = random_design(ITEMS, 2000, seed=1)
    assert len(design) == 2000
    assert n_distinct_rows(unordered(design)) == 2000
    assert np.array_equal(design.triplet_index, np.arange(2000))
    assert set(np.unique(design.items)) <= set(ITEMS)
    assert np.all(design.repeat == 0)


def test_random_design_dense_request_takes_every_triplet():
    items = ITEMS[:8]
    design = random_design(items, comb(8, 3), seed=0)
    assert n_distinct_rows(unordered(design)) == comb(8, 3)


def test_random_design_refuses_more_triplets_than_exist():
    with pytest.raises(InputError, match="C\\(6, 3\\) = 20"):
        random_design(ITEMS[:6], 21, seed=0)


@pytest.mark.parametrize("bad", [["a", "b"], ["a", "b", "a", "c"]])
def test_bad_item_ids_are_refused(bad):
    with pytest.raises(InputError):
        random_design(bad, 1, seed=0)


def test_same_seed_same_design_other_seed_other_design():
    first = random_design(ITEMS, 500, seed=3, n_orderings=2)
    again = random_design(ITEMS, 500, seed=3, n_orderings=2)
    other = random_design(ITEMS, 500, seed=4, n_orderings=2)
    assert np.array_equal(first.items, again.items) and np.array_equal(first.ordering, again.ordering)
    assert not np.array_equal(first.items, other.items)


def test_shown_order_is_the_ordering_of_the_sorted_base_triplet():
    design = random_design(ITEMS, 300, seed=5, n_orderings=6)
    position = {item: i for i, item in enumerate(ITEMS)}
    shown = np.vectorize(position.get)(design.items)
    base = np.sort(shown, axis=1)
    assert np.array_equal(np.take_along_axis(base, PERMUTATIONS[design.ordering], axis=1), shown)
    # the same unordered triplet always has the same triplet_index
    for index in (0, 17, 299):
        rows = design.triplet_index == index
        assert n_distinct_rows(base[rows]) == 1


def test_single_ordering_is_random_and_balanced():
    design = random_design(ITEMS, 600, seed=2)
    counts = np.bincount(design.ordering, minlength=6)
    assert counts.max() - counts.min() <= 1
    # no fixed relation between an item's vocabulary rank and its shown position
    position = {item: i for i, item in enumerate(ITEMS)}
    shown = np.vectorize(position.get)(design.items)
    lowest_position = np.argmin(shown, axis=1)
    assert np.bincount(lowest_position, minlength=3).min() > 150


@pytest.mark.parametrize("n_orderings", [2, 3, 4, 5, 6])
def test_orderings_counterbalanced_across_the_design(n_orderings):
    design = random_design(ITEMS, 300, seed=7, n_orderings=n_orderings)
    assert len(design) == 300 * n_orderings
    assert n_distinct_rows(unordered(design)) == 300
    counts = np.bincount(design.ordering, minlength=6)
    assert counts.max() == counts.min()  # 300 triplets: offsets exactly balanced
    for index in (0, 1, 299):
        orderings = design.ordering[design.triplet_index == index]
        assert len(set(orderings.tolist())) == n_orderings
    # rows come in rounds: the first 300 rows show every triplet once
    assert np.array_equal(np.sort(design.triplet_index[:300]), np.arange(300))


def test_three_orderings_put_every_item_in_every_position_once():
    design = random_design(ITEMS, 100, seed=8, n_orderings=3)
    for index in range(100):
        shown = design.items[design.triplet_index == index]
        for position in range(3):
            assert len(set(shown[:, position])) == 3
    assert set(np.unique(design.ordering[:100]).tolist()) <= set(ORDERING_SEQUENCE[[0, 3]].tolist())


def test_repeated_design_repeats_each_triplet_in_different_orders():
    design = repeated_design(ITEMS, 50, n_repeats=3, seed=0)
    assert len(design) == 150
    assert n_distinct_rows(unordered(design)) == 50
    assert np.array_equal(np.bincount(design.repeat), [50, 50, 50])
    for index in range(50):
        rows = design.triplet_index == index
        assert sorted(design.repeat[rows].tolist()) == [0, 1, 2]
        assert len(set(design.ordering[rows].tolist())) == 3
    same = repeated_design(ITEMS, 50, n_repeats=3, seed=0, same_order=True)
    for index in range(50):
        assert len(set(same.ordering[same.triplet_index == index].tolist())) == 1
    with pytest.raises(InputError):
        repeated_design(ITEMS, 50, n_repeats=1, seed=0)


def test_exhaustive_design_lists_every_triplet_once():
    items = ITEMS[:12]
    design = exhaustive_design(items, seed=1)
    assert len(design) == comb(12, 3)
    assert n_distinct_rows(unordered(design)) == comb(12, 3)
    assert len(exhaustive_design(items, n_orderings=6)) == 6 * comb(12, 3)


def test_all_triplets_is_lexicographic():
    triplets = all_triplets(6)
    assert triplets.shape == (20, 3)
    assert np.all(triplets[:, 0] < triplets[:, 1]) and np.all(triplets[:, 1] < triplets[:, 2])
    assert [tuple(row) for row in triplets.tolist()] == sorted(tuple(row) for row in triplets.tolist())


def test_subset_and_keys():
    design = random_design(ITEMS, 20, seed=0, n_orderings=2, name="main")
    part = design.subset(slice(5, 10))
    assert len(part) == 5 and part.name == "main" and part.seed == 0
    assert part.keys() == design.keys()[5:10]
    assert design.keys()[0] == ("main", 0, int(design.ordering[0]), 0)
    assert len(set(design.keys())) == 40
    assert part.shown()[0] == tuple(design.items[5])


def test_design_rejects_duplicate_keys_and_repeated_items():
    items = np.array([["a", "b", "c"], ["a", "b", "d"]])
    with pytest.raises(InputError, match="row 1 repeats the key"):
        TripletDesign("d", items, np.array([0, 0]), np.array([0, 0]), np.array([0, 0]))
    with pytest.raises(InputError, match="repeats an item"):
        TripletDesign("d", np.array([["a", "a", "c"]]), np.array([0]), np.array([0]), np.array([0]))
    with pytest.raises(InputError, match="ordering"):
        TripletDesign("d", items, np.array([0, 1]), np.array([0, 6]), np.array([0, 0]))


def test_concat_designs_needs_distinct_names():
    first = random_design(ITEMS, 10, seed=0, name="a")
    second = repeated_design(ITEMS, 5, 2, seed=0, name="b")
    assert [d.name for d in concat_designs(first, second)] == ["a", "b"]
    with pytest.raises(InputError, match="distinct names"):
        concat_designs(first, random_design(ITEMS, 10, seed=1, name="a"))


@pytest.mark.parametrize("items", [ITEMS, [f"v{i}" for i in range(400)]])  # permuted / rejection sampling
def test_a_longer_design_with_the_same_seed_extends_a_shorter_one(items):
    short = random_design(items, 700, seed=9, n_orderings=2)
    long = random_design(items, 1500, seed=9, n_orderings=2)
    in_short = long.triplet_index < 700
    assert short.keys() == [key for key, keep in zip(long.keys(), in_short) if keep]
    assert np.array_equal(short.items, long.items[in_short])
    repeats_short = repeated_design(items, 100, 3, seed=2)
    repeats_long = repeated_design(items, 200, 3, seed=2)
    assert np.array_equal(repeats_short.items, repeats_long.items[repeats_long.triplet_index < 100])


def test_listed_design_asks_the_listed_triplets_once_each(tmp_path):
    from oddoneout.collect.designs import listed_design, read_triplet_list

    items = [f"i{k}" for k in range(6)]
    path = tmp_path / "list.csv"
    path.write_text("# triplets from another study\ni0,i1,i2\ni3 i4 i5\n\ni1\ti3\ti5\n")
    listed = read_triplet_list(path)
    design = listed_design(items, listed, seed=1, shuffle_order=False)
    assert [tuple(t) for t in design.shown()] == [("i0", "i1", "i2"), ("i3", "i4", "i5"), ("i1", "i3", "i5")]
    shuffled = listed_design(items, listed, seed=1, n_orderings=3)
    assert len(shuffled) == 9
    assert {frozenset(t) for t in shuffled.shown()} == {frozenset(t) for t in design.shown()}
    by_index = listed_design(items, np.array([[0, 1, 2], [3, 4, 5]]), seed=0)
    assert {frozenset(t) for t in by_index.shown()} == {frozenset(("i0", "i1", "i2")), frozenset(("i3", "i4", "i5"))}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([["i0", "i1", "zz"]], "unknown item 'zz'"),
        ([["i0", "i0", "i1"]], "repeats an item"),
        ([["i0", "i1", "i2"], ["i2", "i1", "i0"]], "listed twice"),
        ([[0, 1, 9]], "outside"),
    ],
)
def test_listed_design_rejects_bad_rows(rows, message):
    from oddoneout.collect.designs import listed_design

    with pytest.raises(InputError, match=message):
        listed_design([f"i{k}" for k in range(6)], np.array(rows), seed=0)


def test_triplet_list_file_errors_name_the_line(tmp_path):
    from oddoneout.collect.designs import read_triplet_list

    path = tmp_path / "bad.txt"
    path.write_text("a b c\na b\n")
    with pytest.raises(InputError, match="line 2"):
        read_triplet_list(path)
    with pytest.raises(InputError, match="not found"):
        read_triplet_list(tmp_path / "missing.txt")
