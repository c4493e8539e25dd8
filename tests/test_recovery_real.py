"""Recovery of a real published embedding (VICE adjectives, ../shared/data) by the defaults, and its tools.

Triplets are sampled with the SPoSE choice rule from a real embedding learned from human
judgments (heavy-tailed weights, dimensions of very unequal strength), at realistic sizes.
The default run fits 600 of its items at 600 triplets per item; ``--run-slow`` runs
benchmarks/recovery_real.py's 200-per-item regime on all 2,372 items against cblearn's
estimators (installed with ``pip install --no-deps -r benchmarks/requirements.txt``).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from oddoneout.embed.evaluate import odd_one_out_accuracy
from oddoneout.embed.recovery import MATCH_R, best_match_r, dimension_importance, recovery
from oddoneout.embed.spose import SPoSE
from oddoneout.triplets import odd_one_out_probabilities, sample_triplets

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "recovery_real.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("recovery_real", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("recovery_real", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def real_embedding(shared_data) -> np.ndarray:
    path = shared_data / "vice_adjectives" / "final_embedding.npy"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return np.load(path).astype(np.float64)


# ---------------------------------------------------------------- the recovery measures, by hand
def test_best_match_r_takes_the_best_learned_dimension_for_each_true_one():
    truth = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0]])
    learned = np.array([[0.0, 2.0, 5.0], [1.0, 4.0, 5.0], [0.0, 6.0, 5.0], [1.0, 8.0, 5.0]])
    # column 1 is 2x truth column 0 (r = 1), column 0 equals truth column 1; column 2 is constant (r = 0)
    np.testing.assert_allclose(best_match_r(truth, learned), [1.0, 1.0])
    np.testing.assert_allclose(best_match_r(truth, learned[:, [2]]), [0.0, 0.0])
    np.testing.assert_array_equal(best_match_r(truth, np.zeros((4, 0))), [0.0, 0.0])
    with pytest.raises(ValueError, match="items"):
        best_match_r(truth, learned[:3])


def test_dimension_importance_is_the_accuracy_lost_without_each_dimension():
    rng = np.random.default_rng(0)
    weights = np.zeros((60, 3))
    weights[np.arange(60), np.arange(60) % 2] = rng.uniform(1.5, 3.0, 60)  # dimension 2 is empty
    triplets = sample_triplets(weights, 5000, seed=1)
    importance = dimension_importance(weights, triplets)
    full = odd_one_out_accuracy(odd_one_out_probabilities(weights, triplets.indices))
    without_first = weights.copy()
    without_first[:, 0] = 0
    expected = full - odd_one_out_accuracy(odd_one_out_probabilities(without_first, triplets.indices))
    assert importance[0] == pytest.approx(expected) and importance[0] > 0.1
    assert importance[2] == 0.0
    found = recovery(weights, weights[:, :1] * 3, importance)
    assert found.important.tolist() == [True, True, False]
    assert (found.important_found, found.weaker_found) == (1, 0)  # dimension 1 was not learned
    assert found.min_important_r < MATCH_R


def test_odd_one_out_judgments_become_two_anchor_triplets_and_distances_predict_them():
    bench = _benchmark()
    anchors = bench.as_anchor_triplets(np.array([[4, 7, 9]]))  # 4 and 7 kept together, 9 odd
    assert anchors.tolist() == [[4, 7, 9], [7, 4, 9]]  # anchor, nearer, farther
    line = np.array([[0.0], [1.0], [10.0], [1.5]])
    # (0, 1, 2): 0 and 1 closest, 2 odd, right; (1, 3, 0): 1 and 3 closest, 0 odd, right;
    # (0, 3, 1): 3 and 1 closest, so 0 (column 0) is predicted odd, but column 2 was chosen: wrong
    accuracy = bench.distance_odd_one_out_accuracy(line, np.array([[0, 1, 2], [1, 3, 0], [0, 3, 1]]))
    assert accuracy == pytest.approx(2 / 3)


# ---------------------------------------------------------------- the defaults on real data
def test_defaults_reach_the_generating_model_on_a_real_embedding(real_embedding):
    """600 of the real items at 600 triplets per item: within 1 point, every important dimension found."""
    rng = np.random.default_rng(0)
    truth = real_embedding[np.sort(rng.choice(len(real_embedding), 600, replace=False))]
    n_train, n_test = 600 * 600, 100_000
    data = sample_triplets(truth, n_train + n_test, seed=1)
    train, test = data.subset(np.arange(n_train)), data.subset(np.arange(n_train, n_train + n_test))
    model = SPoSE(verbose=0, n_threads=2).fit(train)
    generating = odd_one_out_accuracy(odd_one_out_probabilities(truth, test.indices))
    assert model.score(test) >= generating - 0.01, (model.score(test), generating)
    importance = dimension_importance(truth, sample_triplets(truth, 200_000, seed=2))
    found = recovery(truth, model.weights_, importance)
    assert found.important.sum() >= 3, importance  # the real embedding has several dimensions that matter
    assert found.important_found == found.important.sum(), found.match_r
    # the fit chose a sparse model from a grid it scaled itself; nothing to warn about
    assert 0 < model.weights_.shape[1] < 100 and model.fit_warnings_ == []
    assert model.l1_selection_["chosen"].sum() == 1 and len(model.l1_selection_) >= 5


@pytest.mark.slow
def test_benchmark_regime_beats_cblearn_on_the_real_embedding(real_embedding, tmp_path):
    """All 2,372 items at 200 triplets per item: SPoSE's defaults beside cblearn's best, in one run."""
    pytest.importorskip("cblearn", reason="pip install --no-deps -r benchmarks/requirements.txt")
    bench = _benchmark()
    out = tmp_path / "results.json"
    bench.main(["--per-item", "200", "--n-test", "40000", "--methods", "spose", "ckl", "--json", str(out)])
    regime = json.loads(out.read_text())["regimes"][0]
    methods = regime["methods"]
    # CKL is cblearn's best here (SOE, STE and t-STE score 3 points lower); the times are the benchmark's
    assert methods["spose"]["accuracy"] >= methods["ckl"]["accuracy"]
    assert methods["spose"]["accuracy"] >= regime["generating_accuracy"] - 0.025


@pytest.mark.slow
def test_anchor_triplets_recover_the_real_embedding_within_a_point(real_embedding):
    """400 items at 1,000 anchor triplets per item: SPoSE's defaults within 1 point of the generating model.

    At 600 per item the same fit is 1.00 points below (0.94 to 1.16 on three subsets and several
    seeds), where SPoSE's objective minimised from the generating embedding itself, l1 chosen in
    hindsight (benchmarks/paradigms.py's oracle), is 0.87 to 1.05 below: 1 point is what those
    data leave. At 1,000 it is 0.88 (the oracle 0.50; 2026-12-06).
    """
    from oddoneout.embed.evaluate import choice_scores
    from oddoneout.triplets import ANCHOR

    rng = np.random.default_rng(0)
    truth = real_embedding[np.sort(rng.choice(len(real_embedding), 400, replace=False))]
    n_train, n_test = 400 * 1000, 100_000
    data = sample_triplets(truth, n_train + n_test, seed=1, trial_type=ANCHOR)
    train, test = data.subset(np.arange(n_train)), data.subset(np.arange(n_train, n_train + n_test))
    model = SPoSE(verbose=0).fit(train)
    generating = choice_scores(truth, test)[0]
    assert model.score(test) >= generating - 0.01, (model.score(test), generating)
