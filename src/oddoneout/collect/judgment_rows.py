"""The columns of a stored judgment (store format 3, and formats 1 and 2's), and trials and answers to rows and back.

One row holds one trial of any trial type. The first three shown items, the choice and the first
three probabilities have columns of their own (every trial type shows at least three items);
what a trial shows beyond that goes into JSON lists (``more_items``, ``more_probs``), and a
ranking of several options into ``ranking``. Format 1 (odd-one-out only) had every column but
those of :data:`ADDED_IN_2` and :data:`ADDED_IN_3`: its rows read as format-3 rows with their
values. Format 2 added the trial types' columns (:data:`ADDED_IN_2`); format 3 the usage of each
request (:data:`ADDED_IN_3`: prompt and completion tokens, images sent, attempts), which the rows
of older files lack (``NULL``: not known).

The store (:mod:`oddoneout.collect.store`) owns the files; this module owns the columns: their
names and types (:data:`SCHEMA`), how :func:`answer_rows` lays a design's trials and their
answers into them, and how :func:`triplets_from_table` and :func:`answers_from_frame` read them
back.
"""

from __future__ import annotations

import json
from itertools import repeat
from operator import attrgetter
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from oddoneout.agents.base import Answer
from oddoneout.collect.designs import TripletDesign
from oddoneout.errors import InputError
from oddoneout.triplets import ODD_ONE_OUT, TrialType, Triplets, trial_type_from_spec

#: Columns of the ``judgments`` table and of the Parquet export, with their Arrow types.
SCHEMA = pa.schema(
    [
        ("design", pa.string()),
        ("triplet_index", pa.int64()),
        ("ordering", pa.int64()),
        ("repeat", pa.int64()),
        ("item_0", pa.string()),
        ("item_1", pa.string()),
        ("item_2", pa.string()),
        ("status", pa.string()),
        ("choice", pa.int64()),
        ("odd_one_out", pa.string()),
        ("prob_0", pa.float64()),
        ("prob_1", pa.float64()),
        ("prob_2", pa.float64()),
        ("agent", pa.string()),
        ("model", pa.string()),
        ("prompt_hash", pa.string()),
        ("raw_answer", pa.string()),
        ("error", pa.string()),
        ("tokens", pa.int64()),
        ("started_at", pa.string()),
        ("finished_at", pa.string()),
        ("latency_s", pa.float64()),
        # format 2
        ("trial_type", pa.string()),
        ("more_items", pa.string()),
        ("ranking", pa.string()),
        ("more_probs", pa.string()),
        # format 3
        ("tokens_in", pa.int64()),
        ("tokens_out", pa.int64()),
        ("images", pa.int64()),
        ("attempts", pa.int64()),
    ]
)
COLUMNS = tuple(SCHEMA.names)
#: The columns format 2 added, and the value every row of a format-1 store or export has in each.
ADDED_IN_2: dict[str, Any] = {"trial_type": ODD_ONE_OUT.spec, "more_items": None, "ranking": None, "more_probs": None}
#: The columns format 3 added (the usage of a judgment's requests), and their value in every row of an older file.
ADDED_IN_3: dict[str, Any] = {"tokens_in": None, "tokens_out": None, "images": None, "attempts": None}
#: The columns each format added, by format version, with the value older files' rows read with.
ADDED: dict[int, dict[str, Any]] = {2: ADDED_IN_2, 3: ADDED_IN_3}
#: The columns of format 1, in their order (format 2 appends :data:`ADDED_IN_2`).
COLUMNS_1 = tuple(name for name in COLUMNS if name not in ADDED_IN_2 and name not in ADDED_IN_3)
#: The columns of format 2, in their order (format 3 appends :data:`ADDED_IN_3`).
COLUMNS_2 = tuple(name for name in COLUMNS if name not in ADDED_IN_3)


def added_in(name: str) -> int:
    """The format version that added column ``name`` (1: a column of the first format)."""
    return next((version for version, added in ADDED.items() if name in added), 1)


def format_of_columns(columns: Sequence[str]) -> int:
    """The format version of a judgments table or export with ``columns``: the newest whose columns it has."""
    return max((version for version, added in ADDED.items() if set(added) <= set(columns)), default=1)


