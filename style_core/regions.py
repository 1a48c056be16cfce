"""Spatial control: regions of the output, each painted in the style of its own style image (or part).

Gatys, Ecker, Bethge, Hertzmann & Shechtman (2017), "Controlling Perceptual Factors in Neural Style
Transfer", guided Gram matrices. A region is a mask m on the output, a style image, and optionally a
mask on that style image. At a layer with features F (H_l, W_l, C_l) and the mask brought to that
resolution, m_l (H_l, W_l):

    G_l(x; m) = (F_l(x) m_l)^T (F_l(x) m_l) / (sum(m_l^2) C_l)

a weighted mean of the products F_p F_p^T with weights m_p^2: a small region's Gram is on the same scale
as a large one's (it is not ignored), and for m = 1 it is exactly `losses.gram_matrix`. The style side is
the same with the style mask. The style term of several regions is their sum,

    L_style = sum_r sum_l w_l mean(rho(G_l(x; m_r) - G_l(s_r; m'_r))) / norm_rl

with `losses.style_loss`'s penalties, layer weights and normalisation (norm_rl = mean(rho(target_rl))
under "relative"); each region counts as a whole style term, whatever its size. Soft (grey) mask edges
blend the regions they separate. Pixels covered by no region get no style term: only the content term
(and TV), so they stay the photo.

A mask is brought down to a layer by area averaging (`area_resize`), not by eroding it through the
receptive field: averaging keeps every region's mass in proportion at every depth and keeps soft edges
soft, whereas erosion makes a thin region vanish at relu5_1 (16 px stride, a receptive field of 200 px
and more), which then gets no style at the deep layers at all. The cost of averaging is a band about one
receptive field wide along an edge where a feature sees both sides.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import jax
import numpy as np

from .errors import StyleError
from .images import to_uint8
from .losses import gram_matrix
from .statistics import GRAM, style_loss

# A mask whose largest value is at most this (half an 8-bit grey level) paints nothing: it is empty.
EMPTY = 1 / 512
# Label colours covering less of their label image than this are antialiasing or compression noise:
# they name no region, and their pixels join the nearest colour that does.
MIN_LABEL_SHARE = 0.001
# Label colours this close (in every channel, of 255) are one label: a flat colour saved with loss, or
# antialiased, comes back a few levels off (Luan et al.'s segmentations: #00ff01 on one side, #00ff00
# on the other). Distinct labels are far apart (their palettes use 0 and 255 per channel).
LABEL_TOLERANCE = 16
# A colour between two label colours (a blend of them) names a region of its own only when it covers
# this much of its label image: below, it is an antialiased edge.
BLEND_SHARE = 0.01
# At most this many regions. Each region adds a guided Gram per style layer to every step, and its
# masked features are kept for the backward pass (at 512 px on VGG19's paper layers about 130 MB a
# region); the term is traced region by region, so compiling grows with the count too (Adam, 32 px, 2
# steps on 2 CPU cores: 16 regions 3.3 s, 32 4.6 s, 64 9.8 s; 1000 still tracing after 180 s).
# Luan et al.'s label maps have at most 9 colours; 16 leaves room and keeps 512 px within about 2 GB.
MAX_REGIONS = 16


@dataclass(frozen=True, eq=False)
class Region:
    """A part of the output painted in one style.

    mask: (H, W) float in [0, 1] on the output, any size (resized to each scale and layer); 1 = this
        region. style: index of the style image. style_mask: (h, w) float in [0, 1] on that style
        image, any size, or None for the whole image: which part of it to learn from.
    """
    mask: np.ndarray
    style: int = 0
    style_mask: np.ndarray | None = None


def _check_mask(mask, what: str) -> np.ndarray:
    try:
        m = np.asarray(mask, np.float32)
    except (TypeError, ValueError):
        raise StyleError(f"{what} is not an array of numbers") from None
    if m.ndim != 2 or 0 in m.shape:
        raise StyleError(f"{what} must be a 2-D (height, width) array, not one of shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise StyleError(f"{what} has values that are not finite")
    if m.min() < 0 or m.max() > 1:
        raise StyleError(f"{what} has values from {m.min():g} to {m.max():g}, outside [0, 1]")
    if m.max() <= EMPTY:
        raise StyleError(f"{what} is empty")
    return m


def check_regions(regions: Sequence[Region], styles: int, style_blend: Sequence[float] | None = None,
                  ) -> tuple[Region, ...]:
    """The regions with float32 masks, or a one-line `StyleError`: masks 2-D, finite, in [0, 1] (out of
    range is an error, not clipped: a 0-255 mask would clip to all ones), not empty; style indices
    among the `styles` style images; no `style_blend` (each region names its style)."""
    regions = tuple(regions)
    if len(regions) > MAX_REGIONS:
        raise StyleError(f"{len(regions)} regions, but at most {MAX_REGIONS} are supported: merge some")
    if regions and style_blend is not None:
        raise StyleError("`style_blend` does not apply with masks: each region names its style image")
    checked = []
    for i, r in enumerate(regions, 1):
        of = f"{i} of {len(regions)}"
        if not isinstance(r, Region):
            raise StyleError(f"region {of} is not a Region")
        index = r.style
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < styles:
            raise StyleError(f"region {of} names style image {r.style!r}, but the style images are "
                             f"numbered 0 to {styles - 1}")
        style_mask = None if r.style_mask is None else _check_mask(r.style_mask, f"style mask {of}")
        checked.append(Region(_check_mask(r.mask, f"mask {of}"), int(index), style_mask))
    return tuple(checked)


def describe(regions: Sequence[Region]) -> list[dict]:
    """What a report says of each region: its style image, and the share of the output and of the
    style image its masks cover."""
    share = lambda m: 1.0 if m is None else round(float(np.mean(m)), 4)  # noqa: E731
    return [{"style": r.style, "coverage": share(r.mask), "style_coverage": share(r.style_mask)}
            for r in regions]


def targets_key(regions: Sequence[Region]) -> tuple:
    """What the regions' style targets depend on besides the style images (their indices and style
    masks): a key for caches of targets, never equal to a key of plain (unmasked) targets."""
    digest = lambda m: None if m is None else hashlib.blake2b(  # noqa: E731
        np.ascontiguousarray(m).tobytes() + repr(m.shape).encode(), digest_size=16).hexdigest()
    return ("regions",) + tuple((r.style, digest(r.style_mask)) for r in regions)


def _area_axis(a: np.ndarray, n: int, axis: int, part: slice = slice(None)) -> np.ndarray:
    """`a` resampled to `n` samples along `axis`: each output sample is the mean of the piecewise
    constant input over the interval it covers (fractions of input pixels included). `part`: only
    those output samples, from only the input pixels they cover."""
    a = np.moveaxis(a, axis, 0)
    m = a.shape[0]
    first, stop, _ = part.indices(n)
    t = np.arange(n + 1)[first:stop + 1] * (m / n)   # output sample edges in input pixels
    k = np.minimum(t.astype(int), m - 1)
    lo, hi = k[0], k[-1] + 1
    a = a[lo:hi].astype(np.float64)                  # the integral below starts at `lo`: differences agree
    cumulative = np.concatenate([np.zeros((1,) + a.shape[1:]), np.cumsum(a, axis=0)])
    integral = cumulative[k - lo] + (t - k).reshape((-1,) + (1,) * (a.ndim - 1)) * a[k - lo]
    return np.moveaxis(np.diff(integral, axis=0) * (n / m), 0, axis)


def area_resize(mask: np.ndarray, height: int, width: int,
                region: tuple[slice, slice] | None = None) -> np.ndarray:
    """An (H, W) mask resampled to (height, width) by area averaging (up or down, any ratio): every
    region keeps its share of the mass and soft edges stay soft; values stay in [0, 1]. With `region`
    (rows, cols of the result), only that part of it, made from the part of the mask it covers (large
    mode cuts a canvas-sized mask one tile at a time this way); starting at (0, 0), exactly the full
    result's crop, elsewhere to float64 rounding."""
    mask = np.asarray(mask)
    rows, cols = region or (slice(None), slice(None))
    if mask.shape == (height, width):
        return mask[rows, cols].astype(np.float32, copy=False)
    out = _area_axis(_area_axis(mask, height, 0, rows), width, 1, cols)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def restart_uncovered(x: np.ndarray, masks: Sequence[np.ndarray], fresh: np.ndarray) -> np.ndarray:
    """c x + (1 - c) fresh, with c = min(1, sum of the `masks`) at x's size: a later pass (a finer scale,
    a tile after large mode's global pass) starts the pixels no region covers afresh (the photo, with a
    content init), not from the earlier pass's blurred result: only the content term acts there, and
    it would not bring the detail back."""
    cover = np.clip(sum(masks), 0.0, 1.0)[..., None]
    return cover * x + (1.0 - cover) * fresh


