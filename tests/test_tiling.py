"""Tiling geometry: coverage, equal tile shapes, overlaps, and blend weights that sum to 1."""

from __future__ import annotations

import numpy as np
import pytest

from style_core.errors import StyleError
from style_core.tiling import Feather, blend, midlines, seam_ratios, tiles


@pytest.mark.parametrize("shape,tile,overlap", [((100, 130), 48, 8), ((64, 64), 64, 16), ((37, 200), 32, 5),
                                                ((300, 300), 128, 64), ((20, 30), 64, 8)])
def test_tiles_cover_the_image_with_equal_shapes_and_the_overlap(shape, tile, overlap):
    layout = tiles(shape, tile, overlap)
    covered = np.zeros(shape, int)
    for t in layout:
        assert (t.height, t.width) == (min(tile, shape[0]), min(tile, shape[1]))
        assert t.y >= 0 and t.x >= 0 and t.y + t.height <= shape[0] and t.x + t.width <= shape[1]
        covered[t.slices] += 1
    assert covered.min() >= 1
    ys, xs = sorted({t.y for t in layout}), sorted({t.x for t in layout})
    for starts, size in ((ys, layout[0].height), (xs, layout[0].width)):
        for a, b in zip(starts, starts[1:]):
            assert size - (b - a) >= overlap  # neighbours share at least `overlap` px


def test_one_tile_is_the_whole_image_and_two_are_the_decks_split():
    assert [(t.y, t.x, t.height, t.width) for t in tiles((40, 50), 64, 8)] == [(0, 0, 40, 50)]
    assert [(t.y, t.x, t.height, t.width) for t in tiles((64, 120), 64, 8)] == [(0, 0, 64, 64), (0, 56, 64, 64)]


def test_overlaps_are_spread_evenly():
    assert [t.x for t in tiles((32, 120), 64, 24)] == [0, 28, 56]


@pytest.mark.parametrize("shape,tile,overlap", [((100, 130), 48, 8), ((300, 300), 128, 64), ((37, 200), 32, 5)])
def test_blend_weights_are_a_smooth_partition_of_unity(shape, tile, overlap):
    layout = tiles(shape, tile, overlap)
    total = np.zeros(shape)
    for t, w in zip(layout, map(Feather(shape, layout), layout)):
        assert w.shape == (t.height, t.width) and w.min() >= 0
        total[t.slices] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    image = np.random.default_rng(0).random((*shape, 3)).astype(np.float32)
    pieces = [image[t.slices] for t in layout]
    np.testing.assert_allclose(blend(shape, layout, pieces), image, atol=1e-5)


def test_feathering_hides_a_constant_offset_between_tiles():
    """Two tiles that disagree by a constant meet in a ramp, not a step."""
    shape, layout = (32, 120), tiles((32, 120), 64, 8)
    assert len(layout) == 2
    out = blend(shape, layout, [np.zeros((32, 64, 1), np.float32), np.ones((32, 64, 1), np.float32)])[0, :, 0]
    steps = np.abs(np.diff(out))
    assert out[0] == 0 and out[-1] == 1
    assert steps.max() < 0.25 and np.count_nonzero(steps > 1e-6) >= 7  # a ramp across the 8 px overlap
    with pytest.raises(ValueError, match="1 tile images for 2 tiles"):
        blend(shape, layout, [np.zeros((32, 64, 1), np.float32)])


def test_midlines_run_through_the_tiles_and_see_no_seam_where_edges_do():
    shape = (100, 130)
    layout = tiles(shape, 48, 8)
    mids = midlines(shape, layout)
    assert [(m.y, m.x) for m in mids] == [(t.y + 24, t.x + 24) for t in layout]
    assert all(m.y + m.height <= 100 and m.x + m.width <= 130 for m in mids)
    # tiles (here side by side) of one noise texture, each offset by its own constant: a step at
    # every edge, none inside
    shape = (96, 144)
    layout = tiles(shape, 48, 0)
    mids = midlines(shape, layout)
    rng = np.random.default_rng(0)
    noise = rng.random((*shape, 3)).astype(np.float32)
    stepped = noise.copy()
    for t in layout:
        stepped[t.slices] = noise[t.slices] + 0.5 * ((t.index % 3 + t.index // 3) % 2)  # a checkerboard
    edges, middles = seam_ratios(stepped, layout), seam_ratios(stepped, mids)
    assert len(edges) == 14 and min(edges) > 1.5 and max(abs(np.array(middles) - 1)) < 0.15


def test_bad_tile_settings():
    with pytest.raises(StyleError, match=r"overlap \(64 px\) must be smaller than the tile \(64 px\)"):
        tiles((100, 100), 64, 64)
    with pytest.raises(StyleError, match="tile must be at least 1 px"):
        tiles((100, 100), 0, 0)
