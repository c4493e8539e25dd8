"""The asynchronous runner: retries, budgets, rate limit, resume, SIGKILL and SIGINT, over real loopback HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest

from oddoneout.agents.base import Answer, RetryableError
from oddoneout.agents.openai_chat import OpenAIChatAgent
from oddoneout.agents.prompts import PAPER_LLM_PROMPT
from oddoneout.collect.async_runner import collect_async, collect_remote
from oddoneout.collect.designs import concat_designs, random_design, repeated_design
from oddoneout.collect.store import TripletStore, read_judgments
from oddoneout.errors import InputError

sys.path.insert(0, str(Path(__file__).parent))
from collector_process import kill_once_stored, load_script, stop_with, stored_count, wait_for  # noqa: E402
from fault_server import FaultServer, Reply, odd_one_out, schedule  # noqa: E402

ITEMS = [f"v{i:02d}" for i in range(25)]
CAPTIONS = {item: f"a clip of {item}" for item in ITEMS}
SLOW_SCRIPT = Path(__file__).with_name("collect_async_slowly.py")
KEY_ENV = "ODDONEOUT_TEST_API_KEY"
SECRET = "sk-test-7f3a9c1e5b2d4680-never-store-me"


class RuleAgent:
    """A pure-Python remote-style agent: names the last item shown unless told to fail.

    ``failures`` maps a shown triplet to the exceptions its successive calls raise (then it
    answers); ``tokens`` is reported with each answer.
    """

    def __init__(self, name="llm", model="rule", prompt_hash="p1", failures=None, latency=0.0, tokens=None):
        self.name, self.model, self.prompt_hash = name, model, prompt_hash
        self.failures = failures or {}
        self.latency = latency
        self.tokens = tokens
        self.calls: list[tuple[tuple[str, str, str], float]] = []

    async def ajudge(self, shown):
        self.calls.append((shown, time.monotonic()))
        attempt = sum(1 for asked, _ in self.calls if asked == shown) - 1
        if self.latency:
            await asyncio.sleep(self.latency)
        script = self.failures.get(shown, ())
        if attempt < len(script):
            failure = script[attempt]
            if failure == "hang":
                await asyncio.sleep(3600)
            raise failure
        return Answer(2, raw="Video 3", tokens=self.tokens)


def open_store(tmp_path, name="llm", model="rule"):
    return TripletStore(tmp_path / f"{name}.sqlite", name, model, ITEMS)


def run(coro):
    return asyncio.run(coro)


# --------------------------------------------------------------------------------------- pure-Python agents


def test_every_trial_is_stored_once_over_two_agents_and_a_second_call_asks_nothing(tmp_path):
    design = random_design(ITEMS, 150, seed=0, n_orderings=2)
    fast, slow = RuleAgent(latency=0.001), RuleAgent(latency=0.01)
    with open_store(tmp_path) as store:
        summary = run(collect_async(design, [fast, slow], store, concurrency=4, flush_every=16, progress=False))
        assert (summary.n_design, summary.n_already_stored, summary.n_asked, summary.n_missing) == (300, 0, 300, 0)
        assert summary.n_requests == 300 and summary.n_retries == 0 and summary.stopped is None
        assert summary.counts["ok"] == 300
        # one shared queue: both endpoints work, the faster one takes more trials
        assert len(fast.calls) + len(slow.calls) == 300 and len(fast.calls) > len(slow.calls) > 0
        again = run(collect_async(design, [fast, slow], store, progress=False))
        assert (again.n_already_stored, again.n_asked, again.n_requests) == (300, 0, 0)
        frame = store.judgments()
    assert len(fast.calls) + len(slow.calls) == 300
    assert sorted(frame[["design", "triplet_index", "ordering", "repeat"]].itertuples(index=False)) == sorted(
        design.keys()
    )
    assert (frame["choice"] == 2).all() and (frame["odd_one_out"] == frame["item_2"]).all()
    # per-trial intervals, not one per batch
    assert (frame["latency_s"] > 0).all() and frame["started_at"].nunique() > 100


def test_transient_failures_are_retried_then_stored_with_their_status(tmp_path):
    design = random_design(ITEMS, 40, seed=1)
    shown = design.shown()
    flaky = {s: [RetryableError("HTTP 500")] * 2 for s in shown[0:10]}  # succeed at the 3rd attempt
    broken = {s: [RetryableError("HTTP 503")] * 9 for s in shown[10:15]}  # never within 1 + 3 attempts
    slow = {s: [RetryableError("read timeout", status="timeout")] * 9 for s in shown[15:18]}
    agent = RuleAgent(failures=flaky | broken | slow)
    with open_store(tmp_path) as store:
        summary = run(collect_async(design, agent, store, max_retries=3, backoff=0.001, seed=0, progress=False))
        frame = store.judgments()
    assert summary.counts == {"ok": 32, "unparseable": 0, "ambiguous": 0, "refused": 0, "error": 5, "timeout": 3}
    assert summary.n_requests == 10 * 3 + 8 * 4 + 22 and summary.n_retries == 10 * 2 + 8 * 3
    assert Counter(s for s, _ in agent.calls) == Counter(
        {s: 3 for s in flaky} | {s: 4 for s in broken | slow}
    ) + Counter(shown[18:])
    failed = frame[frame["status"] != "ok"]
    assert failed["choice"].isna().all() and set(failed["error"]) == {"HTTP 503", "read timeout"}


def test_retry_after_is_waited_and_a_hung_request_times_out(tmp_path):
    design = random_design(ITEMS, 6, seed=2)
    shown = design.shown()
    failures = {shown[0]: [RetryableError("HTTP 429", retry_after=0.3)], shown[1]: ["hang"], shown[2]: ["hang"] * 9}
    agent = RuleAgent(failures=failures)
    with open_store(tmp_path) as store:
        summary = run(
            collect_async(design, agent, store, max_retries=2, backoff=0.0, request_timeout=0.2, progress=False)
        )
        statuses = dict(zip(store.judgments()["item_0"], store.judgments()["status"]))
    assert summary.counts["ok"] == 5 and summary.counts["timeout"] == 1
    assert statuses[shown[2][0]] == "timeout" and statuses[shown[1][0]] == "ok"
    times = [t for s, t in agent.calls if s == shown[0]]
    assert len(times) == 2 and times[1] - times[0] >= 0.3 - 1e-3  # backoff 0, so only Retry-After delays it
    assert len([s for s, _ in agent.calls if s == shown[2]]) == 3


@pytest.mark.parametrize("concurrency", [1, 7])
def test_max_requests_stops_at_exactly_the_cap_counting_retries(tmp_path, concurrency):
    design = random_design(ITEMS, 60, seed=3)
    flaky = {s: [RetryableError("HTTP 500")] for s in design.shown()[::3]}
    agent = RuleAgent(failures=flaky, latency=0.002)
    with open_store(tmp_path) as store:
        summary = run(
            collect_async(design, agent, store, concurrency=concurrency, max_requests=25, backoff=0.0, progress=False)
        )
        assert summary.n_requests == len(agent.calls) == 25 and summary.stopped == "max_requests"
        assert len(store) == summary.n_asked and summary.n_asked + summary.n_missing == 60
        assert summary.counts["ok"] == summary.n_asked  # a trial cut by the cap is not stored as an error
        resumed = RuleAgent(latency=0.002)
        rest = run(collect_async(design, resumed, store, concurrency=concurrency, progress=False))
        assert rest.n_asked == 60 - summary.n_asked and len(store) == 60 and rest.stopped is None


def test_max_tokens_stops_issuing_once_reached(tmp_path):
    design = random_design(ITEMS, 50, seed=4)
    agent = RuleAgent(tokens=10)
    with open_store(tmp_path) as store:
        summary = run(collect_async(design, agent, store, concurrency=1, max_tokens=95, progress=False))
    assert (summary.n_requests, summary.n_asked, summary.tokens, summary.stopped) == (10, 10, 100, "max_tokens")


def test_rate_limit_spaces_requests(tmp_path):
    design = random_design(ITEMS, 16, seed=5)
    agent = RuleAgent()
    with open_store(tmp_path) as store:
        run(collect_async(design, agent, store, concurrency=8, rate_limit=50.0, progress=False))
    starts = sorted(t for _, t in agent.calls)
    assert len(starts) == 16
    assert min(b - a for a, b in zip(starts, starts[1:])) >= 1 / 50 - 1e-3


def test_an_agent_bug_stores_what_was_answered_and_is_raised(tmp_path):
    design = random_design(ITEMS, 80, seed=6)
    bad = design.shown()[30]
    agent = RuleAgent(failures={bad: [ValueError("bad caption")]}, latency=0.001)
    with open_store(tmp_path) as store:
        with pytest.raises(ValueError, match="bad caption") as info:
            run(collect_async(design, agent, store, concurrency=4, flush_every=1000, progress=False))
        notes = "\n".join(info.value.__notes__)
        stored = len(store)
        assert f"showing {bad}" in notes and f"{stored} trials answered before the failure are stored" in notes
        assert 26 <= stored < 80 and store.counts()["error"] == 0
        resumed = RuleAgent()
        summary = run(collect_async(design, resumed, store, progress=False))
        assert summary.n_asked == 80 - stored and len(store) == 80


def test_cancelling_the_call_stores_the_answers_received(tmp_path):
    design = random_design(ITEMS, 400, seed=8)
    agent = RuleAgent(latency=0.01)
    with open_store(tmp_path) as store:

        async def cancel_soon():
            task = asyncio.ensure_future(
                collect_async(
                    design, agent, store, concurrency=4, flush_every=10**6, flush_seconds=3600, progress=False
                )
            )
            while len(agent.calls) < 40:
                await asyncio.sleep(0.005)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        run(cancel_soon())
        # every answer received was stored by the final flush, the ones cancelled in flight were not
        assert len(agent.calls) - 4 <= len(store) < len(agent.calls) < 400


def test_a_store_failure_is_raised(tmp_path):
    design = random_design([f"w{i:02d}" for i in range(10)], 20, seed=9)
    with open_store(tmp_path) as store:
        with pytest.raises(InputError, match="not in the store vocabulary"):
            run(collect_async(design, RuleAgent(), store, flush_every=5, progress=False))
        assert len(store) == 0


def test_agents_and_options_are_checked(tmp_path):
    design = random_design(ITEMS, 10, seed=7)
    with open_store(tmp_path) as store:
        with pytest.raises(InputError, match="cannot take answers of agent 'other'"):
            run(collect_async(design, RuleAgent(name="other"), store, progress=False))
        with pytest.raises(InputError, match="different prompts"):
            run(collect_async(design, [RuleAgent(), RuleAgent(prompt_hash="p2")], store, progress=False))
        with pytest.raises(InputError, match="concurrency"):
            run(collect_async(design, RuleAgent(), store, concurrency=0, progress=False))
        with pytest.raises(InputError, match="request_timeout"):
            run(collect_async(design, RuleAgent(), store, request_timeout=-1, progress=False))
        with pytest.raises(InputError, match="max_requests must be an integer"):
            run(collect_async(design, RuleAgent(), store, max_requests=2.5, progress=False))
        with pytest.raises(InputError, match="not an AsyncAgent"):
            run(collect_async(design, object(), store, progress=False))
        run(collect_async(design, RuleAgent(), store, max_requests=3, progress=False))
        with pytest.raises(InputError, match="prompt_hash"):
            run(collect_async(design, RuleAgent(prompt_hash="p2"), store, progress=False))


def test_several_designs_and_a_progress_bar(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ODDONEOUT_PROGRESS", "1")
    designs = concat_designs(random_design(ITEMS, 30, seed=0), repeated_design(ITEMS, 10, 3, seed=1))
    with open_store(tmp_path) as store:
        summary = collect_remote(designs, RuleAgent(), store, concurrency=5, flush_every=7)
        assert summary.n_design == 60 and summary.n_asked == 60
    assert read_judgments(tmp_path / "llm.sqlite").groupby("design").size().to_dict() == {"random": 30, "repeats": 30}
    assert "collect llm" in capsys.readouterr().err


# --------------------------------------------------------------------------------------- real HTTP, fault server

#: Per-triplet fault schedules (replies at attempts 0, 1, ...; the last repeats), with the final
#: status and the number of requests each implies when the runner retries at most 2 times.
CASES = {
    "ok": (("ok",), "ok", 1),
    "500 twice": (("500", "500", "ok"), "ok", 3),
    "429 then ok": ((Reply("429", retry_after=0.25), "ok"), "ok", 2),
    "hang then ok": (("hang", "ok"), "ok", 2),
    "always 500": (("500",), "error", 3),
    "always 429": ((Reply("429", retry_after=0.05),), "error", 3),
    "always hang": (("hang",), "timeout", 3),
    "garbage": (("garbage",), "error", 1),
    "truncated": (("truncated",), "error", 1),
    "unparseable": (("unparseable",), "unparseable", 1),
    "ambiguous": (("ambiguous",), "ambiguous", 1),
}


def case_of(captions) -> str:
    """The case of a triplet: a fixed function of its captions, so every request of it follows one schedule."""
    return list(CASES)[int(hashlib.sha256("/".join(captions).encode()).hexdigest(), 16) % len(CASES)]


def fault_plan(captions, attempt):
    replies, _, _ = CASES[case_of(captions)]
    reply = replies[min(attempt, len(replies) - 1)]
    return reply if isinstance(reply, Reply) else Reply(reply)


def chat_agent(server, **options):
    return OpenAIChatAgent(
        "llm", "loopback", server.base_url, prompt=PAPER_LLM_PROMPT, captions=CAPTIONS, api_key_env=KEY_ENV, **options
    )


def test_faults_over_http_end_with_the_statuses_the_schedule_implies(tmp_path, monkeypatch, caplog, capsys):
    monkeypatch.setenv(KEY_ENV, SECRET)
    monkeypatch.setenv("ODDONEOUT_PROGRESS", "1")
    caplog.set_level(logging.DEBUG)
    design = random_design(ITEMS, 132, seed=11)
    captions = [tuple(CAPTIONS[i] for i in shown) for shown in design.shown()]
    cases = [case_of(c) for c in captions]
    assert set(cases) == set(CASES)  # every fault occurs
    expected_status = Counter(CASES[case][1] for case in cases)
    expected_requests = sum(CASES[case][2] for case in cases)

    with FaultServer(fault_plan) as server, TripletStore(tmp_path / "llm.sqlite", "llm", "loopback", ITEMS) as store:
        summary = collect_remote(
            design, chat_agent(server), store, concurrency=24, max_retries=2, backoff=0.01, request_timeout=1.0, seed=0
        )
        assert summary.stopped is None and summary.n_asked == 132 and summary.n_missing == 0
        assert {status: n for status, n in summary.counts.items() if n} == dict(expected_status)
        assert server.n_requests == summary.n_requests == expected_requests
        assert summary.n_retries == expected_requests - 132
        for c, case in zip(captions, cases):
            assert len(server.attempts[c]) == CASES[case][2], case
        # Retry-After is honoured: measured between the 429 and the next request, on the server
        for case, retry_after in (("429 then ok", 0.25), ("always 429", 0.05)):
            gaps = [b - a for c, k in zip(captions, cases) if k == case for a, b in pairwise(server.attempts[c])]
            assert gaps and min(gaps) >= retry_after - 1e-3, case
        assert summary.tokens == 42 * sum(
            status in ("ok", "unparseable", "ambiguous") for status in expected_status.elements()
        )
        frame = store.judgments()
        # each trial stored exactly once, with its case's status, and ok answers name the server's choice
        assert len(frame) == len(set(zip(frame["design"], frame["triplet_index"], frame["ordering"], frame["repeat"])))
        by_key = {
            tuple(row[:3]): row[3:]
            for row in frame[["item_0", "item_1", "item_2", "status", "choice"]].itertuples(index=False)
        }
        for shown, c, case in zip(design.shown(), captions, cases):
            status, choice = by_key[shown]
            assert status == CASES[case][1], case
            if status == "ok":
                assert choice == odd_one_out(c)
        again = collect_remote(design, chat_agent(server), store, progress=False)
        assert again.n_asked == 0 and server.n_requests == expected_requests  # a second call asks nothing
        export = store.export_parquet(tmp_path / "llm.parquet")
    # the key went to the server, and nowhere else
    assert server.authorizations == {f"Bearer {SECRET}"}
    secret = SECRET.encode()
    for path in [export, *tmp_path.glob("llm.sqlite*")]:
        assert secret not in path.read_bytes(), path
    captured = capsys.readouterr()
    assert "collect llm" in captured.err
    assert SECRET not in captured.err + captured.out + caplog.text


def test_budget_cap_over_http_sends_exactly_the_cap(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    design = random_design(ITEMS, 100, seed=12)
    plan = schedule("500", "ok")
    with (
        FaultServer(plan, latency=0.005) as server,
        TripletStore(tmp_path / "b.sqlite", "llm", "loopback", ITEMS) as store,
    ):
        agent = chat_agent(server)
        summary = collect_remote(design, agent, store, concurrency=8, max_requests=37, backoff=0.0, progress=False)
        assert server.n_requests == summary.n_requests == 37 and summary.stopped == "max_requests"
        assert len(store) == summary.n_asked and store.counts()["ok"] == summary.n_asked
        # the same agent resumes in a new event loop (its HTTP client was closed with the first one)
        rest = collect_remote(design, agent, store, concurrency=8, backoff=0.0, progress=False)
        assert rest.stopped is None and len(store) == 100 and store.counts()["ok"] == 100
        assert rest.n_asked == 100 - summary.n_asked


# --------------------------------------------------------------------------------------- killed and interrupted


def _key_counts(path: Path) -> tuple[int, int, int]:
    """Rows, distinct trial keys and keys stored more than once."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT count(*) FROM judgments").fetchone()[0]
        distinct = connection.execute(
            "SELECT count(*) FROM (SELECT DISTINCT design, triplet_index, ordering, repeat FROM judgments)"
        ).fetchone()[0]
        repeated = connection.execute(
            "SELECT count(*) FROM (SELECT 1 FROM judgments GROUP BY design, triplet_index, ordering, repeat "
            "HAVING count(*) > 1)"
        ).fetchone()[0]
    finally:
        connection.close()
    return rows, distinct, repeated


