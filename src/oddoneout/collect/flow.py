"""The participant flow's texts (consent, instructions, break, debrief, the trial question) and the completion link.

Each is as a config sets it, else its default here. The texts are plain text: the page sets each
paragraph (separated by a blank line), and the one-line question above each trial, with
``textContent``, so a text can never become markup. The question's default depends on the trial
type (:func:`default_question`). The completion URL is where the page goes after
the debrief, e.g. Prolific's ``https://app.prolific.com/submissions/complete?cc=CODE``; only
``http``/``https`` URLs are accepted (never ``javascript:`` or ``data:``), and ``{code}`` in it
stands for the session's completion code. This module needs no web framework: the config loader
checks the values with it.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote, urlsplit

DEFAULT_CONSENT = (
    "In this study you will see sets of three descriptions and choose, each time, the one that is most "
    "different from the other two. It takes a few minutes. Your answers and response times are stored for "
    "research; your platform id is stored only in a form that cannot be read back. You may stop at any time "
    "by closing this page."
)
DEFAULT_INSTRUCTIONS = (
    "Each screen shows three descriptions side by side. Choose the odd one out: the one least like the "
    "other two. Click it, or press 1, 2 or 3 for the left, middle or right one. There are no right or wrong "
    "answers; go with your first impression."
)
DEFAULT_DEBRIEF = (
    "You have finished. This study asked which description is the odd one out, to learn how people judge "
    "the similarity of what they are shown; your answers will be compared with those of other people and "
    "of computer models."
)
DEFAULT_BREAK = "Take a short break. Continue when you are ready."
#: Most characters of the trial question.
MAX_QUESTION_CHARS = 500
#: Most characters of one text.
MAX_TEXT_CHARS = 20_000
#: Most characters of the completion URL.
MAX_URL_CHARS = 2_000
#: What the completion URL's ``{code}`` is replaced with.
CODE_FIELD = "{code}"
_URL_EXAMPLE = "https://app.prolific.com/submissions/complete?cc=CODE"


def text_problem(text: str) -> str | None:
    """What is wrong with a flow text (``None``: nothing): empty, too long, or holding control characters."""
    if not text.strip():
        return "must not be empty"
    if len(text) > MAX_TEXT_CHARS:
        return f"must be at most {MAX_TEXT_CHARS} characters"
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
        return "must be text without control characters (line breaks and tabs allowed)"
    return None


def question_problem(text: str) -> str | None:
    """What is wrong with a configured trial question (``None``: nothing; ``""`` means the default).

    Blank, longer than :data:`MAX_QUESTION_CHARS`, or holding a line break or another control character.
    """
    if text == "":
        return None
    if not text.strip():
        return 'must not be blank (leave it out, or set "", for the trial type\'s own question)'
    if len(text) > MAX_QUESTION_CHARS:
        return f"must be at most {MAX_QUESTION_CHARS} characters"
    if any(unicodedata.category(c) == "Cc" for c in text):
        return "must be one line of text without control characters"
    return None


def default_question(trial_type: str, n_shown: int, n_ranked: int = 1) -> str:
    """The question above each trial of a trial type (its ``name``), unless the config sets ``question_text``.

    ``n_shown`` counts the items shown (an anchor or ranked trial's reference first), ``n_ranked`` the
    options a ranked trial asks for.
    """
    if trial_type == "anchor":
        return "Which option is more similar to the reference? Click it, or press 1 or 2."
    if trial_type == "ranked":
        n = n_shown - 1
        if n_ranked == 1:
            return (
                f"Which option is most similar to the reference? Click it (or press its number, 1 to {n}), then submit."
            )
        return (
            f"Click the {n_ranked} options most similar to the reference, the most similar first (or press their "
            f"numbers, 1 to {n}). Undo or reset to change your order, then submit."
        )
    return "Which one is the odd one out? Click it, or press 1, 2 or 3."


def question(configured: str, trial_type: str, n_shown: int, n_ranked: int = 1) -> str:
    """The question the page shows above each trial: ``configured`` (``question_text``), else the default."""
    return configured or default_question(trial_type, n_shown, n_ranked)


def url_problem(url: str) -> str | None:
    """What is wrong with a completion URL (``None``: nothing; ``""`` means no redirect).

    Only an absolute ``http``/``https`` URL with a host, without spaces or control characters,
    of at most :data:`MAX_URL_CHARS` characters.
    """
    if url == "":
        return None
    wrong = f"{url[:80]!r} is not an http(s) URL such as {_URL_EXAMPLE}"
    if len(url) > MAX_URL_CHARS:
        return f"must be at most {MAX_URL_CHARS} characters"
    if any(c.isspace() or not c.isprintable() for c in url):
        return wrong
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return wrong
    if parts.scheme not in ("http", "https") or not host:
        return wrong
    return None


def completion_url(template: str, code: str | None) -> str | None:
    """The URL a finished session goes to: ``template`` with ``{code}`` replaced (URL-encoded); ``None`` without one."""
    if not template or code is None:
        return None
    return template.replace(CODE_FIELD, quote(code, safe=""))
