"""The store and export of format 2 (every trial type) and the format-1 files older versions wrote.

tests/golden/v1_store.sqlite and v1_export.parquet were written by the code of commit 24ea7b4
(tests/golden/make_v1_store.py), which also recorded the hashes of the triplets it read from them.
"""

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from oddoneout.agents.base import Answer
from oddoneout.agents.simulated import SimulatedAgent
from oddoneout.collect.designs import listed_design, random_design, repeated_design
from oddoneout.collect.judgment_rows import ADDED_IN_2, ADDED_IN_3, COLUMNS, COLUMNS_1, answers_from_frame
from oddoneout.collect.runner import collect
from oddoneout.collect.store import (
    TripletStore,
    export_record,
    read_judgments,
    read_judgments_as_triplets,
    read_trial_set,
    read_trial_types,
    utc_now,
)
from oddoneout.config.sections import EmbeddingSettings
from oddoneout.errors import InputError
from oddoneout.pipeline.fit import fit_embedding
from oddoneout.provenance import format_version
from oddoneout.triplets import ANCHOR, ODD_ONE_OUT, Ranked, TrialSet, Triplets, load_triplets

GOLDEN = Path(__file__).parent / "golden"
EXPECTED = json.loads((GOLDEN / "v1_expected.json").read_text())
ITEMS = [f"item{i:02d}" for i in range(12)]
RANKED = Ranked(4, 2)


@pytest.fixture
def v1_store(tmp_path):
    """A copy of the committed format-1 store (opening a store may write beside it)."""
    path = tmp_path / "v1.sqlite"
    shutil.copy(GOLDEN / "v1_store.sqlite", path)
    return path


@pytest.fixture
def features():
    return np.random.default_rng(5).gamma(1.0, 1.0, size=(len(ITEMS), 3))


def _columns(path):
    with sqlite3.connect(path) as connection:
        return [row[1] for row in connection.execute("PRAGMA table_info(judgments)")]


def _meta(path):
    with sqlite3.connect(path) as connection:
        return dict(connection.execute("SELECT key, value FROM meta"))


# ---------------------------------------------------------------------------- format 1 read back
def test_format_1_store_and_export_read_as_the_version_that_wrote_them(v1_store):
    assert _columns(v1_store) == list(COLUMNS_1) and _meta(v1_store)["format_version"] == "1"
    for path in (v1_store, GOLDEN / "v1_export.parquet"):
        triplets = read_judgments_as_triplets(path)
        assert triplets.trial_type == ODD_ONE_OUT and len(triplets) == EXPECTED["n_ok"]
        assert triplets.hash() == EXPECTED["triplets_hash"]
        for design, expected in EXPECTED["design_hashes"].items():
            assert read_judgments_as_triplets(path, design=design).hash() == expected
        frame = read_judgments(path)
        assert list(frame.columns) == list(COLUMNS) and len(frame) == EXPECTED["n_judgments"]
        assert (frame["trial_type"] == "odd_one_out").all() and frame["more_items"].isna().all()
        assert read_trial_types(path) == {
            "listed": ["odd_one_out"],
            "random": ["odd_one_out"],
            "repeats": ["odd_one_out"],
        }
    assert load_triplets(GOLDEN / "v1_export.parquet").hash() == EXPECTED["export_triplets_hash"]
    record = export_record(GOLDEN / "v1_export.parquet")
    assert record["format_version"] == 1 and set(record["trial_types"].values()) == {"odd_one_out"}


@pytest.mark.filterwarnings("ignore::oddoneout.errors.FitWarning")
def test_format_1_files_fit_as_their_triplets(v1_store):
    settings = EmbeddingSettings(n_dims=4, l1=0.01, max_epochs=4, batch_size=64)
    from_store = fit_embedding(read_judgments_as_triplets(v1_store), settings, seed=0).embedding
    from_export = fit_embedding(load_triplets(GOLDEN / "v1_export.parquet"), settings, seed=0).embedding
    assert from_store.n_dims > 0 and np.array_equal(from_store.weights, from_export.weights)


