"""Other ways to compute VGG19's convolutions in XLA:CPU, against ours (bench/LOG.md 20).

    python bench/bench_conv.py [--size 256] [--repeats 5] [--out FILE]

Times the value and input gradient of a Gram-and-feature objective over VGG19 up to relu5_1 (random
weights in the real layout) at SIZE x 3/4 SIZE, each way compiled once in this process:

- **direct**: `backbones.feature_extractor`, XLA's own convolutions (what every mode uses);
- **bf16**: the same network with bfloat16 activations and kernels (float32 losses);
- **winograd2 / winograd4**: Winograd's F(2x2, 3x3) and F(4x4, 3x3) (Lavin and Gray 2016) written as
  XLA ops: the input transform from strided slices, one batched GEMM per tile position, the inverse
  transform. 2.25x and 4x fewer multiplies than direct, but the transforms are not fused with the GEMM.

Prints seconds per evaluation and each way's largest gradient difference from direct's.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from style_core.backbones import VGG_BLOCKS, feature_extractor, init_variables, max_pool_2x2, normalize  # noqa: E402

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


def objective(features):
    """Gram and feature terms at every layer, as the style and content terms read them."""
    total = 0.0
    for f in features.values():
        flat = f.reshape(-1, f.shape[-1])
        gram = flat.T @ flat / flat.shape[0]
        total = total + 1e-6 * jnp.sum(gram * gram) + jnp.mean(f * f)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "conv-cpu.json"))
    args = parser.parse_args()
    variables = init_variables("vgg19")
    image = jax.random.uniform(jax.random.PRNGKey(1), (args.size * 3 // 4, args.size, 3))
    extract = feature_extractor("vgg19", LAYERS)
    ways = {"direct": lambda v, x: objective({k: f[0] for k, f in extract(v, x[None]).items()}),
            "bf16": lambda v, x: objective(vgg_features(v["params"], x, xla_conv(jnp.bfloat16))),
            "winograd2": lambda v, x: objective(vgg_features(v["params"], x, lambda *a: winograd_conv(*a, 2))),
            "winograd4": lambda v, x: objective(vgg_features(v["params"], x, lambda *a: winograd_conv(*a, 4)))}
    rows, reference = [], None
    for name, fn in ways.items():
        step = jax.jit(jax.value_and_grad(fn, argnums=1))
        t = time.perf_counter()
        jax.block_until_ready(step(variables, image))
        first = time.perf_counter() - t
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            value, grad = jax.block_until_ready(step(variables, image))
            times.append(time.perf_counter() - t)
        reference = reference if reference is not None else grad
        difference = float(jnp.max(jnp.abs(grad - reference)) / jnp.max(jnp.abs(reference)))
        rows.append({"way": name, "compile_and_first_s": round(first, 2), "min_s": round(min(times), 4),
                     "median_s": round(float(np.median(times)), 4), "value": float(value),
                     "grad_max_rel_difference": difference})
        print(f"{name:>10}: {rows[-1]['median_s']:.4f} s median, {rows[-1]['min_s']:.4f} s min, first call "
              f"{first:.1f} s, gradient {difference:.1e} from direct's", flush=True)
    result = {"platform": platform.platform(), "jax": jax.__version__, "size": [args.size * 3 // 4, args.size],
              "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
