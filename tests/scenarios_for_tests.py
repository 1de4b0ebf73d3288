"""Small scenarios shared by the core tests (dicts, so each test can tweak a copy)."""

from __future__ import annotations

import copy
from typing import Any

BASE: dict[str, Any] = {
    "edgesim": 1,
    "name": "unit",
    "seed": 7,
    "duration": "20s",
    "devices": [
        {
            "name": "temp",
            "count": 4,
            "topic": "sensors/{name}/temperature",
            "value": {"model": "sine", "mean": 20, "amplitude": 5, "noise": 0.2},
        },
        {
            "name": "humidity",
            "topic": "sensors/humidity",
            "publish": {"mode": "poisson", "rate": "2/s"},
            "value": {"model": "random_walk", "start": 50, "step": 1},
        },
    ],
    "gateways": [
        {
            "name": "gw",
            "subscribe": ["sensors/#"],
            "aggregate": {"count": 10},
            "processing_delay": {"distribution": "normal", "mean": "2ms", "stddev": "1ms"},
        },
    ],
    "network": {
        "default": {"latency": "1ms"},
        "links": [
            {
                "from": "temp-*",
                "to": "broker",
                "latency": "20ms",
                "jitter": {"distribution": "normal", "stddev": "5ms"},
                "loss": 0.05,
            },
            {"from": "gw", "to": "cloud", "latency": "50ms"},
        ],
    },
}


def scenario_dict(**changes: Any) -> dict[str, Any]:
    """BASE with top-level fields replaced; new devices drop BASE's device-specific links."""
    data = copy.deepcopy(BASE)
    if "devices" in changes and "network" not in changes:
        data["network"] = {"default": {"latency": "1ms"}}
    data.update(changes)
    return data
