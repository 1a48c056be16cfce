"""Photorealistic mode: Luan et al. (2017)'s matting-Laplacian term on top of image mode.

    Loss = alpha L_style + beta L_content + gamma L_photo + delta L_tv,
    L_photo = sum_c V_c[x]^T M_I V_c[x] / N          (M_I: matting Laplacian of the content, matting.py)

The output is pushed to be, in every 3x3 window, an affine function of the content's colours: it may
take the style's colours and light but not its brush strokes. The research deck's schedule stays
(Adam, lr 1e-2, 500 steps from the content); its weights (style 1e6, photorealism 100 x 512^2 per
pixel) were for random-valued "paper" terms, and on a trained network they give a blotchy painting
(the style term 1e4 times the matting term). Ours are tuned on the trained VGG16 and the photo pairs
(bench/LOG.md 22), in image mode's "relative" normalisation, where content and style terms are of
order one: style 10, photorealism 1e4, TV 1 (L_photo and L_tv are means over pixels, so they hold at
every size).

Optional: Luan et al.'s two stages (stylise, then refine from that result with L_photo), and a guided
filter (He et al. 2010) with the content as guide that removes the remaining painterly noise.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from . import color
from .errors import StyleError
from .defaults import MODE_DEFAULTS
from .images import resize
from .matting import DEFAULT_EPSILON, MattingStats, laplacian_product, matting_stats, photo_loss
from .objective import Term
from .regions import Region
from .settings import ImageSettings, check_fields, mode_dict, setting
from .events import Event
from .transfer import StyleResult, prepare_inputs, stylize
from .weights import Weights

# Photorealism 1e3 kept a photo (affine residual 0.001) but barely moved its colours with style 1;
# with style 10 it let painterly streaks into the sky (edge SSIM 0.54); 1e4 with style 10 is the
# balance (bench/LOG.md 22).
DEFAULT_PHOTO_WEIGHT = 1e4
PHOTO_DEFAULTS = MODE_DEFAULTS["photo"]   # the one table of every mode's defaults (defaults.py)
PHOTO_ADAM_LR = 1e-2             # the deck's Adam rate; other optimizers keep image mode's defaults
# Style weight by normalisation: "relative" measured; "paper" is image mode's paper/relative ratio
# (4 to 1, the Caffe-scaled VGG16's) applied to it, unmeasured in photo mode.
PHOTO_STYLE_WEIGHT = {"relative": 10.0, "paper": 40.0}
DEFAULT_SMOOTH_RADIUS = 16       # guided filter window radius, pixels (at 512 px; scaled with size)
DEFAULT_SMOOTH_EPS = 1e-2        # guided filter regulariser, squared [0, 1] colour units (0.1^2)


def photo_image_settings(**changes) -> ImageSettings:
    """Image-mode settings with photo mode's defaults, changed by `changes`.

    An unset (None) learning rate is the deck's 1e-2 for Adam (other optimizers: image mode's), and an
    unset style weight photo mode's for the normalisation (PHOTO_STYLE_WEIGHT).
    """
    settings = {**PHOTO_DEFAULTS, **changes}
    if settings.get("lr") is None and settings["optimizer"] == "adam":
        settings["lr"] = PHOTO_ADAM_LR
    if settings.get("style_weight") is None:
        normalization = settings.get("normalization") or ImageSettings.__dataclass_fields__["normalization"].default
        settings["style_weight"] = PHOTO_STYLE_WEIGHT[normalization]
    return ImageSettings(**settings)


@dataclass(frozen=True)
class PhotoSettings:
    """Photo mode: image-mode settings (photo defaults) plus the photorealism term and post-processing.

    photo_weight 0 is exactly image mode with `image`. two_stage: `image.iterations` steps without the
    term, then `refine_iterations` with it from that result (Luan et al.); else one stage with it.
    """
    image: ImageSettings = field(default_factory=photo_image_settings)
    photo_weight: float = setting(DEFAULT_PHOTO_WEIGHT, "gamma, weight of the matting-Laplacian term, a mean "
                                  "over pixels; 0 is plain image mode", minimum=0,
                                  what="photorealism weight")
    epsilon: float = setting(DEFAULT_EPSILON, "matting Laplacian regulariser (as Levin et al.)", minimum=0,
                             strict=True, what="matting epsilon", label="Matting epsilon")
    two_stage: bool = setting(False, "Luan et al.'s schedule: stylise without the term, then refine with it",
                              label="Two stages: stylise, then refine (Luan et al.)")
    refine_iterations: int | None = setting(None, "steps of the second stage (the first's iterations)",
                                            minimum=0, label="Refinement iterations (second stage)",
                                            slider=(0, 2000, 10))
    smooth: bool = setting(False, "post-process with a guided filter on the content (removes painterly noise)",
                           label="Smooth with a guided filter (shown side by side)")
    smooth_radius: int = setting(DEFAULT_SMOOTH_RADIUS, "guided filter radius at 512 px, scaled with the size",
                                 minimum=1, what="smoothing radius")
    smooth_eps: float = setting(DEFAULT_SMOOTH_EPS, "guided filter regulariser, squared colour units",
                                minimum=0, strict=True, what="smoothing epsilon")

    def __post_init__(self) -> None:
        check_fields(self)
        if self.refine_iterations is None:
            object.__setattr__(self, "refine_iterations", self.image.iterations)

    to_dict = mode_dict


@dataclass(frozen=True)
class PhotoResult:
    image: np.ndarray                      # the output (smoothed when settings.smooth)
    raw: np.ndarray                        # the optimised image before smoothing
    settings: PhotoSettings
    stages: tuple[StyleResult, ...]        # one, or two with two_stage (the first is plain image mode)
    metrics: dict[str, float]              # photo_metrics of `image` against the content
    seconds: float

    @property
    def plain(self) -> StyleResult | None:
        """The plain stylisation of a two-stage run (its first stage)."""
        return self.stages[0] if len(self.stages) == 2 else None

    @property
    def stop_reason(self) -> str:
        """The first stage that diverged, named, or the last stage's reason."""
        diverged = [(k, s.stop_reason) for k, s in enumerate(self.stages, 1) if s.stop_reason.startswith("diverged")]
        if not diverged:
            return self.stages[-1].stop_reason
        k, why = diverged[0]
        return why + f" (stage {k} of {len(self.stages)})" * (len(self.stages) > 1)

    weights_source = property(lambda self: self.stages[-1].weights_source)
    trained_weights = property(lambda self: self.stages[-1].trained_weights)

    @property
    def region_losses(self) -> tuple[dict[str, float], ...]:
        """Each region's style term at the start of the first stage and at the end of the last."""
        return tuple({"initial": a["initial"], "final": b["final"]}
                     for a, b in zip(self.stages[0].region_losses, self.stages[-1].region_losses))

    def report(self) -> dict:
        last = self.stages[-1].report()
        regions = {"region_style_losses": list(self.region_losses)} if self.stages[-1].regions else {}
        return {**last, **regions, "mode": "photo", "settings": self.settings.to_dict(), "metrics": self.metrics,
                "iterations": sum(s.iterations for s in self.stages),
                "evaluations": sum(s.evaluations for s in self.stages), "seconds": round(self.seconds, 3),
                "stop_reason": self.stop_reason,
                "stages": [{k: s.report()[k] for k in ("iterations", "evaluations", "final_losses", "stop_reason")}
                           for s in self.stages]}


