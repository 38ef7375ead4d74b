"""Fuzz targets: the frame decoder, and a server connection that has not authenticated.

Each takes one input (bytes) and raises ``AssertionError`` (or anything but
``ProtocolError``) when the code under test misbehaves.  ``bench/fuzz.py``
runs them under atheris, coverage-guided; the inputs it found worth keeping
are in ``tests/fuzz_corpus/<target>/``, and ``tests/test_fuzz_corpus.py``
replays every one on each test run (the server target also against a live server).

The first byte of an input chooses how the rest is cut into reads, so the
fuzzer explores splits as well as contents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rsh.errors import ProtocolError
from rsh.protocol.connection import NEED_DATA
from rsh.protocol.frames import Frame, FrameDecoder, encode_frame
from rsh.protocol.server import AuthRejected, ServerProtocol, ServerState

__all__ = ["TARGETS", "frame_decoder", "unauthenticated_server", "chunks"]

TOKEN = "fuzz-token-" + "t" * 21
NONCE = "ab" * 32
# Small, so that sizes around the limit are within the fuzzer's reach.
MAX_PAYLOAD = 4096


def chunks(data: bytes) -> Iterator[bytes]:
    """The input after its first byte, in reads whose sizes the first byte seeds."""
    if not data:
        return
    seed, rest = data[0], data[1:]
    step = seed % 17 + 1
    i = 0
    while i < len(rest):
        n = step if seed & 0x80 else (step * (i + 1)) % 61 + 1
        yield rest[i : i + n]
        i += n


def _decode(pieces: list[bytes]) -> tuple[list[Frame], str | None]:
    dec = FrameDecoder(MAX_PAYLOAD)
    frames: list[Frame] = []
    for piece in pieces:
        try:
            frames += dec.feed(piece)
        except ProtocolError as exc:
            return frames, exc.code
    return frames, None


def frame_decoder(data: bytes) -> None:
    """However the bytes are cut, the same frames (or the same error); every frame re-encodes to itself."""
    pieces = list(chunks(data))
    whole, whole_error = _decode([b"".join(pieces)])
    split, split_error = _decode(pieces)
    # The decoder stops at the first error and keeps nothing of that read:
    # cut finer, it hands out the frames before the error too.
    assert split_error == whole_error, (whole_error, split_error)
    if whole_error is None:
        assert split == whole
    else:
        assert split[: len(whole)] == whole
    for frame in split:
        assert isinstance(frame.type, str) and isinstance(frame.fields, dict) and isinstance(frame.payload, bytes)
        assert len(frame.payload) <= MAX_PAYLOAD
        again = FrameDecoder(MAX_PAYLOAD).feed(encode_frame(frame.type, frame.fields, frame.payload))
        assert again == [frame], (frame, again)


def unauthenticated_server(data: bytes) -> None:
    """Whatever a peer without the token sends, it never gets past ``auth``: no command, no transfer, no crash."""
    conn = ServerProtocol(TOKEN, software="rsh/fuzz", encoding="utf-8", system="fuzz", shell="/bin/sh", identity={}, max_payload=MAX_PAYLOAD, nonce=NONCE)
    conn.data_to_send()
    rejected = False
    for piece in [*chunks(data), b""]:
        try:
            conn.receive_data(piece)
        except ProtocolError:
            return
        while True:
            try:
                event = conn.next_event()
            except ProtocolError:
                return  # the driver answers with an error frame and closes
            if event is NEED_DATA:
                break
            # A wrong auth, once; nothing else can happen before auth_ok.
            assert isinstance(event, AuthRejected) and not rejected, event
            rejected = True
            assert conn.state is ServerState.REJECTED
            conn.fail_auth()
            assert conn.state is ServerState.CLOSED
        assert conn.state in (ServerState.AUTH, ServerState.REJECTED, ServerState.CLOSED), conn.state


TARGETS: dict[str, Callable[[bytes], None]] = {"frames": frame_decoder, "server": unauthenticated_server}
