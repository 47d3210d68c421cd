"""lava-qpsnn: quantized and pruned spiking neural networks for Intel Loihi 2."""

from .lava_compat import patch_lava

patch_lava()
