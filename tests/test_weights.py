"""Weights: real loader and converter on files in timm's exact layout; hub paths with the network
replaced by the local file; cache, checksums, offline mode and the error when nothing is available."""

from __future__ import annotations

import io
import time

import jax.numpy as jnp
import numpy as np
import pytest

from style_core import weights as W
from style_core.backbones import feature_extractor
from style_core.errors import IntegrityError, StyleError
from tests.conftest import state_dict


def numpy_cross_correlation(image, weight_oihw, bias=None, stride=1, pad=1):
    """out[y, x, o] = sum_{i, dy, dx} in[y*s + dy - pad, x*s + dx - pad, i] * w[o, i, dy, dx] (float64)."""
    x = np.pad(image.astype(np.float64), ((pad, pad), (pad, pad), (0, 0)))
    o, i, kh, kw = weight_oihw.shape
    h = (x.shape[0] - kh) // stride + 1
    w = (x.shape[1] - kw) // stride + 1
    out = np.zeros((h, w, o))
    for dy in range(kh):
        for dx in range(kw):
            patch = x[dy:dy + stride * h:stride, dx:dx + stride * w:stride, :]
            out += patch @ weight_oihw[:, :, dy, dx].astype(np.float64).T
    return out + (0 if bias is None else bias.astype(np.float64))


def normalized(image):
    return (image - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])


@pytest.mark.parametrize("backbone", ["vgg19", "vgg16"])
def test_converted_vgg_conv_equals_numpy_cross_correlation(backbone, weight_files):
    sd = state_dict(backbone)
    variables = W.load_weights(backbone, weight_files(backbone)).variables
    image = np.random.default_rng(1).random((12, 10, 3)).astype(np.float32)
    got = feature_extractor(backbone, ("conv1_1", "conv1_2"), "max")(variables, jnp.asarray(image)[None])
    first = numpy_cross_correlation(normalized(image), sd["features.0.weight"], sd["features.0.bias"])
    np.testing.assert_allclose(np.asarray(got["conv1_1"][0]), first, rtol=1e-4, atol=1e-4)
    second = numpy_cross_correlation(np.maximum(first, 0), sd["features.2.weight"], sd["features.2.bias"])
    np.testing.assert_allclose(np.asarray(got["conv1_2"][0]), second, rtol=1e-4, atol=1e-3)


