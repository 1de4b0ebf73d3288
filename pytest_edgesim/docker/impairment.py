"""One way to impair a container's link, whichever mechanism the machine allows.

:func:`impair` applies latency, jitter, loss and a rate cap with ``tc netem`` when the
engine's kernel has it (the real mechanism, on the container's egress), and otherwise with
the in-process TCP proxy of :mod:`.proxy` in front of the container's published port,
saying once that it fell back. Either way clients connect to ``impairment.host`` and
``impairment.port``, and ``impairment.mechanism`` (``"netem"`` or ``"proxy"``) says which
one ran, for reports. The same words as scenarios are accepted: durations such as
``"50ms"`` or seconds, a loss probability, a bandwidth such as ``"1Mbps"`` or bits/s.

Where the delay applies differs, and so does what a message through a broker sees: netem
delays what the container *sends* (its egress), so a message from a publisher through the
broker to a subscriber is delayed once, by the broker's egress; the proxy delays both
directions of every connection through it, so the same message is delayed twice (publisher
to broker, broker to subscriber) when both clients connect through the proxy. Loss is
modelled alike: netem drops packets and TCP retransmits them; the proxy delays the
affected chunk by a retransmission timeout. Over TCP both show up as delay, not as missing
bytes (see :mod:`.proxy`).
"""

from __future__ import annotations

import statistics
import threading
import warnings
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import docker

from pytest_edgesim.core.impairment_check import (
    DEFAULT_FALSE_ALARM,
    ImpairmentCheck,
    check_latency,
    check_loss,
    classify,
)
from pytest_edgesim.core.units import TICKS_PER_MS, parse_bandwidth, parse_duration
from pytest_edgesim.docker.netem import (
    NetemSettings,
    apply_netem,
    clear_netem,
    netem_support,
    warn_unavailable_once,
)
from pytest_edgesim.docker.proxy import RTO_MIN_S, CutMode, LinkProfile, TcpProxy
from pytest_edgesim.errors import EdgesimError

Mechanism = Literal["netem", "proxy"]
#: a chunk the proxy wrote later than this after its model's time is left out of the
#: self-check (the host stalled it; see :meth:`Impairment.self_check`)
STALL_S = 0.05

_UNCHANGED = object()


class ImpairmentError(EdgesimError):
    """An impairment cannot be applied as asked (the message says why and what would work)."""


class ImpairmentMismatchWarning(UserWarning):
    """What a link measurably did differs from the impairment asked for (numbers inside)."""


@runtime_checkable
class ContainerEndpoint(Protocol):
    """A container with a published service port, e.g. :class:`.broker.BrokerContainer`."""

    container_id: str
    host: str
    port: int
    client: docker.DockerClient


