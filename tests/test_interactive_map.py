"""Tests of the interactive item map, in a real headless Chromium (selenium) where one is installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oddoneout.embedding import Embedding
from oddoneout.errors import InputError
from oddoneout.report.interactive_map import render_interactive_map, write_interactive_map
from oddoneout.stimuli import StimulusSet

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def grid_study(n_side: int = 4):
    """Items on a well-separated grid (points never overlap), with captions that need escaping."""
    n = n_side * n_side
    ids = [f"clip{i:02d}" for i in range(n)]
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "item_id": ids,
            "caption": [f"caption of {i} <b>&</b> </script>" for i in ids],
            "captions": [[f"caption of {i} <b>&</b> </script>", f"second caption of {i}"] for i in ids],
            "category:Joy": rng.random(n),
            "category:Fear": rng.random(n),
            "category:Awe": rng.random(n),
            "dimension:valence": rng.uniform(1, 9, n),
            "dimension:arousal": rng.uniform(1, 9, n),
        }
    )
    stimuli = StimulusSet(table, name="grid")
    embedding = Embedding(ids, rng.random((n, 4)))
    grid = np.arange(n)
    coords = pd.DataFrame({"item_id": ids, "x": (grid % n_side) * 10.0, "y": (grid // n_side) * 10.0})
    return stimuli, embedding, coords


def test_page_is_self_contained_and_escapes_text(tmp_path):
    stimuli, embedding, coords = grid_study()
    path = write_interactive_map(tmp_path / "sub" / "map.html", coords, stimuli, embedding, top_k=2)
    text = path.read_text(encoding="utf-8")
    assert text.count('class="point"') == len(stimuli)
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in text
    assert "<b>&</b>" not in text  # caption text is escaped in the inline JSON
    assert text.count("</script>") == 2  # only the two real script elements close
    # Deterministic: the same inputs give the same bytes.
    assert render_interactive_map(coords, stimuli, embedding, top_k=2) == text


def test_dimensions_are_labelled_by_the_given_rating_correlations():
    stimuli, embedding, coords = grid_study()
    correlations = pd.DataFrame(
        np.tile([0.9, -0.5, 0.1, 0.8], (embedding.n_dims, 1)),
        index=pd.Index(embedding.dim_names, name="dim"),
        columns=pd.Index(["category:Joy", "category:Fear", "dimension:valence", "dimension:arousal"], name="rating"),
    )
    labelled = render_interactive_map(coords, stimuli, embedding, correlations=correlations)
    assert ": Joy, arousal" in labelled  # the two most positively correlated scales, by decreasing r
    assert ": Joy" not in render_interactive_map(coords, stimuli, embedding)  # no table: no labels, none recomputed


def test_bad_input_is_reported(tmp_path):
    stimuli, embedding, coords = grid_study(2)
    with pytest.raises(InputError, match="lacks item"):
        write_interactive_map(tmp_path / "m.html", coords.iloc[1:], stimuli, embedding)
    with pytest.raises(InputError, match="top_k"):
        write_interactive_map(tmp_path / "m.html", coords, stimuli, embedding, top_k=0)


def _driver(user_data_dir: Path, browser_log: bool = False):
    """Headless Chromium (skips the test where none is installed); ``browser_log`` keeps its console messages."""
    absent = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    if absent:
        pytest.skip(f"headless browser test needs {absent} (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={user_data_dir}",
    ):
        options.add_argument(argument)
    if browser_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def test_hover_shows_the_items_tooltip_in_chromium(tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    stimuli, embedding, coords = grid_study()
    path = write_interactive_map(tmp_path / "map.html", coords, stimuli, embedding, top_k=2)
    driver = _driver(tmp_path / "chrome-profile")
    try:
        driver.get(path.resolve().as_uri())
        points = driver.find_elements(By.CSS_SELECTOR, "circle.point")
        assert len(points) == len(stimuli)
        tooltip = driver.find_element(By.ID, "tooltip")
        assert not tooltip.is_displayed()
        for index in (5, 10):
            ActionChains(driver).move_to_element(points[index]).perform()
            WebDriverWait(driver, 10).until(lambda d: tooltip.is_displayed())
            item = stimuli.item_ids[index]
            WebDriverWait(driver, 10).until(lambda d: item in tooltip.text)
            text = tooltip.text
            assert stimuli.captions(item)[0] in text  # the escaped caption comes back as plain text
            assert f"second caption of {item}" in text
            assert "Top dimensions" in text and "Top ratings" in text
            assert "dim_0" in text
        # Leaving the map hides the tooltip.
        heading = driver.find_element(By.TAG_NAME, "h2")
        ActionChains(driver).move_to_element(heading).perform()
        WebDriverWait(driver, 10).until(lambda d: not tooltip.is_displayed())
        assert driver.execute_script("return document.querySelectorAll('script[src], link[href]').length") == 0
    finally:
        driver.quit()