#: The columns of a trial's key.
KEY_COLUMNS = ("design", "triplet_index", "ordering", "repeat")
#: The columns :func:`triplets_from_table` reads.
ANSWER_COLUMNS = (
    *KEY_COLUMNS,
    "trial_type",
    "item_0",
    "item_1",
    "item_2",
    "more_items",
    "status",
    "choice",
    "odd_one_out",
    "ranking",
    "prob_0",
    "prob_1",
    "prob_2",
    "more_probs",
)
#: Shown positions with a column of their own (item, probability); the rest go into JSON lists.
_OWN_COLUMNS = 3
_ANSWER_FIELDS = attrgetter("status", "choice", "probs", "raw", "error", "tokens", "ranking")
_USAGE_FIELDS = attrgetter(*ADDED_IN_3)


def _json_list(values: Sequence[Any]) -> str:
    return json.dumps(list(values), separators=(",", ":"))


def answer_rows(design: TripletDesign, answers: Sequence[Answer], where: str) -> dict[str, Sequence[Any]]:
    """The columns a design's trials and their answers fill, one value per trial.

    Parameters
    ----------
    design : TripletDesign
        The trials answered (``answers[i]`` answers row ``i``).
    answers : sequence of Answer
        One per trial (checked to be :class:`Answer` objects of the right number by the caller).
    where : str
        Names the store in errors.

    Returns
    -------
    dict of str to sequence
        Values of ``item_0..2``, ``status``, ``choice``, ``odd_one_out``, ``prob_0..2``,
        ``raw_answer``, ``error``, ``tokens``, ``trial_type``, ``more_items``, ``ranking``,
        ``more_probs`` and the usage columns of :data:`ADDED_IN_3`.

    Raises
    ------
    InputError
        When an ``ok`` answer's choice, ranking or probabilities do not fit the design's trial
        type (a shown position it cannot choose, another number of ranked options or of
        probabilities).
    """
    kind, n = design.trial_type, len(design)
    statuses, choices, probs, raws, errors, tokens, rankings = zip(*map(_ANSWER_FIELDS, answers))
    chosen = np.fromiter((-1 if c is None else c for c in choices), dtype=np.int64, count=n)
    ok = chosen >= 0
    lowest = 0 if kind == ODD_ONE_OUT else 1  # the reference, at position 0, is never chosen
    bad = np.flatnonzero(ok & ((chosen < lowest) | (chosen >= kind.n_shown)))
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"{where}: answer {i} chooses shown position {chosen[i]}, which {kind.spec} trials cannot choose "
            f"(positions {lowest} to {kind.n_shown - 1})"
        )
    items = design.items
    odd = items[np.arange(n), np.maximum(chosen, 0)].tolist()
    columns: dict[str, Sequence[Any]] = {
        "item_0": items[:, 0].tolist(),
        "item_1": items[:, 1].tolist(),
        "item_2": items[:, 2].tolist(),
        "status": statuses,
        "choice": choices,
        "odd_one_out": [o if c is not None else None for c, o in zip(choices, odd)],
        "raw_answer": raws,
        "error": errors,
        "tokens": tokens,
        "trial_type": repeat(kind.spec, n),
        "more_items": repeat(None, n),
        "ranking": [_ranking_text(kind, c, r, i, where) for i, (c, r) in enumerate(zip(choices, rankings))],
    }
    if kind.n_shown > _OWN_COLUMNS:
        columns["more_items"] = [_json_list(row) for row in items[:, _OWN_COLUMNS:].tolist()]
    shown_probs = [None if p is None else _probs(kind, p, i, where) for i, p in enumerate(probs)]
    blank = (None,) * kind.n_shown
    per_position = list(zip(*(blank if p is None else p for p in shown_probs)))
    for p in range(_OWN_COLUMNS):
        columns[f"prob_{p}"] = per_position[p]
    extra = [None if p is None else _json_list(p[_OWN_COLUMNS:]) for p in shown_probs]
    columns["more_probs"] = extra if kind.n_shown > _OWN_COLUMNS else repeat(None, n)
    columns.update(zip(ADDED_IN_3, zip(*map(_USAGE_FIELDS, answers))))
    return columns


