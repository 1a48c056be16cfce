"""The objective as data: a list of weighted terms, minimised as sum_k w_k L_k(x) in list order.

`image_objective` lists content, style and TV, then a mode's own terms (photo's matting term, video's
temporal ones): a mode adds entries, never a branch. The style term compares the settings' style
statistic (`statistics.py`: Gram matrices by default), which also makes its targets here; with regions
(`regions.py`) it compares each region's guided statistic instead, under the same name. The terms that
read the backbone's features of x share one forward pass; the compiled function is cached by what it computes, not by
weights or data, so a weight sweep or a new image of the same size reuses the compiled code.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .backbones import feature_extractor
from .losses import content_loss, layer_norms, penalty, tv_loss
from .regions import Region, layer_guides, region_style_loss
from .statistics import blend, style_loss
from .settings import ImageSettings


@dataclass(frozen=True)
class ScaleInputs:
    """What terms' data are made from at one scale (or tile): the prepared content at its size, the
    style statistic's blended targets for that size (`style_targets`; large mode makes them in pieces),
    the backbone's variables; with regions, `targets` holds each region's guided targets
    (`region_targets`) and `masks` each region's mask on this scale (or tile) of the output, in
    region order."""
    content: np.ndarray
    targets: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    variables: Mapping
    masks: Sequence[np.ndarray] = ()


@dataclass(frozen=True)
class Term:
    """One weighted term: `loss(x, features, data)`, with the backbone's features of x at `layers` and
    what `data(ScaleInputs)` made once per scale. The compiled code is cached by `loss`: make it the
    same object for the same computation (a module-level function, or one from a cached factory)."""
    name: str
    weight: float
    loss: Callable[[jax.Array, Mapping[str, jax.Array], Any], jax.Array]
    data: Callable[[ScaleInputs], Any] | None = None
    layers: tuple[str, ...] = ()


class Aux(NamedTuple):
    """The arguments of the compiled terms besides x: the backbone's variables, each term's data."""
    variables: Mapping
    data: dict[str, Any]


@dataclass(frozen=True)
class Objective:
    """A mode's terms in the order they are summed, and the backbone whose features they read."""
    backbone: str
    pooling: str
    terms: tuple[Term, ...]

    @property
    def weights(self) -> dict[str, float]:
        """{name: weight}, in the order the terms are summed."""
        return {t.name: t.weight for t in self.terms}

    @property
    def function(self) -> Callable[[jax.Array, Aux], dict[str, jax.Array]]:
        """terms(x, aux) -> {name: value}, the same function object for the same computation."""
        losses = tuple((t.name, t.loss, t.layers) for t in self.terms)
        return _terms_function(self.backbone, self.pooling, losses)

    def aux(self, variables: Mapping, content: np.ndarray, targets, masks: Sequence[np.ndarray] = ()) -> Aux:
        """Every term's data for one scale (or tile) whose prepared content is `content` (see
        `ScaleInputs` for `targets` and `masks`)."""
        inputs = ScaleInputs(content, targets, variables, tuple(masks))
        return Aux(variables, {t.name: t.data(inputs) if t.data else None for t in self.terms})


@functools.lru_cache(maxsize=32)
def _terms_function(backbone: str, pooling: str, losses: tuple[tuple[str, Callable, tuple[str, ...]], ...]):
    """One configuration's terms: one forward pass gives every term the features it reads."""
    layers = tuple(dict.fromkeys(layer for _, _, needs in losses for layer in needs))
    extract = feature_extractor(backbone, layers, pooling) if layers else None

    def terms(x, aux: Aux):
        features = {k: v[0] for k, v in extract(aux.variables, x[None]).items()} if extract else {}
        return {name: loss(x, features, aux.data[name]) for name, loss, _ in losses}
    return terms


