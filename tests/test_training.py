"""The shared training loop on a scripted problem: best epoch, plateau decays and stopping, divergence, warm-up,
the replay of a schedule."""

from __future__ import annotations

import math

import torch

from oddoneout.embed.torch_choice import TrialTensors
from oddoneout.embed.training import (
    EpochReport,
    LoopSettings,
    Replay,
    TrainingData,
    TrainingProblem,
    minimise,
    new_history,
)
from oddoneout.triplets import ODD_ONE_OUT


class Scripted(TrainingProblem):
    """Reports a given sequence of monitored values; the 'estimate' is the epoch number."""

    def __init__(self, monitored: list[float], warmup: int = 0) -> None:
        self.parameter = torch.zeros(1, requires_grad=True)
        self.optimizer = torch.optim.SGD([self.parameter], lr=1.0)
        self.monitored, self.warmup = monitored, warmup
        self.epoch = self.n_steps = self.n_decays_seen = 0

    def step(self, batch):
        self.n_steps += 1
        return torch.tensor(0.5)

    def end_epoch(self, train_loss):
        value = self.monitored[self.epoch]
        self.epoch += 1
        return EpochReport(
            {"train_loss": train_loss, "monitored": value},
            value,
            finite=math.isfinite(value),
            candidate=self.epoch > self.warmup,
        )

    def snapshot(self):
        return self.epoch

    def after_decay(self):
        self.n_decays_seen += 1


def _data(n_train: int = 10) -> TrainingData:
    indices = torch.zeros((n_train, 3), dtype=torch.int64)
    train, val = [TrialTensors(ODD_ONE_OUT, indices)], [TrialTensors(ODD_ONE_OUT, indices[:0])]
    return TrainingData(train, val, torch.Generator().manual_seed(0), 3)


def _settings(**changes) -> LoopSettings:
    defaults = {"max_epochs": 50, "batch_size": 4, "patience": 2, "tol": 0.0, "lr_decay": 0.5, "n_lr_decays": 1}
    return LoopSettings(**{**defaults, **changes})


def _history() -> dict[str, list[float]]:
    return new_history(("train_loss", "monitored"))


def test_keeps_the_best_epoch_decays_then_stops():
    problem = Scripted([3.0, 2.0, 1.0, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5])
    history = _history()
    result = minimise(problem, _data(), _settings(), history)
    assert (result.best, result.best_epoch) == (3, 3)
    # plateau at epoch 5 decays the learning rate; the next one (epoch 7) stops
    assert problem.n_decays_seen == 1 and problem.optimizer.param_groups[0]["lr"] == 0.5
    assert result.last_epoch == 7 and history["epoch"] == list(range(1, 8))
    assert problem.n_steps == 7 * 3  # 10 triplets in batches of 4
    assert history["train_loss"] == [0.5] * 7


def test_divergence_stops_and_keeps_the_best_epoch_so_far():
    result = minimise(Scripted([2.0, 1.0, float("nan"), 0.1]), _data(), _settings(), _history())
    assert (result.best, result.best_epoch, result.last_epoch) == (2, 2, 3)
    first = minimise(Scripted([float("inf"), 1.0]), _data(), _settings(), _history())
    assert (first.best, first.best_epoch) == (0, 0)  # nothing kept: the start is returned


def test_warm_up_epochs_are_not_kept_unless_training_ends_within_them():
    result = minimise(Scripted([0.1, 0.2, 5.0, 4.0], warmup=2), _data(), _settings(max_epochs=4), _history())
    assert result.best_epoch == 4  # epochs 1-2 had lower values but were warm-up
    cut = minimise(Scripted([0.1, 0.2, 5.0], warmup=3), _data(), _settings(max_epochs=2), _history())
    assert (cut.best, cut.best_epoch) == (2, 2)


def test_epochs_are_numbered_from_first_epoch():
    history = _history()
    result = minimise(Scripted([1.0, 0.5]), _data(), _settings(max_epochs=2), history, first_epoch=11)
    assert history["epoch"] == [11, 12] and (result.best_epoch, result.last_epoch) == (12, 12)


def test_a_fit_returns_its_schedule_and_a_replay_repeats_it_whatever_the_objective():
    # best at 3, plateau decay at 5, new best at 6, stop at 8
    monitored = [3.0, 2.0, 1.5, 1.5, 1.5, 1.0, 1.0, 1.0, 1.0, 1.0]
    result = minimise(Scripted(monitored), _data(), _settings(), _history())
    assert (result.best_epoch, result.last_epoch) == (6, 8)
    assert result.replay == Replay(n_epochs=6, decay_epochs=(5,))
    # a decay after the kept epoch is not part of the schedule that led to it
    early = minimise(Scripted([3.0, 2.0, 1.0, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5]), _data(), _settings(), _history())
    assert early.replay == Replay(n_epochs=3, decay_epochs=())

    problem, history = Scripted([9.0, 8.0, 7.0, 9.0, 9.5, 9.9, 0.1]), _history()
    replayed = minimise(problem, _data(), _settings(), history, first_epoch=11, replay=result.replay)
    assert history["epoch"] == list(range(11, 17))  # six epochs, however the objective moves
    assert (replayed.best, replayed.best_epoch, replayed.last_epoch) == (6, 16, 16)  # the last one kept
    assert problem.n_decays_seen == 1 and problem.optimizer.param_groups[0]["lr"] == 0.5
    assert replayed.replay == result.replay


def test_a_replay_within_the_warm_up_keeps_the_last_epoch():
    replayed = minimise(Scripted([1.0, 2.0, 3.0], warmup=3), _data(), _settings(), _history(), replay=Replay(2, ()))
    assert (replayed.best, replayed.best_epoch) == (2, 2)
