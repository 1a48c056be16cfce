"""Losses of Gatys-style transfer, with the formulas of DESIGN.md.

For features F_l of shape (H_l, W_l, C_l) seen as a (H_l*W_l, C_l) matrix and a penalty rho:

    G_l(x)    = F_l(x)^T F_l(x) / (H_l W_l C_l)
    L_content = sum_l w_l mean(rho(F_l(x) - F_l(c)))
    L_style   = sum_l w_l mean(rho(G_l(x) - sum_k b_k G_l(s_k)))      (b normalised to sum 1; the
                                                                   Gram statistic of statistics.py)
    L_tv      = mean|x[i+1,j] - x[i,j]| + mean|x[i,j+1] - x[i,j]|
    L_temporal = mean(c * (x - w(x_prev))^2)                         (video mode)

"paper" normalisation is exactly that. "relative" divides each layer's term by mean(rho(target)), so
that a weight means the same for every backbone, layer and image size (for mse it is invariant to a
rescaling of the layer's features).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import optax

from .errors import StyleError

LOSS_KINDS = ("mse", "l1", "huber", "smooth_l1")
NORMALIZATIONS = ("paper", "relative")


def abs_value(d: jax.Array) -> jax.Array:
    """|d| with gradient sign(d), i.e. 0 at d = 0.

    jnp.abs has gradient +1 at 0. Exact zeros are common here (flat regions of an image, every content
    feature at a content init), and that one-sided choice pushes all of them the same way.
    """
    return jnp.sign(d) * d


def penalty(kind: str, delta: float = 1.0) -> Callable[[jax.Array], jax.Array]:
    """The elementwise rho(d).

    mse: d^2. l1: |d|. huber (optax): d^2/2 for |d| <= delta, else delta (|d| - delta/2).
    smooth_l1 (PyTorch): d^2/(2 beta) for |d| < beta, else |d| - beta/2, i.e. huber / beta.
    With delta = beta = 1 huber and smooth_l1 are the same function.
    """
    if kind == "mse":
        return jnp.square
    if kind == "l1":
        return abs_value
    if kind == "huber":
        return lambda d: optax.losses.huber_loss(d, delta=delta)
    if kind == "smooth_l1":
        return lambda d: optax.losses.huber_loss(d, delta=delta) / delta
    raise StyleError(f"unknown loss kind {kind!r}; choose one of {', '.join(LOSS_KINDS)}")


@jax.custom_vjp
def _outer_sum(f: jax.Array) -> jax.Array:
    """F^T F for F of shape (..., P, C)."""
    return jnp.einsum("...pc,...pd->...cd", f, f)


def _outer_sum_fwd(f):
    return _outer_sum(f), f


def _outer_sum_bwd(f, dg):
    # d(F^T F) = F (dG + dG^T): one (P, C) x (C, C) product, where autodiff of the einsum makes two
    # and adds them (25-35% of the Gram's backward time at 512 px on a CPU, bench/LOG.md 6).
    return (jnp.einsum("...pc,...cd->...pd", f, dg + jnp.swapaxes(dg, -1, -2)),)


_outer_sum.defvjp(_outer_sum_fwd, _outer_sum_bwd)


def gram_matrix(features: jax.Array) -> jax.Array:
    """F^T F / (H W C) for features (H, W, C), or per item for a batch (N, H, W, C)."""
    *batch, h, w, c = features.shape
    return _outer_sum(features.reshape(*batch, h * w, c)) / (h * w * c)


def blend_grams(grams: Sequence[jax.Array], blend: Sequence[float] | None = None) -> jax.Array:
    """sum_k b_k G(s_k) with b normalised to sum 1 (equal weights when none are given)."""
    b = jnp.ones(len(grams)) if blend is None else jnp.asarray(blend, jnp.float32)
    b = b / jnp.sum(b)
    return sum(bk * g for bk, g in zip(b, grams))


def tv_loss(image: jax.Array) -> jax.Array:
    """mean|x[i+1,j] - x[i,j]| + mean|x[i,j+1] - x[i,j]| over pixels and channels."""
    dy = abs_value(image[..., 1:, :, :] - image[..., :-1, :, :])
    dx = abs_value(image[..., :, 1:, :] - image[..., :, :-1, :])
    return jnp.mean(dy) + jnp.mean(dx)


def layer_norms(rho: Callable, targets: Mapping[str, jax.Array], normalization: str,
                scale: Callable | None = None) -> dict:
    """The divisor of each layer's term: 1 ("paper") or the target's own size ("relative"): `scale(target)`,
    mean(rho(target)) without one (a style statistic's `scale`, `statistics.py`)."""
    if normalization == "paper":
        return {name: jnp.float32(1.0) for name in targets}
    if normalization == "relative":
        scale = scale or (lambda t: jnp.mean(rho(t)))
        # A layer whose target is all zeros (a dead ReLU map) would divide by zero.
        return {name: jnp.maximum(scale(t), 1e-12) for name, t in targets.items()}
    raise StyleError(f"unknown normalisation {normalization!r}; choose one of "
                     f"{', '.join(NORMALIZATIONS)}")


def content_loss(features: Mapping[str, jax.Array], targets: Mapping[str, jax.Array],
                 layer_weights: Mapping[str, float], norms: Mapping[str, jax.Array],
                 rho: Callable) -> jax.Array:
    """sum_l w_l mean(rho(F_l(x) - F_l(c))) / norm_l."""
    return sum(layer_weights[name] * jnp.mean(rho(features[name] - targets[name])) / norms[name]
               for name in targets)


def temporal_loss(x: jax.Array, target: jax.Array, mask: jax.Array) -> jax.Array:
    """mean(c * (x - w(x_prev))^2) (Ruder et al.): `target` is the previous stylised frame warped into
    this one, `mask` (H, W) the pixels where that warp is reliable (1) or not (0); with no warp and
    an all-ones mask it is the research deck's plain difference of consecutive frames."""
    return jnp.mean(mask[..., None] * jnp.square(x - target))
