"""Line allocation adapters: implementations of ``legato.core.policy.lines.LineCounter``.

``memory`` counts exactly inside one process; ``redis`` shares the count across the
nodes of a cluster, with leases that expire so that a dead node cannot leak lines.
"""
