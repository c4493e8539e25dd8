"""Build the agent a ``[systems.NAME]`` table of a study config describes.

Kinds (``agent = ...``):

``ratings``    the paper's rating-based systems: cosine similarity of rating vectors.
``similarity`` cosine similarity of any feature table.
``simulated``  softmax choice from a known embedding (tests, the synthetic study).
``minilm``     MiniLM embeddings of each item's captions, then cosine similarity (offline).
``llama``      a local GGUF model through llama-cpp-python, reading captions (offline).
``openai``     any OpenAI-compatible chat server, reading captions or watching video frames.
``vllm``       vLLM's offline engine on local GPUs (batched), the same requests as ``openai``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from oddoneout.agents.base import Agent, AsyncAgent
from oddoneout.config import resolve_path
from oddoneout.errors import InputError
from oddoneout.provenance import hash_text
from oddoneout.stimuli.stimulus_set import StimulusSet
from oddoneout.study_folder import StudyFolder


def system_seed(config: dict[str, Any], name: str) -> int:
    """A per-system seed derived from the study seed, so systems draw independent streams."""
    return int(hash_text(str(config["study"]["seed"]), name)[:8], 16)


def feature_table(config: dict[str, Any], out: Path, spec: str) -> pd.DataFrame:
    """The feature table named by ``features = spec`` (``synthetic:<view>`` or a Parquet/CSV file)."""
    if spec.startswith("synthetic:"):
        path = StudyFolder(out).world_view(spec.split(":", 1)[1])
    else:
        path = resolve_path(config, spec)
    if not path.is_file():
        raise InputError(f"feature table not found: {path} (from features = {spec!r})")
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    if frame.index.name != "item_id":
        if "item_id" not in frame.columns:
            raise InputError(f"{path}: feature table needs an item_id column")
        frame = frame.set_index("item_id")
    frame.index = frame.index.astype(str)
    return frame


def _prompt(system: dict[str, Any], config: dict[str, Any]):
    from oddoneout.agents.prompts import load_prompt

    spec = system["prompt"] or ("paper_mllm" if system["input"] == "frames" else "paper_llm")
    if spec not in ("paper_llm", "paper_mllm"):
        spec = str(resolve_path(config, spec))
    return load_prompt(spec, mode="video" if system["input"] == "frames" else "text")


def _captions(stimuli: StimulusSet) -> dict[str, str]:
    return {item_id: str(caption) for item_id, caption in stimuli.table["caption"].items()}


def _all_captions(stimuli: StimulusSet) -> dict[str, list[str]]:
    table = stimuli.table
    if "captions" not in table.columns:
        return {item_id: [str(caption)] for item_id, caption in table["caption"].items()}
    return {
        item_id: [str(c) for c in captions] if captions is not None and len(captions) else [str(caption)]
        for item_id, captions, caption in zip(table.index, table["captions"], table["caption"])
    }


def _videos(config: dict[str, Any], stimuli: StimulusSet, name: str) -> dict[str, Path]:
    from oddoneout.stimuli.videos import match_videos

    folder = config["stimuli"]["videos"]
    if not folder:
        raise InputError(f"system {name!r} watches frames: set [stimuli] videos to the folder of the study's videos")
    return match_videos(resolve_path(config, folder), stimuli.item_ids, require_all=True)


def build_agent(config: dict[str, Any], out: Path, name: str, stimuli: StimulusSet) -> Agent | AsyncAgent:
    """The agent of system ``name`` (synchronous :class:`Agent`, or :class:`AsyncAgent` for ``openai``)."""
    system = config["systems"][name]
    kind = system["agent"]
    if kind == "openai":
        return _openai_agent(config, name, stimuli)
    if kind == "vllm":
        return _vllm_agent(config, name, stimuli)
    if kind == "llama":
        from oddoneout.agents.llama_local import LlamaCppAgent

        return LlamaCppAgent(
            name,
            system["gguf"] or None,
            prompt=_prompt(system, config),
            captions=_captions(stimuli),
            n_threads=system["n_threads"] or None,
            seed=system_seed(config, name),
            temperature=system["llm_temperature"],
            max_tokens=system["answer_tokens"],
        )
    if kind == "minilm":
        from oddoneout.agents.text_embedding import MiniLMCaptionAgent

        return MiniLMCaptionAgent(
            name, _all_captions(stimuli), cache_dir=StudyFolder(out).cache, max_captions=system["max_captions"] or None
        )
    return _feature_agent(config, out, name, stimuli)


def _model_inputs(config: dict[str, Any], name: str, stimuli: StimulusSet) -> dict[str, Any]:
    """What a language model reads and how it samples, shared by the ``openai`` and ``vllm`` agents."""
    from oddoneout.media.frames import FrameSpec

    system = config["systems"][name]
    frames = system["input"] == "frames"
    return {
        "prompt": _prompt(system, config),
        "captions": None if frames else _captions(stimuli),
        "videos": _videos(config, stimuli, name) if frames else None,
        "frames": FrameSpec(n_frames=system["n_frames"], size=system["frame_size"]),
        "logprobs": system["logprobs"],
        "temperature": system["llm_temperature"],
        "max_tokens": system["answer_tokens"],
        "seed": system_seed(config, name),
    }


def _openai_agent(config: dict[str, Any], name: str, stimuli: StimulusSet) -> AsyncAgent:
    from oddoneout.agents.openai_chat import OpenAIChatAgent

    system = config["systems"][name]
    return OpenAIChatAgent(
        name,
        system["model"],
        system["base_url"],
        api_key_env=system["api_key_env"] or None,
        constrained=system["constrained"],
        timeout=system["timeout"],
        **_model_inputs(config, name, stimuli),
    )


def _vllm_agent(config: dict[str, Any], name: str, stimuli: StimulusSet) -> Agent:
    from oddoneout.agents.vllm_engine import VLLMEngineAgent

    system = config["systems"][name]
    return VLLMEngineAgent(
        name,
        system["model"],
        constrained="choice" if system["constrained"] in ("guided_choice", "structured_outputs") else "none",
        engine_options=system["engine"],
        **_model_inputs(config, name, stimuli),
    )


def _feature_agent(config: dict[str, Any], out: Path, name: str, stimuli: StimulusSet) -> Agent:
    from oddoneout.agents.similarity import SimilarityAgent
    from oddoneout.agents.simulated import SimulatedAgent

    system = config["systems"][name]
    kind = system["agent"]
    if kind == "ratings":
        features = pd.concat([stimuli.ratings(group) for group in system["ratings"]], axis=1)
        model = system["model"] or "ratings:" + "+".join(system["ratings"])
    else:
        features = feature_table(config, out, system["features"])
        model = system["model"] or f"{kind}:{system['features']}"
    missing = sorted(set(stimuli.item_ids) - set(features.index))
    if missing:
        raise InputError(f"system {name!r}: features lack item(s) {missing[:5]}")
    features = features.loc[list(stimuli.item_ids)]
    if kind == "simulated":
        return SimulatedAgent(
            features.to_numpy(float),
            stimuli.item_ids,
            name=name,
            model=model,
            temperature=system["temperature"],
            seed=system_seed(config, name),
        )
    return SimilarityAgent(
        features.to_numpy(float),
        stimuli.item_ids,
        name=name,
        model=model,
        center=system["center"],
        standardize=system["standardize"],
    )
