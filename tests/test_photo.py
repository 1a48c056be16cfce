"""Photo mode: image mode plus the matting-Laplacian term, its schedule, smoothing and metrics."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from style_core.errors import StyleError
from style_core.photo import (PhotoSettings, guided_smooth, photo_image_settings, photo_metrics,
                              stylize_photo)
from style_core.transfer import stylize
from tests.synthetic import photo_like

FAST = dict(size=48, style_layers="relu1_1,relu2_1,relu3_1", content_layers="relu2_2", steps_per_call=10,
            iterations=20)


@pytest.fixture(scope="module")
def images():
    content = photo_like(36, 48)
    y, x = np.mgrid[0:64, 0:64] / 64
    style = np.stack([0.5 + 0.5 * np.sin(20 * x + 9 * y), 0.5 + 0.4 * np.cos(17 * y),
                      0.3 + 0.3 * np.sin(11 * (x + y))], -1).astype(np.float32)  # bold stripes
    return content, style


def photo(content, style, weights, **kw):
    image_kw = {k: kw.pop(k) for k in list(kw) if k in FAST or k in ("scales", "preserve_color", "optimizer")}
    settings = PhotoSettings(photo_image_settings(**{**FAST, **image_kw}), **kw)
    events = list(stylize_photo(content, [style], settings, weights))
    return events, events[-1].result


def test_photo_weight_zero_is_exactly_image_mode(images, vgg19_weights):
    content, style = images
    _, result = photo(content, style, vgg19_weights, photo_weight=0)
    plain = list(stylize(content, [style], photo_image_settings(**FAST), vgg19_weights))[-1].result
    assert np.array_equal(result.image, plain.image)
    assert "photo" not in result.stages[0].final_losses


def test_photo_result_is_more_photo_like_than_image_mode(images, vgg19_weights):
    """With L-BFGS: on these random weights Adam's first step (+-lr on every pixel) raises the matting
    term 20x, and 20 steps do not bring the loss back below its start, so the best image seen, the
    content, would (rightly) be the result."""
    content, style = images
    _, plain = photo(content, style, vgg19_weights, photo_weight=0, optimizer="lbfgs")
    events, real = photo(content, style, vgg19_weights, optimizer="lbfgs")
    assert real.metrics["affine_residual"] < 0.1 * plain.metrics["affine_residual"]
    assert real.metrics["edge_ssim"] > plain.metrics["edge_ssim"] + 0.1
    # and it is not the content returned unchanged: the style loss fell, the colours moved
    stage = real.stages[0]
    assert stage.final_losses["style"] < stage.initial_losses["style"]
    assert np.abs(real.image - content).mean() > 0.003
    steps = [e.completed for e in events]
    assert steps == sorted(steps) and steps[-1] == 20 and events[-1].total == 20


def test_a_run_that_cannot_beat_the_content_keeps_it_without_calling_it_diverged(images, vgg19_weights):
    """The case above with Adam and the research deck's weights (its sums over 512x512 pixels, per
    pixel): its loss ends at about twice its start (the content), which is kept, and said so; a run
    that starts from a good image and ends a little above it has not diverged (it was reported as
    "diverged" before)."""
    content, style = images
    deck = 512 * 512
    settings = PhotoSettings(photo_image_settings(**FAST, normalization="paper", style_weight=1e6,
                                                  tv_weight=0.01 * 3 * deck), photo_weight=100.0 * deck)
    result = list(stylize_photo(content, [style], settings, vgg19_weights))[-1].result
    reason = result.stages[0].stop_reason
    assert reason.startswith("finished (kept step 0's image") and "diverged" not in reason
    np.testing.assert_array_equal(result.image, np.clip(content, 0, 1))


def test_two_stages_refine_the_plain_stylisation(images, vgg19_weights):
    content, style = images
    events, result = photo(content, style, vgg19_weights, two_stage=True, refine_iterations=10, scales=2,
                           size=64)
    plain = list(stylize(content, [style], photo_image_settings(**{**FAST, "scales": 2, "size": 64}),
                         vgg19_weights))[-1].result
    assert len(result.stages) == 2 and np.array_equal(result.plain.image, plain.image)
    # each stage's coarser scale takes a quarter of its steps, rounded up: (5 + 20) + (3 + 10)
    assert "photo" in result.stages[1].final_losses and result.report()["iterations"] == 38
    assert [e.completed for e in events][-1] == 38 and events[-1].total == 38
    assert result.metrics["affine_residual"] < photo_metrics(content, plain.image)["affine_residual"]


def test_label_pairs_take_each_region_from_its_own_part_of_the_style_photo(vgg19_weights):
    """Luan et al.'s sky to sky: a style photo whose upper half (labelled sky) is yellow-green and
    lower half (land) blue-violet, on a content whose blue sky starts nearer the land's colours and
    green land nearer the sky's. Each region's style term falls, and each takes its own part's colours."""
    from style_core.regions import label_regions
    content = photo_like(36, 48)
    y, x = np.mgrid[0:48, 0:48] / 48
    stripes = 0.15 * np.sin(17 * x + 5 * np.sin(7 * y))[..., None]
    upper, lower = np.array([0.6, 0.8, 0.1]), np.array([0.45, 0.35, 0.9])
    style = np.clip(np.where(y[..., None] < 0.5, upper, lower) + stripes, 0, 1).astype(np.float32)
    cy, cx = np.mgrid[0:36, 0:48] / 48
    ground = cy > 0.55 + 0.05 * np.sin(9 * cx)                        # photo_like's hill line
    sky, land = (80, 160, 255), (40, 200, 60)
    content_labels = np.where(ground[..., None], land, sky).astype(np.uint8)
    style_labels = np.where(y[..., None] < 0.5, sky, land).astype(np.uint8)
    regions = label_regions(content_labels, [style_labels], 1)      # ordered by colour: land, then sky
    assert np.array_equal(regions[0].mask, ground) and np.array_equal(regions[1].style_mask[:24], np.ones((24, 48)))
    deck = 512 * 512   # on random weights: the research deck's balance (per pixel), a style weight of 1e8
    settings = PhotoSettings(photo_image_settings(**{**FAST, "iterations": 60}, optimizer="lbfgs",
                                                  normalization="paper", style_weight=1e8,
                                                  tv_weight=0.01 * 3 * deck), photo_weight=100.0 * deck)
    result = list(stylize_photo(content, [style], settings, vgg19_weights, regions=regions))[-1].result
    parts = {"sky": style[:24].reshape(-1, 3).mean(0), "land": style[24:].reshape(-1, 3).mean(0)}
    d = {(h, p, when): float(np.linalg.norm(image[where].mean(0) - parts[p]))
         for h, where in (("sky", ~ground), ("land", ground)) for p in parts
         for when, image in (("before", content), ("after", result.image))}
    losses = dict(zip(("land", "sky"), result.region_losses))
    figures = ", ".join(f"{h}-to-{p} part {d[h, p, 'before']:.3f} -> {d[h, p, 'after']:.3f}"
                        for h, p in (("sky", "sky"), ("sky", "land"), ("land", "land"), ("land", "sky")))
    terms = ", ".join(f"{k} {losses[k]['initial']:.3g} -> {losses[k]['final']:.3g}" for k in ("sky", "land"))
    print(f"\nphoto mode, label pairs: style term {terms}; mean colour distance (content -> output) {figures}; "
          f"affine residual {result.metrics['affine_residual']:.4f}")
    assert all(r["final"] < 0.5 * r["initial"] for r in result.region_losses)
    stage = result.stages[0]   # the regions' terms are what the style term sums
    for when, values in (("initial", stage.initial_losses), ("final", stage.final_losses)):
        assert sum(r[when] for r in result.region_losses) == pytest.approx(values["style"], rel=1e-4)
    for own, other in (("sky", "land"), ("land", "sky")):   # starts nearer the other part, ends nearer its own
        assert d[own, other, "before"] < d[own, own, "before"]
        assert d[own, own, "after"] < 0.5 * d[own, other, "after"]
    assert result.report()["region_style_losses"] == [dict(r) for r in result.region_losses]
    assert result.metrics["affine_residual"] < 0.01     # and still a photo


