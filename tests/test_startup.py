"""A cold ``rsh exec HOST CMD`` loads only what it needs, reads its command line as argparse would, and ends as it did.

Start-up is most of a short ``rsh exec``: these check its structure (what
is imported, what is parsed how), never its timing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsh.cli.exec import quick_args
from rsh.cli.main import parse
from rsh.config import path_text

from .conftest import ServerProcess, rsh_argv, rsh_env

# What a plain `rsh exec` to a loopback server does without: the parser
# (argparse, with gettext, locale and the shutil its help formatter loads),
# pathlib, TOML with no config file, threads, and everything TLS, asyncio
# and dataclasses bring; typing (rsh.typeshim stands in for it at run time),
# hashlib and hmac, which load OpenSSL's libcrypto (rsh.protocol.auth),
# signal, whose enums _signal does without, and socket and selectors
# (rsh.net.tcp connects with _socket).
NOT_LOADED = {
    "argparse", "gettext", "locale", "shutil", "pathlib", "urllib.parse", "tomllib", "threading",
    "ssl", "base64", "asyncio", "dataclasses", "inspect", "rsh.protocol.trace",
    "typing", "hashlib", "_hashlib", "hmac", "signal", "socket", "selectors",
}  # fmt: skip


def imported(argv: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[bytes], set[str]]:
    """Run *argv* under ``-X importtime``; return the run and the modules it imported."""
    r = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], env=env, capture_output=True, timeout=60)
    lines = r.stderr.decode().splitlines()
    modules = {line.rpartition("|")[2].strip() for line in lines if line.startswith("import time:")}
    return r, modules


def test_plain_exec_loads_no_parser_pathlib_toml_nor_threads(server: ServerProcess, tmp_path: Path) -> None:
    argv = rsh_argv("exec", "--token-file", str(server.token_file), server.address, "--", "echo out; echo err >&2; exit 7")
    r, modules = imported(argv, rsh_env(tmp_path))
    assert r.returncode == 7
    assert r.stdout == b"out\n"
    assert b"err\n" in r.stderr
    assert "rsh.client.blocking" in modules  # it did run, and was watched
    assert not modules & NOT_LOADED, sorted(modules & NOT_LOADED)


def test_implicit_exec_is_read_quickly_too(server: ServerProcess, tmp_path: Path) -> None:
    argv = rsh_argv("--token-file", str(server.token_file), server.address, "echo", "a  b")
    r, modules = imported(argv, rsh_env(tmp_path))
    assert (r.returncode, r.stdout) == (0, b"a b\n")
    assert "rsh.client.blocking" in modules
    assert not modules & NOT_LOADED, sorted(modules & NOT_LOADED)


def test_the_installed_command_loads_no_more(server: ServerProcess, tmp_path: Path) -> None:
    # The console script pip writes (it imports re itself), rather than `python -m rsh`,
    # whose runpy imports contextlib (and importlib, warnings) before rsh runs.
    script = Path(sys.executable).with_name("rsh")
    if not script.exists():
        pytest.skip(f"no rsh script beside {sys.executable}")
    r, modules = imported([sys.executable, str(script), "exec", "--token-file", str(server.token_file), server.address, "--", "true"], rsh_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "rsh.client.blocking" in modules
    unwanted = NOT_LOADED | {"contextlib", "importlib", "warnings"}
    assert not modules & unwanted, sorted(modules & unwanted)


def test_a_config_file_is_read_with_toml(server: ServerProcess, tmp_path: Path) -> None:
    # The quick path reads the same config file: a host named there, its port and token.
    config = tmp_path / "config"
    config.mkdir()
    (config / "config.toml").write_text(f'[hosts.here]\naddress = "127.0.0.1"\nport = {server.port}\ntoken_file = "{server.token_file}"\n')
    r, modules = imported(rsh_argv("exec", "here", "--", "echo", "named"), rsh_env(tmp_path))
    assert (r.returncode, r.stdout) == (0, b"named\n"), r.stderr
    assert "tomllib" in modules and "argparse" not in modules


def test_a_failure_still_says_one_line_and_255(tmp_path: Path) -> None:
    r = subprocess.run(rsh_argv("exec", "--connect-timeout", "5", "127.0.0.1:1", "--", "true"), env=rsh_env(tmp_path), capture_output=True, timeout=60)
    assert r.returncode == 255
    assert r.stderr.decode().startswith("rsh: cannot connect to 127.0.0.1:1")


def test_what_the_quick_path_leaves_is_read_by_argparse(tmp_path: Path) -> None:
    # --help is argparse's, as are mistakes: their messages and statuses are unchanged.
    env = rsh_env(tmp_path)
    r = subprocess.run(rsh_argv("exec", "--help"), env=env, capture_output=True, timeout=60)
    assert r.returncode == 0 and b"usage: rsh exec" in r.stdout
    r = subprocess.run(rsh_argv("exec", "--timeout", "soon", "h", "--", "true"), env=env, capture_output=True, timeout=60)
    assert r.returncode == 2 and b"invalid float value: 'soon'" in r.stderr
    r = subprocess.run(rsh_argv("exec", "--bogus", "h", "--", "true"), env=env, capture_output=True, timeout=60)
    assert r.returncode == 2 and b"unrecognized arguments: --bogus" in r.stderr


# Command lines of every shape; for each, the quick reading is argparse's or none.
COMMAND_LINES = [
    ["exec", "h", "--", "true"],
    ["exec", "h", "true"],
    ["exec", "user@h:7022", "ls", "-l", "--", "x"],
    ["exec", "-n", "-t", "-t", "h", "--", "cat"],
    ["exec", "h", "-n", "--timeout", "2.5", "sleep", "1"],
    ["exec", "--timeout=3", "--connect-timeout", "1e1", "h", "x"],
    ["exec", "--token-file", "./t//f", "-p", "7100", "-F", "c.toml", "h", "x"],
    ["exec", "--tls", "--accept-new", "--fingerprint", "SHA256:x", "--known-hosts", "k", "h", "x"],
    ["exec", "--shell", "/bin/bash", "--encoding", "latin-1", "--trace", "h", "--", "echo", "a b"],
    ["exec", "-j", "3", "--summary", "--group", "--out-dir", "d", "h", "x"],
    ["exec", "--token-file=", "h", "x"],
    ["exec", "-", "x"],
    ["exec", "", "x"],
    ["exec", "h", "-", "x"],
    ["exec", "h", "--", "--", "-n"],
    ["h", "uptime", "-p"],
    ["-p", "7100", "h", "--", "true"],
    ["-n", "h", "-t", "x"],
    # Not plain: left to argparse (None here).
    ["exec", "h"],
    ["h"],
    [],
    ["exec"],
    ["exec", "-nt", "h", "x"],
    ["exec", "--time", "5", "h", "x"],
    ["exec", "-p7100", "h", "x"],
    ["exec", "-p=7100", "h", "x"],
    ["exec", "--timeout", "-1", "h", "x"],
    ["exec", "--token-file", "-", "h", "x"],
    ["exec", "-H", "a,b", "--", "x"],
    ["exec", "h", "-g", "web", "x"],
    ["exec", "-h"],
    ["exec", "--", "h", "x"],
    ["exec", "--tls=yes", "h", "x"],
    ["exec", "--port"],
    ["exec", "--timeout", "soon", "h", "x"],
    ["exec", "-5", "x"],
]
PLAIN = COMMAND_LINES[: COMMAND_LINES.index(["exec", "h"])]


@pytest.mark.parametrize("words", COMMAND_LINES, ids=" ".join)
def test_the_quick_reading_is_argparse_s(words: list[str]) -> None:
    implicit = words[:1] != ["exec"]
    quick = quick_args(words if implicit else words[1:])
    assert (quick is not None) == (words in PLAIN)
    if quick is None:
        return
    slow = parse(words, quick=False)
    assert vars(quick) == vars(slow)
    assert vars(parse(words)) == vars(slow)


@given(st.text(alphabet="/.a", max_size=12))
def test_path_text_is_what_pathlib_writes(text: str) -> None:
    assert path_text(text) == str(Path(text))


def test_connect_tcp_tries_each_address_and_sets_nodelay(server: ServerProcess) -> None:
    """rsh.net.tcp opens what socket.create_connection would: the first address that answers, TCP_NODELAY on."""
    import socket

    from rsh.net.tcp import as_socket, connect_tcp

    with socket.create_server(("127.0.0.1", 0)) as closed:
        refused = closed.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        connect_tcp("127.0.0.1", refused, 5)
    with pytest.raises(socket.gaierror):
        connect_tcp("no-such-host.invalid", server.port, 5)
    sock = connect_tcp(b"127.0.0.1", server.port, 5)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert sock.recv(4)  # the server's hello has begun
        wrapped = as_socket(sock)
        assert sock.fileno() == -1 and wrapped.fileno() >= 0 and wrapped.type == socket.SOCK_STREAM
        wrapped.close()
    finally:
        sock.close()
