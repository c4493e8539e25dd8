"""Cross-validation folds made of contiguous blocks of runs."""

from __future__ import annotations

import numpy as np

from oddoneout.errors import InputError


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
