"""The study's odd-one-out prompts as templates, and user templates read from files.

Two modes:

``"text"``
    The model reads the captions of the three clips: the template must hold the placeholders
    ``{caption_1}``, ``{caption_2}`` and ``{caption_3}`` (one each) and nothing else in braces.
``"video"``
    The model sees the frames of the three clips next to the text; the template has no
    placeholders (the frames travel as separate message parts).

Literal braces are written doubled (``{{`` and ``}}``), as in :meth:`str.format`.
"""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from oddoneout.errors import InputError
from oddoneout.provenance import hash_text

MODES = ("text", "video")
CAPTION_FIELDS = ("caption_1", "caption_2", "caption_3")


def _fields(name: str, text: str) -> list[str]:
    """Placeholder names of a template, in order (``{{``/``}}`` are literal braces)."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise InputError(
            f"prompt {name!r}: malformed placeholder ({exc}); write literal braces as {{{{ and }}}}"
        ) from exc
    fields = []
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if spec or conversion or not field.isidentifier():
            raise InputError(f"prompt {name!r}: placeholders must be plain names like {{caption_1}}, got {{{field}}}")
        fields.append(field)
    return fields


@dataclass(frozen=True)
class PromptTemplate:
    """An odd-one-out prompt.

    Parameters
    ----------
    name : str
        Name recorded with the judgments (part of :attr:`hash`).
    text : str
        The prompt. In ``"text"`` mode it holds ``{caption_1}``, ``{caption_2}`` and
        ``{caption_3}`` once each; in ``"video"`` mode no placeholder.
    mode : str
        ``"text"`` (captions) or ``"video"`` (frames).

    Raises
    ------
    InputError
        When the mode is unknown or the placeholders do not fit the mode.
    """

    name: str
    text: str
    mode: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError(f"a prompt needs a non-empty name, got {self.name!r}")
        if not isinstance(self.text, str) or not self.text.strip():
            raise InputError(f"prompt {self.name!r}: the text is empty")
        if self.mode not in MODES:
            raise InputError(f"prompt {self.name!r}: mode must be one of {MODES}, got {self.mode!r}")
        fields = _fields(self.name, self.text)
        if self.mode == "video":
            if fields:
                raise InputError(
                    f"prompt {self.name!r}: a video prompt takes no placeholders, found {sorted(set(fields))}"
                )
            return
        unknown = sorted(set(fields) - set(CAPTION_FIELDS))
        if unknown:
            raise InputError(
                f"prompt {self.name!r}: unknown placeholder(s) {unknown}; a text prompt takes {list(CAPTION_FIELDS)}"
            )
        for field in CAPTION_FIELDS:
            count = fields.count(field)
            if count != 1:
                raise InputError(f"prompt {self.name!r}: placeholder {{{field}}} must appear once, found {count}")

    def render(self, captions: Sequence[str] | None = None) -> str:
        """The prompt to send.

        Parameters
        ----------
        captions : sequence of 3 str, optional
            The three clips' captions in the order shown (text mode); ``None`` in video mode.

        Returns
        -------
        str

        Raises
        ------
        InputError
            When text mode does not get exactly three non-empty captions, or video mode gets any.
        """
        if self.mode == "video":
            if captions is not None:
                raise InputError(f"prompt {self.name!r} is a video prompt: it takes no captions")
            return self.text.format()
        if captions is None or isinstance(captions, (str, bytes)):
            raise InputError(f"prompt {self.name!r} needs a sequence of 3 captions, got {captions!r}")
        captions = list(captions)
        if len(captions) != 3:
            raise InputError(f"prompt {self.name!r} needs 3 captions, got {len(captions)}")
        for position, caption in enumerate(captions, start=1):
            if not isinstance(caption, str) or not caption.strip():
                raise InputError(f"prompt {self.name!r}: caption {position} is empty or not text: {caption!r}")
        return self.text.format(**{field: caption.strip() for field, caption in zip(CAPTION_FIELDS, captions)})

    @property
    def hash(self) -> str:
        """SHA-256 of the name and the text (:func:`oddoneout.provenance.hash_text`)."""
        return hash_text(self.name, self.text)


# The wording follows the paper's description of its prompts (task, requested answer form, and
# for the LLM the instruction to judge only by emotional tone and to ignore the order).
PAPER_MLLM_PROMPT = PromptTemplate(
    name="paper_mllm",
    mode="video",
    text=(
        "You are shown frames from three short videos: Video 1, Video 2 and Video 3, in that order.\n"
        "First, describe in one or two sentences the emotion that each video evokes.\n"
        "Then decide which video evokes an emotional response noticeably different from the other two.\n"
        'Answer in exactly this form: "Video N is noticeably different from the other two." '
        "(N is 1, 2 or 3), and then explain your choice briefly."
    ),
)

PAPER_LLM_PROMPT = PromptTemplate(
    name="paper_llm",
    mode="text",
    text=(
        "Below are descriptions of three short videos.\n\n"
        "Video 1: {caption_1}\n"
        "Video 2: {caption_2}\n"
        "Video 3: {caption_3}\n\n"
        "Which video evokes an emotional response noticeably different from the other two? "
        "Judge only by the emotional tone the videos would evoke, not by their topic, wording or "
        "length, and ignore the order in which they are listed.\n"
        'Answer in exactly this form: "Video N is noticeably different from the other two." '
        "(N is 1, 2 or 3), and then explain your choice briefly."
    ),
)

#: Built-in prompts by name (with the system names as aliases).
BUILTIN_PROMPTS: dict[str, PromptTemplate] = {
    "paper_llm": PAPER_LLM_PROMPT,
    "paper_mllm": PAPER_MLLM_PROMPT,
    "llm": PAPER_LLM_PROMPT,
    "mllm": PAPER_MLLM_PROMPT,
}


def load_prompt(path_or_name: str | Path, mode: str | None = None) -> PromptTemplate:
    """A built-in prompt by name, or a user template from a ``.txt`` or ``.toml`` file.

    Parameters
    ----------
    path_or_name : str or path
        A key of :data:`BUILTIN_PROMPTS` (``"paper_llm"``, ``"paper_mllm"``, ``"llm"``,
        ``"mllm"``), or a file:

        - ``.txt``: the whole file is the template, named after the file stem; its mode is
          ``"text"`` when it holds a caption placeholder, else ``"video"``.
        - ``.toml``: keys ``text`` (required), ``name`` (default: the file stem) and ``mode``
          (default: inferred as for ``.txt``).
    mode : str, optional
        Required mode; a template of the other mode is refused.

    Returns
    -------
    PromptTemplate

    Raises
    ------
    InputError
        Unknown name, missing or malformed file (the message names it), or wrong mode.
    """
    key = str(path_or_name)
    if key in BUILTIN_PROMPTS and not Path(key).is_file():
        template = BUILTIN_PROMPTS[key]
    else:
        template = _load_file(Path(path_or_name))
    if mode is not None and template.mode != mode:
        raise InputError(f"prompt {key!r} is a {template.mode} prompt, but a {mode} prompt is needed")
    return template


def _infer_mode(name: str, text: str) -> str:
    return "text" if set(_fields(name, text)) & set(CAPTION_FIELDS) else "video"


def _load_file(path: Path) -> PromptTemplate:
    if path.suffix not in {".txt", ".toml"}:
        raise InputError(
            f"unknown prompt {str(path)!r}: give a built-in name ({sorted(BUILTIN_PROMPTS)}) or a .txt/.toml file"
        )
    if not path.is_file():
        raise InputError(f"prompt file not found: {path}")
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the prompt file ({exc})") from exc
    if path.suffix == ".txt":
        text = raw.strip("\n")
        try:
            return PromptTemplate(path.stem, text, _infer_mode(path.stem, text))
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from exc
    try:
        table = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from exc
    unknown = sorted(set(table) - {"name", "text", "mode"})
    if unknown:
        raise InputError(f"{path}: unknown key(s) {unknown}; a prompt file has 'text', 'name' and 'mode'")
    if not isinstance(table.get("text"), str):
        raise InputError(f"{path}: a prompt file needs a string 'text'")
    name = table.get("name", path.stem)
    try:
        mode = table.get("mode") or _infer_mode(str(name), table["text"])
        return PromptTemplate(name, table["text"].strip("\n"), mode)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
