"""Lockstep: nodes (often containers) driven in virtual time over a socket protocol.

:mod:`.protocol` (framing, messages), :mod:`.sdk` (the node side, standard library only) and
:mod:`.host` (the coordinator side: a node whose logic runs in process or over a socket).
"""
