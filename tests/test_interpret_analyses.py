"""Tests of the interpretation analyses: dimension classes, maps, centroids, graph, reproduction, figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.container import BarContainer

from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.interpret.centroid import (
    PAPER_CATEGORIES,
    dominant_category,
    nearest_centroid_accuracy,
    variance_components,
)
from oddoneout.interpret.classify import CLASSES, class_shares, classify_dimensions
from oddoneout.interpret.graph import dimension_graph, graph_layout
from oddoneout.interpret.maps import check_coordinates, item_map, tsne_map
from oddoneout.interpret.ratings import rating_correlations
from oddoneout.interpret.reproduction import PAPER_NUMBERS, paper_numbers, reproduction_table
from oddoneout.report import interpret_figures
from oddoneout.stimuli import StimulusSet

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def corr_table(rows: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Dimensions x rating scales, NaN where a row does not give a scale."""
    columns = ["category:Joy", "category:Fear", "category:Awe", "dimension:valence", "dimension:arousal"]
    frame = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=columns)
    frame.index.name = "dim"
    return frame.astype(float)


def clustered_stimuli(n_per_class: int = 20, classes=("Joy", "Fear", "Awe", "Anger"), seed: int = 0):
    """Items whose dominant category is known, and a well-separated embedding of the classes."""
    rng = np.random.default_rng(seed)
    n_classes = len(classes)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    ratings = rng.uniform(0, 0.2, size=(len(labels), n_classes))
    ratings[np.arange(len(labels)), labels] += 0.6
    ids = [f"v{i:03d}" for i in range(len(labels))]
    table = pd.DataFrame({"item_id": ids, "caption": [f"clip {i}" for i in ids]})
    for c, name in enumerate(classes):
        table[f"category:{name}"] = ratings[:, c]
    table["dimension:valence"] = rng.uniform(1, 9, len(labels))
    centres = np.eye(n_classes) * 5
    weights = centres[labels] + rng.uniform(0, 0.5, size=(len(labels), n_classes))
    return StimulusSet(table, name="clusters"), Embedding(ids, weights), labels


# --------------------------------------------------------------------------------------------
# classify
# --------------------------------------------------------------------------------------------


def test_classify_known_cases():
    table = corr_table(
        {
            "cat": {"category:Joy": 0.8, "dimension:valence": 0.5},
            "hyb": {"category:Fear": 0.6, "dimension:valence": -0.55},
            "dim": {"category:Awe": 0.35, "dimension:arousal": 0.7},
            # A strong *negative* category correlation does not make a dimension categorical.
            "neg": {"category:Joy": -0.9, "category:Fear": 0.1, "dimension:valence": 0.5},
            "weak": {"category:Joy": 0.1, "dimension:valence": 0.2},
            "dead": {},
        }
    )
    result = classify_dimensions(table)
    assert list(result.columns) == ["dim", "class", "best_category", "r_category", "best_dimension", "r_dimension"]
    assert dict(zip(result["dim"], result["class"])) == {
        "cat": "categorical",
        "hyb": "hybrid",
        "dim": "dimensional",
        "neg": "dimensional",
        "weak": "unclassified",
        "dead": "unclassified",
    }
    hyb = result.set_index("dim").loc["hyb"]
    assert hyb["best_category"] == "Fear" and hyb["best_dimension"] == "valence"
    assert hyb["r_dimension"] == pytest.approx(-0.55)  # signed r of the largest |r|
    dead = result.set_index("dim").loc["dead"]
    assert pd.isna(dead["best_category"]) and np.isnan(dead["r_category"])


def test_classify_thresholds_change_the_class():
    table = corr_table({"d": {"category:Joy": 0.8, "dimension:valence": 0.6}})
    assert classify_dimensions(table)["class"].item() == "categorical"  # 0.6 < 0.8 * 0.8
    assert classify_dimensions(table, balance=0.7)["class"].item() == "hybrid"
    assert classify_dimensions(table, min_r=0.7)["class"].item() == "categorical"
    assert classify_dimensions(table, min_r=0.9)["class"].item() == "unclassified"
    # Restricting the categories changes the best category.
    table = corr_table({"d": {"category:Joy": 0.8, "category:Fear": 0.5, "dimension:valence": 0.45}})
    restricted = classify_dimensions(table, categories=["Fear"])
    assert restricted["best_category"].item() == "Fear" and restricted["class"].item() == "hybrid"


