"""The command line as ssh users type it, and the config file of named hosts: each form parsed, then run against a real server."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import rsh
from rsh.errors import RemoteError

from .conftest import ROOT, Invoked, ServerFactory, ServerProcess, rsh_argv, rsh_env

USER = getpass.getuser()


def write_config(tmp: Path, text: str) -> Path:
    """*text* as the config file of a client whose config directory is ``tmp/config`` (``rsh_env(tmp)``'s)."""
    path = tmp / "config" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def alias(server: ServerProcess, name: str = "web1", **extra: object) -> str:
    """A ``[hosts.NAME]`` table for *server*."""
    lines = [f"[hosts.{name}]", 'address = "127.0.0.1"', f"port = {server.port}", f'token_file = "{server.token_file}"']
    lines += [f"{k} = {v!r}".replace("'", '"') if isinstance(v, str) else f"{k} = {str(v).lower()}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def run(tmp: Path, *args: str, input: bytes | None = None, **env: str) -> subprocess.CompletedProcess[bytes]:
    """``rsh ARGS`` with config directory ``tmp/config``, no terminal to ask on."""
    return subprocess.run(
        rsh_argv(*args),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        env=rsh_env(tmp, **env),
        timeout=60,
        start_new_session=True,
    )


# -- every form of the command line, run ----------------------------------------------------


@pytest.mark.parametrize(
    "argv, out",
    [
        # Options after HOST are rsh's, not the remote shell's.
        (["exec", "{addr}", "-n", "--", "cat; echo end"], b"end\n"),
        (["exec", "{addr}", "--token-file", "{token}", "--", "echo token after host"], b"token after host\n"),
        # The first word that is no option starts the command; what follows is the command's.
        (["exec", "{addr}", "echo", "a", "-n", "--timeout"], b"a -n --timeout\n"),
        (["exec", "--", "{addr}", "echo", "after", "--"], b"after --\n"),
        (["exec", "-p", "{port}", "127.0.0.1", "echo", "dash p"], b"dash p\n"),
        (["exec", "127.0.0.1", "-p{port}", "echo", "dash p after"], b"dash p after\n"),
        (["exec", "-p", "{port}", "{addr}", "echo", "both, the same"], b"both, the same\n"),
        (["exec", "{user}@{addr}", "echo", "as me"], b"as me\n"),
        (["exec", "web1", "echo", "alias"], b"alias\n"),
        (["exec", "{user}@web1", "-n", "echo", "user and alias"], b"user and alias\n"),
        # ssh's own form: rsh HOST CMD.
        (["web1", "echo", "implicit exec"], b"implicit exec\n"),
        (["-n", "web1", "--", "cat; echo implicit"], b"implicit\n"),
    ],
)
def test_exec_forms(server: ServerProcess, tmp_path: Path, argv: list[str], out: bytes) -> None:
    write_config(tmp_path, alias(server))
    words = [w.format(addr=server.address, port=server.port, token=server.token_file, user=USER) for w in argv]
    env = {} if "--token-file" in argv or "web1" in " ".join(argv) else {"RSH_TOKEN": server.token}
    r = run(tmp_path, *words, input=b"not for the command\n", **env)
    assert (r.returncode, r.stdout, r.stderr) == (0, out, b"")


def test_timeout_after_host_is_rshs(server: ServerProcess, tmp_path: Path) -> None:
    r = run(tmp_path, "exec", server.address, "--timeout", "0.3", "--", "sleep 30", RSH_TOKEN=server.token)
    assert r.returncode == 124 and r.stderr.startswith(b"rsh: command timed out")


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_ipv6_address_in_brackets_and_in_the_config(make_server: ServerFactory, tmp_path: Path) -> None:
    try:
        s = make_server("--host", "::1")
    except RuntimeError:
        pytest.skip("no IPv6 loopback")
    r = run(tmp_path, "exec", f"[::1]:{s.port}", "echo", "six", RSH_TOKEN=s.token)
    assert (r.returncode, r.stdout) == (0, b"six\n")
    write_config(tmp_path, f'[hosts.six]\naddress = "::1"\nport = {s.port}\ntoken_file = "{s.token_file}"\n')
    r = run(tmp_path, "exec", f"{USER}@six", "echo", "six by name")
    assert (r.returncode, r.stdout) == (0, b"six by name\n")


def test_another_user_is_refused_before_anything_runs(server: ServerProcess, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    r = run(tmp_path, "exec", f"not-{USER}@{server.address}", "--", f"touch '{marker}'", RSH_TOKEN=server.token)
    assert (r.returncode, r.stderr.decode()) == (
        255,
        f"rsh: {server.address} runs as {USER}, not not-{USER}: an rsh server runs every command as its own user; "
        "drop the user name, or reach a server that user runs\n",
    )
    config = write_config(tmp_path, alias(server, user=f"not-{USER}"))
    r = run(tmp_path, "exec", "web1", "--", f"touch '{marker}'")
    assert r.returncode == 255 and f"(user set in {config}:5)".encode() in r.stderr
    r = run(tmp_path, "put", str(config), "web1:")
    assert r.returncode == 255 and f"not not-{USER}".encode() in r.stderr
    assert not marker.exists()


def test_put_and_get_in_scps_form_and_with_options_anywhere(server: ServerProcess, tmp_path: Path) -> None:
    write_config(tmp_path, alias(server))
    home = Path(os.path.expanduser("~"))
    name = f"rsh-test-{os.getpid()}-{tmp_path.name}"
    src = tmp_path / "x"
    src.write_bytes(b"scp form\n")
    try:
        assert run(tmp_path, "put", str(src), f"web1:{name}").returncode == 0
        assert (home / name).read_bytes() == b"scp form\n"
        assert run(tmp_path, "get", f"web1:{name}", str(tmp_path / "back")).returncode == 0
        assert (tmp_path / "back").read_bytes() == b"scp form\n"
        # HOST first, options after it and after the paths.
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "f").write_bytes(b"tree\n")
        assert run(tmp_path, "put", "web1", "--resume", str(tmp_path / "d"), f"{name}.d", "-r").returncode == 0
        assert (home / f"{name}.d" / "f").read_bytes() == b"tree\n"
        r = run(tmp_path, "get", f"web1:{name}", "other:x", str(tmp_path))
        assert (r.returncode, r.stderr.count(b"\n")) == (2, 1) and b"every REMOTE must be on the same host" in r.stderr
    finally:
        (home / name).unlink(missing_ok=True)
        shutil.rmtree(home / f"{name}.d", ignore_errors=True)


# -- the config file ------------------------------------------------------------------------


def test_the_command_line_overrides_the_file(server: ServerProcess, tmp_path: Path) -> None:
    # The file's port is wrong and its timeout short: -p and --timeout win.
    config = write_config(tmp_path, "[defaults]\ntimeout = 0.2\n\n" + alias(server).replace(str(server.port), "1"))
    r = run(tmp_path, "exec", "web1", "-p", str(server.port), "--timeout", "30", "--", "sleep 0.5; echo waited")
    assert (r.returncode, r.stdout) == (0, b"waited\n")
    r = run(tmp_path, "exec", "web1", "-p", str(server.port), "--", "sleep 5")
    assert r.returncode == 124  # [defaults]' timeout
    r = run(tmp_path, "config", "web1", "-p", str(server.port))
    lines = {line.split()[0]: line for line in r.stdout.decode().splitlines()}
    assert lines["port"].split()[1:] == [str(server.port), "#", "command", "line"]
    assert lines["timeout"].split()[1:] == ["0.2", "#", f"{config}:2"]
    assert lines["address"].split()[1:] == ["127.0.0.1", "#", f"{config}:5"]
    assert lines["tls"].split()[1] == "no" and "loopback without a pin" in lines["tls"]


def test_shell_and_defaults_from_the_file(server: ServerProcess, tmp_path: Path) -> None:
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    write_config(tmp_path, alias(server, shell="bash"))
    r = run(tmp_path, "exec", "web1", "--", 'echo "${BASH_VERSION:+bash}" "$0"')
    assert (r.returncode, r.stdout) == (0, b"bash bash\n")


def test_config_lists_the_hosts_and_groups(server: ServerProcess, invoke: Callable[..., Invoked], tmp_path: Path) -> None:
    config = write_config(tmp_path, alias(server) + alias(server, "web2") + '[groups]\nweb = ["web1", "web2"]\n')
    r = invoke("config")
    assert (r.code, r.stdout) == (0, f"# {config}\nhost web1  # 127.0.0.1\nhost web2  # 127.0.0.1\ngroup web web1 web2\n")


@pytest.mark.parametrize(
    "text, line, says",
    [
        ("[hosts.web1]\nport = 'x'\n", 2, 'hosts.web1.port must be a whole number from 1 to 65535, not "x"'),
        ("[hosts.web1]\naddress = 'a'\nprot = 7022\n", 3, "unknown key 'prot' in [hosts.web1] (known: address, port,"),
        ("# hosts\n[hosts]\nweb1 = { address = 'a', port = 0 }\n", 3, "hosts.web1.port must be a whole number from 1 to 65535, not 0"),
        ("[hosts.web1]\ntls = 'yes'\n", 2, 'hosts.web1.tls must be true or false, not "yes"'),
        ("[hosts.web1]\n\ntimeout = -1\n", 3, "hosts.web1.timeout must be a positive number of seconds, not -1"),
        ("[hosts.web1]\nfingerprint = 'MD5:xx'\n", 2, "hosts.web1.fingerprint must be SHA256: and 43 base64 characters"),
        ("[defaults]\naddress = 'x'\n", 2, "unknown key 'address' in [defaults]"),
        ("[hosts.web1]\n[groups]\nweb = [\n  'web1',\n  'nosuch',\n]\n", 5, "group 'web' names unknown host 'nosuch' (not in [hosts])"),
        ("port = 1\n", 1, "unknown table or key 'port' (expected [defaults], [hosts.NAME] or [groups])"),
        ('[hosts."a b"]\n', 1, "host name 'a b' must be letters, digits and . _ - %"),
        ("[hosts.web1\nport = 1\n", 1, "not valid TOML: Expected ']' at the end of a table declaration"),
        ("[hosts.web1]\nport = 1\nport = 2\n", 3, "not valid TOML:"),
    ],
)
def test_config_mistakes_name_the_file_and_line(invoke: Callable[..., Invoked], tmp_path: Path, text: str, line: int, says: str) -> None:
    config = write_config(tmp_path, text)
    for argv in (["config", "web1"], ["exec", "web1", "true"], ["web1"]):
        r = invoke(*argv)
        assert r.code == 255 and r.stderr.startswith(f"rsh: {config}:{line}: {says}") and r.stderr.count("\n") == 1, r.stderr


def test_a_named_config_file_must_exist(invoke: Callable[..., Invoked], tmp_path: Path) -> None:
    r = invoke("exec", "-F", str(tmp_path / "none.toml"), "web1", "true")
    assert (r.code, r.stderr) == (255, f"rsh: config file {tmp_path / 'none.toml'} does not exist\n")


def test_an_unknown_name_says_it_is_not_in_the_file_either(invoke: Callable[..., Invoked], tmp_path: Path) -> None:
    config = write_config(tmp_path, '[hosts.web1]\naddress = "127.0.0.1"\n')
    r = invoke("exec", "no-such-host.invalid", "true")
    assert r.code == 255 and r.stderr.endswith(f"(and 'no-such-host.invalid' is not a host in {config})\n") and r.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "argv, says",
    [
        (["exec", "h", "-p", "0", "true"], "rsh: -p: invalid port '0'"),
        (["exec", "h:1", "-p", "2", "true"], "rsh: two ports for h:1: -p 2 and :1"),
        (["exec", "[::1", "true"], "rsh: unclosed or empty '['"),
        (["exec", "@h", "true"], "rsh: empty user name before '@'"),
        (["exec", "h", "--no-such-option", "true"], "unrecognized arguments: --no-such-option"),
        (["exec", "h", "-n"], "rsh: no command given"),
        (["connect", "h", "uptime"], "unexpected 'uptime' after HOST (to run a command: rsh exec HOST -- CMD)"),
        (["config", "a", "b"], "rsh: one HOST at a time"),
        (["completion"], "rsh: which shell? rsh completion bash|zsh|fish"),
    ],
)
def test_usage_errors(invoke: Callable[..., Invoked], argv: list[str], says: str) -> None:
    r = invoke(*argv)
    assert r.code == 2 and says in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_version_says_the_protocol(invoke: Callable[..., Invoked]) -> None:
    r = invoke("--version")
    assert (r.code, r.stdout) == (0, f"rsh {rsh.__version__} (protocol version 1)\n")


# -- TLS follows the pin --------------------------------------------------------------------


def test_accept_new_alone_means_tls(tls_server: ServerProcess, tmp_path: Path) -> None:
    r = run(tmp_path, "exec", tls_server.address, "--accept-new", "--", "echo pinned", RSH_TOKEN=tls_server.token)
    assert (r.returncode, r.stdout) == (0, b"pinned\n") and b"rsh: pinned" in r.stderr
    assert (tmp_path / "config" / "known_hosts").read_text() == f"{tls_server.address} {tls_server.fingerprint}\n"


def test_a_fingerprint_in_the_file_means_tls(tls_server: ServerProcess, tmp_path: Path) -> None:
    write_config(tmp_path, alias(tls_server, "secure", fingerprint=tls_server.fingerprint))
    r = run(tmp_path, "exec", "secure", "echo", "over tls")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"over tls\n", b"")
    assert not (tmp_path / "config" / "known_hosts").exists()


