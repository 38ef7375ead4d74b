"""``rsh demo capture FILE.pcapng``: record a real rsh session on loopback, to open in Wireshark.

A throw-away server (``rsh.teach.local``) and one ``rsh exec --trace`` of a
command that writes to both stdout and stderr: hello, auth, auth_ok, exec,
stdout, stderr, exit.  dumpcap (or tshark) records it; the session's own
``--trace`` lines are printed beside it, frame for frame what the dissector
shows.  Capturing needs the right to capture on the loopback interface.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..protocol.address import DEFAULT_PORT
from .harness import DemoError
from .local import default_port_free, local_server
from .narrator import Narrator
from .wireshark import PROTOCOL, decode_as, dissector_path, lua_flag

__all__ = ["CAPTURE_COMMAND", "Capture", "capture_tool", "demo_capture", "loopback_interface", "read_back"]

#: The session's one command: a line on stdout, one on stderr.
CAPTURE_COMMAND = "echo hi; echo err >&2"

#: How long the capture tool may take to say it is capturing.
START_LIMIT = 20.0
# Time for the last packets (the connection's close) to reach the file.
_SETTLE = 0.5

_NO_RIGHTS = ("permission", "not permitted", "privileges", "operation not permitted")


def capture_tool() -> str | None:
    """dumpcap (what Wireshark itself captures with) or tshark, whichever is installed."""
    return shutil.which("dumpcap") or shutil.which("tshark")


def loopback_interface() -> str:
    return "lo" if sys.platform.startswith("linux") else "lo0"


class Capture:
    """dumpcap or tshark writing packets to or from *port* on loopback into *path*, while in a ``with``."""

    def __init__(self, tool: str, path: Path, port: int) -> None:
        self.argv = [tool, "-i", loopback_interface(), "-f", f"tcp port {port}", "-w", str(path), "-q"]
        self.path = path
        self.proc: subprocess.Popen[str] | None = None
        self.said: list[str] = []

    def __enter__(self) -> Capture:
        proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.proc = proc
        started = threading.Event()

        def read() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                self.said.append(line.strip())
                if line.startswith("Capturing on"):
                    started.set()
            started.set()  # it ended without capturing

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        if not started.wait(START_LIMIT) or proc.poll() is not None:
            self.stop()
            raise DemoError(self.failure())
        return self

    def failure(self) -> str:
        """Why the capture tool stopped, and what to do when it lacked the right to capture."""
        said = " ".join(s for s in self.said if s and not s.startswith("Running as user")) or "it said nothing"
        if any(word in said.lower() for word in _NO_RIGHTS):
            return (
                f"{Path(self.argv[0]).name} may not capture on {loopback_interface()} here ({said}). Run this as root, "
                "or let your user capture: on Debian/Ubuntu 'sudo dpkg-reconfigure wireshark-common' (answer yes) and "
                "'sudo usermod -aG wireshark $USER', then log in again; elsewhere give dumpcap the capabilities "
                "cap_net_raw,cap_net_admin (setcap)"
            )
        return f"{Path(self.argv[0]).name} did not capture: {said}"

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # dumpcap and tshark finish the file on SIGINT
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def __exit__(self, *exc: object) -> None:
        time.sleep(_SETTLE)
        self.stop()


def read_back(path: Path, port: int) -> list[str]:
    """The capture's rsh packets as tshark lists them with the dissector (none without tshark)."""
    tshark = shutil.which("tshark")
    if tshark is None:
        return []
    argv = [tshark, "-r", str(path), *lua_flag().split(), *decode_as(port).split(), "-Y", PROTOCOL]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        return []
    return [line.strip() for line in r.stdout.splitlines() if line.strip()]


def demo_capture(out: Narrator, path: Path) -> int:
    """Record one rsh session into *path*; return the server's port.

    Raises:
        DemoError: no capture tool, no right to capture, or the session failed.
    """
    out.title("capture", "a real rsh session, recorded for Wireshark", "录下一次真实的 rsh 会话，用 Wireshark 打开")
    if not path.parent.is_dir():
        raise DemoError(f"{path.parent}: no such directory")
    if path.is_dir():
        raise DemoError(f"{path}: is a directory")
    tool = capture_tool()
    if tool is None:
        raise DemoError(
            "capturing needs dumpcap or tshark, which come with Wireshark: on Debian/Ubuntu "
            "'sudo apt-get install tshark', on Fedora 'sudo dnf install wireshark-cli', on macOS 'brew install wireshark'"
        )
    out.say(
        f"This starts a throw-away rsh server on 127.0.0.1, records its port with {Path(tool).name}, and runs one "
        f"command through 'rsh exec --trace': {CAPTURE_COMMAND!r}. On the wire: hello, auth, auth_ok, exec, stdout, "
        "stderr, exit. Loopback speaks plain TCP, so every frame is there to read; a TLS session would show nothing.",
        f"这会在 127.0.0.1 上启动一个临时的 rsh 服务端，用 {Path(tool).name} 录下它端口上的流量，并通过 "
        f"“rsh exec --trace” 执行一条命令：{CAPTURE_COMMAND!r}。线路上依次是 hello、auth、auth_ok、exec、stdout、stderr、"
        "exit。回环地址上用的是明文 TCP，所以每一帧都能读到；TLS 会话则什么也看不到。",
    )
    with local_server(DEFAULT_PORT if default_port_free() else 0) as server:
        with Capture(tool, path, server.port):
            r = server.run("exec", "-n", "--trace", server.address, "--", CAPTURE_COMMAND, merge=True)
        said = r.stdout.decode(errors="replace")
        if r.returncode != 0:
            raise DemoError(f"the recorded session failed: {said.strip().splitlines()[-1:]}")
    out.write()
    out.line(f"$ rsh exec -n --trace {server.address} -- {CAPTURE_COMMAND!r}", style="head")
    for line in said.splitlines():
        out.line(line if len(line) <= 150 else line[:147] + "...", style="dim")
    out.write()
    out.line(f"wrote {path}", style="good")
    summary = read_back(path, server.port)
    if summary:
        out.say("tshark reads it back with the dissector:", "tshark 用这个解析器读回它：", indent=2)
        for line in summary:
            out.line(line, indent=4)
    out.say(
        "Open it with the dissector (rsh demo wireshark says more):",
        "用解析器打开它（详见 rsh demo wireshark）：",
        indent=2,
    )
    flags = " ".join(x for x in (lua_flag(), decode_as(server.port)) if x)
    out.line(f"wireshark {flags} {path}", style="head", indent=4)
    out.line(f"tshark -r {path} {flags} -O {PROTOCOL}", style="head", indent=4)
    if server.port == DEFAULT_PORT:
        out.say(
            f"Once installed (rsh demo wireshark --install), plain 'wireshark {path}' decodes it: port {DEFAULT_PORT} is rsh's.",
            f"安装之后（rsh demo wireshark --install），直接 “wireshark {path}” 即可解析：{DEFAULT_PORT} 是 rsh 的端口。",
            indent=2,
        )
    else:
        out.say(
            f"Port {DEFAULT_PORT} was taken, so the server used {server.port}: in Wireshark, Analyze > Decode As... "
            f"TCP port {server.port} as {PROTOCOL} (that is the -d above).",
            f"端口 {DEFAULT_PORT} 已被占用，所以服务端用了 {server.port}：在 Wireshark 中用 Analyze > Decode As... 把 TCP 端口 "
            f"{server.port} 解析为 {PROTOCOL}（即上面的 -d）。",
            indent=2,
        )
    if not dissector_path().is_file():
        raise DemoError(f"the dissector is missing from this installation: {dissector_path()}")
    return server.port
