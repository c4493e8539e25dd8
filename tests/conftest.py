"""Shared pytest set-up: the --run-slow option, quiet progress bars, isolated native tests, the version header."""

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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """Tests marked ``isolated`` run in their own interpreter (tests/isolation.py)."""
    from isolation import run_isolated, wants_isolation

    if not wants_isolation(item):
        return None
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in run_isolated(item):
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The versions of the packages whose releases have broken installs before, and llama.cpp's CPU build."""
    from install_check import installed_versions, llama_cpu_features

    versions = ", ".join(f"{name} {version}" for name, version in installed_versions().items())
    features = llama_cpu_features()
    llama = "not installed" if features is None else " ".join(name for name, on in features.items() if on)
    return [f"oddoneout dependencies: {versions}", f"llama.cpp compiled CPU features: {llama}"]
