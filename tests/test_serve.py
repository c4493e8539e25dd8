"""``oddoneout serve`` as a participant's browser and an attacker see it: a real server on loopback, a real store.

Every test starts the command in a subprocess (tests/serve_study.py) and talks HTTP to it; what
the server stored is read from its SQLite file beside it (read-only, WAL).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from html.parser import HTMLParser

import httpx
import pytest
from serve_study import ENV, SALT, SECRET, Server, rows, serve_command, snapshot, store_path, write_study

from oddoneout.collect.store import read_judgments
from oddoneout.serve.app import MAX_BODY, SECURITY_HEADERS
from oddoneout.serve.tokens import ServerKeys

PROLIFIC = {"PROLIFIC_PID": "5f1a2b3c4d5e6f7a8b9c0d1e", "STUDY_ID": "study-1", "SESSION_ID": "sess-1"}


def start(server: Server, params: dict | None = None) -> dict:
    reply = httpx.post(server.url + "/api/session", json={"consent": True, "params": params or {}})
    assert reply.status_code == 200, reply.text
    return reply.json()


def auth(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


def answer(server: Server, token: str, trial: dict, choice: int = 0, input: str = "click", rt_ms: float = 800.0):
    body = {"key": trial["key"], "choice": choice, "rt_ms": rt_ms, "input": input}
    return httpx.post(server.url + "/api/answer", json=body, headers=auth(token))


def test_a_session_lands_in_the_store_and_survives_a_killed_server(tmp_path):
    config, out = write_study(tmp_path / "study"), tmp_path / "out"
    with Server(config, out) as server:
        session = start(server, PROLIFIC)
        assert session["n_trials"] == 3 and len(session["trials"]) == 3 and len(session["practice"]) == 2
        token, trials = session["token"], session["trials"]
        assert answer(server, token, trials[0], choice=2, input="key", rt_ms=1500).status_code == 200
        after = answer(server, token, trials[1], choice=1).json()
        assert after["n_answered"] == 2 and after["trials"] == trials[2:]
        reload = httpx.get(server.url + "/api/session", headers=auth(token)).json()
        assert reload["trials"] == trials[2:] and reload["n_answered"] == 2  # a reload continues
        server.stop(signal.SIGKILL)  # no graceful shutdown: every answer was already committed
    with Server(config, out) as server:
        resumed = httpx.get(server.url + "/api/session", headers=auth(token)).json()
        assert resumed["trials"] == trials[2:] and resumed["n_answered"] == 2
        again = start(server, PROLIFIC)  # the same participant, another browser: the same session
        assert again["token"] == token and again["trials"] == trials[2:]
        other = start(server, {**PROLIFIC, "PROLIFIC_PID": "6a6a6a6a6a6a6a6a6a6a6a6a"})
        assigned = [t["key"] for t in trials] + [t["key"] for t in other["trials"]]
        assert len({tuple(key) for key in assigned}) == 6  # nothing assigned twice, across the restart
        done = answer(server, token, trials[2]).json()
        assert done["done"] and done["trials"] == [] and done["completion_code"]
        assert server.stop(signal.SIGTERM) == 0
    assert "3 answers stored" in server.output()
    judgments = read_judgments(out / "triplets" / "people.parquet")  # exported when it stopped
    assert len(judgments) == 3 and set(judgments["status"]) == {"ok"} and set(judgments["agent"]) == {"people"}
    first = judgments[judgments["raw_answer"] == "key 3"].iloc[0]
    assert first["latency_s"] == pytest.approx(1.5) and first["choice"] == 2
    # the participant id is stored only as its salted hash
    keys = ServerKeys.from_env("people-test/people", ENV)
    ((participant, platform, study_ref, session_ref, code),) = rows(
        store_path(out),
        "SELECT participant, platform, study_ref, session_ref, completion_code FROM serve_sessions "
        f"WHERE session_id = '{token.split('.')[0]}'",
    )
    assert participant == keys.participant("prolific", PROLIFIC["PROLIFIC_PID"])
    assert (platform, study_ref, session_ref, code) == ("prolific", "study-1", "sess-1", done["completion_code"])
    for path in (out / "triplets").iterdir():
        assert PROLIFIC["PROLIFIC_PID"].encode() not in path.read_bytes(), path
    # the collect stage of a served system exports what the server stored (and asks nobody)
    (out / "triplets" / "people.parquet").unlink()
    command = [sys.executable, "-m", "oddoneout.cli", "collect", str(config), "--out", str(out)]
    subprocess.run(command, env=ENV, check=True, capture_output=True, timeout=120)
    assert len(read_judgments(out / "triplets" / "people.parquet")) == 3
    never_served = subprocess.run([*command[:-1], str(tmp_path / "empty")], env=ENV, capture_output=True, text=True)
    assert never_served.returncode == 2 and "oddoneout serve" in never_served.stderr


def refusals(server: Server, token: str, foreign: dict, mine: dict) -> list[tuple[str, int, int]]:
    """``(what, expected status, got)`` for every request that must be refused."""
    url = server.url
    forged = ServerKeys(b"another-secret-" + b"x" * 40, SALT.encode(), "people-test/people").token(token.split(".")[0])
    session_id, _, signature = token.partition(".")
    cases: list[tuple[str, int, httpx.Response]] = [
        ("no token", 401, httpx.get(url + "/api/session")),
        ("not bearer", 401, httpx.get(url + "/api/session", headers={"authorization": f"Basic {token}"})),
        ("forged signature", 401, httpx.get(url + "/api/session", headers=auth(forged))),
        ("altered signature", 401, httpx.get(url + "/api/session", headers=auth(f"{session_id}.{signature[::-1]}"))),
        ("unknown session", 401, httpx.get(url + "/api/session", headers=auth(ServerKeys(
            SECRET.encode(), SALT.encode(), "people-test/people").token("A" * 24)))),
        ("answer without token", 401, httpx.post(url + "/api/answer", json={"key": mine["key"], "choice": 0,
                                                                            "rt_ms": 5, "input": "key"})),
        ("another session's trial", 409, answer(server, token, foreign)),
        ("a trial never leased", 409, answer(server, token, {"key": ["random", 7, 0, 0]})),
        ("a design not served", 409, answer(server, token, {"key": ["other", *mine["key"][1:]]})),
        ("a malformed key", 422, answer(server, token, {"key": [mine["key"][0], "1", 0, 0]})),
        ("a short key", 422, answer(server, token, {"key": mine["key"][:3]})),
        ("choice 3", 422, answer(server, token, mine, choice=3)),
        ("choice -1", 422, answer(server, token, mine, choice=-1)),
        ("choice true", 422, answer(server, token, mine, choice=True)),
        ("choice 1.0", 422, answer(server, token, mine, choice=1.0)),
        ("choice '1'", 422, answer(server, token, mine, choice="1")),
        ("negative rt", 422, answer(server, token, mine, rt_ms=-3)),
        ("rt of days", 422, answer(server, token, mine, rt_ms=1e9)),
        ("unknown input", 422, answer(server, token, mine, input="voice")),
        ("NaN rt", 400, httpx.post(url + "/api/answer", headers={**auth(token), "content-type": "application/json"},
                                   content=f'{{"key": {mine["key"]}, "choice": 0, "rt_ms": NaN, "input": "key"}}'
                                   .replace("'", '"'))),
        ("not JSON", 400, httpx.post(url + "/api/answer", headers={**auth(token), "content-type": "application/json"},
                                     content=b"choice=1")),
        ("a JSON array", 400, httpx.post(url + "/api/answer", headers=auth(token), json=[mine["key"], 0])),
        ("form content type", 415, httpx.post(url + "/api/answer", headers=auth(token), data={"choice": "0"})),
        ("oversized body", 413, httpx.post(url + "/api/answer", headers=auth(token),
                                           json={"key": mine["key"], "choice": 0, "rt_ms": 5, "input": "key",
                                                 "pad": "x" * MAX_BODY})),
        ("oversized chunked body", 413, httpx.post(
            url + "/api/answer", headers={**auth(token), "content-type": "application/json"},
            content=iter([b'{"pad": "', b"x" * MAX_BODY, b'"}']))),
        ("no consent", 422, httpx.post(url + "/api/session", json={"params": {}})),
        ("a bad platform id", 422, httpx.post(url + "/api/session", json={"consent": True, "params": {
            "PROLIFIC_PID": "<script>"}})),
        ("an MTurk preview", 422, httpx.post(url + "/api/session", json={"consent": True, "params": {
            "workerId": "W1", "hitId": "H1", "assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE"}})),
        ("GET an answer", 405, httpx.get(url + "/api/answer", headers=auth(token))),
        ("an unknown static file", 404, httpx.get(url + "/static/../app.py")),
    ]  # fmt: skip
    return [(what, expected, reply.status_code) for what, expected, reply in cases]


def test_forged_replayed_and_impossible_requests_get_a_4xx_and_change_nothing(tmp_path):
    config, out = write_study(tmp_path / "study"), tmp_path / "out"
    with Server(config, out) as server:
        mine = start(server)
        theirs = start(server)
        token = mine["token"]
        first = mine["trials"][0]
        assert answer(server, token, first).status_code == 200
        before = snapshot(store_path(out))
        replay = answer(server, token, first, choice=1)
        assert replay.status_code == 409 and "not leased" in replay.json()["error"]
        wrong = [case for case in refusals(server, token, theirs["trials"][0], mine["trials"][1]) if case[1] != case[2]]
        assert not wrong, wrong
        # a session that was refused still works, and nothing it was refused for was stored
        assert snapshot(store_path(out)) == before
        assert answer(server, token, mine["trials"][1]).status_code == 200
        server.stop()


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside script elements."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, dict]] = []
        self.script_text, self._in_script = "", False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.seen.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data


def test_every_response_carries_the_security_headers_and_the_page_has_no_inline_code(tmp_path):
    config, out = write_study(tmp_path / "study"), tmp_path / "out"
    with Server(config, out) as server:
        replies = [
            httpx.get(server.url + "/"),
            httpx.get(server.url + "/static/participant.js"),
            httpx.get(server.url + "/api/session"),  # a 401
            httpx.get(server.url + "/nothing-here"),  # a 404
            httpx.post(server.url + "/api/session", json={"consent": True, "params": {}}),
        ]
        server.stop()
    for reply in replies:
        for name, value in SECURITY_HEADERS.items():
            assert reply.headers.get(name) == value, (reply.url, name)
    page = replies[0].text
    assert "'unsafe-inline'" not in SECURITY_HEADERS["content-security-policy"]
    tags = Tags()
    tags.feed(page)
    assert [attrs.get("src") for tag, attrs in tags.seen if tag == "script"] == ["/static/participant.js"]
    assert not tags.script_text.strip()  # no inline script
    assert not [name for _, attrs in tags.seen for name in attrs if name.startswith("on") or name == "style"]
    assert "http://" not in page and "https://" not in page  # nothing from elsewhere
    assert replies[1].headers["content-type"].startswith("text/javascript")
    code = "\n".join(line for line in replies[1].text.splitlines() if not line.strip().startswith("//"))
    assert not [word for word in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(")
                if word in code]  # texts are set with textContent only  # fmt: skip


def test_an_expired_lease_goes_back_to_the_pool_over_http(tmp_path):
    config, out = write_study(tmp_path / "study", lease_seconds=1.5, trials_per_session=2), tmp_path / "out"
    with Server(config, out) as server:
        slow = start(server)
        time.sleep(2.0)
        fast = start(server)
        assert fast["trials"] == slow["trials"]  # the expired trials are the first ones free again
        late = answer(server, slow["token"], slow["trials"][0])
        assert late.status_code == 409
        back = httpx.get(server.url + "/api/session", headers=auth(slow["token"])).json()
        assert back["n_answered"] == 0 and len(back["trials"]) == 2
        assert not {tuple(t["key"]) for t in back["trials"]} & {tuple(t["key"]) for t in fast["trials"]}
        assert answer(server, fast["token"], fast["trials"][0]).status_code == 200
        server.stop()
    assert rows(store_path(out), "SELECT count(*) FROM judgments") == [(1,)]


def test_one_writer_per_folder_and_the_secrets_are_required(tmp_path):
    config, out = write_study(tmp_path / "study"), tmp_path / "out"
    without = {key: value for key, value in ENV.items() if key != "ODDONEOUT_SERVE_SECRET"}
    refused = subprocess.run(serve_command(config, out, 1), env=without, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "ODDONEOUT_SERVE_SECRET" in refused.stderr
    with Server(config, out) as server:
        second = subprocess.run(serve_command(config, out, 1), env=ENV, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and "is being written by" in second.stderr and "oddoneout serve" in second.stderr
        server.stop()
    not_human = write_study(tmp_path / "other")
    not_human.write_text(not_human.read_text().replace('agent = "human"', 'agent = "simulated"\nfeatures = "x"')
                         .split("trials_per_session")[0])  # fmt: skip
    wrong = subprocess.run(serve_command(not_human, tmp_path / "o2", 1), env=ENV, capture_output=True, text=True)
    assert wrong.returncode == 2 and "--system" in wrong.stderr
