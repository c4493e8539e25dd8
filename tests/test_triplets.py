"""The triplet contract: loading SPoSE-convention files and rejecting bad input clearly."""

import numpy as np
import pytest

from oddoneout.errors import InputError
from oddoneout.triplets import (
    KEPT_PAIRS,
    ODD_ONE_OUT,
    Triplets,
    draw_choices,
    load_triplets,
    odd_one_out_probabilities,
    pair_similarities,
    random_triplet_indices,
    readers,
    register_reader,
    registered_readers,
    sample_triplets,
)


def test_npy_and_text_files_load_with_item_ids(tmp_path):
    indices = np.array([[0, 1, 2], [2, 3, 0], [1, 3, 2]])
    np.save(tmp_path / "t.npy", indices)
    np.savetxt(tmp_path / "t.txt", indices, fmt="%d")
    (tmp_path / "ids.txt").write_text("a\nb\nc\nd\n")
    for name in ("t.npy", "t.txt"):
        triplets = load_triplets(tmp_path / name, tmp_path / "ids.txt")
        assert triplets.item_ids == ("a", "b", "c", "d")
        np.testing.assert_array_equal(triplets.indices, indices)


def test_without_item_list_ids_are_indices(tmp_path):
    np.save(tmp_path / "t.npy", np.array([[0, 1, 4]]))
    assert load_triplets(tmp_path / "t.npy").item_ids == ("0", "1", "2", "3", "4")


@pytest.mark.parametrize(
    "content, message",
    [
        ("0 1 9\n", "out of range"),
        ("0 1 1\n", "repeats an item"),
        ("0 1\n", "N x 3"),
        ("0 1 x\n", "malformed"),
        ("", "no triplets"),
        ("0 1 2.5\n", "whole numbers"),
        ("0 -1 2\n", "out of range"),
    ],
)
def test_bad_text_files_get_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    (tmp_path / "ids.txt").write_text("a\nb\nc\nd\n")
    with pytest.raises(InputError, match=message):
        load_triplets(path, tmp_path / "ids.txt")


def test_error_names_the_row(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("0 1 2\n0 1 2\n3 3 1\n")
    with pytest.raises(InputError, match="row 2"):
        load_triplets(path)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_triplets(tmp_path / "nope.npy")
    (tmp_path / "corrupt.npy").write_bytes(b"not numpy")
    with pytest.raises(InputError, match=r"corrupt.npy: not a NumPy .npy file \(no .npy header\)"):
        load_triplets(tmp_path / "corrupt.npy")
    (tmp_path / "t.npy").write_bytes(b"")
    np.save(tmp_path / "t.npy", np.array([[0, 1, 2]]))
    (tmp_path / "dup.txt").write_text("a\na\nb\n")
    with pytest.raises(InputError, match="duplicate"):
        load_triplets(tmp_path / "t.npy", tmp_path / "dup.txt")


@pytest.mark.parametrize(
    "array, message",
    [
        (np.array([["a", "b", "c"]] * 5), "triplets must be integer item indices, got dtype <U1"),
        (np.array([[True, False, True]] * 5), "triplets must be integer item indices, got dtype bool"),
        (np.array([[0, 1, 2]] * 5, dtype=complex), "triplets must be integer item indices, got dtype complex128"),
        (np.array([[0, 1, 2.5]] * 5), "triplet indices must be whole numbers"),
        (np.array([[0, 1, np.nan]] * 5), "triplet indices must be whole numbers"),
        (np.array([[0, 1, -2]] * 5), r"row 0 has an item index out of range \[0, 4\)"),
        (np.array([[0, 1, 4]] * 5, dtype=np.uint8), r"row 0 has an item index out of range \[0, 4\)"),
    ],
)
def test_npy_arrays_that_are_no_item_indices_are_refused_naming_the_file(tmp_path, array, message):
    np.save(tmp_path / "t.npy", array)
    (tmp_path / "ids.txt").write_text("a\nb\nc\nd\n")
    with pytest.raises(InputError, match=rf"t.npy: .*{message}"):
        load_triplets(tmp_path / "t.npy", tmp_path / "ids.txt")


def test_npy_files_that_are_no_npy_or_hold_pickles_say_so(tmp_path):
    (tmp_path / "text.npy").write_text("0 1 2\n1 2 3\n")
    (tmp_path / "random.npy").write_bytes(np.random.default_rng(0).bytes(512))
    for name in ("text.npy", "random.npy"):
        with pytest.raises(InputError, match=rf"{name}: not a NumPy .npy file \(no .npy header\): ") as raised:
            load_triplets(tmp_path / name)
        assert "pickle" not in str(raised.value)
    np.save(tmp_path / "objects.npy", np.array([[0, 1, None]], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match=r"objects.npy: holds pickled \(object\) data, which oddoneout never loads"):
        load_triplets(tmp_path / "objects.npy")
    np.save(tmp_path / "cut.npy", np.arange(300).reshape(100, 3))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "cut.npy").read_bytes()[:400])
    with pytest.raises(InputError, match=r"cut.npy: not a readable .npy file \("):
        load_triplets(tmp_path / "cut.npy")


