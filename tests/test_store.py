"""The SQLite triplet store, its Parquet export and the conversion to Triplets, on real files."""

import json
import pickle
import re
import sqlite3
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from oddoneout.agents.base import Answer
from oddoneout.agents.simulated import SimulatedAgent
from oddoneout.collect.designs import random_design, repeated_design
from oddoneout.collect.runner import collect
from oddoneout.collect.store import (
    COLUMNS,
    TripletStore,
    check_store,
    read_judgments,
    read_judgments_as_triplets,
    utc_now,
)
from oddoneout.errors import InputError, UnreadableFile
from oddoneout.triplets import load_triplets, odd_one_out_probabilities

ITEMS = [f"clip{i:02d}" for i in range(15)]


@pytest.fixture
def features():
    return np.random.default_rng(0).gamma(1.0, 1.0, size=(len(ITEMS), 4))


def ok_answers(n, probs=None):
    return [Answer(i % 3, probs=probs) for i in range(n)]


def test_round_trip_sqlite_parquet_triplets_with_probs(tmp_path, features):
    design = random_design(ITEMS, 200, seed=0, n_orderings=2)
    agent = SimulatedAgent(features, ITEMS, "sim", return_probs=True, seed=1)
    with TripletStore(tmp_path / "sim.sqlite", "sim", "simulated", ITEMS) as store:
        collect(design, agent, store, batch_size=64, progress=False)
        frame = store.judgments()
        exported = store.export_parquet(tmp_path / "out" / "sim.parquet")
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == 400 and (frame["status"] == "ok").all()
    assert (frame[["item_0", "item_1", "item_2"]].to_numpy() == design.items).all()
    chosen = design.items[np.arange(400), frame["choice"].to_numpy(dtype=int)]
    assert (frame["odd_one_out"].to_numpy() == chosen).all()

    from_store = read_judgments_as_triplets(tmp_path / "sim.sqlite")
    from_export = load_triplets(exported)
    assert from_store.item_ids == tuple(ITEMS) == from_export.item_ids
    assert np.array_equal(from_store.indices, from_export.indices)
    assert np.allclose(from_store.probs, from_export.probs)
    # SPoSE convention: the odd one out last, the other two in the shown order; rows in key order
    in_key_order = frame.sort_values(["design", "triplet_index", "ordering", "repeat"])
    odd = np.array([ITEMS.index(item) for item in in_key_order["odd_one_out"]])
    assert np.array_equal(from_store.indices[:, 2], odd)
    # the reordered soft labels are the choice rule's probabilities for the reordered triplet
    assert np.allclose(from_store.probs, odd_one_out_probabilities(features, from_store.indices))

    metadata = json.loads(pq.read_schema(exported).metadata[b"oddoneout"])
    assert metadata["kind"] == "triplets"
    assert metadata["agent"] == "sim" and metadata["model"] == "simulated"
    assert metadata["item_ids"] == ITEMS
    assert metadata["counts"]["ok"] == 400 and metadata["designs"] == {"random": 400}
    assert pq.read_table(exported).schema.field("choice").type == pa.int64()


def test_vocabulary_without_recorded_ids_is_sorted_unique(tmp_path):
    design = random_design(["c", "a", "b", "d"], 4, seed=0)
    with TripletStore(tmp_path / "s.db", "x", "m") as store:
        store.add(design, ok_answers(4), utc_now(), utc_now())
    triplets = read_judgments_as_triplets(tmp_path / "s.db")
    assert triplets.item_ids == ("a", "b", "c", "d")
    assert triplets.probs is None


def test_duplicates_are_never_stored_twice(tmp_path):
    design = random_design(ITEMS, 30, seed=0)
    with TripletStore(tmp_path / "s.sqlite", "x", "m", ITEMS) as store:
        assert store.add(design.subset(slice(0, 20)), ok_answers(20), utc_now(), utc_now()) == 20
        first = store.judgments()
        # overlapping batch with other answers: the 10 stored ones stay as they were
        other = [Answer((i + 1) % 3) for i in range(20)]
        assert store.add(design.subset(slice(10, 30)), other, utc_now(), utc_now()) == 10
        assert store.n_duplicates == 10
        assert len(store) == 30
        frame = store.judgments()
    assert frame.set_index(["design", "triplet_index", "ordering", "repeat"]).index.is_unique
    assert np.array_equal(frame["choice"].to_numpy()[:20], first["choice"].to_numpy())


