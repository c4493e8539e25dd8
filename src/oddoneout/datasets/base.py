"""What every public similarity data set shares: the bundle a fetch returns, the registry entry, the checks.

A data set is described by a :class:`DatasetSpec`: its files (:class:`~oddoneout.stimuli.fetch.RemoteFile`,
each with its sha256), a parser that turns the verified local files into trials, its citation and
license, and the counts its source documents. :func:`fetch` finds every file exactly as
:func:`~oddoneout.stimuli.fetch.fetch_file` does for the Cowen & Keltner set (an offline source
folder, then the folder named by the data set's environment variable, then the cache, then the
network; every file checksum-verified), parses them and checks the counts.

Every problem in a file is an :class:`~oddoneout.errors.InputError` of one line that names the
file (and, for an archive, the member), the line or row, and what is wrong.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NoReturn

import numpy as np
import pandas as pd

from oddoneout.errors import InputError
from oddoneout.stimuli.fetch import RemoteFile, data_home, fetch_file
from oddoneout.triplets import Triplets, repeated_item_rows


@dataclass(frozen=True, eq=False)
class SimilarityDataset:
    """Trials of a public similarity data set, with what they need to be cited.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"food_similarity"``.
    triplets : Triplets
        The trials, in the canonical layout of their trial type, in file order.
    extra : DataFrame
        One row per trial (row ``i`` belongs to ``triplets.indices[i]``): every further per-trial
        column the source has (rater, response time, split...). May have no columns.
    citation : str
        The paper to cite.
    license : str
        The data's license, as its source states it.
    url : str
        The data set's landing page.
    items : DataFrame, optional
        Per-item metadata (index ``item_id`` in the order of ``triplets.item_ids``), e.g. the
        THINGS concept words.
    files : mapping of str to Path
        The verified local file of each role.
    notes : tuple of str
        What was left out on reading and why (e.g. rows without a second option).
    """

    name: str
    triplets: Triplets
    extra: pd.DataFrame
    citation: str
    license: str
    url: str
    items: pd.DataFrame | None = None
    files: Mapping[str, Path] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.extra) != len(self.triplets):
            raise InputError(f"{self.name}: {len(self.extra)} rows of extra columns for {len(self.triplets)} trials")
        if self.items is not None and tuple(self.items.index) != self.triplets.item_ids:
            raise InputError(f"{self.name}: the item table's index is not the triplets' item ids")

    def save(self, path: str | Path) -> Path:
        """Write the trials, extra columns and item table as a trial archive (``.npz``).

        See :func:`oddoneout.formats.archive.save_trial_archive`; ``oddoneout fit`` reads it.
        """
        from oddoneout.formats.archive import save_trial_archive
        from oddoneout.stimuli.fetch import sha256_of

        return save_trial_archive(
            path,
            self.triplets,
            extra=self.extra,
            items=self.items,
            dataset=self.name,
            citation=self.citation,
            license=self.license,
            url=self.url,
            source_files={Path(p).name: sha256_of(p) for p in self.files.values()},
            notes=list(self.notes),
        )


@dataclass(frozen=True)
class Parsed:
    """What a parser returns: the trials, their extra columns, the item table and notes."""

    triplets: Triplets
    extra: pd.DataFrame
    items: pd.DataFrame | None = None
    notes: tuple[str, ...] = ()
    #: Trials as the file counts them, when a trial becomes several rows (most-central, counts).
    n_source_trials: int | None = None


#: A parser: verified local files by role -> :class:`Parsed`.
Parser = Callable[[Mapping[str, Path]], Parsed]


@dataclass(frozen=True)
class DatasetSpec:
    """A registry entry: where a data set's files are, how to read them, what to expect.

    Parameters
    ----------
    name : str
        Registry name (``oddoneout fetch NAME``).
    title : str
        One-line description (trial type and size).
    files : mapping of str to RemoteFile
        The files by role; the role ``"trials"`` names the file the trials are read from (named in
        count errors).
    parse : callable
        ``parse(paths) -> Parsed`` on the verified local files.
    citation, license, url : str
        As in :class:`SimilarityDataset`.
    expected_trials, expected_items : int, optional
        Counts the source documents (trials as the file counts them, before a trial is expanded
        into several rows: :attr:`Parsed.n_source_trials`); checked on every load.
    group : str, optional
        Data sets whose files come from one source share a cache folder and environment variable
        (``data_home / group``, ``$ODDONEOUT_<GROUP>``); by default the data set's own name.
    """

    name: str
    title: str
    files: Mapping[str, RemoteFile]
    parse: Parser
    citation: str
    license: str
    url: str
    expected_trials: int | None = None
    expected_items: int | None = None
    group: str | None = None

    @property
    def folder(self) -> str:
        """Cache folder under the data home."""
        return self.group or self.name

    @property
    def env_var(self) -> str:
        """Environment variable naming an offline folder with the files: ``ODDONEOUT_<FOLDER>``."""
        return f"ODDONEOUT_{self.folder.upper()}"


def osf_file(name: str, key: str, sha256: str) -> RemoteFile:
    """The file ``name`` of OSF's file ``key``, downloaded through OSF's ``/download/<key>/`` path."""
    return RemoteFile(name=name, url=f"https://osf.io/download/{key}/", sha256=sha256)


def fetch(
    spec: DatasetSpec, source: str | Path | None = None, data_dir: str | Path | None = None, progress: bool = True
) -> SimilarityDataset:
    """Fetch (or find offline), verify and read the data set ``spec``: :func:`oddoneout.datasets.fetch_dataset`."""
    cache = data_home(data_dir) / spec.folder
    paths = {
        role: fetch_file(remote, data_dir=cache, source=source, env_var=spec.env_var, progress=progress)
        for role, remote in spec.files.items()
    }
    parsed = spec.parse(paths)
    where = paths.get("trials", next(iter(paths.values())))
    found = parsed.n_source_trials if parsed.n_source_trials is not None else len(parsed.triplets)
    if spec.expected_trials is not None and found != spec.expected_trials:
        fail(where, f"expected {spec.expected_trials} trials, found {found} (wrong or modified file?)")
    if spec.expected_items is not None and parsed.triplets.n_items != spec.expected_items:
        fail(where, f"expected {spec.expected_items} items, found {parsed.triplets.n_items} (wrong or modified file?)")
    return SimilarityDataset(
        name=spec.name,
        triplets=parsed.triplets,
        extra=parsed.extra,
        citation=spec.citation,
        license=spec.license,
        url=spec.url,
        items=parsed.items,
        files=paths,
        notes=parsed.notes,
    )


# --- helpers for parsers ------------------------------------------------------------------------


def fail(where: str | Path, problem: str) -> NoReturn:
    """Raise the one-line :class:`InputError` ``"<where>: <problem>"``."""
    raise InputError(" ".join(f"{where}: {problem}".split()))


@contextmanager
def open_zip(path: Path) -> Iterator[zipfile.ZipFile]:
    """``with open_zip(path) as archive:``, a corrupt or non-zip file being an :class:`InputError`."""
    try:
        with zipfile.ZipFile(path) as archive:
            yield archive
    except zipfile.BadZipFile as exc:
        fail(path, f"not a readable zip archive ({exc})")


def zip_member(archive: zipfile.ZipFile, path: Path, suffix: str) -> str:
    """The one member whose name is ``suffix`` or ends with ``/<suffix>`` (archives from GitHub
    name their top folder after the branch or commit)."""
    found = [name for name in archive.namelist() if name == suffix or name.endswith("/" + suffix)]
    found = [name for name in found if not name.startswith("__MACOSX/")]
    if len(found) != 1:
        what = "no member" if not found else f"{len(found)} members"
        fail(path, f"{what} named {suffix!r} (not the expected archive?)")
    return found[0]


def read_zip_member(archive: zipfile.ZipFile, path: Path, suffix: str) -> tuple[str, str]:
    """The text of the member :func:`zip_member` finds (UTF-8, a BOM allowed) and its place ``path:member``."""
    member = zip_member(archive, path, suffix)
    where = f"{path}:{member}"
    try:
        data = archive.read(member)
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        fail(where, f"cannot be read ({exc})")
    return decode(data), where


def decode(data: bytes) -> str:
    """UTF-8 text, a byte-order mark allowed; Latin-1 as the fallback of old files."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def image_names(archive: zipfile.ZipFile, folder: str) -> list[str]:
    """Stems of the ``.jpg`` files directly in ``folder`` (a path ending in ``/``), in the order of their file names.

    The order is that of the sorted file names, extension included (``chrome-steel.jpg`` before
    ``chrome.jpg``, as ``-`` sorts before ``.``), which is how the material study's authors number
    their images; sorting the stems would swap such pairs.
    """
    files = []
    for name in archive.namelist():
        if name.startswith("__MACOSX/") or not name.lower().endswith(".jpg"):
            continue
        head, _, tail = name.rpartition("/")
        if tail and (head + "/" == folder or (head + "/").endswith("/" + folder)):
            files.append(tail)
    return [PurePosixPath(tail).stem for tail in sorted(files)]


