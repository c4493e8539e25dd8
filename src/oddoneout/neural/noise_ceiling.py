r"""Per-voxel noise ceilings from repeated presentations of the same stimuli.

Model: presentation :math:`i` of stimulus :math:`s` in a voxel is
:math:`x_{si} = \mu_s + \varepsilon_{si}`, with the stimulus-driven signal :math:`\mu_s`
varying across stimuli with variance :math:`\sigma_s^2` and independent noise of variance
:math:`\sigma_n^2`. A target that averages :math:`n` presentations has noise variance
:math:`\sigma_n^2/n`, so the best possible model (one that predicts :math:`\mu_s` exactly)
reaches

.. math::  r_{max}(n) = \sqrt{\frac{\sigma_s^2}{\sigma_s^2 + \sigma_n^2 / n}}
           = \sqrt{\frac{\mathrm{SNR}^2}{\mathrm{SNR}^2 + 1/n}}, \qquad
           \mathrm{SNR} = \sigma_s / \sigma_n ,

and :math:`r_{max}^2` is the largest share of the target's variance any model can explain
(the "noise ceiling" of Allen et al. 2022's NSD, whose ``ncsnr`` is this SNR).

Estimators (``method``):

``"variance"`` (default)
    :math:`\hat\sigma_n^2` is the pooled within-stimulus variance over stimuli shown at
    least twice, :math:`\sum_s\sum_i (x_{si}-\bar x_s)^2 / \sum_s (k_s-1)`;
    :math:`\hat\sigma_s^2 = \mathrm{var}_s(\bar x_s) - \hat\sigma_n^2\,\mathrm{mean}_s(1/k_s)`
    (clipped at 0), both unbiased. Deterministic.
``"split_half"``
    The presentations of each repeated stimulus are split at random into two halves,
    averaged, and the two half-averages correlated across stimuli (:math:`r_h`, averaged
    over ``n_splits`` splits); the Spearman-Brown formula extends it from the half size
    :math:`h` to :math:`n` presentations, :math:`\rho_n = (n/h)\,r_h / (1 + (n/h - 1)\,r_h)`,
    and :math:`r_{max} = \sqrt{\max(\rho_n, 0)}`. Uses only stimuli shown at least twice.

``n`` (``n_average``) is the number of presentations averaged in the target the encoding
model is scored on: by default that of the data given, the harmonic mean of the repeat
counts of all its stimuli (e.g. 1 when the encoding is scored on single presentations,
``repeats="keep"``; the repeat count when it is scored on averages, ``repeats="average"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oddoneout.errors import InputError
from oddoneout.neural.data import NeuralData
from oddoneout.neural.repeats import group_sums
from oddoneout.scoring import pearson

__all__ = ["NoiseCeiling", "ceiling_r", "noise_ceiling", "noise_ceiling_of"]

METHODS = ("variance", "split_half")


@dataclass(eq=False)
class NoiseCeiling:
    """Noise ceiling of each voxel.

    Parameters
    ----------
    r : ndarray of shape (n_voxels,)
        Largest Pearson r a model can reach on a target averaging ``n_average`` presentations.
    snr : ndarray of shape (n_voxels,)
        Estimated signal sd over noise sd (0 where no signal is detected).
    n_average : float
        Presentations averaged in the target.
    n_stimuli : int
        Stimuli used (for ``split_half``: those shown at least twice).
    n_repeated : int
        Stimuli shown at least twice.
    method : str
    """

    r: np.ndarray
    snr: np.ndarray
    n_average: float
    n_stimuli: int
    n_repeated: int
    method: str

    @property
    def explained_variance(self) -> np.ndarray:
        """``r ** 2``: the largest share of the target's variance a model can explain."""
        return self.r**2

    def at(self, n_average: float) -> np.ndarray:
        """The ceiling r for a target averaging ``n_average`` presentations (from the SNR)."""
        return ceiling_r(self.snr**2, n_average)


def ceiling_r(snr2: np.ndarray, n_average: float) -> np.ndarray:
    """:math:`\\sqrt{\\mathrm{SNR}^2 / (\\mathrm{SNR}^2 + 1/n)}`, 0 where the SNR is 0."""
    if not n_average > 0:
        raise InputError(f"n_average must be positive, got {n_average!r}")
    snr2 = np.maximum(np.asarray(snr2, dtype=np.float64), 0.0)
    return np.sqrt(snr2 / (snr2 + 1.0 / n_average))


