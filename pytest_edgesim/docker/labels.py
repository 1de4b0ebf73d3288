"""The session id and the labels every container, network and volume we create carries.

One process is one session unless ``EDGESIM_SESSION_ID`` (or :func:`set_session_id`) says
otherwise. The labels let :mod:`.cleanup` tell whose a resource is and whether its owner
is still alive, so a killed pytest leaves nothing behind for long: ``edgesim.owner`` names
the process beyond doubt (boot id, pid namespace, pid, start time; see
:class:`~pytest_edgesim.live.processes.Owner`), and ``edgesim.lease`` names the session's
lease container (:mod:`.lease`), which runs exactly as long as the process does, so a
session on another machine or in another container can tell it is over. A session that keeps its
containers (``--edgesim-keep-containers``, :func:`set_keep`) labels them ``edgesim.keep``:
nothing removes those but an explicit ``edgesim cleanup`` or ``docker rm``.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import socket
import time
from collections.abc import Callable

from pytest_edgesim.errors import EdgesimError
from pytest_edgesim.live.processes import this_owner

SESSION_LABEL = "edgesim.session"
PID_LABEL = "edgesim.pid"
HOST_LABEL = "edgesim.host"
CREATED_LABEL = "edgesim.created"
ROLE_LABEL = "edgesim.role"
KEEP_LABEL = "edgesim.keep"
OWNER_LABEL = "edgesim.owner"
LEASE_LABEL = "edgesim.lease"

SESSION_ENV = "EDGESIM_SESSION_ID"
_SESSION_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")

_session_id: str | None = None
_keep = False
_lease: str | None = None
_lease_provider: Callable[[], str | None] | None = None
_name_counter = itertools.count(1)


def new_session_id() -> str:
    """A fresh random id, ``edgesim-`` followed by 12 hex digits."""
    return f"edgesim-{secrets.token_hex(6)}"


def session_started() -> bool:
    """Whether this process has labelled anything yet (asked for its session id)."""
    return _session_id is not None


def session_id() -> str:
    """This process's session id: set explicitly, else ``$EDGESIM_SESSION_ID``, else random."""
    global _session_id
    if _session_id is None:
        _session_id = _checked(os.environ.get(SESSION_ENV) or new_session_id())
    return _session_id


def set_session_id(value: str) -> None:
    """Make every resource created from now on belong to session ``value``."""
    global _session_id
    _session_id = _checked(value)


def set_keep(keep: bool) -> bool:
    """Label what this process creates from now on as kept (or not); returns the old value."""
    global _keep
    previous, _keep = _keep, bool(keep)
    return previous


def keeping() -> bool:
    """Whether this process keeps what it creates (see :func:`set_keep`)."""
    return _keep


def set_lease(name: str | None) -> None:
    """Label what this process creates from now on with the lease container ``name``."""
    global _lease
    _lease = name


def set_lease_provider(provider: Callable[[], str | None] | None) -> None:
    """What takes this process's lease (and returns its name, or None) when it first labels
    a resource without one: :func:`.lease.ensure_lease`, once an engine is connected."""
    global _lease_provider
    _lease_provider = provider


def lease() -> str | None:
    """The name of this process's lease container, if it has one (see :mod:`.lease`)."""
    return _lease


def hostname() -> str:
    return socket.gethostname()


def resource_labels(role: str, *, session: str | None = None, **extra: str) -> dict[str, str]:
    """The labels for a new resource playing ``role`` (``broker``, ``gateway``, ``network``...)."""
    labels = {
        SESSION_LABEL: session or session_id(),
        PID_LABEL: str(os.getpid()),
        HOST_LABEL: hostname(),
        CREATED_LABEL: str(int(time.time())),
        ROLE_LABEL: role,
        OWNER_LABEL: str(this_owner()),
    }
    if _lease is None and _lease_provider is not None and role != "lease":
        _lease_provider()
    if _lease is not None:
        labels[LEASE_LABEL] = _lease
    if _keep:
        labels[KEEP_LABEL] = "true"
    labels.update(extra)
    return labels


def resource_name(role: str, *, session: str | None = None) -> str:
    """A readable, unique name such as ``edgesim-3fa9c2d41b07-broker-1-5e21``."""
    return f"{session or session_id()}-{role}-{next(_name_counter)}-{secrets.token_hex(2)}"


def _checked(value: str) -> str:
    if not _SESSION_PATTERN.match(value):
        raise EdgesimError(
            f"invalid edgesim session id {value!r}: use 1-63 letters, digits, '_', '.' or '-'"
        )
    return value
