"""Anchor and ranked trials served to people: a real ``oddoneout serve`` on loopback, its real store, real Chromium.

An anchor trial shows a reference (shown position 0) and two options (1, 2): the participant picks
the option more similar to the reference. A ranked trial shows a reference and ``n`` options: the
participant clicks the ``k`` most similar in order, then submits. The server stores the choice
(and ranking) as a judgment; an impossible answer is 422 and changes nothing.
"""

from __future__ import annotations

import json
import signal

import httpx
import numpy as np
from serve_study import CAPTION, Server, rows, snapshot, store_path, write_study
from test_interactive_map import _driver

from oddoneout.collect import flow
from oddoneout.collect.quality import session_quality
from oddoneout.collect.status import format_status, store_status
from oddoneout.serve.jspsych import jspsych_trials


def start(server: Server) -> dict:
    reply = httpx.post(server.url + "/api/session", json={"consent": True, "params": {}})
    assert reply.status_code == 200, reply.text
    return reply.json()


def post(server: Server, token: str, body: dict) -> httpx.Response:
    return httpx.post(server.url + "/api/answer", json=body, headers={"authorization": f"Bearer {token}"})


def judgments(out) -> list[tuple]:
    """Each stored answer, in the order the session answered: choice, ranking, raw, items, input, response time."""
    return rows(
        store_path(out),
        "SELECT j.choice, j.ranking, j.raw_answer, j.trial_type, j.item_0, j.item_1, j.item_2, j.more_items, "
        "r.input, r.rt_ms, j.latency_s FROM judgments j JOIN serve_responses r "
        "USING (design, triplet_index, ordering, repeat) ORDER BY r.position",
    )


def test_impossible_anchor_and_ranked_answers_are_refused_and_change_nothing(tmp_path):
    config, out = write_study(tmp_path / "anchor", trial_type="anchor"), tmp_path / "anchor-out"
    with Server(config, out) as server:
        session = start(server)
        assert session["layout"] == {"trial_type": "anchor", "spec": "anchor", "n_shown": 3, "n_ranked": 1}
        assert httpx.get(server.url + "/api/texts").json()["question"] == flow.default_question("anchor", 3)
        assert all(len(t["texts"]) == 3 for t in session["trials"] + session["practice"])
        token, trial = session["token"], session["trials"][0]
        before = snapshot(store_path(out))
        base = {"key": trial["key"], "rt_ms": 900.0, "input": "click"}
        for bad in (
            {"choice": 0},  # the reference
            {"choice": 3},  # out of range
            {"choice": -1},
            {"choice": True},
            {"choice": "1"},
            {},
            {"choice": 1, "ranking": [1, 2]},  # one choice, not a ranking
        ):
            reply = post(server, token, {**base, **bad})
            assert reply.status_code == 422, (bad, reply.text)
        assert snapshot(store_path(out)) == before
        assert post(server, token, {**base, "choice": 2}).status_code == 200
        assert (
            post(server, token, {**base, "key": session["trials"][1]["key"], "choice": 1, "ranking": [1]}).json()[
                "n_answered"
            ]
            == 2
        )
        assert server.stop(signal.SIGTERM) == 0
    stored = judgments(out)
    assert [(c, ranking, raw, kind) for c, ranking, raw, kind, *_ in stored] == [
        (2, None, "click 2", "anchor"),
        (1, None, "click 1", "anchor"),
    ]

    config, out = write_study(tmp_path / "ranked", trial_type="ranked:4:2"), tmp_path / "ranked-out"
    with Server(config, out) as server:
        session = start(server)
        assert session["layout"] == {"trial_type": "ranked", "spec": "ranked:4:2", "n_shown": 5, "n_ranked": 2}
        assert httpx.get(server.url + "/api/texts").json()["question"] == flow.default_question("ranked", 5, 2)
        assert all(len(t["texts"]) == 5 for t in session["trials"] + session["practice"])
        token, trials = session["token"], session["trials"]
        before = snapshot(store_path(out))
        base = {"key": trials[0]["key"], "rt_ms": 1500.0, "input": "key"}
        for bad in (
            {"ranking": [0, 1]},  # the reference
            {"ranking": [2, 2]},  # an option twice
            {"ranking": [1]},  # too short
            {"ranking": [1, 2, 3]},  # too long
            {"ranking": [1, 5]},  # out of range
            {"ranking": [1, "2"]},
            {"ranking": "12"},
            {"choice": 1},  # no ranking
            {"choice": 2, "ranking": [1, 2]},  # a choice other than the ranking's first
        ):
            reply = post(server, token, {**base, **bad})
            assert reply.status_code == 422, (bad, reply.text)
        assert snapshot(store_path(out)) == before
        assert post(server, token, {**base, "ranking": [3, 1]}).status_code == 200
        assert post(server, token, {**base, "key": trials[1]["key"], "choice": 4, "ranking": [4, 2]}).status_code == 200
        assert post(server, token, {**base, "key": trials[1]["key"], "ranking": [1, 2]}).status_code == 409  # a replay
        assert server.stop(signal.SIGTERM) == 0
    stored = judgments(out)
    assert [(c, json.loads(ranking), raw, kind) for c, ranking, raw, kind, *_ in stored] == [
        (3, [3, 1], "key 3 1", "ranked:4:2"),
        (4, [4, 2], "key 4 2", "ranked:4:2"),
    ]
    assert all(len(json.loads(row[7])) == 2 for row in stored)  # the 4th and 5th items shown
    # the jsPsych records and the quality measures know the trial type
    records = jspsych_trials(store_path(out))
    assert [(r["trial_type"], r["trial_spec"], r["response"], r["ranking"]) for r in records] == [
        ("ranked", "ranked:4:2", 3, [3, 1]),
        ("ranked", "ranked:4:2", 4, [4, 2]),
    ]
    assert all(r["chosen"] == r["stimulus"][r["response"]] and r["odd_one_out"] is None for r in records)
    assert all(len(r["stimulus"]) == 5 for r in records)
    quality = session_quality(store_path(out), min_rt_ms=300)
    rates = quality.iloc[0][[f"choice_rate_{p}" for p in range(5)]].to_numpy(dtype=float)
    assert np.isnan(rates[0]) and rates[1:].tolist() == [0.0, 0.0, 0.5, 0.5]
    assert quality.iloc[0]["position_p"] > 0
    # oddoneout status shows every position's rate, the reference's as "-"
    shown = format_status(store_status(store_path(out)))
    assert "- 0.00 0.00 0.50 0.50" in shown, shown


