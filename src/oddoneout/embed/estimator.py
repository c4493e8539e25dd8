"""Machinery shared by the triplet embedding estimators (:mod:`~oddoneout.embed.spose`, :mod:`~oddoneout.embed.vice`).

The estimators differ in their model and loss; what they share lives here: scikit-learn style
parameters, the fit skeleton (input checks, seeded validation split, torch thread setting),
minibatch order, the average of the iterates, the plateau rule that decays the learning rate
and stops training, the per-epoch history and progress callback, the provenance of the fit,
prediction helpers.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, Callable, Iterator, Self, Sequence

import numpy as np
import torch

from oddoneout.embed.evaluate import odd_one_out_accuracy
from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.triplets import Triplets

#: ``progress(epoch, max_epochs, metrics)``, called after every epoch.
ProgressCallback = Callable[[int, int, dict[str, float]], None]

EVAL_CHUNK = 4096  # triplets per forward pass when scoring: small enough for the gathered rows to stay in cache


# ---------------------------------------------------------------------- parameter checks
def is_positive_int(value: Any) -> bool:
    """``value`` is an integer >= 1."""
    return isinstance(value, (int, np.integer)) and value >= 1


def is_count(value: Any) -> bool:
    """``value`` is an integer >= 0."""
    return isinstance(value, (int, np.integer)) and value >= 0


def is_positive_float(value: Any) -> bool:
    """``value`` is a finite number > 0."""
    return isinstance(value, (int, float, np.number)) and np.isfinite(value) and value > 0


# ---------------------------------------------------------------------- fitting helpers
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


def triplet_tensors(
    triplets: Triplets, rows: np.ndarray, use_soft: bool, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Indices of the triplet ``rows`` on ``device``, with their soft labels (float32) or ``None``."""
    indices = torch.as_tensor(triplets.indices[rows], device=device)
    targets = torch.as_tensor(triplets.probs[rows], dtype=torch.float32, device=device) if use_soft else None
    return indices, targets


def minibatches(
    n_train: int, batch_size: int, generator: torch.Generator, device: torch.device
) -> Iterator[torch.Tensor]:
    """Rows of one epoch in a random order drawn from ``generator``, in batches of ``batch_size``."""
    order = torch.randperm(n_train, generator=generator).to(device)
    for start in range(0, n_train, batch_size):
        yield order[start : start + batch_size]


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
            self.n_decays, self.last_change = self.n_decays + 1, epoch
            for group in self.optimizer.param_groups:
                group["lr"] *= self.lr_decay
            return self.DECAYED
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


