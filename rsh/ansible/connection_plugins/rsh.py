"""The ``rsh`` connection plugin for Ansible: ``ansible_connection=rsh`` runs tasks over rsh.

Ansible loads this file by path (``connection_plugins`` in ansible.cfg);
the work is ``rsh.ansible.session.RshSession``'s.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.plugins.connection import ConnectionBase

from rsh.errors import RshError

DOCUMENTATION = """
    name: rsh
    short_description: run tasks over rsh, a remote shell on a small framed protocol
    description:
        - Runs commands and copies files (verified by SHA-256) through an rsh server (C(rsh serve)) instead of ssh.
        - Each setting not given here comes from rsh's config file (C(config.toml) in rsh's config directory) for the host, as C(rsh exec HOST) reads it.
        - The remote host needs Python for most modules, as with ssh. C(become) is not supported.
    author: rsh
    options:
        host:
            description: The rsh server's address, or a host of rsh's config file.
            default: inventory_hostname
            type: string
            vars:
                - name: inventory_hostname
                - name: ansible_host
                - name: ansible_rsh_host
        port:
            description: The server's port (default the config file's, else 7022).
            type: int
            vars:
                - name: ansible_port
                - name: ansible_rsh_port
        token_file:
            description: The file holding the server's token (default the config file's, then RSH_TOKEN, then rsh's token file).
            type: string
            vars:
                - name: ansible_rsh_token_file
            env:
                - name: ANSIBLE_RSH_TOKEN_FILE
        fingerprint:
            description: The server's TLS fingerprint (SHA256:...), as C(rsh serve) printed it; implies TLS.
            type: string
            vars:
                - name: ansible_rsh_fingerprint
        tls:
            description: Use TLS to a loopback address too.
            type: bool
            default: false
            vars:
                - name: ansible_rsh_tls
        accept_new:
            description: Trust and pin a server seen for the first time (there is no terminal to ask on).
            type: bool
            default: false
            vars:
                - name: ansible_rsh_accept_new
        known_hosts:
            description: rsh's file of pinned fingerprints.
            type: string
            vars:
                - name: ansible_rsh_known_hosts
        config_file:
            description: rsh's config file (default config.toml in rsh's config directory).
            type: string
            vars:
                - name: ansible_rsh_config_file
            env:
                - name: ANSIBLE_RSH_CONFIG_FILE
        connect_timeout:
            description: Seconds to give up connecting after.
            type: float
            vars:
                - name: ansible_rsh_connect_timeout
        pipelining:
            description: Send modules on stdin instead of copying them first (rsh forwards stdin exactly).
            type: bool
            default: true
            vars:
                - name: ansible_pipelining
            env:
                - name: ANSIBLE_PIPELINING
"""


class Connection(ConnectionBase):
    """A connection to one host's rsh server."""

    transport = "rsh"
    has_pipelining = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._session: Any = None

    def _connect(self) -> Connection:
        if self._session is None:
            from rsh.ansible.session import RshSession

            names = ("port", "token_file", "fingerprint", "tls", "accept_new", "known_hosts", "connect_timeout", "config_file")
            try:
                self._session = RshSession(self.get_option("host"), **{n: self.get_option(n) for n in names})
            except RshError as exc:
                raise AnsibleConnectionFailure(f"rsh: {exc}") from exc
            self._connected = True
        return self

    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True) -> tuple[int, bytes, bytes]:
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        self._connect()
        try:
            rc, out, err = self._session.exec_command(cmd, in_data)
        except RshError as exc:
            raise AnsibleConnectionFailure(f"rsh: {exc}") from exc
        return rc, out, err

    def put_file(self, in_path: str, out_path: str) -> None:
        super().put_file(in_path, out_path)
        self._connect()
        import os

        if not os.path.exists(in_path):
            raise AnsibleFileNotFound(f"file or module does not exist: {in_path}")
        self._copy(self._session.put_file, in_path, out_path)

    def fetch_file(self, in_path: str, out_path: str) -> None:
        super().fetch_file(in_path, out_path)
        self._connect()
        self._copy(self._session.fetch_file, in_path, out_path)

    def _copy(self, copy: Any, source: str, dest: str) -> None:
        from rsh.ansible.session import SessionError

        try:
            copy(source, dest)
        except SessionError as exc:
            raise AnsibleError(f"rsh: {exc}") from exc
        except RshError as exc:
            raise AnsibleConnectionFailure(f"rsh: {exc}") from exc

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        self._connected = False
