"""A running experiment's design enlarged: the server restarted on its folder keeps what it stored, asks the rest."""

from __future__ import annotations

import httpx
import numpy as np
from serve_study import Server, rows, store_path, write_study
from test_serve_admin import bearer, run_session

from oddoneout.collect.designs import encode_keys
from oddoneout.config import load_config
from oddoneout.pipeline.collect import study_designs

KEYS = "SELECT design, triplet_index, ordering, repeat FROM judgments ORDER BY design, triplet_index, ordering, repeat"


def _design_codes(config) -> dict[str, np.ndarray]:
    loaded = load_config(config)
    items = [f"item{i:02d}" for i in range(12)]
    return {design.name: design.key_codes() for design in study_designs(loaded, items, "people")}


def _answer_all(server: Server, state: dict, token: str) -> dict:
    while not state["done"]:
        trial = state["trials"][0]
        body = {"key": trial["key"], "choice": 0, "rt_ms": 800.0, "input": "key"}
        reply = httpx.post(server.url + "/api/answer", json=body, headers=bearer(token))
        assert reply.status_code == 200, reply.text
        state = reply.json()
    return state


def _answer_until_full(server: Server, max_sessions: int) -> dict:
    """New sessions answer every trial they get until the server has none left; the last state."""
    for _ in range(max_sessions):
        state = run_session(server, {}, [], catch_right=True)
        if state["full"]:
            break
        _answer_all(server, state, state["token"])
    return state


def test_a_design_enlarged_between_two_runs_of_the_server_keeps_the_old_answers(tmp_path):
    folder, out = tmp_path / "study", tmp_path / "out"
    config = write_study(folder, n_triplets=6, trials_per_session=4, practice_trials=0)
    small = _design_codes(config)
    with Server(config, out) as server:
        run_session(server, {}, [800.0] * 4, catch_right=True)  # a whole session
        open_session = run_session(server, {}, [800.0], catch_right=True)  # 1 of its 2 trials answered
        assert not open_session["done"] and len(open_session["trials"]) == 1
        server.stop()
    store = store_path(out)
    before = rows(store, KEYS)
    before_responses = rows(store, "SELECT * FROM serve_responses ORDER BY session_id, position")
    assert len(before) == 5
    leased = rows(store, "SELECT design, triplet_index, ordering, repeat, session_id FROM serve_leases")
    assert len(leased) == 1

    # more main trials, and a design added: the repeated triplets of the noise ceiling
    config.write_text(
        config.read_text()
        .replace("n_triplets = 6", "n_triplets = 14")
        .replace("repeated_triplets = 0", "repeated_triplets = 2\nn_repeats = 2")
    )
    large = _design_codes(config)
    assert set(large) == {"random", "repeats"} and np.isin(small["random"], large["random"]).all()  # prefix-stable
    with Server(config, out) as server:
        # the open session resumes with its leased trial, and now gets its full 4 trials from the new ones
        resumed = httpx.get(server.url + "/api/session", headers=bearer(open_session["token"])).json()
        assert resumed["trials"][0]["key"] == list(leased[0][:4]) and len(resumed["trials"]) == 3
        _answer_all(server, resumed, open_session["token"])
        assert _answer_until_full(server, 10)["full"]  # every trial of the enlarged study is answered
        server.stop()
    after = rows(store, KEYS)
    assert set(before) <= set(after)  # nothing stored before is lost ...
    assert set(before_responses) <= set(rows(store, "SELECT * FROM serve_responses"))
    assert len(after) == len(set(after)) == sum(len(codes) for codes in large.values())  # ... nor asked twice
    for name, codes in large.items():  # no stored trial is foreign to the enlarged design (the stage checks' view)
        stored = np.array([row[1:] for row in after if row[0] == name], dtype=np.int64)
        assert np.isin(encode_keys(stored[:, 0], stored[:, 1], stored[:, 2]), codes).all()
    assert rows(store, "SELECT count(*) FROM serve_leases") == [(0,)]
    assert rows(store, "SELECT count(*) FROM serve_responses") == [(len(after),)]


def test_a_round_recorded_by_oddoneout_adapt_is_served_without_a_restart(tmp_path):
    from typer.testing import CliRunner

    from oddoneout.cli import app

    folder, out = tmp_path / "study", tmp_path / "out"
    config = write_study(folder, n_triplets=60, trials_per_session=10, practice_trials=0)
    config.write_text(
        config.read_text().replace(
            "[design]\n", '[design]\nselection = "adaptive"\nadaptive_rounds = 2\nholdout_triplets = 10\n'
        )
    )
    first = _design_codes(config)
    assert set(first) == {"holdout", "adaptive"}
    with Server(config, out) as server:
        assert _answer_until_full(server, 20)["full"]  # people answer the holdout and round 0
        answered = rows(store_path(out), KEYS)
        assert len(answered) == sum(len(codes) for codes in first.values())
        result = CliRunner().invoke(app, ["adapt", str(config), "--out", str(out)])  # beside the running server
        assert result.exit_code == 0 and "round 1 recorded" in result.output, result.output
        (n_round,) = rows(store_path(out), "SELECT n_trials FROM adaptive_rounds WHERE round = 1")[0]
        assert _answer_until_full(server, 20)["full"]  # the same server now leases round 1
        server.stop()
    after = rows(store_path(out), KEYS)
    new = [key for key in after if key not in answered]
    assert len(new) == n_round and {key[0] for key in new} == {"adaptive"}  # every trial of round 1, once
    assert len(after) == len(set(after))
    selected = {row[0] for row in rows(store_path(out), "SELECT triplet_index FROM adaptive_trials WHERE round = 1")}
    assert {key[1] for key in new} == selected
