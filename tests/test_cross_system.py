"""Cross-system comparisons: hand-computed RSA, the exact fast item bootstrap, cross-prediction, the stage."""

import numpy as np
import pandas as pd
import pytest

from oddoneout.embed.evaluate import evaluate_embedding
from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.interpret.cross_system import (
    _bootstrap_r,
    compare_systems_stage,
    cross_accuracy,
    pair_rsa,
    system_rsm,
    systems_rsa,
)
from oddoneout.rsm import RSM
from oddoneout.triplets import sample_triplets


def _gamma_embedding(rng, n, dims, prefix="i"):
    return Embedding([f"{prefix}{k}" for k in range(n)], rng.gamma(0.5, 1.0, (n, dims)))


def test_rsa_matches_a_hand_computed_case_for_each_similarity():
    ids = ["a", "b", "c", "d"]
    first = Embedding(ids, np.array([[1.0, 0], [0, 1], [1, 1], [2, 0]]))
    second = Embedding(ids, np.array([[1.0], [2], [0], [1]]))
    # pairs ab ac ad bc bd cd: dot products 0 1 2 1 0 2 and 2 0 1 0 2 0
    expected = np.corrcoef([0, 1, 2, 1, 0, 2], [2, 0, 1, 0, 2, 0])[0, 1]
    table = systems_rsa({"x": first, "y": second}, n_bootstrap=0)
    assert list(table[["system_a", "system_b"]].iloc[0]) == ["x", "y"]
    assert table["r"].iloc[0] == pytest.approx(expected) and np.isnan(table["ci_low"].iloc[0])
    # only the shared items count, aligned by id whatever the order
    shuffled = Embedding(["e", "d", "c", "b", "a"], np.array([[5.0], [1], [0], [2], [1]]))
    table = systems_rsa({"x": first, "y": shuffled}, n_bootstrap=0)
    assert table["r"].iloc[0] == pytest.approx(expected) and table["n_items"].iloc[0] == 4
    # Pearson profiles of [1,0],[0,1],[1,1],[2,0]: +1 -1 (constant row: 0) ...
    profiles = system_rsm(first.weights, similarity="pearson").dense()
    assert profiles[0, 1] == pytest.approx(-1.0) and profiles[0, 3] == pytest.approx(1.0) and profiles[0, 2] == 0


def test_the_fast_bootstrap_equals_resampling_the_pairs():
    rng = np.random.default_rng(3)
    rsm_a = system_rsm(rng.gamma(0.5, 1.0, (25, 4)))
    rsm_b = system_rsm(rng.gamma(0.5, 1.0, (25, 4)))
    fast = _bootstrap_r(rsm_a, rsm_b, 30, np.random.default_rng(7))
    a, b = rsm_a.dense(), rsm_b.dense()
    draws = np.random.default_rng(7)
    upper = np.triu_indices(25, k=1)
    for k in range(30):
        sample = draws.integers(0, 25, 25)
        rows, cols = sample[upper[0]], sample[upper[1]]
        distinct = rows != cols  # an item paired with its own copy is not a pair
        direct = np.corrcoef(a[rows[distinct], cols[distinct]], b[rows[distinct], cols[distinct]])[0, 1]
        assert fast[k] == pytest.approx(direct, abs=1e-5)


def test_identical_embeddings_give_one_and_independent_ones_a_ci_around_zero():
    rng = np.random.default_rng(0)
    base = _gamma_embedding(rng, 80, 5)
    scaled = Embedding(base.item_ids, base.weights * 3)
    copy = Embedding(base.item_ids, base.weights.copy())
    # the choice probability is not scale-invariant (a softmax): compare it with an exact copy
    for similarity, other in (("dot", scaled), ("pearson", scaled), ("choice", copy)):
        row = systems_rsa({"a": base, "b": other}, similarity=similarity, n_bootstrap=50, max_items=30).iloc[0]
        assert row["r"] == pytest.approx(1.0)
        assert row["ci_low"] == pytest.approx(1.0, abs=1e-4)
    independent = _gamma_embedding(rng, 80, 5)
    row = systems_rsa({"a": base, "b": independent}, n_bootstrap=300).iloc[0]
    assert row["ci_low"] < 0 < row["ci_high"] and row["ci_low"] <= row["r"] <= row["ci_high"]
    related = Embedding(base.item_ids, base.weights + rng.gamma(0.5, 1.0, (80, 5)))
    row = systems_rsa({"a": base, "b": related}, n_bootstrap=300).iloc[0]
    assert 0 < row["ci_low"] <= row["r"] <= row["ci_high"] < 1


