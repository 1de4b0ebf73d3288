"""The ``edgesim`` command (:mod:`.app`; Docker housekeeping in :mod:`.docker`). Nothing in
the package imports it."""

from pytest_edgesim.cli.app import main

__all__ = ["main"]
