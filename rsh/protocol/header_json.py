"""JSON for frame headers: one compact encoder made once, and the C scanner ``json.loads`` runs.

Every frame with fields goes through ``encode_json`` and every header
received through ``scan_json``, so both skip what the ``json`` module's
entry points set up on each call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["encode_json", "scan_json"]

#: The C scanner json.loads runs, without the whitespace regexes around it:
#: headers we send have none (typeshed does not declare the attribute).
scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]

# Made once: json.dumps with any non-default argument builds a new encoder per
# call, and JSONEncoder.encode a new C encoder per call, which was a third of
# an exit header's encoding (30 -> 19 us in the server, right after a wake).
_json_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _c_encoder() -> Callable[[Any, int], Sequence[str]] | None:
    """``_json``'s encoder for ``_json_encoder``'s settings; None where it is missing or gives other bytes."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        # What JSONEncoder.iterencode passes it, less the circular check (headers are plain trees).
        enc: Callable[[Any, int], Sequence[str]] = make(None, _json_encoder.default, json.encoder.encode_basestring, None, ":", ",", False, False, True)
        probe = {"a": [1, None, True, 0.5, '\u00e9"']}
        return enc if "".join(enc(probe, 0)) == _json_encoder.encode(probe) else None
    except TypeError:
        return None


_encode_chunks = _c_encoder()


def encode_json(obj: Any) -> str:
    """*obj* as compact JSON with non-ASCII kept: ``json.dumps(obj, separators=(",", ":"), ensure_ascii=False)``."""
    if _encode_chunks is None:
        return _json_encoder.encode(obj)
    return "".join(_encode_chunks(obj, 0))