def photo_term(settings: PhotoSettings) -> Term:
    """The matting-Laplacian term; its statistics are made once per scale from that scale's content."""
    return Term("photo", settings.photo_weight, _photo_loss,
                lambda inputs: matting_stats(inputs.content, settings.epsilon))


def _photo_loss(x, features, stats: MattingStats):
    return photo_loss(stats, x)


def stylize_photo(content: np.ndarray, styles: Sequence[np.ndarray], settings: PhotoSettings,
                  weights: Weights, *, regions: Sequence[Region] = ()) -> Iterator[Event]:
    """Photorealistic transfer; yields image mode's progress events, the last one with a PhotoResult
    in `.result` (its `.image` is the final output). `regions`: where each style image (or part of it)
    goes, in both stages, as `stylize` takes them; label pairs (`regions.label_regions`) are Luan et
    al.'s semantic segmentation, sky to sky. The matting term is the same with or without them."""
    start = time.perf_counter()
    prepare_inputs(content, styles, settings.image)  # one-line errors before any work
    image = settings.image
    stages = [(image, ())] if settings.photo_weight == 0 else (
        [(image, ()), (image.replace(iterations=settings.refine_iterations), (photo_term(settings),))]
        if settings.two_stage else [(image, (photo_term(settings),))])
    total = sum(sum(s.scale_iterations) for s, _ in stages)
    done, results = 0, []
    for stage_settings, extras in stages:
        init = results[-1].image if results else None  # the second stage starts where the first ended,
        if init is not None and image.preserve_color == "luminance":  # as the network saw it
            init = color.luminance(init)
        for event in stylize(content, styles, stage_settings, weights, extras=extras, init=init,
                             regions=regions):
            if event.result is not None:
                results.append(event.result)
                done += event.result.iterations
                break
            later = total - done - event.total   # the next stage's steps, at this stage's pace
            eta = None if event.eta is None else event.eta * (1 + later / max(event.total - event.completed, 1))
            yield dataclasses.replace(event, completed=done + event.completed, total=total, eta=eta)
    raw = results[-1].image
    out = guided_smooth(raw, content, settings.smooth_radius, settings.smooth_eps) if settings.smooth else raw
    result = PhotoResult(out, raw, settings, tuple(results), photo_metrics(content, out, settings.epsilon),
                         time.perf_counter() - start)
    yield Event("done", done, total, "step", results[-1].final_losses, result.seconds, shape=out.shape[:2],
                scale=(image.scales, image.scales), preview=out, result=result)


