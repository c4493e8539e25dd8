"""Reading a language model's odd-one-out answer: which shown clip it names, or why none.

The parser never guesses. It rewrites every way of naming a clip ("video two", "the second
clip", "Clip #3", "(B)", "Option C") into one token, then looks for decisive statements in
order of strength:

1. the requested answer form, "<clip> is (noticeably) different from the other two";
2. other decisive statements: "<clip> is the odd one out", "<clip> stands out", "the odd one
   out is <clip>", "Answer: <clip>", "I would pick <clip>";
3. an answer that is only a clip reference ("3", "B", "Video 1." followed by an explanation).

The first level with any statement decides: one clip named -> ``ok``; several clips named
(in one statement or across statements) -> ``ambiguous``. Negated statements ("is not
different", "neither video 1 nor video 3 is") do not count. An answer that says no clip differs,
or that it cannot tell and names none, is ``ambiguous``; an empty answer, one without a
decisive statement, or one naming a clip other than 1-3 is ``unparseable``. Descriptions such
as "Video 1 shows joy" are never read as an answer.
"""

from __future__ import annotations

import math
import re
from typing import Iterable, Mapping

from oddoneout.agents.base import Answer
from oddoneout.errors import InputError

_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_ORDINALS = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "middle": 2, "third": 3, "3rd": 3, "last": 3,
    "fourth": 4, "4th": 4, "fifth": 5, "5th": 5,
}  # fmt: skip
_LETTERS = {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}

_NOUN = r"(?:video|clip|movie|film|option|choice)"
_NUMBER = r"(\d+|" + "|".join(_NUMBER_WORDS) + r")"
_ORDINAL = "|".join(sorted(_ORDINALS, key=len, reverse=True))

# Rewrites into the clip token "<vN>", applied in this order.
_PLURAL_REFS = re.compile(rf"\b{_NOUN}s\s+{_NUMBER}\s*(,|and|&|or)\s*{_NUMBER}\b")
_ORDINAL_REF = re.compile(rf"\b(?:the\s+)?({_ORDINAL})\s+(?:{_NOUN}|one)\b")
_NOUN_REF = re.compile(rf"\b{_NOUN}\s*(?:#|no\.|number|num\.)?\s*{_NUMBER}\b")
_LETTER_REF = re.compile(r"\b(?:option|choice|answer)\s*(?:is\s*)?[:=\-]?\s*\(?([a-e])\)?(?=\s*(?:$|[.,;:!)\n]))")
# "video 1 and 3": a bare number listed right after a clip
_LISTED_NUMBER = re.compile(r"(<v\d+>\s*(?:,|and|&|or)\s*)(\d+)\b")
_PAREN_REF = re.compile(r"\(([a-e]|\d)\)")
_ANSWER_NUMBER = re.compile(r"\b(answer|choice|pick)\s*(?:is\s*)?[:=\-]?\s*(\d+)(?=\s*(?:$|[.,;!)\n]))")

_TOKEN = r"<v\d+>"
_REFLIST = rf"(?P<refs>{_TOKEN}(?:\s*(?:,|and|&|or|as well as)\s*{_TOKEN})*)"
# an aside between the subject and its verb: "Video 2 (the dog), which shows fear, is ..."
_ASIDE = r"(?:\s*\([^()]{0,80}\))?(?:\s*,[^,.;]{0,80},)?"
# up to three words before the keyword, none of them a negation ("is clearly different", not "is not")
_HEDGE = r"(?:(?!(?:not|never|no|hardly|barely)\b)[a-z']+\s+){0,3}"
_BE = r"(?:is|was|are|were|seems?|appears?|looks?|feels?)(?:\s+to\s+be)?"
# "Video 3 evokes a noticeably different emotional response from the other two"
_VERB = rf"(?:{_BE}|(?:evokes?|elicits?|provokes?|triggers?|has|creates?|produces?|conveys?|gives?))"

