"""Frame sampling from real video files written with PyAV."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
Image = pytest.importorskip("PIL.Image")

from oddoneout.errors import InputError  # noqa: E402
from oddoneout.media import FrameCache, FrameSpec, frames_as_data_urls, sample_frames  # noqa: E402
from oddoneout.media.frames import frame_indices  # noqa: E402

WIDTH, HEIGHT = 64, 48


def brightness(index: int, n_frames: int) -> float:
    """Brightness factor of frame ``index`` in the clips written by :func:`write_clip`."""
    return 0.25 + 0.75 * index / (n_frames - 1)


def write_clip(path: Path, colour: tuple[int, int, int], n_frames: int = 12, codec: str = "mpeg4") -> Path:
    """A 64x48 clip of one colour whose brightness rises linearly from frame 0 to the last one."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=12)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for index in range(n_frames):
            image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
            image[:] = np.round(np.array(colour) * brightness(index, n_frames))
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def mean_rgb(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), dtype=float).mean(axis=(0, 1))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clips") / "red.mp4", (220, 40, 40), n_frames=13)


def test_frames_are_jpegs_of_the_requested_size_evenly_spaced_first_to_last(clip):
    frames = sample_frames(clip, FrameSpec(n_frames=4, size=32))
    assert len(frames) == 4
    for jpeg in frames:
        image = Image.open(io.BytesIO(jpeg))
        assert image.format == "JPEG"
        assert image.size == (32, 24)  # longest side 32, aspect 4:3 kept
    colours = np.array([mean_rgb(jpeg) for jpeg in frames])
    # the clip's colour: red dominates in every frame
    assert np.all(colours[:, 0] > 2 * colours[:, 1])
    # frames 0, 4, 8, 12 of 13: brightness follows the ramp, first and last frames included
    expected_red = [220 * brightness(i, 13) for i in (0, 4, 8, 12)]
    np.testing.assert_allclose(colours[:, 0], expected_red, atol=12)
    assert np.all(np.diff(colours[:, 0]) > 20)


def test_small_videos_are_scaled_up_and_quality_changes_the_bytes(clip):
    large = sample_frames(clip, FrameSpec(n_frames=1, size=336, jpeg_quality=90))
    assert Image.open(io.BytesIO(large[0])).size == (336, 252)
    low = sample_frames(clip, FrameSpec(n_frames=1, size=336, jpeg_quality=10))
    assert len(low[0]) < len(large[0])


def test_a_single_frame_is_the_middle_one(clip):
    (jpeg,) = sample_frames(clip, FrameSpec(n_frames=1, size=64))
    assert mean_rgb(jpeg)[0] == pytest.approx(220 * brightness(6, 13), abs=12)


def test_every_frame_can_be_taken(clip):
    frames = sample_frames(clip, FrameSpec(n_frames=13, size=16))
    reds = [mean_rgb(jpeg)[0] for jpeg in frames]
    assert len(frames) == 13
    assert np.all(np.diff(reds) > 0)


def test_frame_indices():
    assert frame_indices(13, 4) == [0, 4, 8, 12]
    assert frame_indices(10, 10) == list(range(10))
    assert frame_indices(9, 1) == [4]
    many = frame_indices(1000, 7)
    assert many[0] == 0 and many[-1] == 999 and len(set(many)) == 7 and many == sorted(many)
    with pytest.raises(ValueError):
        frame_indices(3, 4)


def test_data_urls_carry_the_same_jpegs(clip):
    spec = FrameSpec(n_frames=3, size=24)
    urls = frames_as_data_urls(clip, spec)
    prefix = "data:image/jpeg;base64,"
    assert all(url.startswith(prefix) for url in urls)
    assert [base64.b64decode(url[len(prefix) :]) for url in urls] == sample_frames(clip, spec)


def test_frame_cache_decodes_each_video_once_and_drops_the_least_recently_used(tmp_path, monkeypatch):
    from oddoneout.media import frames

    paths = [write_clip(tmp_path / f"{i}.mp4", (40 * i, 100, 100), n_frames=4) for i in range(3)]
    decoded = []
    real = frames.frames_as_data_urls
    monkeypatch.setattr(frames, "frames_as_data_urls", lambda path, spec: decoded.append(path) or real(path, spec))
    cache = FrameCache(FrameSpec(n_frames=2, size=16), max_videos=2)

    async def many_at_once():
        await asyncio.gather(*(cache.warm(paths[:2]) for _ in range(5)))

    asyncio.run(many_at_once())
    assert decoded == paths[:2] or decoded == paths[1::-1]
    assert cache.data_urls(paths[0]) == real(paths[0], cache.spec)  # a hit, now the most recent
    cache.data_urls(paths[2])  # drops paths[1]
    assert paths[0] in cache and paths[2] in cache and paths[1] not in cache
    assert len(decoded) == 3


def test_h264_clips_decode(tmp_path):
    try:
        path = write_clip(tmp_path / "green.mp4", (30, 200, 30), n_frames=10, codec="libx264")
    except (av.FFmpegError, ValueError) as exc:  # an FFmpeg build without libx264
        pytest.skip(f"no H.264 encoder: {exc}")
    frames = sample_frames(path, FrameSpec(n_frames=2, size=64))
    assert [Image.open(io.BytesIO(f)).size for f in frames] == [(64, 48), (64, 48)]
    assert mean_rgb(frames[1])[1] > 2 * mean_rgb(frames[1])[0]


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nowhere.mp4"
    with pytest.raises(InputError, match="nowhere.mp4"):
        sample_frames(path, FrameSpec())


def test_random_bytes_are_not_a_video(tmp_path):
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match="noise.mp4"):
        sample_frames(path, FrameSpec())


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "tone.wav"
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        samples = (np.sin(np.arange(800) / 5) * 8000).astype(np.int16)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(InputError, match=r"tone\.wav.*no video stream"):
        sample_frames(path, FrameSpec())


def test_too_few_frames_is_named(tmp_path):
    path = write_clip(tmp_path / "short.mp4", (40, 40, 220), n_frames=3)
    with pytest.raises(InputError, match=r"short\.mp4: 3 decodable frame"):
        sample_frames(path, FrameSpec(n_frames=4))


@pytest.mark.parametrize(
    "kwargs", [{"n_frames": 0}, {"size": 4}, {"jpeg_quality": 0}, {"jpeg_quality": 101}, {"n_frames": 2.5}]
)
def test_frame_spec_is_validated(kwargs):
    with pytest.raises(InputError, match="FrameSpec"):
        FrameSpec(**kwargs)
