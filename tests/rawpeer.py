"""A blocking, hand-driven protocol peer for tests that misbehave on purpose."""

from __future__ import annotations

import socket
import ssl
from collections import deque
from typing import Any

from rsh.protocol import auth
from rsh.protocol.frames import Frame, FrameDecoder, encode_frame


class RawPeer:
    """Speaks frames over a plain socket, one call at a time."""

    def __init__(self, port: int, host: str = "127.0.0.1", *, tls: bool = False) -> None:
        self.sock = socket.create_connection((host, port), timeout=15)
        if tls:
            from rsh.net.tls import client_context

            self.sock = client_context().wrap_socket(self.sock)
        self.decoder = FrameDecoder()
        self.frames: deque[Frame] = deque()
        self.hello = self.recv()
        assert self.hello is not None and self.hello.type == "hello"

    def send(self, type: str, fields: dict[str, Any] | None = None, payload: bytes = b"") -> None:
        self.sock.sendall(encode_frame(type, fields, payload))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> Frame | None:
        """The next frame, or None once the server has closed the connection."""
        while not self.frames:
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLEOFError):
                data = b""
            if not data:
                return None
            self.frames.extend(self.decoder.feed(data))
        return self.frames.popleft()

    def recv_until_closed(self) -> list[Frame]:
        out = []
        while (f := self.recv()) is not None:
            out.append(f)
        return out

    def authenticate(self, token: str) -> Frame | None:
        nonce = auth.new_nonce()
        self.send("auth", {"nonce": nonce, "mac": auth.client_mac(token, self.hello.get("nonce"), nonce)})
        return self.recv()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
