"""The report's charts, drawn with matplotlib and returned as SVG text to inline in a page.

Each function takes plain data (what the JSON report and ``RunResult.to_dict()`` hold) and
returns one ``<svg>`` element: text stays text (``svg.fonttype = none``), so a browser
renders it with its own fonts and the titles and legends can be found in the page. Ids
inside each SVG are prefixed with the chart's own name, so several charts share a page
without clashing, and no date is written, so the same data gives the same file.

matplotlib is the ``[html]`` extra: :func:`require_matplotlib` says how to install it.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_edgesim.core import stats
from pytest_edgesim.core.metrics.timeline import ALL_FLOWS, BINS_PER_DECADE
from pytest_edgesim.errors import EdgesimError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: the colours of the series, colour-blind safe (Okabe-Ito)
PASSED_COLOUR = "#009E73"
FAILED_COLOUR = "#D55E00"
SENT_COLOUR = "#0072B2"
DROPPED_COLOUR = "#D55E00"
PARTITION_COLOUR = "#999999"
FAULT_COLOUR = "#CC79A7"
ALL_FLOWS_COLOUR = "#000000"
FLOW_COLOURS = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#999999",
)
_WIDTH_IN, _HEIGHT_IN = 9.0, 3.4
INSTALL_HINT = "pip install 'pytest-edgesim[html]'"


class ChartsUnavailable(EdgesimError):
    """matplotlib is not installed (the ``[html]`` extra)."""


def require_matplotlib(option: str) -> None:
    """Raise :class:`ChartsUnavailable` naming ``option`` when matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ChartsUnavailable(
            f"{option} draws its charts with matplotlib, which is not installed: {INSTALL_HINT}"
        ) from None


def _figure() -> Figure:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(_WIDTH_IN, _HEIGHT_IN), layout="constrained")
    return figure


def _svg(figure: Figure, salt: str) -> str:
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return _own_ids(text[text.index("<svg") :], salt)


_ID = re.compile(r'(\bid="|url\(#|href="#)([^")]+)')


def _own_ids(svg: str, prefix: str) -> str:
    """Every id in ``svg`` (and every reference to one) prefixed with ``prefix``: matplotlib
    names its groups ``figure_1``, ``axes_1``... in every file, and ids are page-wide."""
    return _ID.sub(lambda match: f"{match[1]}{prefix}-{match[2]}", svg)


