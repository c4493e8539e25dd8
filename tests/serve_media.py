"""Real small media files for the tests of a served system's media: a PNG (Pillow), a WAV (wave), an MP4 (PyAV)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def write_png(path: Path, colour: tuple[int, int, int], size: int = 48) -> Path:
    """A square PNG of one colour."""
    from PIL import Image

    Image.new("RGB", (size, size), colour).save(path)
    return path


def write_wav(path: Path, hertz: float, seconds: float = 0.5, rate: int = 8000) -> Path:
    """A mono 16-bit WAV of one sine tone."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * 32767 * np.sin(2 * np.pi * hertz * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


def write_mp4(path: Path, colour: tuple[int, int, int], n_frames: int = 24, size: tuple[int, int] = (64, 48)) -> Path:
    """An H.264 MP4 (what browsers play) of one colour brightening over ``n_frames`` frames at 12 fps."""
    import av

    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(n_frames):
            image = np.empty((height, width, 3), np.uint8)
            image[:] = np.round(np.array(colour) * (0.4 + 0.6 * index / (n_frames - 1)))
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
