"""The training loop shared by the triplet embedding estimators, and its parts.

:func:`minimise` runs epochs of minibatch steps, records the per-epoch history, applies the
plateau rule (learning-rate decay, then stopping), keeps the best epoch and notices divergence.
What is model-specific, the optimiser step on a minibatch and the end-of-epoch evaluation, comes
from a :class:`TrainingProblem` (:mod:`~oddoneout.embed.spose` and :mod:`~oddoneout.embed.vice`
each define one). The other helpers here are the pieces of a fit: the seeded validation split,
the triplets on the device, the minibatch order, the torch thread setting and the iterate average.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from oddoneout.embed.torch_choice import TrialTensors
from oddoneout.errors import InputError
from oddoneout.triplets import TrialSet

#: ``progress(epoch, max_epochs, metrics)``, called after every epoch.
ProgressCallback = Callable[[int, int, dict[str, float]], None]


# ---------------------------------------------------------------------- the data of a fit
@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Let torch use ``n_threads`` CPU threads inside the block (``None``: unchanged); restored on exit."""
    previous_threads = torch.get_num_threads()
    if n_threads is not None:
        torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous_threads)


def split_rows(n_triplets: int, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split of triplet rows into sorted training and validation rows.

    A positive ``validation_fraction`` holds out at least one triplet; at least one is left for training.
    """
    order = np.random.default_rng(seed).permutation(n_triplets)
    n_val = int(round(validation_fraction * n_triplets))
    if validation_fraction > 0:
        n_val = max(n_val, 1)
    if n_triplets - n_val < 1:
        raise InputError(f"too few triplets ({n_triplets}) for validation_fraction={validation_fraction}")
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def fold_rows(n_triplets: int, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded K-fold split of triplet rows: ``(training rows, held-out rows)`` per fold, each sorted.

    Every row is held out in exactly one fold.
    """
    if not isinstance(n_folds, (int, np.integer)) or not 2 <= n_folds <= n_triplets:
        raise InputError(f"n_folds must be an integer from 2 to the number of triplets, got {n_folds!r}")
    folds = np.array_split(np.random.default_rng(seed).permutation(n_triplets), n_folds)
    return [(np.sort(np.concatenate(folds[:k] + folds[k + 1 :])), np.sort(fold)) for k, fold in enumerate(folds)]


def trial_tensors(trials: TrialSet, rows: np.ndarray, use_soft: bool, device: torch.device) -> list[TrialTensors]:
    """The trials at ``rows`` on ``device``, one :class:`TrialTensors` per trial type present.

    Soft labels are float32, or ``None`` without ``use_soft``. An empty ``rows`` gives one empty
    part of the first trial type.
    """
    parts = trials.part_rows(rows) or [(0, np.zeros(0, dtype=np.int64))]
    tensors = []
    for k, local in parts:
        part = trials.parts[k]
        indices = torch.as_tensor(part.indices[local], device=device)
        targets = torch.as_tensor(part.probs[local], dtype=torch.float32, device=device) if use_soft else None
        tensors.append(TrialTensors(part.trial_type, indices, targets))
    return tensors


@dataclass
class TrainingData:
    """The trials of one fit on their device, and the seeded generator of its initialisation and minibatches.

    ``train`` and ``val`` hold one :class:`~oddoneout.embed.torch_choice.TrialTensors` per trial
    type (one for odd-one-out data). Training rows are numbered through the parts in order.
    """

    train: list[TrialTensors]
    val: list[TrialTensors]
    generator: torch.Generator
    n_items: int

    @classmethod
    def from_split(
        cls, trials: TrialSet, train_rows: np.ndarray, val_rows: np.ndarray, use_soft: bool, device: str, seed: int
    ) -> TrainingData:
        """The training and validation rows of ``trials`` on ``device``, and a CPU generator seeded by ``seed``."""
        where = torch.device(device)
        return cls(
            trial_tensors(trials, train_rows, use_soft, where),
            trial_tensors(trials, val_rows, use_soft, where),
            torch.Generator(device="cpu").manual_seed(int(seed)),
            trials.n_items,
        )

    @property
    def device(self) -> torch.device:
        """The device of the tensors."""
        return self.train[0].indices.device

    @property
    def n_train(self) -> int:
        """Number of training trials."""
        return sum(len(part) for part in self.train)

    @property
    def has_validation(self) -> bool:
        """Whether there are validation trials."""
        return sum(len(part) for part in self.val) > 0

    def train_batch(self, rows: torch.Tensor) -> list[TrialTensors]:
        """The training trials at ``rows`` (numbered through the parts), one entry per part they fall in."""
        if len(self.train) == 1:
            part = self.train[0]
            return [
                TrialTensors(part.trial_type, part.indices[rows], None if part.targets is None else part.targets[rows])
            ]
        batch, start = [], 0
        for part in self.train:
            local = rows[(rows >= start) & (rows < start + len(part))] - start
            start += len(part)
            if local.numel():
                targets = None if part.targets is None else part.targets[local]
                batch.append(TrialTensors(part.trial_type, part.indices[local], targets))
        return batch


def minibatches(
    n_train: int, batch_size: int, generator: torch.Generator, device: torch.device
) -> Iterator[torch.Tensor]:
    """Rows of one epoch in a random order drawn from ``generator``, in batches of ``batch_size``."""
    order = torch.randperm(n_train, generator=generator).to(device)
    for start in range(0, n_train, batch_size):
        yield order[start : start + batch_size]


# ---------------------------------------------------------------------- optimiser helpers
class IterateAverage:
    """Polynomial-decay average of optimiser iterates (Shamir & Zhang 2013, ICML).

    After the ``t``-th :meth:`update` since the start or the last :meth:`restart`, the average is
    ``(1 - r) * average + r * iterate`` with ``r = (eta + 1) / (t + eta)``: the first update copies
    the iterate, later ones weigh roughly the last ``1 / (eta + 1)`` of the iterates, so that the
    early, far-off ones are forgotten while the jitter of the recent ones averages out.

    Parameters
    ----------
    start : Tensor
        The initial average (copied).
    eta : float
        Decay of the weights of older iterates; 0 is the uniform average of all iterates.
    """

    def __init__(self, start: torch.Tensor, eta: float = 8.0):
        self.value = start.clone()
        self.eta = eta
        self.n_updates = 0

    def update(self, iterate: torch.Tensor) -> None:
        """Fold the next iterate into the average."""
        self.n_updates += 1
        self.value.lerp_(iterate, (self.eta + 1) / (self.n_updates + self.eta))

    def restart(self) -> None:
        """The next :meth:`update` copies its iterate: averaging starts afresh."""
        self.n_updates = 0


class PlateauSchedule:
    """Learning-rate decay on plateaus and the stopping rule, tracking the best epoch.

    A plateau is ``patience`` epochs since the last improvement of the monitored objective by more
    than ``tol`` (or since the last call of :meth:`hold`, or the last decay). At a plateau the
    learning rate of ``optimizer`` is multiplied by ``lr_decay``; after ``n_lr_decays`` decays the
    next plateau stops training.
    """

    IMPROVED, DECAYED, STOP, NONE = "improved", "decayed", "stop", "none"

    def __init__(self, optimizer: torch.optim.Optimizer, patience: int, tol: float, lr_decay: float, n_lr_decays: int):
        self.optimizer = optimizer
        self.patience = patience
        self.tol = tol
        self.lr_decay = lr_decay
        self.n_lr_decays = n_lr_decays
        self.best_loss = np.inf
        self.best_epoch = 0
        self.last_change = 0  # epoch of the last improvement, decay or hold
        self.n_decays = 0
        self.decay_epochs: list[int] = []

    def hold(self, epoch: int) -> None:
        """Something is still changing at ``epoch``: start counting a plateau afresh."""
        self.last_change = epoch

    def update(self, epoch: int, monitored: float) -> str:
        """Apply the rule to the monitored objective of ``epoch``; returns what happened.

        ``IMPROVED``: a new best epoch (the caller keeps its parameters); ``DECAYED``: the learning
        rate was decayed; ``STOP``: training should stop; ``NONE``: nothing.
        """
        if monitored < self.best_loss - self.tol:
            self.best_loss, self.best_epoch, self.last_change = monitored, epoch, epoch
            return self.IMPROVED
        if epoch - self.last_change >= self.patience:
            if self.n_decays == self.n_lr_decays:
                return self.STOP
            # Plateau: smaller steps reduce Adam's jitter and let the fit settle.
            return self.decay(epoch)
        return self.NONE

    def decay(self, epoch: int) -> str:
        """Multiply the learning rate by ``lr_decay`` at the end of ``epoch`` and record it; returns ``DECAYED``."""
        self.n_decays, self.last_change = self.n_decays + 1, epoch
        self.decay_epochs.append(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] *= self.lr_decay
        return self.DECAYED


@dataclass(frozen=True)
class Replay:
    """The schedule of a validated fit, to be run again on more triplets.

    Attributes
    ----------
    n_epochs : int
        Epochs to run: up to the validated fit's kept epoch (counted from its first epoch).
    decay_epochs : tuple of int
        Epochs (counted the same way) at whose end the learning rate was decayed.
    """

    n_epochs: int
    decay_epochs: tuple[int, ...]


class ReplaySchedule(PlateauSchedule):
    """A :class:`PlateauSchedule` that repeats a :class:`Replay` instead of watching the objective.

    The learning rate is decayed at the end of the replayed decay epochs, and the last epoch is
    the kept one, whatever the monitored objective does (there may be no held-out triplets).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, lr_decay: float, replay: Replay, first_epoch: int):
        super().__init__(optimizer, patience=0, tol=0.0, lr_decay=lr_decay, n_lr_decays=len(replay.decay_epochs))
        self.replay, self.first_epoch = replay, first_epoch

    def hold(self, epoch: int) -> None:
        pass

    def update(self, epoch: int, monitored: float) -> str:
        relative = epoch - self.first_epoch + 1
        if relative >= self.replay.n_epochs:
            self.best_loss, self.best_epoch = monitored, epoch
            return self.IMPROVED
        if relative in self.replay.decay_epochs:
            return self.decay(epoch)
        return self.NONE


def new_history(keys: Sequence[str]) -> dict[str, list[float]]:
    """Empty per-epoch history with an ``epoch`` column followed by ``keys``."""
    return {key: [] for key in ("epoch", *keys)}


def record_epoch(
    history: dict[str, list[float]],
    epoch: int,
    values: dict[str, float],
    progress: ProgressCallback | None,
    max_epochs: int,
    progress_keys: Sequence[str] | None = None,
) -> None:
    """Append ``values`` of ``epoch`` to ``history`` and report ``progress_keys`` of them (all if ``None``)."""
    history["epoch"].append(epoch)
    for key, value in values.items():
        history[key].append(value)
    if progress is not None:
        metrics = values if progress_keys is None else {key: values[key] for key in progress_keys}
        progress(epoch, int(max_epochs), metrics)


# ---------------------------------------------------------------------- the loop
@dataclass(frozen=True)
class LoopSettings:
    """The estimator parameters that drive :func:`minimise` (see the estimators' docstrings)."""

    max_epochs: int
    batch_size: int
    patience: int
    tol: float
    lr_decay: float
    n_lr_decays: int


@dataclass
class EpochReport:
    """What a :class:`TrainingProblem` says about the epoch just finished.

    Attributes
    ----------
    values : dict
        The epoch's row of the history (its column names, in order).
    monitored : float
        The objective that decides plateaus and the kept epoch (lower is better).
    finite : bool
        False when the fit diverged: the loop stops and keeps the best epoch so far.
    hold : bool
        Something other than the objective is still changing: not a plateau.
    candidate : bool
        Whether the epoch may be kept and counts for the plateau rule (``False`` e.g. during a
        warm-up; such epochs also hold the plateau count).
    """

    values: dict[str, float]
    monitored: float
    finite: bool
    hold: bool = False
    candidate: bool = True


class TrainingProblem:
    """The model-specific half of :func:`minimise`: the parameters, their optimiser and step, the evaluation.

    Attributes
    ----------
    optimizer : torch.optim.Optimizer
        Its learning rate is decayed at plateaus.
    progress_keys : tuple of str or None
        History columns passed to the progress callback (``None``: all).
    """

    optimizer: torch.optim.Optimizer
    progress_keys: tuple[str, ...] | None = None

    def step(self, batch: list[TrialTensors]) -> torch.Tensor:
        """One optimiser step on a minibatch (one part per trial type); returns its mean data loss
        (a detached 0-d tensor)."""
        raise NotImplementedError

    def end_epoch(self, train_loss: float) -> EpochReport:
        """Evaluate the estimate after an epoch whose mean training data loss was ``train_loss``."""
        raise NotImplementedError

    def snapshot(self) -> Any:
        """A copy of the current estimate (what is kept at the best epoch)."""
        raise NotImplementedError

    def after_decay(self) -> None:
        """Called after the learning rate was decayed at a plateau (nothing by default)."""


@dataclass
class TrainingResult:
    """Outcome of :func:`minimise`.

    Attributes
    ----------
    best : Any
        :meth:`TrainingProblem.snapshot` of the best epoch (of the start if none was kept).
    last_epoch : int
        The last epoch run.
    best_epoch : int
        The kept epoch; 0 if none was kept because the fit diverged first.
    replay : Replay
        The schedule that led to the kept epoch (for a refit on more triplets).
    """

    best: Any
    last_epoch: int
    best_epoch: int
    replay: Replay


def minimise(
    problem: TrainingProblem,
    data: TrainingData,
    settings: LoopSettings,
    history: dict[str, list[float]],
    progress: ProgressCallback | None = None,
    first_epoch: int = 1,
    replay: Replay | None = None,
) -> TrainingResult:
    """Train ``problem`` on ``data.train`` for at most ``settings.max_epochs`` epochs.

    Every epoch visits the training triplets once, in minibatches of a random order drawn from
    ``data.generator``, then appends the problem's :class:`EpochReport` values to ``history``
    (epochs numbered from ``first_epoch``) and reports them to ``progress``. A non-finite epoch
    ends training. Otherwise the :class:`PlateauSchedule` decides from the monitored objective
    whether the epoch is the best so far (its :meth:`~TrainingProblem.snapshot` is kept), a
    plateau (the learning rate decays) or the end. If training ended before any candidate epoch
    (``max_epochs`` within a warm-up), the last estimate is kept. With ``replay`` the schedule of
    an earlier fit is repeated instead (:class:`ReplaySchedule`): its number of epochs, its
    decays, its last epoch kept.
    """
    if replay is None:
        schedule = PlateauSchedule(
            problem.optimizer, settings.patience, settings.tol, settings.lr_decay, settings.n_lr_decays
        )
        n_epochs = int(settings.max_epochs)
    else:
        schedule = ReplaySchedule(problem.optimizer, settings.lr_decay, replay, first_epoch)
        n_epochs = replay.n_epochs
    best = problem.snapshot()
    epoch = first_epoch - 1
    report: EpochReport | None = None
    for epoch in range(first_epoch, first_epoch + n_epochs):
        summed_loss = torch.zeros((), device=data.device)
        for rows in minibatches(data.n_train, int(settings.batch_size), data.generator, data.device):
            summed_loss += problem.step(data.train_batch(rows)) * rows.shape[0]
        report = problem.end_epoch(float(summed_loss) / data.n_train)
        record_epoch(history, epoch, report.values, progress, n_epochs, problem.progress_keys)
        if not report.finite:
            break  # the best epoch so far is kept; the caller reports a fit with none
        if report.hold or not report.candidate:
            schedule.hold(epoch)
        if not report.candidate:
            continue
        outcome = schedule.update(epoch, report.monitored)
        if outcome == schedule.IMPROVED:
            best = problem.snapshot()
        elif outcome == schedule.DECAYED:
            problem.after_decay()
        elif outcome == schedule.STOP:
            break
    best_epoch = schedule.best_epoch
    if best_epoch == 0 and report is not None and report.finite and not report.candidate:
        best_epoch, best = epoch, problem.snapshot()
    decays = tuple(e - first_epoch + 1 for e in schedule.decay_epochs if e < best_epoch)
    return TrainingResult(best, epoch, best_epoch, Replay(max(best_epoch - first_epoch + 1, 0), decays))
