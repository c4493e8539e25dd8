"""Cross-validation folds made of contiguous blocks of runs, and the plan of each outer fold.

:func:`plan_folds` is the one protocol of the encoding models (:mod:`oddoneout.neural.encoding`,
:mod:`oddoneout.neural.banded`): outer folds are run blocks (training samples sharing a stimulus
with the test block dropped), inner folds are run blocks that keep a stimulus's presentations
together, repeats are averaged per stimulus within the training and the test set, and features
are z-scored with training statistics (:func:`oddoneout.scoring.zscore_stats`);
:func:`fold_mean_scores` is their held-out score averaged over the outer folds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from oddoneout.errors import InputError
from oddoneout.neural.data import NeuralData
from oddoneout.scoring import pearson, r2, zscore_stats


def run_blocked_folds(
    runs: np.ndarray,
    n_folds: int,
    stimulus_ids: np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split samples into folds whose test sets are contiguous blocks of runs.

    The sorted unique runs are cut into ``n_folds`` contiguous blocks whose sizes
    differ by at most one (e.g. 61 runs in 6 folds: 11, 10, 10, 10, 10, 10 runs).
    Every run is in exactly one test block; the training set of a fold is every
    sample outside its test block.

    Parameters
    ----------
    runs : ndarray of shape (n_samples,)
        Run of each sample (any sortable labels; usually ints).
    n_folds : int
        Number of folds, at least 2 and at most the number of distinct runs.
    stimulus_ids : ndarray of shape (n_samples,), optional
        Stimulus of each sample. When given, training samples whose stimulus
        also appears in the fold's test block are dropped, so that no stimulus
        is shared between the training and test sets.

    Returns
    -------
    folds : list of (train, test) tuples
        Sorted sample indices (int64 arrays) of each fold, in run order.

    Raises
    ------
    InputError
        If there are fewer distinct runs than folds, ``n_folds < 2``, or
        ``stimulus_ids`` does not have one entry per sample.
    """
    runs = np.asarray(runs)
    if runs.ndim != 1:
        raise InputError(f"runs must be a 1-D array with one run per sample, got shape {runs.shape}")
    if int(n_folds) != n_folds or n_folds < 2:
        raise InputError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    unique_runs = np.unique(runs)
    if unique_runs.size < n_folds:
        raise InputError(
            f"cannot make {n_folds} run-blocked folds from {unique_runs.size} distinct run(s) {unique_runs.tolist()}"
        )
    if stimulus_ids is not None:
        stimulus_ids = np.asarray(stimulus_ids)
        if stimulus_ids.shape != runs.shape:
            raise InputError(f"stimulus_ids has shape {stimulus_ids.shape}, expected one id per sample {runs.shape}")

    folds = []
    for block in np.array_split(unique_runs, int(n_folds)):
        in_test = np.isin(runs, block)
        in_train = ~in_test
        if stimulus_ids is not None:
            in_train &= ~np.isin(stimulus_ids, stimulus_ids[in_test])
        folds.append((np.flatnonzero(in_train), np.flatnonzero(in_test)))
    return folds


def run_blocks_by_stimulus(runs: np.ndarray, stimulus_ids: np.ndarray, n_folds: int) -> np.ndarray:
    """Assign samples to contiguous blocks of runs, keeping each stimulus's presentations together.

    The sorted unique runs are cut into ``n_folds`` contiguous blocks as in
    :func:`run_blocked_folds`. A stimulus shown in one block goes there; a
    stimulus shown in several blocks goes, with all its presentations, to the
    one of those blocks holding the fewest stimuli so far (stimuli taken in
    order of first appearance). Folds built from the result therefore never
    share a stimulus between training and validation, and without repeated
    stimuli they are exactly the run blocks.

    Parameters
    ----------
    runs : ndarray of shape (n_samples,)
        Run of each sample.
    stimulus_ids : ndarray of shape (n_samples,)
        Stimulus of each sample.
    n_folds : int
        Number of blocks, at least 2 and at most the number of distinct runs.

    Returns
    -------
    fold : ndarray of shape (n_samples,), int64
        Block of each sample, in ``range(n_folds)``.

    Raises
    ------
    InputError
        If there are fewer distinct runs than blocks, or a block ends up with
        no stimulus (stimuli repeat across too many runs).
    """
    runs = np.asarray(runs)
    stimulus_ids = np.asarray(stimulus_ids)
    if stimulus_ids.shape != runs.shape:
        raise InputError(f"stimulus_ids has shape {stimulus_ids.shape}, expected one id per sample {runs.shape}")
    folds = run_blocked_folds(runs, n_folds)
    run_block = np.empty(runs.size, dtype=np.int64)
    for block, (_, test) in enumerate(folds):
        run_block[test] = block

    stimuli, first, inverse = np.unique(stimulus_ids, return_index=True, return_inverse=True)
    candidates: list[set[int]] = [set() for _ in stimuli]
    for stimulus, block in zip(inverse, run_block):
        candidates[stimulus].add(int(block))
    stimulus_block = np.empty(stimuli.size, dtype=np.int64)
    load = np.zeros(n_folds, dtype=np.int64)
    for stimulus in np.argsort(first, kind="stable"):
        block = min(candidates[stimulus], key=lambda b: (load[b], b))
        stimulus_block[stimulus] = block
        load[block] += 1
    empty = np.flatnonzero(load == 0)
    if empty.size:
        raise InputError(
            f"run block(s) {empty.tolist()} of {n_folds} hold no stimulus of their own: "
            "stimuli repeat across too many runs for this number of folds"
        )
    return stimulus_block[inverse]


