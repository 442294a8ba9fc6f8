"""The layout's rules, checked on the source: no import cycles (function-level imports count), no
private names across modules, modules of a readable size, engines named by their factory key."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "slick_hf"
MAX_LINES = 420  # "under ~400"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if "slick_exact_match" not in p.parts}


def imports_of(name: str, path: Path, known: set[str]) -> list[tuple[str, str]]:
    """(imported module, imported name or "") for every slick_hf import, at any depth of the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, "") for a in node.names if a.name.startswith("slick_hf")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if not base.startswith("slick_hf"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append((sub, "") if sub in known else (base, alias.name))
    return out


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {
        name: {m for m, _ in imports_of(name, path, known) if m in known and m != name} for name, path in mods.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_a_cycle_and_only_one_that_exists():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles_in_the_package():
    graph = import_graph()
    assert len(graph) > 50 and sum(map(len, graph.values())) > 100  # the parser sees the real imports
    assert "slick_hf.runs" in graph["slick_hf.report.analysis"]  # function-level and top-level alike
    assert "slick_hf.train.trainer" in graph["slick_hf.recipe"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_no_private_names_across_modules():
    mods = modules()
    known = set(mods)
    crossing = [
        f"{name} imports {imported}.{what}"
        for name, path in mods.items()
        for imported, what in imports_of(name, path, known)
        if what.startswith("_") and what != "__version__"
    ]
    assert crossing == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_readable(path: Path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_every_stage_is_a_package():
    for stage in ("core", "data", "annotate", "variants", "train", "evaluate", "report", "engines", "cli"):
        assert (PACKAGE / stage / "__init__.py").is_file(), stage


def test_engine_name_is_its_factory_key():
    from slick_hf.engines.factory import ENGINES, engine_class

    for key in ENGINES:
        cls = engine_class(key)
        assert cls.name == key, (key, cls.__name__)
