"""Reading triplets from files: a registry of readers by file suffix, and the SPoSE array readers.

:func:`load_triplets` picks the reader registered for the file's suffix. This module registers
the SPoSE index arrays (``.npy``, and whitespace text for ``.txt`` and any suffix no reader
claims). Modules that own other formats register their readers when imported, e.g. the
triplet store (:mod:`oddoneout.collect.store`) for ``.sqlite``/``.db`` stores and their
``.parquet`` exports; the core never imports them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from oddoneout.errors import InputError
from oddoneout.files import read_npy
from oddoneout.triplets.data import Triplets, validate_indices

#: Item ids as callers give them: a file with one id per line, a sequence of ids, or nothing.
ItemsArg = str | Path | Sequence[str] | None
#: A reader: ``read(path, items, design)`` returns the file's triplets (see :func:`load_triplets`).
TripletReader = Callable[[Path, ItemsArg, str | None], Triplets]


@dataclass(frozen=True)
class ReaderEntry:
    """A registered reader and the kind of file it reads (named in messages)."""

    kind: str
    read: TripletReader


_READERS: dict[str, ReaderEntry] = {}
#: What to do about an index array that cannot be read.
_ARRAY_REMEDY = "save the triplets again with numpy.save (an N x 3 integer array), or delete it"


def register_reader(kind: str, suffixes: Sequence[str], read: TripletReader) -> None:
    """Make :func:`load_triplets` read files with these suffixes through ``read``.

    Parameters
    ----------
    kind : str
        What the files are (e.g. ``"triplet store"``), named in messages.
    suffixes : sequence of str
        File suffixes with the dot, e.g. ``(".sqlite", ".db")``; matched case-sensitively.
    read : callable
        ``read(path, items, design) -> Triplets``. ``items`` is passed as the caller gave it
        (see :func:`as_item_ids`); ``design`` is ``None`` or a design name, and a reader of
        files without designs must refuse a name.

    Raises
    ------
    ValueError
        If another reader is already registered for one of the suffixes (registering the
        same reader again is allowed, so re-importing a module is harmless).
    """
    for suffix in suffixes:
        if not suffix.startswith("."):
            raise ValueError(f"a suffix starts with a dot, got {suffix!r}")
        existing = _READERS.get(suffix)
        if existing is not None and existing.read is not read:
            raise ValueError(f"{suffix!r} files are already read by the {existing.kind} reader")
    for suffix in suffixes:
        _READERS[suffix] = ReaderEntry(kind, read)


def registered_readers() -> dict[str, str]:
    """The kind of file read for each registered suffix."""
    return {suffix: entry.kind for suffix, entry in sorted(_READERS.items())}


def load_triplets(path: str | Path, items: ItemsArg = None, design: str | None = None) -> Triplets:
    """Load triplets through the reader registered for the file's suffix.

    Parameters
    ----------
    path : path
        ``.npy`` or whitespace text (N x 3 indices, odd one out last; any unregistered suffix
        is read as text), or a format registered by another module: ``.parquet`` (store
        export) and ``.sqlite``/``.db`` (store) once :mod:`oddoneout.collect` is imported,
        ``.csv`` (salmon responses) and ``.npz`` (cblearn triplets, psiz stimulus sets) once
        :mod:`oddoneout.formats` is.
    items : path or sequence of str, optional
        Item ids for index files (a file with one id per line, or a list). Without it,
        indices become ids ``"0", "1", ...`` up to the largest index. For a store or an
        export, the vocabulary the triplets are re-expressed over.
    design : str, optional
        For a store or export: keep only the judgments of this design.

    Returns
    -------
    Triplets
        Of the trial type the file holds; a store or export whose judgments (of the design
        asked) are of several trial types gives a :class:`~oddoneout.triplets.TrialSet`, one part
        per type, which the estimators fit alike.
    """
    path = Path(path)
    entry = _READERS.get(path.suffix)
    if entry is not None:
        return entry.read(path, items, design)
    try:
        return read_spose_file(path, items, design)
    except InputError as exc:
        known = ", ".join(f"{suffix} ({kind})" for suffix, kind in registered_readers().items())
        raise InputError(f"{exc} [read as text: no reader is registered for {path.suffix!r}; known: {known}]") from exc


def as_item_ids(items: ItemsArg) -> tuple[str, ...] | None:
    """Item ids from a file (one per line), a sequence, or ``None``."""
    if items is None:
        return None
    if isinstance(items, (str, Path)):
        return read_item_ids(items)
    return tuple(str(i) for i in items)


def read_item_ids(path: str | Path) -> tuple[str, ...]:
    """Read item ids, one per line (blank lines ignored)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"item list not found: {path}")
    ids = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    if not ids:
        raise InputError(f"item list is empty: {path}")
    if len(set(ids)) != len(ids):
        raise InputError(f"item list has duplicate ids: {path}")
    return ids


def read_spose_array(path: str | Path) -> np.ndarray:
    """Read an N x 3 integer array in the SPoSE convention (``.npy`` or whitespace text)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"triplet file not found: {path}")
    if path.suffix == ".npy":
        array = read_npy(path, remedy=_ARRAY_REMEDY)
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # an empty file is reported below
                array = np.loadtxt(path, ndmin=2)
        except ValueError as exc:
            raise InputError(f"{path}: malformed triplet text file ({exc})") from exc
    width = Triplets.trial_type.n_shown
    if array.size == 0:
        raise InputError(f"{path}: no triplets")
    if array.ndim != 2 or array.shape[1] != width:
        raise InputError(f"{path}: expected N x {width} item indices, got shape {array.shape}")
    integral = array.dtype.kind in "iu"
    if not integral and array.dtype.kind != "f":
        raise InputError(f"{path}: triplets must be integer item indices, got dtype {array.dtype}")
    if not integral and (not np.all(np.isfinite(array)) or not np.all(array == np.round(array))):
        raise InputError(f"{path}: triplet indices must be whole numbers")
    return array.astype(np.int64)


def read_spose_file(path: Path, items: ItemsArg = None, design: str | None = None) -> Triplets:
    """Reader of SPoSE index arrays (``.npy`` or text), item ids from ``items`` or the indices."""
    if design is not None:
        raise InputError(f"{path}: --design applies to a store or its Parquet export, not to an index file")
    array = read_spose_array(path)
    item_ids = as_item_ids(items)
    if item_ids is None:
        item_ids = tuple(str(i) for i in range(int(array.max()) + 1))
    validate_indices(array, len(item_ids), source=str(path))
    return Triplets(item_ids, array)


register_reader("SPoSE index array", (".npy",), read_spose_file)
register_reader("SPoSE index text", (".txt",), read_spose_file)
