"""Tests of the interpretation of embedding dimensions through ratings and top items."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.interpret import (
    dimension_labels,
    rating_correlations,
    read_rating_correlations,
    read_top_items,
    top_items,
    write_rating_correlations,
    write_top_items,
)
from oddoneout.stimuli import StimulusSet


def make_stimuli(ids, ratings: dict[str, np.ndarray], captions=None) -> StimulusSet:
    table = pd.DataFrame({"item_id": list(ids), "caption": captions or [f"clip {i}" for i in ids], **ratings})
    return StimulusSet(table, name="hand-made")


def test_rating_correlations_match_numpy_corrcoef():
    rng = np.random.default_rng(0)
    ids = [f"v{i}" for i in range(12)]
    weights = rng.random((12, 3))
    ratings = {
        "dimension:valence": rng.normal(size=12),
        "category:joy": rng.random(12),
        "category:fear": rng.random(12),
    }
    # The embedding lists its items in another order than the stimulus set: alignment is by id.
    order = rng.permutation(12)
    embedding = Embedding([ids[i] for i in order], weights[order])
    result = rating_correlations(embedding, make_stimuli(ids, ratings))

    assert list(result.index) == ["dim_01", "dim_02", "dim_03"]
    # Categories first, then dimensions, each group in table order.
    assert list(result.columns) == ["category:joy", "category:fear", "dimension:valence"]
    for d in range(3):
        for column in result.columns:
            expected = np.corrcoef(weights[:, d], ratings[column])[0, 1]
            assert result.loc[f"dim_{d + 1:02d}", column] == pytest.approx(expected, abs=1e-12)


def test_rating_correlations_recover_a_planted_correlation():
    rng = np.random.default_rng(1)
    n = 300
    ids = [f"item{i}" for i in range(n)]
    amusement = rng.random(n)
    weights = rng.random((n, 5)) * 0.5
    weights[:, 3] = 2.0 * amusement + 0.1 * rng.random(n)  # dim_04 tracks amusement
    ratings = {"category:amusement": amusement, "category:awe": rng.random(n), "dimension:arousal": rng.random(n)}
    result = rating_correlations(Embedding(ids, weights), make_stimuli(ids, ratings))

    assert result.loc["dim_04", "category:amusement"] > 0.95
    assert result["category:amusement"].abs().drop("dim_04").max() < 0.2
    assert dimension_labels(result, n=1)["dim_04"][0][0] == "category:amusement"


def test_constant_columns_give_nan_and_others_stay_finite():
    ids = ["a", "b", "c", "d"]
    weights = np.array([[0.0, 1.0], [0.0, 2.0], [0.0, 0.5], [0.0, 3.0]])  # dim_01 is dead
    ratings = {"category:calm": np.full(4, 0.3), "dimension:valence": np.array([1.0, 5.0, 2.0, 9.0])}
    result = rating_correlations(Embedding(ids, weights), make_stimuli(ids, ratings))

    assert result.loc["dim_01"].isna().all()
    assert np.isnan(result.loc["dim_02", "category:calm"])
    assert result.loc["dim_02", "dimension:valence"] == pytest.approx(
        np.corrcoef(weights[:, 1], ratings["dimension:valence"])[0, 1]
    )


def test_rating_correlations_reject_missing_items():
    ids = ["a", "b", "c", "d"]
    embedding = Embedding(["a", "b", "c"], np.ones((3, 2)))
    with pytest.raises(InputError, match="'d'"):
        rating_correlations(embedding, make_stimuli(ids, {"category:joy": np.arange(4.0)}))


def test_rating_correlations_need_rating_columns():
    ids = ["a", "b", "c"]
    with pytest.raises(InputError, match="no rating columns"):
        rating_correlations(Embedding(ids, np.eye(3)), make_stimuli(ids, {}))


def test_top_items_order_and_captions():
    ids = ["a", "b", "c", "d"]
    weights = np.array([[0.1, 0.9], [0.7, 0.2], [0.7, 0.0], [0.3, 0.4]])
    stimuli = make_stimuli(ids, {"category:joy": np.arange(4.0)}, captions=["cat", "dog", "owl", "eel"])
    result = top_items(Embedding(ids, weights), stimuli, k=3)

    assert list(result.columns) == ["dim", "rank", "item_id", "weight", "caption"]
    assert result["dim"].tolist() == ["dim_01"] * 3 + ["dim_02"] * 3
    assert result["rank"].tolist() == [1, 2, 3, 1, 2, 3]
    # Ties (b and c on dim_01) keep the embedding's item order.
    assert result["item_id"].tolist() == ["b", "c", "d", "a", "d", "b"]
    assert result["weight"].tolist() == [0.7, 0.7, 0.3, 0.9, 0.4, 0.2]
    assert result["caption"].tolist() == ["dog", "owl", "eel", "cat", "eel", "dog"]


def test_top_items_without_stimuli_and_k_capped():
    result = top_items(Embedding(["x", "y"], np.array([[1.0], [2.0]])), k=8)
    assert result["item_id"].tolist() == ["y", "x"]
    assert result["caption"].tolist() == ["", ""]


def test_top_items_reject_bad_k_and_unknown_items():
    embedding = Embedding(["x", "y", "z"], np.eye(3))
    with pytest.raises(InputError, match="k must be"):
        top_items(embedding, k=0)
    stimuli = make_stimuli(["x", "y"], {"category:joy": np.array([0.0, 1.0])})
    with pytest.raises(InputError, match="'z'"):
        top_items(embedding, stimuli, k=1)


def test_dimension_labels_keep_positive_correlations_only():
    correlations = pd.DataFrame(
        [[0.5, np.nan, 0.8, -0.2], [-0.1, -0.3, -0.4, -0.05]],
        index=["dim_01", "dim_02"],
        columns=["category:joy", "category:fear", "dimension:valence", "dimension:arousal"],
    )
    labels = dimension_labels(correlations, n=3)
    assert labels["dim_01"] == [("dimension:valence", 0.8), ("category:joy", 0.5)]
    assert labels["dim_02"] == []


def test_interpretation_files_round_trip(tmp_path):
    ids = [f"v{i}" for i in range(6)]
    rng = np.random.default_rng(2)
    embedding = Embedding(ids, rng.random((6, 2)))
    stimuli = make_stimuli(
        ids,
        {"category:joy": rng.random(6), "dimension:valence": rng.random(6)},
        captions=['a, quoted "caption"', "NA", "", "x", "y", "z"],
    )
    correlations = rating_correlations(embedding, stimuli)
    items = top_items(embedding, stimuli, k=6)

    loaded = read_rating_correlations(write_rating_correlations(correlations, tmp_path / "s_ratings.csv"))
    pd.testing.assert_frame_equal(loaded, correlations, atol=1e-5)
    loaded_items = read_top_items(write_top_items(items, tmp_path / "s_top_items.csv"))
    assert loaded_items["caption"].tolist() == items["caption"].tolist()
    assert loaded_items["item_id"].tolist() == items["item_id"].tolist()

    (tmp_path / "bad.csv").write_text("dim,rank,item_id\ndim_01,1,a\n")
    with pytest.raises(InputError, match="bad.csv"):
        read_top_items(tmp_path / "bad.csv")
