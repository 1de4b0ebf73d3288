"""The scenario schema (``edgesim: 1``) as pydantic models.

Values people write ("20ms", "1Mbps", 0.01, a bare duration for a constant delay) are
normalised here: every duration becomes integer ticks, every bandwidth integer bits per
second. Models are frozen; a changed scenario is a new scenario (see ``with_overrides``).
Cross-references between fields (names, patterns, topics) are checked in ``checks``.
"""

from __future__ import annotations

import numbers
import re
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    model_validator,
)

from pytest_edgesim.core.aggregation import is_value_field
from pytest_edgesim.core.units import TICKS_PER_SECOND, parse_bandwidth, parse_duration, parse_rate
from pytest_edgesim.errors import ScenarioError

#: the largest root seed (seeds are 0 .. 2**63-1, whole numbers)
MAX_SEED: Final = 2**63 - 1
#: the largest MQTT payload (the protocol's remaining-length limit)
MAX_PAYLOAD_BYTES: Final = 268_435_455
#: the largest aggregation count and queue capacity
MAX_COUNT: Final = 1_000_000_000


def _probability(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number between 0 and 1, got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"must be between 0 and 1, got {value!r}")
    return float(value)


def _positive_duration(value: object) -> int:
    ticks = parse_duration(value)
    if ticks <= 0:
        raise ValueError(f"must be longer than zero, got {value!r}")
    return ticks


def _seed(value: object) -> int:
    # bool is an int to Python, but ``seed: true`` is a mistake, not seed 1; a float or a
    # string is never silently truncated or parsed (numpy integers are welcome)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"must be a whole number from 0 to 2**63-1, got {value!r}")
    seed = int(value)
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"must be from 0 to 2**63-1, got {value!r}")
    return seed


def _value_field(value: object) -> str:
    if not is_value_field(value):
        raise ValueError(
            f"must be a field name, or a dotted path such as 'sensor.temp', got {value!r}"
        )
    return value


def check_seed(value: object, where: str = "seed") -> int:
    """``value`` if it is a root seed (an ``int`` from 0 to 2**63-1, not a bool), else a
    :class:`~pytest_edgesim.errors.ScenarioError` saying so, prefixed by ``where``
    (``"--seed"`` for a command-line option). The scenario's ``seed`` field, overrides and
    ``simulate(seed=...)`` all check seeds here."""
    try:
        return _seed(value)
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def _offset(value: object) -> int | str:
    if value == "random":
        return "random"
    try:
        return parse_duration(value)
    except ValueError as exc:
        if isinstance(value, str) and not value.strip()[:1].isdigit():
            raise ValueError(f"must be a duration or 'random', got {value!r}") from None
        raise exc from None


Ticks = Annotated[int, BeforeValidator(parse_duration)]
PositiveTicks = Annotated[int, BeforeValidator(_positive_duration)]
Probability = Annotated[float, BeforeValidator(_probability)]
Seed = Annotated[int, BeforeValidator(_seed)]
BitsPerSecond = Annotated[int, BeforeValidator(parse_bandwidth)]
PerSecond = Annotated[float, BeforeValidator(parse_rate)]


def _qos(value: object) -> object:
    # (``qos: true`` is a mistake, not QoS 1: Literal[0, 1] alone would take it)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be 0 or 1, got {value!r}")
    return value


QoS = Annotated[Literal[0, 1], BeforeValidator(_qos)]
NAME_PATTERN = r"^[A-Za-z0-9_.:{}-]+$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, min_length=1, max_length=128)]


class _Strict(BaseModel):
    # infinity and NaN are never meant: every number in a scenario is finite
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


def _tag_shorthand(tag_field: str, default_tag: str, shorthand_field: str | None):
    """A before-validator: a bare scalar means ``{tag: default, shorthand_field: value}``;
    a mapping without the tag gets the default tag."""

    def normalise(value: Any) -> Any:
        if isinstance(value, dict):
            if tag_field not in value:
                return {tag_field: default_tag, **value}
            return value
        if shorthand_field is not None and not isinstance(value, (list, tuple)):
            return {tag_field: default_tag, shorthand_field: value}
        return value

    return BeforeValidator(normalise)


