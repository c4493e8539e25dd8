"""A stochastic agent that follows the SPoSE choice rule over known item vectors, for every trial type.

Used to check the pipeline end to end: an embedding fitted to its answers should recover
the vectors it was simulated from. Odd-one-out trials follow the softmax over pair
similarities; anchor and ranked trials the Plackett-Luce rule over the reference's similarity
to each option (:mod:`oddoneout.triplets.reference`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from oddoneout.agents.base import EVERY_TRIAL_TYPE, Answer, TrialKey
from oddoneout.agents.similarity import shown_indices, validate_features
from oddoneout.errors import InputError
from oddoneout.triplets import ODD_ONE_OUT, TrialType, choices_from_draws, draw_choices, keyed_uniforms


class SimulatedAgent:
    """Samples answers from the choice rule of each trial type over dot products of item vectors.

    Parameters
    ----------
    features : ndarray of shape (n_items, n_features)
        Item vectors (e.g. a ground-truth sparse embedding).
    item_ids : sequence of str
        Id of each row of ``features``.
    name : str
        The system the agent stands for.
    model : str
        Model identifier recorded with each judgment.
    temperature : float
        Softmax temperature (1 is the SPoSE model; lower is more deterministic).
    seed : int
        Seed of the answers' randomness.
    return_probs : bool
        Attach the (first-)choice probabilities (in shown order) to each answer.

    Notes
    -----
    Given the trials' store keys (as the runners pass them), each answer is drawn from a uniform
    number that depends on the seed and the trial's key alone (:func:`~oddoneout.triplets.keyed_uniforms`):
    a trial gets the same answer in whatever batch, order or process it is asked, so a killed and
    resumed collection stores what one uninterrupted run would; a repeat is another key, hence an
    independent draw. A ranking is drawn choice by choice (Plackett-Luce: each choice among the
    options not yet ranked, with the first choice's probabilities renormalised), choice ``r``
    from the trial's keyed number ``r``. Without keys the answers come from a generator seeded
    with ``seed`` that advances with every call (reproducible given the sequence of batches asked).
    """

    prompt_hash: str | None = None
    trial_types = EVERY_TRIAL_TYPE

    def __init__(
        self,
        features: np.ndarray,
        item_ids: Sequence[str],
        name: str,
        model: str = "simulated",
        temperature: float = 1.0,
        seed: int = 0,
        return_probs: bool = False,
    ) -> None:
        self.features, self.item_index = validate_features(features, item_ids, name)
        if not temperature > 0:
            raise InputError(f"agent {name!r}: temperature must be positive, got {temperature}")
        self.name = name
        self.model = model
        self.temperature = float(temperature)
        self.seed = seed
        self.return_probs = return_probs
        self.rng = np.random.default_rng(seed)

    def probabilities(self, indices: np.ndarray, trial_type: TrialType = ODD_ONE_OUT) -> np.ndarray:
        """Probability of each shown position being the (first) choice, for item indices (n, n_shown)."""
        return trial_type.probabilities(self.features, indices, self.temperature)

    def judge(
        self,
        shown: Sequence[tuple[str, ...]],
        keys: Sequence[TrialKey] | None = None,
        trial_type: TrialType = ODD_ONE_OUT,
    ) -> list[Answer]:
        """Answer trials of item ids in the order shown (``keys``: their store keys, see Notes)."""
        if len(shown) == 0:
            return []
        probs = self.probabilities(shown_indices(self.item_index, shown, self.name, trial_type.n_shown), trial_type)
        if keys is not None and len(keys) != len(shown):
            what = "triplets" if trial_type == ODD_ONE_OUT else "trials"
            raise InputError(f"agent {self.name!r}: {len(keys)} keys for {len(shown)} {what}")
        ranking = self._rank(probs, keys, trial_type.n_ranked)
        choices = ranking[:, 0].tolist()
        rankings = [None] * len(choices) if trial_type.n_ranked == 1 else [tuple(r) for r in ranking.tolist()]
        if not self.return_probs:
            return [Answer(choice, ranking=r) for choice, r in zip(choices, rankings)]
        return [Answer(c, probs=tuple(p), ranking=r) for c, p, r in zip(choices, probs.tolist(), rankings)]

    def _rank(self, probs: np.ndarray, keys: Sequence[TrialKey] | None, n_ranked: int) -> np.ndarray:
        """``n_ranked`` shown positions per trial, drawn choice by choice (see Notes); shape (n, n_ranked)."""
        n = len(probs)
        ranking = np.empty((n, n_ranked), dtype=np.int64)
        left = probs
        for r in range(n_ranked):
            if r:
                left = left.copy()
                left[np.arange(n), ranking[:, r - 1]] = 0.0
                left /= left.sum(axis=1, keepdims=True)
            if keys is None:
                choice = draw_choices(left, self.rng)
            else:
                choice = choices_from_draws(left, keyed_uniforms(self.seed, keys, draw=r))
            if r:  # rounding may leave a draw past the last option still open: take that option
                closed = left[np.arange(n), choice] == 0.0
                choice[closed] = (left.shape[1] - 1) - np.argmax(left[closed][:, ::-1] > 0, axis=1)
            ranking[:, r] = choice
        return ranking
