"""Where rsh keeps its files, and the token file.

Config (the token, a server's TLS identity and audit log, a client's
known_hosts) lives under ``$XDG_CONFIG_HOME/rsh`` (``~/.config/rsh``);
state (prompt history) under ``$XDG_STATE_HOME/rsh`` (``~/.local/state/rsh``).
``RSH_CONFIG_DIR`` / ``RSH_STATE_DIR`` override them, which tests rely on.

What a client reads on its way to connecting (the token, known_hosts, the
config file) is named here as text as well (``config_path``, ``path_text``):
pathlib, with the urllib.parse and fnmatch it brings, is some 6% of a
short ``rsh exec``'s start-up.
"""

from __future__ import annotations

import os

from .errors import AuthError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "config_dir",
    "config_path",
    "path_text",
    "path_exists",
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


def path_text(path: str | os.PathLike[str]) -> str:
    """*path* as ``str(pathlib.Path(path))`` writes it: no ``.`` parts, no doubled or trailing ``/`` (``//`` alone leads on)."""
    text = os.fspath(path)
    root = "//" if text.startswith("//") and not text.startswith("///") else "/" if text.startswith("/") else ""
    return root + "/".join(part for part in text.split("/") if part and part != ".") or "."


def path_exists(path: str) -> bool:
    """``pathlib.Path(path).exists()``: False for a missing one, but an error that is not about the path's absence is raised."""
    try:
        os.stat(path)
    except OSError as exc:
        import errno

        # pathlib's own list of errors that only mean "there is nothing there".
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP):
            raise
        return False
    except ValueError:  # a NUL in it
        return False
    return True


def _xdg(var: str, override: str, fallback: str) -> str:
    if os.environ.get(override):
        return path_text(os.environ[override])
    base = os.environ.get(var) or os.path.join(os.path.expanduser("~"), fallback)
    return path_text(os.path.join(base, "rsh"))


def config_path(name: str) -> str:
    """*name* in the config directory, as text: ``str(config_dir() / name)``."""
    return path_text(os.path.join(_xdg("XDG_CONFIG_HOME", "RSH_CONFIG_DIR", ".config"), name))


def config_dir() -> Path:
    """Return the user's rsh config directory (not created)."""
    from pathlib import Path

    return Path(_xdg("XDG_CONFIG_HOME", "RSH_CONFIG_DIR", ".config"))


def state_dir() -> Path:
    """Return the user's rsh state directory (not created)."""
    from pathlib import Path

    return Path(_xdg("XDG_STATE_HOME", "RSH_STATE_DIR", os.path.join(".local", "state")))


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


def load_token(path: str | os.PathLike[str]) -> str:
    """Read a token file (a text *path* as ``path_text`` writes it, for the messages).

    Raises:
        AuthError: the file is missing, unreadable or empty.
    """
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
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
        return load_token(path_text(token_file))
    env = os.environ.get("RSH_TOKEN", "").strip()
    if env:
        return env
    default = config_path("token")
    if path_exists(default):
        return load_token(default)
    return None
