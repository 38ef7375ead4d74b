"""What every connection of one server shares: its token, encoding, home and identity.

Apart from the listener and the connections, so that both can name it and
neither imports the other for it.
"""

from __future__ import annotations

import codecs
import getpass
import locale
import os
import platform
import pwd
import socket
from dataclasses import dataclass, field

from ..protocol.frames import DEFAULT_MAX_PAYLOAD

__all__ = ["ServerConfig", "locale_encoding", "login_shell"]


def login_shell() -> str:
    """The server user's login shell (its passwd entry's), /bin/sh when it has none."""
    try:
        return pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh"
    except KeyError:
        return "/bin/sh"


def locale_encoding() -> str:
    """The server's default encoding: its locale's, by canonical codec name."""
    return codecs.lookup(locale.getencoding()).name


@dataclass
class ServerConfig:
    """What every connection of one server shares."""

    token: str | None
    encoding: str = field(default_factory=locale_encoding)
    max_payload: int = DEFAULT_MAX_PAYLOAD
    home: str = field(default_factory=lambda: os.path.expanduser("~"))
    #: The account commands run as: the audit log's ``user``.
    user: str = field(default_factory=getpass.getuser)
    #: user, host and home, for the prompt (sent once authenticated).
    identity: dict[str, str] = field(default_factory=dict)
    #: What ``hello`` says the server runs on.
    system: str = field(default_factory=lambda: f"{platform.system()} {platform.release()}")
    #: The shell a prompt session's live shell runs (``rsh serve --shell``).
    shell: str = field(default_factory=login_shell)

    def __post_init__(self) -> None:
        self.identity = {"user": self.user, "host": socket.gethostname(), "home": self.home}