def guide(mask: np.ndarray) -> np.ndarray:
    """m sqrt(H W / sum(m^2)) as (H, W, 1), for a mask m at a layer's resolution: gram_matrix(F * guide)
    is then the guided Gram (F m)^T (F m) / (sum(m^2) C), and for m = 1 exactly gram_matrix(F). A mask
    with no mass here gives zeros (the region takes no part at this layer)."""
    m = np.asarray(mask, np.float64)
    mass = float(np.sum(m * m))
    return (m * (np.sqrt(m.size / mass) if mass > 0 else 0.0)).astype(np.float32)[..., None]


def layer_guides(mask: np.ndarray, shapes: Mapping[str, tuple[int, int]]) -> dict[str, np.ndarray]:
    """{layer: guide} of a mask on an image, for layers whose features have the (H_l, W_l) `shapes`."""
    return {name: guide(area_resize(mask, *shape)) for name, shape in shapes.items()}


def guided_gram(features: jax.Array, guide_: jax.Array | None) -> jax.Array:
    """G(F; m) for features (H, W, C) and a `guide` (H, W, 1) of m; None: the plain Gram matrix."""
    return gram_matrix(features if guide_ is None else features * guide_)


def region_style_loss(features: Mapping[str, jax.Array], guides: Sequence[Mapping[str, jax.Array]],
                      targets: Sequence[Mapping[str, jax.Array]], layer_weights: Mapping[str, float],
                      norms: Sequence[Mapping[str, jax.Array]], rho: Callable,
                      weights: Sequence[jax.Array] | None = None, statistic=GRAM) -> jax.Array:
    """sum_r c_r sum_l w_l mean(rho(G_l(x; m_r) - G_l(s_r; m'_r))) / norm_r: `statistics.style_loss` of
    each region under its guides (region r's `guides`, `targets` and `norms`), summed; with another
    `statistic`, its guided layer loss in place of the Grams'. `weights`: the c_r, 1 without them; 0
    for a region whose mask has no mass here (a tile of large mode it does not reach), whose guided
    statistic would be 0 and its term a constant with no gradient."""
    weights = (1.0,) * len(guides) if weights is None else weights
    return sum(c * style_loss(features, t, layer_weights, n, rho, statistic, guides=g)
               for g, t, n, c in zip(guides, targets, norms, weights))


