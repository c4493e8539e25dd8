"""psiz-style rank arrays: a reference, then the options, the ranked (chosen) ones first in rank order.

psiz (roads/psiz) stores a rank trial as a *stimulus set*: the query (reference) in column 0,
then the references (options) with the selected ones first, in the order they were selected, and
the others after them; ``n_select`` says how many were selected. A "8-rank-2" trial is 9 columns
with ``n_select = 2``. That is the canonical layout of :class:`~oddoneout.triplets.Ranked` (and of
:data:`~oddoneout.triplets.ANCHOR` for "2-rank-1"), so rows are read as they are.

Files hold trials of one shape (one number of options, one ``n_select``):

- ``.npy``: the ``(n, 1 + n_options)`` stimulus set.
- ``.npz``: ``stimulus_set``, optionally ``n_select`` (a number, or one per trial, all equal) and
  ``item_ids`` (index ``i`` is ``item_ids[i]``).
- any other suffix: headerless text, comma-separated for ``.csv`` and whitespace-separated
  otherwise.

Indices are 0-based as in psiz's ``RankObservations`` (psiz before 0.5, which padded shorter
trials with -1). psiz 0.5 and later number stimuli from 1 and keep 0 for an empty slot: read and
write those with ``one_based=True``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from oddoneout.errors import InputError
from oddoneout.files import open_npz
from oddoneout.formats._common import (
    ARRAY_REMEDY,
    archive_item_ids,
    array_rows,
    array_table,
    check_indices,
    check_width,
    column_names,
    index_item_ids,
    load_npy,
    named_item_ids,
    parse_integers,
    read_delimited_rows,
    reference_type,
    require_file,
    require_type,
    write_table,
)
from oddoneout.triplets import Ranked, Triplets
from oddoneout.triplets.readers import ItemsArg
from oddoneout.triplets.trial import TrialType


def read_psiz(
    path: str | Path,
    items: ItemsArg = None,
    n_ranked: int | None = None,
    trial_type: TrialType | None = None,
    one_based: bool = False,
) -> Triplets:
    """Read a psiz-style stimulus set as ranked trials (anchor triplets for 2 options, 1 ranked).

    Parameters
    ----------
    path : path
        ``.npy``, ``.npz`` or delimited text (see the module docstring).
    items : path or sequence of str, optional
        Item ids: index ``i`` is ``items[i]``; for an ``.npz`` with ``item_ids``, the vocabulary
        its trials are re-expressed over. By default the file's ``item_ids``, or the indices.
    n_ranked : int, optional
        Options ranked per trial (psiz's ``n_select``); by default the ``.npz``'s ``n_select``,
        or 1 for trials of two options.
    trial_type : TrialType, optional
        The trials' type, e.g. ``Ranked(8, 2)``; it must fit the width of the file.
    one_based : bool
        Indices count from 1 (psiz 0.5 and later).

    Returns
    -------
    Triplets

    Raises
    ------
    InputError
        One line naming the file, the row (``line L`` of a text file; ``row R (0-based)`` of an
        array) and the problem.
    """
    path = Path(path)
    require_file(path)
    names, stored_n_ranked = None, None
    if path.suffix == ".npy":
        table, where = array_table(path, load_npy(path), "reference, then the options"), array_rows
    elif path.suffix == ".npz":
        table, stored_n_ranked, names = _read_npz(path)
        where = array_rows
    else:
        rows, where = read_delimited_rows(path)
        width = len(rows[0])
        check_width(path, rows, (max(width, 3),), where, "a reference and 2 or more options")
        table = parse_integers(path, np.array(rows, dtype=object), where, column_names(width))
    if table.shape[1] < 3:
        raise InputError(f"{path}: wrong width: {table.shape[1]} columns, expected a reference and 2 or more options")
    if n_ranked is not None and stored_n_ranked is not None and n_ranked != stored_n_ranked:
        raise InputError(f"{path}: n_select is {stored_n_ranked} in the file, but {n_ranked} options ranked were asked")
    kind = reference_type(path, table.shape[1] - 1, n_ranked if n_ranked is not None else stored_n_ranked, trial_type)
    if one_based:
        table = table - 1
        note = " (one-based file: 0 is psiz's empty slot)"
    else:
        note = " (psiz pads shorter trials with -1: a file holds trials of one shape)"
    if names is None:
        item_ids = index_item_ids(path, table, items, where, note)
    else:
        check_indices(path, table, len(names), where, note)
        item_ids, table = named_item_ids(path, names, table, items, where)
    return Triplets(item_ids, table, trial_type=kind)


def _read_npz(path: Path) -> tuple[np.ndarray, int | None, np.ndarray | None]:
    """The ``stimulus_set``, the ``n_select`` (or None) and the ``item_ids`` (or None) of an ``.npz``."""
    with open_npz(path, remedy=ARRAY_REMEDY) as arrays:
        if "stimulus_set" not in arrays.files:
            raise InputError(
                f"{path}: missing array 'stimulus_set' (psiz's reference-then-options rows; the archive has "
                f"{sorted(arrays.files)})"
            )
        table = array_table(path, arrays["stimulus_set"], "reference, then the options")
        n_select = arrays["n_select"] if "n_select" in arrays.files else None
        names = archive_item_ids(path, arrays["item_ids"]) if "item_ids" in arrays.files else None
    if n_select is None:
        return table, None, names
    values = np.unique(np.asarray(n_select).reshape(-1))
    if values.size != 1 or values.dtype.kind not in "iu":
        raise InputError(f"{path}: 'n_select' must be one integer for every trial, got {values.tolist()[:5]}")
    return table, int(values[0]), names


def write_psiz(path: str | Path, triplets: Triplets, one_based: bool = False) -> Path:
    """Write ranked trials (or anchor triplets) as a psiz-style stimulus set.

    Parameters
    ----------
    path : path
        ``.npy``; ``.npz`` (``stimulus_set``, ``n_select`` per trial, ``item_ids``); or text:
        ``.csv`` comma-separated, any other suffix whitespace-separated.
    triplets : Triplets
        Trials of a :class:`~oddoneout.triplets.Ranked` type (the anchor triplet is one).
    one_based : bool
        Number the items from 1 (psiz 0.5 and later).

    Returns
    -------
    Path
    """
    require_type(triplets, lambda kind: isinstance(kind, Ranked), "psiz", "trials against a reference")
    path = Path(path)
    table = triplets.indices + (1 if one_based else 0)
    n_select = np.full(len(table), triplets.trial_type.n_ranked, dtype=np.int64)
    arrays = {"stimulus_set": table, "n_select": n_select, "item_ids": np.asarray(triplets.item_ids, dtype=str)}
    return write_table(path, table, arrays)


def read(path: Path, items: ItemsArg, trial_type: TrialType | None, n_ranked: int | None) -> Triplets:
    """The registry's reader (see :func:`read_psiz`)."""
    return read_psiz(path, items, n_ranked=n_ranked, trial_type=trial_type)