def test_converted_resnet_stem_equals_numpy(weight_files):
    sd = state_dict("resnet18")
    variables = W.load_weights("resnet18", weight_files("resnet18")).variables
    image = np.random.default_rng(2).random((16, 16, 3)).astype(np.float32)
    got = feature_extractor("resnet18", ("conv1",), "max")(variables, jnp.asarray(image)[None])
    want = numpy_cross_correlation(normalized(image), sd["conv1.weight"], stride=2, pad=3)
    np.testing.assert_allclose(np.asarray(got["conv1"][0]), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backbone", ["resnet18", "resnet50"])
def test_resnet_batch_norms_and_downsampling_land_in_the_right_modules(backbone, weight_files):
    sd = state_dict(backbone)
    v = W.load_weights(backbone, weight_files(backbone)).variables
    block = "Bottleneck" if backbone == "resnet50" else "BasicBlock"
    np.testing.assert_array_equal(v["batch_stats"]["BatchNorm_0"]["var"], sd["bn1.running_var"])
    np.testing.assert_array_equal(v["params"]["BatchNorm_0"]["scale"], sd["bn1.weight"])
    # layer2.0 is block 2 (resnet18) or block 3 (resnet50); its shortcut is the last conv/bn.
    index, last = (2, 2) if backbone == "resnet18" else (3, 3)
    ds = v["params"][f"{block}_{index}"][f"Conv_{last}"]["kernel"]
    np.testing.assert_array_equal(ds, sd["layer2.0.downsample.0.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(v["batch_stats"][f"{block}_{index}"][f"BatchNorm_{last}"]["mean"],
                                  sd["layer2.0.downsample.1.running_mean"])
    np.testing.assert_array_equal(v["params"]["Dense_0"]["kernel"], sd["fc.weight"].T)


def test_every_backbone_loads_and_runs(weight_files):
    image = jnp.asarray(np.random.default_rng(3).random((1, 32, 32, 3)), jnp.float32)
    for backbone, layer in [("vgg16", "relu5_1"), ("resnet34", "block4_2"), ("resnet50", "block4_2")]:
        v = W.load_weights(backbone, weight_files(backbone)).variables
        out = feature_extractor(backbone, (layer,), "max")(v, image)[layer]
        assert out.shape[1:3] == (2, 2) if layer.startswith("relu") else (1, 1)
        assert np.all(np.isfinite(np.asarray(out)))


class CountingReader(io.RawIOBase):
    def __init__(self, path):
        self.f = open(path, "rb")
        self.bytes_read = 0

    def read(self, n=-1):
        data = self.f.read(n)
        self.bytes_read += len(data)
        return data

    def seek(self, offset, whence=0):
        return self.f.seek(offset, whence)


def test_vgg_reads_only_the_convolution_span(weight_files):
    path = weight_files("vgg19")
    reader = CountingReader(path)
    tensors = W.read_tensors(reader, W.needed_keys("vgg19"))
    conv_bytes = sum(t.nbytes for t in tensors.values())
    assert len(tensors) == 32 and 75e6 < conv_bytes < 85e6
    assert reader.bytes_read < conv_bytes + 100_000
    assert path.stat().st_size > 500e6  # the whole file, classifier included


def test_wrong_backbone_file_is_refused_with_the_missing_keys(weight_files):
    with pytest.raises(StyleError, match=r"no features.16.weight.*\(and 9 more\)"):
        W.load_weights("vgg19", weight_files("vgg16"))
    with pytest.raises(StyleError, match="layer1.2.conv1.weight"):
        W.load_weights("resnet34", weight_files("resnet18"))


@pytest.mark.parametrize("backbone, key", [("vgg19", "features.0.weight"), ("resnet18", "layer1.0.conv1.weight")])
def test_a_tensor_of_the_wrong_shape_is_refused_naming_it(backbone, key, tmp_path):
    """The layout check compares against the backbone's shapes (computed without initialising it)."""
    from safetensors.numpy import save_file
    sd = state_dict(backbone)
    o, i, _, _ = sd[key].shape
    sd[key] = np.zeros((o, i, 5, 5), np.float32)
    path = tmp_path / "model.safetensors"
    save_file(sd, str(path), metadata={"format": "pt"})
    with pytest.raises(StyleError, match=r"do not fit .*\(5, 5, (3|64), 64\)"):
        W.load_weights(backbone, path)


def test_a_converted_file_for_another_backbone_is_refused(weight_files):
    """A file in our own cache's layout given as --weights is checked like a torchvision one."""
    path = W.write_cache(W.load_weights("vgg16", weight_files("vgg16")).variables, "vgg16", "0" * 64)
    assert W.load_weights("vgg16", path).trained
    with pytest.raises(StyleError, match="do not fit vgg19"):
        W.load_weights("vgg19", path)


def test_not_a_safetensors_file(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_text("hello, I am not weights")
    with pytest.raises(StyleError, match="neither a safetensors, an ONNX nor a Keras .h5 file"):
        W.load_weights("vgg19", bad)
    with pytest.raises(StyleError, match="does not exist"):
        W.load_weights("vgg19", tmp_path / "missing.safetensors")


def test_environment_variable_names_the_file(weight_files, monkeypatch):
    monkeypatch.setenv("STYLE_CORE_WEIGHTS", str(weight_files("vgg19")))
    weights = W.load_weights("vgg19")
    assert weights.trained and weights.source.startswith("file:")


def test_random_source_is_labelled_untrained():
    weights = W.load_weights("vgg19", "random")
    assert not weights.trained and "UNTRAINED" in weights.source


def test_offline_without_cache_explains_every_way_to_get_weights(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(StyleError) as e:
        W.load_weights("vgg19")
    message = str(e.value)
    assert "timm/vgg19.tv_in1k" in message and "`weights` PATH" in message and "--" not in message
    assert "STYLE_CORE_WEIGHTS" in message and "HF_HUB_OFFLINE" in message and "\n" not in message


def test_an_unreachable_hub_is_detected_in_seconds(monkeypatch):
    """HF_ENDPOINT on a closed loopback port: no retries, one error that says the hub is unreachable
    (huggingface_hub alone spends about 24 s retrying before it fails)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: connections are refused
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    start = time.perf_counter()
    with pytest.raises(W.WeightsUnavailable) as e:
        W.load_weights("vgg19")
    assert time.perf_counter() - start < 5
    assert "cannot be reached" in e.value.reason and "--" not in e.value.reason
    assert "`weights` PATH" in str(e.value)  # the setting (the CLI says --weights): every way to provide them


def _fake_hub(monkeypatch, path, listed_sha, in_hf_cache=False):
    """Replaces the network: the hub's file is `path`, its listing names `listed_sha`; the Hugging
    Face cache holds a copy only when `in_hf_cache`."""
    calls = {"ranged": 0, "full": 0}

    class FakeFS:
        def info(self, name):
            return {"lfs": {"sha256": listed_sha}}

        def open(self, name, mode="rb", block_size=None):
            calls["ranged"] += 1
            return open(path, "rb")

    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "HfFileSystem", FakeFS)

    def fake_download(repo, filename, local_files_only=False, tqdm_class=None):
        if local_files_only and not in_hf_cache:
            from huggingface_hub.errors import LocalEntryNotFoundError
            raise LocalEntryNotFoundError("not in the cache")
        if local_files_only:
            return str(path)
        calls["full"] += 1
        bar = tqdm_class(total=path.stat().st_size, desc=filename)
        bar.update(path.stat().st_size)
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(W, "hub_reachable", lambda: True)
    return calls


def test_hub_ranged_fetch_converts_caches_and_reuses(weight_files, monkeypatch):
    path = weight_files("vgg19")
    sha = W.file_sha256(path)
    monkeypatch.setitem(W.KNOWN_SHA256, "vgg19", sha)
    calls = _fake_hub(monkeypatch, path, sha)
    seen = []
    weights = W.load_weights("vgg19", progress=lambda what, done, total: seen.append((done, total)))
    assert weights.trained and weights.source == "hub:timm/vgg19.tv_in1k"
    assert calls == {"ranged": 1, "full": 0}
    assert seen and seen[-1][0] == seen[-1][1] < 100e6
    assert W.cache_path("vgg19").is_file()
    again = W.load_weights("vgg19")
    assert again.source.endswith("(cached)") and calls["ranged"] == 1
    np.testing.assert_array_equal(again.variables["params"]["conv5_4"]["kernel"],
                                  weights.variables["params"]["conv5_4"]["kernel"])


def test_a_damaged_cache_is_ignored_and_refetched(weight_files, monkeypatch):
    path = weight_files("vgg19")
    sha = W.file_sha256(path)
    monkeypatch.setitem(W.KNOWN_SHA256, "vgg19", sha)
    calls = _fake_hub(monkeypatch, path, sha)
    W.load_weights("vgg19")
    cache = W.cache_path("vgg19")
    data = bytearray(cache.read_bytes())
    data[-100] ^= 0xFF
    cache.write_bytes(bytes(data))
    assert W.read_cache("vgg19") is None
    W.load_weights("vgg19")
    assert calls["ranged"] == 2 and W.read_cache("vgg19") is not None


def test_hub_listing_with_another_sha_is_refused(weight_files, monkeypatch):
    _fake_hub(monkeypatch, weight_files("vgg19"), "0" * 64)
    with pytest.raises(IntegrityError, match="refusing"):
        W.load_weights("vgg19")
    assert not W.cache_path("vgg19").exists()


def test_full_download_is_checked_against_the_known_sha(weight_files, monkeypatch):
    """ResNets are fetched whole; a file whose SHA-256 differs from the hub's listing is refused."""
    path = weight_files("resnet18")
    calls = _fake_hub(monkeypatch, path, "f" * 64)
    with pytest.raises(IntegrityError, match="damaged"):
        W.load_weights("resnet18")
    calls = _fake_hub(monkeypatch, path, W.file_sha256(path))
    seen = []
    weights = W.load_weights("resnet18", progress=lambda *a: seen.append(a))
    assert weights.trained and calls == {"ranged": 0, "full": 1} and seen
    assert W.read_cache("resnet18") is not None


def test_cache_write_is_atomic(weight_files, monkeypatch):
    variables = W.load_weights("vgg19", weight_files("vgg19")).variables

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(W, "save_file", fail)
    with pytest.raises(OSError):
        W.write_cache(variables, "vgg19", "x")
    assert list(W.cache_dir().iterdir()) == []


def test_a_copy_in_the_hugging_face_cache_is_used_without_download(weight_files, monkeypatch):
    """What a Space's preload_from_hub leaves behind: no ranged read, no download."""
    path = weight_files("vgg19")
    monkeypatch.setitem(W.KNOWN_SHA256, "vgg19", W.file_sha256(path))
    calls = _fake_hub(monkeypatch, path, W.file_sha256(path), in_hf_cache=True)
    weights = W.load_weights("vgg19")
    assert weights.trained and calls == {"ranged": 0, "full": 0}
