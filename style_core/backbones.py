"""Feature extractors: VGG16/19 and ResNet18/34/50 with named layers.

ResNets are flaxmodels' own modules (`pretrained=None`, `output='activations'`). VGG is a small module
with exactly flaxmodels' parameter names (`conv{b}_{i}/kernel|bias`), because flaxmodels' VGG always
runs all five blocks and only max-pools: ours stops at the deepest layer asked for and offers average
pooling (Gatys et al. 2015 prefer it). `tests/test_backbones.py` checks that both give flaxmodels'
activations on the same parameters.

Inputs are images in [0, 1]; they are normalised here with the ImageNet statistics the torchvision
weights were trained with.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import flax.linen as nn
import flaxmodels
import jax
import jax.numpy as jnp
import numpy as np

from .errors import StyleError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

VGG_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
RESNET_STAGES = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3), "resnet50": (3, 4, 6, 3)}
BACKBONES = ("vgg19", "vgg16", "resnet18", "resnet34", "resnet50")
POOLINGS = ("max", "avg")


@dataclass(frozen=True)
class LayerInfo:
    name: str
    stride: int     # total downsampling of the input at this layer
    channels: int


@functools.lru_cache(maxsize=None)
def layer_table(backbone: str) -> tuple[LayerInfo, ...]:
    """Every named activation of a backbone, in the order the network computes them."""
    if backbone in VGG_BLOCKS:
        table, stride = [], 1
        for block, (convs, width) in enumerate(zip(VGG_BLOCKS[backbone], (64, 128, 256, 512, 512)), 1):
            for i in range(1, convs + 1):
                table += [LayerInfo(f"conv{block}_{i}", stride, width),
                          LayerInfo(f"relu{block}_{i}", stride, width)]
            stride *= 2
            table.append(LayerInfo(f"pool{block}", stride, width))
        return tuple(table)
    if backbone in RESNET_STAGES:
        expansion = 4 if backbone == "resnet50" else 1
        table = [LayerInfo("conv1", 2, 64)]
        for stage, blocks in enumerate(RESNET_STAGES[backbone], 1):
            stride = 4 * 2 ** (stage - 1)
            width = 64 * 2 ** (stage - 1) * expansion
            table += [LayerInfo(f"block{stage}_{j}", stride, width) for j in range(blocks)]
        return tuple(table)
    raise StyleError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")


def layer_names(backbone: str) -> tuple[str, ...]:
    return tuple(info.name for info in layer_table(backbone))


def check_layers(backbone: str, layers: Sequence[str]) -> None:
    valid = layer_names(backbone)
    unknown = [name for name in layers if name not in valid]
    if unknown:
        raise StyleError(f"unknown layer {', '.join(map(repr, unknown))} for {backbone}; valid layers: "
                         f"{', '.join(valid)}")


def deepest(backbone: str, layers: Sequence[str]) -> str:
    return max(layers, key=layer_names(backbone).index)


def min_input_side(backbone: str, layers: Sequence[str]) -> int:
    """The smallest image side for which every requested layer still has at least one pixel."""
    strides = {info.name: info.stride for info in layer_table(backbone)}
    return max(strides[name] for name in layers)


LAYER_PRESETS: dict[str, Callable[[str], tuple[str, ...]]] = {
    # Gatys et al. (2015): the first layer of each block.
    "paper": lambda b: (("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1") if b in VGG_BLOCKS
                        else ("conv1",) + tuple(f"block{s}_0" for s in range(1, 5))),
    # The PyTorch tutorial's set: the first five convolutions.
    "first5": lambda b: (("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1") if b in VGG_BLOCKS
                         else layer_names(b)[:5]),
}


def default_content_layers(backbone: str) -> tuple[str, ...]:
    """relu4_2 for VGG (Gatys et al.); for ResNets the last block at the same 1/8 resolution."""
    if backbone in VGG_BLOCKS:
        return ("relu4_2",)
    return (f"block2_{RESNET_STAGES[backbone][1] - 1}",)


def resolve_layers(backbone: str, spec: str | Sequence[str]) -> tuple[str, ...]:
    """A preset name (`paper`, `first5`) or a list of layer names, checked against the backbone."""
    layer_table(backbone)
    if isinstance(spec, str):
        if spec in LAYER_PRESETS:
            return LAYER_PRESETS[spec](backbone)
        spec = [s for s in spec.replace(",", " ").split() if s]
    layers = tuple(spec)
    if not layers:
        raise StyleError("a layer list is empty")
    check_layers(backbone, layers)
    return layers


def max_pool_2x2(x: jax.Array) -> jax.Array:
    """nn.max_pool(x, (2, 2), strides=(2, 2)) (VALID: an odd last row or column is dropped) as the
    maximum of four strided slices.

    The same values; the gradient is elementwise instead of XLA's select_and_scatter, which XLA:CPU
    runs slowly: the backward pass of VGG19's four pools at 512x384 takes 28 ms instead of 333 ms
    (bench/LOG.md 6). At a tie the gradient is shared between the tied inputs instead of going to the
    first; after a ReLU the common tie (all zeros) has zero gradient either way.
    """
    h, w = x.shape[-3] // 2 * 2, x.shape[-2] // 2 * 2
    x = x[..., :h, :w, :]
    return jnp.maximum(jnp.maximum(x[..., 0::2, 0::2, :], x[..., 0::2, 1::2, :]),
                       jnp.maximum(x[..., 1::2, 0::2, :], x[..., 1::2, 1::2, :]))


# The variables' collection that holds, for each VGG convolution, its kernel as the input's gradient
# uses it: turned by 180 degrees with its input and output channels swapped. XLA:CPU otherwise makes
# that copy of every kernel in every backward pass, a strided transpose of up to 9 MB that costs as
# much as a small image's convolution: with the turned kernels made once, a 64 px evaluation of VGG19
# to relu5_1 takes 46 ms instead of 86, a 128 px one 152 instead of 185; from 256 px up the copies are
# lost in the convolutions' time (bench/LOG.md 21).
BACKWARD = "backward"


def with_backward_kernels(backbone: str, variables: Mapping) -> Mapping:
    """`variables` with the BACKWARD collection added for a VGG backbone (once per set of weights;
    `weights.Weights` does it); other backbones' variables, or ones that have it, unchanged."""
    if backbone not in VGG_BLOCKS or BACKWARD in variables:
        return variables
    # Turned in numpy (0.07-0.2 s for VGG19's kernels; jnp's eager ops, a compilation per shape, took
    # 0.7 s), then put on the device once: a compiled call copies a numpy argument in every call.
    turned = {name: {"kernel": np.ascontiguousarray(np.swapaxes(np.asarray(layer["kernel"])[::-1, ::-1], 2, 3))}
              for name, layer in variables["params"].items() if name.startswith("conv")}
    return {**variables, BACKWARD: jax.device_put(turned)}


