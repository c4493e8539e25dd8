"""The package's layering, read from its source (docs/architecture.md): no import from a lower layer up to a
higher one, the triplet core imports nothing above it, no import cycles.

Every ``import`` statement counts, at module level or inside a function, since a deferred
import is still a dependency; imports under ``if TYPE_CHECKING:`` (annotations only) do not.
``from a.b import c`` depends on ``a.b.c`` when that is a module, else on ``a.b``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import oddoneout

PACKAGE = "oddoneout"
ROOT = Path(oddoneout.__file__).parent
CORE = "oddoneout.triplets"
#: What the core may import from the package besides itself.
CORE_MAY_IMPORT = {"oddoneout.errors", "oddoneout.provenance", "oddoneout.files"}
#: Cycles that exist and are to be removed; one that disappears must be struck from here.
KNOWN_CYCLES: list[list[str]] = []
#: The layers, bottom up (docs/architecture.md): a top-level module or package may import from its own
#: layer and the ones below, never from a layer above. ``oddoneout`` itself is the package's face.
LAYERS = [
    {"oddoneout", "errors", "progress", "scoring", "settings", "folder_lock", "atomic", "files"},
    {"provenance", "study_folder", "rsm", "triplets", "formats", "embedding", "media", "stimuli", "datasets"},
    {"embed", "agents", "collect"},
    {"config"},
    {"neural", "interpret"},
    {"studies", "report"},
    {"pipeline", "cli", "serve"},
]


def _module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` (at ``path``) imports."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + is_package]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in modules else base)
    return {target for target in targets if _within(target, PACKAGE) and target != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    unknown = {(name, target) for name, targets in graph.items() for target in targets if target not in modules}
    assert not unknown, f"imports of modules that do not exist: {sorted(unknown)}"
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def test_the_graph_sees_module_and_function_level_imports():
    graph = _graph()
    assert "oddoneout.triplets.data" in graph["oddoneout.triplets"]
    assert "oddoneout.collect.store" in graph["oddoneout.cli"]  # imported inside a function


def test_the_triplet_core_imports_nothing_above_it():
    upward = {
        (name, target)
        for name, targets in _graph().items()
        if _within(name, CORE)
        for target in targets
        if not _within(target, CORE) and target not in CORE_MAY_IMPORT
    }
    assert not upward, f"the triplet core imports from outside itself: {sorted(upward)}"


def _top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _layer(name: str) -> int:
    top = _top(name)
    found = [number for number, members in enumerate(LAYERS) if top in members]
    assert found, f"{top} is in no layer of LAYERS (add it, and to docs/architecture.md)"
    return found[0]


def test_no_import_runs_up_the_layers():
    graph = _graph()
    upward = sorted(
        (name, target) for name, targets in graph.items() for target in targets if _layer(target) > _layer(name)
    )
    assert not upward, f"imports from a lower layer up to a higher one: {upward}"


def test_every_layer_member_exists():
    tops = {_top(name) for name in _graph()}
    assert set().union(*LAYERS) == tops, sorted(set().union(*LAYERS) ^ tops)


def test_no_import_cycles():
    cycles = _cycles(_graph())
    new = [cycle for cycle in cycles if cycle not in KNOWN_CYCLES]
    assert not new, f"import cycles among modules: {new}"
    gone = [cycle for cycle in KNOWN_CYCLES if cycle not in cycles]
    assert not gone, f"no longer cycles, strike them from KNOWN_CYCLES: {gone}"


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