def mask_regions(masks: Sequence[np.ndarray] | None, style_masks: Sequence[np.ndarray] | None,
                 styles: int) -> tuple[Region, ...]:
    """One region per style image: style image k goes where `masks[k]` is white (everywhere without
    masks), learnt from where `style_masks[k]` is white (all of it without style masks)."""
    for given, what in ((masks, "masks"), (style_masks, "style masks")):
        if given is not None and len(given) != styles:
            raise StyleError(f"{len(given)} {what} for {styles} style image{'s' * (styles != 1)}")
    everywhere = np.ones((1, 1), np.float32)
    return tuple(Region(everywhere if masks is None else masks[k], k,
                        None if style_masks is None else style_masks[k]) for k in range(styles))


def _main_colours(colours: np.ndarray, counts: np.ndarray, size: int, what: str) -> dict[int, int]:
    """{colour: the main colour it is} for the colours that count: a colour covering MIN_LABEL_SHARE
    of the image is a label's, unless it is within LABEL_TOLERANCE of a more common one (then it is
    that one: compression and antialiasing shift a flat colour by a few levels; the published
    segmentations hold #fefefe beside #ffffff at 1.5%), or it is a blend of two more common ones
    covering under BLEND_SHARE (an antialiased edge's ramp, which in a small image covers 0.1% per
    level; its pixels then join the nearest main colour like all the others). Over MAX_REGIONS main
    colours is an error at once, naming how many colours cover MIN_LABEL_SHARE (the work is then
    bounded: a label image of 1000 colours is refused in milliseconds)."""
    order = np.argsort(-counts, kind="stable")
    candidates = int(np.count_nonzero(counts >= MIN_LABEL_SHARE * size))
    main: dict[int, int] = {}
    mains = np.zeros((0, 3))
    for c, n in zip(colours[order][:candidates], counts[order][:candidates]):
        rgb = _rgb(int(c))
        near = np.flatnonzero(np.abs(mains - rgb).max(1) <= LABEL_TOLERANCE)
        if len(near):
            main[int(c)] = _code(mains[near[0]])
        elif not (n < BLEND_SHARE * size and _on_a_blend(rgb, mains)):
            if len(mains) == MAX_REGIONS:
                raise StyleError(f"{what} has {candidates} colours (each covering {MIN_LABEL_SHARE:.1%} of it or "
                                 f"more), but at most {MAX_REGIONS} regions are supported: use fewer colours")
            main[int(c)] = int(c)
            mains = np.vstack([mains, rgb])
    return main