def test_content_and_style_of_very_different_sizes_and_shapes(vgg19_weights):
    content = photo_like(24, 96)                     # 4:1 landscape
    style = photo_like(200, 50, seed=2)              # 1:4 portrait, larger
    _, result = photo(content, style, vgg19_weights, size=96, iterations=5)
    assert result.image.shape == (24, 96, 3) and np.isfinite(result.image).all()


@pytest.mark.parametrize("changes, message", [
    (dict(epsilon=0.0), "epsilon"), (dict(epsilon=-1e-7), "epsilon"), (dict(photo_weight=-1), "photorealism"),
    (dict(photo_weight=float("inf")), "photorealism"), (dict(smooth_radius=0), "radius"),
    (dict(refine_iterations=-3), "refine"), (dict(smooth_eps=0), "smoothing epsilon")])
def test_bad_settings_are_refused_in_one_line(changes, message):
    with pytest.raises(StyleError, match=message):
        PhotoSettings(**changes)
    with pytest.raises(StyleError, match="tv weight"):
        photo_image_settings(tv_weight=-1)


def test_guided_smoothing_removes_painterly_noise_and_keeps_the_content_edges():
    content = photo_like(192, 256)
    clean = np.clip(0.7 * content[..., ::-1] + 0.2, 0, 1)     # a recolouring: locally affine
    rng = np.random.default_rng(0)
    strokes = cv2.GaussianBlur(rng.standard_normal(content.shape).astype(np.float32), (0, 0), 2)
    painted = np.clip(clean + 0.08 * strokes / strokes.std(), 0, 1)
    smoothed = guided_smooth(painted, content)
    assert np.abs(smoothed - clean).mean() < 0.5 * np.abs(painted - clean).mean()
    assert photo_metrics(content, smoothed)["edge_ssim"] > photo_metrics(content, painted)["edge_ssim"] + 0.2


def test_metrics_tell_a_recolouring_from_noise():
    content = photo_like(64, 80)
    same = photo_metrics(content, content)
    assert same["edge_ssim"] == pytest.approx(1.0) and same["affine_residual"] < 1e-3
    recoloured = photo_metrics(content, np.clip(content[..., ::-1] * 0.6 + 0.3, 0, 1))
    assert recoloured["affine_residual"] < 1e-2 and recoloured["edge_ssim"] > 0.9
    noise = photo_metrics(content, np.random.default_rng(0).random(content.shape).astype(np.float32))
    assert noise["affine_residual"] > 0.5 and noise["edge_ssim"] < 0.3


def test_the_report_names_the_stage_that_diverged_as_the_result_does():
    """A two-stage run whose first stage diverged: the report's stop reason is the result's (the first
    stage's, named), not the last stage's "finished"."""
    from style_core.photo import PhotoResult
    from style_core.transfer import StyleResult
    stage = StyleResult(np.zeros((4, 4, 3), np.float32), photo_image_settings(), "random", False, {}, {}, [], 5,
                        1.0, "diverged at step 5")
    result = PhotoResult(stage.image, stage.image, PhotoSettings(), (stage, replace(stage, stop_reason="finished")),
                         {}, 2.0)
    assert result.stop_reason == result.report()["stop_reason"] == "diverged at step 5 (stage 1 of 2)"
