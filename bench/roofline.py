"""What the benchmarks measure speed against: the machine's matmul rate and the backbone's FLOPs."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from style_core.backbones import layer_table
from style_core.settings import ImageSettings


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """The machine's float32 matmul rate, the roofline the convolutions are measured against."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def conv_gflop(settings: ImageSettings, shape: tuple[int, int]) -> float:
    """Convolution FLOPs of one forward pass up to the deepest layer used, twice that with the backward
    pass to the input (no weight gradients). VGG only: the backbone every mode defaults to."""
    h, w = shape
    flops, channels = 0.0, 3
    for info in layer_table(settings.backbone):
        if info.name.startswith("conv"):
            flops += 2 * (h // info.stride) * (w // info.stride) * channels * info.channels * 9
            channels = info.channels
        if info.name == settings.deepest_layer:
            break
    return 2 * flops / 1e9
