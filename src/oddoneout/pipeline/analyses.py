"""The interpret and encode stages: what each embedding means, how well it predicts the brain."""

from __future__ import annotations

from pathlib import Path

from oddoneout.embedding import Embedding
from oddoneout.pipeline.stage import Stage, StudyRun, SystemStage
from oddoneout.study_folder import nan_to_none, write_json


class InterpretStage(SystemStage):
    """Reads ``embeddings/<s>.parquet`` and ``stimuli.parquet``; writes ``interpret/<s>_*.csv``.

    With two systems or more it then writes ``interpret/systems_rsa.csv``, ``cross_accuracy.csv``
    and ``between_systems.json`` (:func:`~oddoneout.interpret.stage.interpret_embedding`,
    :func:`~oddoneout.interpret.cross_system.compare_systems_stage`).
    """

    name = "interpret"

    def reads_of(self, run: StudyRun, system: str) -> list[Path]:
        return [run.folder.stimuli, run.folder.system(system).embedding]

    def writes_of(self, run: StudyRun, system: str) -> list[Path]:
        return list(run.folder.interpret(system).as_dict().values())

    def writes(self, run: StudyRun) -> list[Path]:
        between = [run.folder.systems_rsa, run.folder.cross_accuracy, run.folder.between_systems]
        return super().writes(run) + (between if len(run.systems) > 1 else [])

    def run_system(self, run: StudyRun, system: str) -> dict[str, Path]:
        from oddoneout.interpret.stage import interpret_embedding

        embedding = Embedding.load(run.folder.system(system).embedding)
        return interpret_embedding(
            run.config.interpret, run.folder, system, embedding, run.stimuli, seed=run.config.study.seed
        )

    def run(self, run: StudyRun) -> None:
        super().run(run)
        if len(run.systems) > 1:
            run.timed("compare systems", lambda: compare_systems(run))


def compare_systems(run: StudyRun) -> dict:
    """RSA between systems' similarity structures and cross-prediction of held-out triplets."""
    from oddoneout.interpret.cross_system import compare_systems_stage

    result = compare_systems_stage(run.folder, run.systems, seed=run.config.study.seed, n_bootstrap=1000)
    write_json(run.folder.between_systems, nan_to_none(result))
    return result


class EncodeStage(Stage):
    """Reads every system's embedding and the brain data; writes ``neural/``, ``encoding/`` and ``rsa/``
    (:func:`~oddoneout.neural.stage.run_neural_stage`)."""

    name = "encode"

    def reads(self, run: StudyRun) -> list[Path]:
        return [run.folder.system(system).embedding for system in run.systems]

    def writes(self, run: StudyRun) -> list[Path]:
        return [run.folder.roi_table("encoding"), run.folder.ceiling_table]

    def run(self, run: StudyRun) -> None:
        from oddoneout.neural.stage import run_neural_stage

        run.timed(self.name, lambda: run_neural_stage(run.config, run.folder, run.systems))
