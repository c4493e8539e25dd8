"""Agent kinds: what a ``[systems.NAME]`` table may say for each ``agent = ...``, and how that agent is built.

Each kind declares its settings (a dataclass of :func:`~oddoneout.settings.setting` fields,
validated when the config is loaded), its builder, and whether its agent is asked in batches (a
synchronous :class:`~oddoneout.agents.base.Agent`) or concurrently (an
:class:`~oddoneout.agents.base.AsyncAgent`, with the settings of :class:`RemoteSettings`). To add
a kind, add its settings class and builder here and :func:`register` it.

Kinds:

``ratings``    the paper's rating-based systems: cosine similarity of rating vectors.
``similarity`` cosine similarity of any feature table.
``simulated``  softmax choice from a known embedding (tests, the synthetic study).
``minilm``     MiniLM embeddings of each item's captions, then cosine similarity (offline).
``llama``      a local GGUF model through llama-cpp-python, reading captions (offline).
``openai``     any OpenAI-compatible chat server, reading captions or watching video frames.
``vllm``       vLLM's offline engine on local GPUs (batched), the same requests as ``openai``.
``human``      people in a browser: ``oddoneout serve`` asks them (:mod:`oddoneout.serve`); never a runner.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal

from oddoneout.agents.base import EVERY_TRIAL_TYPE, Agent, AsyncAgent
from oddoneout.agents.chat_codec import CONSTRAINED
from oddoneout.collect import flow
from oddoneout.errors import InputError
from oddoneout.settings import SAFE_NAME_RULE, Settings, defaults, is_safe_name, setting
from oddoneout.stimuli.stimulus_set import StimulusSet
from oddoneout.study_folder import StudyFolder

if TYPE_CHECKING:
    from oddoneout.config import StudyConfig

Builder = Callable[["StudyConfig", "Path | StudyFolder", str, StimulusSet], "Agent | AsyncAgent"]

# --- settings of each kind -----------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureSettings(Settings):
    """An agent that chooses from a feature table."""

    #: "synthetic:<view>" or a feature table (Parquet/CSV with an item_id column)
    features: str = setting("")
    #: the model name stored with the judgments ("" = "<kind>:<features>")
    model: str = setting("")

    def problems(self) -> Iterator[tuple[str, str]]:
        if not self.features:
            yield "features", 'needs `features` ("synthetic:<view>" or a feature table with an item_id column)'
        elif self.features.startswith("synthetic:") and not is_safe_name(self.features.split(":", 1)[1]):
            yield "features", f"{self.features!r}: the view name is used in a path: use only {SAFE_NAME_RULE}"


@dataclass(frozen=True)
class SimulatedSettings(FeatureSettings):
    """``simulated``: softmax choice from a known embedding."""

    temperature: float = setting(1.0, above=0.0)


@dataclass(frozen=True)
class SimilaritySettings(FeatureSettings):
    """``similarity``: cosine similarity of a feature table."""

    center: bool = setting(False)
    standardize: bool = setting(False)


@dataclass(frozen=True)
class RatingsSettings(Settings):
    """``ratings``: cosine similarity of the stimuli's rating vectors."""

    #: rating groups: ["category"], ["dimension"] or both
    ratings: list[Literal["category", "dimension"]] = setting([])
    center: bool = setting(False)
    standardize: bool = setting(False)
    #: the model name stored with the judgments ("" = "ratings:<groups>")
    model: str = setting("")

    def problems(self) -> Iterator[tuple[str, str]]:
        if not self.ratings:
            yield "ratings", "needs `ratings` (e.g. [\"category\"]) for agent 'ratings'"


@dataclass(frozen=True)
class MiniLMSettings(Settings):
    """``minilm``: MiniLM embeddings of each item's captions."""

    #: captions per item embedded (0 = all; the first ones in the file's order)
    max_captions: int = setting(0, minimum=0)


