"""ImageNet weights: from the Hugging Face Hub or a local file, converted once to Flax and cached.

Source: torchvision's ImageNet weights as timm publishes them (`timm/{backbone}.tv_in1k`,
`model.safetensors`, torchvision key names, OIHW convolutions). A VGG needs only its convolution
tensors (about 80 of 575 MB); they come first in the file, so where the hub serves ranged reads we
fetch the safetensors header and then only that span. The converted file is cached in the user's cache
folder, written atomically, and checked on every load.

Order of sources: `source` argument (a path or `random`), `$STYLE_CORE_WEIGHTS`, the converted cache,
the hub (honouring `HF_HUB_OFFLINE=1`, in which case only the Hugging Face cache is used). With none
to be had, a `StyleError` says what is missing and how to provide it. `random` gives untrained
weights and is labelled as such everywhere its output appears.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Mapping

import numpy as np
from safetensors.numpy import save_file
from tqdm.auto import tqdm

from .backbones import (BACKWARD, RESNET_STAGES, VGG_BLOCKS, init_variables, layer_table, variable_shapes,
                        with_backward_kernels)
from .errors import IntegrityError, StyleError
from .files import atomic_path
from .keras_files import file_kind, read_h5, read_onnx

FILENAME = "model.safetensors"
FORMAT = "style_core-flax-1"
KNOWN_SHA256 = {
    "vgg19": "11aea017b543ff59233749d8f1cf544cda749378f5790d2fedab841fb86b7669",
    "vgg16": "57b026918159a6bf9faf8405c3a551903768e7138989d9c6224a14227203fad8",
}
UNTRAINED_LABEL = ("random (UNTRAINED network: results carry the style's colour and texture statistics, "
                   "not a trained network's style)")
# Seconds to wait for a TCP connection to the hub before calling it unreachable: without this check an
# offline machine spends about 24 s in huggingface_hub's retries before the first error.
HUB_CONNECT_TIMEOUT = 3.0
_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "F64": np.float64, "I64": np.int64}

DownloadProgress = Callable[[str, int, int], None]  # (what, done, total) in bytes


def hub_repo(backbone: str) -> str:
    return f"timm/{backbone}.tv_in1k"


@dataclass(frozen=True)
class Weights:
    """Flax variables of a backbone and where they came from. A VGG's variables also hold each
    kernel turned for the backward pass (`backbones.with_backward_kernels`), made here once."""
    backbone: str
    variables: Mapping
    source: str
    trained: bool

    def __post_init__(self):
        object.__setattr__(self, "variables", with_backward_kernels(self.backbone, self.variables))


# --- torchvision layout -> flaxmodels layout ------------------------------------------------------

def _vgg_conv_names(backbone: str) -> dict[str, str]:
    """torchvision `features.{i}` index -> our layer name `conv{b}_{j}`."""
    names, index = {}, 0
    for block, convs in enumerate(VGG_BLOCKS[backbone], 1):
        for j in range(1, convs + 1):
            names[f"features.{index}"] = f"conv{block}_{j}"
            index += 2  # conv, relu
        index += 1  # pool
    return names


def _resnet_modules(backbone: str) -> dict[str, tuple[str, ...]]:
    """torchvision module prefix -> flaxmodels module path (convs and batch norms)."""
    bottleneck = backbone == "resnet50"
    block_kind, convs = ("Bottleneck", 3) if bottleneck else ("BasicBlock", 2)
    modules: dict[str, tuple[str, ...]] = {"conv1": ("Conv_0",), "bn1": ("BatchNorm_0",)}
    n = 0
    for stage, blocks in enumerate(RESNET_STAGES[backbone], 1):
        for j in range(blocks):
            block = f"{block_kind}_{n}"
            for m in range(1, convs + 1):
                modules[f"layer{stage}.{j}.conv{m}"] = (block, f"Conv_{m - 1}")
                modules[f"layer{stage}.{j}.bn{m}"] = (block, f"BatchNorm_{m - 1}")
            if j == 0 and (stage > 1 or bottleneck):
                modules[f"layer{stage}.{j}.downsample.0"] = (block, f"Conv_{convs}")
                modules[f"layer{stage}.{j}.downsample.1"] = (block, f"BatchNorm_{convs}")
            n += 1
    return modules


def needed_keys(backbone: str) -> list[str]:
    """The torchvision tensors the feature extractor needs (the classifier is never needed)."""
    if backbone in VGG_BLOCKS:
        return [f"{p}.{k}" for p in _vgg_conv_names(backbone) for k in ("weight", "bias")]
    keys = []
    for prefix in _resnet_modules(backbone):
        is_bn = prefix.rsplit(".", 1)[-1].startswith("bn") or prefix.endswith("downsample.1")
        keys += [f"{prefix}.{k}" for k in (("weight", "bias", "running_mean", "running_var")
                                          if is_bn else ("weight",))]
    return keys


def _set(tree: dict, path: tuple[str, ...], value: np.ndarray) -> None:
    for part in path[:-1]:
        tree = tree.setdefault(part, {})
    tree[path[-1]] = value


def convert(tensors: Mapping[str, np.ndarray], backbone: str) -> dict:
    """torchvision/timm tensors -> Flax variables of our modules.

    Convolutions go from OIHW to HWIO: both frameworks compute a cross-correlation, so this transpose
    is all there is. Batch norms map weight/bias/running_mean/running_var to scale/bias/mean/var.
    """
    layer_table(backbone)
    missing = [k for k in needed_keys(backbone) if k not in tensors]
    if missing:
        raise StyleError(f"the weights file has no {', '.join(missing[:3])}"
                         f"{f' (and {len(missing) - 3} more)' if len(missing) > 3 else ''}; "
                         f"expected torchvision key names for {backbone} as in {hub_repo(backbone)}")
    f32 = lambda a: np.ascontiguousarray(np.asarray(a, dtype=np.float32))  # noqa: E731
    hwio = lambda a: np.ascontiguousarray(f32(a).transpose(2, 3, 1, 0))  # noqa: E731
    variables: dict = {"params": {}}
    if backbone in VGG_BLOCKS:
        for prefix, name in _vgg_conv_names(backbone).items():
            variables["params"][name] = {"kernel": hwio(tensors[f"{prefix}.weight"]),
                                         "bias": f32(tensors[f"{prefix}.bias"])}
    else:
        variables["batch_stats"] = {}
        for prefix, path in _resnet_modules(backbone).items():
            if f"{prefix}.running_mean" in tensors:
                _set(variables["params"], path + ("scale",), f32(tensors[f"{prefix}.weight"]))
                _set(variables["params"], path + ("bias",), f32(tensors[f"{prefix}.bias"]))
                _set(variables["batch_stats"], path + ("mean",), f32(tensors[f"{prefix}.running_mean"]))
                _set(variables["batch_stats"], path + ("var",), f32(tensors[f"{prefix}.running_var"]))
            else:
                _set(variables["params"], path + ("kernel",), hwio(tensors[f"{prefix}.weight"]))
        # flaxmodels' ResNet always builds its classifier; features never reach it.
        features = 2048 if backbone == "resnet50" else 512
        fc_w = tensors.get("fc.weight")
        variables["params"]["Dense_0"] = {
            "kernel": np.ascontiguousarray(f32(fc_w).T) if fc_w is not None else np.zeros((features, 1000), np.float32),
            "bias": f32(tensors.get("fc.bias", np.zeros(1000, np.float32)))}
    _check_layout(variables, backbone)
    return variables


def _flatten(tree: Mapping, prefix: str = "", leaf: Callable = np.ascontiguousarray) -> dict[str, np.ndarray]:
    flat = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        # safetensors.numpy writes a strided view's raw buffer, not its values: make it contiguous.
        flat.update(_flatten(value, path, leaf) if isinstance(value, Mapping) else {path: leaf(value)})
    return flat


def _unflatten(flat: Mapping[str, np.ndarray]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        _set(tree, tuple(path.split("/")), value)
    return tree


def _check_layout(variables: Mapping, backbone: str) -> None:
    expected = _flatten(variable_shapes(backbone), leaf=lambda v: v.shape)
    got = {k: v.shape for k, v in _flatten(variables).items()}
    if backbone in VGG_BLOCKS:  # the converted VGG holds the trunk only
        expected = {k: s for k, s in expected.items() if k in got or "conv" in k}
    wrong = [f"{k} {got.get(k)} (expected {s})" for k, s in expected.items() if got.get(k) != s]
    if wrong:
        raise IntegrityError(f"the weights do not fit {backbone}: {'; '.join(wrong[:2])} — is it a file "
                             f"for another backbone?")
    # a NaN in the file ran every pass to "the loss is not finite at the start", blaming the images too
    broken = [k for k, v in _flatten(variables).items() if not np.all(np.isfinite(np.asarray(v)))]
    if broken:
        raise IntegrityError(f"the weights hold values that are not finite (NaN or infinity) in "
                             f"{', '.join(broken[:2])}: the file is damaged")


# --- safetensors, reading only what is needed -----------------------------------------------------

def read_header(f: BinaryIO) -> tuple[dict, int, dict]:
    """The safetensors tensor table, the offset where the data starts, and the file's metadata."""
    raw = f.read(8)
    if len(raw) != 8:
        raise StyleError("the weights file is empty or truncated")
    (length,) = struct.unpack("<Q", raw)
    if length > 100_000_000:
        raise StyleError("the weights file is not a safetensors file")
    try:
        header = json.loads(f.read(length))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise StyleError("the weights file is not a safetensors file (bad header)") from None
    metadata = header.pop("__metadata__", None) or {}
    return header, 8 + length, metadata


