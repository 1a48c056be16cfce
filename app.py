"""Style transfer studio: the Gradio front end over `style_core`.

    python app.py [--host 127.0.0.1] [--port 7860] [--share] [--weights PATH|random]

UI only: each tab turns its controls into the library's settings, iterates one library generator and
shows what it yields. A password is set with STYLE_STUDIO_PASSWORD (user STYLE_STUDIO_USER, default
"studio"). All optimisations share one queue (`concurrency_id="optimise"`), one at a time per device.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr
import jax
import numpy as np
from matplotlib.figure import Figure

from style_core import ImageSettings, StyleError, load_image, load_weights, save_image, stylize
from style_core.backbones import BACKBONES
from style_core.explore import STUDIES, run_study, study_settings
from style_core.images import to_uint8
from style_core.large import LARGE_MAX_SIZE, LargeSettings, fingerprint, stylize_large
from style_core.losses import LOSS_KINDS
from style_core.matting import DEFAULT_EPSILON
from style_core.photo import DEFAULT_PHOTO_WEIGHT, PHOTO_DEFAULTS, PhotoSettings, photo_image_settings, \
    photo_metrics, stylize_photo
from style_core.settings import BOUNDS, INITS, OPTIMIZERS, PRESERVE_COLOR
from style_core.video import DEFAULT_TEMPORAL_WEIGHT, VIDEO_DEFAULTS, VideoSettings, stylize_video, \
    video_image_settings
from style_core.video import fingerprint as video_fingerprint
from style_core.videoio import probe

HERE = Path(__file__).resolve().parent
ASSETS = HERE / "assets"
RUNS = Path(tempfile.gettempdir()) / "style_studio_runs"
MAX_UPLOAD = "25mb"
log = logging.getLogger("style_studio")

# --- weights: loaded on first use, once per backbone -------------------------------------------------

WEIGHTS_SOURCE: str | None = None  # --weights; None: $STYLE_CORE_WEIGHTS, the cache, then the hub
_weights: dict = {}
_weights_lock = threading.Lock()


def get_weights(backbone: str, progress: gr.Progress | None = None):
    with _weights_lock:
        if backbone not in _weights:
            def report(what: str, done: int, total: int) -> None:
                if progress is not None:
                    progress((done, total or None), desc=f"{what} (first run only)", unit="bytes")
            if progress is not None:
                progress(0, desc=f"loading {backbone} weights")
            _weights[backbone] = load_weights(backbone, WEIGHTS_SOURCE, report)
        return _weights[backbone]


def user_errors(fn):
    """A StyleError (bad input, nonsense setting, no weights) reaches the user as gr.Error."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            yield from fn(*args, **kwargs)
        except StyleError as e:
            raise gr.Error(str(e), print_exception=False) from None
    return wrapper


def ImageUpload(**kwargs) -> gr.Image:  # noqa: N802 (reads like the component it makes)
    """An image drop zone that hands the uploaded file itself to style_core's loader, which honours
    EXIF, 16-bit, CMYK and transparency and refuses damaged files with a clear message; Gradio's own
    decode would re-encode the image first, or fail with a generic error. Overridden on the instance,
    not in a subclass: Gradio looks a subclass up as a custom component with its own frontend."""
    component = gr.Image(**kwargs)
    component.preprocess = lambda payload: None if payload is None else str(payload.path)
    return component


def content_and_styles(prefix: str = "", noun: str = "") -> tuple[gr.Image, gr.File]:
    """The content drop zone and the style files, as every tab takes them (`noun`: "photo")."""
    content = ImageUpload(label=f"Content {noun}".strip(), type="filepath", sources=["upload", "clipboard"],
                          elem_id=f"{prefix}content")
    styles = gr.File(label=f"Style {noun or 'image'}s (one or more)", file_count="multiple",
                     file_types=["image"], type="filepath", elem_id=f"{prefix}styles")
    return content, styles


def run_and_stop(prefix: str = "") -> tuple[gr.Button, gr.Button]:
    with gr.Row():
        return (gr.Button("Run", variant="primary", elem_id=f"{prefix}run"),
                gr.Button("Stop", variant="stop", elem_id=f"{prefix}stop"))


def result_panel(prefix: str, label: str, download_label: str, height: int):
    """The streamed result, its download and the run's summary."""
    return (gr.Image(label=label, format="png", interactive=False, elem_id=f"{prefix}result", height=height),
            gr.File(label=download_label), gr.Markdown())


def new_run_dir() -> Path:
    RUNS.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="run-", dir=RUNS))


