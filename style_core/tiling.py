"""Tiling geometry for large images: overlapping tiles and their feathered blend weights.

Every tile has the same shape (so a batch of tiles compiles once and can be sharded across devices);
tiles at the right and bottom edges are shifted inward instead of padded, so no tile ever sees a
border that is not in the image. Overlaps are blended with raised-cosine ramps, normalised so that
the weights of all tiles sum to exactly 1 at every pixel: blending identical tiles reproduces the
image, and no tile edge leaves a step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import StyleError


@dataclass(frozen=True)
class Tile:
    index: int
    y: int          # top-left corner in the image
    x: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y, self.y + self.height), slice(self.x, self.x + self.width)


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile starts along one axis: as few tiles as keep every overlap >= `overlap`, spread evenly from
    flush with the near edge to flush with the far one (so all overlaps are about equal)."""
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tiles(shape: tuple[int, int], tile: int, overlap: int) -> list[Tile]:
    """Tiles of at most `tile` px a side covering an image of `shape` (H, W), neighbours overlapping by
    at least `overlap` px. An image no larger than one tile is a single tile of its own size."""
    height, width = shape
    if tile < 1 or overlap < 0:
        raise StyleError(f"tile must be at least 1 px and overlap at least 0, not {tile} and {overlap}")
    if overlap >= tile:
        raise StyleError(f"overlap ({overlap} px) must be smaller than the tile ({tile} px)")
    th, tw = min(tile, height), min(tile, width)
    corners = [(y, x) for y in _starts(height, tile, overlap) for x in _starts(width, tile, overlap)]
    return [Tile(n, y, x, th, tw) for n, (y, x) in enumerate(corners)]


def _ramp(length: int, lead: int, trail: int) -> np.ndarray:
    """1 in the middle, rising over `lead` px at the start and falling over `trail` px at the end,
    with a raised cosine (smooth, no kink where the ramp meets the plateau)."""
    w = np.ones(length, np.float64)
    for n, side in ((lead, slice(None)), (trail, slice(None, None, -1))):
        if n > 0:
            t = (np.arange(n) + 0.5) / n
            w[side][:n] *= 0.5 - 0.5 * np.cos(np.pi * t)
    return w


def blend_weights(shape: tuple[int, int], layout: list[Tile]) -> list[np.ndarray]:
    """Per-tile (H_t, W_t) weights, feathered across each overlap and summing to 1 over the image.

    Each tile ramps up over the part it shares with its neighbour above/left and down over the part
    it shares with its neighbour below/right; dividing by the sum of all ramps makes the weights a
    partition of unity even where three or four tiles meet.
    """
    height, width = shape
    raw = []
    for t in layout:
        lead_y = max((u.y + u.height - t.y for u in layout if u.y < t.y and u.x == t.x), default=0)
        trail_y = max((t.y + t.height - u.y for u in layout if u.y > t.y and u.x == t.x), default=0)
        lead_x = max((u.x + u.width - t.x for u in layout if u.x < t.x and u.y == t.y), default=0)
        trail_x = max((t.x + t.width - u.x for u in layout if u.x > t.x and u.y == t.y), default=0)
        raw.append(np.outer(_ramp(t.height, lead_y, trail_y), _ramp(t.width, lead_x, trail_x)))
    total = np.zeros((height, width), np.float64)
    for t, w in zip(layout, raw):
        total[t.slices] += w
    return [(w / total[t.slices]).astype(np.float32) for t, w in zip(layout, raw)]


def blend(shape: tuple[int, int], layout: list[Tile], images: list[np.ndarray]) -> np.ndarray:
    """The image made of `images` (one per tile, (H_t, W_t, C)) blended with `blend_weights`."""
    if len(images) != len(layout):
        raise ValueError(f"{len(images)} tile images for {len(layout)} tiles")
    out = np.zeros((*shape, images[0].shape[-1]), np.float32)
    for t, w, image in zip(layout, blend_weights(shape, layout), images):
        out[t.slices] += w[..., None] * image
    return out