def _rgb(code: int) -> np.ndarray:
    return np.array([code >> 16, code >> 8 & 255, code & 255], np.float64)


def _code(rgb: np.ndarray) -> int:
    r, g, b = (int(v) for v in rgb)
    return r << 16 | g << 8 | b


def _on_a_blend(c: np.ndarray, mains: np.ndarray) -> bool:
    """Whether colour c is within LABEL_TOLERANCE (per channel) of a blend t a + (1 - t) b of two of
    the `mains` (m, 3)."""
    if len(mains) < 2:
        return False
    a, b = np.triu_indices(len(mains), 1)
    d = mains[a] - mains[b]
    t = np.clip(np.sum((c - mains[b]) * d, 1) / np.sum(d * d, 1), 0, 1)
    return bool(np.any(np.abs(c - (mains[b] + t[:, None] * d)).max(1) <= LABEL_TOLERANCE))


def _close(a: int, b: int) -> bool:
    """Two 0xRRGGBB codes within LABEL_TOLERANCE of each other in every channel."""
    return all(abs((a >> s & 255) - (b >> s & 255)) <= LABEL_TOLERANCE for s in (16, 8, 0))


def _label_codes(labels: np.ndarray, what: str) -> tuple[np.ndarray, list[int]]:
    """A label image's colours as 0xRRGGBB codes, with the colours that name regions (those over
    MIN_LABEL_SHARE of it, near-duplicates and edge blends left out: `_main_colours`); every other
    pixel takes the nearest of those."""
    image = np.asarray(labels)
    if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise StyleError(f"{what} must be an RGB image, not an array of shape {image.shape}")
    rgb = image.astype(np.int64) if image.dtype == np.uint8 else np.rint(
        np.clip(image.astype(np.float64), 0, 1) * 255).astype(np.int64)
    codes = rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]
    colours, counts = np.unique(codes, return_counts=True)
    # refused past MAX_REGIONS there: before the nearest-colour map below, whose cost grows with the colours
    kept = sorted(set(_main_colours(colours, counts, codes.size, what).values()))
    if not kept:
        raise StyleError(f"{what} has no colour covering {MIN_LABEL_SHARE:.1%} of it: it is not a label "
                         f"image")
    if len(kept) < len(colours):   # one colour at a time: a map of distances, not one per colour
        best, nearest = np.full(codes.shape, np.inf), codes.copy()
        for c in kept:
            d = ((rgb - [c >> 16, c >> 8 & 255, c & 255]) ** 2).sum(-1)
            closer = d < best
            nearest[closer], best[closer] = c, d[closer]
        codes = nearest
    return codes, kept


def _as_content_colours(codes: np.ndarray, kept: list[int], content: list[int]) -> tuple[np.ndarray, list[int]]:
    """A style label image's codes with each colour within LABEL_TOLERANCE of a content colour renamed
    to that one (the nearest)."""
    renamed = {}
    for c in kept:
        near = [m for m in content if _close(c, m)]
        renamed[c] = min(near, key=lambda m: sum(abs((c >> s & 255) - (m >> s & 255)) for s in (16, 8, 0))) \
            if near else c
    if all(c == m for c, m in renamed.items()):
        return codes, kept
    out = codes.copy()
    for c, m in renamed.items():
        out[codes == c] = m
    return out, sorted(set(renamed.values()))


