"""Fault kinds: what a scenario's ``faults:`` entry can do, declared once.

Each kind is a :class:`FaultKind`: its name, the settings a ``faults:`` entry of that kind
takes, what it targets, and how it is done to a run (``begin``, and ``end`` for a fault
that lasts a ``duration``). The built-in kinds are registered here; others are registered
in code with :func:`register_fault_kind` or found in the entry-point group
``pytest_edgesim.fault_kinds`` (each entry a ``FaultKind`` object), as gateway kinds are
(:mod:`pytest_edgesim.core.gateway_kinds`). The scenario's checks hold every entry against
its kind (:func:`fault_problems`), the scheduler (:mod:`pytest_edgesim.core.fault_schedule`)
fires it, and a tier asks each kind, before the run, whether it can apply it
(:meth:`FaultKind.unsupported`), so the swarm catalogue and the docs' tier matrix enumerate
:func:`fault_kinds`.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from pytest_edgesim.core.builtin_faults import BUILTIN_KINDS, FaultRun
from pytest_edgesim.errors import FaultError, SimulationError

if TYPE_CHECKING:
    from pytest_edgesim.core.scenario.schema import FaultSpec

ENTRY_POINT_GROUP: Final = "pytest_edgesim.fault_kinds"

#: the tiers a fault can be applied in: ``virtual_time`` (a simulation, with model or
#: lockstep container gateways) and ``live`` (a real broker and real gateways on the wall clock)
TIERS: Final = ("virtual_time", "live")

#: what a fault can target (``target:``): a gateway, a device (sensor), the broker, any
#: node; ``link`` kinds take ``between:`` instead
TARGETS: Final = ("gateway", "device", "broker", "node", "link")


@runtime_checkable
class FaultKind(Protocol):
    """One kind of fault.

    ``settings`` are the ``faults:`` fields a fault of this kind takes besides the common
    ones (``name``, ``kind``, the trigger, ``target``, ``duration``), ``required`` those it
    must have; ``target`` says what its ``target:`` names (or ``link``: it takes
    ``between:``); ``lasting`` whether it takes a ``duration`` (``"required"``,
    ``"optional"`` or ``"never"``).
    """

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def target(self) -> str: ...

    @property
    def settings(self) -> tuple[str, ...]: ...

    @property
    def required(self) -> tuple[str, ...]: ...

    @property
    def lasting(self) -> str: ...

    def check(self, fault: FaultSpec) -> str | None:
        """What is wrong with ``fault`` beyond its fields' own types (``None``: nothing)."""

    def unsupported(self, tier: str, fault: FaultSpec, run: FaultRun) -> str | None:
        """Why ``tier`` cannot apply ``fault`` in ``run``, or ``None`` when it can."""

    def begin(self, run: FaultRun, fault: FaultSpec) -> tuple[str, Any]:
        """Do the fault now: (what it did, for the trace; a token handed to :meth:`end`)."""

    def end(self, run: FaultRun, fault: FaultSpec, token: Any) -> str:
        """Undo a lasting fault now (its ``duration`` is over); what it did."""


_registered: dict[str, FaultKind] = {}
_builtin: dict[str, FaultKind] = {kind.name: kind for kind in BUILTIN_KINDS}


def register_fault_kind(kind: FaultKind) -> None:
    """Provide (or replace) the fault kind ``kind.name`` in this process."""
    if not isinstance(kind, FaultKind):
        raise SimulationError(f"{kind!r} is not a FaultKind (see pytest_edgesim.core.fault_kinds)")
    _registered[kind.name] = kind


def unregister_fault_kind(name: str) -> None:
    _registered.pop(name, None)


def fault_kind(name: str) -> FaultKind:
    """The fault kind ``name``: registered in code, built in, or from the entry-point group."""
    kind = _registered.get(name) or _builtin.get(name)
    if kind is not None:
        return kind
    for entry in entry_points(group=ENTRY_POINT_GROUP, name=name):
        loaded = entry.load()
        if not isinstance(loaded, FaultKind):
            raise SimulationError(
                f"entry point {entry.value!r} of group {ENTRY_POINT_GROUP!r} is not a FaultKind"
            )
        _registered[name] = loaded
        return loaded
    raise FaultError(f"no fault kind {name!r} (known: {', '.join(fault_kind_names())})")


def fault_kind_names() -> tuple[str, ...]:
    """Every fault kind's name: the built-in ones in the docs' order, then the others sorted."""
    others = {*_registered, *(entry.name for entry in entry_points(group=ENTRY_POINT_GROUP))}
    return (*_builtin, *sorted(others - set(_builtin)))


def fault_kinds() -> tuple[FaultKind, ...]:
    """Every fault kind (see :func:`fault_kind_names`)."""
    return tuple(fault_kind(name) for name in fault_kind_names())


def fault_problems(fault: FaultSpec) -> list[tuple[str, str]]:
    """What is wrong with ``fault`` for its kind, as ``(field, message)``: an unknown kind,
    a setting the kind does not take, one it needs, a target where it takes ``between``."""
    import difflib

    from pytest_edgesim.core.scenario.schema import FAULT_SETTINGS

    field_name = "kind" if fault.kind is not None else "action"
    try:
        kind = fault_kind(fault.fault_kind)
    except FaultError:
        names = fault_kind_names()
        close = difflib.get_close_matches(fault.fault_kind, names, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return [
            (
                field_name,
                f"unknown fault kind {fault.fault_kind!r}{hint}; kinds: {', '.join(names)}",
            )
        ]
    given: list[str] = [name for name in FAULT_SETTINGS if name in fault.model_fields_set]
    found = [
        (
            name,
            f"not a setting of a {kind.name} fault (it takes {', '.join(kind.settings) or 'none'})",
        )
        for name in given
        if name not in kind.settings
    ]
    found += [
        (name, f"a {kind.name} fault needs {name}") for name in kind.required if name not in given
    ]
    if kind.target == "link":
        if fault.target is not None:
            found.append(("target", f"a {kind.name} fault takes between: [SIDE, SIDE], not target"))
    elif fault.target is None:
        found.append((field_name, f"a {kind.name} fault needs a target (a {kind.target})"))
    if fault.duration is not None and kind.lasting == "never":
        found.append(("duration", f"a {kind.name} fault takes no duration"))
    if fault.duration is None and kind.lasting == "required":
        found.append((field_name, f"a {kind.name} fault needs a duration (how long it lasts)"))
    if not found:
        problem = kind.check(fault)
        if problem:
            found.append((field_name, problem))
    return found
