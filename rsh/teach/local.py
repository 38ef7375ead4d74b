"""A real, throw-away ``rsh serve`` on 127.0.0.1 for the demos that need the real thing.

``capture`` records a session with it and ``classic`` runs rsh's half on it.
It runs as a child process (``python -m rsh serve``), since this layer may
not import the server, with its token, audit log and state in a temporary
directory, so a demo never touches the user's own configuration.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Unpack

from ..errors import RshError
from ..protocol.address import DEFAULT_PORT
from ..protocol.client import ClientProtocol, ExecOptions, Exited, Output, exec_request
from ..protocol.connection import NEED_DATA, Event
from ..protocol.messages import ExitStatus
from .harness import WAIT_LIMIT, DemoError

__all__ = ["LocalServer", "Session", "default_port_free", "local_server", "rsh_command"]

#: How long a child rsh may take to start on a loaded machine.
START_LIMIT = 30.0


def rsh_command(*args: str) -> list[str]:
    """This very rsh (not whichever is first on PATH), run with *args*."""
    return [sys.executable, "-m", "rsh", *args]


@dataclass
class LocalServer:
    """A running ``rsh serve`` and how to reach it."""

    port: int
    token_file: Path
    env: dict[str, str]
    home: Path  # the temporary directory everything of this server's lives in

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return self.token_file.read_text(encoding="utf-8").strip()

    def run(self, *args: str, timeout: float = 60.0, merge: bool = False) -> subprocess.CompletedProcess[bytes]:
        """Run ``rsh ARGS`` as a client of this server (its token, the same private config).

        With *merge*, stderr goes to the stdout pipe: one stream in the order a terminal shows it.
        """
        env = dict(self.env, RSH_TOKEN=self.token)
        err = subprocess.STDOUT if merge else subprocess.PIPE
        try:
            return subprocess.run(rsh_command(*args), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise DemoError(f"'rsh {' '.join(args[:1])}' did not finish within {timeout:g}s") from exc


class Session:
    """One connection to a ``LocalServer``, driven the way rsh's client drives it, in miniature.

    ``ClientProtocol`` (sans-I/O) does the framing, the handshake and the
    state; this class only moves bytes, with ``recv(1024)`` as the naive
    client does: the buffer size is not what makes a client right.
    """

    def __init__(self, server: LocalServer) -> None:
        self.conn = ClientProtocol(server.token, server.address)
        try:
            self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_LIMIT)
        except OSError as exc:
            raise DemoError(f"cannot reach the demo's rsh server: {exc}") from exc
        self._next()  # hello, auth, auth_ok: Authenticated

    def _next(self) -> Event:
        try:
            while True:
                event = self.conn.next_event()
                # Sent before waiting: a frame just read may have called for an answer (hello: auth).
                for chunk in self.conn.data_to_send():
                    self.sock.sendall(chunk)
                if event is not NEED_DATA:
                    return event
                self.conn.receive_data(self.sock.recv(1024))
        except (OSError, RshError) as exc:
            raise DemoError(f"the demo's rsh session failed: {exc}") from exc

    def run(self, command: bytes, **options: Unpack[ExecOptions]) -> tuple[bytes, bytes, ExitStatus]:
        """Run *command*; return its stdout, its stderr and its exit frame."""
        self.conn.start_command(exec_request(command, **options))
        out = {"stdout": bytearray(), "stderr": bytearray()}
        while True:
            event = self._next()
            if isinstance(event, Output):
                out[event.stream] += event.data
            elif isinstance(event, Exited):
                return bytes(out["stdout"]), bytes(out["stderr"]), event.status

    def close(self) -> None:
        self.sock.close()


def default_port_free() -> bool:
    """True when nothing listens on 127.0.0.1 at rsh's default port (so a capture decodes without Decode As)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", DEFAULT_PORT))
        except OSError:
            return False
    return True


@contextmanager
def local_server(port: int = 0, extra: Sequence[str] = ()) -> Iterator[LocalServer]:
    """Start ``rsh serve`` on 127.0.0.1:*port* (0: a free one), yield it, stop it.

    Raises:
        DemoError: the server did not start.
    """
    with tempfile.TemporaryDirectory(prefix="rsh-demo-") as tmp:
        home = Path(tmp)
        env = dict(os.environ)
        env.pop("RSH_TOKEN", None)
        env.update(RSH_CONFIG_DIR=str(home / "config"), RSH_STATE_DIR=str(home / "state"), NO_COLOR="1")
        token = home / "token"
        argv = rsh_command("serve", "--host", "127.0.0.1", "--port", str(port), "--token-file", str(token), *extra)
        proc = subprocess.Popen(argv, env=env, cwd=home, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        said: list[str] = []
        found: list[int] = []
        ready = threading.Event()

        def read_log() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                said.append(line)
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
                if m and not found:
                    found.append(int(m.group(1)))
                    ready.set()
            ready.set()  # the server ended before it listened

        # A thread reads the log (it must be drained anyway), so the wait has a deadline.
        reader = threading.Thread(target=read_log, daemon=True)
        reader.start()
        try:
            if not ready.wait(START_LIMIT) or not found:
                last = said[-1].strip() if said else "no word from it"
                raise DemoError(f"the demo's rsh server did not start: {last}")
            yield LocalServer(found[0], token, env, home)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            reader.join(10)  # the pipe is at its end now the server has gone
            if proc.stderr is not None:
                proc.stderr.close()
