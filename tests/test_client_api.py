"""End to end over loopback through the Python API: exact bytes, exact status."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from pathlib import Path

import pytest

import rsh
from rsh.errors import AuthError, CommandFailed, CommandTimeout, ConnectError, RemoteError

from .conftest import ServerProcess, group_alive, wait_until


@pytest.fixture
def client(server: ServerProcess):  # type: ignore[no-untyped-def]
    with rsh.connect(server.host, server.port, token=server.token) as c:
        yield c


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537])
def test_output_sizes_are_exact(client: rsh.Client, size: int) -> None:
    r = client.run(f"head -c {size} /dev/zero | tr '\\0' 'x'")
    assert r.stdout == b"x" * size
    assert r.exit_code == 0 and r.ok


def test_no_trailing_newline(client: rsh.Client) -> None:
    assert client.run("printf abc").stdout == b"abc"


def test_ten_mib_random_binary(client: rsh.Client, tmp_path: Path) -> None:
    data = os.urandom(10 * 1024 * 1024)
    f = tmp_path / "blob"
    f.write_bytes(data)
    r = client.run(f"cat '{f}'")
    assert hashlib.sha256(r.stdout).digest() == hashlib.sha256(data).digest()


def test_stdout_and_stderr_interleaved_both_complete(client: rsh.Client) -> None:
    r = client.run("i=0; while [ $i -lt 2000 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done")
    assert r.stdout.decode().split() == [f"out{i}" for i in range(2000)]
    assert r.stderr.decode().split() == [f"err{i}" for i in range(2000)]


@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_exit_codes(client: rsh.Client, code: int) -> None:
    r = client.run(f"exit {code}")
    assert (r.exit_code, r.signal, r.exit_status) == (code, None, code)


def test_killed_by_signal(client: rsh.Client) -> None:
    r = client.run("kill -KILL $$")
    assert r.exit_code is None
    assert r.signal == signal.SIGKILL
    assert r.exit_status == 128 + 9 and r.returncode == -9
    assert not r.ok


def test_stdin_piped_in(client: rsh.Client) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    r = client.run("sha256sum", input=data)
    assert r.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()


def test_command_reading_stdin_gets_eof_without_input(client: rsh.Client) -> None:
    r = client.run("cat; echo done")
    assert r.stdout == b"done\n"


def test_command_that_closes_stdin_early(client: rsh.Client) -> None:
    r = client.run("head -c 5", input=b"x" * (4 * 1024 * 1024))
    assert r.stdout == b"xxxxx" and r.exit_code == 0


def test_background_child_holding_the_pipes_does_not_block(server: ServerProcess) -> None:
    async def go() -> rsh.CommandResult:
        async with await rsh.connect_async(server.host, server.port, token=server.token) as c:
            # A guard against hanging for the child's 300 s, not a timing test.
            return await asyncio.wait_for(c.run("sleep 300 & echo $!"), 30)

    r = asyncio.run(go())
    pid = int(r.stdout)
    try:
        assert r.exit_code == 0
    finally:
        os.kill(pid, signal.SIGKILL)


def test_command_that_closes_its_output_and_lives_on(client: rsh.Client) -> None:
    # Closed pipes usually mean the exit is a moment away, and the server
    # waits briefly for it; a command that goes on must still be followed
    # to its real end and status, with what it wrote before closing.
    r = client.run("echo out; echo err >&2; exec >&- 2>&-; sleep 0.3; exit 4")
    assert (r.stdout, r.stderr, r.exit_code) == (b"out\n", b"err\n", 4)
    assert r.elapsed >= 0.3  # it was not cut short when its pipes closed
    assert client.run("echo next").stdout == b"next\n"


def test_timeout_stops_the_command(client: rsh.Client) -> None:
    with pytest.raises(CommandTimeout) as info:
        client.run("echo started; sleep 60", timeout=0.5)
    r = info.value.result
    assert r.timed_out and r.signal == signal.SIGTERM
    assert r.stdout == b"started\n"
    assert isinstance(info.value, TimeoutError)


def test_timeout_escalates_to_kill(client: rsh.Client) -> None:
    with pytest.raises(CommandTimeout) as info:
        client.run("trap '' TERM; sleep 60", timeout=0.3)
    assert info.value.result.signal == signal.SIGKILL


def test_check_raises_command_failed(client: rsh.Client) -> None:
    with pytest.raises(CommandFailed) as info:
        client.run("echo nope >&2; exit 3", check=True)
    assert info.value.result.exit_code == 3 and info.value.result.stderr == b"nope\n"


def test_cwd_env_and_rsh_client(client: rsh.Client, server: ServerProcess, tmp_path: Path) -> None:
    r = client.run('pwd; echo "$GREETING"; echo "$RSH_CLIENT"', cwd=str(tmp_path), env={"GREETING": "hi there"})
    lines = r.stdout.decode().splitlines()
    assert lines[0] == str(tmp_path)
    assert lines[1] == "hi there"
    ip, cport, sport = lines[2].split()
    assert ip == "127.0.0.1" and int(cport) > 0 and int(sport) == server.port


def test_missing_cwd_is_a_clear_error_and_connection_survives(client: rsh.Client) -> None:
    with pytest.raises(RemoteError) as info:
        client.run("true", cwd="/nonexistent/dir")
    assert "/nonexistent/dir" in str(info.value) and "No such file" in str(info.value)
    assert client.run("echo still here").stdout == b"still here\n"


def test_encoding_is_declared(client: rsh.Client) -> None:
    assert client.run("true").encoding == client.server_info["encoding"]
    r = client.run("printf '\\304\\343\\272\\303'", encoding="GBK")
    assert r.encoding == "gbk" and r.stdout_text == "你好"


def test_command_longer_than_the_header_limit(client: rsh.Client) -> None:
    script = "x=" + "a" * 300_000 + "\necho ${#x}\n"
    assert client.run(script).stdout == b"300000\n"


def test_streaming_callbacks_see_output_as_it_arrives(client: rsh.Client) -> None:
    chunks: list[bytes] = []
    r = client.run("echo one; sleep 0.2; echo two", on_stdout=chunks.append)
    assert b"".join(chunks) == r.stdout == b"one\ntwo\n"
    assert len(chunks) == 2


async def test_async_iteration_and_signal(server: ServerProcess) -> None:
    async with await rsh.connect_async(server.host, server.port, token=server.token) as c:
        cmd = await c.start("echo $$; exec sleep 60")
        events = aiter(cmd)
        stream, data = await anext(events)
        assert stream == "stdout"
        cmd.send_signal("INT")
        async for _ in events:
            pass
        assert cmd.status is not None and cmd.status.signal == signal.SIGINT
        assert (await c.run("echo next")).stdout == b"next\n"


async def test_fifty_clients_twenty_commands_each(server: ServerProcess) -> None:
    async def one(n: int) -> list[bytes]:
        async with await rsh.connect_async(server.host, server.port, token=server.token) as c:
            return [(await c.run(f"echo {n}-{i}")).stdout for i in range(20)]

    results = await asyncio.gather(*(one(n) for n in range(50)))
    for n, outs in enumerate(results):
        assert outs == [f"{n}-{i}\n".encode() for i in range(20)]


async def test_disconnect_mid_command_kills_the_process_group(server: ServerProcess) -> None:
    c = await rsh.connect_async(server.host, server.port, token=server.token)
    cmd = await c.start("sleep 300 & sleep 300 & echo $$; wait")
    _, data = await anext(aiter(cmd))
    pgid = int(data)
    assert group_alive(pgid)
    await c.close()
    assert await asyncio.to_thread(wait_until, lambda: not group_alive(pgid))


def test_wrong_token_is_refused(server: ServerProcess) -> None:
    with pytest.raises(AuthError, match="wrong token"):
        rsh.connect(server.host, server.port, token="not-the-token")


def test_no_token_is_refused(server: ServerProcess) -> None:
    with pytest.raises(AuthError, match="requires a token"):
        rsh.connect(server.host, server.port)


def test_nothing_listening_is_a_connect_error(tmp_path: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # bound then closed: nothing listens there
    with pytest.raises(ConnectError, match="refused"):
        rsh.connect("127.0.0.1", port, token="x")


def test_a_list_of_words_is_quoted_like_subprocess_run(client: rsh.Client) -> None:
    assert client.run(["printf", "%s|", "a b", "it's", "$HOME"]).stdout == b"a b|it's|$HOME|"


def test_bad_commands_are_refused_before_sending_and_the_connection_survives(client: rsh.Client) -> None:
    with pytest.raises(TypeError):
        client.run(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        client.run("")
    assert client.run("  ").exit_code == 0  # blank, as subprocess.run(" ", shell=True) and ssh run it
    assert client.run("echo still fine").stdout == b"still fine\n"


def test_token_comes_from_rsh_token_when_not_given(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RSH_TOKEN", server.token)
    with rsh.connect(server.host, server.port) as c:
        assert c.run("echo via env").stdout == b"via env\n"


def test_errors_share_one_base() -> None:
    for exc in (AuthError, CommandFailed, CommandTimeout, ConnectError, RemoteError, rsh.ConnectionLost, rsh.ProtocolError):
        assert issubclass(exc, rsh.RshError)


def test_forward_wires_a_command_to_local_descriptors(server: ServerProcess, tmp_path: Path) -> None:
    # What `rsh exec` runs on: output written straight to fds, stdin read from one.
    src = tmp_path / "in"
    src.write_bytes(os.urandom(300_000))
    out_path, err_path = tmp_path / "out", tmp_path / "err"
    with rsh.connect(server.host, server.port, token=server.token) as c, open(src, "rb") as fin, open(out_path, "wb") as fout, open(err_path, "wb") as ferr:
        status = c.forward("cat; echo to-err >&2; exit 5", stdin=fin.fileno(), stdout=fout.fileno(), stderr=ferr.fileno())
        assert (status.exit_code, status.stdout_bytes) == (5, 300_000)
        assert c.run("echo still usable").stdout == b"still usable\n"
    assert out_path.read_bytes() == src.read_bytes()
    assert err_path.read_bytes() == b"to-err\n"
