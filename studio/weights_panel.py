"""The Weights panel, and the banner that says when a network is untrained."""

from __future__ import annotations

import html
import logging

import gradio as gr

from style_core import StyleError, load_weights
from style_core.backbones import BACKBONES
from style_core.weights import FILENAME, file_backbone, hub_repo

from .state import STATE, UNTRAINED_TEXT

log = logging.getLogger("style_studio")


def banner():
    text = UNTRAINED_TEXT.format(backbones=", ".join(STATE.untrained)) if STATE.untrained else ""
    return gr.update(value=f'<div class="untrained">{html.escape(text)}</div>' if text else "",
                     visible=bool(text))


def use_weights_file(path, backbone):
    """The Weights panel: a model.safetensors, or a Keras VGG16/VGG19 as ONNX or .h5, uploaded in the
    page; a file that says which VGG it holds is used for that one, whatever the dropdown says."""
    if not path:
        raise gr.Error("drop a weights file first", print_exception=False)
    held = file_backbone(path)
    backbone = held or backbone
    try:
        weights = load_weights(backbone, path)
    except StyleError as e:
        raise gr.Error(str(e), print_exception=False) from None
    STATE.use(backbone, weights)
    return banner(), (f"Using the uploaded weights for {backbone}"
                      + (f" (the file holds a {backbone.upper()}): choose backbone {backbone} under "
                         f"Advanced in each tab." if held and held != "vgg19" else "."))


def use_untrained_weights():
    """The Weights panel: untrained (random) weights for every backbone, with the banner on."""
    STATE.use_untrained()
    log.warning(UNTRAINED_TEXT.format(backbones="chosen in the page, every backbone"))
    return banner(), "Untrained weights chosen for every backbone: see the banner."


def weights_panel(page_banner) -> None:
    """Where a browser user gets weights when the server has none: a file, or untrained ones."""
    with gr.Accordion("Weights", open=False, elem_id="weights_panel"):
        gr.Markdown(f"The studio needs a network trained on ImageNet ({hub_repo('vgg19')}: about 80 MB of "
                    "its file, downloaded on the first run and kept). Where the server cannot download it, "
                    f"upload that repository's {FILENAME} here (548 MB; files up to 2 GB are taken, with the "
                    "upload's progress shown), or a Keras VGG16/VGG19 as .onnx or .h5 (e.g. keras.applications' "
                    "'notop' file, 59 MB for VGG16); or try untrained weights: the network then has random "
                    "values, and results carry the style's colour and texture statistics, not a trained "
                    "network's style.")
        with gr.Row():
            upload = gr.File(label=f"{FILENAME}, or a Keras VGG16/VGG19 as .onnx or .h5",
                             file_types=[".safetensors", ".onnx", ".h5"], type="filepath", elem_id="weights_file")
            backbone = gr.Dropdown(list(BACKBONES), value="vgg19", label="For the backbone")
        with gr.Row():
            use_file = gr.Button("Use this file", elem_id="use_weights_file")
            untrained = gr.Button("Try untrained weights (not style transfer)", variant="secondary",
                                  elem_id="use_untrained")
        note = gr.Markdown()
    use_file.click(use_weights_file, [upload, backbone], [page_banner, note], api_name=False)
    untrained.click(use_untrained_weights, None, [page_banner, note], api_name=False)
