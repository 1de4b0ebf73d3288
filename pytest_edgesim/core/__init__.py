"""The simulation core: scenarios, the virtual-time engine, the network and node models,
metrics and traces. It imports neither pytest, Docker nor paho-mqtt, and nothing from the
layers above it (``gateway``, ``lockstep``, ``live``, ``docker``, ``pytest_plugin``, ``cli``);
gateways of other kinds reach it through :mod:`pytest_edgesim.core.gateway_kinds`."""
