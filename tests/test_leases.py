"""The lease book of a served system, on a real SQLite store: who is asked what, and what an answer stores."""

from __future__ import annotations

import sqlite3

import pytest

from oddoneout.collect.designs import random_design
from oddoneout.collect.leases import LeaseBook, LeaseError
from oddoneout.collect.store import TripletStore, read_judgments
from oddoneout.errors import InputError

ITEMS = [f"item{i:02d}" for i in range(12)]
T0 = 1_900_000_000.0  # a fixed Unix time: every call says when it happens


def open_book(path, n_triplets=10, lease_seconds=60.0):
    design = random_design(ITEMS, n_triplets, seed=3)
    store = TripletStore(path, agent="people", model="human", item_ids=ITEMS)
    return store, LeaseBook(store, [design], lease_seconds=lease_seconds), design


def snapshot(path):
    """Every row of every table of the file (what must not change after a refused answer)."""
    with sqlite3.connect(path) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {table: sorted(connection.execute(f"SELECT * FROM {table}").fetchall(), key=repr) for table in tables}


def test_sessions_lease_disjoint_trials_in_design_order(tmp_path):
    store, book, design = open_book(tmp_path / "s.sqlite")
    a = book.open_session("a", n_trials=3, completion_code="CA")
    b = book.open_session("b", n_trials=3, completion_code="CB")
    first, second = book.lease(a, now=T0), book.lease(b, now=T0)
    assert [t.position for t in first.trials] == [0, 1, 2]
    keys = [t.key for t in first.trials] + [t.key for t in second.trials]
    assert keys == design.keys()[:6]  # disjoint, in design order
    assert [t.items for t in first.trials] == design.shown()[:3]
    assert book.lease(a, now=T0 + 1).trials == first.trials  # a reload gets the same trials back
    store.close()


def test_an_answer_stores_the_judgment_and_its_response_and_ends_the_lease(tmp_path):
    path = tmp_path / "s.sqlite"
    store, book, design = open_book(path)
    session = book.open_session("a", n_trials=2, completion_code="CODE-A")
    trial = book.lease(session, now=T0).trials[0]
    state = book.answer(session, trial.key, choice=2, rt_ms=1234.5, input="key", now=T0 + 5)
    assert state.n_answered == 1 and not state.done and [t.position for t in state.trials] == [1]
    judgments = read_judgments(path)
    assert len(judgments) == 1
    row = judgments.iloc[0]
    assert (row["design"], row["triplet_index"], row["ordering"], row["repeat"]) == trial.key
    assert row.status == "ok" and row.choice == 2 and row.odd_one_out == trial.items[2]
    assert row.latency_s == pytest.approx(1.2345) and row.raw_answer == "key 3"
    assert (row.agent, row.model) == ("people", "human")
    response = store.connection.execute("SELECT session_id, position, input, rt_ms FROM serve_responses").fetchall()
    assert response == [("a", 0, "key", 1234.5)]
    # a replay of the same answer finds no lease and changes nothing
    before = snapshot(path)
    with pytest.raises(LeaseError):
        book.answer(session, trial.key, choice=0, rt_ms=10, input="key", now=T0 + 6)
    assert snapshot(path) == before
    last = book.lease(session, now=T0 + 7).trials[0]
    done = book.answer(session, last.key, choice=0, rt_ms=900, input="click", now=T0 + 8)
    assert done.done and done.n_answered == 2 and done.completion_code == "CODE-A" and done.trials == ()
    assert book.lease(session, now=T0 + 9).done  # a finished session gets nothing more
    store.close()


def test_forged_foreign_and_impossible_answers_change_nothing(tmp_path):
    path = tmp_path / "s.sqlite"
    store, book, design = open_book(path)
    a = book.open_session("a", n_trials=2, completion_code="CA")
    b = book.open_session("b", n_trials=2, completion_code="CB")
    mine = book.lease(a, now=T0).trials[0].key
    theirs = book.lease(b, now=T0).trials[0].key
    unleased = design.keys()[-1]
    before = snapshot(path)
    for key in (theirs, unleased, ("random", 10**6, 0, 0), ("other", *mine[1:]), (mine[0], mine[1], mine[2], 7)):
        with pytest.raises(LeaseError):
            book.answer(a, key, choice=0, rt_ms=100, input="click", now=T0 + 1)
    for choice, rt_ms, input in ((3, 100, "click"), (-1, 100, "click"), (True, 100, "click"), (1, -5, "click"),
                                 (1, float("nan"), "click"), (1, 100, "voice")):  # fmt: skip
        with pytest.raises(InputError):
            book.answer(a, mine, choice=choice, rt_ms=rt_ms, input=input, now=T0 + 1)
    with pytest.raises(LeaseError):
        book.answer("nobody", mine, choice=0, rt_ms=100, input="click", now=T0 + 1)
    assert snapshot(path) == before
    store.close()


