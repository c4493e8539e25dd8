"""The triplet core: the judgment data type, trial types and their choice rule, samplers, readers.

The lowest layer of the package: it imports nothing from :mod:`oddoneout` but
:mod:`oddoneout.errors` and :mod:`oddoneout.provenance`, and collection (:mod:`oddoneout.collect`),
fitting and evaluation (:mod:`oddoneout.embed`) and the agents build on it.

- :mod:`~oddoneout.triplets.trial`: :class:`TrialType`, what a kind of trial owns (items shown,
  canonical layout, choice rule).
- :mod:`~oddoneout.triplets.odd_one_out`: the odd-one-out trial (:data:`ODD_ONE_OUT`), its SPoSE
  layout and the numpy choice rule (:func:`pair_similarities`, :func:`odd_one_out_probabilities`).
- :mod:`~oddoneout.triplets.reference`: trials judged against a reference: the anchor triplet
  (:data:`ANCHOR`) and ranked trials (:class:`Ranked`), their Plackett-Luce choice rule, and
  :func:`trial_type_from_spec`.
- :mod:`~oddoneout.triplets.data`: :class:`Triplets` (trials of one type), :class:`TrialSet` (the
  trials of a fit, one or more types) and index validation.
- :mod:`~oddoneout.triplets.sampling`: random triplets and simulated answers.
- :mod:`~oddoneout.triplets.readers`: :func:`load_triplets` and the registry of file readers.
"""

from oddoneout.triplets.data import TrialSet, Triplets, repeated_item_rows, validate_indices
from oddoneout.triplets.odd_one_out import (
    KEPT_PAIRS,
    ODD_ONE_OUT,
    SPOSE_POSITIONS,
    OddOneOut,
    odd_one_out_probabilities,
    pair_similarities,
)
from oddoneout.triplets.readers import (
    as_item_ids,
    load_triplets,
    read_item_ids,
    read_spose_array,
    register_reader,
    registered_readers,
)
from oddoneout.triplets.reference import ANCHOR, AnchorTriplet, Ranked, reference_similarities, trial_type_from_spec
from oddoneout.triplets.sampling import (
    choices_from_draws,
    draw_choices,
    keyed_uniforms,
    random_trial_indices,
    random_triplet_indices,
    sample_triplets,
)
from oddoneout.triplets.trial import TrialType

__all__ = [
    "ANCHOR",
    "AnchorTriplet",
    "Ranked",
    "random_trial_indices",
    "reference_similarities",
    "trial_type_from_spec",
    "KEPT_PAIRS",
    "ODD_ONE_OUT",
    "SPOSE_POSITIONS",
    "OddOneOut",
    "TrialType",
    "TrialSet",
    "Triplets",
    "as_item_ids",
    "choices_from_draws",
    "draw_choices",
    "keyed_uniforms",
    "load_triplets",
    "odd_one_out_probabilities",
    "pair_similarities",
    "random_triplet_indices",
    "read_item_ids",
    "read_spose_array",
    "register_reader",
    "registered_readers",
    "repeated_item_rows",
    "sample_triplets",
    "validate_indices",
]
