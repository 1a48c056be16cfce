"""Keras VGG16/VGG19 weights in the files people have: an ONNX export (tf2onnx) or keras.applications' `.h5`.

Keras' VGGs are the original Caffe models: they take BGR images in 0-255 with Caffe's mean subtracted
(103.939, 116.779, 123.68 for B, G, R), where torchvision's take RGB in [0, 1] normalised by ImageNet's
mean and std. We keep Keras' kernels as they are, with their input channels reversed (BGR -> RGB), and
give the network its input convention (`backbones.INPUT`: mean = Caffe's mean / 255, std = 1 / 255), so
it computes exactly Keras' network, its zero padding included: with that convention a zero after
normalisation is Keras' zero.

Why not fold the convention into the first convolution's kernel and bias, to get a file in torchvision's
layout? Inside the image that is exact, but not on its one-pixel border: there Keras pads with 0 in its
own units (Caffe's mean colour) and torchvision with 0 in its units (ImageNet's mean colour, 0.0-0.5
apart in 0-255 units), so each border pixel of conv1_1 would be off by the kernel taps that fall
outside times that difference, and the error would travel inwards one pixel per layer.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .backbones import INPUT, VGG_BLOCKS
from .errors import StyleError

CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_WIDTHS = (64, 128, 256, 512, 512)


def keras_convention() -> dict[str, np.ndarray]:
    """The `backbones.INPUT` collection for Keras' (Caffe's) VGGs: images in [0, 1], RGB."""
    return {"mean": np.asarray(CAFFE_MEAN_RGB, np.float32) / np.float32(255),
            "std": np.full(3, 1 / 255, np.float32)}


def expected_shapes(backbone: str) -> list[tuple[int, int]]:
    """(input, output) channels of each convolution of a VGG, in order."""
    shapes, channels = [], 3
    for convs, width in zip(VGG_BLOCKS[backbone], _WIDTHS):
        for _ in range(convs):
            shapes.append((channels, width))
            channels = width
    return shapes


def vgg_variables(convs: list[tuple[np.ndarray, np.ndarray]], what: str) -> tuple[str, dict]:
    """The backbone (by the number of convolutions) and our variables from Keras' convolutions in
    order, each (kernel HWIO in BGR for the first, bias)."""
    backbone = next((b for b in VGG_BLOCKS if len(expected_shapes(b)) == len(convs)), None)
    if backbone is None:
        raise StyleError(f"{what} has {len(convs)} 3x3 convolutions; a Keras VGG16 has 13 and a VGG19 16")
    params, names = {}, [f"conv{b}_{j}" for b, n in enumerate(VGG_BLOCKS[backbone], 1) for j in range(1, n + 1)]
    for name, (kernel, bias), (cin, cout) in zip(names, convs, expected_shapes(backbone)):
        if kernel.shape != (3, 3, cin, cout) or bias.shape != (cout,):
            raise StyleError(f"{what}: {name} has shape {kernel.shape} and bias {bias.shape}, not the "
                             f"{backbone}'s (3, 3, {cin}, {cout}) and ({cout},)")
        if name == "conv1_1":
            kernel = kernel[:, :, ::-1, :]   # BGR -> RGB input channels
        params[name] = {"kernel": np.ascontiguousarray(kernel, np.float32),
                        "bias": np.ascontiguousarray(bias, np.float32)}
    return backbone, {"params": params, INPUT: keras_convention()}


def read_onnx(path: str | Path) -> tuple[str, dict]:
    """A Keras VGG (or a model built on one, such as a classifier with its own head) exported to ONNX:
    its 3x3 convolutions in graph order, their kernels (OIHW) and biases from the initializers."""
    import onnx
    from onnx import numpy_helper
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        raise StyleError(f"{path} is neither a safetensors, an ONNX nor a Keras .h5 file") from None
    if not model.graph.node:   # protobuf parses many a stray file as an empty model
        raise StyleError(f"{path} is neither a safetensors, an ONNX nor a Keras .h5 file")
    init = {t.name: t for t in model.graph.initializer}
    convs = []
    for node in model.graph.node:
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in init:
            continue
        kernel = numpy_helper.to_array(init[node.input[1]])
        if kernel.ndim != 4 or kernel.shape[2:] != (3, 3):
            continue
        if len(node.input) < 3 or node.input[2] not in init:
            raise StyleError(f"{path}: the convolution {node.name or node.output[0]} has no bias initializer")
        convs.append((kernel.transpose(2, 3, 1, 0), numpy_helper.to_array(init[node.input[2]])))
    if not convs:
        raise StyleError(f"{path} is an ONNX file without 3x3 convolutions: not a VGG")
    return vgg_variables(convs, str(path))


_H5_LAYER = re.compile(r"block(\d)_conv(\d)")


def read_h5(path: str | Path) -> tuple[str, dict]:
    """keras.applications' VGG16/VGG19 weights (`*_notop.h5`, or the full model's): datasets under
    `block{b}_conv{j}`, named `kernel` and `bias` (Keras 2) or `vars/0` and `vars/1` (Keras 3)."""
    import h5py
    found: dict[tuple[int, int], dict[str, np.ndarray]] = {}

    def visit(name: str, item) -> None:
        layer = _H5_LAYER.findall(name)
        if not layer or not isinstance(item, h5py.Dataset):
            return
        leaf = name.rsplit("/", 1)[-1]
        role = ("kernel" if leaf.startswith("kernel") or name.endswith("vars/0") else
                "bias" if leaf.startswith("bias") or name.endswith("vars/1") else None)
        if role:
            found.setdefault(tuple(map(int, layer[-1])), {})[role] = np.asarray(item[()])

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except OSError as e:
        raise StyleError(f"{path}: the .h5 file cannot be read ({e})") from None
    incomplete = [f"block{b}_conv{j}" for (b, j), v in sorted(found.items()) if set(v) != {"kernel", "bias"}]
    if not found or incomplete:
        raise StyleError(f"{path} is an HDF5 file without Keras VGG convolutions (block{{b}}_conv{{j}} "
                         f"kernel and bias){f': {incomplete[0]} is incomplete' if incomplete else ''}")
    return vgg_variables([(v["kernel"], v["bias"]) for _, v in sorted(found.items())], str(path))


def file_kind(path: str | Path) -> str:
    """'safetensors', 'h5' or 'onnx', by the file's first bytes (ONNX, a protobuf, has no signature)."""
    with open(path, "rb") as f:
        head = f.read(9)
    if head.startswith(HDF5_SIGNATURE):
        return "h5"
    if len(head) == 9 and head[8:9] == b"{":
        return "safetensors"
    return "onnx"