def _legend_outside(axes: Axes) -> None:
    """The legend to the right of the plot, where it hides no line."""
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def _plain_log_ticks(axes: Axes) -> None:
    """Tick labels of a log axis as plain numbers (``20``, ``0.5``), not powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    low, high = axes.get_xlim()
    decades = math.log10(high / low) if low > 0 and high > low else 0.0
    subs = (1.0, 2.0, 5.0) if decades <= 2.5 else (1.0,)
    axes.xaxis.set_major_locator(LogLocator(base=10.0, subs=subs))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.xaxis.set_minor_locator(NullLocator())  # (and no minor ticks to lay out)


def _style(axes: Axes, title: str, xlabel: str, ylabel: str) -> None:
    axes.set_title(title, fontsize=11, loc="left")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)


# --- pass rate as trials accrue --------------------------------------------------------------
def pass_rate_points(verdict: Mapping[str, Any]) -> list[tuple[int, float, float, float]]:
    """``(trials, rate, low, high)`` after each trial of a statistical verdict: the pass rate
    so far and its interval (Wilson, or the confidence sequence of a sequential test)."""
    confidence = float(verdict.get("confidence", 0.95))
    min_pass_rate = float(verdict.get("min_pass_rate", 0.95))
    sequential = verdict.get("interval_kind") == "confidence sequence"
    prior = stats.mixture_prior(min_pass_rate) if sequential else (1.0, 1.0)
    points = []
    passed = 0
    for total, trial in enumerate(verdict.get("trials", ()), start=1):
        passed += trial.get("outcome") == "passed"
        if sequential:
            low, high = stats.confidence_sequence(passed, total, confidence, prior)
        else:
            low, high = stats.wilson_interval(passed, total, confidence)
        points.append((total, passed / total, low, high))
    return points


def pass_rate_chart(verdict: Mapping[str, Any], salt: str) -> str:
    """The pass rate after each trial with its confidence band, the required rate, and each
    trial's outcome."""
    points = pass_rate_points(verdict)
    figure = _figure()
    axes = figure.add_subplot()
    confidence = float(verdict.get("confidence", 0.95))
    kind = (
        "confidence sequence" if verdict.get("interval_kind") == "confidence sequence" else "Wilson"
    )
    if points:
        trials = [point[0] for point in points]
        axes.fill_between(
            trials,
            [point[2] for point in points],
            [point[3] for point in points],
            step="post" if len(points) == 1 else None,
            color=SENT_COLOUR,
            alpha=0.18,
            linewidth=0,
            label=f"{confidence * 100:g}% interval ({kind})",
        )
        axes.plot(
            trials,
            [point[1] for point in points],
            color=SENT_COLOUR,
            marker="." if len(points) <= 60 else None,
            label="pass rate so far",
        )
        outcomes = [trial.get("outcome") for trial in verdict.get("trials", ())]
        failed = [index for index, outcome in zip(trials, outcomes) if outcome != "passed"]
        if failed:
            axes.scatter(
                failed,
                [0.0] * len(failed),
                marker="x",
                color=FAILED_COLOUR,
                clip_on=False,
                zorder=3,
                label="failing trial",
            )
        axes.set_xlim(0.5, max(trials) + 0.5)
    axes.axhline(
        float(verdict.get("min_pass_rate", 0.95)),
        color=FAILED_COLOUR,
        linestyle="--",
        linewidth=1,
        label=f"required pass rate ({float(verdict.get('min_pass_rate', 0.95)):g})",
    )
    axes.set_ylim(-0.02, 1.02)
    axes.yaxis.set_major_formatter(_percent_formatter())
    _style(axes, "Pass rate as trials accrue", "trials run", "pass rate (%)")
    _legend_outside(axes)
    return _svg(figure, salt)


def _percent_formatter() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0, decimals=0)


# --- latency distributions ----------------------------------------------------------------------
def cdf_points(bins: Sequence[Sequence[int]]) -> tuple[list[float], list[float]]:
    """The CDF of a histogram on the fixed grid: ``(upper edges in ms, fraction at or below)``,
    starting at the lowest bin's lower edge."""
    ordered = sorted((int(index), int(count)) for index, count in bins)
    total = sum(count for _, count in ordered)
    if not total:
        return [], []
    xs = [10.0 ** (ordered[0][0] / BINS_PER_DECADE)]
    ys = [0.0]
    seen = 0
    for index, count in ordered:
        seen += count
        xs.append(10.0 ** ((index + 1) / BINS_PER_DECADE))
        ys.append(seen / total)
    return xs, ys


def merge_histograms(histograms: Sequence[Sequence[Sequence[int]]]) -> list[list[int]]:
    """Several histograms on the fixed grid as one (bins add up)."""
    counts: dict[int, int] = {}
    for bins in histograms:
        for index, count in bins:
            counts[int(index)] = counts.get(int(index), 0) + int(count)
    return [[index, counts[index]] for index in sorted(counts)]