def label_regions(content_labels: np.ndarray, style_labels: Sequence[np.ndarray], styles: int,
                  ) -> tuple[Region, ...]:
    """Regions from colour-coded label images (Luan et al. 2017, neural-style's convention): one label
    image on the content, one per style image; a colour marks the same kind of thing on both sides.

    Each colour of the content labels pairs with the one style label image that has it: that part of
    the output is painted from that part of that style image. A colour covering less than 0.1% of its
    image is antialiasing noise and its pixels join the nearest colour; colours within LABEL_TOLERANCE
    levels of each other are one (a lossy or antialiased save shifts them), within an image and from
    one image to another. A colour of the style labels that the content labels lack paints nothing (that
    part of the style teaches nothing, as in Luan et al.'s code: their pair 2 labels fields in the
    style photo only). White in the content labels and in no style label image takes the whole of
    the style image where there is one (so automatic regions' label images mark a content region that
    no part of the style resembled); any other content colour in no style label image, or in
    several, is an error.
    """
    if len(style_labels) != styles:
        raise StyleError(f"{len(style_labels)} style label images for {styles} style "
                         f"image{'s' * (styles != 1)}")
    content, colours = _label_codes(content_labels, "the content label image")
    styles = [_as_content_colours(*_label_codes(s, f"style label image {k + 1}"), colours)
              for k, s in enumerate(style_labels)]
    regions = []
    for colour in colours:
        owners = [k for k, (_, cs) in enumerate(styles) if colour in cs]
        if not owners and colour == WHOLE_STYLE and len(styles) == 1:
            regions.append(Region((content == colour).astype(np.float32), 0, None))
            continue
        if not owners and colour == WHOLE_STYLE:
            raise StyleError(f"white in the content labels means the whole style image only when there is one; "
                             f"with {len(styles)}, give that region a colour of one style label image")
        if not owners:
            raise StyleError(f"colour #{colour:06x} is in the content labels but in no style label image")
        if len(owners) > 1:
            raise StyleError(f"colour #{colour:06x} is in style label images "
                             f"{', '.join(str(k + 1) for k in owners)}: a colour must name one style image")
        codes = styles[owners[0]][0]
        regions.append(Region((content == colour).astype(np.float32), owners[0],
                              (codes == colour).astype(np.float32)))
    return tuple(regions)


# White in the content labels alone: the whole of the (one) style image (auto_regions' label images).
WHOLE_STYLE = 0xFFFFFF


# --- a painting: colour-coded strokes over the content (the studio's regions editor) -------------------

# The brush's colours: the k-th paints where style image k goes (the style files' order).
PALETTE = {"red": (220, 40, 40), "blue": (40, 100, 230), "green": (40, 170, 70), "orange": (240, 150, 20),
           "purple": (150, 60, 210), "cyan": (20, 180, 200)}
# A painted pixel further than this (RGB distance in [0, 1]^3) from every palette colour is off the
# palette; a painting more than OFF_PALETTE_SHARE off it was not made with the palette's brush.
OFF_PALETTE, OFF_PALETTE_SHARE = 0.3, 0.05


