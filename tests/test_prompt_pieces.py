"""The prompt's pure pieces: prompt commands, completion, decoding, session state."""

from __future__ import annotations

import pytest

from rsh.prompt import commands
from rsh.prompt.completion import Suggestion, suggest
from rsh.prompt.decoding import BinaryGate, StreamDecoder
from rsh.server.shell_state import ShellSession, parse_state


def test_builtins_parse() -> None:
    assert commands.parse(":help") == commands.Builtin("help")
    assert commands.parse("  :encoding gbk ") == commands.Builtin("encoding", ("gbk",))
    assert commands.parse(":put 'my file.txt' /tmp/") == commands.Builtin("put", ("my file.txt", "/tmp/"))
    assert commands.parse("echo :help") is None


@pytest.mark.parametrize("line", [":", ":nope", ":put 'unbalanced"])
def test_bad_builtins_say_why(line: str) -> None:
    with pytest.raises(commands.CommandLineError):
        commands.parse(line)


@pytest.mark.parametrize("line", ["ls -l", "true", "cd /tmp", "echo hi > out.txt", "git commit -m done"])
def test_plain_lines_are_complete_without_asking(line: str) -> None:
    assert not commands.maybe_incomplete(line)


@pytest.mark.parametrize("line", ["echo 'open", 'echo "a', "echo a \\", "cat <<EOF", "if true; then", "for i in 1 2", "ls |", "f() {", "echo $(date"])
def test_lines_that_may_continue_are_asked_about(line: str) -> None:
    assert commands.maybe_incomplete(line)


def test_help_lists_every_builtin() -> None:
    text = commands.help_text()
    for name in commands.BUILTINS:
        assert f":{name}" in text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", Suggestion("command", "")),
        ("pyt", Suggestion("command", "pyt")),
        ("ls ", Suggestion("path", "")),
        ("cat /etc/pas", Suggestion("path", "/etc/pas")),
        ("ls | gr", Suggestion("command", "gr")),
        ("./scr", Suggestion("path", "./scr")),
        (":he", Suggestion("builtin", "he")),
        (":put ~/no", Suggestion("local-path", "~/no")),
        (":put a.txt /tm", Suggestion("path", "/tm")),
        (":get /etc/ho", Suggestion("path", "/etc/ho")),
        (":get /etc/hosts lo", Suggestion("local-path", "lo")),
    ],
)
def test_suggest(text: str, expected: Suggestion) -> None:
    assert suggest(text) == expected


def test_utf8_character_split_across_chunks_prints_whole() -> None:
    d = StreamDecoder("utf-8")
    ni = "你".encode()
    assert d.decode(ni[:1]) == ("", None)
    assert d.decode(ni[1:2]) == ("", None)
    assert d.decode(ni[2:] + b"\n") == ("你\n", None)


def test_gbk_output_from_a_utf8_server_switches_once_and_says_so() -> None:
    d = StreamDecoder("utf-8")
    gbk = "你好".encode("gbk")
    first, notice = d.decode(gbk[:1])
    assert (first, notice) == ("", None)  # \xc4 could start a UTF-8 character
    text, notice = d.decode(gbk[1:])
    assert text == "你好" and notice is not None and "gbk" in notice
    assert d.decode("世界".encode("gbk")) == ("世界", None)


def test_pinned_encoding_is_never_second_guessed() -> None:
    d = StreamDecoder("utf-8", pinned=True)
    text, notice = d.decode("你".encode("gbk"))
    assert notice is None and "\ufffd" in text


def test_invalid_bytes_become_replacement_characters() -> None:
    d = StreamDecoder("utf-8")
    text, _ = d.decode(b"ok \xff\xfe\xfd end\n")
    assert text.startswith("ok ") and text.endswith(" end\n") and "\ufffd" in text
    assert d.decode(b"\xe4\xbd\xa0\n") == ("你\n", None)