# ---------------------------------------------------------------------- base class
class TripletEmbeddingEstimator:
    """Base of the estimators that learn an item embedding from odd-one-out triplets.

    Subclasses define ``__init__`` (whose parameters are the estimator's parameters and include
    the optimisation parameters of :meth:`_optimisation_checks`, ``soft_labels``, ``device``,
    ``n_threads`` and ``seed``), :meth:`_check_params`, :meth:`_train`, :meth:`_finish` and
    :meth:`_predict_indices`.
    """

    #: ``method`` recorded in the embedding metadata.
    _method = ""
    #: Constructor parameters that are not hyperparameters of the model.
    _non_hyperparameters = frozenset({"progress", "device", "n_threads"})
    #: Attribute whose presence means the estimator is fitted.
    _fitted_attribute = "weights_"
    #: History columns recorded in the provenance as ``final_<key>`` (their value at the best epoch).
    _final_keys: tuple[str, ...] = ()

    # ------------------------------------------------------------------ parameters
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters, as in scikit-learn."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters, as in scikit-learn."""
        valid = self.get_params()
        for name, value in params.items():
            if name not in valid:
                raise InputError(f"{type(self).__name__} has no parameter {name!r}")
            setattr(self, name, value)
        return self

    def _hyperparameters(self) -> dict[str, Any]:
        return {k: v for k, v in self.get_params().items() if k not in self._non_hyperparameters}

    def _check_params(self) -> None:
        """Raise an InputError naming every invalid constructor parameter (see :meth:`_raise_invalid`)."""
        raise NotImplementedError

    def _optimisation_checks(self) -> dict[str, bool]:
        """Validity of the optimisation parameters every subclass has."""
        return {
            "lr": is_positive_float(self.lr),
            "batch_size": is_positive_int(self.batch_size),
            "max_epochs": is_positive_int(self.max_epochs),
            "patience": is_positive_int(self.patience),
            "lr_decay": 0.0 < self.lr_decay <= 1.0,
            "n_lr_decays": is_count(self.n_lr_decays),
            "validation_fraction": 0.0 <= self.validation_fraction < 1.0,
            "tol": np.isfinite(self.tol) and self.tol >= 0,
        }

    def _raise_invalid(self, checks: dict[str, bool]) -> None:
        """InputError naming every parameter whose check failed."""
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise InputError(
                f"invalid {type(self).__name__} parameter(s): "
                + ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            )

    # ------------------------------------------------------------------ fitting
    def fit(self, triplets: Triplets) -> Self:
        """Learn the embedding from odd-one-out triplets.

        Parameters
        ----------
        triplets : Triplets
            Judgments in the SPoSE convention (column 2 is the odd one out), with optional
            soft labels.

        Returns
        -------
        self
        """
        if not isinstance(triplets, Triplets):
            raise InputError(f"{type(self).__name__}.fit expects a Triplets object, got {type(triplets).__name__}")
        self._check_params()
        use_soft = bool(self.soft_labels and triplets.probs is not None)
        train_rows, val_rows = split_rows(len(triplets), self.validation_fraction, self.seed)
        with torch_threads(self.n_threads):
            params, history, n_epochs, best_epoch = self._train(triplets, train_rows, val_rows, use_soft)
        seen = np.zeros(triplets.n_items, dtype=bool)
        seen[np.unique(triplets.indices[train_rows])] = True
        model_info = self._finish(params, seen)
        self.item_ids_ = triplets.item_ids
        self.unseen_item_ids_ = tuple(item for item, used in zip(triplets.item_ids, seen) if not used)
        self.history_ = history
        self.n_epochs_ = int(n_epochs)
        self.best_epoch_ = int(best_epoch)
        best = best_epoch - 1
        self._fit_info = {
            "source_triplets_hash": triplets.hash(),
            "n_triplets": len(triplets),
            "n_train_triplets": int(len(train_rows)),
            "n_val_triplets": int(len(val_rows)),
            "soft_labels_used": use_soft,
            "n_epochs": self.n_epochs_,
            "best_epoch": self.best_epoch_,
            **{f"final_{key}": history[key][best] for key in self._final_keys},
            **model_info,
            "n_unseen_items": int((~seen).sum()),
        }
        return self

    def _train(
        self, triplets: Triplets, train_rows: np.ndarray, val_rows: np.ndarray, use_soft: bool
    ) -> tuple[Any, dict[str, list[float]], int, int]:
        """Optimise on ``train_rows``; returns the parameters of the best epoch, the per-epoch
        history, the number of epochs run and the best epoch (from 1)."""
        raise NotImplementedError

    def _finish(self, params: Any, seen: np.ndarray) -> dict[str, Any]:
        """Set ``weights_`` and the model's other fitted attributes from ``params`` (``seen`` marks
        the items of the training triplets); returns the model's entries of the fit provenance."""
        raise NotImplementedError

    # ------------------------------------------------------------------ prediction
    def _check_fitted(self) -> None:
        if not hasattr(self, self._fitted_attribute):
            raise RuntimeError(f"this {type(self).__name__} instance is not fitted yet; call fit() first")

    def predict_proba(self, triplets: Triplets) -> np.ndarray:
        """Probability that each column of each triplet is the odd one out.

        Parameters
        ----------
        triplets : Triplets
            Triplets over any vocabulary whose used ids are all in ``item_ids_``.

        Returns
        -------
        ndarray of shape (n, 3)
            Rows sum to 1.

        Raises
        ------
        InputError
            If a triplet uses an item id the model was not fitted on.
        """
        self._check_fitted()
        return self._predict_indices(triplets.reindex(self.item_ids_).indices)

    def _predict_indices(self, indices: np.ndarray) -> np.ndarray:
        """:meth:`predict_proba` for triplets given as an (n, 3) array of rows of ``weights_``."""
        raise NotImplementedError

    def score(self, triplets: Triplets) -> float:
        """Odd-one-out accuracy of :meth:`predict_proba` on ``triplets`` (ties split, chance = 1/3)."""
        return odd_one_out_accuracy(self.predict_proba(triplets), tie_rule="split")

    def to_embedding(self) -> Embedding:
        """The fitted ``weights_`` as an :class:`~oddoneout.embedding.Embedding` with provenance."""
        self._check_fitted()
        metadata = {
            "method": self._method,
            "hyperparameters": self._hyperparameters(),
            "seed": int(self.seed),
            "torch_version": torch.__version__,
            "device": str(self.device),
            **self._fit_info,
        }
        return Embedding(self.item_ids_, self.weights_.copy(), metadata)
