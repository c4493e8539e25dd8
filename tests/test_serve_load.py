"""A crowd of simulated participants against a real ``oddoneout serve``: every trial answered once, across a kill."""

from __future__ import annotations

import signal
import threading
import time

from serve_crowd import run_crowd
from serve_study import Server, rows, store_path, write_study

N_TRIPLETS = 1500


def stored_keys(out) -> list[tuple]:
    return rows(store_path(out), "SELECT design, triplet_index, ordering, repeat FROM judgments")


def test_a_hundred_participants_at_once_complete_a_design_once(tmp_path):
    config = write_study(tmp_path / "study", n_triplets=N_TRIPLETS, n_items=40, trials_per_session=10)
    out = tmp_path / "out"
    with Server(config, out) as server:
        result = run_crowd(server.url, concurrency=100, timeout=600)
        assert server.stop(signal.SIGTERM) == 0
    keys = stored_keys(out)
    assert len(keys) == len(set(keys)) == N_TRIPLETS  # the whole design, nothing twice
    assert sorted(result.answered) == sorted(keys)  # every answer acknowledged is stored, and only those
    assert result.sessions == N_TRIPLETS // 10 and result.refused == 0


def test_a_server_killed_mid_run_loses_nothing_and_assigns_nothing_twice(tmp_path):
    config = write_study(tmp_path / "study", n_triplets=N_TRIPLETS, n_items=40, trials_per_session=10)
    out = tmp_path / "out"
    server = Server(config, out)
    crowd: dict = {}
    thread = threading.Thread(target=lambda: crowd.update(result=run_crowd(server.url, concurrency=100, timeout=600)))
    thread.start()
    while len(stored_keys(out)) < N_TRIPLETS // 3:
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    at_kill = set(stored_keys(out))
    server = Server(config, out, port=server.port)  # the participants' clients reconnect to the same address
    thread.join(timeout=600)
    assert server.stop(signal.SIGTERM) == 0
    result, keys = crowd["result"], stored_keys(out)
    assert at_kill <= set(keys)  # nothing stored before the kill was lost
    assert len(keys) == len(set(keys)) == N_TRIPLETS
    assert set(result.answered) <= set(keys) and len(result.answered) == len(set(result.answered))
    assert result.retries > 0  # the kill was felt
