"""How stylised a result is, and how much of the photo it keeps: figures that a run cannot win by
lowering its own loss, because they measure what the objective does not optimise.

- `style_match`: Gram matrices on the trained network's *held-out* layers (the second or third ReLU of
  each block, which the default objective never sees: relu1_2, relu2_2, relu3_3, relu4_3). For each,
  the relative distance d(x) = ||G(x) - G(s)||_F / ||G(s)||_F; `style_match` = 1 - mean d(x) / mean
  d(c): 0 where the result has the photo's statistics, 1 where it has the painting's.
- `structure`: Pearson correlation of the result's and the photo's grey levels, band-passed (a
  Gaussian blur of 1/128 of the longest side less one of 1/32): the photo's shapes and edges (a
  building, a ridge line) without colour, brush texture or the overall light, which a repainted
  image keeps too. At 256 px: 0.9 for a light touch of style, 0.7-0.8 for a classic stylisation,
  0.45-0.55 where the painting's objects have come in, 0.15 where its layout has taken over
  (bench/LOG.md 22; a plain blur's correlation scored all of these 0.6-0.94, too close to judge).
- `content_distance`: ||F(x) - F(c)|| / ||F(c)|| at relu3_3, a held-out layer (0 = the photo).

Only meaningful with trained weights (on random ones every figure is about noise statistics).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .backbones import feature_extractor
from .color import rgb_to_yiq
from .images import resize

JUDGE_STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
JUDGE_CONTENT_LAYER = "relu3_3"


def _features(weights, image: np.ndarray) -> dict[str, np.ndarray]:
    layers = tuple(dict.fromkeys(JUDGE_STYLE_LAYERS + (JUDGE_CONTENT_LAYER,)))
    out = feature_extractor(weights.backbone, layers)(weights.variables, np.asarray(image, np.float32)[None])
    return {k: np.asarray(v[0], np.float64) for k, v in out.items()}


def _grams(features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    grams = {}
    for name in JUDGE_STYLE_LAYERS:
        f = features[name].reshape(-1, features[name].shape[-1])
        grams[name] = f.T @ f / f.size
    return grams


def _gram_distance(a: dict, b: dict) -> float:
    return float(np.mean([np.linalg.norm(a[k] - b[k]) / max(np.linalg.norm(b[k]), 1e-12) for k in a]))


def _band_passed_grey(image: np.ndarray) -> np.ndarray:
    import cv2
    grey = rgb_to_yiq(np.asarray(image, np.float32))[..., 0].astype(np.float32)
    side = max(image.shape[:2])
    return cv2.GaussianBlur(grey, (0, 0), side / 128) - cv2.GaussianBlur(grey, (0, 0), side / 32)


def structure(photo: np.ndarray, result: np.ndarray) -> float:
    a, b = _band_passed_grey(resize(photo, *result.shape[:2])).ravel(), _band_passed_grey(result).ravel()
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0


def judge(weights, photo: np.ndarray, styles: Sequence[np.ndarray], result: np.ndarray) -> dict[str, float]:
    """The three figures of the module's doc for `result`, against `photo` and the (first) style image,
    which is resized to the result's longest side as the runs do."""
    from .images import resize_longest
    photo = resize(photo, *result.shape[:2])
    style = resize_longest(styles[0], max(result.shape[:2]))
    f_x, f_c = _features(weights, result), _features(weights, photo)
    g_x, g_c, g_s = _grams(f_x), _grams(f_c), _grams(_features(weights, style))
    start = _gram_distance(g_c, g_s)
    return {"style_match": 1 - _gram_distance(g_x, g_s) / start if start > 0 else 0.0,
            "structure": structure(photo, result),
            "content_distance": float(np.linalg.norm(f_x[JUDGE_CONTENT_LAYER] - f_c[JUDGE_CONTENT_LAYER])
                                      / max(np.linalg.norm(f_c[JUDGE_CONTENT_LAYER]), 1e-12))}
