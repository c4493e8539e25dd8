"""The summary and report stages: the study's headline numbers, and the HTML report of everything written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oddoneout.config import StudyConfig
from oddoneout.config.sections import InterpretSettings, ReportSettings
from oddoneout.pipeline.stage import Stage, StudyRun
from oddoneout.provenance import provenance
from oddoneout.study_folder import StudyFolder, read_json, write_json

#: The figures of each system's ``evaluation/<s>.json`` that ``summary.json`` repeats.
SUMMARY_KEYS = (
    "rsm_r",
    "saturation_dims",
    "components_95",
    "components_99",
    "n_judgments",
    "n_failed",
    "n_dims",
    "accuracy",
    "accuracy_ci",
    "cross_entropy",
    "noise_ceiling",
    "noise_ceiling_ci",
    "n_repeated_triplets",
)


def _rounded(value: Any, digits: int = 6) -> Any:
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, (list, tuple)):
        return [_rounded(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    return value


def summarize(run: StudyRun) -> dict[str, Any]:
    """Write ``summary.json``: per system the behavioural figures, per ROI and system the mean encoding r.

    Every system of the config found evaluated in the folder is summarised (not only this run's).
    ``cost`` holds, per system with a store, its cost record (:func:`~oddoneout.collect.cost.store_cost`
    at the prices of ``[cost]``): the times in it are those the store recorded while collecting.
    Numbers are rounded to 6 decimals and no timestamps are written, so equal inputs give an
    identical file.
    """
    from oddoneout.collect.cost import store_cost
    from oddoneout.interpret.stage import interpretation_summary
    from oddoneout.neural.stage import neural_summary

    config, folder = run.config, run.folder
    systems = {}
    for name in config.systems:
        path = folder.system(name).evaluation
        if path.is_file():
            evaluation = read_json(path)
            systems[name] = {k: _rounded(evaluation.get(k)) for k in SUMMARY_KEYS}
            if "trial_type" in evaluation:  # anchor or ranked trials: what the figures are of
                systems[name]["trial_type"] = evaluation["trial_type"]
    summary = {
        "study": config.study.name,
        "synthetic": config.stimuli.source == "synthetic",
        "seed": config.study.seed,
        "provenance": provenance("summary", config_hash=config.hash),
        "systems": systems,
        "interpretation": _rounded(interpretation_summary(folder, list(config.systems))),
        "between_systems": _rounded(read_json(folder.between_systems, missing_ok=True)),
        "cost": {
            name: _rounded(store_cost(folder.system(name).store, config.cost.prices(name)))
            for name in config.systems
            if folder.system(name).store.is_file()
        },
        **neural_summary(folder),
    }
    write_json(folder.summary, summary)
    return summary


class SummaryStage(Stage):
    """Reads the evaluation, interpretation and brain files there are; writes ``summary.json`` (every run)."""

    name = "summary"

    def writes(self, run: StudyRun) -> list[Path]:
        return [run.folder.summary]

    def wanted(self, run: StudyRun, selected: set[str]) -> bool:
        return True

    def run(self, run: StudyRun) -> None:
        summarize(run)


def write_study_report(folder: StudyFolder, config: StudyConfig | None = None) -> Path:
    """What the report stage does: write ``report.html`` and, if asked, ``interactive/<s>_map.html``.

    Parameters
    ----------
    folder : StudyFolder
        The study folder.
    config : StudyConfig, optional
        The study's config: its ``[report] title`` and ``[interpret] interactive`` (default: those sections' defaults).

    Returns
    -------
    Path
        The written ``report.html``.
    """
    from oddoneout.report.html import write_report

    report, interpret = (config.report, config.interpret) if config else (ReportSettings(), InterpretSettings())
    return write_report(folder, title=report.title or None, interactive=interpret.interactive)


class ReportStage(Stage):
    """Reads whatever the other stages wrote; writes ``report.html`` and ``interactive/<s>_map.html``."""

    name = "report"

    def writes(self, run: StudyRun) -> list[Path]:
        return [run.folder.report]

    def run(self, run: StudyRun) -> None:
        run.timed(self.name, lambda: write_study_report(run.folder, run.config))
