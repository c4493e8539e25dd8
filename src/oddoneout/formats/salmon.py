"""salmon's ``responses.csv``: anchor triplets answered in salmon's crowdsourcing app.

salmon (stsievert/salmon) shows a *head* item above two options, *left* and *right*, and asks
which option is more similar to the head. Its ``responses.csv`` export has one row per answer:
``head``, ``left``, ``right`` and ``winner`` (the chosen option, one of left and right) as
0-based indices into the experiment's targets, ``loser`` (the other option), and columns about
the answer (``puid``: the participant, ``response_time``, ``network_latency``, ``sampler`` or,
in older versions, ``alg_ident``: the sampler that chose the query, ``score``,
``time_received``, ``datetime_received``, ...) and about the targets (``head_html``,
``head_filename``, ... for each of head, left, right, winner and loser).

An answer is an anchor triplet (:data:`~oddoneout.triplets.ANCHOR`): ``[head, winner, loser]``.
The ``*_filename`` columns name the items (the target's file name, or its text); without them
the items are the indices. Every other column is kept, row by row, in
:attr:`SalmonResponses.columns`, and written back by :func:`write_salmon`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from oddoneout.atomic import atomic_open
from oddoneout.errors import InputError
from oddoneout.formats._common import (
    check_indices,
    index_item_ids,
    named_item_ids,
    parse_integers,
    problem,
    require_file,
    require_type,
    text_errors,
)
from oddoneout.triplets import ANCHOR, Triplets
from oddoneout.triplets.readers import ItemsArg
from oddoneout.triplets.trial import TrialType

#: The columns every responses.csv has: item indices of the query and the answer.
INDEX_COLUMNS = ("head", "left", "right", "winner")
#: The option not chosen (salmon adds it to every answer; optional here).
LOSER = "loser"
#: ``<role>_filename`` names the item in that role.
NAME_SUFFIX = "_filename"
_ROLES = (*INDEX_COLUMNS, LOSER)
_NAME_COLUMNS = tuple(role + NAME_SUFFIX for role in _ROLES)
#: Columns kept as text even when they look like numbers (a participant id "0042" stays "0042").
TEXT_COLUMNS = ("puid", "sampler", "alg_ident")


def _data_row(row: int) -> str:
    return f"data row {row + 1}"


@dataclass(frozen=True, eq=False)
class SalmonResponses:
    """The answers of a salmon ``responses.csv``: anchor triplets and the file's other columns.

    Parameters
    ----------
    triplets : Triplets
        Anchor triplets ``[head, winner, loser]``, one per answer.
    columns : pandas.DataFrame
        Every other column of the file (participant, response time, sampler, ...), one row per
        answer in the order of ``triplets``; the index columns and the ``*_filename`` names
        are not among them (they are the triplets' indices and item ids).
    winner_left : ndarray of shape (n,), bool
        Whether the winner was shown on the left.
    """

    triplets: Triplets
    columns: pd.DataFrame
    winner_left: np.ndarray

    def __post_init__(self) -> None:
        require_type(self.triplets, lambda kind: kind == ANCHOR, "salmon", "anchor triplets")
        n = len(self.triplets)
        columns = self.columns.reset_index(drop=True)
        reserved = [name for name in columns.columns if name in _ROLES or name in _NAME_COLUMNS]
        if reserved:
            raise InputError(f"salmon columns {reserved} come from the triplets: leave them out of `columns`")
        winner_left = np.asarray(self.winner_left, dtype=bool).reshape(-1)
        if len(columns) != n or len(winner_left) != n:
            raise InputError(
                f"salmon responses: {n} triplets, {len(columns)} rows of columns, {len(winner_left)} sides"
            )
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "winner_left", winner_left)

    def __len__(self) -> int:
        return len(self.triplets)

    def subset(self, rows: np.ndarray) -> SalmonResponses:
        """The answers at ``rows`` (an index or boolean array), with their columns."""
        rows = np.arange(len(self))[rows]
        return SalmonResponses(self.triplets.subset(rows), self.columns.iloc[rows], self.winner_left[rows])


def read_salmon(path: str | Path, items: ItemsArg = None) -> SalmonResponses:
    """Read a salmon ``responses.csv``.

    Parameters
    ----------
    path : path
        The CSV file (a header row, then one row per answer).
    items : path or sequence of str, optional
        The vocabulary. When the file names its items (``head_filename``, ``left_filename``
        and ``right_filename``), the triplets are re-expressed over it; otherwise item index
        ``i`` is ``items[i]`` (salmon's target ``i``). By default: the names the file gives, in
        index order, or the indices ``"0", "1", ...``.

    Returns
    -------
    SalmonResponses

    Raises
    ------
    InputError
        One line naming the file, the data row (1-based, after the header) and the problem: a
        missing column, an empty or non-integer index, an index out of range, a repeated item,
        a winner that is neither left nor right, a loser that is not the other option, an item
        id not among ``items``, an index named two ways, an empty file.
    """
    path = Path(path)
    require_file(path)
    text_columns = {name: str for name in (*_ROLES, *_NAME_COLUMNS, *TEXT_COLUMNS)}
    _check_widths(path)
    try:
        frame = pd.read_csv(path, dtype=text_columns, index_col=False)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file: no header and no responses") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        raise InputError(f"{path}: not a readable CSV file ({reason})") from None
    missing = [name for name in INDEX_COLUMNS if name not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: line 1 (header): missing column(s) {', '.join(missing)} "
            f"(a salmon responses.csv has {', '.join(INDEX_COLUMNS)})"
        )
    if frame.empty:
        raise InputError(f"{path}: empty file: a header and no responses")
    roles = [name for name in _ROLES if name in frame.columns]
    values = parse_integers(path, frame[roles].to_numpy(object), _data_row, roles)
    shown, winner = values[:, :3], values[:, 3]
    named = all(role + NAME_SUFFIX in frame.columns for role in ("head", "left", "right"))
    if named:
        check_indices(path, shown, None, _data_row)
    else:
        item_ids = index_item_ids(path, shown, items, _data_row)
    head, left, right = shown.T
    not_an_option = np.flatnonzero((winner != left) & (winner != right))
    if not_an_option.size:
        row = int(not_an_option[0])
        raise problem(
            path, _data_row(row), f"winner {winner[row]} is neither left ({left[row]}) nor right ({right[row]})"
        )
    loser = np.where(winner == left, right, left)
    if LOSER in roles:
        stated = values[:, roles.index(LOSER)]
        wrong = np.flatnonzero(stated != loser)
        if wrong.size:
            row = int(wrong[0])
            raise problem(path, _data_row(row), f"loser {stated[row]} is not the option not chosen ({loser[row]})")
    canonical = np.column_stack([head, winner, loser])
    if named:
        used, names = _item_names(path, frame, roles, values)
        item_ids, canonical = named_item_ids(path, names, np.searchsorted(used, canonical), items, _data_row)
    dropped = [name for name in frame.columns if name in _ROLES or name in _NAME_COLUMNS]
    return SalmonResponses(
        Triplets(item_ids, canonical, trial_type=ANCHOR), frame.drop(columns=dropped), winner == left
    )


def _check_widths(path: Path) -> None:
    """Refuse a data row with more or fewer fields than the header (pandas would shift or pad it)."""
    with text_errors(path), path.open(newline="", encoding="utf-8-sig") as handle:
        records = csv.reader(handle)
        header = next(records, None)
        for row, record in enumerate(record for record in records if record):  # blank lines are no rows
            if len(record) != len(header):
                raise problem(
                    path,
                    f"{_data_row(row)} (line {records.line_num})",
                    f"wrong width: {len(record)} fields, the header has {len(header)}",
                )


def _item_names(path: Path, frame: pd.DataFrame, roles: list[str], values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The item indices the file uses (sorted) and the name its ``*_filename`` columns give each.

    Raises
    ------
    InputError
        At the first data row with a missing name, or an index or a name given two ways.
    """
    parts = [
        pd.DataFrame(
            {
                "row": np.arange(len(frame)),
                "order": k,
                "column": role + NAME_SUFFIX,
                "index": values[:, k],
                "name": frame[role + NAME_SUFFIX].to_numpy(object),
            }
        )
        for k, role in enumerate(roles)
        if role + NAME_SUFFIX in frame.columns
    ]
    pairs = pd.concat(parts).sort_values(["row", "order"], kind="stable").reset_index(drop=True)
    missing = pairs.index[pairs["name"].isna()]
    if len(missing):
        first = pairs.loc[missing[0]]
        raise problem(path, _data_row(int(first["row"])), f"{first['column']} is missing (empty or NaN)")
    pairs["name"] = pairs["name"].astype(str)
    for key, value, what in (
        ("index", "name", "item index {key} is named {value!r}"),
        ("name", "index", "item {key!r} has index {value}"),
    ):
        first = pairs.drop_duplicates(key).set_index(key)
        clash = pairs.index[pairs[value].to_numpy() != first.loc[pairs[key], value].to_numpy()]
        if len(clash):
            bad = pairs.loc[clash[0]]
            earlier = first.loc[bad[key]]
            raise problem(
                path,
                _data_row(int(bad["row"])),
                f"{what.format(key=bad[key], value=bad[value])} in {bad['column']}, but "
                f"{what.format(key=bad[key], value=earlier[value])} in {earlier['column']} of "
                f"{_data_row(int(earlier['row']))}",
            )
    first = pairs.drop_duplicates("index").sort_values("index")
    return first["index"].to_numpy(np.int64), first["name"].to_numpy(object)


def write_salmon(path: str | Path, responses: SalmonResponses | Triplets) -> Path:
    """Write a salmon ``responses.csv`` that :func:`read_salmon` (and salmon's own tools) read back.

    Columns: ``head``, ``left``, ``right``, ``winner``, ``loser`` (indices into the triplets'
    item ids), then the kept :attr:`SalmonResponses.columns` in their order, then
    ``head_filename`` ... ``loser_filename``: the item ids, so the file names its items. The
    file is written atomically.

    Parameters
    ----------
    path : path
    responses : SalmonResponses or Triplets
        Anchor triplets, with or without the other columns. Plain triplets show the option
        with the lower index on the left.

    Returns
    -------
    Path
    """
    if isinstance(responses, Triplets):
        require_type(responses, lambda kind: kind == ANCHOR, "salmon", "anchor triplets")
        head, winner, loser = responses.indices.T
        responses = SalmonResponses(responses, pd.DataFrame(index=range(len(responses))), winner < loser)
    triplets = responses.triplets
    head, winner, loser = triplets.indices.T
    on_left = responses.winner_left
    indices = {
        "head": head,
        "left": np.where(on_left, winner, loser),
        "right": np.where(on_left, loser, winner),
        "winner": winner,
        "loser": loser,
    }
    ids = np.asarray(triplets.item_ids, dtype=object)
    names = pd.DataFrame({role + NAME_SUFFIX: ids[indices[role]] for role in _ROLES})
    table = pd.concat([pd.DataFrame(indices), responses.columns, names], axis=1)
    path = Path(path)
    with atomic_open(path, "w", newline="") as handle:
        table.to_csv(handle, index=False)
    return path


def read(path: Path, items: ItemsArg, trial_type: TrialType | None, n_ranked: int | None) -> Triplets:
    """The triplets of a responses.csv (the registry's reader; see :func:`read_salmon`)."""
    if n_ranked is not None or (trial_type is not None and trial_type != ANCHOR):
        raise InputError(f"{path}: salmon answers are anchor triplets: --n-ranked and other trial types do not apply")
    return read_salmon(path, items).triplets
