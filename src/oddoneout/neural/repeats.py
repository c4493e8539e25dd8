"""Repeated samples of a stimulus: counting and averaging them.

Three modes, used by the loaders (``repeats=``):

``"keep"``
    Every sample as stored (for noise ceilings: each row one presentation).
``"run"``
    Samples of the same stimulus in the same run averaged into one: one sample per
    presentation when a file stores several volumes per presentation (and a stimulus
    is shown at most once per run).
``"average"``
    All samples of a stimulus averaged into one.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from oddoneout.errors import InputError
from oddoneout.neural.data import NeuralData

REPEAT_MODES = ("average", "keep", "run")


def repeat_counts(stimulus_ids: np.ndarray) -> dict[str, int]:
    """Number of samples of each stimulus, in order of first appearance."""
    stimulus_ids = np.asarray(stimulus_ids).astype(str)
    unique, first, counts = np.unique(stimulus_ids, return_index=True, return_counts=True)
    order = np.argsort(first, kind="stable")
    return {str(unique[i]): int(counts[i]) for i in order}


def group_sums(values: np.ndarray, groups: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Row sums of ``values`` per group (``groups`` in ``range(len(counts))``), in float64.

    Sorting and ``np.add.reduceat`` is much faster than ``np.add.at`` on wide arrays.
    """
    order = np.argsort(groups, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.add.reduceat(np.asarray(values, dtype=np.float64)[order], starts, axis=0)


def average_repeats(neural: NeuralData, *, within_runs: bool = False) -> NeuralData:
    """Average the samples of each stimulus (or of each stimulus within each run) into one.

    The averaged sample takes the place (order) of the group's first sample and that
    sample's run, so run-blocked folds stay defined. When samples were merged,
    ``metadata["n_repeats"]`` holds the number averaged into each sample.

    Parameters
    ----------
    neural : NeuralData
    within_runs : bool
        Group by (stimulus, run) instead of by stimulus.

    Returns
    -------
    NeuralData
        One row per group; the same voxels, ROIs, coordinates and affine.
    """
    mode = "run" if within_runs else "average"
    metadata = dict(neural.metadata)
    metadata["repeats"] = mode
    keys = neural.stimulus_ids
    if within_runs:
        keys = np.char.add(np.char.add(keys, "\x00"), neural.runs.astype(str))
    _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    if counts.max(initial=0) <= 1:
        return replace(neural, rois=dict(neural.rois), metadata=metadata)
    sums = group_sums(neural.responses, inverse, counts)
    order = np.argsort(first, kind="stable")
    metadata["n_repeats"] = counts[order].tolist()
    return replace(
        neural,
        responses=(sums / counts[:, None])[order],
        stimulus_ids=neural.stimulus_ids[first[order]],
        runs=neural.runs[first[order]],
        rois=dict(neural.rois),
        metadata=metadata,
    )


def apply_repeat_mode(neural: NeuralData, repeats: str) -> NeuralData:
    """Apply a mode of :data:`REPEAT_MODES` (see the module docstring)."""
    if repeats not in REPEAT_MODES:
        raise InputError(f"repeats must be one of {REPEAT_MODES}, got {repeats!r}")
    if repeats != "keep":
        return average_repeats(neural, within_runs=repeats == "run")
    metadata = dict(neural.metadata)
    metadata["repeats"] = "keep"
    return replace(neural, rois=dict(neural.rois), metadata=metadata)
