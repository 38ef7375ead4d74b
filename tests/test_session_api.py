"""Shell sessions and completion requests through the real server and the asyncio client."""

from __future__ import annotations

from pathlib import Path

import rsh

from .conftest import ServerProcess


async def _run(c: rsh.AsyncClient, line: str) -> tuple[rsh.CommandResult, str | None]:
    cmd = await c.start(line, session=True)
    result = await cmd.wait()
    assert cmd.status is not None
    return result, cmd.status.cwd


async def test_cd_export_unset_and_cd_dash_persist(server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "sub dir").mkdir()
    async with await rsh.connect_async(server.host, server.port, token=server.token) as c:
        home = c.server_info["home"]
        assert (await _run(c, "pwd"))[0].stdout.decode().strip() == home
        _, cwd = await _run(c, f"cd '{tmp_path}/sub dir'")
        assert cwd == f"{tmp_path}/sub dir"
        assert (await _run(c, "pwd"))[0].stdout.decode().strip() == f"{tmp_path}/sub dir"
        await _run(c, "export GREETING='hello world'")
        assert (await _run(c, 'echo "$GREETING"'))[0].stdout == b"hello world\n"
        await _run(c, "unset GREETING")
        assert (await _run(c, 'echo "${GREETING-gone}"'))[0].stdout == b"gone\n"
        r, cwd = await _run(c, "cd -")
        assert cwd == home and r.stdout.decode().strip() == home
        r, cwd = await _run(c, "cd /no/such/dir")
        assert r.exit_code != 0 and b"can't cd" in r.stderr and cwd == home


async def test_plain_exec_is_not_touched_by_the_session(server: ServerProcess) -> None:
    async with await rsh.connect_async(server.host, server.port, token=server.token) as c:
        await _run(c, "cd /tmp; export ONLY_IN_SESSION=1")
        r = await c.run('pwd; echo "${ONLY_IN_SESSION-no}"')
        assert r.stdout.decode().split() == [c.server_info["home"], "no"]


async def test_sessions_are_per_connection(server: ServerProcess) -> None:
    async with await rsh.connect_async(server.host, server.port, token=server.token) as a:
        async with await rsh.connect_async(server.host, server.port, token=server.token) as b:
            await _run(a, "cd /tmp")
            assert (await _run(b, "pwd"))[1] == b.server_info["home"]


async def test_completion_of_commands_and_paths(server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "report 2024.txt").write_text("x")
    (tmp_path / "reports").mkdir()
    (tmp_path / ".hidden").write_text("x")
    async with await rsh.connect_async(server.host, server.port, token=server.token) as c:
        assert "sh" in await c.complete("command", "s")
        await _run(c, f"cd '{tmp_path}'")
        assert await c.complete("path", "rep") == ["report 2024.txt", "reports/"]
        assert await c.complete("path", ".hid") == [".hidden"]
        assert await c.complete("path", f"{tmp_path}/reports") == [f"{tmp_path}/reports/"]
        assert await c.complete("path", "nothing-like-this") == []


async def test_server_says_who_and_where_after_auth(server: ServerProcess) -> None:
    async with await rsh.connect_async(server.host, server.port, token=server.token) as c:
        assert {"user", "host", "home"} <= set(c.server_info)
    from .rawpeer import RawPeer

    with RawPeer(server.port) as p:  # before authenticating: not said
        assert "user" not in p.hello.fields and "home" not in p.hello.fields
