"""The optimisation loop and image mode, on tiny images with generated weights."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from style_core import color
from style_core.errors import StyleError
from style_core.events import PassClock
from style_core.images import resize
from style_core.optimize import descend
from style_core.settings import ImageSettings
from style_core.steppers import first_order_chunk
from style_core.transfer import stylize

# tol 0: a fixed number of steps, as these tests count them (the default stop rule has its own test)
# Random weights: the figures below were measured with the research deck's "paper" weighting (style
# 1e5); the defaults are for trained networks (tests/test_trained.py).
SMALL = dict(size=32, style_layers="relu1_1,relu2_1,relu3_1", content_layers="relu2_2", steps_per_call=10, tol=0.0,
             normalization="paper", style_weight=1e5)


def run(content, styles, weights, **kw):
    events = list(stylize(content, styles, ImageSettings(**{**SMALL, **kw}), weights))
    return events, events[-1].result


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam", "adagrad", "rmsprop", "sgd"])
def test_every_optimizer_lowers_the_loss(optimizer, rng_images, vgg19_weights):
    content, style = rng_images
    lr = {"sgd": 1e-2}.get(optimizer)
    _, result = run(content, [style], vgg19_weights, optimizer=optimizer, lr=lr, iterations=15)
    # all 15 steps run; Adam at its default rate overshoots after step 10 here (0.31 -> 0.69), and the
    # image of its best step is kept, which the reason says
    assert result.stop_reason.split(" (kept step ")[0] == "finished" and result.iterations == 15
    assert result.final_losses["total"] < 0.9 * result.initial_losses["total"]
    assert result.image.shape == (27, 32, 3) and 0 <= result.image.min() and result.image.max() <= 1
    # the report counts forward and backward passes: L-BFGS's line searches make at least one per step
    # (and one at the start), a first-order method exactly one
    assert result.report()["evaluations"] == result.evaluations
    assert result.evaluations >= 16 if optimizer == "lbfgs" else result.evaluations == 15


def test_events_stream_with_previews_and_the_last_has_the_result(rng_images, vgg19_weights):
    content, style = rng_images
    events, result = run(content, [style], vgg19_weights, optimizer="adam", iterations=30, preview_every=10)
    steps = [e.completed for e in events]
    assert steps == sorted(steps) and steps[-1] == 30 and len(events) >= 4
    assert sum(e.preview is not None for e in events[:-1]) >= 2
    assert all(e.result is None for e in events[:-1]) and events[-1].done
    # before the scale's targets and before its first chunk (compiled then): where a front end's Stop
    # is seen before the expensive part (issue 32.2)
    assert [(e.stage, e.step, dict(e.losses)) for e in events[:2]] == [("compiling", 0, {})] * 2
    assert {"total", "content", "style", "tv"} <= set(events[2].losses)
    assert [h["step"] for h in result.history][-1] == 30


def test_caller_can_stop_at_any_time(rng_images, vgg19_weights):
    content, style = rng_images
    gen = stylize(content, [style], ImageSettings(**SMALL, optimizer="adam", iterations=10_000), vgg19_weights)
    first = list(itertools.islice(gen, 3))
    gen.close()
    assert first[-1].completed < 100 and first[-1].result is None


def test_noise_init_is_repeatable_by_seed(rng_images, vgg19_weights):
    content, style = rng_images
    a = run(content, [style], vgg19_weights, init="noise", seed=1, iterations=0)[1].image
    b = run(content, [style], vgg19_weights, init="noise", seed=1, iterations=0)[1].image
    c = run(content, [style], vgg19_weights, init="noise", seed=2, iterations=0)[1].image
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 0.05


def test_zero_iterations_returns_the_init_and_its_losses(rng_images, vgg19_weights):
    content, style = rng_images
    _, result = run(content, [style], vgg19_weights, init="content", iterations=0)
    assert result.iterations == 0 and result.final_losses == result.initial_losses
    assert result.final_losses["content"] == 0.0 and result.final_losses["style"] > 0
    _, styled = run(content, [style], vgg19_weights, init="style", iterations=0)
    assert styled.final_losses["content"] > 0


@pytest.mark.parametrize("dispatch", ["async", "scan"])
def test_divergence_stops_and_keeps_the_best_image(dispatch):
    """Adam walks towards x = 1, where this loss turns NaN past x = 0.5."""
    import jax.numpy as jnp

    def terms(x, aux):
        return {"f": jnp.sum((x - 1.0) ** 2) + jnp.where(jnp.max(x) > 0.5, jnp.nan, 0.0)}

    reports = list(descend(jnp.zeros((4, 4, 3)), terms, None, {"f": 1.0}, iterations=50,
                           optimizer="adam", lr=0.1, steps_per_call=8, dispatch=dispatch))
    last = reports[-1]
    assert last.stop_reason.startswith("diverged at step") and "smaller learning rate" in last.stop_reason
    assert 3 <= last.step < 50 and np.isfinite(last.losses["total"])
    assert float(jnp.max(last.x)) <= 0.5 and last.losses["total"] < 48  # the best, better than the start
    assert last.losses["total"] == pytest.approx(min(last.history), rel=1e-6)


def test_divergence_in_image_mode_is_reported(rng_images, vgg19_weights):
    """SGD at lr 1e30 throws every pixel to 0 or 1, ending far above its start: the run says it
    diverged and keeps its best image, here the first."""
    content, style = rng_images
    _, result = run(content, [style], vgg19_weights, optimizer="sgd", lr=1e30, iterations=20)
    assert result.stop_reason.startswith("diverged") and np.all(np.isfinite(result.image))
    assert result.final_losses == result.initial_losses


def test_early_stop_on_relative_tolerance(rng_images, vgg19_weights):
    content, style = rng_images
    _, result = run(content, [style], vgg19_weights, optimizer="adam", iterations=400, tol=0.05)
    # (Adam's loss had risen from its best when the rule stopped it; that step's image is kept and said)
    assert result.stop_reason.split(" (kept step ")[0] == "converged" and result.iterations < 400
    # the stopping rule compares losses some steps apart: the first one-step chunk alone is no evidence
    _, result = run(content, [style], vgg19_weights, optimizer="lbfgs", iterations=30, tol=1e-3)
    assert result.iterations > 1
    steps = [h["step"] for h in result.history]
    losses = [h["losses"]["total"] for h in result.history]
    if result.stop_reason == "converged":  # then the last chunk really fell by less than tol per step
        assert (losses[-2] - losses[-1]) / losses[-2] / (steps[-1] - steps[-2]) < 1e-3 * 2


def test_multi_scale_runs_coarse_to_fine(rng_images, vgg19_weights):
    content, style = rng_images
    events, result = run(content, [style], vgg19_weights, optimizer="adam", size=64, scales=2, iterations=6)
    assert {e.shape for e in events} == {(27, 32), (53, 64)}
    assert [e.scale for e in events] == sorted(e.scale for e in events)
    # the coarse scale takes a quarter of the full size's steps, rounded up
    assert result.image.shape == (53, 64, 3) and result.iterations == 2 + 6 and events[-1].total == 8
    assert max(h["step"] for h in result.history if h["scale"] == 1) == 2
    chosen = run(content, [style], vgg19_weights, optimizer="adam", size=64, scales=3, iterations=4,
                 coarse_iterations=3)[1]
    assert chosen.iterations == 3 + 3 + 4


def test_automatic_scales_leave_out_a_coarse_scale_too_small_for_an_elongated_image():
    """VGG19 to relu5_1 needs 16 px a side: a 1024x40 content's quarter scale (256x10) is left out, as
    is one at which a style image would be too narrow; scales the user asked for are kept (and refused
    by stylize with a message)."""
    from style_core.transfer import scale_shapes
    assert scale_shapes((40, 1024), ImageSettings(size=1024)) == [(20, 512), (40, 1024)]
    assert scale_shapes((768, 1024), ImageSettings(size=1024)) == [(192, 256), (384, 512), (768, 1024)]
    assert scale_shapes((768, 1024), ImageSettings(size=1024), [(1600, 80)]) == [(384, 512), (768, 1024)]
    assert scale_shapes((40, 256), ImageSettings(size=256, scales=3)) == [(10, 64), (20, 128), (40, 256)]


def test_steps_per_scale():
    assert ImageSettings(size=1024, iterations=300).scale_iterations == (75, 75, 300)
    assert ImageSettings(size=512, iterations=300).scale_iterations == (75, 300)
    assert ImageSettings(size=512, scales=3, iterations=10).scale_iterations == (3, 3, 10)
    assert ImageSettings(size=512, scales=2, iterations=10, coarse_iterations=0).scale_iterations == (0, 10)
    assert ImageSettings(size=128, iterations=10).scale_iterations == (10,)
    assert ImageSettings(size=512).to_dict()["coarse_iterations"] is None
    with pytest.raises(StyleError, match="coarse iterations"):
        ImageSettings(coarse_iterations=-1)


def test_lbfgs_stops_by_default_when_the_loss_no_longer_falls_and_a_chosen_tolerance_stays():
    from style_core.settings import DEFAULT_TOL
    from style_core.video import video_image_settings
    assert ImageSettings().tol == DEFAULT_TOL["lbfgs"] > 0
    assert ImageSettings(optimizer="adam").tol == 0 and ImageSettings().replace(optimizer="sgd").tol == 0
    assert ImageSettings(optimizer="adam").replace(optimizer="lbfgs").tol == DEFAULT_TOL["lbfgs"]
    assert ImageSettings(tol=0).replace(size=128).tol == 0                 # a chosen value stays
    assert ImageSettings(tol=0).replace(optimizer="adam").replace(optimizer="lbfgs").tol == 0
    assert ImageSettings(size=512, scales=3).replace(size=128, iterations=5).scales == 3
    assert "tol_auto" not in ImageSettings().to_dict() and video_image_settings().tol == 1e-3


def test_scales_default_to_passes_of_256_px_or_more_and_follow_the_size():
    from style_core.photo import photo_image_settings
    from style_core.settings import auto_scales
    from style_core.video import video_image_settings
    assert [ImageSettings(size=s).scales for s in (128, 256, 511, 512, 1023, 1024, 4096)] == [1, 1, 1, 2, 2, 3, 3]
    assert ImageSettings(size=1024).replace(size=128).scales == 1
    assert ImageSettings(size=128).replace(size=600).scales == 2
    assert ImageSettings(size=512, scales=1).replace(size=1024).scales == 1  # a chosen value stays
    assert ImageSettings(size=64, scales=3).replace(iterations=5).scales == 3
    assert "scales_auto" not in ImageSettings().to_dict() and ImageSettings().to_dict()["scales"] == 2
    assert auto_scales(1024, need=300) == 2 and auto_scales(1024, need=600) == 1
    assert photo_image_settings(size=512).scales == 1 and video_image_settings(size=512).scales == 1


def test_style_blend_weights(rng_images, vgg19_weights):
    content, style = rng_images
    other = np.ascontiguousarray(style[::-1, :, ::-1])
    only_first = run(content, [style, other], vgg19_weights, style_blend=(1.0, 0.0), iterations=0)[1]
    single = run(content, [style], vgg19_weights, iterations=0)[1]
    blended = run(content, [style, other], vgg19_weights, iterations=0)[1]
    assert only_first.final_losses["style"] == pytest.approx(single.final_losses["style"], rel=1e-5)
    assert blended.final_losses["style"] != pytest.approx(single.final_losses["style"], rel=1e-3)
    with pytest.raises(StyleError, match="2 style blend weights for 1 style images"):
        run(content, [style], vgg19_weights, style_blend=(1.0, 1.0), iterations=0)


def test_style_scale_changes_the_style_targets(rng_images, vgg19_weights):
    content, style = rng_images
    big = np.asarray(np.kron(style, np.ones((2, 2, 1))), np.float32)
    a = run(content, [big], vgg19_weights, style_scale=1.0, iterations=0)[1].final_losses["style"]
    b = run(content, [big], vgg19_weights, style_scale=2.0, iterations=0)[1].final_losses["style"]
    assert a != pytest.approx(b, rel=1e-3)


def test_luminance_preservation_keeps_the_content_colours(rng_images, vgg19_weights):
    content, style = rng_images
    _, result = run(content, [style], vgg19_weights, optimizer="adam", iterations=10,
                    preserve_color="luminance")
    c = resize(content, *result.image.shape[:2])
    out_iq, content_iq = color.rgb_to_yiq(result.image)[..., 1:], color.rgb_to_yiq(c)[..., 1:]
    inside = np.all((result.image > 0.02) & (result.image < 0.98), axis=2)  # away from clipping
    np.testing.assert_allclose(out_iq[inside], content_iq[inside], atol=2e-3)


def test_histogram_matching_gives_the_style_the_content_statistics():
    rng = np.random.default_rng(5)
    content = np.clip(rng.normal([0.3, 0.5, 0.6], 0.1, (40, 40, 3)), 0, 1).astype(np.float32)
    style = np.clip(rng.normal([0.7, 0.2, 0.3], 0.08, (30, 30, 3)), 0, 1).astype(np.float32)
    style[..., 1] += 0.3 * style[..., 0]
    matched = color.match_color(style, content)
    np.testing.assert_allclose(matched.reshape(-1, 3).mean(0), content.reshape(-1, 3).mean(0), atol=0.01)
    np.testing.assert_allclose(np.cov(matched.reshape(-1, 3), rowvar=False),
                               np.cov(content.reshape(-1, 3), rowvar=False), atol=5e-4)


def test_weight_sweep_reuses_the_compiled_chunk(rng_images, vgg19_weights):
    content, style = rng_images
    run(content, [style], vgg19_weights, optimizer="adam", iterations=3, style_weight=10.0)
    misses = first_order_chunk.cache_info().misses
    run(content, [style], vgg19_weights, optimizer="adam", iterations=3, style_weight=1e4, lr=0.05)
    assert first_order_chunk.cache_info().misses == misses


@pytest.mark.parametrize("backbone", ["vgg16", "resnet18"])
def test_other_backbones_run(backbone, rng_images, weight_files):
    from style_core.weights import load_weights
    content, style = rng_images
    weights = load_weights(backbone, weight_files(backbone))
    result = list(stylize(content, [style], ImageSettings(size=48, backbone=backbone, iterations=3,
                                                          optimizer="adam"), weights))[-1].result
    assert result.image.shape == (40, 48, 3) and result.settings.backbone == backbone


def test_tiny_and_elongated_images_are_refused(vgg19_weights):
    with pytest.raises(StyleError, match=r"content image is 1x1 px, too small.*at least 16 px"):
        run(np.zeros((1, 1, 3), np.float32), [np.zeros((32, 32, 3), np.float32)], vgg19_weights,
            size=32, style_layers="paper", content_layers="relu4_2")
    with pytest.raises(StyleError, match=r"style image is 8x8 px"):
        run(np.zeros((32, 32, 3), np.float32), [np.zeros((8, 8, 3), np.float32)], vgg19_weights,
            size=32, style_layers="paper", content_layers="relu4_2")
    with pytest.raises(StyleError, match="needs at least 16 px on each side"):
        run(np.zeros((20, 400, 3), np.float32), [np.zeros((32, 32, 3), np.float32)], vgg19_weights,
            size=32, style_layers="paper", content_layers="relu4_2")


def test_scan_and_async_dispatch_take_the_same_steps():
    """The GPU path (one scan per chunk) and the CPU path (steps dispatched one by one) agree."""
    import jax.numpy as jnp
    target = jnp.asarray(np.random.default_rng(0).random((5, 6, 3)), jnp.float32)

    def terms(x, aux):
        return {"fit": jnp.sum((x - aux) ** 2), "tv": jnp.sum(jnp.abs(jnp.diff(x, axis=0)))}

    runs = {d: list(descend(jnp.zeros((5, 6, 3)), terms, target, {"fit": 1.0, "tv": 0.1}, iterations=12,
                            optimizer="adam", lr=0.05, steps_per_call=5, dispatch=d)) for d in ("scan", "async")}
    a, b = runs["scan"][-1], runs["async"][-1]
    assert a.step == b.step == 12
    np.testing.assert_allclose(a.history, b.history, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(a.x), np.asarray(b.x), rtol=1e-5, atol=1e-6)


def test_lbfgs_solves_an_ill_conditioned_quadratic_and_its_iterates_do_not_depend_on_the_chunking():
    """L-BFGS's host-driven search converges, each loss below the largest of the last NONMONOTONE
    (the non-monotone rule); one step per call and seven per call take the same steps, bit for bit
    (every report of a run keeps its own image)."""
    import jax.numpy as jnp
    rng = np.random.default_rng(1)
    target = jnp.asarray(rng.random((6, 7, 3)), jnp.float32)
    scale = jnp.asarray(np.logspace(0, 3, 6 * 7 * 3).reshape(6, 7, 3), jnp.float32)  # condition 1e3

    def terms(x, aux):
        return {"q": jnp.sum(scale * (x - aux) ** 2)}

    runs = {n: list(descend(jnp.zeros((6, 7, 3)), terms, target, {"q": 1.0}, iterations=60, optimizer="lbfgs",
                            lr=1.0, steps_per_call=n, dispatch="async")) for n in (1, 7)}
    last = runs[1][-1]
    assert last.losses["total"] < 1e-4 * last.initial_losses["total"]
    from style_core.lbfgs import NONMONOTONE
    h = last.history
    assert all(h[k] <= max(h[max(0, k - NONMONOTONE):k]) * (1 + 1e-6) for k in range(1, len(h)))
    assert runs[7][-1].history == last.history and runs[7][-1].step == last.step
    by_step = {r.step: np.asarray(r.x) for r in runs[1]}
    assert len(runs[7]) >= 5
    for report in runs[7]:
        np.testing.assert_array_equal(np.asarray(report.x), by_step[report.step], err_msg=f"step {report.step}")


def test_two_loop_direction_is_the_bfgs_inverse_hessian_of_its_newest_pairs():
    """The two-loop recursion (written in lbfgs.py, not optax's) against numpy in float64: H_0 = gamma I
    with gamma = s.y / y.y of the newest pair, then H <- V^T H V + rho s s^T (V = I - rho y s^T) for
    each kept pair, oldest first. Six pairs pushed into a memory of four: the ring wraps and only the
    newest four count. A fresh memory gives -g. The slope leaves out a component that pushes a pixel
    at a bound outward."""
    import jax.numpy as jnp
    from style_core.lbfgs import _direction, _fresh, _remember
    rng = np.random.default_rng(7)
    shape, m = (3, 4, 2), 4
    n = int(np.prod(shape))
    a = rng.normal(size=(n, n))
    hess = a @ a.T + n * np.eye(n)   # positive definite: every pair has y.s > 0
    f32 = lambda v: jnp.asarray(np.reshape(v, shape), jnp.float32)  # noqa: E731
    memory, pairs = _fresh(m, f32(np.zeros(n))), []
    for _ in range(6):
        d, t, g0 = rng.normal(size=n), rng.uniform(0.1, 1.0), rng.normal(size=n)
        g1 = g0 + hess @ (t * d)
        memory = _remember(memory, f32(np.zeros(n)), jnp.float32(t), f32(d), f32(g0), f32(g1),
                           box=(-np.inf, np.inf), taken=False)
        pairs.append((t * np.asarray(f32(d), np.float64).reshape(-1),
                      np.asarray(f32(g1), np.float64).reshape(-1) - np.asarray(f32(g0), np.float64).reshape(-1)))
    g, x = rng.normal(size=n), rng.uniform(0.2, 0.8, size=n)
    s, y = pairs[-1]
    h = (s @ y) / (y @ y) * np.eye(n)
    for s, y in pairs[-m:]:
        rho = 1.0 / (y @ s)
        v = np.eye(n) - rho * np.outer(y, s)
        h = v.T @ h @ v + rho * np.outer(s, s)
    expect = -h @ g
    d, slope = _direction(memory, f32(g), f32(x), box=(0.0, 1.0))
    np.testing.assert_allclose(np.asarray(d, np.float64).reshape(-1), expect, rtol=1e-3, atol=1e-4 * np.abs(expect).max())
    assert float(slope) == pytest.approx(g @ expect, rel=1e-3)
    fresh, _ = _direction(_fresh(m, f32(x)), f32(g), f32(x), box=(0.0, 1.0))
    np.testing.assert_allclose(np.asarray(fresh).reshape(-1), -g, rtol=1e-6)
    x[0] = 0.0 if expect[0] < 0 else 1.0   # at the bound its component points out of
    unheld, slope = _direction(memory, f32(g), f32(x), box=(0.0, 1.0))
    assert float(slope) == pytest.approx(g @ expect - g[0] * expect[0], rel=1e-3)
    held, held_slope = _direction(memory, f32(g), f32(x), box=(0.0, 1.0), hold=True)   # lbfgs-b
    assert float(np.asarray(unheld).reshape(-1)[0]) == pytest.approx(expect[0], rel=1e-3)
    assert float(np.asarray(held).reshape(-1)[0]) == 0.0 and float(held_slope) == float(slope)
    np.testing.assert_array_equal(np.asarray(held).reshape(-1)[1:], np.asarray(unheld).reshape(-1)[1:])


def test_lbfgs_pairs_are_the_steps_as_proposed_under_box_and_as_taken_under_lbfgs_b():
    """`box` remembers t d, clipped or not (the tutorial's clamp); `lbfgs-b` the step the projection let
    through, clip(x + t d) - x; both with y = g_t - g."""
    import jax.numpy as jnp
    from style_core.lbfgs import _pair
    x, d = jnp.array([0.1, 0.5, 0.9]), jnp.array([-1.0, 0.2, 1.0])
    g, g_t = jnp.array([1.0, 2.0, 3.0]), jnp.array([0.5, 1.0, 4.0])
    s, y = _pair(x, 0.5, d, g, g_t, (0.0, 1.0), False)
    np.testing.assert_allclose(s, [-0.5, 0.1, 0.5])
    np.testing.assert_allclose(y, [-0.5, -1.0, 1.0])
    s, y = _pair(x, 0.5, d, g, g_t, (0.0, 1.0), True)
    np.testing.assert_allclose(s, [-0.1, 0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(y, [-0.5, -1.0, 1.0])


def test_lbfgs_memory_is_bounded_by_bytes():
    from style_core.lbfgs import LBFGS_MEMORY, LBFGS_MEMORY_BYTES, lbfgs_memory
    assert lbfgs_memory(384 * 512 * 3) == LBFGS_MEMORY
    big = 4096 * 4096 * 3
    assert lbfgs_memory(big) == max(5, LBFGS_MEMORY_BYTES // (8 * big)) == 5
    assert 8 * 2048 * 2048 * 3 * lbfgs_memory(2048 * 2048 * 3) <= LBFGS_MEMORY_BYTES


def _counting_host_lbfgs(loss):
    """A HostLBFGS on `loss(x, aux)` that counts its evaluations (forward and backward passes)."""
    import jax
    from style_core.lbfgs import HostLBFGS

    def value_and_grad(x, aux, weights):
        f, g = jax.value_and_grad(loss)(x, aux)
        return (f, {"f": f}), g

    class Counting(HostLBFGS):
        evaluations = 0

        def _evaluate(self, *args):  # every forward and backward pass goes through here
            self.evaluations += 1
            return super()._evaluate(*args)

    return Counting(value_and_grad)


def _host_steps(opt, x0, aux, steps):
    state = opt.init(x0)
    losses = []
    for _ in range(steps):
        state, (f, _) = opt.step(state, aux, {"f": 1.0}, np.inf)
        losses.append(float(f))
    return state, losses


def test_host_line_search_takes_a_short_step_with_a_valid_pair_and_then_the_newton_step():
    """On an isotropic quadratic the first step (1/|g|_1, far too short) has sufficient decrease and a
    rising slope: it is taken after one evaluation, and its pair makes the next step exact."""
    import jax.numpy as jnp
    target = jnp.asarray(np.random.default_rng(2).random((6, 7, 3)), jnp.float32)
    opt = _counting_host_lbfgs(lambda x, c: 0.5 * jnp.sum((x - c) ** 2))
    state, losses = _host_steps(opt, jnp.zeros((6, 7, 3)), target, 3)
    assert opt.evaluations == 1 + 3          # the start, then one trial per step
    assert state.inner.evaluations == opt.evaluations   # what the run's report counts
    np.testing.assert_allclose(np.asarray(state.x), np.asarray(target), atol=1e-5)
    assert losses[0] > losses[1] > losses[2]


def test_host_line_search_extrapolates_quickly_to_a_far_minimum():
    """Far from its minimum a Huber loss is linear, so the slope does not rise and the search must
    extrapolate: the first step's 1/|g|_1 is ~60x too short, which doubling would take 6 evaluations
    to cover; by EXPAND per evaluation it takes at most 4, and the loss falls by half or more."""
    import jax.numpy as jnp
    import optax
    rng = np.random.default_rng(3)
    target = jnp.asarray(0.3 + 0.3 * rng.random((6, 7, 3)), jnp.float32)  # 0.3-0.6 from the start
    opt = _counting_host_lbfgs(lambda x, c: jnp.sum(optax.huber_loss(x, c, delta=0.01)))
    x0 = jnp.zeros((6, 7, 3))
    initial = float(jnp.sum(optax.huber_loss(x0, target, delta=0.01)))
    state, _ = _host_steps(opt, x0, target, 1)
    after = float(jnp.sum(optax.huber_loss(state.x, target, delta=0.01)))
    assert opt.evaluations <= 1 + 4
    assert after < 0.5 * initial


def test_host_lbfgs_stops_as_converged_when_no_decrease_is_left():
    """Once not even the steepest descent finds a decrease (a minimum to float32 precision), the run
    ends as converged instead of spending every remaining step on a fruitless line search; the
    minimum is the float64 one of this lasso-like problem."""
    import jax.numpy as jnp
    rng = np.random.default_rng(1)
    target = rng.random((6, 7, 3))
    scale = np.logspace(0, 3, 6 * 7 * 3).reshape(6, 7, 3)

    def terms(x, aux):
        return {"q": jnp.sum(jnp.asarray(scale, jnp.float32) * (x - aux) ** 2) + 0.1 * jnp.sum(jnp.abs(x))}

    last = list(descend(jnp.zeros((6, 7, 3)), terms, jnp.asarray(target, jnp.float32), {"q": 1.0},
                        iterations=1000, optimizer="lbfgs", lr=1.0, steps_per_call=10, dispatch="async"))[-1]
    # "converged", or "converged (kept step k's image ...)" where a last non-monotone step rose
    assert last.stop_reason.startswith("converged") and last.step < 1000
    best = np.maximum(target - 0.05 / scale, 0.0)  # the minimiser, coordinate by coordinate
    optimum = np.sum(scale * (best - target) ** 2) + 0.1 * np.sum(np.abs(best))
    assert last.losses["total"] == pytest.approx(optimum, rel=1e-4)


@pytest.mark.parametrize("bounds", ["lbfgs-b", "box"])
def test_lbfgs_keeps_the_image_in_the_box_and_finds_the_box_minimum(bounds):
    """L-BFGS minimises over [0, 1], the box every output is clipped to. A coupled least squares
    problem whose unconstrained minimum lies far outside it: every iterate stays inside, and the
    result reaches the float64 box-constrained minimum (SciPy's L-BFGS-B). With L-BFGS-B's pairs in
    few steps; with the steps as proposed (`box`, image mode's default) slowly: here 36 of the 60
    values end at a bound (on an image 1-4% do), and its model takes each for a flat direction, so it
    gets there in 416 evaluations, not 138, and still wanders (lbfgs.py's doc)."""
    import jax.numpy as jnp
    from scipy.optimize import minimize
    rng = np.random.default_rng(4)
    n = 4 * 5 * 3
    a = rng.normal(size=(n, n)) / np.sqrt(n) + np.eye(n)
    b = a @ rng.uniform(-1.0, 2.0, n)            # unconstrained minimiser: a third of it outside

    def terms(x, aux):
        r = jnp.asarray(a, jnp.float32) @ x.reshape(-1) - aux
        return {"q": jnp.sum(r ** 2)}

    ref = minimize(lambda v: (np.sum((a @ v - b) ** 2), 2 * a.T @ (a @ v - b)), np.zeros(n), jac=True,
                   method="L-BFGS-B", bounds=[(0.0, 1.0)] * n, options={"ftol": 1e-15, "gtol": 1e-12})
    reports = list(descend(jnp.zeros((4, 5, 3)), terms, jnp.asarray(b, jnp.float32), {"q": 1.0},
                           iterations=200, optimizer="lbfgs", lr=1.0, steps_per_call=1, bounds=bounds))
    assert [r.step for r in reports] == list(range(1, len(reports) + 1))   # a report after every step
    for r in reports:
        x = np.asarray(r.x)
        assert x.min() >= 0.0 and x.max() <= 1.0, r.step
        assert len(r.history) == r.step                          # each report as it was at its step
    assert not any(np.array_equal(a.x, b.x) for a, b in zip(reports[:5], reports[1:6]))  # its own image
    last = reports[-1]
    if bounds == "lbfgs-b":
        assert last.stop_reason == "converged" and last.step < 60
    assert last.losses["total"] == pytest.approx(ref.fun, rel=1e-4)
    np.testing.assert_allclose(np.asarray(last.x).reshape(-1), ref.x, atol=1e-2 if bounds == "lbfgs-b" else 2e-2)
    # bounds "none" (the classic scripts' way) leaves the box for the unconstrained minimum, 0
    free = list(descend(jnp.zeros((4, 5, 3)), terms, jnp.asarray(b, jnp.float32), {"q": 1.0},
                        iterations=200, optimizer="lbfgs", lr=1.0, steps_per_call=20, bounds="none"))[-1]
    assert np.asarray(free.x).min() < -0.5 and free.losses["total"] < 1e-3 * ref.fun


@pytest.mark.parametrize("tail, stop", [
    ([0.9] * 30, 16),                       # flat at the lowest: the first slow span stops it
    ([1.0, 1.1, 1.2, 1.3, 1.4, 1.5] + [0.9 - 0.1 * k for k in range(9)], None),   # a rise, then down again
    ([1.2, 1.3] * 15, 21),                  # above the lowest for two slow spans: stops after the second
])
def test_the_stopping_rule_reads_the_lowest_loss_and_waits_out_a_rise(monkeypatch, tail, stop):
    """The tolerance rule (optimize.TOL_SPAN) on a scripted loss sequence: ten steps falling fast, then
    `tail`. A slow span stops the run where it ends at the run's lowest loss, or after another slow
    span; a span spent above the lowest and coming back down does not (a non-monotone L-BFGS; the
    rule looks after steps 6, 11, 16, ...: before, the rise would have stopped the run at step 16)."""
    import jax.numpy as jnp
    from style_core import optimize
    from style_core.optimize import TOL_SPAN, Optimizer, descend
    from style_core.steppers import StepState, Stepper
    assert TOL_SPAN == 5
    script = [10.0 - 0.9 * k for k in range(10)] + list(tail)

    def factory(value_and_grad, lr, **_):
        def run(state, aux, weights, limit, n_active):
            k = int(state.inner)
            totals = jnp.asarray((script + [script[-1]] * 40)[k:k + 40][:int(n_active)], jnp.float32)
            return state._replace(inner=k + int(n_active)), (totals, {"q": totals})
        return Stepper(lambda x: StepState.start(x, 0), run, lambda state: False)

    monkeypatch.setitem(optimize.OPTIMIZERS, "scripted", Optimizer(factory, 1.0, 0.0, "scripted"))
    runs = list(descend(jnp.zeros((2, 2, 3)), lambda x, aux: {"q": jnp.sum(x)}, None, {"q": 1.0},
                        iterations=len(script), optimizer="scripted", lr=1.0, steps_per_call=7, tol=1e-3))
    assert runs[-1].step == (stop or len(script)), ([r.step for r in runs], runs[-1].history)
    assert runs[-1].stop_reason.startswith("converged" if stop else "finished")


def test_bounds_setting_is_checked_and_reaches_the_cli():
    from style_core.__main__ import build_parser
    from style_core.settings import from_values
    assert ImageSettings().bounds == "box"
    with pytest.raises(StyleError, match="bounds"):
        ImageSettings(bounds="loose")
    for bounds in ("none", "lbfgs-b"):
        args = build_parser().parse_args(["image", "c.png", "s.png", "-o", "o.png", "--bounds", bounds])
        assert from_values(ImageSettings, vars(args)).bounds == bounds
    from style_core.photo import photo_image_settings
    assert photo_image_settings().bounds == "lbfgs-b"   # photo mode's matting term (lbfgs.py's doc)
    import jax.numpy as jnp
    from style_core.optimize import descend
    with pytest.raises(StyleError, match="unknown bounds 'loose'; choose one of box, lbfgs-b, none"):
        list(descend(jnp.zeros((2, 2, 3)), lambda x, aux: {"q": jnp.sum(x ** 2)}, None, {"q": 1.0},
                     iterations=2, optimizer="lbfgs", lr=1.0, bounds="loose"))


def test_the_kept_image_does_not_depend_on_the_chunking():
    """Adam overshoots this bowl and comes back: the best step falls inside a chunk for some chunk
    lengths and at a boundary for others; the image kept must be the same (seed repeatability)."""
    import jax.numpy as jnp

    def terms(x, aux):
        return {"f": jnp.sum((x - 0.3) ** 2)}
    x0 = jnp.full((4, 4, 3), 0.9)
    last = {c: list(descend(x0, terms, None, {"f": 1.0}, iterations=14, optimizer="adam", lr=0.25,
                            steps_per_call=c, dispatch="async"))[-1] for c in (1, 3, 4, 5)}
    best = int(np.argmin(last[1].history))
    assert 0 < best < 14 and last[1].history[-1] > last[1].history[best]  # it did overshoot and climb
    for c, report in last.items():
        assert report.stop_reason == last[1].stop_reason and f"kept step {best}'s image" in report.stop_reason
        np.testing.assert_array_equal(np.asarray(report.x), np.asarray(last[1].x), err_msg=f"chunk {c}")

def test_where_the_tolerance_stops_does_not_depend_on_the_chunking():
    """The tolerance rule looks at the same steps whatever the chunk lengths (which follow measured
    time): the same run stops at the same step with the same image on a busy machine or an idle one.
    A bowl with curvatures over three decades: the loss's relative fall per step shrinks slowly."""
    import jax.numpy as jnp
    curvature = jnp.logspace(-3, 0, 48).reshape(4, 4, 3)

    def terms(x, aux):
        return {"f": jnp.sum(curvature * (x - 0.3) ** 2)}
    x0 = jnp.full((4, 4, 3), 0.9)
    last = {c: list(descend(x0, terms, None, {"f": 1.0}, iterations=400, optimizer="sgd", lr=0.4, tol=0.02,
                            steps_per_call=c, dispatch="async"))[-1] for c in (1, 3, 4, 7, 20)}
    assert last[1].stop_reason == "converged" and 10 < last[1].step < 400
    for c, report in last.items():
        assert (report.step, report.history) == (last[1].step, last[1].history), f"chunk {c}"
        np.testing.assert_array_equal(np.asarray(report.x), np.asarray(last[1].x), err_msg=f"chunk {c}")


def test_a_run_that_ends_a_little_above_its_start_keeps_its_best_but_did_not_diverge():
    """SGD at lr 1.05 on sum((x - 0.5)^2) multiplies the error by -1.1 a step: after 6 steps the loss
    is 1.21^6 = 3.1x its start, as a run from an already good image may end; not a blow-up."""
    import jax.numpy as jnp
    x0 = jnp.full((2, 2, 3), 0.52)
    last = list(descend(x0, lambda x, aux: {"f": jnp.sum((x - 0.5) ** 2)}, None, {"f": 1.0},
                        iterations=6, optimizer="sgd", lr=1.05, dispatch="async"))[-1]
    assert 2 < last.history[-1] / last.history[0] < 10
    assert last.stop_reason.startswith("finished (kept step 0's image")
    np.testing.assert_array_equal(np.asarray(last.x), np.asarray(x0))


def test_a_final_image_whose_loss_is_not_finite_is_not_the_result():
    """SGD at lr 0.1 towards 1: x = 0.2, 0.36, 0.488 before the steps, then 0.59, where the loss
    turns NaN: the last step's image must not come back as "finished"."""
    import jax.numpy as jnp

    def terms(x, aux):
        return {"f": jnp.sum((x - 1.0) ** 2) + jnp.where(jnp.max(x) > 0.5, jnp.nan, 0.0)}
    last = list(descend(jnp.zeros((2, 2, 3)), terms, None, {"f": 1.0}, iterations=4, optimizer="sgd",
                        lr=0.1, dispatch="async"))[-1]
    assert last.stop_reason.startswith("diverged: the loss rose to nan")
    assert np.isfinite(last.losses["total"]) and float(jnp.max(last.x)) == pytest.approx(0.488)


def test_a_diverged_coarse_scale_still_gives_the_requested_size(rng_images, vgg19_weights):
    content, style = rng_images
    _, result = run(content, [style], vgg19_weights, size=64, scales=2, optimizer="adam", lr=1e30,
                    iterations=6)
    assert result.image.shape == (53, 64, 3) and np.all(np.isfinite(result.image))
    assert result.stop_reason.startswith("diverged") and "(scale 1 of 2)" in result.stop_reason


def test_the_pass_clock_costs_later_passes_by_their_pixels():
    """Two passes (100 steps at 1000 px, then 50 at 4000 px) on a fake clock: nothing until the pass
    at work has a rate; then its steps left at its rate, plus the next pass's steps at that rate times
    its pixels, plus the set-up time seen once more."""
    now = [0.0]
    clock = PassClock([(1000, 100), (4000, 50)], clock=lambda: now[0])
    clock.begin(0)
    now[0] = 3.0                           # compiling and the first chunk: 3 s, 10 steps
    assert clock.left(10) is None
    now[0] = 4.0                           # 10 more steps in 1 s: 0.1 s per step
    assert clock.left(20) == pytest.approx(80 * 0.1 + 50 * 0.1 * 4 + 3.0)
    now[0] = 8.0                           # slower: 20 steps in 4 s; the rate is the later half's,
    assert clock.left(40) == pytest.approx(60 * 0.2 + 50 * 0.2 * 4 + 3.0)   # steps 20 to 40
    clock.begin(1)
    now[0] = 10.0
    assert clock.left(5) is None           # a new pass: a new rate (its set-up is not steps)
    now[0] = 12.0
    assert clock.left(15) == pytest.approx(35 * 0.2)


def test_a_run_says_its_starting_image_at_once_and_its_time_left(rng_images, vgg19_weights, monkeypatch):
    """The first event (before any target or compilation) carries the starting image; every step's
    event then carries the time left by the pass's clock: on a clock where every report takes the
    same time (0.1 s, after 5 s of set-up), exactly the steps left at 0.1 s each from the second
    report on, none before. (The real clock's accuracy is measured in the browser test and bench/LOG 24:
    a timed bound here would measure the CI machine's load.)"""
    from style_core import transfer

    class Stepped(PassClock):   # the time is 5 s plus 0.1 s per step done
        def __init__(self, passes):
            self.now = 0.0
            super().__init__(passes, clock=lambda: self.now)

        def left(self, step):
            self.now = 5.0 + 0.1 * step
            return super().left(step)

    monkeypatch.setattr(transfer, "PassClock", Stepped)
    content, style = rng_images
    settings = ImageSettings(**{**SMALL, "size": 48}, optimizer="adam", iterations=120, preview_every=10)
    start = time.perf_counter()
    events = stylize(content, [style], settings, vgg19_weights)
    first = next(events)
    assert first.stage == "compiling" and time.perf_counter() - start < 2
    assert first.preview.shape[:2] == first.shape   # init "content": the content itself
    assert np.abs(first.preview - resize(content, *first.shape)).mean() < 0.02
    steps = [e for e in events if e.stage == "steps"]
    assert steps[0].eta is None and len(steps) >= 5
    for e in steps[1:]:
        assert e.eta == pytest.approx((120 - e.completed) * 0.1), e.completed