def guided_smooth(image: np.ndarray, guide: np.ndarray, radius: int = DEFAULT_SMOOTH_RADIUS,
                  eps: float = DEFAULT_SMOOTH_EPS) -> np.ndarray:
    """He et al.'s guided filter (OpenCV's): `image` made locally an affine function of `guide`.

    The radius is for a 512 px image and scales with the image's longest side.
    """
    import cv2
    guide = resize(guide, *image.shape[:2])
    r = max(1, round(radius * max(image.shape[:2]) / 512))
    out = cv2.ximgproc.guidedFilter(np.ascontiguousarray(guide, np.float32),
                                    np.ascontiguousarray(image, np.float32), r, float(eps))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def photo_metrics(content: np.ndarray, output: np.ndarray, epsilon: float = DEFAULT_EPSILON) -> dict:
    """How photo-like `output` is, against `content` (resized to the output if needed).

    affine_residual: V^T M V / sum_k |w| var_k(V), summed over channels: the share of the output's
      local (3x3) variance that no affine map of the content's colours explains (0: all of it is).
    edge_ssim: SSIM between the Sobel edge-magnitude maps of the content's and the output's luminance,
      each scaled to [0, 255] by its own 99.5th percentile (1: the same edges).
    """
    content = resize(content, *output.shape[:2])
    stats = matting_stats(content, epsilon)
    v = np.asarray(output, np.float32)
    energy = float(np.sum(v * np.asarray(laplacian_product(stats, v))))
    local = _local_variance_sum(v)
    return {"affine_residual": energy / local if local > 0 else 0.0,
            "edge_ssim": edge_ssim(content, output)}


def _local_variance_sum(v: np.ndarray) -> float:
    """sum over 3x3 windows and channels of |w| var_k(V) (what V^T M V is with no affine fit at all)."""
    shifted = [v[dy:dy + v.shape[0] - 2, dx:dx + v.shape[1] - 2].astype(np.float64)
               for dy in range(3) for dx in range(3)]
    mean = sum(shifted) / 9
    return float(sum(np.sum((s - mean) ** 2) for s in shifted))


def edge_map(image: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of the luminance, scaled to [0, 255] by its 99.5th percentile."""
    import cv2
    y = color.rgb_to_yiq(np.asarray(image, np.float32))[..., 0].astype(np.float32)
    magnitude = np.hypot(cv2.Sobel(y, cv2.CV_32F, 1, 0), cv2.Sobel(y, cv2.CV_32F, 0, 1))
    top = np.percentile(magnitude, 99.5)
    return np.clip(255 * magnitude / top, 0, 255) if top > 0 else np.zeros_like(magnitude)


def edge_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (OpenCV's, Gaussian 11x11 window) between the edge maps of two images of one size."""
    import cv2
    if a.shape[:2] != b.shape[:2]:
        raise StyleError(f"edge SSIM needs images of one size, not {a.shape[:2]} and {b.shape[:2]}")
    value, _ = cv2.quality.QualitySSIM_compute(edge_map(a).astype(np.float64), edge_map(b).astype(np.float64))
    return float(value[0])
