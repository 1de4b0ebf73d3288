"""A user's gateway logic as a real MQTT client (live runs; in this process or in a container).

:class:`LogicService` is the project's gateway service (:mod:`.service`: the paho client,
the bounded inbox, topic prefixes, the reset/report control requests) with the user's
:class:`~pytest_edgesim.lockstep.sdk.NodeLogic` in place of the aggregation. The logic runs
in a :class:`~pytest_edgesim.lockstep.sdk.NodeRuntime` whose virtual time is the wall clock
since the service started, in ticks (microseconds), ``time_scale`` times faster when the
live run is scaled: ``on_message`` is called as each message is taken from the inbox and
``on_timer`` when a timer is due. What the logic publishes goes out on the real broker:
an object payload gets the gateway's ``origin``, ``seq`` and ``created_at_us`` (so the run
measures end-to-end latency) and the ``sources`` the logic gave (its lineage, see
:meth:`~pytest_edgesim.lockstep.sdk.NodeApi.publish`), any other payload is sent as JSON.

A reading arrives as the sensors publish it (``{"value", "origin", "seq",
"created_at_us"}``) and reaches the logic as in a virtual-time run: ``payload`` is the
value, with ``origin``, ``seq`` and ``created_at`` (ticks); any other payload is given as
it decodes, with ``origin`` ``""``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytest_edgesim.gateway.config import is_number
from pytest_edgesim.gateway.logic_loading import load_logic
from pytest_edgesim.gateway.service import GatewayService, decode_payload, now_us
from pytest_edgesim.lockstep.sdk import NodeRuntime, Output


class LogicService(GatewayService):
    """A user's logic (``config["logic"]``) on a real broker, on the wall clock."""

    def __init__(
        self,
        config: Mapping[str, Any],
        host: str,
        port: int,
        *,
        client_id: str | None = None,
        clock_us: Callable[[], int] = now_us,
        seed: int = 0,
        search: Path | None = None,
        credentials: tuple[str, str] | None = None,
    ):
        """``search``: the scenario's directory, where the logic may be besides ``sys.path``."""
        self._factory = load_logic(str(config.get("logic")), str(config.get("name", "")), search)
        self._seed = seed
        self._time_scale = float(config.get("time_scale") or 1.0)
        self._started_us = clock_us()
        self._timer_changed = threading.Event()
        super().__init__(
            config, host, port, client_id=client_id, clock_us=clock_us, credentials=credentials
        )
        self.counters["dropped_by_logic"] = 0

    def _start_afresh(self) -> None:
        """A new logic for each run (at start and at each reset), its clock at zero."""
        self.aggregator = None
        self._started_us = self.clock_us()
        logic_config = dict(self.config.get("logic_config") or {})
        self.runtime = NodeRuntime(
            self._factory, str(self.config["name"]), self._seed, logic_config
        )
        self._timer_changed.set()

    # --- time ---------------------------------------------------------------------------------
    def _ticks(self, wall_us: float) -> int:
        return max(0, round((wall_us - self._started_us) * self._time_scale))

    def _wall_us(self, ticks: int) -> float:
        return self._started_us + ticks / self._time_scale

    def _advance(self, messages: list[dict[str, Any]]) -> None:
        """Advance the logic to now with ``messages`` delivered now (under the lock), and
        publish what it emits."""
        runtime = self.runtime
        now = max(self._ticks(self.clock_us()), runtime.time)
        outputs, _next = runtime.advance(now, [(now, message) for message in messages])
        for output in outputs:
            self._emit(output)
        self._timer_changed.set()

    # --- messages -----------------------------------------------------------------------------
    def _process(self, topic: str, payload: bytes) -> None:
        body = decode_payload(payload)
        now = self._ticks(self.clock_us())
        if isinstance(body, dict) and "value" in body and "origin" in body:
            created_at_us: Any = body.get("created_at_us")
            created_at = self._ticks(created_at_us) if is_number(created_at_us) else now
            message = {
                "topic": topic,
                "payload": body["value"],
                "origin": str(body["origin"]),
                "seq": int(body.get("seq", 0)) if is_number(body.get("seq", 0)) else 0,
                "created_at": created_at,
                "qos": 0,
            }
            if body.get("sources") is not None:  # another gateway's forward: its lineage
                message["sources"] = body["sources"]
        else:
            message = {
                "topic": topic,
                "payload": body.decode(errors="replace") if isinstance(body, bytes) else body,
                "origin": "",
                "seq": 0,
                "created_at": now,
                "qos": 0,
            }
        self._advance([message])

    def _emit(self, output: Output) -> None:
        if output.get("kind") == "drop":
            self.counters["dropped_by_logic"] += 1
            return
        if output.get("kind") == "assert":  # (kept in virtual-time runs only: docs/faults.md)
            return
        payload = output.get("payload")
        created_at = output.get("created_at")
        stamp_us = self._wall_us(created_at if isinstance(created_at, int) else output["t"])
        if isinstance(payload, dict):
            body = {**payload, "origin": self.name, "seq": self._seq + 1}
            body["created_at_us"] = round(stamp_us)
            if output.get("sources") is not None:  # the logic said which readings it stands for
                body["sources"] = output["sources"]
            data = json.dumps(body).encode()
        else:
            data = json.dumps(payload).encode()
        self.client.publish(
            self.topic_prefix + str(output["topic"]), data, qos=int(output.get("qos", 0))
        )
        self._seq += 1
        self.counters["forwarded"] += 1

    # --- timers -------------------------------------------------------------------------------
    def _background_tasks(self) -> list[Callable[[], None]]:
        return [self._timers]

    def _timers(self) -> None:
        """Call the logic's timers when they are due, until the service stops."""
        while not self._stopping.is_set():
            with self._lock:
                due = self.runtime.api.next_timer
                wait_s = None if due is None else (self._wall_us(due) - self.clock_us()) / 1e6
                self._timer_changed.clear()
                if wait_s is not None and wait_s <= 0:
                    self._advance([])
                    continue
            self._timer_changed.wait(wait_s)

    def state(self) -> dict[str, Any]:
        """The logic's own description (its ``state()``)."""
        with self._lock:
            return dict(self.runtime.state())
