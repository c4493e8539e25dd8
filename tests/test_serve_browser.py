"""A whole participant session in a real headless Chromium against a real ``oddoneout serve``, then the store."""

from __future__ import annotations

import signal

from serve_study import CAPTION, Server, rows, store_path, write_study
from test_interactive_map import _driver

PARAMS = "?PROLIFIC_PID=60aa60aa60aa60aa60aa60aa&STUDY_ID=st-9&SESSION_ID=se-9"


def test_a_participant_session_in_chromium(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    config, out = write_study(tmp_path / "study", trials_per_session=4, practice_trials=2), tmp_path / "out"
    with Server(config, out) as server:
        driver = _driver(tmp_path / "chrome-profile", browser_log=True)
        try:
            wait = WebDriverWait(driver, 20)

            def visible(element_id: str):
                return wait.until(lambda d: d.find_element(By.ID, element_id).is_displayed() and d.find_element(
                    By.ID, element_id))  # fmt: skip

            def progress(text: str) -> None:
                wait.until(lambda d: d.find_element(By.ID, "progress").text == text)

            def key(character: str) -> None:
                driver.find_element(By.TAG_NAME, "body").send_keys(character)

            driver.get(server.url + "/" + PARAMS)
            visible("consent-yes").click()
            visible("instructions-go").click()
            progress("Practice 1 of 2")
            options = [driver.find_element(By.CSS_SELECTOR, f"#option-{i} .text") for i in range(3)]
            # the captions' markup is shown as text: no element made from it, no script run
            for option in options:
                assert option.text.startswith('<img src=x onerror="document.title=1"> <b>item')
            assert not driver.find_elements(By.CSS_SELECTOR, "#options img, #options b")
            assert driver.title == "people-test"
            driver.find_element(By.ID, "option-0").click()  # practice by click
            progress("Practice 2 of 2")
            key("3")  # practice by key
            visible("ready-go").click()
            progress("Trial 1 of 4")
            shown = [option.text for option in options]
            driver.find_element(By.ID, "option-1").click()
            progress("Trial 2 of 4")
            driver.refresh()  # a reload continues where it left off: no consent, no practice again
            progress("Trial 2 of 4")
            options = [driver.find_element(By.CSS_SELECTOR, f"#option-{i} .text") for i in range(3)]
            key("2")
            progress("Trial 3 of 4")
            key("1")
            progress("Trial 4 of 4")
            driver.find_element(By.ID, "option-2").click()
            code = visible("completion-code").text
            assert len(code) == 10 and code.isalnum()
            errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
            assert not errors, errors  # no CSP violation, no failed request, no script error
        finally:
            driver.quit()
        assert server.stop(signal.SIGTERM) == 0
    store = store_path(out)
    judgments = rows(
        store,
        "SELECT j.raw_answer, j.choice, j.latency_s, j.item_0, j.item_1, j.item_2, r.input, r.position, r.session_id "
        "FROM judgments j JOIN serve_responses r USING (design, triplet_index, ordering, repeat) ORDER BY r.position",
    )
    assert [(raw, choice, input) for raw, choice, _, *_, input, _, _ in judgments] == [
        ("click 2", 1, "click"),
        ("key 2", 1, "key"),
        ("key 1", 0, "key"),
        ("click 3", 2, "click"),
    ]
    assert [row[7] for row in judgments] == [0, 1, 2, 3] and len({row[8] for row in judgments}) == 1
    assert all(0 < row[2] < 60 for row in judgments)  # response times measured by the page, in seconds
    assert [CAPTION.format(item=item) for item in judgments[0][3:6]] == shown  # what was shown is what is stored
    ((stored_code, platform, finished),) = rows(
        store, "SELECT completion_code, platform, finished_at FROM serve_sessions"
    )
    assert stored_code == code and platform == "prolific" and finished is not None
    assert rows(store, "SELECT count(*) FROM serve_leases") == [(0,)]