def _gated(data: bytes, cut: list[int]) -> list[bytes | int]:
    """*data* through a BinaryGate in pieces cut at *cut*, adjacent text joined."""
    gate, out, start = BinaryGate(), [], 0
    for end in [*cut, len(data)]:
        out += gate.feed(data[start:end])
        start = end
    out += gate.finish()
    joined: list[bytes | int] = []
    for item in out:
        if isinstance(item, bytes) and joined and isinstance(joined[-1], bytes):
            joined[-1] += item
        elif item != b"":
            joined.append(item)
    return joined


def test_binary_between_text_is_one_summary_whatever_the_chunking() -> None:
    import random

    data = b"start\n" + bytes(range(256)) * 8 + b"\nend\n"
    want: list[bytes | int] = [b"start\n", 2049, b"end\n"]
    assert _gated(data, []) == want
    rng = random.Random(7)
    for _ in range(200):
        assert _gated(data, sorted(rng.sample(range(1, len(data)), 12))) == want


def test_text_and_colour_pass_and_a_trailing_run_is_counted() -> None:
    assert _gated("plain text, 你好, \x1b[31mred\x1b[0m\ttab\r\n".encode(), [5]) == ["plain text, 你好, \x1b[31mred\x1b[0m\ttab\r\n".encode()]
    assert _gated(b"text then \0\0\0", [11]) == [b"text then ", 3]


def test_session_state_report_round_trip() -> None:
    report = b"/tmp/a b\0export HOME='/root'\nexport Q='it'\"'\"'s\nmulti'\nexport UNSET_BUT_EXPORTED\n"
    assert parse_state(report) == ("/tmp/a b", {"HOME": "/root", "Q": "it's\nmulti"})


@pytest.mark.parametrize("report", [b"", b"relative\0", b"/tmp\0export A='unterminated"])
def test_incomplete_state_report_changes_nothing(report: bytes) -> None:
    s = ShellSession("/home/x", {"A": "1"})
    assert not s.update(report)
    assert (s.cwd, s.env) == ("/home/x", {"A": "1"})


def test_session_script_quotes_the_directory() -> None:
    script = ShellSession("/tmp/it's here", {}).script(b"pwd")
    assert b"cd -- '/tmp/it'\"'\"'s here'" in script
    assert script.count(b"\n") >= 4


def test_session_exports_are_the_changes_since_it_began() -> None:
    s = ShellSession("/home/x", {"HOME": "/home/x", "KEEP": "1", "DROP": "2", "BAD-NAME": "3"})
    report = b"/tmp\0export HOME='/home/x'\nexport KEEP='changed'\nexport NEW='a b'\nexport PWD='/tmp'\nexport OLDPWD='/home/x'\n"
    assert s.update(report)
    # PWD/OLDPWD follow cd (carried as cwd); a name no shell can unset is not reported.
    assert s.exports() == {"KEEP": "changed", "NEW": "a b", "DROP": None}
    s.update(b"/tmp\0export HOME='/home/x'\nexport KEEP='1'\nexport DROP='2'\nexport BAD-NAME='3'\n")
    assert s.exports() == {}
    s.update(b"/tmp\0export HOME='/home/x'\nexport KEEP='1'\nexport DROP='2'\nexport BIG='" + b"x" * 20000 + b"'\n")
    assert s.exports() is None  # too big for the exit frame: not sent


def test_exit_frame_carries_exports_and_checks_them() -> None:
    from rsh.errors import ProtocolError
    from rsh.protocol.frames import Frame
    from rsh.protocol.messages import ExitStatus

    status = ExitStatus(0, None, False, 0.1, 0, 0, "utf-8", cwd="/tmp", exports={"A": "1", "B": None})
    assert ExitStatus.from_frame(Frame("exit", status.to_fields())) == status
    assert "exports" not in ExitStatus(0, None, False, 0.1, 0, 0, "utf-8").to_fields()
    with pytest.raises(ProtocolError):
        ExitStatus.from_frame(Frame("exit", {**status.to_fields(), "exports": {"A": 1}}))
