"""``rsh demo wireshark [--install]``: where the rsh dissector is, and how to load it.

The dissector (``rsh_wire.lua`` beside this module) decodes rsh frames in
Wireshark and tshark under the protocol name ``rshwire`` (Wireshark's own
``rsh`` is BSD's remote shell).  ``--install`` copies it into the user's
personal Lua plugin folder, which Wireshark reads at start-up; without it
the ``-X lua_script:`` flag loads it for one run.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..protocol.address import DEFAULT_PORT
from .harness import DemoError
from .narrator import Narrator

__all__ = ["DISSECTOR_NAME", "PROTOCOL", "decode_as", "demo_wireshark", "dissector_path", "install_dissector", "lua_flag", "plugin_dir"]

DISSECTOR_NAME = "rsh_wire.lua"
#: The dissector's protocol (and display-filter) name.
PROTOCOL = "rshwire"


def dissector_path() -> Path:
    """The dissector shipped in the package."""
    return Path(__file__).resolve().with_name(DISSECTOR_NAME)


def plugin_dir() -> Path:
    """Wireshark's personal plugin folder on this system (Wireshark 2.5 and later)."""
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "Wireshark" / "plugins"
    # Linux, the BSDs and macOS alike: not under XDG_CONFIG_HOME.
    return Path.home() / ".local" / "lib" / "wireshark" / "plugins"


def lua_flag(path: Path | None = None) -> str:
    """The option that loads the dissector for one run of wireshark or tshark."""
    return f"-X lua_script:{path or dissector_path()}"


def decode_as(port: int) -> str:
    """The option that decodes *port* as rsh ("Decode As..." in the GUI); empty for the default port."""
    return "" if port == DEFAULT_PORT else f"-d tcp.port=={port},{PROTOCOL}"


def install_dissector(folder: Path | None = None) -> Path:
    """Copy the dissector into *folder* (default: ``plugin_dir()``); return where it went.

    Raises:
        DemoError: the folder cannot be made or written.
    """
    target_dir = folder or plugin_dir()
    target = target_dir / DISSECTOR_NAME
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dissector_path(), target)
    except OSError as exc:
        raise DemoError(f"cannot install the dissector in {target_dir}: {exc.strerror or exc}") from exc
    return target


def demo_wireshark(out: Narrator, install: bool = False, folder: Path | None = None) -> Path | None:
    """Say how to load the dissector, installing it first with *install*; return where it was installed."""
    out.title("wireshark", "rsh frames in Wireshark", "在 Wireshark 里看 rsh 的帧")
    installed = install_dissector(folder) if install else None
    where = installed or dissector_path()
    out.say(
        f"A Lua dissector for rsh's frames ships with rsh: {dissector_path()}. It is called {PROTOCOL!r} (Wireshark's own "
        "'rsh' is BSD's remote shell on port 514). It reassembles frames across TCP segments, shows the length prefix, "
        "each header field by name, the payload length and its first bytes, and flags a malformed frame as an error "
        f"with the code rsh's receiver would refuse it with. It decodes port {DEFAULT_PORT} by itself; for any other port "
        "use Analyze > Decode As... (TCP port, rshwire). TLS sessions (every server off loopback) cannot be decoded: "
        "that is what TLS is for.",
        f"rsh 自带一个 Lua 编写的 Wireshark 解析器：{dissector_path()}。它的协议名是 {PROTOCOL!r}（Wireshark 自己的 "
        "“rsh” 是 BSD 的远程 shell，端口 514）。它能跨 TCP 报文段重组帧，显示长度前缀、按名称列出每个头部字段、载荷长度和开头"
        f"几个字节，并把格式错误的帧标为错误，给出 rsh 接收端拒绝它时用的错误码。它自动解析端口 {DEFAULT_PORT}；其他端口请用 "
        "Analyze > Decode As...（TCP 端口，rshwire）。TLS 会话（所有不在回环地址上的服务端）无法解析：TLS 本来就是为此而设的。",
    )
    out.write()
    if installed:
        out.line(f"installed: {installed}", style="good")
        out.say(
            "Wireshark loads it at its next start: open a capture and filter on rshwire (Help > About > Plugins lists it).",
            "Wireshark 下次启动时会加载它：打开一个抓包文件，用 rshwire 过滤即可（Help > About > Plugins 中可以看到它）。",
            indent=2,
        )
    else:
        out.say(
            f"Load it for one run (-d: a port other than {DEFAULT_PORT}), or install it in your plugin folder:",
            f"临时加载一次（-d：端口不是 {DEFAULT_PORT} 时），或者安装到你的插件目录：",
            indent=2,
        )
        out.line(f"wireshark {lua_flag(where)} FILE.pcapng", style="head", indent=4)
        out.line(f"tshark -r FILE.pcapng {lua_flag(where)} -d tcp.port==PORT,{PROTOCOL} -O {PROTOCOL}", style="head", indent=4)
        out.line(f"rsh demo wireshark --install      # copies it to {plugin_dir()}", style="head", indent=4)
    out.say(
        "For a capture to open: rsh demo capture FILE.pcapng.",
        "想要一个可以打开的抓包文件：rsh demo capture FILE.pcapng。",
        indent=2,
    )
    return installed
