"""Fetch remote data files with sha256 checks, offline sources and a local cache (nilearn-style).

A file is looked for, in order, in

1. ``source``: an offline folder holding the file (under its :attr:`RemoteFile.name`) or the
   file itself (the CLI's ``--from PATH``);
2. the folder or file named by the environment variable ``env_var``
   (e.g. ``ODDONEOUT_COWEN_KELTNER``);
3. the cache, ``data_home(data_dir) / name``;
4. the network: the file is downloaded to a temporary file beside its cache path, its sha256 is
   checked, and only then is it renamed (atomically) into the cache.

Whatever the origin, the file's sha256 is checked against :attr:`RemoteFile.sha256` before its
path is returned, so a truncated or modified file is caught. Offline sources are read in place:
they are not copied into the cache (they are already on disk, and copying data the user keeps
elsewhere would double it). When a source or the environment variable is given but the file is
not there, the fetch fails rather than falling back silently to the cache or the network.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from oddoneout.atomic import atomic_path
from oddoneout.errors import InputError
from oddoneout.progress import progress_callback, progress_enabled

#: Environment variable that moves the data home (the cache of downloaded files).
DATA_HOME_ENV = "ODDONEOUT_DATA"

_CHUNK = 1 << 20
_TIMEOUT_S = 60


class DownloadError(InputError):
    """A download failed (HTTP error, unreachable host, short read); the message names the URL."""


@dataclass(frozen=True)
class RemoteFile:
    """A data file with a known public address and content.

    Parameters
    ----------
    name : str
        File name in the cache and in offline source folders (no directory part).
    url : str
        Where to download it from.
    sha256 : str
        Expected SHA-256 of the file's bytes, hex.
    size : int, optional
        Expected size in bytes; lets a truncated file be reported as such before hashing.
    """

    name: str
    url: str
    sha256: str
    size: int | None = None

    def __post_init__(self) -> None:
        if not self.name or Path(self.name).name != self.name:
            raise InputError(f"remote file name must be a plain file name, got {self.name!r}")
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256.lower()):
            raise InputError(f"remote file {self.name!r}: sha256 must be 64 hex digits, got {self.sha256!r}")


def data_home(path: str | Path | None = None) -> Path:
    """Folder of the download cache.

    Parameters
    ----------
    path : str or Path, optional
        Use this folder. Default: ``$ODDONEOUT_DATA`` if set, else ``~/.cache/oddoneout``.

    Returns
    -------
    Path
        The folder (not created here).
    """
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get(DATA_HOME_ENV)
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/oddoneout").expanduser()


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file's bytes, hex (read in chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: str | Path, remote: RemoteFile) -> Path:
    """Check a file's size (when known) and sha256 against ``remote``.

    Raises
    ------
    InputError
        Naming the file, the expected and the found size or hash.
    """
    path = Path(path)
    if remote.size is not None:
        found_size = path.stat().st_size
        if found_size != remote.size:
            raise InputError(
                f"{path}: wrong size for {remote.name} (truncated or modified?): "
                f"expected {remote.size} bytes, found {found_size}"
            )
    found = sha256_of(path)
    if found != remote.sha256.lower():
        raise InputError(
            f"{path}: checksum mismatch for {remote.name}: expected sha256 {remote.sha256.lower()}, found {found}"
        )
    return path


def fetch_file(
    remote: RemoteFile,
    data_dir: str | Path | None = None,
    source: str | Path | None = None,
    env_var: str | None = None,
    progress: bool = True,
) -> Path:
    """Path of a verified local copy of ``remote``, downloading it into the cache if needed.

    Parameters
    ----------
    remote : RemoteFile
        The file wanted.
    data_dir : str or Path, optional
        Cache folder; default :func:`data_home`. Created on download.
    source : str or Path, optional
        Offline source: a folder holding ``remote.name``, or the file itself. Read in place.
    env_var : str, optional
        Name of an environment variable that may hold such a folder or file (used when
        ``source`` is None).
    progress : bool
        Show a progress bar while downloading (also off when ``ODDONEOUT_PROGRESS=0``).

    Returns
    -------
    Path
        The verified file: in ``source``, in the env var's location, or in the cache.

    Raises
    ------
    InputError
        A given source lacks the file, or a file fails its checksum (naming file, expected and
        found hash). :class:`DownloadError` (an InputError) when the download fails.
    """
    if source is not None:
        return verify_file(_offline_file(Path(source), remote, "source"), remote)
    if env_var is not None and os.environ.get(env_var):
        return verify_file(_offline_file(Path(os.environ[env_var]), remote, f"${env_var}"), remote)
    cached = data_home(data_dir) / remote.name
    if cached.is_file():
        return verify_file(cached, remote)
    return _download(remote, cached, progress)


def _offline_file(location: Path, remote: RemoteFile, what: str) -> Path:
    location = location.expanduser()
    path = location / remote.name if location.is_dir() else location
    if not path.is_file():
        raise InputError(f"{remote.name} not found at {path} (given as {what})")
    return path


def _download(remote: RemoteFile, target: Path, progress: bool) -> Path:
    # a private temporary beside the target, renamed onto it only once verified
    with atomic_path(target) as temporary:
        with open(temporary, "wb") as out:
            _stream(remote, out, progress)
        verify_file(temporary, remote)
    return target


def _stream(remote: RemoteFile, out: BinaryIO, progress: bool) -> None:
    hint = "; download it by hand and pass its folder as the source (--from PATH)"
    try:
        response = urllib.request.urlopen(remote.url, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        raise DownloadError(
            f"could not download {remote.name} from {remote.url}: HTTP {exc.code} {exc.reason}{hint}"
        ) from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"could not download {remote.name} from {remote.url}: {exc}{hint}") from exc
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else remote.size
        done = 0
        with _download_bar(remote.name, total, progress) as report:
            try:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    done += len(chunk)
                    report(done)
            except (OSError, http.client.HTTPException) as exc:
                raise DownloadError(
                    f"download of {remote.name} from {remote.url} broke off after {done} bytes: {exc}"
                ) from exc
        if length and length.isdigit() and done != int(length):
            raise DownloadError(f"download of {remote.name} from {remote.url} is short: {done} of {length} bytes")


def _download_bar(name: str, total: int | None, progress: bool):
    if not (progress and progress_enabled()):
        return nullcontext(lambda done: None)
    return progress_callback(f"download {name}", total=total or 0, unit="bytes")
