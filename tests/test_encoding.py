"""Voxel-wise encoding on data drawn from a known linear generative model."""

from __future__ import annotations

import numpy as np
import pytest
from himalaya.backend import get_backend, set_backend

from oddoneout.errors import InputError, UnreadableFile
from oddoneout.neural.data import NeuralData
from oddoneout.neural.encoding import EncodingResult, encode, run_blocked_folds
from oddoneout.neural.folds import run_blocks_by_stimulus

N_STIMULI, N_FEATURES, N_RUNS, N_VOXELS = 300, 10, 6, 60


def make_design(n_stimuli: int, n_runs: int, repeats: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample order: each stimulus shown ``repeats`` times, each time in a different run."""
    rng = np.random.default_rng(seed)
    base_run = rng.permutation(np.arange(n_stimuli) % n_runs)
    stimulus = np.tile(np.arange(n_stimuli), repeats)
    runs = (base_run[stimulus] + np.repeat(np.arange(repeats), n_stimuli)) % n_runs
    return stimulus, runs


def make_data(
    features: np.ndarray,
    noise_sd: dict[str, float],
    repeats: int = 1,
    n_runs: int = N_RUNS,
    seed: int = 0,
) -> tuple[list[str], NeuralData]:
    """Responses of one subject: each ROI is ``features @ W`` plus noise of its sd.

    An ROI with ``noise_sd`` ``inf`` is pure noise (unit variance, no signal).
    """
    rng = np.random.default_rng(seed)
    n_stimuli, n_features = features.shape
    item_ids = [f"clip_{i:04d}" for i in range(n_stimuli)]
    stimulus, runs = make_design(n_stimuli, n_runs, repeats, seed)
    blocks, rois, start = [], {}, 0
    for name, sd in noise_sd.items():
        weights = rng.standard_normal((n_features, N_VOXELS)) / np.sqrt(n_features)
        signal = np.zeros((len(stimulus), N_VOXELS)) if np.isinf(sd) else features[stimulus] @ weights
        noise = rng.standard_normal(signal.shape) * (1.0 if np.isinf(sd) else sd)
        blocks.append(signal + noise + 5.0)  # an offset, as in raw BOLD amplitudes
        rois[name] = np.arange(start, start + N_VOXELS)
        start += N_VOXELS
    data = NeuralData("sub-01", np.hstack(blocks), np.array(item_ids)[stimulus], runs, rois)
    return item_ids, data


@pytest.fixture(scope="module")
def features() -> np.ndarray:
    return np.random.default_rng(42).standard_normal((N_STIMULI, N_FEATURES))


@pytest.fixture(scope="module")
def signal_and_noise(features):
    # 4 noise ROIs of 60 voxels: 240 pure-noise voxels to measure the bias of the score precisely.
    rois = {"signal": 0.7, "noise": np.inf, "noise_2": np.inf, "noise_3": np.inf, "noise_4": np.inf}
    item_ids, data = make_data(features, rois)
    return item_ids, data, encode(features, item_ids, data)


# ----------------------------------------------------------------------------- folds


def test_run_blocked_folds_test_every_run_once_in_contiguous_blocks():
    runs = np.random.default_rng(0).permutation(np.repeat(np.arange(61), 3))
    folds = run_blocked_folds(runs, 6)

    assert len(folds) == 6
    tested = np.concatenate([test for _, test in folds])
    assert np.array_equal(np.sort(tested), np.arange(runs.size))  # every sample tested exactly once
    blocks = [np.unique(runs[test]) for _, test in folds]
    assert sorted(len(block) for block in blocks) == [10, 10, 10, 10, 10, 11]
    assert np.array_equal(np.concatenate(blocks), np.arange(61))  # contiguous, in run order
    for train, test in folds:
        assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(runs.size))


def test_run_blocked_folds_share_no_stimulus_between_train_and_test():
    stimulus, runs = make_design(n_stimuli=90, n_runs=6, repeats=3, seed=1)
    folds = run_blocked_folds(runs, 6, stimulus_ids=stimulus)

    for train, test in folds:
        assert not set(stimulus[train]) & set(stimulus[test])
        # only samples of test stimuli were dropped from training
        kept = ~np.isin(runs, runs[test]) & ~np.isin(stimulus, stimulus[test])
        assert np.array_equal(train, np.flatnonzero(kept))
        assert train.size > 0


def test_run_blocks_by_stimulus_keep_each_stimulus_in_one_block():
    stimulus, runs = make_design(n_stimuli=60, n_runs=10, repeats=2, seed=2)

    block = run_blocks_by_stimulus(runs, stimulus, 5)

    for s in np.unique(stimulus):
        assert np.unique(block[stimulus == s]).size == 1
    assert set(block) == set(range(5))
    for b in range(5):  # each stimulus sits in a block that holds one of its runs
        for s in np.unique(stimulus[block == b]):
            assert set(runs[stimulus == s]) & set(np.array_split(np.arange(10), 5)[b])

    once, once_runs = make_design(n_stimuli=60, n_runs=10, repeats=1, seed=2)
    expected = np.empty(once.size, dtype=int)
    for b, (_, test) in enumerate(run_blocked_folds(once_runs, 5)):
        expected[test] = b
    assert np.array_equal(run_blocks_by_stimulus(once_runs, once, 5), expected)  # plain run blocks


def test_run_blocked_folds_rejects_fewer_runs_than_folds():
    with pytest.raises(InputError, match="5 distinct run"):
        run_blocked_folds(np.repeat(np.arange(5), 4), 6)


# ----------------------------------------------------------------------------- scores


def test_signal_roi_is_predicted_and_noise_roi_is_not(signal_and_noise):
    _, data, result = signal_and_noise

    assert result.roi_r["signal"] > 0.5
    assert abs(result.roi_r["noise"]) < 0.1
    assert np.mean(result.voxel_r2[data.rois["signal"]]) > 0.25
    assert result.voxel_r.shape == result.voxel_r2.shape == result.best_alpha.shape == (data.n_voxels,)
    assert list(result.roi_r) == list(data.rois)
    assert result.n_folds == 6 and result.fold_alphas.shape == (6, data.n_voxels)


def test_fold_mean_score_is_unbiased_on_noise_unlike_the_concatenated_score(features, signal_and_noise):
    item_ids, data, result = signal_and_noise
    noise = np.concatenate([data.rois[f"noise{s}"] for s in ("", "_2", "_3", "_4")])
    # 240 noise voxels: the standard error of their mean r is about 0.004
    assert abs(result.voxel_r[noise].mean()) < 0.02

    concatenated = encode(features, item_ids, data, score="concatenated")
    assert concatenated.voxel_r[noise].mean() < -0.03  # the documented negative bias of pooling folds
    assert concatenated.roi_r["signal"] > 0.5


def test_features_carrying_the_signal_score_higher_than_unrelated_features(features, signal_and_noise):
    item_ids, data, result = signal_and_noise
    unrelated = np.random.default_rng(7).standard_normal(features.shape)

    other = encode(unrelated, item_ids, data)

    assert result.roi_r["signal"] > other.roi_r["signal"] + 0.4
    assert abs(other.roi_r["signal"]) < 0.1


def test_noisier_voxels_get_larger_alphas(features):
    item_ids, data = make_data(features, {"low_noise": 0.2, "high_noise": 3.0}, seed=3)

    result = encode(features, item_ids, data)

    low = np.median(result.best_alpha[data.rois["low_noise"]])
    high = np.median(result.best_alpha[data.rois["high_noise"]])
    assert high > 10 * low
    assert set(np.unique(result.fold_alphas)) <= set(result.metadata["alphas"])  # chosen from the grid


# ----------------------------------------------------------------------------- repeats and leakage


def test_repeated_stimuli_never_leak_from_training_into_test():
    # Responses are a random pattern per stimulus, repeated exactly at each presentation; the features
    # identify the stimulus (one-hot, plus two uninformative columns so that predictions vary).
    # Only a model that saw a test stimulus in training can predict it (a leaky split scores r ~ 0.99).
    n_stimuli = 60
    rng = np.random.default_rng(5)
    identity = np.hstack([np.eye(n_stimuli), rng.standard_normal((n_stimuli, 2))])
    item_ids = [f"clip_{i:04d}" for i in range(n_stimuli)]
    stimulus, runs = make_design(n_stimuli, N_RUNS, repeats=2, seed=5)
    pattern = rng.standard_normal((n_stimuli, 30))
    responses = pattern[stimulus] + 0.1 * rng.standard_normal((stimulus.size, 30))
    data = NeuralData("sub-01", responses, np.array(item_ids)[stimulus], runs, {"all": np.arange(30)})

    for average in (True, False):
        result = encode(identity, item_ids, data, average_repeats=average)
        assert abs(result.roi_r["all"]) < 0.1
        # both presentations of a stimulus are in different runs: one in the test block, one dropped
        assert result.metadata["n_train_dropped"] > 0


def test_average_repeats_averages_presentations_within_train_and_test(features):
    # 12 runs in 6 folds of 2 runs; each stimulus shown in 3 consecutive runs, so often twice in a test block
    item_ids, data = make_data(features, {"signal": 2.0}, repeats=3, n_runs=12, seed=4)

    averaged = encode(features, item_ids, data, average_repeats=True)
    single = encode(features, item_ids, data, average_repeats=False)

    test_pairs = {
        (stimulus, fold)
        for fold, (_, test) in enumerate(run_blocked_folds(data.runs, 6))
        for stimulus in data.stimulus_ids[test]
    }
    assert averaged.metadata["n_scored"] == len(test_pairs) < data.runs.size
    assert single.metadata["n_scored"] == data.runs.size  # every presentation scored exactly once
    # averaging two presentations within a test block removes noise from the scored responses
    assert averaged.roi_r["signal"] > single.roi_r["signal"] + 0.03
    assert np.mean(averaged.voxel_r > single.voxel_r) > 0.8


# ----------------------------------------------------------------------------- backends, batches


def test_voxel_batches_torch_backend_and_progress_give_the_same_scores(features, signal_and_noise):
    item_ids, data, result = signal_and_noise
    calls = []
    set_backend("torch")
    try:
        batched = encode(
            features, item_ids, data, backend="numpy", voxel_batch=70, progress=lambda d, t: calls.append((d, t))
        )
        assert get_backend().name == "torch"  # the caller's backend is restored
    finally:
        set_backend("numpy")
    with_torch = encode(features, item_ids, data, backend="torch")

    np.testing.assert_allclose(batched.voxel_r, result.voxel_r, atol=1e-6)
    np.testing.assert_allclose(with_torch.voxel_r, result.voxel_r, atol=1e-3)
    assert with_torch.metadata["backend_used"] == "torch"
    assert get_backend().name == "numpy"
    n_calls = 5 * 6  # ceil(300 voxels / 70) batches x 6 folds
    assert calls == [(done, n_calls) for done in range(1, n_calls + 1)]


# ----------------------------------------------------------------------------- bad input


def test_unknown_stimulus_id_is_rejected_by_name(features):
    item_ids, data = make_data(features, {"signal": 1.0})

    with pytest.raises(InputError, match="clip_0299"):
        encode(features[:-1], item_ids[:-1], data)


def test_nan_features_are_rejected_by_item(features):
    item_ids, data = make_data(features, {"signal": 1.0})
    broken = features.copy()
    broken[17, 3] = np.nan

    with pytest.raises(InputError, match="clip_0017"):
        encode(broken, item_ids, data)


def test_fewer_runs_than_folds_is_rejected(features):
    item_ids, data = make_data(features, {"signal": 1.0}, n_runs=4)

    with pytest.raises(InputError, match="4 distinct run"):
        encode(features, item_ids, data, n_folds=6)
    with pytest.raises(InputError, match="inner_folds"):
        encode(features, item_ids, data, n_folds=4, inner_folds=5)  # 3 training runs per fold


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backend": "jax"}, "backend"),
        ({"score": "spearman"}, "score"),
        ({"alphas": np.array([1.0, -1.0])}, "alphas"),
        ({"voxel_batch": 0}, "voxel_batch"),
    ],
)
def test_bad_options_are_rejected(features, kwargs, message):
    item_ids, data = make_data(features, {"signal": 1.0})

    with pytest.raises(InputError, match=message):
        encode(features, item_ids, data, **kwargs)


def test_duplicate_item_ids_are_rejected(features):
    item_ids, data = make_data(features, {"signal": 1.0})

    with pytest.raises(InputError, match="clip_0000"):
        encode(np.vstack([features, features[:1]]), item_ids + ["clip_0000"], data)


def test_stimuli_shown_in_every_run_leave_no_training_data(features):
    item_ids, data = make_data(features[:12], {"signal": 1.0}, repeats=N_RUNS)

    with pytest.raises(InputError, match="no training data"):
        encode(features[:12], item_ids, data)


# ----------------------------------------------------------------------------- persistence


def test_encoding_result_round_trips_through_npz(tmp_path, signal_and_noise):
    _, _, result = signal_and_noise

    path = result.save(tmp_path / "encoding" / "mllm_sub-01.npz")
    loaded = EncodingResult.load(path)

    assert loaded.subject == result.subject and loaded.n_folds == result.n_folds
    for name in ("voxel_r", "voxel_r2", "best_alpha", "fold_alphas"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(result, name))
    assert loaded.roi_r == result.roi_r and list(loaded.roi_r) == list(result.roi_r)
    assert loaded.metadata == result.metadata


def test_loading_a_foreign_file_raises_input_error(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, something=np.zeros(3))

    with pytest.raises(InputError, match="other.npz"):
        EncodingResult.load(path)
    with pytest.raises(InputError, match="not found"):
        EncodingResult.load(tmp_path / "missing.npz")


def test_a_truncated_or_foreign_npz_is_one_unreadable_file_error(tmp_path, signal_and_noise):
    _, _, result = signal_and_noise
    data = result.save(tmp_path / "good.npz").read_bytes()
    cases = {
        "truncated.npz": (data[: len(data) // 2], "not a readable .npz file ("),
        "random.npz": (np.random.default_rng(0).bytes(len(data)), "not a NumPy .npz file (no zip header)"),
        "text.npz": (b"voxel_r 0.1 0.2\n", "not a NumPy .npz file (no zip header)"),
    }
    for name, (content, problem) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(UnreadableFile) as raised:
            EncodingResult.load(tmp_path / name)
        message = str(raised.value)
        assert message.startswith(f"{tmp_path / name}: {problem}") and "\n" not in message
        assert message.endswith(": re-run the stage or command that writes it, or delete it")
