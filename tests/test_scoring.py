"""Shared scores: Pearson r (paired, all pairs, from sums), R^2, z-scoring, and the one constant rule."""

import numpy as np
import pytest

from oddoneout.scoring import CONSTANT_RTOL, pearson, pearson_from_sums, pearson_matrix, r2, varies, zscore_stats


def test_pearson_of_a_hand_computed_pair():
    # x = 1 2 3, y = 1 3 2: centred -1 0 1 and -1 1 0, products sum to 1, norms sqrt(2): r = 1/2
    assert pearson(np.array([1.0, 2, 3]), np.array([1.0, 3, 2])) == pytest.approx(0.5)
    assert pearson(np.array([1.0, 2, 3]), np.array([3.0, 2, 1])) == pytest.approx(-1.0)


def test_pearson_pairs_columns_or_rows_and_fills_constant_ones():
    x = np.array([[1.0, 5, 0], [2, 5, 1], [3, 5, 2]])
    y = np.array([[1.0, 1, 2], [3, 2, 1], [2, 3, 0]])
    np.testing.assert_allclose(pearson(x, y), [0.5, 0.0, -1.0])  # the constant column gets 0
    assert np.isnan(pearson(x, y, undefined=np.nan)[1])
    np.testing.assert_allclose(pearson(x.T, y.T, axis=1), [0.5, 0.0, -1.0])
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(20, 4)), rng.normal(size=(20, 4))
    np.testing.assert_allclose(pearson(a, b), [np.corrcoef(a[:, k], b[:, k])[0, 1] for k in range(4)])


def test_the_constant_rule_is_relative_to_the_values_size():
    # a mean that is not representable leaves rounding residues after centring: still constant
    column = np.full(7, 0.1)
    assert not varies(column)
    assert not varies(np.zeros(5))
    assert varies(np.array([1.0, 1 + 1e-5, 1]))  # a spread of 1e-5 relative is real
    assert not varies(np.array([1.0, 1 + 1e-8, 1]))  # 1e-8 is below float32 resolution
    assert pearson(np.array([1.0, 1 + 1e-8, 1]), np.array([1.0, 2, 3])) == 0.0
    assert CONSTANT_RTOL == 1e-6
    np.testing.assert_array_equal(varies(np.array([[2.0, 2], [1, 3]]), axis=1), [False, True])


def test_pearson_matrix_correlates_every_column_pair():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(30, 2))
    expected = np.corrcoef(x.T, y.T)[:3, 3:]
    np.testing.assert_allclose(pearson_matrix(x, y), expected)
    y[:, 1] = 4.0
    r = pearson_matrix(x, y)
    assert np.all(np.isnan(r[:, 1])) and np.all(np.isfinite(r[:, 0]))


def test_pearson_from_sums_equals_pearson_and_rejects_constant_data():
    x, y = np.array([1.0, 2, 3, 5]), np.array([2.0, 1, 4, 4])
    sums = (x.sum(), y.sum(), x @ x, y @ y, x @ y)
    assert pearson_from_sums(4, *sums) == pytest.approx(pearson(x, y))
    c = np.full(4, 3.0)
    assert np.isnan(pearson_from_sums(4, c.sum(), y.sum(), c @ c, y @ y, c @ y))


def test_r2_by_hand():
    observed = np.array([[1.0, 2], [2, 2], [3, 2]])
    predicted = np.array([[1.0, 0], [2, 0], [4, 0]])
    # column 0: SS_res 1, SS_tot 2: R^2 0.5; column 1 is constant: 0
    np.testing.assert_allclose(r2(observed, predicted), [0.5, 0.0])


def test_zscore_stats_give_constant_columns_a_scale_of_one():
    values = np.array([[1.0, 0.1, 0], [3, 0.1, 0]])
    mean, scale = zscore_stats(values)
    np.testing.assert_allclose(mean, [2.0, 0.1, 0.0])
    np.testing.assert_array_equal(scale, [1.0, 1.0, 1.0])
    _, scale = zscore_stats(np.array([[0.0], [4.0]]))
    assert scale[0] == 2.0
