"""The Photorealistic tab: the style's colours and light on the content's structure (Luan et al.),
with a side by side of content, plain stylisation and result and their photo-likeness figures."""

from __future__ import annotations

import gradio as gr

from style_core import save_image
from style_core.images import resize, to_uint8
from style_core.modes import MODES, Parts
from style_core.photo import DEFAULT_PHOTO_WEIGHT, PHOTO_DEFAULTS, PhotoSettings, photo_image_settings, photo_metrics
from style_core.settings import ImageSettings

from ..controls import (image_knobs, SMOOTHNESS_OFF, checked, controls, power_of_ten, radio, strength, style_strength,
                        tab_settings, the_rest)
from ..files import new_run_dir
from ..inputs import load_inputs
from ..regions_panel import page_regions, regions_line, regions_panel
from ..runner import Job, run_mode, source_of, user_errors, warning_text, wire
from ..widgets import downloads, drop_zones, result_image, tab_columns

PHOTO_STRENGTH = power_of_ten(DEFAULT_PHOTO_WEIGHT)
SMOOTHNESS = power_of_ten(PHOTO_DEFAULTS["tv_weight"])


def _metrics_caption(label: str, metrics: dict) -> str:
    return f"{label} · affine residual {metrics['affine_residual']:.4f} · edge SSIM {metrics['edge_ssim']:.3f}"


@user_errors(4)
def run_photo(content, styles, compare=False, painting=None, masks=None, content_labels=None, style_labels=None,
              request: gr.Request = None, **values):
    """Photorealistic transfer; streams the picture like the Image tab, then (on request) content, plain
    stylisation and photorealistic result side by side, with their photo-likeness figures. Regions come
    from a painting, masks or label images (page_regions). `values`: the tab's settings controls by
    name. Outputs: picture, PNG, side by side, status."""
    settings = tab_settings("photo", values)
    image, backbone = settings.image, settings.image.backbone
    content_image, style_images = load_inputs(content, styles)
    found = page_regions(len(style_images), painting, masks, content_labels, style_labels, content_image.shape[:2])
    # The plain stylisation for the comparison: a two-stage run's first stage is exactly that.
    plain_run = compare and not settings.two_stage and settings.photo_weight > 0
    parts = ("Plain stylisation", "Photorealistic") if plain_run else ()
    runs = None

    def start(weights):
        nonlocal runs
        photo = MODES["photo"].start(content_image, style_images, settings, weights[backbone], regions=found.regions)
        plain = [MODES["image"].start(content_image, style_images, image, weights[backbone], regions=found.regions)
                 ] if plain_run else []
        runs = Parts([*plain, photo], [sum(image.scale_iterations)] * (1 + plain_run))
        return iter(runs)

    def on_stop(shown, view):
        png = str(save_image(new_run_dir(request) / "stopped.png", shown[1].preview, {
            "Warning": "a stopped run's last picture"})) if shown else None
        return (shown[0] if shown else None, png, []), "The picture and its PNG are the last ones shown."

    def on_done(result, weights, seconds):
        weights = weights[backbone]
        plain = runs.results[0].image if plain_run else (result.plain.image if compare and result.plain else None)
        png = save_image(new_run_dir(request) / "photo.png", result.image,
                         {"style_core": result.report(), **warning_text(weights)})
        gallery = [(to_uint8(resize(content_image, *result.image.shape[:2])), "content")] if compare else []
        measured = ([("plain stylisation", plain)] if compare and plain is not None else []) + (
            [("photorealistic, before smoothing", result.raw)] if settings.smooth else [])
        gallery += [(to_uint8(p), _metrics_caption(label, photo_metrics(content_image, p))) for label, p in measured]
        gallery.append((to_uint8(result.image), _metrics_caption(
            "photorealistic" + (", smoothed" if settings.smooth else ""), result.metrics)))
        final = ", ".join(f"{k} {v:.4g}" for k, v in result.stages[-1].final_losses.items())
        names = ["first stage", "refinement"] if len(result.stages) == 2 else ["photorealistic"]
        offset = runs.results[0].iterations if plain_run else 0
        passes = ([f"{offset} plain stylisation"] if plain_run else []) + [
            f"{s.iterations} {name}" for s, name in zip(result.stages, names)]
        steps = offset + sum(s.iterations for s in result.stages)
        split = f" ({' + '.join(passes)})" if len(passes) > 1 else ""
        split += f" · {regions_line(found)}" if found else ""
        return (to_uint8(result.image), str(png), gallery), (
            f"**{steps} steps in {seconds:.1f} s**{split} · {final} · affine residual "
            f"{result.metrics['affine_residual']:.4f} (0 = locally an affine map of the content's colours) · "
            f"edge SSIM {result.metrics['edge_ssim']:.3f} · weights: {source_of(weights)}")

    yield from run_mode(Job("photo", 4, [backbone], start, on_done, on_stop, parts=parts), request)


