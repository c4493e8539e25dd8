"""cblearn's triplet arrays: anchor triplets as ``(anchor, near, far)`` rows, with or without responses.

cblearn (comparison-based learning for scikit-learn) stores a triplet ``(i, j, k)`` as a row of
object indices asking "is ``i`` more similar to ``j`` or to ``k``?". Its formats:

- ``"list-order"``: an ``(n, 3)`` integer array whose rows are answered questions, ``i`` closer to
  ``j`` than to ``k``: ``(anchor, near, far)``.
- ``"list-boolean"``: the ``(n, 3)`` questions and a boolean response per row: ``True`` when the
  order holds (``i`` closer to ``j``), ``False`` when ``i`` is closer to ``k``.
- ``"list-count"``: the same with responses ``1`` (the order holds) and ``-1`` (it does not);
  cblearn reads ``0`` as undecided, which no triplet answer can be.

An answered triplet is an anchor triplet (:data:`~oddoneout.triplets.ANCHOR`), whose canonical
layout ``[reference, chosen, other]`` is cblearn's ``(anchor, near, far)``. Files:

- ``.npy``: the list-order array.
- ``.npz``: the array ``triplet`` (the name of cblearn's data sets), optionally ``response``
  (bool: list-boolean; numbers: list-count) and ``item_ids`` (the items' names, index ``i`` is
  ``item_ids[i]``; cblearn ignores it).
- any other suffix: headerless text, comma-separated for ``.csv`` and whitespace-separated
  otherwise (what :func:`numpy.savetxt` writes): 3 columns (list-order) or 4, the fourth the
  response (``True``/``False``: list-boolean; integers: list-count).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from oddoneout.errors import InputError
from oddoneout.files import open_npz
from oddoneout.formats._common import (
    ARRAY_REMEDY,
    Where,
    archive_item_ids,
    array_rows,
    array_table,
    check_indices,
    check_width,
    index_item_ids,
    load_npy,
    named_item_ids,
    parse_integers,
    problem,
    read_delimited_rows,
    require_file,
    require_type,
    whole_numbers,
    write_table,
)
from oddoneout.triplets import ANCHOR, Triplets
from oddoneout.triplets.readers import ItemsArg
from oddoneout.triplets.trial import TrialType

#: cblearn's answer formats of a triplet list.
RESPONSE_FORMATS = ("order", "boolean", "count")
_COLUMNS = ["column 0 (anchor)", "column 1", "column 2"]
_RESPONSE = "column 3 (response)"


def read_cblearn(path: str | Path, items: ItemsArg = None) -> Triplets:
    """Read cblearn triplets (list-order, list-boolean or list-count) as anchor triplets.

    Parameters
    ----------
    path : path
        ``.npy``, ``.npz`` or delimited text (see the module docstring).
    items : path or sequence of str, optional
        Item ids: index ``i`` is ``items[i]``; for an ``.npz`` with ``item_ids``, the
        vocabulary its triplets are re-expressed over. By default the file's ``item_ids``, or
        the indices ``"0", "1", ...``.

    Returns
    -------
    Triplets
        Anchor triplets ``[anchor, near, far]``.

    Raises
    ------
    InputError
        One line naming the file, the row (``line L`` of a text file; ``row R (0-based)`` of an
        array) and the problem.
    """
    path = Path(path)
    require_file(path)
    names = None
    if path.suffix == ".npy":
        table, response, where = array_table(path, load_npy(path), "n x 3 item indices"), None, array_rows
        _require_width(path, table)
    elif path.suffix == ".npz":
        table, response, names = _read_npz(path)
        where = array_rows
    else:
        rows, where = read_delimited_rows(path)
        width = check_width(path, rows, (3, 4), where, "anchor, first, second[, response]")
        cells = np.array(rows, dtype=object)
        table = parse_integers(path, cells[:, :3], where, _COLUMNS)
        response = _text_responses(path, cells[:, 3], where) if width == 4 else None
    if names is None:
        item_ids = index_item_ids(path, table, items, where)
    else:
        check_indices(path, table, len(names), where)
    if response is not None:
        holds = _order_holds(path, response, where)
        table = np.where(holds[:, None], table, table[:, [0, 2, 1]])
    if names is not None:
        item_ids, table = named_item_ids(path, names, table, items, where)
    return Triplets(item_ids, table, trial_type=ANCHOR)


def _require_width(path: Path, table: np.ndarray) -> None:
    if table.shape[1] != 3:
        raise InputError(
            f"{path}: wrong width: expected n x 3 item indices (anchor, near, far), got shape {table.shape}"
        )


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The ``triplet`` table, the ``response`` array (or None) and the ``item_ids`` (or None) of an ``.npz``."""
    with open_npz(path, remedy=ARRAY_REMEDY) as arrays:
        if "triplet" not in arrays.files:
            raise InputError(
                f"{path}: missing array 'triplet' (cblearn's n x 3 triplets; the archive has {sorted(arrays.files)})"
            )
        table = array_table(path, arrays["triplet"], "n x 3 item indices")
        response = arrays["response"] if "response" in arrays.files else None
        names = arrays["item_ids"] if "item_ids" in arrays.files else None
    _require_width(path, table)
    if response is not None and response.shape != (len(table),):
        raise InputError(
            f"{path}: wrong width: 'response' has shape {response.shape}, expected ({len(table)},): one per triplet"
        )
    if names is not None:
        names = archive_item_ids(path, names)
    return table, response, names


