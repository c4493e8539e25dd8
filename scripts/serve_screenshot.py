"""Screenshots of the participant page and the admin page of ``oddoneout serve`` (for the docs), in headless Chromium.

Serves the built-in synthetic study with a ``human`` system added (its one-line captions as the
stimuli), walks a participant through consent and practice to the first trial, and saves
``docs/images/serve_consent.png`` and ``docs/images/serve_trial.png``; then a few simulated
participants answer over HTTP (one of them far too fast), and the admin page, opened with its
token, is saved as ``docs/images/serve_admin.png``. Last, the built-in ``human_demo`` study (pictures
of coloured shapes) is served and its first trial saved as ``docs/images/serve_media_trial.png``;
then again as an anchor design and as a ranked design (``ranked:4:2``), their first trials saved as
``docs/images/serve_anchor.png`` and ``docs/images/serve_ranked.png`` (each with its trial type's own
question). Needs Chromium, ChromeDriver (``apt-get install chromium chromium-driver``) and selenium.

Usage::

    python scripts/serve_screenshot.py [--out docs/images] [--only {synthetic,media,trial_types} ...]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from serve_study import ENV, Server  # noqa: E402
from test_interactive_map import _driver  # noqa: E402

from oddoneout.serve.admin import ADMIN_ENV  # noqa: E402
from oddoneout.studies import builtin_config  # noqa: E402

#: The simulated participants of the admin screenshot: answers given, median response time (ms), and
#: whether they always choose the first position.
PARTICIPANTS = [(60, 1600.0, False), (60, 2100.0, False), (42, 1300.0, False), (25, 180.0, True), (9, 1800.0, False)]


def participant(url: str, number: int, n_answers: int, rt_ms: float, first_only: bool) -> None:
    """One simulated participant: consent with a Prolific link, then ``n_answers`` answers (waiting out any 429)."""
    rng = np.random.default_rng(number)
    params = {"PROLIFIC_PID": f"{number:02d}" * 12, "STUDY_ID": "demo", "SESSION_ID": f"s{number}"}
    state = httpx.post(url + "/api/session", json={"consent": True, "params": params}).raise_for_status().json()
    headers = {"authorization": f"Bearer {state['token']}"}
    for _ in range(n_answers):
        trial = state["trials"][0]
        choice = 0 if first_only else int(rng.integers(3))
        body = {"key": trial["key"], "choice": choice, "rt_ms": float(rng.gamma(8, rt_ms / 8)), "input": "key"}
        reply = httpx.post(url + "/api/answer", json=body, headers=headers)
        while reply.status_code == 429:
            time.sleep(float(reply.headers["retry-after"]))
            reply = httpx.post(url + "/api/answer", json=body, headers=headers)
        state = reply.raise_for_status().json()


#: The screenshots each group of ``--only`` saves.
GROUPS = {
    "synthetic": ("serve_consent.png", "serve_trial.png", "serve_admin.png"),
    "media": ("serve_media_trial.png",),
    "trial_types": ("serve_anchor.png", "serve_ranked.png"),
}


def synthetic_screenshots(out: Path, tmp: str) -> None:
    """The consent and first-trial pages of the synthetic study, then its admin page after a few participants."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    config = Path(tmp) / "study.toml"
    config.write_text(
        builtin_config("synthetic").read_text()
        + '\n[systems.people]\nagent = "human"\npractice_trials = 1\nexclude_max_fast_fraction = 0.5\n'
    )
    admin_token = secrets.token_hex(32)  # this run's only: never written anywhere
    with Server(config, Path(tmp) / "out", env={**ENV, ADMIN_ENV: admin_token}) as server:
        driver = _driver(Path(tmp) / "profile")
        try:
            driver.set_window_size(1200, 700)
            wait = WebDriverWait(driver, 30)

            def shown(element_id: str):
                return wait.until(lambda d: d.find_element(By.ID, element_id).is_displayed() and d.find_element(
                    By.ID, element_id))  # fmt: skip

            driver.get(server.url + "/?PROLIFIC_PID=5f1a2b3c4d5e6f7a8b9c0d1e&STUDY_ID=demo&SESSION_ID=demo")
            shown("consent-yes")
            driver.save_screenshot(str(out / "serve_consent.png"))
            driver.find_element(By.ID, "consent-yes").click()
            shown("instructions-go").click()
            wait.until(lambda d: d.find_element(By.ID, "progress").text == "Practice 1 of 1")
            driver.find_element(By.ID, "option-0").click()
            shown("ready-go").click()
            wait.until(lambda d: d.find_element(By.ID, "progress").text.startswith("Trial 1 of"))
            driver.save_screenshot(str(out / "serve_trial.png"))
            for number, (n_answers, rt_ms, first_only) in enumerate(PARTICIPANTS, start=1):
                participant(server.url, number, n_answers, rt_ms, first_only)
            driver.set_window_size(1200, 900)
            driver.get(server.url + "/admin")
            shown("token").send_keys(admin_token)
            driver.find_element(By.ID, "login-go").click()
            shown("summary")
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#participants tbody tr")) == 6)
            driver.save_screenshot(str(out / "serve_admin.png"))
        finally:
            driver.quit()