@dataclass(frozen=True)
class LanguageModelSettings(Settings):
    """What every language-model agent reads and how it samples."""

    #: "paper_llm" | "paper_mllm" | a prompt file (anchor, ranked: a .txt of that type's prompt); default: the paper's
    prompt: str = setting("")
    input: str = setting("captions", choices=("captions", "frames"))
    #: sampling temperature of the model (the authors used 0.01)
    llm_temperature: float = setting(0.01, minimum=0)
    #: most tokens per answer (the paper's prompts ask for a description first)
    answer_tokens: int = setting(512, minimum=1)


@dataclass(frozen=True)
class LlamaSettings(LanguageModelSettings):
    """``llama``: a local GGUF file through llama-cpp-python."""

    #: "" = the packaged Gemma 3 270M
    gguf: str = setting("")
    #: 0 = llama.cpp's default
    n_threads: int = setting(0, minimum=0)

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.input == "frames":
            yield "input", "input = 'frames' needs agent = 'openai' or 'vllm'"


@dataclass(frozen=True)
class ChatSettings(LanguageModelSettings):
    """A chat model named by ``model`` (``openai`` and ``vllm``)."""

    model: str = setting("")
    constrained: str = setting("auto", choices=CONSTRAINED)
    logprobs: bool = setting(True)
    n_frames: int = setting(4, minimum=1)
    frame_size: int = setting(336, minimum=1)

    def problems(self) -> Iterator[tuple[str, str]]:
        if not self.model:
            yield "model", "needs `model` (the name the server knows the model by)"


@dataclass(frozen=True)
class RemoteSettings(Settings):
    """How a concurrently asked agent is asked: concurrency, retries, timeout, rate and budget."""

    concurrency: int = setting(16, minimum=1)
    timeout: float = setting(60.0, above=0.0)
    max_retries: int = setting(5, minimum=0)
    #: requests/s, 0 = none
    rate_limit: float = setting(0.0, minimum=0)
    #: budget cap per run, 0 = none
    max_requests: int = setting(0, minimum=0)
    #: token budget per run, 0 = none
    max_tokens: int = setting(0, minimum=0)


@dataclass(frozen=True)
class OpenAISettings(ChatSettings, RemoteSettings):
    """``openai``: any OpenAI-compatible chat server (vLLM, llama.cpp, Ollama, hosted APIs)."""

    base_url: str = setting("")
    #: name of the environment variable holding the key ("" = no key)
    api_key_env: str = setting("")

    def problems(self) -> Iterator[tuple[str, str]]:
        if not self.base_url:
            yield "base_url", 'needs `base_url` (e.g. "http://127.0.0.1:8000/v1")'
        yield from super().problems()


@dataclass(frozen=True)
class VLLMSettings(ChatSettings):
    """``vllm``: the offline engine on local GPUs."""

    #: keyword arguments of vllm.LLM
    engine: dict[str, Any] = setting({})