def latency_chart(
    series: Mapping[str, Sequence[Sequence[int]]],
    salt: str,
    title: str = "Latency distribution per flow",
    faint: Sequence[Sequence[Sequence[int]]] = (),
    faint_label: str = "",
) -> str:
    """One CDF line per series (a flow, or a gateway implementation) on a log axis of
    milliseconds; ``faint`` draws thin grey lines (each trial's, say) behind them."""
    figure = _figure()
    axes = figure.add_subplot()
    for number, bins in enumerate(faint):
        xs, ys = cdf_points(bins)
        if xs:
            axes.step(
                xs,
                ys,
                where="post",
                color=PARTITION_COLOUR,
                alpha=0.5,
                linewidth=0.7,
                label=faint_label if number == 0 and faint_label else None,
            )
    drawn = 0
    for name, bins in series.items():
        xs, ys = cdf_points(bins)
        if not xs:
            continue
        count = sum(int(count) for _, count in bins)
        if name == ALL_FLOWS:
            colour, width = ALL_FLOWS_COLOUR, 2.4
        else:
            colour, width = FLOW_COLOURS[drawn % len(FLOW_COLOURS)], 1.4
            drawn += 1
        axes.step(xs, ys, where="post", color=colour, linewidth=width, label=f"{name} (n={count})")
    if axes.lines:
        axes.set_xscale("log")
        _plain_log_ticks(axes)
        _legend_outside(axes)
    else:
        axes.text(0.5, 0.5, "no latencies recorded", ha="center", transform=axes.transAxes)
    for level in (0.5, 0.95, 0.99):
        axes.axhline(level, color="#bbbbbb", linewidth=0.6, linestyle=":")
    axes.set_ylim(0, 1.02)
    axes.yaxis.set_major_formatter(_percent_formatter())
    _style(axes, title, "latency (ms, log scale)", "messages at or below (%)")
    return _svg(figure, salt)


# --- messages over time -------------------------------------------------------------------------
def timeline_chart(
    timeline: Mapping[str, Any], faults: Sequence[Mapping[str, Any]], salt: str, title: str
) -> str:
    """Messages published, delivered and dropped per second in each slice of virtual time,
    partitions shaded, faults marked."""
    bucket_s = float(timeline.get("bucket_s") or 0.0)
    figure = _figure()
    axes = figure.add_subplot()
    sent = list(timeline.get("sent", ()))
    if bucket_s > 0 and sent:
        starts = [index * bucket_s for index in range(len(sent))]
        edges = [*starts, len(sent) * bucket_s]

        def rate(values: Sequence[int]) -> list[float]:
            per_s = [value / bucket_s for value in values]
            return [*per_s, per_s[-1]]

        axes.fill_between(
            edges, rate(sent), step="post", color=SENT_COLOUR, alpha=0.12, linewidth=0
        )
        axes.step(
            edges, rate(sent), where="post", color=SENT_COLOUR, linewidth=0.8, label="published"
        )
        axes.step(
            edges,
            rate(timeline.get("delivered", ())),
            where="post",
            color=PASSED_COLOUR,
            linewidth=1.8,
            label="delivered",
        )
        axes.step(
            edges,
            rate(timeline.get("dropped", ())),
            where="post",
            color=DROPPED_COLOUR,
            label="dropped",
        )
        end_s = edges[-1]
        for number, span in enumerate(timeline.get("partitions", ())):
            up = span.get("up_s")
            axes.axvspan(
                float(span["down_s"]),
                end_s if up is None else float(up),
                color=PARTITION_COLOUR,
                alpha=0.25,
                linewidth=0,
                label=None if number else "partition",
            )
        for number, fault in enumerate(faults):
            when = float(fault.get("time_s", 0.0))
            axes.axvline(
                when,
                color=FAULT_COLOUR,
                linestyle="--",
                linewidth=1.2,
                label=None if number else "fault",
            )
            axes.annotate(
                f"{fault.get('action', '')} {fault.get('target', '')}",
                (when, 1.0),
                xycoords=("data", "axes fraction"),
                rotation=90,
                fontsize=7,
                va="top",
                ha="right",
                color=FAULT_COLOUR,
            )
        axes.set_xlim(0, end_s)
        axes.set_ylim(bottom=0)
        _legend_outside(axes)
    else:
        axes.text(0.5, 0.5, "no timeline recorded", ha="center", transform=axes.transAxes)
    slice_note = f"{bucket_s:g} s slices" if bucket_s > 0 else "no slices"
    _style(
        axes,
        title,
        f"virtual time (s; {slice_note})",
        "messages per second",
    )
    return _svg(figure, salt)


def quantile_ms(bins: Sequence[Sequence[int]], quantile: float) -> float:
    """The upper edge (ms) of the bin holding ``quantile`` of the histogram (``nan``: empty)."""
    xs, ys = cdf_points(bins)
    for x, y in zip(xs[1:], ys[1:]):
        if y >= quantile:
            return x
    return math.nan
