"""The client's config file, ``config.toml`` in the config directory: named hosts and their settings.

In the spirit of ssh_config, read with the standard library's ``tomllib``::

    [defaults]                  # for every host, under what a host says
    connect_timeout = 5

    [hosts.web1]
    address = "192.0.2.10"      # what to connect to (default: the name itself)
    port = 7100
    user = "deploy"             # checked against the user the server runs as
    token_file = "web1.token"   # relative to this file's directory; ~ works
    fingerprint = "SHA256:..."  # implies TLS
    timeout = 30                # rsh exec's --timeout

    [groups]                    # names for sets of hosts (rsh exec -g web)
    web = ["web1", "web2"]

Every mistake (bad TOML, an unknown key, a wrong type, a group naming an
unknown host) is a ``ConfigError`` whose one line names the file and line.
tomllib keeps no positions, so ``_Lines`` finds them in the text itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

from ..config import config_dir, config_path, path_text
from ..errors import RshError
from ..net.tls import parse_fingerprint

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, NamedTuple
else:
    from ..typeshim import NamedTuple

__all__ = ["CONFIG_FILE", "ConfigError", "HostConfig", "Value", "SETTINGS", "default_config_file", "load_config"]

#: The config file's name in the config directory.
CONFIG_FILE = "config.toml"


class ConfigError(RshError):
    """The config file cannot be used; the message names the file and line."""


def default_config_file() -> Path:
    """Return the client's config file (it need not exist)."""
    return config_dir() / CONFIG_FILE


class Value(NamedTuple):
    """One setting and where it was set (``FILE:LINE``, ``command line`` or ``default``)."""

    value: Any
    origin: str


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError("must be a non-empty string")
    return v


