"""What the readers of other tools' files share: one-line errors, integer tables, index checks, item ids.

Every problem is an :class:`~oddoneout.errors.InputError` of one line that names the file, where
in it (``line L (data row R)`` of a headerless text file, both 1-based, ``R`` not counting blank
and comment lines; ``data row R`` of a CSV file with a header, 1-based after it; ``row R (0-based)``
of an array) and what is wrong.
"""

from __future__ import annotations

import csv
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from oddoneout.atomic import atomic_open
from oddoneout.errors import InputError
from oddoneout.files import read_npy
from oddoneout.triplets import ANCHOR, Ranked, Triplets, repeated_item_rows
from oddoneout.triplets.readers import ItemsArg, as_item_ids
from oddoneout.triplets.trial import TrialType

#: Names the place of row ``i`` (0-based position in the parsed table) in an error message.
Where = Callable[[int], str]
#: What an unreadable array file's error says to do.
ARRAY_REMEDY = "save the array again with numpy.save / numpy.savez, or delete it"


def problem(path: Path, where: str, text: str) -> InputError:
    """The error ``"<path>: <where>: <text>"``."""
    return InputError(f"{path}: {where}: {text}")


def array_rows(row: int) -> str:
    """The place of row ``row`` of an array file."""
    return f"row {row} (0-based)"


def text_rows(lines: Sequence[int]) -> Where:
    """Places of the rows of a text file read from the file lines ``lines`` (1-based)."""

    def where(row: int) -> str:
        return f"line {lines[row]} (data row {row + 1})"

    return where


def require_file(path: Path) -> None:
    """Raise :class:`InputError` if ``path`` is no file."""
    if not path.is_file():
        raise InputError(f"triplet file not found: {path}")


@contextmanager
def text_errors(path: Path) -> Iterator[None]:
    """Turn the failures of reading a file as text (binary content, a NUL byte) into one :class:`InputError`."""
    try:
        yield
    except (UnicodeDecodeError, csv.Error) as exc:
        reason = " ".join(str(exc).split())
        raise InputError(f"{path}: not a readable text file ({reason}); is --format right?") from None


def read_text_rows(path: Path, delimiter: str | None) -> tuple[list[list[str]], list[int]]:
    """The cells of a headerless delimited text file, blank and ``#`` comment lines left out.

    Parameters
    ----------
    path : Path
    delimiter : str or None
        ``","`` for CSV; ``None`` splits on whitespace.

    Returns
    -------
    rows : list of list of str
        Stripped cells.
    lines : list of int
        The 1-based file line of each row.
    """
    require_file(path)
    rows: list[list[str]] = []
    lines: list[int] = []
    with text_errors(path), path.open(newline="", encoding="utf-8-sig") as handle:
        if delimiter is None:
            numbered = ((number, text.split()) for number, text in enumerate(handle, start=1))
        else:
            numbered = enumerate(csv.reader(handle, delimiter=delimiter), start=1)
        for number, cells in numbered:
            cells = [cell.strip() for cell in cells]
            if not any(cells) or cells[0].startswith("#"):
                continue
            rows.append(cells)
            lines.append(number)
    if not rows:
        raise InputError(f"{path}: empty file: no trials")
    return rows, lines


def read_delimited_rows(path: Path) -> tuple[list[list[str]], Where]:
    """The rows of a text file of a table (comma-separated for ``.csv``, else whitespace) and their places."""
    rows, lines = read_text_rows(path, "," if path.suffix == ".csv" else None)
    return rows, text_rows(lines)


def write_table(
    path: Path, table: np.ndarray, arrays: dict[str, np.ndarray] | None = None, cells: np.ndarray | None = None
) -> Path:
    """Write ``table`` to a ``.npy``, ``arrays`` (when given) to a ``.npz``, else a text file.

    The text file has one row of ``cells`` (by default ``table``) a line: comma-separated for
    ``.csv``, space-separated otherwise.
    """
    if path.suffix == ".npy":
        with atomic_open(path, "wb") as handle:
            np.save(handle, table)
    elif path.suffix == ".npz" and arrays is not None:
        with atomic_open(path, "wb") as handle:
            np.savez(handle, **arrays)
    else:
        separator = "," if path.suffix == ".csv" else " "
        with atomic_open(path, "w") as handle:
            handle.writelines(separator.join(row) + "\n" for row in (table if cells is None else cells).astype(str))
    return path


