"""A ``ClientProtocol`` over a non-blocking socket, waited on with ``poll()``: the blocking client's I/O.

It speaks to the socket directly (no event loop): a command then costs one
``sendmsg`` and the reads its answer needs, which is what keeps a loop of
short commands close to running them locally (bench/latency.py).

A plain socket is left blocking, and every read and write that must not
wait says so (``MSG_DONTWAIT``): waiting for the answer, with nothing to
send and no deadline, is then one ``recv_into`` that sleeps until it comes,
not a ``poll()`` and a read.  With TLS, *sock* is an ``ssl.SSLSocket``
(handshake done, pin checked), non-blocking: it may want to read or write
at any call (``SSLWant*Error``) and may hold decrypted bytes that poll()
cannot see (``pending()``).  Socket errors become ``ConnectionLost`` here,
and only here.
"""

from __future__ import annotations

import _socket  # what socket.socket extends; the blocking client opens its connections with it (rsh.net.tcp)
import select
import time
from collections import deque
from itertools import islice

from ..errors import ConnectionLost
from ..protocol.client import ClientProtocol
from ..protocol.connection import NEED_DATA, Event

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl
    from typing import cast
else:
    from ..typeshim import cast

__all__ = ["SocketPump", "OUT_HIGH"]

#: Keep at most this much queued stdin (or file data) ahead of the socket.
OUT_HIGH = 256 * 1024

# Decrypted bytes gathered from TLS records before one parse of the frames in them,
# once a read has brought a full record (a stream); a smaller one (an exit
# frame) is parsed at once, without a read that would only find nothing.
TLS_BATCH = 256 * 1024
TLS_RECORD = 16 * 1024

# Buffers handed to one sendmsg(), well under any IOV_MAX.
_IOV_BATCH = 64


