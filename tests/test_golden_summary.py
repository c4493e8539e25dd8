"""The small synthetic study gives the committed reference summary (made by an earlier version of the code).

Refactors must leave results unchanged: on a machine with the reference's torch CPU kernels the
summary is compared exactly; elsewhere floating-point rounding differs, so numbers are compared
within tolerances and counts of judgments exactly.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from golden_study import REFERENCE, cpu_capability, run_small_study

#: Tolerances where the kernels differ from the reference machine's.
ABS_TOL = 0.02
DIM_TOL = 3


def _mismatches(expected: Any, actual: Any, path: str, exact: bool) -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        differ = sorted(set(expected) ^ set(actual))
        problems = [f"{path}: keys differ {differ}"] if differ else []
        for key in sorted(set(expected) & set(actual)):
            problems += _mismatches(expected[key], actual[key], f"{path}.{key}", exact)
        return problems
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [p for i, (e, a) in enumerate(zip(expected, actual)) for p in _mismatches(e, a, f"{path}[{i}]", exact)]
    if exact or not isinstance(expected, (int, float)) or isinstance(expected, bool) or expected is None:
        return [] if expected == actual else [f"{path}: expected {expected!r}, got {actual!r}"]
    if not isinstance(actual, (int, float)):
        return [f"{path}: expected {expected!r}, got {actual!r}"]
    if "n_judgments" in path or "n_repeated" in path or "n_failed" in path:
        return [] if expected == actual else [f"{path}: expected {expected}, got {actual}"]
    tolerance = DIM_TOL if isinstance(expected, int) else ABS_TOL
    return [] if math.isclose(expected, actual, abs_tol=tolerance) else [f"{path}: expected {expected}, got {actual}"]


@pytest.mark.filterwarnings("ignore")
def test_small_study_summary_equals_the_reference(tmp_path):
    reference = json.loads(REFERENCE.read_text())
    result = run_small_study(tmp_path)
    exact = reference["cpu_capability"] == cpu_capability()
    problems = _mismatches(reference["summary"], result["summary"], "summary", exact)
    assert not problems, f"{len(problems)} difference(s) (exact={exact}):\n" + "\n".join(problems[:40])
