"""One writer per study folder: a second writer stops at once, a killed holder's lock is taken over."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from fault_study import ENV, run_command, summary, wait_for_lock

from oddoneout.errors import InputError
from oddoneout.folder_lock import FolderBusyError, holder, writer_lock


def test_a_second_writer_is_refused_with_the_holders_name(tmp_path):
    lock = tmp_path / ".oddoneout.lock"
    with writer_lock(lock, command="first") as taken:
        assert taken == {}
        record = holder(lock)
        assert record["pid"] == os.getpid() and record["running"] and record["command"] == "first"
        with pytest.raises(FolderBusyError, match=rf"being written by pid {os.getpid()} .*'first'") as refused:
            with writer_lock(lock, command="second"):
                pass
        assert isinstance(refused.value, InputError)
    assert holder(lock)["running"] is False  # released cleanly
    with writer_lock(lock, command="third") as taken:  # free again, and nothing to take over
        assert taken == {}


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path):
    lock = tmp_path / ".oddoneout.lock"
    script = textwrap.dedent(f"""
        import time
        from oddoneout.folder_lock import writer_lock
        with writer_lock({str(lock)!r}, command="doomed"):
            print("held", flush=True)
            time.sleep(60)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusyError, match=f"pid {process.pid}"):
            with writer_lock(lock):
                pass
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    with writer_lock(lock, command="heir") as taken:
        assert taken["taken_over"]["pid"] == process.pid and taken["taken_over"]["command"] == "doomed"
        assert holder(lock)["command"] == "heir"


def test_two_runs_on_one_folder_the_second_stops_the_first_finishes(tmp_path):
    out = tmp_path / "out"
    first = subprocess.Popen(run_command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        wait_for_lock(out, first)
        second = subprocess.run(run_command(out), capture_output=True, text=True, env=ENV, timeout=120)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"being written by pid {first.pid}" in lines[0], second.stderr
        _, stderr = first.communicate(timeout=600)
    finally:
        first.kill()
    assert first.returncode == 0, stderr
    assert summary(out)["systems"]["mllm"]["n_judgments"] == 6000 + 100 * 3 + 120  # every trial, once
    assert "already stored" not in stderr  # the second run asked nothing
