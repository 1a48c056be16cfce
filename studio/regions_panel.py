"""The "Regions (optional)" panel of the Image and Photorealistic tabs: a painting over the content,
mask files or label images, made into regions by the library (`regions.regions_from`)."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import gradio as gr
import numpy as np

from style_core import StyleError, load_image, save_image
from style_core.auto_regions import find_regions
from style_core.errors import spelled
from style_core.images import load_mask, resize_longest, to_uint8
from style_core.regions import MAX_REGIONS, PALETTE, Regions, area_resize, regions_from

from .controls import checked
from .files import new_run_dir
from .inputs import load_inputs, paths
from .state import STATE
from .widgets import ImageUpload

# The content in the painting editor: its longest side (masks are resized to any output), so that the
# brush's size (a radius in the editor's pixels) is the same share of every picture.
PAINT_SIZE, BRUSH_SIZE = 512, 24
# The brush paints at half opacity, so that the content shows through; the editor stores a stroke at
# that opacity however often it is painted over (127 of 255), so that much or more is all of a region.
BRUSH_OPACITY = 0.5
FULL = math.floor(255 * BRUSH_OPACITY) / 255


def painting_of(content):
    """The painting editor's value for a content image: the picture to paint on (upright, as the run
    sees it, PAINT_SIZE px on its longest side) and nothing painted yet; no content, an empty editor."""
    try:
        image = load_image(content) if content else None
    except StyleError:
        return None  # Run says what is wrong with the file
    if image is None:
        return None
    return {"background": to_uint8(resize_longest(image, PAINT_SIZE)), "layers": [], "composite": None}


def page_regions(styles: int, painting=None, masks=None, content_labels=None, style_labels=None,
                 shape: tuple[int, int] | None = None) -> Regions:
    """The regions the page's inputs describe (`regions_from`: one source at a time): the editor's
    painting (a stroke as opaque as the brush paints being all of its region), mask files, or a pair
    of label images."""
    return regions_from(styles, painting=(painting or {}).get("layers") or [], full=FULL,
                        masks=[load_mask(p) for p in paths(masks, "masks")],
                        content_labels=load_image(content_labels) if content_labels else None,
                        style_labels=[load_image(p) for p in paths(style_labels, "style label images")],
                        shape=shape)


def regions_line(found: Regions, styles: list[str] | None = None) -> str:
    """'2 regions: red → style 1 (a.png) on 31% of the picture, blue → style 2 on 24%; the other 45%
    stays the photo'."""
    regions = found.regions
    shape = regions[0].mask.shape
    cover = [area_resize(r.mask, *shape) for r in regions]
    parts = [f"{name} → style {r.style + 1}" + (f" ({styles[r.style]})" if styles and r.style < len(styles) else
                                               " (not added yet)" if styles is not None else "")
             + f" on {float(np.mean(m)):.0%}" for name, r, m in zip(found.names, regions, cover)]
    rest = 1.0 - float(np.mean(np.clip(sum(cover), 0.0, 1.0)))
    return (f"{len(regions)} region{'s' * (len(regions) != 1)}: {', '.join(parts)}"
            + (f"; the other {rest:.0%} stays the photo" if rest >= 0.005 else ""))


def regions_preview(content, painting, styles, masks=None, content_labels=None, style_labels=None):
    """The regions over the content, each in its colour at half strength, and a line that says which
    style goes where (or what is wrong with the inputs)."""
    background = (painting or {}).get("background")
    if background is None:  # the editor's own clear drops it, and its change may come after the refill
        background = (painting_of(content) or {}).get("background")
    if background is None:
        return None, "Drop a content image first: it appears above to paint on."
    picture = np.asarray(background)[..., :3].astype(np.float32)
    try:
        files = [Path(p).name for p in paths(styles)]
        count = len(files) or len(paths(masks, "masks")) or len(paths(style_labels, "style label images")) \
            or len(PALETTE)
        found = page_regions(count, painting, masks, content_labels, style_labels)
    except StyleError as e:
        return None, f"⚠ {e}"
    if not found:
        return None, "Nothing painted: every style goes everywhere, as without regions."
    for region, colour in zip(found.regions, found.colours):
        m = 0.55 * area_resize(region.mask, *picture.shape[:2])[..., None]
        picture = picture * (1 - m) + np.array(colour, np.float32) * m
    return picture.astype(np.uint8), regions_line(found, files)


