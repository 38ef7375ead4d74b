"""The prompt's pure pieces: prompt commands, completion, decoding, session state."""

from __future__ import annotations

import pytest

from rsh.prompt import commands
from rsh.prompt.completion import Suggestion, suggest
from rsh.prompt.decoding import StreamDecoder, looks_binary
from rsh.prompt.exports import restore_script
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


@pytest.mark.parametrize(
    "line, program",
    [
        ("vim notes.txt", "vim"),
        ("TERM=xterm top", "top"),
        ("top -b -n 1", None),
        ("sudo /usr/bin/htop", "htop"),
        ("ls -l", None),
        ("echo vim", None),
        ("python3", "python3"),
        ("python3 script.py", None),
        ("cat notes.txt; vim notes.txt", "vim"),
        ("cd src && less README", "less"),
        ("ps aux | less", "less"),
        ("echo 'a; vim' | grep vim", None),
    ],
)
def test_needs_terminal(line: str, program: str | None) -> None:
    assert commands.needs_terminal(line) == program


@pytest.mark.parametrize("line, status", [("exit", 0), ("exit 3", 3), ("logout", 0), ("exit now", None), ("exit_code", None)])
def test_leave_status(line: str, status: int | None) -> None:
    assert commands.leave_status(line) == status


def test_bare_exit_leaves_with_the_last_status_as_sh_does() -> None:
    assert commands.leave_status("exit", 1) == 1
    assert commands.leave_status("logout", 130) == 130
    assert commands.leave_status("exit 0", 1) == 0


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


def test_binary_detection() -> None:
    assert looks_binary(b"ELF\0\0\1")
    assert not looks_binary("plain text, 你好".encode())


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


def test_restore_script_redoes_exports_in_a_real_shell() -> None:
    import subprocess

    exports = {"GREETING": 'it\'s "quoted"\n$(not run)', "HOME": None, "SPARE": None, "bad;name": "x"}
    script = restore_script(exports) + '; printf "%s|%s|%s" "$GREETING" "${HOME-unset}" "${SPARE-unset}"'
    out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, env={"HOME": "/root", "SPARE": "1"}).stdout
    assert out == b'it\'s "quoted"\n$(not run)|unset|unset'
    assert "bad;name" not in restore_script(exports)


def test_exit_frame_carries_exports_and_checks_them() -> None:
    from rsh.errors import ProtocolError
    from rsh.protocol.frames import Frame
    from rsh.protocol.messages import ExitStatus

    status = ExitStatus(0, None, False, 0.1, 0, 0, "utf-8", cwd="/tmp", exports={"A": "1", "B": None})
    assert ExitStatus.from_frame(Frame("exit", status.to_fields())) == status
    assert "exports" not in ExitStatus(0, None, False, 0.1, 0, 0, "utf-8").to_fields()
    with pytest.raises(ProtocolError):
        ExitStatus.from_frame(Frame("exit", {**status.to_fields(), "exports": {"A": 1}}))