def test_every_pair_of_systems_is_compared_and_bad_input_is_named():
    rng = np.random.default_rng(1)
    systems = {name: _gamma_embedding(rng, 20, 3) for name in ("p", "q", "r")}
    table = systems_rsa(systems, n_bootstrap=10, max_items=10)
    assert list(zip(table.system_a, table.system_b)) == [("p", "q"), ("p", "r"), ("q", "r")]
    assert set(table["n_items"]) == {10}
    with pytest.raises(InputError, match="similarity"):
        systems_rsa(systems, similarity="cosine")
    with pytest.raises(InputError, match="at least 2 systems"):
        systems_rsa({"p": systems["p"]})
    with pytest.raises(InputError, match="p and x share 0 items"):
        systems_rsa({"p": systems["p"], "x": _gamma_embedding(rng, 5, 2, prefix="x")})
    with pytest.raises(InputError, match="one size"):
        pair_rsa(RSM.from_matrix(np.zeros((3, 3))), RSM.from_matrix(np.zeros((4, 4))))


def test_cross_accuracy_on_own_triplets_is_its_accuracy_and_a_stranger_is_near_chance():
    rng = np.random.default_rng(2)
    weights = rng.gamma(0.5, 1.0, (40, 4))
    ids = tuple(f"i{k}" for k in range(40))
    test = sample_triplets(weights, 4000, seed=5, item_ids=ids)
    own = Embedding(ids, weights)
    result = cross_accuracy(own, test, n_bootstrap=50)
    reference = evaluate_embedding(own, test, n_bootstrap=50)
    assert result["accuracy"] == pytest.approx(reference["accuracy"]) and result["ci"] == reference["accuracy_ci"]
    assert result["chance"] == pytest.approx(1 / 3) and result["n_triplets"] == 4000
    stranger = Embedding(ids, rng.gamma(0.5, 1.0, (40, 4)))
    assert abs(cross_accuracy(stranger, test, n_bootstrap=50)["accuracy"] - 1 / 3) < 0.05
    partial = Embedding(ids[:20], weights[:20])
    assert cross_accuracy(partial, test, n_bootstrap=10)["n_triplets"] < 4000
    with pytest.raises(InputError, match="no held-out triplet"):
        cross_accuracy(Embedding(["zz", "yy", "xx"], weights[:3]), test)


def test_stage_writes_both_tables_and_the_summary_entry(tmp_path):
    rng = np.random.default_rng(4)
    weights = rng.gamma(0.5, 1.0, (30, 3))
    ids = tuple(f"i{k}" for k in range(30))
    for name, w in (("alpha", weights), ("beta", weights + rng.gamma(0.5, 0.3, (30, 3)))):
        Embedding(ids, w).save(tmp_path / "embeddings" / f"{name}.parquet")
        test = sample_triplets(w, 500, seed=1, item_ids=ids)
        (tmp_path / "split").mkdir(exist_ok=True)
        np.save(tmp_path / "split" / f"{name}_test.npy", test.indices)
        (tmp_path / "split" / f"{name}_items.txt").write_text("\n".join(test.item_ids) + "\n")
    result = compare_systems_stage(tmp_path, ["alpha", "beta", "missing"], n_bootstrap=20)
    rsa = pd.read_csv(tmp_path / "interpret" / "systems_rsa.csv")
    cross = pd.read_csv(tmp_path / "interpret" / "cross_accuracy.csv")
    assert len(rsa) == 1 and rsa["r"].iloc[0] > 0.5
    assert len(cross) == 4 and np.allclose(cross["chance"], 1 / 3)
    assert set(result["systems_rsa"]) == {"alpha|beta"}
    assert set(result["cross_accuracy"]) == {"alpha|alpha", "alpha|beta", "beta|alpha", "beta|beta"}
    own = Embedding.load(tmp_path / "embeddings" / "alpha.parquet")
    expected = cross_accuracy(own, sample_triplets(weights, 500, seed=1, item_ids=ids), n_bootstrap=20)
    assert result["cross_accuracy"]["alpha|alpha"]["accuracy"] == pytest.approx(expected["accuracy"])
    assert result["cross_accuracy"]["alpha|alpha"]["accuracy"] > 1 / 3
