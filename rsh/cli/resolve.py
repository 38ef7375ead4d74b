"""From a command line and the config file to the settings of one connection.

Each setting comes from the first of: the command line's options; what
HOST itself says (``user@``, ``:PORT``); the config file's entry for HOST;
its ``[defaults]``; rsh's default.  ``Settings`` keeps, for each, where it
came from, which ``rsh config HOST`` prints.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping

from ..config import config_path, path_exists, path_text, resolve_client_token
from ..errors import ConnectError, RshError
from ..net.tls import parse_fingerprint
from ..protocol.address import DEFAULT_PORT, Target, parse_port, parse_target
from .hostconfig import ConfigError, HostConfig, Value, load_config
from .options import UsageError, ask_on_tty, say

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from types import TracebackType
    from typing import Any

    from ..client.aio import AsyncClient

__all__ = ["Settings", "ConfigError", "resolve", "reach", "client_options", "config_of", "check_user", "DEFAULTS"]

#: rsh's own default for each setting (None: unset).
DEFAULTS: dict[str, Any] = {
    "address": None,
    "port": DEFAULT_PORT,
    "user": None,
    "token_file": None,
    "fingerprint": None,
    "tls": None,
    "accept_new": False,
    "known_hosts": None,
    "shell": None,
    "timeout": None,
    "connect_timeout": 10.0,
}

# The settings an option of the command line overrides, each named as its
# option's attribute (an option some subcommand lacks overrides nothing there).
_OPTIONS = ("port", "token_file", "fingerprint", "tls", "accept_new", "known_hosts", "shell", "timeout", "connect_timeout")


class Settings:
    """Everything about reaching one host: ``settings.port``, and ``settings.origin("port")``."""

    def __init__(self, name: str, values: dict[str, Value], alias: bool, config: HostConfig) -> None:
        #: HOST as typed, without ``user@`` and ``:PORT``.
        self.name = name
        #: Whether *name* is a host of the config file.
        self.alias = alias
        self.config = config
        self.values = values

    def __getattr__(self, key: str) -> Any:
        try:
            return self.__dict__["values"][key].value
        except KeyError:
            raise AttributeError(key) from None

    def origin(self, key: str) -> str:
        """Where *key* was set: ``command line``, ``FILE:LINE`` or ``default``."""
        return self.values[key].origin

    @property
    def host(self) -> str:
        """What to connect to: the config's ``address``, else the name itself."""
        return str(self.values["address"].value or self.name)

    @property
    def where(self) -> str:
        """``host:port`` (``[v6]:port``), as errors and known_hosts name it."""
        host = self.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def known_hosts_file(self) -> str:
        """The known_hosts file, as text (``rsh.config.path_text``)."""
        return path_text(self.known_hosts) if self.known_hosts else config_path("known_hosts")

    def explained(self) -> _Explained:
        """Around connecting: a name that is neither in DNS nor a host of the config file is said to be neither."""
        return _Explained(self)


