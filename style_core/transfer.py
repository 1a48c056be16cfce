"""Image mode: Gatys et al. style transfer as a generator of progress events.

`stylize` resizes the inputs for each scale (coarse to fine), computes the style and content targets
once per size, runs the shared optimisation loop, and yields a `Progress` after each compiled chunk;
the last one carries the `StyleResult`. Front ends iterate it and may stop at any time.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import color
from .backbones import feature_extractor, min_input_side
from .errors import StyleError
from .images import fit_longest_side, resize, resize_longest
from .losses import blend_grams, content_loss, gram_matrix, layer_norms, penalty, style_loss, tv_loss
from .optimize import descend
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

    def loss_curve(self) -> tuple[list[int], list[float]]:
        """(step, total loss) at each recorded chunk, for plots."""
        return [h["step"] for h in self.history], [h["losses"]["total"] for h in self.history]

    def report(self) -> dict:
        """Everything a run's JSON report and PNG text chunks hold."""
        return {"mode": "image", "settings": self.settings.to_dict(),
                "backbone": self.settings.backbone, "weights_source": self.weights_source,
                "trained_weights": self.trained_weights, "initial_losses": self.initial_losses,
                "final_losses": self.final_losses, "iterations": self.iterations,
                "seconds": round(self.seconds, 3), "stop_reason": self.stop_reason,
                "output_size": list(self.image.shape[:2]), "history": self.history}


@dataclass(frozen=True)
class Progress:
    step: int                              # steps done over all scales
    total: int                             # steps planned over all scales
    scale: int                             # 1-based index of the current scale
    scales: int
    shape: tuple[int, int]                 # (H, W) being optimised
    losses: dict[str, float]
    seconds: float
    preview: np.ndarray | None = None      # the current image, every `preview_every` steps
    result: StyleResult | None = field(default=None, repr=False)  # set on the last event

    @property
    def done(self) -> bool:
        return self.result is not None


@dataclass(frozen=True)
class ExtraTerm:
    """One more loss term for the image-mode loop (photorealism, temporal consistency).

    `loss(x, data)` is the term's value for the image x; `data(content)` makes what it needs from the
    (prepared) content at each scale's size, once per scale. `loss` should be a module-level function:
    the compiled loop is cached by it.
    """
    name: str
    weight: float
    loss: Callable[[jax.Array, Any], jax.Array]
    data: Callable[[np.ndarray], Any]


@functools.lru_cache(maxsize=32)
def image_terms(backbone: str, pooling: str, content_layers: tuple[str, ...],
                style_layers: tuple[str, ...], loss: str, delta: float,
                extras: tuple[tuple[str, Callable], ...] = ()):
    """terms(x, aux) -> {content, style, tv, *extras} for one configuration (cached: one compile per
    shape).

    `aux` holds the backbone variables and the targets: content features, blended style Grams, the
    per-layer divisors of the normalisation and the per-layer weights; `aux["extra"][name]` the data
    of each extra term `(name, loss)`.
    """
    extract = feature_extractor(backbone, tuple(dict.fromkeys(content_layers + style_layers)), pooling)
    rho = penalty(loss, delta)

    def terms(x, aux):
        features = extract(aux["variables"], x[None])
        features = {k: v[0] for k, v in features.items()}
        return {"content": content_loss(features, aux["content"], aux["content_w"], aux["content_norm"], rho),
                "style": style_loss(features, aux["style"], aux["style_w"], aux["style_norm"], rho),
                "tv": tv_loss(x), **{name: fn(x, aux["extra"][name]) for name, fn in extras}}

    return terms


@functools.lru_cache(maxsize=32)
def _target_fn(backbone: str, pooling: str, layers: tuple[str, ...]):
    extract = feature_extractor(backbone, layers, pooling)

    @jax.jit
    def features(variables, image):
        return {k: v[0] for k, v in extract(variables, image[None]).items()}
    return features


def style_targets(settings: ImageSettings, variables: Mapping, styles: Sequence[np.ndarray],
                  ) -> dict[str, jax.Array]:
    """The blended Gram matrices of the style images, each at its own size (computed once per size)."""
    features = _target_fn(settings.backbone, settings.pooling, settings.style_layers)
    grams = [{k: gram_matrix(v) for k, v in features(variables, jnp.asarray(s)).items()} for s in styles]
    return {name: blend_grams([g[name] for g in grams], settings.style_blend) for name in
            settings.style_layers}


def make_aux(settings: ImageSettings, variables: Mapping, content: np.ndarray,
             styles: Sequence[np.ndarray] = (), *, grams: Mapping | None = None,
             content_norm: Mapping | None = None) -> dict:
    """Targets for one size: content features, style Grams, normalisation divisors, layer weights.

    Large mode passes the Grams (computed once for the whole canvas) and the content divisors
    (one for every tile) instead of having them computed from this content and these styles.
    """
    rho = penalty(settings.loss, settings.huber_delta)
    content_features = content_features_of(settings, variables, content)
    grams = style_targets(settings, variables, styles) if grams is None else grams
    return {"variables": variables, "content": content_features, "style": grams,
            "content_norm": (layer_norms(rho, content_features, settings.normalization)
                             if content_norm is None else content_norm),
            "style_norm": layer_norms(rho, grams, settings.normalization),
            "content_w": dict(zip(settings.content_layers, map(jnp.float32, settings.content_layer_weights))),
            "style_w": dict(zip(settings.style_layers, map(jnp.float32, settings.style_layer_weights)))}


