"""Settings of image mode: one frozen dataclass, validated once, built alike by the CLI, app and tests."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from .backbones import (BACKBONES, POOLINGS, default_content_layers, layer_table, min_input_side,
                        resolve_layers)
from .errors import StyleError
from .lbfgs import BOUNDS   # how L-BFGS keeps the image in [0, 1] while optimising, or not
from .losses import LOSS_KINDS, NORMALIZATIONS
from .optimize import OPTIMIZERS
from .statistics import STATISTICS

INITS = ("content", "style", "noise")
PRESERVE_COLOR = ("none", "luminance", "histogram")
DEFAULT_LR = {name: o.lr for name, o in OPTIMIZERS.items()}
# Style weight per normalisation (content 1), tuned on the trained VGG16 on real photos and paintings
# (bench/LOG.md 22). "relative", the default, divides each layer's term by its target's own size, so a
# weight means the same for every network, layer and image size: at 1 a photo keeps its shapes and
# takes the painting's strokes and colours; at 10 (the old default, tuned on random weights) the
# painting's objects come in (a ship's sails over a city). "paper" terms scale with the network's
# features to the fourth power: 4 suits the Caffe-scaled VGG16 (Keras' files, inputs in 0-255), and
# the deck's 1e5 repaints the painting; a torchvision network's features are far smaller, so its
# "paper" weights are not these: use "relative" across networks.
DEFAULT_STYLE_WEIGHT = {"paper": 4.0, "relative": 1.0}
MAX_SIZE = 8192
# JAX's PRNG keys hold 32 bits of seed (without x64); a larger seed would overflow or repeat a smaller one.
MAX_SEED = 2 ** 32 - 1
# Coarse-to-fine by default, each pass at half the size of the next and starting it, up to AUTO_SCALES
# passes, but none under COARSEST_SCALE px: on a trained network a pass at 64 px paints the painting's
# own layout (Starry Night's moon, the Shipwreck's sails) over the photo, and the finer passes keep it
# (grey-level structure 0.60 against 0.83-0.94 at one scale, bench/LOG.md 22); at 256 px and up a
# network sees the photo's scene. The speed-up stays where it is worth most (LOG 7, 17: the
# full-size pass starts near its end, 20-43% fewer full-size evaluations).
COARSEST_SCALE = 256
AUTO_SCALES = 3
# Steps at each coarser scale, as a fraction of `iterations` (the full-size pass's), when not given:
# the coarse passes only have to bring the full-size pass a good start (bench/LOG.md 9).
COARSE_FRACTION = 0.25
# Stop a scale once the lowest loss so far falls by less than this fraction per step (over at least
# TOL_SPAN steps): at 256 px the last 124 of the full size's 300 steps lowered it by only 0.75%
# (bench/LOG.md 16). First-order methods' losses wobble, so they run their count unless told.
DEFAULT_TOL = {name: o.tol for name, o in OPTIMIZERS.items()}


def auto_scales(size: int, need: int = 1) -> int:
    """The default number of scales at `size` px: as many as fit (up to AUTO_SCALES) with the coarsest
    at COARSEST_SCALE px or more (512 px: 2, 1024 px: 3), and at `need` px or more."""
    scales = 1
    while scales < AUTO_SCALES and size // 2 ** scales >= max(COARSEST_SCALE, need):
        scales += 1
    return scales


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


def setting(default, help: str, *, choices: Sequence[str] | None = None, minimum: float | None = None,
            maximum: float | None = None, strict: bool | None = None, what: str | None = None,
            flag: str | None = None, label: str | None = None, slider: tuple[float, float, float] | None = None):
    """A settings field carrying what it accepts and what front ends show of it, so that each is
    written once: help text, choices, range (above `minimum` only if `strict`), the words messages
    name it by (`what`; its name with spaces by default), the CLI's flag where it is not
    `--field-name`, and the studio's control: its `label` (its name with spaces by default) and, for
    a number shown as a slider, the slider's (low, high, step). `check_fields` validates by them; the
    CLI's options, the studio's controls and API parameters, and the report follow from them."""
    shown = dict(help=help, choices=choices, minimum=minimum, maximum=maximum, strict=strict, what=what,
                 flag=flag, label=label, slider=slider)
    return field(default=default, metadata={k: v for k, v in shown.items() if v is not None})


def check_fields(settings) -> None:
    """Checks every set field of `settings` against its choices or range, keeping the checked value
    (an int for 3.0); a field left unset (None) is the class's to resolve."""
    for f in described(type(settings)):
        value, meta, kind = getattr(settings, f.name), f.metadata, str(f.type)
        what = meta.get("what", f.name.replace("_", " "))
        if value is None or kind == "bool":
            continue
        if "choices" in meta:
            check_choice(what, value, meta["choices"])
        elif kind.startswith("int"):
            object.__setattr__(settings, f.name, check_int(what, value, meta["minimum"], meta.get("maximum")))
        elif kind.startswith("float"):
            object.__setattr__(settings, f.name, check_number(what, value, meta["minimum"], meta.get("strict", False)))


