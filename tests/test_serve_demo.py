"""The shipped human demo study end to end: ``oddoneout serve``, people answering, Ctrl-C, ``oddoneout run``.

A real server on loopback serves the built-in ``human_demo`` study (pictures of coloured shapes);
one participant answers in a real headless Chromium, the others over HTTP, each picking the shape
that shares least colour and shape with the other two (now and then at random). The server is
stopped with SIGINT (Ctrl-C), then ``oddoneout run`` fits and reports the people beside the study's
simulated AI agent.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pandas as pd
from serve_study import ENV, Server, rows, store_path

from oddoneout.studies import builtin_config

CONFIG = builtin_config("human_demo")
ITEMS = list(pd.read_csv(CONFIG.parent / "human_demo" / "stimuli.csv")["item_id"])


def odd_one(items: list[str], rng: np.random.Generator) -> int:
    """The position of the shape sharing least colour and shape with the others (ties and 10% of answers: random)."""
    if rng.random() < 0.1:
        return int(rng.integers(3))
    parts = [item.split("_") for item in items]
    shared = [sum(a == b for j in range(3) if j != k for a, b in zip(parts[k], parts[j])) for k in range(3)]
    return int(rng.choice([k for k in range(3) if shared[k] == min(shared)]))


def item_of(url: str) -> str:
    """The item a media URL (``/media/<n>``, as the page got it) shows."""
    return ITEMS[int(url.rsplit("/", 1)[1])]


def browser_participant(url: str, profile, rng: np.random.Generator) -> int:
    """One whole session in Chromium, answering by key; the trials answered."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from test_interactive_map import _driver

    driver = _driver(profile, browser_log=True)
    try:
        wait = WebDriverWait(driver, 30)

        def ready() -> str:
            wait.until(lambda d: d.find_element(By.ID, "trial").is_displayed())
            wait.until(lambda d: not d.find_element(By.ID, "loading").is_displayed())
            return driver.find_element(By.ID, "progress").text

        def answer() -> None:
            pictures = driver.find_elements(By.CSS_SELECTOR, "#options .media img")
            items = [item_of(picture.get_attribute("src")) for picture in pictures]
            driver.find_element(By.TAG_NAME, "body").send_keys(str(odd_one(items, rng) + 1))

        driver.get(url + "/?PROLIFIC_PID=" + "b0" * 12 + "&STUDY_ID=demo&SESSION_ID=s-b0")
        wait.until(lambda d: d.find_element(By.ID, "consent-yes").is_displayed())
        assert "three pictures" in driver.find_element(By.ID, "consent-text").text  # the demo's own texts
        driver.find_element(By.ID, "consent-yes").click()
        wait.until(lambda d: d.find_element(By.ID, "instructions-go").is_displayed())
        driver.find_element(By.ID, "instructions-go").click()
        for number in (1, 2):
            assert ready() == f"Practice {number} of 2"
            answer()
        wait.until(lambda d: d.find_element(By.ID, "ready-go").is_displayed())
        driver.find_element(By.ID, "ready-go").click()
        answered = 0
        while True:
            progress = ready()
            assert progress == f"Trial {answered + 1} of 40", progress
            answer()
            answered += 1
            wait.until(lambda d: d.find_element(By.ID, "debrief").is_displayed()
                       or d.find_element(By.ID, "progress").text != progress)  # fmt: skip
            if driver.find_element(By.ID, "debrief").is_displayed():
                break
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors
        return answered
    finally:
        driver.quit()


def http_participant(url: str, pid: str, rng: np.random.Generator) -> int | None:
    """One session over HTTP; the trials answered (``None``: no trial was left for it)."""
    params = {"PROLIFIC_PID": pid, "STUDY_ID": "demo", "SESSION_ID": f"s-{pid[:4]}"}
    state = httpx.post(url + "/api/session", json={"consent": True, "params": params}).raise_for_status().json()
    if state["full"]:
        return None
    headers = {"authorization": f"Bearer {state['token']}"}
    answered = 0
    while state["trials"]:
        trial = state["trials"][0]
        choice = odd_one([item_of(m["url"]) for m in trial["media"]], rng)
        body = {"key": trial["key"], "choice": choice, "rt_ms": float(rng.gamma(8, 150)), "input": "key"}
        state = post_as_the_page_does(url + "/api/answer", body, headers).json()
        answered += 1
    return answered


def post_as_the_page_does(url: str, body: dict, headers: dict) -> httpx.Response:
    """POST, waiting out a 429 (the rate limit) for its Retry-After as the participant page does."""
    while True:
        response = httpx.post(url, json=body, headers=headers)
        if response.status_code != 429:
            return response.raise_for_status()
        time.sleep(float(response.headers.get("retry-after", "1")))


def test_the_human_demo_is_served_answered_stopped_and_fitted_beside_the_ai_agent(tmp_path):
    out = tmp_path / "out"
    rng = np.random.default_rng(7)
    with Server(CONFIG, out) as server:
        answered = [browser_participant(server.url, tmp_path / "chrome-profile", rng)]
        while (count := http_participant(server.url, f"{len(answered):02d}" * 12, rng)) is not None:
            answered.append(count)
        assert server.stop(signal.SIGINT) == 0  # Ctrl-C: the server stops and exports the store
    assert "120 answers stored" in server.output()
    # every trial answered: by three participants, and a fourth for what none of them could be shown twice
    assert sum(answered) == 120 and len(answered) >= 3 and answered[0] == 40, answered
    store = store_path(out)
    responses = rows(
        store,
        "SELECT r.session_id, r.design, r.triplet_index, j.item_0, j.item_1, j.item_2 FROM serve_responses r "
        "JOIN judgments j USING (design, triplet_index, ordering, repeat)",
    )
    by_session: dict[str, list[frozenset]] = {}
    for session, _, _, *items in responses:
        by_session.setdefault(session, []).append(frozenset(items))
    assert all(len(set(shown)) == len(shown) for shown in by_session.values())  # no triplet twice in a session
    repeats: dict[int, list[str]] = {}
    for session, design, index, *_ in responses:
        if design == "repeats":
            repeats.setdefault(index, []).append(session)
    assert len(repeats) == 10 and all(len(set(sessions)) == 2 for sessions in repeats.values())
    judgments_before = rows(store, "SELECT * FROM judgments ORDER BY design, triplet_index, ordering, repeat")

    run = [sys.executable, "-m", "oddoneout.cli", "run", "human_demo", "--out", str(out)]
    done = subprocess.run(run, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # the run read what was served and asked nobody: the people's store is as the server left it
    assert rows(store, "SELECT * FROM judgments ORDER BY design, triplet_index, ordering, repeat") == judgments_before
    summary = json.loads((out / "summary.json").read_text())
    people, model = summary["systems"]["people"], summary["systems"]["shapes_model"]
    for system in (people, model):
        assert system["n_judgments"] == 120 and system["n_dims"] > 0
        assert 0 <= system["accuracy"] <= 1 and len(system["accuracy_ci"]) == 2
        assert system["n_repeated_triplets"] == 10 and 0 < system["noise_ceiling"] <= 1
    assert people["accuracy"] > 1 / 3  # the people's embedding predicts their held-out choices above chance
    # the people's noise ceiling: agreement between the two participants who answered each repeated triplet
    assert len(people["noise_ceiling_ci"]) == 2
    assert (out / "embeddings" / "people.parquet").is_file()
    report = (out / "report.html").read_text()
    assert "people" in report and "shapes_model" in report