def test_store_refuses_another_agent_or_model(tmp_path):
    path = tmp_path / "s.sqlite"
    with TripletStore(path, "mllm", "qwen2-vl-7b", ITEMS) as store:
        with pytest.raises(InputError, match="refuses judgments of agent 'llm'"):
            store.add(random_design(ITEMS, 3, seed=0), ok_answers(3), utc_now(), utc_now(), agent="llm")
    with pytest.raises(InputError, match="agent 'mllm'.*refusing judgments of agent 'llm'"):
        TripletStore(path, "llm", "qwen2-vl-7b")
    with pytest.raises(InputError, match="refusing model 'other'"):
        TripletStore(path, "mllm", "other")
    with pytest.raises(InputError, match="item_ids differ"):
        TripletStore(path, "mllm", "qwen2-vl-7b", ITEMS[::-1])
    reopened = TripletStore.open(path)
    assert (reopened.agent, reopened.model, reopened.item_ids) == ("mllm", "qwen2-vl-7b", tuple(ITEMS))
    reopened.close()


def test_unknown_item_is_refused(tmp_path):
    design = random_design(ITEMS + ["stranger"], 40, seed=0)
    with TripletStore(tmp_path / "s.sqlite", "x", "m", ITEMS) as store:
        with pytest.raises(InputError, match="'stranger', not in the store vocabulary"):
            store.add(design, ok_answers(40), utc_now(), utc_now())
        assert len(store) == 0


def test_failures_are_kept_but_excluded_from_triplets(tmp_path):
    design = random_design(ITEMS, 6, seed=0)
    answers = [
        Answer(0, probs=(0.5, 0.25, 0.25)),
        Answer(None, status="unparseable", raw="Video 4 is different"),
        Answer(2, probs=(0.1, 0.1, 0.8)),
        Answer(None, status="error", error="HTTP 500"),
        Answer(1, probs=(0.2, 0.6, 0.2), raw="Video 2", tokens=42),
        Answer(None, status="refused", raw="I cannot"),
    ]
    start = utc_now()
    with TripletStore(tmp_path / "s.sqlite", "x", "m", ITEMS) as store:
        store.add(design, answers, start, start + timedelta(seconds=3), prompt_hash="abc")
        counts = store.counts()
        exported = store.export_parquet(tmp_path / "s.parquet")
    assert counts == {"ok": 3, "unparseable": 1, "ambiguous": 0, "refused": 1, "error": 1, "timeout": 0}
    for frame in (read_judgments(tmp_path / "s.sqlite"), read_judgments(exported)):
        assert len(frame) == 6
        assert frame["status"].tolist() == ["ok", "unparseable", "ok", "error", "ok", "refused"]
        assert frame["raw_answer"][1] == "Video 4 is different" and frame["error"][3] == "HTTP 500"
        assert frame["choice"].isna().tolist() == [False, True, False, True, False, True]
        assert frame["odd_one_out"].isna()[1] and frame["tokens"][4] == 42
        assert np.allclose(frame["latency_s"], 0.5) and (frame["prompt_hash"] == "abc").all()
    triplets = read_judgments_as_triplets(exported)
    assert len(triplets) == 3
    assert [triplets.item_ids[i] for i in triplets.indices[:, 2]] == [
        design.items[0, 0],
        design.items[2, 2],
        design.items[4, 1],
    ]
    assert np.allclose(triplets.probs[:, 2], [0.5, 0.8, 0.6])


def test_probs_dropped_when_some_ok_answers_lack_them(tmp_path):
    design = random_design(ITEMS, 2, seed=0)
    with TripletStore(tmp_path / "s.sqlite", "x", "m", ITEMS) as store:
        store.add(design, [Answer(0, probs=(0.6, 0.2, 0.2)), Answer(1)], utc_now(), utc_now())
    assert read_judgments_as_triplets(tmp_path / "s.sqlite").probs is None


def test_design_filter_keeps_only_named_designs(tmp_path):
    main, repeats = random_design(ITEMS, 20, seed=0), repeated_design(ITEMS, 5, 2, seed=1)
    with TripletStore(tmp_path / "s.sqlite", "x", "m", ITEMS) as store:
        store.add(main, ok_answers(20), utc_now(), utc_now())
        store.add(repeats, ok_answers(10), utc_now(), utc_now())
    assert len(read_judgments_as_triplets(tmp_path / "s.sqlite")) == 30
    assert len(read_judgments_as_triplets(tmp_path / "s.sqlite", design="random")) == 20
    with pytest.raises(InputError, match="no judgment with status 'ok' in design"):
        read_judgments_as_triplets(tmp_path / "s.sqlite", design=["nothing"])