@pytest.mark.parametrize("kwargs", [{"min_r": 0}, {"min_r": 1.5}, {"balance": 0}, {"categories": ["Nope"]}])
def test_classify_rejects_bad_arguments(kwargs):
    with pytest.raises(InputError):
        classify_dimensions(corr_table({"d": {"category:Joy": 0.5}}), **kwargs)


def test_classify_needs_both_groups():
    with pytest.raises(InputError, match="dimension"):
        classify_dimensions(corr_table({"d": {"category:Joy": 0.5}})[["category:Joy"]])


def test_class_shares_sum_to_one_per_system():
    a = classify_dimensions(corr_table({"x": {"category:Joy": 0.9}, "y": {"dimension:valence": 0.9}}))
    b = classify_dimensions(corr_table({"x": {"category:Joy": 0.9}}))
    shares = class_shares({"a": a, "b": b})
    assert list(shares.columns) == [*CLASSES, "n_dims"]
    assert shares.loc["a", "categorical"] == 0.5 and shares.loc["a", "dimensional"] == 0.5
    assert shares.loc["b", "categorical"] == 1.0 and shares.loc["b", "n_dims"] == 1
    np.testing.assert_allclose(shares[list(CLASSES)].sum(axis=1), 1.0)


def test_classify_end_to_end_from_ratings():
    """A dimension that copies a category rating is categorical; one that copies valence, dimensional."""
    stimuli, _, _ = clustered_stimuli()
    joy = stimuli.table["category:Joy"].to_numpy()
    valence = stimuli.table["dimension:valence"].to_numpy()
    embedding = Embedding(stimuli.item_ids, np.column_stack([joy, valence]))
    result = classify_dimensions(rating_correlations(embedding, stimuli))
    assert result["class"].tolist() == ["categorical", "dimensional"]
    assert result["best_category"][0] == "Joy" and result["r_category"][0] == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# centroid
# --------------------------------------------------------------------------------------------


def test_dominant_category_falls_back_to_all_columns_without_paper_categories():
    table = pd.DataFrame(
        {"item_id": ["a", "b"], "caption": ["", ""], "category:x": [0.9, 0.1], "category:y": [0.1, 0.9]}
    )
    stimuli = StimulusSet(table)
    assert dominant_category(stimuli).tolist() == ["x", "y"]
    with pytest.raises(InputError, match="z"):
        dominant_category(stimuli, categories=["z"])


def test_nearest_centroid_planted_clusters_near_perfect():
    stimuli, embedding, _ = clustered_stimuli()
    result = nearest_centroid_accuracy(embedding, stimuli, ks=(1, 3), n_permutations=5)
    assert result["k"].tolist() == [1, 3]
    assert result["accuracy"].tolist() == [1.0, 1.0]
    assert result["n_classes"].tolist() == [4, 4] and result["n_items"].tolist() == [80, 80]
    assert result["chance_uniform"].tolist() == [0.25, 0.75]
    assert result["chance_permutation"][0] < 0.5


def test_nearest_centroid_random_features_near_chance():
    stimuli, _, _ = clustered_stimuli(n_per_class=50)
    features = np.random.default_rng(1).normal(size=(len(stimuli), 10))
    result = nearest_centroid_accuracy(features, stimuli, ks=(1,), n_permutations=10)
    assert abs(result["accuracy"][0] - 0.25) < 0.1
    assert abs(result["chance_permutation"][0] - 0.25) < 0.1


def test_nearest_centroid_is_leave_one_out():
    """Class A's two items lie on either side of class B: only leave-one-out makes them wrong.

    Full centroids: A at 0, B at 0.5, so every item would be right. Left out, a1's own "centroid"
    is a2 (2 away) while B's is 1.5 away: a1 and a2 are wrong, b1 and b2 still right.
    """
    table = pd.DataFrame(
        {
            "item_id": ["a1", "a2", "b1", "b2"],
            "caption": [""] * 4,
            "category:A": [1, 1, 0, 0],
            "category:B": [0, 0, 1, 1],
        }
    )
    features = np.array([[-1.0], [1.0], [0.4], [0.6]])
    result = nearest_centroid_accuracy(features, StimulusSet(table), ks=(1,), n_permutations=0)
    assert result["accuracy"][0] == 0.5
    assert np.isnan(result["chance_permutation"][0])


