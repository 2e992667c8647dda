"""The package's shape, read from the source with ``ast`` (nothing of kdas_lab is imported): no import circle,
few modules loose at the top, no helper that receives the Trainer, no import of another module's private name."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "kdas_lab"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def existing(name: str) -> str | None:
    """``name`` if it is a kdas_lab module or package, else the nearest enclosing one (None outside kdas_lab)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def enclosing(name: str) -> list[str]:
    """The packages whose ``__init__`` runs before ``name``: ``a.b.c`` -> ``a``, ``a.b``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` in ``module`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, dict[str, str]]:
    """``{module: {imported module: "file:line" of the first import}}`` over every kdas_lab module, counting
    imports inside functions. ``from kdas_lab.x import y`` is an edge to ``kdas_lab.x.y`` when that module
    exists, else to ``kdas_lab.x``; importing ``kdas_lab.a.b`` also runs package ``kdas_lab.a``'s ``__init__``,
    so that is an edge too, except to the importer's own enclosing packages: those are already in
    ``sys.modules`` whenever the importer runs, so reaching them runs no ``__init__`` code (an explicit
    ``from kdas_lab.pkg import name`` inside ``pkg`` still counts: it reads the partly initialised package)."""
    graph: dict[str, dict[str, str]] = {}
    for module, path in MODULES.items():
        tree = parse(path)
        edges: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = absolute(module, node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
            else:
                continue
            for target in targets:
                found = existing(target) if target.split(".")[0] == "kdas_lab" else None
                if found is None:
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                if found != module:
                    edges.setdefault(found, where)
                for package in enclosing(found):
                    if package != module and not module.startswith(package + "."):
                        edges.setdefault(package, where)
        graph[module] = edges
    return graph


def strongly_connected(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(graph[w])))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def one_cycle(graph: dict[str, dict[str, str]], component: list[str]) -> list[str]:
    """A circle through the component's first module, as ``a -> b (file:line) -> ... -> a``."""
    members, start = set(component), component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:  # breadth first: the shortest way back to start
        v = queue.pop(0)
        for w, where in graph[v].items():
            if w == start:
                return [*paths[v], f"{w} ({where})"]
            if w in members and w not in paths:
                paths[w] = [*paths[v], f"{w} ({where})"]
                queue.append(w)
    return component


def test_the_graph_sees_the_package():
    graph = import_graph()
    assert "kdas_lab.train.loop" in graph and "kdas_lab.config" in graph["kdas_lab.train.loop"]
    tools = graph["kdas_lab.course.tools"]  # imports kdas_lab.bench.efficiency, which runs kdas_lab/bench/__init__
    assert {"kdas_lab.bench.efficiency", "kdas_lab.bench"} <= set(tools) and "kdas_lab.course" not in tools


def test_no_import_cycle_among_kdas_lab_modules():
    graph = import_graph()
    cycles = [" -> ".join(one_cycle(graph, c)) for c in strongly_connected(graph)]
    assert not cycles, "import cycle(s) in kdas_lab (move the shared code to the lower module):\n" + "\n".join(cycles)


def test_at_most_five_modules_loose_at_the_top():
    counted = sorted(p.name for p in PKG.glob("*.py"))
    assert len(counted) <= 5, f"{len(counted)} modules directly in kdas_lab/ (at most 5; put the rest in a " \
                              f"subpackage): {counted}"


def test_no_helper_receives_the_trainer():
    loop = PKG / "train" / "loop.py"
    offenders = []
    for path in sorted(PKG.rglob("*.py")):
        tree = parse(path)
        allowed: set[int] = set()
        if path == loop:  # the Trainer's own methods
            allowed = {id(n) for c in tree.body if isinstance(c, ast.ClassDef) and c.name == "Trainer"
                       for n in ast.walk(c)}
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) or id(fn) in allowed:
                continue
            a = fn.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                if arg is None:
                    continue
                annotation = ast.unparse(arg.annotation) if arg.annotation is not None else ""
                if arg.arg == "trainer" or re.search(r"\bTrainer\b", annotation):
                    offenders.append(f"{path.relative_to(ROOT)}:{fn.lineno} {getattr(fn, 'name', 'lambda')}"
                                     f"({arg.arg}{': ' + annotation if annotation else ''})")
    assert not offenders, "helpers must not receive the Trainer (pass them what they need):\n" + "\n".join(offenders)


def test_no_import_of_another_modules_private_name():
    offenders = []
    for folder in ("kdas_lab", "tests", "scripts"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            module = module_name(path) if folder == "kdas_lab" else None
            for node in ast.walk(parse(path)):
                if not isinstance(node, ast.ImportFrom):
                    continue
                source = absolute(module, node) if node.level and module else (node.module or "")
                if source.split(".")[0] != "kdas_lab":
                    continue
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} from {source} import "
                                     f"{', '.join(private)}")
    assert not offenders, ("a private name (_x) is imported from another module (make it public in its home "
                           "module, or move it where it belongs):\n" + "\n".join(offenders))
