"""Levin et al.'s matting Laplacian (2008), matrix-free, as the photorealism term of Luan et al. (2017).

For an image I with N pixels and every 3x3 window k fully inside it (mean mu_k, colour covariance
Sigma_k, |w| = 9 pixels), the N x N matrix is

    M_ij = sum_{k : i, j in w_k} ( delta_ij - (1 + (I_i - mu_k)^T A_k (I_j - mu_k)) / |w| ),
    A_k  = (Sigma_k + eps / |w| * Id_3)^-1.

It is never built. Per window, with d_i = V_i - mean_k(V) and e_i = I_i - mu_k,
c_k = mean_k(e_i d_i) (the colour/V covariance) and a_k = A_k c_k (the window's affine colour map):

    (M p)_i = sum_{k : i in w_k} (d_i - e_i^T a_k)
    V^T M V = sum_k |w| (var_k(V) - c_k^T A_k c_k)      (the residual of the best local affine fit)

in O(N) with the 9 shifted slices of the image; the energy is taken as V . (M V), so that its gradient
2 M V costs no second product. The per-window statistics depend only on I and are
computed once per content image (`matting_stats`).

Precision: in a flat window Sigma_k ~ 0 and A_k ~ |w|/eps = 9e7 Id, while along the colours the window
does vary A_k is of order 1/variance; a float32 A_k would bury the second in the rounding of the first.
So the statistics, the Cholesky factor L_k L_k^T = Sigma_k + eps/|w| Id and its inverse T_k = L_k^-1 are
computed in float64 and only T_k is kept (float32): then c^T A c = |T c|^2 and A c = T^T (T c), whose
float32 rounding errors are relative to |T c|, not to |A|. Every product is taken on centred values.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .errors import StyleError

RADIUS = 1                      # 3x3 windows, as Levin et al. and Luan et al.
WINDOW = (2 * RADIUS + 1) ** 2  # |w|
DEFAULT_EPSILON = 1e-7


class MattingStats(NamedTuple):
    """What the matting Laplacian of one image needs, per window (a pytree: it can live in `aux`)."""
    guide: jax.Array   # (H, W, 3) the image I
    mean: jax.Array    # (H-2, W-2, 3) mu_k
    whiten: jax.Array  # (H-2, W-2, 6) T_k = L_k^-1 (lower triangle: t00 t10 t11 t20 t21 t22)

    @property
    def pixels(self) -> int:
        return self.guide.shape[0] * self.guide.shape[1]


def _windows(x: jax.Array) -> list[jax.Array]:
    """The 9 shifted (H-2, W-2, ...) slices: item s holds pixel (k + s) of each window k."""
    h, w = x.shape[0] - 2 * RADIUS, x.shape[1] - 2 * RADIUS
    return [x[dy:dy + h, dx:dx + w] for dy in range(2 * RADIUS + 1) for dx in range(2 * RADIUS + 1)]


@functools.partial(jax.jit, static_argnames="dtype")
def _stats(guide: jax.Array, eps: jax.Array, dtype) -> tuple[jax.Array, jax.Array]:
    """(mu, T) from a float64 guide (run with x64 enabled), returned as `dtype`."""
    shifted = _windows(guide)
    mu = sum(shifted) / WINDOW
    e = [s - mu for s in shifted]
    cov = lambda a, b: sum(v[..., a] * v[..., b] for v in e) / WINDOW  # noqa: E731
    reg = eps / WINDOW
    s00, s11, s22 = cov(0, 0) + reg, cov(1, 1) + reg, cov(2, 2) + reg
    s10, s20, s21 = cov(1, 0), cov(2, 0), cov(2, 1)
    # Cholesky of the 3x3 symmetric positive definite S = Sigma + eps/|w| Id, then T = L^-1.
    l00 = jnp.sqrt(s00)
    l10, l20 = s10 / l00, s20 / l00
    l11 = jnp.sqrt(s11 - l10 ** 2)
    l21 = (s21 - l20 * l10) / l11
    l22 = jnp.sqrt(s22 - l20 ** 2 - l21 ** 2)
    t00, t11, t22 = 1 / l00, 1 / l11, 1 / l22
    t10 = -l10 * t00 * t11
    t21 = -l21 * t11 * t22
    t20 = -(l20 * t00 + l21 * t10) * t22
    return mu.astype(dtype), jnp.stack([t00, t10, t11, t20, t21, t22], -1).astype(dtype)


def matting_stats(guide: np.ndarray, epsilon: float = DEFAULT_EPSILON, dtype=jnp.float32) -> MattingStats:
    """Per-window mean and whitening factor of `guide` ((H, W, 3) in [0, 1]), computed in float64.

    dtype float64 keeps them in float64 (a reference for float32; use the result with x64 enabled).
    """
    if not (np.isfinite(epsilon) and epsilon > 0):
        raise StyleError(f"matting epsilon must be a number > 0, not {epsilon!r}")
    guide = np.asarray(guide, dtype)
    if guide.ndim != 3 or guide.shape[2] != 3 or min(guide.shape[:2]) < 2 * RADIUS + 1:
        raise StyleError(f"the matting Laplacian needs an RGB image of at least {2 * RADIUS + 1} px "
                         f"a side, not shape {guide.shape}")
    with jax.enable_x64(True):
        mu, whiten = _stats(jnp.asarray(guide, jnp.float64), jnp.float64(epsilon), dtype)
        return MattingStats(jnp.asarray(guide), mu, whiten)


def _lower(t: jax.Array, v: jax.Array) -> jax.Array:
    """T v for T packed as (..., 6) and v (..., C, 3) (one 3-vector per channel C of the output)."""
    t = t[..., None, :]
    return jnp.stack([t[..., 0] * v[..., 0],
                      t[..., 1] * v[..., 0] + t[..., 2] * v[..., 1],
                      t[..., 3] * v[..., 0] + t[..., 4] * v[..., 1] + t[..., 5] * v[..., 2]], -1)


def _lower_transposed(t: jax.Array, u: jax.Array) -> jax.Array:
    """T^T u, same packing as `_lower`."""
    t = t[..., None, :]
    return jnp.stack([t[..., 0] * u[..., 0] + t[..., 1] * u[..., 1] + t[..., 3] * u[..., 2],
                      t[..., 2] * u[..., 1] + t[..., 4] * u[..., 2],
                      t[..., 5] * u[..., 2]], -1)


def _window_fit(stats: MattingStats, p: jax.Array):
    """Per window: the centred guide e_s and p d_s at each of the 9 positions, and c = mean(e d)."""
    e = [g - stats.mean for g in _windows(stats.guide)]
    shifted = _windows(p)
    mean_p = sum(shifted) / WINDOW
    d = [s - mean_p for s in shifted]
    c = sum(ds[..., :, None] * es[..., None, :] for es, ds in zip(e, d)) / WINDOW  # (h, w, C, 3)
    return e, d, c


def laplacian_product(stats: MattingStats, p: jax.Array) -> jax.Array:
    """M p for p of shape (H, W) or (H, W, C), each channel separately: O(N), never forming M."""
    squeeze = p.ndim == 2
    p = p[..., None] if squeeze else p
    e, d, c = _window_fit(stats, p)
    a = _lower_transposed(stats.whiten, _lower(stats.whiten, c))  # A c, (h, w, C, 3)
    h, w = p.shape[0] - 2 * RADIUS, p.shape[1] - 2 * RADIUS
    out = jnp.zeros_like(p)
    offsets = [(dy, dx) for dy in range(2 * RADIUS + 1) for dx in range(2 * RADIUS + 1)]
    for (dy, dx), es, ds in zip(offsets, e, d):
        out = out.at[dy:dy + h, dx:dx + w].add(ds - jnp.sum(es[..., None, :] * a, -1))
    return out[..., 0] if squeeze else out


@jax.custom_vjp
def matting_energy(stats: MattingStats, v: jax.Array) -> jax.Array:
    """sum_c V_c^T M V_c for an image v (H, W, C); its gradient, 2 M v, reuses the one product."""
    return jnp.sum(v * laplacian_product(stats, v))


def _energy_fwd(stats, v):
    mv = laplacian_product(stats, v)
    return jnp.sum(v * mv), (stats, mv)


def _energy_bwd(residual, g):
    stats, mv = residual
    return jax.tree_util.tree_map(jnp.zeros_like, stats), 2 * g * mv


matting_energy.defvjp(_energy_fwd, _energy_bwd)


def photo_loss(stats: MattingStats, x: jax.Array) -> jax.Array:
    """L_photo = sum_c V_c[x]^T M V_c[x] / N: the same weight means the same at every image size."""
    return matting_energy(stats, x) / stats.pixels
