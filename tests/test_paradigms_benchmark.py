"""benchmarks/paradigms.py's oracle: SPoSE's objective on all trials, minimised from the generating embedding."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from oddoneout.embed.evaluate import choice_scores
from oddoneout.triplets import ANCHOR, ODD_ONE_OUT, sample_triplets

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "paradigms.py"


@pytest.fixture(scope="module")
def paradigms():
    spec = importlib.util.spec_from_file_location("paradigms_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.gamma(0.5, 0.6, size=(30, 4)) * (rng.random((30, 4)) < 0.6)


@pytest.mark.parametrize("trial_type", [ODD_ONE_OUT, ANCHOR], ids=["odd_one_out", "anchor"])
def test_objective_is_the_cross_entropy_plus_the_penalty_with_its_gradient(paradigms, truth, trial_type, monkeypatch):
    trials = sample_triplets(truth, 700, seed=4, trial_type=trial_type)
    monkeypatch.setattr(paradigms, "ORACLE_BLOCK", 300)  # three blocks, the last one short
    l1 = 0.05
    objective = paradigms.penalised_objective(trials, l1)
    value, gradient = objective(truth.ravel())
    cross_entropy = choice_scores(truth, trials)[1]
    assert value == pytest.approx(cross_entropy + l1 / len(truth) * truth.sum(), rel=1e-9)
    # central differences along a few random directions
    rng = np.random.default_rng(5)
    for _ in range(3):
        direction = rng.normal(size=truth.size)
        step = 1e-5
        numeric = (objective(truth.ravel() + step * direction)[0] - objective(truth.ravel() - step * direction)[0]) / (
            2 * step
        )
        assert gradient @ direction == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_oracle_lowers_the_objective_from_the_generating_embedding(paradigms, truth):
    train = sample_triplets(truth, 3_000, seed=6, trial_type=ANCHOR)
    test = sample_triplets(truth, 3_000, seed=7, trial_type=ANCHOR)
    weights, l1 = paradigms.oracle_fit(truth, train, test)
    per_item = len(train) / len(truth)
    assert np.isclose(l1 * per_item, paradigms.ORACLE_L1_SCALES).any()
    assert weights.shape == truth.shape and weights.min() >= 0
    objective = paradigms.penalised_objective(train, l1)
    assert objective(weights.ravel())[0] < objective(truth.ravel())[0]
