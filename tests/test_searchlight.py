"""Searchlight RSA: the fast sums equal the naive RSM correlations, and a planted region is found."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr, zscore

from oddoneout.errors import InputError
from oddoneout.neural.data import NeuralData
from oddoneout.neural.searchlight import (
    SearchlightResult,
    neighbourhoods,
    pattern_rsm,
    searchlight_rsa,
    searchlight_scores,
)
from oddoneout.rsm import RSM


def grid(shape: tuple[int, int, int]) -> np.ndarray:
    return np.stack(np.unravel_index(np.arange(np.prod(shape)), shape), axis=1)


def naive_scores(patterns, hoods, model_rsm, method="pearson"):
    """One full RSM per searchlight, correlated over its upper triangle with numpy/scipy."""
    z = zscore(patterns, axis=0)
    upper = np.triu_indices(patterns.shape[0], k=1)
    scores = []
    for voxels in hoods:
        data_rsm = np.corrcoef(z[:, voxels])
        if method == "pearson":
            scores.append(np.corrcoef(data_rsm[upper], model_rsm[upper])[0, 1])
        else:
            scores.append(spearmanr(data_rsm[upper], model_rsm[upper])[0])
    return np.array(scores)


@pytest.fixture
def small_case():
    rng = np.random.default_rng(3)
    n_stimuli, shape = 40, (5, 5, 4)
    coords = grid(shape)
    features = np.abs(rng.normal(size=(n_stimuli, 6)))
    patterns = features @ rng.normal(size=(6, coords.shape[0])) + rng.normal(size=(n_stimuli, coords.shape[0]))
    patterns += rng.normal(0, 3, size=coords.shape[0])  # voxel offsets, removed by z-scoring
    return coords, features, patterns


@pytest.mark.parametrize("similarity", ["pearson", "cosine", "dot"])
def test_fast_pearson_equals_naive(small_case, similarity):
    coords, features, patterns = small_case
    ids = [f"s{i}" for i in range(len(features))]
    hoods = neighbourhoods(coords, radius=1.5)
    model = RSM.from_features(features, ids, similarity)
    fast = searchlight_scores(patterns, hoods, {"m": model})["m"]
    if similarity == "pearson":
        dense = np.corrcoef(features)
    elif similarity == "cosine":
        unit = features / np.linalg.norm(features, axis=1, keepdims=True)
        dense = unit @ unit.T
    else:
        dense = features @ features.T
    np.testing.assert_allclose(fast, naive_scores(patterns, hoods, dense), rtol=0, atol=1e-8)
    np.testing.assert_allclose(pattern_rsm(patterns[:, :7]), np.corrcoef(patterns[:, :7]), atol=1e-12)


def test_dense_model_equals_factor_model_and_naive(small_case):
    coords, features, patterns = small_case
    ids = [f"s{i}" for i in range(len(features))]
    hoods = neighbourhoods(coords, radius=1.0, shape="cube")
    dense = np.corrcoef(features)
    scores = searchlight_scores(
        patterns,
        hoods,
        {"factor": RSM.from_features(features, ids), "dense": RSM.from_matrix(dense, ids)},
    )
    np.testing.assert_allclose(scores["dense"], scores["factor"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(scores["dense"], naive_scores(patterns, hoods, dense), rtol=0, atol=1e-8)


def test_spearman_equals_scipy(small_case):
    coords, features, patterns = small_case
    ids = [f"s{i}" for i in range(len(features))]
    hoods = neighbourhoods(coords, radius=1.0)[:10]
    fast = searchlight_scores(patterns, hoods, {"m": RSM.from_features(features, ids)}, method="spearman")["m"]
    np.testing.assert_allclose(fast, naive_scores(patterns, hoods, np.corrcoef(features), "spearman"), atol=1e-10)


def test_spearman_subsample_is_seeded(small_case):
    coords, features, patterns = small_case
    ids = [f"s{i}" for i in range(len(features))]
    hoods = neighbourhoods(coords, radius=1.0)[:5]
    models = {"m": RSM.from_features(features, ids)}
    a = searchlight_scores(patterns, hoods, models, method="spearman", spearman_stimuli=20, seed=1)["m"]
    b = searchlight_scores(patterns, hoods, models, method="spearman", spearman_stimuli=20, seed=1)["m"]
    c = searchlight_scores(patterns, hoods, models, method="spearman")["m"]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_matches_rsatoolbox(small_case):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import RDMs, calc_rdm, compare

    coords, features, patterns = small_case
    ids = [f"s{i}" for i in range(len(features))]
    voxels = neighbourhoods(coords, radius=2.0, centres=np.array([37]))[0]
    ours = searchlight_scores(patterns, [voxels], {"m": RSM.from_features(features, ids)})["m"][0]
    data_rdm = calc_rdm(Dataset(zscore(patterns, axis=0)[:, voxels]), method="correlation")
    model_rdm = RDMs((1 - np.corrcoef(features))[np.triu_indices(len(ids), k=1)][None, :])
    assert rsatoolbox is not None
    assert ours == pytest.approx(float(compare(data_rdm, model_rdm, method="corr")[0, 0]), abs=1e-8)


def test_neighbourhood_sizes():
    coords = grid((9, 9, 9))
    centre = np.array([np.ravel_multi_index((4, 4, 4), (9, 9, 9))])
    assert neighbourhoods(coords, 3, "cube", centres=centre)[0].size == 343  # the study's 7 x 7 x 7 cube
    assert neighbourhoods(coords, 1, "sphere", centres=centre)[0].size == 7
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    # 8 mm on a 2 mm grid is 4 voxels: 257 voxels in the sphere
    assert neighbourhoods(coords, 8.0, "sphere", affine=affine, centres=centre)[0].size == 257
    with pytest.raises(InputError, match="shape"):
        neighbourhoods(coords, 1, "blob")


def planted_result():
    """Searchlight of noise with a planted sphere whose voxels carry model a's structure."""
    rng = np.random.default_rng(0)
    n_stimuli, shape = 60, (8, 8, 8)
    coords = grid(shape)
    features_a = np.abs(rng.normal(size=(n_stimuli, 5)))
    features_b = np.abs(rng.normal(size=(n_stimuli, 5)))
    responses = rng.normal(size=(n_stimuli, coords.shape[0]))
    planted = np.flatnonzero(np.linalg.norm(coords - np.array([2, 2, 2]), axis=1) <= 1.8)
    responses[:, planted] += 1.5 * (features_a - features_a.mean(0)) @ rng.normal(size=(5, planted.size))
    ids = np.array([f"s{i:02d}" for i in range(n_stimuli)])
    data = NeuralData(
        "sub-01",
        responses,
        ids,
        np.arange(n_stimuli) % 4,
        {"planted": planted, "rest": np.setdiff1d(np.arange(coords.shape[0]), planted)},
        coords=coords,
    )
    models = {"a": RSM.from_features(features_a, ids), "b": RSM.from_features(features_b, ids)}
    return coords, searchlight_rsa(data, models, radius=1.5, min_voxels=5)