def build(d: dict, page_banner) -> None:
    gr.Markdown("The style's colours and light on the content's structure, without painterly distortion: "
                "the matting Laplacian of the content (Levin et al.) keeps the output locally an affine "
                "function of the content's colours (Luan et al.). Strengths default to what was measured on a "
                "trained VGG16.")
    with tab_columns("photo_") as cols:
        with cols.controls:
            content, styles = drop_zones("photo_", "photo")
            regions = regions_panel("photo_", content, styles, labels=True)
            fields = lambda **looks: controls(PhotoSettings, ImageSettings, **looks)  # noqa: E731
            with gr.Row():
                c = fields(size=dict(value=d["size"]),
                           iterations=dict(value=d["iterations"], maximum=2000, elem_id="photo_iterations"))
            with gr.Row():
                c["style_strength"] = style_strength(photo_image_settings())
                c["photorealism"] = strength(PHOTO_STRENGTH, "Photorealism", f"0 = off (plain image mode); matting "
                                             f"weight = 10^value ({PHOTO_STRENGTH:g} = {DEFAULT_PHOTO_WEIGHT:.3g}, "
                                             f"the default)")
                c["smoothness"] = checked(gr.Slider(SMOOTHNESS_OFF, 3, value=SMOOTHNESS, step=0.1, label="Smoothness",
                                                    info=f"{SMOOTHNESS_OFF:g} = off; TV weight = 10^value "
                                                         f"({SMOOTHNESS:g} = {PHOTO_DEFAULTS['tv_weight']:.4g}, "
                                                         f"the default)"))
            with gr.Row():
                compare = gr.Checkbox(value=False, label="Compare: content, plain stylisation, photorealistic")
                c |= fields(smooth={})
            with gr.Accordion("Advanced", open=False):
                with gr.Row():
                    c |= fields(two_stage={}, refine_iterations=dict(value=d["iterations"]))
                with gr.Row():
                    c |= fields(preserve_color=radio("Preserve colour"),
                                optimizer=dict(value=PHOTO_DEFAULTS["optimizer"], label="Optimizer"),
                                epsilon={})
                with gr.Row():
                    c |= the_rest(c, PhotoSettings)
                c |= image_knobs(c, d, "photo_", skip=("backbone",))
        with cols.pane:
            preview = result_image("photo_result", "Result")
            download = downloads("photo_download", "Download PNG (settings embedded)")
    gallery = gr.Gallery(label="Side by side", columns=4, height="auto", format="png", visible=False,
                         elem_id="photo_gallery")
    compare.change(lambda on: gr.update(visible=on), compare, gallery, queue=False, api_name=False,
                   show_progress="hidden")   # the side by side shows with Compare only
    wire(cols, run_photo, [content, styles, compare, *regions], [preview, download, gallery, cols.progress], "photo",
         "photo", page_banner, c)
