"""A threshold gateway as a lockstep node: what a user's own node image looks like.

It forwards a reading only when it crosses the threshold (above ``THRESHOLD`` after being
at or below it, per device), as an alert ``{"device", "value", "threshold"}``; readings
that do not cross are dropped with the reason ``below_threshold`` or ``no_crossing``.
Configuration: ``THRESHOLD`` from the environment (the scenario's ``docker.environment``),
the forward topic and QoS from the gateway configuration the coordinator sends in hello.
It uses only the SDK and the standard library, and reads time only from the SDK.
"""

from __future__ import annotations

import os

from pytest_edgesim.lockstep.sdk import NodeLogic, run


class ThresholdNode(NodeLogic):
    implementation = "threshold-node/1"

    def __init__(self, node, config):
        super().__init__(node, config)
        self.threshold = float(os.environ.get("THRESHOLD", "50"))
        self.topic = config["forward"]["topic"]
        self.qos = int(config["forward"].get("qos", 0))
        self.above: dict[str, bool] = {}
        self.alerts = 0

    def on_message(self, t, message):
        value = float(message["payload"])
        device = message["origin"]
        was_above = self.above.get(device, False)
        self.above[device] = value > self.threshold
        if value <= self.threshold:
            self.node.drop(message, "below_threshold")
        elif was_above:
            self.node.drop(message, "no_crossing")
        else:
            self.alerts += 1
            self.node.publish(
                self.topic,
                {"device": device, "value": value, "threshold": self.threshold},
                qos=self.qos,
                created_at=message["created_at"],
                detail=f"{device} crossed {self.threshold:g}",
            )

    def state(self):
        return {"alerts": self.alerts, "above": sorted(d for d, a in self.above.items() if a)}


if __name__ == "__main__":
    run(ThresholdNode)