def test_planted_region_scores_highest():
    coords, result = planted_result()
    best = int(np.nanargmax(result.voxel_r["a"]))
    assert np.linalg.norm(coords[best] - np.array([2, 2, 2])) <= 1.8
    assert result.roi_r["a"]["planted"] > 0.2
    assert result.roi_r["a"]["planted"] > result.roi_r["b"]["planted"] + 0.15
    assert result.roi_r["a"]["planted"] > result.roi_r["a"]["rest"] + 0.15
    table = result.to_frame()
    assert list(table.columns) == ["subject", "system", "roi", "r"] and len(table) == 4


def test_result_round_trip(tmp_path):
    _, result = planted_result()
    loaded = SearchlightResult.load(result.save(tmp_path / "sl.npz"))
    np.testing.assert_array_equal(loaded.voxel_r["a"], result.voxel_r["a"])
    np.testing.assert_array_equal(loaded.n_neighbours, result.n_neighbours)
    assert loaded.roi_r == result.roi_r and loaded.subject == "sub-01"
    assert loaded.metadata["radius"] == 1.5
    with pytest.raises(InputError, match="not found"):
        SearchlightResult.load(tmp_path / "missing.npz")


def test_missing_stimulus_and_coords_raise():
    ids = np.array(["a", "b", "c", "d"])
    data = NeuralData("sub-01", np.ones((4, 3)) + np.eye(4, 3), ids, np.arange(4), {"all": np.arange(3)})
    model = RSM.from_features(np.eye(4)[:3], ["a", "b", "c"])
    with pytest.raises(InputError, match="coordinates"):
        searchlight_rsa(data, {"m": model})
    with pytest.raises(InputError, match="not rows of model 'm'"):
        searchlight_rsa(data, {"m": model}, coords=grid((3, 1, 1)))