def item_stem(name: str) -> str:
    """An image's item id: its file name without folder or extension (``images/12.jpg`` -> ``12``)."""
    return PurePosixPath(name.strip()).stem


def split_rows(
    text: str, where: str | Path, width: int | Sequence[int], sep: str | None = None
) -> tuple[list[list[str]], list[int]]:
    """Non-blank lines split into fields, with their 1-based line numbers.

    Parameters
    ----------
    text : str
        The file's text.
    where : str or Path
        Named in errors.
    width : int or sequence of int
        Allowed numbers of fields.
    sep : str, optional
        Field separator; default any whitespace. Fields are stripped.

    Raises
    ------
    InputError
        A line with another number of fields (naming the line), or no lines at all.
    """
    allowed = (width,) if isinstance(width, int) else tuple(width)
    rows, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = [part.strip() for part in line.split(sep)] if sep is not None else line.split()
        if len(fields) not in allowed:
            expected = " or ".join(str(w) for w in allowed)
            fail(where, f"line {number}: expected {expected} fields, found {len(fields)}: {line.strip()[:80]!r}")
        rows.append(fields)
        lines.append(number)
    if not rows:
        fail(where, "no trials (empty file)")
    return rows, lines


def lookup(
    names: np.ndarray, vocabulary: Sequence[str], where: str | Path, row_name: Callable[[int], str]
) -> np.ndarray:
    """Indices of item ``names`` (any shape) in ``vocabulary``; an unknown name is an error naming its row."""
    names = np.asarray(names, dtype=object)
    found = pd.Index(list(vocabulary)).get_indexer(names.ravel()).reshape(names.shape)
    unknown = np.argwhere(found < 0)
    if unknown.size:
        row = int(unknown[0][0])
        fail(where, f"{row_name(row)}: unknown item {names[tuple(unknown[0])]!r} ({len(unknown)} unknown)")
    return found.astype(np.int64)


