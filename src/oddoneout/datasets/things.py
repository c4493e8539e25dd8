"""THINGS odd-one-out data (Hebart et al.): the 2020 test set and the 2023 full triplet data set.

Both use the 1,854 THINGS object concepts in THINGS order, named by ``items1854names.tsv``
(OSF project z2784, file ``sz2ux``; address and sha256 as recorded by cblearn's
``_things_similarity.py``, the newer version that fetches single files).

``things_similarity``: ``data1854_batch5_test10.txt`` (OSF ``sd3f7``; address and sha256 from the
same cblearn source), the 146,012 public test triplets of Hebart, Zheng, Pereira & Baker (2020).

``things_odd_one_out``: ``triplets_large_final_correctednc_correctedorder.csv`` from the THINGS-data
triplet folder (OSF project f5rn6, file ``h2smy``), the 4.70 million odd-one-out judgments of
Hebart et al. (2023). cblearn does not fetch it; its sha256 is the one pinned by a public
third-party download script (``get_data.py``: OSF ``h2smy`` ->
``68f2bbc3...f3e5``), not checked against the file here (no network). Its layout is that the
authors' MATLAB preprocessing script writes (``writetable(tab, ..., 'delimiter', '\\t')``): a
tab-separated table, header ``image1 image2 image3 choice RT noise_ceiling subject_id HIT_nr
trial_nr age gender date time dataset``, images as 1-based THINGS indices, ``choice`` the shown
position (1-3) of the odd one out, ``noise_ceiling`` 0 for the training data and 1-3 for the
repeated noise-ceiling sets. The same script derives the SPoSE files ``trainset.txt`` etc. by
moving the chosen image last, which is what :data:`~oddoneout.triplets.ODD_ONE_OUT` does here.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from oddoneout.datasets.base import DatasetSpec, Parsed, fail, integers, make_triplets, osf_file, read_bytes_table
from oddoneout.triplets import ODD_ONE_OUT

N_CONCEPTS = 1854

THINGS_ITEMS = osf_file(
    "items1854names.tsv", "sz2ux", "03dbe77972f9466ff8baa0da604d9f5104f677bf77cc602faebfa03a290fb51c"
)
THINGS_TEST_TRIPLETS = osf_file(
    "data1854_batch5_test10.txt", "sd3f7", "789fb927c87538d29e0cf294793280cf5a77d45dc5fdd87cf8c726993397adb8"
)
THINGS_TRIPLETS_2023 = osf_file(
    "triplets_large_final_correctednc_correctedorder.csv",
    "h2smy",
    "68f2bbc330b17537881f81b1aa806fc2179b7accecc3a44d54fb25ae3de7f3e5",
)

#: Position of the unique concept id in ``items1854names.tsv`` (cblearn's ``thing_id``, e.g. ``bat1``).
_ID_COLUMN = 5
#: Columns of the 2023 table that make the trial; every other column goes to ``extra``.
_TRIAL_COLUMNS = ("image1", "image2", "image3", "choice")


def read_things_items(path: Path) -> pd.DataFrame:
    """The THINGS concept table: one row per concept in THINGS order, index ``item_id``.

    ``items1854names.tsv`` is tab-separated with a header row; the unique concept id (e.g.
    ``aardvark``, ``bat1``, ``bat2``) is column 5, the word column 0 (cblearn's reading). The ids
    become the item ids; every column is kept, as text.

    Raises
    ------
    InputError
        Fewer than 6 columns, a row count other than 1,854, an empty or repeated id.
    """
    table = read_bytes_table(
        path.read_bytes(), path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE
    )
    if table.shape[1] <= _ID_COLUMN:
        fail(path, f"expected at least {_ID_COLUMN + 1} tab-separated columns, found {table.shape[1]}")
    if len(table) != N_CONCEPTS:
        fail(path, f"expected {N_CONCEPTS} concepts, found {len(table)} (wrong or modified file?)")
    ids = table.iloc[:, _ID_COLUMN].str.strip()
    if (ids == "").any():
        fail(path, f"line {int(np.flatnonzero(ids == '')[0]) + 2}: empty concept id")
    repeated = ids[ids.duplicated()].tolist()
    if repeated:
        fail(path, f"concept ids repeat: {repeated[:5]}")
    table.index = pd.Index(ids, name="item_id")
    return table


def parse_things_similarity(paths: Mapping[str, Path]) -> Parsed:
    """The 2020 test triplets: three 0-based concept indices per line, space-separated.

    Read in the SPoSE layout, the pair kept together first and the odd one out last: the layout
    of every triplet file of the SPoSE code and of the authors' 2023 derived files. cblearn's
    docstring says the first column is the odd one; a third-party reimplementation reports that
    scoring this file in the SPoSE layout with the published 49-d embedding gives the paper's
    64.6% accuracy, so the SPoSE layout is used here.
    """
    items = read_things_items(paths["items"])
    path = paths["trials"]
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    lines, rows = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3:
            fail(path, f"line {number}: expected 3 concept indices, found {len(fields)} fields")
        lines.append(number)
        rows.append(fields)
    if not rows:
        fail(path, "no trials (empty file)")
    name = lambda row: f"line {lines[row]}"  # noqa: E731
    indices = integers(rows, path, name)
    triplets = make_triplets(list(items.index), indices, ODD_ONE_OUT, path, name)
    return Parsed(triplets, pd.DataFrame(index=pd.RangeIndex(len(triplets))), items=items)


def parse_things_odd_one_out(paths: Mapping[str, Path]) -> Parsed:
    """The 2023 table (see the module docstring): odd-one-out trials in the SPoSE layout.

    The images shown are 1-based THINGS indices; ``choice`` (1-3) is the shown position of the odd
    one out, so each trial becomes ``[kept, kept, odd]`` with the kept pair in shown order. Every
    column other than ``image1-3`` and ``choice`` goes to ``extra`` unchanged (e.g.
    ``subject_id``, ``RT``, ``noise_ceiling``). The separator is a tab, or a comma when the header
    has no tab.
    """
    items = read_things_items(paths["items"])
    path = paths["trials"]
    with open(path, "rb") as handle:
        header = handle.readline()
    sep = "\t" if b"\t" in header else ","
    table = read_bytes_table(path.read_bytes(), path, sep=sep, low_memory=False)
    table.columns = [str(column).strip() for column in table.columns]
    missing = [column for column in _TRIAL_COLUMNS if column not in table.columns]
    if missing:
        fail(path, f"missing column(s) {missing}; found {list(table.columns)[:8]}")
    if table.empty:
        fail(path, "no trials")
    name = lambda row: f"line {row + 2}"  # noqa: E731
    shown = _whole_numbers(table, ["image1", "image2", "image3"], path, name) - 1
    choice = _whole_numbers(table, ["choice"], path, name)[:, 0]
    bad = np.flatnonzero((choice < 1) | (choice > 3))
    if bad.size:
        fail(path, f"{name(int(bad[0]))}: choice {choice[bad[0]]} is not a shown position 1-3 ({bad.size} such rows)")
    outside = np.flatnonzero(((shown < 0) | (shown >= N_CONCEPTS)).any(axis=1))
    if outside.size:
        row = int(outside[0])
        fail(path, f"{name(row)}: images are THINGS indices 1-{N_CONCEPTS}, found {(shown[row] + 1).tolist()}")
    indices = ODD_ONE_OUT.to_canonical(shown, choice - 1)
    triplets = make_triplets(list(items.index), indices, ODD_ONE_OUT, path, name)
    extra = table.drop(columns=list(_TRIAL_COLUMNS)).reset_index(drop=True)
    return Parsed(triplets, extra, items=items)


def _whole_numbers(table: pd.DataFrame, columns: Sequence[str], path: Path, name) -> np.ndarray:
    """Integer columns as an int64 array (fast when pandas read them as integers), else checked text."""
    values = table[list(columns)]
    if all(pd.api.types.is_integer_dtype(values[column]) for column in columns):
        return values.to_numpy(dtype=np.int64)
    return integers(values.astype(str).to_numpy(), path, name)


_CITATION_2020 = (
    "Hebart, M. N., Zheng, C. Y., Pereira, F., & Baker, C. I. (2020). Revealing the multidimensional mental "
    "representations of natural objects underlying human similarity judgements. Nature Human Behaviour, 4(11), "
    "1173-1185. https://doi.org/10.1038/s41562-020-00951-3"
)
_CITATION_2023 = (
    "Hebart, M. N., Contier, O., Teichmann, L., Rockter, A. H., Zheng, C. Y., Kidder, A., Corriveau, A., "
    "Vaziri-Pashkam, M., & Baker, C. I. (2023). THINGS-data, a multimodal collection of large-scale datasets for "
    "investigating object representations in human brain and behavior. eLife, 12, e82580. "
    "https://doi.org/10.7554/eLife.82580"
)

SPECS = (
    DatasetSpec(
        name="things_similarity",
        title="THINGS (2020): 146,012 odd-one-out test triplets over 1,854 object concepts",
        files={"trials": THINGS_TEST_TRIPLETS, "items": THINGS_ITEMS},
        parse=parse_things_similarity,
        citation=_CITATION_2020,
        license="CC BY 4.0 (Hebart, Zheng, Pereira & Baker)",
        url="https://osf.io/z2784/",
        expected_trials=146_012,
        expected_items=N_CONCEPTS,
        group="things",
    ),
    DatasetSpec(
        name="things_odd_one_out",
        title="THINGS-data (2023): about 4.70 million odd-one-out triplets over 1,854 object concepts, with raters",
        files={"trials": THINGS_TRIPLETS_2023, "items": THINGS_ITEMS},
        parse=parse_things_odd_one_out,
        citation=_CITATION_2023,
        license="not recorded here: see the OSF project https://osf.io/f5rn6/",
        url="https://osf.io/f5rn6/",
        expected_items=N_CONCEPTS,
        group="things",
    ),
)