@dataclass(frozen=True)
class HumanSettings(Settings):
    """``human``: people answering in a browser, through ``oddoneout serve`` (one server per system).

    Secrets (the session-token key, the salt of participant ids) come from environment variables,
    never from the config: the config is copied into the study folder and hashed.
    """

    #: the model name stored with the judgments ("" = "human")
    model: str = setting("")
    #: trials each participant session is given (leased from the trials not yet answered)
    trials_per_session: int = setting(60, minimum=1)
    #: practice trials before the first trial (not stored)
    practice_trials: int = setting(3, minimum=0)
    #: seconds a session's leased trials stay its own without an answer; then they go back to the pool
    lease_seconds: float = setting(1800.0, above=0.0)
    #: the code shown at the end (e.g. a Prolific completion code; "" = one code per session)
    completion_code: str = setting("")
    #: catch trials in each session (an item shown twice beside another), recorded apart from the judgments
    catch_trials: int = setting(0, minimum=0)
    #: answers faster than this many milliseconds count as too fast (oddoneout.collect.quality; `oddoneout status`)
    min_rt_ms: float = setting(300.0, minimum=0.0)
    #: a session with a larger share of too-fast answers is excluded (1 = none is)
    exclude_max_fast_fraction: float = setting(1.0, minimum=0.0)
    #: a session with catch trials and a smaller share of them right is excluded (0 = none is)
    exclude_min_catch_accuracy: float = setting(0.0, minimum=0.0)
    #: the participant page's texts: plain text (never markup), paragraphs separated by a blank line
    consent_text: str = setting(flow.DEFAULT_CONSENT)
    instructions_text: str = setting(flow.DEFAULT_INSTRUCTIONS)
    debrief_text: str = setting(flow.DEFAULT_DEBRIEF)
    #: a break screen after every this many trials answered (never after the last; 0 = no breaks); the
    #: next trial's response time starts only once the participant continues
    break_every: int = setting(0, minimum=0, omit_default=True)
    break_text: str = setting(flow.DEFAULT_BREAK, omit_default=True)
    #: the question above each trial: one line of plain text; "" = the trial type's own (flow.default_question)
    question_text: str = setting("", omit_default=True)
    #: where the page goes after the debrief ("" = nowhere): an http(s) URL; "{code}" = the completion code
    completion_url: str = setting("")
    #: requests (answers, reloads) a session may make per second, and at once
    answers_per_second: float = setting(10.0, above=0.0)
    answer_burst: int = setting(30, minimum=1)
    #: sessions one client address may start (or resume from a new browser) per minute, and at once
    sessions_per_minute: float = setting(60.0, above=0.0)
    session_burst: int = setting(200, minimum=1)
    #: the folder items' media files (the stimulus table's media_path) must lie in; "" = [stimuli] videos,
    #: else the stimulus table's folder. Items without a media_path are shown as their caption
    media_folder: str = setting("")
    #: how video clips play: start by themselves, start over at the end, without sound (browsers start
    #: a clip by itself only when it is muted); a clip that does not start by itself shows its controls
    video_autoplay: bool = setting(True)
    video_loop: bool = setting(True)
    video_muted: bool = setting(True)

    def problems(self) -> Iterator[tuple[str, str]]:
        if len(self.completion_code) > 64 or not self.completion_code.isprintable():
            yield "completion_code", "must be at most 64 printable characters"
        for name in ("exclude_max_fast_fraction", "exclude_min_catch_accuracy"):
            if getattr(self, name) > 1:
                yield name, "must be a fraction in [0, 1]"
        for name in ("consent_text", "instructions_text", "break_text", "debrief_text"):
            problem = flow.text_problem(getattr(self, name))
            if problem:
                yield name, problem
        problem = flow.question_problem(self.question_text)
        if problem:
            yield "question_text", problem
        problem = flow.url_problem(self.completion_url)
        if problem:
            yield "completion_url", problem


# --- builders ----------------------------------------------------------------------------------


def _feature_agent(config: StudyConfig, out: Path | StudyFolder, name: str, stimuli: StimulusSet) -> Agent:
    import pandas as pd

    from oddoneout.agents.inputs import feature_table, system_seed
    from oddoneout.agents.similarity import SimilarityAgent
    from oddoneout.agents.simulated import SimulatedAgent

    system = config.systems[name]
    kind, settings = system.agent, system.settings
    if isinstance(settings, RatingsSettings):
        features = pd.concat([stimuli.ratings(group) for group in settings.ratings], axis=1)
        model = settings.model or "ratings:" + "+".join(settings.ratings)
    else:
        features = feature_table(config, out, settings.features)
        model = settings.model or f"{kind}:{settings.features}"
    missing = sorted(set(stimuli.item_ids) - set(features.index))
    if missing:
        raise InputError(f"system {name!r}: features lack item(s) {missing[:5]}")
    features = features.loc[list(stimuli.item_ids)]
    if isinstance(settings, SimulatedSettings):
        return SimulatedAgent(
            features.to_numpy(float),
            stimuli.item_ids,
            name=name,
            model=model,
            temperature=settings.temperature,
            seed=system_seed(config, name),
        )
    return SimilarityAgent(
        features.to_numpy(float),
        stimuli.item_ids,
        name=name,
        model=model,
        center=settings.center,
        standardize=settings.standardize,
    )


