"""Small SPoSE and VICE fits are bit-identical to the committed fingerprints (made by an earlier version).

The fingerprints are hashes, so they can only be compared on a machine with the reference's torch
CPU kernels; elsewhere the test is skipped (the golden study summary still checks results within
tolerances there).
"""

from __future__ import annotations

import json

import pytest
from estimator_fits import CASES, REFERENCE, fingerprint
from golden_study import cpu_capability

_REFERENCE = json.loads(REFERENCE.read_text())


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", sorted(CASES))
def test_fit_is_bit_identical_to_the_reference(name):
    if _REFERENCE["cpu_capability"] != cpu_capability():
        pytest.skip(f"reference made with {_REFERENCE['cpu_capability']} kernels, this machine has {cpu_capability()}")
    assert fingerprint(name) == _REFERENCE["fits"][name]
