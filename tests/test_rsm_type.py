"""The RSM type: built from features, matrices or pairs, one upper-triangle order, compare() against rsatoolbox."""

import numpy as np
import pytest

from oddoneout.errors import InputError
from oddoneout.rsm import RSM, upper_triangle


def test_upper_triangle_goes_row_by_row_and_from_pairs_inverts_it():
    m = np.array([[0.0, 1, 2], [1, 0, 3], [2, 3, 0]])
    np.testing.assert_array_equal(upper_triangle(m), [1.0, 2, 3])
    rsm = RSM.from_pairs([1.0, 2, 3], ["a", "b", "c"])
    np.testing.assert_array_equal(rsm.dense(), m)
    np.testing.assert_array_equal(rsm.upper(), [1.0, 2, 3])
    with pytest.raises(InputError, match="one per pair"):
        RSM.from_pairs([1.0, 2])
    with pytest.raises(InputError, match="square"):
        upper_triangle(np.zeros((2, 3)))


def test_feature_similarities_by_hand():
    features = np.array([[1.0, 0], [0, 2], [1, 1], [3, 0]])
    dot = RSM.from_features(features, similarity="dot")
    np.testing.assert_allclose(dot.upper(), [0, 1, 3, 2, 0, 3])
    cosine = RSM.from_features(features, similarity="cosine")
    np.testing.assert_allclose(cosine.upper(), [0, 1 / np.sqrt(2), 1, 1 / np.sqrt(2), 0, 1 / np.sqrt(2)])
    # profiles [1, 0] and [3, 0] correlate +1, [0, 2] -1; the constant row [1, 1] gets 0
    pearson = RSM.from_features(features, similarity="pearson")
    np.testing.assert_allclose(pearson.upper(), [-1, 0, 1, 0, -1, 0], atol=1e-15)
    assert pearson.factor is not None and pearson.factor.shape == (4, 2)  # low rank: F F^T
    with pytest.raises(InputError, match="unknown similarity"):
        RSM.from_features(features, similarity="euclid")


def test_matrices_are_checked_and_subsets_keep_items():
    with pytest.raises(InputError, match="symmetric"):
        RSM.from_matrix(np.arange(9.0).reshape(3, 3))
    with pytest.raises(InputError, match="exactly one"):
        RSM(np.array(["a"]))
    rsm = RSM.from_matrix(np.array([[np.nan, 1, 2], [1, np.nan, 3], [2, 3, np.nan]]), ["a", "b", "c"])
    assert np.all(np.diag(rsm.matrix) == 0)
    sub = rsm.subset(np.array([2, 0]))
    assert sub.item_ids.tolist() == ["c", "a"] and sub.upper().tolist() == [2.0]


def test_compare_by_hand_and_skipping_undefined_pairs():
    a = RSM.from_pairs([1.0, 2, 3, 4, 5, 6])
    b = RSM.from_pairs([1.0, 3, 2, 4, 6, 5])
    x, y = a.upper(), b.upper()
    assert a.compare(b) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert a.compare(b, "cosine") == pytest.approx(x @ y / np.sqrt((x @ x) * (y @ y)))
    # ranks are the values themselves: Spearman equals Pearson here;
    # Kendall: of the 15 pairs of pairs only (2, 3) and (5, 6) are discordant
    assert a.compare(b, "spearman") == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert a.compare(b, "kendall") == pytest.approx((13 - 2) / 15)
    c = RSM.from_pairs([2.0, 4, np.nan, 8, 10, 12])
    assert a.compare(c) == pytest.approx(1.0)
    assert np.isnan(a.compare(RSM.from_pairs(np.ones(6))))
    with pytest.raises(InputError, match="at least 3 pairs"):
        a.compare(RSM.from_pairs([np.nan] * 4 + [1.0, 2]))
    with pytest.raises(InputError, match="different items"):
        a.compare(RSM.from_pairs(np.arange(6.0), list("wxyz")))
    with pytest.raises(InputError, match="comparison"):
        a.compare(b, "bures")


@pytest.mark.parametrize(
    "method, theirs", [("pearson", "corr"), ("spearman", "spearman"), ("cosine", "cosine"), ("kendall", "kendall")]
)
def test_compare_agrees_with_rsatoolbox_on_random_matrices(method, theirs):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    rng = np.random.default_rng(4)
    a = RSM.from_features(rng.normal(size=(15, 5)), similarity="pearson")
    b = RSM.from_features(rng.gamma(0.5, 1.0, size=(15, 3)), similarity="dot")
    # rsatoolbox compares dissimilarity vectors; hand it our pair vectors as they are
    expected = rsatoolbox.rdm.compare(
        rsatoolbox.rdm.RDMs(a.upper()[None, :]), rsatoolbox.rdm.RDMs(b.upper()[None, :]), method=theirs
    )[0, 0]
    assert a.compare(b, method) == pytest.approx(expected, abs=1e-10)
