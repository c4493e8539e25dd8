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
  the minibatch gradient is computed in closed form
  (:func:`~oddoneout.embed.torch_choice.add_cross_entropy_gradient`), with no autograd graph.
- Non-negativity is exact: weights are projected onto ``W >= 0`` (clamped) after every
  optimiser step, instead of a soft penalty on negative weights followed by ``abs()``.
  Because ``W >= 0``, the L1 term is simply ``W.sum()``.
- The softmax uses ``log_softmax`` (numerically stable).
- Large minibatches with Adam at a larger learning rate (defaults: batch 2048, lr 0.05)
  instead of batch 100 / lr 0.001 for a fixed 500 epochs (see below), and the estimate is the
  average of the iterates, not the last one (see "Iterate averaging").
- Ties in accuracy are split, not counted as errors (see :mod:`oddoneout.embed.evaluate`).

Choosing l1
-----------
No single ``l1`` suits every data set: the penalty that generalises depends on the number of
triplets per item, on how noisy the choices are and on the embedding's shape. With
``l1="auto"`` (the default) the fit is repeated for a grid of candidates scaled to the data
(``c / triplets per item``, ``c`` = 1, 2, 4, 8, 16, grown past an end that holds the best) and
the sparsest candidate within one standard error of the lowest held-out cross-entropy is kept,
passing over candidates whose fit would warn (every initial dimension kept, none, or worse than
chance) while another does not (:mod:`oddoneout.embed.selection`); a list of values is chosen
from the same way, a single number is fitted as it is. The held-out triplets are the seeded
``validation_fraction`` split (the same for every candidate, so the comparison is paired), or with
``l1_folds = K >= 2`` K folds, each candidate fitted K times, the chosen one then fitted on the
validation split (and, with ``refit``, on all triplets). What was chosen and why is in
``l1_selection_``, the embedding's metadata and, with ``verbose``, on stderr. Measured on
triplets sampled from a real embedding (2,372 adjectives x 21 VICE dimensions;
``benchmarks/recovery_real.py``): the earlier fixed default ``l1 = 0.005`` with
training-loss monitoring kept all 100 dimensions at 200 triplets per item and reached 42.9 %
held-out accuracy (generating model 54.0 %), worse than chance in cross-entropy; the grid's
best candidates reach 51.9-52.0 %.

Optimisation and convergence
----------------------------
Each epoch records the mean training cross-entropy plus the L1 penalty (the objective being
minimised), the number of alive dimensions (largest weight above ``prune_threshold``) and, on
the validation triplets, the held-out cross-entropy and accuracy. The monitored objective
(``monitor``) is by default the validation cross-entropy plus the penalty: training stops on
held-out loss and the weights of the best held-out epoch are kept. A *plateau* is ``patience``
epochs during which the monitored objective has not improved by ``tol`` **and** the number of
alive dimensions has not changed. At a plateau the learning rate is multiplied by
``lr_decay``; after ``n_lr_decays`` decays the next plateau stops training (or ``max_epochs``
does). Reducing Adam's step lets the weights settle instead of jittering around the optimum at
a size of about ``lr``.

``monitor="train"`` (the default of earlier versions) keeps the minimiser of the penalised
*training* objective instead, so the sparsity is a property of ``l1`` alone; with a weak ``l1``
it overfits without limit (at 200 triplets per item of the real embedding above, ``l1 = 0.0125``
kept 53 dimensions and reached 47.9 % with the training monitor, 51.9 % with the validation
monitor, in half the epochs). The validation monitor stops such a fit before it overfits, and
the choice of ``l1`` on held-out loss then prefers the sparser candidates that predict as well.
Counting the alive dimensions in the plateau rule keeps the fit going while the penalty is still
merging and removing dimensions, even if the objective moves by less than ``tol`` per epoch.

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

With about 1,000 triplets per item of a planted sparse embedding (150 items, 6 true
dimensions) a weak ``l1 = 0.005`` overfits and keeps 9-20 dimensions (noise-fitting dimensions
with a few items each), while ``l1 = 0.01``-``0.02`` gives the true 6: hence ``l1="auto"``.

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

