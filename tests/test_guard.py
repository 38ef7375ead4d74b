"""The rules themselves, without a server: patterns, address lists, pins, limits, exposure."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from pathlib import Path

import pytest

from rsh.cli.main import build_parser
from rsh.cli.options import UsageError
from rsh.cli.serve import serve_guard
from rsh.client.known_hosts import KnownHosts, ServerPin, host_address
from rsh.errors import HostKeyChanged, UnknownHostKey
from rsh.net.tls import fingerprint, parse_fingerprint
from rsh.protocol.messages import ExecRequest
from rsh.server.admission import AccessList, peer_address
from rsh.server.audit import AUDIT_FLUSH_COUNT, AUDIT_FLUSH_DELAY, AuditLog
from rsh.server.limits import Limits
from rsh.server.policy import CommandPolicy, CommandRefused, compile_pattern

# -- --allow-command patterns -----------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, command",
    [
        ("uptime", "uptime"),
        ("echo *", "echo hello world"),
        ("tail -n ? /var/log/*.log", "tail -n 5 /var/log/syslog.log"),
        ("ls [a-c]*", "ls beta"),
        ("ls [!x]", "ls y"),
        ("echo *", "echo *.txt ~ # glob, tilde and comment are not commands"),
        ("uptime; date", "uptime; date"),  # literal in the pattern: allowed exactly
    ],
)
def test_pattern_allows(pattern: str, command: str) -> None:
    assert compile_pattern(pattern).fullmatch(command)


@pytest.mark.parametrize(
    "pattern, command",
    [
        ("uptime", "uptime "),
        ("uptime", "uptime; rm -rf ~"),
        ("echo *", "echo hi; touch /tmp/x"),
        ("echo *", "echo hi && touch /tmp/x"),
        ("echo *", "echo hi | sh"),
        ("echo *", "echo $(touch /tmp/x)"),
        ("echo *", "echo `touch /tmp/x`"),
        ("echo *", "echo hi > ~/.profile"),
        ("echo *", "echo hi\ntouch /tmp/x"),
        ("echo *", "echo 'a;b'"),
        ("echo *", "echo \\;"),
        ("echo ?", "echo ;"),
        ("ls [;a]", "ls ;"),
        ("uptime; date", "uptime; date; id"),
    ],
)
def test_pattern_refuses(pattern: str, command: str) -> None:
    assert not compile_pattern(pattern).fullmatch(command)


def test_policy_force_command_passes_the_original() -> None:
    policy = CommandPolicy(force="run-backup")
    request, env = policy.decide(ExecRequest(b"rm -rf /"))
    assert request.command == b"run-backup" and env == {b"RSH_ORIGINAL_COMMAND": b"rm -rf /"}


@pytest.mark.parametrize("request_", [ExecRequest(b"echo hi", env={"LD_PRELOAD": "/tmp/x.so"}), ExecRequest(b"echo hi", cwd="/tmp"), ExecRequest(b"echo \0")])
def test_policy_refuses_env_cwd_and_nul(request_: ExecRequest) -> None:
    with pytest.raises(CommandRefused) as info:
        CommandPolicy(allow=["echo *"]).decide(request_)
    assert info.value.code == "not_allowed"


def test_policy_options_do_not_combine() -> None:
    with pytest.raises(ValueError):
        CommandPolicy(allow=["x"], force="y")
    assert not CommandPolicy()


# -- --allow / --deny ---------------------------------------------------------------------


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return peer_address(text)


def test_access_list_cidr_v4_v6_and_deny_wins() -> None:
    acl = AccessList(allow=["10.0.0.0/8", "2001:db8::/32", "127.0.0.1"], deny=["10.6.6.6", "2001:db8:bad::/48"])
    assert acl.permits(ip("10.1.2.3")) and acl.permits(ip("127.0.0.1")) and acl.permits(ip("2001:db8::1"))
    assert not acl.permits(ip("10.6.6.6")) and not acl.permits(ip("2001:db8:bad::1"))
    assert not acl.permits(ip("192.0.2.1")) and not acl.permits(ip("::1"))


def test_access_list_mapped_ipv4_peers_match_ipv4_rules() -> None:
    acl = AccessList(deny=["192.0.2.0/24"])
    assert not acl.permits(ip("::ffff:192.0.2.7"))
    assert AccessList(deny=["::ffff:192.0.2.0/120"]).permits(ip("192.0.3.1"))
    assert not AccessList(deny=["::ffff:192.0.2.0/120"]).permits(ip("192.0.2.1"))


def test_empty_access_list_admits_all() -> None:
    assert AccessList().permits(ip("192.0.2.1")) and not AccessList()


def test_bad_access_entry_is_refused() -> None:
    with pytest.raises(ValueError, match="CIDR"):
        AccessList(allow=["example.com"])


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max-conns"):
        Limits(max_conns=0)


def test_audit_log_is_private_and_json_lines(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "sub" / "audit.log")
    log.write("command", 0.0, command="echo \udcff")
    log.close()
    assert (tmp_path / "sub" / "audit.log").stat().st_mode & 0o777 == 0o600
    record = json.loads((tmp_path / "sub" / "audit.log").read_text())
    assert record == {"time": "1970-01-01T00:00:00.000Z", "event": "command", "command": "echo \udcff"}


async def test_audit_records_are_appended_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    log = AuditLog(path)

    def lines() -> list[dict]:  # type: ignore[type-arg]
        return [json.loads(line) for line in path.read_text().splitlines()]

    log.write("command", 0.0, command="one")
    log.write("command", 0.0, command="two")
    assert lines() == []  # waiting for the batch, not lost
    await asyncio.sleep(AUDIT_FLUSH_DELAY * 4)
    assert [r["command"] for r in lines()] == ["one", "two"]
    for i in range(AUDIT_FLUSH_COUNT):
        log.write("command", 0.0, command=str(i))
    assert len(lines()) == 2 + AUDIT_FLUSH_COUNT  # a full batch goes at once
    log.write("connection", 0.0, end="closed")
    log.close()  # ... and closing writes what waits
    assert lines()[-1] == {"time": "1970-01-01T00:00:00.000Z", "event": "connection", "end": "closed"}


# -- known_hosts -------------------------------------------------------------------------

FP_A = "SHA256:" + "A" * 43
FP_B = "SHA256:" + "B" * 43


def test_fingerprint_form() -> None:
    fp = fingerprint(b"certificate")
    assert fp.startswith("SHA256:") and len(fp) == 50 and not fp.endswith("=")
    assert parse_fingerprint(fp + "=") == fp
    for bad in ("sha256:" + "A" * 43, "SHA256:" + "A" * 42, "MD5:aa:bb", FP_A + "!"):
        with pytest.raises(ValueError):
            parse_fingerprint(bad)


def test_host_address_brackets_ipv6() -> None:
    assert host_address("::1", 7022) == "[::1]:7022" and host_address("Example.COM", 1) == "example.com:1"


def test_known_hosts_lookup_skips_comments_and_damage(tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text(f"# comment\n\nh:1 not-a-fingerprint\nh:1 {FP_A} added by hand\nother:1 {FP_B}")
    entries = KnownHosts(kh).lookup("h:1")
    assert [(e.line, e.fingerprint) for e in entries] == [(4, FP_A)]
    KnownHosts(kh).add("new:2", FP_B)  # the file lacked a final newline
    assert kh.read_text().splitlines()[-2:] == [f"other:1 {FP_B}", f"new:2 {FP_B}"]


def test_pin_check_outcomes(tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    der = b"the certificate"
    actual = fingerprint(der)
    with pytest.raises(UnknownHostKey):
        ServerPin("h", 1, known_hosts=kh).check(der)
    with pytest.raises(UnknownHostKey, match="not accepted"):
        ServerPin("h", 1, known_hosts=kh, confirm=lambda a, f: False).check(der)
    assert not kh.exists()
    pin = ServerPin("h", 1, known_hosts=kh, accept_new=True)
    assert pin.check(der) == actual and pin.added == actual and not pin.asked
    assert ServerPin("h", 1, known_hosts=kh).check(der) == actual
    with pytest.raises(HostKeyChanged) as info:
        ServerPin("h", 1, known_hosts=kh, accept_new=True).check(b"another certificate")
    assert info.value.line == 1 and info.value.path == str(kh) and info.value.expected == actual
    with pytest.raises(HostKeyChanged):
        ServerPin("h", 1, known_hosts=kh, fingerprint=FP_A).check(der)


def test_when_the_client_speaks_tls(tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    assert not ServerPin("127.0.0.1", 1, known_hosts=kh).wants_tls(None)
    assert ServerPin("127.0.0.1", 1, known_hosts=kh).wants_tls(True)
    assert ServerPin("192.0.2.1", 1, known_hosts=kh).wants_tls(None)
    assert ServerPin("127.0.0.1", 1, known_hosts=kh, fingerprint=FP_A).wants_tls(None)
    kh.write_text(f"127.0.0.1:1 {FP_A}\n")
    assert ServerPin("127.0.0.1", 1, known_hosts=kh).wants_tls(None)
    assert not ServerPin("127.0.0.1", 2, known_hosts=kh).wants_tls(None)
    with pytest.raises(ValueError):
        ServerPin("127.0.0.1", 1, fingerprint=FP_A).wants_tls(False)


# -- what rsh serve agrees to expose (decided before binding anything) --------------------


def serve_args(*argv: str):  # type: ignore[no-untyped-def]
    return build_parser().parse_args(["serve", *argv])


def test_tls_is_the_default_beyond_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    guard = serve_guard(serve_args("--host", "0.0.0.0"), no_auth=False)
    assert guard.ssl_context is not None and guard.ssl_context.minimum_version.name == "TLSv1_3"
    assert "TLS fingerprint SHA256:" in capsys.readouterr().err
    assert serve_guard(serve_args("--host", "127.0.0.1"), no_auth=False).ssl_context is None
    assert serve_guard(serve_args("--host", "127.0.0.1", "--tls"), no_auth=False).ssl_context is not None


@pytest.mark.parametrize("argv, no_auth", [(["--no-tls"], False), ([], True), (["--no-tls"], True)])
def test_beyond_loopback_without_tls_or_auth_needs_the_flag(argv: list[str], no_auth: bool, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError, match="--i-know-this-is-insecure"):
        serve_guard(serve_args("--host", "0.0.0.0", *argv), no_auth=no_auth)
    guard = serve_guard(serve_args("--host", "0.0.0.0", "--i-know-this-is-insecure", *argv), no_auth=no_auth)
    assert "WARNING" in capsys.readouterr().err
    assert (guard.ssl_context is None) == ("--no-tls" in argv)


def test_no_tls_on_loopback_needs_no_flag() -> None:
    assert serve_guard(serve_args("--host", "127.0.0.1", "--no-tls"), no_auth=True).ssl_context is None