def read_tensors(f: BinaryIO, keys: list[str], progress: DownloadProgress | None = None,
                 what: str = "weights") -> dict[str, np.ndarray]:
    """Reads `keys` from a safetensors stream with one read of the span that holds them.

    `f` needs only `seek` and `read`, so the same code reads a local file or a remote one through
    ranged HTTP requests.
    """
    header, data_start, _ = read_header(f)
    present = [k for k in keys if k in header]
    if not present:
        return {}
    begin = min(header[k]["data_offsets"][0] for k in present)
    end = max(header[k]["data_offsets"][1] for k in present)
    f.seek(data_start + begin)
    buffer = bytearray()
    while len(buffer) < end - begin:
        chunk = f.read(min(8 << 20, end - begin - len(buffer)))
        if not chunk:
            raise StyleError(f"the weights file ended early ({len(buffer)} of {end - begin} bytes)")
        buffer += chunk
        if progress:
            progress(what, len(buffer), end - begin)
    tensors = {}
    for key in present:
        info = header[key]
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise StyleError(f"the weights file stores {key} as {info['dtype']}, which is not supported")
        lo, hi = (o - begin for o in info["data_offsets"])
        array = np.frombuffer(bytes(buffer[lo:hi]), dtype=dtype)
        if array.size != int(np.prod(info["shape"], dtype=np.int64)):
            raise StyleError(f"the weights file is damaged: {key} has the wrong number of bytes")
        tensors[key] = array.reshape(info["shape"])
    return tensors


