"""Losses against an independent float64 numpy implementation of DESIGN.md's formulas.

The reference runs its own VGG forward pass in numpy directly from the torchvision (OIHW) tensors, so
it shares nothing with the library: not the converter, not the Flax module, not the loss code.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from style_core.losses import blend_grams, gram_matrix, layer_norms, penalty, tv_loss
from style_core.statistics import style_loss
from style_core.settings import ImageSettings
from style_core.objective import image_objective, style_targets
from style_core.weights import load_weights
from tests.conftest import state_dict
from tests.test_weights import normalized, numpy_cross_correlation

# torchvision features indices of VGG19's first layers
VGG19_CONVS = {"conv1_1": 0, "conv1_2": 2, "conv2_1": 5, "conv2_2": 7, "conv3_1": 10}


def np_vgg19(image, sd):
    """Activations up to relu3_1, float64, max pooling."""
    acts, x = {}, normalized(image.astype(np.float64))
    for name in ("conv1_1", "conv1_2", "pool1", "conv2_1", "conv2_2", "pool2", "conv3_1"):
        if name.startswith("pool"):
            h, w, c = x.shape
            x = x[:h // 2 * 2, :w // 2 * 2].reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3))
        else:
            i = VGG19_CONVS[name]
            x = numpy_cross_correlation(x, sd[f"features.{i}.weight"], sd[f"features.{i}.bias"])
            acts[name] = x
            x = np.maximum(x, 0)
            acts["relu" + name[4:]] = x
        acts[name] = acts.get(name, x)
    return acts


def np_rho(kind, d, delta=1.0):
    a = np.abs(d)
    if kind == "mse":
        return d ** 2
    if kind == "l1":
        return a
    if kind == "huber":
        return np.where(a <= delta, 0.5 * d ** 2, delta * (a - 0.5 * delta))
    if kind == "smooth_l1":
        return np.where(a < delta, 0.5 * d ** 2 / delta, a - 0.5 * delta)
    raise ValueError(kind)


def np_gram(f):
    h, w, c = f.shape
    m = f.reshape(h * w, c)
    return m.T @ m / (h * w * c)


def np_terms(x, content, styles, blend, sd, s: ImageSettings):
    """DESIGN.md: content, style (blended Grams), TV, with "paper" or "relative" normalisation."""
    rho = lambda d: np_rho(s.loss, d, s.huber_delta)  # noqa: E731
    fx, fc = np_vgg19(x, sd), np_vgg19(content, sd)
    fs = [np_vgg19(st, sd) for st in styles]
    b = np.asarray(blend, np.float64) / np.sum(blend)
    relative = s.normalization == "relative"
    content_loss = 0.0
    for name, w in zip(s.content_layers, s.content_layer_weights):
        norm = np.mean(rho(fc[name])) if relative else 1.0
        content_loss += w * np.mean(rho(fx[name] - fc[name])) / norm
    style_loss = 0.0
    for name, w in zip(s.style_layers, s.style_layer_weights):
        target = sum(bk * np_gram(f[name]) for bk, f in zip(b, fs))
        norm = np.mean(rho(target)) if relative else 1.0
        style_loss += w * np.mean(rho(np_gram(fx[name]) - target)) / norm
    tv = np.mean(np.abs(x[1:] - x[:-1])) + np.mean(np.abs(x[:, 1:] - x[:, :-1]))
    return {"content": content_loss, "style": style_loss, "tv": tv}


def np_total(x, content, styles, blend, sd, s):
    t = np_terms(x, content, styles, blend, sd, s)
    return s.content_weight * t["content"] + s.style_weight * t["style"] + s.tv_weight * t["tv"]


@pytest.fixture(scope="module")
def problem(weight_files):
    rng = np.random.default_rng(7)
    content = rng.random((16, 16, 3))
    styles = [rng.random((16, 16, 3)), rng.random((12, 20, 3))]
    x = np.clip(content + 0.2 * rng.standard_normal(content.shape), 0, 1)
    variables = load_weights("vgg19", weight_files("vgg19")).variables
    return content, styles, x, variables, state_dict("vgg19")


def _settings(loss, normalization):
    return ImageSettings(size=16, loss=loss, normalization=normalization, huber_delta=0.7,
                         content_layers="relu2_2:1.5", style_layers="relu1_1:0.5,conv2_1,relu3_1:2",
                         style_blend=(3.0, 1.0), content_weight=1.0, style_weight=3.0, tv_weight=0.1)


def _library(s, problem):
    content, styles, x, variables, _ = problem
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    objective = image_objective(s)
    aux = objective.aux(variables, f32(content), style_targets(s, variables, [f32(st) for st in styles]))

    def total(y):
        t = objective.function(y, aux)
        return sum(objective.weights[k] * v for k, v in t.items()), t
    return total


@pytest.mark.parametrize("normalization", ["paper", "relative"])
@pytest.mark.parametrize("loss", ["mse", "l1", "huber", "smooth_l1"])
def test_loss_terms_match_float64_reference(loss, normalization, problem):
    content, styles, x, _, sd = problem
    s = _settings(loss, normalization)
    _, got = _library(s, problem)(jnp.asarray(x, jnp.float32))
    want = np_terms(x, content, styles, (3.0, 1.0), sd, s)
    for name in want:
        assert float(got[name]) == pytest.approx(want[name], rel=1e-4), name
    assert want["content"] > 0 and want["style"] > 0


@pytest.mark.parametrize("normalization", ["paper", "relative"])
@pytest.mark.parametrize("loss", ["mse", "huber", "l1"])
def test_gradient_matches_finite_differences_of_the_reference(loss, normalization, problem):
    """grad(L) . v against (L(x + h v) - L(x - h v)) / 2h of the float64 reference, along random v."""
    content, styles, x, _, sd = problem
    s = _settings(loss, normalization)
    grad = np.asarray(jax.grad(lambda y: _library(s, problem)(y)[0])(jnp.asarray(x, jnp.float32)), np.float64)
    rng = np.random.default_rng(3)
    h = 1e-6
    for _ in range(3):
        v = rng.standard_normal(x.shape)
        v /= np.linalg.norm(v)
        fd = (np_total(x + h * v, content, styles, (3.0, 1.0), sd, s)
              - np_total(x - h * v, content, styles, (3.0, 1.0), sd, s)) / (2 * h)
        assert float(np.sum(grad * v)) == pytest.approx(fd, rel=1e-3, abs=1e-4 * np.linalg.norm(grad))


def test_gram_matrix():
    f = np.random.default_rng(0).standard_normal((5, 7, 4))
    np.testing.assert_allclose(np.asarray(gram_matrix(jnp.asarray(f, jnp.float32))), np_gram(f), rtol=1e-5)
    batch = np.stack([f, 2 * f])
    np.testing.assert_allclose(np.asarray(gram_matrix(jnp.asarray(batch, jnp.float32)))[1], 4 * np_gram(f),
                               rtol=1e-5)


def test_gram_matrix_gradient():
    """d/dF sum(W * G(F)) = F (W + W^T) / (H W C) in float64, for one map and a batch."""
    rng = np.random.default_rng(4)
    f = rng.standard_normal((2, 5, 7, 4))
    w = rng.standard_normal((2, 4, 4))
    got = np.asarray(jax.grad(lambda v: jnp.sum(jnp.asarray(w, jnp.float32) * gram_matrix(v)))(
        jnp.asarray(f, jnp.float32)))
    want = np.einsum("nhwc,ncd->nhwd", f, w + np.swapaxes(w, 1, 2)) / (5 * 7 * 4)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    one = np.asarray(jax.grad(lambda v: jnp.sum(jnp.asarray(w[0], jnp.float32) * gram_matrix(v)))(
        jnp.asarray(f[0], jnp.float32)))
    np.testing.assert_allclose(one, want[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["mse", "l1", "huber", "smooth_l1"])
def test_penalties(kind):
    d = np.linspace(-3, 3, 61)
    np.testing.assert_allclose(np.asarray(penalty(kind, 0.7)(jnp.asarray(d, jnp.float32))),
                               np_rho(kind, d, 0.7), rtol=1e-5, atol=1e-6)


def test_huber_and_smooth_l1_coincide_at_one():
    d = jnp.linspace(-4, 4, 81)
    np.testing.assert_allclose(np.asarray(penalty("huber", 1.0)(d)), np.asarray(penalty("smooth_l1", 1.0)(d)))
    assert not np.allclose(np.asarray(penalty("huber", 2.0)(d)), np.asarray(penalty("smooth_l1", 2.0)(d)))


def test_style_blend_is_normalised():
    a, b = jnp.ones((2, 2)), 3 * jnp.ones((2, 2))
    np.testing.assert_allclose(np.asarray(blend_grams([a, b], [2, 6])), 2.5)
    np.testing.assert_allclose(np.asarray(blend_grams([a, b])), 2.0)


def test_tv_loss():
    x = np.random.default_rng(1).random((6, 5, 3))
    want = np.mean(np.abs(np.diff(x, axis=0))) + np.mean(np.abs(np.diff(x, axis=1)))
    assert float(tv_loss(jnp.asarray(x, jnp.float32))) == pytest.approx(want, rel=1e-5)
    assert float(tv_loss(jnp.ones((4, 4, 3)))) == 0.0


def test_relative_normalisation_is_invariant_to_feature_scale_for_mse():
    """Scaling a layer's features by k scales its paper style term by k^4 but leaves relative alone."""
    rho = penalty("mse")
    rng = np.random.default_rng(2)
    f, g = (jnp.asarray(rng.random((4, 4, 8)), jnp.float32) for _ in range(2))

    def term(k, normalization):
        target = {"l": gram_matrix(k * g)}
        norms = layer_norms(rho, target, normalization)
        return float(style_loss({"l": k * f}, target, {"l": 1.0}, norms, rho))

    assert term(10.0, "paper") == pytest.approx(1e4 * term(1.0, "paper"), rel=1e-3)
    assert term(10.0, "relative") == pytest.approx(term(1.0, "relative"), rel=1e-4)
    assert term(1.0, "relative") != pytest.approx(term(1.0, "paper"))


def test_l1_and_tv_have_zero_gradient_where_differences_are_exactly_zero():
    """A flat image is a minimum of TV; jnp.abs alone would give it a gradient of +-1 per pixel."""
    flat = jnp.full((6, 6, 3), 0.5)
    assert float(jnp.max(jnp.abs(jax.grad(tv_loss)(flat)))) == 0.0
    assert float(jax.grad(lambda d: penalty("l1")(d))(0.0)) == 0.0