def overlay(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A colour-coded label image over its picture, half and half."""
    picture = to_uint8(resize_longest(image, 384)).astype(np.float32)
    h, w = picture.shape[:2]
    coded = np.asarray(labels, np.float32)[np.linspace(0, labels.shape[0] - 1, h).astype(int)][
        :, np.linspace(0, labels.shape[1] - 1, w).astype(int)]
    return (0.45 * picture + 0.55 * coded).astype(np.uint8)


def find(content, styles, k, request: gr.Request = None):
    """"Find regions": regions found on the trained network's features, colour and position, and
    paired (`auto_regions.find_regions`), handed to the panel as a pair of label images (which the
    preview shows and Run uses, and which can be downloaded, edited and dropped back), with both
    images' regions side by side. K 0: chosen (2 to 6)."""
    content_image, style_images = load_inputs(content, styles)
    k = int(k or 0)
    if k and not 2 <= k <= MAX_REGIONS:
        raise StyleError(f"regions: 0 (chosen) or 2 to {MAX_REGIONS}, not {k}")
    weights = STATE.get_weights(STATE.backbone)
    found = find_regions(content_image, style_images, weights, k=k or None, seed=0)   # as the CLI does
    coded, style_coded = found.label_images()
    folder = new_run_dir(request)
    content_file = str(save_image(folder / "content-labels.png", coded.astype(np.float32) / 255))
    style_files = [str(save_image(folder / f"style-labels-{n}.png", s.astype(np.float32) / 255))
                   for n, s in enumerate(style_coded, 1)]
    names = [Path(p).name for p in paths(styles)]
    shown = [(overlay(content_image, coded), "content")] + [
        (overlay(s, c), f"style {n}: {name}")
        for n, (s, c, name) in enumerate(zip(style_images, style_coded, names), 1)]
    whole = sum(js is None for _, js in found.pairs)
    cut = sorted({len(np.unique(labels)) for labels in found.style_labels})
    note = (f"Found {found.k} regions in the content{' (K chosen)' if not k else ''} and "
            f"{' to '.join(map(str, cut))} in each style image, paired by what they show and where: "
            f"{found.k - whole} painted from the "
            "style regions of their colour" + (f", {whole} (white) from a whole style image" if whole else "")
            + (" (grey: unused)" if any((p < 0).any() for p in found.painted()) else "")
            + ". They are now the label images below: Run uses them; or download, edit and drop them back.")
    if whole and len(style_images) > 1:
        note += (" ⚠ With several style images, label images cannot say which whole image a white region "
                 "takes: give it a colour of one style label image (or use fewer regions) before Run.")
    if not weights.trained:
        note += " ⚠ Untrained weights: these regions follow colour and position only."
    return content_file, style_files, shown, note


def as_painting(content, content_labels, style_labels):
    """"Edit as a painting": the label images' content regions painted in the brush's colour of the
    style image each goes to, so that the painting editor can change them (a painting names a style
    image, not a part of it: each region then learns from its whole style image)."""
    if not content_labels or not style_labels:
        raise StyleError("find or drop the label images first")
    found = page_regions(len(paths(style_labels, "style label images")), content_labels=content_labels,
                         style_labels=style_labels)
    editor = painting_of(content)
    if editor is None:
        raise StyleError("drop a content image first")
    h, w = editor["background"].shape[:2]
    layer = np.zeros((h, w, 4), np.uint8)
    colours = list(PALETTE.values())
    for region in found.regions:
        mask = area_resize(region.mask, h, w) > 0.5
        layer[mask] = (*colours[region.style % len(colours)], round(255 * BRUSH_OPACITY))
    return {**editor, "layers": [layer]}, None, None


REGIONS_HELP = ("Paint where each style goes, in the brush's colours: " + ", ".join(
    f"{name} = style {k}" for k, name in enumerate(PALETTE, 1)) + " (the style files' order). Unpainted "
    "parts stay the photo; with nothing painted every style goes everywhere. Or upload masks instead: one "
    "greyscale image per style image, white where it goes (grey blends).")


def regions_panel(prefix: str, content, styles, labels: bool = False) -> list:
    """The "Regions (optional)" accordion of a tab: the painting editor over the content, mask files
    (and, with `labels`, a pair of label images), the regions' preview and its line. Returns the inputs
    a run takes, in page_regions' order."""
    help_text = REGIONS_HELP + (" For photos, label images are the natural input: a content label image "
                                "and one per style image, each colour marking the same kind of thing on "
                                "both sides (sky, building). Find regions makes such a pair from the trained network's "
                                "features (K regions in the content, K + 2 in each style image, each style "
                                "region given to the content region it resembles most)." if labels else "")
    with gr.Accordion("Regions (optional)", open=False, elem_id=f"{prefix}regions"):
        gr.Markdown(help_text)
        if labels:
            with gr.Row():
                count = checked(gr.Number(0, precision=0, minimum=0, maximum=MAX_REGIONS, label="Regions (0 = chosen)",
                                          elem_id=f"{prefix}regions_k", scale=1))
                find_button = gr.Button("Find regions", elem_id=f"{prefix}find_regions", scale=2)
                edit_button = gr.Button("Edit as a painting", elem_id=f"{prefix}edit_regions", scale=2)
            found = gr.Gallery(label="Found regions (content, then each style image)", columns=4, height=200,
                               format="png", elem_id=f"{prefix}found_regions", object_fit="contain")
            found_line = gr.Markdown(elem_id=f"{prefix}found_line")
        painting = gr.ImageEditor(label="Paint the regions", type="numpy", sources=(), transforms=(), layers=False,
                                  brush=gr.Brush(BRUSH_SIZE, [(f"rgb{c}", BRUSH_OPACITY) for c in PALETTE.values()],
                                                 color_mode="fixed"),
                                  height=360, elem_id=f"{prefix}regions_painting")
        with gr.Row():
            preview = gr.Image(label="Regions over the content", format="png", interactive=False, height=220,
                               buttons=["fullscreen"],
                               elem_id=f"{prefix}regions_preview", elem_classes=["fit"])
            with gr.Column():
                inputs = [painting, gr.File(label="Or masks: one per style image, white = that style",
                                            file_count="multiple", file_types=["image"], type="filepath",
                                            elem_id=f"{prefix}regions_masks", height=140)]
                if labels:
                    inputs += [ImageUpload(label="Or content labels", type="filepath", sources=["upload"], height=100,
                                           elem_id=f"{prefix}content_labels"),
                               gr.File(label="and style labels: one per style image", file_count="multiple",
                                       file_types=["image"], type="filepath", elem_id=f"{prefix}style_labels",
                                       height=100)]
        line = gr.Markdown(elem_id=f"{prefix}regions_line")
    quiet = dict(queue=False, show_progress="hidden", api_name=False)
    show = dict(fn=regions_preview, inputs=[content, painting, styles, *inputs[1:]], outputs=[preview, line],
                trigger_mode="always_last", **quiet)
    # The preview follows the painter's strokes (`input`: on an editor whose value was set while its
    # accordion was closed, the first stroke fires no `change` in Gradio 6.31) and the page's own
    # updates of the editor: the content put in it, and put back after the editor's clear drops it.
    content.change(painting_of, content, painting, **quiet).then(**show)
    painting.clear(painting_of, content, painting, **quiet).then(**show)
    gr.on([painting.input, *(c.change for c in (*inputs[1:], styles))], **show)
    if labels:   # on the shared queue: it runs the network
        find_button.click(one_line(find), [content, styles, count], [*inputs[2:], found, found_line],
                          api_name=f"{prefix}find_regions".lstrip("_"), concurrency_id="optimise")
        edit_button.click(one_line(as_painting), [content, *inputs[2:]], [painting, *inputs[2:]],
                          api_name=False).then(**show)
    return inputs


def one_line(fn):
    """`fn` with a StyleError shown as a one-line gr.Error (settings in the page's words)."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StyleError as e:
            raise gr.Error(spelled(str(e), lambda name: name.replace("_", " ")), print_exception=False) from None
    return run
