"""``rsh demo wireshark`` and ``rsh demo capture``: installing the dissector, recording a session, and their errors."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from rsh.teach.capture import Capture
from rsh.teach.wireshark import dissector_path

from .conftest import rsh_argv, rsh_env

CAN_CAPTURE = shutil.which("dumpcap") or shutil.which("tshark")


def rsh_demo(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        rsh_argv("demo", *args),
        capture_output=True,
        text=True,
        env=rsh_env(tmp_path, HOME=str(tmp_path), NO_COLOR="1", **env),
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("rsh: "), r.stderr
    assert "Traceback" not in r.stderr
    return r.stderr


def test_wireshark_says_how_to_load_it(tmp_path: Path) -> None:
    r = rsh_demo(tmp_path, "wireshark")
    assert r.returncode == 0, r.stderr
    assert f"-X lua_script:{dissector_path()}" in r.stdout
    assert "Decode As" in r.stdout and "TLS" in r.stdout
    assert not (tmp_path / ".local").exists()  # nothing installed without --install


def test_wireshark_install_copies_it_to_the_plugin_folder(tmp_path: Path) -> None:
    r = rsh_demo(tmp_path, "wireshark", "--install")
    assert r.returncode == 0, r.stderr
    installed = tmp_path / ".local" / "lib" / "wireshark" / "plugins" / "rsh_wire.lua"
    assert installed.read_bytes() == dissector_path().read_bytes()
    assert f"installed: {installed}" in r.stdout
    r = rsh_demo(tmp_path, "wireshark", "--install")  # again: replaced, not an error
    assert r.returncode == 0, r.stderr


def test_wireshark_install_where_it_cannot(tmp_path: Path) -> None:
    (tmp_path / ".local").write_text("a file where the folder should be")
    r = rsh_demo(tmp_path, "wireshark", "--install")
    assert r.returncode == 1
    assert "cannot install the dissector" in one_line_error(r)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("capture",), "say which file to write"),
        (("coalesce", "x.pcapng"), "takes no file"),
        (("classic", "--install"), "--install goes with 'rsh demo wireshark' only"),
        (("wireshrak",), "no demo called 'wireshrak'"),
    ],
)
def test_usage_errors(tmp_path: Path, args: tuple[str, ...], said: str) -> None:
    r = rsh_demo(tmp_path, *args)
    assert r.returncode == 2
    assert said in one_line_error(r)


def test_capture_into_a_missing_directory(tmp_path: Path) -> None:
    r = rsh_demo(tmp_path, "capture", str(tmp_path / "nowhere" / "x.pcapng"))
    assert r.returncode == 1
    assert "no such directory" in one_line_error(r)


def test_capture_without_wireshark_says_what_to_install(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    r = rsh_demo(tmp_path, "capture", str(tmp_path / "x.pcapng"), PATH=str(empty))
    assert r.returncode == 1
    assert "apt-get install tshark" in one_line_error(r)
    assert not (tmp_path / "x.pcapng").exists()


def test_capture_not_permitted_says_what_to_do(tmp_path: Path) -> None:
    refused = Capture("/usr/bin/dumpcap", tmp_path / "x.pcapng", 7022)
    refused.said = ["dumpcap: You don't have permission to capture on that device"]
    text = refused.failure()
    assert "Run this as root" in text and "wireshark-common" in text and "cap_net_raw" in text


@pytest.mark.skipif(not CAN_CAPTURE, reason="dumpcap/tshark not installed (Debian/Ubuntu: apt-get install tshark)")
def test_capture_records_a_session(tmp_path: Path) -> None:
    pcap = tmp_path / "session.pcapng"
    r = rsh_demo(tmp_path, "capture", str(pcap))
    if r.returncode == 1 and "may not capture" in r.stderr:
        pytest.skip(r.stderr.strip())
    assert r.returncode == 0, r.stderr
    assert pcap.stat().st_size > 0
    assert f"wrote {pcap}" in r.stdout
    for frame in ("hello", "auth", "exec", "stdout", "stderr", "exit"):
        assert "rsh trace " in r.stdout and f'"type":"{frame}"' in r.stdout
    if shutil.which("tshark"):
        # Read back with the dissector: one line per rsh packet.
        assert "server -> hello" in r.stdout and "client -> exec(21 B)" in r.stdout
