"""A segfault in an isolated test fails that test, with its traceback, and the run goes on."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_crash_is_one_failed_test_and_the_session_continues():
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/isolation_cases.py", "-p", "no:cacheprovider", "-rA"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "2 failed, 1 passed, 1 skipped" in output, output
    assert "crashed with SIGSEGV in its own process" in output
    assert "test_crashes_the_interpreter" in output and "Fatal Python error" in output  # the faulthandler traceback
    assert "'answer' == 'other answer'" in output  # a plain failure keeps pytest's message
    assert "nothing to do here" in output