def test_nearest_centroid_accepts_coordinate_tables_and_drops_small_classes():
    stimuli, _, labels = clustered_stimuli(n_per_class=10)
    table = stimuli.table.copy()
    table["category:Calmness"] = 0.0
    table.loc[table.index[0], "category:Calmness"] = 5.0  # the only Calmness item: no leave-one-out centroid
    stimuli = StimulusSet(table)
    coords = pd.DataFrame({"item_id": list(stimuli.item_ids), "x": labels * 10.0, "y": np.zeros(len(labels))})
    result = nearest_centroid_accuracy(coords, stimuli, ks=(1,), n_permutations=0)
    assert result["n_items"][0] == 39 and result["n_classes"][0] == 4
    assert result["accuracy"][0] == 1.0
    with pytest.raises(InputError, match="k must be"):
        nearest_centroid_accuracy(coords, stimuli, ks=(5,))
    with pytest.raises(InputError, match="lacks"):
        nearest_centroid_accuracy(coords.iloc[1:], stimuli)


def test_variance_components_counts_rank():
    rng = np.random.default_rng(0)
    rank2 = np.abs(rng.normal(size=(50, 2))) @ np.abs(rng.normal(size=(2, 6)))
    table = variance_components({"low": Embedding([str(i) for i in range(50)], rank2)}, thresholds=(0.5, 0.99, 1.0))
    assert list(table.columns) == ["n_dims", "pcs_var_50", "pcs_var_99", "pcs_var_100"]
    assert table.loc["low", "n_dims"] == 6
    assert table.loc["low", "pcs_var_99"] <= 2 and table.loc["low", "pcs_var_100"] == 2
    with pytest.raises(InputError):
        variance_components(Embedding(["a"], [[1.0]]), thresholds=(1.5,))


# --------------------------------------------------------------------------------------------
# maps
# --------------------------------------------------------------------------------------------


def test_tsne_map_is_seeded_and_separates_clusters():
    stimuli, embedding, labels = clustered_stimuli(n_per_class=15)
    first = tsne_map(embedding, stimuli, seed=3, max_iter=400)
    again = item_map(embedding, stimuli, method="tsne", seed=3, max_iter=400)
    assert list(first.columns) == ["item_id", "x", "y"] and len(first) == len(stimuli)
    pd.testing.assert_frame_equal(first, again)
    result = nearest_centroid_accuracy(first, stimuli, ks=(1,), n_permutations=0)
    assert result["accuracy"][0] > 0.95


@pytest.mark.slow  # numba compiles UMAP on first use: ~20-40 s
def test_umap_map_returns_one_row_per_item():
    pytest.importorskip("umap")
    stimuli, embedding, _ = clustered_stimuli(n_per_class=8)
    coords = item_map(embedding, stimuli, method="umap", seed=0)
    assert coords["item_id"].tolist() == list(stimuli.item_ids)
    assert np.isfinite(coords[["x", "y"]].to_numpy()).all()


def test_map_input_errors():
    stimuli, embedding, _ = clustered_stimuli(n_per_class=2)
    with pytest.raises(InputError, match="unknown map method"):
        item_map(embedding, stimuli, method="pca")
    with pytest.raises(InputError, match="non-finite"):
        check_coordinates(pd.DataFrame({"item_id": ["a"], "x": [np.nan], "y": [0.0]}))
    with pytest.raises(InputError, match="repeats"):
        check_coordinates(pd.DataFrame({"item_id": ["a", "a"], "x": [0, 1], "y": [0, 1]}))


# --------------------------------------------------------------------------------------------
# graph
# --------------------------------------------------------------------------------------------


def two_block_weights(n_items: int = 200, seed: int = 0) -> pd.DataFrame:
    """Six dimensions: d1-d3 share one latent factor, d4-d6 another, independent of the first."""
    rng = np.random.default_rng(seed)
    f1, f2 = rng.random(n_items), rng.random(n_items)
    columns = {}
    for k in range(3):
        columns[f"a{k}"] = f1 + 0.3 * rng.random(n_items)
        columns[f"b{k}"] = f2 + 0.3 * rng.random(n_items)
    frame = pd.DataFrame(columns, index=[f"i{j}" for j in range(n_items)])
    frame.index.name = "item_id"
    return frame


