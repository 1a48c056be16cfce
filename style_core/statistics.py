"""Style statistics: what a style term compares at each layer, each owning how its targets are made.

A statistic (KB's `StyleLossW2.get_target`) says what it needs from the style images and how far an
image's features are from it. Every path that makes style targets asks it, never a Gram matrix by name:
image mode once per size and regions' guided targets (`objective.style_targets`, `region_targets`),
large mode's style image in pieces (`large.tiled_targets`), and what the cluster ships
(`large.TileWork.targets`, made here). A statistic is five pure functions of a layer's features F
(H, W, C), seen as positions p with features f_p, and a guide g (H, W, 1) or None (`regions.guide`,
g = m sqrt(H W / sum(m^2)) for a mask m; None: every position with weight 1):

- `sums(F, g)`: sums over positions, additive over any partition of them (large mode's pieces add up
  to exactly one pass's); weighted by g_p^2, the guided Gram's weights (`regions.py`);
- `moments(sums)`: the sums divided by their mass, linear in what they average, so that several style
  images blend as the weighted sum of their moments (`blend`: `losses.blend_grams` on each part);
- `target(moments)`: what the loss compares with, made once per target;
- `loss(F, g, target, rho)`: the layer's term before its layer weight and divisor;
- `scale(target, rho)`: the divisor of the "relative" normalisation (`losses.layer_norms`).

A new statistic is one class here and its entry in STATISTICS; `settings.style_statistic` offers it to
every front end, and every mode gets it through these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .losses import _outer_sum, blend_grams


@dataclass(frozen=True)
class Gram:
    """Gatys et al.'s Gram matrix, G(F) = F^T F / (H W C); with a guide, (F g)^T (F g) / (H W C) =
    sum_p m_p^2 f_p f_p^T / (sum(m^2) C) (`regions.py`). The loss is mean(rho(G(x) - G(s)))."""
    description = "Gram matrices, Gatys et al. (second moments of the features)"

    def sums(self, features: jax.Array, guide: jax.Array | None = None) -> dict:
        h, w, c = features.shape
        f = features if guide is None else features * guide
        return {"products": _outer_sum(f.reshape(h * w, c)), "count": h * w}

    def moments(self, sums: Mapping) -> jax.Array:
        # N * C passes 2**31 at 8192 px (67M positions x 64 channels): divide by a Python float, not an
        # int that JAX would take as int32
        return sums["products"] / float(sums["count"] * sums["products"].shape[0])

    def target(self, moments: jax.Array) -> jax.Array:
        return moments

    def loss(self, features: jax.Array, guide: jax.Array | None, target: jax.Array, rho: Callable) -> jax.Array:
        return jnp.mean(rho(self.moments(self.sums(features, guide)) - target))

    def scale(self, target: jax.Array, rho: Callable) -> jax.Array:
        return jnp.mean(rho(target))


# Eigenvalues of C_s^(1/2) C_x C_s^(1/2) under this fraction of the largest are float32 rounding: their
# slope in `trace_sqrt`'s derivative is taken at this floor.
EIGEN_FLOOR = 1e-6


@jax.custom_vjp
def trace_sqrt(m: jax.Array) -> jax.Array:
    """tr(M^(1/2)) of a symmetric positive semi-definite M, from its eigenvalues (negative ones, which
    are rounding, as 0)."""
    return jnp.sum(jnp.sqrt(jnp.maximum(jnp.linalg.eigvalsh(m), 0.0)))


def _trace_sqrt_fwd(m):
    # LAPACK's eigh: 0.05 s for 512 x 512 on this CPU, but 1.6-2.7 s when OpenBLAS's threads compete with
    # other processes on a loaded machine (OPENBLAS_NUM_THREADS=1 there; bench/LOG.md 25)
    values, vectors = jnp.linalg.eigh(m)
    return jnp.sum(jnp.sqrt(jnp.maximum(values, 0.0))), (values, vectors)


def _trace_sqrt_bwd(saved, cotangent):
    # d tr(M^(1/2)) = tr(M^(-1/2) dM) / 2: eigenvalues and eigenvectors only, none of the 1 / (l_i - l_j)
    # of a full square root's derivative, which blow up where eigenvalues meet (a dead ReLU's channels
    # all give 0). An eigenvalue under EIGEN_FLOOR of the largest (float32 rounding there is that
    # large) counts as that: its slope 1 / (2 sqrt(l)) would be noise.
    values, vectors = saved
    floor = jnp.maximum(EIGEN_FLOOR * jnp.max(values), 1e-30)
    slope = 0.5 / jnp.sqrt(jnp.maximum(values, floor))
    return (cotangent * (vectors * slope) @ jnp.swapaxes(vectors, -1, -2),)


trace_sqrt.defvjp(_trace_sqrt_fwd, _trace_sqrt_bwd)


@dataclass(frozen=True)
class W2:
    """The Wasserstein-2 distance between Gaussians fitted to the features (KB's `StyleLossW2`): a layer's
    positions as samples with mean mu and covariance C (weighted by g_p^2 / sum g^2 under a guide, the
    guided Gram's weights, so a region's statistics are a weighted mean and covariance):

        W2^2 = |mu_x - mu_s|^2 + tr(C_x) + tr(C_s) - 2 tr((C_s^(1/2) C_x C_s^(1/2))^(1/2))

    The layer's term is W2^2 / C (a mean over channels); "relative" divides it by the target's mean
    square, (|mu_s|^2 + tr(C_s)) / C, so it is the squared distance relative to the style's own size
    (invariant to a rescaling of the features). C_s^(1/2) is made once per target, in float64; the
    image's side differentiates only a trace of a square root (`trace_sqrt`), which is stable. The
    penalty `loss` does not apply (W2 is its own distance). Targets blend as a mixture: the means
    and second moments are averaged, so several style images blend as with Grams."""
    description = "Wasserstein-2 between Gaussians: each layer's feature mean and covariance"

    def sums(self, features: jax.Array, guide: jax.Array | None = None) -> dict:
        h, w, c = features.shape
        f = features.reshape(h * w, c)
        g = jnp.ones((h * w, 1), f.dtype) if guide is None else guide.reshape(h * w, 1)
        return {"mass": jnp.sum(g * g), "first": jnp.sum(g * g * f, axis=0), "second": _outer_sum(g * f)}

    def moments(self, sums: Mapping) -> dict:
        mass = jnp.maximum(sums["mass"], 1e-30)   # a mask with no mass at a layer: zeros, as with Grams
        return {"mean": sums["first"] / mass, "second": sums["second"] / mass}

    def target(self, moments: Mapping) -> dict:
        mean, second = np.asarray(moments["mean"], np.float64), np.asarray(moments["second"], np.float64)
        cov = second - np.outer(mean, mean)
        values, vectors = np.linalg.eigh((cov + cov.T) / 2)
        root = (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T
        return {"mean": jnp.asarray(mean, jnp.float32), "root": jnp.asarray(root, jnp.float32),
                "trace": jnp.float32(np.trace(cov)), "square": jnp.float32(np.trace(second) / len(mean))}

    def loss(self, features: jax.Array, guide: jax.Array | None, target: Mapping, rho: Callable) -> jax.Array:
        h, w, c = features.shape
        f = features.reshape(h * w, c)
        g = jnp.ones((h * w, 1), f.dtype) if guide is None else guide.reshape(h * w, 1)
        mass = jnp.maximum(jnp.sum(g * g), 1e-30)
        mean = jnp.sum(g * g * f, axis=0) / mass
        cov = _outer_sum((f - mean) * (g / jnp.sqrt(mass)))  # centred: no cancellation in float32
        root = target["root"]
        w2 = (jnp.sum(jnp.square(mean - target["mean"])) + jnp.trace(cov) + target["trace"]
              - 2 * trace_sqrt(root @ cov @ root))
        return w2 / c

    def scale(self, target: Mapping, rho: Callable) -> jax.Array:
        return target["square"]


GRAM = Gram()
# The statistics a front end offers by name (`settings.style_statistic`), the first the default.
STATISTICS = {"gram": GRAM, "w2": W2()}


def add_sums(a, b):
    """Two `sums` of disjoint positions as one (None: nothing yet)."""
    return b if a is None else jax.tree_util.tree_map(lambda u, v: u + v, a, b)


def blend(moments: Sequence[Any], weights: Sequence[float] | None = None) -> Any:
    """sum_k b_k M_k over the style images' moments (each part of them), b normalised to sum 1."""
    return jax.tree_util.tree_map(lambda *parts: blend_grams(parts, weights), *moments)


def style_loss(features: Mapping[str, jax.Array], targets: Mapping[str, Any], layer_weights: Mapping[str, float],
               norms: Mapping[str, jax.Array], rho: Callable, statistic=GRAM,
               guides: Mapping[str, jax.Array] | None = None) -> jax.Array:
    """sum_l w_l L_l(F_l(x); g_l, T_l) / norm_l with the statistic's layer loss L (Gram: mean(rho(G_l(x) -
    G_l(s)))), over the layers of `targets`; `guides` (none: every position alike) weight the positions."""
    return sum(layer_weights[name] * statistic.loss(features[name], None if guides is None else guides[name],
                                                    targets[name], rho) / norms[name] for name in targets)
