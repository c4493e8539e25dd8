"""``oddoneout export-jspsych``: a served study's answers as one jsPsych-style JSON array, checked against the store."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import datetime

import pytest
from serve_study import ENV, Server, rows, store_path, write_study
from test_serve_admin import run_session

from oddoneout.collect.leases import CATCH_DESIGN, LeaseBook
from oddoneout.collect.store import TripletStore
from oddoneout.serve.jspsych import TRIAL_TYPE, export_jspsych, jspsych_trials
from oddoneout.serve.tokens import ServerKeys

PID_A, PID_B = "c3" * 12, "d4" * 12


def export(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "oddoneout.cli", "export-jspsych", *args]
    return subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=120)


def test_the_export_of_a_served_study_matches_its_store(tmp_path):
    config = write_study(tmp_path / "study", n_triplets=8, catch_trials=1, exclude_max_fast_fraction=0.5)
    out = tmp_path / "out"
    with Server(config, out) as server:
        params = {"PROLIFIC_PID": PID_A, "STUDY_ID": "st-1", "SESSION_ID": "se-1"}
        run_session(server, params, [900.0, 1200.0, 1500.0, 1100.0], catch_right=True)
        run_session(server, {"PROLIFIC_PID": PID_B}, [90.0, 80.0, 70.0], catch_right=False)
        assert server.stop(signal.SIGTERM) == 0
    done = export(str(out), "--out", str(tmp_path / "data" / "people.json"))
    assert done.returncode == 0, done.stderr
    assert "7 trials" in done.stderr  # the console says what it did on stderr
    trials = json.loads((tmp_path / "data" / "people.json").read_text())
    assert isinstance(trials, list) and len(trials) == 7  # 3 + 2 trials, 1 + 1 catch trials

    store = store_path(out)
    keys = ServerKeys.from_env("people-test/people", ENV)
    sessions = rows(store, "SELECT session_id, participant, platform, study_ref, session_ref FROM serve_sessions")
    by_session = {row[0]: row[1:] for row in sessions}
    assert [t["participant"] for t in trials] == [keys.participant("prolific", PID_A)] * 4 + [
        keys.participant("prolific", PID_B)
    ] * 3
    judgments = {
        (design, index, ordering, repeat): (items, choice, odd, rt, received, session)
        for design, index, ordering, repeat, *items, choice, odd, rt, received, session in rows(
            store,
            "SELECT design, triplet_index, ordering, repeat, item_0, item_1, item_2, choice, odd_one_out, r.rt_ms, "
            "r.received_at, r.session_id FROM judgments JOIN serve_responses r USING (design, triplet_index, "
            "ordering, repeat)",
        )
    }
    catch = {
        (session, index): (same, odd, odd_position, choice, rt)
        for session, index, same, odd, odd_position, choice, rt in rows(
            store, "SELECT session_id, catch_index, item_same, item_odd, odd_position, choice, rt_ms FROM serve_catch"
        )
    }
    for trial in trials:
        assert trial["trial_type"] == TRIAL_TYPE
        participant, platform, study_ref, session_ref = by_session[trial["session_id"]]
        assert (trial["participant"], trial["platform"]) == (participant, platform)
        assert (trial["study_id"], trial["platform_session_id"]) == (study_ref, session_ref)
        assert trial["odd_one_out"] == trial["stimulus"][trial["response"]]
        assert trial["excluded"] == (participant == keys.participant("prolific", PID_B))
        key = (trial["design"], trial["triplet_index"], trial["ordering"], trial["repeat"])
        if trial["catch"]:
            same, odd, odd_position, choice, rt = catch[(trial["session_id"], trial["triplet_index"])]
            assert trial["design"] == CATCH_DESIGN and sorted(trial["stimulus"]) == sorted([same, same, odd])
            assert trial["stimulus"][odd_position] == odd and trial["response"] == choice and trial["rt"] == rt
            assert trial["correct"] == (choice == odd_position)
        else:
            items, choice, odd, rt, received, session = judgments.pop(key)
            assert trial["stimulus"] == items and trial["response"] == choice and trial["odd_one_out"] == odd
            assert trial["rt"] == rt and trial["session_id"] == session and trial["correct"] is None
    assert not judgments  # every stored judgment was exported once
    assert [t["correct"] for t in trials if t["catch"]] == [True, False]
    assert [t["trial_index"] for t in trials] == [0, 1, 2, 3, 0, 1, 2]
    assert [t["rt"] for t in trials] == [900.0, 1200.0, 1500.0, 1100.0, 90.0, 80.0, 70.0]  # in the order answered
    for session in (trials[:4], trials[4:]):
        elapsed = [t["time_elapsed"] for t in session]
        assert elapsed == sorted(elapsed) and 0 <= elapsed[0] < 60_000

    # the store itself gives the same file: its study folder's exclusion rules are found
    again = export(str(store), "--out", str(tmp_path / "again.json"))
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again.json").read_text()) == trials
    wrong = export(str(store), "--system", "other", "--out", str(tmp_path / "x.json"))
    assert wrong.returncode == 2 and "not 'other'" in wrong.stderr and not (tmp_path / "x.json").exists()


def test_a_store_that_no_server_wrote_is_refused_and_an_empty_one_gives_an_empty_array(tmp_path):
    from oddoneout.collect.designs import random_design

    items = [f"i{i}" for i in range(6)]
    plain = tmp_path / "model.sqlite"
    TripletStore(plain, agent="sim", model="m", item_ids=items).close()
    done = export(str(plain), "--out", str(tmp_path / "model.json"))
    assert done.returncode == 2 and "not the store of a served system" in done.stderr
    assert not (tmp_path / "model.json").exists()
    served = tmp_path / "people.sqlite"
    with TripletStore(served, agent="people", model="human", item_ids=items) as store:
        LeaseBook(store, [random_design(items, 5, seed=1)], lease_seconds=60).open_session("s" * 24, 3, "CODE")
    assert export_jspsych(served, tmp_path / "empty.json") == 0
    assert json.loads((tmp_path / "empty.json").read_text()) == [] and jspsych_trials(served) == []


def test_time_elapsed_is_milliseconds_from_the_session_start(tmp_path):
    from oddoneout.collect.designs import random_design

    items = [f"i{i}" for i in range(6)]
    path = tmp_path / "people.sqlite"
    with TripletStore(path, agent="people", model="human", item_ids=items) as store:
        book = LeaseBook(store, [random_design(items, 5, seed=1)], lease_seconds=600)
        book.open_session("s" * 24, 2, "CODE")
        (created,) = rows(path, "SELECT created_at FROM serve_sessions")[0]
        start = datetime.fromisoformat(created).timestamp()
        for step in (2.5, 4.0):
            trial = book.lease("s" * 24, now=start + step - 1).trials[0]
            book.answer("s" * 24, trial.key, choice=0, rt_ms=700.0, input="click", now=start + step)
    trials = jspsych_trials(path)
    assert [t["time_elapsed"] for t in trials] == pytest.approx([2500, 4000], abs=1)
    assert [t["trial_index"] for t in trials] == [0, 1] and not any(t["excluded"] for t in trials)
