"""Prompts for anchor and ranked trials, and reading the answers of a language model to them."""

from __future__ import annotations

import pytest

from oddoneout.agents.reference_prompts import (
    BUILTIN_REFERENCE_PROMPTS,
    PAPER_LLM_ANCHOR,
    PAPER_LLM_RANKED,
    ReferencePrompt,
    read_anchor_answer,
    read_ranked_answer,
)
from oddoneout.errors import InputError


def test_text_prompts_letter_the_options_in_the_order_shown():
    text = PAPER_LLM_ANCHOR.render("a wedding", ["a funeral", "a birthday"], 2, 1)
    assert "Reference: a wedding" in text and "Option A: a funeral\nOption B: a birthday" in text
    ranked = PAPER_LLM_RANKED.render("calm sea", ["storm", "lake", "fire", "snow"], 4, 2)
    assert "Option D: snow" in ranked and "2 options" in ranked and "4 other videos" in ranked
    with pytest.raises(InputError, match="option captions"):
        PAPER_LLM_ANCHOR.render("a wedding", ["a funeral"], 2, 1)
    for (kind, mode), prompt in BUILTIN_REFERENCE_PROMPTS.items():
        assert prompt.mode == mode and kind in prompt.name


def test_templates_are_checked():
    with pytest.raises(InputError, match="unknown placeholder"):
        ReferencePrompt("x", "{reference} {options} {caption_1}", "text")
    with pytest.raises(InputError, match="needs"):
        ReferencePrompt("x", "Only {options}", "text")
    with pytest.raises(InputError, match="unknown placeholder"):
        ReferencePrompt("x", "frames of {reference}", "video")


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("Option B is more similar to the reference. Both evoke joy.", 2),
        ("Option A is clearly closer to the reference, because ...", 1),
        ("Answer: B", 2),
        ("My answer is (A).", 1),
        ("The more similar option is A; option B is sad.", 1),
        ("I would pick option B.", 2),
        ("The second one is more similar: it also shows awe.", 2),
        ("B. The reference and B are both tender.", 2),
        ("Option A is not more similar to the reference. Option B is more similar to the reference.", 2),
    ],
)
def test_anchor_answers_are_read(text, position):
    reading = read_anchor_answer(text)
    assert (reading.status, reading.positions) == ("ok", (position,))


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("", "unparseable"),
        ("Option A shows a dog and option B a cat.", "unparseable"),
        ("Option A is more similar to the reference. Option B is more similar to the reference.", "ambiguous"),
        ("Option C is more similar to the reference.", "unparseable"),
    ],
)
def test_anchor_answers_that_say_no_one_thing_are_not_guessed(text, status):
    assert read_anchor_answer(text).status == status


def test_ranked_answers_are_read():
    assert read_ranked_answer("Ranking: C, A. Both are calm.", 4, 2).positions == (3, 1)
    assert read_ranked_answer("ranking: option d > option b > option a > option c", 4, 2).positions == (4, 2)
    assert read_ranked_answer("Here is my ranking\n1. Option B\n2. Option D\n", 4, 2).positions == (2, 4)
    assert read_ranked_answer("Ranking: A", 4, 2).status == "unparseable"  # fewer than asked
    assert read_ranked_answer("Ranking: A, A", 4, 2).status == "unparseable"  # twice
    assert read_ranked_answer("Ranking: E, A", 4, 2).status == "unparseable"  # no option E
    assert read_ranked_answer("I like them all", 4, 2).status == "unparseable"
