"""Other tools' triplet files: readers and writers by format name, and suffix readers for ``load_triplets``.

One module per format, each with a reader that returns :class:`~oddoneout.triplets.Triplets` of
the right trial type and a writer whose file the reader (and the tool itself) reads back:

- ``spose`` (:mod:`~oddoneout.formats.spose`): the SPoSE N x 3 odd-one-out convention.
- ``salmon`` (:mod:`~oddoneout.formats.salmon`): salmon's ``responses.csv``, anchor triplets with
  the participant, response time and sampler of each answer kept.
- ``cblearn`` (:mod:`~oddoneout.formats.cblearn`): cblearn's ``(anchor, near, far)`` triplet
  arrays, with or without boolean / count responses.
- ``psiz`` (:mod:`~oddoneout.formats.psiz`): psiz-style rank arrays (reference, ranked options,
  other options).

:func:`read_triplets` and :func:`write_triplets` pick the format by name (the CLI's
``--format``). Importing this package also registers suffix readers with
:func:`oddoneout.triplets.register_reader`: ``.csv`` files with salmon's header are read as
salmon responses (others as SPoSE text, as unregistered suffixes are), and ``.npz`` archives by
their arrays (``triplet``: cblearn; ``stimulus_set``: psiz). docs/formats.md ("Other tools' formats")
describes every format.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from oddoneout.errors import InputError
from oddoneout.files import open_npz
from oddoneout.formats import cblearn, psiz, salmon, spose
from oddoneout.formats._common import ARRAY_REMEDY, require_file, text_errors
from oddoneout.formats.archive import read_archive_triplets
from oddoneout.formats.cblearn import read_cblearn, write_cblearn
from oddoneout.formats.psiz import read_psiz, write_psiz
from oddoneout.formats.salmon import SalmonResponses, read_salmon, write_salmon
from oddoneout.formats.spose import read_spose, write_spose
from oddoneout.triplets import Triplets, register_reader, trial_type_from_spec
from oddoneout.triplets.readers import ItemsArg, read_spose_file
from oddoneout.triplets.trial import TrialType

__all__ = [
    "FORMATS",
    "FileFormat",
    "SalmonResponses",
    "read_cblearn",
    "read_psiz",
    "read_salmon",
    "read_spose",
    "read_triplets",
    "write_cblearn",
    "write_psiz",
    "write_salmon",
    "write_spose",
    "write_triplets",
]


@dataclass(frozen=True)
class FileFormat:
    """A format of other tools' triplet files.

    Attributes
    ----------
    name : str
        The name ``--format`` takes.
    holds : str
        What its trials are, for messages.
    read : callable
        ``read(path, items, trial_type, n_ranked) -> Triplets``; refuses a trial type the
        format cannot hold.
    write : callable
        ``write(path, triplets, **options) -> Path``.
    """

    name: str
    holds: str
    read: Callable[[Path, ItemsArg, TrialType | None, int | None], Triplets]
    write: Callable[..., Path]


FORMATS: dict[str, FileFormat] = {
    "spose": FileFormat("spose", "odd-one-out triplets", spose.read, write_spose),
    "salmon": FileFormat("salmon", "anchor triplets", salmon.read, write_salmon),
    "cblearn": FileFormat("cblearn", "anchor triplets", cblearn.read, write_cblearn),
    "psiz": FileFormat("psiz", "ranked trials", psiz.read, write_psiz),
}


def _format(name: str) -> FileFormat:
    if name not in FORMATS:
        raise InputError(f"unknown format {name!r}: expected one of {', '.join(FORMATS)}")
    return FORMATS[name]


def read_triplets(
    path: str | Path,
    file_format: str,
    items: ItemsArg = None,
    trial_type: TrialType | str | None = None,
    n_ranked: int | None = None,
) -> Triplets:
    """Read a file of another tool's format.

    Parameters
    ----------
    path : path
    file_format : {"spose", "salmon", "cblearn", "psiz"}
    items : path or sequence of str, optional
        Item ids (a file with one id per line, or a list): index ``i`` is ``items[i]``; for a
        file that names its items, the vocabulary its trials are re-expressed over.
    trial_type : TrialType or str, optional
        The trials' type or its spec (``"anchor"``, ``"ranked:8:2"``); it must be one the format
        holds and fit the file.
    n_ranked : int, optional
        psiz: options ranked per trial.

    Returns
    -------
    Triplets
    """
    kind = trial_type_from_spec(trial_type) if isinstance(trial_type, str) else trial_type
    if n_ranked is not None and (not isinstance(n_ranked, int) or n_ranked < 1):
        raise InputError(f"n_ranked must be a positive integer, got {n_ranked!r}")
    return _format(file_format).read(Path(path), items, kind, n_ranked)


def write_triplets(path: str | Path, triplets: Triplets, file_format: str, **options: Any) -> Path:
    """Write trials in another tool's format (``options`` go to the format's writer)."""
    return _format(file_format).write(path, triplets, **options)


def _refuse_design(path: Path, design: str | None) -> None:
    if design is not None:
        raise InputError(f"{path}: --design applies to a store or its Parquet export, not to this file")


def _read_csv(path: Path, items: ItemsArg, design: str | None) -> Triplets:
    """``.csv`` by content: salmon's responses.csv (its header), else SPoSE text as before this reader."""
    _refuse_design(path, design)
    require_file(path)
    with text_errors(path), path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), [])
    if all(name in header for name in salmon.INDEX_COLUMNS):
        return read_salmon(path, items).triplets
    try:
        return read_spose_file(path, items)
    except InputError as exc:
        raise InputError(
            f"{exc} [read as SPoSE text: no salmon header ({', '.join(salmon.INDEX_COLUMNS)}); "
            "name another format, e.g. --format cblearn, --format psiz --n-ranked K or --format spose]"
        ) from None


def _read_npz(path: Path, items: ItemsArg, design: str | None) -> Triplets:
    """``.npz`` by its arrays: ``triplet`` (cblearn), ``stimulus_set`` (psiz) or ``indices`` (trial archive)."""
    _refuse_design(path, design)
    require_file(path)
    with open_npz(path, remedy=ARRAY_REMEDY) as arrays:
        names = set(arrays.files)
    if "triplet" in names:
        return read_cblearn(path, items)
    if "stimulus_set" in names:
        return read_psiz(path, items)
    if "indices" in names:
        return read_archive_triplets(path, items)
    raise InputError(
        f"{path}: an .npz of neither cblearn triplets ('triplet'), a psiz stimulus set ('stimulus_set') "
        "nor a trial archive ('indices'); "
        f"it has {sorted(names)}"
    )


register_reader("salmon responses.csv, else SPoSE text", (".csv",), _read_csv)
register_reader("cblearn triplets, psiz stimulus set or trial archive", (".npz",), _read_npz)