class _Explained:
    """``Settings.explained``: a class rather than a ``contextlib`` generator, as contextlib costs `rsh exec` 2%."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __enter__(self) -> None:
        pass

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if not isinstance(exc, ConnectError) or self.settings.alias:
            return
        import socket

        if isinstance(exc.__cause__, socket.gaierror):
            raise ConnectError(f"{exc} (and {self.settings.name!r} is not a host in {self.settings.config.path})") from exc


def config_of(args: argparse.Namespace) -> HostConfig:
    """The config file ``-F`` names, or the default one (missing: empty).

    Raises:
        ConfigError: it cannot be used; a file named with ``-F`` must exist.
    """
    named = getattr(args, "config_file", None)
    if named is not None and not _is_file(named):
        raise ConfigError(f"config file {named} does not exist")
    return load_config(named)


def _is_file(path: str) -> bool:
    """``pathlib.Path(path).is_file()``."""
    import stat

    return path_exists(path) and stat.S_ISREG(os.stat(path).st_mode)


def resolve(args: argparse.Namespace, word: str, config: HostConfig | None = None) -> Settings:
    """The settings for HOST *word* (``[user@]host[:port]``) under the options in *args*.

    Raises:
        UsageError: a malformed HOST, or ``-p`` and ``:PORT`` that differ.
        ConfigError: the config file cannot be used.
    """
    try:
        target: Target = parse_target(word)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if config is None:
        config = config_of(args)
    values = {key: Value(default, "default") for key, default in DEFAULTS.items()}
    values.update(config.settings(target.host))
    if target.user is not None:
        values["user"] = Value(target.user, "command line")
    if target.port is not None:
        values["port"] = Value(target.port, "command line")
    for key in _OPTIONS:
        given = getattr(args, key, None)
        if given is None:
            continue
        if key == "port":
            try:
                given = parse_port(str(given))
            except ValueError as exc:
                raise UsageError(f"-p: {exc}") from exc
            if target.port is not None and target.port != given:
                raise UsageError(f"two ports for {word}: -p {given} and :{target.port}")
        values[key] = Value(given, "command line")
    return Settings(target.host, values, target.host in config.hosts, config)


def check_user(settings: Settings, info: dict[str, Any]) -> None:
    """Refuse a server that runs as a user other than the one asked for (``user@``, ``user =``).

    An rsh server runs every command as the one user it runs as; asking for
    another cannot be granted, so it is an error rather than a surprise.

    Raises:
        RshError: the server's user differs (checked before any command is sent).
    """
    wanted = settings.user
    actual = info.get("user")
    if wanted is not None and actual != wanted:
        raise RshError(
            f"{settings.where} runs as {actual}, not {wanted}{_set_in(settings.origin('user'))}: "
            "an rsh server runs every command as its own user; drop the user name, or reach a server that user runs"
        )


def async_connector(settings: Settings, token: str | None, options: Mapping[str, Any]) -> Callable[[], Awaitable[AsyncClient]]:
    """What the prompt and ``rsh exec -t`` connect with, again on a reconnect: an authenticated ``AsyncClient`` whose user is checked."""

    async def connect() -> AsyncClient:
        from ..client.aio import AsyncClient

        with settings.explained():
            client = await AsyncClient.connect(settings.host, settings.port, token, **options)
        try:
            check_user(settings, client.server_info)
        except BaseException:
            await client.close()
            raise
        return client

    return connect


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``AsyncClient.connect`` / ``rsh.connect`` from resolved *settings*.

    Raises:
        UsageError: a malformed ``--fingerprint``.
    """
    if settings.fingerprint is not None:
        try:
            parse_fingerprint(settings.fingerprint)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    known_hosts = settings.known_hosts_file()
    accept_new = bool(settings.accept_new)

    def confirm(address: str, fingerprint: str) -> bool | None:
        # --accept-new goes through here too, so that it says what it pinned.
        answer = True if accept_new else ask_on_tty(address, fingerprint)
        if answer:
            say(f"pinned {address} as {fingerprint} in {known_hosts}")
        return answer

    # Pinning only means something over TLS: --accept-new asks for it, as
    # --fingerprint and a known_hosts entry do (rsh.client.known_hosts).
    tls = True if settings.tls or accept_new else None
    return {
        "tls": tls,
        "fingerprint": settings.fingerprint,
        "known_hosts": known_hosts,
        "confirm": confirm,
        "timeout": settings.connect_timeout,
    }


def _set_in(origin: str) -> str:
    return "" if origin == "command line" else f" (user set in {origin})"


def reach(args: argparse.Namespace, word: str) -> tuple[Settings, str | None, dict[str, Any]]:
    """Settings for HOST *word*, the token they name, and the keyword arguments that connect with them.

    Raises:
        UsageError: a malformed HOST or option.
        ConfigError: the config file cannot be used.
        AuthError: a named token file cannot be read.
    """
    settings = resolve(args, word)
    return settings, resolve_client_token(settings.token_file), client_options(settings)
