"""What both clients share for ``put`` and ``get``: arguments into transfers, results into errors.

A call may name several sources; each becomes one transfer on the wire
(one ``put`` or ``get`` request, its entries, its ``done``), run one after
the other.  The blocking ``Client`` and the ``AsyncClient`` differ only in
how they wait for frames; what to send and what a result means is here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, BinaryIO, cast

from ..errors import TransferFailed
from ..results import TransferResult
from .messages import GetRequest, PutRequest

if TYPE_CHECKING:
    from .receive import Receiver
    from .send import ProgressCallback, Source

__all__ = ["LocalPath", "Sources", "put_plan", "get_requests", "make_receiver", "checked"]

#: A local file or directory.
LocalPath = str | os.PathLike[str]
#: What ``put`` accepts: one path, several, or a readable binary stream.
Sources = LocalPath | Sequence[LocalPath] | BinaryIO


def _is_stream(obj: object) -> bool:
    return hasattr(obj, "read") or hasattr(obj, "write")


def put_plan(local: Sources, remote: str, *, recursive: bool, resume: bool, cwd: str | None) -> list[tuple[PutRequest, Source]]:
    """One (request, source) per thing to send.

    Several sources need *remote* to be an existing directory, as with cp.

    Raises:
        ValueError: nothing to send, or *remote* is empty.
    """
    from .send import PathSource, StreamSource  # here: a get never loads the sending side

    if not remote:
        raise ValueError("the remote path is empty")
    sources: list[Source]
    if isinstance(local, (str, os.PathLike)):
        sources = [PathSource(os.getcwd(), os.fspath(local), recursive=recursive)]
    elif _is_stream(local):
        sources = [StreamSource(cast(BinaryIO, local))]
    else:
        paths = cast("Sequence[LocalPath]", local)
        sources = [PathSource(os.getcwd(), os.fspath(p), recursive=recursive) for p in paths]
    if not sources:
        raise ValueError("no local file to put")
    into = len(sources) > 1
    return [(PutRequest(remote, cwd, into, resume), source) for source in sources]


def get_requests(remote: str | Sequence[str], *, recursive: bool, cwd: str | None) -> list[GetRequest]:
    """One request per remote path.

    Raises:
        ValueError: no remote path, or an empty one.
    """
    paths = [remote] if isinstance(remote, str) else list(remote)
    if not paths or not all(paths):
        raise ValueError("no remote path to get")
    return [GetRequest(p, cwd, recursive) for p in paths]


def make_receiver(local: LocalPath | BinaryIO, *, several: bool, resume: bool, progress: ProgressCallback | None, sent_before: int) -> Receiver:
    """The receiver for one ``get``: into *local* (a directory when *several*), or into a stream."""
    from .receive import Receiver  # here: a put never loads the receiving side

    if _is_stream(local):
        return Receiver(os.getcwd(), "-", stream=local, progress=progress, sent_before=sent_before)  # type: ignore[arg-type]
    path = os.fspath(local)  # type: ignore[arg-type]
    return Receiver(os.getcwd(), path, into=several, resume=resume, progress=progress, sent_before=sent_before)


def checked(result: TransferResult, host: str) -> TransferResult:
    """Return *result*, or raise ``TransferFailed`` if anything did not arrive."""
    if result.failures:
        raise TransferFailed(result, host)
    return result
