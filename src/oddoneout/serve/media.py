"""The media files a served system shows: each item's image, video or audio, checked once when the server starts.

An item is shown as media when its stimulus table row has a ``media_path``, and as its caption
otherwise. The files live in the study's *media folder* (:func:`media_folder`): a relative
``media_path`` is taken inside it, an absolute one must lie inside it. Every path is resolved
(symbolic links followed) before the server starts, and a file that is missing, lies outside the
folder, or is not of a known image, video or audio type stops the server with one line naming the
item and the path. The page asks for an item's file by the item's number only
(``GET /media/<n>``, :mod:`oddoneout.serve.app`), never by a path, so no request can name another
file, and neither the item id nor the file name reaches the participant.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from oddoneout.errors import InputError
from oddoneout.stimuli.stimulus_set import StimulusSet

if TYPE_CHECKING:
    from oddoneout.agents.registry import HumanSettings
    from oddoneout.config import StudyConfig

#: What the page makes of a file, and its content type, by (lower-case) extension. No SVG: an SVG
#: document can hold script.
MEDIA_TYPES: dict[str, tuple[str, str]] = {
    ".png": ("image", "image/png"),
    ".jpg": ("image", "image/jpeg"),
    ".jpeg": ("image", "image/jpeg"),
    ".gif": ("image", "image/gif"),
    ".webp": ("image", "image/webp"),
    ".avif": ("image", "image/avif"),
    ".mp4": ("video", "video/mp4"),
    ".m4v": ("video", "video/mp4"),
    ".webm": ("video", "video/webm"),
    ".ogv": ("video", "video/ogg"),
    ".mov": ("video", "video/quicktime"),
    ".wav": ("audio", "audio/wav"),
    ".mp3": ("audio", "audio/mpeg"),
    ".m4a": ("audio", "audio/mp4"),
    ".aac": ("audio", "audio/aac"),
    ".ogg": ("audio", "audio/ogg"),
    ".oga": ("audio", "audio/ogg"),
    ".opus": ("audio", "audio/ogg"),
    ".flac": ("audio", "audio/flac"),
}


@dataclass(frozen=True)
class Medium:
    """One item's media file.

    Attributes
    ----------
    kind : {"image", "video", "audio"}
        How the page shows it.
    path : Path
        The file, resolved (no symbolic link, no ``..``), inside the media folder.
    content_type : str
        Sent as ``Content-Type``.
    """

    kind: str
    path: Path
    content_type: str

    def unchanged(self) -> bool:
        """Whether the file is still a regular file at the resolved path (not swapped for a link since the start)."""
        return os.path.realpath(self.path) == str(self.path) and self.path.is_file()


def media_folder(config: StudyConfig, settings: HumanSettings) -> Path | None:
    """The folder a served system's media files must lie in, or ``None`` when the study names none.

    The system's ``media_folder``; else ``[stimuli] videos``; else the folder of the stimulus table
    (``[stimuli] source``, when it is a file). Relative paths are taken from the config's folder.
    """
    if settings.media_folder:
        return config.resolve(settings.media_folder)
    if config.stimuli.videos:
        return config.resolve(config.stimuli.videos)
    if config.stimuli.source not in ("synthetic", "cowen_keltner"):
        return config.resolve(config.stimuli.source).parent
    return None


def _media_paths(stimuli: StimulusSet) -> dict[str, str]:
    """The non-empty ``media_path`` of each item that has one."""
    if "media_path" not in stimuli.table.columns:
        return {}
    paths = {}
    for item_id, value in stimuli.table["media_path"].items():
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            continue
        if str(value).strip():
            paths[str(item_id)] = str(value)
    return paths


def item_media(stimuli: StimulusSet, folder: Path | None) -> dict[str, Medium]:
    """Each item's media file (items without a ``media_path`` are shown as captions and left out).

    Parameters
    ----------
    stimuli : StimulusSet
        The study's items.
    folder : Path or None
        The media folder (:func:`media_folder`).

    Returns
    -------
    dict of str to Medium
        By item id.

    Raises
    ------
    InputError
        Naming the first item at fault and its path: a ``media_path`` with no media folder to take
        it from, a folder that does not exist, a file missing or not a regular file, a path outside
        the folder (``..``, an absolute path elsewhere, a symbolic link out), or an extension not
        in :data:`MEDIA_TYPES`.
    """
    paths = _media_paths(stimuli)
    if not paths:
        return {}
    if folder is None:
        item_id, value = next(iter(paths.items()))
        raise InputError(
            f"item {item_id!r} has media_path {value!r} but the study has no media folder: set media_folder "
            "in the served system's table (or [stimuli] videos)"
        )
    if not folder.is_dir():
        raise InputError(f"media folder not found: {folder}")
    root = folder.resolve()
    media = {}
    for item_id, value in paths.items():
        given = Path(value).expanduser()
        path = (given if given.is_absolute() else root / given).resolve()
        if not path.is_relative_to(root):
            raise InputError(f"item {item_id!r}: media_path {value!r} is outside the media folder {root}")
        if not path.is_file():
            raise InputError(f"item {item_id!r}: media file not found: {path} (media_path {value!r})")
        found = MEDIA_TYPES.get(path.suffix.lower())
        if found is None:
            known = " ".join(sorted(MEDIA_TYPES))
            raise InputError(f"item {item_id!r}: {path} is not an image, video or audio file the page shows ({known})")
        media[item_id] = Medium(found[0], path, found[1])
    return media
