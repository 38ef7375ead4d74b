"""``rsh.typeshim`` makes at run time what ``typing`` would: the same named tuples, plain dicts, an unchanged cast."""

from __future__ import annotations

import pickle
import typing

import pytest

from rsh import typeshim
from rsh.protocol.messages import ExecRequest


def _point(base: typing.Any) -> typing.Any:
    class Point(base):
        """A point."""

        x: int
        y: int = 0
        label: str | None = None

        def norm1(self) -> int:
            return abs(self.x) + abs(self.y)

        @classmethod
        def origin(cls) -> typing.Any:
            return cls(0)

    return Point


def test_a_named_tuple_is_typing_s() -> None:
    ours, theirs = _point(typeshim.NamedTuple), _point(typing.NamedTuple)
    assert ours._fields == theirs._fields == ("x", "y", "label")
    assert ours._field_defaults == theirs._field_defaults
    assert ours.__doc__ == theirs.__doc__ == "A point."
    assert ours.__bases__ == theirs.__bases__ == (tuple,)
    p, q = ours(3, -4), theirs(3, -4)
    assert p == q == (3, -4, None) and hash(p) == hash(q)
    assert repr(p) == repr(q) == "Point(x=3, y=-4, label=None)"
    assert p.norm1() == 7 and ours.origin() == (0, 0, None)
    assert p._replace(label="a") == (3, -4, "a") and p._asdict() == q._asdict()
    x, y, label = p
    assert (x, y, label, p[1]) == (3, -4, None, -4)
    with pytest.raises(TypeError):
        ours()
    with pytest.raises(AttributeError):
        p.x = 1


def test_a_default_before_a_field_without_one_is_refused() -> None:
    with pytest.raises(TypeError, match="without a default follows"):

        class Bad(typeshim.NamedTuple):
            a: int = 0
            b: int


def test_messages_pickle_as_named_tuples_do() -> None:
    request = ExecRequest(b"true", timeout=2.0)
    assert pickle.loads(pickle.dumps(request)) == request
    assert type(request).__module__ == "rsh.protocol.messages"


def test_typed_dicts_and_casts_are_plain_at_run_time() -> None:
    class Options(typeshim.TypedDict, total=False):
        a: int

    assert Options(a=1) == {"a": 1}
    value = object()
    assert typeshim.cast("int", value) is value
