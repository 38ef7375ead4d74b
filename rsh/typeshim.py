"""What rsh's modules use of ``typing`` when they run, without importing it.

Importing ``typing`` costs a cold ``rsh exec`` about a tenth of its start-up.
A module on that path takes the names from ``typing`` for the type checker
and from here when it runs::

    TYPE_CHECKING = False
    if TYPE_CHECKING:
        from typing import NamedTuple
    else:
        from ..typeshim import NamedTuple

mypy takes any ``if TYPE_CHECKING:`` as true and reads no further, so the
types are typing's own; these make the same kind of thing at run time.
"""

from __future__ import annotations

import collections

__all__ = ["NamedTuple", "TypedDict", "cast"]


class _NamedTupleMeta(type):
    """Each subclass of ``NamedTuple`` is a ``collections.namedtuple``, its methods added, as typing makes it."""

    def __new__(mcls, name: str, bases: tuple[type, ...], ns: dict[str, object]) -> type:
        if not bases:
            return super().__new__(mcls, name, bases, ns)
        annotations = ns.get("__annotations__", {})
        assert isinstance(annotations, dict)
        fields = list(annotations)
        with_default = [f for f in fields if f in ns]
        if with_default != fields[len(fields) - len(with_default) :]:
            raise TypeError(f"{name}: a field without a default follows one with a default")
        # Through a name: mypy reads a namedtuple() call as a class of its own, which needs literal fields.
        make = collections.namedtuple
        cls = make(name, fields, defaults=[ns[f] for f in with_default], module=str(ns["__module__"]))
        for key, value in ns.items():
            if key not in annotations and key != "__module__":
                setattr(cls, key, value)
        return cls


class NamedTuple(metaclass=_NamedTupleMeta):
    """``class Point(NamedTuple): x: int`` makes a ``collections.namedtuple`` (not a subclass of this)."""


class TypedDict(dict[str, object]):
    """A ``TypedDict`` at run time: a dict (typing's makes plain dicts; nothing here checks their keys)."""

    def __init_subclass__(cls, *, total: bool = True) -> None:
        super().__init_subclass__()


def cast(typ: object, value: object) -> object:
    """``typing.cast``: *value*, unchanged."""
    return value
