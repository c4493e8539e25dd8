"""The agent protocol: given triplets of item ids in the order shown, name the odd one out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

#: Every status a stored judgment can have. Only ``ok`` judgments carry a choice.
STATUSES = ("ok", "unparseable", "ambiguous", "refused", "error", "timeout")
#: A trial's store key: (design name, triplet_index, ordering, repeat).
TrialKey = tuple[str, int, int, int]
#: Characters of a remote model's raw answer (or of a failed response's body) kept in an answer.
MAX_RAW_CHARS = 2000


@dataclass(frozen=True)
class Answer:
    """One agent answer to one shown triplet.

    Parameters
    ----------
    choice : int or None
        Position (0, 1, 2) of the odd one out in the order shown; ``None`` unless ``status == "ok"``.
    status : str
        One of :data:`STATUSES`.
    probs : tuple of 3 float, optional
        Probability of each shown position being the odd one out, when the agent has them.
    raw : str, optional
        The agent's raw answer text (for LLMs), kept verbatim.
    error : str, optional
        What went wrong, for failures.
    tokens : int, optional
        Tokens used by the request, when known.
    """

    choice: int | None
    status: str = "ok"
    probs: tuple[float, float, float] | None = None
    raw: str | None = None
    error: str | None = None
    tokens: int | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown answer status {self.status!r}")
        if (self.status == "ok") != (self.choice is not None):
            raise ValueError("an ok answer needs a choice and a failed one must not have one")
        if self.choice is not None and self.choice not in (0, 1, 2):
            raise ValueError(f"choice must be 0, 1 or 2, got {self.choice}")


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

    def judge(self, shown: Sequence[tuple[str, str, str]], keys: Sequence[TrialKey] | None = None) -> list[Answer]:
        """Answer a batch of triplets (item ids in the order shown), one :class:`Answer` each.

        ``keys`` are the trials' store keys (the runners always pass them). A stochastic agent
        derives each answer's randomness from its seed and the trial's key, never from a stream
        in asking order, so an answer does not depend on the batch, order or process it is
        asked in; a deterministic agent may ignore them.
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

    async def ajudge(self, shown: tuple[str, str, str]) -> Answer:
        """Answer one triplet (item ids in the order shown)."""
        ...