def loss_figure(curves: dict[str, tuple[list[int], list[float]]]) -> Figure:
    """Total loss against step for each named run, on a log axis (the loss spans orders of magnitude).

    Drawn server-side: gr.LinePlot keeps the series of its first streamed value and shows no legend.
    """
    figure = Figure(figsize=(6.4, 2.8), layout="constrained")
    axes = figure.add_subplot()
    for label, (steps, losses) in curves.items():
        points = [(s, v) for s, v in zip(steps, losses) if np.isfinite(v) and v > 0]
        if points:
            axes.plot(*zip(*points), label=label, linewidth=1.5)
    axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("total loss")
    axes.grid(True, which="both", alpha=0.3)
    if len(curves) > 1:
        axes.legend(fontsize=7, ncols=2 if len(curves) > 5 else 1)
    return figure



def untrained_note(weights) -> str:
    return "" if weights.trained else f"\n\n**⚠ {weights.source}.**"


# --- Image tab -----------------------------------------------------------------------------------------

def image_settings(size, iterations, style_strength, preserve_color, blend, backbone, style_layers,
                   content_layers, optimizer, lr, loss, normalize, init, content_weight, tv_weight,
                   scales, seed, bounds) -> ImageSettings:
    try:
        blend_weights = tuple(float(b) for b in str(blend or "").replace(",", " ").split()) or None
    except ValueError:
        raise StyleError(f"style blend weights must be numbers separated by commas, not {blend!r}") from None
    require_numbers(size=size, iterations=iterations, scales=scales, seed=seed, style_strength=style_strength,
                    content_weight=content_weight, TV_weight=tv_weight)
    return ImageSettings(
        size=int(size), iterations=int(iterations), style_weight=10.0 ** float(style_strength),
        preserve_color=preserve_color, style_blend=blend_weights, backbone=backbone,
        style_layers=style_layers or "paper", content_layers=content_layers or (), optimizer=optimizer,
        lr=float(lr) if lr else None, loss=loss, normalization=normalize, init=init,
        content_weight=float(content_weight), tv_weight=float(tv_weight), scales=int(scales),
        seed=int(seed), bounds=bounds, preview_every=5)


def _paths(files) -> list[str]:
    if not files:
        return []
    files = files if isinstance(files, (list, tuple)) else [files]
    return [f if isinstance(f, str) else getattr(f, "name", None) or f["path"] for f in files]


def load_inputs(content, styles, what: str = "content image", load=load_image):
    """The content (an image, or what `load` makes of the file: a video's probe) and the style
    images, through style_core's loaders (clear errors)."""
    if not content:
        raise StyleError(f"drop a {what} first")
    style_paths = _paths(styles)
    if not style_paths:
        raise StyleError("add at least one style image")
    return load(content), [load_image(p) for p in style_paths]


def require_numbers(**values) -> None:
    """An emptied number box arrives as None: say which one."""
    for name, value in values.items():
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            raise StyleError(f"{name.replace('_', ' ')} must be a number")


@user_errors
def run_image(content, styles, size, iterations, style_strength, preserve_color, blend, backbone,
              style_layers, content_layers, optimizer, lr, loss, normalize, init, content_weight,
              tv_weight, scales, seed, bounds, progress=gr.Progress()):
    """Stylises the content image; streams previews, then the PNG, comparison and loss curve."""
    settings = image_settings(size, iterations, style_strength, preserve_color, blend, backbone,
                              style_layers, content_layers, optimizer, lr, loss, normalize, init,
                              content_weight, tv_weight, scales, seed, bounds)
    content_image, style_images = load_inputs(content, styles)
    weights = get_weights(settings.backbone, progress)
    run_dir = new_run_dir()
    started = time.perf_counter()
    for event in stylize(content_image, style_images, settings, weights):
        elapsed = time.perf_counter() - started
        left = elapsed / max(event.step, 1) * (event.total - event.step)
        progress((event.step, event.total), unit="steps",
                 desc=f"loss {event.losses.get('total', float('nan')):.4g} · {left:.0f} s left")
        if event.preview is None:
            continue
        name = "result.png" if event.done else f"step-{event.step:05d}.png"
        meta = event.result.report() if event.done else {"settings": settings.to_dict(), "step": event.step,
                                                         "losses": event.losses}
        text = {"style_core": meta, **({} if weights.trained else {"Warning": weights.source})}
        png = save_image(run_dir / name, event.preview, text)
        preview = to_uint8(event.preview)
        if not event.done:
            yield preview, str(png), gr.skip(), gr.skip(), f"step {event.step} of {event.total}" + \
                untrained_note(weights)
            continue
        result = event.result
        final = ", ".join(f"{k} {v:.4g}" for k, v in result.final_losses.items())
        info = (f"**{result.iterations} steps in {result.seconds:.1f} s** ({result.stop_reason}) · {final} · "
                f"weights: {weights.source} · device: {jax.default_backend()}" + untrained_note(weights))
        before = to_uint8(np.asarray(content_image))
        yield preview, str(png), (before, preview), loss_figure({"total": result.loss_curve()}), info