NHWC_HWIO = ("NHWC", "HWIO", "NHWC")


def _same_conv(x, kernel):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=NHWC_HWIO)


@jax.custom_vjp
def _conv_turned(x, kernel, turned):
    """A 3x3 SAME convolution whose input gradient convolves with `turned`, the kernel made ready."""
    return _same_conv(x, kernel)


def _conv_turned_forward(x, kernel, turned):
    return _same_conv(x, kernel), (x, kernel, turned)


def _conv_turned_backward(saved, g):
    x, kernel, turned = saved
    _, kernel_vjp = jax.vjp(lambda k: _same_conv(x, k), kernel)   # removed by XLA when not used
    # The turned kernel is a function of the kernel, not an input of its own: no gradient of its own.
    return _same_conv(g, turned), kernel_vjp(g)[0], jnp.zeros_like(turned)


_conv_turned.defvjp(_conv_turned_forward, _conv_turned_backward)


def _turned_conv(turned, lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                 dimension_numbers=None, feature_group_count=1, precision=None):
    """nn.Conv's `conv_general_dilated` for VGG's convolutions (3x3, SAME, stride 1, NHWC)."""
    assert tuple(window_strides) == (1, 1) and padding == "SAME" and feature_group_count == 1
    return _conv_turned(lhs, rhs, turned)


