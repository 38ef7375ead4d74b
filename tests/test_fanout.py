"""Many hosts at once: ``rsh exec/put/get -H/-g/-f`` through the real ``rsh``, and ``rsh.Group`` / ``rsh.AsyncGroup``.

One fleet of servers on 127.0.0.1 for the module, each with a home of its
own, told by its environment how its commands behave: most print the same,
one exits 3, one is slow, one prints something else; one is stopped (its
port refuses) and one is reached with the wrong token.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import rsh
from rsh.errors import AuthError, ConnectError, GroupFailed

from .conftest import Invoked, ServerFactory, ServerProcess, rsh_argv, rsh_env, wait_until

# name -> the environment its server runs with (read by COMMAND).
ROLES: dict[str, dict[str, str]] = {
    **{f"s{i}": {} for i in range(8)},
    "three": {"FAN_CODE": "3"},
    "slow": {"FAN_DELAY": "0.4"},
    "odd": {"FAN_OUT": "something else"},
}
GOOD = [f"s{i}" for i in range(8)]
STOPPED, WRONG_TOKEN = "stopped", "badtoken"
COMMAND = 'echo "hello from $FAN_NAME"; echo same; [ -z "$FAN_OUT" ] || echo "$FAN_OUT"; printf "no newline"; sleep "${FAN_DELAY:-0}"; exit "${FAN_CODE:-0}"'


class Fleet:
    def __init__(self, root: Path, servers: dict[str, ServerProcess]) -> None:
        self.root = root
        self.servers = servers

    def run(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            rsh_argv(*args),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            env=rsh_env(self.root),
            timeout=60,
            start_new_session=True,
        )

    def home(self, name: str) -> Path:
        return Path(self.servers[name].env["HOME"])

    def member(self, name: str) -> rsh.Member:
        if name == STOPPED:
            return rsh.Member(name, "127.0.0.1", self.stopped_port, "x")
        s = self.servers["s0" if name == WRONG_TOKEN else name]
        return rsh.Member(name, s.host, s.port, "wrong" if name == WRONG_TOKEN else s.token)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    factory = ServerFactory(root / "servers")
    servers: dict[str, ServerProcess] = {}

    def start(name: str) -> None:
        home = root / "homes" / name
        home.mkdir(parents=True)
        # No delay before a wrong token is answered: the test of one need not wait a second for it.
        servers[name] = factory("--auth-fail-delay", "0", where=root / "servers" / name, env_extra={"HOME": str(home), "FAN_NAME": name, **ROLES.get(name, {})})

    try:
        threads = [threading.Thread(target=start, args=(n,)) for n in [*ROLES, STOPPED]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(servers) == len(ROLES) + 1, "a server did not start"
        servers[STOPPED].stop()
        (root / "wrong.token").write_text("not the token\n")
        lines = []
        for name in [*ROLES, STOPPED, WRONG_TOKEN]:
            s = servers["s0" if name == WRONG_TOKEN else name]
            token = root / "wrong.token" if name == WRONG_TOKEN else s.token_file
            lines += [f"[hosts.{name}]", 'address = "127.0.0.1"', f"port = {s.port}", f'token_file = "{token}"']
        everyone = [*ROLES, STOPPED, WRONG_TOKEN]
        lines += ["[groups]", f"good = {json.dumps(GOOD)}", f"all = {json.dumps(everyone)}"]
        config = root / "config" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text("\n".join(lines) + "\n")
        f = Fleet(root, servers)
        f.stopped_port = servers[STOPPED].port  # type: ignore[attr-defined]
        yield f
    finally:
        factory.close()


def lines_of(data: bytes) -> list[str]:
    return data.decode().splitlines()


# -- the command line --------------------------------------------------------------------


def test_live_lines_are_prefixed_and_a_last_partial_line_is_ended(fleet: Fleet) -> None:
    r = fleet.run("exec", "-g", "all", "--", COMMAND)
    out = lines_of(r.stdout)
    for name in [*GOOD, "three", "slow", "odd"]:
        assert f"{name}: hello from {name}" in out
        assert f"{name}: same" in out
        assert f"{name}: no newline" in out
        # Each host's own lines come in its order.
        assert out.index(f"{name}: hello from {name}") < out.index(f"{name}: no newline")
    assert "odd: something else" in out
    assert len(out) == 3 * 11 + 1
    err = r.stderr.decode()
    assert "rsh: three: exit status 3\n" in err
    assert f"rsh: {STOPPED}: unreachable: cannot connect to 127.0.0.1:{fleet.stopped_port}" in err
    assert f"rsh: {WRONG_TOKEN}: not authenticated: " in err
    assert "HOST" not in err  # no summary off a terminal unless asked
    assert r.returncode == 255


@pytest.mark.parametrize(
    "hosts, status",
    [("s0,s1", 0), ("s0,three", 3), ("s0,three," + STOPPED, 255), (f"{WRONG_TOKEN},s1", 255)],
)
def test_exit_status(fleet: Fleet, hosts: str, status: int) -> None:
    r = fleet.run("exec", "-H", hosts, "-n", "--", COMMAND)
    assert r.returncode == status, r.stderr


def test_group_prints_each_distinct_output_once(fleet: Fleet) -> None:
    r = fleet.run("exec", "--group", "-H", "s0,s1,odd,s2", "--", 'echo same; [ -z "$FAN_OUT" ] || echo "$FAN_OUT"; echo oops >&2')
    rule = "-" * 15
    assert r.stdout.decode() == f"{rule}\ns0,s1,s2 (3)\n{rule}\nsame\n{rule}\nodd (1)\n{rule}\nsame\nsomething else\n"
    # The rule grows with the names.
    assert r.stderr.decode() == f"{'-' * 16}\ns0,s1,odd,s2 (4)\n{'-' * 16}\noops\n"
    assert r.returncode == 0


def test_out_dir_has_each_hosts_stdout_and_stderr(fleet: Fleet, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = fleet.run("exec", "--out-dir", str(out), "-H", f"s0,three,{STOPPED}", "--", 'echo "out $FAN_NAME"; echo "err $FAN_NAME" >&2; exit "${FAN_CODE:-0}"')
    assert r.stdout == b""
    assert sorted(p.name for p in out.iterdir()) == ["s0.stderr", "s0.stdout", f"{STOPPED}.stderr", f"{STOPPED}.stdout", "three.stderr", "three.stdout"]
    assert (out / "s0.stdout").read_text() == "out s0\n"
    assert (out / "three.stderr").read_text() == "err three\n"
    assert (out / f"{STOPPED}.stdout").read_text() == ""
    assert r.returncode == 255


def test_summary_table_says_why(fleet: Fleet) -> None:
    r = fleet.run("exec", "--summary", "-H", f"s0,three,{STOPPED},{WRONG_TOKEN}", "--", "printf 12345; exit ${FAN_CODE:-0}")
    table = lines_of(r.stderr)
    rows = {line.split()[0]: line for line in table[table.index(next(t for t in table if t.startswith("HOST"))) + 1 : -1]}
    assert list(rows) == ["s0", "three", STOPPED, WRONG_TOKEN]
    assert rows["s0"].split()[2:] == ["5", "ok"]
    assert rows["three"].endswith("exit status 3")
    assert "unreachable: cannot connect" in rows[STOPPED]
    assert "not authenticated:" in rows[WRONG_TOKEN]
    assert table[-1] == "4 hosts: 1 ok, 1 failed, 2 unreachable"


def test_stdin_goes_to_every_host_and_f_reads_a_file(fleet: Fleet, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("# web\ns0\n\n  s1   # the other\ns0\n")
    r = fleet.run("exec", "-f", str(hosts), "--", "cat", input=b"one\ntwo\n")
    assert sorted(lines_of(r.stdout)) == ["s0: one", "s0: two", "s1: one", "s1: two"]
    assert r.returncode == 0


def test_j_bounds_how_many_run_at_once_as_the_servers_saw_it(fleet: Fleet) -> None:
    names = ["s3", "s4", "s5", "s6", "s7"]
    before = {n: len(fleet.servers[n].audit_records("command")) for n in names}
    r = fleet.run("exec", "-j", "2", "-H", ",".join(names), "-n", "--", "sleep 0.3")
    assert r.returncode == 0, r.stderr

    def new(n: str) -> list[dict]:  # type: ignore[type-arg]
        return fleet.servers[n].audit_records("command")[before[n] :]

    assert wait_until(lambda: all(new(n) for n in names))
    spans = []
    for n in names:
        (record,) = new(n)
        start = datetime.datetime.fromisoformat(record["time"].replace("Z", "+00:00")).timestamp()
        spans.append((start, start + record["duration"]))
    # At each start, how many were running (a millisecond's rounding allowed).
    most = max(sum(1 for s, e in spans if s <= start < e - 0.01) for start, _ in spans)
    assert most <= 2


def test_put_and_get_on_many_hosts(fleet: Fleet, tmp_path: Path) -> None:
    src = tmp_path / "app.conf"
    src.write_text("setting = 1\n")
    r = fleet.run("put", "-H", "s0,s1", "--summary", str(src), "app.conf")
    assert r.returncode == 0, r.stderr
    assert "2 hosts: 2 ok" in r.stderr.decode()
    for name in ("s0", "s1"):
        assert (fleet.home(name) / "app.conf").read_text() == "setting = 1\n"
        (fleet.home(name) / "app.conf").write_text(f"changed on {name}\n")
    got = tmp_path / "got"
    r = fleet.run("get", "-H", f"s0,s1,{STOPPED}", "app.conf", str(got))
    assert r.returncode == 255
    assert (got / "s0" / "app.conf").read_text() == "changed on s0\n"
    assert (got / "s1" / "app.conf").read_text() == "changed on s1\n"
    assert f"rsh: {STOPPED}: unreachable" in r.stderr.decode()
    r = fleet.run("get", "-H", "s0,s1", "no-such-file", str(got))
    assert r.returncode == 1
    assert "rsh: s0: failed: " in r.stderr.decode()
    r = fleet.run("put", "-H", "s2,s3", "-", "from-stdin", input=b"piped\n")
    assert r.returncode == 0, r.stderr
    assert (fleet.home("s2") / "from-stdin").read_bytes() == (fleet.home("s3") / "from-stdin").read_bytes() == b"piped\n"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["exec", "-g", "nope", "--", "true"], "rsh: -g nope: no such group in "),
        (["exec", "-f", "/nonexistent/hosts", "--", "true"], "rsh: -f /nonexistent/hosts: cannot read it: No such file or directory"),
        (["exec", "-H", "s0", "-j", "0", "true"], "rsh: -j 0: must be at least 1"),
        (["exec", "-H", "s0", "-t", "true"], "rsh: -t takes one host, not -H/-g/-f"),
        (["exec", "-H", "s0", "--group", "--out-dir", "x", "true"], "rsh: --group and --out-dir: choose one"),
        (["exec", "-H", "s0"], "rsh: no command given: rsh exec -H HOST,... -- CMD"),
        (["exec", "-H", ",", "true"], "rsh: -H/-g/-f named no hosts"),
        (["exec", "-H", "a:99999", "true"], "rsh: "),
        (["get", "-H", "s0", "f", "-"], "rsh: get -H writes to DIR/HOST/ for each host, not to '-'"),
        (["put", "-H", "s0", "f"], "rsh: put -H needs at least two paths: LOCAL... REMOTE"),
        (["exec"], "rsh: the following arguments are required: HOST[:PORT] (or -H/-g/-f for many hosts)"),
    ],
)
def test_bad_command_lines_say_what_in_one_line(invoke: Callable[..., Invoked], tmp_path: Path, argv: list[str], message: str) -> None:
    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[hosts.s0]\naddress = "127.0.0.1"\n[groups]\nweb = ["s0"]\n')
    r = invoke(*argv)
    assert r.code == 2
    assert r.stderr.startswith(message) and r.stderr.count("\n") == 1, r.stderr


def test_implicit_exec_form_and_options_after_the_hosts(fleet: Fleet) -> None:
    r = fleet.run("-H", "s0,s1", "echo", "-n", "x")  # -n is the remote echo's
    assert sorted(lines_of(r.stdout)) == ["s0: x", "s1: x"]


def test_a_reader_that_leaves_stops_every_host_quietly(fleet: Fleet) -> None:
    with subprocess.Popen(rsh_argv("exec", "-H", "s0,s1", "-n", "--", "yes"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=rsh_env(fleet.root)) as p:
        assert p.stdout is not None and p.stderr is not None
        assert p.stdout.readline().endswith(b": y\n")
        p.stdout.close()
        assert p.wait(60) == 141
        assert p.stderr.read() == b""


def test_a_name_neither_in_dns_nor_the_config_file_says_so(fleet: Fleet) -> None:
    r = fleet.run("exec", "-H", "s0,no-such-host.invalid", "--", "true")
    assert r.returncode == 255
    assert "(and 'no-such-host.invalid' is not a host in " in r.stderr.decode()


# -- the Python API -------------------------------------------------------------------------


def check_mixed(results: rsh.GroupResult) -> None:
    assert list(results) == ["s0", "three", "odd", STOPPED, WRONG_TOKEN]
    assert results["s0"].stdout_text == "hello from s0\nsame\nno newline"
    assert results["three"].exit_code == 3
    assert "something else" in results["odd"].stdout_text
    assert isinstance(results[STOPPED], ConnectError)
    assert isinstance(results[WRONG_TOKEN], AuthError)
    assert set(results.succeeded) == {"s0", "odd"}
    assert set(results.failed) == {"three", STOPPED, WRONG_TOKEN}
    assert not results.ok and set(results.elapsed) == set(results)


MIXED = ["s0", "three", "odd", STOPPED, WRONG_TOKEN]


def test_group_run_put_get_and_check(fleet: Fleet, tmp_path: Path) -> None:
    seen: list[tuple[str, bytes]] = []
    lock = threading.Lock()

    def took(host: str, data: bytes) -> None:
        with lock:
            seen.append((host, data))

    with rsh.Group([fleet.member(n) for n in MIXED], limit=2) as group:
        check_mixed(group.run(COMMAND, on_stdout=took))
        assert b"".join(d for h, d in seen if h == "three") == b"hello from three\nsame\nno newline"
    with rsh.Group([fleet.member(n) for n in ("s0", "three", STOPPED)]) as group:
        with pytest.raises(GroupFailed) as caught:
            group.run("exit ${FAN_CODE:-0}", check=True)
        assert "failed on 2 of 3 hosts: three, stopped" in str(caught.value)
        assert caught.value.result["s0"].ok and caught.value.result["three"].exit_code == 3
    with rsh.Group([fleet.member(n) for n in ("s4", "s5")]) as group:
        (tmp_path / "f").write_text("data\n")
        assert group.put(tmp_path / "f", "group-f", check=True).ok
        assert group.run("cat group-f").succeeded["s5"].stdout == b"data\n"  # the kept connection, again
        got = group.get("group-f", tmp_path / "got", check=True)
        assert got["s4"].files == 1 and (tmp_path / "got" / "s4" / "group-f").read_text() == "data\n"
        assert (tmp_path / "got" / "s5" / "group-f").exists()


def test_group_takes_addresses_with_one_token(fleet: Fleet) -> None:
    s = fleet.servers["s6"]
    with rsh.Group([s.address], s.token) as group:
        assert group.run("echo hi")[s.address].stdout == b"hi\n"
    with pytest.raises(ValueError, match="named more than once"):
        rsh.Group([s.address, s.address])


async def test_async_group_the_same(fleet: Fleet, tmp_path: Path) -> None:
    async with rsh.AsyncGroup([fleet.member(n) for n in MIXED], limit=2) as group:
        check_mixed(await group.run(COMMAND))
    async with rsh.AsyncGroup([fleet.member(n) for n in ("s0", "three", STOPPED)]) as group:
        with pytest.raises(GroupFailed) as caught:
            await group.run("exit ${FAN_CODE:-0}", check=True)
        assert set(caught.value.result.failed) == {"three", STOPPED}
        assert (await group.run("echo again"))["s0"].stdout == b"again\n"
    async with rsh.AsyncGroup([fleet.member(n) for n in ("s6", "s7")]) as group:
        (tmp_path / "f").write_text("async\n")
        assert (await group.put(str(tmp_path / "f"), "async-f", check=True)).ok
        got = await group.get("async-f", tmp_path / "got", check=True)
        assert (tmp_path / "got" / "s7" / "async-f").read_text() == "async\n" and got.ok


def test_the_prompt_for_many_hosts_sends_each_line_to_every_host(fleet: Fleet) -> None:
    import pexpect

    argv = rsh_argv("-H", "s0,s1", "-H", STOPPED)
    child = pexpect.spawn(argv[0], argv[1:], env=rsh_env(fleet.root, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1"), encoding="utf-8", timeout=30)
    try:
        child.expect(r"3/3 hosts\$")
        child.sendline("cd /tmp; echo same")
        child.expect(r"s0,s1 \(2\)")  # identical output, once, under both hosts
        child.expect("same")
        child.expect(f"rsh: {STOPPED}: unreachable")
        child.expect(r"\[255\] 2/3 hosts\$")  # the prompt says who is still there
        child.sendline('echo "in $PWD as $FAN_NAME"')  # cd lived on, on each host
        child.expect(r"s0 \(1\)")
        child.expect("in /tmp as s0")
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.terminate(force=True)
        child.close()
    # Off a terminal it says what to do instead.
    r = fleet.run("-H", "s0,s1")
    assert r.returncode == 2 and b"rsh exec -H" in r.stderr
