"""Plain-text tables of a run's metrics, for the CLI and the pytest terminal summary."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pytest_edgesim.core.metrics.delivery import LOST_CAUSES, Deliveries, Delivery
from pytest_edgesim.core.metrics.recorder import FlowStats, Metrics

_COLUMNS = (
    "sent",
    "delivered",
    "lost",
    "cut",
    "overflow",
    "rejected",
    "down",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
)


def _latency(stats: FlowStats, key: str) -> str:
    value = stats.latency_ms.get(key)
    return "-" if value is None else f"{value:.1f}"


def _row(name: str, stats: FlowStats) -> list[str]:
    return [
        name,
        str(stats.sent),
        str(stats.delivered),
        str(stats.dropped.get("loss", 0)),
        str(stats.dropped.get("partition", 0)),
        str(stats.dropped.get("queue_overflow", 0)),
        str(stats.dropped.get("rejected", 0)),
        str(stats.dropped.get("node_down", 0)),
        _latency(stats, "p50"),
        _latency(stats, "p95"),
        _latency(stats, "p99"),
        _latency(stats, "max"),
    ]


def format_table(
    title: str, rows: Sequence[Sequence[str]], columns: Sequence[str] = _COLUMNS
) -> str:
    header = [title, *columns]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for index, row in enumerate([header, *rows]):
        cells = [str(row[0]).ljust(widths[0])]
        cells += [str(cell).rjust(width) for cell, width in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


#: how a link that carries only acknowledgements is labelled in the link table
ACKS_ONLY = " (PUBACKs)"


def _section(
    title: str,
    table: Mapping[str, FlowStats],
    limit: int | None,
    labels: Mapping[str, str] | None = None,
) -> str:
    names = list(table)
    shown = names if limit is None else names[:limit]
    labels = labels or {}
    text = format_table(title, [_row(name + labels.get(name, ""), table[name]) for name in shown])
    if len(shown) < len(names):
        text += f"\n... and {len(names) - len(shown)} more {title}s (--all, or --csv FILE)"
    return text


def metrics_tables(
    metrics: Metrics,
    *,
    limit: int | None = 12,
    focus: Sequence[str] = (),
    acks_only: Sequence[str] = (),
) -> str:
    """Totals, then nodes, links and topics; ``focus`` nodes (gateways, broker) come first.

    A link counts every packet on it, PUBLISHes and the PUBACKs of QoS 1 messages; the
    ``acks_only`` links (:func:`acknowledgement_links`) carry nothing else and are labelled
    so, lest ``cloud->gateway sent 18`` read as messages the cloud sent."""
    nodes = dict(metrics.nodes)
    ordered = {name: nodes.pop(name) for name in focus if name in nodes}
    ordered.update(nodes)
    links = _section("link", metrics.links, limit, dict.fromkeys(acks_only, ACKS_ONLY))
    if any(name in metrics.links for name in acks_only):
        links += f"\n{ACKS_ONLY.strip()}: the link carries only acknowledgements of QoS 1 messages"
    parts = [
        format_table("total", [_row("all topics", metrics.totals)]),
        _section("node", ordered, limit),
        links,
        _section("topic", metrics.topics, limit),
    ]
    return "\n\n".join(parts)


def acknowledgement_links(
    links: Iterable[str], *, cloud: str, broker: str, devices: Iterable[str]
) -> list[str]:
    """The links (``src->dst``) that carry only PUBACKs: from the cloud, which publishes
    nothing, and from the broker to a device, which subscribes to nothing."""
    device_names = set(devices)
    found = []
    for name in links:
        src, _, dst = name.partition("->")
        if src == cloud or (src == broker and dst in device_names):
            found.append(name)
    return found


#: the delivery table's heading of each cause of loss
_CAUSE_HEADINGS = {
    "loss": "loss",
    "partition": "cut",
    "queue_overflow": "overflow",
    "rejected": "rejected",
    "node_down": "down",
    "queue_full": "q-full",
    "offline": "offline",
    "session_lost": "s-lost",
    "storage_full": "store-full",
    "asleep": "asleep",
    "no_subscriber": "no-sub",
    "pending": "pending",
    "unknown": "unknown",
}
#: the causes shown even at 0; the others (faults, MQTT sessions) only in a run that has them
_ALWAYS_SHOWN = ("loss", "partition", "queue_overflow", "rejected", "pending", "unknown")


def _delivery_row(name: str, delivery: Delivery, causes: tuple[str, ...]) -> list[str]:
    ratio = "-" if not delivery.sent else f"{delivery.ratio:.4f}"
    return [
        name,
        str(delivery.sent),
        str(delivery.delivered),
        str(delivery.lost),
        str(delivery.duplicated),
        str(delivery.reordered),
        *(str(delivery.lost_by_cause.get(cause, 0)) for cause in causes),
        ratio,
    ]


def delivery_table(deliveries: Deliveries, *, limit: int | None = 12) -> str:
    """Per destination, every source together (``cloud <- *``), then each source."""
    present = {
        cause
        for flows in deliveries.flows.values()
        for delivery in flows.values()
        for cause, count in delivery.lost_by_cause.items()
        if count
    }
    causes = tuple(c for c in LOST_CAUSES if c in _ALWAYS_SHOWN or c in present)
    rows: list[list[str]] = []
    hidden = 0
    for destination, flows in deliveries.flows.items():
        total = deliveries.delivery("*", destination)
        rows.append(_delivery_row(f"{destination} <- *", total, causes))
        origins = list(flows)
        shown = origins if limit is None else origins[:limit]
        hidden += len(origins) - len(shown)
        rows += [
            _delivery_row(f"{destination} <- {origin}", flows[origin], causes) for origin in shown
        ]
    if not rows:
        return ""
    columns: tuple[str, ...] = ("sent", "delivered", "lost", "dup", "late")
    columns += (*(_CAUSE_HEADINGS[cause] for cause in causes), "ratio")
    text = format_table("delivery", rows, columns)
    if hidden:
        text += f"\n... and {hidden} more flows (--all, or --json FILE)"
    return text