def _text_responses(path: Path, cells: np.ndarray, where: Where) -> np.ndarray:
    """The response column of a text file: ``True``/``False`` throughout (boolean) or integers (count)."""
    words = np.array([str(cell).strip().lower() for cell in cells])
    if words[0] not in ("true", "false"):
        return parse_integers(path, cells[:, None], where, [_RESPONSE])[:, 0]
    bad = np.flatnonzero(~np.isin(words, ("true", "false")))
    if bad.size:
        row = int(bad[0])
        raise problem(path, where(row), f"{_RESPONSE} is not True or False: {str(cells[row])!r}")
    return words == "true"


def _order_holds(path: Path, response: np.ndarray, where: Where) -> np.ndarray:
    """Whether each triplet's order holds: a boolean response, or a count of 1 (-1: reversed)."""
    if response.dtype.kind == "b":
        return response.astype(bool)
    if response.dtype.kind not in "iuf":
        raise InputError(f"{path}: 'response' must be bool or numbers (cblearn's list-boolean or list-count)")
    count = whole_numbers(path, response.reshape(-1, 1), where, ["response"])[:, 0]
    bad = np.flatnonzero((count != 1) & (count != -1))
    if bad.size:
        row = int(bad[0])
        detail = "undecided (0)" if count[row] == 0 else str(count[row])
        raise problem(path, where(row), f"response {detail}: a list-count answer is 1 (order holds) or -1 (reversed)")
    return count == 1


def write_cblearn(path: str | Path, triplets: Triplets, response_format: str = "order") -> Path:
    """Write anchor triplets as cblearn reads them (and :func:`read_cblearn` reads them back).

    Parameters
    ----------
    path : path
        ``.npy`` (list-order only), ``.npz`` (``triplet``, ``response`` unless list-order, and
        ``item_ids``), or text: ``.csv`` comma-separated, any other suffix whitespace-separated.
    triplets : Triplets
        Anchor triplets.
    response_format : {"order", "boolean", "count"}
        ``"order"`` writes ``(anchor, near, far)``; ``"boolean"`` and ``"count"`` write each
        question with its two options in index order (cblearn's canonical form) and say with
        the response whether the first is the nearer (``True``/``1``) or not (``False``/``-1``).

    Returns
    -------
    Path
    """
    require_type(triplets, lambda kind: kind == ANCHOR, "cblearn", "anchor triplets")
    if response_format not in RESPONSE_FORMATS:
        raise InputError(
            f"cblearn response format must be one of {', '.join(RESPONSE_FORMATS)}, got {response_format!r}"
        )
    path = Path(path)
    table, response = triplets.indices, None
    if response_format != "order":
        anchor, near, far = table.T
        holds = near < far
        table = np.column_stack([anchor, np.minimum(near, far), np.maximum(near, far)])
        response = holds if response_format == "boolean" else np.where(holds, 1, -1)
    if path.suffix == ".npy" and response is not None:
        raise InputError(f"{path}: a .npy file holds list-order triplets only: use .npz or text for responses")
    arrays = {"triplet": table, "item_ids": np.asarray(triplets.item_ids, dtype=str)}
    if response is not None:
        arrays["response"] = response
    cells = table.astype(str) if response is None else np.column_stack([table.astype(str), response.astype(str)])
    return write_table(path, table, arrays, cells)


def read(path: Path, items: ItemsArg, trial_type: TrialType | None, n_ranked: int | None) -> Triplets:
    """The registry's reader (see :func:`read_cblearn`)."""
    if n_ranked is not None or (trial_type is not None and trial_type != ANCHOR):
        raise InputError(f"{path}: cblearn triplets are anchor triplets: --n-ranked and other trial types do not apply")
    return read_cblearn(path, items)
