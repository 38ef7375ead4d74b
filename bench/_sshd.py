"""A private OpenSSH server on a free loopback port, for the benchmarks that compare with ssh.

Nothing of the machine's own ssh set-up is used or touched: the host key, the
client key, ``authorized_keys``, ``known_hosts`` and the config all live in a
new temporary directory, the client runs with ``-F /dev/null``, and the server
listens on 127.0.0.1 only.  It logs in as the user running the benchmark.

    sshd = Sshd()
    if sshd.available:
        subprocess.run(sshd.ssh("true"), check=True)
    else:
        print(f"ssh: not measured ({sshd.reason})")
    sshd.close()
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

CONFIG = """\
ListenAddress 127.0.0.1
Port {port}
HostKey {dir}/host_key
AuthorizedKeysFile {dir}/authorized_keys
PidFile {dir}/sshd.pid
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers {user}
X11Forwarding no
PrintMotd no
PrintLastLog no
Subsystem sftp internal-sftp
# bash, started by sshd, reads ~/.bashrc when it is the top-level shell
# (SHLVL < 2): whatever that file runs would be timed as ssh's.  rsh runs
# commands with /bin/sh, which reads no start-up file.
SetEnv SHLVL=1
LogLevel INFO
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _last_line(text: str | bytes, default: str) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else default


def _children(pid: int) -> list[int]:
    """The live processes whose parent is *pid* (from /proc; empty where there is none)."""
    kids = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                kids.append(int(entry))
    return kids


