"""Voxel-wise encoding: ridge regression from item features to voxels, run-blocked nested CV.

For each outer fold (a contiguous block of runs, see :func:`run_blocked_folds`)
a ridge model per voxel is fit on the other runs (by :mod:`oddoneout.neural.ridge`
or by himalaya), its alpha chosen per voxel by an inner run-blocked
cross-validation, and the held-out runs are predicted. The score of a voxel is
the Pearson r (and the R^2) between its held-out predictions and responses,
within each test fold and averaged over folds (or, optionally, on all folds'
predictions concatenated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from himalaya.backend import ALL_BACKENDS, get_backend, set_backend
from himalaya.ridge import solve_ridge_cv_svd

from oddoneout.errors import InputError
from oddoneout.neural.data import NeuralData
from oddoneout.neural.folds import FoldPlan, feature_rows, fold_mean_scores, plan_folds, run_blocked_folds
from oddoneout.neural.ridge import ridge_cv_per_target
from oddoneout.provenance import hash_array, provenance, read_npz, write_npz
from oddoneout.scoring import pearson, r2, zscore_stats

__all__ = ["EncodingResult", "encode", "run_blocked_folds"]

#: Default grid of ridge penalties (on z-scored features and responses).
DEFAULT_ALPHAS = np.logspace(-2, 5, 20)

_SCORES = ("fold_mean", "concatenated")
_SOLVERS = ("eigh", "himalaya")

# himalaya fits run in float32: GPU backends are fast in it and the scores do not need more.
# The eigh solver works in float64 (see oddoneout.neural.ridge).
_DTYPE = np.float32


@dataclass(eq=False)
class EncodingResult:
    """Cross-validated encoding scores of one subject for one feature set.

    Parameters
    ----------
    subject : str
        Subject label (from :class:`NeuralData`).
    voxel_r : ndarray of shape (n_voxels,)
        Pearson r between held-out predictions and responses: the mean over
        test folds of the r within each fold (default), or the r of all folds'
        predictions concatenated (``score="concatenated"`` in :func:`encode`).
        An r that is undefined (constant prediction or response) counts as 0.
    voxel_r2 : ndarray of shape (n_voxels,)
        R^2 of the same predictions, ``1 - SS_res / SS_tot`` around the mean of
        the held-out responses, scored like ``voxel_r``; may be negative.
    best_alpha : ndarray of shape (n_voxels,)
        Ridge alpha chosen by the inner CV: the median over outer folds on the
        log scale (for an even number of folds, the geometric mean of the two
        middle values).
    roi_r : dict of str to float
        Mean voxel r within each ROI of the data.
    n_folds : int
        Number of outer folds.
    metadata : dict
        How the scores were made: alphas, folds, backend, sizes, hashes.
    fold_alphas : ndarray of shape (n_folds, n_voxels), optional
        Alpha chosen in each outer fold.
    """

    subject: str
    voxel_r: np.ndarray
    voxel_r2: np.ndarray
    best_alpha: np.ndarray
    roi_r: dict[str, float]
    n_folds: int
    metadata: dict[str, Any] = field(default_factory=dict)
    fold_alphas: np.ndarray | None = None

    def save(self, path: str | Path) -> Path:
        """Write a compressed ``.npz``: the voxel arrays, ROI means and a JSON provenance record."""
        arrays = {
            "voxel_r": np.asarray(self.voxel_r),
            "voxel_r2": np.asarray(self.voxel_r2),
            "best_alpha": np.asarray(self.best_alpha),
            "roi_names": np.array(list(self.roi_r), dtype=str),
            "roi_r": np.array(list(self.roi_r.values()), dtype=np.float64),
        }
        if self.fold_alphas is not None:
            arrays["fold_alphas"] = np.asarray(self.fold_alphas)
        record = provenance("encoding", subject=self.subject, n_folds=int(self.n_folds), metadata=self.metadata)
        return write_npz(path, arrays, record)

    @classmethod
    def load(cls, path: str | Path) -> "EncodingResult":
        """Read a file written by :meth:`save`."""
        arrays, meta = read_npz(path, "encoding result")
        try:
            return cls(
                subject=meta["subject"],
                voxel_r=arrays["voxel_r"],
                voxel_r2=arrays["voxel_r2"],
                best_alpha=arrays["best_alpha"],
                roi_r={str(name): float(r) for name, r in zip(arrays["roi_names"], arrays["roi_r"])},
                n_folds=int(meta["n_folds"]),
                metadata=meta["metadata"],
                fold_alphas=arrays.get("fold_alphas"),
            )
        except KeyError as exc:
            raise InputError(f"{path}: not an oddoneout encoding result file (no {exc})") from exc


def encode(
    features: np.ndarray,
    item_ids: Sequence[str],
    data: NeuralData,
    n_folds: int = 6,
    alphas: np.ndarray = DEFAULT_ALPHAS,
    inner_folds: int = 5,
    backend: str = "numpy",
    average_repeats: bool = True,
    voxel_batch: int | None = None,
    progress: Callable[[int, int], Any] | None = None,
    score: str = "fold_mean",
    solver: str = "eigh",
) -> EncodingResult:
    """Predict every voxel from item features with ridge regression and nested run-blocked CV.

    Outer CV: the sorted runs are cut into ``n_folds`` contiguous blocks, each
    the test set once. Training samples showing a stimulus that also appears in
    the test runs are dropped from that fold, so no stimulus is shared between
    training and test. Inner CV (on the training set only): ``inner_folds``
    contiguous blocks of runs choose one alpha per voxel (lowest mean over
    inner folds of the validation mean squared error, features and responses
    centered within each inner training set); the model is then refit on the
    whole training set with that alpha. Features and responses are z-scored
    with training statistics only; predictions are mapped back to response
    units before scoring.

    Parameters
    ----------
    features : ndarray of shape (n_items, n_features)
        Item features (e.g. an embedding's weights), rows aligned with ``item_ids``.
    item_ids : sequence of str
        Id of each row of ``features``; must cover every stimulus of ``data``.
    data : NeuralData
        One subject's responses, stimulus ids, runs and ROIs.
    n_folds : int, default=6
        Number of outer folds (blocks of runs).
    alphas : ndarray of shape (n_alphas,), default=np.logspace(-2, 5, 20)
        Ridge penalties to choose from.
    inner_folds : int, default=5
        Number of inner folds (blocks of training runs) for choosing alpha.
        A stimulus shown in several training runs is kept, with all its
        presentations, in one inner fold (see :func:`run_blocks_by_stimulus`),
        so inner folds never share a stimulus either.
    backend : str, default="numpy"
        himalaya backend: "numpy", "torch", "torch_cuda", "cupy" or "torch_mps".
        The eigh solver runs in numpy only: with another backend the himalaya
        solver is used instead (recorded in ``metadata["solver_used"]``).
        If the backend cannot be loaded, a warning is issued and the current
        backend is used (recorded in ``metadata["backend_used"]``). The
        previous backend is restored on return.
    average_repeats : bool, default=True
        Average repeated presentations of a stimulus before fitting and scoring:
        within the training set of a fold (all its presentations in the
        training runs) and within the test set (all its presentations in the
        test runs). Each fold then fits and scores one row per stimulus. If
        False, every presentation is its own sample.
    voxel_batch : int, optional
        Number of voxels fit at once, to bound memory (the responses of a batch
        are held in float64 for every fold; himalaya also holds
        ``n_alphas x n_validation_samples x voxel_batch`` predictions). All
        voxels at once if None.
    progress : callable, optional
        Called as ``progress(done, total)`` after each (voxel batch, fold) fit.
    score : {"fold_mean", "concatenated"}, default="fold_mean"
        How held-out predictions are scored. "fold_mean": Pearson r and R^2 in
        each test fold, averaged over folds. "concatenated": one Pearson r and
        R^2 on the out-of-fold predictions of all folds concatenated.
        The concatenated r is biased downwards on voxels the features do not
        predict: each fold's intercept is a training mean, which excludes the
        test runs and so anti-correlates with the test mean, and each fold's
        prediction is fit on the other folds' test data. On pure noise it
        averaged -0.10 with 6 folds of 50 stimuli and -0.05 with 6 folds of
        200 (-0.06 and -0.03 with each fold centered first). Within one fold
        the predictions depend on training runs only, so the fold r of a
        pure-noise voxel is symmetric around 0; hence the default.
    solver : {"eigh", "himalaya"}, default="eigh"
        "eigh": :func:`oddoneout.neural.ridge.ridge_cv_per_target`, one
        eigendecomposition of the features' Gram matrix per fit and the inner
        validation errors of all alphas in feature space, in float64; fast
        when there are few features. "himalaya": ``solve_ridge_cv_svd`` with
        ``local_alpha=True``, in float32 on ``backend``. Both choose alphas by
        the same criterion.

    Returns
    -------
    EncodingResult
        Per-voxel Pearson r and R^2 of the held-out predictions (one row per
        test stimulus and fold when averaging, else per sample; see ``score``),
        chosen alphas and ROI means.

    Raises
    ------
    InputError
        On a stimulus of ``data`` missing from ``item_ids``, duplicate item ids,
        NaN or infinite features, fewer runs than folds, a fold whose training
        set is empty or spans fewer runs than ``inner_folds``, bad alphas, an
        unknown backend, solver or score.
    """
    features = _check_features(features, item_ids)
    alphas = _check_alphas(alphas)
    if backend not in ALL_BACKENDS:
        raise InputError(f"unknown himalaya backend {backend!r}; expected one of {ALL_BACKENDS}")
    if score not in _SCORES:
        raise InputError(f"unknown score {score!r}; expected one of {_SCORES}")
    if solver not in _SOLVERS:
        raise InputError(f"unknown solver {solver!r}; expected one of {_SOLVERS}")
    solver_used = solver if backend == "numpy" else "himalaya"
    n_voxels = data.n_voxels
    if voxel_batch is None:
        voxel_batch = n_voxels
    if int(voxel_batch) != voxel_batch or voxel_batch < 1:
        raise InputError(f"voxel_batch must be a positive integer or None, got {voxel_batch!r}")
    voxel_batch = int(voxel_batch)

    sample_rows = feature_rows(item_ids, data)
    plans = plan_folds(features, sample_rows, data, n_folds, inner_folds, average_repeats)
    n_train_dropped = sum(int(len(data.runs) - plan.test_samples.size - plan.train_samples.size) for plan in plans)
    offsets = np.concatenate([[0], np.cumsum([plan.n_test for plan in plans])])
    n_scored = int(offsets[-1])

    voxel_r = np.zeros(n_voxels, dtype=np.float64)
    voxel_r2 = np.zeros(n_voxels, dtype=np.float64)
    fold_alphas = np.zeros((len(plans), n_voxels), dtype=np.float64)
    batches = [slice(start, min(start + voxel_batch, n_voxels)) for start in range(0, n_voxels, voxel_batch)]
    total, done = len(batches) * len(plans), 0

    previous_backend = get_backend().name
    try:
        himalaya = set_backend(backend, on_error="warn")
        for voxels in batches:
            observed = np.empty((n_scored, voxels.stop - voxels.start), dtype=np.float64)
            predicted = np.empty_like(observed)
            for k, plan in enumerate(plans):
                scored = slice(offsets[k], offsets[k + 1])
                observed[scored], predicted[scored], fold_alphas[k, voxels] = _fit_predict_fold(
                    plan, data.responses[:, voxels], alphas, himalaya if solver_used == "himalaya" else None
                )
                done += 1
                if progress is not None:
                    progress(done, total)
            voxel_r[voxels], voxel_r2[voxels] = _score(observed, predicted, offsets, score)
        backend_used = himalaya.name
    finally:
        set_backend(previous_backend)

    best_alpha = 10.0 ** np.median(np.log10(fold_alphas), axis=0)
    roi_r = {name: float(np.mean(voxel_r[voxels])) for name, voxels in data.rois.items()}
    metadata = {
        "alphas": alphas.tolist(),
        "n_folds": len(plans),
        "inner_folds": int(inner_folds),
        "solver": solver,
        "solver_used": solver_used,
        "backend": backend,
        "backend_used": backend_used if solver_used == "himalaya" else "numpy",
        "average_repeats": bool(average_repeats),
        "voxel_batch": voxel_batch,
        "n_samples": int(len(data.runs)),
        "n_features": int(features.shape[1]),
        "n_voxels": int(n_voxels),
        "n_scored": n_scored,
        "n_train_dropped": n_train_dropped,
        "score": score,
        "alpha_selection": "per voxel, inner run-blocked CV, squared error; best_alpha = log-scale median over folds",
        "features_hash": hash_array(features),
    }
    return EncodingResult(
        subject=data.subject,
        voxel_r=voxel_r,
        voxel_r2=voxel_r2,
        best_alpha=best_alpha,
        roi_r=roi_r,
        n_folds=len(plans),
        metadata=metadata,
        fold_alphas=fold_alphas,
    )


def _check_features(features: np.ndarray, item_ids: Sequence[str]) -> np.ndarray:
    """Validate the feature matrix against ``item_ids``; return it as float64."""
    features = np.asarray(features, dtype=np.float64)
    item_ids = [str(item) for item in item_ids]
    if features.ndim != 2 or features.shape[0] != len(item_ids) or features.shape[1] == 0:
        raise InputError(
            f"features of shape {features.shape} do not match {len(item_ids)} item ids "
            "(expected (n_items, n_features) with n_features >= 1)"
        )
    bad = np.flatnonzero(~np.all(np.isfinite(features), axis=1))
    if bad.size:
        names = [item_ids[i] for i in bad[:5]]
        raise InputError(
            f"features contain NaN or infinite values in {bad.size} row(s), items {names}"
            f"{' ...' if bad.size > 5 else ''}"
        )
    return features


def _check_alphas(alphas: np.ndarray) -> np.ndarray:
    alphas = np.sort(np.atleast_1d(np.asarray(alphas, dtype=np.float64)))
    if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas <= 0):
        raise InputError(f"alphas must be a non-empty 1-D array of positive finite values, got {alphas!r}")
    return alphas


def _fit_predict_fold(
    plan: FoldPlan, responses: np.ndarray, alphas: np.ndarray, himalaya
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit one outer fold on a block of voxels; return test responses, predictions and alphas.

    ``himalaya`` is the himalaya backend module to fit with, or None for the eigh solver.
    """
    y_train = plan.train_responses(responses)
    y_test = plan.test_responses(responses)
    if himalaya is None:
        # In float64 z-scoring the responses changes nothing: the solver centers them, and scaling a
        # voxel scales its errors for all alphas alike. x_train has zero mean: the intercept is y's mean.
        chosen, coefs = ridge_cv_per_target(plan.x_train, y_train, plan.inner_splits, alphas)
        return y_test, plan.x_test @ coefs + y_train.mean(axis=0), chosen
    mean, scale = zscore_stats(y_train)

    chosen, coefs, _, intercept = solve_ridge_cv_svd(
        himalaya.asarray(plan.x_train.astype(_DTYPE)),
        himalaya.asarray(((y_train - mean) / scale).astype(_DTYPE)),
        alphas=himalaya.asarray(alphas.astype(_DTYPE)),
        cv=plan.inner_splits,
        fit_intercept=True,  # exact centering within each inner split
        local_alpha=True,
        warn=False,
    )
    coefs = himalaya.to_numpy(coefs).astype(np.float64)
    intercept = himalaya.to_numpy(intercept).astype(np.float64)
    predicted = (plan.x_test @ coefs + intercept) * scale + mean
    # himalaya returns exp(-log(alpha)) in float32; report the grid value itself.
    chosen = np.log(himalaya.to_numpy(chosen).astype(np.float64))
    chosen = alphas[np.abs(chosen[:, None] - np.log(alphas)[None, :]).argmin(axis=1)]
    return y_test, predicted, chosen


def _score(
    observed: np.ndarray, predicted: np.ndarray, offsets: np.ndarray, score: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-voxel r and R^2 of held-out predictions; fold ``k`` holds rows ``offsets[k]:offsets[k + 1]``.

    An r that is undefined (constant prediction or response, :mod:`oddoneout.scoring`) counts as 0.
    """
    if score == "concatenated":
        return pearson(observed, predicted), r2(observed, predicted)
    return fold_mean_scores(observed, predicted, offsets)