def test_float32_close_to_float64(small_case):
    coords, features, patterns = small_case
    ids = [f"s{i}" for i in range(len(features))]
    hoods = neighbourhoods(coords, radius=1.5)
    models = {"m": RSM.from_features(features, ids)}
    exact = searchlight_scores(patterns, hoods, models)["m"]
    single = searchlight_scores(patterns, hoods, models, dtype="float32")["m"]
    np.testing.assert_allclose(single, exact, atol=1e-4)
    assert not np.array_equal(single, exact)


def test_threads_give_the_same_scores(small_case):
    coords, features, patterns = small_case
    ids = [f"s{i}" for i in range(len(features))]
    hoods = neighbourhoods(coords, radius=1.5)
    models = {"m": RSM.from_features(features, ids)}
    calls = []
    serial = searchlight_scores(patterns, hoods, models)["m"]
    threaded = searchlight_scores(patterns, hoods, models, n_jobs=2, progress=lambda d, t: calls.append((d, t)))["m"]
    np.testing.assert_allclose(threaded, serial, rtol=0, atol=1e-12)
    assert calls[-1] == (len(hoods), len(hoods))
    with pytest.raises(InputError, match="n_jobs"):
        searchlight_scores(patterns, hoods, models, n_jobs=0)


def test_synthetic_brain_rsa_finds_the_carriers():
    from oddoneout.studies.synthetic import make_world

    world = make_world(n_items=200, n_subjects=1, seed=0)
    category = world.stimuli.ratings("category").to_numpy()
    features = {
        "mllm": world.views["mllm"].to_numpy(),
        "llm": world.views["llm"].to_numpy(),
        "human_category": category,
        "human_dimension": world.stimuli.ratings("dimension").to_numpy(),
    }
    models = {name: RSM.from_features(x, world.stimuli.item_ids) for name, x in features.items()}
    table = searchlight_rsa(world.neural[0], models, radius=2.0).to_frame()
    wide = table.pivot(index="roi", columns="system", values="r")
    assert wide.loc["STS"].idxmax() == "llm" and wide.loc["STS", "llm"] > 0.15
    assert wide.loc["Insula"].idxmax() == "human_dimension" and wide.loc["Insula", "human_dimension"] > 0.3
    assert wide.loc["TPJ", "mllm"] > 0.05 + wide.loc["TPJ", "human_dimension"]
    assert wide.loc["VC"].abs().max() < 0.05


def test_world_coordinates_of_image_data_match_indices_with_affine():
    rng = np.random.default_rng(5)
    ijk = grid((5, 5, 5))
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-4.0, 10.0, 0.0]
    ids = np.array([f"s{i}" for i in range(30)])
    responses = rng.normal(size=(30, ijk.shape[0]))
    mm = ijk @ affine[:3, :3].T + affine[:3, 3]
    data = NeuralData("sub-01", responses, ids, np.arange(30) % 3, {"all": np.arange(125)}, coords=mm, affine=affine)
    models = {"m": RSM.from_features(rng.random((30, 4)), ids)}
    in_mm = searchlight_rsa(data, models, radius=3.0)
    by_index = searchlight_rsa(data, models, radius=3.0, coords=ijk, affine=affine)
    np.testing.assert_array_equal(in_mm.voxel_r["m"], by_index.voxel_r["m"])
    assert in_mm.metadata["radius_unit"] == "mm" and in_mm.n_neighbours.max() == 19  # 3 mm: 1.5 voxels
    with pytest.raises(InputError, match="affine"):
        searchlight_rsa(data, models, radius=3.0, affine=affine)
