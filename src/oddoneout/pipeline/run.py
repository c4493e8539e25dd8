"""A whole study: its stages, in order, run from a config into an output folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from oddoneout.atomic import write_text
from oddoneout.config import check_inputs, dump_config, load_config
from oddoneout.errors import InputError, UnreadableFile
from oddoneout.folder_lock import writer_lock
from oddoneout.pipeline.analyses import EncodeStage, InterpretStage
from oddoneout.pipeline.collect import CollectStage
from oddoneout.pipeline.evaluate import EvaluateStage
from oddoneout.pipeline.fit import FitStage
from oddoneout.pipeline.report import ReportStage, SummaryStage
from oddoneout.pipeline.stage import Stage, StudyRun
from oddoneout.pipeline.stimuli import StimuliStage
from oddoneout.progress import console
from oddoneout.study_folder import StudyFolder, read_json, write_json

#: The study's stages in the order they run; each reads files the ones before it wrote.
STAGES: tuple[Stage, ...] = (
    StimuliStage(),
    CollectStage(),
    FitStage(),
    EvaluateStage(),
    InterpretStage(),
    EncodeStage(),
    SummaryStage(),
    ReportStage(),
)
#: Their names (``summary`` runs in every run).
STAGE_NAMES: tuple[str, ...] = tuple(stage.name for stage in STAGES)


def _check_plan(run: StudyRun, plan: Sequence[Stage]) -> None:
    """Refuse a plan with a stage that reads a file neither the folder nor an earlier stage of the plan has."""
    written: set[Path] = set()
    for stage in plan:
        missing = [path for path in stage.reads(run) if path not in written and not path.exists()]
        if missing:
            names = ", ".join(str(path.relative_to(run.out)) for path in missing[:3])
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise InputError(
                f"stage {stage.name!r} reads {names}{more}, not in {run.out}: run the stages before it first"
            )
        written.update(stage.writes(run))


def _writer(run: StudyRun, path: Path) -> str | None:
    """The name of the stage that writes ``path`` (``None`` when no stage does)."""
    target = path.resolve()
    for stage in STAGES:
        if any(written.resolve() == target for written in stage.writes(run)):
            return stage.name
    return None


def run_study(
    config_path: str | Path,
    out: str | Path,
    stages: Sequence[str] = STAGE_NAMES,
    systems: Sequence[str] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    scale: str | None = None,
) -> dict[str, Any]:
    """Run the stages of a study config into ``out`` and return the summary.

    Every check that needs no stage to have run (the config, the names asked for, the input
    files the config names) is made before the first stage starts.

    Parameters
    ----------
    config_path : path
        Study config (TOML).
    out : path
        Output folder (created). Re-running into the same folder resumes collection.
    stages : sequence of str
        Which of :data:`STAGE_NAMES` to run (always in pipeline order; the stimuli stage also
        runs when the folder has no stimulus table yet, the summary in every run).
    systems : sequence of str, optional
        Restrict to these systems (default: all in the config).
    overrides : dict, optional
        ``{section: {key: value}}`` applied over the config file.
    scale : str, optional
        A ``[scales.NAME]`` table of the config to apply (e.g. ``"paper"``).

    Returns
    -------
    dict
        The contents of ``summary.json``.

    Raises
    ------
    InputError
        On a bad config, an unknown stage or system, a missing input file, or a stage whose
        inputs no earlier stage has written. An unreadable file of the folder
        (:class:`~oddoneout.errors.UnreadableFile`) names the stage that writes it.
    """
    config = load_config(config_path, overrides, scale=scale)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"output folder {out} is a file: give --out a folder")
    unknown_stages = sorted(set(stages) - set(STAGE_NAMES))
    if unknown_stages:
        raise InputError(f"unknown stage(s) {unknown_stages}; stages: {list(STAGE_NAMES)}")
    names = list(systems) if systems else list(config.systems)
    unknown = sorted(set(names) - set(config.systems))
    if unknown:
        raise InputError(f"unknown system(s) {unknown}; the config has {sorted(config.systems)}")
    run = StudyRun(config, StudyFolder(out), names)
    selected = set(stages)
    plan = [stage for stage in STAGES if stage.wanted(run, selected)]
    check_inputs(config, [stage.name for stage in plan], names)
    _check_plan(run, plan)
    out.mkdir(parents=True, exist_ok=True)
    with writer_lock(run.folder.lock) as lock:
        if lock:
            was = lock["taken_over"]
            console.print(f"took over the lock of pid {was.get('pid')} ({was.get('command')!r}): it ended unfinished")
        write_text(run.folder.config, dump_config(config))
        for stage in plan:
            try:
                stage.run(run)
            except UnreadableFile as exc:
                writer = None if exc.remedy else _writer(run, exc.path)
                if writer is None:
                    raise
                raise exc.with_remedy(f"re-run the {writer} stage or delete it") from exc
        run.timings["total"] = round(sum(run.timings.values()), 2)
        write_json(run.folder.timings, run.timings)
    console.print(f"[bold green]done[/] in {run.timings['total']:.1f} s: {run.folder.summary}")
    return read_json(run.folder.summary)
