"""``mypyc_attr`` without a runtime dependency on mypy_extensions (standard library only).

The opt-in compiled build (setup.py) turns some classes into native classes, which
interpreted code may subclass only when the class says so with
``@mypyc_attr(allow_interpreted_subclasses=True)``: users subclass ``Node``, the
wall-clock coordinator subclasses ``Coordinator``, the Docker tier ``HostedGateway`` and
``SocketHost``, the native engine's Python nodes ``Coordinator``, ``TraceRecorder`` and
``DeliveryLedger`` (``core/native_nodes.py``). mypyc reads the decorator while compiling
(the type checker sees the real one); at run time it is a no-op, so no install needs
mypy_extensions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from mypy_extensions import mypyc_attr as mypyc_attr
else:
    _T = TypeVar("_T")

    def mypyc_attr(*_flags: str, **_options: Any) -> Callable[[_T], _T]:
        def keep(item: _T) -> _T:
            return item

        return keep


def frozen_reduce(value: Any) -> tuple[Any, ...]:
    """``__reduce__`` for a frozen dataclass: rebuilt by calling the class with its fields.

    Compiled, a frozen dataclass is pickled and copied by mypyc's own protocol, which sets
    each field through ``__setattr__``, which a frozen dataclass refuses; so a result could
    not cross a process (multiprocessing, xdist) or be copied. Calling the class works in
    both builds.
    """
    from dataclasses import fields

    return (type(value), tuple(getattr(value, field.name) for field in fields(value)))