def test_a_format_1_store_opened_for_writing_stays_format_1(v1_store, tmp_path, features):
    before = _meta(v1_store)
    agent = SimulatedAgent(features, ITEMS, "sim", model="simulated-v1", seed=3, return_probs=True)
    with TripletStore.open(v1_store) as store:
        assert store.format_version == 1
        summary = collect(random_design(ITEMS, 40, seed=9, name="more"), agent, store, progress=False)
        assert summary.n_asked == 40
        with pytest.raises(InputError, match="format 1 holds odd-one-out trials only.*new store"):
            store.add(
                random_design(ITEMS, 3, seed=0, name="a", trial_type=ANCHOR), [Answer(1)] * 3, utc_now(), utc_now()
            )
        export = store.export_parquet(tmp_path / "v1.parquet")
    assert _columns(v1_store) == list(COLUMNS_1) and _meta(v1_store) == before
    # the old judgments read as before; the export of the store is a file of the current format
    assert read_judgments_as_triplets(v1_store, design="random").hash() == EXPECTED["design_hashes"]["random"]
    assert len(read_judgments_as_triplets(v1_store, design="more")) == 40
    record = export_record(export)
    assert record["format_version"] == format_version("triplets") and record["trial_types"]["more"] == "odd_one_out"
    assert pq.read_schema(export).names == list(COLUMNS)
    assert read_judgments_as_triplets(export).hash() == read_judgments_as_triplets(v1_store).hash()


def test_newer_formats_are_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    with TripletStore(path, "x", "m", ITEMS) as store:
        store.add(random_design(ITEMS, 3, seed=0), [Answer(0)] * 3, utc_now(), utc_now())
        export = store.export_parquet(tmp_path / "s.parquet")
    assert _meta(path)["format_version"] == str(format_version("triplets")) == "3"
    assert format_version("embedding") == 1
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE meta SET value = '4' WHERE key = 'format_version'")
    with pytest.raises(InputError, match="store format version 4 is newer"):
        TripletStore.open(path)
    table = pq.read_table(export)
    record = json.loads(table.schema.metadata[b"oddoneout"])
    record["format_version"] = 4
    pq.write_table(table.replace_schema_metadata({b"oddoneout": json.dumps(record).encode()}), tmp_path / "new.parquet")
    with pytest.raises(InputError, match="export format version 4 is newer"):
        read_judgments(tmp_path / "new.parquet")


# ---------------------------------------------------------------------------- format 2, every trial type
def test_anchor_and_ranked_judgments_round_trip_through_store_and_export(tmp_path, features):
    agent = SimulatedAgent(features, ITEMS, "sim", seed=1, return_probs=True)
    anchor = random_design(ITEMS, 60, seed=0, n_orderings=2, name="anchor", trial_type=ANCHOR)
    ranked = random_design(ITEMS, 50, seed=1, name="ranked", trial_type=RANKED)
    odd = random_design(ITEMS, 40, seed=2, name="odd")
    path = tmp_path / "s.sqlite"
    with TripletStore(path, "sim", "simulated", ITEMS) as store:
        collect([anchor, ranked, odd], agent, store, batch_size=16, progress=False)
        frame = store.judgments()
        export = store.export_parquet(tmp_path / "s.parquet")
    assert list(frame.columns) == list(COLUMNS) and len(frame) == 120 + 50 + 40
    rows = frame[frame["design"] == "ranked"]
    assert (rows["trial_type"] == "ranked:4:2").all()
    shown = np.column_stack(
        [rows[["item_0", "item_1", "item_2"]].to_numpy(str), [json.loads(m) for m in rows["more_items"]]]
    )
    assert np.array_equal(shown, ranked.items)
    rankings = np.array([json.loads(r) for r in rows["ranking"]])
    assert rankings.shape == (50, 2) and np.array_equal(rankings[:, 0], rows["choice"].to_numpy(int))
    assert (rankings >= 1).all() and (rankings[:, 0] != rankings[:, 1]).all()
    assert frame.loc[frame["design"] != "ranked", ["more_items", "ranking"]].isna().all().all()
    anchor_rows = frame[frame["design"] == "anchor"]
    assert set(anchor_rows["choice"]) <= {1, 2} and anchor_rows["more_probs"].isna().all()
    assert export_record(export)["trial_types"] == {"anchor": "anchor", "odd": "odd_one_out", "ranked": "ranked:4:2"}
    # every answer comes back from its row, probabilities and ranking included (what a Ray shard returns)
    for design in (anchor, ranked, odd):
        asked = agent.judge(design.shown(), keys=design.keys(), trial_type=design.trial_type)
        assert answers_from_frame(frame[frame["design"] == design.name]) == asked

    for source in (path, export):
        with pytest.raises(InputError, match="several trial types"):
            read_judgments_as_triplets(source)
        trials = read_trial_set(source)
        assert [part.trial_type for part in trials.parts] == [ANCHOR, ODD_ONE_OUT, RANKED]  # key order
        first = read_judgments_as_triplets(source, design="anchor")
        assert first.trial_type == ANCHOR and len(first) == 120 and first.probs is not None
        # anchor layout [reference, chosen, other]; soft labels are the choice rule's
        assert np.allclose(first.probs, ANCHOR.probabilities(features, first.indices))
        second = read_judgments_as_triplets(source, design="ranked")
        assert second.trial_type == RANKED and second.probs is None  # rankings have no soft labels
        ranked_rows = frame[frame["design"] == "ranked"].sort_values(["triplet_index", "ordering"])
        reference = [ITEMS.index(i) for i in ranked_rows["item_0"]]
        assert np.array_equal(second.indices[:, 0], reference)
        chosen = [ITEMS.index(i) for i in ranked_rows["odd_one_out"]]
        assert np.array_equal(second.indices[:, 1], chosen)
    mixed = load_triplets(export)  # a file of several trial types reads as a TrialSet
    assert isinstance(mixed, TrialSet) and len(mixed) == 210
    assert isinstance(load_triplets(export, design="odd"), Triplets)