# --- delay distributions (processing delays) ---------------------------------------------
class ConstantDelay(_Strict):
    distribution: Literal["constant"] = "constant"
    value: Ticks = 0


class UniformDelay(_Strict):
    distribution: Literal["uniform"]
    low: Ticks
    high: Ticks

    @model_validator(mode="after")
    def _ordered(self) -> UniformDelay:
        if self.high < self.low:
            raise ValueError("high must not be below low")
        return self


class NormalDelay(_Strict):
    """Normal distribution truncated at zero (negative draws are drawn again)."""

    distribution: Literal["normal"]
    mean: Ticks
    stddev: Ticks


class ExponentialDelay(_Strict):
    distribution: Literal["exponential"]
    mean: PositiveTicks


Delay = Annotated[
    ConstantDelay | UniformDelay | NormalDelay | ExponentialDelay,
    Field(discriminator="distribution"),
    _tag_shorthand("distribution", "constant", "value"),
]


# --- link impairments ---------------------------------------------------------------------
class UniformJitter(_Strict):
    """Adds a uniform draw from [-max, +max] to the base latency."""

    distribution: Literal["uniform"] = "uniform"
    max: Ticks


class NormalJitter(_Strict):
    """Adds a normal draw N(0, stddev) to the base latency."""

    distribution: Literal["normal"]
    stddev: Ticks


Jitter = Annotated[
    UniformJitter | NormalJitter,
    Field(discriminator="distribution"),
    _tag_shorthand("distribution", "uniform", "max"),
]


class BernoulliLoss(_Strict):
    """Each packet is lost independently with probability ``rate``."""

    model: Literal["bernoulli"] = "bernoulli"
    rate: Probability


class GilbertElliottLoss(_Strict):
    """Two-state bursty loss: a Good and a Bad state with their own loss probabilities."""

    model: Literal["gilbert_elliott"]
    p_good_to_bad: Probability
    p_bad_to_good: Probability
    loss_good: Probability = 0.0
    loss_bad: Probability = 1.0


Loss = Annotated[
    BernoulliLoss | GilbertElliottLoss,
    Field(discriminator="model"),
    _tag_shorthand("model", "bernoulli", "rate"),
]


class LinkSettings(_Strict):
    """Impairments of a link; in ``links`` entries every field is optional and inherits."""

    latency: Ticks | None = None
    jitter: Jitter | None = None
    loss: Loss | None = None
    bandwidth: BitsPerSecond | None = None
    reorder: bool | None = Field(None, strict=True)


class LinkRule(LinkSettings):
    """Settings for the links from nodes matching ``from`` to nodes matching ``to`` (globs)."""

    from_: str = Field(alias="from", min_length=1)
    to: str = Field(min_length=1)
    bidirectional: bool = Field(True, strict=True)


Side = Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]


class PartitionSpec(_Strict):
    """A cut between two groups of nodes (glob patterns), down from ``start`` to ``end``."""

    between: tuple[Side, Side]
    start: Ticks = 0
    end: Ticks | None = None

    @model_validator(mode="after")
    def _ordered(self) -> PartitionSpec:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class NetworkSpec(_Strict):
    model: Literal["latency", "direct"] = "latency"
    default: LinkSettings = LinkSettings()
    links: list[LinkRule] = []
    partitions: list[PartitionSpec] = []


# --- devices ------------------------------------------------------------------------------
def _publishing_window(start: int, stop: int | None) -> None:
    if stop is not None and stop <= start:
        raise ValueError("stop must be after start")


class PeriodicPublish(_Strict):
    mode: Literal["periodic"] = "periodic"
    period: PositiveTicks = TICKS_PER_SECOND
    #: each publication moves by a uniform draw from [-jitter, +jitter]
    jitter: Ticks = 0
    #: phase of the first publication; "random" draws it uniformly from [0, period)
    offset: Annotated[int | Literal["random"], BeforeValidator(_offset)] = "random"
    start: Ticks = 0
    stop: Ticks | None = None

    @model_validator(mode="after")
    def _ordered(self) -> PeriodicPublish:
        _publishing_window(self.start, self.stop)
        return self


class PoissonPublish(_Strict):
    mode: Literal["poisson"]
    rate: PerSecond
    start: Ticks = 0
    stop: Ticks | None = None

    @model_validator(mode="after")
    def _ordered(self) -> PoissonPublish:
        _publishing_window(self.start, self.stop)
        return self