def test_missing_survives_reopening(tmp_path):
    design = random_design(ITEMS, 50, seed=0)
    with TripletStore(tmp_path / "s.sqlite", "x", "m", ITEMS) as store:
        store.add(design.subset(np.arange(0, 50, 2)), ok_answers(25), utc_now(), utc_now())
    with TripletStore(tmp_path / "s.sqlite", "x", "m") as store:
        missing = store.missing(design)
        assert store.item_ids == tuple(ITEMS)
    assert missing.keys() == design.subset(np.arange(1, 50, 2)).keys()


def test_readers_see_commits_while_a_writer_is_open(tmp_path):
    design = random_design(ITEMS, 10, seed=0)
    with TripletStore(tmp_path / "s.sqlite", "x", "m", ITEMS) as store:
        store.add(design, ok_answers(10), utc_now(), utc_now())
        assert len(read_judgments(tmp_path / "s.sqlite")) == 10
        assert sqlite3.connect(tmp_path / "s.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_malformed_or_empty_files_name_the_file(tmp_path):
    text = tmp_path / "notes.sqlite"
    text.write_text("this is not a database, just words " * 50)
    with pytest.raises(InputError, match="notes.sqlite"):
        read_judgments_as_triplets(text)
    with pytest.raises(InputError, match="notes.sqlite"):
        TripletStore(text, "x", "m")

    foreign_db = tmp_path / "foreign.db"
    with sqlite3.connect(foreign_db) as connection:
        connection.execute("CREATE TABLE people (name TEXT)")
    with pytest.raises(InputError, match="foreign.db: an SQLite database but not a triplet store"):
        TripletStore(foreign_db, "x", "m")
    with sqlite3.connect(foreign_db) as connection:  # left untouched
        assert [row[0] for row in connection.execute("SELECT name FROM sqlite_master")] == ["people"]
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal"
    with pytest.raises(InputError, match="foreign.db"):
        read_judgments(foreign_db)

    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match="broken.parquet"):
        read_judgments_as_triplets(broken)

    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), foreign)
    with pytest.raises(InputError, match="foreign.parquet: not an oddoneout triplet export"):
        read_judgments(foreign)

    with TripletStore(tmp_path / "empty.sqlite", "x", "m", ITEMS) as store:
        empty_export = store.export_parquet(tmp_path / "empty.parquet")
    for path in (tmp_path / "empty.sqlite", empty_export):
        with pytest.raises(InputError, match=f"{path.name}: no judgment with status 'ok'"):
            read_judgments_as_triplets(path)
    assert len(read_judgments(empty_export)) == 0

    with pytest.raises(InputError, match="not found"):
        read_judgments(tmp_path / "absent.sqlite")
    with pytest.raises(InputError, match="'.csv'"):
        (tmp_path / "t.csv").write_text("x")
        read_judgments(tmp_path / "t.csv")


def test_inconsistent_rows_are_reported_with_the_file(tmp_path):
    design = random_design(ITEMS, 3, seed=0)
    path = tmp_path / "s.sqlite"
    with TripletStore(path, "x", "m", ITEMS) as store:
        store.add(design, ok_answers(3, probs=(0.5, 0.5, 0.5)), utc_now(), utc_now())
    with pytest.raises(InputError, match="s.sqlite: .*sum to 1"):
        read_judgments_as_triplets(path)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE judgments SET odd_one_out = 'clip99' WHERE triplet_index = 1")
    with pytest.raises(InputError, match="s.sqlite: judgment 1 names odd one out 'clip99'"):
        read_judgments_as_triplets(path)


def test_answers_must_match_the_design(tmp_path):
    design = random_design(ITEMS, 3, seed=0)
    with TripletStore(tmp_path / "s.sqlite", "x", "m") as store:
        with pytest.raises(InputError, match="2 answers for 3 trials"):
            store.add(design, ok_answers(2), utc_now(), utc_now())
        with pytest.raises(InputError, match="one start and one finish time per trial"):
            store.add(design, ok_answers(3), [utc_now()] * 2, [utc_now()] * 2)
        start = utc_now()
        stops = [start + timedelta(seconds=s) for s in (1, 2, 3)]
        store.add(design, ok_answers(3), [start] * 3, stops)
        assert store.judgments()["latency_s"].tolist() == [1.0, 2.0, 3.0]


def test_a_design_changed_under_the_same_name_is_refused(tmp_path):
    with TripletStore(tmp_path / "s.sqlite", "x", "m", ITEMS) as store:
        store.add(random_design(ITEMS, 20, seed=0), ok_answers(20), utc_now(), utc_now())
        longer = random_design(ITEMS, 50, seed=0)  # same seed, extended: only the new trials are missing
        assert len(store.missing(longer)) == 30
        with pytest.raises(InputError, match="design changed under the same name"):
            store.missing(random_design(ITEMS, 20, seed=1))


