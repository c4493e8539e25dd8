"""Multi-seed SPoSE fits: parallel == sequential, the documented choice rule, reproducible dimensions."""

from __future__ import annotations

import numpy as np
import pytest

from oddoneout.embed.evaluate import cross_entropy
from oddoneout.embed.seeds import fit_seeds
from oddoneout.errors import InputError
from oddoneout.triplets import odd_one_out_probabilities, sample_triplets

SEEDS = [0, 1, 2]
PARAMS = {"n_dims": 10, "max_epochs": 40, "patience": 4, "batch_size": 512, "l1": 0.02}


def planted_embedding() -> np.ndarray:
    """40 items, 3 dimensions, every item loading on one or two of them."""
    rng = np.random.default_rng(0)
    weights = np.zeros((40, 3))
    weights[np.arange(40), np.arange(40) % 3] = rng.uniform(1.5, 2.5, 40)
    weights[np.arange(0, 40, 5), (np.arange(0, 40, 5) + 1) % 3] = rng.uniform(0.8, 1.2, 8)
    return weights


@pytest.fixture(scope="module")
def problem():
    truth = planted_embedding()
    return truth, sample_triplets(truth, 10_000, seed=1)


@pytest.fixture(scope="module")
def parallel(problem):
    return fit_seeds(problem[1], SEEDS, n_jobs=2, backend="process", **PARAMS)


@pytest.fixture(scope="module")
def sequential(problem):
    return fit_seeds(problem[1], SEEDS, n_jobs=1, **PARAMS)


def assert_same_results(a, b) -> None:
    assert a.chosen_seed == b.chosen_seed
    for fit_a, fit_b in zip(a.fits, b.fits):
        assert fit_a.seed == fit_b.seed
        np.testing.assert_array_equal(fit_a.embedding.weights, fit_b.embedding.weights)
    np.testing.assert_array_equal(a.scores.to_numpy(), b.scores.to_numpy())
    np.testing.assert_array_equal(a.reproducibility.to_numpy(), b.reproducibility.to_numpy())


def test_parallel_processes_give_the_sequential_results(parallel, sequential):
    assert_same_results(parallel, sequential)
    # and the runs themselves differ: the seed matters
    assert not np.array_equal(parallel.fits[0].embedding.weights, parallel.fits[1].embedding.weights)


def test_chosen_seed_has_the_lowest_selection_cross_entropy(problem, parallel):
    _, triplets = problem
    _, selection = triplets.split(0.1, seed=parallel.split_seed)
    recomputed = {
        fit.seed: cross_entropy(odd_one_out_probabilities(fit.embedding.weights, selection.indices))
        for fit in parallel.fits
    }
    assert list(parallel.scores.index) == SEEDS
    np.testing.assert_allclose(parallel.scores["val_loss"].to_numpy(), [recomputed[s] for s in SEEDS])
    assert parallel.chosen_seed == min(recomputed, key=recomputed.get)
    assert parallel.chosen.seed == parallel.chosen_seed
    assert (parallel.scores["n_dims"] >= 1).all()
    assert (parallel.scores["val_accuracy"] > 0.6).all()


def test_planted_dimensions_are_reproducible(problem, parallel):
    truth, _ = problem
    table = parallel.reproducibility
    chosen = parallel.chosen.embedding
    assert list(table.index) == chosen.dim_names
    np.testing.assert_allclose(table["l1_norm"].to_numpy(), chosen.weights.sum(axis=0))
    # every true dimension is found in the chosen run ...
    r = np.corrcoef(truth.T, chosen.weights.T)[:3, 3:]
    matched = r.argmax(axis=1)
    assert r.max(axis=1).min() > 0.9
    # ... and the dimensions that carry it are reproduced in the other seeds, the others are not
    mean_r = table["mean_r"].to_numpy()
    assert (mean_r[matched] > 0.9).all(), table
    assert (np.delete(mean_r, matched) < 0.7).all(), table


def test_to_embedding_records_the_selection(parallel):
    embedding = parallel.to_embedding()
    record = embedding.metadata["seed_selection"]
    assert record["rule"] == "cross_entropy"
    assert record["chosen_seed"] == parallel.chosen_seed == embedding.metadata["seed"]
    assert record["seeds"] == SEEDS
    assert set(record["dimension_reproducibility"]) == set(embedding.dim_names)
    np.testing.assert_array_equal(embedding.weights, parallel.chosen.embedding.weights)


def test_reproducibility_rule_picks_the_most_reproducible_run(problem, parallel):
    # the same fits (deterministic), chosen by the other rule
    by_repro = fit_seeds(problem[1], SEEDS, n_jobs=1, rule="reproducibility", **PARAMS)
    scores = by_repro.scores["reproducibility"]
    assert by_repro.chosen_seed == scores.idxmax()
    np.testing.assert_array_equal(scores.to_numpy(), parallel.scores["reproducibility"].to_numpy())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seeds": [0]}, "at least 2 seeds"),
        ({"seeds": [1, 1]}, "distinct"),
        ({"seeds": [0, 1], "backend": "dask"}, "backend"),
        ({"seeds": [0, 1], "rule": "best"}, "rule"),
        ({"seeds": [0, 1], "n_jobs": 0}, "n_jobs"),
        ({"seeds": [0, 1], "l1": -1.0}, "l1"),
        ({"seeds": [0, 1], "seed": 3}, "seed"),
    ],
)
def test_bad_arguments_raise(problem, kwargs, message):
    with pytest.raises(InputError, match=message):
        fit_seeds(problem[1], **kwargs)


@pytest.mark.slow  # starting a local Ray runtime takes 30-45 s on a 2-core machine
def test_ray_backend_gives_the_process_results(problem, parallel):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = fit_seeds(problem[1], SEEDS, n_jobs=2, backend="ray", **PARAMS)
    finally:
        ray.shutdown()
    assert_same_results(result, parallel)