EXAMPLE_SETTINGS = dict(size=256, iterations=100, style_strength=5, preserve_color="none", blend="",
                        backbone="vgg19", style_layers="paper", content_layers="", optimizer="lbfgs", lr=None,
                        loss="mse", normalize="paper", init="content", content_weight=1.0, tv_weight=0.0,
                        scales=1, seed=0, bounds="box")


def run_example(content, styles):
    """An example's result (EXAMPLE_SETTINGS: 256 px, 100 iterations), computed on its first click, then
    cached."""
    yield from run_image(content, styles, *EXAMPLE_SETTINGS.values(), progress=gr.Progress())


def image_tab(default_size: int = 512, default_iterations: int = 200) -> None:
    with gr.Row():
        with gr.Column():
            content, styles = content_and_styles()
            with gr.Row():
                size = gr.Slider(32, 2048, value=default_size, step=16, label="Size (longest side, px)")
                iterations = gr.Slider(0, 1000, value=default_iterations, step=10, label="Iterations (full size; each coarser scale a quarter)")
            with gr.Row():
                strength = gr.Slider(0, 8, value=5, step=0.5, label="Style strength (log10 of the style weight)")
                preserve = gr.Radio(list(PRESERVE_COLOR), value="none", label="Preserve colour")
            with gr.Accordion("Advanced", open=False):
                blend = gr.Textbox(label="Style blend weights (e.g. 0.7, 0.3; empty = equal)")
                with gr.Row():
                    backbone = gr.Dropdown(list(BACKBONES), value="vgg19", label="Backbone")
                    style_layers = gr.Textbox(value="paper", label="Style layers (paper, first5, or names[:weight])")
                    content_layers = gr.Textbox(value="", label="Content layers (empty = relu4_2)")
                with gr.Row():
                    optimizer = gr.Dropdown(list(OPTIMIZERS), value="lbfgs", label="Optimizer")
                    lr = gr.Number(value=None, label="Learning rate (0 or empty = the optimizer's default)")
                    loss = gr.Dropdown(list(LOSS_KINDS), value="mse",
                                       label="Loss kind (huber = smooth_l1 at delta 1)")
                    normalize = gr.Radio(["paper", "relative"], value="paper", label="Normalisation")
                with gr.Row():
                    init = gr.Radio(list(INITS), value="content", label="Start from")
                    content_weight = gr.Number(value=1.0, label="Content weight")
                    tv_weight = gr.Number(value=0.0, label="TV weight")
                    scales = gr.Slider(1, 4, value=2, step=1, label="Scales (coarse to fine; each half the size of the next)")
                    seed = gr.Number(value=0, precision=0, label="Seed")
                    bounds = gr.Radio(list(BOUNDS), value="box", label="Pixels while optimising (box: kept "
                                      "in [0, 1]; none: free, clipped when saved, as the classic scripts)")
            run, stop = run_and_stop("")
        with gr.Column():
            preview, download, info = result_panel("", "Result", "Download PNG (settings embedded)", 420)
            compare = gr.ImageSlider(label="Before / after", format="png", interactive=False, max_height=420)
            curve = gr.Plot(label="Loss")
    inputs = [content, styles, size, iterations, strength, preserve, blend, backbone, style_layers,
              content_layers, optimizer, lr, loss, normalize, init, content_weight, tv_weight, scales, seed,
              bounds]
    event = run.click(run_image, inputs, [preview, download, compare, curve, info], api_name="stylize",
                      concurrency_id="optimise", concurrency_limit=1)
    stop.click(None, None, None, cancels=[event], api_name="stop_stylize")
    gr.Examples([[str(ASSETS / "content.png"), [str(ASSETS / "style.png")]],
                 [str(ASSETS / "content.png"), [str(ASSETS / "style2.png")]]],
                inputs=[content, styles], outputs=[preview, download, compare, curve, info], fn=run_example,
                cache_examples=True, cache_mode="lazy", label=f"Examples ({EXAMPLE_SETTINGS['size']} px, "
                f"{EXAMPLE_SETTINGS['iterations']} iterations; computed on first click, then cached)")


