"""End to end: --allow/--deny, the audit log's contents, restricted mode."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from pathlib import Path

import pytest

import rsh
from rsh.errors import RemoteError
from rsh.protocol.frames import FrameDecoder

from .conftest import ServerProcess, rsh_argv, wait_until
from .rawpeer import RawPeer


def cli(server: ServerProcess, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        rsh_argv("exec", *args),
        env={**server.env, "RSH_TOKEN": server.token},
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )


def turned_away(host: str, port: int, source: str | None = None) -> bool:
    """True when the server answers with one ``access_denied`` frame instead of hello, then closes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    data = b""
    with socket.socket(family) as sock:
        if source:
            sock.bind((source, 0))
        sock.settimeout(30)
        sock.connect((host, port))
        while chunk := sock.recv(65536):
            data += chunk
    frames = FrameDecoder().feed(data)
    return [(f.type, f.get("code")) for f in frames] == [("error", "access_denied")]


# -- --allow / --deny ----------------------------------------------------------------


def test_deny_says_so_and_closes_before_anything_is_read(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s = make_server("--deny", "127.0.0.0/8")
    marker = tmp_path / "marker"
    assert turned_away(s.host, s.port)
    r = cli(s, s.address, "--", f"touch '{marker}'")
    assert (r.returncode, r.stderr.decode()) == (255, f"rsh: {s.address} refused the connection: connections from 127.0.0.1 are not allowed here\n")
    assert not marker.exists()
    with pytest.raises(RemoteError) as info:
        rsh.connect(s.host, s.port, s.token)
    assert info.value.code == "access_denied"
    assert wait_until(lambda: [x["end"] for x in s.audit_records("connection")] == ["denied"] * 3)
    assert all(x["duration"] == 0.0 and "user" not in x for x in s.audit_records("connection"))


def test_a_tls_server_tells_a_denied_peer_too(make_server) -> None:  # type: ignore[no-untyped-def]
    # In the clear, before any handshake: a TLS client's handshake fails on it and the
    # client reads it on a plain connection (tests/test_cli_ssh.py has the client's side).
    s = make_server("--tls", "--deny", "127.0.0.1")
    assert turned_away(s.host, s.port)


def test_allow_admits_only_the_listed_source(make_server) -> None:  # type: ignore[no-untyped-def]
    s = make_server("--allow", "127.0.0.2/32", "--allow", "10.0.0.0/8")
    assert turned_away(s.host, s.port)  # from 127.0.0.1: not on the list
    with socket.socket() as sock:  # from 127.0.0.2: gets its hello
        sock.bind(("127.0.0.2", 0))
        sock.settimeout(30)
        sock.connect((s.host, s.port))
        assert b'"type":"hello"' in sock.recv(65536)


def test_deny_beats_allow(make_server) -> None:  # type: ignore[no-untyped-def]
    s = make_server("--allow", "127.0.0.0/8", "--deny", "127.0.0.3")
    assert turned_away(s.host, s.port, source="127.0.0.3")
    with rsh.connect(s.host, s.port, s.token) as c:
        assert c.run("echo in").stdout == b"in\n"


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_allow_and_deny(make_server) -> None:  # type: ignore[no-untyped-def]
    denied = make_server("--host", "::1", "--deny", "::1/128")
    assert denied.host == "::1" and turned_away("::1", denied.port)
    allowed = make_server("--host", "::1", "--allow", "::1", "--deny", "127.0.0.0/8")
    with rsh.connect("::1", allowed.port, allowed.token) as c:
        assert c.run("echo six").stdout == b"six\n"


def test_bad_address_is_a_usage_error(tmp_path: Path) -> None:
    from .conftest import rsh_env

    r = subprocess.run(rsh_argv("serve", "--port", "0", "--allow", "localhost"), env=rsh_env(tmp_path), capture_output=True, timeout=60)
    assert r.returncode == 2 and b"not an IP address or CIDR range" in r.stderr


# -- the audit log -------------------------------------------------------------------------


def test_audit_log_records_connections_and_commands(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    audit = tmp_path / "logs" / "audit.jsonl"
    s = make_server("--audit-log", str(audit), "--auth-fail-delay", "0.1")
    assert f"audit log: {audit}" in "".join(s.log)
    with rsh.connect(s.host, s.port, s.token) as c:
        c.run("printf out; printf errr >&2; exit 3", cwd=str(tmp_path))
        c.run("cat >/dev/null", input=b"x" * 100_000)
        c.run("kill -TERM $$")
        with pytest.raises(RemoteError):
            c.run("true", cwd="/nonexistent")
    with RawPeer(s.port) as p:
        p.authenticate("wrong")
    assert r_cli(s).returncode == 0
    assert wait_until(lambda: len([x for x in _read(audit) if x["event"] == "connection"]) == 3)
    s.stop()

    text = audit.read_text()
    assert s.token not in text
    lines = [json.loads(line) for line in text.splitlines()]
    conns = [x for x in lines if x["event"] == "connection"]
    cmds = [x for x in lines if x["event"] == "command"]
    assert all(x["time"].endswith("Z") and isinstance(x["conn"], int) for x in lines)

    first = cmds[0]
    assert first["command"] == "printf out; printf errr >&2; exit 3" and first["cwd"] == str(tmp_path)
    assert (first["exit_code"], first["signal"], first["stdout_bytes"], first["stderr_bytes"], first["bytes_out"]) == (3, None, 3, 4, 7)
    assert first["user"] and first["peer"].startswith("127.0.0.1:") and first["duration"] >= 0
    assert cmds[1]["bytes_in"] == 100_000 and cmds[1]["exit_code"] == 0
    assert cmds[2]["signal"] == 15 and cmds[2]["exit_code"] is None
    assert cmds[3]["refused"] == "spawn_failed" and cmds[3]["cwd"] == "/nonexistent"
    assert cmds[4]["command"] == "echo via cli"

    api, failed, via_cli = conns
    assert api["authenticated"] and api["commands"] == 4 and api["end"] == "closed" and api["tls"] is False
    assert api["bytes_in"] > 100_000 and api["bytes_out"] > 0 and api["conn"] == first["conn"]
    assert not failed["authenticated"] and failed["user"] is None and failed["end"] == "auth_failed"
    assert via_cli["commands"] == 1 and via_cli["conn"] == cmds[4]["conn"]


def _read(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def r_cli(s: ServerProcess) -> subprocess.CompletedProcess[bytes]:
    return cli(s, s.address, "--", "echo via cli")


def test_audit_log_default_is_in_the_config_dir_and_private(make_server) -> None:  # type: ignore[no-untyped-def]
    s = make_server()
    with rsh.connect(s.host, s.port, s.token) as c:
        c.run("true")
    assert wait_until(lambda: len(s.audit_records("connection")) == 1)
    assert s.audit_log.stat().st_mode & 0o777 == 0o600


# -- restricted mode ----------------------------------------------------------------------------


def test_allow_command_runs_only_matching_commands(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "marker"
    s = make_server("--allow-command", "echo *", "--allow-command", "uname")
    assert "restricted: only commands matching 'echo *', 'uname'" in "".join(s.log)
    assert cli(s, s.address, "--", "echo", "allowed").stdout == b"allowed\n"
    assert cli(s, s.address, "--", "uname").returncode == 0
    for attempt in (f"echo hi; touch '{marker}'", f"echo $(touch {marker})", f"touch {marker}", "uname -a"):
        r = cli(s, s.address, "--", attempt)
        assert r.returncode == 255, attempt
        assert r.stdout == b"" and r.stderr.count(b"\n") == 1 and r.stderr.startswith(b"rsh: command not allowed")
    assert not marker.exists()
    with rsh.connect(s.host, s.port, s.token) as c:
        with pytest.raises(RemoteError) as info:
            c.run("echo x", env={"LD_PRELOAD": "/tmp/evil.so"})
        assert info.value.code == "not_allowed"
        with pytest.raises(RemoteError):
            c.run("echo x", cwd="/tmp")
        assert c.run("echo still usable").stdout == b"still usable\n"
    assert wait_until(lambda: sum(x.get("refused") == "not_allowed" for x in s.audit_records("command")) == 6)


def _refusal_tree(root: Path) -> Path:
    """A file, a tree whose entries the client pipelines behind ``put``, and an empty directory."""
    (root / "tree" / "sub").mkdir(parents=True)
    (root / "tree" / "sub" / "f").write_bytes(b"x" * 1000)
    (root / "empty").mkdir()
    (root / "file").write_bytes(b"data")
    return root


def test_restricted_put_and_get_are_refused_and_the_connection_stays(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = _refusal_tree(tmp_path / "src")
    dest = tmp_path / "dest"
    s = make_server("--allow-command", "echo *")
    with rsh.connect(s.host, s.port, s.token) as c:
        for local, recursive in (("file", False), ("tree", True), ("empty", True)):
            with pytest.raises(RemoteError) as info:
                c.put(str(src / local), str(dest), recursive=recursive)
            assert info.value.code == "not_allowed" and "restricted mode" in str(info.value)
            assert c.run("echo ok").stdout == b"ok\n", local
        with pytest.raises(RemoteError) as info:
            c.get(str(src / "file"), str(dest))
        assert info.value.code == "not_allowed"
        assert c.run("echo ok").stdout == b"ok\n"

    async def the_async_client() -> list[bytes]:
        outputs = []
        async with await rsh.connect_async(s.host, s.port, s.token) as c:
            for call in (lambda: c.put(str(src / "tree"), str(dest), recursive=True), lambda: c.get(str(src / "file"), str(dest))):
                with pytest.raises(RemoteError):
                    await call()
                outputs.append((await c.run("echo ok")).stdout)
        return outputs

    assert asyncio.run(the_async_client()) == [b"ok\n", b"ok\n"]
    assert not dest.exists()
    assert not any("protocol error" in line for line in s.log)
    # Each refusal is in the audit log, as a refused command is.
    assert wait_until(
        lambda: (
            [(x["event"], x.get("refused")) for x in s.audit_records() if x["event"] in ("put", "get")]
            == [("put", "not_allowed")] * 3 + [("get", "not_allowed")] + [("put", "not_allowed"), ("get", "not_allowed")]
        )
    )
    assert {x["target"] for x in s.audit_records("put")} == {str(dest)}


def test_restricted_put_from_the_command_line_is_one_line(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = _refusal_tree(tmp_path / "src")
    s = make_server("--force-command", "echo forced")
    for verb, args in (("put", ["-r", str(src / "tree"), str(tmp_path / "dest")]), ("get", [str(src / "file"), str(tmp_path / "dest")])):
        r = subprocess.run(rsh_argv(verb, s.address, *args), env={**s.env, "RSH_TOKEN": s.token}, capture_output=True, timeout=60)
        assert (r.returncode, r.stderr.decode()) == (255, "rsh: file transfer is not allowed on this server (restricted mode)\n")
    assert not (tmp_path / "dest").exists()


def test_force_command_runs_instead_and_sees_the_original(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "marker"
    s = make_server("--force-command", 'printf "asked: %s\\n" "$RSH_ORIGINAL_COMMAND"; echo forced')
    r = cli(s, s.address, "--", f"touch '{marker}'")
    assert (r.returncode, r.stdout) == (0, f"asked: touch '{marker}'\nforced\n".encode())
    assert not marker.exists()
    assert wait_until(lambda: len(s.audit_records("command")) == 1)
    (rec,) = s.audit_records("command")
    assert rec["original_command"] == f"touch '{marker}'" and rec["command"].startswith("printf")


def test_force_and_allow_command_do_not_combine(tmp_path: Path) -> None:
    from .conftest import rsh_env

    r = subprocess.run(rsh_argv("serve", "--port", "0", "--force-command", "a", "--allow-command", "b"), env=rsh_env(tmp_path), capture_output=True, timeout=60)
    assert r.returncode == 2 and b"cannot be combined" in r.stderr


def test_restricted_mode_completes_nothing_and_vets_session_commands(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "marker"
    s = make_server("--allow-command", "echo *")
    with RawPeer(s.port) as p:
        assert p.authenticate(s.token).type == "auth_ok"  # type: ignore[union-attr]
        for kind, prefix in (("command", "l"), ("path", "/")):
            p.send("complete", {"id": 7, "kind": kind, "prefix": prefix})
            reply = p.recv()
            assert reply is not None and reply.type == "completions" and reply.get("items") == []
        # The prompt's session commands are vetted like any other.
        p.send("exec", {"session": True}, f"touch '{marker}'".encode())
        reply = p.recv()
        assert reply is not None and (reply.type, reply.get("code")) == ("error", "not_allowed")
        p.send("exec", {"session": True}, b"echo in a session")
        assert [f.payload for f in (p.recv(), p.recv())][0] == b"in a session\n"
    assert not marker.exists()


def test_completion_still_works_unrestricted(server: ServerProcess) -> None:
    with RawPeer(server.port) as p:
        p.authenticate(server.token)
        p.send("complete", {"id": 1, "kind": "path", "prefix": "/"})
        reply = p.recv()
        assert reply is not None and "/tmp/" in reply.get("items")