Publish = Annotated[
    PeriodicPublish | PoissonPublish,
    Field(discriminator="mode"),
    _tag_shorthand("mode", "periodic", None),
]


class ConstantValue(_Strict):
    model: Literal["constant"] = "constant"
    value: float = 0.0


class RandomWalkValue(_Strict):
    model: Literal["random_walk"]
    start: float = 0.0
    #: standard deviation of each normal step
    step: float = Field(1.0, ge=0)
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> RandomWalkValue:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) must not be above max ({self.max:g})")
        return self


class SineValue(_Strict):
    model: Literal["sine"]
    mean: float = 0.0
    amplitude: float = 1.0
    period: PositiveTicks = 60 * TICKS_PER_SECOND
    phase: Ticks = 0
    #: standard deviation of normal noise added to each value
    noise: float = Field(0.0, ge=0)


class ReplayValue(_Strict):
    """Values read from a CSV file (path relative to the scenario file)."""

    model: Literal["replay"]
    file: str = Field(min_length=1)
    column: str | int = 0
    loop: bool = Field(True, strict=True)

    @model_validator(mode="after")
    def _column_index(self) -> ReplayValue:
        if isinstance(self.column, int) and self.column < 0:
            raise ValueError(f"column must be a header name or an index from 0, got {self.column}")
        return self


ValueModel = Annotated[
    ConstantValue | RandomWalkValue | SineValue | ReplayValue,
    Field(discriminator="model"),
    _tag_shorthand("model", "constant", "value"),
]


class DeviceSpec(_Strict):
    """A sensor, or ``count`` identical sensors named from the ``name`` template."""

    name: Name
    count: int = Field(1, ge=1, le=10_000_000, strict=True)
    type: Literal["sensor"] = "sensor"
    #: template; ``{name}`` and ``{index}`` are filled in per device
    topic: str = Field("sensors/{name}", min_length=1)
    qos: QoS = 0
    retain: bool = Field(False, strict=True)
    payload_bytes: int = Field(64, ge=0, le=MAX_PAYLOAD_BYTES, strict=True)
    publish: Publish = PeriodicPublish()
    value: ValueModel = ConstantValue()


# --- gateways, broker, cloud --------------------------------------------------------------
class Subscription(_Strict):
    filter: str = Field(min_length=1)
    qos: QoS = 0


class AggregateSpec(_Strict):
    """Emit an aggregate every ``count`` readings and/or every ``window``, whichever first."""

    count: int | None = Field(None, ge=1, le=MAX_COUNT, strict=True)
    window: PositiveTicks | None = None
    functions: list[Literal["mean", "min", "max", "count", "sum", "last"]] = [
        "mean",
        "min",
        "max",
        "count",
    ]
    group_by: Literal["none", "topic", "device"] = "none"
    #: the field of an object payload that holds the reading's number; a dotted path reads
    #: nested objects ("sensor.temp"); "mean" takes another gateway's aggregates
    value_field: Annotated[str, BeforeValidator(_value_field)] = "value"

    @model_validator(mode="after")
    def _has_trigger(self) -> AggregateSpec:
        if self.count is None and self.window is None:
            raise ValueError("needs count, window, or both")
        if not self.functions:
            raise ValueError("functions must name at least one of mean, min, max, count, sum, last")
        return self


class QueueSpec(_Strict):
    capacity: int = Field(1000, ge=1, le=MAX_COUNT, strict=True)
    #: when full: "newest" drops the arriving message, "oldest" drops the head of the queue
    drop: Literal["newest", "oldest"] = "newest"


class BufferSpec(_Strict):
    """A gateway's store-and-forward buffer: what it forwards while its uplink is down
    (``backhaul_outage``) waits here, up to ``capacity`` messages, and goes out when the
    uplink is back; when full, the arriving forward (``newest``) or the oldest waiting one
    (``oldest``) is lost, counted as ``storage_full``."""

    capacity: int = Field(ge=0, le=MAX_COUNT, strict=True)
    drop: Literal["newest", "oldest"] = "oldest"


