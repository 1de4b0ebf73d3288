"""A user's gateway: the moving average of the last readings, published every ``window`` of them.

It is written against pytest-edgesim's gateway interface only (``NodeLogic``: messages in,
publishes and timers out through ``self.node``), so the same class runs in a deterministic
run, in a lockstep container built with this module, and as a real MQTT client
(example_tests/test_user_gateway.py). Its settings come from the scenario's ``config:``; a
logic beside the scenario file is found there.
"""

from __future__ import annotations

from collections import deque

from pytest_edgesim import NodeLogic


class MovingAverage(NodeLogic):
    def __init__(self, node, config):
        super().__init__(node, config)
        self.window = int(config.get("window", 5))
        self.values: deque[float] = deque(maxlen=self.window)
        self.received = 0
        self.published = 0

    def on_message(self, t, message):
        value = message["payload"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.node.drop(message, "not_a_number")
            return
        self.values.append(float(value))
        self.received += 1
        if self.received % self.window == 0:
            self.node.publish(
                self.config["forward_topic"],
                {"mean": round(sum(self.values) / len(self.values), 6), "count": self.window},
                qos=self.config["forward_qos"],
                created_at=message["created_at"],
            )
            self.published += 1

    def state(self):
        return {"processed": self.received, "published": self.published}