def test_an_expired_lease_goes_back_to_the_pool(tmp_path):
    store, book, design = open_book(tmp_path / "s.sqlite", lease_seconds=10)
    a = book.open_session("a", n_trials=2, completion_code="CA")
    b = book.open_session("b", n_trials=2, completion_code="CB")
    held = [t.key for t in book.lease(a, now=T0).trials]
    book.answer(a, held[0], choice=1, rt_ms=500, input="click", now=T0 + 8)  # activity renews: until T0 + 18
    assert [t.key for t in book.lease(b, now=T0 + 15).trials] == design.keys()[2:4]
    # a's last trial expires at T0 + 18: b, asking again, does not take it (b holds its 2); a new session does
    c = book.open_session("c", n_trials=3, completion_code="CC")
    taken = [t.key for t in book.lease(c, now=T0 + 19).trials]
    assert taken == [held[1], *design.keys()[4:6]]
    with pytest.raises(LeaseError, match="not leased to this session"):
        book.answer(a, held[1], choice=0, rt_ms=100, input="click", now=T0 + 20)
    again = book.lease(a, now=T0 + 21)  # a continues with a new trial at its unanswered position
    assert [(t.position, t.key) for t in again.trials] == [(1, design.keys()[6])]
    store.close()


def test_reopening_the_store_loses_nothing_and_reassigns_nothing(tmp_path):
    path = tmp_path / "s.sqlite"
    store, book, design = open_book(path)
    a = book.open_session("a", n_trials=4, completion_code="CA")
    trials = book.lease(a, now=T0).trials
    for trial in trials[:2]:
        book.answer(a, trial.key, choice=0, rt_ms=700, input="key", now=T0 + 1)
    store.close()  # the server stops (or is killed: every answer was its own committed transaction)
    store, book, _ = open_book(path)
    resumed = book.lease(a, now=T0 + 2)
    assert resumed.n_answered == 2 and resumed.trials == trials[2:]
    b = book.open_session("b", n_trials=4, completion_code="CB")
    assert [t.key for t in book.lease(b, now=T0 + 2).trials] == design.keys()[4:8]
    assert len(store) == 2
    store.close()


def test_the_pool_running_dry_ends_sessions(tmp_path):
    store, book, design = open_book(tmp_path / "s.sqlite", n_triplets=5)
    a = book.open_session("a", n_trials=4, completion_code="CA")
    b = book.open_session("b", n_trials=4, completion_code="CB")
    assert len(book.lease(a, now=T0).trials) == 4
    only = book.lease(b, now=T0).trials
    assert len(only) == 1
    state = book.answer(b, only[0].key, choice=0, rt_ms=100, input="key", now=T0 + 1)
    assert not state.done  # fewer answers than its trials: the page asks for more
    state = book.lease(b, now=T0 + 2)
    assert state.done and state.completion_code == "CB"  # nothing left to ask: done after what it answered
    c = book.open_session("c", n_trials=4, completion_code="CC")
    empty = book.lease(c, now=T0 + 2)
    assert empty.done and empty.completion_code is None and empty.n_answered == 0  # the study is full
    store.close()


def test_one_session_per_participant(tmp_path):
    store, book, _ = open_book(tmp_path / "s.sqlite")
    first = book.open_session("s1", n_trials=2, completion_code="C1", participant="hash-1", platform="prolific")
    again = book.open_session("s2", n_trials=2, completion_code="C2", participant="hash-1", platform="prolific")
    other = book.open_session("s3", n_trials=2, completion_code="C3", participant="hash-2", platform="prolific")
    assert first == again == "s1" and other == "s3" and book.find_session("hash-1") == "s1"
    assert not book.has_session("s2")
    store.close()


