"""The study's published numbers beside ours.

:data:`PAPER_NUMBERS` lists every number the study description (``docs/STUDY.md``, after Du et al.
2025, arXiv 2509.24298) gives, with the sentence it comes from. :func:`reproduction_table` puts
the matching value of a study run (its ``summary.json``) beside each.

Where a run's value is looked up
--------------------------------
Each paper number names a ``key`` in a path of the summary (``{system}`` is the system):

===========================  =======================================================================
quantity                     summary path (CI, when any: the same key + ``_ci``)
===========================  =======================================================================
accuracy, noise_ceiling      ``systems/{system}/accuracy`` (``accuracy_ci``), ``.../noise_ceiling``
n_dims                       ``systems/{system}/n_dims``
n_judgments                  ``systems/{system}/n_judgments``
validation_r                 ``systems/{system}/rsm_r`` (66-video exhaustive subset)
share_<class>                ``interpretation/{system}/class_shares/<class>``
centroid_top3, chance        ``interpretation/{system}/centroid_top3``, ``.../centroid_chance_top3``
rsa_TPJ                      ``rsa/TPJ/{system}``
encoding_ratio_vs_<other>    mean over ROIs of ``encoding/<roi>/{system}`` divided by the same mean
                             for ``<other>``
===========================  =======================================================================

Approximate paper numbers ("~97%") are stored as the number; the ``approx`` column says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from oddoneout.errors import InputError

#: Columns of :func:`reproduction_table`.
REPRODUCTION_COLUMNS = (
    "quantity",
    "system",
    "paper",
    "approx",
    "ours",
    "ours_ci_low",
    "ours_ci_high",
    "run",
    "source",
)


@dataclass(frozen=True)
class PaperNumber:
    """One published number: what it measures, for which system, its value and source sentence."""

    quantity: str
    system: str
    value: float
    approx: bool
    source: str


_ACC = (
    "held-out odd-one-out accuracy against a noise ceiling ... Paper: LLM 62.1% (ceiling 74.4%), "
    "MLLM 77.1% (ceiling 84.2%); simulated human systems ~97% (category) and ~92% (dimension)."
)
_VAL = (
    "a 66-video validation subset with exhaustive triplets: measured similarity ... vs similarity predicted "
    "by the embedding: LLM r=0.83, MLLM r=0.85, human-category 0.96, human-dimension 0.94."
)
_DIMS = 'About 30 dimensions emerge; prediction of held-out similarity saturates at ~30 ("Optimized dimensions (30D)").'
_TRIALS = "MLLM ... ~7.1M trials. LLM ... ~5.5M trials. Human-category and human-dimension ... ~7.1M trials each."
_SHARES = "share of dimensions that are categorical, hybrid or dimensional (MLLM ~57/43/0%, LLM ~37/50/13%)"
_CENTROID = (
    "t-SNE maps with top-3 nearest-centroid classification over 27 categories (human-category ~98%, "
    "human-dimension ~60%, LLM ~72%, MLLM ~70%, chance ~25%)"
)
_RSA = "e.g. TPJ RSA r ~0.11 vs human-category ~0.09, LLM ~0.06, human-dimension ~0.03"
_VOXEL = "voxel-wise ~120% of human-category and ~160% of human-dimension"

#: Every number of the study description, in the order it gives them.
PAPER_NUMBERS: tuple[PaperNumber, ...] = (
    PaperNumber("accuracy", "llm", 0.621, False, _ACC),
    PaperNumber("noise_ceiling", "llm", 0.744, False, _ACC),
    PaperNumber("accuracy", "mllm", 0.771, False, _ACC),
    PaperNumber("noise_ceiling", "mllm", 0.842, False, _ACC),
    PaperNumber("accuracy", "human_category", 0.97, True, _ACC),
    PaperNumber("accuracy", "human_dimension", 0.92, True, _ACC),
    PaperNumber("validation_r", "llm", 0.83, False, _VAL),
    PaperNumber("validation_r", "mllm", 0.85, False, _VAL),
    PaperNumber("validation_r", "human_category", 0.96, False, _VAL),
    PaperNumber("validation_r", "human_dimension", 0.94, False, _VAL),
    PaperNumber("n_dims", "mllm", 30, True, _DIMS),
    PaperNumber("n_dims", "llm", 30, True, _DIMS),
    PaperNumber("n_judgments", "mllm", 7.1e6, True, _TRIALS),
    PaperNumber("n_judgments", "llm", 5.5e6, True, _TRIALS),
    PaperNumber("n_judgments", "human_category", 7.1e6, True, _TRIALS),
    PaperNumber("n_judgments", "human_dimension", 7.1e6, True, _TRIALS),
    PaperNumber("share_categorical", "mllm", 0.57, True, _SHARES),
    PaperNumber("share_hybrid", "mllm", 0.43, True, _SHARES),
    PaperNumber("share_dimensional", "mllm", 0.0, True, _SHARES),
    PaperNumber("share_categorical", "llm", 0.37, True, _SHARES),
    PaperNumber("share_hybrid", "llm", 0.50, True, _SHARES),
    PaperNumber("share_dimensional", "llm", 0.13, True, _SHARES),
    PaperNumber("centroid_top3", "human_category", 0.98, True, _CENTROID),
    PaperNumber("centroid_top3", "human_dimension", 0.60, True, _CENTROID),
    PaperNumber("centroid_top3", "llm", 0.72, True, _CENTROID),
    PaperNumber("centroid_top3", "mllm", 0.70, True, _CENTROID),
    PaperNumber("centroid_chance_top3", "all", 0.25, True, _CENTROID),
    PaperNumber("rsa_TPJ", "mllm", 0.11, True, _RSA),
    PaperNumber("rsa_TPJ", "human_category", 0.09, True, _RSA),
    PaperNumber("rsa_TPJ", "llm", 0.06, True, _RSA),
    PaperNumber("rsa_TPJ", "human_dimension", 0.03, True, _RSA),
    PaperNumber("encoding_ratio_vs_human_category", "mllm", 1.20, True, _VOXEL),
    PaperNumber("encoding_ratio_vs_human_dimension", "mllm", 1.60, True, _VOXEL),
)


def paper_numbers() -> pd.DataFrame:
    """The study's numbers as a table: ``quantity, system, paper, approx, source``."""
    return pd.DataFrame(
        [(p.quantity, p.system, p.value, p.approx, p.source) for p in PAPER_NUMBERS],
        columns=["quantity", "system", "paper", "approx", "source"],
    )


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def _get(tree: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(tree, Mapping) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _ci(value: Any) -> tuple[float, float]:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return _float(value[0]), _float(value[1])
    return np.nan, np.nan


def _mean_encoding(summary: Mapping, system: str) -> float:
    values = [_float(_get(summary, "encoding", roi, system)) for roi in (summary.get("encoding") or {})]
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else np.nan


def _ours(summary: Mapping, quantity: str, system: str) -> tuple[float, float, float]:
    """Our value and CI for one paper number (NaN where the summary lacks it)."""
    systems = summary.get("systems") or {}
    if quantity in ("accuracy", "noise_ceiling", "n_dims", "n_judgments", "validation_r"):
        row = systems.get(system) or {}
        key = "rsm_r" if quantity == "validation_r" else quantity
        return (_float(row.get(key)), *_ci(row.get(f"{key}_ci")))
    if quantity.startswith("share_"):
        value = _get(summary, "interpretation", system, "class_shares", quantity.removeprefix("share_"))
        return _float(value), np.nan, np.nan
    if quantity == "centroid_top3":
        row = _get(summary, "interpretation", system) or {}
        return (_float(row.get("centroid_top3")), *_ci(row.get("centroid_top3_ci")))
    if quantity == "centroid_chance_top3":
        values = [
            _float(_get(summary, "interpretation", s, "centroid_chance_top3"))
            for s in summary.get("interpretation") or {}
        ]
        values = [v for v in values if np.isfinite(v)]
        return (float(np.mean(values)) if values else np.nan), np.nan, np.nan
    if quantity.startswith("rsa_"):
        return _float(_get(summary, "rsa", quantity.removeprefix("rsa_"), system)), np.nan, np.nan
    if quantity.startswith("encoding_ratio_vs_"):
        other = quantity.removeprefix("encoding_ratio_vs_")
        denominator = _mean_encoding(summary, other)
        ratio = _mean_encoding(summary, system) / denominator if denominator else np.nan
        return ratio, np.nan, np.nan
    return np.nan, np.nan, np.nan


def reproduction_table(summary: Mapping[str, Any]) -> pd.DataFrame:
    """Each paper number beside the value of a study run.

    Parameters
    ----------
    summary : mapping
        A study's ``summary.json`` (see the module docstring for the paths read).

    Returns
    -------
    DataFrame
        One row per paper number (:data:`PAPER_NUMBERS` order), columns ``quantity, system,
        paper, approx, ours, ours_ci_low, ours_ci_high, run, source``. ``run`` says whether the
        system appears in ``summary["systems"]`` (``"all"`` rows: whether any does); ``ours`` and
        its CI are NaN where the run lacks the number.

    Raises
    ------
    InputError
        If ``summary`` is not a mapping or its ``systems`` entry is not one.
    """
    if not isinstance(summary, Mapping):
        raise InputError(f"reproduction_table: summary must be a mapping, got {type(summary).__name__}")
    systems = summary.get("systems") or {}
    if not isinstance(systems, Mapping):
        raise InputError("reproduction_table: summary['systems'] must be a mapping of system to results")
    rows = []
    for number in PAPER_NUMBERS:
        run = bool(systems) if number.system == "all" else number.system in systems
        ours, low, high = _ours(summary, number.quantity, number.system) if run else (np.nan,) * 3
        rows.append((number.quantity, number.system, number.value, number.approx, ours, low, high, run, number.source))
    return pd.DataFrame(rows, columns=list(REPRODUCTION_COLUMNS))
