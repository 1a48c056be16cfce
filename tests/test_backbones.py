"""Feature extractors: same activations as flaxmodels, named layers, pooling, depth."""

from __future__ import annotations

import flaxmodels
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from style_core.backbones import (feature_extractor, layer_names, min_input_side, normalize,
                                  resolve_layers)
from style_core.errors import StyleError
from style_core.weights import load_weights

IMAGE = jnp.asarray(np.random.default_rng(0).random((1, 32, 32, 3)), jnp.float32)


@pytest.mark.parametrize("backbone", ["vgg19", "vgg16"])
def test_vgg_matches_flaxmodels_vgg(backbone, weight_files):
    variables = load_weights(backbone, weight_files(backbone)).variables
    reference = flaxmodels.vgg.VGG(output="activations", pretrained=None, normalize=True,
                               architecture=backbone, include_head=False)
    want = reference.apply(variables, IMAGE, train=False)
    layers = ("relu1_1", "conv2_2", "relu3_1", "relu4_2", "conv5_1", "relu5_1")
    got = feature_extractor(backbone, layers, "max")(variables, IMAGE)
    for name in layers:
        np.testing.assert_allclose(np.asarray(got[name]), np.asarray(want[name]), rtol=1e-5, atol=1e-5)


def test_resnet_is_flaxmodels_resnet(weight_files):
    variables = load_weights("resnet18", weight_files("resnet18")).variables
    reference = flaxmodels.ResNet18(output="activations", pretrained=None, normalize=True)
    want = reference.apply(variables, IMAGE, train=False)
    got = feature_extractor("resnet18", ("conv1", "block2_1", "block4_1"), "max")(variables, IMAGE)
    for name in got:
        np.testing.assert_allclose(np.asarray(got[name]), np.asarray(want[name]), rtol=1e-5, atol=1e-5)


def test_average_pooling_is_the_mean_of_each_2x2_window(weight_files):
    variables = load_weights("vgg19", weight_files("vgg19")).variables
    f = feature_extractor("vgg19", ("relu1_2", "pool1"), "avg")(variables, IMAGE)
    r = np.asarray(f["relu1_2"][0], np.float64)
    want = r.reshape(16, 2, 16, 2, 64).mean(axis=(1, 3))
    np.testing.assert_allclose(np.asarray(f["pool1"][0]), want, rtol=1e-5, atol=1e-6)


def _flops(backbone, layer, variables):
    fn = feature_extractor(backbone, (layer,), "max")
    cost = jax.jit(fn).lower(variables, IMAGE).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return cost["flops"]


@pytest.mark.parametrize("backbone,shallow,deep", [("vgg19", "relu2_1", "relu5_1"),
                                                   ("resnet18", "block1_0", "block4_1")])
def test_only_as_deep_as_the_deepest_layer_is_computed(backbone, shallow, deep):
    variables = load_weights(backbone, "random").variables
    assert _flops(backbone, shallow, variables) < 0.35 * _flops(backbone, deep, variables)


def test_layer_names_and_presets():
    assert layer_names("vgg19")[:4] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2")
    assert "relu5_4" in layer_names("vgg19") and "relu5_4" not in layer_names("vgg16")
    assert resolve_layers("vgg19", "paper") == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    assert resolve_layers("vgg16", "first5") == ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1")
    assert resolve_layers("resnet50", "paper") == ("conv1", "block1_0", "block2_0", "block3_0", "block4_0")
    assert layer_names("resnet34")[-1] == "block4_2"


def test_unknown_layer_lists_the_valid_ones():
    with pytest.raises(StyleError, match=r"unknown layer 'relu6_1' for vgg19; valid layers: conv1_1, relu1_1"):
        resolve_layers("vgg19", "relu6_1")
    with pytest.raises(StyleError, match="choose one of vgg19, vgg16, resnet18"):
        layer_names("alexnet")


def test_minimum_input_side_is_the_downsampling_at_the_deepest_layer():
    assert min_input_side("vgg19", ("relu1_1",)) == 1
    assert min_input_side("vgg19", ("relu4_2",)) == 8
    assert min_input_side("vgg19", ("relu5_1", "relu1_1")) == 16
    assert min_input_side("resnet50", ("block4_0",)) == 32


def test_imagenet_normalisation():
    x = jnp.asarray([[[0.485, 0.456, 0.406]], [[1.0, 1.0, 1.0]]])
    np.testing.assert_allclose(np.asarray(normalize(x))[0, 0], 0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(normalize(x))[1, 0], (1 - np.array([0.485, 0.456, 0.406]))
                               / np.array([0.229, 0.224, 0.225]), rtol=1e-6)


