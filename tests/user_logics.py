"""Small user logics the tests reference by ``module:Name`` (``user_logics:...``)."""

from __future__ import annotations

from pytest_edgesim import NodeLogic

SECOND = 1_000_000


class Forwarder(NodeLogic):
    """Forwards each reading as ``{"value": v}``; remembers what its config said."""

    def on_message(self, t, message):
        self.node.publish(
            self.config["forward_topic"],
            {"value": message["payload"], "scale": self.config.get("scale", 1)},
            qos=self.config["forward_qos"],
            created_at=message["created_at"],
        )

    def state(self):
        return {"config": dict(self.config)}


class Ticker(NodeLogic):
    """Publishes ``{"tick": n}`` every ``period_s`` of its clock, from its first timer on."""

    def __init__(self, node, config):
        super().__init__(node, config)
        self.period = int(float(config.get("period_s", 1.0)) * SECOND)
        self.ticks = 0
        node.set_timer(self.period, "tick")

    def on_timer(self, t, name):
        self.ticks += 1
        self.node.publish(self.config["forward_topic"], {"tick": self.ticks})
        self.node.set_timer(t + self.period, "tick")


class Noisy(NodeLogic):
    """Draws from its random stream on each message (the draws must repeat from the seed)."""

    def on_message(self, t, message):
        draw = self.node.stream("noise").random()
        self.node.publish(self.config["forward_topic"], {"draw": round(draw, 12)})


def not_a_logic(message):
    return message


class AssertingForwarder(Forwarder):
    """Forwarder, stating properties as it goes: the same outputs, so the same trace."""

    def on_message(self, t, message):
        self.node.always(message["seq"] >= 0, "seq is never negative")
        self.node.sometimes(message["seq"] > 2, "a sensor sent a fourth reading")
        self.node.always(message["seq"] < 2, "fewer than three readings")
        if message["seq"] == 1:
            self.node.reachable("second reading")
        if message["seq"] > 1000:
            self.node.unreachable("a thousand readings")
        super().on_message(t, message)
