"""The Wasserstein-2 style statistic against float64 numpy/scipy: its value, gradient, guided (region)
and tiled (large mode) targets, and in the objective through a numpy VGG forward pass."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import sqrtm

from style_core.large import tiled_guided_targets
from style_core.objective import image_objective, region_targets, style_targets
from style_core.regions import Region, guide
from style_core.settings import ImageSettings
from style_core.statistics import STATISTICS, trace_sqrt
from style_core.transfer import stylize
from tests.test_large import LAYERS, run_large, soft_halves, texture
from tests.test_losses import np_vgg19
from tests.test_regions import np_area

W2 = STATISTICS["w2"]


def np_gaussian(f, m=None):
    """Mean and covariance of the positions of f (H, W, C), weighted by m^2 / sum(m^2) (m: none, 1)."""
    x = f.reshape(-1, f.shape[-1])
    p = np.ones(len(x)) if m is None else m.reshape(-1) ** 2
    p = p / p.sum()
    mean = p @ x
    return mean, (x - mean).T @ ((x - mean) * p[:, None])


def np_w2(fx, fs, mx=None, ms=None):
    """W2^2 / C between the Gaussians of fx and fs, with scipy's matrix square root."""
    (mu_x, c_x), (mu_s, c_s) = np_gaussian(fx, mx), np_gaussian(fs, ms)
    root = sqrtm(c_s).real
    cross = np.trace(sqrtm(root @ c_x @ root).real)
    return (np.sum((mu_x - mu_s) ** 2) + np.trace(c_x) + np.trace(c_s) - 2 * cross) / fx.shape[-1]


def w2_value(fx, fs, gx=None, gs=None):
    target = W2.target(W2.moments(W2.sums(jnp.asarray(fs, jnp.float32), gs)))
    return W2.loss(jnp.asarray(fx, jnp.float32), gx, target, None), target


@pytest.fixture
def maps():
    rng = np.random.default_rng(11)
    fx = np.maximum(rng.standard_normal((6, 7, 5)) + 0.3, 0) + 0.1 * rng.random((6, 7, 5))
    fs = np.maximum(rng.standard_normal((5, 8, 5)) * 1.5 + 0.2, 0) + 0.1 * rng.random((5, 8, 5))
    return fx, fs


def test_w2_matches_scipy(maps):
    fx, fs = maps
    value, target = w2_value(fx, fs)
    assert float(value) == pytest.approx(np_w2(fx, fs), rel=1e-4)
    mean, cov = np_gaussian(fs)
    np.testing.assert_allclose(np.asarray(target["root"]), sqrtm(cov).real, rtol=1e-4, atol=1e-5)
    assert float(W2.scale(target, None)) == pytest.approx((mean @ mean + np.trace(cov)) / 5, rel=1e-5)
    assert float(w2_value(fs, fs)[0]) == pytest.approx(0.0, abs=1e-4 * np_w2(fx, fs))   # a distance: 0 to itself


def test_w2_gradient_matches_finite_differences_of_scipy(maps):
    fx, fs = maps
    grad = np.asarray(jax.grad(lambda f: w2_value(f, fs)[0])(jnp.asarray(fx, jnp.float32)), np.float64)
    rng, h = np.random.default_rng(2), 1e-5
    for _ in range(3):
        v = rng.standard_normal(fx.shape)
        v /= np.linalg.norm(v)
        fd = (np_w2(fx + h * v, fs) - np_w2(fx - h * v, fs)) / (2 * h)
        assert float(np.sum(grad * v)) == pytest.approx(fd, rel=2e-3, abs=1e-4 * np.linalg.norm(grad))


def test_trace_sqrt_gradient_is_finite_on_a_singular_matrix():
    """Fewer positions than channels (a deep layer of a small image): C_x is singular, and the slope of
    its zero eigenvalues is bounded, not infinite."""
    f = jnp.asarray(np.random.default_rng(3).random((3, 8)), jnp.float32)
    g = jax.grad(lambda a: trace_sqrt(a.T @ a))(f)
    assert np.all(np.isfinite(np.asarray(g))) and float(jnp.abs(g).max()) > 0


def test_guided_w2_is_the_mass_weighted_gaussian(maps):
    fx, fs = maps
    rng = np.random.default_rng(4)
    mx, ms = rng.random(fx.shape[:2]), rng.random(fs.shape[:2])
    value, _ = w2_value(fx, fs, jnp.asarray(guide(mx)), jnp.asarray(guide(ms)))
    assert float(value) == pytest.approx(np_w2(fx, fs, mx, ms), rel=1e-4)
    ones = w2_value(fx, fs, jnp.asarray(guide(np.ones(fx.shape[:2]))), jnp.asarray(guide(np.ones(fs.shape[:2]))))[0]
    assert float(ones) == pytest.approx(float(w2_value(fx, fs)[0]), rel=1e-6)


