"""Dimensionality curves, the saturation point and principal components needed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from oddoneout.embed.dimensionality import (
    component_curve,
    components_needed,
    dimensionality_curve,
    saturation_point,
)
from oddoneout.embed.rsm import measured_similarity
from oddoneout.embed.spose import SPoSE
from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.triplets import Triplets, sample_triplets

N_TRUE = 6


@pytest.fixture(scope="module")
def planted():
    """120 items on 6 sparse dimensions of similar size, plus 4 faint noise dimensions."""
    rng = np.random.default_rng(0)
    weights = np.zeros((120, N_TRUE + 4))
    weights[np.arange(120), np.arange(120) % N_TRUE] = rng.uniform(1.5, 2.5, 120)
    second = rng.choice(120, 30, replace=False)
    weights[second, rng.integers(0, N_TRUE, 30)] += rng.uniform(0.5, 1.0, 30)
    weights[:, N_TRUE:] = rng.uniform(0.0, 0.03, (120, 4))
    test = sample_triplets(weights, 20_000, seed=1)
    return weights, test


# ---------------------------------------------------------------- a case checkable by hand
# A = B = [2, 0], C = [0, 2], D = [0, 1]: dimension 0 has L1 norm 4, dimension 1 has 3.
TINY = np.array([[2.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, 1.0]])
# (A, B | C): kept pair A-B; (C, D | A): kept pair C-D.
TINY_TRIPLETS = Triplets(("A", "B", "C", "D"), np.array([[0, 1, 2], [2, 3, 0]]))


def test_tiny_curve_by_hand():
    curve = dimensionality_curve(TINY, TINY_TRIPLETS)
    # k = 1 keeps dimension 0: (A,B|C) has similarities (0, 0, 4): right. (C,D|A) has
    # (0, 0, 0): a three-way tie worth 1/3. k = 2: (C,D|A) has (0, 0, 2): right.
    assert curve["n_dims"].tolist() == [1, 2]
    np.testing.assert_allclose(curve["accuracy"], [(1 + 1 / 3) / 2, 1.0])
    assert saturation_point(curve) == 2
    assert saturation_point(curve, tolerance=0.5) == 1  # 2/3 >= 0.5 x 1


def test_tiny_curve_uses_l1_order_not_column_order():
    swapped = TINY[:, ::-1]  # dimension 1 now comes first in the matrix but is still the weaker
    np.testing.assert_allclose(
        dimensionality_curve(swapped, TINY_TRIPLETS)["accuracy"], dimensionality_curve(TINY, TINY_TRIPLETS)["accuracy"]
    )


def test_embedding_input_aligns_items_by_id():
    embedding = Embedding(("D", "C", "B", "A"), TINY[::-1])
    np.testing.assert_allclose(dimensionality_curve(embedding, TINY_TRIPLETS)["accuracy"], [2 / 3, 1.0])
    with pytest.raises(InputError, match="'D'"):
        dimensionality_curve(Embedding(("A", "B", "C", "E"), TINY), TINY_TRIPLETS)


# ---------------------------------------------------------------- planted embedding
def test_curve_rises_then_saturates_at_the_true_dimension_count(planted):
    weights, test = planted
    curve = dimensionality_curve(weights, test)
    accuracy = curve["accuracy"].to_numpy()
    assert len(curve) == weights.shape[1]
    assert np.all(np.diff(accuracy[:N_TRUE]) > 0.01)  # every true dimension adds accuracy
    assert np.ptp(accuracy[N_TRUE - 1 :]) < 0.005  # the faint dimensions add nothing
    assert saturation_point(curve) == N_TRUE


def test_curve_on_a_grid_with_rsm(planted):
    weights, test = planted
    subset = np.arange(12)
    ids = tuple(str(i) for i in subset)
    # every triplet of the 12 items, judged 3 times by the choice rule
    exhaustive = sample_triplets(weights[subset], 3000, seed=4, item_ids=ids)
    shown = np.array(ids)[exhaustive.indices]
    measured = measured_similarity(shown, shown[:, 2], ids)
    curve = dimensionality_curve(weights, test, n_dims_grid=[6, 1, 3], rsm_subset=(ids, measured))
    assert curve["n_dims"].tolist() == [1, 3, 6]
    assert set(curve.columns) == {"n_dims", "accuracy", "cross_entropy", "rsm_r"}
    assert curve["rsm_r"].iloc[-1] > 0.8
    assert curve["rsm_r"].iloc[-1] > curve["rsm_r"].iloc[0]
    assert saturation_point(curve, column="rsm_r", tolerance=0.05) <= 6


def test_components_needed_is_bounded_and_grows_with_the_fraction(planted):
    weights, test = planted
    needed = components_needed(weights, test, fractions=(0.8, 0.95, 0.99, 1.0))
    counts = [needed[f] for f in (0.8, 0.95, 0.99, 1.0)]
    assert all(1 <= k <= weights.shape[1] for k in counts)
    assert counts == sorted(counts)
    assert counts[0] < counts[-1]
    curve = component_curve(weights, test)
    assert curve["explained_variance"].is_monotonic_increasing
    # at full rank the clipped reconstruction is the embedding itself
    full = dimensionality_curve(weights, test)["accuracy"].iloc[-1]
    assert curve["accuracy"].iloc[-1] == pytest.approx(full)


def test_components_needed_by_hand():
    # Rank-one embedding: one component reconstructs it exactly.
    weights = np.outer([1.0, 2.0, 3.0, 4.0], [1.0, 0.5])
    triplets = Triplets(("a", "b", "c", "d"), np.array([[2, 3, 0], [1, 3, 0], [0, 1, 3]]))
    assert components_needed(weights, triplets) == {0.95: 1, 0.99: 1}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: dimensionality_curve(TINY, TINY_TRIPLETS, n_dims_grid=[0, 1]), "n_dims_grid"),
        (lambda: dimensionality_curve(TINY, TINY_TRIPLETS, n_dims_grid=[3]), "n_dims_grid"),
        (lambda: dimensionality_curve(TINY[:3], TINY_TRIPLETS), "do not match"),
        (lambda: dimensionality_curve(np.zeros((4, 0)), TINY_TRIPLETS), "no dimensions"),
        (lambda: dimensionality_curve(TINY, TINY_TRIPLETS, rsm_subset=(("A", "Z"), np.eye(2))), "Z"),
        (lambda: saturation_point(pd.DataFrame({"n_dims": [1]}), tolerance=0.01), "accuracy"),
        (lambda: saturation_point(pd.DataFrame({"n_dims": [1], "accuracy": [0.5]}), tolerance=1.5), "tolerance"),
        (lambda: components_needed(TINY, TINY_TRIPLETS, fractions=(1.2,)), "fractions"),
    ],
)
def test_bad_input_raises(call, message):
    with pytest.raises(InputError, match=message):
        call()


# ---------------------------------------------------------------- one-standard-error l1 selection
SMALL_FIT = {"n_dims": 10, "max_epochs": 30, "batch_size": 512, "patience": 3}
L1_VALUES = (0.002, 0.01, 0.03, 5.0)


@pytest.fixture(scope="module")
def small_triplets():
    rng = np.random.default_rng(5)
    weights = np.zeros((30, 3))
    weights[np.arange(30), np.arange(30) % 3] = rng.uniform(1.5, 2.5, 30)
    return sample_triplets(weights, 6_000, seed=6)


def test_one_se_rule_picks_the_largest_l1_within_one_standard_error(small_triplets):
    model = SPoSE(l1=list(L1_VALUES), seed=0, verbose=0, **SMALL_FIT).fit(small_triplets)
    scores = model.l1_selection_
    assert scores["l1"].tolist() == sorted(L1_VALUES)
    assert scores["chosen"].sum() == 1
    chosen = int(np.flatnonzero(scores["chosen"])[0])
    assert model.l1_ == scores["l1"][chosen]
    # candidates whose fit warns (here: a weak penalty keeps all 10 initial dimensions) are passed over
    eligible = ~scores["warned"]
    assert eligible.any() and eligible[chosen]
    within = eligible & (scores["excess"] <= scores["excess_se"] + 1e-12)
    assert within[chosen] and not within[chosen + 1 :].any()
    assert scores.loc[eligible, "excess"].min() == 0.0
    # the collapsing penalty (every dimension pruned, loss log 3) is never "as good"
    assert scores["n_dims"].iloc[-1] == 0 and not scores["chosen"].iloc[-1]
    assert model.weights_.shape[1] >= 1


def test_one_se_rule_with_zero_slack_is_the_minimum(small_triplets):
    scores = SPoSE(l1=list(L1_VALUES[:3]), l1_n_se=0.0, verbose=0, **SMALL_FIT).fit(small_triplets).l1_selection_
    eligible = ~scores["warned"] if not scores["warned"].all() else scores["warned"]
    assert int(np.flatnonzero(scores["chosen"])[0]) == int(scores["cross_entropy"].where(eligible, np.inf).argmin())
    with pytest.raises(InputError, match="l1_n_se"):
        SPoSE(l1=list(L1_VALUES), l1_n_se=-1.0).fit(small_triplets)
    with pytest.raises(InputError, match="l1="):
        SPoSE(l1=[]).fit(small_triplets)
