"""The package's shape: each layer imports only the layers below it, and the protocol does no I/O.

Read from the source with ``ast``, so every import counts: at the top of a
module, inside a function (the lazy ones that keep start-up light) and under
``TYPE_CHECKING`` alike.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rsh"

# Bottom to top: what each layer may import besides itself.  Client and
# server never import each other; the prompt sits on the client library,
# the demos on the protocol alone; the command line on everything; the
# Ansible plugin on the client and the command line's host resolution.
ALLOWED = {
    "root": set(),  # errors.py, results.py, config.py, version.py, typeshim.py
    "protocol": {"root"},
    "transfer": {"root", "protocol"},
    "net": {"root", "protocol"},
    "client": {"root", "protocol", "transfer", "net"},
    "server": {"root", "protocol", "transfer", "net"},
    "prompt": {"root", "protocol", "transfer", "net", "client"},
    "teach": {"root", "protocol"},
    "cli": {"root", "protocol", "transfer", "net", "client", "server", "prompt", "teach"},
    # The Ansible connection plugin: rsh's client, hosts resolved as the command line resolves them.
    "ansible": {"root", "protocol", "transfer", "net", "client", "cli"},
}
RANKS = ALLOWED

#: What the protocol layer must never touch: it is bytes in, events out.
IO_MODULES = {"asyncio", "socket", "ssl", "subprocess", "select", "selectors", "threading"}


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (``rsh.protocol.frames``)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path) -> set[str]:
    """The dotted names *name* imports, relative imports resolved."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            out.add(module)
            # `from . import commands` names a module, not an attribute.
            out.update(f"{module}.{alias.name}" for alias in node.names)
    return out


ROOT_MODULES = {"rsh.errors", "rsh.results", "rsh.config", "rsh.version", "rsh.typeshim"}


def layer(name: str) -> str | None:
    """The layer *name* belongs to (None: the root package ``rsh`` itself, or ``__main__``)."""
    if name in ROOT_MODULES:
        return "root"
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANKS else None


ALL = modules()


@pytest.mark.parametrize("name", sorted(n for n in ALL if n.startswith("rsh.protocol")))
def test_the_protocol_layer_does_no_io(name: str) -> None:
    used = {m.split(".")[0] for m in imports(name, ALL[name])}
    assert not used & IO_MODULES, f"{name} imports {sorted(used & IO_MODULES)}"


@pytest.mark.parametrize("name", sorted(n for n in ALL if layer(n) in RANKS))
def test_no_import_runs_back_up(name: str) -> None:
    own = layer(name)
    assert own is not None
    wrong = []
    for target in imports(name, ALL[name]):
        if not target.startswith("rsh.") or target not in ALL:
            continue
        other = layer(target)
        if other is None or other == own:
            continue
        if other not in ALLOWED[own]:
            wrong.append(target)
    assert not wrong, f"{name} ({own}) imports {sorted(wrong)}, not below it"


def test_no_import_circles() -> None:
    graph = {n: {t for t in imports(n, p) if t in ALL and t != n} for n, p in ALL.items()}
    # The root package re-exports the API lazily (by name, not by import),
    # and every module's package is imported first by Python: neither is an edge.
    for n in graph:
        graph[n].discard("rsh")
        graph[n] -= {p for p in graph[n] if n.startswith(p + ".")}
    done: set[str] = set()

    def visit(n: str, path: list[str]) -> None:
        if n in path:
            cycle = path[path.index(n) :] + [n]
            raise AssertionError("import circle: " + " -> ".join(cycle))
        if n in done:
            return
        for t in sorted(graph[n]):
            visit(t, [*path, n])
        done.add(n)

    for n in sorted(graph):
        visit(n, [])


def test_every_layer_is_a_package_and_no_module_is_big() -> None:
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == set(RANKS) - {"root"}
    assert {p.stem for p in PACKAGE.glob("*.py")} == {"__init__", "__main__"} | {n.split(".")[1] for n in ROOT_MODULES}
    big = {n: len(p.read_text().splitlines()) for n, p in ALL.items() if len(p.read_text().splitlines()) > 420}
    assert not big, f"modules over ~400 lines: {big}"