# --- Large image tab -----------------------------------------------------------------------------------

def draw_grid(preview: np.ndarray, shape: tuple[int, int], layout, done: int) -> np.ndarray:
    """The canvas preview with the tile grid drawn over it; the tile being painted next in orange."""
    from PIL import Image, ImageDraw
    image = Image.fromarray(to_uint8(preview)).convert("RGBA")
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    sy, sx = image.size[1] / shape[0], image.size[0] / shape[1]
    for tile in layout:
        box = (tile.x * sx, tile.y * sy, (tile.x + tile.width) * sx - 1, (tile.y + tile.height) * sy - 1)
        current = tile.index == done
        draw.rectangle(box, outline=(255, 140, 0, 255) if current else (255, 255, 255, 110),
                       width=3 if current else 1)
    return np.asarray(Image.alpha_composite(image, overlay).convert("RGB"))


@user_errors
def run_large(content, styles, size, tile, overlap, iterations, tile_iterations, style_strength,
              preserve_color, optimizer, base_size, progress=gr.Progress()):
    """Paints a large canvas tile by tile; streams the canvas with its tile grid. A stopped job is
    kept: running the same inputs and settings again continues it."""
    require_numbers(size=size, tile=tile, overlap=overlap, base_size=base_size, iterations=iterations,
                    tile_iterations=tile_iterations, style_strength=style_strength)
    image = ImageSettings(iterations=int(iterations), style_weight=10.0 ** float(style_strength),
                          preserve_color=preserve_color, optimizer=optimizer, preview_every=10)
    settings = LargeSettings(image, size=int(size), tile=int(tile), overlap=int(overlap),
                             base_size=int(base_size), tile_iterations=int(tile_iterations))
    content_image, style_images = load_inputs(content, styles)
    weights = get_weights(image.backbone, progress)
    job = RUNS / "large-jobs" / fingerprint(content_image, style_images, settings, weights)[:20]
    resumed = job.exists()
    for event in stylize_large(content_image, style_images, settings, weights, job=job, resume=True):
        eta = f" · {event.eta:.0f} s left" if event.eta is not None else ""
        if event.stage == "tiles":
            progress((event.tiles_done, event.tiles_total), unit="tiles",
                     desc=f"tile {min(event.tiles_done + 1, event.tiles_total)} of {event.tiles_total}, "
                          f"step {event.step}/{event.steps}{eta}")
        else:
            progress((event.step, event.steps or None), unit="steps", desc=event.stage)
        if event.preview is None:
            continue
        h, w = event.shape
        status = (f"{event.stage}: {event.tiles_done} of {event.tiles_total} tiles · {w}x{h} px"
                  f"{eta}" + (" · continuing a stopped job" if resumed else "") + untrained_note(weights))
        if not event.done:
            shown = draw_grid(event.preview, event.shape, event.layout, event.tiles_done) \
                if event.stage == "tiles" else to_uint8(event.preview)
            yield shown, gr.skip(), status
            continue
        result = event.result
        text = {"style_core": result.report(), **({} if weights.trained else {"Warning": weights.source})}
        png = save_image(new_run_dir() / "large.png", result.image, text)
        shutil.rmtree(job, ignore_errors=True)
        info = (f"**{w}x{h} px, {len(result.layout)} tiles in {result.seconds:.1f} s**"
                f" ({result.tiles_resumed} from the stopped job) · weights: {weights.source} · device: "
                f"{jax.default_backend()} × {jax.device_count()}" + untrained_note(weights))
        yield to_uint8(event.preview), str(png), info


def large_tab() -> None:
    gr.Markdown("Print-size outputs, painted tile by tile: the style is measured at the output's scale, "
                "a global pass sets the composition, and the tiles are blended without seams. Stop keeps "
                "the finished tiles; running the same inputs and settings again continues the job.")
    with gr.Row():
        with gr.Column():
            content, styles = content_and_styles("large_")
            with gr.Row():
                size = gr.Slider(256, LARGE_MAX_SIZE, value=2048, step=64, label="Output size (longest side, px)")
                tile = gr.Slider(64, 1024, value=512, step=32, label="Tile (px)")
                overlap = gr.Slider(0, 256, value=64, step=8, label="Overlap (px)")
            with gr.Row():
                iterations = gr.Slider(0, 1000, value=200, step=10, label="Global pass iterations")
                tile_iterations = gr.Slider(0, 1000, value=100, step=10, label="Iterations per tile")
            with gr.Row():
                strength = gr.Slider(0, 8, value=5, step=0.5, label="Style strength (log10 of the style weight)")
                preserve = gr.Radio(list(PRESERVE_COLOR), value="none", label="Preserve colour")
            with gr.Accordion("Advanced", open=False):
                optimizer = gr.Dropdown(list(OPTIMIZERS), value="lbfgs", label="Optimizer")
                base_size = gr.Slider(0, 2048, value=512, step=32,
                                      label="Global pass size (px; 0 = none, tiles start from the content)")
            run, stop = run_and_stop("large_")
        with gr.Column():
            preview, download, info = result_panel("large_", "Canvas", "Download the full-size PNG", 480)
    inputs = [content, styles, size, tile, overlap, iterations, tile_iterations, strength, preserve,
              optimizer, base_size]
    event = run.click(run_large, inputs, [preview, download, info], api_name="large",
                      concurrency_id="optimise", concurrency_limit=1)
    stop.click(None, None, None, cancels=[event], api_name="stop_large")