def test_a_changed_design_is_refused_before_serving(tmp_path):
    path = tmp_path / "s.sqlite"
    store, book, design = open_book(path)
    session = book.open_session("a", n_trials=1, completion_code="C")
    key = book.lease(session, now=T0).trials[0].key
    book.answer(session, key, choice=0, rt_ms=100, input="key", now=T0 + 1)
    with pytest.raises(InputError, match="design changed"):
        LeaseBook(store, [random_design(ITEMS[::-1], 10, seed=3)], lease_seconds=60)
    store.close()


def test_no_session_sees_a_triplet_twice_and_the_repeats_go_to_different_sessions(tmp_path):
    from oddoneout.collect.designs import repeated_design
    from oddoneout.collect.leases import pool_order

    # every triplet of the main design in three orderings, and a noise-ceiling design of 4 triplets x 3 repeats
    main = random_design(ITEMS, 6, seed=5, n_orderings=3)
    repeats = repeated_design(ITEMS, 4, 3, seed=6)
    store = TripletStore(tmp_path / "s.sqlite", agent="people", model="human", item_ids=ITEMS)
    book = LeaseBook(store, [main, repeats], lease_seconds=60)
    sessions, shown = 0, {}
    while True:
        session = book.open_session(f"s{sessions}", n_trials=9, completion_code="C")
        state = book.lease(session, now=T0 + sessions)
        if state.done:
            break
        if not sessions:  # the designs are interleaved in proportion to their sizes: 18 main trials, 12 repeats
            assert [t.key[0] for t in state.trials].count("repeats") >= 3
        sessions += 1
        triplets = [frozenset(t.items) for t in state.trials]
        assert len(set(triplets)) == len(triplets)  # never the same three items twice in one session
        for trial in state.trials:
            state = book.answer(session, trial.key, choice=0, rt_ms=900.0, input="key", now=T0 + sessions)
            shown.setdefault(frozenset(trial.items), []).append(session)
        # a session given fewer trials than asked ends when it has answered them (the server leases again)
        assert book.lease(session, now=T0 + sessions).done
    assert store.counts()["ok"] == len(main) + len(repeats)  # yet every trial of both designs was answered
    for base in repeats.items[:4]:
        assert len(set(shown[frozenset(base)])) == len(shown[frozenset(base)]) >= 3  # by 3+ different sessions
    assert pool_order([2, 1]).tolist() == [0, 2, 1] and pool_order([3, 3]).tolist() == [0, 3, 1, 4, 2, 5]
    store.close()


def test_a_design_may_grow_between_two_books_but_not_lose_answered_trials(tmp_path):
    path = tmp_path / "s.sqlite"
    store, book, design = open_book(path, n_triplets=10)
    session = book.open_session("a", n_trials=4, completion_code="CA")
    trials = book.lease(session, now=T0).trials
    book.answer(session, trials[0].key, choice=0, rt_ms=900.0, input="key", now=T0 + 1)
    store.close()
    # grown: the answered trial and the leases are kept, and the session gets only new keys besides
    store, book, grown = open_book(path, n_triplets=20)
    assert grown.keys()[:10] == design.keys()  # prefix-stable
    state = book.lease(session, now=T0 + 2)
    assert [t.key for t in state.trials] == [t.key for t in trials[1:]] and state.n_answered == 1
    store.close()
    # shrunk below a leased trial: that lease is freed; below the answered one: the book is refused
    (dropped,) = [t for t in trials if t.key[1] == max(t.key[1] for t in trials[1:])]
    store = TripletStore(path, agent="people", model="human", item_ids=ITEMS)
    kept = [key for key in design.keys() if key[1] < dropped.key[1]]
    smaller = design.subset([design.keys().index(key) for key in kept])
    book = LeaseBook(store, [smaller], lease_seconds=60.0)
    leased = {tuple(row) for row in store.connection.execute("SELECT design, triplet_index, ordering, repeat "
                                                             "FROM serve_leases")}  # fmt: skip
    assert dropped.key not in leased and len(leased) == 2
    assert len(book.lease(session, now=T0 + 3).trials) == 2  # the smaller design has no trial left to lease
    answered = trials[0].key
    too_small = design.subset([i for i, key in enumerate(design.keys()) if key != answered])
    with pytest.raises(InputError, match="may only grow") as error:
        LeaseBook(store, [too_small], lease_seconds=60.0)
    assert "\n" not in str(error.value)
    with pytest.raises(InputError, match="may only grow"):
        LeaseBook(store, [random_design(ITEMS, 10, seed=3, name="other")], lease_seconds=60.0)
    store.close()