def check_width(path: Path, rows: list[list[str]], widths: Sequence[int], where: Where, what: str) -> int:
    """The width every row shares, which must be one of ``widths``; else an error at the first row off it."""
    width = len(rows[0])
    for i, row in enumerate(rows):
        expected = width if width in widths else " or ".join(map(str, widths))
        if len(row) != width or width not in widths:
            raise problem(path, where(i), f"wrong width: {len(row)} columns, expected {expected} ({what})")
    return width


def parse_integers(path: Path, cells: np.ndarray, where: Where, names: Sequence[str]) -> np.ndarray:
    """Whole numbers from text cells (``"3"``, ``"3.0"``), else an error at the first bad cell.

    Parameters
    ----------
    cells : ndarray of shape (n, k), object or str
        Text cells; ``None`` or NaN for an empty cell of a table read by pandas.
    names : sequence of str
        The name of each column, used in messages.
    """
    try:
        values = np.asarray(cells, dtype=np.float64)
    except (TypeError, ValueError):  # an empty or non-numeric cell: find the first one
        values = np.empty(cells.shape, dtype=np.float64)
        for (row, column), cell in np.ndenumerate(cells):
            text = "" if cell is None else str(cell).strip()
            try:
                values[row, column] = float(text) if text else np.nan
            except ValueError:
                raise problem(path, where(row), f"{names[column]} is not an integer: {text!r}") from None
            if np.isnan(values[row, column]):
                raise problem(path, where(row), f"{names[column]} is missing (empty or NaN)")
    return whole_numbers(path, values, where, names)


def whole_numbers(path: Path, values: np.ndarray, where: Where, names: Sequence[str]) -> np.ndarray:
    """``values`` (2-d, numeric) as int64, refusing NaN and fractions at the first bad cell."""
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    if values.dtype.kind == "b" or values.dtype.kind not in "f":
        raise InputError(f"{path}: item indices must be integers, got dtype {values.dtype}")
    missing = np.argwhere(np.isnan(values))
    if missing.size:
        row, column = missing[0]
        raise problem(path, where(int(row)), f"{names[column]} is missing (NaN)")
    fractional = np.argwhere(~np.isfinite(values) | (values != np.round(values)))
    if fractional.size:
        row, column = fractional[0]
        raise problem(path, where(int(row)), f"{names[column]} is not an integer: {values[row, column]!r}")
    return values.astype(np.int64)


def column_names(width: int, first: str = "column") -> list[str]:
    """``column 0``, ``column 1``, ... (0-based, as the columns of an array)."""
    return [f"{first} {j}" for j in range(width)]


def check_indices(path: Path, indices: np.ndarray, n_items: int | None, where: Where, note: str = "") -> None:
    """Refuse negative indices, indices past the vocabulary and a row that shows an item twice."""
    limit = np.inf if n_items is None else n_items
    bad = np.argwhere((indices < 0) | (indices >= limit))
    if bad.size:
        row, column = bad[0]
        value = int(indices[row, column])
        bound = f"[0, {n_items})" if n_items is not None else "0 or more"
        raise problem(
            path, where(int(row)), f"item index {value} out of range {bound} in column {column}{note} ({len(bad)} such)"
        )
    repeated = repeated_item_rows(indices)
    if repeated.size:
        row = int(repeated[0])
        raise problem(path, where(row), f"repeated item in one trial: {indices[row].tolist()}")


def index_item_ids(path: Path, indices: np.ndarray, items: ItemsArg, where: Where, note: str = "") -> tuple[str, ...]:
    """The vocabulary of bare indices: ``items`` (index ``i`` is ``items[i]``) or ``"0" ... str(max)``.

    Also refuses out-of-range indices and repeated items (:func:`check_indices`).
    """
    item_ids = as_item_ids(items)
    check_indices(path, indices, None if item_ids is None else len(item_ids), where, note)
    if item_ids is None:
        item_ids = tuple(str(i) for i in range(int(indices.max()) + 1))
    return item_ids


