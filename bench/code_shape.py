"""Figures about the shape of the package, printed as JSON: modules, import cycles, isinstance on encoder classes.

Every `import stylecli.X` / `from stylecli.X import Y` counts, wherever it sits in the file (inside functions too);
`from stylecli.pkg import mod` is an edge to stylecli.pkg.mod when that module exists, else to stylecli.pkg.

    python bench/code_shape.py [--root stylecli]
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(tree: ast.AST, package: str, modules: set[str]) -> set[str]:
    """The stylecli modules a file imports, anywhere in it."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == package)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == package:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return {m for m in found if m in modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (or a module importing itself), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def encoder_classes(trees: dict[str, ast.AST], package: str) -> set[str]:
    """The classes defined in the encoders package (its checkpoint-format readers and errors aside)."""
    return {node.name for m, t in trees.items()
            if m.startswith(f"{package}.encoders") and not m.startswith(f"{package}.encoders.formats")
            for node in ast.walk(t) if isinstance(node, ast.ClassDef) and not node.name.endswith("Error")}


def encoder_isinstance(tree: ast.AST, classes: set[str]) -> int:
    """isinstance(x, C) calls where C (or one of a tuple) is an encoder class, bare or as an attribute."""
    count = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance" \
                and len(node.args) == 2:
            target = node.args[1]
            names = target.elts if isinstance(target, ast.Tuple) else [target]
            for n in names:
                name = n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute) else None
                if name in classes:
                    count += 1
                    break
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent / "stylecli")
    args = parser.parse_args()
    root = args.root.resolve()
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    modules = set(files)
    trees = {m: ast.parse(p.read_text(), str(p)) for m, p in files.items()}
    graph = {m: imports_of(t, root.name, modules) - {m} for m, t in trees.items()}
    found = cycles(graph)
    classes = encoder_classes(trees, root.name)
    outside = {m: n for m, t in trees.items()
               if not m.startswith(f"{root.name}.encoders") and (n := encoder_isinstance(t, classes))}
    top_level = sorted(m for m, p in files.items() if p.parent == root and p.name != "__init__.py"
                       and p.name != "__main__.py")
    print(json.dumps({
        "modules": len(files),
        "top_level_modules": len(top_level),
        "top_level": top_level,
        "import_edges": sum(len(v) for v in graph.values()),
        "import_cycles": len(found),
        "cycles": found,
        "encoder_isinstance_outside_encoders": sum(outside.values()),
        "encoder_isinstance_where": outside,
        "lines": sum(len(p.read_text().splitlines()) for p in files.values()),
    }, indent=2))


if __name__ == "__main__":
    main()
