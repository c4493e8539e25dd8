"""The Cowen & Keltner (2017) emotional video set: ratings and MindCaptioning captions.

Two files:

``CowenKeltnerEmotionalVideos.csv`` (Cowen & Keltner 2017, PNAS; the authors' public ``emogifs``
bucket)
    One row per clip (2,185 rows): ``Filename`` (``0001.mp4`` ...), the shares of raters choosing
    each of 34 emotion categories (0-1), the means of 14 affective dimensions (1-9 scales), then
    600 free-response terms (shares, 0-1). Three free-response terms (``arousal``, ``certainty``,
    ``dominance``) repeat dimension names, so columns are read by position, never by name alone.

``caption_ck20.csv`` (Horikawa 2025, Mind captioning; the ``horikawa-t/MindCaptioning`` GitHub
repository, ``data/caption/caption_ck20.csv``)
    ``video_id,description``: 20 crowd-sourced captions per video id. Ids 1-2185 are the clips
    ``0001.mp4``-``2185.mp4``. Ids 2186-2196 are the clips 1-11 shown a second time (captioned by
    other raters; see :data:`CAPTION_REPEATS`). Their captions are merged into clips 1-11, after
    the clip's own 20, so those clips have 40 captions; the stimulus table records which caption
    ids each item drew on in the column ``caption_video_ids``.

Item ids are the ``Filename`` stems, ``"0001"`` to ``"2185"``.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from oddoneout.errors import InputError
from oddoneout.stimuli.fetch import RemoteFile, data_home, fetch_file
from oddoneout.stimuli.stimulus_set import StimulusSet

#: The 34 emotion categories, spelled and ordered as in the ratings CSV.
CATEGORIES = (
    "Admiration", "Adoration", "Aesthetic Appreciation", "Amusement", "Anger", "Anxiety", "Awe",
    "Awkwardness", "Boredom", "Calmness", "Confusion", "Contempt", "Craving", "Disappointment",
    "Disgust", "Empathic Pain", "Entrancement", "Envy", "Excitement", "Fear", "Guilt", "Horror",
    "Interest", "Joy", "Nostalgia", "Pride", "Relief", "Romance", "Sadness", "Satisfaction",
    "Sexual Desire", "Surprise", "Sympathy", "Triumph",
)  # fmt: skip

#: The 14 affective dimensions, spelled and ordered as in the ratings CSV.
DIMENSIONS = (
    "approach", "arousal", "attention", "certainty", "commitment", "control", "dominance", "effort",
    "fairness", "identity", "obstruction", "safety", "upswing", "valence",
)  # fmt: skip

#: Number of clips (rows of the ratings CSV).
N_CLIPS = 2185

#: Caption video ids that repeat an earlier clip: ``{repeat id: clip id}`` (2186 -> 1, ..., 2196 -> 11).
CAPTION_REPEATS = {N_CLIPS + k: k for k in range(1, 12)}

#: Allowed range of each rating group: category shares and dimension scale means.
_RANGES = {"category": (0.0, 1.0), "dimension": (1.0, 9.0), "free": (0.0, 1.0)}

#: Environment variable naming a folder that holds both files (an offline source).
ENV_VAR = "ODDONEOUT_COWEN_KELTNER"

RATINGS_FILE = RemoteFile(
    name="CowenKeltnerEmotionalVideos.csv",
    url="https://s3-us-west-1.amazonaws.com/emogifs/CowenKeltnerEmotionalVideos.csv",
    sha256="91dfc5d33d4529e7e42e48e07fcd844a1236f32cb4927dee89767d57be7435ff",
    size=3228619,
)

# The branch name ("main") is assumed: the repository documents the file at data/caption/.
CAPTIONS_FILE = RemoteFile(
    name="caption_ck20.csv",
    url="https://raw.githubusercontent.com/horikawa-t/MindCaptioning/main/data/caption/caption_ck20.csv",
    sha256="633ae47a361f6116aa6c0c145c013a95d70aad30861c95a420a4a05d9c9e3c39",
    size=3431222,
)

_FILENAME = re.compile(r"^(\d{4})\.mp4$")


def item_id_of(clip: int) -> str:
    """Item id of a clip number: ``1 -> "0001"``."""
    return f"{clip:04d}"


def load_ratings(path: str | Path, free_responses: bool = False) -> pd.DataFrame:
    """Read and validate the Cowen & Keltner ratings CSV.

    Parameters
    ----------
    path : str or Path
        ``CowenKeltnerEmotionalVideos.csv``.
    free_responses : bool
        Also return the free-response terms, as columns ``free:<term>``.

    Returns
    -------
    DataFrame
        Index ``item_id`` (``"0001"``...), 2,185 rows in file order; columns
        ``category:<Name>`` (34, shares 0-1), ``dimension:<name>`` (14, means 1-9), then the
        free-response columns if asked for. All float.

    Raises
    ------
    InputError
        Missing or misplaced columns, a row count other than 2,185 (e.g. a truncated file), a
        missing, non-numeric or out-of-range rating (naming row and column), a malformed or
        repeated file name.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"ratings file not found: {path}")
    header = _read_header(path)
    expected = ["Filename", *CATEGORIES, *DIMENSIONS]
    missing = [name for name in expected if name not in header]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}")
    if header[: len(expected)] != expected:
        raise InputError(f"{path}: columns out of order; expected Filename, the 34 categories, then the 14 dimensions")
    free_terms = header[len(expected) :]
    names = (
        ["Filename"]
        + [f"category:{c}" for c in CATEGORIES]
        + [f"dimension:{d}" for d in DIMENSIONS]
        + [f"free:{t}" for t in free_terms]
    )
    if len(set(names)) != len(names):
        raise InputError(f"{path}: repeated free-response column(s)")
    try:
        frame = pd.read_csv(path, header=0, names=names, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from exc
    if len(frame) != N_CLIPS:
        raise InputError(f"{path}: expected {N_CLIPS} rows (clips), found {len(frame)}; truncated or wrong file?")
    frame.index = pd.Index(_item_ids(frame["Filename"], path), name="item_id")
    frame = frame.drop(columns="Filename")
    if not free_responses:
        frame = frame[names[1 : len(expected)]]
    return frame.apply(lambda column: _numeric(column, path))


def _read_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        try:
            return next(csv.reader(handle))
        except StopIteration:
            raise InputError(f"{path}: empty file") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: malformed CSV header ({exc})") from exc


def _item_ids(filenames: pd.Series, path: Path) -> list[str]:
    ids = []
    for row, filename in enumerate(filenames, start=2):  # row 1 is the header
        match = _FILENAME.match(filename.strip())
        if match is None:
            raise InputError(f"{path}: row {row}: Filename {filename!r} is not of the form 0001.mp4")
        ids.append(match.group(1))
    repeated = sorted(i for i, count in Counter(ids).items() if count > 1)
    if repeated:
        raise InputError(f"{path}: repeated Filename(s) {[f'{i}.mp4' for i in repeated[:5]]}")
    return ids


def _numeric(column: pd.Series, path: Path) -> pd.Series:
    values = pd.to_numeric(column.str.strip(), errors="coerce")
    bad = values.isna()
    group = str(column.name).split(":", 1)[0]
    low, high = _RANGES[group]
    if not bad.any():
        bad = (values < low) | (values > high)
        problem = f"outside [{low:g}, {high:g}]"
    else:
        problem = "missing or not numeric"
    if bad.any():
        position = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(
            f"{path}: row {position + 2} (item {column.index[position]}), column {column.name!r}: "
            f"rating {column.iloc[position]!r} is {problem}"
        )
    return values.astype(float)


def load_captions(path: str | Path) -> dict[str, list[str]]:
    """Read the MindCaptioning captions of the Cowen & Keltner clips.

    Parameters
    ----------
    path : str or Path
        ``caption_ck20.csv`` (``video_id,description``; a UTF-8 byte-order mark is allowed).

    Returns
    -------
    dict of str to list of str
        Item id (``"0001"``...) to its captions in file order, for every clip 1-2,185. The
        captions of the repeated ids 2186-2196 (:data:`CAPTION_REPEATS`) are appended to those of
        clips 1-11.

    Raises
    ------
    InputError
        Missing columns, a non-integer or unknown video id, an empty caption (naming the row), or
        a clip without captions.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"captions file not found: {path}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from exc
    missing = [c for c in ("video_id", "description") if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}")
    captions: dict[str, list[str]] = {item_id_of(clip): [] for clip in range(1, N_CLIPS + 1)}
    for row, (video_id, text) in enumerate(zip(frame["video_id"], frame["description"]), start=2):
        clip = _clip_of(video_id, path, row)
        if not text.strip():
            raise InputError(f"{path}: row {row}: empty caption for video id {video_id}")
        captions[item_id_of(clip)].append(text.strip())
    empty = [item for item, texts in captions.items() if not texts]
    if empty:
        raise InputError(
            f"{path}: no captions for clip(s) {empty[:5]}" + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        )
    return captions


def _clip_of(video_id: str, path: Path, row: int) -> int:
    try:
        number = int(video_id.strip())
    except ValueError:
        raise InputError(f"{path}: row {row}: video id {video_id!r} is not an integer") from None
    if 1 <= number <= N_CLIPS:
        return number
    if number in CAPTION_REPEATS:
        return CAPTION_REPEATS[number]
    raise InputError(f"{path}: row {row}: unknown video id {number} (expected 1-{N_CLIPS + len(CAPTION_REPEATS)})")


def caption_video_ids(item_id: str) -> list[int]:
    """Caption-file video ids whose captions an item carries: ``"0001" -> [1, 2186]``, ``"0012" -> [12]``."""
    clip = int(item_id)
    return [clip] + [repeat for repeat, original in CAPTION_REPEATS.items() if original == clip]


def load_cowen_keltner(source: str | Path | None = None, data_dir: str | Path | None = None) -> StimulusSet:
    """The Cowen & Keltner video set as a :class:`StimulusSet` (2,185 clips).

    Both files are found with :func:`~oddoneout.stimuli.fetch.fetch_file`: in ``source`` (a
    folder holding both), else in the folder named by ``$ODDONEOUT_COWEN_KELTNER``, else in the
    cache ``data_home(data_dir) / "cowen_keltner"``, else downloaded; each is checksum-verified.

    Parameters
    ----------
    source : str or Path, optional
        Offline folder with ``CowenKeltnerEmotionalVideos.csv`` and ``caption_ck20.csv``.
    data_dir : str or Path, optional
        Data home (cache root); default ``$ODDONEOUT_DATA`` or ``~/.cache/oddoneout``.

    Returns
    -------
    StimulusSet
        Named ``"cowen-keltner"``; index ``item_id`` (``"0001"``...); columns ``caption`` (the
        first caption), ``captions`` (all of them: 20, or 40 for clips 1-11),
        ``caption_video_ids``, ``media_path`` (None: the videos are not distributed here),
        ``category:<Name>`` (34) and ``dimension:<name>`` (14). Free-response terms are left
        out; read them with ``load_ratings(path, free_responses=True)``.
    """
    cache = data_home(data_dir) / "cowen_keltner"
    ratings_path = fetch_file(RATINGS_FILE, data_dir=cache, source=source, env_var=ENV_VAR)
    captions_path = fetch_file(CAPTIONS_FILE, data_dir=cache, source=source, env_var=ENV_VAR)
    ratings = load_ratings(ratings_path)
    captions = load_captions(captions_path)
    table = pd.DataFrame(
        {
            "caption": [captions[i][0] for i in ratings.index],
            "captions": [captions[i] for i in ratings.index],
            "caption_video_ids": [caption_video_ids(i) for i in ratings.index],
        },
        index=ratings.index,
    )
    table["media_path"] = None
    return StimulusSet(pd.concat([table, ratings], axis=1), name="cowen-keltner")