_ANSWER_FORM = re.compile(
    rf"{_REFLIST}{_ASIDE}\s+{_VERB}\s+{_HEDGE}different(?:\s+[a-z]+){{0,3}}?\s+from\s+(?:all\s+)?(?:the\s+)?"
    r"(?:other|others|rest|remaining|two|2)\b"
)
_DECISIVE = (
    re.compile(
        rf"{_REFLIST}{_ASIDE}\s+{_VERB}\s+{_HEDGE}"
        r"(?:different|distinct|the\s+odd\s+one|odd\s+one\s+out|an?\s+outlier|the\s+outlier|the\s+exception)\b"
    ),
    re.compile(rf"{_REFLIST}{_ASIDE}\s+(?:{_HEDGE})?stands?\s+out\b"),
    re.compile(rf"{_REFLIST}\s*[:\-–—]\s*(?:the\s+)?(?:odd\s+one|outlier)\b"),
    re.compile(
        r"(?:odd\s+one(?:\s+out)?|outlier|(?:final\s+)?answer|choice|pick|"
        r"(?:one|video|clip)\s+that\s+(?:is|was|stands\s+out)(?:\s+(?:noticeably|clearly|most))?(?:\s+different)?"
        r"(?:\s+from\s+the\s+other\s+two)?)"
        rf"\s*(?:here\s+)?(?:is|would\s+be|will\s+be|:|=|-|–|—)\s*(?:the\s+)?{_REFLIST}"
    ),
    re.compile(
        r"\b(?:therefore|thus|so|hence|overall|in\s+conclusion|in\s+summary|in\s+short)\s*,?\s*"
        rf"(?:the\s+answer\s+is\s+|my\s+answer\s+is\s+)?{_REFLIST}\s*(?:$|[.!\n])"
    ),
    re.compile(rf"\bi\s+(?:would\s+|will\s+|'d\s+)?(?:choose|pick|select|go\s+with|say)\s+{_REFLIST}"),
)
# "no clip differs" statements
_NONE_STATEMENTS = (
    re.compile(
        r"\b(?:none|neither|no)\s+(?:of\s+(?:the\s+)?(?:three\s+|3\s+)?(?:videos|clips|them|options)|"
        r"(?:single\s+)?(?:video|clip|one|option))\b[^.;\n]{0,40}?\b"
        r"(?:is|are|stands?|seems?|was|evokes?|differs?)\b"
    ),
    re.compile(r"\ball\s+(?:three|3)?\s*(?:of\s+them\s+|videos\s+|clips\s+)?(?:are|evoke|seem)\s+(?:\w+\s+){0,2}"
               r"(?:similar|the\s+same|equally)\b"),
)  # fmt: skip
# "I cannot tell": ambiguous when no decisive statement follows ("I can't say for sure, but video 2 is ...")
_UNDECIDED = re.compile(
    r"\b(?:cannot|can't|can\s+not|unable\s+to|impossible\s+to|hard\s+to|difficult\s+to)\s+(?:\w+\s+){0,2}"
    r"(?:determine|decide|tell|identify|choose|pick|say)\b"
)
# "neither video 1 nor video 3 is different", "I don't think video 2 is different"
_NEGATED_BEFORE = re.compile(r"(?:\b(?:nor|neither|not|no|than|doubt)|n't\s+think)\s+(?:that\s+)?(?:the\s+)?$")
_BARE = re.compile(r"^\(?([1-9]\d*|[a-e])\)?[.!)]?$")
_LEAD_REF = re.compile(
    r"^(?:the\s+)?(?:(?:final\s+|my\s+)?answer\s*(?:is)?\s*[:\-]?\s*)?(?:the\s+)?"
    r"<v(\d+)>\s*(?:$|[.!\n]|\s[-–—]\s|,?\s+(?:because|since|as)\b)"
)
_TOKEN_NUMBERS = re.compile(r"<v(\d+)>")


