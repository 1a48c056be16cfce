"""The judge's figures at their ends: a result that is the photo, one that is the painting; and its
Gram distance against a float64 numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

from style_core import judge as J
from style_core.weights import load_weights


@pytest.fixture(scope="module")
def vgg16(weight_files):
    return load_weights("vgg16", weight_files("vgg16"))


def test_the_photo_scores_no_style_and_all_its_structure_the_painting_all_style(vgg16):
    from tests.synthetic import photo_like
    # a photo-like scene and a noise "painting" of its shape (the judge sizes the painting as runs do)
    photo, painting = photo_like(48, 64, seed=1), np.random.default_rng(3).random((48, 64, 3)).astype(np.float32)
    same = J.judge(vgg16, photo, [painting], photo)
    assert same["style_match"] == pytest.approx(0, abs=1e-6)
    assert same["structure"] == pytest.approx(1, abs=1e-6) and same["content_distance"] == pytest.approx(0, abs=1e-6)
    other = J.judge(vgg16, photo, [painting], painting)
    assert other["style_match"] == pytest.approx(1, abs=1e-5)
    assert other["structure"] < 0.5 and other["content_distance"] > 0.1


def test_gram_distance_is_the_relative_frobenius_norm_in_float64():
    rng = np.random.default_rng(0)
    feats = {name: rng.random((5, 6, 4)) for name in J.JUDGE_STYLE_LAYERS}
    other = {name: rng.random((5, 6, 4)) for name in J.JUDGE_STYLE_LAYERS}
    grams_a, grams_b = J._grams(feats), J._grams(other)
    expected = np.mean([np.sqrt(((np.einsum("hwc,hwd->cd", feats[k], feats[k]) / 120
                                  - np.einsum("hwc,hwd->cd", other[k], other[k]) / 120) ** 2).sum())
                        / np.sqrt(((np.einsum("hwc,hwd->cd", other[k], other[k]) / 120) ** 2).sum())
                        for k in J.JUDGE_STYLE_LAYERS])
    assert J._gram_distance(grams_a, grams_b) == pytest.approx(expected, rel=1e-12)
