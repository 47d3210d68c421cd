"""Build and train: networks of slayer blocks, BatchNorm folding, QP-SNN quantization (ReScaW) and
structured pruning (SVS), the training loop, checkpoints, resumable and distributed runs.

The public names are re-exported by :mod:`lava_qpsnn`; the modules here are imported by name.
"""