class ForwardSpec(_Strict):
    to: str = "cloud"
    #: the store-and-forward buffer (None: what is forwarded while the uplink is down is lost)
    buffer: BufferSpec | None = None
    topic: str = Field("cloud/{gateway}/aggregate", min_length=1)
    qos: QoS = 0
    payload_bytes: int = Field(128, ge=0, le=MAX_PAYLOAD_BYTES, strict=True)


#: Docker's image reference grammar (github.com/distribution/reference):
#: ``[HOST[:PORT]/]PATH[:TAG][@DIGEST]``, PATH being ``/``-separated lower-case components
_IMAGE_REFERENCE = re.compile(
    r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)


def _image_reference(value: str) -> str:
    if not _IMAGE_REFERENCE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Docker image reference: expected [REGISTRY[:PORT]/]NAME[:TAG], "
            "NAME being lower-case letters and digits in parts separated by '/' (joined within "
            "a part by '.', '_' or '-'), such as 'edgesim/gateway' or 'registry.local:5000/"
            "team/node:1.2'"
        )
    return value


#: what a gateway container's ``command`` and ``environment`` values may name in braces;
#: the values are filled in per container (see docs/your-system.md)
PLACEHOLDERS: Final = (
    "broker_host",
    "broker_port",
    "broker_username",
    "broker_password",
    "topic_prefix",
    "name",
    "client_id",
    "control_topic",
)
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def _placeholders(value: str) -> str:
    """``value`` if every ``{word}`` in it is a placeholder; other braces (JSON) are text."""
    for match in _PLACEHOLDER.finditer(value):
        if match.group(1) not in PLACEHOLDERS:
            known = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
            raise ValueError(
                f"unknown placeholder {match.group(0)} in {value!r}: the placeholders are {known}"
            )
    return value


Templated = Annotated[str, AfterValidator(_placeholders)]


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as error:
        raise ValueError(f"{value!r} is not a regular expression: {error}") from None
    return value


def _ready_shorthand(value: Any) -> Any:
    if value == "subscribed":
        return {"subscribed": True}
    if isinstance(value, str):
        raise ValueError(
            f"must be 'subscribed' or one of {{subscribed: true}}, {{log: REGEX}}, {{port: N}}, "
            f"{{command: [...]}} (with an optional timeout), got {value!r}"
        )
    return value


class ReadySettings(_Strict):
    """When a gateway container is ready (one strategy, as testcontainers' wait strategies),
    and how long to wait for it. No strategy: the image's default (the project's image: its
    ``gateway NAME ready`` line; any other image: ``subscribed``)."""

    #: the broker has logged a subscription of the gateway's to each of its ``subscribe``
    #: filters (under the trial's prefix)
    subscribed: bool = Field(False, strict=True)
    #: a line of the container's output matches this regular expression
    log: Annotated[str, AfterValidator(_regex)] | None = Field(None, min_length=1)
    #: this TCP port accepts connections at the container's address
    port: int | None = Field(None, ge=1, le=65535, strict=True)
    #: this command, run inside the container, exits 0
    command: list[str] | None = Field(None, min_length=1)
    timeout: PositiveTicks = 30 * TICKS_PER_SECOND

    @model_validator(mode="after")
    def _one_strategy(self) -> ReadySettings:
        chosen = self._chosen()
        if len(chosen) > 1:
            raise ValueError(
                f"choose one of subscribed, log, port and command, not {' and '.join(chosen)}"
            )
        return self

    @property
    def strategy(self) -> str | None:
        """``subscribed``, ``log``, ``port``, ``command``, or None (the image's default)."""
        chosen = self._chosen()
        return chosen[0] if chosen else None

    def _chosen(self) -> list[str]:
        strategies = ("log", "port", "command")
        chosen = [name for name in strategies if getattr(self, name) is not None]
        return ["subscribed", *chosen] if self.subscribed else chosen


