"""The admin page of ``oddoneout serve``: off without its token, 401 with a wrong one, numbers that match the store.

A real server on loopback (tests/serve_study.py), real participants' sessions over HTTP, and the
store read back with SQL.
"""

from __future__ import annotations

import statistics
import subprocess
import time

import httpx
import numpy as np
import pytest
from serve_study import ENV, Server, rows, serve_command, snapshot, store_path, write_study
from test_serve import Tags

from oddoneout.collect.leases import CATCH_DESIGN
from oddoneout.serve.admin import ADMIN_ENV, AdminKey
from oddoneout.serve.app import SECURITY_HEADERS
from oddoneout.serve.tokens import ServerKeys

ADMIN_TOKEN = "admin-token-" + "a" * 40
ADMIN = {**ENV, ADMIN_ENV: ADMIN_TOKEN}


def bearer(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


def odd_position(texts: list[str]) -> int:
    """The shown position of a catch trial's odd item (the text shown once)."""
    return next(i for i, text in enumerate(texts) if texts.count(text) == 1)


def run_session(server: Server, params: dict, rts: list[float], catch_right: bool) -> dict:
    """Consent and answer one trial per response time in ``rts`` (catch trials among them, right or wrong)."""
    state = httpx.post(server.url + "/api/session", json={"consent": True, "params": params}).json()
    token, n_trials = state["token"], 0
    for rt_ms in rts:
        trial = state["trials"][0]
        if trial["key"][0] == CATCH_DESIGN:
            odd = odd_position(trial["texts"])
            choice = odd if catch_right else (odd + 1) % 3
        else:
            choice, n_trials = n_trials % 3, n_trials + 1  # each position once in three trials
        body = {"key": trial["key"], "choice": choice, "rt_ms": rt_ms, "input": "key"}
        reply = httpx.post(server.url + "/api/answer", json=body, headers=bearer(token))
        assert reply.status_code == 200, reply.text
        state = reply.json()
    return {**state, "token": token}


def test_the_admin_routes_are_off_without_a_token(tmp_path):
    config, out = write_study(tmp_path / "study"), tmp_path / "out"
    with Server(config, out) as server:
        for path in ("/admin", "/api/admin/summary", "/static/admin.js", "/static/admin.css"):
            reply = httpx.get(server.url + path, headers=bearer(ADMIN_TOKEN))
            assert reply.status_code == 404, path
            assert reply.headers["content-security-policy"] == SECURITY_HEADERS["content-security-policy"]
        assert httpx.get(server.url + "/").status_code == 200  # the participant page is served as before
        server.stop()
    said = [line for line in server.output().splitlines() if "admin page" in line]
    assert len(said) == 1 and "is off" in said[0] and ADMIN_ENV in said[0]


def test_a_wrong_or_missing_admin_token_is_401_and_changes_nothing(tmp_path):
    config, out = write_study(tmp_path / "study"), tmp_path / "out"
    with Server(config, out, env=ADMIN) as server:
        session = run_session(server, {}, [900.0], catch_right=True)
        before = snapshot(store_path(out))
        url = server.url + "/api/admin/summary"
        refused = {
            "none": httpx.get(url),
            "wrong": httpx.get(url, headers=bearer("admin-token-" + "b" * 40)),
            "a prefix": httpx.get(url, headers=bearer(ADMIN_TOKEN[:-1])),
            "longer": httpx.get(url, headers=bearer(ADMIN_TOKEN + "a")),
            "basic": httpx.get(url, headers={"authorization": f"Basic {ADMIN_TOKEN}"}),
            "bare": httpx.get(url, headers={"authorization": ADMIN_TOKEN}),
            "a session token": httpx.get(url, headers=bearer(session["token"])),
        }
        assert {what: reply.status_code for what, reply in refused.items()} == {what: 401 for what in refused}
        assert all(set(reply.json()) == {"error"} for reply in refused.values())  # nothing of the summary
        assert snapshot(store_path(out)) == before
        assert httpx.get(url, headers=bearer(ADMIN_TOKEN)).status_code == 200
        page = httpx.get(server.url + "/admin")
        script = httpx.get(server.url + "/static/admin.js")
        server.stop()
    # the page: no inline code, its own script only, and texts set with textContent only
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert all(page.headers[name] == value for name, value in SECURITY_HEADERS.items())
    tags = Tags()
    tags.feed(page.text)
    assert [attrs.get("src") for tag, attrs in tags.seen if tag == "script"] == ["/static/admin.js"]
    assert not tags.script_text.strip()
    assert not [name for _, attrs in tags.seen for name in attrs if name.startswith("on") or name == "style"]
    code = "\n".join(line for line in script.text.splitlines() if not line.strip().startswith("//"))
    assert "textContent" in code and "sessionStorage" in code and "localStorage" not in code
    assert not [w for w in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(") if w in code]
    # the token is never written anywhere: not in the log, not in the study folder
    assert ADMIN_TOKEN not in server.output()
    for path in out.rglob("*"):
        if path.is_file():
            assert ADMIN_TOKEN.encode() not in path.read_bytes(), path


def test_a_weak_admin_token_stops_the_server_without_saying_it(tmp_path):
    config, out = write_study(tmp_path / "study"), tmp_path / "out"
    for weak in ("short-token", ENV["ODDONEOUT_SERVE_SECRET"]):
        done = subprocess.run(
            serve_command(config, out, 1), env={**ENV, ADMIN_ENV: weak}, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 2 and ADMIN_ENV in done.stderr and weak not in done.stderr + done.stdout
    assert AdminKey.from_env({}) is None and AdminKey.from_env({ADMIN_ENV: ""}) is None
    assert ADMIN_TOKEN not in repr(AdminKey.from_env({ADMIN_ENV: ADMIN_TOKEN}))


PID_A, PID_B = "a1" * 12, "b2" * 12


def test_the_summary_matches_the_store(tmp_path):
    config = write_study(
        tmp_path / "study",
        n_triplets=8,
        catch_trials=1,
        exclude_max_fast_fraction=0.5,
        exclude_min_catch_accuracy=0.5,
    )
    out = tmp_path / "out"
    with Server(config, out, env=ADMIN) as server:
        careful = run_session(server, {"PROLIFIC_PID": PID_A}, [900.0, 1200.0, 1500.0, 1100.0], catch_right=True)
        assert careful["done"]
        hasty = run_session(server, {"PROLIFIC_PID": PID_B, "STUDY_ID": "s"}, [90.0, 80.0, 70.0], catch_right=False)
        assert not hasty["done"]
        anonymous = httpx.post(server.url + "/api/session", json={"consent": True, "params": {}}).json()
        now = time.time()
        summary = httpx.get(server.url + "/api/admin/summary", headers=bearer(ADMIN_TOKEN))
        server.stop()
    assert summary.status_code == 200 and summary.headers["cache-control"] == "no-store"
    summary = summary.json()
    store = store_path(out)
    (answered,) = rows(store, "SELECT count(*) FROM judgments")[0]
    (leased,) = rows(store, f"SELECT count(*) FROM serve_leases WHERE expires_at > {now}")[0]
    assert answered == 5 and leased == 3  # hasty holds 1 trial, the anonymous session the 2 left
    assert summary["progress"] == {
        "answered": answered,
        "total": 8,
        "leased": leased,
        "fraction": answered / 8,
        "designs": [{"name": "random", "answered": answered, "total": 8}],
    }
    # every answer came within the last minutes
    assert summary["rates"]["last_5_min"] == {"answers": answered, "per_minute": answered / 5}
    assert summary["rates"]["last_60_min"] == {"answers": answered, "per_minute": answered / 60}
    assert summary["sessions"] == {"total": 3, "active": 2, "idle": 0, "finished": 1, "excluded": 1}
    keys = ServerKeys.from_env("people-test/people", ENV)
    by_session = {p["session_id"]: p for p in summary["participants"]}
    order = [str(s) for (s,) in rows(store, "SELECT session_id FROM serve_sessions ORDER BY created_at")]
    assert list(by_session) == order and order[2] == anonymous["token"].split(".")[0]
    a, b, c = summary["participants"]
    assert a["participant"] == keys.participant("prolific", PID_A)
    assert b["participant"] == keys.participant("prolific", PID_B)
    assert c["participant"] is None and c["n_answered"] == 0 and c["median_rt_ms"] is None and not c["excluded"]
    for record in (a, b):
        session_id = record["session_id"]
        rts = [rt for (rt,) in rows(store, f"SELECT rt_ms FROM serve_responses WHERE session_id = '{session_id}'")]
        joined = "judgments j JOIN serve_responses r USING (design, triplet_index, ordering, repeat)"
        choices = [c for (c,) in rows(store, f"SELECT j.choice FROM {joined} WHERE r.session_id = '{session_id}'")]
        right = rows(store, f"SELECT choice = odd_position FROM serve_catch WHERE session_id = '{session_id}'")
        assert record["n_answered"] == len(rts)
        assert record["median_rt_ms"] == pytest.approx(statistics.median(rts))
        assert record["fast_fraction"] == pytest.approx(np.mean(np.array(rts) < 300))
        assert record["choice_rate"] == pytest.approx(list(np.bincount(choices, minlength=3) / len(choices)))
        assert record["n_catch"] == len(right) == 1 and record["catch_accuracy"] == float(right[0][0])
    assert a["finished"] and a["n_answered"] == 3 and a["fast_fraction"] == 0 and a["catch_accuracy"] == 1.0
    assert a["position_p"] == pytest.approx(1.0) and not a["excluded"] and a["exclusion_reason"] == ""
    assert not b["finished"] and b["active"] and b["n_answered"] == 2 and b["fast_fraction"] == 1.0
    assert b["excluded"] and "too fast" in b["exclusion_reason"] and "catch" in b["exclusion_reason"]
    assert summary["rules"] == {"min_rt_ms": 300.0, "exclude_max_fast_fraction": 0.5, "exclude_min_catch_accuracy": 0.5}
