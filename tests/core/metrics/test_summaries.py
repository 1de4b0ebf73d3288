import json
import pickle
from pathlib import Path

import pytest

from pytest_edgesim import simulate
from pytest_edgesim.core.metrics.recorder import FlowStats, Metrics
from pytest_edgesim.core.metrics.summaries import DropCounts, LatencySummary

LOSSY = Path(__file__).resolve().parents[3] / "scenarios" / "lossy.yaml"


def test_drop_counts_behave_like_the_dict_they_replace():
    drops = DropCounts(3, 0, 1)
    as_dict = {"loss": 3, "partition": 0, "queue_overflow": 1, "rejected": 0, "node_down": 0}
    assert drops == as_dict
    assert as_dict == drops  # (the dict on the left)
    assert drops != {**as_dict, "queue_overflow": 2}
    assert list(drops) == ["loss", "partition", "queue_overflow", "rejected", "node_down"]
    assert drops["loss"] == 3 and drops.get("nothing", 7) == 7 and len(drops) == 5
    assert sum(drops.values()) == 4
    assert repr(drops) == (
        "{'loss': 3, 'partition': 0, 'queue_overflow': 1, 'rejected': 0, 'node_down': 0}"
    )
    with pytest.raises(KeyError, match="'cut' is not a key here: loss, partition, queue_overflow"):
        drops["cut"]


def test_drop_counts_written_before_the_rejected_cause_read_back_with_none_rejected():
    older = {"loss": 1, "partition": 2, "queue_overflow": 3}
    assert DropCounts.from_mapping(older) == {**older, "rejected": 0, "node_down": 0}


def test_an_empty_latency_summary_has_only_its_count():
    empty = LatencySummary(0)
    assert empty == {"count": 0}
    assert list(empty) == ["count"] and len(empty) == 1
    assert "p95" not in empty and empty.get("p95") is None
    with pytest.raises(KeyError, match=r"'min' is not a key here: count\"$"):
        empty["min"]


def test_summaries_are_read_only_and_survive_pickle_and_json():
    summary = LatencySummary(4, min=1.0, mean=2.5, p50=2.0, p95=4.0, p99=4.0, max=4.0)
    with pytest.raises(AttributeError):
        summary.count = 5  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(summary)) == summary
    assert pickle.loads(pickle.dumps(DropCounts(1, 2, 3))) == DropCounts(1, 2, 3)
    assert json.loads(json.dumps(dict(summary))) == summary


def test_unknown_keys_are_refused_by_name():
    with pytest.raises(ValueError, match="unknown drop causes \\['lost'\\]"):
        DropCounts.from_mapping({"lost": 1})
    with pytest.raises(ValueError, match="unknown latency keys \\['p90'\\]"):
        LatencySummary.from_mapping({"count": 1, "p90": 2.0})


def test_metrics_round_trip_through_dicts_with_the_compact_mappings():
    result = simulate(LOSSY, until="10s")
    metrics = result.metrics
    assert isinstance(metrics.totals.dropped, DropCounts)
    assert isinstance(metrics.totals.latency_ms, LatencySummary)
    again = Metrics.from_dict(json.loads(metrics.to_json()))
    assert again == metrics
    assert FlowStats() == FlowStats.from_dict(FlowStats().to_dict())


def test_the_json_report_writes_summaries_as_objects():
    from pytest_edgesim.pytest_plugin.session_report import _json_safe

    summary = LatencySummary(2, min=1.0, mean=float("nan"), p50=1.0, p95=2.0, p99=2.0, max=2.0)
    written = json.loads(json.dumps(_json_safe({"latency_ms": summary, "drops": DropCounts()})))
    assert written["latency_ms"]["p95"] == 2.0 and written["latency_ms"]["mean"] is None
    assert written["drops"] == {
        "loss": 0,
        "partition": 0,
        "queue_overflow": 0,
        "rejected": 0,
        "node_down": 0,
    }


def test_a_result_survives_pickle_and_copies():
    import copy

    result = simulate(LOSSY, until="5s")
    assert pickle.loads(pickle.dumps(result)) == result
    assert copy.deepcopy(result) == result
    assert copy.copy(result.metrics.totals) == result.metrics.totals


def test_a_kept_trace_is_written_to_a_path_or_a_stream(tmp_path):
    import io

    result = simulate(LOSSY, until="2s", trace="full")
    assert result.trace is not None
    path = tmp_path / "trace.jsonl"
    assert result.write_trace(path) == len(result.trace)
    stream = io.StringIO()
    result.write_trace(stream)
    assert path.read_text(encoding="utf-8") == stream.getvalue()
    first = json.loads(stream.getvalue().splitlines()[0])
    assert list(first) == ["t", "kind", "node", "peer", "topic", "message", "detail"]