def described(cls) -> list[dataclasses.Field]:
    """The fields of a settings class that front ends offer (those made by `setting`)."""
    return [f for f in dataclasses.fields(cls) if "help" in f.metadata]


def flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def mode_dict(settings) -> dict:
    """A mode's settings as its report holds them: its own fields, and its image settings' `to_dict`."""
    return {**{f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if f.name != "image"},
            "image": settings.image.to_dict()}


def from_values(cls, values: Mapping, skip: Sequence[str] = (), make=None, **given):
    """`cls` (built by `make`, e.g. with a mode's defaults) from the `values` that name its fields,
    less `skip`, and `given`: how the CLI and the app build settings, by name."""
    named = {f.name: values[f.name] for f in described(cls) if f.name in values and f.name not in skip}
    return (make or cls)(**named, **given)


def check_style_scale(style_scale: float, size: int, limit: int) -> None:
    """The style images at `style_scale` times the output's `size` stay within `limit` px: `--style-scale
    1000` at 32 px resized a style image to 32000 px, and the run was killed for memory at 24 GB."""
    if style_scale * size > limit:
        raise StyleError(f"`style_scale` {style_scale:g} makes the style images {round(style_scale * size)} px "
                         f"at size {size}, over the limit of {limit} px")


@dataclass(frozen=True)
class ImageSettings:
    """Every knob of image mode. Layer specs are resolved to names and weights on construction."""
    size: int = setting(512, "longest side of the output in pixels", minimum=1,  # MAX_SIZE: see below
                        label="Size (px)", slider=(32, 2048, 16))
    iterations: int = setting(300, "optimisation steps at the full size (coarser scales take coarse "
                                   "iterations); 0 writes the initial image", minimum=0, label="Iterations",
                              slider=(0, 1000, 10))
    optimizer: str = setting("lbfgs", "; ".join(f"{name}: {o.description}" for name, o in OPTIMIZERS.items()),
                             choices=OPTIMIZERS)
    lr: float | None = setting(None, "learning rate; default " + ", ".join(
        f"{k} {v:g}" for k, v in DEFAULT_LR.items()), minimum=0, strict=True, what="learning rate")
    content_weight: float = setting(1.0, "beta, weight of the content loss", minimum=0)
    style_weight: float | None = setting(None, "alpha, weight of the style loss; default " + ", ".join(
        f"{v:g} ({k})" for k, v in DEFAULT_STYLE_WEIGHT.items()), minimum=0)
    tv_weight: float = setting(0.0, "delta, weight of total variation, a mean over pixels", minimum=0)
    content_layers: str | tuple = setting((), "content layers, comma separated, optional name:weight "
                                              "(relu4_2 for VGG)")
    style_layers: str | tuple = setting("paper", "'paper' (relu1_1..relu5_1), 'first5' (conv1_1..conv3_1) "
                                                 "or names[:weight]")
    backbone: str = setting("vgg19", "the network whose features define the losses", choices=BACKBONES)
    pooling: str = setting("max", "VGG pooling; Gatys et al. prefer avg", choices=POOLINGS)
    init: str = setting("content", "starting image", choices=INITS)
    loss: str = setting("mse", "penalty; huber and smooth_l1 are the same at delta = beta = 1",
                        choices=LOSS_KINDS, what="loss kind")
    huber_delta: float = setting(1.0, "delta of huber, beta of smooth_l1", minimum=0, strict=True)
    style_statistic: str = setting("gram", "what the style term matches at each layer: " + "; ".join(
        f"{name}: {s.description}" for name, s in STATISTICS.items()), choices=tuple(STATISTICS))
    normalization: str = setting("relative", "'paper': exactly the formulas of README's 'The losses' (means "
                                          "over features, Grams divided by H W C); 'relative': each "
                                          "layer's term divided by mean(rho(target)), so that a weight "
                                          "means the same for every backbone, layer and image size (for "
                                          "mse, invariant to a rescaling of the layer's features)",
                                 choices=NORMALIZATIONS, what="normalisation", flag="--normalize")
    seed: int = setting(0, "seed of the noise init", minimum=0, maximum=MAX_SEED)
    preserve_color: str = setting("none", "keep the content's colours: luminance-only transfer or "
                                          "style recolouring", choices=PRESERVE_COLOR,
                                  what="preserve-color mode")
    style_blend: tuple[float, ...] | None = setting(None, "blend weights of the style images, e.g. 0.7,0.3 "
                                                          "(equal)")
    style_scale: float = setting(1.0, "style image's longest side relative to the output's", minimum=0,
                                 strict=True)
    scales: int | None = setting(None, "coarse-to-fine passes, each twice the size of the last (image and "
                                       "large mode: as many as keep the coarsest at 256 px or more, up to "
                                       "3; photo and video mode: 1)",
                                 minimum=1)   # None: auto_scales(size), again whenever the size changes
    coarse_iterations: int | None = setting(None, "steps at each coarser scale (a quarter of the "
                                                  "iterations)", minimum=0)
    tol: float | None = setting(None, "stop a scale once the lowest loss falls by less than this fraction "
                                      "per step, measured over at least 5 steps (lbfgs 1e-4, the others 0; "
                                      "0: run every step)", minimum=0)  # None: DEFAULT_TOL[optimizer]
    bounds: str = setting("box", "L-BFGS: 'box' keeps the image in [0, 1] while optimising and learns from "
                                 "the steps as proposed, as the PyTorch tutorial's clamp does; 'lbfgs-b' "
                                 "learns from the steps taken and holds pixels at the bounds, as L-BFGS-B "
                                 "does (photo mode's default); 'none' lets it leave and clips it when saved, "
                                 "as the classic scripts do (first-order methods: always box)", choices=BOUNDS)
    average: float = setting(0.0, "iterate averaging: the image shown and written is the exponential moving "
                                  "average of the optimizer's iterates with this decay per step (0: off, "
                                  "the last iterate; 0.9 averages about the last 10 steps)", minimum=0)
    steps_per_call: int = setting(20, "optimisation steps compiled into one call (the host looks between "
                                      "calls)", minimum=1)
    preview_every: int = setting(50, "steps between previews", minimum=1)
    weights: str | None = setting(None, "local model.safetensors in torchvision layout, or 'random' "
                                        "(untrained, for tests); default $STYLE_CORE_WEIGHTS, the cache, "
                                        "then the Hugging Face Hub")
    content_layer_weights: tuple[float, ...] = field(default=(), repr=False)
    style_layer_weights: tuple[float, ...] = field(default=(), repr=False)
    scales_auto: bool = field(default=False, repr=False, compare=False)
    tol_auto: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        check_fields(self)
        if self.pooling != "max" and not self.backbone.startswith("vgg"):
            raise StyleError("`pooling` avg applies to VGG backbones only")
        if self.size > MAX_SIZE:
            raise StyleError(f"size {self.size} is over the image-mode limit of {MAX_SIZE} px "
                             f"(large mode tiles bigger outputs)")
        check_style_scale(self.style_scale, self.size, MAX_SIZE)
        if self.average >= 1:
            raise StyleError(f"average must be below 1 (the decay of a moving average), not {self.average:g}")
        set_("scales_auto", self.scales is None)   # a copy with a given value is no longer automatic
        set_("tol_auto", self.tol is None)         # again whenever the optimizer changes
        if self.tol is None:
            set_("tol", DEFAULT_TOL[self.optimizer])
        if self.style_weight is None:
            set_("style_weight", DEFAULT_STYLE_WEIGHT[self.normalization])
        if self.lr is None:
            set_("lr", DEFAULT_LR[self.optimizer])
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
        need = min_input_side(self.backbone, self.layers)
        if self.scales is None:
            set_("scales", auto_scales(self.size, need))
        smallest = self.size // 2 ** (self.scales - 1)
        if smallest < need:
            what = f"the coarsest of {self.scales} scales is {smallest} px" if self.scales > 1 \
                else f"size {self.size} px"
            raise StyleError(f"{what}, but {self.backbone} up to {self.deepest_layer} downsamples by "
                             f"{need}: use a size of at least {need * 2 ** (self.scales - 1)} px")

    @property
    def statistic(self):
        """The style term's statistic (`statistics.py`), which makes its targets and compares them."""
        return STATISTICS[self.style_statistic]

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
