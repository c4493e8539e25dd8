"""Parsing free-text odd-one-out answers and option log-probabilities."""

import math

import pytest

from oddoneout.agents.base import Answer
from oddoneout.agents.parsing import choice_from_logprobs, parse_answer
from oddoneout.errors import InputError

OK = "ok"
AMB = "ambiguous"
UNP = "unparseable"

# (answer text, expected status, expected choice)
CASES = [
    # the requested answer form and its variants
    ("Video 2 is noticeably different from the other two", OK, 1),
    ("Video 1 is noticeably different from the other two.", OK, 0),
    ("**Video 3** is noticeably different from the other two.", OK, 2),
    ("Video2 is noticeably different from the other two", OK, 1),
    ("video number three is noticeably different from the other two", OK, 2),
    ("Video 3 evokes a noticeably different emotional response from the other two.", OK, 2),
    ("Video 2, which shows a crying child, is noticeably different from the other two.", OK, 1),
    ("VIDEO 1 IS NOTICEABLY DIFFERENT FROM THE OTHER TWO", OK, 0),
    # bare references
    ("video two", OK, 1),
    ("The second clip", OK, 1),
    ("the third one", OK, 2),
    ("Clip #3", OK, 2),
    ("3", OK, 2),
    ("1.", OK, 0),
    ("(B)", OK, 1),
    ("B", OK, 1),
    ("Option C", OK, 2),
    ("Answer: (A)", OK, 0),
    ("Final answer: 2", OK, 1),
    ("Video 1. It evokes sadness while the others evoke joy.", OK, 0),
    ("Video 3 - it evokes disgust", OK, 2),
    # descriptions first, then the decisive statement
    (
        "Video 1 shows joy, Video 2 shows fear, Video 3 shows joy. "
        "Video 2 is noticeably different from the other two because it evokes fear.",
        OK,
        1,
    ),
    (
        "1. Video 1: amusement\n2. Video 2: horror\n3. Video 3: amusement\n\n"
        "Video 2 is noticeably different from the other two.",
        OK,
        1,
    ),
    ("Video 1 and video 3 are similar; video 2 is the odd one out", OK, 1),
    ("Video 1 and 3 are similar; video 2 is different.", OK, 1),
    ("Video 1 evokes joy; video 2 evokes fear; video 3 evokes joy. Therefore, video 2.", OK, 1),
    (
        "Video 1 seems different from video 3 in tone. Overall, Video 2 is noticeably different from the other two.",
        OK,
        1,
    ),
    (
        "Video 1 is noticeably different from the other two.\nExplanation: Video 2 and Video 3 both show calm scenes.",
        OK,
        0,
    ),
    # other decisive phrasings
    ("The odd one out is video 1.", OK, 0),
    ("The video that is noticeably different is Video 3.", OK, 2),
    ("The third video stands out.", OK, 2),
    ("Video 2 is the outlier.", OK, 1),
    ("I would pick the first video.", OK, 0),
    ("Final choice: Video 2", OK, 1),
    ("My final answer is (C).", OK, 2),
    ("The last video is the odd one out.", OK, 2),
    ("It is hard to say, but video 1 is different.", OK, 0),
    ("I can't say for sure, but video 2 is noticeably different from the other two.", OK, 1),
    # negations are not statements
    (
        "Video 2 is not noticeably different from the other two. Video 3 is noticeably different from the other two.",
        OK,
        2,
    ),
    ("Video 2 isn't different; video 1 is the odd one out.", OK, 0),
    ("I don't think video 2 is noticeably different from the other two.", UNP, None),
    # two clips, or none, named as different
    ("Video 1 and Video 2 are noticeably different from the other two.", AMB, None),
    ("Videos 1 and 3 are noticeably different", AMB, None),
    ("Video 2 and 3 are noticeably different from video 1", AMB, None),
    (
        "Video 1 is noticeably different from the other two. Video 2 is noticeably different from the other two.",
        AMB,
        None,
    ),
    ("None of the videos is different", AMB, None),
    ("All three videos evoke similar emotions.", AMB, None),
    ("I cannot determine which video is different.", AMB, None),
    ("It is hard to tell.", AMB, None),
    # nothing usable
    ("", UNP, None),
    ("   \n ", UNP, None),
    (None, UNP, None),
    ("asdfgh", UNP, None),
    ("Video 4", UNP, None),
    ("Video 4 is noticeably different from the other two.", UNP, None),
    ("D", UNP, None),
    ("Video 1: joy. Video 2: fear. Video 3: joy.", UNP, None),
    ("Video 1 shows a dog. Video 2 shows a cat.", UNP, None),
    ("The answer is a bit unclear.", UNP, None),
    ("Neither video 1 nor video 3 is different; video 2 is.", UNP, None),
]


@pytest.mark.parametrize(("text", "status", "choice"), CASES)
def test_parse_answer(text, status, choice):
    answer = parse_answer(text)
    assert isinstance(answer, Answer)
    assert (answer.status, answer.choice) == (status, choice)
    assert answer.raw == text  # kept verbatim
    assert (answer.error is None) == (status == OK)


def test_the_table_is_big_and_covers_every_outcome():
    assert len(CASES) >= 30
    assert {status for _, status, _ in CASES} == {OK, AMB, UNP}
    assert {choice for _, status, choice in CASES if status == OK} == {0, 1, 2}


def test_the_paper_prompt_answer_form_parses_for_every_position():
    for n in (1, 2, 3):
        text = (
            "Video 1 evokes calm. Video 2 evokes calm. Video 3 evokes calm.\n"
            f"Video {n} is noticeably different from the other two. It is calmer."
        )
        assert parse_answer(text).choice == n - 1


def test_choice_from_logprobs_normalises_over_the_three_options():
    answer = choice_from_logprobs({"1": math.log(0.1), "2": math.log(0.6), "3": math.log(0.2), "Video": -0.1})
    assert answer.status == OK and answer.choice == 1
    assert answer.probs == pytest.approx((0.1 / 0.9, 0.6 / 0.9, 0.2 / 0.9))
    assert sum(answer.probs) == pytest.approx(1.0)


def test_choice_from_logprobs_merges_spaced_tokens_and_handles_missing_options():
    answer = choice_from_logprobs({" 3": math.log(0.2), "3": math.log(0.2), "1": math.log(0.3)})
    assert answer.choice == 2
    assert answer.probs == pytest.approx((0.3 / 0.7, 0.0, 0.4 / 0.7))


def test_choice_from_logprobs_is_stable_for_very_negative_values():
    answer = choice_from_logprobs({"1": -1000.0, "2": -1001.0, "3": -1002.0})
    assert answer.choice == 0
    assert all(math.isfinite(p) for p in answer.probs)
    assert answer.probs[0] == pytest.approx(1 / (1 + math.exp(-1) + math.exp(-2)))


def test_choice_from_logprobs_failures():
    assert choice_from_logprobs({}).status == UNP
    assert choice_from_logprobs({"A": -0.1, "1": -math.inf}).status == UNP
    tie = choice_from_logprobs({"1": -1.0, "2": -1.0, "3": -3.0})
    assert tie.status == AMB and tie.choice is None and tie.probs is not None
    with pytest.raises(InputError, match="'2'"):
        choice_from_logprobs({"1": -1.0, "2": float("nan")})
