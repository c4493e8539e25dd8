"""Per-voxel noise ceilings on simulated responses with known signal and noise variances."""

from __future__ import annotations

import numpy as np
import pytest

from oddoneout.errors import InputError
from oddoneout.neural.data import NeuralData
from oddoneout.neural.noise_ceiling import ceiling_r, noise_ceiling, noise_ceiling_of
from oddoneout.neural.repeats import average_repeats

NOISE_SD = np.array([0.5, 1.0, 2.0, 3.0])


def simulate(n_stimuli: int, repeats: np.ndarray | int, noise_sd: np.ndarray, seed: int = 0):
    """Unit-variance signal per stimulus plus Gaussian noise of ``noise_sd`` per voxel and presentation."""
    rng = np.random.default_rng(seed)
    counts = np.full(n_stimuli, repeats) if np.isscalar(repeats) else np.asarray(repeats)
    stimulus = np.repeat(np.arange(n_stimuli), counts)
    signal = rng.standard_normal((n_stimuli, noise_sd.size))
    responses = signal[stimulus] + rng.standard_normal((stimulus.size, noise_sd.size)) * noise_sd + 3.0
    return responses, stimulus, signal


def expected_r(noise_sd: np.ndarray, n: float) -> np.ndarray:
    return np.sqrt(1.0 / (1.0 + noise_sd**2 / n))


@pytest.mark.parametrize("method", ["variance", "split_half"])
def test_ceiling_matches_theory(method):
    responses, stimulus, _ = simulate(3000, 4, NOISE_SD)
    nc = noise_ceiling(responses, stimulus, method=method, n_splits=10)
    assert nc.n_average == 4
    np.testing.assert_allclose(nc.r, expected_r(NOISE_SD, 4), atol=0.02)
    np.testing.assert_allclose(nc.snr, 1.0 / NOISE_SD, rtol=0.08)
    # The same SNR gives the single-presentation ceiling.
    np.testing.assert_allclose(nc.at(1), expected_r(NOISE_SD, 1), atol=0.02)
    np.testing.assert_allclose(nc.explained_variance, nc.r**2)


def test_ceiling_is_the_r_of_the_true_signal():
    """A model that predicts the signal exactly reaches the ceiling on the averaged responses."""
    responses, stimulus, signal = simulate(10000, 3, NOISE_SD, seed=4)
    nc = noise_ceiling(responses, stimulus)
    averaged = responses.reshape(10000, 3, NOISE_SD.size).mean(axis=1)  # presentations of a stimulus are adjacent
    achieved = [np.corrcoef(signal[:, v], averaged[:, v])[0, 1] for v in range(NOISE_SD.size)]
    np.testing.assert_allclose(nc.r, achieved, atol=0.03)


def test_unequal_repeats_and_single_presentations():
    rng = np.random.default_rng(2)
    counts = rng.choice([1, 2, 3, 6], size=4000)
    responses, stimulus, _ = simulate(4000, counts, NOISE_SD, seed=2)
    harmonic = 1.0 / np.mean(1.0 / counts)
    nc = noise_ceiling(responses, stimulus)
    assert nc.n_average == pytest.approx(harmonic)
    assert nc.n_repeated == int(np.sum(counts >= 2))
    np.testing.assert_allclose(nc.r, expected_r(NOISE_SD, harmonic), atol=0.02)
    np.testing.assert_allclose(noise_ceiling(responses, stimulus, n_average=1).r, expected_r(NOISE_SD, 1), atol=0.02)


def test_pure_noise_voxels_have_no_ceiling():
    responses, stimulus, _ = simulate(400, 2, np.ones(200), seed=3)
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(responses.shape)  # no stimulus signal at all
    for method in ("variance", "split_half"):
        nc = noise_ceiling(noise, stimulus, method=method, n_splits=4)
        assert np.median(nc.explained_variance) < 0.01
        assert np.all((nc.r >= 0) & (nc.r <= 1))
    # With signal they are well above it.
    assert np.median(noise_ceiling(responses, stimulus).r) > 0.7


def test_deterministic_split_half():
    responses, stimulus, _ = simulate(200, 4, NOISE_SD, seed=5)
    a = noise_ceiling(responses, stimulus, method="split_half", seed=7)
    b = noise_ceiling(responses, stimulus, method="split_half", seed=7)
    np.testing.assert_array_equal(a.r, b.r)


def test_ceiling_r_formula():
    np.testing.assert_allclose(ceiling_r(np.array([0.0, 1.0, 4.0]), 4), [0.0, np.sqrt(0.8), np.sqrt(16 / 17)])
    with pytest.raises(InputError, match="n_average must be positive"):
        ceiling_r(np.ones(2), 0)


def test_noise_ceiling_of_neural_data():
    responses, stimulus, _ = simulate(300, 2, NOISE_SD, seed=6)
    ids = np.array([f"{s + 1:04d}" for s in stimulus])
    data = NeuralData("s1", responses, ids, stimulus % 5, {"all": np.arange(NOISE_SD.size)})
    nc = noise_ceiling_of(data)
    assert nc.r.shape == (NOISE_SD.size,)
    assert np.all(np.diff(nc.r) < 0)  # noisier voxels, lower ceilings
    with pytest.raises(InputError, match="averaged at load time"):
        noise_ceiling_of(average_repeats(data))


def test_errors():
    responses, stimulus, _ = simulate(10, 1, NOISE_SD)
    with pytest.raises(InputError, match="no stimulus is presented more than once"):
        noise_ceiling(responses, stimulus)
    responses, stimulus, _ = simulate(10, 2, NOISE_SD)
    with pytest.raises(InputError, match="one id per sample"):
        noise_ceiling(responses, stimulus[:-1])
    with pytest.raises(InputError, match="method must be"):
        noise_ceiling(responses, stimulus, method="bootstrap")
    bad = responses.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        noise_ceiling(bad, stimulus)