def test_max_pool_2x2_is_flax_max_pool_with_its_gradient():
    """Values equal to nn.max_pool on odd sides too; without ties the gradient is the same; at a
    tie it is shared between the tied inputs (the window's total is the same)."""
    import flax.linen as nn

    from style_core.backbones import max_pool_2x2
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 7, 9, 3)), jnp.float32)
    reference = lambda v: nn.max_pool(v, (2, 2), strides=(2, 2))  # noqa: E731
    np.testing.assert_array_equal(np.asarray(max_pool_2x2(x)), np.asarray(reference(x)))
    weights = jnp.asarray(np.random.default_rng(2).normal(size=(2, 3, 4, 3)), jnp.float32)
    grad = lambda pool, v: jax.grad(lambda u: jnp.sum(weights * pool(u)))(v)  # noqa: E731
    np.testing.assert_array_equal(np.asarray(grad(max_pool_2x2, x)), np.asarray(grad(reference, x)))
    tied = jnp.zeros((1, 2, 2, 1)).at[0, 0, 1, 0].set(1.0).at[0, 1, 0, 0].set(1.0)
    g = np.asarray(jax.grad(lambda u: jnp.sum(max_pool_2x2(u)))(tied))[0, :, :, 0]
    np.testing.assert_array_equal(g, [[0, 0.5], [0.5, 0]])


def numpy_conv_gradients(x, kernel, g):
    """For L = sum(g * conv(x)), a 3x3 SAME cross-correlation (float64): dL/dx by scattering each
    output's g back through the taps, and dL/dkernel = sum over pixels of x's patches times g."""
    x, kernel, g = (np.asarray(a, np.float64) for a in (x, kernel, g))
    h, w, _ = x.shape
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    dx, dk = np.zeros_like(padded), np.zeros_like(kernel)
    for dy in range(3):
        for dxx in range(3):
            dx[dy:dy + h, dxx:dxx + w] += g @ kernel[dy, dxx].T
            dk[dy, dxx] = padded[dy:dy + h, dxx:dxx + w].reshape(h * w, -1).T @ g.reshape(h * w, -1)
    return dx[1:-1, 1:-1], dk


def test_turned_kernels_give_the_convolutions_gradients():
    """With the BACKWARD collection (what `Weights` holds for VGG) the input's gradient convolves with
    the turned kernels; it and the kernel's gradient equal a float64 numpy reference, and the features
    and their input gradient equal those of the bare variables."""
    from style_core.backbones import BACKWARD, with_backward_kernels

    variables = load_weights("vgg19", "random").variables
    assert set(variables[BACKWARD]) == {f"conv{b}_{i}" for b, n in enumerate((2, 2, 4, 4, 4), 1)
                                        for i in range(1, n + 1)}
    bare = {"params": variables["params"]}
    assert with_backward_kernels("vgg19", bare)[BACKWARD].keys() == variables[BACKWARD].keys()
    extract = feature_extractor("vgg19", ("conv1_1",), "max")
    image = np.random.default_rng(3).random((1, 6, 7, 3)).astype(np.float32)
    g = np.random.default_rng(4).normal(size=(6, 7, 64)).astype(np.float32)
    loss = lambda v, x: jnp.sum(g * extract(v, x)["conv1_1"][0])  # noqa: E731
    dv, dx = jax.grad(loss, argnums=(0, 1))(variables, jnp.asarray(image))
    # conv1_1 sees the normalised image: chain through the normalisation's 1/std.
    want_dx, want_dk = numpy_conv_gradients(np.asarray(normalize(image[0])), variables["params"]["conv1_1"]["kernel"], g)
    np.testing.assert_allclose(np.asarray(dx[0]), want_dx / np.array([0.229, 0.224, 0.225]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(dv["params"]["conv1_1"]["kernel"]), want_dk, rtol=1e-5, atol=1e-4)
    deep = feature_extractor("vgg19", ("relu3_1", "relu5_1"), "max")
    image = jnp.asarray(np.random.default_rng(5).random((1, 32, 40, 3)), jnp.float32)
    total = lambda v, x: sum(jnp.sum(f ** 2) for f in deep(v, x).values())  # noqa: E731
    for a, b in zip(jax.value_and_grad(total, argnums=1)(variables, image),
                    jax.value_and_grad(total, argnums=1)(bare, image)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6 * float(jnp.max(jnp.abs(b))))
