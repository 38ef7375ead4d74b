"""The prompt as a remote terminal: one live shell on a pseudo-terminal, driven in a real pty as a person types."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from .conftest import ServerFactory, ServerProcess, pid_alive, rsh_argv, rsh_env, wait_until
from .test_prompt import ANSI, PROMPT, run

# prompt_toolkit's continuation prompt: ">" and its cursor codes.
MORE = r">(?:\x08|\x1b\[[0-9;?]*[A-Za-z])+"


def spawn(tmp: Path, *args: str, cpr_off: bool = True, rows: int = 30, cols: int = 100) -> pexpect.spawn:
    extra = {"PROMPT_TOOLKIT_NO_CPR": "1"} if cpr_off else {}
    env = rsh_env(tmp, TERM="xterm", **extra)
    argv = rsh_argv(*args)
    return pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8", timeout=20, dimensions=(rows, cols))


def stty(child: pexpect.spawn) -> str:
    """``stty -a`` of the terminal the child runs on, read from outside."""
    tty = os.readlink(f"/proc/{child.pid}/fd/0")
    return subprocess.run(["stty", "-a", "-F", tty], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def term(server: ServerProcess, tmp_path: Path) -> Iterator[pexpect.spawn]:
    child = spawn(tmp_path, "connect", "--token-file", str(server.token_file), server.address)
    child.expect(PROMPT)
    try:
        yield child
    finally:
        child.terminate(force=True)
        child.close()


def test_shell_state_lives_from_line_to_line(term: pexpect.spawn) -> None:
    assert "OLDPWD not set" in run(term, "cd -")  # a fresh login, not the server's own directory
    run(term, "X=1")
    assert "[1]" in run(term, 'echo "[$X]"')
    run(term, "false")
    assert "[1]" in run(term, 'echo "[$?]"')
    run(term, "greet() { echo hello-$1; }")
    assert "hello-you" in run(term, "greet you")
    run(term, "cd /tmp; cd /")
    assert "/tmp" in run(term, "cd -")


def test_a_command_printing_rshs_own_boundary_text_cannot_end_its_line(term: pexpect.spawn) -> None:
    # What the driver uses between lines (a terminator line, a status report), printed verbatim.
    term.sendline(r"echo __rsh_end_0123456789abcdef; printf '7\0/fake\0\n'; sleep 0.5; echo a''fter")
    term.expect("after")
    term.expect(PROMPT)
    assert "[7]" not in ANSI.sub("", term.before)
    assert "/fake" not in run(term, "pwd")


def test_ctrl_c_at_sleep_and_at_cat_with_a_terminal_that_never_answers_cursor_queries(server: ServerProcess, tmp_path: Path) -> None:
    # PROMPT_TOOLKIT_NO_CPR is not set: pexpect's pty answers no cursor-position query.
    child = spawn(tmp_path, "connect", "--token-file", str(server.token_file), server.address, cpr_off=False)
    try:
        child.expect(PROMPT)
        before = stty(child)
        for command in ("sleep 100", "cat"):
            child.sendline(command)
            time.sleep(0.5)
            child.sendintr()
            child.expect(r"\[130\]", timeout=10)
            child.expect(PROMPT)
            assert stty(child) == before
        assert "still" in run(child, "echo still here")
    finally:
        child.terminate(force=True)
        child.close()


def test_a_program_that_cleans_up_on_int_gets_to_finish(term: pexpect.spawn) -> None:
    term.sendline("sh -c 'trap \"sleep 1.5; echo cleaned up; exit 3\" INT; sleep 100 & wait'")
    time.sleep(0.5)
    term.sendintr()
    term.expect("cleaned up", timeout=10)  # not killed a second later
    term.expect(r"\[3\]")


def test_keyboard_input_reaches_commands(term: pexpect.spawn) -> None:
    term.sendline("read -s pw; echo got=$pw")
    time.sleep(0.3)
    term.sendline("secret")
    term.expect("got=secret")
    term.expect(PROMPT)
    assert "secret" not in term.before.split("got=")[0]  # read -s: no echo
    term.sendline("cat")
    time.sleep(0.3)
    term.sendline("typed line")
    term.expect("typed line\r\n.*typed line")
    term.sendcontrol("d")
    term.expect(PROMPT)


def test_the_remote_terminal_has_the_local_size_and_follows_a_resize(term: pexpect.spawn) -> None:
    assert "30 100" in run(term, "stty size")
    term.setwinsize(40, 120)
    term.sendline("stty size")
    term.expect("40 120")
    term.expect(PROMPT)
    term.sendline("sleep 1; stty size")
    time.sleep(0.3)
    term.setwinsize(33, 90)  # while the line runs: SIGWINCH through a resize frame
    term.expect("33 90")


def test_ctrl_z_stops_a_job_and_fg_resumes_it(term: pexpect.spawn) -> None:
    term.sendline("sleep 30")
    time.sleep(0.5)
    term.sendcontrol("z")
    term.expect(r"Stopped")
    term.expect(r"\[148\]")
    term.expect(PROMPT)
    assert "sleep 30" in run(term, "jobs")
    term.sendline("fg")
    time.sleep(0.5)
    term.sendintr()
    term.expect(r"\[130\]")
    term.expect(PROMPT)


def test_background_output_shows_between_lines(term: pexpect.spawn) -> None:
    run(term, "(sleep 1; echo la''te) &")
    term.expect("late", timeout=10)


def test_exit_ends_the_session_with_its_status(term: pexpect.spawn) -> None:
    term.sendline("true && exit 5")
    term.expect(pexpect.EOF)
    term.close()
    assert term.exitstatus == 5


def test_an_open_quote_gets_a_continuation_line(term: pexpect.spawn) -> None:
    term.sendline("echo 'first")
    term.expect(MORE)
    term.sendline("second'")
    term.expect("first\r\nsecond")
    term.expect(PROMPT)
    term.sendline("if true; then")
    term.expect(MORE)
    term.sendline("echo inside; fi")
    term.expect("inside")
    term.expect(PROMPT)


def test_completion_quotes_a_name_with_a_space_and_a_quote(term: pexpect.spawn, tmp_path: Path) -> None:
    (tmp_path / "my file.txt").write_text("spaced\n")
    (tmp_path / "it's.txt").write_text("quoted\n")
    run(term, f"cd {tmp_path}")
    term.send("cat my\t")
    term.expect(re.escape(r"\ file.txt"))
    term.sendline("")
    term.expect("spaced")
    term.expect(PROMPT)
    term.send("cat it\t")
    term.expect(re.escape(r"\'s.txt"))
    term.sendline("")
    term.expect("quoted")
    term.expect(PROMPT)


def test_completion_of_a_variable_the_live_shell_holds(term: pexpect.spawn) -> None:
    run(term, "MY_UNUSUAL_VAR=42")  # not exported: only the live shell knows it
    term.send('echo "$MY_UNU\t')
    term.expect("SUAL_VAR")
    term.sendline('"')
    term.expect("42")
    term.expect(PROMPT)


@pytest.mark.skipif(shutil.which("vim") is None, reason="vim is not installed on this machine")
def test_vim_edits_a_file_and_the_terminal_comes_back(term: pexpect.spawn, tmp_path: Path) -> None:
    before = stty(term)
    target = tmp_path / "notes.txt"
    term.sendline(f"vim -u NONE -N {target}")
    time.sleep(1.0)
    term.send("iwritten in vim")
    term.send("\x1b")
    time.sleep(0.3)
    term.sendline(":wq")
    term.expect(PROMPT)
    assert target.read_text() == "written in vim\n"
    assert stty(term) == before


def fresh_stty(tmp: Path) -> str:
    """``stty -a`` of a pseudo-terminal as pexpect makes one, before any program changed it."""
    child = pexpect.spawn("sleep", ["5"], dimensions=(30, 100))
    try:
        return stty(child)
    finally:
        child.terminate(force=True)
        child.close()


def stty_after_exit(child: pexpect.spawn, tty: str) -> str:
    """``stty -a`` of *child*'s terminal once it has exited (pexpect still holds the terminal open)."""
    child.expect(pexpect.EOF)
    return subprocess.run(["stty", "-a", "-F", tty], capture_output=True, text=True, check=True).stdout


