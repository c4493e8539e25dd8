"""The install is the one the tests passed with: pinned versions, tested ranges, a portable llama.cpp build."""

from __future__ import annotations

import platform
import re
import tomllib
from pathlib import Path

import pytest
from install_check import CONSTRAINTS, WATCHED, installed_version, llama_cpu_features, read_constraints, same_release
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from oddoneout.agents.llama_local import NON_PORTABLE_FEATURES, compiled_cpu_features, non_portable_features

ROOT = Path(__file__).resolve().parents[1]


def _declared_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        requirements += [Requirement(r) for r in extra if not r.startswith("oddoneout[")]
    return requirements


def test_every_watched_dependency_is_pinned():
    pins = read_constraints()
    missing = [name for name in WATCHED if canonicalize_name(name) not in pins]
    assert not missing, f"{CONSTRAINTS.name} does not pin {missing}"


def test_installed_versions_are_the_pinned_ones():
    """What pip installed is exactly constraints.txt (run the README's install command if this fails)."""
    pins = read_constraints()
    wrong = {
        name: (installed, pinned)
        for name, pinned in pins.items()
        if (installed := installed_version(name)) is not None and not same_release(installed, pinned)
    }
    assert not wrong, f"installed (version, pinned) differ from {CONSTRAINTS.name}: {wrong}"
    for name in WATCHED:
        assert installed_version(name) is not None, f"{name} is not installed (the test extra installs it)"


def test_declared_ranges_have_upper_bounds_and_admit_the_pins():
    pins = read_constraints()
    for requirement in _declared_requirements():
        operators = {spec.operator for spec in requirement.specifier}
        assert "<" in operators or "==" in operators, f"{requirement} has no upper bound"
        pinned = pins.get(canonicalize_name(requirement.name))
        assert pinned is not None, f"{requirement.name} is declared but not pinned in {CONSTRAINTS.name}"
        assert requirement.specifier.contains(pinned, prereleases=True), f"pin {pinned} outside {requirement}"


def test_constraints_reader_refuses_a_range(tmp_path):
    path = tmp_path / "constraints.txt"
    path.write_text("# comment\nnumpy==2.0.0\ntorch>=2\n")
    with pytest.raises(ValueError, match=r"constraints.txt:3"):
        read_constraints(path)
    path.write_text("numpy==2.0.0  # pinned\n\n")
    assert read_constraints(path) == {"numpy": "2.0.0"}


def test_local_version_labels_match_as_pip_matches_them():
    assert same_release("2.13.0+cpu", "2.13.0")
    assert not same_release("2.13.1", "2.13.0")


def test_system_info_is_parsed_and_native_builds_are_recognised():
    native = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 1 | AVX512_VNNI = 1 | AMX_INT8 = 1 | OPENMP = 1 |"
    portable = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | OPENMP = 1 |"
    assert compiled_cpu_features(portable)["AVX2"] is True
    assert non_portable_features(portable) == []
    assert non_portable_features(native) == ["AVX512", "AVX512_VNNI", "AMX_INT8"]


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 builds only")
def test_installed_llama_cpp_is_a_portable_build():
    features = llama_cpu_features()
    if features is None:
        pytest.skip("llama-cpp-python is not installed")
    assert features.get("AVX2"), f"expected an AVX2 build, got {features}"
    compiled = [name for name in NON_PORTABLE_FEATURES if features.get(name)]
    assert not compiled, f"llama.cpp was built natively with {compiled}: reinstall as the README says"


def test_readme_test_command_is_the_one_ci_runs():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    test_commands = [c for c in commands if c.rstrip().endswith("-m pytest")]
    assert len(test_commands) == 1, "the README should show one test command"
    assert test_commands[0].strip() in (ROOT / ".ci" / "run").read_text()
    assert "-c constraints.txt" in test_commands[0]
