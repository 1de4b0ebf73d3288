"""The Docker tier: images built without a registry, labelled containers and their cleanup,
the broker and gateway containers, impairment, faults and lockstep gateways in containers.

Nothing below this folder imports it: the pytest plugin reaches it through :mod:`.session`,
and the core through the gateway kinds it registers (:mod:`.kinds`).
"""
