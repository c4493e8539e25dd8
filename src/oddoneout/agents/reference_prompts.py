"""Prompts for trials judged against a reference (anchor triplets, ranked trials), and reading their answers.

The wording adapts the paper's odd-one-out prompts (:mod:`oddoneout.agents.prompts`): the same
task framing ("evokes an emotional response"), the same request for one answer in a fixed form
followed by a short explanation, and, for the language model, the instruction to judge only by
emotional tone and to ignore the order. The reference is always named "the reference"; the
options are lettered A, B, C... in the order shown (shown positions 1, 2, 3...).

Reading an answer never guesses (as :func:`oddoneout.agents.parsing.parse_answer`):

- anchor: the requested form "Option X is more similar to the reference", then other decisive
  statements ("Answer: X", "I would pick option X", "the more similar option is X", "the
  first/second one is closer"), then an answer that is only an option ("B", "Option A.");
  negated statements do not count; two options named decisively is ``ambiguous``; none is
  ``unparseable``;
- ranked: "Ranking: C, A, ..." (or a numbered list "1. Option C 2. Option A"), whose first
  ``n_ranked`` letters must be distinct options; fewer, repeated or unknown letters are
  ``unparseable`` (a full ranking is accepted and cut to the ones asked for).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from oddoneout.errors import InputError
from oddoneout.provenance import hash_text

LETTERS = string.ascii_uppercase
#: Text-mode placeholders of a reference prompt.
REFERENCE_FIELDS = ("reference", "options", "n_options", "n_ranked")


@dataclass(frozen=True)
class ReferencePrompt:
    """A prompt for anchor or ranked trials.

    Parameters
    ----------
    name : str
        Recorded with the judgments (part of :attr:`hash`).
    text : str
        In ``"text"`` mode it holds ``{reference}`` and ``{options}`` (the lettered option
        captions, one per line) and may hold ``{n_options}`` and ``{n_ranked}``; in ``"video"``
        mode only the latter two (the frames travel as message parts: the reference first,
        then the options in order).
    mode : {"text", "video"}
    """

    name: str
    text: str
    mode: str

    def __post_init__(self) -> None:
        if self.mode not in ("text", "video"):
            raise InputError(f"prompt {self.name!r}: mode must be 'text' or 'video', got {self.mode!r}")
        fields = [field for _, field, _, _ in string.Formatter().parse(self.text) if field is not None]
        allowed = REFERENCE_FIELDS if self.mode == "text" else REFERENCE_FIELDS[2:]
        unknown = sorted(set(fields) - set(allowed))
        if unknown:
            raise InputError(
                f"prompt {self.name!r}: unknown placeholder(s) {unknown}; a {self.mode} prompt takes {list(allowed)}"
            )
        if self.mode == "text" and not {"reference", "options"} <= set(fields):
            raise InputError(f"prompt {self.name!r}: a text prompt needs {{reference}} and {{options}}")

    def render(self, reference: str | None, options: Sequence[str] | None, n_options: int, n_ranked: int) -> str:
        """The prompt for one trial (captions in text mode, ``None`` in video mode)."""
        if self.mode == "video":
            return self.text.format(n_options=n_options, n_ranked=n_ranked)
        if reference is None or options is None or len(options) != n_options:
            raise InputError(f"prompt {self.name!r} needs a reference caption and {n_options} option captions")
        lines = "\n".join(f"Option {LETTERS[k]}: {caption.strip()}" for k, caption in enumerate(options))
        return self.text.format(reference=reference.strip(), options=lines, n_options=n_options, n_ranked=n_ranked)

    @property
    def hash(self) -> str:
        """SHA-256 of the name and the text."""
        return hash_text(self.name, self.text)


_LLM_FRAME = (
    "Judge only by the emotional tone the videos would evoke, not by their topic, wording or length, "
    "and ignore the order in which the options are listed.\n"
)
PAPER_LLM_ANCHOR = ReferencePrompt(
    "paper_llm_anchor",
    "Below are descriptions of a reference video and two other videos.\n\n"
    "Reference: {reference}\n{options}\n\n"
    "Which option evokes an emotional response more similar to the reference? "
    + _LLM_FRAME
    + 'Answer in exactly this form: "Option X is more similar to the reference." (X is A or B), '
    "and then explain your choice briefly.",
    "text",
)
PAPER_MLLM_ANCHOR = ReferencePrompt(
    "paper_mllm_anchor",
    "You are shown frames from a reference video, then from two other videos: Option A and Option B.\n"
    "First, describe in one or two sentences the emotion that each video evokes.\n"
    "Then decide which option evokes an emotional response more similar to the reference.\n"
    'Answer in exactly this form: "Option X is more similar to the reference." (X is A or B), '
    "and then explain your choice briefly.",
    "video",
)
PAPER_LLM_RANKED = ReferencePrompt(
    "paper_llm_ranked",
    "Below are descriptions of a reference video and {n_options} other videos.\n\n"
    "Reference: {reference}\n{options}\n\n"
    "Which {n_ranked} options evoke an emotional response most similar to the reference, from the most "
    "similar down? "
    + _LLM_FRAME
    + 'Answer in exactly this form: "Ranking: X, Y" listing {n_ranked} option letters, the most similar '
    "first, and then explain your choice briefly.",
    "text",
)
PAPER_MLLM_RANKED = ReferencePrompt(
    "paper_mllm_ranked",
    "You are shown frames from a reference video, then from {n_options} other videos, lettered A, B, C... "
    "in the order shown.\nFirst, describe in one sentence the emotion that each video evokes.\n"
    "Then decide which {n_ranked} options evoke an emotional response most similar to the reference, from "
    'the most similar down.\nAnswer in exactly this form: "Ranking: X, Y" listing {n_ranked} option letters, '
    "the most similar first, and then explain your choice briefly.",
    "video",
)
#: Built-in prompts by trial type name and mode.
BUILTIN_REFERENCE_PROMPTS = {
    ("anchor", "text"): PAPER_LLM_ANCHOR,
    ("anchor", "video"): PAPER_MLLM_ANCHOR,
    ("ranked", "text"): PAPER_LLM_RANKED,
    ("ranked", "video"): PAPER_MLLM_RANKED,
}


def load_reference_prompt(path: str | Path, mode: str) -> ReferencePrompt:
    """A user's anchor or ranked prompt from a ``.txt`` file (the whole file, named after its stem).

    Parameters
    ----------
    path : str or path
        The file. Its text takes the placeholders of :class:`ReferencePrompt` for ``mode``.
    mode : {"text", "video"}

    Raises
    ------
    InputError
        A missing or unreadable file, another suffix, or placeholders the mode does not take.
    """
    path = Path(path)
    if path.suffix != ".txt":
        raise InputError(f"{path}: an anchor or ranked prompt file is a .txt file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the prompt file ({exc})") from exc
    if not text.strip():
        raise InputError(f"{path}: the prompt file is empty")
    return ReferencePrompt(path.stem, text, mode)


@dataclass(frozen=True)
class ReferenceReading:
    """What an answer to an anchor or ranked trial says.

    Attributes
    ----------
    status : {"ok", "ambiguous", "unparseable"}
    positions : tuple of int or None
        The shown positions (1 = option A) of the chosen options in rank order (``ok`` only).
    error : str or None
        Why there is no answer.
    """

    status: str
    positions: tuple[int, ...] | None = None
    error: str | None = None


_OPTION = r"option\s*\(?([a-z])\)?"
_ORDINAL_OPTION = {"first": 1, "1st": 1, "second": 2, "2nd": 2}
_NEGATION = re.compile(r"\b(?:not|never|no|neither|nor|isn't|hardly)\b")
_DECISIVE = [
    re.compile(rf"\b{_OPTION}\s+(?:is|seems|appears)\s+(?:\w+\s+){{0,2}}(?:more similar|closer|most similar)"),
    re.compile(
        rf"\b(?:answer|choice|pick|choose|select)\s*(?:is|would be)?\s*[:=\-]?\s*"
        rf"(?:{_OPTION}|\(?([a-z])\)?)(?=\s*(?:$|[.,;!)\n]))"
    ),
    re.compile(rf"\b(?:more|most) similar (?:option|one|video)\s+is\s+(?:{_OPTION}|([a-z]))\b"),
    re.compile(rf"\bi would (?:pick|choose|select|say)\s+{_OPTION}"),
    re.compile(r"\bthe (first|1st|second|2nd) (?:one|option)\s+(?:is|seems)\s+(?:\w+\s+){0,2}(?:more similar|closer)"),
]
_BARE = re.compile(r"^\s*(?:option\s*)?\(?([a-z])\)?\s*(?:[.,;:!)\n]|$)")
_RANKING = re.compile(r"\branking\s*[:=\-]\s*((?:option\s*)?[a-z](?:\s*(?:,|>|then|and|;)\s*(?:option\s*)?[a-z])*)\b")
_NUMBERED = re.compile(r"(?:^|\n)\s*\d+[.)]\s*(?:option\s*)?([a-z])\b")


def _letter_position(letter: str, n_options: int) -> int | None:
    position = LETTERS.lower().find(letter) + 1
    return position if 1 <= position <= n_options else None


def read_anchor_answer(text: str | None, n_options: int = 2) -> ReferenceReading:
    """The option an answer picks as more similar to the reference (see the module docstring)."""
    if not text or not text.strip():
        return ReferenceReading("unparseable", error="empty answer")
    lowered = text.lower()
    for pattern in _DECISIVE:
        named = set()
        for match in pattern.finditer(lowered):
            before = lowered[max(0, match.start() - 12) : match.start()]
            if _NEGATION.search(match.group(0)) or _NEGATION.search(before):
                continue
            word = next(group for group in match.groups() if group)
            position = _ORDINAL_OPTION.get(word) or _letter_position(word, n_options)
            if position is None:
                return ReferenceReading("unparseable", error=f"names an option other than A-{LETTERS[n_options - 1]}")
            named.add(position)
        if len(named) == 1:
            return ReferenceReading("ok", (named.pop(),))
        if named:
            return ReferenceReading("ambiguous", error="names several options")
    bare = _BARE.match(lowered)
    if bare and _letter_position(bare.group(1), n_options):
        return ReferenceReading("ok", (_letter_position(bare.group(1), n_options),))
    return ReferenceReading("unparseable", error="no statement naming the more similar option")


def read_ranked_answer(text: str | None, n_options: int, n_ranked: int) -> ReferenceReading:
    """The options an answer ranks, most similar first (see the module docstring)."""
    if not text or not text.strip():
        return ReferenceReading("unparseable", error="empty answer")
    lowered = text.lower()
    match = _RANKING.search(lowered)
    letters = re.findall(r"(?:option\s*)?\b([a-z])\b", match.group(1)) if match else _NUMBERED.findall(lowered)
    if len(letters) < n_ranked:
        return ReferenceReading("unparseable", error=f"ranks {len(letters)} options, {n_ranked} asked for")
    positions = [_letter_position(letter, n_options) for letter in letters[:n_ranked]]
    if None in positions:
        return ReferenceReading("unparseable", error=f"names an option other than A-{LETTERS[n_options - 1]}")
    if len(set(positions)) != n_ranked:
        return ReferenceReading("unparseable", error="ranks an option twice")
    return ReferenceReading("ok", tuple(positions))  # type: ignore[arg-type]
