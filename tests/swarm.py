"""Many hostile or idle connections kept up by one thread, for the tests of a server under attack.

    with Swarm(server.port, 300, "loris") as swarm:          # send two bytes of a length prefix, then nothing
    with Swarm(server.port, 300, "idle", token=t) as swarm:  # authenticate, then nothing

Each connection that the server closes is opened again at once, as an
attacker who simply reconnects would.  Everything is stopped by ``close()``.
"""

from __future__ import annotations

import errno
import resource
import selectors
import socket
import threading
from collections import Counter
from typing import Literal, Self

from rsh.protocol import auth
from rsh.protocol.frames import FrameDecoder, encode_frame

Mode = Literal["loris", "idle"]


def raise_nofile() -> None:
    """Let this process hold as many sockets as it is allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Swarm:
    """*n* connections to 127.0.0.1:*port* behaving as *mode* says, reopened whenever closed."""

    def __init__(self, port: int, n: int, mode: Mode, token: str | None = None) -> None:
        raise_nofile()
        self.port, self.mode, self.token = port, mode, token
        #: How the server ended our connections (error codes, "closed" for none), hellos and auths seen.
        self.ends: Counter[str] = Counter()
        self.hellos = 0
        self.authenticated = 0
        self._sel = selectors.DefaultSelector()
        self._stop = threading.Event()
        for _ in range(n):
            self._open()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _open(self) -> None:
        sock = socket.socket()
        sock.setblocking(False)
        err = sock.connect_ex(("127.0.0.1", self.port))
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            return
        self._sel.register(sock, selectors.EVENT_READ, [FrameDecoder(), None])

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._sel.select(0.1):
                self._readable(key.fileobj, key.data)  # type: ignore[arg-type]

    def _readable(self, sock: socket.socket, state: list) -> None:  # type: ignore[type-arg]
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.ends[state[1] or "closed"] += 1
            self._sel.unregister(sock)
            sock.close()
            if not self._stop.is_set():
                self._open()
            return
        try:
            frames = state[0].feed(data)
        except Exception:  # noqa: BLE001 - a test peer: garbage from the server ends it like a close
            frames = []
        for frame in frames:
            if frame.type == "hello":
                self.hellos += 1
                if self.mode == "loris":
                    sock.send(b"\x00\x00")
                else:
                    assert self.token is not None
                    nonce = auth.new_nonce()
                    sock.send(encode_frame("auth", {"nonce": nonce, "mac": auth.client_mac(self.token, frame.get("nonce"), nonce)}))
            elif frame.type == "auth_ok":
                self.authenticated += 1
            elif frame.type == "error":
                state[1] = frame.get("code")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for key in list(self._sel.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._sel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
