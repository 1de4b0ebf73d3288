"""Credentials for the broker on a remote engine: generated per session, never anonymous.

On a local engine the broker's port is published on the loopback address only, so nothing
but this machine reaches it. A remote engine (``DOCKER_HOST=tcp://...`` or ``ssh://...``)
publishes it on all of the engine host's addresses, where anyone on that network could
connect; there the project's broker requires a user name and password that this process
generated (``allow_anonymous false`` and a ``password_file`` of Mosquitto's PBKDF2-SHA512
format, copied into the container before it starts, so no file of this machine is needed
on the engine's). Every client of the tool's, and the user's gateways (through
``{broker_username}``/``{broker_password}`` and ``EDGESIM_BROKER_USERNAME``/
``EDGESIM_BROKER_PASSWORD``), use them.

``EDGESIM_REMOTE_ENGINE=1`` treats a local engine as remote (for tests of this, and for an
engine whose ports others can reach although its socket is local); ``0`` treats a remote one
as local (its ports published on all addresses, but anonymous).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import secrets
import tarfile
from collections.abc import Mapping

from pytest_edgesim.live.mqtt import BrokerCredentials

REMOTE_ENGINE_ENV = "EDGESIM_REMOTE_ENGINE"
USERNAME = "edgesim"
#: where the generated configuration and password file go in the broker container
AUTH_DIR = "/edgesim/auth"
AUTH_CONFIG = f"{AUTH_DIR}/mosquitto.conf"
PASSWORD_FILE = f"{AUTH_DIR}/passwd"
#: Mosquitto's own choices for ``$7$`` (PBKDF2-SHA512) entries (``mosquitto_passwd``)
_ITERATIONS = 101
_SALT_BYTES = 12

_session_credentials: BrokerCredentials | None = None


def remote_mode(publish_ip: str) -> bool:
    """Whether the broker needs credentials: ``$EDGESIM_REMOTE_ENGINE`` if set, else
    whether the engine publishes ports beyond the loopback address (``publish_ip``)."""
    forced = os.environ.get(REMOTE_ENGINE_ENV, "").strip().lower()
    if forced in ("1", "true", "yes"):
        return True
    if forced in ("0", "false", "no"):
        return False
    return publish_ip != "127.0.0.1"


def session_credentials() -> BrokerCredentials:
    """This process's broker credentials (made on first use, never written anywhere but
    into the broker container)."""
    global _session_credentials
    if _session_credentials is None:
        _session_credentials = BrokerCredentials(USERNAME, secrets.token_urlsafe(24))
    return _session_credentials


def password_entry(credentials: BrokerCredentials, salt: bytes | None = None) -> str:
    """One line of a Mosquitto password file: ``user:$7$101$<salt>$<PBKDF2-SHA512 hash>``."""
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", credentials.password.encode(), salt, _ITERATIONS)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return f"{credentials.username}:$7${_ITERATIONS}${encoded[0]}${encoded[1]}"


def authenticated_config(base_config: str) -> str:
    """``base_config`` (the project broker's ``mosquitto.conf``) with anonymous access
    replaced by the password file."""
    lines = [
        line
        for line in base_config.splitlines()
        if line.split("#", 1)[0].split()[:1] not in (["allow_anonymous"], ["password_file"])
    ]
    lines += [
        "# added by edgesim for a remote engine: credentials generated for this session",
        "allow_anonymous false",
        f"password_file {PASSWORD_FILE}",
    ]
    return "\n".join(lines) + "\n"


def auth_archive(files: Mapping[str, str], *, uid: int = 0, gid: int = 0) -> bytes:
    """A tar of ``files`` (name in :data:`AUTH_DIR` -> text) for ``put_archive`` at ``/``,
    readable by their owner (``uid``/``gid``) only."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for directory in ("edgesim", AUTH_DIR.lstrip("/")):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, uid, gid
            archive.addfile(info)
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{AUTH_DIR.lstrip('/')}/{name}")
            info.size, info.mode, info.uid, info.gid = len(data), 0o600, uid, gid
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