def _group(stimulus_ids: np.ndarray, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    stimulus_ids = np.asarray(stimulus_ids).astype(str)
    if stimulus_ids.shape != (n_samples,):
        raise InputError(f"stimulus_ids has shape {stimulus_ids.shape}, expected one id per sample ({n_samples},)")
    _, inverse, counts = np.unique(stimulus_ids, return_inverse=True, return_counts=True)
    return inverse, counts


def noise_ceiling(
    responses: np.ndarray,
    stimulus_ids: np.ndarray,
    *,
    n_average: float | None = None,
    method: str = "variance",
    n_splits: int = 20,
    seed: int = 0,
) -> NoiseCeiling:
    """Per-voxel noise ceiling from repeated presentations (see the module docstring).

    Parameters
    ----------
    responses : ndarray of shape (n_samples, n_voxels)
        One row per presentation.
    stimulus_ids : ndarray of shape (n_samples,)
    n_average : float, optional
        Presentations averaged in the scored target; default the harmonic mean of the
        repeat counts of all stimuli in the data.
    method : {"variance", "split_half"}
    n_splits : int
        Random splits averaged by ``split_half``.
    seed : int
        Seed of the splits.

    Raises
    ------
    InputError
        No stimulus shown twice, fewer than 3 stimuli, non-finite responses, bad method.
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    x = np.asarray(responses, dtype=np.float64)
    if x.ndim != 2:
        raise InputError(f"responses must be 2-D (samples x voxels), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError("responses contain NaN or infinite values")
    inverse, counts = _group(stimulus_ids, x.shape[0])
    repeated = counts >= 2
    if not repeated.any():
        raise InputError("no stimulus is presented more than once: a noise ceiling needs repeated presentations")
    if counts.size < 3:
        raise InputError(f"a noise ceiling needs at least 3 stimuli, got {counts.size}")
    if n_average is None:
        n_average = float(1.0 / np.mean(1.0 / counts))

    if method == "variance":
        means = group_sums(x, inverse, counts) / counts[:, None]
        residual = x - means[inverse]
        noise_var = np.sum(residual**2, axis=0) / np.sum(counts - 1)
        signal_var = np.maximum(np.var(means, axis=0, ddof=1) - noise_var * np.mean(1.0 / counts), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            snr2 = np.where(noise_var > 0, signal_var / noise_var, np.where(signal_var > 0, np.inf, 0.0))
        r = np.where(np.isinf(snr2), 1.0, ceiling_r(np.where(np.isinf(snr2), 0.0, snr2), n_average))
        return NoiseCeiling(r, np.sqrt(snr2), n_average, int(counts.size), int(repeated.sum()), method)

    stimuli = np.flatnonzero(repeated)
    if stimuli.size < 3:
        raise InputError(f"split-half needs at least 3 repeated stimuli, got {stimuli.size}")
    samples = np.flatnonzero(repeated[inverse])
    group = np.searchsorted(stimuli, inverse[samples])  # 0 .. n_repeated - 1
    group_counts = counts[stimuli]
    half_a = group_counts // 2
    starts = np.concatenate([[0], np.cumsum(group_counts)[:-1]])
    half = 1.0 / np.mean(2.0 / group_counts)  # harmonic mean of the half sizes
    rng = np.random.default_rng(seed)
    r_half = np.zeros(x.shape[1])
    for _ in range(int(n_splits)):
        # Shuffle within stimuli: sort by stimulus, then by a random key; the first half of each goes to A.
        order = np.lexsort((rng.random(samples.size), group))
        sorted_group = group[order]
        in_a = np.arange(samples.size) - starts[sorted_group] < half_a[sorted_group]
        rows = samples[order]
        a = group_sums(x[rows[in_a]], sorted_group[in_a], half_a) / half_a[:, None]
        b = group_sums(x[rows[~in_a]], sorted_group[~in_a], group_counts - half_a) / (group_counts - half_a)[:, None]
        r_half += pearson(a, b)
    r_half /= n_splits
    factor = n_average / half
    reliability = factor * r_half / (1.0 + (factor - 1.0) * r_half)
    reliability = np.clip(np.where(r_half > 0, reliability, 0.0), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        snr2 = np.where(reliability < 1, reliability / (1 - reliability) / n_average, np.inf)
    return NoiseCeiling(np.sqrt(reliability), np.sqrt(snr2), n_average, int(stimuli.size), int(stimuli.size), method)


def noise_ceiling_of(neural: NeuralData, **kwargs) -> NoiseCeiling:
    """:func:`noise_ceiling` of a :class:`NeuralData` loaded with ``repeats="keep"``.

    Keyword arguments go to :func:`noise_ceiling`. For data whose repeats were averaged
    at load time the presentations are gone; reload with ``repeats="keep"`` and pass
    ``n_average`` = the repeat count to get the ceiling of the averaged target.
    """
    if neural.metadata.get("repeats") == "average" and "n_repeats" in neural.metadata:
        raise InputError(
            f"subject {neural.subject}: repeated presentations were averaged at load time; "
            "load with repeats='keep' for a noise ceiling"
        )
    return noise_ceiling(neural.responses, neural.stimulus_ids, **kwargs)
