"""Sender and Receiver back to back, in one process, through the real codec; and hostile frames."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os
import stat
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from rsh.errors import ProtocolError, RemoteError
from rsh.prompt.progress import ProgressBar, format_bar, format_bytes, format_duration, format_summary
from rsh.protocol.frames import Frame, FrameDecoder, encode_frame
from rsh.protocol.messages import TRANSFER_RECEIVER_TYPES, TRANSFER_SENDER_TYPES
from rsh.results import Failure, TransferProgress, TransferResult
from rsh.transfer import sinks as transfer_sinks
from rsh.transfer.failures import failure_from_oserror
from rsh.transfer.flow import CHUNK
from rsh.transfer.messages import Entry
from rsh.transfer.receive import Receiver, partial_name
from rsh.transfer.send import PathSource, Sender, StreamSource
from rsh.transfer.states import RECEIVER_TABLE, SENDER_TABLE, ReceiverState, SenderState


def wire(type: str | Frame, fields: dict[str, Any] | None = None, payload: bytes = b"") -> Frame:
    """The frame as the peer would decode it (*type* may be a whole frame to send)."""
    if isinstance(type, Frame):
        type, fields, payload = type.type, type.fields, type.payload
    (frame,) = FrameDecoder().feed(encode_frame(type, fields, payload))
    return frame


def run_pair(sender: Sender, receiver: Receiver) -> tuple[TransferResult, TransferResult]:
    """Move every frame from sender to receiver and every reply back, until done.

    Each frame must be one the protocol's state tables let that role send
    during a transfer (rsh.protocol.messages), or a real connection would refuse it.
    """
    replies: deque[Frame] = deque()
    while True:
        while replies:
            sender.on_reply(replies.popleft())
        if sender.finished:
            break
        if sender.pending_hash:
            sender.hash_done(sender.hash_job()())
        out = sender.next_frame()
        assert out is not None, "the sender waits for a reply that never comes"
        assert out.type in TRANSFER_SENDER_TYPES, out
        answers = list(receiver.on_frame(wire(out)))
        if receiver.pending_hash:
            answers += receiver.hash_done(receiver.hash_job()())
        for reply in answers:
            assert reply.type in TRANSFER_RECEIVER_TYPES, reply
            replies.append(wire(reply))
    sender.close()
    return sender.result(), receiver.result()


def copy(tmp: Path, src: str, dst: str, *, recursive: bool = False, resume: bool = False) -> tuple[TransferResult, TransferResult]:
    return run_pair(Sender(PathSource(str(tmp), src, recursive=recursive)), Receiver(str(tmp), dst, resume=resume))


def make_tree(root: Path) -> None:
    (root / "a" / "b").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a" / "b" / "data.bin").write_bytes(os.urandom(3 * CHUNK + 5))
    (root / "top.txt").write_text("top\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "a" / "link").symlink_to("../top.txt")
    (root / "outside").symlink_to("/etc")
    os.chmod(root / "run.sh", 0o751)
    os.chmod(root / "a" / "b" / "data.bin", 0o600)
    os.chmod(root / "a", 0o750)
    for i, p in enumerate(sorted(root.rglob("*"), reverse=True)):
        os.utime(p, ns=(1_600_000_000_000_000_000 + i, 1_500_000_000_123_456_789 + i), follow_symlinks=False)
    os.utime(root, ns=(1, 1_400_000_000_000_000_000))


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Everything a tree copy must keep, per relative path."""
    out: dict[str, tuple[Any, ...]] = {}
    for p in [root, *sorted(root.rglob("*"))]:
        st = p.lstat()
        rel = str(p.relative_to(root))
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", os.readlink(p), st.st_mtime_ns)
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("dir", stat.S_IMODE(st.st_mode), st.st_mtime_ns)
        else:
            out[rel] = ("file", stat.S_IMODE(st.st_mode), st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def test_tree_keeps_structure_modes_mtimes_links_and_empty_dirs(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    (tmp_path / "dst").mkdir()
    sent, received = copy(tmp_path, "src", "dst", recursive=True)
    assert snapshot(tmp_path / "dst" / "src") == snapshot(tmp_path / "src")
    assert (sent.files, sent.dirs, sent.symlinks) == (3, 4, 2) == (received.files, received.dirs, received.symlinks)
    assert sent.ok and received.ok and sent.bytes == received.bytes == 3 * CHUNK + 5 + 4 + 10


def test_tree_to_a_new_name_is_that_name(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    copy(tmp_path, "src", "copy", recursive=True)
    assert snapshot(tmp_path / "copy") == snapshot(tmp_path / "src")


def test_directory_without_recursive_is_one_failure(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    sent, received = copy(tmp_path, "d", "out")
    assert [f.line() for f in sent.failures] == ["d: is a directory (use -r to copy directories)"]
    assert [f.code for f in received.failures] == ["is_a_directory"]  # told, so `get` can report it
    assert not (tmp_path / "out").exists()


def test_fifo_in_a_tree_is_reported_and_the_rest_copied(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    os.mkfifo(tmp_path / "src" / "pipe")
    (tmp_path / "src" / "file").write_text("x")
    sent, _ = copy(tmp_path, "src", "dst", recursive=True)
    assert [(f.code, f.path) for f in sent.failures] == [("not_regular", "src/pipe")]
    assert (tmp_path / "dst" / "file").read_text() == "x" and not (tmp_path / "dst" / "pipe").exists()


def test_several_sources_need_an_existing_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    _, received = run_pair(Sender(PathSource(str(tmp_path), "f")), Receiver(str(tmp_path), "nodir", into=True))
    assert [f.line() for f in received.failures] == ["nodir: No such file or directory"]


def test_missing_parent_directory_is_named(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    _, received = copy(tmp_path, "f", "no/such/f")
    assert [f.line() for f in received.failures] == ["no/such/f: No such file or directory"]


def test_a_stream_into_a_directory_needs_a_name(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    _, received = run_pair(Sender(StreamSource(io.BytesIO(b"data"))), Receiver(str(tmp_path), "d"))
    assert [f.code for f in received.failures] == ["is_a_directory"]
    assert os.listdir(tmp_path / "d") == []


def test_a_stream_arrives_whole(tmp_path: Path) -> None:
    data = os.urandom(2 * CHUNK + 1)
    sent, _ = run_pair(Sender(StreamSource(io.BytesIO(data))), Receiver(str(tmp_path), "out"))
    assert (tmp_path / "out").read_bytes() == data and sent.sha256 == hashlib.sha256(data).hexdigest()


def test_a_file_never_replaces_a_directory(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "name").write_text("x")
    (tmp_path / "dst" / "src" / "name").mkdir(parents=True)
    _, received = copy(tmp_path, "src", "dst", recursive=True)
    assert [f.line() for f in received.failures] == ["dst/src/name: Is a directory"]
    assert (tmp_path / "dst" / "src" / "name").is_dir()


def test_a_directory_never_replaces_a_file(tmp_path: Path) -> None:
    (tmp_path / "src" / "name").mkdir(parents=True)
    (tmp_path / "src" / "name" / "inner").write_text("x")
    (tmp_path / "dst" / "src").mkdir(parents=True)
    (tmp_path / "dst" / "src" / "name").write_text("keep")
    _, received = copy(tmp_path, "src", "dst", recursive=True)
    assert [(f.code, f.path) for f in received.failures] == [("not_a_directory", "dst/src/name"), ("skipped", "dst/src/name/inner")]
    assert (tmp_path / "dst" / "src" / "name").read_text() == "keep"


def test_progress_reports_every_chunk_up_to_the_size(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * (2 * CHUNK + 7))
    seen: list[TransferProgress] = []
    run_pair(Sender(PathSource(str(tmp_path), "f"), progress=seen.append), Receiver(str(tmp_path), "g"))
    assert [p.done for p in seen] == [0, CHUNK, 2 * CHUNK, 2 * CHUNK + 7]
    assert all(p.size == 2 * CHUNK + 7 and p.path == "f" for p in seen)


def test_a_lending_sender_reads_every_chunk_into_one_buffer(tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK + 17)
    (tmp_path / "f").write_bytes(data)
    sender = Sender(PathSource(str(tmp_path), "f"), lend=True)
    buffers: list[object] = []
    next_frame = sender.next_frame

    def spy() -> Frame | None:
        frame = next_frame()
        if frame is not None and frame.type == "data":
            buffers.append(frame.payload.obj if isinstance(frame.payload, memoryview) else frame.payload)
        return frame

    sender.next_frame = spy  # type: ignore[method-assign]
    run_pair(sender, Receiver(str(tmp_path), "g"))  # which copies each frame before asking for the next
    assert (tmp_path / "g").read_bytes() == data
    assert len(buffers) == 4 and all(b is buffers[0] for b in buffers) and isinstance(buffers[0], bytearray)


def test_a_whole_transfer_leaves_both_roles_done(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    sender, receiver = Sender(PathSource(str(tmp_path), "src", recursive=True)), Receiver(str(tmp_path), "dst")
    run_pair(sender, receiver)
    assert (sender.state, receiver.state) == (SenderState.DONE, ReceiverState.DONE)
    assert sender.finished and receiver.finished and not (sender.refused or receiver.refused)


def test_every_state_has_its_moves_and_a_dead_end_is_finished() -> None:
    for table, states in ((SENDER_TABLE, SenderState), (RECEIVER_TABLE, ReceiverState)):
        assert set(table.moves) == set(states)
        assert all(to in states for moves in table.moves.values() for to in moves.values())
        assert {s for s, moves in table.moves.items() if not moves} <= table.finished
        assert table.refused <= table.finished and table.hashing not in table.finished


# -- hostile senders ----------------------------------------------------------


@pytest.mark.parametrize("path", ["..", "../x", "a/../b", "/etc/passwd", "a//b", "a/", ".", "./a", "x\0y", "n" * 256])
def test_entry_paths_that_could_leave_the_tree_are_protocol_errors(path: str) -> None:
    with pytest.raises(ProtocolError) as exc:
        Entry.from_frame(wire("file", {"path": path, "mode": 0o644, "mtime_ns": 0, "length": 0}))
    assert exc.value.code == "bad_field"


@pytest.mark.parametrize(
    "fields",
    [
        {"path": "", "mode": -1},
        {"path": "", "mode": 0o10000},
        {"path": "", "mode": True},
        {"path": "", "mtime_ns": 1.5},
        {"path": "", "length": -1},
        {"path": "a", "name": "x"},  # only the root has a name
        {"path": "", "name": "../x"},
    ],
)
def test_bad_entry_fields_are_protocol_errors(fields: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        Entry.from_frame(wire("file", fields))


def test_a_symlink_sent_first_is_never_a_way_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "dst").mkdir()
    r = Receiver(str(tmp_path), "dst")
    assert r.on_frame(wire("dir", {"path": "", "mode": 0o755, "mtime_ns": 0, "name": "t"}))[0].type == "ok"
    assert r.on_frame(wire("symlink", {"path": "d", "target": str(outside), "mtime_ns": 0}))[0].type == "ok"
    (reply,) = r.on_frame(wire("file", {"path": "d/x", "mode": 0o644, "mtime_ns": 0, "length": 1}))
    assert reply.type == "error" and reply.fields is not None
    assert reply.fields["message"] == "dst/t/d is a symbolic link (not followed)"
    (reply,) = r.on_frame(wire("dir", {"path": "d/sub", "mode": 0o755, "mtime_ns": 0}))
    assert reply.type == "error"
    r.on_frame(wire("end"))
    assert os.listdir(outside) == []
    assert os.readlink(tmp_path / "dst" / "t" / "d") == str(outside)


def test_a_symlink_already_in_the_destination_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "dst").mkdir()
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "sub" / "x").write_text("x")
    (tmp_path / "dst" / "src").mkdir()
    (tmp_path / "dst" / "src" / "sub").symlink_to(outside)
    _, received = copy(tmp_path, "src", "dst", recursive=True)
    assert [f.line() for f in received.failures] == [
        "dst/src/sub: is a symbolic link (not followed)",
        "dst/src/sub/x: not copied: a directory above it failed",
    ]
    assert os.listdir(outside) == []


def test_data_without_ready_is_a_protocol_error(tmp_path: Path) -> None:
    r = Receiver(str(tmp_path), "x")
    with pytest.raises(ProtocolError):
        r.on_frame(wire("data", None, b"abc"))


def test_a_reply_nobody_asked_for_is_a_protocol_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    s = Sender(PathSource(str(tmp_path), "f"))
    with pytest.raises(ProtocolError):
        s.on_reply(wire("ok"))
    assert s.next_frame() is not None  # the file entry
    with pytest.raises(ProtocolError):
        s.on_reply(wire("ok"))  # a file is answered `ready` first
    s.close()


REFUSAL = {"code": "not_allowed", "message": "file transfer is not allowed on this server (restricted mode)"}


def sent_until_waiting(s: Sender) -> list[str]:
    types = []
    while (out := s.next_frame()) is not None:
        types.append(out.type)
    return types


@pytest.mark.parametrize("what, before", [("file", ["file"]), ("empty", ["dir", "end"]), ("tree", ["dir", "dir", "file"])])
def test_a_refused_request_ends_with_one_end(tmp_path: Path, what: str, before: list[str]) -> None:
    # Whatever went out behind the request, the refusal is followed by exactly
    # one `end`, so the receiver knows where the refused transfer's frames stop.
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "f").write_text("x")
    s = Sender(PathSource(str(tmp_path), what, recursive=True))
    assert sent_until_waiting(s) == before
    with pytest.raises(RemoteError) as info:
        s.on_reply(wire("error", REFUSAL))
    assert info.value.code == "not_allowed" and s.refused and s.finished
    assert sent_until_waiting(s) == ([] if "end" in before else ["end"])


def test_a_refusal_after_a_reply_is_not_a_refusal(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    s = Sender(PathSource(str(tmp_path), "d", recursive=True))
    sent_until_waiting(s)
    s.on_reply(wire("ok"))
    with pytest.raises(RemoteError):
        s.on_reply(wire("error", REFUSAL))
    assert not s.refused
    r = Receiver(str(tmp_path), "x")
    r.on_frame(wire("error", {"code": "not_found", "path": "y", "message": "No such file or directory"}))
    with pytest.raises(RemoteError):
        r.on_frame(wire("error", REFUSAL))
    assert not r.refused


def test_a_refused_get_is_over_at_once(tmp_path: Path) -> None:
    r = Receiver(str(tmp_path), "x")
    with pytest.raises(RemoteError):
        r.on_frame(wire("error", REFUSAL))
    assert r.refused and r.finished and not (tmp_path / "x").exists()


def test_resume_must_be_zero_or_the_offer(tmp_path: Path) -> None:
    (tmp_path / partial_name("x")).write_bytes(b"abc")
    r = Receiver(str(tmp_path), "x", resume=True)
    assert r.on_frame(wire("file", {"path": "", "mode": 0o644, "mtime_ns": 0, "length": 6})) == []
    (ready,) = r.hash_done(r.hash_job()())
    assert ready.type == "ready" and ready.fields is not None and ready.fields["offset"] == 3
    with pytest.raises(ProtocolError):
        r.on_frame(wire("resume", {"offset": 2}))
    r.abort()


# -- temporary files ----------------------------------------------------------


def file_end(data: bytes) -> dict[str, Any]:
    return {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def begin(r: Receiver, length: int) -> None:
    (reply,) = r.on_frame(wire("file", {"path": "", "mode": 0o640, "mtime_ns": 1_000_000_000_000_000_000, "length": length}))
    assert reply.type == "ready"


def test_checksum_mismatch_keeps_the_old_file_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("old")
    r = Receiver(str(tmp_path), "target")
    begin(r, 5)
    r.on_frame(wire("data", None, b"hello"))
    (reply,) = r.on_frame(wire("file_end", file_end(b"hellO")))
    assert reply.type == "error" and reply.fields is not None and reply.fields["code"] == "checksum_mismatch"
    assert reply.fields["message"].startswith("checksum mismatch")
    r.on_frame(wire("end"))
    assert os.listdir(tmp_path) == ["target"] and (tmp_path / "target").read_text() == "old"


@pytest.fixture(params=[True, False], ids=["o_tmpfile", "named_temp"])
def tmpfile_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Run a test with O_TMPFILE, and again with the named-temporary fallback."""
    if request.param and not transfer_sinks._CAN_TMPFILE:
        pytest.skip("no O_TMPFILE here")
    monkeypatch.setattr(transfer_sinks, "_CAN_TMPFILE", request.param)
    return bool(request.param)


def test_the_file_appears_only_when_verified(tmp_path: Path, tmpfile_mode: bool) -> None:
    (tmp_path / "target").write_text("old")
    r = Receiver(str(tmp_path), "target")
    begin(r, 5)
    r.on_frame(wire("data", None, b"hel"))
    names = os.listdir(tmp_path)
    assert (tmp_path / "target").read_text() == "old"
    assert names == ["target"] if tmpfile_mode else (len(names) == 2 and all(n == "target" or n.startswith(".target.rsh-") for n in names))
    r.on_frame(wire("data", None, b"lo"))
    assert r.on_frame(wire("file_end", file_end(b"hello")))[0].type == "ok"
    assert os.listdir(tmp_path) == ["target"] and (tmp_path / "target").read_text() == "hello"
    st = (tmp_path / "target").stat()
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_mtime_ns == 1_000_000_000_000_000_000


@pytest.mark.parametrize("how", ["abort", "sender_failed", "mismatch"])
def test_every_failure_path_removes_the_temporary_file(tmp_path: Path, tmpfile_mode: bool, how: str) -> None:
    (tmp_path / "target").write_text("old")
    r = Receiver(str(tmp_path), "target")
    begin(r, 5)
    r.on_frame(wire("data", None, b"hel"))
    if how == "abort":
        r.abort()
    elif how == "sender_failed":
        (reply,) = r.on_frame(wire("file_end", {"failed": "io_error", "path": "src", "message": "Input/output error"}))
        assert reply.fields is not None and reply.fields["code"] == "aborted"
        assert [f.line("h") for f in r.failures] == ["h:src: Input/output error"]
    else:
        r.on_frame(wire("file_end", file_end(b"hello")))
    assert os.listdir(tmp_path) == ["target"] and (tmp_path / "target").read_text() == "old"


def test_a_write_failure_is_reported_at_once_and_the_sender_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "big").write_bytes(os.urandom(8 * CHUNK))
    writes = 0
    real_write = transfer_sinks.TempFile.write

    def full_after_two(self: transfer_sinks.TempFile, data: bytes) -> None:
        nonlocal writes
        writes += 1
        if writes > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(self, data)

    monkeypatch.setattr(transfer_sinks.TempFile, "write", full_after_two)
    sent, received = copy(tmp_path, "big", "copy")
    assert [f.line() for f in received.failures] == ["copy: No space left on device"]
    assert [f.code for f in sent.failures] == ["no_space"]
    assert sent.sent == 3 * CHUNK  # stopped at the first reply, not after 8 chunks
    assert sorted(os.listdir(tmp_path)) == ["big"]


# -- resume -------------------------------------------------------------------


def test_resume_continues_after_a_matching_prefix(tmp_path: Path) -> None:
    data = os.urandom(5 * CHUNK + 3)
    (tmp_path / "src").write_bytes(data)
    (tmp_path / partial_name("dst")).write_bytes(data[: 2 * CHUNK + 1])
    sent, received = copy(tmp_path, "src", "dst", resume=True)
    assert (tmp_path / "dst").read_bytes() == data
    assert sent.resumed == received.resumed == 2 * CHUNK + 1
    assert sent.sent == len(data) - (2 * CHUNK + 1)
    assert sorted(os.listdir(tmp_path)) == ["dst", "src"]


def test_resume_starts_over_when_the_prefix_differs(tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK)
    (tmp_path / "src").write_bytes(data)
    (tmp_path / partial_name("dst")).write_bytes(b"not the same bytes")
    sent, _ = copy(tmp_path, "src", "dst", resume=True)
    assert (tmp_path / "dst").read_bytes() == data and sent.resumed == 0 and sent.sent == len(data)


def test_resume_keeps_the_partial_when_interrupted_only(tmp_path: Path) -> None:
    r = Receiver(str(tmp_path), "dst", resume=True)
    begin(r, 10)
    r.on_frame(wire("data", None, b"12345"))
    r.abort(interrupted=True)
    assert (tmp_path / partial_name("dst")).read_bytes() == b"12345" and not (tmp_path / "dst").exists()
    r = Receiver(str(tmp_path), "dst", resume=True)
    assert r.on_frame(wire("file", {"path": "", "mode": 0o644, "mtime_ns": 0, "length": 10})) == []
    r.hash_done(r.hash_job()())
    r.on_frame(wire("resume", {"offset": 5}))
    r.on_frame(wire("data", None, b"67890"))
    (reply,) = r.on_frame(wire("file_end", file_end(b"1234567899")))
    assert reply.fields is not None and reply.fields["code"] == "checksum_mismatch"
    assert os.listdir(tmp_path) == []


def test_a_complete_plain_transfer_removes_an_old_partial(tmp_path: Path) -> None:
    (tmp_path / "src").write_text("data")
    (tmp_path / partial_name("dst")).write_text("da")
    copy(tmp_path, "src", "dst")
    assert sorted(os.listdir(tmp_path)) == ["dst", "src"]


def test_one_partial_one_transfer(tmp_path: Path) -> None:
    (tmp_path / "src").write_text("data")
    with open(tmp_path / partial_name("dst"), "wb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        _, received = copy(tmp_path, "src", "dst", resume=True)
    assert [f.code for f in received.failures] == ["busy"]


# -- messages and formatting ----------------------------------------------------


def test_errno_maps_to_codes_and_strerror() -> None:
    f = failure_from_oserror("x/y", PermissionError(errno.EACCES, os.strerror(errno.EACCES)))
    assert (f.code, f.line()) == ("permission_denied", "x/y: Permission denied")
    assert failure_from_oserror("d", OSError(errno.ENOSPC, "No space left on device")).code == "no_space"
    assert Failure("a b/é", "not_found", "No such file or directory", remote=True).line("host") == "host:a b/é: No such file or directory"


def test_undecodable_names_print_escaped() -> None:
    name = os.fsdecode(b"bad\xffname")
    assert Failure(name, "bad_name", "x").line() == "bad\\xffname: x"


def test_format_bytes_and_duration() -> None:
    assert [format_bytes(n) for n in (0, 1023, 1024, 1536, 200 * 2**20, 2**30)] == ["0 B", "1023 B", "1.00 KiB", "1.50 KiB", "200.0 MiB", "1.00 GiB"]
    assert [format_duration(s) for s in (0, 7.4, 754, 3723)] == ["0:00", "0:07", "12:34", "1:02:03"]


def test_format_bar_fits_the_width() -> None:
    p = TransferProgress("some/long/path/to/a/file-with-a-long-name.bin", 512 * 2**20, 2**30, 512 * 2**20)
    for width in (20, 40, 79, 200):
        line = format_bar(p, 256 * 2**20, width)
        assert len(line) <= width
    assert "50%" in format_bar(p, 256 * 2**20, 120) and "ETA 0:02" in format_bar(p, 256 * 2**20, 120)
    assert "%" not in format_bar(TransferProgress("-", 10, None, 10), 1.0, 80)


def test_summary_names_size_time_rate_and_the_check() -> None:
    r = TransferResult(files=1, bytes=2**30, sent=2**30, sha256="0" * 64)
    assert format_summary("a -> h:b", r, 4.0) == "a -> h:b: 1.00 GiB in 4.0 s (256.0 MiB/s), sha256 verified"
    r = TransferResult(files=3, dirs=2, symlinks=1, bytes=10, sent=6, resumed=4)
    assert format_summary("t", r, 1.0) == "t: 3 files, 2 directories, 1 symlink, 10 B in 1.0 s (6 B/s), resumed after 4 B, sha256 verified"


def test_progress_bar_waits_then_draws_one_line() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, delay=3600)
    bar(TransferProgress("f", 1, 2, 1))
    assert out.getvalue() == ""
    bar = ProgressBar(out, delay=0)
    bar(TransferProgress("f", 1, 2, 1))
    assert out.getvalue().startswith("\rf") and "50%" in out.getvalue() and "\n" not in out.getvalue()
    bar.clear()
    assert out.getvalue().endswith("\r\x1b[K")
