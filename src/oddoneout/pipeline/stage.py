"""What a stage is, and the run it works in.

A :class:`Stage` has a name, the study-folder files it reads and those it writes, and a
:meth:`~Stage.run` that reads the one and writes the other. :func:`~oddoneout.pipeline.run_study`
runs a list of them, and each ``oddoneout`` command that works on a study runs one of them (or,
for files outside a study, the function the stage itself calls), so a command and the study
cannot do different things.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from oddoneout.config import StudyConfig
from oddoneout.progress import stage as announce
from oddoneout.stimuli.stimulus_set import StimulusSet
from oddoneout.study_folder import StudyFolder


@dataclass
class StudyRun:
    """One run of a study: its config, its output folder, the systems it runs, the time each step took.

    Parameters
    ----------
    config : StudyConfig
        The loaded config.
    folder : StudyFolder
        The output folder (the one folder object of the run, so no two stages can name one file twice).
    systems : list of str
        The systems this run works on (all of the config's, or those asked for).
    """

    config: StudyConfig
    folder: StudyFolder
    systems: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    _stimuli: StimulusSet | None = None

    @property
    def out(self) -> Path:
        """The output folder's path."""
        return self.folder.root

    @property
    def stimuli(self) -> StimulusSet:
        """The study's stimulus table, as the stimuli stage wrote it (read once)."""
        if self._stimuli is None:
            self._stimuli = StimulusSet.load(self.folder.stimuli)
        return self._stimuli

    def timed(self, label: str, func: Callable[[], Any]) -> Any:
        """Run ``func`` under a progress heading and record its wall time as ``timings[label]``."""
        start = time.perf_counter()
        with announce(label):
            result = func()
        self.timings[label] = round(time.perf_counter() - start, 2)
        return result


class Stage:
    """One step of a study: the files it reads, the files it writes, and how.

    Subclasses set :attr:`name` and implement :meth:`run`; :meth:`reads` and :meth:`writes`
    name the study-folder files (for the checks before a stage runs and for the architecture
    page), and :meth:`wanted` says whether a run that asked for ``selected`` runs this stage.
    """

    name: str = ""

    def reads(self, run: StudyRun) -> list[Path]:
        """Files of the study folder that must exist before the stage runs."""
        return []

    def writes(self, run: StudyRun) -> list[Path]:
        """The main files the stage writes."""
        return []

    def wanted(self, run: StudyRun, selected: set[str]) -> bool:
        """Whether a run asked for the stages ``selected`` runs this one (by default: when named)."""
        return self.name in selected

    def run(self, run: StudyRun) -> None:
        """Read the stage's inputs from the study folder and write its outputs."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SystemStage(Stage):
    """A stage run once per system, each system's run timed as ``"<stage> <system>"``."""

    def reads_of(self, run: StudyRun, system: str) -> list[Path]:
        """Files of one system the stage reads."""
        return []

    def writes_of(self, run: StudyRun, system: str) -> list[Path]:
        """Files of one system the stage writes."""
        return []

    def run_system(self, run: StudyRun, system: str) -> Any:
        """Run the stage for one system."""
        raise NotImplementedError

    def reads(self, run: StudyRun) -> list[Path]:
        return [path for system in run.systems for path in self.reads_of(run, system)]

    def writes(self, run: StudyRun) -> list[Path]:
        return [path for system in run.systems for path in self.writes_of(run, system)]

    def run(self, run: StudyRun) -> None:
        for system in run.systems:
            run.timed(f"{self.name} {system}", lambda: self.run_system(run, system))
