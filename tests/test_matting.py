"""The matrix-free matting Laplacian against a float64 sparse matrix built from Levin et al.'s formula."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

from style_core.errors import StyleError
from style_core.matting import laplacian_product, matting_energy, matting_stats, photo_loss
from tests.synthetic import photo_like


def levin_laplacian(image: np.ndarray, eps: float) -> sp.csr_matrix:
    """M_ij = sum_{k: i,j in w_k} (delta_ij - (1 + (I_i - mu_k)^T (Sigma_k + eps/9 Id)^-1 (I_j - mu_k)) / 9),
    over every 3x3 window inside the image, in float64, one window at a time."""
    h, w, _ = image.shape
    index = np.arange(h * w).reshape(h, w)
    rows, cols, values = [], [], []
    for y in range(h - 2):
        for x in range(w - 2):
            colours = image[y:y + 3, x:x + 3].reshape(9, 3).astype(np.float64)
            ids = index[y:y + 3, x:x + 3].ravel()
            centred = colours - colours.mean(0)
            inverse = np.linalg.inv(centred.T @ centred / 9 + eps / 9 * np.eye(3))
            block = np.eye(9) - (1 + centred @ inverse @ centred.T) / 9
            rows.append(np.repeat(ids, 9))
            cols.append(np.tile(ids, 9))
            values.append(block.ravel())
    return sp.coo_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(h * w, h * w)).tocsr()  # duplicates (shared windows) are summed


def per_channel(matrix: sp.csr_matrix, v: np.ndarray) -> np.ndarray:
    return np.stack([matrix @ v[..., c].ravel() for c in range(v.shape[2])], -1).reshape(v.shape)


@pytest.fixture(scope="module", params=[1e-7, 1e-3])
def case(request):
    rng = np.random.default_rng(0)
    image, v = rng.random((12, 15, 3)), rng.random((12, 15, 3))
    return request.param, image, v, levin_laplacian(image, request.param)


def test_product_and_quadratic_form_match_levins_matrix(case):
    eps, image, v, m = case
    stats = matting_stats(image, eps)
    reference = per_channel(m, v)
    ours = np.asarray(laplacian_product(stats, jnp.asarray(v, jnp.float32)))
    assert np.abs(ours - reference).max() <= 1e-5 * np.abs(reference).max()
    quadratic = sum(v[..., c].ravel() @ m @ v[..., c].ravel() for c in range(3))
    assert float(matting_energy(stats, jnp.asarray(v, jnp.float32))) == pytest.approx(quadratic, rel=1e-5)
    # one channel at a time, as an (H, W) array
    assert np.allclose(np.asarray(laplacian_product(stats, jnp.asarray(v[..., 1], jnp.float32))),
                       reference[..., 1], atol=1e-5 * np.abs(reference).max())


def test_gradient_is_twice_the_product(case):
    eps, image, v, m = case
    stats = matting_stats(image, eps)
    grad = np.asarray(jax.grad(lambda x: matting_energy(stats, x))(jnp.asarray(v, jnp.float32)))
    assert np.abs(grad - 2 * per_channel(m, v)).max() <= 2e-5 * np.abs(per_channel(m, v)).max()
    # and through photo_loss inside jit, divided by the number of pixels
    grad_loss = jax.jit(jax.grad(lambda x: photo_loss(stats, x)))(jnp.asarray(v, jnp.float32))
    assert np.allclose(np.asarray(grad_loss) * 12 * 15, grad, rtol=1e-5, atol=1e-6)


def test_laplacian_has_constants_in_its_null_space_is_symmetric_and_psd(case):
    eps, image, _, m = case
    assert np.abs(m @ np.ones(m.shape[0])).max() < 1e-12                # the reference itself
    assert abs(m - m.T).max() < 1e-12
    assert np.linalg.eigvalsh(m.toarray()).min() > -1e-10
    stats = matting_stats(image, eps)
    ones = np.asarray(laplacian_product(stats, jnp.ones((12, 15, 3))))
    assert np.abs(ones).max() < 1e-5                                     # M 1 = 0
    rng = np.random.default_rng(1)
    u, w = (jnp.asarray(rng.standard_normal((12, 15)), jnp.float32) for _ in range(2))
    uMw = float(jnp.sum(u * laplacian_product(stats, w)))
    wMu = float(jnp.sum(w * laplacian_product(stats, u)))
    assert uMw == pytest.approx(wMu, rel=1e-4)                           # symmetric
    for seed in range(5):                                                # x^T M x >= 0
        x = jnp.asarray(np.random.default_rng(seed).standard_normal((12, 15, 3)), jnp.float32)
        assert float(matting_energy(stats, x)) >= 0


def test_an_image_affine_in_the_guide_costs_only_the_regulariser():
    """Levin's energy is min over a, b of sum (V - a.I - b)^2 + eps |a|^2: for V = a.I + b it is about
    eps |a|^2 per window, and with eps -> 0 the product vanishes."""
    image = photo_like(40, 50)
    v = 0.5 * image[..., ::-1] - 0.2 * image + 0.3  # every channel an affine map of the colours
    stats = matting_stats(image, 1e-7)
    assert np.abs(np.asarray(laplacian_product(stats, jnp.asarray(v)))).max() < 1e-3
    rng = np.random.default_rng(0)
    noisy = v + 0.05 * rng.standard_normal(v.shape).astype(np.float32)
    assert float(matting_energy(stats, jnp.asarray(noisy))) > 1e3 * float(matting_energy(stats, jnp.asarray(v)))


def test_float32_product_on_a_700px_photo_is_within_half_a_percent_of_float64():
    image = photo_like(700, 700)
    rng = np.random.default_rng(1)
    p = np.clip(0.8 * image + 0.1 + 0.05 * rng.standard_normal(image.shape), 0, 1)
    ours = np.asarray(laplacian_product(matting_stats(image, 1e-7), jnp.asarray(p, jnp.float32)))
    with jax.enable_x64(True):
        reference = np.asarray(laplacian_product(matting_stats(image, 1e-7, dtype=jnp.float64),
                                                 jnp.asarray(p, jnp.float64)))
    assert reference.dtype == np.float64
    assert np.abs(ours - reference).max() < 0.005 * np.abs(reference).max()


def test_float64_matrix_free_product_matches_levin_to_float64_precision():
    """The 700 px test's reference is the same algorithm in float64: here it meets Levin's matrix."""
    rng = np.random.default_rng(3)
    image, p = photo_like(14, 17, seed=3).astype(np.float64), rng.random((14, 17, 3))
    m = levin_laplacian(image, 1e-7)
    with jax.enable_x64(True):
        ours = np.asarray(laplacian_product(matting_stats(image, 1e-7, dtype=jnp.float64), jnp.asarray(p)))
    assert np.abs(ours - per_channel(m, p)).max() < 1e-9 * np.abs(per_channel(m, p)).max()


@pytest.mark.parametrize("eps", [0.0, -1e-7, float("nan")])
def test_epsilon_must_be_positive(eps):
    with pytest.raises(StyleError, match="epsilon"):
        matting_stats(np.zeros((8, 8, 3)), eps)


def test_too_small_or_grey_images_are_refused():
    with pytest.raises(StyleError, match="at least 3 px"):
        matting_stats(np.zeros((2, 8, 3)))
    with pytest.raises(StyleError, match="RGB"):
        matting_stats(np.zeros((8, 8)))
