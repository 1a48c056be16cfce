"""Other ways to compute VGG19's convolutions in XLA:CPU, against ours (bench/LOG.md 20).

    python bench/bench_conv.py [--sizes 256] [--ways W,...] [--repeats 5] [--out FILE]

Times the value and input gradient of a Gram-and-feature objective over VGG19 up to relu5_1 (random
weights in the real layout) at SIZE x 3/4 SIZE for each size, each way compiled once in this process:

- **direct**: `backbones.feature_extractor` on the bare variables, XLA's own convolutions, the
  backward pass turning every kernel as it goes;
- **turned**: the same with the kernels turned for the backward pass once, beforehand
  (`backbones.with_backward_kernels`, what every mode uses since bench/LOG.md 21);
- **bf16**: the same network with bfloat16 activations and kernels (float32 losses);
- **winograd2 / winograd4**: Winograd's F(2x2, 3x3) and F(4x4, 3x3) (Lavin and Gray 2016) written as
  XLA ops: the input transform from strided slices, one batched GEMM per tile position, the inverse
  transform. 2.25x and 4x fewer multiplies than direct, but the transforms are not fused with the GEMM.
- **im2col / im2col_bf16**: each convolution as one GEMM over the nine shifted copies of its input
  (float32, or bfloat16 operands with float32 sums: XLA:CPU's bfloat16 GEMMs run faster than its
  float32 ones on a CPU with AVX512_BF16, see the GEMM rows);
- **ynn / xnn / onednn**: `direct` with XLA's library fusions for convolutions
  (`--xla_cpu_experimental_{ynn,xnn,onednn}_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION`),
  each in a child process since XLA's flags are read once per process.

Prints seconds per evaluation, each way's largest gradient difference from the first way's (direct's
by default), and XLA's GEMM throughput in float32 and bfloat16 at conv3_2's shape (3072 x 2304 by
2304 x 256 at 256 px).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from style_core.backbones import (VGG_BLOCKS, feature_extractor, init_variables, max_pool_2x2,  # noqa: E402
                                  normalize, with_backward_kernels)

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")

# Lavin and Gray's transforms: B^T (input), G (kernel), A^T (output) for F(m x m, 3 x 3).
WINOGRAD = {
    2: ([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]]),
    4: ([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
         [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
         [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]),
}


def combine(coefficients, arrays):
    """sum_i c_i a_i over the non-zero c_i (the transforms are sparse)."""
    terms = [a if c == 1 else -a if c == -1 else c * a for c, a in zip(coefficients, arrays) if c]
    return sum(terms[1:], terms[0])


def winograd_conv(x, kernel, bias, m: int):
    """A 3x3 SAME convolution of x (H, W, C) with an HWIO kernel by F(m x m, 3 x 3)."""
    bt, g, at = (np.asarray(a, np.float64) for a in WINOGRAD[m])
    a = m + 2
    h, w, _ = x.shape
    p, q = -(-h // m), -(-w // m)
    xp = jnp.pad(x, ((1, p * m + 1 - h), (1, q * m + 1 - w), (0, 0)))
    rows = [xp[i:i + p * m:m] for i in range(a)]
    rows = [combine(bt[k], rows) for k in range(a)]
    v = []
    for row in rows:
        cols = [row[:, j:j + q * m:m] for j in range(a)]
        v += [combine(bt[k], cols) for k in range(a)]
    v = jnp.stack(v).reshape(a * a, p * q, -1)
    gk = jnp.asarray(g, kernel.dtype)
    u = jnp.einsum("ai,ijco,bj->abco", gk, kernel, gk).reshape(a * a, kernel.shape[2], -1)
    mm = jnp.einsum("tkc,tco->tko", v, u).reshape(a, a, p, q, -1)
    y = [[combine(at[r], [combine(at[s], [mm[i, j] for j in range(a)]) for i in range(a)])
          for s in range(m)] for r in range(m)]
    y = jnp.stack([jnp.stack(row, axis=2) for row in y], axis=1)      # (p, m, q, m, C)
    return y.reshape(p * m, q * m, -1)[:h, :w] + bias


def vgg_features(params, image, conv):
    """VGG19 to relu5_1 with `conv(x, kernel, bias)` for every convolution (max pooling)."""
    x, out = normalize(image), {}
    for block, convs in enumerate(VGG_BLOCKS["vgg19"], 1):
        for i in range(1, convs + 1):
            layer = params[f"conv{block}_{i}"]
            x = jax.nn.relu(conv(x, layer["kernel"], layer["bias"]))
            out[f"relu{block}_{i}"] = x.astype(jnp.float32)
            if f"relu{block}_{i}" == LAYERS[-1]:
                return {k: out[k] for k in LAYERS}
        x = max_pool_2x2(x)


def xla_conv(dtype):
    def conv(x, kernel, bias):
        y = jax.lax.conv_general_dilated(x[None].astype(dtype), kernel.astype(dtype), (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
        return y + bias.astype(dtype)
    return conv


def im2col_conv(dtype):
    def conv(x, kernel, bias):
        h, w, c = x.shape
        padded = jnp.pad(x.astype(dtype), ((1, 1), (1, 1), (0, 0)))
        cols = jnp.concatenate([padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], -1)
        y = jnp.dot(cols.reshape(h * w, 9 * c), kernel.astype(dtype).reshape(9 * c, -1),
                    preferred_element_type=jnp.float32)
        return y.reshape(h, w, -1) + bias
    return conv


LIBRARIES = ("ynn", "xnn", "onednn")


def library_flag(library: str) -> str:
    return f"--xla_cpu_experimental_{library}_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION"


def gemm_rate(dtype, size: int, repeats: int) -> float:
    """GFLOP/s of one XLA GEMM with conv3_2's shape at `size` px (float32 sums)."""
    m, k, n = (size * 3 // 4 // 4) * (size // 4), 9 * 256, 256
    a, b = jnp.ones((m, k), dtype), jnp.ones((k, n), dtype)
    dot = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32))
    jax.block_until_ready(dot(a, b))
    times = []
    for _ in range(repeats * 4):
        t = time.perf_counter()
        jax.block_until_ready(dot(a, b))
        times.append(time.perf_counter() - t)
    return 2 * m * k * n / min(times) / 1e9


