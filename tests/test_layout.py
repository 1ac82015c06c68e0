"""The house rules, checked on the source: one plugin layout, plugin.py holds only hook
implementations, plugins use only polydiff's public API and never each other, and no
distribution has an import cycle among its modules' top-level imports."""
from __future__ import annotations

import ast
from pathlib import Path

import polydiff
import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p for p in (REPO / "plugins").iterdir() if (p / "pyproject.toml").is_file())
PACKAGES = {p.name: next(d for d in sorted((p / "src").iterdir()) if (d / "__init__.py").is_file()) for p in PLUGINS}
MODALITY_FILES = ("plugin.py", "data.py", "tasks.py", "backend.py", "io.py")


def _sources(package: Path):
    return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path, root: Path, top_level_only: bool = False):
    """The modules ``path`` (inside the package folder ``root``) imports; relative imports
    are resolved."""
    rel = path.relative_to(root).with_suffix("").parts
    here = [root.name, *rel[:-1]]          # the package the module is in
    tree = ast.parse(path.read_text())
    for node in tree.body if top_level_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module
            if node.level:
                base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else []))
            yield base
            yield from (f"{base}.{a.name}" for a in node.names)


def _module(path: Path, root: Path, package: str) -> str:
    rel = path.relative_to(root).with_suffix("").parts
    return ".".join([package, *[p for p in rel if p != "__init__"]])


@pytest.mark.parametrize("plugin", [p.name for p in PLUGINS])
def test_plugin_uses_only_the_public_api_and_no_other_plugin(plugin):
    package = PACKAGES[plugin]
    others = {p.name for p in PACKAGES.values()} - {package.name}
    public = set(polydiff.__all__)
    for path in _sources(package):
        for name in _imports(path, package):
            top, _, rest = name.partition(".")
            assert top not in others, f"{path.relative_to(REPO)} imports another plugin: {name}"
            if top == "polydiff" and rest:
                assert rest.split(".")[0] in public, f"{path.relative_to(REPO)} imports polydiff's private {name}"


@pytest.mark.parametrize("plugin", [p.name for p in PLUGINS])
def test_plugin_py_holds_only_hook_implementations(plugin):
    path = PACKAGES[plugin] / "plugin.py"
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) or (
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            continue
        assert isinstance(node, ast.FunctionDef), f"{path.relative_to(REPO)}:{node.lineno}: only hookimpls belong here"
        assert any(ast.unparse(d) == "polydiff.hookimpl" for d in node.decorator_list), \
            f"{path.relative_to(REPO)}: {node.name} is not a @polydiff.hookimpl"


@pytest.mark.parametrize("plugin", [p.name for p in PLUGINS])
def test_modality_plugins_share_one_layout(plugin):
    package = PACKAGES[plugin]
    if "register_modalities" not in (package / "plugin.py").read_text():
        pytest.skip("registers no modality")
    missing = [f for f in MODALITY_FILES if not (package / f).is_file()]
    assert not missing, f"{package.relative_to(REPO)} lacks {missing} (DESIGN.md's plugin layout)"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.mark.parametrize("package", [*PACKAGES.values(), REPO / "core" / "src" / "polydiff"],
                         ids=lambda p: p.name)
def test_no_import_cycle_among_top_level_imports(package):
    paths = {_module(p, package, package.name): p for p in _sources(package)}
    graph = {}
    for module, path in paths.items():
        targets = set()
        for name in _imports(path, package, top_level_only=True):
            while name and name not in paths:
                name = name.rpartition(".")[0]
            if name and name != module and name != package.name:
                targets.add(name)
        graph[module] = targets
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph))}"


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