def _first_trial(driver, url: str, practice_keys: str = "1", first_keys: str = "") -> None:
    """Consent, instructions, the 2 practice trials answered by ``practice_keys``; trial 1 after ``first_keys``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 30)
    driver.get(url + "/")
    for button in ("consent-yes", "instructions-go"):
        wait.until(lambda d: d.find_element(By.ID, button).is_displayed())
        driver.find_element(By.ID, button).click()
    for number in (1, 2):
        wait.until(lambda d: d.find_element(By.ID, "progress").text == f"Practice {number} of 2")
        wait.until(lambda d: not d.find_element(By.ID, "loading").is_displayed())
        for key in practice_keys:
            driver.find_element(By.TAG_NAME, "body").send_keys(key)
    wait.until(lambda d: d.find_element(By.ID, "ready-go").is_displayed())
    driver.find_element(By.ID, "ready-go").click()
    wait.until(lambda d: d.find_element(By.ID, "progress").text == "Trial 1 of 40")
    wait.until(lambda d: not d.find_element(By.ID, "loading").is_displayed())
    for key in first_keys:
        driver.find_element(By.TAG_NAME, "body").send_keys(key)


def media_screenshot(out: Path, tmp: str) -> None:
    """The first trial of the built-in human_demo study (pictures)."""
    with Server(builtin_config("human_demo"), Path(tmp) / "demo") as server:
        driver = _driver(Path(tmp) / "demo-profile")
        try:
            driver.set_window_size(1200, 640)
            _first_trial(driver, server.url)
            driver.save_screenshot(str(out / "serve_media_trial.png"))
        finally:
            driver.quit()


def trial_type_screenshots(out: Path, tmp: str) -> None:
    """The first trial of the human_demo study served as an anchor design, and as a ranked one (4 options, 2 ranked).

    The study's own files (stimulus table, pictures) are named by absolute paths in a copy of its config
    with ``[design] trial_type`` set.
    """
    demo = builtin_config("human_demo")
    for trial_type, name, practice_keys, first_keys, height in (
        ("anchor", "serve_anchor.png", "1", "", 815),
        # practice: rank options 1 and 2, then Enter submits; the first trial is shown with option 3 ranked first
        ("ranked:4:2", "serve_ranked.png", "12\ue007", "3", 950),
    ):
        config = Path(tmp) / f"{name}.toml"
        text = demo.read_text().replace('"human_demo/', f'"{demo.parent / "human_demo"}/')
        config.write_text(text.replace("[design]\n", f'[design]\ntrial_type = "{trial_type}"\n', 1))
        with Server(config, Path(tmp) / name) as server:
            driver = _driver(Path(tmp) / f"{name}-profile")
            try:
                driver.set_window_size(1200, height)
                _first_trial(driver, server.url, practice_keys, first_keys)
                driver.save_screenshot(str(out / name))
            finally:
                driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument(
        "--only", choices=sorted(GROUPS), action="append", help="save only these screenshots (default: every one)"
    )
    args = parser.parse_args()
    groups = args.only or list(GROUPS)
    makers = {"synthetic": synthetic_screenshots, "media": media_screenshot, "trial_types": trial_type_screenshots}
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for group in groups:
            makers[group](args.out, tmp)
    written = ", ".join(str(args.out / name) for group in groups for name in GROUPS[group])
    print(f"wrote {written}")


if __name__ == "__main__":
    main()
