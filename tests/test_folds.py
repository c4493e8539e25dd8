"""The fold planner shared by the encoding models, on a hand-made design."""

import numpy as np
import pytest

from oddoneout.errors import InputError
from oddoneout.neural.data import NeuralData
from oddoneout.neural.folds import feature_rows, plan_folds


def design() -> tuple[NeuralData, np.ndarray, list[str]]:
    # runs 0..3 of two samples; a repeats in runs 0 and 1, d in runs 2 and 3
    stimuli = np.array(list("abcadefd"))
    runs = np.repeat(np.arange(4), 2)
    responses = np.arange(8.0)[:, None]  # the sample index, one voxel
    data = NeuralData("s", responses, stimuli, runs, {"all": np.arange(1)})
    return data, np.array([[0.0], [1], [2], [3], [4], [6]]), list("abcdef")


def test_plan_of_a_hand_made_design():
    data, features, items = design()
    rows = feature_rows(items, data)
    np.testing.assert_array_equal(rows, [0, 1, 2, 0, 3, 4, 5, 3])
    first, second = plan_folds(features, rows, data, n_folds=2, inner_folds=2)
    # fold 0 tests runs 0-1 (a b c a) and trains on runs 2-3 (d e f d); rows are sorted stimuli
    np.testing.assert_array_equal(first.test_samples, [0, 1, 2, 3])
    np.testing.assert_array_equal(first.train_samples, [4, 5, 6, 7])
    assert first.test_ids.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(first.test_responses(data.responses)[:, 0], [1.5, 1, 2])  # a: (0 + 3) / 2
    np.testing.assert_allclose(first.train_responses(data.responses)[:, 0], [5.5, 5, 6])
    # features z-scored with the training rows d e f = 3 4 6
    mean, scale = 13 / 3, np.std([3.0, 4, 6])
    np.testing.assert_allclose(first.x_train[:, 0], (np.array([3.0, 4, 6]) - mean) / scale)
    np.testing.assert_allclose(first.x_test[:, 0], (np.array([0.0, 1, 2]) - mean) / scale)
    # inner blocks run 2 and run 3: d (in both) goes to the first, e there too, f to the second
    assert [(t.tolist(), v.tolist()) for t, v in first.inner_splits] == [([2], [0, 1]), ([0, 1], [2])]
    assert second.test_ids.tolist() == ["d", "e", "f"] and second.n_test == 3


def test_without_averaging_every_sample_is_a_row():
    data, features, items = design()
    first, _ = plan_folds(features, feature_rows(items, data), data, 2, 2, average_repeats=False)
    assert first.test_ids.tolist() == list("abca") and first.train_average is None
    np.testing.assert_array_equal(first.test_responses(data.responses)[:, 0], [0, 1, 2, 3])


def test_bad_designs_are_named():
    data, features, items = design()
    with pytest.raises(InputError, match="no feature row"):
        feature_rows(items[:5], data)
    with pytest.raises(InputError, match="appears twice"):
        feature_rows(items + ["a"], data)
    with pytest.raises(InputError, match="inner_folds"):
        plan_folds(features, feature_rows(items, data), data, 2, 1)
    with pytest.raises(InputError, match="fewer than inner_folds=3"):
        plan_folds(features, feature_rows(items, data), data, 2, 3)
