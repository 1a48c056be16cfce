"""Large mode: equal to image mode on one tile, seamless, one style everywhere, resumable, sharded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from style_core import large
from style_core.errors import StyleError
from style_core.large import LargeSettings, stylize_large, tiled_targets, tiled_guided_targets
from style_core.objective import region_targets
from style_core.regions import Region
from style_core.settings import ImageSettings
from style_core.tiling import midlines, seam_ratio, seam_ratios
from style_core.transfer import style_targets, stylize

LAYERS = dict(style_layers="relu1_1,relu2_1,relu3_1", content_layers="relu2_2", steps_per_call=10)
ROOT = Path(__file__).resolve().parent.parent
# The default optimizer, far enough along that each tile's style loss has settled.
CONVERGED = {"optimizer": "lbfgs", "iterations": 12, "style_weight": 1e6}


def texture(shape, seed=0):
    """A statistically even image, so that a seam statistic is not swamped by what the image shows."""
    noise = np.random.default_rng(seed).random((*shape, 3))
    return np.clip(gaussian_filter(noise, (1.5, 1.5, 0)) * 1.5 - 0.25, 0, 1).astype(np.float32)


def run_large(content, styles, weights, job=None, resume=False, **kw):
    image_kw = {**LAYERS, "optimizer": "adam", "iterations": 12, "style_weight": 1e7, **kw.pop("image", {})}
    regions = kw.pop("regions", ())
    settings = LargeSettings(ImageSettings(**image_kw), **kw)
    events = list(stylize_large(content, styles, settings, weights, job=job, resume=resume, regions=regions))
    return events, events[-1].result


@pytest.mark.parametrize("init", ["content", "noise"])
def test_one_tile_without_a_global_pass_is_image_mode(init, rng_images, vgg19_weights):
    content, style = rng_images
    kw = {**LAYERS, "optimizer": "adam", "iterations": 8, "init": init, "seed": 3, "style_weight": 1e7}
    _, result = run_large(content, [style], vgg19_weights, size=40, tile=48, overlap=8, base_size=0,
                          image=kw)
    image = list(stylize(content, [style], ImageSettings(size=40, **kw), vgg19_weights))[-1].result
    assert len(result.layout) == 1 and result.tiles_resumed == 0
    np.testing.assert_array_equal(result.image, image.image)


def soft_halves(shape, ramp=8):
    """(left, right) masks of an output `shape`: the halves, with a `ramp` px soft seam between them."""
    x = np.arange(shape[1]) + 0.5   # pixel centres: the two masks cover exactly half each
    left = np.clip((shape[1] / 2 + ramp / 2 - x) / ramp, 0, 1) * np.ones((shape[0], 1))
    return left.astype(np.float32), (1 - left).astype(np.float32)


def test_one_tile_with_masks_is_image_mode(rng_images, vgg19_weights):
    """Two regions on one tile covering the output (masks at the output's size, no global pass): large
    mode's targets for the canvas, its cut of the masks and its start are image mode's, bit for bit."""
    content, style = rng_images
    style_mask = np.zeros((36, 36), np.float32)
    style_mask[:, :20] = 1
    left, right = soft_halves((33, 40))
    regions = [Region(left, 0), Region(right, 1, style_mask)]
    kw = {**LAYERS, "optimizer": "adam", "iterations": 8, "seed": 3, "style_weight": 1e7}
    styles = [style, style[::-1].copy()]
    settings = LargeSettings(ImageSettings(**kw), size=40, tile=48, overlap=8, base_size=0)
    result = list(stylize_large(content, styles, settings, vgg19_weights, regions=regions))[-1].result
    image = list(stylize(content, styles, ImageSettings(size=40, **kw), vgg19_weights, regions=regions))[-1].result
    assert len(result.layout) == 1 and result.image.shape == (33, 40, 3)
    np.testing.assert_array_equal(result.image, image.image)
    assert result.report()["regions"] == image.report()["regions"]


def test_an_output_that_fits_one_pass_is_the_global_pass(rng_images, vgg19_weights):
    content, style = rng_images
    _, result = run_large(content, [style], vgg19_weights, size=32, tile=48, overlap=8)
    image = list(stylize(content, [style], ImageSettings(size=32, **LAYERS, optimizer="adam",
                                                          iterations=12, style_weight=1e7),
                         vgg19_weights))[-1].result
    np.testing.assert_array_equal(result.image, image.image)
    assert result.stop_reason == "finished in one pass"


def test_style_targets_in_pieces_match_one_pass(vgg19_weights):
    settings = ImageSettings(size=64, **LAYERS)
    image = texture((150, 170), seed=1)
    whole = style_targets(settings, vgg19_weights.variables, [image])
    pieces = tiled_targets(settings, vgg19_weights.variables, image, core=48, margin=32)
    for name in settings.style_layers:  # the margin covers these layers' receptive fields
        np.testing.assert_allclose(pieces[name], whole[name], rtol=2e-4, atol=1e-6 * float(jnp.abs(whole[name]).max()))
    small = tiled_targets(settings, vgg19_weights.variables, image[:60, :60], core=48, margin=32)
    np.testing.assert_array_equal(small["relu2_1"], style_targets(settings, vgg19_weights.variables,
                                                                  [image[:60, :60]])["relu2_1"])


def test_guided_style_targets_in_pieces_match_one_pass(vgg19_weights):
    """Style masks cut with the pieces (the corner misses most of them): each piece's features are
    weighted by the mask over the whole image and the sum divided by its whole mass, as in one pass."""
    settings = ImageSettings(size=64, **LAYERS)
    image = texture((150, 170), seed=1)
    corner = np.zeros((75, 85), np.float32)      # half the image's size: brought to its grid
    corner[:30, :40] = 1
    masks = [corner, None, soft_halves((150, 170), ramp=30)[1]]
    pieces = tiled_guided_targets(settings, vgg19_weights.variables, image, masks, core=48, margin=32)
    whole = region_targets(settings, vgg19_weights.variables, [image],
                           [Region(np.ones((1, 1)), 0, m) for m in masks])
    for got, want in zip(pieces, whole):
        for name in settings.style_layers:
            np.testing.assert_allclose(got[name], want[name], rtol=2e-4,
                                       atol=1e-6 * float(jnp.abs(want[name]).max()))
    assert float(jnp.abs(pieces[0]["relu1_1"] - pieces[1]["relu1_1"]).max()) > 0.01 * float(
        jnp.abs(pieces[1]["relu1_1"]).max())   # the corner's statistics are its own, far beyond the tolerance


@pytest.fixture(scope="module")
def tiled_run(vgg19_weights, tmp_path_factory):
    """A 3x3 grid of tiles with a global pass, kept in a job folder."""
    job = tmp_path_factory.mktemp("large") / "job"
    content, style = texture((72, 96)), texture((60, 60), seed=5)[..., ::-1].copy()
    events, result = run_large(content, [style], vgg19_weights, job=job, size=96, tile=40, overlap=12,
                               base_size=48, image=CONVERGED)
    return content, style, job, events, result


def test_tiles_leave_no_seams_and_share_one_style(tiled_run, vgg19_weights):
    content, style, job, events, result = tiled_run
    assert len(result.layout) == 9 and result.image.shape == (72, 96, 3)
    assert np.abs(result.image - content).mean() > 0.02  # it was stylised
    assert seam_ratio(result.image, result.layout) < 1.1
    styles = [t["style"] for t in result.tile_losses]
    assert max(styles) < 2 * min(styles)
    # the bench's measure finds the optimiser's own figure for each tile (the same targets, at the
    # output's scale), given a canvas holding that tile as it was optimised
    for t in result.layout[::4]:
        own = result.image.copy()
        own[t.slices] = np.load(job / "tiles" / f"{t.index:05d}.npz")["image"]
        measured = large.tile_style_losses(own, content, [style], result.settings, vgg19_weights, [t])
        assert measured[0] == pytest.approx(styles[t.index], rel=1e-3)
    # the statistic does see a seam: a tile that disagrees by a small step
    stepped = result.image.copy()
    stepped[result.layout[4].slices] += 0.03
    assert max(seam_ratios(stepped, result.layout)) > 1.5
    # progress: the canvas fills in tile by tile, with a time estimate once a tile is timed
    finished = [e for e in events if e.stage == "tiles" and e.preview is not None]
    assert [e.completed for e in finished] == list(range(1, 10))
    assert all(e.eta is not None for e in finished) and events[-1].done


def test_two_regions_across_tiles_leave_no_seams_and_keep_their_own_palettes(vgg19_weights):
    """The tiled run above with a reddish style on the left half and a bluish one on the right (an 8 px
    soft seam through the middle column of tiles; the outer columns see one region each, the other
    weighs 0 there): the seams stay within the one-style figure, each half takes its own palette."""
    from tests.test_regions import BLUE, RED
    content = texture((72, 96))
    left, right = soft_halves((72, 96))
    _, result = run_large(content, [RED, BLUE], vgg19_weights, size=96, tile=40, overlap=12, base_size=48,
                          image=CONVERGED, regions=[Region(left, 0), Region(right, 1)])
    mean = lambda a: a.reshape(-1, 3).mean(0)  # noqa: E731
    halves = {"left": mean(result.image[:, :40]), "right": mean(result.image[:, 56:])}
    styles = {"red": mean(RED), "blue": mean(BLUE)}
    d = {(h, s): float(np.linalg.norm(halves[h] - styles[s])) for h in halves for s in styles}
    seams, worst = seam_ratio(result.image, result.layout), max(seam_ratios(result.image, result.layout))
    reference = seam_ratio(result.image, midlines((72, 96), result.layout))
    print(f"\nlarge, two regions on 9 tiles: seam ratio {seams:.3f} (max edge {worst:.3f}; midlines "
          f"{reference:.3f}); mean colour distance left-red {d['left', 'red']:.3f}, left-blue "
          f"{d['left', 'blue']:.3f}, right-blue {d['right', 'blue']:.3f}, right-red {d['right', 'red']:.3f}")
    assert len(result.layout) == 9 and all(np.isfinite(t["total"]) for t in result.tile_losses)
    assert seams < 1.1
    assert d["left", "red"] < 0.5 * d["left", "blue"] and d["right", "blue"] < 0.5 * d["right", "red"]
    assert result.report()["regions"][1] == {"style": 1, "coverage": 0.5, "style_coverage": 1.0}


def test_resume_optimises_no_finished_tile(tiled_run, vgg19_weights, monkeypatch, tmp_path):
    content, style, _, _, whole = tiled_run
    job = tmp_path / "job"
    settings = dict(size=96, tile=40, overlap=12, base_size=48)
    gen = stylize_large(content, [style], LargeSettings(ImageSettings(**LAYERS, **CONVERGED), **settings),
                        vgg19_weights, job=job)
    for event in gen:
        if event.completed == 4:
            gen.close()  # the user pressed Stop
            break
    assert len(list((job / "tiles").glob("*.npz"))) == 4 and (job / "base.npz").exists()
    with pytest.raises(StyleError, match="holds an earlier job: pass `resume`"):
        run_large(content, [style], vgg19_weights, job=job, image=CONVERGED, **settings)
    calls = []
    real = large.descend
    monkeypatch.setattr(large, "descend", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(large, "stylize", lambda *a, **k: pytest.fail("the global pass ran again"))
    _, resumed = run_large(content, [style], vgg19_weights, job=job, resume=True, image=CONVERGED, **settings)
    assert resumed.tiles_resumed == 4 and len(calls) == 5
    np.testing.assert_array_equal(resumed.image, whole.image)
    with pytest.raises(StyleError, match="holds a job with other inputs or settings"):
        run_large(content, [style], vgg19_weights, job=job, resume=True, image=CONVERGED,
                  **{**settings, "overlap": 8})


def test_pixels_no_region_covers_stay_the_content(vgg19_weights):
    """One style on the left half only: the tiles start uncovered pixels from the content, not from the
    global pass's blurred result, and only the content term (and TV) acts there."""
    from tests.test_regions import RED
    content = texture((72, 96))
    left, _ = soft_halves((72, 96))
    _, result = run_large(content, [RED], vgg19_weights, size=96, tile=40, overlap=12, base_size=48,
                          image=CONVERGED, regions=[Region(left, 0)])
    moved = lambda cols: float(np.abs(result.image[:, cols] - content[:, cols]).mean())  # noqa: E731
    print(f"\nlarge, uncovered right half, mean |x - content|: covered left {moved(slice(0, 48)):.4f}, uncovered "
          f"right {moved(slice(48, 96)):.4f}, its far third {moved(slice(64, 96)):.2e}")
    assert moved(slice(0, 40)) > 0.2 and moved(slice(64, 96)) < 1e-5   # 1e-3 from the global pass


def test_other_masks_are_another_job(rng_images, vgg19_weights, tmp_path):
    """A job's masks are among its inputs: with another mask, style mask or style image for a region,
    or with masks where there were none, the job folder's tiles are not resumed."""
    content, style = rng_images
    left, right = soft_halves((40, 48))
    settings = LargeSettings(ImageSettings(**LAYERS, iterations=1), size=48, tile=32, overlap=8)
    job = tmp_path / "job"

    def start(regions, resume=True):
        events = stylize_large(content, [style, style], settings, vgg19_weights, job=job, resume=resume,
                               regions=regions)
        next(events)   # the job folder is open
        events.close()
    start([Region(left, 0), Region(right, 1)], resume=False)
    start([Region(left, 0), Region(right.copy(), 1)])  # the same masks: the same job
    for other in ([Region(right, 0), Region(left, 1)], [Region(left, 0), Region(right, 0)],
                  [Region(left, 0), Region(right, 1, left)], [Region(left, 0)], []):
        with pytest.raises(StyleError, match="holds a job with other inputs or settings"):
            start(other)
    assert json.loads((job / "job.json").read_text())["regions"][0]["coverage"] == 0.5


def test_bad_large_settings_get_one_line(tmp_path, rng_images, vgg19_weights):
    with pytest.raises(StyleError, match=r"tile 8 px is smaller than vgg19 up to relu5_1 needs \(16 px\)"):
        LargeSettings(ImageSettings(), tile=8)
    with pytest.raises(StyleError, match=r"overlap \(64 px\) must be smaller than the tile \(64 px\)"):
        LargeSettings(ImageSettings(), tile=64, overlap=64)
    with pytest.raises(StyleError, match=r"over large mode's limit of 16384 px; .* about 10.4 GiB"):
        LargeSettings(ImageSettings(), size=20000)
    with pytest.raises(StyleError, match="overlap must be at least 0"):
        LargeSettings(ImageSettings(), overlap=-1)
    content, style = rng_images
    blocked = tmp_path / "file"
    blocked.write_text("x")
    with pytest.raises(StyleError, match="is not an empty folder and holds no job"):
        run_large(content, [style], vgg19_weights, job=blocked, size=40, tile=32, overlap=8)
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(StyleError, match="cannot write the job folder"):
            run_large(content, [style], vgg19_weights, job=locked / "job", size=40, tile=32, overlap=8)
    assert blocked.read_text() == "x"


def test_memory_check_names_what_a_canvas_needs(monkeypatch):
    monkeypatch.setattr(os, "sysconf", lambda name: {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 2**18}[name])
    with pytest.raises(StyleError, match=r"a 8192x6144 canvas needs about 1.3 GiB of memory, more than .* 1.0 GiB"):
        large.check_memory((6144, 8192))
    large.check_memory((2048, 2048))  # 0.1 GiB: fine


SHARDED = """
import json, sys
import jax, numpy as np
from style_core.images import resize
from style_core.large import LargeSettings, stylize_large
from style_core.settings import ImageSettings
from style_core.weights import load_weights
rng = np.random.default_rng(0)
content, style = rng.random((48, 64, 3)).astype(np.float32), rng.random((40, 40, 3)).astype(np.float32)
settings = LargeSettings(ImageSettings(style_layers="relu1_1,relu2_1", content_layers="relu2_1",
                                       optimizer=sys.argv[3], iterations=6, style_weight=1e7, normalization="paper"),
                         size=64, tile=32, overlap=8, base_size=0)
result = list(stylize_large(content, [style], settings, load_weights("vgg19", sys.argv[1])))[-1].result
np.save(sys.argv[2], result.image)
change = float(np.abs(result.image - resize(content, *result.image.shape[:2])).max())
print(json.dumps({"devices": len(jax.devices()), "tiles": len(result.layout), "change": change}))
"""


def test_tiles_are_sharded_across_devices(weight_files, tmp_path):
    """Forced host devices: the same tiles, optimised four at a time, give the same canvas (SGD:
    each tile's step is its own gradient's, so batching must not change it)."""
    outputs = {}
    for count in (1, 4):
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={count}",
               "PYTHONPATH": str(ROOT)}
        out = tmp_path / f"{count}.npy"
        proc = subprocess.run([sys.executable, "-c", SHARDED, str(weight_files("vgg19")), str(out), "sgd"],
                              env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        assert (info["devices"], info["tiles"]) == (count, 6) and info["change"] > 0.05
        outputs[count] = np.load(out)
    # float32 sums in another order (batched convolutions), through a Gram difference: not bitwise
    np.testing.assert_allclose(outputs[4], outputs[1], atol=0.01 * info["change"])
