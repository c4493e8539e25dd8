"""The agent protocol: given trials of item ids in the order shown, answer them.

An odd-one-out trial shows three items and the answer names the odd one out; anchor and ranked
trials (:mod:`oddoneout.triplets.reference`) show a reference first and the answer names the most
similar option(s). An agent says which kinds of trial it answers in ``trial_types``; one without
that attribute answers odd-one-out trials only, and is asked exactly as before trial types existed
(``judge(shown, keys=keys)``). The runners ask through :func:`judge_trials` and
:func:`ajudge_trial`, which pass ``trial_type`` to an agent only for the other kinds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

from oddoneout.errors import InputError
from oddoneout.triplets import ODD_ONE_OUT, TrialType

#: Every status a stored judgment can have. Only ``ok`` judgments carry a choice.
STATUSES = ("ok", "unparseable", "ambiguous", "refused", "error", "timeout")
#: A trial's store key: (design name, triplet_index, ordering, repeat).
TrialKey = tuple[str, int, int, int]
#: Characters of a remote model's raw answer (or of a failed response's body) kept in an answer.
MAX_RAW_CHARS = 2000
#: The kinds of trial (:attr:`TrialType.name <oddoneout.triplets.TrialType.name>`) an agent that
#: answers every one of them lists in its ``trial_types``.
EVERY_TRIAL_TYPE = ("odd_one_out", "anchor", "ranked")


@dataclass(frozen=True)
class Answer:
    """One agent answer to one shown trial.

    Parameters
    ----------
    choice : int or None
        Shown position of the chosen item: the odd one out (0, 1, 2) of an odd-one-out trial,
        the option most similar to the reference (1 .. n_options) of an anchor or ranked trial.
        ``None`` unless ``status == "ok"``.
    status : str
        One of :data:`STATUSES`.
    probs : tuple of float, optional
        Probability of each shown position being the (first) choice, when the agent has them
        (one per shown item; 0 for a reference).
    raw : str, optional
        The agent's raw answer text (for LLMs), kept verbatim.
    error : str, optional
        What went wrong, for failures.
    tokens : int, optional
        Tokens used by the request (prompt and completion), when known.
    ranking : tuple of int, optional
        For a trial ranking several options: their shown positions in rank order (the first is
        ``choice``). ``None`` for trials with one choice.
    tokens_in, tokens_out : int, optional
        Prompt and completion tokens of the request (a server's ``usage.prompt_tokens`` and
        ``usage.completion_tokens``, or a local model's counts), when known.
    images : int, optional
        Images (video frames) sent with the request; ``None`` for a request of text only.
    attempts : int, optional
        Requests made for this answer, retries included (set by the asynchronous runner).

    Notes
    -----
    Whether a choice, a ranking or the probabilities fit the trial (its positions, its number of
    ranked options) is checked by the store, which knows the trial type.
    """

    choice: int | None
    status: str = "ok"
    probs: tuple[float, ...] | None = None
    raw: str | None = None
    error: str | None = None
    tokens: int | None = None
    ranking: tuple[int, ...] | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    images: int | None = None
    attempts: int | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown answer status {self.status!r}")
        if (self.status == "ok") != (self.choice is not None):
            raise ValueError("an ok answer needs a choice and a failed one must not have one")
        if self.choice is not None and (isinstance(self.choice, bool) or not _is_position(self.choice)):
            raise ValueError(f"choice must be a shown position (an integer >= 0), got {self.choice!r}")
        if self.ranking is not None:
            ranking = tuple(self.ranking)
            if self.choice is None or not ranking or ranking[0] != self.choice:
                raise ValueError(f"a ranking starts with the choice ({self.choice!r}), got {ranking!r}")
            if not all(_is_position(p) for p in ranking) or len(set(ranking)) != len(ranking):
                raise ValueError(f"a ranking lists distinct shown positions, got {ranking!r}")
            object.__setattr__(self, "ranking", tuple(int(p) for p in ranking))
        for name in ("tokens", "tokens_in", "tokens_out", "images", "attempts"):
            value = getattr(self, name)
            if value is not None and not _is_position(value):
                raise ValueError(f"{name} must be an integer >= 0 or None, got {value!r}")


def _is_position(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@runtime_checkable
class Agent(Protocol):
    """Anything that answers triplets.

    Attributes
    ----------
    name : str
        The system this agent stands for (``"mllm"``, ``"human_category"``...).
    model : str
        Model identifier recorded with each judgment.
    prompt_hash : str or None
        Hash of the prompt template, for agents that use one.
    """

    name: str
    model: str
    prompt_hash: str | None

    def judge(self, shown: Sequence[tuple[str, ...]], keys: Sequence[TrialKey] | None = None) -> list[Answer]:
        """Answer a batch of trials (item ids in the order shown), one :class:`Answer` each.

        ``keys`` are the trials' store keys (the runners always pass them). A stochastic agent
        derives each answer's randomness from its seed and the trial's key, never from a stream
        in asking order, so an answer does not depend on the batch, order or process it is
        asked in; a deterministic agent may ignore them.

        An agent whose ``trial_types`` lists other kinds than odd-one-out also takes a keyword
        ``trial_type`` (a :class:`~oddoneout.triplets.TrialType`, odd-one-out by default): the
        runners pass it for trials of those kinds, all of one type per call.
        """
        ...


class RetryableError(Exception):
    """A transient failure of one request (HTTP 429/5xx, a dropped connection, a timeout).

    Remote agents raise it from :meth:`AsyncAgent.ajudge`; the asynchronous runner retries the
    trial with exponential backoff and jitter, waiting at least ``retry_after`` seconds when the
    server said so, and stores an answer with status ``status`` once the retries are spent.

    Parameters
    ----------
    message : str
        What went wrong (never containing credentials).
    status : {"error", "timeout"}
        The status stored if every retry fails.
    retry_after : float, optional
        Seconds the server asked the client to wait (``Retry-After``).
    """

    def __init__(self, message: str, status: str = "error", retry_after: float | None = None) -> None:
        super().__init__(message)
        if status not in ("error", "timeout"):
            raise ValueError(f"a retryable failure ends as 'error' or 'timeout', not {status!r}")
        self.status = status
        self.retry_after = retry_after


@runtime_checkable
class AsyncAgent(Protocol):
    """An agent answering one shown triplet per request, concurrently (remote models).

    Permanent per-trial problems (an answer that cannot be parsed, a refusal, a malformed response)
    are returned as an :class:`Answer` with the matching status; transient ones are raised as
    :class:`RetryableError`. Attributes are those of :class:`Agent`.
    """

    name: str
    model: str
    prompt_hash: str | None

    async def ajudge(self, shown: tuple[str, ...]) -> Answer:
        """Answer one trial (item ids in the order shown; ``trial_type`` as for :meth:`Agent.judge`)."""
        ...


def answers_trial_type(agent: Any, trial_type: TrialType) -> bool:
    """Whether ``agent`` answers trials of ``trial_type`` (its ``trial_types``; odd-one-out only without)."""
    return trial_type.name in getattr(agent, "trial_types", (ODD_ONE_OUT.name,))


def check_answers_trial_type(agent: Any, trial_type: TrialType) -> None:
    """Raise an :class:`InputError` (one line) unless ``agent`` answers trials of ``trial_type``."""
    if not answers_trial_type(agent, trial_type):
        kinds = ", ".join(getattr(agent, "trial_types", (ODD_ONE_OUT.name,)))
        raise InputError(
            f"agent {getattr(agent, 'name', agent)!r} answers {kinds} trials, not {trial_type.spec} trials"
        )


def check_own_trial_type(agent: Any, trial_type: TrialType) -> None:
    """Raise an :class:`InputError` (one line) unless ``trial_type`` is ``agent.trial_type``.

    For an agent built for one trial type: its recorded ``prompt_hash`` names one prompt, and a trial
    of another type would be asked with another.
    """
    if trial_type != agent.trial_type:
        raise InputError(f"agent {agent.name!r} answers {agent.trial_type.spec} trials, not {trial_type.spec} trials")


def judge_trials(
    agent: Agent, shown: Sequence[tuple[str, ...]], keys: Sequence[TrialKey], trial_type: TrialType
) -> list[Answer]:
    """``agent.judge`` of one batch of trials of ``trial_type`` (the type passed only when it is not odd-one-out)."""
    if trial_type == ODD_ONE_OUT:
        return agent.judge(shown, keys=keys)
    return agent.judge(shown, keys=keys, trial_type=trial_type)  # type: ignore[call-arg]


async def ajudge_trial(agent: AsyncAgent, shown: tuple[str, ...], trial_type: TrialType) -> Answer:
    """``agent.ajudge`` of one trial of ``trial_type`` (the type passed only when it is not odd-one-out)."""
    if trial_type == ODD_ONE_OUT:
        return await agent.ajudge(shown)
    return await agent.ajudge(shown, trial_type=trial_type)  # type: ignore[call-arg]
