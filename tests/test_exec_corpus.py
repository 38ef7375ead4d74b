"""A corpus of ``rsh exec`` cases compared byte for byte: with ``/bin/sh -c`` here, and with OpenSSH.

Each case is a local shell line in which ``{client}`` stands for the
client's command line (closed descriptors, a pipe into ``head``, stdin
from ``printf``), and what is compared is stdout, stderr and the exit
status.  OpenSSH's side is a private sshd started for this module on
127.0.0.1 with keys of its own; without sshd and ssh installed those
comparisons are skipped (CI has only Python).  Only shell-neutral commands
are in the corpus: ssh runs them with the login shell, rsh with /bin/sh.
"""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ServerProcess, rsh_argv

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class Case:
    name: str
    command: str
    #: The local shell line; {client} is the client's argv for *command*.
    line: str = "{client}"
    #: Whether ``/bin/sh -c`` locally must give the same (not with a closed descriptor: it has no ssh in between).
    local: bool = True


CORPUS = [
    Case("status", "echo hi; echo err >&2; exit 3"),
    Case("binary", "printf 'a\\000b\\377\\n'; printf 'e\\000' >&2"),
    Case("stdin", "wc -c; echo done", "printf 'hello\\n' | {client}"),
    Case("stdin-lines", "read x; echo got $x; cat", "printf 'a\\nb\\nc' | {client}"),
    Case("status-wraps", "exit 300"),
    Case("arguments", "set -- a 'b c'; echo $# \"$2\""),
    Case("long", "echo ok; exit 2\n#" + "x" * (100 * 1024)),
    # 4: the reader leaves early; the command meets a closed pipe, runs on,
    # and its status is the client's.  (What it writes to stderr after that
    # ssh drops and rsh delivers: tests/test_exec_edges.py.)
    Case("head", "yes | head -c 3000000; exit 7", '{{ {client}; echo "status $?" >&2; }} | head -c 2'),
    Case("head-yes", "yes; exit 7", '{{ {client}; echo "status $?" >&2; }} | head -c 2'),
    # 1-3: a client started with a descriptor closed.
    Case("closed-stdin", "wc -c; exit 4", "{client} <&-", local=False),
    Case("closed-stdout", "echo hi; echo err >&2; exit 3", "{client} >&-", local=False),
    Case("closed-stderr", "echo hi; echo err >&2; exit 3", "{client} 2>&-", local=False),
    Case("closed-all", "exit 6", "{client} <&- >&- 2>&-", local=False),
]


def outcome(argv: list[str], line: str, env: dict[str, str]) -> tuple[int, bytes, bytes]:
    r = subprocess.run(["/bin/sh", "-c", line.format(client=shlex.join(argv))], env=env, capture_output=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


@pytest.mark.parametrize("case", [c for c in CORPUS if c.local], ids=lambda c: c.name)
def test_rsh_exec_is_sh_c(server: ServerProcess, case: Case) -> None:
    rsh = outcome(rsh_argv("exec", "--token-file", str(server.token_file), server.address, "--", case.command), case.line, server.env)
    assert rsh == outcome(["/bin/sh", "-c", case.command], case.line, server.env)


# -- OpenSSH ----------------------------------------------------------------


@dataclass
class Sshd:
    port: int
    key: Path
    known_hosts: Path

    def argv(self, command: str) -> list[str]:
        options = ["BatchMode=yes", "StrictHostKeyChecking=no", f"UserKnownHostsFile={self.known_hosts}", "LogLevel=ERROR"]
        return ["ssh", "-F", "/dev/null", "-p", str(self.port), "-i", str(self.key), *(f"-o{o}" for o in options), "127.0.0.1", command]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A private sshd on 127.0.0.1 that lets this user in with a key of its own."""
    missing = [tool for tool in (SSHD, "ssh", "ssh-keygen") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"OpenSSH is not installed ({', '.join(missing)} missing): the comparison with ssh is skipped")
    if os.getuid() == 0 and not os.path.isdir("/run/sshd"):
        pytest.skip("sshd run as root needs its privilege-separation directory /run/sshd, which is absent")
    tmp = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / name)], check=True, capture_output=True)
    (tmp / "authorized_keys").write_bytes((tmp / "user_key.pub").read_bytes())
    port = _free_port()
    config = tmp / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp / 'host_key'}\nAuthorizedKeysFile {tmp / 'authorized_keys'}\n"
        "PidFile none\nUsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        f"PermitRootLogin {'prohibit-password' if os.getuid() == 0 else 'no'}\nAllowUsers {getpass.getuser()}\n"
    )
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        daemon = Sshd(port, tmp / "user_key", tmp / "known_hosts")
        deadline = time.monotonic() + 30
        while True:
            r = subprocess.run(daemon.argv("true"), capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
            if r.returncode == 0:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"the private sshd did not let us in: {r.stderr.decode(errors='replace').strip()}")
            time.sleep(0.1)
        yield daemon
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_rsh_exec_is_ssh(server: ServerProcess, sshd: Sshd, case: Case) -> None:
    rsh = outcome(rsh_argv("exec", "--token-file", str(server.token_file), server.address, "--", case.command), case.line, server.env)
    assert rsh == outcome(sshd.argv(case.command), case.line, server.env)
