"""Generated test images that look like what users bring (shared by tests and bench/)."""

from __future__ import annotations

import numpy as np


def photo_like(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A photo-like RGB image in [0, 1], 8-bit quantised: a sky gradient, a saturated sun (exactly 1),
    textured ground, a black shadow (exactly 0) and sensor noise. The flat and clipped regions are
    where the matting Laplacian's windows are nearly singular."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    image = np.stack([0.35 + 0.3 * y, 0.55 + 0.25 * y, 0.95 - 0.2 * y], -1)
    sun = (y - 0.15) ** 2 + (x - 0.7) ** 2 < 0.006
    ground = y > 0.55 + 0.05 * np.sin(9 * x)
    texture = 0.1 * np.sin(40 * x + 3 * np.sin(25 * y)) + 0.05 * rng.standard_normal((h, w))
    image[ground] = np.stack([0.25 + texture, 0.4 + texture, 0.12 + 0.5 * texture], -1)[ground]
    shadow = ground & (x < 0.3) & (y > 0.8)
    image += 0.01 * rng.standard_normal(image.shape)
    image[sun], image[shadow] = 1.0, 0.0
    return (np.round(np.clip(image, 0, 1) * 255) / 255).astype(np.float32)
