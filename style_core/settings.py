"""Settings of image mode: one frozen dataclass, validated once, built alike by the CLI, app and tests."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Sequence

from .backbones import (BACKBONES, POOLINGS, default_content_layers, layer_table, min_input_side,
                        resolve_layers)
from .errors import StyleError
from .losses import LOSS_KINDS, NORMALIZATIONS
from .optimize import OPTIMIZERS

INITS = ("content", "style", "noise")
BOUNDS = ("box", "none")   # L-BFGS keeps the image in [0, 1] while optimising, or not
PRESERVE_COLOR = ("none", "luminance", "histogram")
DEFAULT_LR = {name: o.lr for name, o in OPTIMIZERS.items()}
# Style weight per normalisation: "paper" takes the research deck's 1e5 (content 1); "relative"
# makes every layer term start near 1, so its weights are of order one.
DEFAULT_STYLE_WEIGHT = {"paper": 1e5, "relative": 10.0}
MAX_SIZE = 8192
# JAX's PRNG keys hold 32 bits of seed (without x64); a larger seed would overflow or repeat a smaller one.
MAX_SEED = 2 ** 32 - 1
# Coarse-to-fine by default from this size up: a pass at half the size first, whose result starts
# the full-size pass (bench/LOG.md 7: the full-size loss then falls to a plain run's in far fewer
# full-size steps).
AUTO_SCALES_FROM = 256
# Steps at each coarser scale, as a fraction of `iterations` (the full-size pass's), when not given:
# the coarse passes only have to bring the full-size pass a good start (bench/LOG.md 9).
COARSE_FRACTION = 0.25
# Stop a scale once the loss falls by less than this fraction per step (over at least TOL_SPAN steps):
# L-BFGS's loss only goes down, and at 256 px the last 124 of the full size's 300 steps lowered it by
# only 0.75% (bench/LOG.md 16). First-order methods' losses wobble, so they run their count unless told.
DEFAULT_TOL = {name: o.tol for name, o in OPTIMIZERS.items()}


def auto_scales(size: int) -> int:
    return 2 if size >= AUTO_SCALES_FROM else 1


def parse_layer_spec(spec: str | Sequence[str], backbone: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """`paper`, `first5`, or names with optional weights: "relu1_1:0.5, relu2_1" -> names, weights."""
    items = [spec] if isinstance(spec, str) and spec in ("paper", "first5") else (
        [s for s in spec.replace(",", " ").split() if s] if isinstance(spec, str) else list(spec))
    names, weights = [], []
    for item in items:
        name, _, weight = str(item).partition(":")
        resolved = resolve_layers(backbone, name)
        names += resolved
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise StyleError(f"layer weight {weight!r} in {item!r} is not a number") from None
        if not math.isfinite(w) or w < 0:
            raise StyleError(f"layer weight {weight!r} in {item!r} must be a finite number >= 0")
        weights += [w] * len(resolved)
    if not names:
        raise StyleError("a layer list is empty")
    if len(set(names)) != len(names):
        raise StyleError(f"a layer is listed twice in {spec!r}")
    return tuple(names), tuple(weights)


def check_number(name: str, value, minimum: float = 0.0, strict: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise StyleError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        raise StyleError(f"{name} must be a finite number {'>' if strict else '>='} {minimum:g}, "
                         f"not {value!r}")
    return value


def check_int(name: str, value, minimum: int, maximum: int | None = None) -> int:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or (isinstance(value, float) and not math.isfinite(value)) or value != int(value)):
        raise StyleError(f"{name} must be a whole number, not {value!r}")
    if int(value) < minimum:
        raise StyleError(f"{name} must be at least {minimum}, not {int(value)}")
    if maximum is not None and int(value) > maximum:
        raise StyleError(f"{name} must be at most {maximum}, not {int(value)}")
    return int(value)


def check_choice(name: str, value, choices: Sequence[str]) -> str:
    if value not in choices:
        raise StyleError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return value


@dataclass(frozen=True)
class ImageSettings:
    """Every knob of image mode. Layer specs are resolved to names and weights on construction."""
    size: int = 512                      # longest side of the output, pixels
    iterations: int = 300                # optimisation steps at the full size
    optimizer: str = "lbfgs"
    lr: float | None = None              # None: DEFAULT_LR[optimizer]
    content_weight: float = 1.0
    style_weight: float | None = None    # None: DEFAULT_STYLE_WEIGHT[normalization]
    tv_weight: float = 0.0
    content_layers: str | tuple = ()     # () -> the backbone's default (relu4_2 for VGG)
    style_layers: str | tuple = "paper"
    backbone: str = "vgg19"
    pooling: str = "max"
    init: str = "content"
    loss: str = "mse"
    huber_delta: float = 1.0             # delta of huber, beta of smooth_l1
    normalization: str = "paper"
    seed: int = 0
    preserve_color: str = "none"
    style_blend: tuple[float, ...] | None = None
    style_scale: float = 1.0             # style image's longest side relative to the output's
    scales: int | None = None            # coarse-to-fine passes, each twice the size of the last;
                                         # None: auto_scales(size), again whenever the size changes
    coarse_iterations: int | None = None  # steps at each coarser scale; None: COARSE_FRACTION of iterations
    tol: float | None = None             # stop a scale when the loss falls by less than this per step;
                                         # None: DEFAULT_TOL[optimizer]
    bounds: str = "box"                  # L-BFGS: "box" keeps the image in [0, 1] (L-BFGS-B);
                                         # "none" clips it only when saved (first-order: always box)
    chunk: int = 20                      # steps compiled into one call
    preview_every: int = 50
    weights: str | None = None           # a path, "random", or None for the hub/cache
    content_layer_weights: tuple[float, ...] = field(default=(), repr=False)
    style_layer_weights: tuple[float, ...] = field(default=(), repr=False)
    scales_auto: bool = field(default=False, repr=False, compare=False)
    tol_auto: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        check_choice("backbone", self.backbone, BACKBONES)
        check_choice("pooling", self.pooling, POOLINGS)
        if self.pooling != "max" and not self.backbone.startswith("vgg"):
            raise StyleError("--pooling avg applies to VGG backbones only")
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("init", self.init, INITS)
        check_choice("bounds", self.bounds, BOUNDS)
        check_choice("loss kind", self.loss, LOSS_KINDS)
        check_choice("normalisation", self.normalization, NORMALIZATIONS)
        check_choice("preserve-color mode", self.preserve_color, PRESERVE_COLOR)
        set_("size", check_int("size", self.size, 1))
        if self.size > MAX_SIZE:
            raise StyleError(f"size {self.size} is over the image-mode limit of {MAX_SIZE} px "
                             f"(large mode tiles bigger outputs)")
        set_("iterations", check_int("iterations", self.iterations, 0))
        set_("seed", check_int("seed", self.seed, 0, MAX_SEED))
        set_("scales_auto", self.scales is None)   # a copy with a given value is no longer automatic
        if self.scales is None:
            set_("scales", auto_scales(self.size))
        set_("scales", check_int("scales", self.scales, 1))
        if self.coarse_iterations is not None:
            set_("coarse_iterations", check_int("coarse iterations", self.coarse_iterations, 0))
        set_("chunk", check_int("chunk", self.chunk, 1))
        set_("preview_every", check_int("preview_every", self.preview_every, 1))
        set_("tol_auto", self.tol is None)         # again whenever the optimizer changes
        if self.tol is None:
            set_("tol", DEFAULT_TOL[self.optimizer])
        for name in ("content_weight", "tv_weight", "tol"):
            set_(name, check_number(name.replace("_", " "), getattr(self, name)))
        set_("style_weight", DEFAULT_STYLE_WEIGHT[self.normalization] if self.style_weight is None
             else check_number("style weight", self.style_weight))
        set_("lr", DEFAULT_LR[self.optimizer] if self.lr is None
             else check_number("learning rate", self.lr, strict=True))
        set_("huber_delta", check_number("huber delta", self.huber_delta, strict=True))
        set_("style_scale", check_number("style scale", self.style_scale, strict=True))
        if self.style_blend is not None:
            blend = tuple(check_number("style blend weight", b) for b in self.style_blend)
            if sum(blend) <= 0:
                raise StyleError("style blend weights must not all be zero")
            set_("style_blend", blend)
        layer_table(self.backbone)
        if not self.content_layer_weights:
            names, weights = parse_layer_spec(self.content_layers or default_content_layers(self.backbone),
                                              self.backbone)
            set_("content_layers", names)
            set_("content_layer_weights", weights)
        if not self.style_layer_weights:
            names, weights = parse_layer_spec(self.style_layers, self.backbone)
            set_("style_layers", names)
            set_("style_layer_weights", weights)
        smallest = self.size // 2 ** (self.scales - 1)
        need = min_input_side(self.backbone, self.layers)
        if smallest < need:
            what = f"the coarsest of {self.scales} scales is {smallest} px" if self.scales > 1 \
                else f"size {self.size} px"
            raise StyleError(f"{what}, but {self.backbone} up to {self.deepest_layer} downsamples by "
                             f"{need}: use a size of at least {need * 2 ** (self.scales - 1)} px")

    @property
    def bounded(self) -> bool:
        """Whether L-BFGS keeps the image in [0, 1] while optimising (first-order methods always do)."""
        return self.bounds == "box"

    @property
    def scale_iterations(self) -> tuple[int, ...]:
        """Steps at each scale, coarse to fine."""
        coarse = (math.ceil(COARSE_FRACTION * self.iterations) if self.coarse_iterations is None
                  else self.coarse_iterations)
        return (coarse,) * (self.scales - 1) + (self.iterations,)

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.content_layers + self.style_layers))

    @property
    def deepest_layer(self) -> str:
        from .backbones import deepest
        return deepest(self.backbone, self.layers)

    def replace(self, **changes) -> "ImageSettings":
        """A copy with some settings changed (layer specs are re-resolved when they change)."""
        if "content_layers" in changes or "backbone" in changes:
            changes.setdefault("content_layer_weights", ())
            changes.setdefault("content_layers", self.content_layers if "backbone" not in changes else ())
        if "style_layers" in changes or "backbone" in changes:
            changes.setdefault("style_layer_weights", ())
            changes.setdefault("style_layers", self.style_layers if "backbone" not in changes else "paper")
        if self.scales_auto and "scales" not in changes:
            changes["scales"] = None
        if self.tol_auto and "tol" not in changes:
            changes["tol"] = None
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["content_layers"] = dict(zip(self.content_layers, self.content_layer_weights))
        d["style_layers"] = dict(zip(self.style_layers, self.style_layer_weights))
        del d["content_layer_weights"], d["style_layer_weights"], d["scales_auto"], d["tol_auto"]
        return d
