"""What a run counts: per node, link and topic counters and latency sketches
(:mod:`.recorder`), the sketch itself (:mod:`.sketch`), the summaries a result carries
(:mod:`.summaries`) and the tables ``edgesim run`` prints (:mod:`.tables`)."""

from pytest_edgesim.core.metrics.recorder import FlowStats, Metrics, MetricsRecorder

__all__ = ["FlowStats", "Metrics", "MetricsRecorder"]