def content_features_of(settings: ImageSettings, variables: Mapping, content: np.ndarray) -> dict:
    return _target_fn(settings.backbone, settings.pooling, settings.content_layers)(
        variables, jnp.asarray(content))


def scale_shapes(shape: tuple[int, int], settings: ImageSettings) -> list[tuple[int, int]]:
    """Output (H, W) of each scale, coarse to fine; each scale doubles the last."""
    return [fit_longest_side(shape, max(1, settings.size // 2 ** k))
            for k in reversed(range(settings.scales))]


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
            weights: Weights, *, extras: Sequence[ExtraTerm] = (), init: np.ndarray | None = None,
            grams: dict | None = None) -> Iterator[Progress]:
    """Paints `content` in the style of `styles`; yields progress, the last event has the result.

    `extras` add loss terms (photo mode's matting Laplacian); `init` replaces `settings.init` with an
    image of the content's shape (photo mode's second stage starts from the first stage's result).
    `grams`: a dict that keeps the style targets per size between calls with the same styles and
    settings (video mode: every frame of a clip has the same style targets).
    """
    if weights.backbone != settings.backbone:
        raise StyleError(f"weights are for {weights.backbone}, settings ask for {settings.backbone}")
    start = time.perf_counter()
    original = content
    content, styles = prepare_inputs(content, styles, settings)
    shapes = scale_shapes(content.shape[:2], settings)
    need = min_input_side(settings.backbone, settings.layers)
    steps = settings.scale_iterations
    total = sum(steps)
    term_weights = {"content": settings.content_weight, "style": settings.style_weight,
                    "tv": settings.tv_weight, **{e.name: e.weight for e in extras}}
    terms = image_terms(settings.backbone, settings.pooling, settings.content_layers,
                        settings.style_layers, settings.loss, settings.huber_delta,
                        tuple((e.name, e.loss) for e in extras))
    history: list[dict] = []
    initial_losses: dict[str, float] = {}
    done_steps, x, reason, final_losses = 0, None, "finished", {}
    diverged = ""   # the first scale's divergence, reported whatever the later scales did
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
        key = tuple(s.shape for s in styles_k)
        if grams is not None and key not in grams:
            grams[key] = style_targets(settings, weights.variables, styles_k)
        aux = make_aux(settings, weights.variables, content_k, styles_k,
                       grams=None if grams is None else grams[key])
        if extras:
            aux["extra"] = {e.name: e.data(content_k) for e in extras}
        x0 = (resize(x, *shape) if x is not None else resize(init, *shape) if init is not None
              else initial_image(settings, content_k, styles_k))
        next_preview = settings.preview_every
        for report in descend(jnp.asarray(x0), terms, aux, term_weights, iterations=steps[index - 1],
                              optimizer=settings.optimizer, lr=settings.lr,
                              steps_per_call=settings.steps_per_call, tol=settings.tol, bounded=settings.bounded):
            if not initial_losses:
                initial_losses = dict(report.initial_losses)
            step = done_steps + report.step
            history.append({"step": step, "scale": index, "seconds": round(time.perf_counter() - start, 3),
                            "losses": dict(report.losses)})
            if report.finished:
                x = np.clip(np.asarray(report.x), 0.0, 1.0)
                final_losses, reason = dict(report.losses), report.stop_reason
                if reason.startswith("diverged") and not diverged:
                    diverged = f"{reason} (scale {index} of {len(shapes)})" if len(shapes) > 1 else reason
                done_steps = step
                break
            preview = None
            if report.step >= next_preview:
                next_preview = (report.step // settings.preview_every + 1) * settings.preview_every
                preview = _finish(np.asarray(report.x), original, settings)
            yield Progress(step, total, index, len(shapes), shape, dict(report.losses),
                           time.perf_counter() - start, preview)
        # A diverged scale hands on its best image: the next scales still make the requested size.
    reason = diverged or reason
    image = _finish(x, original, settings)
    result = StyleResult(image, settings, weights.source, weights.trained, initial_losses, final_losses,
                         history, done_steps, time.perf_counter() - start, reason)
    yield Progress(done_steps, total, len(shapes), len(shapes), shapes[-1], final_losses,
                   result.seconds, image, result)


def _finish(x: np.ndarray, original: np.ndarray, settings: ImageSettings) -> np.ndarray:
    """The image as the user sees it: clipped, with the content's colours put back if asked."""
    x = np.clip(x, 0.0, 1.0).astype(np.float32)
    if settings.preserve_color == "luminance":
        return color.combine_luminance(x, resize(original, *x.shape[:2]))
    return x
