"""What the Ansible connection plugin does, on rsh's blocking client: run a command, copy a file either way.

Kept apart from the plugin so that it needs no Ansible to use or test.
The host is resolved as ``rsh exec HOST`` resolves it (``rsh.cli.resolve``):
what the inventory gives (port, token file, fingerprint, ...) over the
config file's entry for HOST, over its ``[defaults]``.  A server seen for
the first time is trusted only with ``accept_new`` (or a fingerprint):
Ansible's workers have no terminal to ask on.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import CommandTimeout, TransferFailed
from ..results import printable

__all__ = ["RshSession", "SessionError"]


class SessionError(Exception):
    """A file could not be copied (one line, naming the file and why)."""


class RshSession:
    """One authenticated connection to the rsh server of *host*.

    Args:
        host: ``[user@]host[:port]`` or a host of rsh's config file.
        port, token_file, fingerprint, tls, accept_new, known_hosts,
        connect_timeout: as rsh's options of those names (None: the config
            file's, else rsh's default).
        config_file: the config file (None: the default one).

    Raises:
        RshError: the host is malformed, unreachable, or refused us.
    """

    def __init__(
        self,
        host: str,
        *,
        port: int | None = None,
        token_file: str | None = None,
        fingerprint: str | None = None,
        tls: bool | None = None,
        accept_new: bool | None = None,
        known_hosts: str | None = None,
        connect_timeout: float | None = None,
        config_file: str | None = None,
    ) -> None:
        from ..cli.resolve import check_user, client_options, resolve
        from ..client.blocking import Client
        from ..config import resolve_client_token

        args = argparse.Namespace(
            port=port,
            token_file=token_file,
            fingerprint=fingerprint,
            tls=tls or None,
            accept_new=accept_new or None,
            known_hosts=known_hosts,
            connect_timeout=connect_timeout,
            config_file=config_file,
        )
        settings = resolve(args, host)
        options: dict[str, Any] = client_options(settings)
        trust = bool(settings.accept_new)
        options["confirm"] = lambda address, fp: trust or None
        self.settings = settings
        self.client = Client(settings.host, settings.port, resolve_client_token(settings.token_file), **options)
        try:
            check_user(settings, self.client.server_info)
        except BaseException:
            self.client.close()
            raise

    def exec_command(self, command: str, in_data: bytes | None = None) -> tuple[int, bytes, bytes]:
        """Run *command* with *in_data* as its stdin; its exit status (128+N for signal N), stdout and stderr."""
        try:
            result = self.client.run(command, input=in_data, timeout=self.settings.timeout)
        except CommandTimeout as exc:
            return 124, exc.result.stdout, exc.result.stderr  # as rsh exec --timeout
        return result.exit_status, result.stdout, result.stderr

    def put_file(self, local: str, remote: str) -> None:
        """Copy file *local* to *remote* on the server, verified.

        Raises:
            SessionError: it did not arrive.
        """
        try:
            self.client.put(local, remote)
        except TransferFailed as exc:
            raise SessionError(f"put {printable(local)} -> {self.settings.name}:{printable(remote)}: {exc}") from exc

    def fetch_file(self, remote: str, local: str) -> None:
        """Copy file *remote* from the server to *local*, verified.

        Raises:
            SessionError: it did not arrive.
        """
        try:
            self.client.get(remote, local)
        except TransferFailed as exc:
            raise SessionError(f"fetch {self.settings.name}:{printable(remote)} -> {printable(local)}: {exc}") from exc

    def close(self) -> None:
        self.client.close()
