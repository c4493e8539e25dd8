"""The base of the triplet embedding estimators (:mod:`~oddoneout.embed.spose`, :mod:`~oddoneout.embed.vice`).

The estimators differ in their model and loss; what they share lives here: scikit-learn's
parameter handling (through :class:`sklearn.base.BaseEstimator`), the parameter checks and
defaults, the fit skeleton (input checks, seeded validation split, torch thread setting, fitted
attributes, provenance), prediction and scoring. The training loop is
:func:`oddoneout.embed.training.minimise`.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Self

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from oddoneout.embed.evaluate import CHANCE_CROSS_ENTROPY, choice_credit
from oddoneout.embed.training import LoopSettings, Replay, TrainingData, TrainingResult, split_rows, torch_threads
from oddoneout.embedding import Embedding
from oddoneout.errors import FitWarning, InputError
from oddoneout.triplets import TrialSet, TrialType, Triplets

EVAL_CHUNK = 4096  # triplets per forward pass when scoring: small enough for the gathered rows to stay in cache


# ---------------------------------------------------------------------- parameter checks
def is_positive_int(value: Any) -> bool:
    """``value`` is an integer >= 1."""
    return isinstance(value, (int, np.integer)) and value >= 1


def is_count(value: Any) -> bool:
    """``value`` is an integer >= 0."""
    return isinstance(value, (int, np.integer)) and value >= 0


def is_float(value: Any) -> bool:
    """``value`` is a real number (not a bool)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def is_positive_float(value: Any) -> bool:
    """``value`` is a finite number > 0."""
    return isinstance(value, (int, float, np.number)) and np.isfinite(value) and value > 0


def estimator_defaults(estimator: type[BaseEstimator]) -> dict[str, Any]:
    """The default of every constructor parameter of ``estimator``, in signature order.

    The estimators' signatures are the one place of their defaults; configuration and command
    line read them here instead of repeating them.

    Parameters
    ----------
    estimator : class
        E.g. :class:`~oddoneout.embed.spose.SPoSE` or :class:`~oddoneout.embed.vice.VICE`.

    Returns
    -------
    dict
        Parameter name to default value.
    """
    parameters = inspect.signature(estimator.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.name != "self"}


