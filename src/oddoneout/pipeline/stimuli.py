"""The stimuli stage: the study's stimulus table (and, for the synthetic study, its world)."""

from __future__ import annotations

from pathlib import Path

from oddoneout.config import StudyConfig
from oddoneout.pipeline.stage import Stage, StudyRun
from oddoneout.stimuli.stimulus_set import StimulusSet
from oddoneout.study_folder import StudyFolder


def prepare_stimuli(config: StudyConfig, folder: StudyFolder) -> StimulusSet:
    """Write ``stimuli.parquet`` (and, for the synthetic study, the world: agent views, brain, truth).

    ``[stimuli] source`` is ``"synthetic"``, ``"cowen_keltner"`` (fetched, or read offline from
    ``path`` / ``$ODDONEOUT_COWEN_KELTNER``) or the path of a stimulus table.
    """
    settings = config.stimuli
    if settings.source == "synthetic":
        from oddoneout.studies.synthetic import make_world

        world = make_world(
            n_items=settings.n_items,
            n_subjects=settings.n_subjects,
            n_runs=settings.n_runs,
            voxels_per_roi=settings.voxels_per_roi,
            seed=config.study.seed,
        )
        world.write(folder.root)
        return world.stimuli
    if settings.source == "cowen_keltner":
        from oddoneout.stimuli.cowen_keltner import load_cowen_keltner

        offline = config.resolve(settings.path) if settings.path else None
        stimuli = load_cowen_keltner(source=offline)
        source = "cowen_keltner"
    else:
        stimuli = StimulusSet.load(config.resolve(settings.source))
        source = str(settings.source)
    _attach_videos(config, stimuli)
    stimuli.save(folder.stimuli, source=source)
    return stimuli


def _attach_videos(config: StudyConfig, stimuli: StimulusSet) -> None:
    """Record each item's video file (``[stimuli] videos``) in the table's ``media_path``."""
    if not config.stimuli.videos:
        return
    from oddoneout.stimuli.videos import match_videos

    found = match_videos(config.resolve(config.stimuli.videos), stimuli.item_ids)
    stimuli.table["media_path"] = [str(found[i]) if i in found else None for i in stimuli.table.index]


class StimuliStage(Stage):
    """Reads the config's stimulus source; writes ``stimuli.parquet`` (run whenever it is missing)."""

    name = "stimuli"

    def writes(self, run: StudyRun) -> list[Path]:
        return [run.folder.stimuli]

    def wanted(self, run: StudyRun, selected: set[str]) -> bool:
        return self.name in selected or not run.folder.stimuli.is_file()

    def run(self, run: StudyRun) -> None:
        run.timed(self.name, lambda: prepare_stimuli(run.config, run.folder))
        run._stimuli = None
