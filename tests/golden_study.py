"""The small synthetic study whose summary is committed as a reference (tests/golden/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).resolve().parent / "golden" / "synthetic_small_summary.json"

#: Small enough for the default test run (about a minute on 2 cores), large enough that every
#: stage (collection, l1 selection, evaluation, interpretation, encoding, report) does real work.
SMALL_STUDY = {
    "stimuli": {"n_items": 120, "n_subjects": 2, "n_runs": 6, "voxels_per_roi": 30},
    "design": {"n_triplets": 12000, "repeated_triplets": 200, "n_repeats": 3, "exhaustive_items": 12},
    "embedding": {"n_dims": 20, "l1": [0.01, 0.02]},
    "evaluation": {"n_bootstrap": 100},
    "interpret": {"map_method": "tsne", "interactive": False},
}


def cpu_capability() -> str:
    """torch's CPU kernel family on this machine (e.g. ``"AVX512"``, ``"AVX2"``)."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability())


def run_small_study(out: Path) -> dict[str, Any]:
    """Run the small study into ``out``; return its summary without the provenance record and the cost.

    The cost holds the times this machine took to collect: no reference can have them.
    """
    from oddoneout.pipeline import run_study
    from oddoneout.studies import builtin_config

    run_study(builtin_config("synthetic"), out, overrides=SMALL_STUDY)
    summary = json.loads((out / "summary.json").read_text())
    summary.pop("provenance")
    summary.pop("cost")
    return {"cpu_capability": cpu_capability(), "summary": summary}