class DockerSettings(_Strict):
    #: "mqtt": real broker, wall clock (statistical); "lockstep": virtual time over a socket
    mode: Literal["mqtt", "lockstep"] = "mqtt"
    image: Annotated[str, AfterValidator(_image_reference)] | None = None
    build: str | None = None
    #: the container's command instead of the image's (placeholders filled in; mqtt mode)
    command: list[Templated] | None = Field(None, min_length=1)
    environment: dict[str, Templated] = {}
    #: when the container is ready (mqtt mode)
    ready: Annotated[ReadySettings, BeforeValidator(_ready_shorthand)] = ReadySettings()
    #: how trials are kept apart (mqtt mode): "prefix" (each trial its own topic prefix, which
    #: the program takes through ``{topic_prefix}``) or "restart" (the container restarts
    #: between trials and keeps its own topics); unset: "prefix" if the command or the
    #: environment uses ``{topic_prefix}``, else "restart"
    isolation: Literal["prefix", "restart"] | None = None

    def takes_topic_prefix(self) -> bool:
        """Whether the command or an environment value uses ``{topic_prefix}``."""
        values = [*(self.command or []), *self.environment.values()]
        return any("{topic_prefix}" in value for value in values)


Implementation = Literal["python_model", "docker"]
#: a gateway may also be the user's own logic, run in this process (``python``)
GatewayImplementation = Literal["python_model", "python", "docker"]

_LOGIC_REFERENCE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


def _logic_reference(value: str) -> str:
    if not _LOGIC_REFERENCE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a logic reference: expected 'module:Name' (a NodeLogic "
            "subclass or a factory), such as 'mypkg.gateway:MovingAverage'"
        )
    return value


#: the settings of the project's gateway, which a user's logic does not read
_PROJECT_GATEWAY_SETTINGS = ("aggregate", "processing_delay", "queue")


class SessionSpec(_Strict):
    """A gateway's MQTT session at the broker. Without it the connection is not modelled
    (the subscriber never goes offline); with it, a partition between the gateway and the
    broker that lasts 1.5 x ``keepalive`` disconnects it, and ``clean`` says what survives."""

    #: MQTT's clean session flag: false keeps subscriptions and queues messages while offline
    clean: bool = Field(True, strict=True)
    #: the client's keep-alive interval; the broker gives up on it after 1.5 times this
    keepalive: PositiveTicks = 60 * TICKS_PER_SECOND
    #: MQTT 5's session expiry interval: the broker discards a persistent session that has
    #: been offline this long (None: never, as MQTT 3.1.1)
    expiry: Ticks | None = None

    @model_validator(mode="after")
    def _expiry_is_persistent(self) -> SessionSpec:
        if self.expiry is not None and self.clean:
            raise ValueError("expiry is for a persistent session: give clean: false with it")
        return self


def _subscriptions(value: Any) -> Any:
    if isinstance(value, (str, dict)):
        value = [value]
    if isinstance(value, list):
        return [{"filter": item} if isinstance(item, str) else item for item in value]
    return value


class GatewaySpec(_Strict):
    name: Name
    implementation: GatewayImplementation = "python_model"
    subscribe: Annotated[list[Subscription], BeforeValidator(_subscriptions)] = Field(min_length=1)
    #: without ``aggregate`` every reading is forwarded on its own
    aggregate: AggregateSpec | None = None
    processing_delay: Delay = ConstantDelay()
    queue: QueueSpec = QueueSpec()
    forward: ForwardSpec = ForwardSpec()
    #: the MQTT session at the broker; None: the connection is not modelled
    session: SessionSpec | None = None
    docker: DockerSettings | None = None
    #: the user's own gateway logic, ``module:Name`` (``implementation: python``, or
    #: ``docker``: a container built with the user's package)
    logic: Annotated[str, AfterValidator(_logic_reference)] | None = None
    #: the user's logic's own settings, handed to it as ``config`` (JSON values)
    config: dict[str, JsonValue] = {}

    @model_validator(mode="after")
    def _logic_goes_with_its_implementation(self) -> GatewaySpec:
        if self.logic is None:
            if self.implementation == "python":
                raise ValueError(
                    "implementation: python runs your own logic: add logic: 'module:Name' "
                    "(a NodeLogic subclass, such as 'mypkg.gateway:MovingAverage')"
                )
            if self.config:
                raise ValueError(
                    "config: is the settings of your own logic (logic: 'module:Name'); the "
                    "project's gateway takes aggregate:, processing_delay: and queue:"
                )
            return self
        if self.implementation == "python_model":
            raise ValueError(
                "logic: runs with implementation: python (in this process) or docker (in a "
                "container built with your package); python_model is the project's gateway"
            )
        given = [key for key in _PROJECT_GATEWAY_SETTINGS if key in self.model_fields_set]
        if given:
            raise ValueError(
                f"{', '.join(given)}: settings of the project's gateway, which your logic does "
                "not read; put your logic's settings under config:"
            )
        return self

    @property
    def forward_topic(self) -> str:
        """The topic it publishes on, ``{gateway}`` filled in with its name."""
        return self.forward.topic.replace("{gateway}", self.name)

    @property
    def kind(self) -> str:
        """How the gateway runs, derived here only: ``python_model`` (the project's gateway
        in this process), ``python_logic`` (the user's logic in this process),
        ``docker_lockstep`` (a container in virtual time) or ``docker_mqtt`` (a container on a
        real broker, on the wall clock); the name of a
        :class:`~pytest_edgesim.core.gateway_kinds.GatewayKind`."""
        if self.implementation == "python_model":
            return "python_model"
        if self.implementation == "python":
            return "python_logic"
        mode = self.docker.mode if self.docker is not None else "mqtt"
        return f"docker_{mode}"


