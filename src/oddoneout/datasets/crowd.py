"""The small crowd-sourced triplet sets the ordinal-embedding field benchmarks on (as cblearn fetches them).

File names, addresses, sha256 checksums and layouts are those recorded in the source of cblearn
(``cblearn/datasets/_*_similarity.py`` and ``descr/*.rst``, https://github.com/cblearn/cblearn), which
cites the papers below; the parsing here is our own. Each set's facts and their source are in the
docstring of its parser.

=======================  ================================  ========================  =====================
name                     trials                            items                     trial type
=======================  ================================  ========================  =====================
food_similarity          190,376                           100 food images           anchor
car_similarity           7,097 most-central (x2 anchor)    60 car images             anchor
material_similarity      one per response (train + test)   100 materials             anchor
musician_similarity      213,629                           MusicSeer artist ids      anchor
nature_scene_similarity  3,355                             120 scenes                odd-one-out
vogue_cover_similarity   1,107                             60 Vogue covers           odd-one-out
=======================  ================================  ========================  =====================
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from oddoneout.datasets.base import (
    DatasetSpec,
    Parsed,
    fail,
    image_names,
    integers,
    item_stem,
    line_namer,
    lookup,
    make_triplets,
    no_extra,
    open_zip,
    osf_file,
    read_zip_member,
    split_rows,
)
from oddoneout.stimuli.fetch import RemoteFile
from oddoneout.triplets import ANCHOR, ODD_ONE_OUT

# --- food ---------------------------------------------------------------------------------------

#: cblearn's checksum of the archive. The original host (vision.cornell.edu/se3/wp-content/uploads/
#: 2014/09/food100-dataset.zip) is offline; cblearn's food_similarity.rst names the OSF mirror
#: https://osf.io/tqpmw/ of the byte-identical archive, downloaded here through OSF's /download/ path.
FOOD_ARCHIVE = osf_file(
    "food100-dataset.zip", "tqpmw", "18f5e210174dfdbf6a7b4ed7538cf8ba53fd65e0cbe193519231b8ab4ea8fc62"
)


def parse_food(paths: Mapping[str, Path]) -> Parsed:
    """Food-100 (Wilber, Kwak & Belongie 2014): ``food100-dataset/all-triplets.csv`` in the archive.

    One trial per line, three image names separated by ``;``: the target (reference), the food
    judged to taste more similar to it, the one judged less similar, i.e. already the anchor layout
    ``[reference, chosen, other]``. The 100 items are the ``.jpg`` files of
    ``food100-dataset/images/``; item ids are their names without folder and extension.
    """
    archive_path = paths["trials"]
    with open_zip(archive_path) as archive:
        text, where = read_zip_member(archive, archive_path, "food100-dataset/all-triplets.csv")
        vocabulary = image_names(archive, "food100-dataset/images/")
    rows, lines = split_rows(text, where, 3, sep=";")
    names = np.array([[item_stem(name) for name in row] for row in rows], dtype=object)
    indices = lookup(names, vocabulary, where, line_namer(lines))
    return Parsed(make_triplets(vocabulary, indices, ANCHOR, where, line_namer(lines)), no_extra(len(rows)))


# --- cars ---------------------------------------------------------------------------------------

CAR_ARCHIVE = RemoteFile(
    name="60_cars_data.zip",
    url="http://www.tml.cs.uni-tuebingen.de/team/luxburg/code_and_data/60_cars_data.zip",
    sha256="5fa2ad932d48adf5cfe36bd16a08b25fd88d1519d974908f6ccbba769f629640",
)
N_CARS = 60


def car_id(number: int) -> str:
    """Item id of car ``number`` (1-60): ``"car07"``."""
    return f"car{number:02d}"


def parse_cars(paths: Mapping[str, Path]) -> Parsed:
    """60 cars (Kleindessner & von Luxburg 2017): ``60_cars_data/survey_data.csv`` in the archive.

    A comma-separated table with a header row; by position, column 1 is the car chosen as "the
    most central object within the triple" and columns 2-4 the three cars shown (numbers 1-60),
    column 5 the response time in ms (cblearn's reading of the file). A most-central answer is
    not one of our trial types: it says that each of the two other cars is more similar to the
    central car ``a`` than to the third, so trial ``(a | b, c)`` becomes the two anchor triplets
    ``[b, a, c]`` and ``[c, a, b]`` (cblearn's ``triplets_from_mostcentral`` does the same). Both
    rows carry the trial's source row in ``extra["trial"]``, then the file's own columns by their
    header names.
    """
    archive_path = paths["trials"]
    with open_zip(archive_path) as archive:
        text, where = read_zip_member(archive, archive_path, "60_cars_data/survey_data.csv")
    records = [row for row in csv.reader(io.StringIO(text)) if any(field.strip() for field in row)]
    if len(records) < 2:
        fail(where, "no trials (a header row and at least one row expected)")
    header, body = [name.strip() for name in records[0]], records[1:]
    if len(header) < 6:
        fail(where, f"expected at least 6 columns (.., central, 3 cars shown, response time), found {len(header)}")
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            fail(where, f"line {number}: {len(row)} fields for {len(header)} columns")
    lines = list(range(2, len(body) + 2))
    name = line_namer(lines)
    numbers = integers([[row[p] for p in (1, 2, 3, 4)] for row in body], where, name)
    outside = np.flatnonzero(((numbers < 1) | (numbers > N_CARS)).any(axis=1))
    if outside.size:
        fail(where, f"{name(int(outside[0]))}: car numbers are 1-{N_CARS}, found {numbers[outside[0]].tolist()}")
    central, shown = numbers[:, 0], numbers[:, 1:]
    is_central = shown == central[:, None]
    if (is_central.sum(axis=1) != 1).any():
        row = int(np.flatnonzero(is_central.sum(axis=1) != 1)[0])
        fail(where, f"{name(row)}: the central car {central[row]} is not one of the cars shown {shown[row].tolist()}")
    others = shown[~is_central].reshape(len(shown), 2)
    first = np.column_stack([others[:, 0], central, others[:, 1]])
    second = np.column_stack([others[:, 1], central, others[:, 0]])
    # interleaved: rows 2i and 2i + 1 come from source trial i
    indices = np.stack([first, second], axis=1).reshape(-1, 3) - 1
    item_ids = [car_id(k) for k in range(1, N_CARS + 1)]
    expanded = [lines[i // 2] for i in range(len(indices))]
    triplets = make_triplets(item_ids, indices, ANCHOR, where, line_namer(expanded))
    table = _typed(pd.DataFrame(body, columns=header))
    extra = pd.concat([pd.DataFrame({"trial": np.arange(len(body))}), table], axis=1)
    extra = extra.loc[extra.index.repeat(2)].reset_index(drop=True)
    return Parsed(triplets, extra, n_source_trials=len(body))


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    """Text columns that are all numbers become numeric; the others stay text."""
    out = {}
    for column in table.columns:
        values = table[column].astype(str).str.strip()
        numbers = pd.to_numeric(values, errors="coerce")
        out[column] = numbers if numbers.notna().all() else values
    return pd.DataFrame(out, index=table.index)


# --- materials ----------------------------------------------------------------------------------

#: A GitHub branch archive: GitHub does not promise stable bytes for such archives, and the branch
#: can move; a checksum failure here means the archive changed, not necessarily the data.
MATERIAL_ARCHIVE = RemoteFile(
    name="material-appearance-similarity-master.zip",
    url="https://github.com/mlagunas/material-appearance-similarity/archive/refs/heads/master.zip",
    sha256="f0be4d573829fd5e5a7e7b332989545cbf6584eaf25e2555371703a9264f5937",
)
_MATERIAL_SPLITS = ("train", "test")


def parse_materials(paths: Mapping[str, Path]) -> Parsed:
    """Material appearance (Lagunas et al. 2019): ``data/answers_processed_{train,test}.json``.

    Each JSON file holds ``answers``, rows ``[reference, a, b]`` of 0-based material indices, and
    ``agreement``, rows ``[n_a, n_b]``: how many participants judged ``a``, and how many ``b``,
    more similar in appearance to the reference (the authors' ``losses.py`` reads a row as
    ``r, a, n``). Every response becomes one anchor trial, ``[r, a, b]`` ``n_a`` times and
    ``[r, b, a]`` ``n_b`` times, so repeated and contradictory answers keep their weight.
    Material index ``i`` is the ``i``-th ``.jpg`` of ``data/havran1_ennis_298x298_LDR/`` in the order
    of the sorted file names, as the authors' ``utils.load_imgs`` numbers the images their
    ``losses.py`` indexes with these rows (cblearn sorts the names without extension, which swaps
    ``chrome`` and ``chrome-steel``); item ids are the file names without extension.

    ``extra``: ``split`` (``train``/``test``, the authors' split), ``query`` (row of the query in
    its file), ``n_responses`` (responses to the query).
    """
    archive_path = paths["trials"]
    with open_zip(archive_path) as archive:
        vocabulary = image_names(archive, "data/havran1_ennis_298x298_LDR/")
        if not vocabulary:
            fail(archive_path, "no material images under data/havran1_ennis_298x298_LDR/ (not the expected archive?)")
        parts, extras = [], []
        for split in _MATERIAL_SPLITS:
            indices, extra = _material_split(
                *read_zip_member(archive, archive_path, f"data/answers_processed_{split}.json")
            )
            extra.insert(0, "split", split)
            parts.append(indices)
            extras.append(extra)
    indices = np.concatenate(parts)
    extra = pd.concat(extras, ignore_index=True)
    names = [f"{split} query {query}" for split, query in zip(extra["split"], extra["query"])]
    triplets = make_triplets(vocabulary, indices, ANCHOR, archive_path, lambda row: names[row])
    return Parsed(triplets, extra)


def _material_split(text: str, where: str) -> tuple[np.ndarray, pd.DataFrame]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(where, f"malformed JSON ({exc})")
    if not isinstance(data, dict) or "answers" not in data or "agreement" not in data:
        fail(where, "expected a JSON object with 'answers' and 'agreement'")
    answers, agreement = data["answers"], data["agreement"]
    if not isinstance(answers, list) or not isinstance(agreement, list) or len(answers) != len(agreement):
        fail(where, "'answers' and 'agreement' must be lists of the same length")
    name = lambda row: f"query {row}"  # noqa: E731
    for row, (answer, counts) in enumerate(zip(answers, agreement)):
        if not isinstance(answer, list) or len(answer) != 3 or not isinstance(counts, list) or len(counts) != 2:
            fail(where, f"{name(row)}: expected an answer [reference, a, b] and counts [n_a, n_b]")
    queries = integers(answers, where, name).reshape(-1, 3)
    counts = integers(agreement, where, name).reshape(-1, 2)
    if (counts < 0).any():
        fail(where, f"{name(int(np.flatnonzero((counts < 0).any(axis=1))[0]))}: negative response count")
    swapped = queries[:, [0, 2, 1]]
    query = np.concatenate(
        [np.repeat(np.arange(len(queries)), counts[:, 0]), np.repeat(np.arange(len(queries)), counts[:, 1])]
    )
    indices = np.concatenate([np.repeat(queries, counts[:, 0], axis=0), np.repeat(swapped, counts[:, 1], axis=0)])
    order = np.argsort(query, kind="stable")  # each query's responses together, in query order
    total = counts.sum(axis=1)
    extra = pd.DataFrame({"query": query[order], "n_responses": total[query[order]]})
    return indices[order], extra


# --- musicians ----------------------------------------------------------------------------------

MUSICIAN_RESULTS = RemoteFile(
    name="musicseer-results-2002-10-15.txt",
    url="https://www.ee.columbia.edu/~dpwe/research/musicsim/musicseer.org/results/musicseer-results-2002-10-15.txt",
    sha256="149bc77d872d35cbd139833d29b788545873c4d1160a57a59f5ad8b9507bbad0",
)


def parse_musicians(paths: Mapping[str, Path]) -> Parsed:
    """MusicSeer (Ellis et al. 2002): one judgment per line, space-separated.

    Fields (cblearn's reading): judgment id, ``S`` (survey) or ``G`` (game), user id, the target
    artist, the artist chosen as most similar to the target, and one other artist offered
    (artist ids are MusicSeer's numbers). A line has 6 fields; lines with only 5 (no other artist)
    say nothing about a comparison and are left out, as cblearn leaves them out (counted in
    ``notes``). Item ids are the artist numbers as text. ``extra``: ``judgment``, ``source``
    (``S``/``G``), ``user``.
    """
    path = paths["trials"]
    text = path.read_bytes().decode("latin-1")
    rows, lines = split_rows(text, path, (5, 6))
    kept = [i for i, row in enumerate(rows) if len(row) == 6]
    skipped = len(rows) - len(kept)
    rows, lines = [rows[i] for i in kept], [lines[i] for i in kept]
    if not rows:
        fail(path, "no line with a target, a chosen and another artist")
    name = line_namer(lines)
    artists = integers([row[3:6] for row in rows], path, name)
    judgments = integers([row[0] for row in rows], path, name)
    vocabulary = np.unique(artists)
    indices = np.searchsorted(vocabulary, artists)
    triplets = make_triplets([str(a) for a in vocabulary], indices, ANCHOR, path, name)
    extra = pd.DataFrame({"judgment": judgments, "source": [row[1] for row in rows], "user": [row[2] for row in rows]})
    notes = (f"{skipped} lines without another artist (5 fields) left out",) if skipped else ()
    return Parsed(triplets, extra, notes=notes)


# --- nature scenes and Vogue covers -------------------------------------------------------------

NATURE_VOGUE_ARCHIVE = RemoteFile(
    name="nature_and_vogue_triplets.zip",
    url="http://anttiukkonen.com/nature_and_vogue_triplets.zip",
    sha256="db4718bb742a2492dee87e94daead3070b2afa3a9174aa717be336940e47e3cc",
)


def parse_nature(paths: Mapping[str, Path]) -> Parsed:
    """Nature scenes (Heikinheimo & Ukkonen 2013): ``nature/nature_triplets.txt`` (see :func:`parse_odd_labels`)."""
    return parse_odd_labels(paths["trials"], "nature/nature_triplets.txt")


def parse_vogue(paths: Mapping[str, Path]) -> Parsed:
    """Vogue covers (Heikinheimo & Ukkonen 2013): ``vogue/vogue_triplets.txt`` (see :func:`parse_odd_labels`)."""
    return parse_odd_labels(paths["trials"], "vogue/vogue_triplets.txt")


def parse_odd_labels(archive_path: Path, suffix: str) -> Parsed:
    """Odd-one-out trials as three whitespace-separated image labels per line, the odd one last.

    cblearn reads columns ``[2, 0, 1]`` as "the odd image and two others", so the file is already
    in the SPoSE layout ``[kept, kept, odd]``. The items are the labels used, sorted; item ids are
    the labels without extension.
    """
    with open_zip(archive_path) as archive:
        text, where = read_zip_member(archive, archive_path, suffix)
    rows, lines = split_rows(text, where, 3)
    names = np.array([[item_stem(label) for label in row] for row in rows], dtype=object)
    vocabulary = sorted(set(names.ravel()))
    indices = lookup(names, vocabulary, where, line_namer(lines))
    return Parsed(make_triplets(vocabulary, indices, ODD_ONE_OUT, where, line_namer(lines)), no_extra(len(rows)))


SPECS = (
    DatasetSpec(
        name="food_similarity",
        title="Food-100: 190,376 anchor triplets over 100 food images (taste similarity, MTurk 2014)",
        files={"trials": FOOD_ARCHIVE},
        parse=parse_food,
        citation=(
            "Wilber, M. J., Kwak, I. S., & Belongie, S. J. (2014). Cost-effective HITs for relative similarity "
            "comparisons. HCOMP 2014 (arXiv:1404.3291)."
        ),
        license="copyrighted material used under the educational fair use exemption to U.S. copyright law "
        "(statement of the original project page)",
        url="https://web.archive.org/web/20250605221918/https://vision.cornell.edu/se3/projects/cost-effective-hits/",
        expected_trials=190_376,
        expected_items=100,
    ),
    DatasetSpec(
        name="car_similarity",
        title="60 cars: 7,097 most-central trials (each two anchor triplets) over 60 car images",
        files={"trials": CAR_ARCHIVE},
        parse=parse_cars,
        citation=(
            "Kleindessner, M., & von Luxburg, U. (2017). Lens depth function and k-relative neighborhood graph: "
            "versatile tools for ordinal data analysis. JMLR, 18(58), 1-52."
        ),
        license="not stated by the source; cite the paper",
        url="http://www.tml.cs.uni-tuebingen.de/team/luxburg/code_and_data/index.php",
        expected_trials=7_097,
        expected_items=N_CARS,
    ),
    DatasetSpec(
        name="material_similarity",
        title="Material appearance: anchor triplets, one per response (authors' train and test split), 100 materials",
        files={"trials": MATERIAL_ARCHIVE},
        parse=parse_materials,
        citation=(
            "Lagunas, M., Malpica, S., Serrano, A., Garces, E., Gutierrez, D., & Masia, B. (2019). A similarity "
            "measure for material appearance. ACM Transactions on Graphics, 38(4) (SIGGRAPH 2019)."
        ),
        license="not stated in the repository; cite the paper",
        url="https://github.com/mlagunas/material-appearance-similarity",
        expected_items=100,
    ),
    DatasetSpec(
        name="musician_similarity",
        title="MusicSeer: 213,629 anchor triplets over popular-music artists (survey and game, 2002)",
        files={"trials": MUSICIAN_RESULTS},
        parse=parse_musicians,
        citation=(
            "Ellis, D. P. W., Whitman, B., Berenzweig, A., & Lawrence, S. (2002). The quest for ground truth in "
            "musical artist similarity. ISMIR 2002."
        ),
        license="not stated by the source; give credit to the authors",
        url="https://labrosa.ee.columbia.edu/projects/musicsim/musicseer.org/results/",
        expected_trials=213_629,
    ),
    _NATURE := DatasetSpec(
        name="nature_scene_similarity",
        title="Nature scenes: 3,355 odd-one-out trials over 120 images",
        files={"trials": NATURE_VOGUE_ARCHIVE},
        parse=parse_nature,
        citation=(
            "Heikinheimo, H., & Ukkonen, A. (2013). The crowd-median algorithm. HCOMP 2013 (AAAI Conference on "
            "Human Computation and Crowdsourcing, Vol. 1)."
        ),
        license="not stated by the source; cite the paper",
        url="http://anttiukkonen.com/nature_and_vogue_triplets.zip",
        expected_trials=3_355,
        expected_items=120,
        group="nature_vogue",
    ),
    # the other half of the same archive: source, license and cache folder are the nature set's
    dataclasses.replace(
        _NATURE,
        name="vogue_cover_similarity",
        title="Vogue covers: 1,107 odd-one-out trials over 60 magazine covers",
        parse=parse_vogue,
        expected_trials=1_107,
        expected_items=60,
    ),
)