def make_triplets(
    item_ids: Sequence[str],
    indices: np.ndarray,
    trial_type,
    where: str | Path,
    row_name: Callable[[int], str],
) -> Triplets:
    """:class:`Triplets` after checking index ranges and repeated items, naming the first bad row.

    Parameters
    ----------
    item_ids : sequence of str
        The vocabulary.
    indices : ndarray of shape (n, trial_type.n_shown)
        Canonical layout.
    trial_type : TrialType
    where : str or Path
        Named in errors.
    row_name : callable
        ``row_name(i)`` names trial ``i`` in the file, e.g. ``"line 12"``.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) == 0:
        fail(where, "no trials")
    n_items = len(item_ids)
    out = np.flatnonzero(((indices < 0) | (indices >= n_items)).any(axis=1))
    if out.size:
        row = int(out[0])
        fail(where, f"{row_name(row)}: item index out of range [0, {n_items}): {indices[row].tolist()}")
    repeated = repeated_item_rows(indices)
    if repeated.size:
        row = int(repeated[0])
        shown = [item_ids[i] for i in indices[row]]
        fail(where, f"{row_name(row)}: an item is shown twice in one trial: {shown} ({repeated.size} such trials)")
    if len(set(item_ids)) != len(item_ids):
        fail(where, "item ids repeat")
    return Triplets(tuple(item_ids), indices, trial_type=trial_type)


def integers(values: Sequence[str] | np.ndarray, where: str | Path, row_name: Callable[[int], str]) -> np.ndarray:
    """Whole numbers from text fields (``"3"`` or ``"3.0"``), any shape; anything else names its row."""
    array = np.asarray(values, dtype=object)
    numbers = pd.to_numeric(pd.Series(array.ravel()), errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(numbers) | (numbers != np.round(numbers))
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        row = position // array.shape[1] if array.ndim == 2 else position
        fail(where, f"{row_name(row)}: {array.ravel()[position]!r} is not a whole number")
    return numbers.astype(np.int64).reshape(array.shape)


def line_namer(lines: Sequence[int]) -> Callable[[int], str]:
    """``row_name`` for trials read from numbered lines."""
    return lambda row: f"line {lines[row]}"


def no_extra(n: int) -> pd.DataFrame:
    """An extra table with ``n`` rows and no columns (a source with nothing beyond the trials)."""
    return pd.DataFrame(index=pd.RangeIndex(n))


def read_bytes_table(data: bytes, where: str | Path, **read_csv) -> pd.DataFrame:
    """``pandas.read_csv`` on bytes, a parse failure being a one-line :class:`InputError`."""
    try:
        return pd.read_csv(io.BytesIO(data), **read_csv)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        fail(where, f"malformed table ({exc})")