@dataclass
class FoldPlan:
    """Everything about one outer fold that does not depend on the voxels.

    Rows of ``x_train`` / ``x_test`` are one per distinct stimulus (sorted ids) when repeats are
    averaged, else one per sample.

    Parameters
    ----------
    train_samples, test_samples : ndarray of int
        Indices into the data's samples.
    train_average, test_average : sparse matrix or None
        ``(n_rows, n_samples)`` operators averaging each stimulus's samples (None: no averaging).
    test_ids : ndarray of str
        Stimulus of each test row.
    x_train, x_test : ndarray
        Features z-scored with training statistics, float64.
    inner_splits : list of (train, validation) row-index tuples
    """

    train_samples: np.ndarray
    test_samples: np.ndarray
    train_average: sp.csr_matrix | None
    test_average: sp.csr_matrix | None
    test_ids: np.ndarray
    x_train: np.ndarray
    x_test: np.ndarray
    inner_splits: list[tuple[np.ndarray, np.ndarray]]

    @property
    def n_test(self) -> int:
        return self.x_test.shape[0]

    def train_responses(self, responses: np.ndarray) -> np.ndarray:
        """Training rows of ``responses`` (n_samples, n_voxels), repeats averaged, float64."""
        return _apply(self.train_average, responses[self.train_samples].astype(np.float64))

    def test_responses(self, responses: np.ndarray) -> np.ndarray:
        """Test rows of ``responses``, repeats averaged, float64."""
        return _apply(self.test_average, responses[self.test_samples].astype(np.float64))


def feature_rows(item_ids: Sequence[str], data: NeuralData) -> np.ndarray:
    """Feature row of each sample of ``data``, ``item_ids`` naming the rows.

    Raises
    ------
    InputError
        On duplicate item ids or a stimulus of ``data`` missing from them.
    """
    rows: dict[str, int] = {}
    for i, item in enumerate(str(item) for item in item_ids):
        if item in rows:
            raise InputError(f"item id {item!r} appears twice in item_ids (rows {rows[item]} and {i})")
        rows[item] = i
    missing = sorted(set(np.unique(data.stimulus_ids)) - set(rows))
    if missing:
        raise InputError(
            f"subject {data.subject}: {len(missing)} stimulus id(s) have no feature row: "
            f"{missing[:5]}{' ...' if len(missing) > 5 else ''}"
        )
    return np.array([rows[s] for s in data.stimulus_ids], dtype=np.int64)


