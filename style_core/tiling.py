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


def _axis_weights(length: int, starts: list[int], size: int) -> dict[int, np.ndarray]:
    """Along one axis: each tile's ramp (up across the overlap with the tile before it, down across
    the overlap with the one after), divided by the sum of all ramps so that they sum to 1."""
    ramps = {}
    for i, s in enumerate(starts):
        lead = starts[i - 1] + size - s if i > 0 else 0
        trail = s + size - starts[i + 1] if i + 1 < len(starts) else 0
        ramps[s] = _ramp(size, max(lead, 0), max(trail, 0))
    total = np.zeros(length, np.float64)
    for s, r in ramps.items():
        total[s:s + size] += r
    return {s: r / total[s:s + size] for s, r in ramps.items()}


class Feather:
    """Feathered blend weights of a tile grid, one tile at a time in O(H + W) memory.

    `tiles` lays tiles out on a grid (every row of tiles has the same x starts), so the weights are
    separable: the outer product of one ramp per axis, each normalised along its axis. The product
    of two partitions of unity is one, even where four tiles meet.
    """

    def __init__(self, shape: tuple[int, int], layout: list[Tile]):
        height, width = shape
        size_y, size_x = layout[0].height, layout[0].width
        self._y = _axis_weights(height, sorted({t.y for t in layout}), size_y)
        self._x = _axis_weights(width, sorted({t.x for t in layout}), size_x)
        if len(self._y) * len(self._x) != len(layout):
            raise ValueError("the tiles do not form a grid")

    def __call__(self, tile: Tile) -> np.ndarray:
        """(H_t, W_t) float32 weights of one tile."""
        return np.outer(self._y[tile.y], self._x[tile.x]).astype(np.float32)


def blend(shape: tuple[int, int], layout: list[Tile], images: list[np.ndarray]) -> np.ndarray:
    """The image made of `images` (one per tile, (H_t, W_t, C)) blended with their `Feather` weights."""
    if len(images) != len(layout):
        raise ValueError(f"{len(images)} tile images for {len(layout)} tiles")
    out, feather = np.zeros((*shape, images[0].shape[-1]), np.float32), Feather(shape, layout)
    for t, image in zip(layout, images):
        out[t.slices] += feather(t)[..., None] * image
    return out


def _seam_pairs(image: np.ndarray, layout: list[Tile], window: int):
    """(edge statistic, nearby statistic) for every tile edge inside the image (see seam_ratios)."""
    image = np.asarray(image, np.float32)
    height, width = image.shape[:2]
    for axis, length in ((0, height), (1, width)):
        diff = np.abs(np.diff(image, axis=axis)).mean(axis=2)  # diff[i]: between i and i + 1
        if axis == 1:
            diff = diff.T                                     # (pairs, span)
        bounds = [((t.y, t.y + t.height), slice(t.x, t.x + t.width)) if axis == 0 else
                  ((t.x, t.x + t.width), slice(t.y, t.y + t.height)) for t in layout]
        edges = {e - 1 for ends, _ in bounds for e in ends if 0 < e < length}
        for ends, span in bounds:
            for e in ends:
                near = [i for i in range(max(0, e - 1 - window), min(length - 1, e + window))
                        if i not in edges]
                if 0 < e < length and near:
                    yield float(diff[e - 1, span].mean()), float(diff[near, span].mean())


def seam_ratios(image: np.ndarray, layout: list[Tile], window: int = 16) -> list[float]:
    """For every tile edge inside the image: the mean absolute difference between the two pixel rows
    (or columns) that meet there, over the edge's span, divided by the same statistic over the row
    (column) pairs within `window` px of it that are not at a tile edge. About 1 where no seam
    shows, a seam makes it larger; single edges vary with what the image shows there."""
    return [edge / max(near, 1e-12) for edge, near in _seam_pairs(image, layout, window)]


def midlines(shape: tuple[int, int], layout: list[Tile]) -> list[Tile]:
    """`layout` moved by half a tile down and right (cut at the image's edge): its edges are lines
    through the middle of the tiles, where no tile boundary lies. `seam_ratios` measured on them is
    the statistic's own spread on the same image, the reference for the real edges' figures."""
    height, width = shape
    out = []
    for t in layout:
        y, x = min(t.y + t.height // 2, height - 1), min(t.x + t.width // 2, width - 1)
        out.append(Tile(t.index, y, x, min(t.height, height - y), min(t.width, width - x)))
    return out


def seam_ratio(image: np.ndarray, layout: list[Tile], window: int = 16) -> float:
    """`seam_ratios` pooled over all edges: the mean edge statistic over the mean nearby one."""
    pairs = list(_seam_pairs(image, layout, window))
    if not pairs:
        return 1.0
    edge, near = np.sum(pairs, axis=0)
    return float(edge / max(near, 1e-12))
