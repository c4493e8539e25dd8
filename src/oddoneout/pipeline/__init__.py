"""The study pipeline: stages that each read the files earlier stages wrote to the study folder and write their own.

Stages, in order (:data:`STAGES`): ``stimuli`` -> ``collect`` -> ``fit`` -> ``evaluate`` ->
``interpret`` -> ``encode`` -> ``summary`` -> ``report``. :func:`run_study` runs them from a
config; ``oddoneout run CONFIG --stage NAME`` runs any one of them again (collection resumes),
and the commands that work on single files (``oddoneout fit``, ``evaluate``, ``interpret``,
``encode``) call the function their stage calls (:func:`fit_embedding`, :func:`evaluate_split`, ...).
"""

from oddoneout.pipeline.collect import EXHAUSTIVE_DESIGN, MAIN_DESIGN, REPEAT_DESIGN, study_designs, validation_subset
from oddoneout.pipeline.evaluate import evaluate_split
from oddoneout.pipeline.fit import FittedEmbedding, fit_embedding
from oddoneout.pipeline.run import STAGE_NAMES, STAGES, run_study
from oddoneout.pipeline.stage import Stage, StudyRun, SystemStage

__all__ = [
    "EXHAUSTIVE_DESIGN",
    "MAIN_DESIGN",
    "REPEAT_DESIGN",
    "STAGES",
    "STAGE_NAMES",
    "FittedEmbedding",
    "Stage",
    "StudyRun",
    "SystemStage",
    "evaluate_split",
    "fit_embedding",
    "run_study",
    "study_designs",
    "validation_subset",
]
