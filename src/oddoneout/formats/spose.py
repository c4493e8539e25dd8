"""The SPoSE convention: an N x 3 array of item indices, the pair kept together first, the odd one out last.

Reading ``.npy`` and whitespace text is :func:`oddoneout.triplets.readers.read_spose_file`'s; this
module adds comma-separated ``.csv`` and the writer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from oddoneout.errors import InputError
from oddoneout.formats._common import (
    check_width,
    column_names,
    index_item_ids,
    parse_integers,
    read_text_rows,
    require_file,
    require_type,
    text_rows,
    write_table,
)
from oddoneout.triplets import ODD_ONE_OUT, Triplets
from oddoneout.triplets.readers import ItemsArg, read_spose_file
from oddoneout.triplets.trial import TrialType


def read_spose(path: str | Path, items: ItemsArg = None) -> Triplets:
    """Read odd-one-out triplets in the SPoSE convention (``.npy``, ``.csv`` or whitespace text).

    Parameters
    ----------
    path : path
    items : path or sequence of str, optional
        Item ids: index ``i`` is ``items[i]``; by default the indices.

    Returns
    -------
    Triplets
    """
    path = Path(path)
    if path.suffix != ".csv":
        return read_spose_file(path, items)
    require_file(path)
    rows, lines = read_text_rows(path, ",")
    where = text_rows(lines)
    check_width(path, rows, (3,), where, "kept, kept, odd one out")
    table = parse_integers(path, np.array(rows, dtype=object), where, column_names(3))
    return Triplets(index_item_ids(path, table, items, where), table)


def write_spose(path: str | Path, triplets: Triplets) -> Path:
    """Write odd-one-out triplets in the SPoSE convention: ``.npy``, ``.csv`` or whitespace text.

    The item ids are not part of the file: keep them in an items file (one id per line).
    """
    require_type(triplets, lambda kind: kind == ODD_ONE_OUT, "SPoSE", "odd-one-out triplets")
    path = Path(path)
    return write_table(path, triplets.indices)


def read(path: Path, items: ItemsArg, trial_type: TrialType | None, n_ranked: int | None) -> Triplets:
    """The registry's reader (see :func:`read_spose`)."""
    if n_ranked is not None or (trial_type is not None and trial_type != ODD_ONE_OUT):
        raise InputError(
            f"{path}: SPoSE files hold odd-one-out triplets: --n-ranked and other trial types do not apply"
        )
    return read_spose(path, items)