Refit on all triplets
---------------------
The held-out triplets that stop the fit and choose ``l1`` (``validation_fraction``, 10 %) are
judgments, the study's main cost, that the validated fit never learns from. With ``refit=True``
(the default) the chosen fit is run again on every triplet with the same seed and the same
schedule: as many epochs as the validated fit kept, the learning rate decayed after the same
epochs (:class:`~oddoneout.embed.training.Replay`; a relaxed fit replays both phases). Its weights
are returned; the held-out record (``history_``, ``best_epoch_``, ``final_val_loss``, the
``l1_selection_``) stays the validated fit's, since the refit has no held-out triplets left, and
the refit's own training loss and epochs are under ``refit`` in the fit information. It costs one
more fit of the chosen ``l1`` (about a fifth of an ``l1="auto"`` fit). Measured on triplets sampled
from the real VICE adjective embedding (``../shared/data/vice_adjectives``; 100,000 held-out
triplets; paired, same data and seed), the gap to the generating model's held-out accuracy went
from 1.06-1.29 to 0.94-1.11 points with 600 anchor triplets per item (400 items; six pairs, mean
gain 0.13 points) and from 2.20-2.51 to 2.24-2.40 points with 200 odd-one-out triplets per item
(2,372 items, three data seeds, mean gain 0.05).

Trial types
-----------
The same embedding is fitted from anchor triplets and ranked trials (and from several trial
types at once) with each type's choice rule on the same dot-product similarity
(:mod:`oddoneout.triplets.reference`: Plackett-Luce over the reference's similarity to each
option); their gradients are in closed form too
(:func:`~oddoneout.embed.torch_choice.add_reference_gradient`). From the original SPoSE
initialisation (every weight near 0.1, spread 0.01) the fit of trials judged against a
reference can settle in a saddle where two planted dimensions share one learned dimension: on
60 items with 5 planted dimensions and 600 ranked trials (4 options, 2 ranked) per item, three
seeds all stalled at a training cross-entropy of 1.81 (generating model: 1.62), while a spread
of 0.05 reached 1.64 from both seeds tried. With ``init_std=None`` (the default) such data
start from the wider spread; odd-one-out data keep the original one.

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

import sys
from typing import Any, Sequence

import numpy as np
import torch

from oddoneout.embed.docstrings import fill_doc
from oddoneout.embed.estimator import (
    EVAL_CHUNK,
    TripletEmbeddingEstimator,
    is_count,
    is_float,
    is_positive_float,
    is_positive_int,
)
from oddoneout.embed.evaluate import choice_credit
from oddoneout.embed.selection import AUTO, MAX_GROWTH, candidate_values, format_selection, grow_grid, selection_table
from oddoneout.embed.torch_choice import (
    TrialTensors,
    add_batch_gradient,
    choice_probabilities,
    log_likelihood,
    pair_logits,
    triplet_cross_entropy,
)
from oddoneout.embed.training import (
    EpochReport,
    IterateAverage,
    ProgressCallback,
    Replay,
    TrainingData,
    TrainingProblem,
    TrainingResult,
    fold_rows,
    minimise,
    new_history,
    split_rows,
)
from oddoneout.errors import InputError
from oddoneout.triplets import ODD_ONE_OUT, TrialSet, TrialType

#: Spread of the initial weights for odd-one-out data (the original SPoSE's).
ODD_ONE_OUT_INIT_STD = 0.01
#: Spread of the initial weights when anchor or ranked trials are fitted (see "Trial types").
REFERENCE_INIT_STD = 0.05


def _valid_l1(l1: Any) -> bool:
    """Whether ``l1`` is a non-negative number, a non-empty list of them, or "auto"."""
    if isinstance(l1, str):
        return l1 == AUTO
    values = np.atleast_1d(np.asarray(l1, dtype=object))
    return values.size > 0 and all(is_float(v) and np.isfinite(v) and v >= 0 for v in values)


_HISTORY_KEYS = ("train_loss", "l1_penalty", "val_loss", "val_accuracy", "n_alive_dims", "monitored")


