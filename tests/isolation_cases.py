"""Cases for tests/test_isolation.py (not collected by the default run: the name has no test_ prefix)."""

import faulthandler

import pytest

pytestmark = pytest.mark.isolated


def test_crashes_the_interpreter():
    faulthandler._sigsegv()


def test_passes_after_the_crash():
    assert 1 + 1 == 2


def test_is_skipped():
    pytest.skip("nothing to do here")


def test_fails_plainly():
    assert "answer" == "other answer"
