"""Everything that touches Lava: the lava-nc 0.10 workarounds, running a ``.net`` as Lava processes,
run targets (``cpu``: Lava's fixed-point CPU models; ``loihi2``), the deployment processes and
how many samples a Lava run gets.

Lava itself is imported only when a run starts.
"""