class _PenalisedProblem(TrainingProblem):
    """Minimise cross-entropy + ``penalty_scale * W.sum()`` over ``W >= 0`` (and ``W = 0`` off ``support``).

    Adam on the closed-form gradient, projected onto the constraints after every step; the
    estimate is the projected iterate or its average (see "Iterate averaging"). The penalty is
    ramped in over the first ``warmup_epochs`` epochs, which are not candidates.
    """

    progress_keys = ("train_loss", "val_loss", "val_accuracy", "n_alive_dims")

    def __init__(
        self,
        model: SPoSE,
        start: torch.Tensor,
        data: TrainingData,
        lr: float,
        penalty_scale: float,
        warmup_epochs: int,
        use_validation: bool,
        support: torch.Tensor | None = None,
    ) -> None:
        self.model, self.data = model, data
        self.penalty_scale, self.use_validation, self.support = penalty_scale, use_validation, support
        self.weights = start.clone()
        self.weights.grad = torch.zeros_like(self.weights)
        self.optimizer = torch.optim.Adam([self.weights], lr=lr, fused=True)
        self.average = IterateAverage(self.weights) if model.averaging else None
        self.estimate = self.weights if self.average is None else self.average.value
        self.warmup_steps = warmup_epochs * -(-data.n_train // int(model.batch_size))
        self.warmup_epochs = warmup_epochs
        self.n_steps = self.n_epochs = 0
        self.previous_alive = -1

    def step(self, batch: list[TrialTensors]) -> torch.Tensor:
        weights = self.weights
        ramp = min(1.0, self.n_steps / self.warmup_steps) if self.warmup_steps else 1.0
        # on W >= 0 the penalty's gradient is the constant ramp * l1 / n_items
        weights.grad.fill_(ramp * self.penalty_scale)
        data_loss = add_batch_gradient(weights, batch, weights.grad)
        self.n_steps += 1
        self.optimizer.step()
        weights.clamp_(min=0.0)  # projection onto the non-negative orthant
        if self.support is not None:
            weights.mul_(self.support)
        if self.average is not None:
            self.average.update(weights)
        return data_loss

    def end_epoch(self, train_loss: float) -> EpochReport:
        self.n_epochs += 1
        estimate, data = self.estimate, self.data
        penalty = float(self.penalty_scale * estimate.sum())
        n_alive = int((estimate.max(dim=0).values > self.model.prune_threshold).sum())
        val_loss, val_accuracy = self.model._validate(estimate, data.val)
        # The regularised objective, so that epochs that only sparsify still count as progress.
        monitored = (val_loss if self.use_validation else train_loss) + penalty
        values = dict(zip(_HISTORY_KEYS, (train_loss, penalty, val_loss, val_accuracy, n_alive, monitored)))
        # the penalty still reshaping the support is no plateau, whatever the loss does
        hold, self.previous_alive = n_alive != self.previous_alive, n_alive
        return EpochReport(
            values,
            monitored,
            finite=bool(np.isfinite(train_loss + penalty + (val_loss if data.has_validation else 0.0))),
            hold=hold,
            candidate=self.n_epochs > self.warmup_epochs,  # while the penalty ramps in, the estimate is no candidate
        )

    def snapshot(self) -> torch.Tensor:
        return self.estimate.clone()

    def after_decay(self) -> None:
        if self.average is not None:
            # go on from the average with the smaller steps, and average those alone
            self.weights.copy_(self.average.value)
            self.average.restart()


@fill_doc
class SPoSE(TripletEmbeddingEstimator):
    """Sparse positive similarity embedding (SPoSE) estimator.

    Parameters
    ----------
    n_dims : int
        Initial number of dimensions; the L1 penalty and pruning leave fewer.
    l1 : float, list of float or "auto"
        Sparsity strength ``lambda``; the penalty is ``(l1 / n_items) * ||W||_1``. ``"auto"``
        chooses it by held-out cross-entropy from a grid scaled to the data, a list chooses
        among its values (see "Choosing l1" in the module docstring); a number is fitted as it is.
    l1_n_se : float
        Choosing ``l1``: the sparsest candidate within this many paired standard errors of the
        lowest held-out cross-entropy is kept (0: the minimum).
    l1_folds : int
        Choosing ``l1``: 1 scores the candidates on the ``validation_fraction`` split; K >= 2 on
        K folds (each candidate fitted K times), the chosen one then fitted on the validation split
        (and, with ``refit``, on all triplets).
    %(lr)s
    %(batch_size)s
    %(max_epochs)s
    patience : int
        Epochs without an improvement of the monitored objective larger than ``tol``, and
        without a change in the number of alive dimensions, that count as a plateau.
    %(lr_decay)s
    %(n_lr_decays)s
    %(validation_fraction)s
    %(tol)s
    l1_warmup : int
        Epochs over which the penalty is ramped in linearly from 0 (per step); 0 applies it
        fully from the start. See "Penalty warm-up" in the module docstring.
    monitor : {"validation", "train"}
        Objective that decides plateaus and the kept epoch: ``"validation"`` (default) the
        validation cross-entropy + L1 penalty (training stops on held-out loss and keeps the
        best held-out epoch); ``"train"`` the mean training cross-entropy + L1 penalty, i.e.
        the objective being minimised (see the module docstring). With
        ``validation_fraction = 0`` both monitor the training objective.
    prune_threshold : float
        After fitting, a dimension whose largest weight is ``<= prune_threshold`` is dropped.
    relax : bool
        After the penalised fit, refit the non-zero weights of the alive dimensions without the
        penalty, keeping every other weight at zero (the relaxed lasso; see "Relaxed refit" in
        the module docstring). The refit is early-stopped on the validation loss.
    refit : bool
        After the fit validated on the held-out triplets (the chosen ``l1``'s), fit again on all
        triplets with the same schedule (epochs and learning-rate decays) and return those
        weights; see "Refit on all triplets" in the module docstring. ``False`` returns the
        validated fit's weights.
    averaging : bool
        Return (and validate, and keep the best of) the polynomial-decay average of the iterates
        instead of the last iterate; see "Iterate averaging" in the module docstring.
    %(soft_labels)s
    init_mean : float
        Initial weights are normal(``init_mean``, ``init_std``), clamped at 0 (as the
        original SPoSE: mean 0.1, std 0.01).
    init_std : float or None
        ``None``: 0.01 (the original SPoSE's) for odd-one-out data, 0.05 when the data hold anchor
        or ranked trials (see "Trial types" in the module docstring).
    %(device)s
    %(n_threads)s
    seed : int
        Seed of the initialisation, the validation split (or folds) and the minibatch order.
    verbose : int
        1 prints the ``l1`` candidates and the choice to stderr when there were several; 0 is silent.
    progress : callable, optional
        ``progress(epoch, max_epochs, metrics)`` after each epoch, with metrics
        ``train_loss``, ``val_loss``, ``val_accuracy``, ``n_alive_dims`` and the ``l1`` being fitted.

    Attributes
    ----------
    l1_ : float
        The sparsity strength of the fitted model (the chosen one when ``l1`` is a choice).
    l1_selection_ : DataFrame or None
        One row per candidate ``l1`` (ascending): held-out ``cross_entropy`` and ``accuracy``,
        ``n_dims``, ``n_epochs`` (with folds: means over folds), ``warned`` (the candidate's fit
        would warn, so it is passed over while another does not), ``excess`` and ``excess_se``
        (paired difference to the best eligible one) and ``chosen``. A single ``l1`` gets its own row
        (``None`` without held-out triplets).
    l1_scheme_ : str
        What the candidates were scored on, in words (empty without held-out triplets).
    fit_warnings_ : list of str
        Problems of the fit for publication (see :meth:`fit`); empty if none.
    weights_ : ndarray of shape (n_items, n_kept_dims)
        Non-negative weights, dimensions sorted by decreasing L1 norm, dead ones removed.
    %(item_ids_)s
    %(unseen_item_ids_)s
        Their weights are zero.
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
        l1: float | Sequence[float] | str = AUTO,
        l1_n_se: float = 1.0,
        l1_folds: int = 1,
        lr: float = 0.05,
        batch_size: int = 2048,
        max_epochs: int = 500,
        patience: int = 10,
        lr_decay: float = 0.2,
        n_lr_decays: int = 2,
        validation_fraction: float = 0.1,
        tol: float = 1e-4,
        monitor: str = "validation",
        l1_warmup: int = 5,
        prune_threshold: float = 0.1,
        relax: bool = False,
        refit: bool = True,
        averaging: bool = True,
        soft_labels: bool = True,
        init_mean: float = 0.1,
        init_std: float | None = None,
        device: str = "cpu",
        n_threads: int | None = 1,
        seed: int = 0,
        verbose: int = 1,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.n_dims = n_dims
        self.l1 = l1
        self.l1_n_se = l1_n_se
        self.l1_folds = l1_folds
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
        self.refit = refit
        self.averaging = averaging
        self.soft_labels = soft_labels
        self.init_mean = init_mean
        self.init_std = init_std
        self.device = device
        self.n_threads = n_threads
        self.seed = seed
        self.verbose = verbose
        self.progress = progress

    _method = "spose"
    _final_keys = ("train_loss", "val_loss", "val_accuracy", "l1_penalty")
    _non_hyperparameters = TripletEmbeddingEstimator._non_hyperparameters | {"verbose"}
    _overfit_fix = "choose l1 from larger values (the default l1='auto' does)"

    def _check_params(self) -> None:
        self._raise_invalid(
            {
                "n_dims": is_positive_int(self.n_dims),
                "l1": _valid_l1(self.l1),
                "l1_n_se": is_float(self.l1_n_se) and np.isfinite(self.l1_n_se) and self.l1_n_se >= 0,
                "l1_folds": is_positive_int(self.l1_folds),
                **self._optimisation_checks(),
                "monitor": self.monitor in ("validation", "train"),
                "l1_warmup": is_count(self.l1_warmup),
                "prune_threshold": np.isfinite(self.prune_threshold) and self.prune_threshold >= 0,
                "relax": isinstance(self.relax, (bool, np.bool_)),
                "refit": isinstance(self.refit, (bool, np.bool_)),
                "averaging": isinstance(self.averaging, (bool, np.bool_)),
                "init_mean": is_positive_float(self.init_mean),
                "init_std": self.init_std is None
                or (is_float(self.init_std) and np.isfinite(self.init_std) and self.init_std >= 0),
            }
        )

    def _fit_model(self, triplets: TrialSet) -> None:
        """Fit each ``l1`` candidate on the held-out scheme, keep the one :func:`one_se_rule` chooses."""
        values, growable = candidate_values(self.l1, len(triplets), triplets.n_items)
        choosing = len(values) > 1 or growable
        if choosing and self.l1_folds > 1:
            splits = fold_rows(len(triplets), int(self.l1_folds), self.seed)
            self.l1_scheme_ = f"{self.l1_folds} folds ({len(triplets):,} triplets, each held out once)"
        else:
            splits = [split_rows(len(triplets), self.validation_fraction, self.seed)]
            n_held_out = len(splits[0][1])
            self.l1_scheme_ = f"the validation split ({n_held_out:,} triplets)" if n_held_out else ""
        if not self.l1_scheme_:
            if choosing:
                raise InputError("choosing l1 needs held-out triplets: validation_fraction > 0 or l1_folds >= 2")
            self.l1_ = values[0]
            self._fit_rows(triplets, *splits[0])
            self._fit_info["l1"] = self.l1_
            self.l1_selection_ = None
            return
        scored = {value: self._score_candidate(triplets, value, splits) for value in values}
        for _ in range(MAX_GROWTH if growable else 0):
            ordered = sorted(scored)
            grown = grow_grid(
                ordered,
                [scored[value]["losses"].mean() for value in ordered],
                [scored[value]["warned"] for value in ordered],
            )
            if grown is None or grown in scored or grown <= 0:
                break
            scored[grown] = self._score_candidate(triplets, grown, splits)
        ordered = sorted(scored)
        columns = {
            key: [scored[value][key] for value in ordered]
            for key in ("losses", "accuracy", "n_dims", "n_epochs", "warned")
        }
        table = selection_table(ordered, **columns, n_se=self.l1_n_se)
        chosen = float(table.loc[table["chosen"], "l1"].item())
        if len(splits) > 1:
            self.l1_ = chosen
            self._fit_rows(triplets, *split_rows(len(triplets), self.validation_fraction, self.seed))
        else:
            vars(self).update(scored[chosen]["state"])
        if self.refit and self._fit_info["n_val_triplets"]:
            self._refit_on_all(triplets)
        self.l1_selection_ = table
        self._fit_info.update({"l1": chosen, "l1_selection": table.to_dict("records"), "l1_scheme": self.l1_scheme_})
        if self.verbose and len(table) > 1:
            chance = self._fit_info.get("chance_cross_entropy")
            said = {} if chance is None else {"chance": f"{chance:.4f}"}
            print(f"SPoSE: {format_selection(table, self.l1_scheme_, **said)}", file=sys.stderr)

    def _refit_on_all(self, triplets: TrialSet) -> None:
        """Fit ``l1_`` again on every trial, repeating the validated fit's ``schedule_``.

        The weights (and the items seen) become the refit's; the held-out figures (``history_``,
        ``n_epochs_``, ``best_epoch_`` and the ``final_*`` of the fit information) stay those of
        the validated fit, which the refit has no held-out triplets to measure.
        """
        validated_info = self._fit_info
        validated = {
            name: getattr(self, name) for name in ("history_", "n_epochs_", "best_epoch_", "relaxed_from_epoch_")
        }
        self._fit_rows(triplets, np.arange(len(triplets)), np.zeros(0, dtype=np.int64), replay=self.schedule_)
        refit_info = self._fit_info
        vars(self).update(validated)
        self._fit_info = {
            **validated_info,
            "n_dims_kept": refit_info["n_dims_kept"],
            "n_unseen_items": refit_info["n_unseen_items"],
            "refit": {
                "n_triplets": refit_info["n_train_triplets"],
                "n_epochs": refit_info["n_epochs"],
                "final_train_loss": refit_info["final_train_loss"],
                "final_l1_penalty": refit_info["final_l1_penalty"],
            },
        }

    def _score_candidate(
        self, triplets: TrialSet, value: float, splits: list[tuple[np.ndarray, np.ndarray]]
    ) -> dict[str, Any]:
        """Fit ``l1 = value`` on every split; its per-triplet held-out losses, scores and (one split) fitted state."""
        self.l1_ = value
        log_likelihoods, credits = [], []
        dims, epochs, warned = [], [], False
        for train_rows, held_out in splits:
            self._fit_rows(triplets, train_rows, held_out)
            log_likelihood, credit = self._held_out_scores(triplets.subset(held_out))
            log_likelihoods.append(log_likelihood)
            credits.append(credit)
            dims.append(self.weights_.shape[1])
            epochs.append(self.n_epochs_)
            warned = warned or bool(self._fit_problems())
        self._fit_info["l1"] = value
        state = {name: attribute for name, attribute in vars(self).items() if name.endswith("_") or name == "_fit_info"}
        return {
            "losses": -np.concatenate(log_likelihoods),
            "accuracy": float(np.concatenate(credits).mean()),
            "n_dims": dims[0] if len(dims) == 1 else float(np.mean(dims)),
            "n_epochs": epochs[0] if len(epochs) == 1 else float(np.mean(epochs)),
            "warned": warned,
            "state": state if len(splits) == 1 else None,
        }

    def _empty_problem(self) -> str:
        return (
            f"every dimension fell below prune_threshold={self.prune_threshold}, so the embedding predicts "
            "chance; try a smaller l1 or more triplets"
        )

    def _progress_with_l1(self, refit: bool) -> ProgressCallback | None:
        """The ``progress`` callback with the ``l1`` being fitted (and whether it is the refit) in its metrics."""
        if self.progress is None:
            return None
        progress, added = self.progress, {"l1": self.l1_, **({"refit": "all triplets"} if refit else {})}

        def report(epoch: int, max_epochs: int, metrics: dict[str, float]) -> None:
            progress(epoch, max_epochs, {**added, **metrics})

        return report

    def _train(
        self, data: TrainingData, replay: tuple[Replay, ...] | None = None
    ) -> tuple[np.ndarray, dict[str, list[float]], TrainingResult]:
        """The penalised fit (then the relaxed refit); the best weights, the history and the loop's result.

        Sets ``schedule_``; ``replay`` repeats one instead (one :class:`Replay` per phase).
        """
        init = torch.empty(data.n_items, int(self.n_dims))
        init.normal_(self.init_mean, self._init_std(data), generator=data.generator)
        history = new_history(_HISTORY_KEYS)
        settings = self._loop_settings()
        problem = _PenalisedProblem(
            self,
            init.clamp_(min=0.0).to(data.device),
            data,
            lr=self.lr,
            penalty_scale=self.l1_ / data.n_items,
            warmup_epochs=int(self.l1_warmup),
            use_validation=self.monitor == "validation" and data.has_validation,
        )
        progress = self._progress_with_l1(refit=replay is not None)
        result = minimise(problem, data, settings, history, progress, replay=None if replay is None else replay[0])
        self._raise_if_diverged(result, self.lr)
        phases = [result.replay]
        self.relaxed_from_epoch_ = None
        if self.relax:
            weights = result.best
            support = (weights > 0) & (weights.max(dim=0).values > self.prune_threshold)
            self.relaxed_from_epoch_ = result.last_epoch + 1
            # The refit starts at the penalised optimum, so at the step size of the first decay.
            relaxed_problem = _PenalisedProblem(
                self,
                weights * support,
                data,
                lr=self.lr * self.lr_decay,
                penalty_scale=0.0,
                warmup_epochs=0,
                use_validation=data.has_validation,
                support=support,
            )
            relaxed = minimise(
                relaxed_problem,
                data,
                settings,
                history,
                progress,
                first_epoch=result.last_epoch + 1,
                replay=None if replay is None else replay[1],
            )
            phases.append(relaxed.replay)
            # a refit that diverged keeps the penalised weights
            result = TrainingResult(
                relaxed.best, relaxed.last_epoch, relaxed.best_epoch or result.best_epoch, relaxed.replay
            )
        self.schedule_ = tuple(phases)
        return result.best.cpu().numpy().astype(np.float64), history, result

    def _init_std(self, data: TrainingData) -> float:
        """``init_std``, or its default for the trial types of ``data``."""
        if self.init_std is not None:
            return float(self.init_std)
        only_odd_one_out = all(part.trial_type == ODD_ONE_OUT for part in data.train)
        return ODD_ONE_OUT_INIT_STD if only_odd_one_out else REFERENCE_INIT_STD

    @torch.no_grad()
    def _validate(self, weights: torch.Tensor, val: list[TrialTensors]) -> tuple[float, float]:
        """Cross-entropy and split-tie accuracy on the validation trials (NaN if none)."""
        n = sum(len(part) for part in val)
        if n == 0:
            return float("nan"), float("nan")
        summed, part_probs = 0.0, []
        for part in val:
            probs = []
            for start in range(0, len(part), EVAL_CHUNK):
                indices = part.indices[start : start + EVAL_CHUNK]
                targets = None if part.targets is None else part.targets[start : start + EVAL_CHUNK]
                if part.trial_type == ODD_ONE_OUT:
                    logits = pair_logits(weights, indices)
                    summed += float(triplet_cross_entropy(logits, targets)) * logits.shape[0]
                else:
                    summed -= float(log_likelihood(part.trial_type, weights, indices, targets).sum())
                probs.append(choice_probabilities(part.trial_type, weights, indices).cpu().numpy())
            if probs:
                part_probs.append((np.concatenate(probs), part.trial_type.chosen_column))
        if not np.isfinite(summed):
            return float("nan"), float("nan")  # diverged weights
        credits = [choice_credit(probs, column) for probs, column in part_probs]
        return summed / n, float(np.concatenate(credits).mean())

    def _finish(self, params: np.ndarray, seen: np.ndarray) -> dict[str, Any]:
        """Zero the unseen items, prune dead dimensions and sort the rest by L1 norm."""
        params[~seen] = 0.0
        alive = params.max(axis=0) > self.prune_threshold
        kept = params[:, alive]
        order = np.argsort(-kept.sum(axis=0), kind="stable")
        self.weights_ = np.ascontiguousarray(kept[:, order])
        return {"n_dims_kept": int(self.weights_.shape[1]), "relaxed_from_epoch": self.relaxed_from_epoch_}

    # ------------------------------------------------------------------ prediction
    def _predict(self, trial_type: TrialType, indices: np.ndarray) -> np.ndarray:
        return trial_type.probabilities(self.weights_, indices)

    def _log_likelihood(self, trial_type: TrialType, indices: np.ndarray) -> np.ndarray:
        if trial_type.n_ranked == 1:
            return super()._log_likelihood(trial_type, indices)
        return trial_type.log_likelihood(self.weights_, indices)
