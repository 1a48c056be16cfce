"""Spatial control: guided Grams and the region style term against float64 numpy, masks in image mode,
label images, and the command line's mask options."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from style_core.errors import StyleError
from style_core.losses import layer_norms, penalty
from style_core.objective import image_objective, region_targets, style_targets
from style_core.regions import (Region, area_resize, check_regions, guided_gram, label_regions, layer_guides,
                                mask_regions, region_style_loss)
from style_core.settings import ImageSettings
from style_core.transfer import stylize
from tests.synthetic import photo_like
from tests.test_cli import CONTENT, FAST, STYLE, _bad_file, cli
from tests.test_losses import np_rho, np_vgg19

LOSSES = ["mse", "l1", "huber", "smooth_l1"]


# --- float64 references ----------------------------------------------------------------------------

def np_area(mask, h, w):
    """Area averaging as overlap matrices: output pixel i covers [i n/h, (i+1) n/h) of the n input rows."""
    def overlap(n, k):
        edges = np.arange(k + 1) * n / k
        lo = np.maximum(edges[:-1, None], np.arange(n)[None])
        hi = np.minimum(edges[1:, None], np.arange(n)[None] + 1)
        return np.clip(hi - lo, 0, None) * k / n
    return overlap(mask.shape[0], h) @ mask @ overlap(mask.shape[1], w).T


def np_guided_gram(f, m):
    """(F m)^T (F m) / (sum(m^2) C)."""
    fm = (f * m[..., None]).reshape(-1, f.shape[-1])
    return fm.T @ fm / (np.sum(m ** 2) * f.shape[-1])


def np_region_style(fx, fs, regions, layer_weights, kind, relative, delta=0.7):
    """sum_r sum_l w_l mean(rho(G_l(x; m_r) - G_l(s_r; m'_r))) / norm_rl, each mask area-averaged to
    each layer."""
    rho = lambda d: np_rho(kind, d, delta)  # noqa: E731
    total = 0.0
    for mask, style, style_mask in regions:
        for name, w in layer_weights.items():
            f, g = fx[name], fs[style][name]
            m = np_area(mask, *f.shape[:2])
            ms = np.ones(g.shape[:2]) if style_mask is None else np_area(style_mask, *g.shape[:2])
            target = np_guided_gram(g, ms)
            norm = np.mean(rho(target)) if relative else 1.0
            total += w * np.mean(rho(np_guided_gram(f, m) - target)) / norm
    return total


def soft_mask(rng, h, w):
    """A random soft mask: a blurred blob with grey edges, exact zeros and ones."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    cy, cx = rng.uniform(0.2, 0.8, 2)
    return np.clip(1.5 - 6 * np.hypot(y - cy, x - cx) + 0.2 * rng.random((h, w)), 0, 1)


@pytest.fixture(scope="module")
def features():
    """Random ReLU-like features of x and of two style images at three layers' resolutions, and
    three regions on a 32x40 output with soft masks, two of them with soft style masks."""
    rng = np.random.default_rng(11)
    layers = {"a": (32, 40, 8), "b": (16, 20, 16), "c": (8, 10, 32)}
    styles = [{"a": (24, 24, 8), "b": (12, 12, 16), "c": (6, 6, 32)},
              {"a": (20, 28, 8), "b": (10, 14, 16), "c": (5, 7, 32)}]
    # each map with its own channel means, so that Grams differ by their own size (no cancellation)
    def relu(shape):
        return np.maximum(rng.standard_normal(shape) + rng.uniform(-1, 1, shape[-1]), 0)
    fx = {k: relu(s) for k, s in layers.items()}
    fs = [{k: relu(s) for k, s in style.items()} for style in styles]
    regions = [(soft_mask(rng, 32, 40), 0, soft_mask(rng, 24, 24)),
               (soft_mask(rng, 64, 80), 1, None),            # a mask twice the output's size
               (soft_mask(rng, 17, 23), 1, soft_mask(rng, 9, 13))]
    return fx, fs, regions


def _library_region_style(fx, fs, regions, layer_weights, kind, relative, delta=0.7):
    f32 = lambda d: {k: jnp.asarray(v, jnp.float32) for k, v in d.items()}  # noqa: E731
    rho = penalty(kind, delta)
    guides, targets = [], []
    for mask, style, style_mask in regions:
        guides.append(f32(layer_guides(mask, {k: v.shape[:2] for k, v in fx.items()})))
        g = f32(fs[style])
        style_guides = dict.fromkeys(g) if style_mask is None else f32(
            layer_guides(style_mask, {k: v.shape[:2] for k, v in g.items()}))
        targets.append({k: guided_gram(g[k], style_guides[k]) for k in layer_weights})
    norms = [layer_norms(rho, t, "relative" if relative else "paper") for t in targets]
    return region_style_loss(f32(fx), guides, targets, {k: jnp.float32(w) for k, w in layer_weights.items()},
                             norms, rho)


# --- the maths ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(32, 40), (8, 10), (5, 7), (13, 29), (64, 80)])
def test_area_resize_is_area_averaging(shape):
    mask = soft_mask(np.random.default_rng(1), 32, 40)
    got = area_resize(mask, *shape)
    np.testing.assert_allclose(got, np_area(mask, *shape), rtol=1e-6, atol=1e-7)
    assert got.mean() == pytest.approx(mask.mean(), rel=1e-5)      # the region's share is kept
    assert area_resize(np.ones((7, 9)), *shape).tolist() == np.ones(shape).tolist()


def test_area_resize_of_a_part_is_that_part_of_the_whole():
    """Large mode cuts a canvas-sized mask one tile at a time: from the corner exactly the whole
    result's crop, elsewhere to float64 rounding (the integral starts at the part's first row)."""
    mask = soft_mask(np.random.default_rng(4), 32, 40)
    for shape in ((50, 70), (13, 17), (32, 40)):
        whole = area_resize(mask, *shape)
        corner, middle = (slice(0, shape[0] // 2), slice(0, shape[1] - 3)), (slice(5, shape[0]), slice(4, 11))
        np.testing.assert_array_equal(area_resize(mask, *shape, corner), whole[corner])
        np.testing.assert_allclose(area_resize(mask, *shape, middle), whole[middle], rtol=0, atol=1e-6)


def test_guided_gram_matches_float64(features):
    fx, _, regions = features
    for mask, _, _ in regions:
        for name, f in fx.items():
            m = np_area(mask, *f.shape[:2])
            g = layer_guides(mask, {name: f.shape[:2]})[name]
            got = guided_gram(jnp.asarray(f, jnp.float32), jnp.asarray(g))
            np.testing.assert_allclose(np.asarray(got), np_guided_gram(f, m), rtol=1e-6)


@pytest.mark.parametrize("relative", [False, True])
@pytest.mark.parametrize("kind", LOSSES)
def test_region_style_loss_matches_float64(kind, relative, features):
    fx, fs, regions = features
    layer_weights = {"a": 0.5, "b": 1.0, "c": 2.0}
    got = float(_library_region_style(fx, fs, regions, layer_weights, kind, relative))
    want = np_region_style(fx, fs, regions, layer_weights, kind, relative)
    assert got == pytest.approx(want, rel=1e-6)
    # each region counts: leaving one out changes the sum
    fewer = np_region_style(fx, fs, regions[:2], layer_weights, kind, relative)
    assert want != pytest.approx(fewer, rel=1e-3)


def test_a_small_region_weighs_as_much_as_a_large_one():
    """The guided Gram is a mean over the region: a region of 4 features with the same content as one
    of 400 has the same Gram (it is not ignored for being small)."""
    f = np.tile(np.random.default_rng(2).random((1, 1, 8)), (20, 20, 1))
    small, large = np.zeros((20, 20)), np.ones((20, 20))
    small[3:5, 3:5] = 1
    def gram(m):
        return np.asarray(guided_gram(jnp.asarray(f, jnp.float32), layer_guides(m, {"l": (20, 20)})["l"]))
    np.testing.assert_allclose(gram(small), gram(large), rtol=1e-5)


@pytest.mark.parametrize("kind", ["mse", "huber"])
def test_style_term_gradient_is_zero_where_no_mask_reaches_the_layer(kind, features):
    fx, fs, regions = features
    layer_weights = {"a": 0.5, "b": 1.0, "c": 2.0}
    left = np.zeros((32, 40))
    left[:, :12] = 1
    regions = [(left, 0, regions[0][2]), (left * 0.5, 1, None)]
    grads = jax.grad(lambda f: _library_region_style(f, fs, regions, layer_weights, kind, False))(
        {k: jnp.asarray(v, jnp.float32) for k, v in fx.items()})
    for name, g in grads.items():
        covered = np_area(left, *g.shape[:2]) > 0
        g = np.asarray(g)
        assert np.all(g[~covered] == 0), name
        assert np.mean(np.abs(g[covered]) > 0) > 0.3, name


# --- in the objective and image mode ----------------------------------------------------------------

SMALL = dict(size=32, style_layers="relu1_1,relu2_1,relu3_1", content_layers="relu2_2", steps_per_call=10,
             tol=0.0)


def _objective(settings, variables, content, styles, regions):
    if not regions:
        objective = image_objective(settings)
        return objective, objective.aux(variables, content, style_targets(settings, variables, styles))
    objective = image_objective(settings, regions=True)
    targets = region_targets(settings, variables, styles, regions)
    return objective, objective.aux(variables, content, targets, [r.mask for r in regions])


@pytest.mark.parametrize("normalization", ["paper", "relative"])
def test_objective_style_term_matches_the_float64_vgg_reference(normalization, vgg19_weights):
    """The style term of image_objective with regions (its targets, masks brought to each layer) against
    a numpy VGG forward pass and the float64 formula."""
    from tests.conftest import state_dict
    rng = np.random.default_rng(5)
    content, x = rng.random((16, 20, 3)), rng.random((16, 20, 3))
    styles = [rng.random((16, 16, 3)), rng.random((12, 20, 3))]
    masks = [(soft_mask(rng, 16, 20), 0, soft_mask(rng, 16, 16)), (soft_mask(rng, 32, 40), 1, None)]
    s = ImageSettings(size=20, loss="huber", huber_delta=0.7, normalization=normalization,
                      style_layers="relu1_1:0.5,conv2_1,relu3_1:2", content_layers="relu2_2")
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    regions = check_regions([Region(m, k, sm) for m, k, sm in masks], 2)
    objective, aux = _objective(s, vgg19_weights.variables, f32(content), [f32(st) for st in styles], regions)
    got = float(objective.function(jnp.asarray(x, jnp.float32), aux)["style"])
    sd = state_dict("vgg19")
    layer_weights = dict(zip(s.style_layers, s.style_layer_weights))
    want = np_region_style(np_vgg19(x, sd), [np_vgg19(st, sd) for st in styles], masks, layer_weights, "huber",
                           normalization == "relative")
    assert got == pytest.approx(want, rel=1e-4)


@pytest.mark.parametrize("kind,normalization", [("mse", "paper"), ("l1", "relative"), ("smooth_l1", "paper")])
def test_a_mask_of_all_ones_is_exactly_the_unmasked_style_loss(kind, normalization, rng_images,
                                                                vgg19_weights):
    content, style = rng_images
    s = ImageSettings(**SMALL, loss=kind, normalization=normalization)
    x = jnp.asarray(np.clip(content + 0.1, 0, 1))
    plain = _objective(s, vgg19_weights.variables, content, [style], ())
    ones = _objective(s, vgg19_weights.variables, content, [style],
                      check_regions([Region(np.ones((5, 6)), 0, np.ones((3, 3)))], 1))
    values = [jax.jit(o.function)(x, aux)["style"] for o, aux in (plain, ones)]
    grads = [jax.grad(lambda y: o.function(y, aux)["style"])(x) for o, aux in (plain, ones)]
    assert float(values[0]) == float(values[1]) > 0
    np.testing.assert_array_equal(np.asarray(grads[0]), np.asarray(grads[1]))


def test_image_mode_with_one_all_ones_region_takes_the_same_steps(rng_images, vgg19_weights):
    """Bit for bit over two scales of Adam steps: the region path is the plain one when the mask is 1."""
    content, style = rng_images
    s = ImageSettings(**{**SMALL, "size": 64}, scales=2, optimizer="adam", iterations=6)
    plain = list(stylize(content, [style], s, vgg19_weights))[-1].result
    ones = list(stylize(content, [style], s, vgg19_weights,
                        regions=[Region(np.ones((40, 48)), 0)]))[-1].result
    steps = lambda r: [(h["step"], h["scale"], h["losses"]) for h in r.history]  # noqa: E731
    assert steps(plain) == steps(ones) and len(steps(plain)) >= 2
    np.testing.assert_array_equal(plain.image, ones.image)
    assert "regions" not in plain.report() and ones.report()["regions"] == [
        {"style": 0, "coverage": 1.0, "style_coverage": 1.0}]


def test_the_targets_cache_keeps_region_and_plain_targets_apart(rng_images, vgg19_weights):
    """One `grams` dict through plain, whole-style and half-style runs (video mode shares one across
    frames): each run's targets are its own, as in a run with no shared cache."""
    content, style = rng_images
    s, top = ImageSettings(**SMALL, iterations=0), np.zeros((36, 36))
    top[:18] = 1
    runs = [{}, {"regions": [Region(np.ones((4, 4)))]}, {"regions": [Region(np.ones((4, 4)), 0, top)]}]
    grams: dict = {}
    shared = [list(stylize(content, [style], s, vgg19_weights, targets=grams, **kw))[-1].result for kw in runs]
    alone = [list(stylize(content, [style], s, vgg19_weights, **kw))[-1].result for kw in runs]
    assert len(grams) == 3
    assert [r.final_losses for r in shared] == [r.final_losses for r in alone]
    assert shared[2].final_losses["style"] != shared[1].final_losses["style"]


def test_new_masks_of_the_same_count_reuse_the_compiled_steps(rng_images, vgg19_weights):
    from style_core.steppers import first_order_chunk
    content, style = rng_images
    s, half = ImageSettings(**SMALL, optimizer="adam", iterations=3), np.zeros((40, 48))
    half[:, :24] = 1
    list(stylize(content, [style], s, vgg19_weights, regions=[Region(half), Region(1 - half)]))
    misses = first_order_chunk.cache_info().misses
    list(stylize(content, [style], s.replace(style_weight=1e3), vgg19_weights,
                 regions=[Region(np.tri(40, 48)), Region(np.ones((3, 3)), 0, np.eye(5))]))
    assert first_order_chunk.cache_info().misses == misses


@pytest.mark.parametrize("normalization", ["paper", "relative"])
def test_a_region_without_mass_here_adds_nothing(normalization, rng_images, vgg19_weights):
    """A tile of large mode that a region does not reach gets that region's mask as zeros: with weight
    0 its term adds neither a constant nor a gradient (nor 0/0), and the compiled code is the same."""
    content, style = rng_images
    s = ImageSettings(**SMALL, normalization=normalization)
    one = check_regions([Region(soft_mask(np.random.default_rng(2), 40, 48))], 1)
    objective, alone = _objective(s, vgg19_weights.variables, content, [style], one)
    targets = region_targets(s, vgg19_weights.variables, [style], one * 2)
    both = objective.aux(vgg19_weights.variables, content, targets, [one[0].mask, np.zeros((40, 48))])
    x = jnp.asarray(np.clip(content + 0.1, 0, 1))
    values = [jax.value_and_grad(lambda y: objective.function(y, aux)["style"])(x) for aux in (alone, both)]
    assert float(values[0][0]) == pytest.approx(float(values[1][0]), rel=1e-6) and float(values[0][0]) > 0
    np.testing.assert_allclose(np.asarray(values[1][1]), np.asarray(values[0][1]), rtol=1e-5, atol=1e-12)
    assert [float(w) for w in both.data["style"]["weights"]] == [1.0, 0.0]


def test_image_level_style_gradient_is_zero_beyond_the_receptive_field(rng_images, vgg19_weights):
    """With the right half of a 64 px image covered, the style term's gradient is exactly zero on the
    pixels that no covered feature sees: at relu3_1 (stride 4) a feature at column j sees pixels
    4j - 10 .. 4j + 13, and the covered features start at j = 8, so pixels left of 22 get nothing."""
    rng = np.random.default_rng(3)
    content, style = rng.random((32, 64, 3)).astype(np.float32), rng_images[1]
    right = np.zeros((32, 64))
    right[:, 32:] = 1
    s = ImageSettings(**{**SMALL, "size": 64})
    objective, aux = _objective(s, vgg19_weights.variables, content, [style],
                                check_regions([Region(right)], 1))
    x = jnp.asarray(rng.random((32, 64, 3)), jnp.float32)
    g = np.abs(np.asarray(jax.grad(lambda y: objective.function(y, aux)["style"])(x))).max(axis=(0, 2))
    assert np.all(g[:22] == 0) and np.all(g[32:] > 0)


def texture(a, b, seed, size=48):
    """A striped texture between the colours a and b, with noise: a style image with its own palette."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    t = (0.5 + 0.5 * np.sin(20 * x + 6 * np.sin(9 * y) + rng.uniform(0, 6)))[..., None]
    image = t * a + (1 - t) * np.asarray(b) + 0.05 * rng.standard_normal((size, size, 3))
    return np.clip(image, 0, 1).astype(np.float32)


RED, BLUE = texture((0.9, 0.25, 0.1), (0.6, 0.05, 0.1), 1), texture((0.1, 0.35, 0.9), (0.05, 0.1, 0.5), 2)
HALVES = ImageSettings(**{**SMALL, "size": 64}, scales=2, iterations=30, normalization="paper",
                       style_weight=1e5)   # random weights: the deck's weighting, as measured


def _halves():
    left = np.zeros((48, 64), np.float32)
    left[:, :32] = 1
    return left, 1 - left


def test_two_styles_on_two_halves_each_take_their_own_palette(vgg19_weights):
    content, (left, right) = photo_like(48, 64), _halves()
    result = list(stylize(content, [RED, BLUE], HALVES, vgg19_weights,
                          regions=[Region(left, 0), Region(right, 1)]))[-1].result
    mean = lambda a: a.reshape(-1, 3).mean(0)  # noqa: E731
    halves = {"left": mean(result.image[:, :32]), "right": mean(result.image[:, 32:])}
    styles = {"red": mean(RED), "blue": mean(BLUE)}
    d = {(h, s): float(np.linalg.norm(halves[h] - styles[s])) for h in halves for s in styles}
    print(f"\ntwo halves, mean colour distance: left-red {d['left', 'red']:.3f}, left-blue "
          f"{d['left', 'blue']:.3f}, right-blue {d['right', 'blue']:.3f}, right-red {d['right', 'red']:.3f} "
          f"(content to red {np.linalg.norm(mean(content) - styles['red']):.3f}, to blue "
          f"{np.linalg.norm(mean(content) - styles['blue']):.3f})")
    assert d["left", "red"] < 0.5 * d["left", "blue"] and d["right", "blue"] < 0.5 * d["right", "red"]
    assert result.final_losses["style"] < 0.01 * result.initial_losses["style"]


def test_an_uncovered_half_stays_the_content(vgg19_weights):
    """One style on the left half; the right half has no region: beyond a receptive field from the
    edge it stays the content (also through the coarse scale), while the left half moves."""
    content, (left, _) = photo_like(48, 64), _halves()
    image = list(stylize(content, [RED], HALVES, vgg19_weights, regions=[Region(left, 0)]))[-1].result.image
    moved = lambda cols: float(np.abs(image[:, cols] - content[:, cols]).mean())  # noqa: E731
    far = float(np.abs(image[:, 48:] - content[:, 48:]).max())
    print(f"\nuncovered half, mean |x - content|: covered left {moved(slice(0, 32)):.4f}, uncovered right "
          f"{moved(slice(32, 64)):.4f}, its far quarter {moved(slice(48, 64)):.2e} (max {far:.2e})")
    assert moved(slice(0, 32)) > 0.2
    assert moved(slice(32, 64)) < 0.05 and moved(slice(48, 64)) < 1e-3 and far < 0.01


# --- checking regions, masks per style, label images -------------------------------------------------

@pytest.mark.parametrize("regions,blend,message", [
    ([Region(np.ones((4, 4))), Region(np.zeros((4, 4)), 1)], None, "^mask 2 of 2 is empty$"),
    ([Region(np.ones((4, 4)), 0, np.full((3, 3), 1e-4))], None, "^style mask 1 of 1 is empty$"),
    ([Region(np.ones((4, 4, 1)))], None, r"mask 1 of 1 must be a 2-D \(height, width\) array"),
    ([Region(np.full((4, 4), np.nan))], None, "mask 1 of 1 has values that are not finite"),
    ([Region(np.full((4, 4), 255.0))], None, r"mask 1 of 1 has values from 255 to 255, outside \[0, 1\]"),
    ([Region(np.ones((4, 4)), 2)], None,
     "region 1 of 1 names style image 2, but the style images are numbered 0 to 1"),
    ([Region(np.ones((4, 4)), 0)], (1.0, 1.0), "`style_blend` does not apply with masks"),
])
def test_bad_regions_are_one_line(regions, blend, message):
    with pytest.raises(StyleError, match=message):
        check_regions(regions, 2, blend)


def test_masks_per_style_image():
    a, b = np.ones((4, 4)), np.zeros((4, 4))
    regions = mask_regions([a, b], None, 2)
    assert [r.style for r in regions] == [0, 1] and regions[1].mask is b and regions[0].style_mask is None
    everywhere = mask_regions(None, [a, b], 2)
    assert everywhere[0].mask.tolist() == [[1.0]] and everywhere[1].style_mask is b
    with pytest.raises(StyleError, match="^3 masks for 2 style images$"):
        mask_regions([a, a, a], None, 2)
    with pytest.raises(StyleError, match="^2 style masks for 1 style image$"):
        mask_regions([a], [a, a], 1)


RED_, GREEN_, BLUE_ = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def labels(h, w, *stripes):
    """An RGB uint8 label image of vertical stripes: (colour, first column, last column + 1)."""
    image = np.zeros((h, w, 3), np.uint8)
    for colour, c0, c1 in stripes:
        image[:, c0:c1] = colour
    return image


def test_label_images_pair_colours_into_regions():
    content = labels(40, 50, (RED_, 0, 20), (GREEN_, 20, 50))
    content[0, 30] = (250, 5, 5)                  # noise: 1 pixel of 2000 (0.05%) names no region, joins red
    style = labels(30, 30, (GREEN_, 0, 10), (RED_, 10, 30)) / 255.0   # float images as load_image gives
    green, red = label_regions(content, [style], 1)   # in the order of their colours' hex codes
    assert red.style == green.style == 0
    assert red.mask[:, :20].min() == 1 and red.mask[0, 30] == 1 and red.mask.sum() == 40 * 20 + 1
    assert green.style_mask[:, :10].min() == 1 and green.style_mask.sum() == 30 * 10
    # two style images: each colour goes to the style label image that has it
    two = label_regions(content, [labels(8, 8, (RED_, 0, 8)), labels(8, 8, (GREEN_, 0, 8))], 2)
    assert [r.style for r in two] == [1, 0]
    with pytest.raises(StyleError, match="^1 style label images for 2 style images$"):
        label_regions(content, [style], 2)


def antialiased_labels(h, w, shapes, shift=(0, 0, 0)):
    """A label image drawn as people save one: `shapes` (colour, box) filled ellipses over a black
    ground, drawn at 4x and downsampled (antialiased edges: a ramp of in-between colours), each colour
    then shifted by a few levels in part of the image (a lossy save): rows below the middle get
    `shift` added."""
    from PIL import ImageDraw
    big = Image.new("RGB", (4 * w, 4 * h), (0, 0, 0))
    draw = ImageDraw.Draw(big)
    for colour, (x0, y0, x1, y1) in shapes:
        draw.ellipse((4 * x0, 4 * y0, 4 * x1, 4 * y1), fill=colour)
    image = np.asarray(big.resize((w, h), Image.Resampling.LANCZOS)).astype(int)
    image[h // 2:] = np.clip(image[h // 2:] + shift, 0, 255)
    return image.astype(np.uint8)


def test_antialiased_and_shifted_label_colours_are_read_as_their_main_colours():
    """Edge pixels take the nearest main colour; a colour a few levels off (#fe0101 for red, #01ff00
    for green) is that colour, within an image and from the content's labels to the style's."""
    content = antialiased_labels(60, 80, [(RED_, (5, 5, 40, 50)), (GREEN_, (45, 10, 78, 55))], shift=(-1, 1, 1))
    style = antialiased_labels(50, 50, [(GREEN_, (2, 2, 25, 48)), (RED_, (26, 2, 48, 48))], shift=(1, -2, 0))
    assert len(np.unique(content.reshape(-1, 3), axis=0)) > 20       # many colours, as published files have
    black, green, red = label_regions(content, [style], 1)
    total = black.mask + green.mask + red.mask
    assert total.min() == total.max() == 1                           # every pixel in exactly one region
    # each region is its drawn ellipse, edges decided by the nearest colour: within a pixel of the outline
    y, x = np.mgrid[0:60, 0:80] + 0.5
    inside = ((x - 22.5) / 17.5) ** 2 + ((y - 27.5) / 22.5) ** 2
    assert red.mask[inside < 0.8].min() == 1 and red.mask[inside > 1.2].max() == 0
    assert 0.3 < green.style_mask.mean() < 0.5 and 0.3 < red.style_mask.mean() < 0.5


@pytest.mark.parametrize("content,styles,message", [
    (labels(20, 20, (RED_, 0, 10), (BLUE_, 10, 20)), [labels(8, 8, (RED_, 0, 8))],
     "^colour #0000ff is in the content labels but in no style label image$"),
    (labels(20, 20, (RED_, 0, 20)), [labels(8, 8, (RED_, 0, 8)), labels(8, 8, (RED_, 0, 8))],
     "colour #ff0000 is in style label images 1, 2: a colour must name one style image"),
    (labels(20, 20, (RED_, 0, 20)), [labels(8, 8, (RED_, 0, 8))] * 2 + [labels(8, 8, (RED_, 0, 8))],
     "colour #ff0000 is in style label images 1, 2, 3"),
    (np.zeros((20, 20)), [labels(8, 8, (RED_, 0, 8))], "the content label image must be an RGB image"),
    # white alone in the content: the whole style image with one (auto_regions' label images); with two,
    # which one is not said
    (labels(20, 20, (RED_, 0, 10), ((255, 255, 255), 10, 20)), [labels(8, 8, (RED_, 0, 8)), labels(8, 8, (BLUE_, 0, 8))],
     "^white in the content labels means the whole style image only when there is one; with 2, give that region"),
])
def test_label_errors_name_the_colour_and_the_side(content, styles, message):
    with pytest.raises(StyleError, match=message):
        label_regions(content, styles, len(styles))


# --- the command line ----------------------------------------------------------------------------------

def _png(path, array):
    Image.fromarray(np.asarray(array, np.uint8)).save(path)
    return path


def test_a_colour_only_the_style_labels_have_teaches_nothing():
    """Luan et al.'s pair 2 labels fields in the style photo only: that part of the style is unused."""
    red, = label_regions(labels(20, 20, (RED_, 0, 20)), [labels(8, 8, (RED_, 0, 4), (GREEN_, 4, 8))], 1)
    assert red.mask.min() == 1 and red.style_mask[:, :4].min() == 1 and red.style_mask[:, 4:].max() == 0


# The published segmentations (../shared/real-inputs/photo-pairs/segmentation/): their main colours
# (black sky, white ground; pair 6 green water), each file with hundreds to thousands of colours.
PUBLISHED = {"2": 2, "4": 2, "5": 2, "6": 3}


@pytest.mark.parametrize("pair", list(PUBLISHED))
def test_the_published_segmentations_are_read_as_they_are(pair, real_inputs):
    from style_core.images import load_image
    read = lambda name: load_image(real_inputs.segmentation(name), still=True)  # noqa: E731
    content, style = read(f"in{pair}.png"), read(f"tar{pair}.png")
    assert len(np.unique((content * 255).round().reshape(-1, 3), axis=0)) > 500
    regions = label_regions(content, [style], 1)
    assert len(regions) == PUBLISHED[pair]
    assert np.all(sum(r.mask for r in regions) == 1)                 # a partition of the content
    assert all(r.mask.mean() > 0.05 and r.style_mask.mean() > 0.1 for r in regions), \
        [(r.mask.mean(), r.style_mask.mean()) for r in regions]
    sky = regions[0]                                                 # black (#000000) sorts first: the sky
    assert sky.mask[0].mean() > 0.5 and sky.style_mask[0].mean() > 0.5
    check_regions(regions, 1)


def test_mask_files_read_as_grey_levels_with_transparency_as_black(tmp_path):
    from style_core.images import load_mask
    grey = np.array([[0, 64, 128, 255]], np.uint8)
    assert load_mask(_png(tmp_path / "g.png", grey)).tolist() == [(grey[0] / 255).astype(np.float32).tolist()]
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3], rgba[0, :, 3] = 255, 255          # white, opaque on the first row only
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert load_mask(tmp_path / "a.png").tolist() == [[1, 1], [0, 0]]


def test_the_bundled_example_masks_are_complementary_and_their_labels_pair_up():
    """README's worked example: assets/make_masks.py's masks and label images."""
    from style_core.images import load_image, load_mask
    folder = CONTENT.parent / "masks"
    sky, land = (load_mask(folder / f"{n}.png") for n in ("sky", "land"))
    assert sky.shape == load_image(CONTENT).shape[:2] and np.abs(sky + land - 1).max() <= 1 / 255 + 1e-6
    left, right = (load_mask(folder / f"{n}.png") for n in ("left", "right"))
    assert left[:, 0].min() == 1 and left[:, -1].max() == 0 and np.abs(left + right - 1).max() <= 1 / 255 + 1e-6
    check_regions(mask_regions([sky, land], None, 2), 2)
    pairs = label_regions(load_image(folder / "labels.png"), [load_image(folder / "style-labels.png")], 1)
    assert len(pairs) == 2 and all(0.3 < r.mask.mean() < 0.7 and r.style_mask.mean() == 0.5 for r in pairs)


@pytest.fixture
def halves(tmp_path):
    """left.png and right.png, white on one half of the bundled content's shape (4:3), at 64x48."""
    left = np.zeros((48, 64), np.uint8)
    left[:, :32] = 255
    return _png(tmp_path / "left.png", left), _png(tmp_path / "right.png", 255 - left)


def test_cli_paints_two_styles_through_masks(tmp_path, capsys, weight_files, halves):
    out, report = tmp_path / "out.png", tmp_path / "run.json"
    code, _, err = cli(capsys, "image", CONTENT, STYLE, CONTENT, "-o", out, *FAST, "--iterations", 3,
                       "--masks", *halves, "--weights", weight_files("vgg19"), "--report", report, "--quiet")
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["regions"] == [{"style": 0, "coverage": 0.5, "style_coverage": 1.0},
                               {"style": 1, "coverage": 0.5, "style_coverage": 1.0}]
    assert data["mask_files"] == [str(h) for h in halves] and Image.open(out).size == (32, 24)


def test_cli_paints_label_pairs(tmp_path, capsys, weight_files):
    content_labels = _png(tmp_path / "cl.png", labels(48, 64, (RED_, 0, 32), (GREEN_, 32, 64)))
    style_labels = _png(tmp_path / "sl.png", labels(30, 30, (GREEN_, 0, 15), (RED_, 15, 30)))
    report = tmp_path / "run.json"
    code, _, err = cli(capsys, "image", CONTENT, STYLE, "-o", tmp_path / "o.png", *FAST, "--iterations", 2,
                       "--content-labels", content_labels, "--style-labels", style_labels,
                       "--weights", weight_files("vgg19"), "--report", report, "--quiet")
    assert code == 0, err
    assert [r["style_coverage"] for r in json.loads(report.read_text())["regions"]] == [0.5, 0.5]


MASK_ERRORS = {
    "count": (lambda t, h: ["--masks", *h, h[0]], "3 masks for 2 style images"),
    "style mask count": (lambda t, h: ["--masks", *h, "--style-masks", h[0]],
                         "1 style masks for 2 style images"),
    "empty": (lambda t, h: ["--masks", h[0], _png(t / "black.png", np.zeros((4, 4)))],
              "mask 2 of 2 is empty"),
    "missing": (lambda t, h: ["--masks", h[0], t / "nope.png"], "nope.png: no such file"),
    "truncated": (lambda t, h: ["--masks", h[0], _bad_file(t, "cut.png", h[1].read_bytes()[:60])],
                  "cut.png: damaged or truncated image"),
    "not an image": (lambda t, h: ["--masks", h[0], _bad_file(t, "text.png", b"hello")],
                     "text.png: not an image file"),
    "both kinds": (lambda t, h: ["--masks", *h, "--content-labels", h[0], "--style-labels", h[0], h[1]],
                   "regions come from one source at a time, not from --masks and label images: use one"),
    "labels alone": (lambda t, h: ["--content-labels", h[0]],
                     "--content-labels and --style-labels go together: give both"),
    "one-sided colour": (lambda t, h: ["--content-labels",
                                       _png(t / "c.png", labels(8, 8, (RED_, 0, 4), (BLUE_, 4, 8))),
                                       "--style-labels", _png(t / "s1.png", labels(8, 8, (RED_, 0, 8))),
                                       _png(t / "s2.png", labels(8, 8, (RED_, 0, 8)))],
                         "colour #0000ff is in the content labels but in no style label image"),
    "blend": (lambda t, h: ["--masks", *h, "--style-blend", "1,2"],
              "--style-blend does not apply with masks"),
}


@pytest.mark.parametrize("case", list(MASK_ERRORS))
def test_cli_mask_errors_are_one_line(case, tmp_path, capsys, halves):
    make, message = MASK_ERRORS[case]
    code, _, err = cli(capsys, "image", CONTENT, STYLE, STYLE, "-o", tmp_path / "o.png", *FAST,
                       *make(tmp_path, halves), "--weights", "random")
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert not (tmp_path / "o.png").exists()


def test_cli_large_mode_paints_through_masks_kept_in_its_job(tmp_path, capsys, weight_files, halves):
    """Six tiles, two regions; the job's masks are its inputs: with the halves swapped it is another job."""
    out, report, job = tmp_path / "big.png", tmp_path / "big.json", tmp_path / "job"
    args = ["large", CONTENT, STYLE, CONTENT, "-o", out, "--size", 96, "--tile", 40, "--overlap", 8,
            "--base-size", 32, *FAST[2:], "--optimizer", "adam", "--iterations", 2,
            "--weights", weight_files("vgg19"), "--job", job, "--keep-job", "--report", report, "--quiet"]
    code, _, err = cli(capsys, *args, "--masks", *halves)
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["tiles"] == 6 and Image.open(out).size == (96, 72)
    assert data["mask_files"] == [str(h) for h in halves]
    assert [r["coverage"] for r in data["regions"]] == [0.5, 0.5]
    code, _, err = cli(capsys, *args, "--masks", *halves[::-1], "--resume")
    assert code == 2 and "holds a job with other inputs or settings" in err


def test_cli_photo_mode_takes_label_pairs(tmp_path, capsys, weight_files):
    content_labels = _png(tmp_path / "cl.png", labels(48, 64, (RED_, 0, 32), (GREEN_, 32, 64)))
    style_labels = _png(tmp_path / "sl.png", labels(30, 30, (GREEN_, 0, 15), (RED_, 15, 30)))
    report = tmp_path / "run.json"
    code, _, err = cli(capsys, "photo", CONTENT, STYLE, "-o", tmp_path / "o.png", *FAST, "--iterations", 2,
                       "--two-stage", "--refine-iterations", 2, "--content-labels", content_labels,
                       "--style-labels", style_labels, "--weights", weight_files("vgg19"), "--report", report,
                       "--quiet")
    assert code == 0, err
    data = json.loads(report.read_text())
    assert [r["style_coverage"] for r in data["regions"]] == [0.5, 0.5] and data["mode"] == "photo"
    assert len(data["region_style_losses"]) == 2 and "photo" in data["final_losses"]


def test_video_mode_refuses_masks_for_now(tmp_path, capsys, halves):
    code, _, err = cli(capsys, "video", CONTENT, STYLE, "-o", tmp_path / "o.mp4", "--masks", halves[0],
                       "--weights", "random")
    assert code == 2 and err.strip() == "error: masks are not supported in video mode yet"


def test_a_painting_is_regions_by_its_palette_colours():
    """`painted_regions`: half-opaque strokes on two layers, red on the left half, blue on the right
    with a fainter stroke at its edge, and red painted twice over itself at the top left (composited
    in order): red is style 1, blue style 2, each wholly where the brush's opacity is reached and in
    part where less; unpainted pixels belong to none. Against the compositing done by hand."""
    from style_core.regions import PALETTE, painted_regions
    h, w, full = 6, 12, 127 / 255
    red, over, blue = (np.zeros((h, w, 4), np.uint8) for _ in range(3))
    red[:, :6] = (*PALETTE["red"], 127)
    over[:2, :3] = (*PALETTE["red"], 127)               # the same colour again, over it
    blue[:4, 6:] = (*PALETTE["blue"], 127)
    blue[:4, 10:, 3] = 40                                # a faint stroke at the right edge
    regions = painted_regions([red, over, blue], 2, full)
    assert [r.style for r in regions] == [0, 1]
    alpha = np.zeros((h, w))
    for layer in (red, over, blue):
        a = layer[..., 3] / 255
        alpha = a + alpha * (1 - a)
    coverage = np.clip(alpha / full, 0, 1)
    np.testing.assert_allclose(regions[0].mask, np.where(red[..., 3] > 0, coverage, 0), atol=1e-6)
    np.testing.assert_allclose(regions[1].mask, np.where(blue[..., 3] > 0, coverage, 0), atol=1e-6)
    assert regions[0].mask[0, 0] == 1.0 and regions[1].mask[0, 11] == pytest.approx(40 / 127, rel=1e-5)
    assert regions[1].mask[5, 8] == 0.0                  # unpainted
    with pytest.raises(StyleError, match="the painting uses blue, the colour of style image 2, but there is 1"):
        painted_regions([red, blue], 1, full)
    assert painted_regions([np.zeros((h, w, 4), np.uint8)], 2, full) == ()
