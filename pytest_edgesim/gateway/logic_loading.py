"""Finding a user's gateway logic from its ``module:Name``, with errors that say why not."""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_edgesim.errors import ScenarioError

if TYPE_CHECKING:
    from pytest_edgesim.lockstep.sdk import LogicFactory


class LogicImportError(ScenarioError):
    """A gateway's ``logic:`` cannot be imported or is not a logic."""


def load_logic(reference: str, gateway: str = "", search: Path | None = None) -> LogicFactory:
    """The logic ``module:Name`` names: a class or factory taking ``(node, config)``.

    The module is imported as usual (the package installed, or on ``sys.path``); when that
    fails and ``search`` (the scenario's directory) is given, it is looked for there too.
    """
    module_name, _, attribute = reference.partition(":")
    owner = f"gateway {gateway!r}: " if gateway else ""
    try:
        module = _import(module_name, search)
    except ModuleNotFoundError as error:
        hint = ""
        if error.name == module_name.split(".")[0]:
            hint = (
                "; install your package (pip install -e .) or put its directory on sys.path "
                "(in pytest: the ini option pythonpath = .)"
            )
        raise LogicImportError(
            f"{owner}logic {reference!r}: cannot import {module_name!r} "
            f"(ModuleNotFoundError: {error}){hint}"
        ) from None
    except Exception as error:  # the user's module failed to import: say which and why
        raise LogicImportError(
            f"{owner}logic {reference!r}: cannot import {module_name!r} "
            f"({type(error).__name__}: {error})"
        ) from None
    target: Any = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise LogicImportError(
                f"{owner}logic {reference!r}: module {module_name!r} has no {attribute!r}"
            )
    if not callable(target) or not _takes_node_and_config(target):
        raise LogicImportError(
            f"{owner}logic {reference!r} is not a logic: expected a NodeLogic subclass "
            "(pytest_edgesim.NodeLogic) or a factory taking (node, config)"
        )
    return target  # type: ignore[no-any-return]


def _import(module_name: str, search: Path | None) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        top = module_name.split(".")[0]
        if search is None or error.name != top or str(search) in sys.path:
            raise
    sys.path.append(str(search))  # the scenario's directory, as a last place to look
    return importlib.import_module(module_name)


def _takes_node_and_config(target: Any) -> bool:
    try:
        inspect.signature(target).bind(None, {})
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): let it be tried
        return True
    return True
