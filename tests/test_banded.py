"""Banded ridge and variance partitioning on data whose generating bands are known."""

from __future__ import annotations

import numpy as np
import pytest

from oddoneout.errors import InputError
from oddoneout.neural.banded import band_scale_grid, banded_ridge_cv, heldout_predictions, variance_partitioning
from oddoneout.neural.data import NeuralData
from oddoneout.neural.encoding import encode

N_ITEMS, N_RUNS, N_VOXELS = 240, 6, 60


def make_data(signal: np.ndarray, seed: int, repeats: int = 1) -> NeuralData:
    """Each item shown ``repeats`` times (in different runs); responses = signal + noise."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"item{i:03d}" for i in range(N_ITEMS)])
    weights = rng.normal(size=(signal.shape[1], N_VOXELS)) / np.sqrt(signal.shape[1])
    clean = (signal - signal.mean(0)) @ weights
    stimulus = np.tile(np.arange(N_ITEMS), repeats)
    runs = np.concatenate([(rng.permutation(N_ITEMS) % N_RUNS) + N_RUNS * r for r in range(repeats)])
    responses = clean[stimulus] + rng.normal(size=(stimulus.size, N_VOXELS))
    rois = {"first": np.arange(N_VOXELS // 2), "second": np.arange(N_VOXELS // 2, N_VOXELS)}
    return NeuralData("sub-01", responses, ids[stimulus], runs, rois)


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(1)
    return rng.normal(size=(N_ITEMS, 8)), rng.normal(size=(N_ITEMS, 8)), [f"item{i:03d}" for i in range(N_ITEMS)]


def test_scale_grid():
    grid = band_scale_grid(2, np.array([0.1, 1.0]))
    assert {tuple(row) for row in grid} == {(1, 0), (0, 1), (1, 1), (1, 0.1), (0.1, 1)}
    assert band_scale_grid(1).tolist() == [[1.0]]
    with pytest.raises(InputError):
        band_scale_grid(2, np.array([0.0]))


def test_one_band_equals_encode(features):
    a, _, ids = features
    data = make_data(a, seed=2, repeats=2)
    ours = heldout_predictions(a, ids, data, n_folds=4, inner_folds=3)
    reference = encode(a, ids, data, n_folds=4, inner_folds=3)
    np.testing.assert_allclose(ours.voxel_r, reference.voxel_r, atol=1e-8)
    np.testing.assert_allclose(ours.voxel_r2, reference.voxel_r2, atol=1e-8)
    np.testing.assert_allclose(ours.alphas, reference.fold_alphas)
    # repeats averaged within a fold; an item's two showings fall in different run blocks: tested twice
    assert ours.observed.shape == (2 * N_ITEMS, N_VOXELS)
    assert all(np.unique(ours.stimulus_ids[ours.fold == k]).size == (ours.fold == k).sum() for k in range(4))


def test_signal_band_has_the_unique_variance(features):
    a, b, ids = features
    data = make_data(a, seed=3)
    parts = variance_partitioning(a, b, ids, data, names=("a", "b"), n_folds=4, inner_folds=3)
    table = parts.roi_table()
    assert table["unique_a"].min() > 0.15
    assert np.abs(table["unique_b"]).max() < 0.02
    assert np.abs(table["shared"]).max() < 0.05  # a noise band's held-out R^2 is slightly negative
    assert (table["unique_a"] > 10 * table["unique_b"].abs()).all()
    np.testing.assert_allclose(parts.unique_a + parts.shared, parts.r2_a)


def test_shared_signal_is_shared(features):
    a, _, ids = features
    rng = np.random.default_rng(4)
    # B carries the same signal as A in another basis (plus a little noise)
    b = a @ np.linalg.qr(rng.normal(size=(8, 8)))[0] + 0.05 * rng.normal(size=a.shape)
    data = make_data(a, seed=5)
    table = variance_partitioning(a, b, ids, data, names=("a", "b"), n_folds=4, inner_folds=3).roi_table()
    assert table["shared"].min() > 0.15
    assert (table["shared"] > 5 * table[["unique_a", "unique_b"]].abs().max(axis=1)).all()


def test_noise_band_is_scaled_down(features):
    a, b, ids = features
    data = make_data(a, seed=6)
    result = banded_ridge_cv({"a": a, "b": b}, ids, data, n_folds=4, inner_folds=3)
    scales = result.band_scales.mean(axis=(0, 2))
    assert scales[0] > 0.9 and scales[1] < 0.5
    assert result.predicted.shape == result.observed.shape


def test_bad_bands_raise(features):
    a, _, ids = features
    data = make_data(a, seed=7)
    with pytest.raises(InputError, match="band 'x'"):
        banded_ridge_cv({"x": a[:10]}, ids, data)
    with pytest.raises(InputError, match="no feature row"):
        banded_ridge_cv({"x": a[:10]}, ids[:10], data)


def test_synthetic_brain_partition():
    from oddoneout.studies.synthetic import make_world

    world = make_world(n_items=300, n_subjects=1, voxels_per_roi=40, seed=0)
    mllm = world.views["mllm"].to_numpy()
    dimension = world.stimuli.ratings("dimension").to_numpy()
    fast = {"names": ("mllm", "dim"), "alphas": np.logspace(-1, 4, 8), "n_folds": 4, "inner_folds": 3}
    parts = variance_partitioning(mllm, dimension, world.stimuli.item_ids, world.neural[0], **fast)
    table = parts.roi_table().set_index("roi")
    assert table.loc["TPJ", "unique_mllm"] > 0.1 > abs(table.loc["TPJ", "unique_dim"])  # TPJ: categories
    assert table.loc["Insula", "unique_dim"] > 0.15 > abs(table.loc["Insula", "unique_mllm"])  # the 2-d deviation
    assert table.loc["VC", ["unique_mllm", "unique_dim", "shared"]].abs().max() < 0.02  # nothing carries VC
    raw = variance_partitioning(mllm, dimension, world.stimuli.item_ids, world.neural[0], r2="raw", **fast).roi_table()
    # the raw R^2 carries the intercept's error of the run offsets: shared goes negative where nothing is shared
    assert raw.set_index("roi").loc["VC", "shared"] < table.loc["VC", "shared"] - 0.02
