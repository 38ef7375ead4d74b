"""Coverage-guided fuzzing of the frame decoder and of an unauthenticated server connection (atheris).

    python bench/fuzz.py frames --seconds 60     # or: server; both one after the other: all
    python bench/fuzz.py all --seconds 300 --keep

Runs ``tests/fuzz_targets.py``'s target under libFuzzer for a bounded time,
starting from its corpus in ``tests/fuzz_corpus/<target>/``.  A crash (an
assertion, or any exception but ``ProtocolError``) stops it and is written
to ``crash-*`` in the current directory: once fixed, add it to the corpus
under a name starting ``crash-`` (merging keeps those whatever their coverage).
With ``--keep``, what it found is merged back into the corpus, minimized (only
inputs that add coverage), for ``tests/test_fuzz_corpus.py`` to replay.

Each target runs in a subprocess of its own (libFuzzer owns the process).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fuzz_corpus"


def child(target: str, args: list[str]) -> None:
    """In the subprocess: instrument rsh, then hand the target to libFuzzer."""
    import atheris

    sys.path.insert(0, str(ROOT))
    with atheris.instrument_imports(include=["rsh"]):
        from tests.fuzz_targets import TARGETS
    # libFuzzer runs argv[0] again through the shell to merge: make it a command line.
    argv0 = f"{shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).resolve()))} --child {target}"
    atheris.Setup([argv0, *args], TARGETS[target])
    atheris.Fuzz()


def run(target: str, seconds: int, keep: bool) -> int:
    corpus = CORPUS / target
    corpus.mkdir(parents=True, exist_ok=True)
    before = len(list(corpus.iterdir()))
    with tempfile.TemporaryDirectory(prefix=f"rsh-fuzz-{target}-") as found:
        flags = [f"-max_total_time={seconds}", "-rss_limit_mb=2048", "-max_len=4096", "-print_final_stats=1"]
        code = subprocess.call([sys.executable, __file__, "--child", target, *flags, found, str(corpus)])
        if code == 0 and keep:
            merged = Path(found) / "merged"
            merged.mkdir()
            subprocess.check_call([sys.executable, __file__, "--child", target, "-merge=1", str(merged), str(corpus), found])
            if len(list(merged.iterdir())) >= len(list(corpus.iterdir())) // 2:  # never lose the corpus to a failed merge
                for crash in corpus.glob("crash-*"):  # regressions stay, by name, whatever coverage says
                    shutil.copy(crash, merged)
                shutil.rmtree(corpus)
                shutil.copytree(merged, corpus)
    print(f"{target}: exit {code}; corpus {before} -> {len(list(corpus.iterdir()))} inputs")
    return code


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3:])
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("target", choices=["frames", "server", "all"])
    p.add_argument("--seconds", type=int, default=60, help="how long each target runs (default 60)")
    p.add_argument("--keep", action="store_true", help="merge what was found into the corpus, minimized")
    args = p.parse_args()
    targets = ["frames", "server"] if args.target == "all" else [args.target]
    return max(run(t, args.seconds, args.keep) for t in targets)


if __name__ == "__main__":
    sys.exit(main())