@functools.lru_cache(maxsize=None)
def layer_loss(compare: Callable, kind: str, delta: float) -> Callable:
    """`losses.content_loss` or `style_loss` under the penalty `kind` as a term's loss (one object
    per configuration: the compiled code is cached by it)."""
    rho = penalty(kind, delta)
    return lambda x, features, data: compare(features, data["target"], data["layer_weights"],
                                             data["norms"], rho)


@functools.lru_cache(maxsize=None)
def statistic_loss(statistic, kind: str, delta: float) -> Callable:
    """`statistics.style_loss` of `statistic` under the penalty `kind` as a term's loss (one object per
    configuration: the compiled code is cached by it)."""
    rho = penalty(kind, delta)
    return lambda x, features, data: style_loss(features, data["target"], data["layer_weights"], data["norms"],
                                                rho, statistic)


@functools.lru_cache(maxsize=None)
def region_loss(statistic, kind: str, delta: float) -> Callable:
    """`regions.region_style_loss` of `statistic` under the penalty `kind` as a term's loss (one object
    per configuration, whatever the number of regions: that is in the data's structure)."""
    rho = penalty(kind, delta)
    return lambda x, features, data: region_style_loss(features, data["guides"], data["targets"],
                                                       data["layer_weights"], data["norms"], rho,
                                                       data["weights"], statistic)


def _tv(x, features, data):
    return tv_loss(x)


def image_objective(settings: ImageSettings, extras: Sequence[Term] = (), *,
                    content_norm: Mapping | None = None, regions: bool = False) -> Objective:
    """Content, style and TV from `settings`, then `extras`, in the order they are summed.
    `content_norm`: the content term's divisors, where every tile shares one (large mode).
    `regions`: the style term is that of regions, whose targets and masks come with each scale's
    inputs (`ScaleInputs`)."""
    rho, statistic = (settings.loss, settings.huber_delta), settings.statistic
    style = (Term("style", settings.style_weight, region_loss(statistic, *rho),
                  lambda inputs: region_data(settings, inputs), settings.style_layers) if regions else
             Term("style", settings.style_weight, statistic_loss(statistic, *rho),
                  lambda inputs: _layer_data(settings, inputs.targets, settings.style_layers,
                                             settings.style_layer_weights, None, statistic.scale),
                  settings.style_layers))
    return Objective(settings.backbone, settings.pooling, (
        Term("content", settings.content_weight, layer_loss(content_loss, *rho),
             lambda inputs: content_data(settings, inputs.variables, inputs.content, content_norm),
             settings.content_layers),
        style,
        Term("tv", settings.tv_weight, _tv),
        *extras))


def _layer_data(settings: ImageSettings, target: Mapping, layers: Sequence[str],
                layer_weights: Sequence[float], norms: Mapping | None, scale: Callable | None = None) -> dict:
    """A layer loss's data: its targets, their divisors (see `losses.layer_norms`, `scale` theirs), its
    layer weights."""
    if norms is None:
        rho = penalty(settings.loss, settings.huber_delta)
        norms = layer_norms(rho, target, settings.normalization, scale and (lambda t: scale(t, rho)))
    return {"target": target, "norms": norms,
            "layer_weights": dict(zip(layers, map(jnp.float32, layer_weights)))}


def region_data(settings: ImageSettings, inputs: ScaleInputs) -> dict:
    """The region style term's data at one scale (or tile): each region's layer guides (its mask, which
    covers exactly this scale's or tile's content, brought to every style layer), targets, divisors,
    weight (0 where its mask has no mass: a tile it does not reach keeps the same structure, so the
    same compiled code, and gets no term from it) and the layer weights."""
    if len(inputs.masks) != len(inputs.targets):
        raise ValueError(f"{len(inputs.masks)} masks for {len(inputs.targets)} regions' targets")
    shapes = feature_shapes(settings, inputs.variables, inputs.content.shape[:2])
    rho, scale = penalty(settings.loss, settings.huber_delta), settings.statistic.scale
    return {"guides": tuple(layer_guides(m, shapes) for m in inputs.masks),
            "targets": tuple(inputs.targets),
            "norms": tuple(layer_norms(rho, t, settings.normalization, lambda v: scale(v, rho))
                           for t in inputs.targets),
            "weights": tuple(jnp.float32(np.max(m) > 0) for m in inputs.masks),
            "layer_weights": dict(zip(settings.style_layers, map(jnp.float32, settings.style_layer_weights)))}