class Sshd:
    """``sshd -D`` of our own on 127.0.0.1, with a fresh host key and client key.

    :attr:`reason` says why not when it could not be started or logged into
    (:attr:`available` is then false, and :meth:`close` is still safe).
    """

    def __init__(self) -> None:
        self.reason = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir = tempfile.mkdtemp(prefix="rsh-bench-sshd-")
        self.user = getpass.getuser()
        self.port = 0
        self.key = os.path.join(self.dir, "client_key")
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        self.host = "127.0.0.1"
        #: What the server offers for key exchange, its preference first (from ``sshd -T``).
        self.kex_algorithms: list[str] = []
        #: More client options for every ssh and scp here (e.g. ``["-o", "Ciphers=..."]``).
        self.client_options: list[str] = []
        try:
            self.reason = self._start()
        except (OSError, subprocess.SubprocessError) as e:
            self.reason = f"could not start a private sshd: {e}"
        if self.reason:
            self.close()

    @property
    def available(self) -> bool:
        return not self.reason

    @property
    def options(self) -> list[str]:
        """The options ssh and scp both take to log in here (``-o Port``, not ``-p``/``-P``)."""
        return [
            "-F", "/dev/null",
            "-i", self.key,
            "-o", "IdentitiesOnly=yes",
            "-o", f"Port={self.port}",
            "-o", f"User={self.user}",
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR",
            *self.client_options,
        ]  # fmt: skip

    def ssh(self, *command: str, options: tuple[str, ...] = ()) -> list[str]:
        """The argv of ``ssh HOST COMMAND...`` to this server (a new connection each time)."""
        return ["ssh", *self.options, *options, self.host, *command]

    def scp(self, src: str, remote_path: str) -> list[str]:
        """The argv of ``scp SRC HOST:REMOTE_PATH`` (OpenSSH 9's scp speaks SFTP: the server has it)."""
        return ["scp", "-q", *self.options, src, f"{self.host}:{remote_path}"]

    def asyncssh_options(self) -> dict[str, object]:
        """Keyword arguments for ``asyncssh.connect`` to this server, with the same keys as ssh."""
        return {"host": self.host, "port": self.port, "username": self.user, "client_keys": [self.key], "known_hosts": self.known_hosts}

    def _start(self) -> str:
        sshd = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
        if sshd is None:
            return "no sshd installed on this machine"
        if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
            return "no ssh client (ssh, ssh-keygen) installed on this machine"
        if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
            # sshd run as root chroots its unprivileged half into this directory.
            try:
                os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
            except OSError as e:
                return f"sshd needs /run/sshd when run as root, and it could not be created: {e}"
        for name in ("host_key", "client_key"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rsh-bench", "-f", os.path.join(self.dir, name)],
                check=True,
                capture_output=True,
                stdin=subprocess.DEVNULL,
            )
        shutil.copyfile(self.key + ".pub", os.path.join(self.dir, "authorized_keys"))
        host_pub = " ".join(Path(self.dir, "host_key.pub").read_text().split()[:2])
        config = os.path.join(self.dir, "sshd_config")
        log = os.path.join(self.dir, "sshd.log")
        why = "sshd did not start"
        for _ in range(3):  # another process may take the free port before sshd binds it
            self.port = _free_port()
            Path(config).write_text(CONFIG.format(port=self.port, dir=self.dir, user=self.user))
            Path(self.known_hosts).write_text(f"[{self.host}]:{self.port} {host_pub}\n")
            env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            with open(log, "wb") as f:
                # -D: stay in the foreground, our child; -e: log to stderr (the file).
                self.proc = subprocess.Popen(
                    [os.path.abspath(sshd), "-D", "-e", "-f", config],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=f,
                    env=env,
                    start_new_session=True,
                )
            deadline = time.monotonic() + 10
            while self.proc.poll() is None and time.monotonic() < deadline:
                try:
                    socket.create_connection((self.host, self.port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            if self.proc.poll() is None:
                break
            why = f"sshd exited with {self.proc.returncode}: {_last_line(Path(log).read_text(errors='replace'), 'no reason given')}"
            self.proc = None
            if "already in use" not in why:
                return why
        if self.proc is None:
            return why
        r = subprocess.run(self.ssh("true"), capture_output=True, stdin=subprocess.DEVNULL, timeout=30)
        if r.returncode != 0:
            return (
                f"ssh to the private sshd failed ({_last_line(r.stderr, f'exit {r.returncode}')}; "
                f"sshd: {_last_line(Path(log).read_text(errors='replace'), 'nothing logged')})"
            )
        t = subprocess.run([os.path.abspath(sshd), "-T", "-f", config], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        for line in t.stdout.splitlines():
            if line.startswith("kexalgorithms "):
                self.kex_algorithms = line.split()[1].split(",")
        return ""

    def multiplexed(self) -> Multiplexed:
        """A ControlMaster connection to this server (see :class:`Multiplexed`)."""
        return Multiplexed(self)

    def close(self) -> None:
        if self.proc is not None:
            # The listener's SIGTERM leaves the sshd of each open connection
            # running (each is in a session of its own): end those first.
            for pid in _children(self.proc.pid):
                try:
                    os.kill(pid, 15)
                except OSError:
                    pass
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Multiplexed:
    """One ssh master connection (ControlMaster) that later ``ssh`` commands share.

    The master runs in the foreground as our child (``-N``, no ``-f``), so it
    is ours to end; each command is still a new ``ssh`` process, which hands
    its session to the master over a Unix socket instead of connecting.
    """

    def __init__(self, sshd: Sshd) -> None:
        self.sshd = sshd
        self.path = os.path.join(sshd.dir, "control")
        self.proc = subprocess.Popen(
            sshd.ssh(options=("-M", "-N", "-o", f"ControlPath={self.path}", "-o", "ControlPersist=no")),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not os.path.exists(self.path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the ssh master connection did not come up")
            time.sleep(0.02)

    def ssh(self, *command: str) -> list[str]:
        """The argv of ``ssh HOST COMMAND...`` over the master connection."""
        return self.sshd.ssh(*command, options=("-o", "ControlMaster=no", "-o", f"ControlPath={self.path}"))

    def close(self) -> None:
        if self.proc.poll() is None:
            subprocess.run(self.ssh()[:-1] + ["-O", "exit", self.sshd.host], capture_output=True, stdin=subprocess.DEVNULL, timeout=30)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                self.proc.wait()

    def __enter__(self) -> Multiplexed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
