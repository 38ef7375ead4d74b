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

__all__ = ["encode_json", "encode_json_ascii", "scan_json"]

#: The C scanner json.loads runs, without the whitespace regexes around it:
#: headers we send have none (typeshed does not declare the attribute).
scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


# Made once: json.dumps with any non-default argument builds a new encoder per
# call, and JSONEncoder.encode a new C encoder per call, which was a third of
# an exit header's encoding (30 -> 19 us in the server, right after a wake).
def _made_once(ensure_ascii: bool) -> Callable[[Any], str]:
    """``json.dumps(obj, separators=(",", ":"), ensure_ascii=ensure_ascii)`` through one encoder made now.

    ``_json``'s C encoder where it is there and gives the same bytes for a
    probe; else the stdlib encoder, made once too.
    """
    slow = json.JSONEncoder(separators=(",", ":"), ensure_ascii=ensure_ascii)
    make: Callable[..., Callable[[Any, int], Sequence[str]]] | None = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return slow.encode
    strings = json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring
    try:
        # What JSONEncoder.iterencode passes it, less the circular check (headers are plain trees).
        chunks: Callable[[Any, int], Sequence[str]] = make(None, slow.default, strings, None, ":", ",", False, False, True)
        probe = {"a": [1, None, True, 0.5, '\u00e9"\udcff']}
        if "".join(chunks(probe, 0)) != slow.encode(probe):
            return slow.encode
    except TypeError:  # another signature
        return slow.encode

    def encode(obj: Any) -> str:
        return "".join(chunks(obj, 0))

    return encode


#: *obj* as compact JSON with non-ASCII kept: ``json.dumps(obj, separators=(",", ":"), ensure_ascii=False)``.
encode_json = _made_once(ensure_ascii=False)
#: The same with non-ASCII escaped (``ensure_ascii=True``), for text that must stay ASCII (the audit log).
encode_json_ascii = _made_once(ensure_ascii=True)
