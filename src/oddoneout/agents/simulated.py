"""A stochastic agent that follows the SPoSE choice rule over known item vectors.

Used to check the pipeline end to end: an embedding fitted to its answers should recover
the vectors it was simulated from.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from oddoneout.agents.base import Answer, TrialKey
from oddoneout.agents.similarity import shown_indices, validate_features
from oddoneout.errors import InputError
from oddoneout.triplets import choices_from_draws, draw_choices, keyed_uniforms, odd_one_out_probabilities


class SimulatedAgent:
    """Samples the odd one out from the softmax of the pair dot products.

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
        Attach the choice probabilities (in shown order) to each answer.

    Notes
    -----
    Given the trials' store keys (as the runners pass them), each answer is drawn from a uniform
    number that depends on the seed and the trial's key alone (:func:`~oddoneout.triplets.keyed_uniforms`):
    a trial gets the same answer in whatever batch, order or process it is asked, so a killed and
    resumed collection stores what one uninterrupted run would; a repeat is another key, hence an
    independent draw. Without keys the answers come from a generator seeded with ``seed`` that
    advances with every call (reproducible given the sequence of batches asked).
    """

    prompt_hash: str | None = None

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

    def probabilities(self, indices: np.ndarray) -> np.ndarray:
        """Probability of each position being the odd one out, for index triplets (n, 3)."""
        return odd_one_out_probabilities(self.features, indices, self.temperature)

    def judge(self, shown: Sequence[tuple[str, str, str]], keys: Sequence[TrialKey] | None = None) -> list[Answer]:
        """Answer triplets of item ids in the order shown (``keys``: their store keys, see Notes)."""
        if len(shown) == 0:
            return []
        probs = self.probabilities(shown_indices(self.item_index, shown, self.name))
        if keys is None:
            choices = draw_choices(probs, self.rng)
        elif len(keys) != len(shown):
            raise InputError(f"agent {self.name!r}: {len(keys)} keys for {len(shown)} triplets")
        else:
            choices = choices_from_draws(probs, keyed_uniforms(self.seed, keys))
        if not self.return_probs:
            return [Answer(choice) for choice in choices.tolist()]
        return [Answer(choice, probs=tuple(p)) for choice, p in zip(choices.tolist(), probs.tolist())]
