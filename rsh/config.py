"""Where rsh keeps its files, and the token file.

Config (the token, a server's TLS identity and audit log, a client's
known_hosts) lives under ``$XDG_CONFIG_HOME/rsh`` (``~/.config/rsh``);
state (prompt history) under ``$XDG_STATE_HOME/rsh`` (``~/.local/state/rsh``).
``RSH_CONFIG_DIR`` / ``RSH_STATE_DIR`` override them, which tests rely on.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import AuthError

__all__ = [
    "config_dir",
    "state_dir",
    "default_token_file",
    "default_known_hosts_file",
    "default_identity_file",
    "default_audit_log",
    "load_token",
    "ensure_token",
    "resolve_client_token",
]


#: The server's identity file's name in the config directory.
IDENTITY_FILE = "server-identity.pem"

# A token is 32 random bytes, hex: as a nonce (rsh.protocol.auth), far beyond guessing.
TOKEN_BYTES = 32


def new_token() -> str:
    """Return a fresh random token, hex-encoded."""
    return os.urandom(TOKEN_BYTES).hex()


def _xdg(var: str, override: str, fallback: str) -> Path:
    if os.environ.get(override):
        return Path(os.environ[override])
    base = os.environ.get(var) or os.path.join(os.path.expanduser("~"), fallback)
    return Path(base) / "rsh"


def config_dir() -> Path:
    """Return the user's rsh config directory (not created)."""
    return _xdg("XDG_CONFIG_HOME", "RSH_CONFIG_DIR", ".config")


def state_dir() -> Path:
    """Return the user's rsh state directory (not created)."""
    return _xdg("XDG_STATE_HOME", "RSH_STATE_DIR", os.path.join(".local", "state"))


def default_token_file() -> Path:
    """Return the path of the token file used when none is named."""
    return config_dir() / "token"


def default_known_hosts_file() -> Path:
    """Return the client's file of pinned server fingerprints."""
    return config_dir() / "known_hosts"


def default_identity_file() -> Path:
    """Return the server's TLS key and certificate file (see ``rsh.net.tls``)."""
    return config_dir() / IDENTITY_FILE


def default_audit_log() -> Path:
    """Return the server's audit log (JSON lines)."""
    return config_dir() / "audit.log"


def load_token(path: Path) -> str:
    """Read a token file.

    Raises:
        AuthError: the file is missing, unreadable or empty.
    """
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError as exc:
        raise AuthError(f"token file {path} does not exist") from exc
    except OSError as exc:
        raise AuthError(f"cannot read token file {path}: {exc.strerror}") from exc
    if not token:
        raise AuthError(f"token file {path} is empty")
    return token


def ensure_token(path: Path) -> tuple[str, bool]:
    """Return the token in *path*, creating the file (mode 0600) if missing.

    Returns:
        The token and whether the file was created just now.
    """
    if path.exists():
        return load_token(path), False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = new_token()
    # O_EXCL: never clobber a token another process wrote meanwhile;
    # mode 0600 from the start, so there is no moment it is world-readable.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_token(path), False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token, True


def resolve_client_token(token_file: str | os.PathLike[str] | None) -> str | None:
    """Return the token a client should use: ``--token-file``, ``RSH_TOKEN``, or the default file.

    Returns None when none of them gives one (the server may run ``--no-auth``).

    Raises:
        AuthError: a named token file cannot be read.
    """
    if token_file is not None:
        return load_token(Path(token_file))
    env = os.environ.get("RSH_TOKEN", "").strip()
    if env:
        return env
    default = default_token_file()
    if default.exists():
        return load_token(default)
    return None
