"""The fuzzers' regression corpus, replayed: every input ``bench/fuzz.py`` kept still passes its target.

``tests/fuzz_corpus/frames/`` goes through the frame decoder, and
``tests/fuzz_corpus/server/`` through an unauthenticated ``ServerProtocol``
and then, byte for byte, to a live server, which must run nothing and keep
serving a good client.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rsh

from .conftest import ServerFactory
from .fuzz_targets import TARGETS, chunks
from .test_fuzz_unauthenticated import exchange

CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"


def inputs(target: str) -> list[Path]:
    return sorted((CORPUS / target).iterdir())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_corpus_replays_clean(target: str) -> None:
    files = inputs(target)
    assert len(files) >= 10, "the corpus is missing"
    for path in files:
        try:
            TARGETS[target](path.read_bytes())
        except Exception as exc:
            raise AssertionError(f"{path.name}: {exc!r}") from exc


def test_the_server_corpus_runs_nothing_on_a_live_server(tmp_path: Path) -> None:
    servers = ServerFactory(tmp_path)
    try:
        s = servers("--auth-fail-delay", "0.01", "--auth-timeout", "5", where=tmp_path)
        marker = tmp_path / "marker"
        with rsh.connect(s.host, s.port, s.token) as good:
            for path in inputs("server"):
                exchange(s.port, b"".join(chunks(path.read_bytes())), f"touch '{marker}'".encode())
                assert not marker.exists(), path.name
            assert good.run("echo alive").stdout == b"alive\n"
        s.stop()
        # Every input got its one-line answer: nothing escaped as a traceback.
        assert not [line for line in s.log if "Traceback" in line or "Error" in line and "protocol error" not in line]
        records = [json.loads(line) for line in s.audit_log.read_text().splitlines()]
        assert [r["command"] for r in records if r["event"] == "command"] == ["echo alive"]
        assert all(not r["authenticated"] for r in records if r["event"] == "connection" and r["user"] is None)
    finally:
        servers.close()