@dataclass(frozen=True)
class ImpairmentSpec:
    """Impairment in the units both mechanisms use."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_rate: float = 0.0
    rate_kbit_s: float | None = None

    @classmethod
    def parse(
        cls, latency: object = 0, jitter: object = 0, loss: float = 0.0, rate: object = None
    ) -> ImpairmentSpec:
        """From scenario-style values; a bad one raises :class:`ImpairmentError` naming it."""
        values: dict[str, float | None] = {}
        for field_name, value in (("latency", latency), ("jitter", jitter)):
            try:
                values[f"{field_name}_ms"] = parse_duration(value) / TICKS_PER_MS
            except ValueError as error:
                raise ImpairmentError(f"impair(): {field_name} {error}") from error
        if isinstance(loss, bool) or not isinstance(loss, (int, float)) or not 0 <= loss < 1:
            raise ImpairmentError(f"impair(): loss must be a probability in [0, 1), got {loss!r}")
        values["loss_rate"] = float(loss)
        try:
            values["rate_kbit_s"] = None if rate is None else parse_bandwidth(rate) / 1000.0
        except ValueError as error:
            raise ImpairmentError(f"impair(): rate {error}") from error
        return cls(**values)  # type: ignore[arg-type]

    def netem(self) -> NetemSettings:
        return NetemSettings(self.latency_ms, self.jitter_ms, self.loss_rate, self.rate_kbit_s)

    def proxy(self) -> LinkProfile:
        return LinkProfile(self.latency_ms, self.jitter_ms, self.loss_rate, self.rate_kbit_s)


_used_lock = threading.Lock()
_mechanisms_used: dict[str, str] = {}


def mechanisms_used() -> dict[str, str]:
    """Each mechanism used in this process so far, with why it was chosen (for reports)."""
    with _used_lock:
        return dict(_mechanisms_used)


class Impairment:
    """An applied impairment: where to connect, which mechanism, and how to change or end it."""

    def __init__(
        self,
        mechanism: Mechanism,
        spec: ImpairmentSpec,
        host: str,
        port: int,
        reason: str,
        *,
        proxy: TcpProxy | None = None,
        target: ContainerEndpoint | None = None,
        helper_image: str | None = None,
    ):
        self.mechanism: Mechanism = mechanism
        self.spec = spec
        self.host = host
        self.port = port
        self.reason = reason
        self.proxy = proxy
        self._target = target
        self._helper_image = helper_image
        self._cut = False
        #: the proxy's epoch -> the spec asked for in it (see :meth:`self_check`)
        self._asked: dict[int, ImpairmentSpec] = {proxy.epoch if proxy else 0: spec}
        self._checked = False
        with _used_lock:
            _mechanisms_used.setdefault(mechanism, reason)

    def __repr__(self) -> str:
        return f"<Impairment {self.mechanism} {self.spec} at {self.host}:{self.port}>"

    @property
    def report_line(self) -> str:
        """One line for a test report: ``impairment: proxy (tc netem unavailable: ...)``."""
        return f"impairment: {self.mechanism} ({self.reason})"

    def update(
        self,
        latency: object = None,
        jitter: object = None,
        loss: float | None = None,
        rate: object = _UNCHANGED,
    ) -> None:
        """Change some settings; the others stay. ``rate=None`` lifts the rate cap."""
        spec = self.spec
        changed = ImpairmentSpec.parse(
            f"{spec.latency_ms}ms" if latency is None else latency,
            f"{spec.jitter_ms}ms" if jitter is None else jitter,
            spec.loss_rate if loss is None else loss,
            _bits(spec.rate_kbit_s) if rate is _UNCHANGED else rate,
        )
        self.spec = changed
        self._apply()

    def cut(self, mode: CutMode = "blackhole") -> None:
        """Partition the link: netem drops every packet; the proxy holds or resets (its doc)."""
        self._cut = True
        if self.proxy is not None:
            self.proxy.cut(mode)
        else:
            self._apply()

    def heal(self) -> None:
        self._cut = False
        if self.proxy is not None:
            self.proxy.heal()
        else:
            self._apply()

    def self_check(
        self, false_alarm: float = DEFAULT_FALSE_ALARM
    ) -> list[tuple[ImpairmentSpec, ImpairmentCheck]]:
        """What the link measurably did, against what was asked: per setting in force (each
        :meth:`update` starts one) and per check (latency, loss), the comparison; checks
        with too few chunks are left out (see :mod:`pytest_edgesim.core.impairment_check`).

        Only the proxy times what it forwards; a netem impairment is applied by the kernel
        and is not measured here (an empty list); nor is a setting with a rate cap
        (serialisation delays each chunk by its size and those queued ahead). The proxy's
        own timer delay on a loaded host (how late it wrote each chunk after its model's
        time) is allowed for, and said; a chunk it wrote more than ``STALL_S`` late is not
        judged at all."""
        if self.proxy is None:
            return []
        by_direction: dict[tuple[int, int, str], list[tuple[float, float]]] = {}
        lateness_s: dict[int, list[float]] = {}
        for epoch, index, way, received_s, scheduled_s, written_s in self.proxy.measurements():
            late_s = max(0.0, written_s - scheduled_s)
            lateness_s.setdefault(epoch, []).append(late_s)
            if late_s > STALL_S:
                # (the proxy itself stalled, a loaded host: the chunk's delay says nothing of
                # the link, and a stall as long as a retransmission would read as a loss)
                continue
            by_direction.setdefault((epoch, index, way), []).append((received_s, written_s))
        latest = self._asked[max(self._asked)]
        results = []
        for epoch in sorted({key[0] for key in by_direction}):
            asked = self._asked.get(epoch, latest)
            if asked.rate_kbit_s is not None:
                continue  # (serialisation delays chunks by their size: neither check holds)
            delays: list[float] = []
            lost = judged = 0
            for key, chunks in sorted(by_direction.items()):
                if key[0] != epoch:
                    continue
                ok, missed, seen = classify(
                    chunks, asked.latency_ms, asked.jitter_ms, RTO_MIN_S * 1000.0
                )
                delays += ok
                lost += missed
                judged += seen
            checks = [
                check_loss(asked.loss_rate, lost, judged, false_alarm=false_alarm),
                check_latency(
                    asked.latency_ms,
                    asked.jitter_ms,
                    delays,
                    false_alarm=false_alarm,
                    lateness_ms=1000.0 * statistics.fmean(lateness_s[epoch]),
                ),
            ]
            results += [(asked, check) for check in checks if check is not None]
        return results

    def mismatches(self, false_alarm: float = DEFAULT_FALSE_ALARM) -> list[str]:
        """The checks of :meth:`self_check` that failed, one line each."""
        return [check.describe() for _, check in self.self_check(false_alarm) if not check.ok]

    def warn_on_mismatch(self, false_alarm: float = DEFAULT_FALSE_ALARM) -> list[str]:
        """Warn (:class:`ImpairmentMismatchWarning`, once) when what was measured does not
        fit what was asked; returns the mismatches. :meth:`remove` calls it."""
        if self._checked:
            return []
        self._checked = True
        problems = self.mismatches(false_alarm)
        if problems:
            warnings.warn(
                ImpairmentMismatchWarning(
                    f"impairment {self.proxy.name if self.proxy else ''} of "
                    f"{self.host}:{self.port} ({self.mechanism}) did not apply what was asked: "
                    + "; ".join(problems)
                ),
                stacklevel=2,
            )
        return problems

    def remove(self) -> None:
        """Take the impairment off (stop the proxy, or delete the qdisc), after checking
        that what it measurably applied is what was asked (:meth:`warn_on_mismatch`)."""
        if self.proxy is not None:
            self.warn_on_mismatch()
            self.proxy.close()
        elif self._target is not None:
            clear_netem(
                self._target.client, self._target.container_id, helper_image=self._helper_image
            )

    def __enter__(self) -> Impairment:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def _apply(self) -> None:
        if self.proxy is not None:
            self.proxy.set_profile(self.spec.proxy())
            self._asked[self.proxy.epoch] = self.spec
            return
        assert self._target is not None
        settings = self.spec.netem()
        if self._cut:
            settings = NetemSettings(settings.latency_ms, settings.jitter_ms, 1.0)
        apply_netem(
            self._target.client,
            self._target.container_id,
            settings,
            helper_image=self._helper_image,
        )


def impair(
    target: ContainerEndpoint | tuple[str, int],
    *,
    latency: object = 0,
    jitter: object = 0,
    loss: float = 0.0,
    rate: object = None,
    mechanism: Literal["auto", "netem", "proxy"] = "auto",
    seed: int = 0,
    name: str = "impairment",
    helper_image: str | None = None,
    listen_host: str = "127.0.0.1",
) -> Impairment:
    """Impair the link to ``target``: a container with a published port, or ``(host, port)``.

    ``mechanism="auto"`` uses netem when the engine's kernel has it, else the proxy (with one
    :class:`.netem.NetemUnavailableWarning` per process). ``"netem"`` fails if it cannot run;
    ``"proxy"`` always uses the proxy. A plain address can only be proxied. ``seed`` and
    ``name`` name the proxy's random streams. The proxy listens on ``listen_host``: the
    loopback by default; ``"0.0.0.0"`` lets containers connect through it, at the host's
    address on their network (``host.docker.internal`` when the container is run with
    ``extra_hosts={"host.docker.internal": "host-gateway"}``).
    """
    spec = ImpairmentSpec.parse(latency, jitter, loss, rate)
    if mechanism not in ("auto", "netem", "proxy"):
        raise ImpairmentError(
            f"impair(): mechanism must be 'auto', 'netem' or 'proxy', got {mechanism!r}"
        )
    container = target if isinstance(target, ContainerEndpoint) else None
    reason = "asked for the proxy"
    if mechanism != "proxy":
        if container is None:
            if mechanism == "netem":
                raise ImpairmentError(
                    f"impair(): netem needs a container, but {target!r} is only an address"
                )
            reason = "an address, not a container: only the proxy applies"
        else:
            support = netem_support(container.client, helper_image)
            if support.available:
                impairment = Impairment(
                    "netem",
                    spec,
                    container.host,
                    container.port,
                    support.reason,
                    target=container,
                    helper_image=helper_image,
                )
                impairment._apply()
                return impairment
            if mechanism == "netem":
                raise ImpairmentError(f"impair(): tc netem is unavailable: {support.reason}")
            warn_unavailable_once(support)
            reason = f"tc netem unavailable: {support.reason}"
    if container is not None:
        upstream: tuple[str, int] = (container.host, container.port)
    else:
        assert isinstance(target, tuple)
        upstream = target
    proxy = TcpProxy(upstream, spec.proxy(), seed=seed, name=name, listen_host=listen_host)
    proxy.start()
    host = "127.0.0.1" if listen_host in ("0.0.0.0", "") else listen_host
    return Impairment("proxy", spec, host, proxy.port, reason, proxy=proxy)


def _bits(rate_kbit_s: float | None) -> int | None:
    return None if rate_kbit_s is None else round(rate_kbit_s * 1000)