def _ranking_text(kind: TrialType, choice: int | None, ranking: Sequence[int] | None, i: int, where: str) -> str | None:
    """The ``ranking`` column of one answer: the JSON list of ranked positions for types ranking several options."""
    if choice is None:
        return None
    if kind.n_ranked == 1:
        if ranking is not None and tuple(ranking) != (choice,):
            raise InputError(f"{where}: answer {i} ranks {list(ranking)}, but a {kind.spec} trial makes one choice")
        return None
    if ranking is None or len(ranking) != kind.n_ranked:
        got = "no ranking" if ranking is None else f"{len(ranking)} ranked options"
        raise InputError(
            f"{where}: answer {i} to a {kind.spec} trial needs a ranking of {kind.n_ranked} options, got {got}"
        )
    if min(ranking) < 1 or max(ranking) >= kind.n_shown:
        raise InputError(f"{where}: answer {i} ranks {list(ranking)}: options are shown at 1 to {kind.n_shown - 1}")
    return _json_list(ranking)


def _probs(kind: TrialType, probs: Sequence[float], i: int, where: str) -> tuple[float, ...]:
    if len(probs) != kind.n_shown:
        raise InputError(f"{where}: answer {i} has {len(probs)} probabilities, not {kind.n_shown}")
    return tuple(float(p) for p in probs)


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table[name].to_numpy(zero_copy_only=False)


def _json_rows(texts: np.ndarray, width: int, what: str, where: str, rows: np.ndarray) -> list[list[Any]]:
    """Decode one JSON list of ``width`` values per row; an InputError naming the first bad row."""
    decoded = []
    for text, row in zip(texts, rows):
        try:
            values = json.loads(text) if text is not None else None
        except (TypeError, ValueError):
            values = None
        if not isinstance(values, list) or len(values) != width:
            raise InputError(f"{where}: judgment {int(row)} has a malformed {what} ({text!r}): expected {width} values")
        decoded.append(values)
    return decoded


def shown_items(table: pa.Table, kind: TrialType, where: str) -> np.ndarray:
    """The shown item ids of rows of one trial type, shape ``(n, kind.n_shown)``."""
    first = np.column_stack([_column(table, f"item_{p}").astype(str) for p in range(_OWN_COLUMNS)])
    if kind.n_shown == _OWN_COLUMNS:
        return first
    width = kind.n_shown - _OWN_COLUMNS
    more = _json_rows(_column(table, "more_items"), width, "more_items", where, np.arange(len(first)))
    return np.column_stack([first, np.array(more, dtype=str).reshape(len(first), -1)])


def trial_types_of(table: pa.Table) -> list[TrialType]:
    """The trial types of a table's rows, in the order they first appear."""
    specs = pd.unique(_column(table, "trial_type").astype(str))
    return [trial_type_from_spec(spec) for spec in specs]


def triplets_from_table(table: pa.Table, item_ids: Sequence[str] | None, where: str) -> list[Triplets]:
    """The ``ok`` judgments of a table with :data:`ANSWER_COLUMNS`, one :class:`Triplets` per trial type.

    Parameters
    ----------
    table : pyarrow.Table
        Judgments in the order the triplets keep (rows are numbered in errors in this order).
    item_ids : sequence of str or None
        The vocabulary; ``None``: the sorted unique ids of every row.
    where : str
        Names the file in errors.

    Returns
    -------
    list of Triplets
        Over one vocabulary, in the order the trial types first appear among the ``ok`` rows;
        empty when no row is ``ok``. Soft labels (reordered like the items) for a trial type
        with one choice per trial when each of its ``ok`` judgments has probabilities.

    Raises
    ------
    InputError
        For an ``ok`` judgment without a choice, with a choice or ranking its trial type cannot
        make, naming another chosen item than its choice, or using an item outside the vocabulary.
    """
    if item_ids is None:
        ids: set[str] = set()
        for kind in trial_types_of(table):
            of_kind = table.filter(pa.array(_column(table, "trial_type").astype(str) == kind.spec))
            ids.update(np.unique(shown_items(of_kind, kind, where)).tolist())
        item_ids = sorted(ids)
    ok = np.flatnonzero(_column(table, "status").astype(str) == "ok")
    if not ok.size:
        return []
    table = table.take(pa.array(ok))
    vocabulary = pd.Index(list(item_ids))
    parts = []
    for kind in trial_types_of(table):
        rows = np.flatnonzero(_column(table, "trial_type").astype(str) == kind.spec)
        parts.append(_part(table.take(pa.array(rows)), ok[rows], kind, vocabulary, where))
    return parts