#: the Debian releases whose Mosquitto a scenario's broker can run (``docker.release``)
BROKER_RELEASES: Final = ("bookworm", "trixie", "forky")


class BrokerDockerSettings(_Strict):
    """Which real broker runs in live runs: Mosquitto from a Debian ``release``, the user's
    ``image`` on the engine, or the user's ``build`` context (relative to the scenario
    file); at most one of the three (none: the project's broker, Debian bookworm)."""

    release: Literal["bookworm", "trixie", "forky"] | None = None
    image: Annotated[str, AfterValidator(_image_reference)] | None = None
    build: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> BrokerDockerSettings:
        given = [name for name in ("release", "image", "build") if getattr(self, name)]
        if len(given) > 1:
            raise ValueError(f"give one of release, image and build, not {' and '.join(given)}")
        return self


class BrokerSpec(_Strict):
    name: Name = "broker"
    implementation: Implementation = "python_model"
    processing_delay: Delay = ConstantDelay()
    #: QoS 1: resend an unacknowledged PUBLISH after this long
    retry_interval: PositiveTicks = TICKS_PER_SECOND
    #: Mosquitto's options of these names. QoS 1 messages in flight to one client at once
    #: (0: no limit; Mosquitto's default is 20, the model's is 0 so that scenarios written
    #: before the limit existed run as they did)
    max_inflight_messages: int = Field(0, ge=0, strict=True)
    #: messages queued for one offline or busy client beyond those in flight (0: no limit)
    max_queued_messages: int = Field(1000, ge=0, strict=True)
    #: queue QoS 0 messages for an offline persistent client too
    queue_qos0_messages: bool = Field(False, strict=True)
    docker: BrokerDockerSettings | None = None
    #: the user's mosquitto.conf (relative to the scenario file), for implementation: docker
    config: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _real_broker_settings(self) -> BrokerSpec:
        if self.implementation != "docker":
            given = [name for name in ("docker", "config") if getattr(self, name) is not None]
            if given:
                verb = "applies" if len(given) == 1 else "apply"
                raise ValueError(
                    f"{' and '.join(given)} {verb} to a real broker only: add "
                    "implementation: docker"
                )
        return self


class CloudSpec(_Strict):
    name: Name = "cloud"


def _signed_duration(value: object) -> int:
    """A duration that may be negative (a clock running behind): ``"-2s"`` or ``-2``."""
    if isinstance(value, str) and value.strip().startswith("-"):
        return -parse_duration(value.strip()[1:])
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        return -parse_duration(-value)
    return parse_duration(value)


SignedTicks = Annotated[int, BeforeValidator(_signed_duration)]

#: the faults of the first schedule form (``at:`` + ``action:``), each also a fault kind
FAULT_ACTIONS: Final = (
    "stop",
    "start",
    "restart",
    "kill",
    "pause",
    "resume",
    "disconnect",
    "reconnect",
)


def _link_name(value: object) -> object:
    if (
        not isinstance(value, str)
        or value.count("->") != 1
        or not all(part.strip() for part in value.split("->"))
    ):
        raise ValueError(f"must name a directed link as 'SOURCE->DESTINATION', got {value!r}")
    return value


