"""Image mode: Gatys et al. style transfer as a generator of progress events.

`stylize` resizes the inputs for each scale (coarse to fine), computes the style and content targets
once per size, runs the shared optimisation loop, and yields an `events.Event` before each scale's targets
and its first chunk (a front end can stop there, before a compilation) and after each compiled chunk;
the last one carries the `StyleResult`. Front ends iterate it and may stop at any time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import color
from .backbones import min_input_side
from .errors import StyleError
from .events import Event, PassClock
from .images import fit_longest_side, resize, resize_longest
from .objective import Term, image_objective, region_style_values, region_targets, style_targets
from .optimize import descend
from .regions import Region, area_resize, check_regions, describe, restart_uncovered, targets_key
from .settings import ImageSettings
from .weights import Weights


@dataclass(frozen=True)
class StyleResult:
    image: np.ndarray                      # (H, W, 3) float32 in [0, 1]
    settings: ImageSettings
    weights_source: str
    trained_weights: bool
    initial_losses: dict[str, float]
    final_losses: dict[str, float]
    history: list[dict]                    # one entry per chunk: step, scale, seconds, losses
    iterations: int                        # steps taken over all scales
    seconds: float
    stop_reason: str
    regions: tuple[Region, ...] = ()
    region_losses: tuple[dict[str, float], ...] = ()  # each region's style term, "initial" and "final"
    evaluations: int = 0                   # of the loss and its gradient over all scales (L-BFGS: with
                                           # its line searches; first-order methods: one per step)

    def loss_curve(self) -> tuple[list[int], list[float]]:
        """(step, total loss) at each recorded chunk, for plots."""
        return [h["step"] for h in self.history], [h["losses"]["total"] for h in self.history]

    def report(self) -> dict:
        """Everything a run's JSON report and PNG text chunks hold."""
        return {"mode": "image", "settings": self.settings.to_dict(),
                "backbone": self.settings.backbone, "weights_source": self.weights_source,
                "trained_weights": self.trained_weights, "initial_losses": self.initial_losses,
                "final_losses": self.final_losses, "iterations": self.iterations,
                "evaluations": self.evaluations,
                "seconds": round(self.seconds, 3), "stop_reason": self.stop_reason,
                "output_size": list(self.image.shape[:2]), "history": self.history,
                **({"regions": describe(self.regions), "region_style_losses": list(self.region_losses)}
                   if self.regions else {})}


