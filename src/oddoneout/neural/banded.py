"""Banded ridge regression for joint models of several feature sets, and variance partitioning.

A banded ridge model gives each feature band ``b`` (e.g. one system's embedding) its own penalty:
``min ||Y - sum_b X_b W_b||^2 + sum_b alpha_b ||W_b||^2``. Scaling band ``b`` by ``s_b`` turns this
into an ordinary ridge with one penalty ``alpha`` on ``[s_1 X_1, ..., s_B X_B]`` and
``alpha_b = alpha / s_b^2``. So the per-band penalties are searched as a grid of band scales
(per band ``0`` or a value of ``band_scales``, the largest scale of a combination being 1) times
the usual grid of ``alphas``; for each combination of scales the inner cross-validation errors of
every alpha come from :func:`oddoneout.neural.ridge.ridge_cv_errors` (exact, float64, one
eigendecomposition per split), and each voxel keeps the combination and alpha with the lowest
error. A scale of 0 drops a band, so a joint model can always fall back to one of its bands.

Why not himalaya's ``BandedRidgeCV`` / ``MultipleKernelRidgeCV``: their band weights are found by
random search over the simplex or by gradient descent on the validation loss, both seeded
approximations whose outcome depends on iteration counts; with two or three bands of tens of
features an exhaustive grid through the eigh solver is exact, deterministic and fast.

Folds, repeat averaging and z-scoring follow :func:`oddoneout.neural.folds.plan_folds`, and scores
are computed within each test fold and averaged over folds: the same protocol as
:func:`oddoneout.neural.encoding.encode`.

Variance partitioning (two bands A and B) uses the held-out R^2 of A alone, B alone and A+B:
``unique_A = R2_AB - R2_B``, ``unique_B = R2_AB - R2_A``, ``shared = R2_A + R2_B - R2_AB``
(by default the R^2 of predictions centred within each test fold; see :func:`variance_partitioning`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from oddoneout.errors import InputError
from oddoneout.neural.data import NeuralData
from oddoneout.neural.folds import feature_rows, fold_mean_scores, plan_folds
from oddoneout.neural.ridge import ridge_cv_errors, ridge_fit_per_target
from oddoneout.scoring import r2

__all__ = [
    "BandedResult",
    "VariancePartition",
    "banded_ridge_cv",
    "band_scale_grid",
    "heldout_predictions",
    "variance_partitioning",
    "DEFAULT_ALPHAS",
    "DEFAULT_BAND_SCALES",
]

#: Ridge penalties searched for every combination of band scales.
DEFAULT_ALPHAS = np.logspace(-2, 5, 20)
#: Non-zero band scales; 0 (band left out) is always added.
DEFAULT_BAND_SCALES = np.logspace(-1, 0, 4)


@dataclass(eq=False)
class BandedResult:
    """Cross-validated banded ridge scores and held-out predictions of one subject.

    Parameters
    ----------
    subject : str
    bands : list of str
        Band names, in the column order of the joint feature matrix.
    voxel_r, voxel_r2 : ndarray of shape (n_voxels,)
        Pearson r and R^2 of held-out predictions within each test fold, averaged over folds
        (as :func:`oddoneout.neural.encoding.encode` scores them).
    voxel_r2_centred : ndarray of shape (n_voxels,)
        R^2 with the held-out responses and predictions each centred within the test fold: the
        error of the intercept (a training mean that misses the test runs' offsets, the same
        for every feature set) is left out. Used for variance partitioning.
    observed, predicted : ndarray of shape (n_scored, n_voxels)
        Held-out responses (repeats averaged per stimulus) and predictions of all folds, stacked.
    fold : ndarray of shape (n_scored,), int
        Test fold of each row of ``observed``.
    stimulus_ids : ndarray of shape (n_scored,), str
        Stimulus of each row of ``observed`` (sorted within each fold).
    band_scales : ndarray of shape (n_folds, n_bands, n_voxels)
        Chosen scale of each band (0: band left out); the band's penalty is ``alpha / scale^2``.
    alphas : ndarray of shape (n_folds, n_voxels)
        Chosen overall penalty.
    roi_r, roi_r2 : dict of str to float
        ROI means of ``voxel_r`` and ``voxel_r2``.
    metadata : dict
    """

    subject: str
    bands: list[str]
    voxel_r: np.ndarray
    voxel_r2: np.ndarray
    voxel_r2_centred: np.ndarray
    observed: np.ndarray
    predicted: np.ndarray
    fold: np.ndarray
    stimulus_ids: np.ndarray
    band_scales: np.ndarray
    alphas: np.ndarray
    roi_r: dict[str, float]
    roi_r2: dict[str, float]
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class VariancePartition:
    """Held-out R^2 of two feature sets alone and together, split into unique and shared parts.

    Parameters
    ----------
    subject : str
    names : (str, str)
        Names of the bands A and B.
    r2_a, r2_b, r2_joint : ndarray of shape (n_voxels,)
    unique_a, unique_b, shared : ndarray of shape (n_voxels,)
    rois : dict of str to ndarray of int
    """

    subject: str
    names: tuple[str, str]
    r2_a: np.ndarray
    r2_b: np.ndarray
    r2_joint: np.ndarray
    unique_a: np.ndarray
    unique_b: np.ndarray
    shared: np.ndarray
    rois: dict[str, np.ndarray]

    def roi_table(self) -> pd.DataFrame:
        """Per ROI means: ``subject, roi, r2_<A>, r2_<B>, r2_joint, unique_<A>, unique_<B>, shared``."""
        a, b = self.names
        rows = []
        for roi, voxels in self.rois.items():
            rows.append(
                {
                    "subject": self.subject,
                    "roi": roi,
                    f"r2_{a}": float(self.r2_a[voxels].mean()),
                    f"r2_{b}": float(self.r2_b[voxels].mean()),
                    "r2_joint": float(self.r2_joint[voxels].mean()),
                    f"unique_{a}": float(self.unique_a[voxels].mean()),
                    f"unique_{b}": float(self.unique_b[voxels].mean()),
                    "shared": float(self.shared[voxels].mean()),
                }
            )
        return pd.DataFrame(rows)


def band_scale_grid(n_bands: int, scales: np.ndarray = DEFAULT_BAND_SCALES) -> np.ndarray:
    """Combinations of band scales searched: each band 0 or a value of ``scales``, normalised to max 1.

    Returns
    -------
    ndarray of shape (n_combinations, n_bands)
        Distinct rows, none all zero, the largest entry of each row 1.
    """
    scales = np.asarray(scales, dtype=np.float64).ravel()
    if scales.size == 0 or np.any(~np.isfinite(scales)) or np.any(scales <= 0):
        raise InputError(f"band scales must be positive and finite, got {scales!r}")
    if n_bands == 1:
        return np.ones((1, 1))
    values = np.concatenate([[0.0], scales / scales.max()])
    rows = set()
    for combination in product(values, repeat=n_bands):
        top = max(combination)
        if top > 0:
            rows.add(tuple(np.round(np.asarray(combination) / top, 12)))
    return np.array(sorted(rows, reverse=True))


def banded_ridge_cv(
    bands: Mapping[str, np.ndarray],
    item_ids: Sequence[str],
    data: NeuralData,
    n_folds: int = 6,
    inner_folds: int = 5,
    alphas: np.ndarray = DEFAULT_ALPHAS,
    band_scales: np.ndarray = DEFAULT_BAND_SCALES,
    voxel_batch: int | None = None,
) -> BandedResult:
    """Banded ridge encoding with run-blocked nested cross-validation.

    Parameters
    ----------
    bands : mapping of str to ndarray of shape (n_items, n_features_b)
        Feature bands, rows following ``item_ids``. One band gives an ordinary ridge encoding.
    item_ids : sequence of str
    data : NeuralData
    n_folds, inner_folds : int
        Outer and inner run-blocked folds.
    alphas : ndarray
        Overall penalties.
    band_scales : ndarray
        Non-zero band scales of :func:`band_scale_grid`.
    voxel_batch : int, optional
        Voxels fit at once (bounds memory; all at once if None).

    Returns
    -------
    BandedResult
    """
    names, features = _check_bands(bands, item_ids)
    alphas = np.sort(np.atleast_1d(np.asarray(alphas, dtype=np.float64)))
    if alphas.size == 0 or np.any(~np.isfinite(alphas)) or np.any(alphas <= 0):
        raise InputError(f"alphas must be positive and finite, got {alphas!r}")
    grid = band_scale_grid(len(names), band_scales)
    sample_rows = feature_rows(item_ids, data)
    widths = [f.shape[1] for f in features]
    joint = np.hstack(features)
    column_band = np.repeat(np.arange(len(names)), widths)
    n_voxels = data.n_voxels
    voxel_batch = n_voxels if voxel_batch is None else int(voxel_batch)
    if voxel_batch < 1:
        raise InputError(f"voxel_batch must be positive, got {voxel_batch}")

    plans = plan_folds(joint, sample_rows, data, n_folds, inner_folds)
    observed = np.concatenate([p.test_responses(data.responses) for p in plans])
    predicted = np.empty_like(observed)
    fold = np.concatenate([np.full(p.n_test, k) for k, p in enumerate(plans)])
    stimulus_ids = np.concatenate([p.test_ids for p in plans])
    offsets = np.concatenate([[0], np.cumsum([p.n_test for p in plans])])
    chosen_scales = np.zeros((len(plans), len(names), n_voxels))
    chosen_alphas = np.zeros((len(plans), n_voxels))

    for start in range(0, n_voxels, voxel_batch):
        voxels = slice(start, min(start + voxel_batch, n_voxels))
        for k, plan in enumerate(plans):
            y_train = plan.train_responses(data.responses[:, voxels])
            best_error = np.full(y_train.shape[1], np.inf)
            best_combo = np.zeros(y_train.shape[1], dtype=np.int64)
            best_alpha = np.zeros(y_train.shape[1])
            for c, scales in enumerate(grid):
                errors = ridge_cv_errors(plan.x_train * scales[column_band], y_train, plan.inner_splits, alphas)
                a = np.argmin(errors, axis=0)
                error = errors[a, np.arange(errors.shape[1])]
                better = error < best_error * (1 - 1e-12)  # ties keep the earlier (larger-scale) combination
                best_error[better], best_combo[better], best_alpha[better] = error[better], c, alphas[a[better]]
            rows_out = slice(offsets[k], offsets[k + 1])
            block = np.empty((plan.n_test, y_train.shape[1]))
            for c in np.unique(best_combo):
                targets = np.flatnonzero(best_combo == c)
                scale = grid[c][column_band]
                coefs = ridge_fit_per_target(plan.x_train * scale, y_train[:, targets], best_alpha[targets])
                intercept = y_train[:, targets].mean(axis=0)  # x_train has zero column means
                block[:, targets] = (plan.x_test * scale) @ coefs + intercept
            predicted[rows_out, voxels] = block
            chosen_scales[k, :, voxels] = grid[best_combo].T
            chosen_alphas[k, voxels] = best_alpha

    voxel_r, voxel_r2 = fold_mean_scores(observed, predicted, offsets)
    blocks = list(zip(offsets[:-1], offsets[1:]))
    voxel_r2_centred = np.mean(
        [r2(observed[s:e], predicted[s:e] - predicted[s:e].mean(0) + observed[s:e].mean(0)) for s, e in blocks],
        axis=0,
    )
    return BandedResult(
        subject=data.subject,
        bands=names,
        voxel_r=voxel_r,
        voxel_r2=voxel_r2,
        voxel_r2_centred=voxel_r2_centred,
        observed=observed,
        predicted=predicted,
        fold=fold,
        stimulus_ids=stimulus_ids,
        band_scales=chosen_scales,
        alphas=chosen_alphas,
        roi_r={roi: float(voxel_r[v].mean()) for roi, v in data.rois.items()},
        roi_r2={roi: float(voxel_r2[v].mean()) for roi, v in data.rois.items()},
        metadata={
            "n_folds": len(plans),
            "inner_folds": int(inner_folds),
            "alphas": alphas.tolist(),
            "band_scale_grid": grid.tolist(),
            "band_widths": dict(zip(names, widths)),
            "score": "fold_mean",
        },
    )


def heldout_predictions(features: np.ndarray, item_ids: Sequence[str], data: NeuralData, **kwargs: Any) -> BandedResult:
    """Held-out predictions of an ordinary (one-band) ridge encoding, e.g. for bootstrap CIs.

    Same protocol and scores as :func:`oddoneout.neural.encoding.encode` with its default
    ``solver="eigh"``; keyword arguments go to :func:`banded_ridge_cv`.
    """
    return banded_ridge_cv({"features": features}, item_ids, data, **kwargs)


def variance_partitioning(
    features_a: np.ndarray,
    features_b: np.ndarray,
    item_ids: Sequence[str],
    data: NeuralData,
    names: tuple[str, str] = ("a", "b"),
    r2: str = "centred",
    **kwargs: Any,
) -> VariancePartition:
    """Unique and shared held-out variance of two feature sets (keyword arguments: :func:`banded_ridge_cv`).

    ``r2_a`` and ``r2_b`` come from one-band models, ``r2_joint`` from the banded model of both;
    all three use the same folds and grids.

    Parameters
    ----------
    r2 : {"centred", "raw"}, default="centred"
        Which held-out R^2 to partition: ``BandedResult.voxel_r2_centred`` or ``voxel_r2``. The raw
        R^2 carries the intercept's error, the same for the three models; it cancels in the unique
        parts but biases ``shared`` by minus its size (e.g. -0.08 on the synthetic brain, whose
        runs have offsets).
    """
    if names[0] == names[1]:
        raise InputError(f"the two feature sets need different names, got {names}")
    if r2 not in ("centred", "raw"):
        raise InputError(f"r2 must be 'centred' or 'raw', got {r2!r}")
    field_name = "voxel_r2_centred" if r2 == "centred" else "voxel_r2"
    r2_a = getattr(banded_ridge_cv({names[0]: features_a}, item_ids, data, **kwargs), field_name)
    r2_b = getattr(banded_ridge_cv({names[1]: features_b}, item_ids, data, **kwargs), field_name)
    joint = banded_ridge_cv({names[0]: features_a, names[1]: features_b}, item_ids, data, **kwargs)
    r2_joint = getattr(joint, field_name)
    return VariancePartition(
        subject=data.subject,
        names=tuple(names),
        r2_a=r2_a,
        r2_b=r2_b,
        r2_joint=r2_joint,
        unique_a=r2_joint - r2_b,
        unique_b=r2_joint - r2_a,
        shared=r2_a + r2_b - r2_joint,
        rois=dict(data.rois),
    )


# ----------------------------------------------------------------------------- internals


def _check_bands(bands: Mapping[str, np.ndarray], item_ids: Sequence[str]) -> tuple[list[str], list[np.ndarray]]:
    if not bands:
        raise InputError("no feature bands given")
    n_items = len(item_ids)
    names, features = [], []
    for name, values in bands.items():
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] != n_items or values.shape[1] == 0:
            raise InputError(f"band {name!r} has shape {values.shape}, expected ({n_items}, n_features >= 1)")
        if not np.all(np.isfinite(values)):
            raise InputError(f"band {name!r} contains NaN or infinite values")
        names.append(str(name))
        features.append(values)
    return names, features
