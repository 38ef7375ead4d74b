"""``rsh demo``: each naive half really shows its fault, each framed half fixes it, every run."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from rsh.protocol.frames import FrameDecoder, encode_frame
from rsh.teach import demo
from rsh.teach.classic import IPCONFIG
from rsh.teach.classic_files import FILE_SIZE, PIECE
from rsh.teach.narrator import Narrator, hexdump, text_width
from rsh.teach.specimens import END, exit_fields, framed_reply
from rsh.teach.staging import DemoResult
from rsh.teach.truncate import fake_file

from .conftest import ROOT, rsh_argv, rsh_env

RUNS = 50
#: The classic demo starts a real rsh server each time: fewer runs.
CLASSIC_RUNS = 20


def run_quiet(name: str, lang: str = "en", color: bool = False) -> tuple[DemoResult, str]:
    buf = io.StringIO()
    result = demo.DEMOS[name].run(Narrator(buf, lang, color=color))
    return result, buf.getvalue()


def check_coalesce(r: DemoResult) -> None:
    assert r.sent == [b"hello", b"world"]
    assert r.naive == [b"helloworld"]  # two sends, one recv
    assert r.framed == r.sent


def check_truncate(r: DemoResult) -> None:
    a, b, c = r.sent
    assert [len(a), len(b), len(c)] == [418, 1517, 418]
    # 418, then the first 1024 of the 1517, then the other 493 glued to the
    # front of the third reply: one command late.
    assert r.naive == [a, b[:1024], b[1024:] + c]
    assert r.details["recv_sizes"] == [418, 1024, 493 + 418]
    assert r.framed == [a, b, c]


def check_header(r: DemoResult) -> None:
    assert r.sent == [b"42 files\n", b"done\n"]
    # str(len) made "9" + "42 files" read as a length of 942.
    assert r.naive == []
    assert (r.details["wanted"], r.details["available"]) == (942, 13)
    # Fed byte by byte, the decoder returns the frame at its last byte only.
    assert r.details["completed_at"] == [r.details["frame_bytes"]]
    assert r.framed == r.sent


def check_markers(r: DemoResult) -> None:
    whoami, notes, hostname = r.sent
    assert END in notes
    cut, _, rest = notes.partition(END)
    # Cut at the marker inside the output; the rest arrives as the next command's.
    assert r.naive == [whoami, cut, rest]
    assert r.framed == r.sent


def check_udp(r: DemoResult) -> None:
    assert r.sent == [b"hello", b"world"]
    assert r.naive == r.sent  # two datagrams stay two


def check_classic(r: DemoResult) -> None:
    ls1, ipconfig, ls3 = r.sent
    assert ls1 == ls3 == b"bin\nnotes.txt\nphoto.jpg\nreport.pdf\n"
    assert ipconfig == IPCONFIG and len(ipconfig) == 1517
    # Cut at 1024; the other 493 bytes come out as the second ls's answer, ahead of its own listing.
    assert r.naive == [ls1, ipconfig[:1024], ipconfig[1024:] + ls3]
    assert r.details["cut"] == 1024 and r.details["carried"] == ipconfig[1024:]
    assert r.framed == r.sent  # through the real rsh server: each output whole
    files = r.details["files"]
    assert files["lucky"] is True  # one sendall() on loopback: the countdown gets away with it
    assert files["short"] == 3 * PIECE < FILE_SIZE  # segments of 1448: three recv()s "count" 12288
    assert files["counted"] is True and files["put"] is True


CHECKS: dict[str, Callable[[DemoResult], None]] = {
    "coalesce": check_coalesce,
    "truncate": check_truncate,
    "header": check_header,
    "markers": check_markers,
    "udp": check_udp,
    "classic": check_classic,
}


def test_every_demo_is_checked() -> None:
    assert list(CHECKS) == list(demo.DEMOS)


@pytest.mark.parametrize("name", list(CHECKS))
def test_demo_shows_fault_and_fix_every_run(name: str) -> None:
    first_result, first_text = run_quiet(name)
    CHECKS[name](first_result)
    for _ in range((CLASSIC_RUNS if name == "classic" else RUNS) - 1):
        result, text = run_quiet(name)
        CHECKS[name](result)
        # Not only the same verdict: the same bytes, recv sizes and words.
        assert result == first_result
        assert text == first_text


def test_truncate_output_names_the_shift() -> None:
    _, text = run_quiet("truncate")
    assert "client: recv(1024) -> 1024 bytes   (FIONREAD: 1517 waiting)" in text
    assert "client: recv(1024) -> 911 bytes   (FIONREAD: 911 waiting)" in text
    assert "b.txt bytes 1024-1516 + c.txt (whole)" in text
    assert "[repeatable]" in text and "FIONREAD" in text


def test_classic_output_shows_the_table_and_the_checksums() -> None:
    _, text = run_quiet("classic")
    assert "client: recv(1024) -> 1024 bytes   (FIONREAD: 1517 waiting)" in text
    assert "ipconfig   1517  1024  ipconfig#2 bytes 0-1023" in text
    assert "ls           35   528  ipconfig#2 bytes 1024-1516 + ls#3 (whole)" in text
    assert "ipconfig   1517  1517  ipconfig#2 (whole)" in text
    assert f"received {3 * PIECE} of {FILE_SIZE} bytes" in text and "NOT the same file" in text
    assert "$ rsh put" in text


def test_every_demo_prints_narration_bytes_and_a_moral() -> None:
    for name in demo.DEMOS:
        _, text = run_quiet(name)
        assert f"== rsh demo {name}:" in text
        assert "[repeatable]" in text  # says what was done to make it so
        assert "  |" in text and "|\n" in text  # a hex/text dump
        assert "\nMoral: " in text
        assert "\x1b[" not in text


def test_chinese_narration_comes_with_the_english() -> None:
    _, zh = run_quiet("coalesce", "zh")
    _, en = run_quiet("coalesce", "en")
    assert "粘包" in zh and "要点：" in zh
    assert "Moral: TCP carries a stream of bytes" in zh
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in en)


@pytest.mark.parametrize("name", ["truncate", "classic"])
def test_wrapped_chinese_fits_the_width(name: str) -> None:
    _, zh = run_quiet(name, "zh")
    for line in zh.splitlines():
        if any("\u4e00" <= ch <= "\u9fff" for ch in line):
            assert text_width(line) <= 78, line


def test_colour_only_when_asked() -> None:
    _, text = run_quiet("coalesce", color=True)
    assert "\x1b[33m00 00 00 1a\x1b[0m" in text  # the length prefix, highlighted
    buf = io.StringIO()
    assert demo.main("coalesce", stream=buf) == 0  # not a terminal: plain
    assert "\x1b[" not in buf.getvalue()


def test_hexdump_layout() -> None:
    assert hexdump(b"helloworld") == ["    0  68 65 6c 6c 6f 77 6f 72  6c 64                    |helloworld|"]
    lines = hexdump(bytes(range(90)), keep=3)  # 6 lines: first two and last shown
    assert lines[0].startswith("    0  00 01") and lines[1].startswith("   16  10 11")
    assert lines[2].endswith("... 3 lines (48 bytes) not shown")
    assert lines[3] == "   80  50 51 52 53 54 55 56 57  58 59                    |PQRSTUVWXY|"


def test_framed_reply_survives_any_split() -> None:
    """The framed client code the docs quote, fed one byte per recv()."""
    output = fake_file("b.txt", 1517)

    class OneByte:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def sendall(self, data: bytes) -> None:
            raise AssertionError("not used")

        def recv(self, bufsize: int) -> bytes:
            chunk, self.data = self.data[:1], self.data[1:]
            return chunk

    wire = encode_frame("stdout", None, output) + encode_frame("exit", exit_fields(0, len(output)))
    got, frames = framed_reply(OneByte(wire), FrameDecoder())
    assert got == output
    assert [f.type for f in frames] == ["stdout", "exit"]


def test_cli_demo_all_runs(tmp_path: Path) -> None:
    env = rsh_env(tmp_path, NO_COLOR="1")
    r = subprocess.run(rsh_argv("demo", "all"), capture_output=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    positions = [text.index(f"== rsh demo {name}:") for name in demo.DEMOS]
    assert positions == sorted(positions)
    assert "\x1b[" not in text
    assert r.stderr == b""


def test_cli_demo_lists_and_rejects(tmp_path: Path) -> None:
    env = rsh_env(tmp_path)
    r = subprocess.run(rsh_argv("demo"), capture_output=True, env=env, timeout=60)
    assert r.returncode == 0
    for name in [*demo.DEMOS, "all", *demo.TOOLS]:
        assert f"\n  {name} " in r.stdout.decode()
    r = subprocess.run(rsh_argv("demo", "nope"), capture_output=True, env=env, timeout=60)
    assert r.returncode == 2
    assert b"no demo called 'nope'" in r.stderr


def test_docs_are_up_to_date(tmp_path: Path) -> None:
    """docs/sticky-packets.md holds the demos' real, current output."""
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_sticky_docs.py"), "--check"],
        capture_output=True,
        env=rsh_env(tmp_path),
        timeout=120,
    )
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
