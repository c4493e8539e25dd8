"""SPoSE: sparse positive similarity embedding learned from odd-one-out triplets.

Model (Zheng et al. 2019, ICLR; Hebart et al. 2020, Nature Human Behaviour)
--------------------------------------------------------------------------
Every item ``i`` has a non-negative vector ``w_i``. For a triplet ``(a, b, c)`` the pair
kept together is modelled as a softmax over the three pair dot products, so the
probability that the item in column ``p`` is the odd one out is the softmax of the
similarity of the *other* pair: column 2 (the observed odd one out) goes with ``w_a . w_b``.
The objective, per minibatch, is

    mean cross-entropy  +  (l1 / n_items) * sum_{i, d} |W[i, d]|

the normalisation of the original implementation: the L1 norm of the whole items x dims
matrix divided by the number of items (``lambda / n_objects * l1_pen``), added to the *mean*
(not summed) cross-entropy of the batch. The penalty is thus independent of batch size and
of the number of triplets; ``l1`` is comparable to the published ``lambda`` (0.004-0.008).

Differences from the original code, on purpose
-----------------------------------------------
- Item vectors are looked up by index (``W[indices]``), not by one-hot matrix products, and
  the minibatch gradient is computed in closed form (:func:`add_cross_entropy_gradient`), with
  no autograd graph.
- Non-negativity is exact: weights are projected onto ``W >= 0`` (clamped) after every
  optimiser step, instead of a soft penalty on negative weights followed by ``abs()``.
  Because ``W >= 0``, the L1 term is simply ``W.sum()``.
- The softmax uses ``log_softmax`` (numerically stable).
- Large minibatches with Adam at a larger learning rate (defaults: batch 2048, lr 0.05)
  instead of batch 100 / lr 0.001 for a fixed 500 epochs (see below), and the estimate is the
  average of the iterates, not the last one (see "Iterate averaging").
- Ties in accuracy are split, not counted as errors (see :mod:`oddoneout.embed.evaluate`).

Optimisation and convergence
----------------------------
The estimate is the minimiser of the penalised objective on the *training* triplets, not an
early iterate. Each epoch records the mean training cross-entropy plus the L1 penalty (the
objective being minimised), the number of alive dimensions (largest weight above
``prune_threshold``) and, on a seeded ``validation_fraction`` of the triplets, the held-out
cross-entropy and accuracy. A *plateau* is ``patience`` epochs during which the monitored
objective has not improved by ``tol`` **and** the number of alive dimensions has not changed.
At a plateau the learning rate is multiplied by ``lr_decay``; after ``n_lr_decays`` decays the
next plateau stops training (or ``max_epochs`` does). The weights of the epoch with the lowest
monitored objective are kept. Reducing Adam's step lets the weights settle instead of
jittering around the optimum at a size of about ``lr``.

Why not early stopping on the validation loss (``monitor="validation"``, the behaviour of
earlier versions, still available)? Early stopping is a second regulariser that competes
with the L1 penalty: on noisy data with a weak ``l1`` the held-out loss is lowest after one
or two epochs, long before the penalty has removed any dimension, so the kept iterate was
dense (e.g. all 100 initial dimensions on 500 items x 135k triplets at ``l1 = 0.005``,
validation optimum at epoch 1) and its number of dimensions reflected when training stopped
rather than the data. With ``monitor="train"`` the sparsity is a property of ``l1`` alone,
and held-out data does what it is meant for: choosing ``l1``
(:func:`oddoneout.embed.selection.select_l1`) and the seed
(:func:`oddoneout.embed.seeds.fit_seeds`). Counting the alive dimensions in the plateau rule
keeps the fit going while the penalty is still merging and removing dimensions, even if the
objective moves by less than ``tol`` per epoch.

Iterate averaging
-----------------
With a constant step, Adam's iterate does not converge: it jitters around the optimum, and with
sparse item look-ups (each item is in a few triplets of a batch) the jitter is large. Measured on
2,180 items x 900k triplets (30 planted dimensions): at lr 0.05 the iterate's held-out accuracy
sat at 44 % for ten epochs and only reached 47.3 % after the first plateau decay of the learning
rate (epoch 17). The estimate is therefore the *polynomial-decay average* of the projected
iterates (Shamir & Zhang 2013, ICML): after step ``t``,
``W_bar = (1 - r) * W_bar + r * W`` with ``r = (eta + 1) / (t + eta)``, ``eta = 8``, i.e. a
running average over roughly the last ``1 / (eta + 1)`` of the steps, so early iterates are
forgotten while the noise of the recent ones averages out. The same fit reached 47.2 % after
three epochs and ended at 47.75 % (the last iterate's fit: 47.36 %; generating model 47.68 %).
The average is what is validated, counted (alive dimensions, penalty), kept and returned;
``train_loss`` is the mean minibatch loss of the iterates. At every learning-rate decay the
iterate is set to the average and the average restarts: the smaller steps go on from the better
point and are averaged alone. ``averaging=False`` returns the iterate itself (the behaviour of
earlier versions).

Penalty warm-up
---------------
``W = 0`` is a local minimum of the penalised objective for every ``l1 > 0``: the
cross-entropy is flat there (all similarities 0) while the penalty pushes every weight down.
From the small initial weights (0.1) the data gradient of a weight is smaller than
``l1 / n_items`` for moderate ``l1``, and Adam, which normalises the gradient, then moves every
weight down by about ``lr`` per step: the whole embedding collapsed to zero early in
training (e.g. ``l1 = 0.05`` on 60 items, ``l1 = 0.03`` on 500 items, where the planted embedding
has a much lower penalised objective). The penalty is therefore ramped in linearly over the
first ``l1_warmup`` epochs, so the data structure forms before the penalty prunes; these
epochs are never plateaus nor kept. On 60 items / 60k triplets, ``l1`` from 0.02 to 0.1 then
all give the 6 true dimensions instead of 6 at 0.02 and 0 above.

Measured with the defaults on 200k synthetic triplets (150 items, 6 true sparse
dimensions; one torch thread on a busy 2-core machine): 84 epochs, exactly the 6 true
dimensions, held-out accuracy 73.66 % against the generating model's 73.63 %, every true
dimension matched at r > 0.99. With about 1,000 triplets per item a weak ``l1 = 0.005``
overfits and keeps 9-20 dimensions (noise-fitting dimensions with a few items each), while
``l1 = 0.01``-``0.02`` gives the true 6 on sparse embeddings; choose ``l1`` on held-out data
with :func:`oddoneout.embed.selection.select_l1` (one-standard-error rule).

Relaxed refit
-------------
The L1 penalty does two jobs: it chooses which weights are non-zero (and so how many
dimensions survive), and it shrinks the surviving weights towards zero. The shrinkage costs
held-out loss, and a selection of ``l1`` by held-out loss then prefers a weaker penalty that
keeps extra, noise-fitting dimensions. With ``relax=True`` the penalised fit is followed by a
refit of its non-zero weights without the penalty (zeros and pruned dimensions stay at zero;
the relaxed lasso of Meinshausen 2007), early-stopped on the validation loss: the penalty
decides the support, the data alone the sizes. Measured on dense planted embeddings with
weakly informative choices (60 items, 6 true dimensions, 60k triplets): held-out selection
over ``l1`` picked 7 dimensions from the penalised fits and the true 6 from the relaxed ones.

Items without training data
---------------------------
An item in ``triplets.item_ids`` that appears in no training triplet has no data term;
the L1 prior alone would shrink it to zero, and the fit sets it to exactly zero. Such an
item is predicted as similar to nothing (all its pair similarities are 0). Their ids are in
``unseen_item_ids_``.

Determinism
-----------
Initialisation, the validation split and the minibatch order all come from ``seed``
(a private ``torch.Generator`` and numpy ``Generator``; global RNG state is untouched), so
two fits with the same seed and data give identical weights on CPU. On CUDA, the
scatter-add in the embedding gradient may make results differ in the last bits.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from oddoneout.embed.estimator import (
    EVAL_CHUNK,
    IterateAverage,
    PlateauSchedule,
    ProgressCallback,
    TripletEmbeddingEstimator,
    is_count,
    is_positive_float,
    is_positive_int,
    minibatches,
    new_history,
    record_epoch,
    triplet_tensors,
)
from oddoneout.embed.evaluate import odd_one_out_accuracy
from oddoneout.triplets import Triplets, odd_one_out_probabilities


@dataclass
class _TrainingData:
    """The triplets of one fit on its device, and the generator of the minibatch order."""

    train_idx: torch.Tensor
    train_targets: torch.Tensor | None
    val_idx: torch.Tensor
    val_targets: torch.Tensor | None
    generator: torch.Generator


def pair_logits(weights: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Similarity of the pair that remains when each column is removed.

    Parameters
    ----------
    weights : Tensor of shape (n_items, n_dims)
    indices : Tensor of shape (n, 3), int64

    Returns
    -------
    Tensor of shape (n, 3)
        Column ``p`` is the dot product of the two items other than column ``p``; its
        softmax is the probability that column ``p`` is the odd one out.
    """
    a, b, c = weights[indices[:, 0]], weights[indices[:, 1]], weights[indices[:, 2]]
    return torch.stack([(b * c).sum(1), (a * c).sum(1), (a * b).sum(1)], dim=1)