def test_per_trial_times_are_stored_as_utc_iso_with_their_latency(tmp_path):
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    paris, offset = ZoneInfo("Europe/Paris"), timezone(timedelta(hours=-3, minutes=-30))
    rng = np.random.default_rng(3)
    epoch = datetime(1960, 1, 1, tzinfo=timezone.utc)
    starts = [
        (epoch + timedelta(microseconds=int(us))).astimezone([timezone.utc, paris, offset][i % 3])
        for i, us in enumerate(rng.integers(0, 3 * 10**15, size=300))
    ]
    starts[:3] = [datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
                  datetime(2024, 2, 29, tzinfo=timezone.utc), datetime(9999, 12, 31, tzinfo=paris)]  # fmt: skip
    finishes = [start + timedelta(microseconds=int(us)) for start, us in zip(starts, rng.integers(0, 10**8, 300))]
    design = random_design(ITEMS, 300, seed=5)
    with TripletStore(tmp_path / "times.sqlite", "sim", "simulated", ITEMS) as store:
        store.add(design, ok_answers(300), starts, finishes)
        frame = store.judgments()
        # strings are kept verbatim, and a batch mixing strings and datetimes takes them one by one
        mixed = random_design(ITEMS, 2, seed=6, name="mixed")
        store.add(mixed, ok_answers(2), ["2026-01-01T00:00:00+01:00", starts[3]], [finishes[0], finishes[3]])
        mixed_frame = store.judgments().iloc[300:]
        with pytest.raises(InputError, match="naive"):
            store.add(random_design(ITEMS, 2, seed=7, name="naive"), ok_answers(2), starts[:2],
                      [finishes[0], datetime(2026, 1, 1)])  # fmt: skip
    utc = timezone.utc
    assert list(frame["started_at"]) == [s.astimezone(utc).isoformat(timespec="microseconds") for s in starts]
    assert list(frame["finished_at"]) == [f.astimezone(utc).isoformat(timespec="microseconds") for f in finishes]
    assert list(frame["latency_s"]) == [(f - s).total_seconds() for s, f in zip(starts, finishes)]
    assert list(mixed_frame["started_at"]) == ["2026-01-01T00:00:00+01:00", frame["started_at"][3]]
    assert (
        mixed_frame["latency_s"].iloc[0]
        == (finishes[0] - datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=1)))).total_seconds()
    )


def test_an_existing_file_that_is_no_store_is_refused_and_never_rebuilt_over(tmp_path):
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    remedy = "delete it (or move it away) to start this system's collection over"
    with pytest.raises(UnreadableFile, match=f"empty.sqlite: an empty file, not a triplet store: {re.escape(remedy)}"):
        TripletStore(empty, "x", "m", ITEMS)
    assert empty.read_bytes() == b""
    tableless = tmp_path / "tableless.db"
    with sqlite3.connect(tableless) as connection:
        connection.execute("PRAGMA user_version = 7")  # a database file, without a table
    with pytest.raises(UnreadableFile, match="tableless.db: an SQLite database without tables, not a triplet store"):
        TripletStore(tableless, "x", "m", ITEMS)
    with pytest.raises(UnreadableFile, match="tableless.db: an SQLite database without tables"):
        read_judgments(tableless)
    assert check_store(empty) == ["an empty file, not a triplet store"]


def test_a_garbled_store_fails_in_one_error_naming_it_wherever_it_is_read(tmp_path, features):
    path = tmp_path / "s.sqlite"
    design = random_design(ITEMS, 400, seed=0, n_orderings=6)
    with TripletStore(path, "sim", "m", ITEMS) as store:
        collect(design, SimulatedAgent(features, ITEMS, "sim", model="m"), store, batch_size=500, progress=False)
    assert check_store(path) == []
    size = path.stat().st_size
    with path.open("r+b") as file:  # a run of garbage across pages in the middle, the size kept
        file.seek(size // 2 // 4096 * 4096)
        file.write(b"\xab" * 8192)
    problem = re.escape("s.sqlite: not a readable triplet store (database disk image is malformed): delete it")
    with pytest.raises(UnreadableFile, match=problem):
        with TripletStore(path, "sim", "m", ITEMS) as store:
            store.missing(design)
    for read in (read_judgments, read_judgments_as_triplets, load_triplets):
        with pytest.raises(UnreadableFile, match=problem):
            read(path)
    assert check_store(path) == ["not a readable triplet store (database disk image is malformed)"]


def test_unreadable_file_errors_survive_pickling(tmp_path):
    error = UnreadableFile(tmp_path / "s.sqlite", "not a readable triplet store (x)", "delete it")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is UnreadableFile and str(copy) == str(error) and copy.remedy == "delete it"
