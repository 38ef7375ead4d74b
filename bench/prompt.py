"""Prompt responsiveness: launch to first prompt, and Enter on `true` to the next prompt.

Both are measured for `rsh connect` against a running server (whose lines
run in one live bash on a pseudo-terminal) and for a local `bash -i`
prompt, driven the same way in a pseudo-terminal in this run.
(ssh is compared only where an sshd answers on 127.0.0.1:22.)

    python bench/prompt.py [--rounds 5] [--commands 50]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time

import pexpect
from _common import Server

RSH_PROMPT = r"\$(?:\x1b\[[0-9;?]*[A-Za-z])+"


def measure(argv: list[str], prompt: str, env: dict[str, str], commands: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    child = pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8", timeout=30, dimensions=(40, 160))
    child.delaybeforesend = None  # pexpect sleeps 50 ms before each send by default
    child.expect(prompt)
    first = time.perf_counter() - t0
    per: list[float] = []
    for _ in range(commands):
        t = time.perf_counter()
        child.sendline("true")
        child.expect(prompt)
        per.append(time.perf_counter() - t)
    child.sendline("exit" if "sh" in argv[0] else ":exit")
    child.expect(pexpect.EOF)
    child.close()
    return first, statistics.median(per)


def sshd_available() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 22), timeout=0.5).close()
        return True
    except OSError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--commands", type=int, default=50)
    args = ap.parse_args()
    server = Server()
    env = dict(server.env, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", RSH_STATE_DIR=server.tmp)
    sh_env = dict(os.environ, PS1="sh$ ", TERM="xterm")
    rsh_argv = [sys.executable, "-m", "rsh", "connect", "--token-file", server.token_file, f"127.0.0.1:{server.port}"]
    try:
        rsh_first, rsh_cmd, sh_first, sh_cmd = [], [], [], []
        for _ in range(args.rounds):
            f, c = measure(rsh_argv, RSH_PROMPT, env, args.commands)
            rsh_first.append(f)
            rsh_cmd.append(c)
            f, c = measure(["/bin/bash", "--norc", "--noprofile", "-i"], r"sh\$ ", sh_env, args.commands)
            sh_first.append(f)
            sh_cmd.append(c)
    finally:
        server.stop()
    rf, rc, sf, sc = (statistics.median(x) for x in (rsh_first, rsh_cmd, sh_first, sh_cmd))
    print(f"median of {args.rounds} launches, {args.commands} commands each")
    spread = f"(rsh {min(rsh_cmd) * 1000:.2f}-{max(rsh_cmd) * 1000:.2f} ms over the launches)"
    print(f"  launch to first prompt:  rsh connect {rf * 1000:7.1f} ms   local bash -i {sf * 1000:6.1f} ms   ratio {rf / sf:5.1f}")
    print(f"  Enter on true to prompt: rsh         {rc * 1000:7.2f} ms   local bash -i {sc * 1000:6.2f} ms   ratio {rc / sc:5.1f} {spread}")
    if not sshd_available():
        print("  ssh: no sshd on 127.0.0.1:22 here, so no ssh figures")


if __name__ == "__main__":
    main()
