"""The server package's shape: imports run one way, and the work never reaches back into the pump."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parent.parent / "rsh" / "server"


def imported(path: Path) -> set[str]:
    """Every rsh module *path* imports, at run time or for type checking, as a dotted name."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module is not None and node.level:
            base = "rsh.server" if node.level == 1 else "rsh"
            names.add(f"{base}.{node.module}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rsh"):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("rsh"))
    return names


MODULES = sorted(SERVER.glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_the_server_imports_nothing_above_it(path: Path) -> None:
    above = {"rsh.client", "rsh.prompt", "rsh.cli", "rsh.teach"}
    assert not {m for m in imported(path) if ".".join(m.split(".")[:2]) in above}


@pytest.mark.parametrize("name", ["process", "pipes", "spawn", "transfers", "link"])
def test_commands_and_transfers_do_not_import_the_connection_or_the_listener(name: str) -> None:
    assert not imported(SERVER / f"{name}.py") & {"rsh.server.connection", "rsh.server.listener"}


def test_the_connection_does_not_import_the_listener() -> None:
    assert "rsh.server.listener" not in imported(SERVER / "connection.py")


@pytest.mark.parametrize("path", [*MODULES, SERVER.parent / "protocol" / "server.py"], ids=lambda p: p.name)
def test_no_server_module_is_over_about_400_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 410
