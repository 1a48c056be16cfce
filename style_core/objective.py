"""The objective as data: an ordered list of weighted terms, minimised as sum_k w_k L_k(x).

Each `Term` names itself and carries its weight, its loss and how to make its data (targets, masks,
statistics) from one scale's inputs. `image_objective` lists image mode's terms, content, style and
TV, then a mode's own (photo mode's matting term, video mode's temporal ones): a mode adds entries,
never a branch. Terms are summed in list order, which fixes the float sums bit for bit.

The terms that read the backbone's features of x share one forward pass. The compiled function is
cached by what it computes (backbone, pooling, each term's name, loss and layers), never by weights
or data, so a weight sweep or a new image of the same size reuses the compiled code.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .backbones import feature_extractor
from .losses import blend_grams, content_loss, gram_matrix, layer_norms, penalty, style_loss, tv_loss
from .settings import ImageSettings


@dataclass(frozen=True)
class ScaleInputs:
    """What the terms' data are made from, at one scale (or one tile): the prepared content at its
    size, the blended style Grams for that size (each mode computes them its own way: per size,
    cached per clip, or once for a whole canvas), and the backbone's variables."""
    content: np.ndarray
    grams: Mapping[str, jax.Array]
    variables: Mapping


def _no_data(inputs: ScaleInputs) -> None:
    return None


@dataclass(frozen=True)
class Term:
    """One weighted term of the objective.

    `loss(x, features, data)` is the term's value for the image x, given the backbone's features of x
    at `layers` (computed once for every term) and what `data(inputs)` made from a `ScaleInputs`,
    once per scale. `loss` must compare equal for the same computation (a module-level function or a
    frozen dataclass): the compiled code is cached by it.
    """
    name: str
    weight: float
    loss: Callable[[jax.Array, Mapping[str, jax.Array], Any], jax.Array]
    data: Callable[[ScaleInputs], Any] = _no_data
    layers: tuple[str, ...] = ()


class Aux(NamedTuple):
    """The arguments of the compiled terms besides x: the backbone's variables, each term's data."""
    variables: Mapping
    data: dict[str, Any]


@dataclass(frozen=True)
class Objective:
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
        return _terms_function(self.backbone, self.pooling, tuple((t.name, t.loss, t.layers) for t in self.terms))

    def aux(self, variables: Mapping, content: np.ndarray, grams: Mapping[str, jax.Array]) -> Aux:
        """Every term's data for one scale (or tile) whose prepared content is `content`."""
        inputs = ScaleInputs(content, grams, variables)
        return Aux(variables, {t.name: t.data(inputs) for t in self.terms})


@functools.lru_cache(maxsize=32)
def _terms_function(backbone: str, pooling: str, losses: tuple[tuple[str, Callable, tuple[str, ...]], ...]):
    layers = tuple(dict.fromkeys(layer for _, _, needs in losses for layer in needs))
    extract = feature_extractor(backbone, layers, pooling) if layers else None

    def terms(x, aux: Aux):
        features = {k: v[0] for k, v in extract(aux.variables, x[None]).items()} if extract else {}
        return {name: loss(x, features, aux.data[name]) for name, loss, _ in losses}
    return terms


@dataclass(frozen=True)
class LayerLoss:
    """sum_l w_l mean(rho(statistic of F_l(x) - target_l)) / norm_l (`losses.content_loss` or
    `style_loss`) under the penalty rho of `kind`; a frozen dataclass, so that equal settings share
    compiled code."""
    compare: Callable
    kind: str
    delta: float

    def __call__(self, x, features, data):
        return self.compare(features, data["target"], data["layer_weights"], data["norms"],
                            penalty(self.kind, self.delta))


def _tv(x, features, data):
    return tv_loss(x)


def image_objective(settings: ImageSettings, extras: Sequence[Term] = (), *,
                    content_norm: Mapping | None = None) -> Objective:
    """Content, style and TV from `settings`, then `extras`, in the order they are summed.

    `content_norm`: the content term's per-layer divisors, where one is shared by every tile (large
    mode) instead of made from each tile's own content.
    """
    def layer_loss(compare):
        return LayerLoss(compare, settings.loss, settings.huber_delta)
    return Objective(settings.backbone, settings.pooling, (
        Term("content", settings.content_weight, layer_loss(content_loss),
             functools.partial(_content_data, settings, content_norm), settings.content_layers),
        Term("style", settings.style_weight, layer_loss(style_loss),
             functools.partial(_style_data, settings), settings.style_layers),
        Term("tv", settings.tv_weight, _tv),
        *extras))


def _layer_data(settings: ImageSettings, target: Mapping, layers: Sequence[str],
                layer_weights: Sequence[float], norms: Mapping | None) -> dict:
    """A layer loss's data: its targets, their divisors (see `losses.layer_norms`), its layer weights."""
    if norms is None:
        norms = layer_norms(penalty(settings.loss, settings.huber_delta), target, settings.normalization)
    return {"target": target, "norms": norms,
            "layer_weights": dict(zip(layers, map(jnp.float32, layer_weights)))}


def _content_data(settings: ImageSettings, norms: Mapping | None, inputs: ScaleInputs) -> dict:
    target = content_features(settings, inputs.variables, inputs.content)
    return _layer_data(settings, target, settings.content_layers, settings.content_layer_weights, norms)


def _style_data(settings: ImageSettings, inputs: ScaleInputs) -> dict:
    return _layer_data(settings, inputs.grams, settings.style_layers, settings.style_layer_weights, None)


@functools.lru_cache(maxsize=32)
def target_features(backbone: str, pooling: str, layers: tuple[str, ...]):
    """jit: (variables, image (H, W, 3)) -> {layer: features (h, w, c)}, for computing targets."""
    extract = feature_extractor(backbone, layers, pooling)

    @jax.jit
    def features(variables, image):
        return {k: v[0] for k, v in extract(variables, image[None]).items()}
    return features


def content_features(settings: ImageSettings, variables: Mapping, content: np.ndarray) -> dict:
    return target_features(settings.backbone, settings.pooling, settings.content_layers)(
        variables, jnp.asarray(content))


def style_targets(settings: ImageSettings, variables: Mapping, styles: Sequence[np.ndarray],
                  ) -> dict[str, jax.Array]:
    """The blended Gram matrices of the style images, each at its own size (computed once per size)."""
    features = target_features(settings.backbone, settings.pooling, settings.style_layers)
    grams = [{k: gram_matrix(v) for k, v in features(variables, jnp.asarray(s)).items()} for s in styles]
    return {name: blend_grams([g[name] for g in grams], settings.style_blend) for name in
            settings.style_layers}