def scale_shapes(shape: tuple[int, int], settings: ImageSettings, styles: Sequence[tuple[int, int]] = (),
                 ) -> list[tuple[int, int]]:
    """Output (H, W) of each scale, coarse to fine; each scale doubles the last. With automatic
    scales, a coarse scale at which the content (or a style image, `styles` their shapes) would have a
    side under what the backbone needs is left out (an elongated image); asked-for scales are kept."""
    shapes = [fit_longest_side(shape, max(1, settings.size // 2 ** k)) for k in reversed(range(settings.scales))]
    need = min_input_side(settings.backbone, settings.layers)
    fits = lambda out: min(out) >= need and all(  # noqa: E731
        min(fit_longest_side(s, max(1, round(settings.style_scale * max(out))))) >= need for s in styles)
    while settings.scales_auto and len(shapes) > 1 and not fits(shapes[0]):
        shapes = shapes[1:]
    return shapes


def prepare_inputs(content: np.ndarray, styles: Sequence[np.ndarray], settings: ImageSettings,
                   ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Applies colour preservation to what the network will see."""
    if not styles:
        raise StyleError("give at least one style image")
    if settings.style_blend is not None and len(settings.style_blend) != len(styles):
        raise StyleError(f"{len(settings.style_blend)} style blend weights for {len(styles)} style images")
    need = min_input_side(settings.backbone, settings.layers)
    for what, image in [("content image", content)] + [("style image", s) for s in styles]:
        h, w = image.shape[:2]
        if min(h, w) < max(need, 2):
            raise StyleError(f"the {what} is {w}x{h} px, too small: {settings.backbone} up to "
                             f"{settings.deepest_layer} needs at least {max(need, 2)} px on each side")
    if settings.preserve_color == "histogram":
        styles = [color.match_color(s, content) for s in styles]
    elif settings.preserve_color == "luminance":
        styles = [color.match_luminance(s, content) for s in styles]
        content = color.luminance(content)
    return content, list(styles)


def initial_image(settings: ImageSettings, content: np.ndarray, styles: Sequence[np.ndarray]) -> np.ndarray:
    h, w = content.shape[:2]
    if settings.init == "content":
        return content
    if settings.init == "style":
        return resize(styles[0], h, w)
    noise = jax.random.normal(jax.random.PRNGKey(settings.seed), (h, w, 3), jnp.float32)
    return np.asarray(jnp.clip(0.5 + 0.25 * noise, 0.0, 1.0))


def stylize(content: np.ndarray, styles: Sequence[np.ndarray], settings: ImageSettings,
            weights: Weights, *, extras: Sequence[Term] = (), init: np.ndarray | None = None,
            targets: dict | None = None, regions: Sequence[Region] = ()) -> Iterator[Event]:
    """Paints `content` in the style of `styles`; yields progress, the last event has the result.

    `extras` (`objective.Term`s) are summed after content, style and TV (photo mode's matting
    Laplacian); `init` replaces `settings.init` with an image of the content's shape (photo mode's
    second stage starts from the first stage's result).
    `targets`: a dict that keeps the style targets per size between calls with the same styles and
    settings (video mode: every frame of a clip has the same style targets).
    `regions`: where each style image goes (`regions.Region`; masks of any size, resized to every
    scale); pixels that no region covers get no style term. Without regions, one style everywhere.
    """
    if weights.backbone != settings.backbone:
        raise StyleError(f"weights are for {weights.backbone}, settings ask for {settings.backbone}")
    start = time.perf_counter()
    original = content
    content, styles = prepare_inputs(content, styles, settings)
    regions = check_regions(regions, len(styles), settings.style_blend)
    regions_key = targets_key(regions) if regions else ()   # region and plain targets never share a key
    shapes = scale_shapes(content.shape[:2], settings, [s.shape[:2] for s in styles])
    need = min_input_side(settings.backbone, settings.layers)
    steps = settings.scale_iterations[-len(shapes):]
    total = sum(steps)
    objective = image_objective(settings, extras, regions=bool(regions))
    targets = {} if targets is None else targets
    history: list[dict] = []
    initial_losses: dict[str, float] = {}
    done_steps, x, reason, final_losses, evaluations = 0, None, "finished", {}, 0
    diverged = ""   # the first scale's divergence, reported whatever the later scales did
    clock = PassClock([(h * w, n) for (h, w), n in zip(shapes, steps)])
    for index, shape in enumerate(shapes, 1):
        if min(shape) < need:
            raise StyleError(f"the image is {shape[1]}x{shape[0]} px at scale {index}, but "
                             f"{settings.backbone} up to {settings.deepest_layer} needs at least {need} "
                             f"px on each side: use a larger size or a less elongated image")
        content_k = resize(content, *shape)
        styles_k = [resize_longest(s, max(1, round(settings.style_scale * max(shape)))) for s in styles]
        for s in styles_k:
            if min(s.shape[:2]) < need:
                raise StyleError(f"a style image is {s.shape[1]}x{s.shape[0]} px at this size, but "
                                 f"{settings.backbone} needs at least {need} px: raise `style_scale`")
        fresh = lambda: (resize(init, *shape) if init is not None  # noqa: E731
                         else initial_image(settings, content_k, styles_k))
        x0 = fresh() if x is None else resize(x, *shape)
        if x is not None and regions:
            x0 = restart_uncovered(x0, [area_resize(r.mask, *shape) for r in regions], fresh())
        # Before each scale's expensive parts (its targets, then the first chunk's compilation) the
        # caller gets an event: a front end's Stop is seen there, not only after the first chunk; the
        # first carries the starting picture, shown while they run.
        clock.begin(index - 1)
        at = dict(steps=steps[index - 1], shape=shape, scale=(index, len(shapes)))
        yield Event("compiling", done_steps, total, "step", seconds=time.perf_counter() - start, **at,
                    preview=finish(np.asarray(x0), original, settings))
        key = (settings.style_statistic, *(s.shape for s in styles_k)) + regions_key
        if key not in targets:
            targets[key] = (region_targets(settings, weights.variables, styles_k, regions) if regions
                            else style_targets(settings, weights.variables, styles_k))
        # On the device once: a compiled call copies every numpy argument (the weights read from a
        # file) in every call, 8 ms of a 46 ms evaluation at 64 px (bench/LOG.md 28). Done here, per
        # run, not in `Weights`, which Ray ships to its workers as numpy without copies (LOG 21).
        aux = jax.device_put(objective.aux(weights.variables, content_k, targets[key], [r.mask for r in regions]))
        next_preview = settings.preview_every
        yield Event("compiling", done_steps, total, "step", seconds=time.perf_counter() - start, **at)
        for report in descend(jnp.asarray(x0), objective.function, aux, objective.weights,
                              iterations=steps[index - 1], optimizer=settings.optimizer, lr=settings.lr,
                              steps_per_call=settings.steps_per_call, tol=settings.tol,
                              bounds=settings.bounds, average=settings.average):
            if not initial_losses:
                initial_losses = dict(report.initial_losses)
            step = done_steps + report.step
            history.append({"step": step, "scale": index, "seconds": round(time.perf_counter() - start, 3),
                            "losses": dict(report.losses)})
            if report.finished:
                x = np.clip(np.asarray(report.x), 0.0, 1.0)
                final_losses, reason = dict(report.losses), report.stop_reason
                evaluations += report.evaluations
                if reason.startswith("diverged") and not diverged:
                    diverged = f"{reason} (scale {index} of {len(shapes)})" if len(shapes) > 1 else reason
                done_steps = step
                break
            preview = None
            if report.step >= next_preview:
                next_preview = (report.step // settings.preview_every + 1) * settings.preview_every
                preview = finish(np.asarray(report.x), original, settings)
            yield Event("steps", step, total, "step", dict(report.losses), time.perf_counter() - start,
                        report.step, steps[index - 1], shape, (index, len(shapes)), eta=clock.left(report.step),
                        preview=preview)
        # A diverged scale hands on its best image: the next scales still make the requested size.
    reason = diverged or reason
    region_losses = ()
    if regions:  # each region's own style term at the output's size, from the run's start and at its end
        values = [region_style_values(settings, weights.variables, y, aux.data["style"]) for y in (fresh(), x)]
        region_losses = tuple({"initial": a, "final": b} for a, b in zip(*values))
    image = finish(x, original, settings)
    result = StyleResult(image, settings, weights.source, weights.trained, initial_losses, final_losses,
                         history, done_steps, time.perf_counter() - start, reason, regions, region_losses,
                         evaluations)
    yield Event("done", done_steps, total, "step", final_losses, result.seconds, shape=shapes[-1],
                scale=(len(shapes), len(shapes)), preview=image, result=result)


def finish(x: np.ndarray, original: np.ndarray, settings: ImageSettings) -> np.ndarray:
    """The image as the user sees it: clipped, with the content's colours put back if asked."""
    x = np.clip(x, 0.0, 1.0).astype(np.float32)
    if settings.preserve_color == "luminance":
        return color.combine_luminance(x, resize(original, *x.shape[:2]))
    return x