def test_blended_targets_are_the_mixture(vgg19_weights):
    """Two style images blended 3:1: the Gaussian of their mixture (means and second moments averaged)."""
    s = ImageSettings(size=32, style_statistic="w2", style_blend=(3.0, 1.0), **LAYERS)
    a, b = texture((32, 32), 1), texture((24, 40), 2)
    got = style_targets(s, vgg19_weights.variables, [a, b])["relu2_1"]
    parts = [W2.moments(W2.sums(_features(s, vgg19_weights, im))) for im in (a, b)]
    mean = 0.75 * np.asarray(parts[0]["mean"], np.float64) + 0.25 * np.asarray(parts[1]["mean"], np.float64)
    second = 0.75 * np.asarray(parts[0]["second"], np.float64) + 0.25 * np.asarray(parts[1]["second"], np.float64)
    cov = second - np.outer(mean, mean)
    np.testing.assert_allclose(np.asarray(got["mean"]), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(got["root"]), sqrtm(cov).real, rtol=2e-3, atol=2e-4 * np.abs(cov).max() ** 0.5)


def _features(s, weights, image):
    from style_core.objective import target_features
    return target_features(s.backbone, s.pooling, ("relu2_1",))(weights.variables, jnp.asarray(image))["relu2_1"]


def test_tiled_w2_targets_are_exact_sums_of_moments(vgg19_weights):
    """Large mode's pieces, with style masks cut across them: the first and second moments' sums add up
    to one pass's (differences only from context beyond the margin)."""
    s = ImageSettings(size=64, style_statistic="w2", **LAYERS)
    image = texture((150, 170), seed=1)
    corner = np.zeros((75, 85), np.float32)
    corner[:30, :40] = 1
    masks = [corner, None, soft_halves((150, 170), ramp=30)[1]]
    pieces = tiled_guided_targets(s, vgg19_weights.variables, image, masks, core=48, margin=32)
    whole = region_targets(s, vgg19_weights.variables, [image], [Region(np.ones((1, 1)), 0, m) for m in masks])
    for got, want in zip(pieces, whole):
        for name in s.style_layers:
            for part in ("mean", "root", "trace", "square"):
                np.testing.assert_allclose(np.asarray(got[name][part]), np.asarray(want[name][part]), rtol=1e-3,
                                           atol=1e-5 * float(np.abs(np.asarray(want[name][part])).max()))


@pytest.mark.parametrize("normalization", ["paper", "relative"])
def test_objective_w2_term_matches_the_float64_vgg_reference(normalization, vgg19_weights):
    """image_objective's style term under W2, with and without regions, against a numpy VGG and scipy."""
    from tests.conftest import state_dict
    # More positions than channels at every layer: where there are fewer (a deep layer of a small image),
    # C_x is singular and float32 rounding of its null space adds about 0.2% to the value.
    rng = np.random.default_rng(5)
    content, x, style = rng.random((32, 36, 3)), rng.random((32, 36, 3)), rng.random((24, 28, 3))
    mask, style_mask = rng.random((32, 36)), rng.random((24, 28))
    s = ImageSettings(size=36, style_statistic="w2", normalization=normalization,
                      style_layers="relu1_1:0.5,relu2_1", content_layers="relu2_2")
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    sd = state_dict("vgg19")
    fx, fs = np_vgg19(x, sd), np_vgg19(style, sd)
    for regions in ((), (Region(f32(mask), 0, f32(style_mask)),)):
        objective = image_objective(s, regions=bool(regions))
        targets = (region_targets(s, vgg19_weights.variables, [f32(style)], regions) if regions
                   else style_targets(s, vgg19_weights.variables, [f32(style)]))
        aux = objective.aux(vgg19_weights.variables, f32(content), targets, [r.mask for r in regions])
        got = float(objective.function(jnp.asarray(x, jnp.float32), aux)["style"])
        want = 0.0
        for name, w in zip(s.style_layers, s.style_layer_weights):
            mx = np_area(mask, *fx[name].shape[:2]) if regions else None
            ms = np_area(style_mask, *fs[name].shape[:2]) if regions else None
            mean, cov = np_gaussian(fs[name], ms)
            norm = (mean @ mean + np.trace(cov)) / len(mean) if normalization == "relative" else 1.0
            want += w * np_w2(fx[name], fs[name], mx, ms) / norm
        assert got == pytest.approx(want, rel=1e-3), regions   # W2 is a difference of traces: cancellation


def test_w2_runs_in_image_regions_and_large_mode(rng_images, vgg19_weights):
    """Every mode's path takes it: the style term falls in image mode (and with regions), and large
    mode's tiles against its tiled targets."""
    content, style = rng_images
    s = ImageSettings(size=40, style_statistic="w2", optimizer="adam", iterations=10, style_weight=1e3, **LAYERS)
    for regions in ((), (Region(soft_halves((40, 48))[0], 0),)):
        result = list(stylize(content, [style], s, vgg19_weights, regions=regions))[-1].result
        assert result.final_losses["style"] < 0.9 * result.initial_losses["style"], regions
    _, large = run_large(content, [style], vgg19_weights, size=80, tile=48, overlap=8, base_size=40,
                         image={"style_statistic": "w2", "style_weight": 1e3})
    assert len(large.layout) > 1
    assert all(np.isfinite(t["style"]) for t in large.tile_losses)