def _minilm_agent(config: StudyConfig, out: Path | StudyFolder, name: str, stimuli: StimulusSet) -> Agent:
    from oddoneout.agents.inputs import all_captions
    from oddoneout.agents.text_embedding import MiniLMCaptionAgent

    settings = config.systems[name].settings
    return MiniLMCaptionAgent(
        name, all_captions(stimuli), cache_dir=StudyFolder.of(out).cache, max_captions=settings.max_captions or None
    )


def _llama_agent(config: StudyConfig, out: Path | StudyFolder, name: str, stimuli: StimulusSet) -> Agent:
    from oddoneout.agents.inputs import captions, prompt, reference_prompt, system_seed, trial_type
    from oddoneout.agents.llama_local import LlamaCppAgent
    from oddoneout.agents.prompts import PAPER_LLM_PROMPT

    settings = config.systems[name].settings
    kind = trial_type(config, name)
    reference = reference_prompt(config, settings, kind)
    return LlamaCppAgent(
        name,
        settings.gguf or None,
        prompt=prompt(config, settings) if reference is None else PAPER_LLM_PROMPT,
        trial_type=kind,
        reference_prompt=reference,
        captions=captions(stimuli),
        n_threads=settings.n_threads or None,
        seed=system_seed(config, name),
        temperature=settings.llm_temperature,
        max_tokens=settings.answer_tokens,
    )


def _openai_agent(config: StudyConfig, out: Path | StudyFolder, name: str, stimuli: StimulusSet) -> AsyncAgent:
    from oddoneout.agents.inputs import model_inputs
    from oddoneout.agents.openai_chat import OpenAIChatAgent

    settings = config.systems[name].settings
    return OpenAIChatAgent(
        name,
        settings.model,
        settings.base_url,
        api_key_env=settings.api_key_env or None,
        constrained=settings.constrained,
        timeout=settings.timeout,
        **model_inputs(config, name, stimuli),
    )


def _vllm_agent(config: StudyConfig, out: Path | StudyFolder, name: str, stimuli: StimulusSet) -> Agent:
    from oddoneout.agents.inputs import model_inputs
    from oddoneout.agents.vllm_engine import VLLMEngineAgent

    settings = config.systems[name].settings
    return VLLMEngineAgent(
        name,
        settings.model,
        constrained="choice" if settings.constrained in ("guided_choice", "structured_outputs") else "none",
        engine_options=settings.engine,
        **model_inputs(config, name, stimuli),
    )


def _human_agent(config: StudyConfig, out: Path | StudyFolder, name: str, stimuli: StimulusSet) -> Agent:
    raise InputError(
        f"system {name!r} is answered by people (agent 'human'): a runner cannot ask it; "
        f"serve it with `oddoneout serve CONFIG --out OUT --system {name}`"
    )


def human_model(settings: HumanSettings) -> str:
    """The model name a ``human`` system's judgments are stored with."""
    return settings.model or "human"


# --- the registry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentKind:
    """One ``agent = ...`` kind.

    Attributes
    ----------
    name : str
        The value of ``agent``.
    settings : type
        Its settings class: the other keys its ``[systems.NAME]`` table may have.
    build : callable
        ``build(config, out, name, stimuli)`` -> the system's agent.
    concurrent : bool
        True: an :class:`AsyncAgent` asked concurrently (its settings extend :class:`RemoteSettings`);
        False: a synchronous :class:`Agent` asked in batches.
    reproducible : bool
        True: an answer depends only on the study seed and the trial's key, so a resumed, re-batched
        or parallel collection stores what one uninterrupted run would; False: the answers are
        sampled by a server that may answer a trial differently another time (recorded as
        ``answers_reproducible`` in the triplet export's provenance).
    served : bool
        True: the answers come from ``oddoneout serve`` (people in a browser), not from a runner;
        the collect stage only exports what the server stored.
    trial_types : tuple of str
        The kinds of trial its agents answer (:attr:`TrialType.name <oddoneout.triplets.TrialType.name>`,
        as their ``trial_types`` say); a system whose design asks another kind is refused when the
        config is loaded.
    """

    name: str
    settings: type
    build: Builder
    concurrent: bool = False
    reproducible: bool = True
    served: bool = False
    trial_types: tuple[str, ...] = ("odd_one_out",)