def test_reindex_to_another_vocabulary_and_unknown_ids():
    triplets = Triplets(("a", "b", "c"), np.array([[0, 1, 2]]))
    moved = triplets.reindex(("x", "c", "b", "a"))
    np.testing.assert_array_equal(moved.indices, [[3, 2, 1]])
    with pytest.raises(InputError, match="unknown item ids"):
        triplets.reindex(("a", "b"))


def test_split_is_disjoint_complete_and_seeded():
    triplets = Triplets(tuple("abcdef"), random_triplet_indices(6, 1000, np.random.default_rng(0)))
    train, test = triplets.split(0.1, seed=1)
    assert len(train) + len(test) == 1000 and len(test) == 100
    again = triplets.split(0.1, seed=1)[1]
    np.testing.assert_array_equal(test.indices, again.indices)
    assert triplets.hash() != train.hash()


def test_probs_must_be_a_distribution():
    indices = np.array([[0, 1, 2]])
    with pytest.raises(InputError, match="sum to 1"):
        Triplets(("a", "b", "c"), indices, np.array([[0.5, 0.4, 0.4]]))
    with pytest.raises(InputError, match="finite"):
        Triplets(("a", "b", "c"), indices, np.array([[np.nan, 0.5, 0.5]]))


def test_sampled_choices_follow_the_choice_rule():
    # two clusters: items 0-4 load on dim 0, items 5-9 on dim 1
    weights = np.zeros((10, 2))
    weights[:5, 0] = 3.0
    weights[5:, 1] = 3.0
    triplets = sample_triplets(weights, 20000, seed=0, with_probs=True)
    cluster = triplets.indices // 5
    mixed = cluster.min(axis=1) != cluster.max(axis=1)
    # when two share a cluster and one does not, the loner is almost always the odd one out
    loner_is_odd = (cluster[:, 0] == cluster[:, 1]) & (cluster[:, 2] != cluster[:, 0])
    assert loner_is_odd[mixed].mean() > 0.95
    np.testing.assert_allclose(triplets.probs.sum(axis=1), 1.0)


def test_the_odd_one_out_goes_last_and_the_kept_pair_keeps_its_shown_order():
    shown = np.array([[10, 11, 12]] * 3)
    canonical = ODD_ONE_OUT.to_canonical(shown, np.array([0, 1, 2]))
    np.testing.assert_array_equal(canonical, [[11, 12, 10], [10, 12, 11], [10, 11, 12]])
    assert canonical[:, ODD_ONE_OUT.chosen_column].tolist() == [10, 11, 12]
    assert Triplets.trial_type is ODD_ONE_OUT
    assert len(ODD_ONE_OUT.orderings) == 6 and ODD_ONE_OUT.orderings[0].tolist() == [0, 1, 2]


def test_pair_similarity_of_each_position_is_that_of_the_other_two():
    features = np.random.default_rng(0).normal(size=(5, 3))
    indices = np.array([[0, 3, 4], [2, 1, 0]])
    similarities = pair_similarities(features, indices)
    for p, (q, r) in enumerate(KEPT_PAIRS):
        assert p not in (q, r)
        np.testing.assert_allclose(similarities[:, p], (features[indices[:, q]] * features[indices[:, r]]).sum(1))
    probs = odd_one_out_probabilities(features, indices)
    np.testing.assert_allclose(probs, ODD_ONE_OUT.probabilities(features, indices))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_drawn_choices_never_take_an_impossible_answer():
    class ZeroDraws:
        def random(self, n):
            return np.zeros(n)

    probs = np.array([[0.0, 0.5, 0.5], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    assert draw_choices(probs, ZeroDraws()).tolist() == [1, 2, 0]
    choices = draw_choices(np.tile([0.2, 0.3, 0.5], (20000, 1)), np.random.default_rng(0))
    np.testing.assert_allclose(np.bincount(choices) / 20000, [0.2, 0.3, 0.5], atol=0.02)


def test_readers_are_registered_by_suffix(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "_READERS", dict(readers._READERS))
    read = lambda path, items, design: Triplets(("a", "b", "c"), np.array([[0, 1, 2]]))  # noqa: E731
    register_reader("test triplets", (".trip",), read)
    register_reader("test triplets", (".trip",), read)  # the same reader again is harmless
    assert registered_readers()[".trip"] == "test triplets"
    assert len(load_triplets(tmp_path / "any.trip")) == 1
    with pytest.raises(ValueError, match="already read"):
        register_reader("other", (".trip",), lambda path, items, design: None)
    with pytest.raises(ValueError, match="dot"):
        register_reader("other", ("trip",), read)


def test_an_unregistered_suffix_is_read_as_text_and_named_when_that_fails(tmp_path):
    (tmp_path / "t.csv").write_text("0 1 2\n")
    assert load_triplets(tmp_path / "t.csv").indices.tolist() == [[0, 1, 2]]
    (tmp_path / "store.unknown").write_bytes(b"SQLite format 3\x00\xff\xfe")
    with pytest.raises(InputError, match="no reader is registered for '.unknown'"):
        load_triplets(tmp_path / "store.unknown")
