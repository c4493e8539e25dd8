"""Run tests marked ``isolated`` each in a fresh Python process.

Native model code (llama.cpp, PyTorch models loaded from disk) can crash the interpreter: a segfault
in one test would otherwise end the whole pytest run with no report. Each isolated test runs as
``python -m pytest NODEID`` in a subprocess (a fresh interpreter, not a fork: a forked child of a
process whose OpenMP pool is alive can hang); its outcome, output and, after a crash, the signal and
the faulthandler traceback are reported as that test's result.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from _pytest.reports import TestReport

#: Set in the child process, so it runs the test itself.
CHILD_VARIABLE = "ODDONEOUT_ISOLATED_CHILD"
#: Longest an isolated test may run before it is reported as hung.
TIMEOUT_S = 900
#: Characters of the child's output kept in a failure report.
OUTPUT_TAIL = 12_000


def wants_isolation(item: pytest.Item) -> bool:
    """Whether ``item`` should run in a subprocess here (not already a child, not skipped anyway)."""
    if os.environ.get(CHILD_VARIABLE) or item.get_closest_marker("isolated") is None:
        return False
    return item.get_closest_marker("skip") is None


def _child_command(item: pytest.Item, junit: Path) -> list[str]:
    command = [sys.executable, "-m", "pytest", item.nodeid, "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"]
    if item.config.getoption("--run-slow"):
        command.append("--run-slow")
    return command


def _outcome_from_junit(junit: Path) -> tuple[str, str | None]:
    """("passed" | "failed" | "skipped", message) of the one test case in a JUnit XML file."""
    cases = list(ElementTree.parse(junit).getroot().iter("testcase"))
    if len(cases) != 1:
        return "failed", f"the isolated run reported {len(cases)} test cases instead of 1"
    for tag in ("failure", "error"):
        element = cases[0].find(tag)
        if element is not None:
            return "failed", (element.text or element.get("message") or tag)
    skipped = cases[0].find("skipped")
    if skipped is not None:
        return "skipped", skipped.get("message") or "skipped"
    return "passed", None


def run_isolated(item: pytest.Item) -> list[TestReport]:
    """Run ``item`` in a fresh interpreter; return its setup, call and teardown reports."""
    env = {**os.environ, CHILD_VARIABLE: "1"}
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "result.xml"
        try:
            done = subprocess.run(
                _child_command(item, junit),
                cwd=item.config.rootpath,
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as exc:
            output = (exc.stdout or "") + (exc.stderr or "") if isinstance(exc.stdout, str) else ""
            outcome, message = "failed", f"isolated test hung: no result after {TIMEOUT_S} s\n{output[-OUTPUT_TAIL:]}"
        else:
            output = done.stdout + done.stderr
            if done.returncode < 0:
                name = signal.Signals(-done.returncode).name
                outcome = "failed"
                message = f"crashed with {name} in its own process; its output:\n{output[-OUTPUT_TAIL:]}"
            elif junit.is_file():
                outcome, message = _outcome_from_junit(junit)
                if outcome == "failed":
                    message = f"{message}\n--- output of the isolated process ---\n{output[-OUTPUT_TAIL:]}"
            else:
                outcome, message = "failed", f"no result (exit {done.returncode}); its output:\n{output[-OUTPUT_TAIL:]}"
    common = {"nodeid": item.nodeid, "location": item.location, "keywords": {k: 1 for k in item.keywords}}
    if outcome == "skipped":
        path, line, _ = item.location
        setup = TestReport(**common, outcome="skipped", longrepr=(str(path), (line or 0) + 1, message), when="setup")
        return [setup, TestReport(**common, outcome="passed", longrepr=None, when="teardown")]
    call = TestReport(**common, outcome=outcome, longrepr=message, when="call")
    return [
        TestReport(**common, outcome="passed", longrepr=None, when="setup"),
        call,
        TestReport(**common, outcome="passed", longrepr=None, when="teardown"),
    ]
