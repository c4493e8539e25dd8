"""What an agent reads from its study: its seed, a feature table, captions, the prompt, the videos."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from oddoneout.errors import InputError
from oddoneout.files import read_parquet
from oddoneout.provenance import hash_text
from oddoneout.stimuli.stimulus_set import StimulusSet
from oddoneout.study_folder import StudyFolder

if TYPE_CHECKING:
    from oddoneout.agents.prompts import PromptTemplate
    from oddoneout.agents.reference_prompts import ReferencePrompt
    from oddoneout.config import StudyConfig
    from oddoneout.triplets import TrialType


def system_seed(config: StudyConfig, name: str) -> int:
    """A per-system seed derived from the study seed, so systems draw independent streams."""
    return int(hash_text(str(config.study.seed), name)[:8], 16)


def feature_table(config: StudyConfig, out: Path | StudyFolder, spec: str) -> pd.DataFrame:
    """The feature table named by ``features = spec`` (``synthetic:<view>`` or a Parquet/CSV file)."""
    if spec.startswith("synthetic:"):
        path = StudyFolder.of(out).world_view(spec.split(":", 1)[1])
    else:
        path = config.resolve(spec)
    if not path.is_file():
        raise InputError(f"feature table not found: {path} (from features = {spec!r})")
    frame = read_parquet(path).to_pandas() if path.suffix == ".parquet" else pd.read_csv(path)
    if frame.index.name != "item_id":
        if "item_id" not in frame.columns:
            raise InputError(f"{path}: feature table needs an item_id column")
        frame = frame.set_index("item_id")
    frame.index = frame.index.astype(str)
    return frame


#: The packaged prompts (``prompt = ...``); any other value is a prompt file.
PACKAGED_PROMPTS = ("paper_llm", "paper_mllm")


def prompt_spec(settings: Any) -> str:
    """The prompt a language-model system asks with: its ``prompt``, else the paper's for its ``input``."""
    return settings.prompt or ("paper_mllm" if settings.input == "frames" else "paper_llm")


def prompt(config: StudyConfig, settings: Any) -> PromptTemplate:
    """The prompt template of a language-model system (``settings``: its kind's settings)."""
    from oddoneout.agents.prompts import load_prompt

    spec = prompt_spec(settings)
    if spec not in PACKAGED_PROMPTS:
        spec = str(config.resolve(spec))
    return load_prompt(spec, mode="video" if settings.input == "frames" else "text")


def trial_type(config: StudyConfig, name: str) -> TrialType:
    """The kind of trial system ``name`` is asked (its design's ``trial_type``)."""
    from oddoneout.triplets import trial_type_from_spec

    return trial_type_from_spec(config.systems[name].design.trial_type)


def reference_prompt(config: StudyConfig, settings: Any, kind: TrialType) -> ReferencePrompt | None:
    """The prompt of a language-model system asked anchor or ranked trials (``None`` for odd-one-out).

    A ``prompt`` left out or naming a packaged (odd-one-out) prompt gives the built-in prompt of
    the trial type for the system's ``input``; any other ``prompt`` is a ``.txt`` file holding
    that trial type's prompt (:func:`~oddoneout.agents.reference_prompts.load_reference_prompt`).
    """
    from oddoneout.agents.reference_prompts import BUILTIN_REFERENCE_PROMPTS, load_reference_prompt
    from oddoneout.triplets import ODD_ONE_OUT

    if kind == ODD_ONE_OUT:
        return None
    mode = "video" if settings.input == "frames" else "text"
    spec = prompt_spec(settings)
    if spec in PACKAGED_PROMPTS:
        return BUILTIN_REFERENCE_PROMPTS[(kind.name, mode)]
    return load_reference_prompt(config.resolve(spec), mode)


def captions(stimuli: StimulusSet) -> dict[str, str]:
    """Each item's caption."""
    return {item_id: str(caption) for item_id, caption in stimuli.table["caption"].items()}


def all_captions(stimuli: StimulusSet) -> dict[str, list[str]]:
    """Each item's captions (its ``captions`` list where there is one, else its caption)."""
    table = stimuli.table
    if "captions" not in table.columns:
        return {item_id: [str(caption)] for item_id, caption in table["caption"].items()}
    return {
        item_id: [str(c) for c in captions] if captions is not None and len(captions) else [str(caption)]
        for item_id, captions, caption in zip(table.index, table["captions"], table["caption"])
    }


def videos(config: StudyConfig, stimuli: StimulusSet, name: str) -> dict[str, Path]:
    """Each item's video file, from ``[stimuli] videos`` (every item must have one)."""
    from oddoneout.stimuli.videos import match_videos

    folder = config.stimuli.videos
    if not folder:
        raise InputError(f"system {name!r} watches frames: set [stimuli] videos to the folder of the study's videos")
    return match_videos(config.resolve(folder), stimuli.item_ids, require_all=True)


def model_inputs(config: StudyConfig, name: str, stimuli: StimulusSet) -> dict[str, Any]:
    """What a language model reads and how it samples, shared by the ``openai`` and ``vllm`` agents."""
    from oddoneout.agents.prompts import load_prompt
    from oddoneout.media.frames import FrameSpec
    from oddoneout.triplets import ODD_ONE_OUT

    settings = config.systems[name].settings
    frames = settings.input == "frames"
    kind = trial_type(config, name)
    if kind == ODD_ONE_OUT:
        odd_one_out_prompt = prompt(config, settings)
    else:  # only its mode matters: the trials are asked with the reference prompt
        odd_one_out_prompt = load_prompt("paper_mllm" if frames else "paper_llm")
    return {
        "prompt": odd_one_out_prompt,
        "trial_type": kind,
        "reference_prompt": reference_prompt(config, settings, kind),
        "captions": None if frames else captions(stimuli),
        "videos": videos(config, stimuli, name) if frames else None,
        "frames": FrameSpec(n_frames=settings.n_frames, size=settings.frame_size),
        "logprobs": settings.logprobs,
        "temperature": settings.llm_temperature,
        "max_tokens": settings.answer_tokens,
        "seed": system_seed(config, name),
    }
