"""FdWatcher: many descriptors behind one loop reader, with real pipes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from rsh.server.fdwatch import FdWatcher


@pytest.fixture
async def watcher() -> AsyncIterator[FdWatcher]:
    w = FdWatcher()
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
def pipe() -> Iterator[Callable[[], tuple[int, int]]]:
    """``pipe()`` is ``os.pipe()``, both ends closed after the test."""
    opened: list[int] = []

    def make() -> tuple[int, int]:
        r, w = os.pipe()
        opened.extend((r, w))
        return r, w

    try:
        yield make
    finally:
        for fd in opened:
            os.close(fd)


async def test_readers_fire_and_stop_when_removed(watcher: FdWatcher, pipe: Callable[[], tuple[int, int]]) -> None:
    r, wr = pipe()
    got: list[bytes] = []
    ready = asyncio.Event()

    def on_read() -> None:
        got.append(os.read(r, 100))
        ready.set()

    watcher.add_reader(r, on_read)
    os.write(wr, b"one")
    await asyncio.wait_for(ready.wait(), 5)
    assert got == [b"one"]
    watcher.remove_reader(r)
    os.write(wr, b"two")
    for _ in range(5):
        await asyncio.sleep(0)
    assert got == [b"one"]  # not watched any more: the data waits in the pipe
    assert os.read(r, 100) == b"two"


async def test_writer_and_reader_on_one_watcher(watcher: FdWatcher, pipe: Callable[[], tuple[int, int]]) -> None:
    r, wr = pipe()
    order: list[str] = []
    done = asyncio.Event()

    def on_write() -> None:
        order.append("write")
        os.write(wr, b"x")
        watcher.remove_writer(wr)

    def on_read() -> None:
        order.append("read")
        os.read(r, 10)
        done.set()

    watcher.add_reader(r, on_read)
    watcher.add_writer(wr, on_write)
    await asyncio.wait_for(done.wait(), 5)
    assert order == ["write", "read"]


async def test_a_descriptor_dropped_by_an_earlier_callback_of_the_batch_is_not_called(watcher: FdWatcher, pipe: Callable[[], tuple[int, int]]) -> None:
    a_r, a_w = pipe()
    b_r, b_w = pipe()
    calls: list[str] = []
    done = asyncio.Event()

    def on_a() -> None:
        calls.append("a")
        os.read(a_r, 10)
        watcher.remove_reader(b_r)  # b is ready in the same batch, but no longer wanted
        watcher.remove_reader(a_r)
        done.set()

    def on_b() -> None:
        calls.append("b")
        os.read(b_r, 10)
        watcher.remove_reader(a_r)
        done.set()

    os.write(a_w, b"1")
    os.write(b_w, b"1")
    watcher.add_reader(a_r, on_a)
    watcher.add_reader(b_r, on_b)
    await asyncio.wait_for(done.wait(), 5)
    for _ in range(5):
        await asyncio.sleep(0)
    assert calls in (["a"], ["b"])  # whichever came first; never both


async def test_a_descriptor_that_cannot_be_watched_raises_and_is_forgotten(watcher: FdWatcher, tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_CREAT | os.O_RDONLY)
    try:
        with pytest.raises(PermissionError):  # epoll refuses regular files
            watcher.add_reader(fd, lambda: None)
        watcher.remove_reader(fd)  # nothing registered: a no-op
    finally:
        os.close(fd)