class AfterTrigger(_Strict):
    """Fire ``delay`` after another fault (by its ``name``) began, or ended (``of: end``)."""

    fault: Name
    delay: Ticks = 0
    of: Literal["start", "end"] = "start"


class WhenTrigger(_Strict):
    """Fire when an event has happened ``count`` times, then ``delay`` later: a node
    ``subscribed`` at the broker, messages ``received`` by a node, messages ``dropped`` on
    a link (``"SOURCE->DESTINATION"``, any cause)."""

    subscribed: Name | None = None
    received: Name | None = None
    dropped: Annotated[str, BeforeValidator(_link_name)] | None = None
    count: int = Field(1, ge=1, le=MAX_COUNT, strict=True)
    delay: Ticks = 0

    @model_validator(mode="after")
    def _one_event(self) -> WhenTrigger:
        given = [name for name in ("subscribed", "received", "dropped") if getattr(self, name)]
        if len(given) != 1:
            said = f"not {' and '.join(given)}" if given else "got none"
            raise ValueError(f"name one event: subscribed, received or dropped ({said})")
        return self

    @property
    def event(self) -> tuple[str, str]:
        """``(event, subject)``: ``("received", "gw")``."""
        for name in ("subscribed", "received", "dropped"):
            subject = getattr(self, name)
            if subject:
                return name, subject
        raise AssertionError("a trigger names one event")


#: the settings of the built-in fault kinds (a kind declares which of them it takes)
FAULT_SETTINGS: Final = (
    "between",
    "one_way",
    "bridge",
    "latency",
    "jitter",
    "loss",
    "bandwidth",
    "persistence",
    "offset",
    "drift_ppm",
    "period",
    "awake",
    "asleep",
    "params",
)


class FaultSpec(_Strict):
    """One fault of the schedule: a ``kind`` (see :mod:`pytest_edgesim.core.fault_kinds`),
    its target (``target:``, or ``between:`` for the network's kinds), its settings, a
    ``duration`` for one that lasts, and one trigger: ``at`` a virtual time, ``after``
    another fault, or ``when`` an event has happened. The first form, ``at:`` +
    ``action:`` (one of :data:`FAULT_ACTIONS`), is the kind of that name."""

    #: how ``after:`` triggers of other faults name this one
    name: Name | None = None
    kind: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    action: (
        Literal["stop", "start", "restart", "kill", "pause", "resume", "disconnect", "reconnect"]
        | None
    ) = None
    at: Ticks | None = None
    after: AfterTrigger | None = None
    when: WhenTrigger | None = None
    target: Annotated[str, Field(min_length=1)] | None = None
    duration: PositiveTicks | None = None
    # --- the built-in kinds' settings ---------------------------------------------------------
    #: partition, link_change: the two groups of nodes (glob patterns)
    between: tuple[Side, Side] | None = None
    #: partition, link_change: only from the first group to the second
    one_way: bool = Field(False, strict=True)
    #: partition: a node on both sides that still reaches both (Jepsen's bridge)
    bridge: Name | None = None
    latency: Ticks | None = None
    jitter: Ticks | None = None
    loss: Probability | None = None
    bandwidth: BitsPerSecond | None = None
    #: broker_restart: the broker keeps its persistent sessions and retained messages
    persistence: bool = Field(False, strict=True)
    #: clock_skew: how far the node's clock is ahead (negative: behind)
    offset: SignedTicks | None = None
    #: clock_skew: how fast the node's clock runs, in parts per million (negative: slow)
    drift_ppm: float | None = Field(None, ge=-100_000, le=100_000)
    #: duty_cycle: one sleep/wake cycle, and how long of it the device is awake
    period: PositiveTicks | None = None
    awake: PositiveTicks | None = None
    #: duty_cycle: what becomes of a reading due while asleep
    asleep: Literal["buffer", "drop"] = "buffer"
    #: a kind registered by a plugin: its own settings (JSON values)
    params: dict[str, JsonValue] = {}

    @model_validator(mode="after")
    def _against_its_kind(self) -> FaultSpec:
        if self.kind is not None and self.action is not None:
            raise ValueError("give kind (or the older action), not both")
        if self.action is not None:  # the first form: at + action + target
            if self.at is None or self.target is None:
                raise ValueError("a fault with action: needs at: and target: too")
            if self.duration is not None and self.action != "disconnect":
                raise ValueError(f"duration is for disconnect only, not {self.action}")
        if self.kind is None and self.action is None:
            raise ValueError(
                "needs a kind (partition, link_change, restart, backhaul_outage, ...; "
                "see docs/faults.md)"
            )
        triggers = [name for name in ("at", "after", "when") if getattr(self, name) is not None]
        if len(triggers) != 1:
            said = f"not {' and '.join(triggers)}" if triggers else "got none"
            raise ValueError(f"needs one trigger: at, after or when ({said})")
        return self  # (checked against its kind in checks, with the field named)

    @property
    def fault_kind(self) -> str:
        """The kind's name (``action`` in the first form)."""
        kind = self.kind if self.kind is not None else self.action
        assert kind is not None
        return kind

    def describe(self) -> str:
        """``restart gw``, ``partition [gw] | [broker]``: for messages and the trace."""
        if self.between is not None:
            arrow = " -> " if self.one_way else " | "
            where = f"{self.between[0]}{arrow}{self.between[1]}"
        else:
            where = str(self.target)
        return f"{self.name + ': ' if self.name else ''}{self.fault_kind} {where}"


