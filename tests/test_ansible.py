"""Ansible over rsh: ``ansible`` and ``ansible-playbook`` with ``ansible_connection=rsh`` against two local servers, and the session under the plugin.

``ansible-core`` is in the test extras; without it the tests that run
Ansible skip, and the session (all the plugin does) is still tested.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rsh.ansible import PLUGIN_DIR
from rsh.ansible.session import RshSession, SessionError
from rsh.errors import AuthError, ConnectError

from .conftest import ServerFactory, ServerProcess, rsh_env

ANSIBLE = Path(sys.executable).parent / "ansible"
needs_ansible = pytest.mark.skipif(
    importlib.util.find_spec("ansible") is None or not ANSIBLE.exists(),
    reason="ansible-core is not installed (pip install -e '.[test]' or 'rsh[ansible]')",
)


class Hosts:
    def __init__(self, root: Path, servers: dict[str, ServerProcess]) -> None:
        self.root = root
        self.servers = servers
        self.inventory = root / "inventory.ini"

    def home(self, name: str) -> Path:
        return Path(self.servers[name].env["HOME"])

    def env(self) -> dict[str, str]:
        return rsh_env(
            self.root,
            ANSIBLE_CONNECTION_PLUGINS=str(PLUGIN_DIR),
            ANSIBLE_HOME=str(self.root / "ansible-home"),
            ANSIBLE_LOCAL_TEMP=str(self.root / "ansible-home" / "tmp"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_CONFIG=str(self.root / "none.cfg"),
        )

    def ansible(self, program: str, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run *program*; with *config*, the plugin is found through that ansible.cfg alone."""
        env = self.env()
        if config is not None:
            env["ANSIBLE_CONFIG"] = str(config)
            del env["ANSIBLE_CONNECTION_PLUGINS"]
        return subprocess.run(
            [str(ANSIBLE.parent / program), "-i", str(self.inventory), *args],
            capture_output=True,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
            timeout=120,
            cwd=self.root,
        )


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    root = tmp_path_factory.mktemp("ansible")
    factory = ServerFactory(root / "servers")
    try:
        servers = {}
        for name in ("h1", "h2"):
            (root / "homes" / name).mkdir(parents=True)
            servers[name] = factory(where=root / "servers" / name, env_extra={"HOME": str(root / "homes" / name)})
        # h1 from inventory variables alone; h2 from rsh's config file.
        h1, h2 = servers["h1"], servers["h2"]
        config = root / "config" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text(f'[hosts.h2]\naddress = "127.0.0.1"\nport = {h2.port}\ntoken_file = "{h2.token_file}"\n')
        h = Hosts(root, servers)
        h.inventory.write_text(
            f"[web]\nh1 ansible_host=127.0.0.1 ansible_port={h1.port} ansible_rsh_token_file={h1.token_file}\nh2\n"
            f"[web:vars]\nansible_connection=rsh\nansible_python_interpreter={sys.executable}\n"
        )
        yield h
    finally:
        factory.close()


@needs_ansible
def test_ansible_command_module(hosts: Hosts) -> None:
    r = hosts.ansible("ansible", "all", "-m", "command", "-a", "uname -a")
    uname = subprocess.run(["uname", "-a"], capture_output=True, text=True).stdout.strip()
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("h1", "h2"):
        assert f"{name} | CHANGED | rc=0 >>\n{uname}\n" in r.stdout


@needs_ansible
def test_ansible_copy_and_fetch(hosts: Hosts, tmp_path: Path) -> None:
    src = tmp_path / "motd"
    src.write_text("welcome\n")
    r = hosts.ansible("ansible", "all", "-m", "copy", "-a", f"src={src} dest=motd.copy mode=0640")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count('"changed": true') == 2
    for name in ("h1", "h2"):
        copied = hosts.home(name) / "motd.copy"
        assert copied.read_text() == "welcome\n" and copied.stat().st_mode & 0o777 == 0o640
        (hosts.home(name) / "report.txt").write_text(f"report of {name}\n")
    dest = tmp_path / "fetched"
    homes = hosts.home("h1").parent
    r = hosts.ansible("ansible", "all", "-m", "fetch", "-a", f"src={homes}/{{{{ inventory_hostname }}}}/report.txt dest={dest}/")
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("h1", "h2"):
        assert (dest / name / str(hosts.home(name) / "report.txt").lstrip("/")).read_text() == f"report of {name}\n"


