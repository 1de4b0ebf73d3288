"""A gateway with a planted bug, for swarm testing (example_tests/test_swarm.py).

It forwards every reading to the cloud and watches each sensor's sequence numbers: a
jump means readings were missed (a partition, a disconnection, a lossy link), and the
gateway notes that it caught up. The planted bug: after a gap longer than ``max_gap``
readings, it marks the sensor as suspect and never clears the mark, so that sensor is
silenced for the rest of the run. With ``fixed: true`` it clears the mark when the sensor
is heard again. A restarted gateway starts with no history, so restarts never trigger it:
only faults that make it miss readings while it keeps running do.
"""

from __future__ import annotations

from pytest_edgesim import NodeLogic


class GapAwareForwarder(NodeLogic):
    def __init__(self, node, config):
        super().__init__(node, config)
        self.max_gap = int(config.get("max_gap", 3))
        self.fixed = bool(config.get("fixed", False))
        self.last_seq: dict[str, int] = {}
        self.suspect: set[str] = set()
        self.forwarded = 0

    def on_message(self, t, message):
        origin, seq = message["origin"], message["seq"]
        last = self.last_seq.get(origin)
        self.last_seq[origin] = seq
        if last is not None and seq > last + 1:
            missed = seq - last - 1
            self.node.sometimes(True, "caught up after a gap")
            if missed > self.max_gap:
                self.suspect.add(origin)
        elif self.fixed:
            self.suspect.discard(origin)
        self.node.always(seq > (last if last is not None else -1), "sequence numbers increase")
        if origin in self.suspect and not self.fixed:
            self.node.drop(message, "suspect")
            return
        self.node.publish(
            self.config["forward_topic"],
            {"sensor": origin, "value": message["payload"]},
            qos=self.config["forward_qos"],
            created_at=message["created_at"],
        )
        self.forwarded += 1

    def state(self):
        return {"forwarded": self.forwarded, "suspect": sorted(self.suspect)}