class SwarmKindSpec(_Strict):
    """The bounds of one kind of the swarm catalogue; a field left out takes the section's."""

    probability: Probability | None = None
    max_count: Annotated[int, Field(ge=1, le=100, strict=True)] | None = None
    min_duration: PositiveTicks | None = None
    max_duration: PositiveTicks | None = None
    max_loss: Probability | None = None
    max_latency: Ticks | None = None
    targets: Side | None = None


def _swarm_kinds(value: object) -> object:
    # ``kinds: [partition, gateway_restart]`` is each of them with the section's bounds
    if isinstance(value, (list, tuple)):
        return {name: {} for name in value}
    return value


class SwarmSpec(_Strict):
    """Swarm testing: each run's seed draws its own fault profile (``kinds``: the catalogue
    entries it draws from, each on with ``probability`` and then striking 1 to
    ``max_count`` times between ``start`` and ``end``; None: every kind)."""

    kinds: Annotated[dict[str, SwarmKindSpec], BeforeValidator(_swarm_kinds)] | None = None
    probability: Probability = 0.5
    max_count: Annotated[int, Field(ge=1, le=100, strict=True)] = 2
    start: Ticks = 0
    end: Ticks | None = None
    min_duration: PositiveTicks = 1 * TICKS_PER_SECOND
    max_duration: PositiveTicks = 10 * TICKS_PER_SECOND
    max_loss: Probability = 0.5
    max_latency: Ticks = TICKS_PER_SECOND // 2
    targets: Side = []

    @model_validator(mode="after")
    def _ordered(self) -> SwarmSpec:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        if self.max_duration < self.min_duration:
            raise ValueError("max_duration must be at least min_duration")
        return self


def _version(value: object) -> object:
    # ``edgesim: 1.0`` or ``edgesim: true`` equal 1 to Python, but the version is the integer
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            f"unsupported scenario version {value!r} (write edgesim: 1, a whole number)"
        )
    return value


def _scenario_name(value: object) -> object:
    # (a bytes value, or a Python bytes literal pasted as text, ``b'basic'``, is a mistake)
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {type(value).__name__} {value!r}")
    if not value.isprintable() or any(quote in value for quote in "'\"`"):
        raise ValueError(
            f"must be printable text without quotes or control characters, got {value!r}"
        )
    return value


class ScenarioSpec(_Strict):
    edgesim: Annotated[Literal[1], BeforeValidator(_version)]
    name: (
        Annotated[str, BeforeValidator(_scenario_name), Field(min_length=1, max_length=128)] | None
    ) = None
    description: str = ""
    seed: Seed = 0
    duration: PositiveTicks = 60 * TICKS_PER_SECOND
    broker: BrokerSpec = BrokerSpec()
    cloud: CloudSpec = CloudSpec()
    devices: list[DeviceSpec] = []
    gateways: list[GatewaySpec] = []
    network: NetworkSpec = NetworkSpec()
    faults: list[FaultSpec] = []
    #: swarm testing (core/swarm.py): None, no drawn faults
    swarm: SwarmSpec | None = None