def named_item_ids(
    path: Path, ids: np.ndarray, indices: np.ndarray, items: ItemsArg, where: Where
) -> tuple[tuple[str, ...], np.ndarray]:
    """Re-express trials a file gives with item names over a vocabulary.

    Parameters
    ----------
    ids : ndarray of shape (n_items_in_file,) of str
        The file's names, ``ids[k]`` for its index ``k``.
    indices : ndarray of shape (n, k), int
        The file's indices into ``ids``.
    items : item ids, optional
        The vocabulary to use; by default ``ids`` itself.

    Returns
    -------
    item_ids : tuple of str
    indices : ndarray of shape (n, k), int64
    """
    vocabulary = as_item_ids(items)
    if vocabulary is None:
        return tuple(str(i) for i in ids), indices
    position = {item: i for i, item in enumerate(vocabulary)}
    lookup = np.array([position.get(str(item), -1) for item in ids], dtype=np.int64)
    mapped = lookup[indices]
    unknown = np.argwhere(mapped < 0)
    if unknown.size:
        row, column = unknown[0]
        item = ids[indices[row, column]]
        raise problem(path, where(int(row)), f"unknown item id {str(item)!r} (not among the {len(vocabulary)} items)")
    return vocabulary, mapped


def load_npy(path: Path) -> np.ndarray:
    """A ``.npy`` array (never unpickled); a missing file is an :class:`InputError`."""
    require_file(path)
    return read_npy(path, remedy=ARRAY_REMEDY)


def archive_item_ids(path: Path, names: np.ndarray) -> np.ndarray:
    """An archive's ``item_ids``: one string per item, unique."""
    if names.ndim != 1 or names.dtype.kind not in "US":
        raise InputError(f"{path}: 'item_ids' must be a 1-d array of strings, got {names.dtype} of shape {names.shape}")
    names = names.astype(str)
    if len(set(names)) != len(names):
        raise InputError(f"{path}: 'item_ids' has duplicate ids")
    return names


def array_table(path: Path, array: np.ndarray, what: str) -> np.ndarray:
    """An array file's table: 2-d, not empty, whole numbers (errors name the row)."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise InputError(f"{path}: wrong width: expected a 2-d array ({what}), got shape {array.shape}")
    if len(array) == 0:
        raise InputError(f"{path}: empty file: no trials")
    return whole_numbers(path, array, array_rows, column_names(array.shape[1]))


def reference_type(path: Path, n_options: int, n_ranked: int | None, trial_type: TrialType | None) -> TrialType:
    """The trial type of trials with a reference and ``n_options`` options.

    ``trial_type`` wins (its width must fit); else ``n_ranked`` ranked options (2 options, 1
    ranked: the anchor triplet); else the anchor triplet when there are 2 options.
    """
    if trial_type is not None:
        if not isinstance(trial_type, Ranked):
            raise InputError(f"{path}: these files hold trials against a reference, not {trial_type.spec} trials")
        if trial_type.n_options != n_options:
            raise InputError(
                f"{path}: wrong width: {1 + n_options} columns, but {trial_type.spec} trials show "
                f"{trial_type.n_shown} items"
            )
        return trial_type
    if n_ranked is None:
        if n_options == 2:
            return ANCHOR
        raise InputError(
            f"{path}: trials of a reference and {n_options} options: say how many are ranked "
            f"(--n-ranked K, or --trial-type ranked:{n_options}:K)"
        )
    if n_options == 2 and n_ranked == 1:
        return ANCHOR
    try:
        return Ranked(n_options, n_ranked)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def require_type(triplets: Triplets, allowed: Callable[[TrialType], bool], fmt: str, wanted: str) -> None:
    """Refuse to write trials a format cannot hold."""
    if not isinstance(triplets, Triplets):
        raise InputError(f"{fmt} writer: expected Triplets, got {type(triplets).__name__}")
    if not allowed(triplets.trial_type):
        raise InputError(f"{fmt} files hold {wanted}, not {triplets.trial_type.spec} trials")