# --- Photorealistic tab ------------------------------------------------------------------------------

def _metrics_caption(label: str, metrics: dict) -> str:
    return f"{label} · affine residual {metrics['affine_residual']:.4f} · edge SSIM {metrics['edge_ssim']:.3f}"


@user_errors
def run_photo(content, styles, size, iterations, style_strength, photo_weight, tv_weight, preserve_color,
              two_stage, refine_iterations, smooth, compare, optimizer, epsilon, progress=gr.Progress()):
    """Photorealistic transfer; streams previews like the Image tab, then (on request) content, plain
    stylisation and photorealistic result side by side, with their photo-likeness figures."""
    require_numbers(size=size, iterations=iterations, style_strength=style_strength,
                    photorealism_weight=photo_weight, TV_weight=tv_weight, refine_iterations=refine_iterations,
                    epsilon=epsilon)
    image = photo_image_settings(size=int(size), iterations=int(iterations), optimizer=optimizer,
                                 style_weight=10.0 ** float(style_strength), tv_weight=float(tv_weight),
                                 preserve_color=preserve_color, preview_every=5)
    settings = PhotoSettings(image, photo_weight=float(photo_weight), epsilon=float(epsilon),
                             two_stage=bool(two_stage), refine_iterations=int(refine_iterations),
                             smooth=bool(smooth))
    content_image, style_images = load_inputs(content, styles)
    weights = get_weights(image.backbone, progress)
    plain = None
    # The plain stylisation for the comparison: a two-stage run's first stage is exactly that.
    runs = [("plain stylisation", stylize(content_image, style_images, image, weights))] \
        if compare and not settings.two_stage and settings.photo_weight > 0 else []
    runs.append(("photorealistic", stylize_photo(content_image, style_images, settings, weights)))
    for index, (label, events) in enumerate(runs, 1):
        for event in events:
            progress((event.step, event.total), unit="steps",
                     desc=f"{label} ({index} of {len(runs)}) · loss {event.losses.get('total', float('nan')):.4g}")
            if event.preview is None:
                continue
            if not event.done:
                yield to_uint8(event.preview), gr.skip(), gr.skip(), \
                    f"{label}: step {event.step} of {event.total}" + untrained_note(weights)
            elif label == "plain stylisation":
                plain = event.result.image
    result = event.result
    plain = plain if plain is not None else (result.plain.image if compare and result.plain else None)
    text = {"style_core": result.report(), **({} if weights.trained else {"Warning": weights.source})}
    png = save_image(new_run_dir() / "photo.png", result.image, text)
    gallery = []
    if compare:
        shown = resize_to(content_image, result.image.shape[:2])
        gallery.append((to_uint8(shown), "content"))
        if plain is not None:
            gallery.append((to_uint8(plain), _metrics_caption("plain stylisation",
                                                              photo_metrics(content_image, plain))))
    if settings.smooth:
        gallery.append((to_uint8(result.raw), _metrics_caption(
            "photorealistic, before smoothing", photo_metrics(content_image, result.raw))))
    gallery.append((to_uint8(result.image), _metrics_caption(
        "photorealistic" + (", smoothed" if settings.smooth else ""), result.metrics)))
    final = ", ".join(f"{k} {v:.4g}" for k, v in result.stages[-1].final_losses.items())
    info = (f"**{sum(s.iterations for s in result.stages)} steps in {result.seconds:.1f} s** · {final} · "
            f"affine residual {result.metrics['affine_residual']:.4f} (0 = locally an affine map of the "
            f"content's colours) · edge SSIM {result.metrics['edge_ssim']:.3f} · weights: {weights.source}"
            + untrained_note(weights))
    yield to_uint8(result.image), str(png), gallery, info


