"""FdWatcher: many descriptors behind one loop reader, with real pipes."""

from __future__ import annotations

import asyncio
import os

import pytest

from rsh.server.fdwatch import FdWatcher


async def test_readers_fire_and_stop_when_removed() -> None:
    w = FdWatcher()
    r, wr = os.pipe()
    got: list[bytes] = []
    ready = asyncio.Event()

    def on_read() -> None:
        got.append(os.read(r, 100))
        ready.set()

    try:
        w.add_reader(r, on_read)
        os.write(wr, b"one")
        await asyncio.wait_for(ready.wait(), 5)
        assert got == [b"one"]
        w.remove_reader(r)
        os.write(wr, b"two")
        for _ in range(5):
            await asyncio.sleep(0)
        assert got == [b"one"]  # not watched any more: the data waits in the pipe
        assert os.read(r, 100) == b"two"
    finally:
        w.close()
        os.close(r)
        os.close(wr)


async def test_writer_and_reader_on_one_watcher() -> None:
    w = FdWatcher()
    r, wr = os.pipe()
    order: list[str] = []
    done = asyncio.Event()

    def on_write() -> None:
        order.append("write")
        os.write(wr, b"x")
        w.remove_writer(wr)

    def on_read() -> None:
        order.append("read")
        os.read(r, 10)
        done.set()

    try:
        w.add_reader(r, on_read)
        w.add_writer(wr, on_write)
        await asyncio.wait_for(done.wait(), 5)
        assert order == ["write", "read"]
    finally:
        w.close()
        os.close(r)
        os.close(wr)


async def test_a_descriptor_dropped_by_an_earlier_callback_of_the_batch_is_not_called() -> None:
    w = FdWatcher()
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    calls: list[str] = []
    done = asyncio.Event()

    def on_a() -> None:
        calls.append("a")
        os.read(a_r, 10)
        w.remove_reader(b_r)  # b is ready in the same batch, but no longer wanted
        w.remove_reader(a_r)
        done.set()

    def on_b() -> None:
        calls.append("b")
        os.read(b_r, 10)
        w.remove_reader(a_r)
        done.set()

    try:
        os.write(a_w, b"1")
        os.write(b_w, b"1")
        w.add_reader(a_r, on_a)
        w.add_reader(b_r, on_b)
        await asyncio.wait_for(done.wait(), 5)
        for _ in range(5):
            await asyncio.sleep(0)
        assert calls in (["a"], ["b"])  # whichever came first; never both
    finally:
        w.close()
        for fd in (a_r, a_w, b_r, b_w):
            os.close(fd)


async def test_a_descriptor_that_cannot_be_watched_raises_and_is_forgotten(tmp_path) -> None:  # type: ignore[no-untyped-def]
    w = FdWatcher()
    fd = os.open(tmp_path / "f", os.O_CREAT | os.O_RDONLY)
    try:
        with pytest.raises(PermissionError):  # epoll refuses regular files
            w.add_reader(fd, lambda: None)
        w.remove_reader(fd)  # nothing registered: a no-op
    finally:
        w.close()
        os.close(fd)
