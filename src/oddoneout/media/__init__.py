"""Reading stimulus media: frames sampled from video files (PyAV) as JPEG images."""

from oddoneout.media.frames import FrameCache, FrameSpec, frames_as_data_urls, sample_frames

__all__ = ["FrameCache", "FrameSpec", "frames_as_data_urls", "sample_frames"]