def plan_folds(
    features: np.ndarray,
    sample_rows: np.ndarray,
    data: NeuralData,
    n_folds: int,
    inner_folds: int,
    average_repeats: bool = True,
) -> list[FoldPlan]:
    """Plan the run-blocked nested cross-validation of an encoding model (module docstring).

    Parameters
    ----------
    features : ndarray of shape (n_items, n_features)
    sample_rows : ndarray of shape (n_samples,), int
        Row of ``features`` of each sample (:func:`feature_rows`).
    data : NeuralData
    n_folds, inner_folds : int
        Outer folds (:func:`run_blocked_folds`) and inner folds (:func:`run_blocks_by_stimulus`).
    average_repeats : bool, default=True
        One row per distinct stimulus in each training and test set; else one per sample.

    Returns
    -------
    list of FoldPlan

    Raises
    ------
    InputError
        Fewer runs than folds, a fold with no training sample left, or a training set spanning
        fewer runs than ``inner_folds``.
    """
    if int(inner_folds) != inner_folds or inner_folds < 2:
        raise InputError(f"inner_folds must be an integer >= 2, got {inner_folds!r}")
    folds = run_blocked_folds(data.runs, n_folds, stimulus_ids=data.stimulus_ids)
    return [
        _plan_fold(k, train, test, features, sample_rows, data, int(inner_folds), average_repeats)
        for k, (train, test) in enumerate(folds)
    ]


def _plan_fold(
    k: int,
    train: np.ndarray,
    test: np.ndarray,
    features: np.ndarray,
    sample_rows: np.ndarray,
    data: NeuralData,
    inner_folds: int,
    average_repeats: bool,
) -> FoldPlan:
    if train.size == 0:
        raise InputError(
            f"subject {data.subject}, outer fold {k}: every training sample shows a stimulus of the "
            f"test runs {np.unique(data.runs[test]).tolist()}; no training data is left"
        )
    train_average = test_average = None
    train_rep, test_rep = np.arange(train.size), np.arange(test.size)  # representative sample per row
    if average_repeats:
        train_rep, train_average = _averaging_operator(data.stimulus_ids[train])
        test_rep, test_average = _averaging_operator(data.stimulus_ids[test])

    n_train_runs = np.unique(data.runs[train]).size
    if n_train_runs < inner_folds:
        raise InputError(
            f"subject {data.subject}, outer fold {k}: the training set spans {n_train_runs} run(s), "
            f"fewer than inner_folds={inner_folds}"
        )
    try:
        inner_fold = run_blocks_by_stimulus(data.runs[train], data.stimulus_ids[train], inner_folds)[train_rep]
    except InputError as exc:
        raise InputError(f"subject {data.subject}, outer fold {k}, inner folds: {exc}") from exc
    inner_splits = [(np.flatnonzero(inner_fold != b), np.flatnonzero(inner_fold == b)) for b in range(inner_folds)]

    x_train = features[sample_rows[train][train_rep]]
    x_test = features[sample_rows[test][test_rep]]
    mean, scale = zscore_stats(x_train)
    return FoldPlan(
        train_samples=train,
        test_samples=test,
        train_average=train_average,
        test_average=test_average,
        test_ids=np.asarray(data.stimulus_ids)[test][test_rep],
        x_train=(x_train - mean) / scale,
        x_test=(x_test - mean) / scale,
        inner_splits=inner_splits,
    )


def fold_mean_scores(observed: np.ndarray, predicted: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-voxel Pearson r and R^2 of held-out predictions, each the mean of its outer folds' scores.

    Parameters
    ----------
    observed, predicted : ndarray of shape (n_rows, n_voxels)
        The test rows of every outer fold, fold after fold.
    offsets : ndarray of shape (n_folds + 1,)
        Fold ``k`` holds rows ``offsets[k]:offsets[k + 1]``.

    Returns
    -------
    r, r2 : ndarray of shape (n_voxels,)
        An r that is undefined in a fold (constant prediction or response, :mod:`oddoneout.scoring`)
        counts as 0 in the mean.
    """
    folds = [slice(start, stop) for start, stop in zip(offsets[:-1], offsets[1:])]
    r = np.mean([pearson(observed[fold], predicted[fold]) for fold in folds], axis=0)
    r2_mean = np.mean([r2(observed[fold], predicted[fold]) for fold in folds], axis=0)
    return r, r2_mean


def _averaging_operator(stimulus_ids: np.ndarray) -> tuple[np.ndarray, sp.csr_matrix]:
    """First sample of each distinct stimulus (sorted ids) and the ``(n_distinct, n_samples)`` averaging operator."""
    _, first, inverse, counts = np.unique(stimulus_ids, return_index=True, return_inverse=True, return_counts=True)
    n = len(stimulus_ids)
    operator = sp.csr_matrix((1.0 / counts[inverse], (inverse, np.arange(n))), shape=(len(counts), n))
    return first, operator


def _apply(average: sp.csr_matrix | None, values: np.ndarray) -> np.ndarray:
    return values if average is None else np.asarray(average @ values)
