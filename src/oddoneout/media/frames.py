"""Frames sampled uniformly from a video file, resized and encoded as JPEG (PyAV + Pillow).

A multimodal model sees a clip as a few still frames. :func:`sample_frames` decodes the clip's
first video stream and keeps ``n_frames`` frames evenly spaced by index from the first frame to
the last one, so the sample covers the whole clip whatever its frame rate or timestamps.
Decoding is exact rather than seek-based (seeking lands on key frames only): the clip is decoded
twice, once to count its frames and once to keep the chosen ones, which is cheap for the short
clips of emotion studies (a few seconds each). :class:`FrameCache` keeps the data URLs of the
videos used most recently, so a clip shown in many triplets is decoded once.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from oddoneout.errors import InputError


@dataclass(frozen=True)
class FrameSpec:
    """How frames are taken from a video.

    Parameters
    ----------
    n_frames : int
        Frames per video, evenly spaced by index from the first frame to the last (a single
        frame is the middle one).
    size : int
        Length in pixels of the longest side after resizing (the aspect ratio is kept; smaller
        videos are scaled up).
    jpeg_quality : int
        JPEG quality, 1-100.
    """

    n_frames: int = 4
    size: int = 336
    jpeg_quality: int = 85

    def __post_init__(self) -> None:
        for field, low, high in (("n_frames", 1, None), ("size", 8, None), ("jpeg_quality", 1, 100)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
                bound = f"an integer in [{low}, {high}]" if high else f"an integer >= {low}"
                raise InputError(f"FrameSpec.{field} must be {bound}, got {value!r}")

    def as_dict(self) -> dict[str, int]:
        """The spec as a plain dict (for provenance records)."""
        return {"n_frames": self.n_frames, "size": self.size, "jpeg_quality": self.jpeg_quality}


def _import_av():
    try:
        import av
    except ImportError as exc:  # an optional dependency
        raise ImportError("reading video frames needs PyAV and Pillow: pip install av pillow") from exc
    return av


def _open_video(path: Path):
    """Open ``path`` and return ``(container, video_stream)``, or raise InputError naming it."""
    av = _import_av()
    if not path.is_file():
        raise InputError(f"video file not found: {path}")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be opened as a video ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise InputError(f"{path}: has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def _decode(path: Path):
    """Yield every decoded frame of the first video stream; decode errors become InputError."""
    av = _import_av()
    container, stream = _open_video(path)
    with container:
        try:
            yield from container.decode(stream)
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"{path}: the video does not decode ({exc})") from exc


def frame_indices(n_available: int, n_frames: int) -> list[int]:
    """Indices of ``n_frames`` frames evenly spaced over ``n_available`` (first to last).

    Parameters
    ----------
    n_available : int
        Frames in the video.
    n_frames : int
        Frames wanted, at most ``n_available``.

    Returns
    -------
    list of int
        Distinct increasing indices; ``[0, ..., n_available - 1]`` ends included when
        ``n_frames > 1``, the middle frame when ``n_frames == 1``.
    """
    if not 1 <= n_frames <= n_available:
        raise ValueError(f"cannot take {n_frames} frames from {n_available}")
    if n_frames == 1:
        return [(n_available - 1) // 2]
    # the spacing is >= 1 frame, so rounding keeps the indices distinct
    return [int(i) for i in np.rint(np.linspace(0, n_available - 1, n_frames))]


def _to_jpeg(frame, spec: FrameSpec) -> bytes:
    scale = spec.size / max(frame.width, frame.height)
    width = max(1, round(frame.width * scale))
    height = max(1, round(frame.height * scale))
    image = frame.to_image(width=width, height=height)  # RGB, resized by libswscale
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=spec.jpeg_quality)
    return buffer.getvalue()


def sample_frames(path: str | os.PathLike, spec: FrameSpec = FrameSpec()) -> list[bytes]:
    """Frames evenly spaced over a video, resized and encoded as JPEG.

    Parameters
    ----------
    path : str or path-like
        A video file any FFmpeg build reads (mp4, webm, avi, mov, gif...).
    spec : FrameSpec
        How many frames, their size and JPEG quality.

    Returns
    -------
    list of bytes
        ``spec.n_frames`` JPEG images in temporal order.

    Raises
    ------
    InputError
        Naming the file, when it does not exist, is not a video, has no video stream, does not
        decode, or has fewer decodable frames than ``spec.n_frames``.
    """
    path = Path(path)
    n_available = sum(1 for _ in _decode(path))
    if n_available < spec.n_frames:
        raise InputError(f"{path}: {n_available} decodable frame(s), fewer than the {spec.n_frames} requested")
    wanted = frame_indices(n_available, spec.n_frames)
    images: list[bytes] = []
    frames = _decode(path)
    try:
        for index, frame in enumerate(frames):
            if index == wanted[len(images)]:
                images.append(_to_jpeg(frame, spec))
                if len(images) == len(wanted):
                    break
    finally:
        frames.close()  # closes the container when the loop stopped early
    if len(images) != len(wanted):  # the file changed between the two passes
        raise InputError(f"{path}: decoded fewer frames on the second pass than the {n_available} counted")
    return images


def frames_as_data_urls(path: str | os.PathLike, spec: FrameSpec = FrameSpec()) -> list[str]:
    """:func:`sample_frames` as ``data:image/jpeg;base64,...`` URLs (for chat ``image_url`` parts)."""
    return ["data:image/jpeg;base64," + base64.b64encode(image).decode("ascii") for image in sample_frames(path, spec)]


class FrameCache:
    """:func:`frames_as_data_urls` of videos, decoded once each and kept for the most recently used ones.

    Safe to use from several threads; :meth:`warm` decodes in worker threads, once per video even
    when many coroutines ask for the same one at the same time.

    Parameters
    ----------
    spec : FrameSpec
        How frames are taken from each video.
    max_videos : int
        Videos whose data URLs are kept in memory (the least recently used are dropped first).
    """

    def __init__(self, spec: FrameSpec, max_videos: int = 512) -> None:
        self.spec = spec
        self.max_videos = max_videos
        self._urls: OrderedDict[str, list[str]] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[str, asyncio.Future] = {}

    def __contains__(self, path: str | os.PathLike) -> bool:
        with self._lock:
            return os.fspath(path) in self._urls

    def data_urls(self, path: str | os.PathLike) -> list[str]:
        """The data URLs of one video's frames, decoded on first use.

        Raises
        ------
        InputError
            When the video does not decode or has too few frames.
        """
        key = os.fspath(path)
        with self._lock:
            if key in self._urls:
                self._urls.move_to_end(key)
                return self._urls[key]
        urls = frames_as_data_urls(path, self.spec)
        with self._lock:
            self._urls[key] = urls
            while len(self._urls) > self.max_videos:
                self._urls.popitem(last=False)
        return urls

    async def warm(self, paths: Iterable[str | os.PathLike]) -> None:
        """Decode the videos not cached yet in worker threads (each once, however many coroutines ask)."""
        waits = []
        for path in paths:
            if path in self:
                continue
            key = os.fspath(path)
            future = self._pending.get(key)
            if future is None:
                future = asyncio.ensure_future(asyncio.to_thread(self.data_urls, path))
                self._pending[key] = future
                future.add_done_callback(lambda _, key=key: self._pending.pop(key, None))
            waits.append(asyncio.shield(future))
        for wait in waits:
            await wait
