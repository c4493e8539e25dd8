"""Match a local folder of video files to a study's item ids.

The Cowen & Keltner clips are distributed on request only, so the study never downloads them:
a user who has them points ``[stimuli] videos`` at the folder. A file belongs to an item when
its name without extension is the item id (``0001.mp4``) or the same number without leading
zeros (``1.mp4``); files in sub-folders are found too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from oddoneout.errors import InputError

logger = logging.getLogger(__name__)

#: File extensions taken as videos.
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v", ".gif")


def _keys(stem: str) -> list[str]:
    keys = [stem]
    if stem.isdigit():
        keys.append(str(int(stem)))
    return keys


def match_videos(folder: str | Path, item_ids: Sequence[str], require_all: bool = False) -> dict[str, Path]:
    """Find the video file of each item in ``folder``.

    Parameters
    ----------
    folder : path
        A folder holding one video per item (any depth).
    item_ids : sequence of str
        The study's items.
    require_all : bool
        Raise when an item has no video (otherwise the missing ids are logged and left out).

    Returns
    -------
    dict of str to Path
        Item id to its video file, for the items that have one.

    Raises
    ------
    InputError
        When the folder does not exist, two files claim the same item, or (with ``require_all``)
        an item has no video; the message names the ids.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputError(f"video folder not found: {root}")
    wanted: dict[str, str] = {}
    for item_id in item_ids:
        for key in _keys(str(item_id)):
            wanted.setdefault(key, str(item_id))
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in VIDEO_EXTENSIONS or not path.is_file():
            continue
        item_id = next((wanted[key] for key in _keys(path.stem) if key in wanted), None)
        if item_id is None:
            continue
        if item_id in found:
            raise InputError(f"{root}: item {item_id!r} has two videos: {found[item_id].name} and {path.name}")
        found[item_id] = path
    missing = [item_id for item_id in item_ids if item_id not in found]
    if missing and require_all:
        raise InputError(f"{root}: no video for {len(missing)} item(s), e.g. {missing[:10]}")
    if missing:
        logger.warning("%s: no video for %d of %d items, e.g. %s", root, len(missing), len(item_ids), missing[:10])
    return found