def _part(table: pa.Table, rows: np.ndarray, kind: TrialType, vocabulary: pd.Index, where: str) -> Triplets:
    """The ``ok`` judgments of one trial type (``rows``: their numbers in the table read) as Triplets."""
    items = shown_items(table, kind, where)
    if table["choice"].null_count:
        raise InputError(f"{where}: an 'ok' judgment has no choice")
    choice = table["choice"].to_numpy().astype(np.int64)
    lowest = 0 if kind == ODD_ONE_OUT else 1
    if np.any((choice < lowest) | (choice >= kind.n_shown)):
        allowed = "0, 1 or 2" if kind == ODD_ONE_OUT else f"1 to {kind.n_shown - 1}"
        raise InputError(f"{where}: choices of {kind.spec} trials must be {allowed}")
    odd = _column(table, "odd_one_out").astype(str)
    mismatch = np.flatnonzero(items[np.arange(len(items)), choice] != odd)
    if mismatch.size:
        row = int(rows[mismatch[0]])
        raise InputError(f"{where}: judgment {row} names odd one out {str(odd[mismatch[0]])!r}, not the chosen item")
    answer = choice
    if kind.n_ranked > 1:
        answer = np.array(_json_rows(_column(table, "ranking"), kind.n_ranked, "ranking", where, rows), dtype=np.int64)
        differ = np.flatnonzero(answer[:, 0] != choice)
        if differ.size:
            first = differ[0]
            raise InputError(
                f"{where}: judgment {int(rows[first])} ranks {answer[first].tolist()} but chose {choice[first]}"
            )
    indices = vocabulary.get_indexer(items.ravel()).reshape(items.shape)
    if (indices < 0).any():
        raise InputError(f"{where}: item {str(items[indices < 0][0])!r} is not in the recorded vocabulary")
    probs = None
    columns = [table[f"prob_{p}"] for p in range(_OWN_COLUMNS)]
    if kind.supports_soft_labels and all(column.null_count == 0 for column in columns):
        shown = np.column_stack([column.to_numpy() for column in columns])
        if kind.n_shown > _OWN_COLUMNS and table["more_probs"].null_count == 0:
            more = _json_rows(_column(table, "more_probs"), kind.n_shown - _OWN_COLUMNS, "more_probs", where, rows)
            probs = kind.to_canonical(np.column_stack([shown, np.array(more, dtype=np.float64)]), answer)
        elif kind.n_shown == _OWN_COLUMNS:
            probs = kind.to_canonical(shown, answer)
    try:
        return Triplets(tuple(vocabulary), kind.to_canonical(indices, answer), probs, kind)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from exc


def answers_from_frame(frame: pd.DataFrame) -> list[Answer]:
    """The answers stored in a frame of judgments (:meth:`TripletStore.judgments`), row by row."""

    def value(v: Any) -> Any:
        return None if v is None or (not isinstance(v, (list, tuple, str)) and pd.isna(v)) else v

    answers = []
    for r in frame.itertuples(index=False):
        probs = None
        if value(r.prob_0) is not None:
            probs = (float(r.prob_0), float(r.prob_1), float(r.prob_2))
            if value(r.more_probs) is not None:
                probs += tuple(float(p) for p in json.loads(r.more_probs))
        tokens = value(r.tokens)
        usage = {name: value(getattr(r, name, None)) for name in ADDED_IN_3}
        answers.append(
            Answer(
                None if value(r.choice) is None else int(r.choice),
                r.status,
                probs,
                value(r.raw_answer),
                value(r.error),
                None if tokens is None else int(tokens),
                None if value(r.ranking) is None else tuple(json.loads(r.ranking)),
                **{name: None if count is None else int(count) for name, count in usage.items()},
            )
        )
    return answers
