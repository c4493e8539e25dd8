"""Token-bucket limits of ``oddoneout serve``: a burst gets 429 + Retry-After and changes nothing; people never do."""

from __future__ import annotations

import time

import httpx
import pytest
from serve_study import Server, rows, snapshot, store_path, write_study

from oddoneout.serve.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_its_rate():
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)  # one token comes in 1/2 s
    assert limiter.retry_after("a") == 1 and limiter.take("b") == 0.0  # a refusal takes nothing; keys apart
    clock.now += 0.5
    assert limiter.take("a") == 0.0 and limiter.take("a") > 0
    clock.now += 10
    assert [limiter.take("a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # refilled up to the burst, not beyond


def test_a_limiter_forgets_full_buckets_first_and_keeps_its_size():
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=2, max_keys=10, clock=clock)
    assert limiter.take("flooder") == limiter.take("flooder") == 0.0  # empty now
    clock.now += 0.1
    for i in range(9):
        limiter.take(f"early-{i}")
    assert len(limiter) == 10
    clock.now += 1.5  # the early visitors' buckets are full again, the flooder's is not (1.6 tokens)
    for i in range(5):
        limiter.take(f"late-{i}")  # the first one is one too many: the full buckets are forgotten
    assert len(limiter) == 6
    # the flooder's bucket was kept (a forgotten one would start full, with 2 tokens)
    assert limiter.take("flooder") == 0.0 and limiter.take("flooder") > 0


def answer(server: Server, token: str, trial: dict) -> httpx.Response:
    body = {"key": trial["key"], "choice": 1, "rt_ms": 700.0, "input": "click"}
    return httpx.post(server.url + "/api/answer", json=body, headers={"authorization": f"Bearer {token}"})


def test_a_burst_of_answers_gets_429_with_retry_after_and_changes_nothing(tmp_path):
    config = write_study(
        tmp_path / "study", n_triplets=12, trials_per_session=8, answer_burst=4, answers_per_second=0.5
    )
    out = tmp_path / "out"
    with Server(config, out) as server:
        state = httpx.post(server.url + "/api/session", json={"consent": True, "params": {}}).json()
        token, trials = state["token"], state["trials"]
        assert [answer(server, token, trial).status_code for trial in trials[:4]] == [200] * 4
        before = snapshot(store_path(out))
        refused = [answer(server, token, trial) for trial in trials[4:8]]
        reload = httpx.get(server.url + "/api/session", headers={"authorization": f"Bearer {token}"})
        assert [reply.status_code for reply in [*refused, reload]] == [429] * 5
        assert all(1 <= int(reply.headers["retry-after"]) <= 2 for reply in refused)
        assert "too many requests" in refused[0].json()["error"]
        assert snapshot(store_path(out)) == before  # refused before anything changed: leases, answers, sessions
        time.sleep(int(refused[-1].headers["retry-after"]))
        assert answer(server, token, trials[4]).status_code == 200  # the same answer, once the bucket has a token
        # another session has its own bucket
        other = httpx.post(server.url + "/api/session", json={"consent": True, "params": {}}).json()
        assert answer(server, other["token"], other["trials"][0]).status_code == 200
        server.stop()
    assert rows(store_path(out), "SELECT count(*) FROM judgments") == [(6,)]


def test_session_starts_are_limited_per_client_address(tmp_path):
    config = write_study(tmp_path / "study", n_triplets=30, session_burst=2, sessions_per_minute=1.0)
    out = tmp_path / "out"
    consent = {"consent": True, "params": {}}
    with Server(config, out) as server:
        url = server.url + "/api/session"
        assert [httpx.post(url, json=consent).status_code for _ in range(2)] == [200, 200]
        before = snapshot(store_path(out))
        third = httpx.post(url, json=consent)
        assert third.status_code == 429 and 30 <= int(third.headers["retry-after"]) <= 60
        assert snapshot(store_path(out)) == before  # no session, no lease
        # behind a reverse proxy on loopback, each client is its X-Forwarded-For address (uvicorn's default trust)
        proxied = httpx.post(url, json=consent, headers={"x-forwarded-for": "203.0.113.7"})
        assert proxied.status_code == 200
        server.stop()
    assert rows(store_path(out), "SELECT count(*) FROM serve_sessions") == [(3,)]


def test_a_fast_honest_participant_is_never_refused_with_the_defaults(tmp_path):
    config = write_study(tmp_path / "study", n_triplets=45, trials_per_session=45)
    out = tmp_path / "out"
    with Server(config, out) as server:
        state = httpx.post(server.url + "/api/session", json={"consent": True, "params": {}}).json()
        token, codes = state["token"], []
        while state["trials"]:
            time.sleep(0.1)  # ten answers a second: three times what a person can click
            reply = answer(server, token, state["trials"][0])
            codes.append(reply.status_code)
            state = reply.json()
        server.stop()
    assert codes == [200] * 45 and state["done"]
