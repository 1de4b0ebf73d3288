"""Gateway containers reused across live runs (the trials of a statistical test).

Starting a container costs a second or more; a reset costs one MQTT round trip. A gateway
that speaks the control protocol (the project's does) listens on a control topic of its
own; between runs it is moved to the next run's topic prefix with its queue, aggregates and
counters cleared (see :meth:`pytest_edgesim.gateway.service.GatewayService._reset`), and
answers with the counters of the run that ended once its new subscriptions are acknowledged.

Any other program (a black box) is asked once, when it first becomes ready, and need not
answer: the pool remembers for the session which programs did not (none is waited on
again) and keeps their trials apart by their isolation instead. ``restart``: the container
is killed when its run ends and started afresh for the next one. ``prefix``: its topic prefix
is part of its command, so it serves one run and is removed.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from pytest_edgesim.errors import EdgesimError
from pytest_edgesim.live import mqtt
from pytest_edgesim.live.mqtt import BrokerEndpoint

#: starts a container for a configuration: ``(config) -> GatewayContainer`` (with ``name``,
#: ``logs()``, ``remove()``, and ``restart()`` for a restart-isolated one)
Starter = Callable[[Mapping[str, Any]], Any]

#: how long a program that has not yet answered the control protocol is given to answer
FIRST_ANSWER_TIMEOUT_S = 2.0
#: how long one that has answered before is given
ANSWER_TIMEOUT_S = 10.0


class NoControlAnswer(EdgesimError):
    """The gateway does not answer the control protocol (or no longer does)."""


class PooledGateway:
    """A gateway container on loan to one run: ``stop()`` ends the run (reset to a parked
    prefix, returning the run's counters, or parked by its isolation), ``remove()`` gives it
    back to the pool."""

    def __init__(
        self,
        pool: GatewayPool,
        key: str,
        container: Any,
        control_topic: str,
        *,
        program: str,
        isolation: str = "prefix",
    ):
        self._pool = pool
        self._key = key
        self.container = container
        self.name = container.name
        self.container_id = container.container_id
        self.control_topic = control_topic
        self.program = program
        self.isolation = isolation
        self.counters: dict[str, int] | None = None
        self.broken = False
        #: killed at the end of its run; started afresh by the next (restart isolation)
        self.parked = False
        self._warming: threading.Thread | None = None
        self._warm_error: BaseException | None = None
        self._warm_at = 0
        self.topic_prefix = ""  # the prefix of the run it is on loan to
        self._answer: dict[str, int] | None = None
        self._answered = threading.Event()
        self._client = mqtt.connect(
            pool.endpoint,
            "gateway-control",
            subscriptions=[(control_topic + "/reply/#", 1)],
            on_message=self._on_reply,
        )
        self._asked_at = time.monotonic()
        if pool.answers_control(program) is None:
            self._send({"report": True}, "/reply/probe")  # its answer, if any, is noted

    def _on_reply(self, topic: str, payload: bytes) -> None:
        if topic.endswith("/reply/probe"):
            self._pool.note_answer(self.program, True)
            return
        self._answer = json.loads(payload)
        self._answered.set()

    def _send(self, request: dict[str, Any], reply_suffix: str) -> None:
        request = {**request, "reply_to": self.control_topic + reply_suffix}
        self._client.publish(self.control_topic, json.dumps(request), qos=1)

    def reset(self, topic_prefix: str, timeout_s: float = ANSWER_TIMEOUT_S) -> dict[str, int]:
        """Move the gateway to ``topic_prefix``; the counters since the previous reset."""
        self.topic_prefix = topic_prefix
        return self._ask({"topic_prefix": topic_prefix}, "a reset", timeout_s)

    def report(self, timeout_s: float = ANSWER_TIMEOUT_S) -> dict[str, int]:
        """The counters since the last reset, the gateway going on as it was."""
        return self._ask({"report": True}, "a request for its counters", timeout_s)

    def _ask(self, request: dict[str, Any], what: str, timeout_s: float) -> dict[str, int]:
        """Ask and wait for the answer; a program that has never answered is given
        :data:`FIRST_ANSWER_TIMEOUT_S` from its first request, once in the session."""
        answers = self._pool.answers_control(self.program)
        if answers is None:
            # the probe sent when it became ready has had its time: it does not answer
            elapsed = time.monotonic() - self._asked_at
            timeout_s = max(0.0, FIRST_ANSWER_TIMEOUT_S - elapsed)
        if answers is False or (answers is None and timeout_s == 0.0):
            self._pool.note_answer(self.program, False)
            raise NoControlAnswer(f"gateway container {self.name} does not answer {what}")
        self._answered.clear()
        self._send(request, "/reply")
        if not self._answered.wait(timeout_s):
            self._pool.unanswered_waits += 1
            if answers is None:
                self._pool.note_answer(self.program, False)
            raise NoControlAnswer(
                f"gateway container {self.name} did not answer {what} within {timeout_s:g} s"
            )
        self._pool.note_answer(self.program, True)
        assert self._answer is not None
        return self._answer

    def logs(self, tail: int | str = 40) -> list[str]:
        return list(self.container.logs(tail))

    @property
    def client(self) -> Any:
        """The container's engine client: with ``container_id``, what the functions of
        :mod:`pytest_edgesim.docker.faults` take, so they work on a pooled gateway too."""
        return self.container.client

    @property
    def supported_faults(self) -> tuple[str, ...]:
        return tuple(getattr(self.container, "supported_faults", ()))

    def apply_fault(self, action: str) -> str:
        """The container's fault (stop, kill, start, pause, resume, disconnect, reconnect).
        A container started again runs the configuration it was created with, so one that
        answers the control protocol is moved back to this run's prefix (its counters then
        count from the start)."""
        detail: str = self.container.apply_fault(action)
        if action == "start" and self._pool.answers_control(self.program):
            self.reset(self.topic_prefix)  # (a black box keeps the prefix of its command)
        return detail

    def stop(self) -> dict[str, int] | None:
        """End the run: reset to a parked prefix if the program answers the control
        protocol, else kill it until the next run (restart isolation) or retire it."""
        answered_before = self._pool.answers_control(self.program)
        recover = getattr(self.container, "recover", None)
        if recover is not None and not recover():  # stopped or killed by the test: not reused
            self.broken = True
            return self.counters
        try:
            self.counters = self.reset(f"edgesim/parked/{secrets.token_hex(4)}/")
            return self.counters
        except EdgesimError:
            pass
        if answered_before or self.isolation != "restart":
            self.broken = True  # it stopped answering, or its prefix cannot change: removed
        else:
            self.parked = True
            self._restart_early()
        return self.counters

    def _restart_early(self) -> None:
        """Kill the program and start it afresh, in the background, so that the next run
        (most often the next trial) finds it ready; :meth:`unpark` decides whether it may
        use it as it is. (Its run has ended: nothing it does now is counted.)"""
        self._warm_at = self._pool.activity
        self._warm_error = None

        def restart() -> None:
            try:
                self.container.restart()
            except BaseException as error:
                self._warm_error = error

        self._warming = threading.Thread(target=restart, daemon=True)
        self._warming.start()

    def settle(self) -> None:
        """Wait for a restart begun in the background (before removal)."""
        if self._warming is not None:
            self._warming.join()

    def unpark(self) -> None:
        """Make a parked (restart-isolated) container ready for a run with no state.

        Restarted in the background when its last run ended, it is used as it is when no
        other run or test has used the broker since (it can have received nothing, nor
        published anything anyone heard); else it is restarted again now."""
        self.settle()
        error, self._warming, self._warm_error = self._warm_error, None, None
        if error is not None:
            raise error  # it did not become ready again: a set-up error
        if self._pool.activity != self._warm_at + 1:
            self.container.restart()
        self.parked = False

    def remove(self) -> None:
        if self.broken:
            self._pool.retire(self)
        else:
            self._pool.give_back(self._key, self)

    def close(self) -> None:
        self.settle()
        try:
            mqtt.disconnect(self._client)
        finally:
            self.container.remove()


class GatewayPool:
    """Idle gateway containers by configuration (everything but the topic prefix)."""

    def __init__(self, endpoint: BrokerEndpoint):
        self.endpoint = endpoint
        self._idle: dict[str, list[PooledGateway]] = {}
        self._all: list[PooledGateway] = []
        self._answers: dict[str, bool] = {}
        #: how many times a control request was waited on and not answered
        self.unanswered_waits = 0
        #: how many runs and tests have used the broker (see :meth:`note_activity`)
        self.activity = 0
        self._removals: list[threading.Thread] = []
        self._removal_errors: list[BaseException] = []
        self._lock = threading.Lock()

    @staticmethod
    def key(config: Mapping[str, Any], image: str | None) -> str:
        rest = {k: v for k, v in config.items() if k not in ("topic_prefix", "control_topic")}
        return json.dumps([image, rest], sort_keys=True, default=str)

    def note_activity(self) -> None:
        """A run or a test is about to use the broker: a gateway restarted in the
        background before it may have heard it, and is restarted again when next used."""
        self.activity += 1

    def answers_control(self, program: str) -> bool | None:
        """Whether ``program`` answers the control protocol (None: not known yet)."""
        return self._answers.get(program)

    def note_answer(self, program: str, answers: bool) -> None:
        with self._lock:
            if answers or program not in self._answers:
                self._answers[program] = answers

    def acquire(
        self,
        config: Mapping[str, Any],
        image: str | None,
        start: Starter,
        *,
        program: str | None = None,
        isolation: str = "prefix",
    ) -> PooledGateway:
        """An idle gateway for ``config`` made ready for its run (moved to its prefix, or
        restarted), or a new one from ``start``. ``program`` names what runs in the
        container (image and command), for remembering whether it answers the control
        protocol; ``isolation`` is how its trials are kept apart (``prefix``, ``restart``)."""
        key = self.key(config, image)
        program = program or json.dumps(image)
        with self._lock:
            idle = self._idle.get(key)
            gateway = idle.pop() if idle else None
        if gateway is not None:
            gateway.counters = None
            try:
                if gateway.parked:
                    gateway.unpark()
                else:
                    gateway.reset(str(config.get("topic_prefix", "")))
            except BaseException:
                self.retire(gateway)
                raise
            return gateway
        prefix = str(config.get("topic_prefix", ""))
        control_topic = f"edgesim/control/{secrets.token_hex(6)}"
        container = start({**config, "control_topic": control_topic})
        try:
            gateway = PooledGateway(
                self, key, container, control_topic, program=program, isolation=isolation
            )
            gateway.topic_prefix = prefix
        except BaseException:
            container.remove()
            raise
        with self._lock:
            self._all.append(gateway)
        return gateway

    def give_back(self, key: str, gateway: PooledGateway) -> None:
        with self._lock:
            self._idle.setdefault(key, []).append(gateway)

    def retire(self, gateway: PooledGateway) -> None:
        """Remove ``gateway``'s container (it cannot serve another run), in the background:
        its topics are its run's alone, so the next run need not wait for the removal."""
        with self._lock:
            if gateway in self._all:
                self._all.remove(gateway)
        removal = threading.Thread(target=self._close_quietly, args=(gateway,), daemon=True)
        removal.start()
        self._removals.append(removal)

    def _close_quietly(self, gateway: PooledGateway) -> None:
        try:
            gateway.close()
        except Exception as error:  # reported by close()
            self._removal_errors.append(error)

    def close(self) -> None:
        """Remove every container the pool started (all of them, even when one fails)."""
        errors: list[BaseException] = []
        while self._removals:
            self._removals.pop().join()
        errors += self._removal_errors
        while self._all:
            try:
                self._all.pop().close()
            except Exception as error:
                errors.append(error)
        if errors:
            raise errors[0]