def test_dimension_graph_finds_two_communities():
    weights = two_block_weights()
    nodes, edges, graph = dimension_graph(weights, labels={"a0": "joy"}, seed=0)
    assert list(nodes.columns) == ["dim", "system", "community", "pagerank", "degree", "label"]
    community = dict(zip(nodes["dim"], nodes["community"]))
    assert len(set(community.values())) == 2
    assert community["a0"] == community["a1"] == community["a2"] != community["b0"]
    assert community["b0"] == community["b1"] == community["b2"]
    # Edges only inside the blocks: 3 + 3.
    assert len(edges) == 6
    assert all(s[0] == t[0] for s, t in zip(edges["source"], edges["target"]))
    assert (edges["r"] > 0.2).all()
    assert nodes["pagerank"].sum() == pytest.approx(1.0)
    assert nodes.set_index("dim").loc["a0", "label"] == "joy"
    assert graph.number_of_edges() == 6


def test_dimension_graph_threshold_and_systems():
    weights = two_block_weights()
    nodes, edges, _ = dimension_graph(weights, threshold=0.99)
    assert edges.empty and nodes["community"].nunique() == 6
    both = {"s1": Embedding(list(weights.index), weights.to_numpy()), "s2": weights.reset_index()}
    nodes, edges, _ = dimension_graph(both)
    assert len(nodes) == 12 and set(nodes["system"]) == {"s1", "s2"}
    assert "s1/dim_01" in set(nodes["dim"]) and "s2/a0" in set(nodes["dim"])
    # dim_01 of s1 is a0 of s2: the same weights, r = 1.
    edge = edges[(edges["source"] == "s1/dim_01") & (edges["target"] == "s2/a0")]
    assert edge["r"].item() == pytest.approx(1.0)


def test_dimension_graph_dead_dimension_is_isolated():
    weights = two_block_weights()
    weights["dead"] = 0.0
    nodes, edges, _ = dimension_graph(weights)
    assert nodes.set_index("dim").loc["dead", "degree"] == 0
    assert "dead" not in set(edges["source"]) | set(edges["target"])


def test_graph_layout_is_seeded():
    _, _, graph = dimension_graph(two_block_weights())
    assert graph_layout(graph, seed=1) == graph_layout(graph, seed=1)
    assert set(graph_layout(graph)) == set(graph.nodes)


# --------------------------------------------------------------------------------------------
# reproduction
# --------------------------------------------------------------------------------------------


def test_paper_numbers_carry_their_sentences():
    table = paper_numbers()
    assert len(table) == len(PAPER_NUMBERS)
    row = table[(table["quantity"] == "accuracy") & (table["system"] == "mllm")].iloc[0]
    assert row["paper"] == pytest.approx(0.771) and "77.1%" in row["source"]


def test_reproduction_table_places_ours_beside_paper():
    summary = {
        "systems": {
            "mllm": {"accuracy": 0.70, "accuracy_ci": [0.68, 0.72], "noise_ceiling": 0.8, "n_dims": 25},
            "human_category": {"accuracy": 0.95},
        },
        "interpretation": {
            "mllm": {"class_shares": {"categorical": 0.6, "hybrid": 0.4}, "centroid_top3": 0.5},
            "human_category": {"centroid_top3": 0.9, "centroid_chance_top3": 0.2},
        },
        "rsa": {"TPJ": {"mllm": 0.1}},
        "encoding": {"V1": {"mllm": 0.3, "human_category": 0.2}, "TPJ": {"mllm": 0.1, "human_category": 0.2}},
    }
    table = reproduction_table(summary)
    indexed = table.set_index(["quantity", "system"])
    acc = indexed.loc[("accuracy", "mllm")]
    assert acc["ours"] == 0.70 and acc["ours_ci_low"] == 0.68 and acc["ours_ci_high"] == 0.72 and acc["run"]
    assert np.isnan(indexed.loc[("noise_ceiling", "mllm"), "ours_ci_low"])
    assert indexed.loc[("n_dims", "mllm"), "ours"] == 25
    assert indexed.loc[("share_categorical", "mllm"), "ours"] == 0.6
    assert indexed.loc[("centroid_top3", "human_category"), "ours"] == 0.9
    assert indexed.loc[("centroid_chance_top3", "all"), "ours"] == 0.2
    assert indexed.loc[("rsa_TPJ", "mllm"), "ours"] == 0.1
    assert indexed.loc[("encoding_ratio_vs_human_category", "mllm"), "ours"] == pytest.approx(1.0)
    # Systems not run: NaN and run=False.
    llm = indexed.loc[("accuracy", "llm")]
    assert not llm["run"] and np.isnan(llm["ours"]) and llm["paper"] == pytest.approx(0.621)
    assert np.isnan(indexed.loc[("validation_r", "mllm"), "ours"])  # run, but the summary lacks it
    with pytest.raises(InputError):
        reproduction_table({"systems": [1, 2]})


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------