def objective(features):
    """Gram and feature terms at every layer, as the style and content terms read them."""
    total = 0.0
    for f in features.values():
        flat = f.reshape(-1, f.shape[-1])
        gram = flat.T @ flat / flat.shape[0]
        total = total + 1e-6 * jnp.sum(gram * gram) + jnp.mean(f * f)
    return total


def time_way(fn, variables, image, repeats: int):
    step = jax.jit(jax.value_and_grad(fn, argnums=1))
    t = time.perf_counter()
    jax.block_until_ready(step(variables, image))
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        value, grad = jax.block_until_ready(step(variables, image))
        times.append(time.perf_counter() - t)
    return {"compile_and_first_s": round(first, 2), "min_s": round(min(times), 4),
            "median_s": round(float(np.median(times)), 4), "value": float(value)}, grad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256", help="comma-separated widths")
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)   # a library child's one size
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ways", default="direct,turned,bf16,im2col,im2col_bf16,winograd2,winograd4,ynn,xnn,onednn",
                        help="comma-separated (the module's doc lists them); the first is the gradients' reference")
    parser.add_argument("--gradient-out", help=argparse.SUPPRESS)   # a library child's gradient, .npy
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "conv-cpu.json"))
    args = parser.parse_args()
    variables = init_variables("vgg19")
    extract = feature_extractor("vgg19", LAYERS)
    ways = {"direct": lambda v, x: objective({k: f[0] for k, f in extract(v, x[None]).items()}),
            "bf16": lambda v, x: objective(vgg_features(v["params"], x, xla_conv(jnp.bfloat16))),
            "im2col": lambda v, x: objective(vgg_features(v["params"], x, im2col_conv(jnp.float32))),
            "im2col_bf16": lambda v, x: objective(vgg_features(v["params"], x, im2col_conv(jnp.bfloat16))),
            "winograd2": lambda v, x: objective(vgg_features(v["params"], x, lambda *a: winograd_conv(*a, 2))),
            "winograd4": lambda v, x: objective(vgg_features(v["params"], x, lambda *a: winograd_conv(*a, 4)))}
    ways["turned"] = ways["direct"]   # the same function; the variables hold the turned kernels
    image_for = lambda size: jax.random.uniform(jax.random.PRNGKey(1), (size * 3 // 4, size, 3))  # noqa: E731
    if args.gradient_out:   # a child for one library: time `direct` under the flags it was started with
        row, grad = time_way(ways["direct"], variables, image_for(args.size), args.repeats)
        np.save(args.gradient_out, np.asarray(grad))
        print(json.dumps(row))
        return
    rows, names = [], args.ways.split(",")
    for size in (int(s) for s in args.sizes.split(",")):
        image, reference = image_for(size), None
        for name in names:
            if name in LIBRARIES:
                with tempfile.TemporaryDirectory() as folder:
                    env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {library_flag(name)}"}
                    child = subprocess.run([sys.executable, __file__, "--size", str(size), "--repeats",
                                            str(args.repeats), "--gradient-out", f"{folder}/g.npy"],
                                           env=env, capture_output=True, text=True, check=True)
                    row, grad = json.loads(child.stdout.strip().splitlines()[-1]), np.load(f"{folder}/g.npy")
                row["xla_flags"] = library_flag(name)
            else:
                v = with_backward_kernels("vgg19", variables) if name == "turned" else variables
                row, grad = time_way(ways[name], v, image, args.repeats)
            reference = reference if reference is not None else np.asarray(grad)
            difference = float(np.max(np.abs(np.asarray(grad) - reference)) / np.max(np.abs(reference)))
            rows.append({"way": name, "size": [size * 3 // 4, size], **row, "grad_max_rel_difference": difference})
            print(f"{size:>4} px {name:>12}: {row['median_s']:.4f} s median, {row['min_s']:.4f} s min, first call "
                  f"{row['compile_and_first_s']:.1f} s, gradient {difference:.1e} from {names[0]}'s", flush=True)
    size = int(args.sizes.split(",")[-1])
    gemm = {name: round(gemm_rate(dtype, size, args.repeats), 1)
            for name, dtype in (("float32", jnp.float32), ("bfloat16", jnp.bfloat16))}
    print(f"XLA GEMM at conv3_2's shape at {size} px: {gemm['float32']} GFLOP/s float32, {gemm['bfloat16']} GFLOP/s bfloat16")
    result = {"platform": platform.platform(), "jax": jax.__version__, "gemm_size": [size * 3 // 4, size],
              "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows,
              "gemm_gflops": gemm}
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
