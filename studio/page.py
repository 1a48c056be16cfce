"""The page: its layout (the tabs under the Weights panel), look, launch, and the server's command
line. A password is set with STYLE_STUDIO_PASSWORD (user STYLE_STUDIO_USER, default "studio")."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import sys
import threading

import gradio as gr
import jax

from style_core import ImageSettings, StyleError, load_image, load_weights, stylize
from style_core.cluster import backend
from style_core.defaults import MODES as MODE_NAMES, mode_defaults
from style_core.runtime import use_compile_cache
from style_core.weights import file_backbone

from . import examples, files
from .inputs import guard_inputs
from .state import STATE, UNTRAINED_TEXT
from .tabs import explore, image, large, photo, video
from .weights_panel import banner, weights_panel

ASSETS = examples.ASSETS
MAX_UPLOAD = "2gb"   # weights files: a VGG16 is 59 MB, timm's VGG19 model.safetensors 548 MB
SIGTERM_GRACE = 5.0   # seconds a SIGTERM waits for the server to close before the process ends anyway
TABS = [("Image", image), ("Large image", large), ("Photorealistic", photo), ("Video", video), ("Explore", explore)]
log = logging.getLogger("style_studio")

CSS = """
.run-status { padding: 6px 10px; border-radius: 6px; background: var(--block-background-fill);
              border: 1px solid var(--border-color-primary); min-height: 2.2em; }
.run-status .bar { height: 8px; border-radius: 4px; background: var(--neutral-200); overflow: hidden;
                   margin-bottom: 4px; }
