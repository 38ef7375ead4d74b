"""Fan-out: ``uname -a`` on 50 local servers with ``rsh exec -g``, against the same 50 commands one
after another, and against Ansible's ``-m command`` through the rsh plugin (and through Ansible's
ssh connection, when an sshd answers on loopback without a password).

    python bench/fanout.py [--hosts 50] [--rounds 3]

Every figure is the median wall time of whole command lines, as a person
runs them (a new ``rsh`` or ``ansible`` process each time), measured in the
same run; the ratios are to rsh's fan-out.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Server, env

HERE = Path(__file__).resolve().parent


def median_s(argv: list[str], environ: dict[str, str], rounds: int, expect: int = 0) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        r = subprocess.run(argv, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
        if r.returncode != expect:
            raise RuntimeError(f"{' '.join(argv[:4])}... exited {r.returncode}: {r.stderr.decode()[-500:]}")
    return statistics.median(times)


def ssh_works() -> str | None:
    """None when ``ssh 127.0.0.1 true`` logs in without asking; else why not."""
    if shutil.which("ssh") is None:
        return "no ssh client"
    r = subprocess.run(
        ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "ConnectTimeout=3", "127.0.0.1", "true"],
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    return None if r.returncode == 0 else f"ssh 127.0.0.1 did not log in non-interactively ({r.stderr.decode().strip()[-80:] or r.returncode})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    opts = ap.parse_args()
    client = tempfile.mkdtemp(prefix="rsh-bench-fanout-")
    servers: list[Server] = []
    try:
        for _ in range(opts.hosts):
            servers.append(Server())
        names = [f"b{i}" for i in range(len(servers))]
        lines = []
        for name, s in zip(names, servers, strict=True):
            lines += [f"[hosts.{name}]", 'address = "127.0.0.1"', f"port = {s.port}", f'token_file = "{s.token_file}"']
        lines += ["[groups]", "all = [" + ", ".join(f'"{n}"' for n in names) + "]"]
        Path(client, "config.toml").write_text("\n".join(lines) + "\n")
        environ = env(client)
        rsh = [sys.executable, "-m", "rsh"]
        figures: dict[str, float] = {}
        figures["rsh exec -g all (fan-out)"] = median_s([*rsh, "exec", "-g", "all", "--", "uname -a"], environ, opts.rounds)

        def one_by_one() -> None:
            for name in names:
                subprocess.run([*rsh, "exec", name, "--", "uname -a"], env=environ, stdout=subprocess.DEVNULL, check=True)

        t = []
        for _ in range(opts.rounds):
            t0 = time.perf_counter()
            one_by_one()
            t.append(time.perf_counter() - t0)
        figures[f"{len(names)} x rsh exec, one after another"] = statistics.median(t)

        ansible = Path(sys.executable).parent / "ansible"
        why_not_ansible = None if ansible.exists() else "ansible-core is not installed (pip install 'rsh[ansible]')"
        if why_not_ansible is None:
            inventory = Path(client, "inventory.ini")
            inventory.write_text("[all]\n" + "\n".join(names) + f"\n[all:vars]\nansible_connection=rsh\nansible_python_interpreter={sys.executable}\n")
            plugins = subprocess.run([sys.executable, "-m", "rsh.ansible"], capture_output=True, text=True, env=environ, check=True).stdout.strip()
            a_env = {**environ, "ANSIBLE_CONNECTION_PLUGINS": plugins, "ANSIBLE_HOME": str(Path(client, "ansible"))}
            argv = [str(ansible), "-i", str(inventory), "all", "-f", str(len(names)), "-m", "command", "-a", "uname -a"]
            figures[f"ansible -m command, rsh plugin, -f {len(names)}"] = median_s(argv, a_env, opts.rounds)
            why_not_ssh = ssh_works()
            if why_not_ssh is None:
                ssh_inv = Path(client, "ssh.ini")
                ssh_inv.write_text(
                    "[all]\n" + "\n".join(f"{n} ansible_host=127.0.0.1" for n in names) + f"\n[all:vars]\nansible_python_interpreter={sys.executable}\n"
                )
                argv = [str(ansible), "-i", str(ssh_inv), "all", "-f", str(len(names)), "-m", "command", "-a", "uname -a"]
                figures[f"ansible -m command, ssh, -f {len(names)}"] = median_s(argv, {**a_env, "ANSIBLE_HOST_KEY_CHECKING": "False"}, opts.rounds)
            else:
                print(f"(ansible over ssh skipped: {why_not_ssh})")
        else:
            print(f"(ansible skipped: {why_not_ansible})")
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(client, ignore_errors=True)
    base = next(iter(figures.values()))
    print(f"uname -a on {len(names)} local servers, median of {opts.rounds}:")
    for what, seconds in figures.items():
        print(f"  {what:<44} {seconds:7.2f} s  {seconds / base:6.1f}x")


if __name__ == "__main__":
    main()