@pytest.mark.filterwarnings("ignore::oddoneout.errors.FitWarning")
def test_a_store_of_several_trial_types_is_fitted_over_one_vocabulary(tmp_path, features):
    agent = SimulatedAgent(features, ITEMS, "sim", seed=1)
    with TripletStore(tmp_path / "s.sqlite", "sim", "simulated", ITEMS) as store:
        collect(
            [
                random_design(ITEMS, 150, seed=0, name="a", trial_type=ANCHOR),
                random_design(ITEMS, 150, seed=1, name="o"),
            ],
            agent,
            store,
            progress=False,
        )
    trials = read_trial_set(tmp_path / "s.sqlite")
    settings = EmbeddingSettings(n_dims=4, l1=0.01, max_epochs=5, batch_size=64)
    embedding = fit_embedding(trials, settings, seed=0).embedding
    assert embedding.item_ids == tuple(ITEMS)
    assert embedding.metadata["trial_types"] == {"anchor": 150, "odd_one_out": 150}


def test_answers_that_do_not_fit_the_trial_type_are_refused(tmp_path):
    anchor = random_design(ITEMS, 2, seed=0, trial_type=ANCHOR)
    ranked = random_design(ITEMS, 1, seed=0, name="r", trial_type=RANKED)
    with TripletStore(tmp_path / "s.sqlite", "x", "m", ITEMS) as store:
        with pytest.raises(InputError, match="answer 1 chooses shown position 0, which anchor trials cannot choose"):
            store.add(anchor, [Answer(1), Answer(0)], utc_now(), utc_now())
        with pytest.raises(InputError, match="answer 0 has 3 probabilities, not 5"):
            store.add(ranked, [Answer(1, probs=(0.0, 0.5, 0.5), ranking=(1, 2))], utc_now(), utc_now())
        with pytest.raises(InputError, match="needs a ranking of 2 options, got no ranking"):
            store.add(ranked, [Answer(1)], utc_now(), utc_now())
        with pytest.raises(InputError, match="one choice"):
            store.add(anchor, [Answer(1, ranking=(1, 2)), Answer(2)], utc_now(), utc_now())
        assert len(store) == 0
        store.add(ranked, [Answer(3, ranking=(3, 1))], utc_now(), utc_now())
        store.add(anchor, [Answer(None, "unparseable", raw="?"), Answer(2)], utc_now(), utc_now())
        # the design asked under a name as another trial type is refused
        with pytest.raises(InputError, match="stored as ranked:4:2 trials but asks anchor trials"):
            store.missing(random_design(ITEMS, 1, seed=0, name="r", trial_type=ANCHOR))
    with sqlite3.connect(tmp_path / "s.sqlite") as connection:
        connection.execute("UPDATE judgments SET ranking = '[3]' WHERE design = 'r'")
    with pytest.raises(InputError, match=r"s.sqlite: judgment 0 has a malformed ranking \('\[3\]'\)"):
        read_judgments_as_triplets(tmp_path / "s.sqlite", design="r")


