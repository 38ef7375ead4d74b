"""The real `rsh` prompt in a pseudo-terminal, driven as a person types."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from .conftest import ServerFactory, ServerProcess, pid_alive, rsh_argv, rsh_env, wait_until

# The prompt ends in "$" followed by the cursor-positioning codes prompt_toolkit draws.
PROMPT = r"\$(?:\x1b\[[0-9;?]*[A-Za-z])+"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def spawn(tmp: Path, *args: str, **env: str) -> pexpect.spawn:
    e = rsh_env(tmp, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", **env)
    argv = rsh_argv(*args)
    child = pexpect.spawn(argv[0], argv[1:], env=e, encoding="utf-8", timeout=20, dimensions=(40, 200))
    return child


@pytest.fixture
def prompt(server: ServerProcess, tmp_path: Path) -> Iterator[pexpect.spawn]:
    child = spawn(tmp_path, "connect", "--token-file", str(server.token_file), server.address)
    child.expect(PROMPT)
    try:
        yield child
    finally:
        child.terminate(force=True)
        child.close()


def run(child: pexpect.spawn, line: str) -> str:
    """Type *line* and Enter; return what appeared before the next prompt, escapes removed."""
    child.sendline(line)
    child.expect(PROMPT)
    text = ANSI.sub("", child.before)
    # Drop the echo of the line itself (the first line of the redraw).
    return text.split("\n", 1)[1] if "\n" in text else ""


def test_a_command_and_its_output(prompt: pexpect.spawn) -> None:
    out = run(prompt, "echo hello from the other side; echo oops >&2")
    assert "hello from the other side" in out and "oops" in out


def test_cd_then_pwd_and_the_prompt_shows_it(prompt: pexpect.spawn) -> None:
    run(prompt, "cd /tmp")
    prompt.sendline("pwd")
    prompt.expect("/tmp\r\n")
    prompt.expect(r"/tmp(?:\x1b\[[0-9;?]*[A-Za-z])*\$")


def test_export_then_echo(prompt: pexpect.spawn) -> None:
    run(prompt, "export X=1")
    assert "1" in run(prompt, 'echo "X is $X"').replace("X is ", "")
    assert "X is 1" in run(prompt, 'echo "X is $X"')


def test_failure_shows_status_in_the_prompt(prompt: pexpect.spawn) -> None:
    prompt.sendline("(exit 3)")
    prompt.expect(r"\[3\]")
    prompt.expect(PROMPT)
    run(prompt, "true")
    # The freshly drawn prompt (after the echoed "true" line) has no status.
    assert "[3]" not in ANSI.sub("", prompt.before).rsplit("\n", 1)[-1]


def test_missing_directory_keeps_the_old_cwd(prompt: pexpect.spawn) -> None:
    run(prompt, "cd /tmp")
    out = run(prompt, "cd /no/such/place")
    assert "No such file or directory" in out
    assert "/tmp" in run(prompt, "pwd")


def test_ctrl_c_interrupts_a_running_command(prompt: pexpect.spawn) -> None:
    prompt.sendline("sh -c 'echo $$; exec sleep 100'")
    prompt.expect(r"(\d+)\r\n")
    pid = int(prompt.match.group(1))
    prompt.sendintr()
    # Ctrl-C is a key for the remote terminal, which makes it SIGINT for the job.
    prompt.expect(r"\[130\]", timeout=10)
    prompt.expect(PROMPT)
    assert wait_until(lambda: not pid_alive(pid))
    assert "still here" in run(prompt, "echo still here")


def test_ctrl_c_at_the_prompt_clears_the_line(prompt: pexpect.spawn) -> None:
    prompt.send("echo should-not-run")
    prompt.sendintr()
    prompt.expect(PROMPT)
    out = run(prompt, "echo fresh")
    assert "fresh" in out and "should-not-run" not in out


def test_tab_completes_a_remote_file_name(prompt: pexpect.spawn, tmp_path: Path) -> None:
    (tmp_path / "unusual-name-4711.txt").write_text("contents of the file\n")
    run(prompt, f"cd {tmp_path}")
    prompt.send("cat unusual-na\t")
    prompt.expect("me-4711.txt")  # only the completed part is redrawn
    prompt.sendline("")
    prompt.expect("contents of the file")


def test_output_appears_as_it_is_written(prompt: pexpect.spawn) -> None:
    # The quotes keep the words out of the echoed command line.
    prompt.sendline("echo fi''rst; sleep 2; echo sec''ond")
    prompt.expect("first\r\n")
    # "first" is on screen while the command still sleeps.
    assert "second" not in prompt.before
    prompt.expect("second")
    prompt.expect(PROMPT)


def test_utf8_character_split_across_frames_prints_whole(prompt: pexpect.spawn) -> None:
    # 你 is e4 bd a0: one byte in one frame, two in the next.
    out = run(prompt, r"printf '\344'; sleep 0.3; printf '\275\240!\n'")
    assert "你!" in out and "\ufffd" not in out


def test_gbk_character_split_across_frames_prints_whole(prompt: pexpect.spawn) -> None:
    # 你 in GBK is c4 e3, split between frames, from a server that declares UTF-8.
    out = run(prompt, r"printf '\304'; sleep 0.3; printf '\343!\n'")
    assert "你!" in out and "\ufffd" not in out
    assert "gbk" in out  # said that the stream was switched ...
    assert "gbk" not in run(prompt, r"printf '\304\343\n'")  # ... once a session


def test_pinned_encoding(prompt: pexpect.spawn) -> None:
    run(prompt, ":encoding gbk")
    assert "你好" in run(prompt, r"printf '\304\343\272\303\n'")
    assert "pinned" in run(prompt, ":encoding")


def test_binary_output_is_summarised(prompt: pexpect.spawn) -> None:
    out = run(prompt, "head -c 5000 /dev/zero")
    assert "[binary output: 5000 bytes]" in out


def test_text_around_binary_is_kept_on_the_terminal_and_in_pipe_mode(prompt: pexpect.spawn) -> None:
    for _ in range(2):
        out = run(prompt, "echo sta''rt; head -c 2000 /bin/ls; echo; echo e''nd")
        assert "start" in out and "end" in out and "[binary output: " in out
        assert "pty is off" in run(prompt, ":pty off")


def test_help_and_unknown_builtin(prompt: pexpect.spawn) -> None:
    assert ":exit" in run(prompt, ":help")
    assert "unknown command ':frobnicate'" in run(prompt, ":frobnicate")


def test_history_survives_a_restart_and_ctrl_r_finds_it(server: ServerProcess, tmp_path: Path) -> None:
    args = ("connect", "--token-file", str(server.token_file), server.address)
    first = spawn(tmp_path, *args)
    try:
        first.expect(PROMPT)
        run(first, "echo remembered-command-1234")
        run(first, "echo later")
        first.sendline(":exit")
        first.expect(pexpect.EOF)
    finally:
        first.close()
    history = tmp_path / "state" / "history"
    assert "remembered-command-1234" in history.read_text()
    assert oct(history.parent.stat().st_mode & 0o777) == "0o700"
    assert oct(history.stat().st_mode & 0o777) == "0o600"  # command lines can hold secrets

    second = spawn(tmp_path, *args)
    try:
        second.expect(PROMPT)
        second.send("\x1b[A")  # Up: the last line of the previous session
        second.expect(":exit")
        second.send("\x1b[A")
        second.expect("echo later")
        second.send("\x03")  # clear the line
        second.expect(PROMPT)
        second.send("\x12")  # Ctrl-R
        second.send("remembered")
        second.expect("-command-1234")  # the match itself is drawn highlighted
        second.sendline("")  # accept the match into the line...
        second.expect(r"\$ echo remembered-command-1234")
        second.sendline("")  # ...and run it
        second.expect("remembered-command-1234\r\n")
        second.expect(PROMPT)
    finally:
        second.terminate(force=True)
        second.close()


CTRL_D = "\x04"


def status_on_leaving(child: pexpect.spawn, keys: str, *, after: str | None = None) -> int | None:
    """Run *after* (if given), then type *keys* (a line, or Ctrl-D); the status the prompt left with."""
    if after is not None:
        child.sendline(after)
        child.expect(PROMPT)
    if keys == CTRL_D:
        child.sendcontrol("d")
    else:
        child.sendline(keys)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def test_typing_exit_leaves_with_that_status(prompt: pexpect.spawn) -> None:
    assert status_on_leaving(prompt, "exit 4") == 4


def test_bare_exit_leaves_with_the_last_commands_status(prompt: pexpect.spawn) -> None:
    assert status_on_leaving(prompt, "exit", after="false") == 1  # as sh and ssh do


def test_ctrl_d_leaves_with_the_last_commands_status(prompt: pexpect.spawn) -> None:
    assert status_on_leaving(prompt, CTRL_D, after="sh -c 'exit 7'") == 7


def test_python_repl_evaluates_on_the_remote_terminal(prompt: pexpect.spawn) -> None:
    prompt.sendline("python3 -q")
    prompt.expect(">>> ")
    prompt.sendline("6*7")
    prompt.expect("42")
    prompt.sendcontrol("d")
    prompt.expect(PROMPT)


def test_ctrl_d_leaves_with_status_0(prompt: pexpect.spawn) -> None:
    assert status_on_leaving(prompt, CTRL_D) == 0


def test_no_server_is_one_line_and_255(tmp_path: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    child = spawn(tmp_path, "connect", f"127.0.0.1:{port}", RSH_TOKEN="x")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 255
    assert ANSI.sub("", child.before).strip() == f"rsh: cannot connect to 127.0.0.1:{port}: connection refused"


def test_lost_connection_is_one_line_and_offers_reconnect(make_server: ServerFactory, tmp_path: Path) -> None:
    srv = make_server()
    child = spawn(tmp_path, "connect", "--token-file", str(srv.token_file), srv.address)
    try:
        child.expect(PROMPT)
        srv.stop()
        child.sendline("echo anyone there")
        child.expect("connection to .* lost")
        child.expect(r"Reconnect to .*\? \[Y/n\]")
        child.sendline("n")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 255
        assert "Traceback" not in child.before
    finally:
        child.terminate(force=True)


def test_reconnect_after_the_server_comes_back(make_server: ServerFactory, tmp_path: Path) -> None:
    srv = make_server(where=tmp_path / "srv")
    port = srv.port
    child = spawn(tmp_path, "connect", "--token-file", str(srv.token_file), srv.address)
    try:
        child.expect(PROMPT)
        run(child, "cd /tmp")
        run(child, "export GREETING='hello there' SPARE=1; unset HOME")
        run(child, "unset SPARE")
        srv.stop()
        child.sendline("echo anyone there")
        child.expect(r"\[Y/n\]")
        make_server("--port", str(port), where=tmp_path / "srv")  # the same token, on the same port
        child.sendline("y")
        child.expect("a new shell on .*, in /tmp; what the old one held")
        child.expect(PROMPT)
        assert "/tmp" in run(child, "pwd")  # the working directory came back
        # ... but a new shell has only its own variables, as it said
        assert "[unset]" in run(child, 'echo "[${GREETING-unset}]"')
    finally:
        child.terminate(force=True)
        child.close()


def test_rsh_alone_starts_a_private_server_and_leaves_nothing_behind(tmp_path: Path) -> None:
    child = spawn(tmp_path)
    try:
        child.expect(PROMPT)
        out = run(child, "sleep 300 & echo bg=$!; echo from-$RSH_CLIENT")
        bg = int(re.search(r"bg=(\d+)", out).group(1))  # type: ignore[union-attr]
        assert "from-127.0.0.1" in out
        assert pid_alive(bg)
        child.sendline(":exit")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        assert wait_until(lambda: not pid_alive(bg))
    finally:
        child.terminate(force=True)
    # The token never touched the disk.
    assert not (tmp_path / "config" / "token").exists()


def test_a_script_on_stdin_runs_in_the_login_shell(server: ServerProcess, tmp_path: Path) -> None:
    # As `echo ... | ssh HOST`: no prompt, the shell reads stdin, its status is ours.
    argv = rsh_argv("--token-file", str(server.token_file), server.address)
    r = subprocess.run(argv, input=b"echo hi; exit 3\n", capture_output=True, env=rsh_env(tmp_path), timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (3, b"hi\n", b"")


def test_prompt_refuses_an_output_that_is_no_terminal(server: ServerProcess, tmp_path: Path) -> None:
    child = pexpect.spawn("/bin/sh", ["-c", " ".join(rsh_argv("--token-file", str(server.token_file), server.address)) + " > /dev/null"], env=rsh_env(tmp_path))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2 and "needs a terminal" in child.before.decode()


def test_trace_toggles_in_the_prompt(prompt: pexpect.spawn) -> None:
    run(prompt, ":trace on")
    out = run(prompt, "echo traced")
    assert "rsh trace send" in out and '"type":"line"' in out and "rsh trace recv" in out
    run(prompt, ":trace off")
    assert "rsh trace" not in run(prompt, "echo quiet")


def test_put_and_get_in_the_prompt_use_the_session_cwd(prompt: pexpect.spawn, tmp_path: Path) -> None:
    (tmp_path / "remote side").mkdir()
    (tmp_path / "local.txt").write_text("made here\n")
    run(prompt, f"cd '{tmp_path}/remote side'")
    out = run(prompt, f":put {tmp_path}/local.txt")
    assert "sha256 verified" in out
    assert "made here" in run(prompt, "cat local.txt")
    run(prompt, "echo made there > there.txt")
    out = run(prompt, f":get there.txt {tmp_path}/back.txt")
    assert "sha256 verified" in out
    assert (tmp_path / "back.txt").read_text() == "made there\n"
    out = run(prompt, ":get no-such-file.txt")
    assert "no-such-file.txt" in out and "No such file" in out
    assert "still" in run(prompt, "echo still usable")