def _number(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBER_WORDS[word]


def _canonical(text: str) -> str:
    """Lower-case text with markdown removed and every clip reference rewritten to ``<vN>``."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"[*`_\"“”]", "", text)
    text = re.sub(r"[ \t]+", " ", text)
    text = _PLURAL_REFS.sub(lambda m: f"<v{_number(m[1])}> {m[2]} <v{_number(m[3])}>", text)
    text = _ORDINAL_REF.sub(lambda m: f"<v{_ORDINALS[m[1]]}>", text)
    text = _NOUN_REF.sub(lambda m: f"<v{_number(m[1])}>", text)
    while _LISTED_NUMBER.search(text):
        text = _LISTED_NUMBER.sub(lambda m: f"{m[1]}<v{m[2]}>", text)
    text = _LETTER_REF.sub(lambda m: f"answer: <v{_LETTERS[m[1]]}>", text)
    text = _ANSWER_NUMBER.sub(lambda m: f"{m[1]}: <v{m[2]}>", text)
    text = _PAREN_REF.sub(lambda m: f"<v{_LETTERS.get(m[1]) or m[1]}>", text)
    return text.strip()


def _refs(match: re.Match) -> set[int]:
    return {int(n) for n in _TOKEN_NUMBERS.findall(match["refs"])}


def _statements(patterns: Iterable[re.Pattern], text: str) -> list[set[int]]:
    """Clips named by every match of ``patterns``, except statements negated just before."""
    return [
        _refs(match)
        for pattern in patterns
        for match in pattern.finditer(text)
        if not _NEGATED_BEFORE.search(text[max(0, match.start() - 40) : match.start()])
    ]


def _lead_references(text: str) -> list[set[int]]:
    """Sentences (lines, or the answer's start) that are only a clip reference."""
    found = []
    for line in re.split(r"\n+", text):
        match = _LEAD_REF.match(line.strip().lstrip("->–—#: "))
        if match:
            found.append({int(match[1])})
    return found


def _decide(statements: list[set[int]], raw: str) -> Answer:
    named = set().union(*statements)
    out_of_range = sorted(n for n in named if not 1 <= n <= 3)
    if out_of_range:
        return Answer(None, "unparseable", raw=raw, error=f"names clip(s) {out_of_range}; only 1-3 were shown")
    if len(named) != 1:
        return Answer(None, "ambiguous", raw=raw, error=f"names clips {sorted(named)} as different")
    return Answer(named.pop() - 1, raw=raw)


def parse_answer(text: str | None) -> Answer:
    """Read which shown clip an answer names as the odd one out.

    Parameters
    ----------
    text : str or None
        The model's answer, verbatim.

    Returns
    -------
    Answer
        ``ok`` with ``choice`` 0, 1 or 2 (the position shown; "Video 1", "A" and "first" are 0),
        ``ambiguous`` when the answer names several clips as different or says none is, or
        ``unparseable`` when it names none (or a clip that was not shown). ``raw`` keeps
        ``text`` verbatim and ``error`` says why a failed answer failed.
    """
    if text is None or not text.strip():
        return Answer(None, "unparseable", raw=text, error="empty answer")
    canonical = _canonical(text)
    bare = _BARE.match(canonical.strip(" '"))
    if bare:
        value = bare[1]
        return _decide([{_LETTERS[value] if value in _LETTERS else int(value)}], text)
    if any(pattern.search(canonical) for pattern in _NONE_STATEMENTS):
        return Answer(None, "ambiguous", raw=text, error="the answer says no clip is different")
    for statements in (
        _statements([_ANSWER_FORM], canonical),
        _statements(_DECISIVE, canonical),
        _lead_references(canonical),
    ):
        if statements:
            return _decide(statements, text)
    if _UNDECIDED.search(canonical):
        return Answer(None, "ambiguous", raw=text, error="the answer says it cannot tell")
    return Answer(None, "unparseable", raw=text, error="no statement naming the different clip")


def choice_from_logprobs(logprobs: Mapping[str, float]) -> Answer:
    """An answer from the log-probabilities a server gives the options ``"1"``, ``"2"``, ``"3"``.

    Parameters
    ----------
    logprobs : mapping of str to float
        Log-probability of each answer token. Keys are stripped (``" 2"`` counts as ``"2"``);
        other tokens are ignored. An option the server did not return has probability 0.

    Returns
    -------
    Answer
        ``ok`` with the probabilities normalised over the three options and ``choice`` their
        argmax; ``ambiguous`` when the top two tie exactly; ``unparseable`` when none of the
        three options has a finite log-probability.

    Raises
    ------
    InputError
        When a log-probability is NaN or positive infinity.
    """
    values = {}
    for token, logprob in logprobs.items():
        key = str(token).strip()
        if key not in ("1", "2", "3"):
            continue
        logprob = float(logprob)
        if math.isnan(logprob) or logprob == math.inf:
            raise InputError(f"log-probability of option {token!r} is {logprob}")
        # the same option may come as several tokens ("2", " 2"): their probabilities add up
        values[key] = _logaddexp(values[key], logprob) if key in values else logprob
    finite = [v for v in values.values() if v > -math.inf]
    raw = repr(dict(logprobs))
    if not finite:
        return Answer(None, "unparseable", raw=raw, error="no log-probability for options 1, 2, 3")
    top = max(finite)
    weights = [math.exp(values[k] - top) if k in values else 0.0 for k in ("1", "2", "3")]
    total = sum(weights)
    probs = tuple(w / total for w in weights)
    ranked = sorted(range(3), key=lambda i: probs[i], reverse=True)
    if probs[ranked[0]] == probs[ranked[1]]:
        return Answer(None, "ambiguous", probs=probs, raw=raw, error="options tie")
    return Answer(ranked[0], probs=probs, raw=raw)


def _logaddexp(a: float, b: float) -> float:
    top = max(a, b)
    if top == -math.inf:
        return top
    return top + math.log(math.exp(a - top) + math.exp(b - top))
