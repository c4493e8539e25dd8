"""The input files a study config names, checked before any stage runs (only those the run's stages read)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

from oddoneout.config.sections import NEURAL_FILE_SOURCES
from oddoneout.config.study import StudyConfig
from oddoneout.errors import InputError

#: ``[stimuli] source`` values that are not a stimulus table.
BUILTIN_STIMULI = ("synthetic", "cowen_keltner")


def _named_files(config: StudyConfig, stages: Sequence[str], systems: Sequence[str]) -> Iterator[tuple[str, str, str]]:
    """``(table, key, value)`` of every file or folder the stages read."""
    from oddoneout.agents.inputs import PACKAGED_PROMPTS, prompt_spec
    from oddoneout.agents.registry import FeatureSettings, LanguageModelSettings, LlamaSettings

    stimuli = config.stimuli
    if "stimuli" in stages:
        if stimuli.source not in BUILTIN_STIMULI:
            yield "stimuli", "source", stimuli.source
        if stimuli.path:
            yield "stimuli", "path", stimuli.path
        if stimuli.videos:
            yield "stimuli", "videos", stimuli.videos
    if "collect" in stages:
        for name in systems:
            system, table = config.systems[name], f"systems.{name}"
            settings = system.settings
            if system.design.triplets:
                yield f"{table}.design", "triplets", system.design.triplets
            if isinstance(settings, FeatureSettings) and not settings.features.startswith("synthetic:"):
                yield table, "features", settings.features
            if isinstance(settings, LanguageModelSettings):
                if prompt_spec(settings) not in PACKAGED_PROMPTS:
                    yield table, "prompt", settings.prompt
                if settings.input == "frames" and not stimuli.videos:
                    raise InputError(
                        f"{config.file}: [{table}] input = 'frames': set [stimuli] videos to the folder of the videos"
                    )
            if isinstance(settings, LlamaSettings) and settings.gguf:
                yield table, "gguf", settings.gguf
    neural = config.neural
    if "encode" in stages and neural.source in NEURAL_FILE_SOURCES:
        for key in ("subjects", "tables"):
            for value in getattr(neural, key):
                yield "neural", key, value
        for _, mask in neural.roi_masks:
            yield "neural", "roi_masks", mask
        for key in ("mask", "roi_info"):
            if getattr(neural, key):
                yield "neural", key, getattr(neural, key)


def check_inputs(config: StudyConfig, stages: Sequence[str], systems: Sequence[str] | None = None) -> None:
    """Refuse a run whose stages would read a file or folder that is not there.

    Parameters
    ----------
    config : StudyConfig
        The loaded config.
    stages : sequence of str
        The stages to run (``stimuli`` reads the stimulus files, ``collect`` each system's
        triplet list, feature table, prompt and model files, ``encode`` the brain data).
    systems : sequence of str, optional
        The systems collected (default: all).

    Raises
    ------
    InputError
        Naming the config file, the table, the key and the missing path.
    """
    for table, key, value in _named_files(config, stages, list(systems or config.systems)):
        path: Path = config.resolve(value)
        if not path.exists():
            raise InputError(f"{config.file}: [{table}] {key} = {value!r}: not found ({path})")