def test_added_columns_are_those_format_1_lacks():
    assert COLUMNS == COLUMNS_1 + tuple(ADDED_IN_2) + tuple(ADDED_IN_3)
    assert ADDED_IN_2["trial_type"] == "odd_one_out" and set(ADDED_IN_3.values()) == {None}


def test_a_listed_design_of_ranked_trials_is_stored_as_listed(tmp_path):
    rows = [ITEMS[:5], ITEMS[5:10]]
    design = listed_design(ITEMS, rows, shuffle_order=False, trial_type=RANKED)
    with TripletStore(tmp_path / "s.sqlite", "x", "m", ITEMS) as store:
        store.add(design, [Answer(2, ranking=(2, 4)), Answer(4, ranking=(4, 3))], utc_now(), utc_now())
        assert store.missing(design).keys() == []
        assert len(store.missing(repeated_design(ITEMS, 2, 2, seed=0, trial_type=RANKED))) == 4
    triplets = read_judgments_as_triplets(tmp_path / "s.sqlite")
    names = np.array(ITEMS)[triplets.indices]
    assert names.tolist() == [
        ["item00", "item02", "item04", "item01", "item03"],
        ["item05", "item09", "item08", "item06", "item07"],
    ]


# ---------------------------------------------------------------------------- format 2, before the usage columns
@pytest.fixture
def v2_store(tmp_path):
    """A copy of the committed format-2 store (tests/golden/make_v2_store.py)."""
    path = tmp_path / "v2.sqlite"
    shutil.copy(GOLDEN / "v2_store.sqlite", path)
    return path


def test_format_2_files_read_with_their_usage_unknown(v2_store):
    assert _columns(v2_store) == [name for name in COLUMNS if name not in ADDED_IN_3]
    assert _meta(v2_store)["format_version"] == "2"
    for path in (v2_store, GOLDEN / "v2_export.parquet"):
        frame = read_judgments(path)
        assert list(frame.columns) == list(COLUMNS) and len(frame) == 54
        assert frame[list(ADDED_IN_3)].isna().all().all()
        assert frame["tokens"].tolist()[-4:-1] == [10, 20, 30] and frame["tokens"].isna().sum() == 51
        assert read_trial_types(path)["anchor"] == ["anchor"]
        assert len(read_judgments_as_triplets(path, design="random")) == 40
    assert export_record(GOLDEN / "v2_export.parquet")["format_version"] == 2


def test_a_format_2_store_opened_for_writing_stays_format_2(v2_store, tmp_path):
    before = _meta(v2_store)
    with TripletStore.open(v2_store) as store:
        assert store.format_version == 2
        design = random_design(ITEMS, 2, seed=5, name="more")
        answers = [Answer(0, tokens=9, tokens_in=7, tokens_out=2, images=3, attempts=2), Answer(1)]
        assert store.add(design, answers, utc_now(), utc_now()) == 2
        export = store.export_parquet(tmp_path / "v2.parquet")
    assert _columns(v2_store) == [name for name in COLUMNS if name not in ADDED_IN_3] and _meta(v2_store) == before
    frame = read_judgments(v2_store)
    more = frame[frame["design"] == "more"]
    assert more["tokens"].tolist()[0] == 9 and more[list(ADDED_IN_3)].isna().all().all()
    assert export_record(export)["format_version"] == 3 and pq.read_schema(export).names == list(COLUMNS)


def test_usage_round_trips_through_a_format_3_store_and_export(tmp_path):
    design = random_design(ITEMS, 3, seed=0)
    answers = [
        Answer(0, tokens=12, tokens_in=10, tokens_out=2, images=6, attempts=1),
        Answer(None, "error", error="503", images=6, attempts=4),
        Answer(2),
    ]
    with TripletStore(tmp_path / "s.sqlite", "x", "m", ITEMS) as store:
        assert store.format_version == 3
        store.add(design, answers, utc_now(), utc_now())
        export = store.export_parquet(tmp_path / "s.parquet")
        with pytest.raises(ValueError, match="tokens_in must be an integer >= 0"):
            Answer(0, tokens_in=-1)
    for path in (tmp_path / "s.sqlite", export):
        assert answers_from_frame(read_judgments(path)) == answers