def test_the_terminal_is_restored_after_the_server_is_killed_mid_line(make_server: ServerFactory, tmp_path: Path) -> None:
    srv = make_server()
    child = spawn(tmp_path, "connect", "--token-file", str(srv.token_file), srv.address)
    try:
        tty = os.readlink(f"/proc/{child.pid}/fd/0")
        child.expect(PROMPT)
        child.sendline("echo sta''rt; vim -u NONE -N 2>/dev/null || sleep 100")
        child.expect("start")
        time.sleep(1.0)
        srv.proc.send_signal(signal.SIGKILL)
        child.expect("lost .*while that line ran: it may have run")
        if shutil.which("vim"):
            assert "\x1b[?1049l" in child.before  # vim's alternate screen, left before the message
        child.expect(r"\[Y/n\]")
        child.sendline("n")
        assert stty_after_exit(child, tty) == fresh_stty(tmp_path)
        child.close()
        assert child.exitstatus == 255
        assert "Traceback" not in child.before
    finally:
        child.terminate(force=True)


def test_term_to_rsh_mid_line_restores_the_terminal_and_says_so_in_the_status(server: ServerProcess, tmp_path: Path) -> None:
    child = spawn(tmp_path, "connect", "--token-file", str(server.token_file), server.address)
    try:
        tty = os.readlink(f"/proc/{child.pid}/fd/0")
        child.expect(PROMPT)
        child.sendline("sleep 100")
        time.sleep(0.5)
        os.kill(child.pid, signal.SIGTERM)
        assert stty_after_exit(child, tty) == fresh_stty(tmp_path)
        child.close()
        assert child.exitstatus == 128 + signal.SIGTERM
    finally:
        child.terminate(force=True)