def triplet_cross_entropy(logits: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy of the odd-one-out choice.

    Parameters
    ----------
    logits : Tensor of shape (n, 3)
        Output of :func:`pair_logits`.
    targets : Tensor of shape (n, 3), optional
        Soft labels; ``None`` means the hard choice, column 2.
    """
    log_probs = F.log_softmax(logits, dim=1)
    if targets is None:
        return -log_probs[:, 2].mean()
    return -(targets * log_probs).sum(1).mean()


def add_cross_entropy_gradient(
    weights: torch.Tensor, indices: torch.Tensor, targets: torch.Tensor | None, grad: torch.Tensor
) -> torch.Tensor:
    """Add the gradient of the mean cross-entropy of a minibatch to ``grad``; return the loss.

    The closed form of what autograd computes for
    ``triplet_cross_entropy(pair_logits(weights, indices), targets)``, without its graph: with
    ``g = softmax(logits) - targets`` (divided by the batch size), the gradient of item ``a`` of a
    triplet ``(a, b, c)`` is ``g[1] * w_c + g[2] * w_b`` (``a`` is in the pairs of columns 1 and
    2), and likewise for ``b`` and ``c``. The three item blocks are gathered with one look-up and
    scattered back with one ``index_add_``; this roughly halves the time of a training step.

    Parameters
    ----------
    weights : Tensor of shape (n_items, n_dims)
    indices : Tensor of shape (n, 3), int64
    targets : Tensor of shape (n, 3), optional
        Soft labels; ``None`` means the hard choice, column 2.
    grad : Tensor of shape (n_items, n_dims)
        Accumulator, updated in place.

    Returns
    -------
    Tensor
        The mean cross-entropy of the batch (a 0-d tensor).
    """
    n, n_dims = indices.shape[0], weights.shape[1]
    flat = indices.T.reshape(-1)  # all a's, then all b's, then all c's
    rows = weights.index_select(0, flat).view(3, n, n_dims)
    a, b, c = rows[0], rows[1], rows[2]
    logits = torch.stack([(b * c).sum(1), (a * c).sum(1), (a * b).sum(1)], dim=1)
    log_probs = F.log_softmax(logits, dim=1)
    g = log_probs.exp()
    if targets is None:
        loss = -log_probs[:, 2].mean()
        g[:, 2] -= 1.0
    else:
        loss = -(targets * log_probs).sum(1).mean()
        g -= targets
    g /= n
    g0, g1, g2 = g[:, 0:1], g[:, 1:2], g[:, 2:3]
    row_grads = torch.empty_like(rows)
    torch.addcmul(c * g1, b, g2, out=row_grads[0])
    torch.addcmul(c * g0, a, g2, out=row_grads[1])
    torch.addcmul(b * g0, a, g1, out=row_grads[2])
    grad.index_add_(0, flat, row_grads.view(-1, n_dims))
    return loss


class SPoSE(TripletEmbeddingEstimator):
    """Sparse positive similarity embedding (SPoSE) estimator.

    Parameters
    ----------
    n_dims : int
        Initial number of dimensions; the L1 penalty and pruning leave fewer.
    l1 : float
        Sparsity strength ``lambda``; the penalty is ``(l1 / n_items) * ||W||_1``.
    lr : float
        Adam learning rate.
    batch_size : int
        Triplets per optimiser step.
    max_epochs : int
        Upper limit on passes over the training triplets.
    patience : int
        Epochs without an improvement of the monitored objective larger than ``tol``, and
        without a change in the number of alive dimensions, that count as a plateau.
    lr_decay : float
        Factor applied to the learning rate at a plateau, in (0, 1].
    n_lr_decays : int
        Plateaus met by a learning-rate decay; the next one stops training.
    validation_fraction : float
        Share of the triplets held out for early stopping, in [0, 1). With 0 the
        training cross-entropy is monitored instead (and validation metrics are NaN).
    tol : float
        Minimum decrease of the monitored objective that counts as an improvement.
    l1_warmup : int
        Epochs over which the penalty is ramped in linearly from 0 (per step); 0 applies it
        fully from the start. See "Penalty warm-up" in the module docstring.
    monitor : {"train", "validation"}
        Objective that decides plateaus and the kept epoch: ``"train"`` (default) the mean
        training cross-entropy + L1 penalty, i.e. the objective being minimised;
        ``"validation"`` the validation cross-entropy + L1 penalty (early stopping; see the
        module docstring for why it is not the default). With ``validation_fraction = 0``
        both monitor the training objective.
    prune_threshold : float
        After fitting, a dimension whose largest weight is ``<= prune_threshold`` is dropped.
    relax : bool
        After the penalised fit, refit the non-zero weights of the alive dimensions without the
        penalty, keeping every other weight at zero (the relaxed lasso; see "Relaxed refit" in
        the module docstring). The refit is early-stopped on the validation loss.
    averaging : bool
        Return (and validate, and keep the best of) the polynomial-decay average of the iterates
        instead of the last iterate; see "Iterate averaging" in the module docstring.
    soft_labels : bool
        Fit the soft labels ``triplets.probs`` when present; otherwise the hard choices.
    init_mean, init_std : float
        Initial weights are normal(``init_mean``, ``init_std``), clamped at 0 (as the
        original SPoSE: mean 0.1, std 0.01).
    device : str
        Torch device, e.g. ``"cpu"`` or ``"cuda"``.
    n_threads : int or None
        CPU threads torch may use during :meth:`fit` (restored afterwards); ``None`` keeps
        torch's setting. The default 1 is deliberate: the per-step tensors are small, so
        more threads gain little, and on a busy machine torch's spinning worker threads
        made fits 10-20 times slower in our measurements.
    seed : int
        Seed of the initialisation, the validation split and the minibatch order.
    progress : callable, optional
        ``progress(epoch, max_epochs, metrics)`` after each epoch, with metrics
        ``train_loss``, ``val_loss``, ``val_accuracy`` and ``n_alive_dims``.

    Attributes
    ----------
    weights_ : ndarray of shape (n_items, n_kept_dims)
        Non-negative weights, dimensions sorted by decreasing L1 norm, dead ones removed.
    item_ids_ : tuple of str
        Row ids of ``weights_`` (the vocabulary of the fitted triplets).
    unseen_item_ids_ : tuple of str
        Items with no training triplet (their weights are zero).
    history_ : dict of lists
        Per epoch: ``epoch``, ``train_loss`` (mean training cross-entropy),
        ``l1_penalty`` (``(l1 / n_items) * ||W||_1`` at the end of the epoch),
        ``val_loss`` (validation cross-entropy against the hard choices, or soft labels
        when they are fitted), ``val_accuracy`` (tie rule ``"split"``) and
        ``n_alive_dims`` (dimensions whose largest weight exceeds ``prune_threshold``) and
        ``monitored`` (the objective that decides plateaus, see ``monitor``).
    n_epochs_ : int
        Epochs run (both phases when ``relax``).
    relaxed_from_epoch_ : int or None
        First epoch of the relaxed refit in ``history_`` (``None`` without ``relax``).
    best_epoch_ : int
        Epoch whose weights were kept (lowest monitored objective).
    """

    def __init__(
        self,
        n_dims: int = 100,
        l1: float = 0.005,
        lr: float = 0.05,
        batch_size: int = 2048,
        max_epochs: int = 500,
        patience: int = 10,
        lr_decay: float = 0.2,
        n_lr_decays: int = 2,
        validation_fraction: float = 0.1,
        tol: float = 1e-4,
        monitor: str = "train",
        l1_warmup: int = 5,
        prune_threshold: float = 0.1,
        relax: bool = False,
        averaging: bool = True,
        soft_labels: bool = True,
        init_mean: float = 0.1,
        init_std: float = 0.01,
        device: str = "cpu",
        n_threads: int | None = 1,
        seed: int = 0,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.n_dims = n_dims
        self.l1 = l1
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.lr_decay = lr_decay
        self.n_lr_decays = n_lr_decays
        self.validation_fraction = validation_fraction
        self.tol = tol
        self.monitor = monitor
        self.l1_warmup = l1_warmup
        self.prune_threshold = prune_threshold
        self.relax = relax
        self.averaging = averaging
        self.soft_labels = soft_labels
        self.init_mean = init_mean
        self.init_std = init_std
        self.device = device
        self.n_threads = n_threads
        self.seed = seed
        self.progress = progress

    _method = "spose"
    _final_keys = ("train_loss", "val_loss", "val_accuracy", "l1_penalty")

    def _check_params(self) -> None:
        self._raise_invalid(
            {
                "n_dims": is_positive_int(self.n_dims),
                "l1": np.isfinite(self.l1) and self.l1 >= 0,
                **self._optimisation_checks(),
                "monitor": self.monitor in ("train", "validation"),
                "l1_warmup": is_count(self.l1_warmup),
                "prune_threshold": np.isfinite(self.prune_threshold) and self.prune_threshold >= 0,
                "relax": isinstance(self.relax, (bool, np.bool_)),
                "averaging": isinstance(self.averaging, (bool, np.bool_)),
                "init_mean": is_positive_float(self.init_mean),
                "init_std": np.isfinite(self.init_std) and self.init_std >= 0,
                "n_threads": self.n_threads is None or is_positive_int(self.n_threads),
            }
        )

    def _train(
        self, triplets: Triplets, train_rows: np.ndarray, val_rows: np.ndarray, use_soft: bool
    ) -> tuple[np.ndarray, dict[str, list[float]], int, int]:
        """Adam with projection and the plateau rule (then the relaxed refit); the best weights and the history."""
        device = torch.device(self.device)
        generator = torch.Generator(device="cpu").manual_seed(int(self.seed))
        data = _TrainingData(
            *triplet_tensors(triplets, train_rows, use_soft, device),
            *triplet_tensors(triplets, val_rows, use_soft, device),
            generator,
        )
        n_items = triplets.n_items
        init = torch.empty(n_items, int(self.n_dims)).normal_(self.init_mean, self.init_std, generator=generator)
        history = new_history(("train_loss", "l1_penalty", "val_loss", "val_accuracy", "n_alive_dims", "monitored"))
        has_validation = data.val_idx.shape[0] > 0
        weights, last_epoch, best_epoch = self._optimise(
            init.clamp_(min=0.0).to(device),
            data,
            history,
            lr=self.lr,
            penalty_scale=self.l1 / n_items,
            warmup_epochs=int(self.l1_warmup),
            use_validation=self.monitor == "validation" and has_validation,
        )
        if best_epoch == 0:
            raise RuntimeError(f"SPoSE training diverged (non-finite loss at lr {self.lr}); try a smaller lr")
        self.relaxed_from_epoch_ = None
        if self.relax:
            alive = weights.max(dim=0).values > self.prune_threshold
            support = (weights > 0) & alive
            self.relaxed_from_epoch_ = last_epoch + 1
            # The refit starts at the penalised optimum, so at the step size of the first decay.
            weights, last_epoch, relaxed_best = self._optimise(
                weights * support,
                data,
                history,
                lr=self.lr * self.lr_decay,
                penalty_scale=0.0,
                warmup_epochs=0,
                use_validation=has_validation,
                support=support,
                first_epoch=last_epoch + 1,
            )
            best_epoch = relaxed_best or best_epoch  # a refit that diverged keeps the penalised weights
        return weights.cpu().numpy().astype(np.float64), history, last_epoch, best_epoch

    def _optimise(
        self,
        weights: torch.Tensor,
        data: _TrainingData,
        history: dict[str, list[float]],
        lr: float,
        penalty_scale: float,
        warmup_epochs: int,
        use_validation: bool,
        support: torch.Tensor | None = None,
        first_epoch: int = 1,
    ) -> tuple[torch.Tensor, int, int]:
        """Minimise cross-entropy + ``penalty_scale * W.sum()`` over ``W >= 0`` (and ``W = 0`` off ``support``).

        Epochs are numbered from ``first_epoch`` and appended to ``history``. Returns the
        weights of the best epoch, the last epoch and the best epoch (0 if none was kept, e.g. the
        loss diverged first: then the starting weights are returned).
        """
        weights = weights.clone()
        weights.grad = torch.zeros_like(weights)
        optimizer = torch.optim.Adam([weights], lr=lr, fused=True)
        schedule = PlateauSchedule(optimizer, self.patience, self.tol, self.lr_decay, self.n_lr_decays)
        batch_size = int(self.batch_size)
        # The estimate: the projected iterate, or its average (see "Iterate averaging").
        average = IterateAverage(weights) if self.averaging else None
        estimate = weights if average is None else average.value
        best_weights = weights.clone()
        previous_alive = -1
        n_train = data.train_idx.shape[0]
        warmup_steps = warmup_epochs * -(-n_train // batch_size)
        last_warmup_epoch = first_epoch + warmup_epochs - 1
        step = 0
        epoch = first_epoch - 1
        diverged = False
        for epoch in range(first_epoch, first_epoch + int(self.max_epochs)):
            summed_loss = torch.zeros((), device=weights.device)
            for rows in minibatches(n_train, batch_size, data.generator, weights.device):
                targets = None if data.train_targets is None else data.train_targets[rows]
                ramp = min(1.0, step / warmup_steps) if warmup_steps else 1.0
                # on W >= 0 the penalty's gradient is the constant ramp * l1 / n_items
                weights.grad.fill_(ramp * penalty_scale)
                data_loss = add_cross_entropy_gradient(weights, data.train_idx[rows], targets, weights.grad)
                step += 1
                optimizer.step()
                weights.clamp_(min=0.0)  # projection onto the non-negative orthant
                if support is not None:
                    weights.mul_(support)
                if average is not None:
                    average.update(weights)
                summed_loss += data_loss * rows.shape[0]
            train_loss = float(summed_loss) / n_train
            penalty = float(penalty_scale * estimate.sum())
            n_alive = int((estimate.max(dim=0).values > self.prune_threshold).sum())
            val_loss, val_accuracy = self._validate(estimate, data.val_idx, data.val_targets)
            # The regularised objective, so that epochs that only sparsify still count as progress.
            monitored = (val_loss if use_validation else train_loss) + penalty
            if not np.isfinite(train_loss + penalty + (val_loss if data.val_idx.shape[0] else 0.0)):
                diverged = True  # the best epoch so far is kept; the caller reports a fit with none
                break
            values = {
                "train_loss": train_loss,
                "l1_penalty": penalty,
                "val_loss": val_loss,
                "val_accuracy": val_accuracy,
                "n_alive_dims": n_alive,
                "monitored": monitored,
            }
            progress_keys = ("train_loss", "val_loss", "val_accuracy", "n_alive_dims")
            record_epoch(history, epoch, values, self.progress, self.max_epochs, progress_keys)
            if n_alive != previous_alive:
                # the penalty is still reshaping the support: not a plateau, whatever the loss does
                previous_alive = n_alive
                schedule.hold(epoch)
            if epoch <= last_warmup_epoch:
                # the penalty is still ramping in: no plateau, and the estimate is not a candidate
                schedule.hold(epoch)
                continue
            outcome = schedule.update(epoch, monitored)
            if outcome == schedule.IMPROVED:
                best_weights = estimate.clone()
            elif outcome == schedule.DECAYED and average is not None:
                # go on from the average with the smaller steps, and average those alone
                weights.copy_(average.value)
                average.restart()
            elif outcome == schedule.STOP:
                break
        best_epoch = schedule.best_epoch
        if best_epoch == 0 and epoch <= last_warmup_epoch and not diverged:
            # max_epochs ended training within the warm-up: keep the last estimate
            best_epoch, best_weights = epoch, estimate.clone()
        return best_weights, epoch, best_epoch

    @torch.no_grad()
    def _validate(
        self, weights: torch.Tensor, indices: torch.Tensor, targets: torch.Tensor | None
    ) -> tuple[float, float]:
        """Cross-entropy and split-tie accuracy on the validation triplets (NaN if none)."""
        n = indices.shape[0]
        if n == 0:
            return float("nan"), float("nan")
        summed = 0.0
        probs = []
        for start in range(0, n, EVAL_CHUNK):
            logits = pair_logits(weights, indices[start : start + EVAL_CHUNK])
            chunk_targets = None if targets is None else targets[start : start + EVAL_CHUNK]
            summed += float(triplet_cross_entropy(logits, chunk_targets)) * logits.shape[0]
            probs.append(torch.softmax(logits.double(), dim=1).cpu().numpy())
        if not np.isfinite(summed):
            return float("nan"), float("nan")  # diverged weights
        return summed / n, odd_one_out_accuracy(np.concatenate(probs))

    def _finish(self, params: np.ndarray, seen: np.ndarray) -> dict[str, Any]:
        """Zero the unseen items, prune dead dimensions and sort the rest by L1 norm."""
        params[~seen] = 0.0
        alive = params.max(axis=0) > self.prune_threshold
        kept = params[:, alive]
        order = np.argsort(-kept.sum(axis=0), kind="stable")
        self.weights_ = np.ascontiguousarray(kept[:, order])
        if self.weights_.shape[1] == 0:
            warnings.warn(
                f"SPoSE: every dimension fell below prune_threshold={self.prune_threshold}; "
                "try a smaller l1 or more triplets",
                RuntimeWarning,
                stacklevel=3,
            )
        return {"n_dims_kept": int(self.weights_.shape[1]), "relaxed_from_epoch": self.relaxed_from_epoch_}

    # ------------------------------------------------------------------ prediction
    def _predict_indices(self, indices: np.ndarray) -> np.ndarray:
        return odd_one_out_probabilities(self.weights_, indices)
