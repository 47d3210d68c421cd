"""Reporting: what an exported network costs on Loihi 2 (memory, measured spikes and SynOps, ESTIMATED
cores and energy), its plots, and the plain-text tables every command prints.
"""
