"""A whole participant session in a real headless Chromium against a real ``oddoneout serve``, then the store."""

from __future__ import annotations

import signal
import time

from serve_study import CAPTION, Server, free_port, rows, store_path, write_study
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


def test_the_configured_texts_and_the_completion_redirect_in_chromium(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    port = free_port()
    consent = 'Consent <script>document.title="x"</script> & <b>bold</b>\n\nSecond paragraph.'
    config = write_study(
        tmp_path / "study",
        trials_per_session=1,
        practice_trials=0,
        consent_text=consent,
        instructions_text="Choose <i>one</i>.",
        debrief_text="Thanks </p><p>bye",
        completion_url=f"http://127.0.0.1:{port}/healthz?cc={{code}}",
    )
    with Server(config, tmp_path / "out", port=port) as server:
        driver = _driver(tmp_path / "chrome-profile", browser_log=True)
        try:
            wait = WebDriverWait(driver, 20)
            driver.get(server.url + "/")
            wait.until(lambda d: d.find_element(By.ID, "consent-yes").is_displayed())
            paragraphs = driver.find_elements(By.CSS_SELECTOR, "#consent-text p")
            assert [p.text for p in paragraphs] == ['Consent <script>document.title="x"</script> & <b>bold</b>',
                                                   "Second paragraph."]  # fmt: skip
            assert not driver.find_elements(By.CSS_SELECTOR, "#consent-text script, #consent-text b")
            assert driver.title == "people-test"
            driver.find_element(By.ID, "consent-yes").click()
            wait.until(lambda d: d.find_element(By.ID, "instructions-go").is_displayed())
            assert driver.find_element(By.ID, "instructions-text").text == "Choose <i>one</i>."
            driver.find_element(By.ID, "instructions-go").click()
            wait.until(lambda d: d.find_element(By.ID, "progress").text == "Trial 1 of 1")
            driver.find_element(By.ID, "option-0").click()
            wait.until(lambda d: d.find_element(By.ID, "debrief").is_displayed())
            assert driver.find_element(By.ID, "debrief-text").text == "Thanks </p><p>bye"
            code = driver.find_element(By.ID, "completion-code").text
            target = f"{server.url}/healthz?cc={code}"
            assert driver.find_element(By.ID, "redirect").is_displayed()
            assert driver.find_element(By.ID, "redirect-link").get_attribute("href") == target
            errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
            assert not errors, errors
            WebDriverWait(driver, 15).until(lambda d: d.current_url == target)  # after the debrief's few seconds
        finally:
            driver.quit()
        server.stop()
    assert rows(store_path(tmp_path / "out"), "SELECT completion_code FROM serve_sessions") == [(code,)]


def test_the_admin_page_in_chromium(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from test_serve_admin import ADMIN, ADMIN_TOKEN, run_session

    from oddoneout.serve.tokens import ServerKeys

    config = write_study(tmp_path / "study", exclude_max_fast_fraction=0.5)
    with Server(config, tmp_path / "out", env=ADMIN) as server:
        run_session(server, {"PROLIFIC_PID": "e5" * 12}, [900.0, 1000.0, 1100.0], catch_right=True)
        run_session(server, {"PROLIFIC_PID": "f6" * 12}, [90.0, 80.0], catch_right=True)
        driver = _driver(tmp_path / "chrome-profile", browser_log=True)
        try:
            wait = WebDriverWait(driver, 20)

            def log_in(token: str) -> None:
                field = wait.until(lambda d: d.find_element(By.ID, "token").is_displayed() and d.find_element(
                    By.ID, "token"))  # fmt: skip
                field.send_keys(token)
                driver.find_element(By.ID, "login-go").click()

            driver.get(server.url + "/admin")
            log_in("admin-token-" + "z" * 40)
            wait.until(lambda d: d.find_element(By.ID, "login-problem").is_displayed())
            assert "not the admin token" in driver.find_element(By.ID, "login-problem").text
            assert driver.execute_script("return sessionStorage.length") == 0
            log_in(ADMIN_TOKEN)
            wait.until(lambda d: d.find_element(By.ID, "summary").is_displayed())
            table = driver.find_elements(By.CSS_SELECTOR, "#participants tbody tr")
            assert len(table) == 2
            keys = ServerKeys.from_env("people-test/people", ADMIN)
            cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in table]
            assert cells[0][0] == keys.participant("prolific", "e5" * 12)[:16] and cells[0][2] == "3/3"
            assert cells[0][3] == "1000 ms" and cells[0][4] == "0%" and cells[0][-1] == "no"
            assert cells[1][2] == "2/3 (active)" and cells[1][4] == "100%" and cells[1][-1].startswith("yes: too fast")
            assert "excluded" in table[1].get_attribute("class")
            assert driver.find_element(By.ID, "answered").text == "5"
            assert driver.find_element(By.ID, "total").text == "8"
            assert driver.find_element(By.ID, "sessions-excluded").text == "1"
            # the token stays in this tab's session storage only, and a reload keeps showing the study
            assert driver.execute_script("return sessionStorage.getItem('oddoneout-admin-token')") == ADMIN_TOKEN
            assert driver.execute_script("return localStorage.length") == 0
            driver.refresh()
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#participants tbody tr")) == 2)
            driver.find_element(By.ID, "logout").click()
            wait.until(lambda d: d.find_element(By.ID, "login").is_displayed())
            assert driver.execute_script("return sessionStorage.length") == 0
            # the wrong token's 401 is the only error the browser saw (no CSP violation, no script error)
            errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "401" not in e["message"]]
            assert not errors, errors
        finally:
            driver.quit()
        server.stop()


