"""Shared fixtures: weight files in the exact layout timm publishes torchvision's ImageNet weights in.

The layouts below are written out independently of `style_core.weights` (from torchvision's
architectures and timm's VGG `pre_logits`/`head` naming), so that the loader is tested against the
real format, not against itself. Values are random; shapes, key names and dtypes are the real ones.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

# huggingface_hub reads HF_HOME on import: point it at an empty folder so that no test sees the
# machine's Hugging Face cache.
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="style_core_hf_home_")

VGG_CFG = {"vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
           "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                     512, 512, 512, 512, "M"]}
RESNET_BLOCKS = {"resnet18": ("basic", [2, 2, 2, 2]), "resnet34": ("basic", [3, 4, 6, 3]),
                 "resnet50": ("bottleneck", [3, 4, 6, 3])}


def _conv(rng, out_ch, in_ch, k):
    return (rng.standard_normal((out_ch, in_ch, k, k)) * np.sqrt(2.0 / (in_ch * k * k))).astype(np.float32)


def vgg_state_dict(name: str, seed: int = 0, full_head: bool = True) -> dict[str, np.ndarray]:
    """timm `vgg{16,19}.tv_in1k`: features.{i} (torchvision Sequential indices), then the head."""
    rng = np.random.default_rng(seed)
    sd, index, in_ch = {}, 0, 3
    for v in VGG_CFG[name]:
        if v == "M":
            index += 1
            continue
        sd[f"features.{index}.weight"] = _conv(rng, v, in_ch, 3)
        sd[f"features.{index}.bias"] = (rng.standard_normal(v) * 0.05).astype(np.float32)
        index += 2
        in_ch = v
    hidden = 4096 if full_head else 8
    sd["pre_logits.fc1.weight"] = np.zeros((hidden, 512, 7, 7), np.float32)
    sd["pre_logits.fc1.bias"] = np.zeros(hidden, np.float32)
    sd["pre_logits.fc2.weight"] = np.zeros((hidden, hidden, 1, 1), np.float32)
    sd["pre_logits.fc2.bias"] = np.zeros(hidden, np.float32)
    sd["head.fc.weight"] = np.zeros((1000, hidden), np.float32)
    sd["head.fc.bias"] = np.zeros(1000, np.float32)
    return sd


def _bn(rng, sd, prefix, ch):
    sd[f"{prefix}.weight"] = rng.uniform(0.5, 1.5, ch).astype(np.float32)
    sd[f"{prefix}.bias"] = (rng.standard_normal(ch) * 0.1).astype(np.float32)
    sd[f"{prefix}.running_mean"] = (rng.standard_normal(ch) * 0.1).astype(np.float32)
    sd[f"{prefix}.running_var"] = rng.uniform(0.5, 2.0, ch).astype(np.float32)
    sd[f"{prefix}.num_batches_tracked"] = np.array(0, np.int64)


def resnet_state_dict(name: str, seed: int = 0) -> dict[str, np.ndarray]:
    """torchvision ResNet key names (timm `resnet*.tv_in1k` keeps them), v1.5 strides."""
    kind, blocks = RESNET_BLOCKS[name]
    rng = np.random.default_rng(seed)
    sd = {"conv1.weight": _conv(rng, 64, 3, 7)}
    _bn(rng, sd, "bn1", 64)
    in_ch, expansion = 64, 4 if kind == "bottleneck" else 1
    for stage, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512)), 1):
        for j in range(n):
            p = f"layer{stage}.{j}"
            if kind == "basic":
                sd[f"{p}.conv1.weight"] = _conv(rng, width, in_ch, 3)
                _bn(rng, sd, f"{p}.bn1", width)
                sd[f"{p}.conv2.weight"] = _conv(rng, width, width, 3)
                _bn(rng, sd, f"{p}.bn2", width)
            else:
                sd[f"{p}.conv1.weight"] = _conv(rng, width, in_ch, 1)
                _bn(rng, sd, f"{p}.bn1", width)
                sd[f"{p}.conv2.weight"] = _conv(rng, width, width, 3)
                _bn(rng, sd, f"{p}.bn2", width)
                sd[f"{p}.conv3.weight"] = _conv(rng, width * 4, width, 1)
                _bn(rng, sd, f"{p}.bn3", width * 4)
            if j == 0 and in_ch != width * expansion:
                sd[f"{p}.downsample.0.weight"] = _conv(rng, width * expansion, in_ch, 1)
                _bn(rng, sd, f"{p}.downsample.1", width * expansion)
            in_ch = width * expansion
    sd["fc.weight"] = (rng.standard_normal((1000, in_ch)) * 0.01).astype(np.float32)
    sd["fc.bias"] = np.zeros(1000, np.float32)
    return sd


def state_dict(name: str, seed: int = 0) -> dict[str, np.ndarray]:
    return vgg_state_dict(name, seed) if name.startswith("vgg") else resnet_state_dict(name, seed)


@pytest.fixture(scope="session")
def weight_files(tmp_path_factory):
    """name -> path of a model.safetensors in the real layout (created on first use)."""
    folder = tmp_path_factory.mktemp("weights")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            path = folder / name / "model.safetensors"
            path.parent.mkdir()
            save_file(state_dict(name), str(path), metadata={"format": "pt"})
            made[name] = path
        return made[name]

    return get


@pytest.fixture(scope="session")
def vgg19_weights(weight_files):
    from style_core.weights import load_weights
    return load_weights("vgg19", weight_files("vgg19"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """No test reads or writes the user's caches or reaches the network; the CLI run in-process leaves
    the test process's JAX settings alone (its compile cache is tested in a process of its own)."""
    monkeypatch.setenv("STYLE_CORE_CACHE", str(tmp_path / "style_core_cache"))
    monkeypatch.setenv("STYLE_CORE_COMPILE_CACHE", "off")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("STYLE_CORE_WEIGHTS", raising=False)


@pytest.fixture(scope="session")
def rng_images():
    rng = np.random.default_rng(42)
    content = rng.random((40, 48, 3)).astype(np.float32)
    style = rng.random((36, 36, 3)).astype(np.float32)
    return content, style


REAL_INPUTS = Path(__file__).resolve().parent.parent.parent / "shared" / "real-inputs"


class RealInputs:
    """Real photos and paintings (`../shared/real-inputs/`, see its README) and a scratch folder."""

    def __init__(self, tmp: Path):
        self.tmp = tmp

    def photo(self, name: str) -> Path:
        return REAL_INPUTS / "photo-pairs" / name

    def painting(self, name: str) -> Path:
        return REAL_INPUTS / "paintings" / name

    def segmentation(self, name: str) -> Path:
        return REAL_INPUTS / "photo-pairs" / "segmentation" / name


@pytest.fixture
def real_inputs(tmp_path):
    if not REAL_INPUTS.is_dir():
        pytest.skip(f"the real photos and paintings are not here ({REAL_INPUTS})")
    return RealInputs(tmp_path)