# ---------------------------------------------------------------------- base class
class TripletEmbeddingEstimator(BaseEstimator):
    """Base of the estimators that learn an item embedding from odd-one-out, anchor or ranked trials.

    Subclasses define ``__init__`` (whose parameters are the estimator's parameters and include
    the optimisation parameters of :meth:`_optimisation_checks`, ``soft_labels``, ``device``,
    ``n_threads``, ``seed`` and ``progress``), :meth:`_check_params`, :meth:`_train`,
    :meth:`_finish`, :meth:`_predict` and, for rankings, :meth:`_log_likelihood`.
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
    def _hyperparameters(self) -> dict[str, Any]:
        """Model parameters in signature order (the provenance's ``hyperparameters``)."""
        names = estimator_defaults(type(self))
        return {name: getattr(self, name) for name in names if name not in self._non_hyperparameters}

    def _check_params(self) -> None:
        """Raise an InputError naming every invalid constructor parameter (see :meth:`_raise_invalid`)."""
        raise NotImplementedError

    def _optimisation_checks(self) -> dict[str, bool]:
        """Validity of the parameters every subclass has."""
        return {
            "lr": is_positive_float(self.lr),
            "batch_size": is_positive_int(self.batch_size),
            "max_epochs": is_positive_int(self.max_epochs),
            "patience": is_positive_int(self.patience),
            "lr_decay": 0.0 < self.lr_decay <= 1.0,
            "n_lr_decays": is_count(self.n_lr_decays),
            "validation_fraction": 0.0 <= self.validation_fraction < 1.0,
            "tol": np.isfinite(self.tol) and self.tol >= 0,
            "n_threads": self.n_threads is None or is_positive_int(self.n_threads),
        }

    def _raise_invalid(self, checks: dict[str, bool]) -> None:
        """InputError naming every parameter whose check failed."""
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise InputError(
                f"invalid {type(self).__name__} parameter(s): "
                + ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            )

    def _loop_settings(self) -> LoopSettings:
        """The parameters of the training loop."""
        return LoopSettings(
            int(self.max_epochs), int(self.batch_size), self.patience, self.tol, self.lr_decay, self.n_lr_decays
        )

    # ------------------------------------------------------------------ fitting
    def fit(self, triplets: Triplets | TrialSet | list[Triplets], y: None = None) -> Self:
        """Learn the embedding from judgments of one or more trial types.

        A fit that should not be published as it is (its held-out cross-entropy is worse than
        chance, or it kept every initial dimension) raises a :class:`~oddoneout.errors.FitWarning`
        naming the likely fix; the problems are also in ``fit_warnings_`` and the embedding's
        metadata.

        Parameters
        ----------
        triplets : Triplets, or a list of Triplets over one vocabulary
            Judgments in the canonical layout of their trial type (odd-one-out: column 2 is
            the odd one out), with optional soft labels. A list mixes trial types in one fit:
            every trial type's choice rule on the same similarity.
        y : None
            Ignored (the choices are part of ``triplets``); for scikit-learn's API.

        Returns
        -------
        self
        """
        if not isinstance(triplets, (Triplets, TrialSet, list, tuple)):
            raise InputError(f"{type(self).__name__}.fit expects a Triplets object, got {type(triplets).__name__}")
        trials = TrialSet.of(triplets)
        self._check_params()
        self._fit_model(trials)
        self.fit_warnings_ = self._fit_problems()
        self._fit_info["fit_warnings"] = list(self.fit_warnings_)
        for problem in self.fit_warnings_:
            warnings.warn(f"{type(self).__name__}: {problem}", FitWarning, stacklevel=2)
        return self

    def _fit_model(self, triplets: TrialSet) -> None:
        """The whole fit (subclasses that choose hyperparameters on held-out data override it)."""
        self._fit_rows(triplets, *split_rows(len(triplets), self.validation_fraction, self.seed))

    def _fit_rows(
        self,
        triplets: TrialSet,
        train_rows: np.ndarray,
        val_rows: np.ndarray,
        replay: tuple[Replay, ...] | None = None,
    ) -> None:
        """One fit on the trial ``train_rows``, validated on ``val_rows``; sets the fitted attributes.

        ``replay`` repeats an earlier fit's schedule, one :class:`Replay` per training phase.
        """
        use_soft = bool(self.soft_labels and triplets.has_probs)
        with torch_threads(self.n_threads):
            data = TrainingData.from_split(triplets, train_rows, val_rows, use_soft, self.device, self.seed)
            params, history, result = self._train(data, replay)
        seen = np.zeros(triplets.n_items, dtype=bool)
        seen[triplets.used_items(train_rows)] = True
        model_info = self._finish(params, seen)
        self.item_ids_ = triplets.item_ids
        self.unseen_item_ids_ = tuple(item for item, used in zip(triplets.item_ids, seen) if not used)
        self.history_ = history
        self.n_epochs_ = int(result.last_epoch)
        self.best_epoch_ = int(result.best_epoch)
        best = result.best_epoch - 1
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
        types = {part.trial_type.spec: len(part) for part in triplets.parts}
        if list(types) != ["odd_one_out"]:  # odd-one-out fits record what earlier versions did
            self._fit_info["trial_types"] = types
            self._fit_info["chance_cross_entropy"] = triplets.chance_cross_entropy

    def _fit_problems(self) -> list[str]:
        """What is wrong with the fit for publication, each with its likely fix (empty if nothing)."""
        problems = [self._empty_problem()] if self.weights_.shape[1] == 0 else []
        held_out = self._fit_info.get("final_val_loss")
        chance = self._fit_info.get("chance_cross_entropy", CHANCE_CROSS_ENTROPY)
        if held_out is not None and np.isfinite(held_out) and held_out > chance:
            problems.append(
                f"held-out cross-entropy {held_out:.3f} is worse than chance ({chance:.3f}): "
                f"the embedding overfits its training triplets; {self._overfit_fix}, fewer n_dims, or more triplets"
            )
        if self.weights_.shape[1] >= self.n_dims:
            problems.append(
                f"kept all {self.n_dims} initial dimensions: nothing was pruned, so the data may carry more; "
                f"give a larger n_dims (and, if the held-out loss is poor, {self._overfit_fix})"
            )
        return problems

    def _empty_problem(self) -> str:
        """Why a fit kept no dimension, and the likely fix."""
        raise NotImplementedError

    #: The likely fix of an overfitted fit, in the words of :meth:`_fit_problems`.
    _overfit_fix = "a stronger prior"

    def _train(self, data: TrainingData) -> tuple[Any, dict[str, list[float]], TrainingResult]:
        """Optimise on ``data``; returns the parameters of the best epoch (as numpy), the per-epoch
        history and the loop's result (epochs run, best epoch from 1)."""
        raise NotImplementedError

    def _raise_if_diverged(self, result: TrainingResult, lr: float) -> None:
        """RuntimeError when training kept no epoch because the loss became non-finite."""
        if result.best_epoch == 0:
            raise RuntimeError(
                f"{type(self).__name__} training diverged (non-finite loss at lr {lr}); try a smaller lr"
            )

    def _finish(self, params: Any, seen: np.ndarray) -> dict[str, Any]:
        """Set ``weights_`` and the model's other fitted attributes from ``params`` (``seen`` marks
        the items of the training triplets); returns the model's entries of the fit provenance."""
        raise NotImplementedError

    # ------------------------------------------------------------------ prediction
    def _check_fitted(self) -> None:
        if not hasattr(self, self._fitted_attribute):
            raise NotFittedError(f"this {type(self).__name__} instance is not fitted yet; call fit() first")

    def predict_proba(self, triplets: Triplets) -> np.ndarray:
        """Probability that the item in each column of each trial is the (first) choice.

        Parameters
        ----------
        triplets : Triplets
            Trials over any vocabulary whose used ids are all in ``item_ids_``.

        Returns
        -------
        ndarray of shape (n, n_shown)
            Rows sum to 1; for odd-one-out, the probability that each column is the odd one out;
            a reference column is 0.

        Raises
        ------
        InputError
            If a triplet uses an item id the model was not fitted on.
        sklearn.exceptions.NotFittedError
            Before :meth:`fit`.
        """
        self._check_fitted()
        return self._predict(triplets.trial_type, triplets.reindex(self.item_ids_).indices)

    def _predict(self, trial_type: TrialType, indices: np.ndarray) -> np.ndarray:
        """:meth:`predict_proba` for trials given as an array of rows of ``weights_``."""
        raise NotImplementedError

    def _log_likelihood(self, trial_type: TrialType, indices: np.ndarray) -> np.ndarray:
        """Predicted log-probability of each trial's answer (trials as rows of ``weights_``), floored at log 1e-15.

        One-choice trial types read it off :meth:`_predict`; rankings need the estimator's own.
        """
        if trial_type.n_ranked != 1:
            raise NotImplementedError
        probs = self._predict(trial_type, indices)
        return np.log(np.clip(probs[:, trial_type.chosen_column], 1e-15, None))

    def _held_out_scores(self, trials: TrialSet) -> tuple[np.ndarray, np.ndarray]:
        """Per-trial log-likelihood and accuracy credit (ties split) of ``trials``, in row order."""
        parts = [(part.trial_type, part.indices) for part in trials.parts]
        log_likelihood = np.concatenate([self._log_likelihood(kind, rows) for kind, rows in parts])
        credit = np.concatenate(
            [choice_credit(self._predict(kind, rows), kind.chosen_column, "split") for kind, rows in parts]
        )
        return log_likelihood, credit

    def score(self, triplets: Triplets, y: None = None) -> float:
        """Accuracy of the predicted (first) choice on ``triplets`` (ties split; odd-one-out chance = 1/3).

        ``y`` is ignored (the choices are part of ``triplets``).
        """
        kind = triplets.trial_type
        return float(choice_credit(self.predict_proba(triplets), kind.chosen_column, "split").mean())

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