.run-status .bar > div { height: 100%; background: var(--color-accent); transition: width 0.3s; }
.run-status .bar.busy > div { opacity: 0.35; }
.run-status.stopped { border-color: #d9a400; background: #fff8db; color: #5c4600; }
.run-status.done { border-color: #3a9a4a; }
.run-status.error { border-color: #c0392b; background: #fdecea; color: #7a1d12; }
.untrained { padding: 8px 12px; border-radius: 6px; background: #ffe9a8; color: #4d3800;
             border: 1px solid #d9a400; font-weight: 600; }
.fit img { object-fit: contain !important; width: 100% !important; height: 100% !important; }
#explore_grid img { image-rendering: pixelated; }
#explore_grid .thumbnail-item { max-width: 220px; max-height: 220px; }
#examples .grid-container { grid-template-columns: repeat(5, minmax(0, 1fr)) !important; }
#examples .thumbnail-item { height: 84px !important; aspect-ratio: auto !important; }
/* the result pane stays beside the controls while they scroll (a laptop's screen holds both) */
.pinned { position: sticky !important; top: 6px; align-self: flex-start !important; }
.gradio-container { overflow: clip !important; }   /* hidden would make it the sticky pane's scroller */
.download .empty { min-height: 0 !important; height: 36px !important; }  /* no file yet: one line */
h1 { font-size: 1.6em !important; margin: 0 !important; }
"""

# A click on Run (or on an example) scrolls the page, if it must, so that the result pane is whole on
# the screen (it then stays, pinned). A listener of the page's own: Gradio's `js` events do not fire
# once a gr.File holds files (6.31).
PAGE_JS = """() => { document.addEventListener('click', (e) => {
    const button = e.target.closest('button[id$="run"], #examples');
    const tab = button && (button.id === 'examples' ? document.getElementById('run') : button);
    const pane = tab && tab.closest('.tabitem') && tab.closest('.tabitem').querySelector('.pinned');
    if (!pane) return;
    const top = pane.parentElement.getBoundingClientRect().top;
    if (top > 0) window.scrollBy({top: top - 6, behavior: 'instant'});
    const line = pane.querySelector('.run-status .line');   // until the run's first word (a queue: later)
    if (line) line.textContent = 'Waiting for the server (a run ahead of this one in the queue, or the upload)…';
    }, true); }"""


def device_defaults(device: str | None = None) -> dict[str, dict]:
    """Each tab's sizes and iterations on `device` (a JAX backend; this server's by default): the
    library's table (defaults.DEVICE_DEFAULTS) over each mode's defaults."""
    device = device or jax.default_backend()
    return {mode: mode_defaults(mode, device) for mode in MODE_NAMES}


def end_session(request: gr.Request) -> None:
    """A closed page: its runs' files go with it (stopped jobs stay for another session to resume)."""
    files.end_session(request)


def build(defaults: dict[str, dict] | None = None) -> gr.Blocks:
    """The page; `defaults`: each tab's sizes and iterations (device_defaults by default)."""
    d = defaults or device_defaults()
    with gr.Blocks(title="Style transfer studio", delete_cache=(files.RUN_MAX_AGE // 4, files.RUN_MAX_AGE)) as demo:
        gr.Markdown("# Style transfer studio\nNeural style transfer (Gatys et al.) in JAX. Drop a content "
                    "image and one or more style images, press Run, and watch the painting appear. "
                    f"Defaults suit this server's device ({jax.default_backend().upper()}).")
        page_banner = gr.HTML("", visible=False, elem_id="untrained_banner")
        weights_panel(page_banner)
        for title, tab in TABS:
            with gr.Tab(title):
                tab.build(d[tab.__name__.rsplit(".", 1)[-1]], page_banner)
        demo.load(banner, None, page_banner, show_progress="hidden")
        demo.unload(end_session)
    guard_inputs(demo)
    for block in demo.blocks.values():
        files.KEEP.update(str(f) for f in getattr(block, "keep_in_cache", ()))
    demo.queue(default_concurrency_limit=1, max_size=32)
    return demo


def warm_up(size: int) -> None:
    """Loads the default weights and compiles the default size once, so the first user waits less."""
    try:
        weights = STATE.get_weights(STATE.backbone)
        for _ in stylize(load_image(ASSETS / "content.png"), [load_image(ASSETS / "style.png")],
                         ImageSettings(size=size, iterations=1, backbone=STATE.backbone), weights):
            pass
        log.info("warm-up done: compiled %d px on %s", size, jax.devices()[0])
    except StyleError as e:
        log.warning("warm-up skipped: %s", e)


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860, share: bool = False, **kwargs):
    user, password = os.environ.get("STYLE_STUDIO_USER", "studio"), os.environ.get("STYLE_STUDIO_PASSWORD")
    return demo.launch(server_name=host, server_port=port, share=share,
                       auth=(user, password) if password else None, max_file_size=MAX_UPLOAD,
                       allowed_paths=[str(ASSETS)], css=CSS, js=PAGE_JS, **kwargs)


def exit_on_sigterm(serving: list) -> None:
    """SIGTERM (a container's stop) closes the server (the Blocks in `serving`, once launched), removes
    our temporary folder and ends the process at once, status 0. A normal interpreter exit ran JAX's
    exit handlers while its threads still worked: C++'s "terminate called after throwing ..." and
    exceptions from atexit callbacks on stderr (issue 32, 10). A close that hangs (a stream still
    open) is cut short after SIGTERM_GRACE seconds."""
    def stop(signum, frame) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one while closing
        threading.Timer(SIGTERM_GRACE, os._exit, (0,)).start()
        for demo in serving:
            with contextlib.suppress(Exception):
                demo.close()
        if files.TEMP_IS_OURS:
            shutil.rmtree(files.TEMP, ignore_errors=True)
        logging.shutdown()
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)


def main() -> None:
    parser = argparse.ArgumentParser(description="Style transfer studio (Gradio).")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="create a public Gradio share link")
    parser.add_argument("--weights", default=None, help="local weights file, or 'random' (untrained)")
    parser.add_argument("--cluster", default="local",
                        help="where Large's tiles, Video's chunks and Explore's cells run: local (this machine), "
                             "ray (the Ray cluster RAY_ADDRESS names, or a local one), HOST:PORT or ray://HOST:PORT")
    parser.add_argument("--warmup", action="store_true", default=bool(os.environ.get("SPACE_ID")),
                        help="compile the default size at start-up (on by default on a Hugging Face Space)")
    args = parser.parse_args()
    serving: list = []
    exit_on_sigterm(serving)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    STATE.source = args.weights
    held = file_backbone(args.weights) if args.weights and args.weights != "random" else None
    if held:
        STATE.backbone = examples.EXAMPLE_SETTINGS["backbone"] = held
        log.info("every tab starts with %s, the network in %s", held, args.weights)
    try:
        STATE.cluster = backend(args.cluster)
        if STATE.cluster.name == "ray":
            nodes = [(n["NodeManagerAddress"], n["Resources"]) for n in STATE.cluster.nodes()]
            log.info("Large, Video and Explore run on the Ray cluster: %s", ", ".join(
                f"{host} ({r.get('GPU', 0):g} GPU, {r.get('CPU', 0):g} CPU)" for host, r in nodes))
    except StyleError as e:
        parser.exit(2, f"error: {e}\n")
    log.info("compiled code kept in %s", use_compile_cache())
    log.info("JAX backend %s, devices %s; temporary files in %s", jax.default_backend(), jax.devices(), files.TEMP)
    if str(args.weights or os.environ.get("STYLE_CORE_WEIGHTS")) == "random":
        STATE.weights["vgg19"] = load_weights("vgg19", "random")  # the banner shows from the first page load
        log.warning(UNTRAINED_TEXT.format(backbones="every backbone: --weights random or STYLE_CORE_WEIGHTS"))
    if args.warmup:
        threading.Thread(target=warm_up, args=(device_defaults()["image"]["size"],), daemon=True).start()
    serving.append(build())
    launch(serving[0], args.host, args.port, args.share)
