from __future__ import annotations

import os
import time

import pytest

from pytest_edgesim.docker import labels
from pytest_edgesim.errors import EdgesimError


def test_session_id_is_stable_within_a_process() -> None:
    assert labels.session_id() == labels.session_id()
    assert labels.session_id().startswith("edgesim-")


def test_resource_labels_name_owner_host_time_and_role() -> None:
    before = int(time.time())
    made = labels.resource_labels("broker", session="edgesim-abc")
    assert made[labels.SESSION_LABEL] == "edgesim-abc"
    assert made[labels.PID_LABEL] == str(os.getpid())
    assert made[labels.HOST_LABEL] == labels.hostname()
    assert before <= int(made[labels.CREATED_LABEL]) <= int(time.time())
    assert made[labels.ROLE_LABEL] == "broker"


def test_resource_names_are_unique_and_carry_the_session() -> None:
    first = labels.resource_name("gateway", session="edgesim-abc")
    second = labels.resource_name("gateway", session="edgesim-abc")
    assert first != second
    assert first.startswith("edgesim-abc-gateway-")


def test_a_malformed_session_id_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EdgesimError, match="invalid edgesim session id"):
        labels.set_session_id("no spaces/allowed")
