"""The Image tab: one content image in the style of one or more style images, with examples."""

from __future__ import annotations

import shutil

import gradio as gr
import jax
import numpy as np

from style_core import ImageSettings, save_image
from style_core.images import to_uint8
from style_core.modes import MODES
from style_core.transfer import scale_shapes

from ..controls import controls, image_knobs, radio, style_strength, tab_settings
from .. import files
from ..examples import ASSETS, EXAMPLE_SETTINGS, EXAMPLES, example_results, example_thumbnails
from ..files import new_run_dir
from ..inputs import load_inputs
from ..regions_panel import page_regions, regions_line, regions_panel
from ..runner import QUEUE, Job, run_mode, source_of, status, user_errors, warning_text, wire
from ..state import STATE
from ..weights_panel import banner
from ..widgets import downloads, drop_zones, loss_figure, result_image, tab_columns



def steps_summary(result, shape: tuple[int, int]) -> str:
    """'375 steps: 75 at 128x96 px + 300 at 256x192 px' (every pass counted, the coarser ones named)."""
    shapes = scale_shapes(shape, result.settings)
    last, per_scale = 0, []
    for k, (h, w) in enumerate(shapes, 1):
        end = max((e["step"] for e in result.history if e["scale"] == k), default=last)
        per_scale.append(f"{end - last} at {w}x{h} px")
        last = end
    split = f" ({' + '.join(per_scale)}; a coarser scale takes a quarter of the iterations)" \
        if len(shapes) > 1 else ""
    return f"**{result.iterations} steps in {result.seconds:.1f} s**{split}"


@user_errors(5)
def run_image(content, styles, painting=None, masks=None, content_labels=None, style_labels=None,
              request: gr.Request = None, **values):
    """Stylises the content image; streams the picture in place, then the PNG, comparison and loss
    curve. `painting` (the regions editor's value) or `masks` (one file per style image): where each
    style goes (page_regions). `values`: the tab's controls by name. Outputs: picture, PNG,
    before/after, loss curve, status."""
    settings = tab_settings("image", values)
    content_image, style_images = load_inputs(content, styles)
    found = page_regions(len(style_images), painting, masks, content_labels, style_labels, content_image.shape[:2])

    def on_stop(shown, view):
        weights = STATE.weights[settings.backbone]
        text = {"style_core": {"settings": settings.to_dict(), "stopped_at_step": view.event.completed},
                **warning_text(weights)}
        png = str(save_image(new_run_dir(request) / "stopped.png", shown[1].preview, text)) if shown else None
        kept = f"The picture and its PNG are from step {shown[1].event.completed}." if shown else ""
        return ((shown[0] if shown else None), png, None, None), kept

    def on_done(result, weights, seconds):
        weights = weights[settings.backbone]
        png = save_image(new_run_dir(request) / "result.png", result.image,
                         {"style_core": result.report(), **warning_text(weights)})
        final = ", ".join(f"{k} {v:.4g}" for k, v in result.final_losses.items())
        where = f" · {regions_line(found)}" if found else ""
        picture = to_uint8(result.image)
        return ((picture, str(png), (to_uint8(np.asarray(content_image)), picture),
                 loss_figure({"total": result.loss_curve()})),
                f"{steps_summary(result, content_image.shape[:2])} · {result.stop_reason} · {final}{where} · "
                f"weights: {source_of(weights)} · device: {jax.default_backend()}")

    def start(weights):
        return MODES["image"].start(content_image, style_images, settings, weights[settings.backbone],
                                    regions=found.regions)

    yield from run_mode(Job("image", 5, [settings.backbone], start, on_done, on_stop), request)


def run_example(evt: gr.SelectData, request: gr.Request = None):
    """A click on an example: its inputs and settings go into the controls (what runs is what the page
    shows), then it runs like Run, or comes from the result kept from an earlier click."""
    content, style = (str(ASSETS / name) for name in EXAMPLES[evt.index])
    chosen = (content, [style], *EXAMPLE_SETTINGS.values())  # the outputs' order: build's
    weights = STATE.weights.get(EXAMPLE_SETTINGS["backbone"])
    key = (evt.index, STATE.source, weights.source if weights else None, tuple(EXAMPLE_SETTINGS.values()))
    if key in example_results:
        yield *chosen, *example_results[key]
        return
    yield *chosen, gr.skip(), gr.skip(), gr.skip(), gr.skip(), status("Starting the example…")
    outputs = None
    for outputs in run_image(content, [style], request=request, **EXAMPLE_SETTINGS):
        yield (*(gr.skip(),) * len(chosen), *outputs)
    if outputs is not None and 'data-state="done"' in str(outputs[-1]):
        # kept outside the session's folder, which goes when its page closes
        kept = files.RUNS / "examples" / f"example-{evt.index}-{len(example_results)}.png"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(outputs[1], kept)
        example_results[key] = (outputs[0], str(kept), *outputs[2:])


def build(d: dict, page_banner) -> None:
    """The tab's layout (`d`: the device's sizes and iterations for this tab) and its events."""
    examples = gr.Gallery(example_thumbnails(), label=f"Examples: click one to run it ({EXAMPLE_SETTINGS['size']} px, "
                          f"{EXAMPLE_SETTINGS['iterations']} iterations; a second click shows the kept result)",
                          columns=len(EXAMPLES), height=118, allow_preview=False, elem_id="examples",
                          object_fit="contain")
    fields, c = (lambda **looks: controls(ImageSettings, **looks)), {}
    with tab_columns("") as cols:
        with cols.controls:
            content, styles = drop_zones("")
            regions = regions_panel("", content, styles, labels=True)
            with gr.Row():
                c |= fields(size=dict(value=d["size"], elem_id="size"),
                            iterations=dict(value=d["iterations"], elem_id="iterations"))
            with gr.Row():
                c["style_strength"] = style_strength(ImageSettings(), elem_id="style_strength")
                c |= fields(preserve_color=radio("Preserve colour"))
            with gr.Accordion("Advanced", open=False):
                c |= image_knobs(c, d)
        with cols.pane:
            preview = result_image("result", "Result")
            download = downloads("download", "Download PNG (settings embedded)")
    with gr.Row():
        compare = gr.ImageSlider(label="Before / after", format="png", interactive=False, max_height=480)
        curve = gr.Plot(label="Loss")
    outputs = [preview, download, compare, curve, cols.progress]
    wire(cols, run_image, [content, styles, *regions], outputs, "stylize", "image", page_banner, c)
    examples.select(run_example, None, [content, styles, *(c[name] for name in EXAMPLE_SETTINGS)] + outputs,
                    api_name=False, **QUEUE).then(banner, None, page_banner, queue=False)
