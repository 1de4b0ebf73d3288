"""Lockstep mode: nodes (often containers) driven in virtual time over a socket protocol.

:mod:`.protocol` (framing, messages), :mod:`.sdk` (the node side, standard library only),
:mod:`.gateway_logic` (the gateway's behaviour as a node), :mod:`.node` (the coordinator
side, hosting a logic in process or over a socket), :mod:`.docker_node` (containers).
"""
