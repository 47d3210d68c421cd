"""Random translations of training images: the augmentation a small convolutional network needs most.

Digits and clothes are centred in their images, so a network trained on them as they are learns
positions as well as shapes; moving every training image by a few pixels in a random direction
each time it is seen keeps the shapes and blurs the positions. The offsets are drawn from the
training loop's generator, so a run with them stays reproducible and resumable.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

__all__ = ["shift_images"]


def shift_images(images: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """``images`` (``NCHW``) each moved by its own offset of ``-max_shift .. max_shift`` pixels down and right.

    Pixels moved out are dropped and the uncovered ones are 0 (black). ``max_shift`` 0 returns
    ``images`` itself and draws nothing from ``rng``.
    """
    if max_shift == 0:
        return images
    n, channels, height, width = images.shape
    if not 0 < max_shift < min(height, width):
        raise ConfigError(
            f"a shift of up to {max_shift} pixels does not fit {height} x {width} images: "
            f"use 0 .. {min(height, width) - 1}",
            settings=("augment_shift",),
        )
    padded = np.pad(images, ((0, 0), (0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    top, left = rng.integers(0, 2 * max_shift + 1, size=(2, n))  # the window's corner in the padded image
    rows = (top[:, None] + np.arange(height))[:, None, :, None]
    cols = (left[:, None] + np.arange(width))[:, None, None, :]
    return padded[np.arange(n)[:, None, None, None], np.arange(channels)[None, :, None, None], rows, cols]