def _start_collector(path, server, n_triplets, concurrency, flush_every, flush_seconds):
    return subprocess.Popen(
        [sys.executable, str(SLOW_SCRIPT), str(path), server.base_url, str(n_triplets), str(concurrency),
         str(flush_every), str(flush_seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def test_sigkill_mid_collection_then_resume_stores_every_trial_exactly_once(tmp_path):
    path = tmp_path / "killed.sqlite"
    n_triplets = 800
    with FaultServer(latency=0.02) as server:
        process = _start_collector(path, server, n_triplets, 4, 5, 0.2)
        at_kill = kill_once_stored(process, path, 100)
        assert 100 <= at_kill < n_triplets

        slow = load_script(SLOW_SCRIPT)
        design = slow.random_design(slow.ITEMS, n_triplets, seed=0)
        server.latency = 0.0
        sent_before = server.n_requests
        with TripletStore(path, slow.NAME, slow.MODEL, slow.ITEMS) as store:
            assert len(store.missing(design)) == n_triplets - at_kill
            summary = collect_remote(design, slow.make_agent(server.base_url), store, concurrency=32, progress=False)
            assert summary.n_already_stored == at_kill and summary.n_asked == n_triplets - at_kill
            assert server.n_requests - sent_before == n_triplets - at_kill  # only the missing trials are asked
            assert set(
                store.judgments()[["design", "triplet_index", "ordering", "repeat"]].itertuples(index=False)
            ) == set(design.keys())
    assert _key_counts(path) == (n_triplets, n_triplets, 0)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_cleanly_storing_every_answer_received(tmp_path, signum):
    path = tmp_path / "interrupted.sqlite"
    n_triplets = 3000
    with FaultServer(latency=0.02) as server:
        # nothing is flushed before the stop: whatever is stored was written by the clean stop
        process = _start_collector(path, server, n_triplets, 8, 10**6, 3600)
        wait_for(lambda: server.n_answered >= 80, process, "80 answers")
        assert stored_count(path) == 0
        out, err = stop_with(process, signum, timeout=30)
        assert process.returncode == 130, err.decode()
        stored = stored_count(path)
        assert 80 - 8 <= stored <= server.n_answered < n_triplets
        assert f"{stored} trials answered in this call are stored" in err.decode()
        sent_at_stop = server.n_requests
        time.sleep(0.1)
        assert server.n_requests == sent_at_stop
    assert _key_counts(path) == (stored, stored, 0)