@needs_ansible
def test_ansible_playbook_through_ansible_cfg(hosts: Hosts) -> None:
    cfg = hosts.root / "ansible.cfg"
    cfg.write_text(f"[defaults]\nconnection_plugins = {PLUGIN_DIR}\n")
    play = hosts.root / "site.yml"
    play.write_text(
        "- hosts: web\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: a file with the host's name\n"
        "      copy:\n"
        '        content: "I am {{ inventory_hostname }}\\n"\n'
        "        dest: whoami.txt\n"
        "    - name: read it back\n"
        "      command: cat whoami.txt\n"
        "      register: back\n"
        "    - debug:\n"
        '        msg: "said {{ back.stdout }}"\n'
    )
    r = hosts.ansible("ansible-playbook", str(play), config=cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("h1", "h2"):
        assert (hosts.home(name) / "whoami.txt").read_text() == f"I am {name}\n"
        assert f'"msg": "said I am {name}"' in r.stdout
        assert f"{name}" in r.stdout and "failed=0" in r.stdout
    assert r.stdout.count("changed=2") == 2


@needs_ansible
def test_ansible_unreachable_says_why(hosts: Hosts, tmp_path: Path) -> None:
    inv = tmp_path / "inv.ini"
    inv.write_text(f"gone ansible_host=127.0.0.1 ansible_port=1 ansible_connection=rsh ansible_python_interpreter={sys.executable}\n")
    r = subprocess.run(
        [str(ANSIBLE), "-i", str(inv), "all", "-m", "ping"], capture_output=True, text=True, env=hosts.env(), stdin=subprocess.DEVNULL, timeout=120
    )
    assert r.returncode != 0
    assert "gone | UNREACHABLE!" in r.stdout and "rsh: cannot connect to 127.0.0.1:1: connection refused" in r.stdout


# -- the session the plugin drives, without Ansible -----------------------------------------


def test_session_runs_copies_and_fetches(hosts: Hosts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h1 = hosts.servers["h1"]
    session = RshSession("127.0.0.1", port=h1.port, token_file=str(h1.token_file))
    try:
        assert session.exec_command("cat; exit 4", b"stdin data") == (4, b"stdin data", b"")
        (tmp_path / "up").write_bytes(b"\x00\x01bytes")
        session.put_file(str(tmp_path / "up"), str(hosts.home("h1") / "up.bin"))
        assert (hosts.home("h1") / "up.bin").read_bytes() == b"\x00\x01bytes"
        session.fetch_file(str(hosts.home("h1") / "up.bin"), str(tmp_path / "down"))
        assert (tmp_path / "down").read_bytes() == b"\x00\x01bytes"
        with pytest.raises(SessionError, match="fetch 127.0.0.1:nothing-here -> "):
            session.fetch_file("nothing-here", str(tmp_path / "x"))
    finally:
        session.close()
    # A host of rsh's config file, as the plugin finds it when the inventory names only the host.
    monkeypatch.setenv("RSH_CONFIG_DIR", str(hosts.root / "config"))
    session = RshSession("h2")
    try:
        assert session.exec_command("pwd")[1] == f"{hosts.home('h2')}\n".encode()
    finally:
        session.close()


def test_session_errors(hosts: Hosts, tmp_path: Path) -> None:
    (tmp_path / "bad").write_text("wrong\n")
    with pytest.raises(AuthError):
        RshSession("127.0.0.1", port=hosts.servers["h1"].port, token_file=str(tmp_path / "bad"))
    with pytest.raises(ConnectError, match="connection refused"):
        RshSession("127.0.0.1", port=1, token_file=str(tmp_path / "bad"))


def test_python_m_rsh_ansible_prints_the_plugin_directory() -> None:
    r = subprocess.run([sys.executable, "-m", "rsh.ansible"], capture_output=True, text=True, check=True)
    assert r.stdout == f"{PLUGIN_DIR}\n"
    assert (PLUGIN_DIR / "rsh.py").is_file()