def test_the_page_waits_out_a_429_and_goes_on(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # a bucket of one answer, refilled once a second: quick clicks are refused and answered later
    config = write_study(tmp_path / "study", trials_per_session=3, practice_trials=0, answer_burst=1,
                         answers_per_second=1.0)  # fmt: skip
    with Server(config, tmp_path / "out") as server:
        driver = _driver(tmp_path / "chrome-profile", browser_log=True)
        try:
            wait = WebDriverWait(driver, 20)
            driver.get(server.url + "/")
            wait.until(lambda d: d.find_element(By.ID, "consent-yes").is_displayed())
            driver.find_element(By.ID, "consent-yes").click()
            wait.until(lambda d: d.find_element(By.ID, "instructions-go").is_displayed())
            driver.find_element(By.ID, "instructions-go").click()
            for number in (1, 2, 3):
                wait.until(lambda d: d.find_element(By.ID, "progress").text == f"Trial {number} of 3")
                driver.find_element(By.ID, "option-1").click()
            wait.until(lambda d: d.find_element(By.ID, "debrief").is_displayed())
            assert not driver.find_element(By.ID, "problem").is_displayed()
            refused = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "429" in e["message"]]
            assert refused  # the limit was met, and waited out
        finally:
            driver.quit()
        server.stop()
    assert rows(store_path(tmp_path / "out"), "SELECT count(*) FROM serve_responses") == [(3,)]


def test_breaks_in_chromium_pause_the_session_and_not_its_response_times(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    pause = 1.5
    config = write_study(tmp_path / "study", trials_per_session=5, practice_trials=0, break_every=2,
                         break_text="Rest <b>now</b>.\n\nThen go on.")  # fmt: skip
    with Server(config, tmp_path / "out") as server:
        driver = _driver(tmp_path / "chrome-profile", browser_log=True)
        try:
            wait = WebDriverWait(driver, 20)

            def visible(element_id: str) -> bool:
                return wait.until(lambda d: d.find_element(By.ID, element_id).is_displayed())

            def progress(text: str) -> None:
                wait.until(lambda d: d.find_element(By.ID, "trial").is_displayed()
                           and d.find_element(By.ID, "progress").text == text)  # fmt: skip

            def answer() -> None:
                driver.find_element(By.ID, "option-0").click()

            driver.get(server.url + "/")
            visible("consent-yes")
            driver.find_element(By.ID, "consent-yes").click()
            visible("instructions-go")
            driver.find_element(By.ID, "instructions-go").click()
            breaks = 0
            for number in range(1, 6):
                progress(f"Trial {number} of 5")
                answer()
                if number in (2, 4):
                    visible("break-go")
                    breaks += 1
                    texts = [p.text for p in driver.find_elements(By.CSS_SELECTOR, "#break-text p")]
                    assert texts == ["Rest <b>now</b>.", "Then go on."]
                    assert not driver.find_elements(By.CSS_SELECTOR, "#break-text b")
                    if number == 2:
                        driver.refresh()  # a reload during the break comes back to the break
                        visible("break-go")
                    time.sleep(pause)
                    if number == 2:
                        driver.find_element(By.ID, "break-go").click()
                    else:
                        driver.find_element(By.TAG_NAME, "body").send_keys("\n")  # Enter continues too
                        progress("Trial 5 of 5")
                        driver.refresh()  # a reload after the break goes on with the trial, not the break
                        progress("Trial 5 of 5")
            visible("debrief")  # no break after the last trial
            assert breaks == 2
            errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
            assert not errors, errors
        finally:
            driver.quit()
        server.stop()
    latencies = [row[0] for row in rows(store_path(tmp_path / "out"), "SELECT latency_s FROM judgments")]
    # headless clicks come within a fraction of a second; a response time holding a break would exceed it
    assert len(latencies) == 5 and all(0 < latency < pause for latency in latencies), latencies