class VGGFeatures(nn.Module):
    """VGG16/19 convolutional trunk, stopping after layer `last`. Called as flaxmodels' ResNets are;
    `train` changes nothing (there is no batch norm)."""
    architecture: str = "vgg19"
    pooling: str = "max"
    last: str = "relu5_1"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        out: dict[str, jax.Array] = {}
        for block, (convs, width) in enumerate(zip(VGG_BLOCKS[self.architecture],
                                                   (64, 128, 256, 512, 512)), 1):
            for i in range(1, convs + 1):
                name = f"conv{block}_{i}"
                turned = (self.get_variable(BACKWARD, name)["kernel"] if self.has_variable(BACKWARD, name)
                          else None)
                x = nn.Conv(width, (3, 3), padding="SAME", name=name, conv_general_dilated=None
                            if turned is None else functools.partial(_turned_conv, turned))(x)
                out[f"conv{block}_{i}"] = x
                if self.last == f"conv{block}_{i}":
                    return out
                x = nn.relu(x)
                out[f"relu{block}_{i}"] = x
                if self.last == f"relu{block}_{i}":
                    return out
            x = max_pool_2x2(x) if self.pooling == "max" else nn.avg_pool(x, (2, 2), strides=(2, 2))
            out[f"pool{block}"] = x
            if self.last == f"pool{block}":
                return out
        return out


def module_for(backbone: str, pooling: str = "max", last: str | None = None) -> nn.Module:
    """The Flax module computing `backbone` up to `last` (default: all of it)."""
    if pooling not in POOLINGS:
        raise StyleError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    if backbone in VGG_BLOCKS:
        return VGGFeatures(architecture=backbone, pooling=pooling,
                           last=last or layer_names(backbone)[-1])
    if backbone in RESNET_STAGES:
        if pooling != "max":
            raise StyleError("`pooling` avg applies to VGG backbones only")
        factory = {"resnet18": flaxmodels.ResNet18, "resnet34": flaxmodels.ResNet34,
                   "resnet50": flaxmodels.ResNet50}[backbone]
        return factory(output="activations", pretrained=None, normalize=False)
    layer_table(backbone)  # raises the error listing valid backbones
    raise AssertionError


def init_variables(backbone: str, seed: int = 0) -> dict:
    """Randomly initialised variables with the full layout of a backbone (untrained)."""
    x = jnp.zeros((1, 32, 32, 3), jnp.float32)
    variables = module_for(backbone).init(jax.random.PRNGKey(seed), x, train=False)
    return jax.tree_util.tree_map(lambda a: a, dict(variables))


def variable_shapes(backbone: str) -> dict:
    """The layout of a backbone's variables, shapes only: nothing is computed (initialising VGG19's
    arrays takes 7 s on a 2-core CPU, and checking a weights file needs only their shapes)."""
    return jax.eval_shape(functools.partial(init_variables, backbone))


# The variables' collection that says how the first convolution wants its input, where that is not
# torchvision's (ImageNet mean and std): {"mean": (3,), "std": (3,)}, RGB, for images in [0, 1].
# Keras' VGGs (the Caffe convention: BGR, 0-255, mean subtracted) get mean = Caffe's mean / 255 and
# std = 1 / 255 with their kernels' input channels reversed; their network is then computed exactly,
# its zero padding included (weights.py, `keras_convention`).
INPUT = "input"


def normalize(images: jax.Array, convention: Mapping | None = None) -> jax.Array:
    """(images - mean) / std per channel: ImageNet's statistics, or the weights' own `convention`."""
    mean, std = (convention["mean"], convention["std"]) if convention else (IMAGENET_MEAN, IMAGENET_STD)
    return (images - jnp.asarray(mean, images.dtype)) / jnp.asarray(std, images.dtype)


FeatureFn = Callable[[Mapping, jax.Array], dict[str, jax.Array]]


@functools.lru_cache(maxsize=None)
def feature_extractor(backbone: str, layers: tuple[str, ...], pooling: str = "max") -> FeatureFn:
    """A pure function (variables, images in [0, 1] of shape (N, H, W, 3)) -> {layer: features}.

    Only the requested layers are returned, and only as much of the network as the deepest of them
    needs is computed (VGG stops there; for ResNets XLA removes the unused blocks under `jit`).
    """
    check_layers(backbone, layers)
    module = module_for(backbone, pooling, deepest(backbone, layers))

    def extract(variables: Mapping, images: jax.Array) -> dict[str, jax.Array]:
        network = {k: v for k, v in variables.items() if k != INPUT}
        acts = module.apply(network, normalize(images, variables.get(INPUT)), train=False)
        return {name: acts[name] for name in layers}

    return extract
