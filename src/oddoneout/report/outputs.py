"""What a report shows, read from a study output folder: the input of every section renderer.

The report computes no analysis: each number it shows was written by a stage (through
:class:`~oddoneout.study_folder.StudyFolder`); a file that is absent gives a note in its section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.interpret.ratings import read_rating_correlations, read_top_items
from oddoneout.interpret.stage import NO_DIMENSIONS
from oddoneout.stimuli.stimulus_set import StimulusSet
from oddoneout.study_folder import StudyFolder, read_json, read_roi_table

__all__ = ["StudyOutputs", "load_study_outputs"]


@dataclass
class StudyOutputs:
    """Everything a report can show, read from one study output folder.

    Attributes that stay empty (``None`` or ``{}``) mean the files were absent; ``notes`` says,
    per section, what was missing. Files a section reads only when drawn (statistics tables,
    per-voxel scores) are read through ``folder``.
    """

    folder: StudyFolder
    summary: dict[str, Any] = field(default_factory=dict)
    config_text: str | None = None
    stimuli: StimulusSet | None = None
    evaluations: dict[str, dict[str, Any]] = field(default_factory=dict)
    embeddings: dict[str, Embedding] = field(default_factory=dict)
    correlations: dict[str, pd.DataFrame] = field(default_factory=dict)
    top_items: dict[str, pd.DataFrame] = field(default_factory=dict)
    roi_r: pd.DataFrame | None = None  #: ``encoding/roi_r.csv``
    rsa_r: pd.DataFrame | None = None  #: ``rsa/roi_r.csv``
    notes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def out_dir(self) -> Path:
        """The study output folder."""
        return self.folder.root

    def note(self, section: str, text: str) -> None:
        """Keep a note (a missing file, a skipped part) for one section of the report."""
        self.notes.setdefault(section, []).append(text)

    @property
    def systems(self) -> list[str]:
        """Systems in summary order, then any other system found in a file, sorted."""
        ordered = list(self.summary.get("systems", {}) or {})
        found: set[str] = set(self.evaluations) | set(self.embeddings) | set(self.correlations) | set(self.top_items)
        if self.roi_r is not None:
            found |= set(self.roi_r["system"].astype(str))
        for roi_means in (self.summary.get("encoding") or {}).values():
            found |= set(roi_means or {})
        return ordered + sorted(found - set(ordered))


def load_study_outputs(out_dir: str | Path | StudyFolder) -> StudyOutputs:
    """Read the parts of a study output folder that exist.

    Raises
    ------
    InputError
        If ``out_dir`` is not a folder, or a file that exists is malformed.
    """
    folder = StudyFolder.of(out_dir)
    if not folder.root.is_dir():
        raise InputError(f"study output folder not found: {folder.root}")
    outputs = StudyOutputs(folder=folder)

    if folder.summary.is_file():
        outputs.summary = read_json(folder.summary)
    else:
        outputs.note("header", "summary.json is missing: no study name, seed or provenance.")
    if folder.config.is_file():
        outputs.config_text = folder.config.read_text(encoding="utf-8")
    else:
        outputs.note("header", "config.toml is missing.")
    if folder.stimuli.is_file():
        outputs.stimuli = StimulusSet.load(folder.stimuli)
    else:
        outputs.note("embeddings", "stimuli.parquet is missing: no captions or thumbnails.")

    for system, path in folder.found("evaluation").items():
        outputs.evaluations[system] = read_json(path)
    if not outputs.evaluations:
        outputs.note("behaviour", "No evaluation files (evaluation/*.json): no training curves.")
    for system, path in folder.found("embedding").items():
        outputs.embeddings[system] = Embedding.load(path)
    for system, path in folder.found("ratings").items():
        outputs.correlations[system] = read_rating_correlations(path)
    for system, path in folder.found("top_items").items():
        outputs.top_items[system] = read_top_items(path)
    for system, embedding in outputs.embeddings.items():
        if embedding.n_dims == 0:
            outputs.note("embeddings", f"{system}: {NO_DIMENSIONS}")
            continue
        missing = [
            f"interpret/{system}_{kind}.csv"
            for kind, read in (("ratings", outputs.correlations), ("top_items", outputs.top_items))
            if system not in read
        ]
        if missing:
            outputs.note(
                "embeddings",
                f"{system}: {' and '.join(missing)} missing: run the interpret stage "
                "(rating correlations also need rating columns in the stimuli).",
            )

    outputs.roi_r = read_roi_table(folder.roi_table("encoding"))
    outputs.rsa_r = read_roi_table(folder.roi_table("rsa"))
    if outputs.roi_r is None and outputs.summary.get("encoding"):
        outputs.note("brain", "encoding/roi_r.csv is missing: showing the subject means of summary.json only.")
    elif outputs.roi_r is None:
        outputs.note("brain", "No encoding results (encoding/roi_r.csv or the encoding entry of summary.json).")
    return outputs