def region_style_values(settings: ImageSettings, variables: Mapping, x: np.ndarray, data: dict) -> list[float]:
    """Each region's own part of the region style term at the image x, from that term's `data` at x's
    scale (`region_data`): how far each region is from its style, which the term's sum hides."""
    features = target_features(settings.backbone, settings.pooling, settings.style_layers)(
        variables, jnp.asarray(x))
    rho = penalty(settings.loss, settings.huber_delta)
    return [float(region_style_loss(features, [g], [t], data["layer_weights"], [n], rho, [c], settings.statistic))
            for g, t, n, c in zip(data["guides"], data["targets"], data["norms"], data["weights"])]


def content_data(settings: ImageSettings, variables: Mapping, content: np.ndarray,
                 norms: Mapping | None = None) -> dict:
    """The content term's data: the content's features, their divisors (or `norms`), the layer weights."""
    target = target_features(settings.backbone, settings.pooling, settings.content_layers)(
        variables, jnp.asarray(content))
    return _layer_data(settings, target, settings.content_layers, settings.content_layer_weights, norms)


def feature_shapes(settings: ImageSettings, variables: Mapping, shape: tuple[int, int],
                   ) -> dict[str, tuple[int, int]]:
    """{style layer: (H_l, W_l)} of the features of an image of `shape` (traced, not computed)."""
    maps = jax.eval_shape(target_features(settings.backbone, settings.pooling, settings.style_layers),
                          variables, jax.ShapeDtypeStruct((*shape, 3), jnp.float32))
    return {name: tuple(v.shape[:2]) for name, v in maps.items()}


@functools.lru_cache(maxsize=32)
def target_features(backbone: str, pooling: str, layers: tuple[str, ...]):
    """jit: (variables, image (H, W, 3)) -> {layer: features (h, w, c)}, for computing targets."""
    extract = feature_extractor(backbone, layers, pooling)

    @jax.jit
    def features(variables, image):
        return {k: v[0] for k, v in extract(variables, image[None]).items()}
    return features


def style_targets(settings: ImageSettings, variables: Mapping, styles: Sequence[np.ndarray],
                  ) -> dict[str, Any]:
    """The style statistic's targets of the style images, each at its own size, their moments blended
    (`statistics.blend`; computed once per size)."""
    statistic = settings.statistic
    features = target_features(settings.backbone, settings.pooling, settings.style_layers)
    moments = [{k: statistic.moments(statistic.sums(v)) for k, v in features(variables, jnp.asarray(s)).items()}
               for s in styles]
    return {name: statistic.target(blend([m[name] for m in moments], settings.style_blend))
            for name in settings.style_layers}


def region_targets(settings: ImageSettings, variables: Mapping, styles: Sequence[np.ndarray],
                   regions: Sequence[Region]) -> tuple[dict[str, Any], ...]:
    """Each region's guided targets of its style image (at its size in `styles`) under its style mask
    (the whole image without one), computed once per size; each style image's features once."""
    statistic = settings.statistic
    features = target_features(settings.backbone, settings.pooling, settings.style_layers)
    maps = {k: features(variables, jnp.asarray(styles[k])) for k in sorted({r.style for r in regions})}
    out = []
    for r in regions:
        f = maps[r.style]
        guides = (dict.fromkeys(f) if r.style_mask is None else
                  layer_guides(r.style_mask, {name: v.shape[:2] for name, v in f.items()}))
        out.append({name: statistic.target(statistic.moments(statistic.sums(f[name], guides[name])))
                    for name in settings.style_layers})
    return tuple(out)
