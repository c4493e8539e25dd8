"""Screenshots of the participant page of ``oddoneout serve`` (for the docs), in headless Chromium.

Serves the built-in synthetic study with a ``human`` system added (its one-line captions as the
stimuli), walks a participant through consent and practice to the first trial, and saves
``docs/images/serve_consent.png`` and ``docs/images/serve_trial.png``. Needs Chromium,
ChromeDriver (``apt-get install chromium chromium-driver``) and selenium.

Usage::

    python scripts/serve_screenshot.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from serve_study import Server  # noqa: E402
from test_interactive_map import _driver  # noqa: E402

from oddoneout.studies import builtin_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "study.toml"
        config.write_text(
            builtin_config("synthetic").read_text() + '\n[systems.people]\nagent = "human"\npractice_trials = 1\n'
        )
        with Server(config, Path(tmp) / "out") as server:
            driver = _driver(Path(tmp) / "profile")
            try:
                driver.set_window_size(1200, 700)
                wait = WebDriverWait(driver, 30)

                def shown(element_id: str):
                    return wait.until(lambda d: d.find_element(By.ID, element_id).is_displayed() and d.find_element(
                        By.ID, element_id))  # fmt: skip

                driver.get(server.url + "/?PROLIFIC_PID=5f1a2b3c4d5e6f7a8b9c0d1e&STUDY_ID=demo&SESSION_ID=demo")
                shown("consent-yes")
                driver.save_screenshot(str(args.out / "serve_consent.png"))
                driver.find_element(By.ID, "consent-yes").click()
                shown("instructions-go").click()
                wait.until(lambda d: d.find_element(By.ID, "progress").text == "Practice 1 of 1")
                driver.find_element(By.ID, "option-0").click()
                shown("ready-go").click()
                wait.until(lambda d: d.find_element(By.ID, "progress").text.startswith("Trial 1 of"))
                driver.save_screenshot(str(args.out / "serve_trial.png"))
            finally:
                driver.quit()
    print(f"wrote {args.out / 'serve_consent.png'} and {args.out / 'serve_trial.png'}")


if __name__ == "__main__":
    main()