#: Every agent kind, by name (in the order of the ``agent`` choices shown in errors).
AGENT_KINDS: dict[str, AgentKind] = {}


def register(kind: AgentKind) -> AgentKind:
    """Add an agent kind (a concurrent kind's settings must extend :class:`RemoteSettings`)."""
    if kind.concurrent and not issubclass(kind.settings, RemoteSettings):
        raise TypeError(f"agent kind {kind.name!r} is concurrent: its settings must extend RemoteSettings")
    AGENT_KINDS[kind.name] = kind
    return kind


# the feature agents (SimulatedAgent, SimilarityAgent and MiniLMCaptionAgent, a SimilarityAgent) answer
# every trial type; the language models too, each built for its system's trial type (its prompt and
# prompt_hash); people do in the served page
for _kind in (
    AgentKind("simulated", SimulatedSettings, _feature_agent, trial_types=EVERY_TRIAL_TYPE),
    AgentKind("similarity", SimilaritySettings, _feature_agent, trial_types=EVERY_TRIAL_TYPE),
    AgentKind("ratings", RatingsSettings, _feature_agent, trial_types=EVERY_TRIAL_TYPE),
    AgentKind("minilm", MiniLMSettings, _minilm_agent, trial_types=EVERY_TRIAL_TYPE),
    AgentKind("llama", LlamaSettings, _llama_agent, trial_types=EVERY_TRIAL_TYPE),
    AgentKind(
        "openai", OpenAISettings, _openai_agent, concurrent=True, reproducible=False, trial_types=EVERY_TRIAL_TYPE
    ),
    AgentKind("vllm", VLLMSettings, _vllm_agent, reproducible=False, trial_types=EVERY_TRIAL_TYPE),
    AgentKind("human", HumanSettings, _human_agent, reproducible=False, served=True, trial_types=EVERY_TRIAL_TYPE),
):
    register(_kind)

#: The kind of a system whose table does not say ``agent``.
DEFAULT_KIND = "simulated"


def agent_kind(name: str) -> AgentKind:
    """The registered kind ``name`` (InputError naming the kinds otherwise)."""
    if name not in AGENT_KINDS:
        raise InputError(f"agent {name!r} is not one of {tuple(AGENT_KINDS)}")
    return AGENT_KINDS[name]


def build_agent(config: StudyConfig, out: Path | StudyFolder, name: str, stimuli: StimulusSet) -> Agent | AsyncAgent:
    """The agent of system ``name``, built by its kind's builder."""
    return agent_kind(config.systems[name].agent).build(config, out, name, stimuli)


# --- the resolved table ------------------------------------------------------------------------

#: Layout of a resolved ``[systems.NAME]`` table (``config.toml`` and the config hash): every key
#: of every kind, those a kind does not use at their defaults. Kept as it was before kinds had
#: settings of their own, so the hashes of existing studies stay valid.
SYSTEM_TABLE_KEYS = (
    "agent", "features", "ratings", "center", "standardize", "temperature", "model", "design",
    "prompt", "input", "llm_temperature", "answer_tokens", "base_url", "api_key_env", "constrained",
    "logprobs", "concurrency", "timeout", "max_retries", "rate_limit", "max_requests", "max_tokens",
    "n_frames", "frame_size", "gguf", "engine", "max_captions", "n_threads",
)  # fmt: skip


def table_keys(kind: str) -> tuple[str, ...]:
    """The keys of a resolved table of agent ``kind``: :data:`SYSTEM_TABLE_KEYS`, then the kind's own.

    Keys of kinds added after that layout was fixed (``human``) appear only in tables of their
    kind, so adding a kind leaves the hashes of existing studies as they were.
    """
    own = [key for key in defaults(agent_kind(kind).settings) if key not in SYSTEM_TABLE_KEYS]
    return (*SYSTEM_TABLE_KEYS, *own)


def unused_defaults() -> dict[str, Any]:
    """``{key: default}`` over every kind's settings (one value per key: the kinds agree)."""
    merged: dict[str, Any] = {}
    for kind in AGENT_KINDS.values():
        merged.update(defaults(kind.settings))
    return merged
