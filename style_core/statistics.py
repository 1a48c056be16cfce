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


GRAM = Gram()
# The statistics a front end offers by name (`settings.style_statistic`), the first the default.
STATISTICS = {"gram": GRAM}


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