def resize_to(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from style_core.images import resize
    return resize(image, *shape) if image.shape[:2] != tuple(shape) else image


def photo_tab() -> None:
    gr.Markdown("The style's colours and light on the content's structure, without painterly distortion: "
                "the matting Laplacian of the content (Levin et al.) keeps the output locally an affine "
                "function of the content's colours (Luan et al.). Defaults are the research deck's.")
    with gr.Row():
        with gr.Column():
            content, styles = content_and_styles("photo_", "photo")
            with gr.Row():
                size = gr.Slider(32, 2048, value=384, step=16, label="Size (longest side, px)")
                iterations = gr.Slider(0, 2000, value=PHOTO_DEFAULTS["iterations"], step=10,
                                       label="Iterations")
            with gr.Row():
                strength = gr.Slider(0, 8, value=6, step=0.5, label="Style strength (log10 of the style weight)")
                photo_weight = gr.Number(value=DEFAULT_PHOTO_WEIGHT,
                                         label="Photorealism weight (per pixel; 0 = plain image mode)")
                tv_weight = gr.Number(value=PHOTO_DEFAULTS["tv_weight"], label="TV weight")
            with gr.Row():
                compare = gr.Checkbox(value=False, label="Compare: content, plain stylisation, photorealistic")
                smooth = gr.Checkbox(value=False, label="Smooth with a guided filter (shown side by side)")
            with gr.Accordion("Advanced", open=False):
                with gr.Row():
                    two_stage = gr.Checkbox(value=False, label="Two stages: stylise, then refine (Luan et al.)")
                    refine_iterations = gr.Slider(0, 2000, value=PHOTO_DEFAULTS["iterations"], step=10,
                                                  label="Refinement iterations (second stage)")
                with gr.Row():
                    preserve = gr.Radio(list(PRESERVE_COLOR), value="none", label="Preserve colour")
                    optimizer = gr.Dropdown(list(OPTIMIZERS), value=PHOTO_DEFAULTS["optimizer"], label="Optimizer")
                    epsilon = gr.Number(value=DEFAULT_EPSILON, label="Matting epsilon")
            run, stop = run_and_stop("photo_")
        with gr.Column():
            preview, download, info = result_panel("photo_", "Result", "Download PNG (settings embedded)", 420)
            gallery = gr.Gallery(label="Side by side", columns=4, height="auto", format="png")
    inputs = [content, styles, size, iterations, strength, photo_weight, tv_weight, preserve, two_stage,
              refine_iterations, smooth, compare, optimizer, epsilon]
    event = run.click(run_photo, inputs, [preview, download, gallery, info], api_name="photo",
                      concurrency_id="optimise", concurrency_limit=1)
    stop.click(None, None, None, cancels=[event], api_name="stop_photo")


# --- Video tab ----------------------------------------------------------------------------------------

@user_errors
def run_video(clip, styles, size, max_frames, start, iterations, frame_iterations, style_strength,
              temporal_weight, temporal, chunk, chunk_overlap, progress=gr.Progress()):
    """Stylises a clip frame by frame; streams each finished frame, then the playable video. A stopped
    job keeps its frames: running the same inputs and settings again continues it."""
    require_numbers(size=size, max_frames=max_frames, start=start, iterations=iterations,
                    frame_iterations=frame_iterations, style_strength=style_strength,
                    temporal_weight=temporal_weight, chunk=chunk, chunk_overlap=chunk_overlap)
    image = video_image_settings(size=int(size), iterations=int(iterations),
                                 style_weight=10.0 ** float(style_strength), preview_every=10)
    settings = VideoSettings(image, temporal_weight=float(temporal_weight), temporal=temporal,
                             frame_iterations=int(frame_iterations), start=float(start),
                             max_frames=int(max_frames), chunk=int(chunk), chunk_overlap=int(chunk_overlap))
    info, style_images = load_inputs(clip, styles, "video", probe)
    weights = get_weights(image.backbone, progress)
    job = RUNS / "video-jobs" / video_fingerprint(info, style_images, settings, weights)[:20]
    resumed = job.exists()
    output = new_run_dir() / "stylised.mp4"
    for event in stylize_video(clip, style_images, settings, weights, output, job=job, resume=True):
        rate = f" · {event.frames_per_minute:.1f} frames/min" if event.frames_per_minute else ""
        eta = f" · {event.eta:.0f} s left" if event.eta is not None else ""
        progress((event.frame, event.frames), unit="frames",
                 desc=f"{event.stage}: frame {min(event.frame + 1, event.frames)} of {event.frames}"
                      f"{rate}{eta}")
        if event.preview is not None:
            yield to_uint8(event.preview), gr.skip(), \
                f"frame {event.frame} of {event.frames}{rate}{eta}" + \
                (" · continuing a stopped job" if resumed else "") + untrained_note(weights)
        if event.done:
            result = event.result
            shutil.rmtree(job, ignore_errors=True)
            border = (f" (chunk overlaps {result.border_warping_error:.3g}, elsewhere "
                      f"{result.inner_warping_error:.3g})" if result.border_warping_error is not None else "")
            kept = f" ({result.frames_resumed} from the stopped job)" if result.frames_resumed else ""
            info_text = (f"**{result.frames} frames at {float(result.fps):g} fps in {result.seconds:.1f} s**"
                         f"{kept} · first frame "
                         f"{result.first_iterations[0]} steps, later frames {result.mean_later_iterations:.1f} "
                         f"on average · warping error E_warp {result.warping_error:.3g}{border} · weights: "
                         f"{weights.source}" + untrained_note(weights))
            yield gr.skip(), str(result.path), info_text


def video_tab(default_size: int = VIDEO_DEFAULTS["size"], default_iterations: int = VIDEO_DEFAULTS["iterations"],
              ) -> None:
    gr.Markdown("A clip painted frame by frame without flicker: each frame is kept consistent with the "
                "previous one, warped along the clip's optical flow. Stop keeps the finished frames; "
                "running the same inputs and settings again continues the job.")
    with gr.Row():
        with gr.Column():
            clip = gr.Video(label="Video", sources=["upload"], format=None, elem_id="video_input")
            styles = gr.File(label="Style images (one or more)", file_count="multiple",
                             file_types=["image"], type="filepath", elem_id="video_styles")
            with gr.Row():
                size = gr.Slider(32, 1024, value=default_size, step=16, label="Frame size (longest side, px)")
                max_frames = gr.Slider(1, 600, value=48, step=1, label="At most this many frames")
                start = gr.Number(value=0.0, label="Start (seconds)")
            with gr.Row():
                strength = gr.Slider(0, 8, value=5, step=0.5, label="Style strength (log10 of the style weight)")
                temporal_weight = gr.Number(value=DEFAULT_TEMPORAL_WEIGHT,
                                            label="Temporal weight (0 = every frame on its own)")
            with gr.Accordion("Advanced", open=False):
                with gr.Row():
                    iterations = gr.Slider(0, 1000, value=default_iterations, step=10,
                                           label="First frame iterations")
                    frame_iterations = gr.Slider(0, 1000, value=default_iterations, step=10,
                                                 label="Later frames: at most (they stop early)")
                with gr.Row():
                    temporal = gr.Radio(["warp", "plain"], value="warp",
                                        label="Temporal loss (warp: along optical flow; plain: the deck's)")
                    chunk = gr.Number(value=0, precision=0, label="Chunk (frames; 0 = one chunk)")
                    chunk_overlap = gr.Number(value=0, precision=0, label="Chunk overlap (frames)")
            run, stop = run_and_stop("video_")
        with gr.Column():
            preview = gr.Image(label="Current frame", format="png", interactive=False, elem_id="video_frame",
                               height=320)
            result = gr.Video(label="Stylised video", interactive=False, elem_id="video_result")
            info = gr.Markdown()
    inputs = [clip, styles, size, max_frames, start, iterations, frame_iterations, strength, temporal_weight,
              temporal, chunk, chunk_overlap]
    event = run.click(run_video, inputs, [preview, result, info], api_name="video",
                      concurrency_id="optimise", concurrency_limit=1)
    stop.click(None, None, None, cancels=[event], api_name="stop_video")


# --- Explore tab ---------------------------------------------------------------------------------------

@user_errors
def run_explore(study, content, style, size, iterations, progress=gr.Progress()):
    """Runs one research-deck study; the grid and the loss curves grow cell by cell."""
    if study not in STUDIES:
        raise StyleError(f"unknown study {study!r}")
    content_image = load_image(content or ASSETS / "content.png")
    style_image = load_image(style or ASSETS / "style.png")
    base = study_settings(size=int(size), iterations=int(iterations))
    gallery, curves = [], {}
    sources = set()

    def weights_for(backbone):
        weights = get_weights(backbone, progress)
        sources.add(weights.source if not weights.trained else "")
        return weights

    for cell in run_study(study, content_image, style_image, base, weights_for):
        progress((cell.index + 1, cell.count), unit="cells", desc=f"done: {cell.label}")
        caption = f"{cell.label} · loss {cell.losses[-1]:.3g}" if cell.losses else cell.label
        gallery.append((to_uint8(cell.image), caption))
        curves[cell.label] = (cell.steps, cell.losses)
        warning = "".join(f"\n\n**⚠ {s}.**" for s in sources if s)
        yield (gallery, loss_figure(curves),
               f"{cell.index + 1} of {cell.count} cells · {STUDIES[study].what}{warning}")


def explore_tab() -> None:
    gr.Markdown("The studies of the research deck this studio grew from. Each runs small by default so "
                "that a CPU finishes it in minutes; raise size and iterations for finer results.")
    with gr.Row():
        study = gr.Dropdown([(s.title, s.name) for s in STUDIES.values()], value="content_weight",
                            label="Study")
        size = gr.Slider(32, 512, value=128, step=16, label="Size (px)")
        iterations = gr.Slider(10, 1000, value=60, step=10, label="Iterations per cell")
    with gr.Row():
        content = ImageUpload(label="Content (default: the bundled example)", type="filepath", height=160)
        style = ImageUpload(label="Style (default: the bundled example)", type="filepath", height=160)
    with gr.Row():
        run = gr.Button("Run study", variant="primary")
        stop = gr.Button("Stop", variant="stop")
    info = gr.Markdown()
    grid = gr.Gallery(label="Results", columns=5, height="auto", format="png")
    curves = gr.Plot(label="Loss curves")
    event = run.click(run_explore, [study, content, style, size, iterations], [grid, curves, info],
                      api_name="explore", concurrency_id="optimise", concurrency_limit=1)
    stop.click(None, None, None, cancels=[event], api_name="stop_explore")


# --- the page ------------------------------------------------------------------------------------------

def build(default_size: int = 512, default_iterations: int = 200) -> gr.Blocks:
    # Cached example results depend on the weights: keep one cache per source, in the app's temp area.
    source = str(WEIGHTS_SOURCE or os.environ.get("STYLE_CORE_WEIGHTS") or "hub")
    tag = hashlib.sha256(source.encode()).hexdigest()[:12]
    os.environ["GRADIO_EXAMPLES_CACHE"] = str(RUNS / f"cached_examples-{tag}")
    with gr.Blocks(title="Style transfer studio") as demo:
        gr.Markdown("# Style transfer studio\nNeural style transfer (Gatys et al.) in JAX. Drop a content "
                    "image and one or more style images, press Run, and watch the painting appear.")
        with gr.Tab("Image"):
            image_tab(default_size, default_iterations)
        with gr.Tab("Large image"):
            large_tab()
        with gr.Tab("Photorealistic"):
            photo_tab()
        with gr.Tab("Video"):
            video_tab(min(default_size, VIDEO_DEFAULTS["size"]), min(default_iterations, VIDEO_DEFAULTS["iterations"]))
        with gr.Tab("Explore"):
            explore_tab()
    demo.queue(default_concurrency_limit=1, max_size=32)
    return demo


def warm_up(size: int = 512) -> None:
    """Loads the default weights and compiles the default size once, so the first user waits less."""
    try:
        weights = get_weights("vgg19")
        image = load_image(ASSETS / "content.png")
        for _ in stylize(image, [load_image(ASSETS / "style.png")], ImageSettings(size=size, iterations=1), weights):
            pass
        log.info("warm-up done: compiled %d px on %s", size, jax.devices()[0])
    except StyleError as e:
        log.warning("warm-up skipped: %s", e)


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860, share: bool = False, **kwargs):
    user, password = os.environ.get("STYLE_STUDIO_USER", "studio"), os.environ.get("STYLE_STUDIO_PASSWORD")
    return demo.launch(server_name=host, server_port=port, share=share,
                       auth=(user, password) if password else None, max_file_size=MAX_UPLOAD,
                       allowed_paths=[str(ASSETS)], **kwargs)


def main() -> None:
    global WEIGHTS_SOURCE
    parser = argparse.ArgumentParser(description="Style transfer studio (Gradio).")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="create a public Gradio share link")
    parser.add_argument("--weights", default=None, help="local weights file, or 'random' (untrained)")
    parser.add_argument("--warmup", action="store_true", default=bool(os.environ.get("SPACE_ID")),
                        help="compile the default size at start-up (on by default on a Hugging Face Space)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    WEIGHTS_SOURCE = args.weights
    log.info("JAX backend %s, devices %s", jax.default_backend(), jax.devices())
    if args.warmup:
        threading.Thread(target=warm_up, daemon=True).start()
    launch(build(), args.host, args.port, args.share)


if __name__ == "__main__":
    main()
