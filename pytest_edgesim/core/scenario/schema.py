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

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from pytest_edgesim.core.aggregation import is_value_field
from pytest_edgesim.core.units import TICKS_PER_SECOND, parse_bandwidth, parse_duration, parse_rate
from pytest_edgesim.errors import ScenarioError

#: the largest root seed (seeds are 0 .. 2**63-1, whole numbers)
MAX_SEED: Final = 2**63 - 1


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
    file: str
    column: str | int = 0
    loop: bool = Field(True, strict=True)


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
    payload_bytes: int = Field(64, ge=0, le=268_435_455, strict=True)
    publish: Publish = PeriodicPublish()
    value: ValueModel = ConstantValue()


# --- gateways, broker, cloud --------------------------------------------------------------
class Subscription(_Strict):
    filter: str = Field(min_length=1)
    qos: QoS = 0


class AggregateSpec(_Strict):
    """Emit an aggregate every ``count`` readings and/or every ``window``, whichever first."""

    count: int | None = Field(None, ge=1, strict=True)
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
    capacity: int = Field(1000, ge=1, strict=True)
    #: when full: "newest" drops the arriving message, "oldest" drops the head of the queue
    drop: Literal["newest", "oldest"] = "newest"


class ForwardSpec(_Strict):
    to: str = "cloud"
    topic: str = Field("cloud/{gateway}/aggregate", min_length=1)
    qos: QoS = 0
    payload_bytes: int = Field(128, ge=0, strict=True)


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


class DockerSettings(_Strict):
    #: "mqtt": real broker, wall clock (statistical); "lockstep": virtual time over a socket
    mode: Literal["mqtt", "lockstep"] = "mqtt"
    image: Annotated[str, AfterValidator(_image_reference)] | None = None
    build: str | None = None
    environment: dict[str, str] = {}


Implementation = Literal["python_model", "docker"]


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
    implementation: Implementation = "python_model"
    subscribe: Annotated[list[Subscription], BeforeValidator(_subscriptions)] = Field(min_length=1)
    #: without ``aggregate`` every reading is forwarded on its own
    aggregate: AggregateSpec | None = None
    processing_delay: Delay = ConstantDelay()
    queue: QueueSpec = QueueSpec()
    forward: ForwardSpec = ForwardSpec()
    #: the MQTT session at the broker; None: the connection is not modelled
    session: SessionSpec | None = None
    docker: DockerSettings | None = None

    @property
    def forward_topic(self) -> str:
        """The topic it publishes on, ``{gateway}`` filled in with its name."""
        return self.forward.topic.replace("{gateway}", self.name)

    @property
    def kind(self) -> str:
        """How the gateway runs, derived here only: ``python_model``, ``docker_lockstep`` (a
        container in virtual time) or ``docker_mqtt`` (a container on a real broker, on the
        wall clock); the name of a :class:`~pytest_edgesim.core.gateway_kinds.GatewayKind`."""
        if self.implementation == "python_model":
            return "python_model"
        mode = self.docker.mode if self.docker is not None else "mqtt"
        return f"docker_{mode}"


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
    docker: DockerSettings | None = None


class CloudSpec(_Strict):
    name: Name = "cloud"


class ScenarioSpec(_Strict):
    edgesim: Literal[1]
    name: str | None = None
    description: str = ""
    seed: Seed = 0
    duration: PositiveTicks = 60 * TICKS_PER_SECOND
    broker: BrokerSpec = BrokerSpec()
    cloud: CloudSpec = CloudSpec()
    devices: list[DeviceSpec] = []
    gateways: list[GatewaySpec] = []
    network: NetworkSpec = NetworkSpec()