def _port(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 < v < 65536:
        raise ValueError("must be a whole number from 1 to 65535")
    return v


def _seconds(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
        raise ValueError("must be a positive number of seconds")
    return float(v)


def _flag(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("must be true or false")
    return v


def _fingerprint(v: Any) -> str:
    try:
        return parse_fingerprint(_text(v))
    except ValueError:
        raise ValueError("must be SHA256: and 43 base64 characters, as the server prints it") from None


def _address(v: Any) -> str:
    text = _text(v)
    if any(c.isspace() for c in text) or "@" in text:
        raise ValueError("must be a host name or IP address (no spaces, no user@; the port goes in 'port')")
    return text[1:-1] if text.startswith("[") and text.endswith("]") else text


#: Each key a host (or [defaults]) may set: how it is checked, and what it means.
SETTINGS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "address": (_address, "the host name or IP address to connect to (default: the host's name)"),
    "port": (_port, "the server's port"),
    "user": (_text, "the user the server must run as"),
    "token_file": (_text, "the file holding the token"),
    "fingerprint": (_fingerprint, "the server's TLS fingerprint, SHA256:... (implies TLS)"),
    "tls": (_flag, "use TLS even on loopback (false leaves it to rsh: TLS beyond loopback and with a pin, always)"),
    "accept_new": (_flag, "pin a server seen for the first time without asking (implies TLS)"),
    "known_hosts": (_text, "the file of pinned fingerprints"),
    "shell": (_text, "the shell rsh exec runs the command with, on the server"),
    "timeout": (_seconds, "rsh exec's --timeout"),
    "connect_timeout": (_seconds, "give up connecting after this many seconds"),
}
_PATHS = ("token_file", "known_hosts")
# A host's name is typed on command lines and completed by shells.  (The
# patterns here are compiled on first use, by re, which keeps them: most
# `rsh exec`s have no config file to read.)
_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.%-]*$"


class HostConfig:
    """What the config file at *path* (text, as ``rsh.config.path_text`` writes it) says; empty when there is none."""

    # Not a dataclass: `rsh exec` loads this, and dataclasses (with inspect) would be a tenth of its start-up.
    def __init__(self, path: str) -> None:
        self.path = path
        self.defaults: dict[str, Value] = {}
        self.hosts: dict[str, dict[str, Value]] = {}
        #: Group name -> its hosts' names, each a host of ``hosts``.
        self.groups: dict[str, list[str]] = {}

    def settings(self, name: str) -> dict[str, Value]:
        """The file's settings for host *name*: ``[defaults]`` under the host's own (empty for an unknown name)."""
        return {**self.defaults, **self.hosts.get(name, {})}


def load_config(path: str | os.PathLike[str] | None = None) -> HostConfig:
    """Read the config file (default ``config.toml`` in the config directory); a missing file is an empty config.

    Raises:
        ConfigError: the file is unreadable, not TOML, or says something rsh does not take.
    """
    path = path_text(path) if path is not None else config_path(CONFIG_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return HostConfig(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    # Only now: tomllib (with datetime) is some 15% of a start-up that most `rsh exec`s, with no config file, need not pay.
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Its message ends "(at line N, column M)": put the line where ours go.
        m = re.search(r"^(.*) \(at line (\d+), column \d+\)$", str(exc))
        where, what = (f"{path}:{m.group(2)}", m.group(1)) if m else (str(path), str(exc))
        raise ConfigError(f"{where}: not valid TOML: {what}") from exc
    return _Reader(path, _Lines(text)).read(data)


class _Reader:
    """Checks the parsed file, naming the line of the first mistake."""

    def __init__(self, path: str, lines: _Lines) -> None:
        self.path = path
        self.lines = lines

    def fail(self, keys: tuple[str, ...], message: str, find: str | None = None) -> ConfigError:
        line = self.lines.line_of(keys, find)
        return ConfigError(f"{self.path}{f':{line}' if line else ''}: {message}")

    def read(self, data: Mapping[str, Any]) -> HostConfig:
        config = HostConfig(self.path)
        for key, value in data.items():
            if key not in ("defaults", "hosts", "groups"):
                raise self.fail((key,), f"unknown table or key {key!r} (expected [defaults], [hosts.NAME] or [groups])")
            if not isinstance(value, dict):
                raise self.fail((key,), f"{key} must be a table ([{key}])")
        config.defaults = self.settings(("defaults",), data.get("defaults", {}), host=False)
        for name, table in data.get("hosts", {}).items():
            if not re.match(_NAME, name):
                raise self.fail(("hosts", name), f"host name {name!r} must be letters, digits and . _ - % (it is typed on command lines)")
            if not isinstance(table, dict):
                raise self.fail(("hosts", name), f"hosts.{name} must be a table ([hosts.{name}])")
            config.hosts[name] = self.settings(("hosts", name), table, host=True)
        for name, members in data.get("groups", {}).items():
            keys = ("groups", name)
            if not re.match(_NAME, name):
                raise self.fail(keys, f"group name {name!r} must be letters, digits and . _ - %")
            if name in config.hosts:
                raise self.fail(keys, f"group {name!r} has the name of a host")
            if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
                raise self.fail(keys, f"groups.{name} must be a list of host names")
            for member in members:
                if member not in config.hosts:
                    raise self.fail(keys, f"group {name!r} names unknown host {member!r} (not in [hosts])", find=member)
            config.groups[name] = list(members)
        return config

    def settings(self, keys: tuple[str, ...], table: Mapping[str, Any], *, host: bool) -> dict[str, Value]:
        from pathlib import Path

        out: dict[str, Value] = {}
        dotted = ".".join(keys)
        for key, raw in table.items():
            if key not in SETTINGS or (key == "address" and not host):
                known = ", ".join(k for k in SETTINGS if host or k != "address")
                raise self.fail((*keys, key), f"unknown key {key!r} in [{dotted}] (known: {known})")
            check, _ = SETTINGS[key]
            try:
                value = check(raw)
            except ValueError as exc:
                raise self.fail((*keys, key), f"{dotted}.{key} {exc}, not {_shown(raw)}") from exc
            if key in _PATHS:
                value = str(Path(self.path).parent / Path(value).expanduser())
            out[key] = Value(value, f"{self.path}:{self.lines.line_of((*keys, key)) or '?'}")
        return out


def _shown(raw: Any) -> str:
    import json

    try:
        return json.dumps(raw, ensure_ascii=False)[:60]
    except (TypeError, ValueError):
        return repr(raw)[:60]


class _Lines:
    """Where tables and keys are in the file's text: (table..., key) -> line number.

    A light reading of TOML's line structure, not a parser: headers
    ``[a.b]``, keys ``k = ...`` and dotted keys, with multi-line arrays,
    inline tables and multi-line strings stepped over.  It only has to name
    a line for an error in a file tomllib has already accepted.
    """

    _HEADER = r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$"
    _KEY = r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""

    def __init__(self, text: str) -> None:
        self.text_lines = text.splitlines()
        #: Dotted path -> (first line, last line) of its header or key = value.
        self.spans: dict[tuple[str, ...], tuple[int, int]] = {}
        table: tuple[str, ...] = ()
        n, total = 0, len(self.text_lines)
        while n < total:
            line = self.text_lines[n]
            n += 1
            header = re.match(self._HEADER, line)
            if header:
                table = _dotted(header.group(1))
                self.spans.setdefault(table, (n, n))
                continue
            key = re.match(self._KEY, line)
            if not key:
                continue
            path = (*table, *_dotted(key.group(1)))
            first = n
            depth, in_string = _depth(line[key.end() :], 0, None)
            while (depth > 0 or in_string) and n < total:
                depth, in_string = _depth(self.text_lines[n], depth, in_string)
                n += 1
            self.spans.setdefault(path, (first, n))
            # Inline tables: their keys are on the line that holds them.
            for m in re.finditer(r"([A-Za-z0-9_-]+)\s*=", line[key.end() :]):
                self.spans.setdefault((*path, m.group(1)), (first, first))

    def line_of(self, keys: tuple[str, ...], find: str | None = None) -> int | None:
        """The line of *keys*, or of the nearest enclosing table that has one; with *find*, of that quoted text in its value."""
        for k in range(len(keys), 0, -1):
            span = self.spans.get(keys[:k])
            if span is None:
                continue
            if find is not None and k == len(keys):
                for n in range(span[0], span[1] + 1):
                    if n <= len(self.text_lines) and (f'"{find}"' in self.text_lines[n - 1] or f"'{find}'" in self.text_lines[n - 1]):
                        return n
            return span[0]
        return None


def _dotted(text: str) -> tuple[str, ...]:
    parts = re.findall(r""""([^"]*)"|'([^']*)'|([^.\s]+)""", text)
    return tuple(a or b or c for a, b, c in parts)


def _depth(text: str, depth: int, in_string: str | None) -> tuple[int, str | None]:
    """Bracket depth after *text*, outside strings; *in_string* is an open multi-line string's quotes."""
    i = 0
    while i < len(text):
        if in_string:
            end = text.find(in_string, i)
            if end < 0:
                return depth, in_string
            i, in_string = end + 3, None
            continue
        c = text[i]
        if c == "#":
            break
        if text.startswith(('"""', "'''"), i):
            in_string, i = text[i : i + 3], i + 3
            continue
        if c in "\"'":
            end = text.find(c, i + 1)
            while c == '"' and end > 0 and text[end - 1] == "\\":
                end = text.find(c, end + 1)
            i = end + 1 if end > 0 else len(text)
            continue
        depth += c in "[{"
        depth -= c in "]}"
        i += 1
    return depth, in_string
