"""Images, video and audio stimuli of ``oddoneout serve``: checked at start, served by item number, shown in Chromium.

A real server on loopback (tests/serve_study.py) serving real files made here (tests/serve_media.py);
the browser test drives a real headless Chromium through trials of pictures, clips and sounds.
"""

from __future__ import annotations

import os
import signal
import subprocess

import httpx
import pytest
from serve_study import ENV, ITEMS, Server, rows, serve_command, store_path, write_study

from oddoneout.serve.app import SECURITY_HEADERS

pytest.importorskip("PIL")
av = pytest.importorskip("av")

from serve_media import write_mp4, write_png, write_wav  # noqa: E402

COLOURS = [(220, 40, 40), (40, 160, 60), (40, 80, 220)]


def media_study(folder, media: dict[str, str], listed: list[list[str]] | None = None, **human):
    """A study whose items ``media`` names have files in ``folder/media`` (made by the caller)."""
    triplets = ""
    if listed:
        (folder / "triplets.txt").write_text("\n".join(" ".join(row) for row in listed) + "\n")
        triplets = "triplets.txt"
    settings = {"media_folder": "media", "practice_trials": 0, **human}
    return write_study(folder, media_paths=media, triplets=triplets, **settings)


@pytest.mark.parametrize("case", ["dot-dot", "absolute", "symlink", "missing", "not media"])
def test_a_media_path_outside_the_folder_or_missing_stops_the_server_in_one_line(tmp_path, case):
    folder = tmp_path / "study"
    (folder / "media").mkdir(parents=True)
    elsewhere = write_png(tmp_path / "elsewhere.png", COLOURS[0])  # a real picture, outside the media folder
    write_png(folder / "secret.png", COLOURS[1])
    (folder / "media" / "notes.txt").write_text("not a picture")
    fine = {item: f"{item}.png" for item in ITEMS}
    for item in ITEMS:
        write_png(folder / "media" / f"{item}.png", COLOURS[2])
    value, expected = {
        "dot-dot": ("../secret.png", "outside the media folder"),
        "absolute": (str(elsewhere), "outside the media folder"),
        "symlink": ("link.png", "outside the media folder"),
        "missing": ("gone.png", "media file not found"),
        "not media": ("notes.txt", "not an image, video or audio file"),
    }[case]
    if case == "symlink":
        os.symlink(elsewhere, folder / "media" / "link.png")  # inside the folder, pointing out of it
    config = media_study(folder, {**fine, "item05": value})
    result = subprocess.run(
        serve_command(config, tmp_path / "out", 1), env=ENV, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: item 'item05'") and expected in lines[0], lines
    assert value in lines[0]  # the path as the table gives it
    assert "serving" not in result.stdout and not store_path(tmp_path / "out").exists()


def test_media_files_are_served_by_item_number_with_their_types_and_ranges(tmp_path):
    folder = tmp_path / "study"
    media = folder / "media"
    media.mkdir(parents=True)
    png = write_png(media / "red.png", COLOURS[0])
    wav = write_wav(media / "tone.wav", 440.0)
    mp4 = write_mp4(media / "clip.mp4", COLOURS[1])
    config = media_study(
        folder,
        {"item00": "red.png", "item01": "tone.wav", "item02": str(mp4)},  # an absolute path inside the folder is fine
        listed=[["item00", "item01", "item02"], ["item03", "item04", "item05"]],
        trials_per_session=2,
        video_loop=False,
    )
    with Server(config, tmp_path / "out") as server:
        session = httpx.post(server.url + "/api/session", json={"consent": True, "params": {}}).json()
        first, second = session["trials"]
        shown = dict(zip((m["url"] for m in first["media"]), first["media"]))
        assert first["texts"] == ["", "", ""]  # neither captions nor file names or item ids reach the page
        assert set(shown) == {"/media/0", "/media/1", "/media/2"}
        assert shown["/media/2"] == {"kind": "video", "url": "/media/2", "autoplay": True, "loop": False, "muted": True}
        assert shown["/media/0"]["kind"] == "image" and shown["/media/1"]["kind"] == "audio"
        assert second["media"] == [None, None, None] and all(text.startswith("<img") for text in second["texts"])
        replies = {url: httpx.get(server.url + url) for url in ("/media/0", "/media/1", "/media/2")}
        for url, path, kind in (("/media/0", png, "image/png"), ("/media/1", wav, "audio/wav"),
                                ("/media/2", mp4, "video/mp4")):  # fmt: skip
            reply = replies[url]
            assert reply.status_code == 200 and reply.headers["content-type"] == kind
            assert reply.content == path.read_bytes()
            assert reply.headers["content-security-policy"] == SECURITY_HEADERS["content-security-policy"]
            assert reply.headers["x-content-type-options"] == "nosniff"
            assert "filename" not in reply.headers.get("content-disposition", "")
        assert "media-src 'self'" in SECURITY_HEADERS["content-security-policy"]
        # a video is sent in parts, so a browser can seek and stream it
        size = mp4.stat().st_size
        part = httpx.get(server.url + "/media/2", headers={"range": "bytes=100-299"})
        assert part.status_code == 206 and part.headers["content-range"] == f"bytes 100-299/{size}"
        assert part.content == mp4.read_bytes()[100:300] and replies["/media/2"].headers["accept-ranges"] == "bytes"
        tail = httpx.get(server.url + "/media/2", headers={"range": "bytes=-16"})
        assert tail.status_code == 206 and tail.content == mp4.read_bytes()[-16:]
        assert httpx.get(server.url + "/media/2", headers={"range": f"bytes={size}-"}).status_code == 416
        head = httpx.head(server.url + "/media/0")
        assert head.status_code == 200 and head.headers["content-length"] == str(png.stat().st_size)
        for url in ("/media/3", "/media/12", "/media/99999999999", "/media/-1", "/media/x", "/media/0.png",
                    "/media/..%2Fstimuli.csv", "/media/%2e%2e/stimuli.csv", "/media/"):  # fmt: skip
            assert httpx.get(server.url + url).status_code == 404, url  # a caption item, no such item, no path
        # a file swapped for a link to elsewhere after the start is not sent
        outside = write_png(tmp_path / "outside.png", COLOURS[2])
        os.replace(png, media / "old.png")
        os.symlink(outside, png)
        assert httpx.get(server.url + "/media/0").status_code == 404
        assert httpx.get(server.url + "/media/1").status_code == 200
        server.stop()


def test_trials_of_pictures_clips_and_sounds_in_chromium(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from test_interactive_map import _driver

    folder = tmp_path / "study"
    media = folder / "media"
    media.mkdir(parents=True)
    files = {}
    for i, colour in enumerate(COLOURS):
        files[f"item0{i}"] = write_png(media / f"picture{i}.png", colour).name
        files[f"item0{i + 3}"] = write_mp4(media / f"clip{i}.mp4", colour).name
        files[f"item0{i + 6}"] = write_wav(media / f"sound{i}.wav", 300.0 + 100 * i).name
    listed = [["item00", "item01", "item02"], ["item03", "item04", "item05"], ["item06", "item07", "item08"]]
    config = media_study(folder, files, listed=listed, trials_per_session=3, practice_trials=1)
    with Server(config, tmp_path / "out") as server:
        driver = _driver(tmp_path / "chrome-profile", browser_log=True)
        try:
            wait = WebDriverWait(driver, 30)

            def ready(progress: str) -> None:
                # the trial is on screen and its media loaded: answers count from now on
                wait.until(lambda d: d.find_element(By.ID, "progress").text == progress)
                wait.until(lambda d: not d.find_element(By.ID, "loading").is_displayed())

            def key(character: str) -> None:
                driver.find_element(By.TAG_NAME, "body").send_keys(character)

            driver.get(server.url + "/")
            wait.until(lambda d: d.find_element(By.ID, "consent-yes").is_displayed())
            driver.find_element(By.ID, "consent-yes").click()
            wait.until(lambda d: d.find_element(By.ID, "instructions-go").is_displayed())
            driver.find_element(By.ID, "instructions-go").click()
            ready("Practice 1 of 1")
            key("2")
            wait.until(lambda d: d.find_element(By.ID, "ready-go").is_displayed())
            driver.find_element(By.ID, "ready-go").click()
            ready("Trial 1 of 3")
            pictures = driver.find_elements(By.CSS_SELECTOR, "#options .media img")
            assert len(pictures) == 3
            assert all(driver.execute_script("return arguments[0].naturalWidth", p) == 48 for p in pictures)
            assert not driver.find_elements(By.CSS_SELECTOR, "#options video, #options audio")
            assert [driver.find_element(By.CSS_SELECTOR, f"#option-{i} .text").text for i in range(3)] == ["", "", ""]
            pictures[1].click()  # a click on a picture chooses it
            ready("Trial 2 of 3")
            clips = driver.find_elements(By.CSS_SELECTOR, "#options .media video")
            assert len(clips) == 3
            state = driver.execute_script(
                "return arguments[0].map(v => [v.muted, v.loop, v.autoplay, v.controls, v.readyState, v.videoWidth])",
                clips,
            )
            assert all(s[:4] == [True, True, True, False] and s[4] >= 2 and s[5] == 64 for s in state), state
            wait.until(lambda d: d.execute_script("return arguments[0].every(v => v.currentTime > 0)", clips))
            key("3")
            ready("Trial 3 of 3")
            sounds = driver.find_elements(By.CSS_SELECTOR, "#options .media audio")
            assert len(sounds) == 3 and all(s.get_attribute("controls") is not None for s in sounds)
            key("1")
            wait.until(lambda d: d.find_element(By.ID, "debrief").is_displayed())
            errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
            assert not errors, errors  # no CSP violation, no failed media request, no script error
        finally:
            driver.quit()
        assert server.stop(signal.SIGTERM) == 0
    stored = rows(
        store_path(tmp_path / "out"),
        "SELECT j.item_0, j.item_1, j.item_2, j.choice, r.input FROM judgments j "
        "JOIN serve_responses r USING (design, triplet_index, ordering, repeat) ORDER BY r.position",
    )
    assert [sorted(row[:3]) for row in stored] == listed  # what was shown is what is stored
    assert [(row[3], row[4]) for row in stored] == [(1, "click"), (2, "key"), (0, "key")]