def _browser(tmp_path, server: Server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _driver(tmp_path / "chrome-profile", browser_log=True)
    wait = WebDriverWait(driver, 20)

    def visible(element_id: str):
        return wait.until(
            lambda d: d.find_element(By.ID, element_id).is_displayed() and d.find_element(By.ID, element_id)
        )

    def progress(text: str) -> None:
        wait.until(lambda d: d.find_element(By.ID, "progress").text == text)

    def key(character: str) -> None:
        driver.find_element(By.TAG_NAME, "body").send_keys(character)

    def click(element_id: str) -> None:
        driver.find_element(By.ID, element_id).click()

    def texts(n_shown: int) -> list[str]:
        shown = [driver.find_element(By.CSS_SELECTOR, "#reference .text").text]
        return shown + [driver.find_element(By.CSS_SELECTOR, f"#option-{p} .text").text for p in range(1, n_shown)]

    driver.get(server.url + "/")
    visible("consent-yes").click()
    visible("instructions-go").click()
    return driver, visible, progress, key, click, texts


def _question_shown_as_text(driver, question: str) -> None:
    """The page shows ``question`` above the trial, character for character: no markup of it became an element."""
    from selenium.webdriver.common.by import By

    shown = driver.find_element(By.ID, "question")
    assert shown.text == question
    assert not shown.find_elements(By.CSS_SELECTOR, "*")  # plain text: no <b> (or any) element
    assert shown.get_attribute("innerHTML") == question.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _no_browser_errors(driver) -> None:
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors  # no CSP violation, no failed request, no script error


def test_an_anchor_session_in_chromium_by_click_and_by_key(tmp_path):
    from selenium.webdriver.common.by import By

    question = "Which <b>one</b> is closer to the reference? Click it & go on (keys 1, 2)."
    config = write_study(
        tmp_path / "study", trial_type="anchor", trials_per_session=4, practice_trials=1, question_text=question
    )
    out = tmp_path / "out"
    with Server(config, out) as server:
        driver, visible, progress, key, click, texts = _browser(tmp_path, server)
        try:
            progress("Practice 1 of 1")
            assert visible("reference-box")
            _question_shown_as_text(driver, question)  # the config's, <b> shown as <b>
            assert not driver.find_elements(By.ID, "option-0")  # the reference is no option
            assert driver.find_element(By.ID, "rank-controls").is_displayed() is False
            click("option-1")  # practice
            visible("ready-go").click()
            progress("Trial 1 of 4")
            _question_shown_as_text(driver, question)
            shown = texts(3)
            assert all(text.startswith('<img src=x onerror="document.title=1"> <b>item') for text in shown)
            assert not driver.find_elements(By.CSS_SELECTOR, "#options b, #reference b")
            driver.find_element(By.CSS_SELECTOR, "#reference .reference-item").click()  # the reference: nothing
            key("3")  # no option 3: nothing
            click("option-2")
            progress("Trial 2 of 4")
            key("1")
            progress("Trial 3 of 4")
            key("2")
            progress("Trial 4 of 4")
            click("option-1")
            visible("completion-code")
            _no_browser_errors(driver)
        finally:
            driver.quit()
        assert server.stop(signal.SIGTERM) == 0
    stored = judgments(out)
    assert [(c, ranking, raw, kind, input) for c, ranking, raw, kind, *_, input, _, _ in stored] == [
        (2, None, "click 2", "anchor", "click"),
        (1, None, "key 1", "anchor", "key"),
        (2, None, "key 2", "anchor", "key"),
        (1, None, "click 1", "anchor", "click"),
    ]
    assert [CAPTION.format(item=item) for item in stored[0][4:7]] == shown  # the reference first, as shown
    assert all(0 < rt_ms < 60_000 and abs(latency - rt_ms / 1000) < 1e-3 for *_, rt_ms, latency in stored)


def test_a_ranked_session_in_chromium_click_in_order_then_submit(tmp_path):
    from selenium.webdriver.common.by import By

    question = "Pick the two closest to the reference, the closest first; then submit."
    config = write_study(
        tmp_path / "study", trial_type="ranked:3:2", trials_per_session=3, practice_trials=1, question_text=question
    )
    out = tmp_path / "out"
    with Server(config, out) as server:
        driver, visible, progress, key, click, texts = _browser(tmp_path, server)

        def ranks() -> list[str]:
            return [driver.find_element(By.CSS_SELECTOR, f"#option-{p} .rank").text for p in (1, 2, 3)]

        submit = driver.find_element(By.ID, "rank-submit")
        try:
            progress("Practice 1 of 1")
            assert visible("rank-controls") and not submit.is_enabled()
            _question_shown_as_text(driver, question)  # the config's, not the trial type's own
            click("option-2")
            click("option-1")
            submit.click()
            visible("ready-go").click()
            progress("Trial 1 of 3")
            _question_shown_as_text(driver, question)
            shown = texts(4)
            click("option-3")
            assert ranks() == ["", "", "Rank 1"] and not submit.is_enabled()
            click("option-3")  # ranked already: nothing
            click("option-1")
            assert ranks() == ["Rank 2", "", "Rank 1"] and submit.is_enabled()
            click("option-2")  # two asked for: nothing
            assert ranks() == ["Rank 2", "", "Rank 1"]
            submit.click()
            progress("Trial 2 of 3")
            assert ranks() == ["", "", ""]
            click("option-2")
            click("rank-undo")
            assert ranks() == ["", "", ""]
            key("1")
            key("3")
            assert ranks() == ["Rank 1", "", "Rank 2"]
            key("\ue007")  # Enter: submit by key
            progress("Trial 3 of 3")
            key("2")
            key("1")
            click("rank-reset")
            assert ranks() == ["", "", ""] and not submit.is_enabled()
            click("option-2")
            click("option-3")
            submit.click()
            visible("completion-code")
            _no_browser_errors(driver)
        finally:
            driver.quit()
        assert server.stop(signal.SIGTERM) == 0
    stored = judgments(out)
    assert [(c, json.loads(ranking), raw, input) for c, ranking, raw, _, *_, input, _, _ in stored] == [
        (3, [3, 1], "click 3 1", "click"),
        (1, [1, 3], "key 1 3", "key"),
        (2, [2, 3], "click 2 3", "click"),
    ]
    assert all(kind == "ranked:3:2" for _, _, _, kind, *_ in stored)
    assert [CAPTION.format(item=item) for item in [*stored[0][4:7], *json.loads(stored[0][7])]] == shown
    assert all(0 < rt_ms < 60_000 and abs(latency - rt_ms / 1000) < 1e-3 for *_, rt_ms, latency in stored)


def test_the_lease_book_checks_answers_by_trial_type_and_keeps_sessions_apart(tmp_path):
    import pytest

    from oddoneout.collect.designs import random_design
    from oddoneout.collect.leases import LeaseBook, check_answer
    from oddoneout.collect.store import TripletStore
    from oddoneout.errors import InputError
    from oddoneout.triplets import ANCHOR, ODD_ONE_OUT, Ranked

    assert check_answer(ODD_ONE_OUT, 0) == (0, None) and check_answer(ANCHOR, 2) == (2, None)
    assert check_answer(Ranked(4, 2), None, [4, 1]) == (4, (4, 1))
    assert check_answer(Ranked(4, 1), 3, [3]) == (3, None)
    for kind, choice, ranking in [
        (ODD_ONE_OUT, 3, None),
        (ANCHOR, 0, None),
        (ANCHOR, 1.0, None),
        (Ranked(4, 2), None, [1, 1]),
        (Ranked(4, 2), None, [0, 2]),
        (Ranked(4, 2), None, [True, 2]),
        (Ranked(4, 2), 1, None),
    ]:
        with pytest.raises(InputError):
            check_answer(kind, choice, ranking)
    items = [f"item{i:02d}" for i in range(6)]
    design = random_design(items, 40, seed=3, trial_type=ANCHOR)
    store = TripletStore(tmp_path / "s.sqlite", agent="people", model="human", item_ids=items)
    with pytest.raises(InputError, match="catch trials are odd-one-out trials only"):
        LeaseBook(store, [design], lease_seconds=60, catch_trials=1)
    book = LeaseBook(store, [design], lease_seconds=60)
    session = book.open_session("a" * 24, n_trials=5, completion_code="C")
    shown = [frozenset(t.items) for t in book.lease(session, now=1e9).trials]
    assert len(shown) == 5 and len(set(shown)) == 5  # never the same three items twice in a session
    store.close()