def _would_block(tls: bool) -> tuple[type[Exception], ...]:
    """What a non-blocking socket raises for "not now"; an SSLSocket says it with its own errors too."""
    if not tls:
        return (BlockingIOError,)
    import ssl  # only here: a plain client never loads it (a tenth of `rsh exec`'s start-up)

    return (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class SocketPump:
    """Moves bytes between *sock* and *conn*; every wait is a ``poll()``."""

    def __init__(self, sock: _socket.socket, conn: ClientProtocol, *, tls: bool = False) -> None:
        self.sock = sock
        self.conn = conn
        self.tls = tls
        self._would_block = _would_block(tls)
        # The flag that makes one call not wait (an SSLSocket takes none: it does not block at all).
        self._dontwait = 0 if tls else _socket.MSG_DONTWAIT
        sock.setblocking(not tls)
        # Queued output: whole buffers, the first possibly partly sent.
        self.out: deque[bytes | memoryview] = deque()
        self.out_len = 0
        #: A socket error met while reading or writing, raised once no event is left.
        self.failure: ConnectionLost | None = None
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)
        self._polling_out = False

    # -- waiting ------------------------------------------------------------

    def next_event(self, deadline: float | None = None) -> Event:
        """Send what is queued while waiting for the connection's next event.

        Raises:
            TimeoutError: *deadline* (a ``time.monotonic()``) passed first.
            ConnectionLost, ProtocolError, RemoteError, AuthError: from the connection.
        """
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is not NEED_DATA:
                return event
            # Queued now: what the caller sent, and what the connection
            # answered by itself (the handshake's auth).
            self.queue()
            if self.failure is not None:
                raise self.failure
            if self.out:
                self.write()  # usually all goes at once: no poll needed for it
            if self.tls and self.pending():
                self.read()  # decrypted already: poll() would not wake for it
                continue
            self.wait(deadline)

    def poll_event(self) -> Event | None:
        """The next event if it has already arrived (one look at the socket), else None."""
        event = self.conn.next_event()
        if event is NEED_DATA:
            self.flush()
            if self.read():
                event = self.conn.next_event()
        return None if event is NEED_DATA else event

    def make_room(self) -> None:
        """Wait until less than ``OUT_HIGH`` is queued, reading what arrives meanwhile."""
        self.queue()
        while self.out_len >= OUT_HIGH:
            self.check()
            if self.conn.at_eof:
                raise ConnectionLost("connection closed by server")
            self.write()
            if self.out_len >= OUT_HIGH:
                self.wait(None)

    def wait(self, deadline: float | None) -> None:
        """One ``poll()``: write if the socket takes more, read if it has something.

        With nothing to send and no deadline (a plain socket), one read that
        sleeps until the peer says something instead.

        Raises:
            TimeoutError: *deadline* passed with nothing to read.
        """
        want_out = bool(self.out)
        if not want_out and deadline is None and not self.tls:
            self.read(wait=True)
            return
        if want_out != self._polling_out:
            self._poll.modify(self.sock, select.POLLIN | (select.POLLOUT if want_out else 0))
            self._polling_out = want_out
        timeout = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
        ready = self._poll.poll(timeout)
        if not ready and deadline is not None:
            raise TimeoutError
        for _, ev in ready:
            if ev & select.POLLOUT and self.out:
                self.write()
            if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                self.read()

    # -- bytes --------------------------------------------------------------

    def queue(self) -> None:
        """Take what the connection has to send into the queue."""
        parts = self.conn.data_to_send()
        if parts:
            self.out.extend(parts)
            self.out_len += sum(map(len, parts))

    def flush(self) -> None:
        """Try to send what is queued without waiting."""
        self.queue()
        if self.out:
            self.write()

    def check(self) -> None:
        """Raise the socket error met, if any."""
        if self.failure is not None:
            raise self.failure

    def pending(self) -> bool:
        """True when TLS holds decrypted bytes not yet read (the socket may look idle)."""
        return self.tls and cast("ssl.SSLSocket", self.sock).pending() > 0

    def write(self) -> None:
        """Send as much of the queue as the socket takes now."""
        out = self.out
        try:
            if self.tls:
                # No sendmsg under TLS, and each send is a record and a
                # system call: join what is queued (a header and its payload).
                if len(out) > 1:
                    joined = b"".join(out)
                    out.clear()
                    out.append(joined)
                n = self.sock.send(out[0])
            else:
                n = self.sock.sendmsg(list(islice(out, _IOV_BATCH)), (), self._dontwait)
        except self._would_block:
            return
        except OSError as exc:
            self.failure = ConnectionLost(f"connection lost while sending: {exc.strerror or exc}")
            self.failure.__cause__ = exc
            out.clear()
            self.out_len = 0
            return
        self.out_len -= n
        while n:
            first = out[0]
            if len(first) <= n:
                n -= len(first)
                out.popleft()
            else:
                out[0] = memoryview(first)[n:]
                n = 0

    def _more_records(self, buf: memoryview, n: int) -> int:
        """Read on into *buf* after its first *n* bytes while TLS has more; return how much more.

        An SSLSocket hands over one record (at most 16 KiB) per read: taking
        the records that have already arrived before the frames are parsed
        saves a parse and a loop turn per record.
        """
        more, room = 0, min(len(buf), TLS_BATCH)
        while n + more < room:
            try:
                k = self.sock.recv_into(buf[n + more : room])
            except self._would_block:
                break
            except OSError:
                break  # the next read meets it again, and reports it
            if not k:
                break
            more += k
        return more

    def read(self, wait: bool = False) -> bool:
        """Take what the socket has (with *wait*, sleeping until something comes); False if it had nothing yet (a failure is True: there is news)."""
        if self.conn.at_eof:
            return False
        try:
            with self.conn.get_buffer() as buf:
                n = self.sock.recv_into(buf) if wait or self.tls else self.sock.recv_into(buf, 0, self._dontwait)
                if self.tls and n >= TLS_RECORD:
                    n += self._more_records(buf, n)
        except self._would_block:
            return False
        except OSError as exc:
            self.failure = ConnectionLost(f"connection lost: {exc.strerror or exc}")
            self.failure.__cause__ = exc
            return True
        self.conn.buffer_updated(n)
        return True