def file_backbone(path: str | os.PathLike) -> str | None:
    """The VGG a weights file holds, where the file says (a Keras ONNX or .h5 file by its number of
    convolutions, a torchvision-layout file by its last convolution's index), else None."""
    try:
        kind = file_kind(path)
        if kind != "safetensors":
            return (read_h5 if kind == "h5" else read_onnx)(path)[0]
        with open(path, "rb") as f:
            header, _, metadata = read_header(f)
    except (OSError, StyleError):
        return None
    if metadata.get("backbone") in VGG_BLOCKS:
        return metadata["backbone"]
    last = {b: f"features.{max(int(k.split('.')[1]) for k in needed_keys(b))}.weight" for b in VGG_BLOCKS}
    convs = [b for b in VGG_BLOCKS if last[b] in header and f"{last[b][:-6]}bias" in header]
    return max(convs, key=lambda b: sum(VGG_BLOCKS[b])) if convs and "fc.weight" not in header else None


def read_local(path: str | os.PathLike, backbone: str) -> dict:
    """Converted variables from a local file: the timm/torchvision layout (or our own cache), or a Keras
    VGG16/VGG19 as ONNX or .h5 (`keras_files`), whose backbone must be `backbone`."""
    path = Path(path)
    if not path.is_file():
        raise StyleError(f"weights file {path} does not exist")
    try:
        kind = file_kind(path)
        if kind != "safetensors":
            held, variables = (read_h5 if kind == "h5" else read_onnx)(path)
            if held != backbone:
                raise StyleError(f"the file holds a Keras {held.upper()}, not {backbone}: choose backbone "
                                 f"{held}")
            _check_layout(variables, backbone)
            return variables
        with open(path, "rb") as f:
            header, _, _ = read_header(f)
            f.seek(0)
            if any(k.startswith("params/") for k in header):  # our own cache's layout
                variables = _unflatten(read_tensors(f, list(header)))
                _check_layout(variables, backbone)
                return variables
            tensors = read_tensors(f, needed_keys(backbone) + ["fc.weight", "fc.bias"])
        return convert(tensors, backbone)
    except StyleError as e:
        raise StyleError(f"{path}: {e}") from None


