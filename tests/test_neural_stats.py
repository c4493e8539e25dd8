"""Group statistics: FDR against hand-computed q-values, paired tests, winners on the synthetic brain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from oddoneout.errors import InputError
from oddoneout.neural.encoding import encode
from oddoneout.neural.stats import against_zero, bh_fdr, bootstrap_roi_r, compare_systems, winners
from oddoneout.studies.synthetic import ROI_CARRIERS, make_world


def test_bh_fdr_hand_computed():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    # sorted: 0.005, 0.01, 0.03, 0.04, 0.5 -> m p / rank: 0.025, 0.025, 0.05, 0.05, 0.5 (already monotone)
    np.testing.assert_allclose(bh_fdr(p), [0.025, 0.05, 0.05, 0.025, 0.5])
    # a step-up case: 0.02*3/2 = 0.03 > 0.025*3/3 = 0.025, so the second q is the third's
    np.testing.assert_allclose(bh_fdr([0.001, 0.02, 0.025]), [0.003, 0.025, 0.025])
    q = bh_fdr([0.2, np.nan, 0.01])
    assert np.isnan(q[1]) and q[0] == pytest.approx(0.2) and q[2] == pytest.approx(0.02)
    p = np.random.default_rng(0).random(50) ** 3
    np.testing.assert_allclose(bh_fdr(p), stats.false_discovery_control(p))
    with pytest.raises(InputError):
        bh_fdr([1.5])


def test_compare_systems_paired_t():
    table = pd.DataFrame(
        {
            "subject": ["s1", "s2", "s3", "s1", "s2", "s3"],
            "system": ["a", "a", "a", "b", "b", "b"],
            "roi": ["R"] * 6,
            "r": [0.30, 0.25, 0.35, 0.10, 0.12, 0.09],
        }
    )
    result = compare_systems(table)
    row = result.iloc[0]
    t, p = stats.ttest_rel([0.30, 0.25, 0.35], [0.10, 0.12, 0.09])
    assert (row.system_a, row.system_b, row.n_subjects) == ("a", "b", 3)
    assert row.t == pytest.approx(t) and row.p == pytest.approx(p) and row.q == pytest.approx(p)
    assert row.mean_diff == pytest.approx(np.mean([0.20, 0.13, 0.26]))
    zero = against_zero(table)
    assert zero.set_index("system").loc["b", "t"] == pytest.approx(stats.ttest_1samp([0.10, 0.12, 0.09], 0).statistic)
    with pytest.raises(InputError, match="several rows"):
        compare_systems(pd.concat([table, table.iloc[:1]]))
    with pytest.raises(InputError, match="lacks column"):
        compare_systems(table.drop(columns="roi"))


@pytest.fixture(scope="module")
def synthetic_roi_table() -> pd.DataFrame:
    """Encoding r of the five systems' features (views and ratings, no SPoSE fit) on 4 synthetic subjects."""
    world = make_world(n_items=240, n_subjects=4, voxels_per_roi=30, seed=0)
    category = world.stimuli.ratings("category").to_numpy()
    dimension = world.stimuli.ratings("dimension").to_numpy()
    features = {
        "mllm": world.views["mllm"].to_numpy(),
        "llm": world.views["llm"].to_numpy(),
        "human_category": category,
        "human_dimension": dimension,
        "human_concat": np.hstack([category, dimension]),
    }
    rows = []
    for data in world.neural:
        for system, x in features.items():
            result = encode(x, world.stimuli.item_ids, data, n_folds=3, inner_folds=3, alphas=np.logspace(-1, 4, 8))
            rows += [{"subject": data.subject, "system": system, "roi": roi, "r": r} for roi, r in result.roi_r.items()]
    return pd.DataFrame(rows)


def test_carrier_wins_on_the_synthetic_brain(synthetic_roi_table):
    comparisons = compare_systems(synthetic_roi_table)
    table = winners(synthetic_roi_table, comparisons).set_index("roi")
    for roi, carriers in ROI_CARRIERS.items():
        if not carriers:
            continue
        assert table.loc[roi, "best_system"] in carriers
        # the winner beats every system that does not carry the ROI, with q < 0.05
        best = table.loc[roi, "best_system"]
        against = comparisons[
            (comparisons["roi"] == roi)
            & ((comparisons["system_a"] == best) | (comparisons["system_b"] == best))
            & ~(comparisons["system_a"].isin(carriers) & comparisons["system_b"].isin(carriers))
        ]
        assert len(against) == 5 - len(carriers)
        assert (against["q"] < 0.05).all()
    # Nothing carries VC: no system predicts it, and none beats all others. (Single pairs can differ
    # consistently: every subject sees the same stimuli, so a chance overlap of a feature set with the
    # visual source repeats in every subject.)
    assert table.loc["VC", "mean_r"] < 0.05
    assert not table.loc["VC", "wins"]


def test_bootstrap_roi_r():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(300, 20))
    observed = truth + rng.normal(size=truth.shape)
    r, (low, high), replicates = bootstrap_roi_r(observed, truth, n_boot=200, seed=1)
    expected = np.mean([np.corrcoef(observed[:, v], truth[:, v])[0, 1] for v in range(20)])
    assert r == pytest.approx(expected)
    assert low < r < high and high - low < 0.2 and replicates.shape == (200,)
    again = bootstrap_roi_r(observed, truth, n_boot=200, seed=1)[1]
    assert again == (low, high)
    fold = np.repeat([0, 1, 2], 100)
    r_fold, interval, _ = bootstrap_roi_r(observed, truth, voxels=np.arange(5), n_boot=100, fold=fold)
    by_fold = [
        np.mean([np.corrcoef(observed[fold == f, v], truth[fold == f, v])[0, 1] for v in range(5)]) for f in range(3)
    ]
    assert r_fold == pytest.approx(np.mean(by_fold))
    assert interval[0] < r_fold < interval[1]
