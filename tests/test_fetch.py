"""fetch_file: offline sources, env var, cache and downloads from a real local HTTP server."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from file_server import FileServer

from oddoneout.errors import InputError
from oddoneout.stimuli.fetch import DownloadError, RemoteFile, data_home, fetch_file

CONTENT = b"video_id,description\n1,a dog catches a frisbee\n" * 50


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    (root / "data.csv").write_bytes(CONTENT)
    with FileServer(root, short={"/short.csv": CONTENT}) as running:
        yield running


def remote_for(server: FileServer, name: str = "data.csv", content: bytes = CONTENT, size: bool = True) -> RemoteFile:
    return RemoteFile(
        name=name, url=server.url(name), sha256=hashlib.sha256(content).hexdigest(), size=len(content) if size else None
    )


def test_download_verifies_and_caches(server, tmp_path):
    cache = tmp_path / "cache"
    remote = remote_for(server)
    path = fetch_file(remote, data_dir=cache, progress=False)
    assert path == cache / "data.csv"
    assert path.read_bytes() == CONTENT
    assert server.requests == {"/data.csv": 1}
    assert [p.name for p in cache.iterdir()] == ["data.csv"]  # no temporary file left behind


def test_cache_hit_makes_no_request(server, tmp_path):
    cache = tmp_path / "cache"
    remote = remote_for(server)
    first = fetch_file(remote, data_dir=cache, progress=False)
    second = fetch_file(remote, data_dir=cache, progress=False)
    assert first == second
    assert server.requests["/data.csv"] == 1


def test_download_with_progress_bar(server, tmp_path, monkeypatch):
    monkeypatch.setenv("ODDONEOUT_PROGRESS", "1")
    path = fetch_file(remote_for(server), data_dir=tmp_path / "cache", progress=True)
    assert path.read_bytes() == CONTENT


def test_downloaded_checksum_mismatch_leaves_no_file(server, tmp_path):
    cache = tmp_path / "cache"
    wrong = RemoteFile(name="data.csv", url=server.url("data.csv"), sha256="0" * 64)
    with pytest.raises(InputError, match="checksum mismatch") as info:
        fetch_file(wrong, data_dir=cache, progress=False)
    message = str(info.value)
    assert "data.csv" in message and "0" * 64 in message and hashlib.sha256(CONTENT).hexdigest() in message
    assert list(cache.iterdir()) == []


def test_http_404_is_a_download_error_naming_the_url(server, tmp_path):
    remote = remote_for(server, name="absent.csv")
    with pytest.raises(DownloadError, match="404") as info:
        fetch_file(remote, data_dir=tmp_path / "cache", progress=False)
    assert remote.url in str(info.value)
    assert isinstance(info.value, InputError)
    assert list((tmp_path / "cache").iterdir()) == []


def test_short_download_is_a_download_error(server, tmp_path):
    cache = tmp_path / "cache"
    remote = remote_for(server, name="short.csv")
    with pytest.raises(DownloadError, match="short.csv"):
        fetch_file(remote, data_dir=cache, progress=False)
    assert list(cache.iterdir()) == []


def test_unreachable_host_is_a_download_error(tmp_path):
    remote = RemoteFile(name="x.csv", url="http://127.0.0.1:9/x.csv", sha256=hashlib.sha256(b"x").hexdigest())
    with pytest.raises(DownloadError, match="x.csv"):
        fetch_file(remote, data_dir=tmp_path / "cache", progress=False)


def test_corrupted_cache_is_reported(server, tmp_path):
    cache = tmp_path / "cache"
    remote = remote_for(server, size=False)
    path = fetch_file(remote, data_dir=cache, progress=False)
    path.write_bytes(CONTENT[:-10])
    with pytest.raises(InputError, match="checksum mismatch"):
        fetch_file(remote, data_dir=cache, progress=False)


def test_truncated_file_is_caught_by_size(tmp_path):
    folder = tmp_path / "offline"
    folder.mkdir()
    (folder / "data.csv").write_bytes(CONTENT[: len(CONTENT) // 2])
    remote = RemoteFile("data.csv", "http://127.0.0.1:9/data.csv", hashlib.sha256(CONTENT).hexdigest(), len(CONTENT))
    with pytest.raises(InputError, match=f"expected {len(CONTENT)} bytes, found {len(CONTENT) // 2}"):
        fetch_file(remote, source=folder)


def test_source_folder_and_file_are_read_in_place(server, tmp_path):
    folder = tmp_path / "offline"
    folder.mkdir()
    (folder / "data.csv").write_bytes(CONTENT)
    remote = remote_for(server)
    cache = tmp_path / "cache"
    assert fetch_file(remote, data_dir=cache, source=folder) == folder / "data.csv"
    assert fetch_file(remote, data_dir=cache, source=str(folder / "data.csv")) == folder / "data.csv"
    assert server.requests == {}
    assert not cache.exists()


def test_source_wins_over_env_var_and_cache(server, tmp_path, monkeypatch):
    folder = tmp_path / "offline"
    folder.mkdir()
    (folder / "data.csv").write_bytes(CONTENT)
    other = tmp_path / "other"
    other.mkdir()
    (other / "data.csv").write_bytes(CONTENT)
    monkeypatch.setenv("ODDONEOUT_TEST_DATA", str(other))
    remote = remote_for(server)
    assert fetch_file(remote, source=folder, env_var="ODDONEOUT_TEST_DATA") == folder / "data.csv"
    assert fetch_file(remote, env_var="ODDONEOUT_TEST_DATA", data_dir=tmp_path / "cache") == other / "data.csv"
    assert server.requests == {}


def test_modified_source_is_rejected(server, tmp_path):
    folder = tmp_path / "offline"
    folder.mkdir()
    (folder / "data.csv").write_bytes(CONTENT.replace(b"dog", b"cat"))
    with pytest.raises(InputError, match="checksum mismatch") as info:
        fetch_file(remote_for(server), source=folder)
    assert str(folder / "data.csv") in str(info.value)


def test_missing_source_file_does_not_fall_back(server, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="not found"):
        fetch_file(remote_for(server), source=empty, data_dir=tmp_path / "cache")
    monkeypatch.setenv("ODDONEOUT_TEST_DATA", str(empty))
    with pytest.raises(InputError, match=r"\$ODDONEOUT_TEST_DATA"):
        fetch_file(remote_for(server), env_var="ODDONEOUT_TEST_DATA", data_dir=tmp_path / "cache")
    assert server.requests == {}


def test_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ODDONEOUT_DATA", str(tmp_path / "home"))
    assert data_home() == tmp_path / "home"
    assert data_home(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.delenv("ODDONEOUT_DATA")
    assert data_home() == Path("~/.cache/oddoneout").expanduser()


def test_data_home_env_is_the_default_cache(server, tmp_path, monkeypatch):
    monkeypatch.setenv("ODDONEOUT_DATA", str(tmp_path / "home"))
    assert fetch_file(remote_for(server), progress=False) == tmp_path / "home" / "data.csv"


@pytest.mark.parametrize(
    ("name", "sha256"), [("dir/data.csv", "a" * 64), ("", "a" * 64), ("data.csv", "abc"), ("data.csv", "z" * 64)]
)
def test_remote_file_is_validated(name, sha256):
    with pytest.raises(InputError):
        RemoteFile(name=name, url="http://127.0.0.1/x", sha256=sha256)