def painted_regions(layers: Sequence[np.ndarray], styles: int, full: float = 1.0) -> tuple[Region, ...]:
    """A painting as regions: RGBA `layers` (uint8, composited in order, each over the ones before);
    each painted pixel belongs to the style of the PALETTE colour nearest its own, wholly where its
    opacity is `full` or more (a brush that paints half opaque: 127/255), in part where less. Style
    images left unpainted take no part; nothing painted, no regions."""
    layers = [np.asarray(layer, np.float32) / 255 for layer in layers]
    if not layers:
        return ()
    if any(layer.ndim != 3 or layer.shape[2] != 4 or layer.shape != layers[0].shape for layer in layers):
        raise StyleError("the painting's layers must be RGBA images of one size")
    premultiplied, alpha = np.zeros(layers[0].shape[:2] + (3,), np.float32), np.zeros(layers[0].shape[:2], np.float32)
    for layer in layers:
        a = layer[..., 3]
        premultiplied = layer[..., :3] * a[..., None] + premultiplied * (1 - a[..., None])
        alpha = a + alpha * (1 - a)
    painted = alpha > EMPTY
    if not painted.any():
        return ()
    colour = premultiplied / np.maximum(alpha, 1e-12)[..., None]
    distance = np.linalg.norm(colour[..., None, :] - np.array(list(PALETTE.values()), np.float32) / 255, axis=-1)
    nearest, names = distance.argmin(-1), list(PALETTE)
    off = painted & (distance.min(-1) > OFF_PALETTE)
    if off.sum() > OFF_PALETTE_SHARE * painted.sum():
        r, g, b = to_uint8(colour[off][0])
        raise StyleError(f"the painting has colours outside the brush's palette (#{r:02x}{g:02x}{b:02x}): "
                         f"paint with {', '.join(names)}, one per style image")
    for k in np.unique(nearest[painted]):
        if k >= styles:
            raise StyleError(f"the painting uses {names[k]}, the colour of style image {k + 1}, but there "
                             f"{'is 1 style image' if styles == 1 else f'are {styles} style images'}: add one "
                             f"or erase the {names[k]}")
    mask = np.clip(alpha / full, 0.0, 1.0)
    return tuple(Region(np.where(painted & (nearest == k), mask, 0.0).astype(np.float32), int(k))
                 for k in np.unique(nearest[painted]))


# --- regions from whatever a front end was given: one function for the CLI and the studio -------------

@dataclass(frozen=True)
class Regions:
    """Regions with the name and RGB colour each is shown in (a palette colour, or its label colour)."""
    regions: tuple[Region, ...] = ()
    names: tuple[str, ...] = ()
    colours: tuple[tuple[int, int, int], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.regions)


def regions_from(styles: int, *, painting: Sequence[np.ndarray] = (), full: float = 1.0,
                 masks: Sequence[np.ndarray] | None = None, style_masks: Sequence[np.ndarray] | None = None,
                 content_labels: np.ndarray | None = None, style_labels: Sequence[np.ndarray] | None = None,
                 blend: Sequence[float] | None = None, shape: tuple[int, int] | None = None) -> Regions:
    """The regions of `styles` style images that one source describes, checked (none without any): a
    `painting` (RGBA layers, `painted_regions`; over a content of `shape` (H, W), where given, whose
    aspect it must have), `masks` and `style_masks` (`mask_regions`), or a pair of label images
    (`label_regions`). More than one source is an error, as is half a pair of label images."""
    painted = painted_regions(painting, styles, full) if len(painting) else ()
    given = [what for what, present in (("a painting", bool(painted)), ("`masks`", bool(masks)),
                                        ("`style_masks`", bool(style_masks)),
                                        ("label images", content_labels is not None or bool(style_labels)))
             if present]
    if len(given) > 1 and given != ["`masks`", "`style_masks`"]:
        raise StyleError(f"regions come from one source at a time, not from {' and '.join(given)}: use one")
    if content_labels is not None or style_labels:
        if content_labels is None or not style_labels:
            raise StyleError("`content_labels` and `style_labels` go together: give both")
        labels = to_uint8(content_labels)
        regions = label_regions(labels, list(style_labels), styles)
        colours = [tuple(int(v) for v in np.median(labels[r.mask > 0.5], axis=0)) for r in regions]
        names = ["#{:02x}{:02x}{:02x}".format(*c) for c in colours]
    else:
        regions = mask_regions(masks or None, style_masks or None, styles) if masks or style_masks else painted
        palette = list(PALETTE.items())
        names, colours = zip(*(palette[r.style % len(palette)] for r in regions)) if regions else ((), ())
    if painted and shape:
        h, w = painted[0].mask.shape
        if abs(h * shape[1] - w * shape[0]) > 0.02 * h * shape[1]:  # another picture's shape
            raise StyleError(f"the painting is {w}x{h} px but the content image is {shape[1]}x{shape[0]}: "
                             f"paint over the content (the editor shows it once it is dropped)")
    return Regions(check_regions(regions, styles, blend), tuple(names), tuple(tuple(c) for c in colours))
