"""Shared pytest set-up: the --run-slow option and quiet progress bars."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("ODDONEOUT_PROGRESS", "0")
# Small matrix products are many times slower with several BLAS threads on a busy 2-core machine.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data():
    """The project's read-only real data (``ODDONEOUT_SHARED_DATA`` or ``../shared/data`` beside the repo)."""
    from pathlib import Path

    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    path = Path(os.environ.get("ODDONEOUT_SHARED_DATA", default))
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set ODDONEOUT_SHARED_DATA)")
    return path