# --- cache ------------------------------------------------------------------------------------------

def cache_dir() -> Path:
    root = os.environ.get("STYLE_CORE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "style_core")
    return Path(root)


def cache_path(backbone: str) -> Path:
    return cache_dir() / f"{backbone}.tv_in1k.flax.safetensors"


def write_cache(variables: Mapping, backbone: str, source_sha256: str) -> Path:
    """Writes the converted variables atomically, with a checksum of the converted tensors."""
    path = cache_path(backbone)
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = _flatten({k: v for k, v in variables.items() if k != BACKWARD})   # made again when loaded
    metadata = {"format": FORMAT, "backbone": backbone, "source": hub_repo(backbone),
                "source_sha256": source_sha256, "sha256": _tensors_sha256(flat)}
    with atomic_path(path) as tmp:
        save_file(flat, tmp, metadata=metadata)
    return path


def _tensors_sha256(flat: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in sorted(flat):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(flat[key]).tobytes())
    return digest.hexdigest()


def read_cache(backbone: str) -> dict | None:
    """The cached variables, or None when there is no cache or it fails its checks."""
    path = cache_path(backbone)
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as f:
            header, _, metadata = read_header(f)
            f.seek(0)
            flat = read_tensors(f, list(header))
        if metadata.get("format") != FORMAT or metadata.get("backbone") != backbone:
            return None
        if metadata.get("sha256") != _tensors_sha256(flat):
            return None
        variables = _unflatten(flat)
        _check_layout(variables, backbone)
        return variables
    except (OSError, ValueError, KeyError):
        return None


# --- the hub ----------------------------------------------------------------------------------------

def file_sha256(path: str | os.PathLike) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _progress_tqdm(progress: DownloadProgress | None):
    """A tqdm class that reports to `progress` instead of printing (the library never prints)."""
    class Bar(tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "file": io.StringIO(), "disable": False})

        def update(self, n=1):
            out = super().update(n)
            if progress:
                progress(f"downloading {self.desc or FILENAME}", int(self.n), int(self.total or 0))
            return out

    return Bar


class WeightsUnavailable(StyleError):
    """No weights from any source; `reason` says why without naming command-line flags (for the app)."""

    def __init__(self, message: str, backbone: str, reason: str):
        super().__init__(message)
        self.backbone, self.reason = backbone, reason


def hub_reachable(timeout: float = HUB_CONNECT_TIMEOUT) -> bool:
    """Whether a TCP connection to the hub ($HF_ENDPOINT, default huggingface.co) opens within
    `timeout` seconds. Behind a proxy ($HTTPS_PROXY) the proxy decides, so this says yes."""
    import socket
    from urllib.parse import urlsplit
    if os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy"):
        return True
    url = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _remote_sha256(backbone: str) -> str | None:
    """The SHA-256 the hub lists for the file (its LFS object id)."""
    from huggingface_hub import HfFileSystem
    info = HfFileSystem().info(f"{hub_repo(backbone)}/{FILENAME}")
    return (info.get("lfs") or {}).get("sha256")


