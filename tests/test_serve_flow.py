"""The participant flow's texts and completion URL: set in the study config, checked at load, sent only as JSON."""

from __future__ import annotations

import httpx
import pytest
from serve_study import Server, write_study
from test_serve_admin import run_session

from oddoneout.agents.registry import HumanSettings
from oddoneout.collect import flow
from oddoneout.config import dump_config, load_config
from oddoneout.errors import InputError

CONSENT = 'Consent <script>alert("x")</script> & <b>bold</b>\n\nA second paragraph: "quoted", back\\slash, ünïcode.'
PROLIFIC_URL = "https://app.prolific.com/submissions/complete?cc={code}"


def human_config(tmp_path, lines: str):
    path = tmp_path / "people.toml"
    path.write_text(f'[systems.people]\nagent = "human"\n{lines}\n')
    return path


def test_the_texts_default_to_the_built_in_ones_and_survive_config_toml(tmp_path):
    settings = load_config(human_config(tmp_path, "")).systems["people"].settings
    assert (settings.consent_text, settings.instructions_text, settings.debrief_text) == (
        flow.DEFAULT_CONSENT,
        flow.DEFAULT_INSTRUCTIONS,
        flow.DEFAULT_DEBRIEF,
    )
    assert settings.completion_url == ""
    path = write_study(tmp_path / "study", consent_text=CONSENT, completion_url=PROLIFIC_URL)
    config = load_config(path)
    assert config.systems["people"].settings.consent_text == CONSENT
    again = tmp_path / "again.toml"
    again.write_text(dump_config(config))  # line breaks, quotes and backslashes escaped
    reloaded = load_config(again)
    assert reloaded.hash == config.hash and reloaded.systems["people"].settings.consent_text == CONSENT


@pytest.mark.parametrize(
    "line",
    [
        'completion_url = "javascript:alert(1)"',
        'completion_url = "data:text/html,<script>alert(1)</script>"',
        'completion_url = "ftp://example.org/done"',
        'completion_url = "https://"',
        'completion_url = "//app.prolific.com/submissions/complete"',
        'completion_url = "https://app.prolific.com/a b"',
        'completion_url = "app.prolific.com/submissions/complete?cc=X"',
    ],
)
def test_a_completion_url_that_is_not_http_is_refused_at_load_with_one_line(tmp_path, line):
    with pytest.raises(InputError) as error:
        load_config(human_config(tmp_path, line))
    message = str(error.value)
    assert "\n" not in message and "completion_url" in message and "http(s) URL" in message


@pytest.mark.parametrize(
    "line, key",
    [
        ('consent_text = ""', "consent_text"),
        ('instructions_text = "   "', "instructions_text"),
        ('debrief_text = "bell \\u0007"', "debrief_text"),
        (f'consent_text = "{"x" * (flow.MAX_TEXT_CHARS + 1)}"', "consent_text"),
        ("consent_text = 3", "consent_text"),
    ],
)
def test_bad_texts_are_refused_at_load(tmp_path, line, key):
    with pytest.raises(InputError, match=key):
        load_config(human_config(tmp_path, line))


@pytest.mark.parametrize(
    "line, problem",
    [
        ('question_text = "   "', "must not be blank"),
        (f'question_text = "{"x" * (flow.MAX_QUESTION_CHARS + 1)}"', f"at most {flow.MAX_QUESTION_CHARS} characters"),
        ('question_text = "Which one?\\nClick it."', "one line of text"),
        ('question_text = """Which one?\nClick it."""', "one line of text"),  # a TOML line break
        ('question_text = "tab\\there"', "one line of text"),
        ("question_text = 3", "is not a string"),
        ('question_text = ["Which one?"]', "is not a string"),
    ],
)
def test_a_bad_question_text_is_refused_at_load_with_one_line_naming_it(tmp_path, line, problem):
    with pytest.raises(InputError) as error:
        load_config(human_config(tmp_path, line))
    message = str(error.value)
    assert "\n" not in message and "[systems.people] question_text: " in message and problem in message


def test_the_question_defaults_to_the_trial_types_own_and_a_configured_one_replaces_it(tmp_path):
    # the wording the page had before the question became a setting
    assert flow.default_question("odd_one_out", 3) == "Which one is the odd one out? Click it, or press 1, 2 or 3."
    assert flow.default_question("anchor", 3) == (
        "Which option is more similar to the reference? Click it, or press 1 or 2."
    )
    assert flow.default_question("ranked", 5, 1) == (
        "Which option is most similar to the reference? Click it (or press its number, 1 to 4), then submit."
    )
    assert flow.default_question("ranked", 4, 2) == (
        "Click the 2 options most similar to the reference, the most similar first (or press their numbers, "
        "1 to 3). Undo or reset to change your order, then submit."
    )
    settings = load_config(human_config(tmp_path, "")).systems["people"].settings
    assert settings.question_text == ""  # "" = the trial type's own
    assert flow.question(settings.question_text, "anchor", 3) == flow.default_question("anchor", 3)
    asked = "Which <b>two</b> are closest? Then submit & go on."
    config = load_config(human_config(tmp_path, f"question_text = {asked!r}"))
    assert config.systems["people"].settings.question_text == asked
    assert flow.question(asked, "ranked", 4, 2) == asked
    again = tmp_path / "again.toml"
    again.write_text(dump_config(config))
    assert load_config(again).hash == config.hash
    assert load_config(human_config(tmp_path, 'question_text = ""')).systems["people"].settings.question_text == ""
    assert not list(HumanSettings(question_text="x" * flow.MAX_QUESTION_CHARS).problems())


def test_http_urls_are_accepted():
    for url in ("", "https://app.prolific.com/submissions/complete?cc=C1A2B3", "http://127.0.0.1:9/x?code={code}"):
        assert not list(HumanSettings(completion_url=url).problems())
    encoded = flow.completion_url(PROLIFIC_URL, "AB C/&")
    assert encoded == "https://app.prolific.com/submissions/complete?cc=AB%20C%2F%26"
    assert flow.completion_url("", "CODE") is None and flow.completion_url(PROLIFIC_URL, None) is None


def test_the_texts_reach_the_page_only_as_json_and_the_url_only_when_done(tmp_path):
    config = write_study(
        tmp_path / "study",
        consent_text=CONSENT,
        instructions_text="Pick <i>one</i>.",
        debrief_text="Bye </script>",
        completion_url=PROLIFIC_URL,
        trials_per_session=2,
    )
    with Server(config, tmp_path / "out") as server:
        page = httpx.get(server.url + "/").text
        texts = httpx.get(server.url + "/api/texts")
        session = run_session(server, {}, [800.0], catch_right=True)
        done = run_session(server, {}, [800.0, 900.0], catch_right=True)
        server.stop()
    assert texts.status_code == 200 and texts.headers["content-type"] == "application/json"
    assert texts.json() == {
        "consent": CONSENT,
        "instructions": "Pick <i>one</i>.",
        "debrief": "Bye </script>",
        "break": flow.DEFAULT_BREAK,
        "question": "Which one is the odd one out? Click it, or press 1, 2 or 3.",  # the trial type's own
    }
    # the page holds none of the texts (nor the built-in ones): the script sets them as plain text
    shown = ("<script>alert", "Pick <i>", "Bye ", "cannot be read back", "go with your first impression", "odd one")
    for text in shown:
        assert text not in page
    assert not session["done"] and session["completion_url"] is None
    assert done["done"] and done["completion_code"]
    assert done["completion_url"] == PROLIFIC_URL.replace("{code}", done["completion_code"])
