"""Print the project's import graph: which package imports which, and through what.

Usage: ``python tools/import_graph.py [--modules]``

The first block lists the edges between the three packages (``gridreader``,
``capture``, ``labeller``) and between ``gridreader``'s layers, each with the
module imports that make it; ``--modules`` lists every module-to-module edge.
Imports inside functions count the same as those at the top: a deferred import
is still a dependency, and so is a string naming a project module (the CLI
imports its verbs by name). Only the project's own modules are shown.

``--check`` exits 1, listing the offending imports, if an import points
outwards: from the core (``gridreader`` less its application layer) to
``capture`` or ``labeller``, or from any of them to the application layer (the
CLI and ``nightly``, see ``APPLICATION``); or across, between ``capture`` and
``labeller``.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gridreader", "capture", "labeller")
# The application layer composes the core with capture and the labeller; the
# core (the rest of gridreader) imports neither them nor it.
APPLICATION = ("gridreader.cli", "gridreader.__main__", "gridreader.commands", "gridreader.nightly")


def module_name(path: Path) -> str:
    """``gridreader/grid/ink.py`` -> ``gridreader.grid.ink``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str) -> set[str]:
    """The project modules ``path`` imports (absolute and relative imports alike)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # ``from pkg import mod`` names a module when ``pkg/mod.py`` exists.
            found.add(prefix)
            found.update(f"{prefix}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value:
            found.add(node.value)  # e.g. importlib.import_module("capture.cli")
    return {m for m in found if m.split(".")[0] in PACKAGES}


def module_graph() -> dict[str, set[str]]:
    """Every project module and the project modules it imports."""
    files = {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in sorted(files.items()):
        targets = {m for m in imports_of(path, name) if m in files}
        graph[name] = {t for t in targets if t != name}
    return graph


def layer(module: str) -> str:
    """The package, or for ``gridreader`` its sub-package or module."""
    parts = module.split(".")
    if parts[0] != "gridreader" or len(parts) == 1:
        return parts[0]
    return ".".join(parts[:2])


def rank(module: str) -> int:
    """0 for the core, 1 for capture and the labeller, 2 for the application layer."""
    if any(module == a or module.startswith(a + ".") for a in APPLICATION):
        return 2
    return 0 if module.split(".")[0] == "gridreader" else 1


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports that point outwards (core -> capture/labeller -> application),
    or across, between capture and the labeller."""
    return [
        f"{src} -> {dst}"
        for src, targets in graph.items()
        for dst in sorted(targets)
        if rank(dst) > rank(src)
        or (rank(src) == rank(dst) == 1 and src.split(".")[0] != dst.split(".")[0])
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", action="store_true", help="list every module edge")
    parser.add_argument("--check", action="store_true", help="fail on an outward import")
    args = parser.parse_args(argv)
    graph = module_graph()
    if args.check:
        bad = layer_violations(graph)
        for edge in bad:
            print(f"import points outwards: {edge}")
        return 1 if bad else 0
    if args.modules:
        for src, targets in graph.items():
            for dst in sorted(targets):
                print(f"{src} -> {dst}")
        return 0
    packages: dict[tuple[str, str], set[str]] = defaultdict(set)
    for src, targets in graph.items():
        for dst in targets:
            a, b = src.split(".")[0], dst.split(".")[0]
            if a != b:
                packages[(a, b)].add(f"{src} -> {dst}")
    print("between packages:")
    for (a, b), edges in sorted(packages.items()):
        print(f"  {a} -> {b}: {', '.join(sorted(edges))}")
    layers: dict[str, set[str]] = defaultdict(set)
    for src, targets in graph.items():
        for dst in targets:
            if src.startswith("gridreader") and dst.startswith("gridreader"):
                a, b = layer(src), layer(dst)
                if a != b:
                    layers[a].add(b.removeprefix("gridreader."))
    print("within gridreader (module or sub-package -> what it imports):")
    for a, bs in sorted(layers.items()):
        print(f"  {a.removeprefix('gridreader.')} -> {', '.join(sorted(bs))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
