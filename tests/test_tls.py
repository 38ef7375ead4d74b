"""TLS and host pinning, end to end on 127.0.0.1 with ``--tls``."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import rsh
from rsh.errors import ConnectError, HostKeyChanged, UnknownHostKey
from rsh.net.tls import TLS_PROBE_DELAY
from rsh.net.tls import fingerprint as der_fingerprint

if TYPE_CHECKING:
    import pexpect

from .conftest import ROOT, Invoked, ServerFactory, ServerProcess, rsh_argv, rsh_env
from .proxy import Listener, SlowStart
from .rawpeer import RawPeer

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")


def exec_cli(server: ServerProcess, tmp: Path, *args: str, **kw) -> subprocess.CompletedProcess[bytes]:  # type: ignore[no-untyped-def]
    """``rsh exec`` as a client with its own config dir under *tmp* (its own known_hosts)."""
    env = rsh_env(tmp / "client", RSH_TOKEN=server.token)
    kw.setdefault("stdin", subprocess.DEVNULL)
    # A new session has no controlling terminal, so nothing can be asked.
    return subprocess.run(rsh_argv("exec", *args), env=env, capture_output=True, timeout=60, start_new_session=True, **kw)


def spawn_cli(server: ServerProcess, tmp: Path, *args: str, encoding: str | None = None, **extra: str) -> pexpect.spawn:
    """``rsh ARGS`` in a pseudo-terminal, as a client with its own config dir under *tmp* (bytes, unless *encoding*)."""
    pexpect = pytest.importorskip("pexpect")
    env = rsh_env(tmp / "client", RSH_TOKEN=server.token, **extra)
    argv = rsh_argv(*args)
    return pexpect.spawn(argv[0], argv[1:], env=env, cwd=str(ROOT), encoding=encoding, timeout=30, dimensions=(40, 200))


def s_client(server: ServerProcess, version: str) -> subprocess.CompletedProcess[bytes]:
    """``openssl s_client`` to *server*, offering only TLS *version* (``-tls1_3``, ``-tls1_2``)."""
    return subprocess.run(["openssl", "s_client", "-connect", server.address, version], stdin=subprocess.DEVNULL, capture_output=True, timeout=60)


# -- the server's identity ------------------------------------------------------


@needs_openssl
def test_openssl_handshake_shows_the_printed_fingerprint(tls_server: ServerProcess) -> None:
    out = s_client(tls_server, "-tls1_3").stdout.decode(errors="replace")
    assert "TLSv1.3" in out
    pem = out[out.index("-----BEGIN CERTIFICATE-----") : out.index("-----END CERTIFICATE-----") + 25]
    assert der_fingerprint(ssl.PEM_cert_to_DER_cert(pem)) == tls_server.fingerprint
    # And by openssl's own arithmetic, as the docs tell an operator to check it.
    der = subprocess.run(["openssl", "x509", "-outform", "DER"], input=pem.encode(), capture_output=True, timeout=60).stdout
    assert "SHA256:" + __import__("base64").b64encode(hashlib.sha256(der).digest()).decode().rstrip("=") == tls_server.fingerprint


@needs_openssl
def test_tls_1_2_is_refused(tls_server: ServerProcess) -> None:
    r = s_client(tls_server, "-tls1_2")
    assert r.returncode != 0
    assert b"BEGIN CERTIFICATE" not in r.stdout


def test_identity_is_private_and_kept_across_restarts(make_server: ServerFactory, tmp_path: Path) -> None:
    first = make_server("--tls", where=tmp_path)
    first.stop()
    identity = Path(first.env["RSH_CONFIG_DIR"]) / "server-identity.pem"
    assert stat.S_IMODE(identity.stat().st_mode) == 0o600
    assert "created a new TLS identity" in "".join(first.log)
    second = make_server("--tls", where=tmp_path)
    second.stop()
    assert second.fingerprint == first.fingerprint
    assert "created" not in "".join(line for line in second.log if "identity" in line)


def test_identity_readable_by_others_is_refused(make_server: ServerFactory, tmp_path: Path) -> None:
    make_server("--tls", where=tmp_path).stop()
    identity = tmp_path / "config" / "server-identity.pem"
    identity.chmod(0o644)
    r = subprocess.run(
        rsh_argv("serve", "--port", "0", "--tls", "--token-file", str(tmp_path / "token")), env=rsh_env(tmp_path), capture_output=True, timeout=60
    )
    assert r.returncode == 255 and b"chmod 600" in r.stderr


# -- the Python API ------------------------------------------------------------------


def test_api_with_fingerprint(tls_server: ServerProcess) -> None:
    with rsh.connect(tls_server.host, tls_server.port, tls_server.token, fingerprint=tls_server.fingerprint) as c:
        assert c.fingerprint == tls_server.fingerprint
        assert c.run("echo over tls").stdout == b"over tls\n"
        data = os.urandom(3 * 1024 * 1024 + 5)
        r = c.run("cat", input=data)
        assert hashlib.sha256(r.stdout).digest() == hashlib.sha256(data).digest()


def test_api_big_output_is_exact_over_tls(tls_server: ServerProcess, tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(os.urandom(10 * 1024 * 1024 + 1))
    with rsh.connect(tls_server.host, tls_server.port, tls_server.token, fingerprint=tls_server.fingerprint) as c:
        for _ in range(2):
            assert hashlib.sha256(c.run(f"cat '{blob}'").stdout).digest() == hashlib.sha256(blob.read_bytes()).digest()


async def test_async_api_over_tls(tls_server: ServerProcess, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    async with await rsh.connect_async(tls_server.host, tls_server.port, tls_server.token, tls=True, known_hosts=known, accept_new=True) as c:
        assert c.fingerprint == tls_server.fingerprint
        r = await c.run("head -c 5000000 /dev/zero; echo err >&2")
        assert r.stdout == b"\0" * 5000000 and r.stderr == b"err\n"
    assert known.read_text() == f"{tls_server.address} {tls_server.fingerprint}\n"
    # Pinned now: known_hosts alone makes it TLS and trusted.
    async with await rsh.connect_async(tls_server.host, tls_server.port, tls_server.token, known_hosts=known) as c:
        assert (await c.run("echo again")).stdout == b"again\n"


def test_api_unknown_server_without_accept_is_refused(tls_server: ServerProcess, tmp_path: Path) -> None:
    with pytest.raises(UnknownHostKey, match="--fingerprint SHA256:"):
        rsh.connect(tls_server.host, tls_server.port, tls_server.token, tls=True, known_hosts=tmp_path / "kh")
    assert not (tmp_path / "kh").exists()


def test_api_confirm_callback_is_asked(tls_server: ServerProcess, tmp_path: Path) -> None:
    asked: list[tuple[str, str]] = []

    def confirm(address: str, fp: str) -> bool:
        asked.append((address, fp))
        return True

    with rsh.connect(tls_server.host, tls_server.port, tls_server.token, tls=True, known_hosts=tmp_path / "kh", confirm=confirm) as c:
        assert c.run("true").ok
    assert asked == [(tls_server.address, tls_server.fingerprint)]


def test_api_wrong_fingerprint_raises_and_names_both(tls_server: ServerProcess) -> None:
    wrong = "SHA256:" + "A" * 43
    with pytest.raises(HostKeyChanged) as info:
        rsh.connect(tls_server.host, tls_server.port, tls_server.token, fingerprint=wrong)
    assert info.value.expected == wrong and info.value.actual == tls_server.fingerprint


def test_malformed_fingerprint_is_a_value_error(tls_server: ServerProcess) -> None:
    with pytest.raises(ValueError, match="not a fingerprint"):
        rsh.connect(tls_server.host, tls_server.port, tls_server.token, fingerprint="abc")


def test_tls_client_to_plain_server_says_so(server: ServerProcess) -> None:
    with pytest.raises(ConnectError, match="does not speak TLS"):
        rsh.connect(server.host, server.port, server.token, tls=True, fingerprint="SHA256:" + "A" * 43)


def test_replayed_auth_over_tls_is_refused(tls_server: ServerProcess) -> None:
    with RawPeer(tls_server.port, tls=True) as good:
        captured = {"nonce": "cd" * 32, "mac": rsh.protocol.auth.client_mac(tls_server.token, good.hello.get("nonce"), "cd" * 32)}
        good.send("auth", captured)
        assert good.recv().type == "auth_ok"  # type: ignore[union-attr]
    with RawPeer(tls_server.port, tls=True) as replay:
        replay.send("auth", captured)
        assert [f.get("code") for f in replay.recv_until_closed()] == ["auth_failed"]


# -- nothing is sent to a server with the wrong identity ------------------------------


class ImpostorTLS(Listener):
    """A TLS server with its own identity that records every byte a client sends after the handshake."""

    def __init__(self, tmp: Path) -> None:
        from rsh.net.tls import load_or_create_identity, server_context

        super().__init__()
        identity = tmp / "impostor.pem"
        load_or_create_identity(identity)
        self.ctx = server_context(identity)
        self.received: list[bytes] = []
        self.handshakes = 0
        self._threads[0].start()

    def _accept(self) -> None:
        from rsh.protocol.frames import encode_frame

        for conn in self.accepted():
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as s:
                    self.handshakes += 1
                    s.settimeout(10)
                    # Exactly what a real server says first.
                    s.sendall(encode_frame("hello", {"version": 1, "nonce": "ab" * 32, "auth": "hmac-sha256", "encoding": "utf-8"}))
                    while data := s.recv(65536):
                        self.received.append(data)
            except OSError:
                continue


@pytest.fixture
def impostor(tmp_path: Path):  # type: ignore[no-untyped-def]
    imp = ImpostorTLS(tmp_path)
    try:
        yield imp
    finally:
        imp.close()


def test_wrong_pin_sends_nothing_sync(impostor: ImpostorTLS, tls_server: ServerProcess) -> None:
    with pytest.raises(HostKeyChanged):
        rsh.connect("127.0.0.1", impostor.port, "secret", fingerprint=tls_server.fingerprint)
    impostor.close()
    assert impostor.handshakes == 1 and impostor.received == []


async def test_wrong_pin_sends_nothing_async(impostor: ImpostorTLS, tls_server: ServerProcess) -> None:
    with pytest.raises(HostKeyChanged):
        await rsh.connect_async("127.0.0.1", impostor.port, "secret", fingerprint=tls_server.fingerprint)
    await asyncio.to_thread(impostor.close)
    assert impostor.handshakes == 1 and impostor.received == []


def test_changed_identity_is_loud_names_the_line_and_sends_nothing(impostor: ImpostorTLS, tmp_path: Path) -> None:
    address = f"127.0.0.1:{impostor.port}"
    config = tmp_path / "client" / "config"
    config.mkdir(parents=True)
    (config / "known_hosts").write_text(f"# pins\n10.9.9.9:7022 SHA256:{'B' * 43}\n{address} SHA256:{'A' * 43}\n")
    env = rsh_env(tmp_path / "client", RSH_TOKEN="secret")
    r = subprocess.run(rsh_argv("exec", address, "--", "touch", str(tmp_path / "marker")), env=env, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    impostor.close()
    err = r.stderr.decode()
    assert r.returncode == 255
    assert "HAS CHANGED" in err and f"{config / 'known_hosts'}:3" in err and "delete line 3" in err
    assert "Traceback" not in err
    assert impostor.received == [] and not (tmp_path / "marker").exists()


# -- the command line ----------------------------------------------------------------------


def test_cli_fingerprint_pins_up_front(tls_server: ServerProcess, tmp_path: Path) -> None:
    r = exec_cli(tls_server, tmp_path, "--fingerprint", tls_server.fingerprint, tls_server.address, "--", "echo ok")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"ok\n", b"")
    assert not (tmp_path / "client" / "config" / "known_hosts").exists()


def test_cli_unknown_server_without_terminal_is_refused_in_one_line(tls_server: ServerProcess, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    r = exec_cli(tls_server, tmp_path, "--tls", tls_server.address, "--", f"touch '{marker}'")
    assert r.returncode == 255
    assert r.stderr.count(b"\n") == 1 and b"not a known host" in r.stderr and tls_server.fingerprint.encode() in r.stderr
    assert not marker.exists()


def test_cli_accept_new_pins_then_known_hosts_is_used(tls_server: ServerProcess, tmp_path: Path) -> None:
    r = exec_cli(tls_server, tmp_path, "--tls", "--accept-new", tls_server.address, "--", "echo first")
    assert (r.returncode, r.stdout) == (0, b"first\n")
    assert b"pinned" in r.stderr
    known = tmp_path / "client" / "config" / "known_hosts"
    assert known.read_text() == f"{tls_server.address} {tls_server.fingerprint}\n"
    # No --tls, no flag: the pin alone says TLS and trusts it.
    r = exec_cli(tls_server, tmp_path, tls_server.address, "--", "echo second")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"second\n", b"")


def test_cli_bad_fingerprint_is_a_usage_error(tls_server: ServerProcess, invoke: Callable[..., Invoked]) -> None:
    # In-process: refused before connecting.
    r = invoke("exec", "--fingerprint", "MD5:xx", tls_server.address, "--", "true")
    assert r.code == 2 and "not a fingerprint" in r.stderr


# A plain client waits for hello and a TLS server for the client's first bytes: without a
# probe both would wait for the 10 s deadline.  These bounds are far above the half second
# the answer takes, and far below the deadline.
WELL_BEFORE_THE_DEADLINE = 5.0


def test_cli_plain_client_to_tls_server_asks_about_it_at_once(tls_server: ServerProcess, tmp_path: Path) -> None:
    # No pin and no --tls: the client finds the server waits for TLS and treats it as any new
    # TLS server, which off a terminal is a one-line refusal naming the fingerprint.
    marker = tmp_path / "marker"
    t0 = time.monotonic()
    r = exec_cli(tls_server, tmp_path, tls_server.address, "--", f"touch '{marker}'")
    assert time.monotonic() - t0 < WELL_BEFORE_THE_DEADLINE
    assert r.returncode == 255 and r.stderr.count(b"\n") == 1
    assert f"rsh: {tls_server.address} is not a known host; its TLS fingerprint is {tls_server.fingerprint}.".encode() in r.stderr
    assert not marker.exists()


def test_api_plain_client_to_tls_server_says_so_at_once(tls_server: ServerProcess, tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(UnknownHostKey, match="not a known host"):
        rsh.connect(tls_server.host, tls_server.port, tls_server.token, known_hosts=tmp_path / "known_hosts")
    with pytest.raises(ConnectError, match="it speaks TLS, and TLS was turned off"):
        rsh.connect(tls_server.host, tls_server.port, tls_server.token, tls=False)
    assert time.monotonic() - t0 < 2 * WELL_BEFORE_THE_DEADLINE


async def test_async_api_plain_client_to_tls_server_says_so_at_once(tls_server: ServerProcess, tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(ConnectError, match="it speaks TLS, and TLS was turned off"):
        await rsh.connect_async(tls_server.host, tls_server.port, tls_server.token, tls=False)
    assert time.monotonic() - t0 < WELL_BEFORE_THE_DEADLINE
    # Left to the client, TLS is spoken and the pin decides: here, trust on first use.
    known = tmp_path / "known_hosts"
    async with await rsh.connect_async(tls_server.host, tls_server.port, tls_server.token, accept_new=True, known_hosts=known) as c:
        assert (await c.run("echo upgraded")).stdout == b"upgraded\n"
    assert known.read_text() == f"{tls_server.address} {tls_server.fingerprint}\n"


async def test_a_plain_server_slow_to_say_hello_is_still_reached(server: ServerProcess) -> None:
    # Slower than the probe's delay: the client asks a second connection about TLS, which
    # fails against a plain server, and goes on waiting for hello on the first.
    with SlowStart(server.port, 2 * TLS_PROBE_DELAY) as slow:
        with rsh.connect("127.0.0.1", slow.port, server.token) as c:
            assert c.run("echo slow").stdout == b"slow\n"
        async with await rsh.connect_async("127.0.0.1", slow.port, server.token) as ac:
            assert (await ac.run("echo slow")).stdout == b"slow\n"
        assert slow.connections == 4


def test_cli_asks_on_the_terminal(tls_server: ServerProcess, tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    with contextlib.closing(spawn_cli(tls_server, tmp_path, "exec", "--tls", tls_server.address, "--", "echo answered")) as child:
        child.expect("can't be established")
        child.expect(r"Its TLS fingerprint is (SHA256:\S+)\.")
        assert child.match.group(1).decode() == tls_server.fingerprint
        child.expect(r"\(yes/no/\[fingerprint\]\)\? ")
        child.sendline("maybe")
        child.expect("Please type")
        child.sendline("yes")
        child.expect("answered")
        child.expect(pexpect.EOF)
    assert child.exitstatus == 0
    assert (tmp_path / "client" / "config" / "known_hosts").read_text() == f"{tls_server.address} {tls_server.fingerprint}\n"


def test_cli_answer_no_refuses(tls_server: ServerProcess, tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    with contextlib.closing(spawn_cli(tls_server, tmp_path, "exec", "--tls", tls_server.address, "--", f"touch '{tmp_path / 'marker'}'")) as child:
        child.expect(r"\(yes/no/\[fingerprint\]\)\? ")
        child.sendline("no")
        child.expect("not accepted")
        child.expect(pexpect.EOF)
    assert child.exitstatus == 255
    assert not (tmp_path / "marker").exists()
    assert not (tmp_path / "client" / "config" / "known_hosts").exists()


def test_exec_imports_no_cryptography(tmp_path: Path) -> None:
    code = "import sys, rsh.cli.main, rsh.cli.exec, rsh.client.aio, rsh.client.blocking; print('cryptography' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], env=rsh_env(tmp_path), capture_output=True, timeout=60)
    assert r.stdout == b"False\n"


def test_prompt_over_tls_asks_then_runs(tls_server: ServerProcess, tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    from .test_prompt import PROMPT

    with contextlib.closing(
        spawn_cli(tls_server, tmp_path, "connect", "--tls", tls_server.address, encoding="utf-8", TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
    ) as child:
        child.expect(r"\(yes/no/\[fingerprint\]\)\? ")
        child.sendline(tls_server.fingerprint)  # pasting the fingerprint is a yes
        child.expect(PROMPT)
        child.sendline("echo from the tls prompt")
        child.expect("from the tls prompt\r\n")
        child.expect(PROMPT)
        child.sendline("exit")
        child.expect(pexpect.EOF)
    assert child.exitstatus == 0
    assert (tmp_path / "client" / "config" / "known_hosts").read_text() == f"{tls_server.address} {tls_server.fingerprint}\n"


def _minor_faults(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[7])


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads page faults from /proc")
def test_a_tls_stream_reuses_the_servers_buffers(make_server: ServerFactory, tmp_path: Path) -> None:
    """Each frame's buffers land on memory freed by the last one, not on fresh pages (rsh.server.heap)."""
    server = make_server("--tls", where=tmp_path)
    argv = rsh_argv("exec", "--token-file", str(server.token_file), "--fingerprint", server.fingerprint, server.address, "--")
    subprocess.run([*argv, "head -c 1M /dev/zero"], env=server.env, capture_output=True, timeout=60, check=True)  # warm up
    before = _minor_faults(server.proc.pid)
    done = subprocess.run([*argv, "head -c 64M /dev/zero"], env=server.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    assert done.returncode == 0, done.stderr
    # 64 MiB is 16k pages: with glibc's defaults the server faulted about 1.5 per page streamed.
    assert _minor_faults(server.proc.pid) - before < 2000
