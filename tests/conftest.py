"""Shared fixtures: real rsh servers in subprocesses on 127.0.0.1, free ports.

Every server comes from a ``ServerFactory``: the test's own through the
``make_server`` fixture (``own_server`` is its plainest), the shared
session-wide ``server`` and ``tls_server`` through one of session scope.
Each factory stops what it started.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def rsh_argv(*args: str) -> list[str]:
    """Our rsh, whatever else is on PATH."""
    return [sys.executable, "-m", "rsh", *args]


def rsh_env(config_dir: Path, **extra: str) -> dict[str, str]:
    """An environment in which rsh reads and writes only under *config_dir*."""
    env = dict(os.environ)
    env.pop("RSH_TOKEN", None)
    env["RSH_CONFIG_DIR"] = str(config_dir / "config")
    env["RSH_STATE_DIR"] = str(config_dir / "state")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    """A running ``rsh serve`` subprocess and how to reach it."""

    proc: subprocess.Popen[bytes]
    host: str
    port: int
    token_file: Path
    env: dict[str, str]
    log: list[str] = field(default_factory=list)
    drainer: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def token(self) -> str:
        return self.token_file.read_text().strip()

    @property
    def fingerprint(self) -> str:
        """The TLS fingerprint the server printed when it started."""
        for line in self.log:
            m = re.search(r"TLS fingerprint (SHA256:\S+)", line)
            if m:
                return m.group(1)
        raise AssertionError("the server printed no TLS fingerprint: " + "".join(self.log))

    @property
    def audit_log(self) -> Path:
        return Path(self.env["RSH_CONFIG_DIR"]) / "audit.log"

    def audit_records(self, event: str | None = None) -> list[dict]:  # type: ignore[type-arg]
        """The default audit log's records so far (of one *event* kind, if given)."""
        lines = self.audit_log.read_text().splitlines() if self.audit_log.exists() else []
        return [r for r in map(json.loads, lines) if event is None or r["event"] == event]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.drainer is not None:
            self.drainer.join(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def start_server(tmp: Path, *extra: str, wrap: Sequence[str] = (), env_extra: dict[str, str] | None = None) -> ServerProcess:
    """Start ``rsh serve`` on a free loopback port and wait until it listens.

    *wrap* is a command prefix (``setpriv ...``, ``unshare ...``) that must
    end by exec'ing the rest; *env_extra* adds to the server's environment.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    token_file = tmp / "token"
    env = rsh_env(tmp, **(env_extra or {}))
    args = ["serve", "--host", "127.0.0.1", "--port", "0"]
    if "--no-auth" not in extra:
        args += ["--token-file", str(token_file)]
    proc = subprocess.Popen([*wrap, *rsh_argv(*args, *extra)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    server = ServerProcess(proc, "127.0.0.1", 0, token_file, env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline().decode()
        if not line:
            break
        server.log.append(line)
        m = re.search(r"listening on (?:\[([^\]]+)\]|([\d.]+)):(\d+)", line)
        if m:
            server.host = m.group(1) or m.group(2)
            server.port = int(m.group(3))
            break
    if not server.port:
        server.stop()
        raise RuntimeError("server did not start: " + "".join(server.log))

    # Keep draining stderr so a chatty server never blocks on a full pipe.
    def drain() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            server.log.append(raw.decode(errors="replace"))

    server.drainer = threading.Thread(target=drain, daemon=True)
    server.drainer.start()
    return server


@dataclass
class Invoked:
    """What an in-process ``main(argv)`` did: its exit status and what it printed."""

    code: int
    stdout: str
    stderr: str


@pytest.fixture
def invoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Invoked]:
    """``invoke(*argv)`` runs ``rsh.cli.main.main(argv)`` in this process, as ``rsh_env(tmp_path)`` would.

    For what needs no process of its own (parsing, usage errors, exit
    statuses), as click's and httpx's ``CliRunner().invoke`` do.
    """
    from rsh.cli.main import main

    monkeypatch.setenv("RSH_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("RSH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("RSH_TOKEN", raising=False)

    def run(*argv: str) -> Invoked:
        capsys.readouterr()  # what came before is not this call's
        code = main(argv)
        out, err = capsys.readouterr()
        return Invoked(code, out, err)

    return run


@pytest.fixture(scope="session", autouse=True)
def private_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep the tests' own clients off the user's config (token, known_hosts) and history."""
    path = tmp_path_factory.mktemp("client-config")
    saved = {k: os.environ.get(k) for k in ("RSH_CONFIG_DIR", "RSH_STATE_DIR", "RSH_TOKEN")}
    os.environ["RSH_CONFIG_DIR"] = str(path)
    os.environ["RSH_STATE_DIR"] = str(path / "state")
    os.environ.pop("RSH_TOKEN", None)
    try:
        yield path
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def pid_alive(pid: int) -> bool:
    return _exists(os.kill, pid)


def group_alive(pgid: int) -> bool:
    return _exists(os.killpg, pgid)


def _exists(send: Callable[[int, int], None], target: int) -> bool:
    """Whether signal 0 finds *target* (sending nothing)."""
    try:
        send(target, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    """Poll *predicate* until true or *timeout*; a guard, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class ServerFactory:
    """``factory(*serve_options)`` starts a server (``start_server``); ``close()`` stops all it started.

    Each server gets a directory of its own under *root*, unless *where*
    names one (a server restarted on the same token and identity).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[ServerProcess] = []

    def __call__(self, *extra: str, where: Path | None = None, wrap: Sequence[str] = (), env_extra: dict[str, str] | None = None) -> ServerProcess:
        s = start_server(where or self.root / f"s{len(self.started)}", *extra, wrap=wrap, env_extra=env_extra)
        self.started.append(s)
        return s

    def close(self) -> None:
        for s in self.started:
            s.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Servers of the test's own, stopped after it."""
    factory = ServerFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def own_server(make_server: ServerFactory) -> ServerProcess:
    """A plain server for one test alone."""
    return make_server()


@pytest.fixture(scope="session")
def _shared_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    factory = ServerFactory(tmp_path_factory.mktemp("shared-servers"))
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="session")
def server(_shared_servers: ServerFactory) -> ServerProcess:
    """One authenticated server shared by the tests that only need one."""
    return _shared_servers()


@pytest.fixture(scope="session")
def tls_server(_shared_servers: ServerFactory) -> ServerProcess:
    """One authenticated TLS server on loopback (``--tls``) shared by the tests that only need one."""
    return _shared_servers("--tls")
