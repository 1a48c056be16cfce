"""Colour preservation (Gatys, Bethge, Hertzmann & Shechtman 2016, "Preserving color in neural
artistic style transfer").

- luminance: transfer on the luminance channel only, then put the content's chrominance back. The
  style's luminance is first matched to the content's mean and standard deviation, as in the paper.
- histogram: before optimising, give each style image the content's colour statistics with the
  affine map x -> A (x - mu_s) + mu_c, where A = Sigma_c^(1/2) Sigma_s^(-1/2) (the paper's
  "colour histogram matching", matching means and covariances).
All functions work on float images (H, W, 3) in [0, 1] on the host.
"""

from __future__ import annotations

import numpy as np

# YIQ (NTSC), as in the paper.
RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                       [0.595716, -0.274453, -0.321263],
                       [0.211456, -0.522591, 0.311135]])
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)


def rgb_to_yiq(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ RGB_TO_YIQ.T


def yiq_to_rgb(image: np.ndarray) -> np.ndarray:
    return image @ YIQ_TO_RGB.T


def luminance(image: np.ndarray) -> np.ndarray:
    """Y replicated to three channels, so that the network sees a grey image."""
    y = rgb_to_yiq(image)[..., :1]
    return np.clip(np.repeat(y, 3, axis=2), 0.0, 1.0).astype(np.float32)


def match_luminance(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The style's grey image with the content's luminance mean and standard deviation."""
    ys, yc = rgb_to_yiq(style)[..., 0], rgb_to_yiq(content)[..., 0]
    y = (ys - ys.mean()) * (yc.std() / max(ys.std(), 1e-8)) + yc.mean()
    return np.clip(np.repeat(y[..., None], 3, axis=2), 0.0, 1.0).astype(np.float32)


def combine_luminance(stylised: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The stylised image's luminance with the content's chrominance (I and Q)."""
    yiq = rgb_to_yiq(content)
    yiq[..., 0] = rgb_to_yiq(stylised)[..., 0]
    return np.clip(yiq_to_rgb(yiq), 0.0, 1.0).astype(np.float32)


def _sqrt_and_inv_sqrt(cov: np.ndarray, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    values, vectors = np.linalg.eigh(cov + eps * np.eye(3))
    values = np.maximum(values, eps)
    return (vectors * np.sqrt(values)) @ vectors.T, (vectors / np.sqrt(values)) @ vectors.T


def match_color(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The style image recoloured to the content's colour mean and covariance."""
    s = style.reshape(-1, 3).astype(np.float64)
    c = content.reshape(-1, 3).astype(np.float64)
    mu_s, mu_c = s.mean(0), c.mean(0)
    sqrt_c, _ = _sqrt_and_inv_sqrt(np.cov(c, rowvar=False))
    _, inv_sqrt_s = _sqrt_and_inv_sqrt(np.cov(s, rowvar=False))
    a = sqrt_c @ inv_sqrt_s
    out = (s - mu_s) @ a.T + mu_c
    return np.clip(out.reshape(style.shape), 0.0, 1.0).astype(np.float32)
