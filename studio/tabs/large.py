"""The Large image tab: a print-size canvas painted tile by tile, its grid drawn over the preview."""

from __future__ import annotations

import gradio as gr
import jax
import numpy as np

from style_core import ImageSettings, save_image
from style_core.images import to_uint8
from style_core.jobs import remove_folder
from style_core.large import LargeSettings
from style_core.modes import MODES, ran_on

from ..controls import controls, image_knobs, radio, style_strength, tab_settings, the_rest, until_done_box
from ..files import job_dir, new_run_dir
from ..inputs import load_inputs
from ..runner import Job, preview_of, run_mode, source_of, user_errors, warning_text, wire
from ..state import STATE
from ..widgets import downloads, drop_zones, result_image, tab_columns


def draw_grid(preview: np.ndarray, shape: tuple[int, int], layout, done: int) -> np.ndarray:
    """The canvas preview with the tile grid drawn over it; the tile being painted next in orange."""
    from PIL import Image, ImageDraw
    image = Image.fromarray(to_uint8(preview)).convert("RGBA")
    fit = min(512, max(shape)) / max(image.size)  # a small global pass: grid lines at display scale
    if fit > 1:
        image = image.resize((round(image.width * fit), round(image.height * fit)), Image.BILINEAR)
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    sy, sx = image.size[1] / shape[0], image.size[0] / shape[1]
    # one cell per tile, cut at the middle of each overlap (a tile's own edges would draw each
    # overlap as a cell of its own)
    (x_start, x_end), (y_start, y_end) = (_cuts([(t.x, t.x + t.width) for t in layout]),
                                          _cuts([(t.y, t.y + t.height) for t in layout]))
    for tile in sorted(layout, key=lambda t: t.index == done):   # the current cell drawn last, on top
        x0, x1 = x_start[tile.x], x_end[tile.x + tile.width]
        y0, y1 = y_start[tile.y], y_end[tile.y + tile.height]
        current = tile.index == done
        draw.rectangle((x0 * sx, y0 * sy, x1 * sx - 1, y1 * sy - 1),
                       outline=(255, 140, 0, 255) if current else (255, 255, 255, 110), width=3 if current else 1)
    return np.asarray(Image.alpha_composite(image, overlay).convert("RGB"))


def _cuts(spans: list[tuple[int, int]]) -> tuple[dict[int, float], dict[int, float]]:
    """The cell edges of tiles' spans along one axis: for each start and each end, the middle of the
    overlap between that column (row) and its neighbour (the image's edges stay). Starts and ends
    apart: with much overlap one column's end is the next but one's start."""
    starts, ends = sorted({a for a, _ in spans}), sorted({b for _, b in spans})
    first, last = {starts[0]: starts[0]}, {ends[-1]: ends[-1]}
    for start, end in zip(starts[1:], ends[:-1]):   # column k ends inside column k+1
        first[start] = last[end] = (start + end) / 2
    return first, last


class Canvas:
    """What the canvas shows: the global pass as it goes, then the tiles with their grid (the global
    pass's picture gridded until the first tile is done)."""

    def __init__(self):
        self.canvas, self.gridded = None, False

    def __call__(self, view):
        event = view.event
        picture = preview_of(view)
        if event.preview is not None:
            self.canvas = event.preview
            if event.stage == "tiles":
                picture = draw_grid(event.preview, event.shape, event.layout, event.completed)
        elif event.stage == "tiles" and self.canvas is not None and not self.gridded:
            picture = draw_grid(self.canvas, event.shape, event.layout, event.completed)
        self.gridded = self.gridded or event.stage == "tiles"
        return picture


@user_errors(3)
def run_large(content, styles, request: gr.Request = None, **values):
    """Paints a large canvas tile by tile; streams the canvas with its tile grid. A stopped job keeps
    its finished tiles: running the same inputs and settings again continues it. `values`: the tab's
    controls by name (`size` is the output's). Outputs: canvas, PNG, status."""
    settings = tab_settings("large", values)
    mode, backbone = MODES["large"], settings.image.backbone
    content_image, style_images = load_inputs(content, styles)
    canvas = Canvas()
    job = None

    def start(weights):
        nonlocal job
        job = job_dir("large", mode.job_key((content_image, *style_images), settings, weights[backbone]))
        run.note = " · continuing a stopped job" if job.exists() else ""
        return mode.start(content_image, style_images, settings, weights[backbone], job=job, resume=True,
                          backend=STATE.cluster)

    def on_stop(shown, view):
        png = str(save_image(new_run_dir(request) / "canvas-so-far.png", canvas.canvas, {
            "Warning": "a stopped job's canvas at preview size"})) if canvas.canvas is not None else None
        return (shown[0] if shown else None, png), (
            "The tile in progress is discarded; the finished tiles are kept, and Run with the same inputs and "
            "settings continues from them. The PNG is the canvas so far, at preview size.")

    def on_done(result, weights, seconds):
        weights = weights[backbone]
        h, w = result.image.shape[:2]
        png = save_image(new_run_dir(request) / "large.png", result.image,
                         {"style_core": result.report(), **warning_text(weights)})
        remove_folder(job, mode.pieces)
        return (to_uint8(result.image), str(png)), (
            f"**{w}x{h} px, {len(result.layout)} tiles in {seconds:.1f} s** ({result.tiles_resumed} from the "
            f"stopped job) · weights: {source_of(weights)} · "
            + (ran_on(result.units) or f"device: {jax.default_backend()} × {jax.device_count()}"))

    run = Job("large", 3, [backbone], start, on_done, on_stop, picture=canvas)
    yield from run_mode(run, request)


def build(d: dict, page_banner) -> None:
    gr.Markdown("Print-size outputs, painted tile by tile: the style is measured at the output's scale, "
                "a global pass sets the composition, and the tiles are blended without seams. Stop keeps "
                "the finished tiles (the one in progress is discarded); running the same inputs and "
                "settings again continues the job.")
    with tab_columns("large_") as cols:
        with cols.controls:
            content, styles = drop_zones("large_")
            fields = lambda **looks: controls(LargeSettings, ImageSettings, **looks)  # noqa: E731
            c = fields(size=dict(value=d["size"]))
            with gr.Row():
                c |= fields(tile=dict(value=d["tile"]), overlap=dict(value=d["overlap"]))
            with gr.Row():
                c |= fields(iterations=dict(value=d["iterations"], label="Global pass iterations"),
                            tile_iterations=dict(value=d["tile_iterations"]))
            with gr.Row():
                c["style_strength"] = style_strength(ImageSettings())
                c |= fields(preserve_color=radio("Preserve colour"))
            with gr.Accordion("Advanced", open=False):
                c |= fields(optimizer="Optimizer", base_size=dict(value=d["base_size"]))
                c["until_done"] = until_done_box(d.get("until_done", True))
                c |= the_rest(c, LargeSettings)
                c |= image_knobs(c, d, "large_", skip=("backbone",))
        with cols.pane:
            preview = result_image("large_result", "Canvas")
            download = downloads("large_download", "Download the full-size PNG")
    wire(cols, run_large, [content, styles], [preview, download, cols.progress], "large", "large", page_banner, c)
