"""What the install gave: package versions against constraints.txt, and llama.cpp's CPU build."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints.txt"

#: Dependencies with native code or a history of breaking releases: each must be pinned.
WATCHED = (
    "torch",
    "llama-cpp-python",
    "ray",
    "av",
    "sentence-transformers",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "himalaya",
    "nilearn",
)


def read_constraints(path: Path = CONSTRAINTS) -> dict[str, str]:
    """``{canonical name: pinned version}`` of a constraints file (``name==version`` lines)."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==":
            raise ValueError(f"{path}:{number}: expected name==version, got {raw!r}")
        pins[canonicalize_name(requirement.name)] = specifiers[0].version
    return pins


def installed_version(name: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def installed_versions(names: tuple[str, ...] = WATCHED) -> dict[str, str]:
    """Installed versions of ``names`` (those present)."""
    return {name: version for name in names if (version := installed_version(name)) is not None}


def same_release(installed: str, pinned: str) -> bool:
    """Whether an installed version is the pinned one; a local label (``2.13.0+cpu``) is ignored, as pip does."""
    return Version(installed).public == Version(pinned).public


def llama_cpu_features() -> dict[str, bool] | None:
    """The CPU features llama.cpp was compiled with (from ``llama_print_system_info``), or None without it."""
    try:
        import llama_cpp
    except ImportError:
        return None
    from oddoneout.agents.llama_local import compiled_cpu_features

    return compiled_cpu_features(llama_cpp.llama_print_system_info().decode(errors="replace"))