def test_a_tls_server_with_no_pin_is_asked_about_on_a_terminal(tls_server: ServerProcess, tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    argv = rsh_argv("exec", tls_server.address, "--", "echo answered")
    env = rsh_env(tmp_path, RSH_TOKEN=tls_server.token)
    with contextlib.closing(pexpect.spawn(argv[0], argv[1:], env=env, cwd=str(ROOT), timeout=30)) as child:
        child.expect(r"\(yes/no/\[fingerprint\]\)\? ")
        child.sendline("yes")
        child.expect("answered")
        child.expect(pexpect.EOF)
    assert child.exitstatus == 0
    assert (tmp_path / "config" / "known_hosts").read_text() == f"{tls_server.address} {tls_server.fingerprint}\n"


# -- a denied peer is told so, with TLS or without ---------------------------------------------


@pytest.mark.parametrize("serve_tls", [True, False], ids=["tls-server", "plain-server"])
async def test_a_denied_peer_is_told_so_over_tls(make_server: ServerFactory, tmp_path: Path, serve_tls: bool) -> None:
    s = make_server(*(["--tls"] if serve_tls else []), "--deny", "127.0.0.1")
    said = f"{s.address} refused the connection: connections from 127.0.0.1 are not allowed here"
    for flags in (["--tls"], ["--accept-new"]) if serve_tls else (["--tls"],):
        r = run(tmp_path, "exec", *flags, s.address, "--", "true", RSH_TOKEN=s.token)
        assert (r.returncode, r.stderr.decode()) == (255, f"rsh: {said}\n")
    with pytest.raises(RemoteError) as info:
        rsh.connect(s.host, s.port, s.token, tls=True)
    assert (info.value.code, str(info.value)) == ("access_denied", said)
    with pytest.raises(RemoteError) as info:
        await rsh.connect_async(s.host, s.port, s.token, tls=True)
    assert (info.value.code, str(info.value)) == ("access_denied", said)


# -- shell completion -----------------------------------------------------------------------


@pytest.fixture
def on_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has our rsh as ``rsh``, as an installed one would be."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "rsh").write_text(f'#!/bin/sh\nexec {sys.executable} -m rsh "$@"\n')
    (bin_dir / "rsh").chmod(0o755)
    env = rsh_env(tmp_path)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env


def bash_complete(env: dict[str, str], *words: str) -> list[str]:
    """What the bash script offers for the last of *words* (the word being completed)."""
    script = 'source <(rsh completion bash); COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _rsh; printf "%s\\n" "${COMPREPLY[@]}"'
    r = subprocess.run(["bash", "-c", script, "bash", "rsh", *words], env=env, capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    return sorted(w for w in r.stdout.decode().splitlines() if w)


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion_loads_and_completes_hosts_subcommands_and_options(server: ServerProcess, tmp_path: Path, on_path: dict[str, str]) -> None:
    write_config(tmp_path, alias(server) + alias(server, "web2") + alias(server, "db"))
    r = subprocess.run(["bash", "-c", "source <(rsh completion bash); complete -p rsh"], env=on_path, capture_output=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, b"complete -F _rsh rsh\n")
    assert bash_complete(on_path, "we") == ["web1", "web2"]
    assert bash_complete(on_path, "ex") == ["exec"]
    assert bash_complete(on_path, "exec", "-n", "--timeout", "5", "d") == ["db"]
    assert bash_complete(on_path, "exec", "web1", "--time") == ["--timeout"]
    assert bash_complete(on_path, "-p", "7022", "w") == ["web1", "web2"]
    assert bash_complete(on_path, "completion", "") == ["bash", "fish", "zsh"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_every_script_knows_every_option(invoke: Callable[..., Invoked], shell: str) -> None:
    r = invoke("completion", shell)
    assert r.code == 0
    for option in ("--accept-new", "--fingerprint", "--timeout", "--no-tls", "--resume"):
        name = option if shell != "fish" else f"-l {option[2:]}"
        assert name in r.stdout, option
    if shutil.which(shell) is not None and shell != "bash":
        check = ["zsh", "-n"] if shell == "zsh" else ["fish", "--no-execute"]
        assert subprocess.run([*check], input=r.stdout.encode(), capture_output=True, timeout=60).returncode == 0


# -- the pieces ---------------------------------------------------------------------------------


def test_a_flag_added_to_a_parser_is_known_to_the_split() -> None:
    # What issue 12's -t / -tt and --no-pty will need: one add_argument line, nothing here.
    import argparse

    from rsh.cli.argv import COMMAND, split_words

    p = argparse.ArgumentParser()
    p.add_argument("-t", action="count")
    p.add_argument("-p")
    p.add_argument("--no-pty", action="store_true")
    words = split_words(p, ["-tt", "h", "--no-pty", "-p", "1", "-tp2", "top", "-b", "--", "x"], COMMAND)
    assert words == (["-tt", "--no-pty", "-p", "1", "-tp2"], ["h"], ["top", "-b", "--", "x"])
    assert split_words(p, ["h", "--", "-t"], COMMAND).command == ["-t"]
    assert split_words(p, ["h", "-t"], COMMAND).command is None


def test_accept_new_means_tls_to_the_library_too(tmp_path: Path) -> None:
    from rsh.client.known_hosts import ServerPin

    assert not ServerPin("127.0.0.1", 1, known_hosts=tmp_path / "kh").wants_tls(None)
    assert ServerPin("127.0.0.1", 1, known_hosts=tmp_path / "kh", accept_new=True).wants_tls(None)


def test_the_prompt_by_name(server: ServerProcess, tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    from .test_prompt import PROMPT

    write_config(tmp_path, alias(server))
    argv = rsh_argv(f"{USER}@web1", "--vi")
    env = rsh_env(tmp_path, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
    with contextlib.closing(pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8", timeout=30, dimensions=(40, 200))) as child:
        child.expect(PROMPT)
        child.sendline("echo by name")
        child.expect("by name\r\n")
        child.expect(PROMPT)
        child.sendline("exit 3")
        child.expect(pexpect.EOF)
    assert child.exitstatus == 3
