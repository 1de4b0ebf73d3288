"""Replay commands: one copy-pasteable ``pytest`` command that reproduces a failure.

Every tier prints its command through :func:`replay_command`, so every command has one form:
``pytest ROOT/path/test_x.py::test_y[id] --edgesim-...=...``, shell-quoted with
:func:`shlex.join`. The test is named by an absolute path, so the command works from any
working directory: pytest finds the same ini file from there, and ``--rootdir=ROOT`` is added
when the rootdir did not come from one. The edgesim options that change what a run does (the
scenario directory, the Docker mode, the broker, the time scale) are repeated, paths made
absolute, whether they came from the command line, the environment or the ini file; an ini
file given with ``-c`` is given again (``--config-file``).
"""

from __future__ import annotations

import shlex

import pytest

from pytest_edgesim.pytest_plugin import settings


def absolute_nodeid(item: pytest.Item) -> str:
    """``item``'s node id with its file as an absolute path (node ids are rootdir-relative)."""
    path, separator, rest = item.nodeid.partition("::")
    return str(item.config.rootpath / path) + separator + rest


def run_options(config: pytest.Config) -> list[str]:
    """The options in force that change what a scenario run does, as arguments."""
    options = []
    directory = settings.scenario_dir(config)
    if directory is not None:
        options.append(f"--edgesim-scenario-dir={directory}")
    docker = settings.docker_mode(config)
    if docker != "auto":  # (require: a missing engine is an error, not a skip)
        options.append(f"--edgesim-docker={docker}")
    broker = settings.docker_broker(config)
    if broker is not None:
        options.append(f"--edgesim-broker={broker}")
    if settings.resolve_time_scale(config) != 1.0:
        options.append(f"--edgesim-time-scale={settings.resolve_time_scale(config):g}")
    return options


def replay_command(item: pytest.Item, *options: str) -> str:
    """``pytest`` with ``item`` by its absolute path, ``options`` (the seed that reproduces
    it), the run options in force and the rootdir if needed, quoted for a POSIX shell."""
    config = item.config
    arguments = ["pytest", absolute_nodeid(item), *options, *run_options(config)]
    if config.inipath is not None and config.getoption("inifilename", None):
        arguments.append(f"--config-file={config.inipath}")  # (given with -c)
    if config.inipath is None or config.inipath.parent != config.rootpath:
        arguments.append(f"--rootdir={config.rootpath}")
    return shlex.join(arguments)