def test_tilde_dot_after_a_newline_disconnects(term: pexpect.spawn) -> None:
    term.sendline("cat")
    time.sleep(0.3)
    term.send("typed\r")
    term.send("~?")
    term.expect("~\\.  - disconnect")
    term.send("~~x\r")
    term.expect("~x")  # ~~ is one ~, sent on
    term.send("~.")
    term.expect("disconnected")
    term.expect(pexpect.EOF)
    term.close()
    assert term.exitstatus == 255


def test_a_line_not_sent_is_said_not_to_have_run(make_server: ServerFactory, tmp_path: Path) -> None:
    srv = make_server()
    child = spawn(tmp_path, "connect", "--token-file", str(srv.token_file), srv.address)
    try:
        child.expect(PROMPT)
        srv.stop()
        time.sleep(0.5)
        child.sendline("echo anyone there")
        child.expect("not sent, so it did not run")
        child.sendline("n")
        child.expect(pexpect.EOF)
    finally:
        child.terminate(force=True)
        child.close()


def test_no_process_of_the_session_outlives_it(term: pexpect.spawn) -> None:
    out = run(term, "sleep 300 & echo bg=$!")
    bg = int(re.search(r"bg=(\d+)", out).group(1))  # type: ignore[union-attr]
    assert pid_alive(bg)
    term.sendline("exit")
    term.expect(pexpect.EOF)
    assert wait_until(lambda: not pid_alive(bg), timeout=10)


def test_exec_t_runs_one_command_on_a_terminal(server: ServerProcess, tmp_path: Path) -> None:
    child = spawn(tmp_path, "exec", "-t", "--token-file", str(server.token_file), server.address, "--", "tty; stty size; exit 4")
    child.expect(r"/dev/pts/\d+")
    child.expect("30 100")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 4
    # Without a local terminal, -t is declined as ssh declines it, and the command still runs.
    r = subprocess.run(
        rsh_argv("exec", "-t", "--token-file", str(server.token_file), server.address, "--", "tty"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=rsh_env(tmp_path),
        timeout=30,
    )
    assert b"Pseudo-terminal will not be allocated" in r.stderr and b"not a tty" in r.stdout


@pytest.mark.parametrize("shell", ["/bin/bash", "/bin/sh"])
def test_each_kind_of_shell_keeps_its_state_and_says_where_lines_end(make_server: ServerFactory, tmp_path: Path, shell: str) -> None:
    import asyncio

    from rsh.client.aio import AsyncClient
    from rsh.client.shell import ShellExited

    if not os.access(shell, os.X_OK):
        pytest.skip(f"{shell} is not on this machine")
    srv = make_server("--shell", shell)

    async def session() -> tuple[list[tuple[int, bytes]], int]:
        client = await AsyncClient.connect("127.0.0.1", srv.port, srv.token, tls=False)
        seen = bytearray()
        shell_ = await client.open_shell(lambda _s, d: seen.extend(d), term="xterm", rows=24, cols=80)
        results = []
        for line in ["X=1; f() { echo fn-$1; }", 'echo "[$X]"; f a', "false", 'echo "[$?]"', "cd /tmp", r"printf 'text\0/x\0\n'; echo __rsh_end_00"]:
            seen.clear()
            end = await shell_.run(line)
            results.append((end.status, bytes(seen)))
        assert end.cwd == "/tmp"
        try:
            await shell_.run("true && exit 6")
        except ShellExited as exc:
            code = exc.code
        await client.close()
        return results, code

    results, code = asyncio.run(session())
    assert b"[1]" in results[1][1] and b"fn-a" in results[1][1]
    assert results[2][0] == 1 and b"[1]" in results[3][1]
    assert results[5][0] == 0 and b"__rsh_end_00" in results[5][1]
    assert code == 6


def test_term_at_the_prompt_leaves_with_143_and_the_terminal_as_it_was(server: ServerProcess, tmp_path: Path) -> None:
    child = spawn(tmp_path, "connect", "--token-file", str(server.token_file), server.address)
    try:
        tty = os.readlink(f"/proc/{child.pid}/fd/0")
        child.expect(PROMPT)
        os.kill(child.pid, signal.SIGTERM)
        assert stty_after_exit(child, tty) == fresh_stty(tmp_path)
        child.close()
        assert child.exitstatus == 128 + signal.SIGTERM
    finally:
        child.terminate(force=True)
