"""``python -m pytest_edgesim.lockstep MODULE:NAME``: serve a logic over the lockstep protocol.

``MODULE:NAME`` is a :class:`~pytest_edgesim.lockstep.sdk.NodeLogic` subclass or a factory
``(node, config)``, importable in this process; it is served on ``$EDGESIM_LOCKSTEP_PORT``
(default 7883), as :func:`~pytest_edgesim.lockstep.sdk.run` serves it. This is how the image
built with a user's gateway package serves the user's logic in virtual time.
"""

import importlib
import sys

from pytest_edgesim.lockstep.sdk import run


def main(argv: list[str]) -> int:
    if len(argv) != 1 or ":" not in argv[0]:
        print("usage: python -m pytest_edgesim.lockstep MODULE:NAME", file=sys.stderr)
        return 2
    module_name, _, attribute = argv[0].partition(":")
    target = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    run(target)  # type: ignore[arg-type]
    return 0


sys.exit(main(sys.argv[1:]))
