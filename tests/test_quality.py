"""Per-session quality of a served system, from a real SQLite lease book and from a real `oddoneout serve`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import httpx
import numpy as np
import pytest
from scipy import stats
from serve_study import ENV, Server, store_path, write_study

from oddoneout.collect.designs import random_design
from oddoneout.collect.leases import LeaseBook
from oddoneout.collect.quality import QUALITY_COLUMNS, flag_exclusions, session_quality
from oddoneout.collect.status import format_status, store_status
from oddoneout.collect.store import TripletStore

ITEMS = [f"item{i:02d}" for i in range(12)]
T0 = 1_900_000_000.0


def served_store(path, plan):
    """A store whose sessions answer as ``plan`` says: ``{session: [(choice, rt_ms), ...]}`` (and one idle session)."""
    design = random_design(ITEMS, 40, seed=3)
    store = TripletStore(path, agent="people", model="human", item_ids=ITEMS)
    book = LeaseBook(store, [design], lease_seconds=600)
    for session, answers in plan.items():
        book.open_session(session, n_trials=len(answers), completion_code=f"C-{session}", platform="prolific")
        for step, (choice, rt_ms) in enumerate(answers):
            trial = book.lease(session, now=T0 + step).trials[0]
            book.answer(session, trial.key, choice=choice, rt_ms=rt_ms, input="key", now=T0 + step + 0.5)
    book.open_session("idle", n_trials=5, completion_code="C-idle")
    store.close()


PLAN = {
    "careful": [(i % 3, 900.0 + 100 * i) for i in range(9)],  # balanced choices, slow
    "clicker": [(0, 120.0)] * 8 + [(0, 700.0), (1, 800.0)],  # mostly first position, mostly too fast
}


def test_session_quality_measures_each_session(tmp_path):
    path = tmp_path / "people.sqlite"
    served_store(path, PLAN)
    quality = session_quality(path, min_rt_ms=300)
    assert list(quality.columns) == list(QUALITY_COLUMNS)
    assert list(quality.index) == ["careful", "clicker", "idle"]
    careful, clicker, idle = (quality.loc[name] for name in quality.index)
    assert careful.n_answered == 9 and careful.n_trials == 9 and careful.finished
    assert careful.median_rt_ms == pytest.approx(np.median([900 + 100 * i for i in range(9)]))
    assert careful.fast_fraction == 0.0
    assert [careful[f"choice_rate_{i}"] for i in range(3)] == pytest.approx([1 / 3] * 3)
    assert careful.position_p == pytest.approx(1.0)
    assert clicker.n_answered == 10 and clicker.fast_fraction == pytest.approx(0.8)
    assert clicker.median_rt_ms == pytest.approx(120.0)
    assert [clicker[f"choice_rate_{i}"] for i in range(3)] == pytest.approx([0.9, 0.1, 0.0])
    test = stats.chisquare([9, 1, 0])
    assert clicker.position_chi2 == pytest.approx(test.statistic) and clicker.position_p == pytest.approx(test.pvalue)
    assert idle.n_answered == 0 and not idle.finished and np.isnan(idle.median_rt_ms) and np.isnan(idle.fast_fraction)
    assert np.isnan(idle.position_p)
    assert (quality["n_catch"] == 0).all() and quality["catch_accuracy"].isna().all()  # no catch trials yet
    # the threshold is the caller's: at 100 ms nobody is too fast
    assert (session_quality(path, min_rt_ms=100)["fast_fraction"].fillna(0) == 0).all()


def test_exclusion_rules_flag_sessions(tmp_path):
    path = tmp_path / "people.sqlite"
    served_store(path, PLAN)
    quality = session_quality(path, min_rt_ms=300)
    assert not flag_exclusions(quality).any()  # the defaults exclude nobody
    excluded = flag_exclusions(quality, max_fast_fraction=0.5)
    assert excluded.to_dict() == {"careful": False, "clicker": True, "idle": False}
    with_catch = quality.assign(n_catch=[4, 4, 0], catch_accuracy=[1.0, 0.25, np.nan])
    assert flag_exclusions(with_catch, min_catch_accuracy=0.75).to_dict() == excluded.to_dict()


def test_status_shows_participants_of_a_served_store_only(tmp_path):
    path = tmp_path / "people.sqlite"
    served_store(path, PLAN)
    status = store_status(path)
    assert [s["session_id"] for s in status["sessions"]] == ["careful", "clicker", "idle"]
    clicker = status["sessions"][1]
    assert clicker["min_rt_ms"] == 300.0 and clicker["fast_fraction"] == pytest.approx(0.8)
    assert status["sessions"][2]["median_rt_ms"] is None  # JSON-ready: no NaN
    json.dumps(status, allow_nan=False)
    text = format_status(status)
    assert "participants: 3" in text and "fast<300ms" in text
    line = next(row for row in text.splitlines() if row.strip().startswith("clicker"))
    assert "10/10" in line and "120 ms" in line and "80%" in line and "0.90 0.10 0.00" in line
    assert "0/5*" in next(row for row in text.splitlines() if row.strip().startswith("idle"))
    assert "fast<100ms" in format_status(store_status(path, min_rt_ms=100))
    plain = tmp_path / "model.sqlite"
    TripletStore(plain, agent="sim", model="m", item_ids=ITEMS).close()
    assert "sessions" not in store_status(plain) and "participants:" not in format_status(store_status(plain))


def two_participants(server, choice: int, input: str) -> None:
    """Participant a answers slowly (1.2, 1.5, 0.9 s), b too fast twice (50, 80 ms) then slowly."""
    for pid, rts in (("a" * 24, [1200.0, 1500.0, 900.0]), ("b" * 24, [50.0, 80.0, 2000.0])):
        params = {"PROLIFIC_PID": pid, "STUDY_ID": "s", "SESSION_ID": pid[:4]}
        session = httpx.post(server.url + "/api/session", json={"consent": True, "params": params}).json()
        for trial, rt_ms in zip(session["trials"], rts):
            body = {"key": trial["key"], "choice": choice, "rt_ms": rt_ms, "input": input}
            headers = {"authorization": f"Bearer {session['token']}"}
            assert httpx.post(server.url + "/api/answer", json=body, headers=headers).status_code == 200


def test_oddoneout_status_of_a_served_study_shows_each_participant(tmp_path):
    config, out = write_study(tmp_path / "study"), tmp_path / "out"
    with Server(config, out) as server:
        two_participants(server, choice=0, input="click")
        assert server.stop(signal.SIGTERM) == 0
    command = [sys.executable, "-m", "oddoneout.cli", "status", str(store_path(out))]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "participants: 2" in done.stdout
    rows = [line for line in done.stdout.splitlines() if "prolific" in line]
    assert len(rows) == 2 and any("3/3" in r and "0%" in r for r in rows) and any("67%" in r for r in rows)
    as_json = json.loads(subprocess.run([*command, "--json"], env=ENV, capture_output=True, text=True).stdout)
    fast = sorted(s["fast_fraction"] for s in as_json["sessions"])
    assert fast == pytest.approx([0.0, 2 / 3])


def test_oddoneout_status_judges_sessions_by_the_studys_rules_or_the_human_defaults(tmp_path):
    import shutil

    from oddoneout.agents.registry import HumanSettings

    config = write_study(tmp_path / "study", min_rt_ms=1000.0, exclude_max_fast_fraction=0.5)
    out = tmp_path / "out"
    with Server(config, out) as server:
        two_participants(server, choice=0, input="key")  # a: 1/3 of answers under 1000 ms, b: 2/3
        assert server.stop(signal.SIGTERM) == 0
    status = [sys.executable, "-m", "oddoneout.cli", "status"]
    for given in (out, store_path(out)):  # the study folder, or the store inside it: the config's rules
        done = subprocess.run([*status, str(given), "--json"], env=ENV, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout)
        found = found[0] if isinstance(found, list) else found
        assert found["rules"] == {"min_rt_ms": 1000.0, "exclude_max_fast_fraction": 0.5,
                                  "exclude_min_catch_accuracy": 0.0, "source": str(out / "config.toml")}  # fmt: skip
        judged = sorted((s["fast_fraction"], s["excluded"]) for s in found["sessions"])
        assert judged == [(pytest.approx(1 / 3), False), (pytest.approx(2 / 3), True)]
    text = subprocess.run([*status, str(out)], env=ENV, capture_output=True, text=True, timeout=120).stdout
    assert "fast<1000ms" in text and "participants: 2, 1 excluded" in text and "excluded above 50% too fast" in text
    assert sum("yes: too fast" in line for line in text.splitlines()) == 1
    # a store outside any study folder: the defaults of agent = "human" (those of a table that sets none)
    shutil.copy(store_path(out), tmp_path / "loose.sqlite")
    done = subprocess.run([*status, str(tmp_path / "loose.sqlite"), "--json"], env=ENV, capture_output=True, text=True)
    found = json.loads(done.stdout)
    default = HumanSettings()
    assert found["rules"] == {"min_rt_ms": default.min_rt_ms, "exclude_max_fast_fraction": 1.0,
                              "exclude_min_catch_accuracy": 0.0, "source": "defaults"}  # fmt: skip
    assert sorted((s["fast_fraction"], s["excluded"]) for s in found["sessions"]) == [
        (0.0, False), (pytest.approx(2 / 3), False)]  # fmt: skip


def test_excluded_sessions_answers_are_left_out_of_the_triplets_only(tmp_path):
    from oddoneout.agents.registry import HumanSettings
    from oddoneout.collect.quality import excluded_keys
    from oddoneout.collect.store import read_judgments, read_judgments_as_triplets

    path = tmp_path / "people.sqlite"
    served_store(path, PLAN)
    strict = HumanSettings(exclude_max_fast_fraction=0.5)
    exclude = excluded_keys(path, strict)
    assert {name: len(codes) for name, codes in exclude.items()} == {"random": 10}  # the clicker's answers
    assert excluded_keys(path, HumanSettings()) == {}
    kept = read_judgments_as_triplets(path, exclude=exclude)
    assert len(kept) == 9 and len(read_judgments_as_triplets(path)) == 19
    assert len(read_judgments(path)) == 19  # the store keeps every judgment
    careful = read_judgments_as_triplets(path, exclude={"random": exclude["random"][:0]})
    assert len(careful) == 19


def test_a_served_systems_fit_reads_leave_excluded_participants_out(tmp_path):
    from oddoneout.config import load_config
    from oddoneout.pipeline.collect import MAIN_DESIGN
    from oddoneout.pipeline.fit import design_triplets
    from oddoneout.study_folder import StudyFolder

    config, out = write_study(tmp_path / "study", exclude_max_fast_fraction=0.5), tmp_path / "out"
    with Server(config, out) as server:
        two_participants(server, choice=1, input="key")
        assert server.stop(signal.SIGTERM) == 0  # it exports on stopping
    settings = load_config(config).systems["people"].settings
    folder = StudyFolder(out)
    assert len(design_triplets(folder, "people", MAIN_DESIGN)) == 6  # without the system's rules: everyone
    assert len(design_triplets(folder, "people", MAIN_DESIGN, settings)) == 3  # the fast participant left out
    from oddoneout.collect.store import read_judgments

    assert len(read_judgments(folder.system("people").export)) == 6  # the export counts them as collected


def test_catch_trials_are_asked_among_a_sessions_trials_and_never_stored_as_judgments(tmp_path):
    from oddoneout.collect.leases import CATCH_DESIGN, LeaseError
    from oddoneout.collect.store import read_judgments

    path = tmp_path / "people.sqlite"
    design = random_design(ITEMS, 40, seed=3)
    store = TripletStore(path, agent="people", model="human", item_ids=ITEMS)
    book = LeaseBook(store, [design], lease_seconds=600, catch_trials=2)
    session = book.open_session("s", n_trials=4, completion_code="C")
    state = book.lease(session, now=T0)
    kinds = ["catch" if t.key[0] == CATCH_DESIGN else "trial" for t in state.trials]
    assert kinds == ["trial", "catch", "trial", "catch", "trial", "trial"]  # spread among the 4 trials
    assert [t.key for t in state.trials if t.key[0] != CATCH_DESIGN] == design.keys()[:4]  # design keys untouched
    right = 0
    for step, trial in enumerate(state.trials):
        if trial.key[0] == CATCH_DESIGN:
            same = max(set(trial.items), key=trial.items.count)
            odd = next(p for p, item in enumerate(trial.items) if item != same)
            assert trial.items.count(same) == 2
            choice = odd if trial.key[1] == 0 else (odd + 1) % 3  # the first right, the second wrong
            right += choice == odd
        else:
            choice = 0
        after = book.answer(session, trial.key, choice=choice, rt_ms=800, input="key", now=T0 + step + 1)
    assert after.done and after.n_answered == 4 and after.completion_code == "C"
    with pytest.raises(LeaseError):
        book.answer(session, (CATCH_DESIGN, 0, 0, 0), choice=0, rt_ms=800, input="key", now=T0 + 9)
    assert len(read_judgments(path)) == 4  # the catch answers are not judgments
    store.close()
    quality = session_quality(path, min_rt_ms=300).loc["s"]
    assert quality.n_answered == 4 and quality.n_catch == 2 and quality.catch_accuracy == 0.5


def test_a_catch_trial_unanswered_keeps_the_session_open(tmp_path):
    from oddoneout.collect.leases import CATCH_DESIGN

    store = TripletStore(tmp_path / "p.sqlite", agent="people", model="human", item_ids=ITEMS)
    book = LeaseBook(store, [random_design(ITEMS, 10, seed=3)], lease_seconds=600, catch_trials=1)
    session = book.open_session("s", n_trials=2, completion_code="C")
    trials = book.lease(session, now=T0).trials
    real = [t for t in trials if t.key[0] != CATCH_DESIGN]
    for trial in real:
        state = book.answer(session, trial.key, choice=0, rt_ms=800, input="click", now=T0 + 1)
    assert not state.done and [t.key[0] for t in state.trials] == [CATCH_DESIGN]
    assert [t.key[0] for t in book.lease(session, now=T0 + 2).trials] == [CATCH_DESIGN]  # a reload asks it again
    catch = state.trials[0]
    done = book.answer(session, catch.key, choice=1, rt_ms=800, input="click", now=T0 + 3)
    assert done.done and done.completion_code == "C"
    store.close()


def test_catch_trials_over_http_show_in_status_and_exclude_from_fits(tmp_path):
    from oddoneout.config import load_config
    from oddoneout.pipeline.collect import MAIN_DESIGN
    from oddoneout.pipeline.fit import design_triplets
    from oddoneout.study_folder import StudyFolder

    config = write_study(tmp_path / "study", catch_trials=2, exclude_min_catch_accuracy=0.75)
    out = tmp_path / "out"
    with Server(config, out) as server:
        for pid, careful in (("a" * 24, True), ("b" * 24, False)):
            params = {"PROLIFIC_PID": pid, "STUDY_ID": "s", "SESSION_ID": pid[:4]}
            session = httpx.post(server.url + "/api/session", json={"consent": True, "params": params}).json()
            assert len(session["trials"]) == 5 and session["n_trials"] == 3
            headers = {"authorization": f"Bearer {session['token']}"}
            for trial in session["trials"]:
                texts = trial["texts"]
                odd = next((p for p, t in enumerate(texts) if texts.count(t) == 1), 0)
                choice = odd if trial["key"][0] == "(catch)" and careful else (odd + 1) % 3
                body = {"key": trial["key"], "choice": choice, "rt_ms": 900.0, "input": "key"}
                reply = httpx.post(server.url + "/api/answer", json=body, headers=headers)
                assert reply.status_code == 200, reply.text
            assert reply.json()["done"]
        assert server.stop(signal.SIGTERM) == 0
    status = store_status(store_path(out))
    assert sorted((s["n_answered"], s["n_catch"], s["catch_accuracy"]) for s in status["sessions"]) == [
        (3, 2, 0.0),
        (3, 2, 1.0),
    ]
    assert "100%" in format_status(status)
    settings = load_config(config).systems["people"].settings
    folder = StudyFolder(out)
    assert len(design_triplets(folder, "people", MAIN_DESIGN)) == 6
    assert len(design_triplets(folder, "people", MAIN_DESIGN, settings)) == 3  # the careless participant left out


def test_the_session_state_counts_catch_trials_for_the_page(tmp_path):
    store = TripletStore(tmp_path / "p.sqlite", agent="people", model="human", item_ids=ITEMS)
    book = LeaseBook(store, [random_design(ITEMS, 10, seed=3)], lease_seconds=600, catch_trials=2)
    session = book.open_session("s", n_trials=3, completion_code="C")
    state = book.lease(session, now=T0)
    assert (state.n_catch, state.n_catch_answered, len(state.trials)) == (2, 0, 5)
    catch = next(t for t in state.trials if t.key[0] == "(catch)")
    after = book.answer(session, catch.key, choice=0, rt_ms=500, input="key", now=T0 + 1)
    assert (after.n_answered, after.n_catch_answered, len(after.trials)) == (0, 1, 4)
    store.close()