def _bars(figure) -> list:
    return [patch for ax in figure.axes for c in ax.containers if isinstance(c, BarContainer) for patch in c]


def test_correlation_bars_figure_draws_top_scales():
    table = corr_table(
        {
            "d1": {"category:Joy": 0.8, "category:Fear": -0.2, "category:Awe": 0.1, "dimension:valence": -0.6},
            "d2": {"category:Joy": 0.1, "dimension:arousal": 0.5, "dimension:valence": 0.3},
        }
    )
    figure = interpret_figures.correlation_bars_figure(table, n_top=2, title="sys")
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert len(visible) == 2
    counts = [len(ax.patches) for ax in visible]
    assert counts == [2 + 1, 1 + 2]  # d1: 2 categories + 1 dimension (others NaN); d2: 1 + 2
    labels = [t.get_text() for t in visible[0].get_yticklabels()]
    assert labels[-1] == "Joy" and "valence" in labels


def test_class_shares_figure_stacks_one_bar_per_system_and_class():
    a = classify_dimensions(corr_table({"x": {"category:Joy": 0.9}, "y": {"dimension:valence": 0.9}}))
    shares = class_shares({"a": a, "b": a})
    figure = interpret_figures.class_shares_figure(shares)
    assert len(_bars(figure)) == 2 * len(CLASSES)
    with_paper = interpret_figures.class_shares_figure(shares, paper={"a": {"categorical": 1.0}})
    assert len(_bars(with_paper)) == 4 * len(CLASSES)


def test_map_figure_has_one_point_per_item():
    stimuli, _, labels = clustered_stimuli(n_per_class=5)
    coords = pd.DataFrame({"item_id": list(stimuli.item_ids), "x": np.arange(20.0), "y": labels * 1.0})
    figure = interpret_figures.map_figure(coords, stimuli, title="t-SNE")
    scatters = [c for c in figure.axes[0].collections if isinstance(c, PathCollection)]
    assert len(scatters) == 1 and len(scatters[0].get_offsets()) == 20
    assert len(figure.axes[0].get_legend().get_texts()) == 4


def test_graph_figure_draws_nodes_and_edges():
    nodes, edges, graph = dimension_graph(two_block_weights())
    figure = interpret_figures.graph_figure(nodes, edges, graph_layout(graph))
    ax = figure.axes[0]
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(points[0].get_offsets()) == 6 and len(lines[0].get_segments()) == 6
    with pytest.raises(InputError):
        interpret_figures.graph_figure(nodes, edges, {})


# --------------------------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cowen_keltner(shared_data):
    from oddoneout.stimuli.cowen_keltner import load_cowen_keltner

    return load_cowen_keltner(source=shared_data / "cowen_keltner")


def test_real_data_category_rating_embedding(cowen_keltner):
    """The centred, clipped category ratings as an embedding: categorical dims, ~98% top-3 centroid."""
    ratings = cowen_keltner.ratings("category").to_numpy()
    embedding = Embedding(cowen_keltner.item_ids, np.clip(ratings - ratings.mean(axis=0), 0, None))
    classes = classify_dimensions(rating_correlations(embedding, cowen_keltner))
    assert (classes["class"] == "categorical").all()
    labels = dominant_category(cowen_keltner)
    assert set(labels) <= set(PAPER_CATEGORIES) and len(labels) == 2185
    result = nearest_centroid_accuracy(embedding, cowen_keltner, ks=(1, 3), n_permutations=2).set_index("k")
    assert result.loc[3, "accuracy"] > 0.9
    assert result.loc[3, "chance_permutation"] < 0.2
    assert result.loc[3, "n_classes"] == 27