def fetch_ranged(backbone: str, progress: DownloadProgress | None = None) -> tuple[dict, str]:
    """Only the convolution tensors of a VGG, via ranged reads of the hub's file.

    The whole file's SHA-256 cannot be checked on a partial read, so instead the hub's listing must
    name the known SHA-256 (the file is the one we expect), and the header must account for every
    byte we read.
    """
    from huggingface_hub import HfFileSystem
    expected = KNOWN_SHA256.get(backbone)
    listed = _remote_sha256(backbone)
    if expected and listed and listed != expected:
        raise IntegrityError(f"{hub_repo(backbone)}/{FILENAME} on the hub has SHA-256 {listed}, not the "
                             f"known {expected}; refusing it")
    with HfFileSystem().open(f"{hub_repo(backbone)}/{FILENAME}", "rb", block_size=0) as f:
        tensors = read_tensors(f, needed_keys(backbone), progress,
                               f"downloading {backbone} convolutions")
    return convert(tensors, backbone), listed or expected or ""


def fetch_full(backbone: str, progress: DownloadProgress | None = None, offline: bool = False) -> tuple[dict, str]:
    """The whole file through `hf_hub_download` (its cache, resume and auth), checked by SHA-256."""
    from huggingface_hub import hf_hub_download
    path = hf_hub_download(hub_repo(backbone), FILENAME, local_files_only=offline,
                           tqdm_class=_progress_tqdm(progress))
    sha = file_sha256(path)
    expected = KNOWN_SHA256.get(backbone) or (None if offline else _remote_sha256(backbone))
    if expected and sha != expected:
        raise IntegrityError(f"{path} has SHA-256 {sha}, expected {expected}: the download is damaged; "
                             f"delete it and try again")
    return read_local(path, backbone), sha


def _attempt(fetch: Callable, backbone: str, progress: DownloadProgress | None, errors: list[str]) -> Weights | None:
    """The weights from one way of getting them (cached after), or None with the reason in `errors`;
    a checksum or layout failure is fatal."""
    try:
        variables, sha = fetch(backbone, progress)
    except IntegrityError:
        raise
    except StyleError as e:
        errors.append(str(e))
        return None
    except Exception as e:  # network, auth, hub errors: try the next way, then explain
        errors.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".strip())
        return None
    with contextlib.suppress(OSError):  # a read-only cache costs a re-download next time, nothing more
        write_cache(variables, backbone, sha)
    return Weights(backbone, variables, f"hub:{hub_repo(backbone)}", True)


def load_weights(backbone: str, source: str | os.PathLike | None = None,
                 progress: DownloadProgress | None = None) -> Weights:
    """ImageNet weights for `backbone` from the first source that has them (see the module doc)."""
    layer_table(backbone)  # an unknown backbone: the error lists the valid ones
    source = source or os.environ.get("STYLE_CORE_WEIGHTS")
    if str(source) == "random":
        return Weights(backbone, init_variables(backbone), UNTRAINED_LABEL, trained=False)
    if source:
        return Weights(backbone, read_local(source, backbone), f"file:{Path(source).resolve()}", True)
    cached = read_cache(backbone)
    if cached is not None:
        return Weights(backbone, cached, f"hub:{hub_repo(backbone)} (cached)", True)
    offline, errors = _offline(), []
    # A copy already in the Hugging Face cache (e.g. a Space's preload_from_hub) costs no download, nor
    # the look for the network (up to HUB_CONNECT_TIMEOUT on a machine without one).
    weights = _attempt(lambda b, p: fetch_full(b, p, offline=True), backbone, progress, errors)
    unreachable = weights is None and not offline and not hub_reachable()
    if weights is None and not offline and not unreachable:
        for attempt in ([fetch_ranged] if backbone in VGG_BLOCKS else []) + [fetch_full]:
            weights = _attempt(attempt, backbone, progress, errors)
            if weights is not None:
                break
    if weights is not None:
        return weights
    why = "HF_HUB_OFFLINE is set and the Hugging Face cache has no copy" if offline else (
        "the hub cannot be reached: no network connection" if unreachable else errors[-1] if errors
        else "unknown")
    reason = ("this machine is set to work offline" if offline else
              "the Hugging Face Hub cannot be reached from this machine" if unreachable else
              f"the download failed ({why})")
    raise WeightsUnavailable(
        f"no ImageNet weights for {backbone}: could not get {hub_repo(backbone)}/{FILENAME} ({why}). "
        f"Provide them with `weights` PATH or STYLE_CORE_WEIGHTS=PATH (a {FILENAME} in torchvision "
        f"layout), or run once with network access to fill {cache_dir()}; `weights` random runs with "
        f"untrained weights for testing only", backbone, reason)
