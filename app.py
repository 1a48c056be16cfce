"""Style transfer studio: the Gradio front end over `style_core`.

    python app.py [--host 127.0.0.1] [--port 7860] [--share] [--weights PATH|random]

UI only: each tab turns its controls into the library's settings, iterates one library generator and
shows what it yields: the picture in place, and the run's progress in a status line of its own (never
an overlay on the picture). Stop asks the running job to end after its current compiled chunk; the job
then says so and keeps its last picture. A password is set with STYLE_STUDIO_PASSWORD (user
STYLE_STUDIO_USER, default "studio"). All optimisations share one queue (`concurrency_id="optimise"`),
RUNS_AT_ONCE of them at a time (STYLE_STUDIO_RUNS), so that one user's long run does not hold every other user.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import dataclasses
import functools
import html
import inspect
import logging
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path


def _private_temp_dir() -> tuple[Path, bool]:
    """Gradio's uploads and served copies, and our runs: a folder of this process's own (0700, removed
    at exit) unless GRADIO_TEMP_DIR names one. Gradio's default, /tmp/gradio, is shared by every
    program on the machine, and Gradio serves what is in it. Set before gradio is imported: some of
    its modules read the variable on import."""
    if not os.environ.get("GRADIO_TEMP_DIR"):
        path = tempfile.mkdtemp(prefix="style_studio-")  # mode 0700
        os.environ["GRADIO_TEMP_DIR"] = path
        atexit.register(shutil.rmtree, path, ignore_errors=True)
        return Path(path), True
    return Path(os.environ["GRADIO_TEMP_DIR"]), False


TEMP, TEMP_IS_OURS = _private_temp_dir()

import gradio as gr  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from style_core import Event, ImageSettings, StyleError, load_image, load_weights, save_image, stylize  # noqa: E402
from style_core.errors import spelled  # noqa: E402
from style_core.backbones import BACKBONES  # noqa: E402
from style_core.cluster import Local, backend, said, summary  # noqa: E402
from style_core.explore import STUDIES, run_study, study_settings  # noqa: E402
from style_core.images import load_mask, resize, resize_longest, to_uint8  # noqa: E402
from style_core.jobs import fingerprint  # noqa: E402
from style_core.large import LARGE_MAX_SIZE, LargeSettings, stylize_large  # noqa: E402
from style_core.photo import DEFAULT_PHOTO_WEIGHT, PHOTO_DEFAULTS, PhotoSettings, photo_image_settings, \
    photo_metrics, stylize_photo  # noqa: E402
from style_core.regions import PALETTE, Region, area_resize, check_regions, label_regions, mask_regions  # noqa: E402
from style_core.regions import painted_regions as regions_painted  # noqa: E402
from style_core.runtime import use_compile_cache  # noqa: E402
from style_core.settings import described, from_values  # noqa: E402
from style_core.video import DEFAULT_TEMPORAL_WEIGHT, VIDEO_DEFAULTS, VideoSettings, stylize_video, \
    video_image_settings  # noqa: E402
from style_core.videoio import probe  # noqa: E402
from style_core.weights import FILENAME, WeightsUnavailable, file_backbone, hub_repo  # noqa: E402

HERE = Path(__file__).resolve().parent
ASSETS = HERE / "assets"
RUNS = TEMP / "runs"
MAX_UPLOAD = "2gb"   # weights files: a VGG16 is 59 MB, timm's VGG19 model.safetensors 548 MB
# Disk budget: a session's files go when its page closes; anything older than an hour (stopped jobs
# kept for resuming: a day) goes on the next run; and the runs folder never holds more than RUNS_BUDGET
# bytes (oldest first). Gradio's copies of uploads and results go after the same hour (delete_cache).
RUN_MAX_AGE = 3600
JOB_MAX_AGE = 86400
RUNS_BUDGET = 2 << 30
# Optimisations running at once (STYLE_STUDIO_RUNS, default 2): with one, a single user's long run, or
# one whose compilation Stop cannot interrupt, held every other user in the queue (issue 32, 2).
RUNS_AT_ONCE = max(1, int(os.environ["STYLE_STUDIO_RUNS"])) if os.environ.get("STYLE_STUDIO_RUNS", "").isdigit() else 2
SIGTERM_GRACE = 5.0   # seconds a SIGTERM waits for the server to close before the process ends anyway
log = logging.getLogger("style_studio")

# --- defaults: from the device the page runs on -----------------------------------------------------


def device_defaults(backend: str | None = None) -> dict:
    """Sizes and iteration counts that finish in about a minute (Image) and a few minutes (the other
    tabs) on the device: a 2-core CPU gets small ones, a GPU the classic 512 px ones."""
    if (backend or jax.default_backend()) == "cpu":
        return dict(size=192, iterations=100, large_size=1024, tile=256, overlap=32, large_iterations=60,
                    tile_iterations=40, base_size=256, photo_size=192, photo_iterations=150, video_size=128,
                    video_frames=12, video_iterations=100, explore_size=96, explore_iterations=40,
                    until_done=True)
    return dict(size=512, iterations=200, large_size=2048, tile=512, overlap=64, large_iterations=200,
                tile_iterations=100, base_size=512, photo_size=512, photo_iterations=PHOTO_DEFAULTS["iterations"],
                video_size=VIDEO_DEFAULTS["size"], video_frames=48, video_iterations=VIDEO_DEFAULTS["iterations"],
                explore_size=128, explore_iterations=60, until_done=True)


# --- weights: loaded on first use, once per backbone -------------------------------------------------

WEIGHTS_SOURCE: str | None = None  # --weights; None: $STYLE_CORE_WEIGHTS, the cache, then the hub
# The backbone every tab starts from: the library's, or the VGG that the server's --weights file holds
# (a Keras VGG16 file serves every tab with VGG16).
DEFAULT_BACKBONE: str = ImageSettings().backbone
CLUSTER = Local()  # --cluster: where Large's tiles, Video's chunks and Explore's cells run
_weights: dict = {}
_weights_lock = threading.Lock()


def get_weights(backbone: str, report=None):
    with _weights_lock:
        if backbone not in _weights:
            _weights[backbone] = load_weights(backbone, WEIGHTS_SOURCE, report)
            if not _weights[backbone].trained:
                log.warning(UNTRAINED_TEXT.format(backbones=backbone))
        return _weights[backbone]


def _megabytes(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def weights_loading(backbone: str, outputs: int):
    """Loads the weights in a thread and yields the tab's `outputs` every half second: the others
    unchanged, and last its status line (bytes and speed while downloading); returns the weights. The
    first run's download is visible, not a frozen bar."""
    if backbone in _weights:
        return _weights[backbone]
    seen = {"what": "", "done": 0, "total": 0}
    outcome: dict = {}

    def report(what: str, done: int, total: int) -> None:
        seen.update(what=what, done=done, total=total)

    def work() -> None:
        try:
            outcome["weights"] = get_weights(backbone, report)
        except BaseException as e:  # handed to the run's thread
            outcome["error"] = e

    started, skip = time.perf_counter(), (gr.skip(),) * (outputs - 1)
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(0.5)
    while thread.is_alive():
        elapsed = time.perf_counter() - started
        if seen["total"]:
            speed = seen["done"] / max(elapsed, 1e-6)
            left = (seen["total"] - seen["done"]) / speed if speed else None
            yield *skip, status(progress_line(f"{seen['what'].replace('downloading', 'Downloading')} (first run "
                                              f"only): {_megabytes(seen['done'])} of {_megabytes(seen['total'])} · "
                                              f"{_megabytes(speed)}/s", left=left), seen["done"] / seen["total"])
        else:
            yield *skip, status(f"Looking for the {backbone} network's ImageNet weights (first run only) · "
                                f"{clock(elapsed)}")
        thread.join(0.5)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["weights"]


UNTRAINED_TEXT = ("⚠ Untrained weights in use ({backbones}): the network has random values, not ImageNet "
                  "training. Results carry the style images' colour and texture statistics, not a trained "
                  "network's style.")


def banner():
    backbones = sorted(b for b, w in _weights.items() if not w.trained)
    text = UNTRAINED_TEXT.format(backbones=", ".join(backbones)) if backbones else ""
    return gr.update(value=f'<div class="untrained">{html.escape(text)}</div>' if text else "",
                     visible=bool(text))


def no_weights_message(e: WeightsUnavailable) -> str:
    """What a browser user can do when there are no weights: no command-line flags in it."""
    return (f"The {e.backbone} network's ImageNet weights are not on this server and could not be "
            f"downloaded: {e.reason}. Open “Weights” at the top of the page to upload a {FILENAME} "
            f"({hub_repo(e.backbone)}) or to try untrained weights.")


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
    with _weights_lock:
        _weights[backbone] = weights
    return banner(), (f"Using the uploaded weights for {backbone}"
                      + (f" (the file holds a {backbone.upper()}): choose backbone {backbone} under "
                         f"Advanced in each tab." if held and held != "vgg19" else "."))


def use_untrained_weights():
    """The Weights panel: untrained (random) weights for every backbone, with the banner on."""
    global WEIGHTS_SOURCE
    with _weights_lock:
        WEIGHTS_SOURCE = "random"
        _weights.clear()
    _weights["vgg19"] = load_weights("vgg19", "random")
    log.warning(UNTRAINED_TEXT.format(backbones="chosen in the page, every backbone"))
    return banner(), "Untrained weights chosen for every backbone: see the banner."


# --- errors and values from the page or the API -------------------------------------------------------


def user_errors(outputs: int):
    """A StyleError (bad input, nonsense setting, no weights) of a run with `outputs` outputs (the last
    its status line) reaches the user as a one-line gr.Error, and the status line says it too, for
    good (the toast goes after a few seconds)."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except StyleError as e:  # a setting the message names in backquotes, in the page's words
                message = no_weights_message(e) if isinstance(e, WeightsUnavailable) else \
                    spelled(str(e), lambda name: name.replace("_", " "))
                yield *(gr.skip(),) * (outputs - 1), status(message, state="error")
                raise gr.Error(message, print_exception=False) from None
        return wrapper
    return decorate


def checked(component):
    """A number control whose API value is not a number ("abc", a list) gets a one-line gr.Error
    naming the control, instead of a traceback from Gradio's bounds check."""
    original = component.preprocess

    def preprocess(payload):
        if payload is not None and (isinstance(payload, bool) or not isinstance(payload, (int, float))):
            raise gr.Error(f"{component.label}: {str(payload)[:40]!r} is not a number", print_exception=False)
        try:
            return original(payload)
        except gr.Error as e:  # Gradio's own bounds check: the message without a logged traceback
            raise gr.Error(f"{component.label}: {e.message}", print_exception=False) from None
    component.preprocess = preprocess
    return component


def number(value, name: str, integer: bool = False, low: float | None = None, high: float | None = None):
    """A finite number (an int where `integer`) within [low, high], or a StyleError naming it."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise StyleError(f"{name} must be a number, not {str(value)[:40]!r}") from None
    if not math.isfinite(x):
        raise StyleError(f"{name} must be a finite number")
    if (low is not None and x < low) or (high is not None and x > high):
        raise StyleError(f"{name} must be between {low:g} and {high:g}, not {x:g}")
    if integer and x != int(x):
        raise StyleError(f"{name} must be a whole number, not {x:g}")
    return int(x) if integer else x


def guard_inputs(demo: gr.Blocks) -> None:
    """An API value of the wrong shape (a string where a list of files goes), or a path on the server
    where an uploaded file goes, fails Gradio's own checks before any of our code runs, as a traceback
    and an empty error (`{"error": null}`): make it one line."""
    from gradio.exceptions import InvalidPathError
    from pydantic import ValidationError
    original = demo.preprocess_data

    async def preprocess_data(block_fn, inputs, state, explicit_call=False):
        try:
            return await original(block_fn, inputs, state, explicit_call)
        except InvalidPathError:  # a path on the server in a file field: Gradio's refusal said nothing
            raise gr.Error("a file field takes an uploaded file (handle_file in gradio_client), not a path "
                           "on the server", print_exception=False) from None
        except ValidationError as e:
            first = e.errors()[0] if e.errors() else {}
            what = {"ListFiles": "a list of uploaded files", "FileData": "an uploaded file"}.get(e.title, e.title)
            raise gr.Error(f"expected {what}: {first.get('msg', 'invalid value')} "
                           f"(got {str(first.get('input'))[:40]!r})", print_exception=False) from None
    demo.preprocess_data = preprocess_data


def ImageUpload(**kwargs) -> gr.Image:  # noqa: N802 (reads like the component it makes)
    """An image drop zone that hands the uploaded file itself to style_core's loader, which honours
    EXIF, 16-bit, CMYK and transparency and refuses damaged files with a clear message; Gradio's own
    decode would re-encode the image first, or fail with a generic error. Overridden on the instance,
    not in a subclass: Gradio looks a subclass up as a custom component with its own frontend."""
    component = gr.Image(**kwargs)
    component.preprocess = lambda payload: None if payload is None else str(payload.path)
    return component


def _paths(files, what: str = "style images") -> list[str]:
    """Paths of uploaded files (the style images: `what`), whatever shape the API sent them in (a bad
    one is a StyleError)."""
    if not files:
        return []
    files = files if isinstance(files, (list, tuple)) else [files]
    paths = []
    for f in files:
        path = f if isinstance(f, str) else getattr(f, "path", None) or getattr(f, "name", None) or (
            f.get("path") if isinstance(f, dict) else None)
        if not isinstance(path, str) or not Path(path).is_file():
            raise StyleError(f"{what} must be uploaded image files, not {str(f)[:40]!r}")
        paths.append(path)
    return paths


def load_inputs(content, styles, what: str = "content image", load=load_image):
    """The content (an image, or what `load` makes of the file: a video's probe) and the style
    images, through style_core's loaders (clear errors)."""
    if not content:
        raise StyleError(f"drop a {what} first")
    style_paths = _paths(styles)
    if not style_paths:
        raise StyleError("add at least one style image")
    return load(content), [load_image(p) for p in style_paths]


# --- runs: their folders, Stop, and the status line -------------------------------------------------


def session_of(request: gr.Request | None) -> str:
    key = getattr(request, "session_hash", None) or "local"
    return re.sub(r"[^A-Za-z0-9_-]", "_", key)[:64]


def new_run_dir(request: gr.Request | None = None) -> Path:
    prune_runs()
    folder = RUNS / "sessions" / session_of(request)
    folder.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="run-", dir=folder))


def _size_and_age(path: Path, now: float) -> tuple[int, float]:
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    newest = max((p.stat().st_mtime for p in files), default=path.stat().st_mtime)
    return sum(p.stat().st_size for p in files), now - newest


KEEP: set[str] = set()  # files the page itself shows (the examples' thumbnails): never pruned


def gradio_copies() -> list[Path]:
    """Gradio's uploads and served copies (one hashed folder each) in our own temp folder. Gradio's
    delete_cache misses the copies of streamed outputs, so we prune them with our runs; in a folder
    named by GRADIO_TEMP_DIR, which other programs may share, they are left to Gradio."""
    if not TEMP_IS_OURS or not TEMP.is_dir():
        return []
    return [entry for entry in TEMP.iterdir() if entry != RUNS and str(entry) not in KEEP
            and not (entry.is_dir() and any(str(f) in KEEP for f in entry.iterdir()))]


def prune_runs(now: float | None = None) -> None:
    """Keeps the app's files within their bounds: run folders and Gradio's copies older than
    RUN_MAX_AGE, stopped jobs older than JOB_MAX_AGE, then the oldest until RUNS_BUDGET bytes are left."""
    now = time.time() if now is None else now
    candidates = [(entry, RUN_MAX_AGE) for entry in [*gradio_copies(), *RUNS.glob("sessions/*/run-*")]]
    candidates += [(entry, JOB_MAX_AGE) for entry in RUNS.glob("*-jobs/*")]  # stopped large and video jobs
    entries = []
    for entry, max_age in candidates:
        try:
            size, age = _size_and_age(entry, now)
        except OSError:
            continue
        if age > max_age:
            remove(entry)
        else:
            entries.append((age, size, entry))
    for empty in RUNS.glob("sessions/*"):
        with contextlib.suppress(OSError):
            empty.rmdir()  # only an empty session folder
    total = sum(size for _, size, _ in entries)
    for age, size, entry in sorted(entries, reverse=True):
        if total <= RUNS_BUDGET:
            break
        remove(entry)
        total -= size


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def end_session(request: gr.Request) -> None:
    """A closed page: its runs' files go with it (stopped jobs stay for another session to resume)."""
    shutil.rmtree(RUNS / "sessions" / session_of(request), ignore_errors=True)


_running: dict[tuple[str, str], threading.Event] = {}
_running_lock = threading.Lock()


@contextlib.contextmanager
def stop_flag(request: gr.Request | None, tab: str):
    """The flag that this session's Stop button of `tab` sets while the run lasts."""
    key, flag = (session_of(request), tab), threading.Event()
    with _running_lock:
        _running[key] = flag
    try:
        yield flag
    finally:
        with _running_lock:
            if _running.get(key) is flag:
                del _running[key]


def request_stop(tab: str, request: gr.Request) -> None:
    """Stop: the running job ends after its current compiled chunk and says so (not a cancel: a
    cancelled event shows error badges over every output and drops the last picture's download)."""
    with _running_lock:
        flag = _running.get((session_of(request), tab))
    if flag is not None:
        flag.set()


def clock(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(seconds))
    return f"{seconds} s" if seconds < 90 else f"{seconds // 60} min {seconds % 60:02d} s"


ESTIMATING = "estimating…"


def progress_line(head: str, loss: float | None = None, rate: float | None = None, unit: str = "",
                  left: float | str | None = None) -> str:
    """'head · loss L · R unit · T left', each part where it is known; `left` ESTIMATING until a rate is
    measured (compiling excluded: the library's events carry their own estimate, `Event.eta`)."""
    return (head + (f" · loss {loss:.4g}" if loss is not None else "") + (f" · {rate:.1f} {unit}" if rate else "")
            + (f" · {left}" if isinstance(left, str) else f" · {clock(left)} left" if left is not None else ""))


def eta_of(event) -> float | str:
    return ESTIMATING if event.eta is None else event.eta


def status(text: str, fraction: float | None = None, state: str = "running") -> str:
    """The tab's one progress display: a bar (while running) and a line of text. `**bold**` is kept."""
    body = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text)).replace("\n", "<br>")
    bar = ""
    if state == "running":
        width = "100%" if fraction is None else f"{100 * min(max(fraction, 0.0), 1.0):.1f}%"
        bar = (f'<div class="bar{" busy" if fraction is None else ""}"><div style="width:{width}"></div></div>')
    return f'<div class="run-status {state}" data-state="{state}">{bar}<div class="line">{body}</div></div>'


class Pace:
    """Rate and time left from the app's own clock, over everything this run did (every pass). The
    rate is measured from the first report on, so that compiling does not count as slow steps."""

    def __init__(self):
        self.started = time.perf_counter()
        self.base: tuple[float, float] | None = None

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def rate(self, done: float, per: float = 1.0) -> float | None:
        """`done` per `per` seconds (60: per minute)."""
        now = time.perf_counter()
        if self.base is None:
            self.base = (now, done)
            return None
        t0, d0 = self.base
        return (done - d0) / (now - t0) * per if done > d0 and now > t0 else None

    def left(self, done: float, total: float) -> float | None:
        rate = self.rate(done)
        return (total - done) / rate if rate else None


def source_of(weights) -> str:
    """The weights' source as a status line names it: a file by its name (its folder is the server's)."""
    return f"file {Path(weights.source[5:]).name}" if weights.source.startswith("file:") else weights.source


def untrained_note(weights) -> str:
    return "" if weights.trained else f"\n⚠ {weights.source}."


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
    axes.set(yscale="log", xlabel="step", ylabel="total loss")
    axes.grid(True, which="both", alpha=0.3)
    if len(curves) > 1:
        axes.legend(fontsize=7, ncols=2 if len(curves) > 5 else 1)
    return figure


def drop_zones(prefix: str, what: str = "image") -> tuple[gr.Image, gr.File]:
    """A tab's content drop zone and its style files."""
    return (ImageUpload(label=f"Content {what}", type="filepath", sources=["upload", "clipboard"],
                        elem_id=f"{prefix}content", height=220), style_files(prefix, what))


def downloads(elem_id: str, label: str) -> gr.File:
    """The result's file, under its picture: one line high until there is one."""
    return gr.File(label=label, elem_id=elem_id, height=60, elem_classes=["download"])


def style_files(prefix: str, what: str = "image") -> gr.File:
    return gr.File(label=f"Style {what}s (one or more)", file_count="multiple", file_types=["image"],
                   type="filepath", elem_id=f"{prefix}styles", height=120)


# The result pane's picture: what is left of a laptop's screen (1366x768) under Run, the status line
# and the download (the pane is pinned beside the controls, so they scroll and it stays).
RESULT_HEIGHT = "calc(100vh - 240px)"


def result_image(elem_id: str, label: str, height: int | str = RESULT_HEIGHT) -> gr.Image:
    """The streamed picture: scaled to its pane (the PNG keeps its real size), updated in place."""
    return gr.Image(label=label, format="png", interactive=False, elem_id=elem_id, height=height,
                    elem_classes=["fit"], buttons=["download", "fullscreen"])


@contextlib.contextmanager
def tab_columns(prefix: str, label: str = "Run"):
    """A tab's two columns: the controls (yielded first, as `controls`), then the result pane, pinned
    beside them while they scroll, whose top is Run and Stop and the status line: on a laptop's
    screen the live result and Run are always in view together. Yields a `Columns` to fill."""
    columns = Columns()
    with gr.Row(equal_height=False):
        columns.controls = gr.Column(scale=5, min_width=360)
        columns.pane = gr.Column(scale=6, min_width=360, elem_classes=["pinned"])
        with columns.pane:
            columns.run, columns.stop = run_and_stop(prefix, label)
            columns.progress = status_box(prefix)
        yield columns


@dataclasses.dataclass
class Columns:
    controls: gr.Column | None = None
    pane: gr.Column | None = None
    run: gr.Button | None = None
    stop: gr.Button | None = None
    progress: gr.HTML | None = None


def status_box(prefix: str) -> gr.HTML:
    return gr.HTML(status("Ready.", state="idle"), elem_id=f"{prefix}status")


def run_and_stop(prefix: str = "", label: str = "Run") -> tuple[gr.Button, gr.Button]:
    with gr.Row():
        return (gr.Button(label, variant="primary", elem_id=f"{prefix}run"),
                gr.Button("Stop", variant="stop", elem_id=f"{prefix}stop"))


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


def wire(run, stop, fn, inputs, outputs, api_name: str, tab: str, page_banner, controls: dict | None = None) -> None:
    """Run streams into `outputs` with no progress overlay (the status line is the progress); Stop
    sets the run's flag without queueing behind it. `controls` reach `fn` by name (and name the API's
    parameters), after the `inputs`."""
    event = run.click(fn, inputs, outputs, api_name=api_name, concurrency_id="optimise",
                      concurrency_limit=RUNS_AT_ONCE, show_progress="hidden", inputs_kwargs=controls)
    event.then(banner, None, page_banner, show_progress="hidden", queue=False)
    def stop_this(request: gr.Request) -> None:
        request_stop(tab, request)
    stop.click(stop_this, None, None, api_name=f"stop_{api_name}", queue=False, show_progress="hidden")


def strength(value: float, label: str, what: str) -> gr.Slider:
    return checked(gr.Slider(0, 10, value=value, step=0.1, label=label, info=what))


def style_strength(settings: ImageSettings, elem_id: str | None = None) -> gr.Slider:
    """The style weight as its power of ten, starting at the mode's default (`settings`'), in the range
    the trained network needs (relative normalisation: 0.001 barely touches the photo, 1000 repaints
    the painting; bench/LOG.md 22)."""
    value = round(math.log10(settings.style_weight), 2)
    return checked(gr.Slider(-3, 8, value=value, step=0.1, label="Style strength",
                             info=f"style weight = 10^strength ({value:g} = {settings.style_weight:g}, the "
                                  f"default; higher paints more of the painting)", elem_id=elem_id))


# --- settings: controls made from the settings' fields, values by name --------------------------------

def control(classes: tuple, name: str, make=None, **look):
    """The page's control for the field `name` of the first settings class in `classes` that has it: its
    default, choices, range and help (as the info line) are the field's; `make` (a Gradio component) and
    `look` (label, slider bounds, a device default) are the page's."""
    f = next(f for cls in classes for f in described(cls) if f.name == name)
    numeric = str(f.type).startswith(("int", "float"))
    make = make or (gr.Dropdown if "choices" in f.metadata else gr.Checkbox if f.type == "bool"
                    else gr.Number if numeric else gr.Textbox)
    field_says = dict(value=f.default, info=f.metadata["help"], choices=f.metadata.get("choices"),
                      minimum=f.metadata.get("minimum"), maximum=f.metadata.get("maximum"),
                      precision=0 if str(f.type).startswith("int") else None)
    accepted = inspect.signature(make.__init__).parameters
    component = make(**{**{k: v for k, v in field_says.items() if k in accepted and v is not None}, **look})
    return checked(component) if numeric else component


def controls(*classes, **looks) -> dict:
    """The controls of some fields of the settings `classes`, by name and in the page's order (see
    `control`): each look a label, or the page's look as a dict (`slider`, `radio`)."""
    return {name: control(classes, name, **({"label": look} if isinstance(look, str) else look))
            for name, look in looks.items()}


def slider(low: float, high: float, value: float, step: float, label: str, **look) -> dict:
    return dict(make=gr.Slider, minimum=low, maximum=high, value=value, step=step, label=label, **look)


def radio(label: str) -> dict:
    return dict(make=gr.Radio, label=label)


def blend_weights(text) -> tuple[float, ...] | None:
    try:
        return tuple(float(b) for b in str(text or "").replace(",", " ").split()) or None
    except ValueError:
        raise StyleError(f"style blend weights must be numbers separated by commas, not {text!r}") from None


def from_strength(value, name: str) -> float:
    """A strength slider's weight: 10^value, and 0 for 0 (off)."""
    value = number(value, name, low=0, high=20)
    return 0.0 if value == 0 else 10.0 ** value


SMOOTHNESS_OFF = -3.0   # the Smoothness slider's floor: TV off (its default, TV weight 1, is 10^0)


def from_smoothness(value) -> float:
    """The Smoothness slider's TV weight: 10^value, and 0 at the slider's floor (off)."""
    value = number(value, "smoothness", low=SMOOTHNESS_OFF, high=20)
    return 0.0 if value <= SMOOTHNESS_OFF else 10.0 ** value


def stop_rule(until_done) -> float | None:
    """The tolerance of "Stop when done": the optimizer's default (L-BFGS ends once the loss no longer
    falls), or 0, every iteration."""
    return None if until_done in (True, None) else 0.0


# Controls that show a setting in another form: the control's name -> the setting and its value. A
# strength is the power of ten of a weight (0: off, where 10^0 = 1 would not be); "Stop when done" is
# the optimizer's tolerance or none; an empty learning rate or layer list is the default one.
SHOWN_AS = {
    "style_strength": ("style_weight", lambda v: 10.0 ** number(v, "style strength", low=-10, high=20)),
    "smoothness": ("tv_weight", from_smoothness),
    "photorealism": ("photo_weight", lambda v: from_strength(v, "photorealism")),
    "temporal_strength": ("temporal_weight", lambda v: from_strength(v, "temporal consistency")),
    "until_done": ("tol", stop_rule),
    "style_blend": ("style_blend", blend_weights),
    "lr": ("lr", lambda v: (number(v, "learning rate") or None) if v not in (None, "") else None),
    "style_layers": ("style_layers", lambda v: v or "paper"),
    # 0: by size (the library's automatic passes); the slider was fixed to the page's first size, so
    # a larger size typed in the page still ran one pass
    "scales": ("scales", lambda v: int(number(v, "scales", integer=True, low=0, high=8)) or None),
}
# The image settings no tab has a control for, and why (tests/test_app.py checks that every other
# field has one, with the library's default).
PAGE_PREVIEW_EVERY = 5
NOT_IN_PAGE = {
    "steps_per_call": "Stop ends a run after its current call: the default keeps that short",
    "preview_every": f"a page previews every {PAGE_PREVIEW_EVERY} steps (a live picture), a terminal every 50",
    "weights": "the Weights panel above the tabs chooses them for every tab",
}


def tab_settings(tab: str, values: dict):
    """A tab's settings from its controls' values by name: the library's defaults for every control
    left alone, but for the device's sizes and iterations (tests/test_app.py checks every tab)."""
    values = setting_values(values)
    if tab == "image":   # its own Backbone control
        return from_values(ImageSettings, values, preview_every=PAGE_PREVIEW_EVERY)
    make, mode, given = {"large": (None, LargeSettings, dict(skip=("size",), preview_every=10)),
                         "photo": (photo_image_settings, PhotoSettings, dict(preview_every=PAGE_PREVIEW_EVERY)),
                         "video": (video_image_settings, VideoSettings, dict(preview_every=10))}[tab]
    image = from_values(ImageSettings, values, make=make, backbone=DEFAULT_BACKBONE, **given)
    return from_values(mode, values, image=image)


def setting_values(values: dict) -> dict:
    """The page's values by setting name (a control in SHOWN_AS turned back into its setting)."""
    named = {}
    for name, value in values.items():
        setting, turn = SHOWN_AS.get(name, (name, None))
        named[setting] = turn(value) if turn else value
    return named


# --- regions: where each style goes (the Image and Photorealistic tabs) -------------------------------

# The brush's colours (regions.PALETTE): the k-th paints where style image k goes (the style files'
# order). The editor offers only these; more style images than colours take mask files.
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


def painted_regions(painting, styles: int) -> tuple[Region, ...]:
    """The editor's value as regions (`regions.painted_regions` of its layers, a stroke as opaque as
    the brush paints being all of its region)."""
    return regions_painted((painting or {}).get("layers") or [], styles, FULL)


def page_regions(styles: int, painting=None, masks=None, content_labels=None, style_labels=None,
                 shape: tuple[int, int] | None = None) -> tuple[tuple[Region, ...], list[str], list[tuple]]:
    """The regions the page's inputs describe (none without any), with the name and RGB colour each is
    shown in: a painting over the content (its aspect that of the content's `shape`, where given), one
    mask file per style image, or a pair of label images (content labels, one per style image);
    one of these at a time."""
    painted = painted_regions(painting, styles)
    given = [what for what, value in (("a painting", painted), ("mask files", masks),
                                      ("label images", content_labels or style_labels)) if value]
    if len(given) > 1:
        raise StyleError(f"regions come from one source at a time, not from {' and '.join(given)}: clear "
                         f"all but one")
    if content_labels or style_labels:
        if not (content_labels and style_labels):
            raise StyleError("the content labels and the style labels go together: give both")
        labels = to_uint8(load_image(content_labels))
        regions = label_regions(labels, [load_image(p) for p in _paths(style_labels, "style label images")], styles)
        colours = [tuple(int(v) for v in np.median(labels[r.mask > 0.5], axis=0)) for r in regions]
        names = ["#{:02x}{:02x}{:02x}".format(*c) for c in colours]
    else:
        regions = mask_regions([load_mask(p) for p in _paths(masks, "masks")], None, styles) if masks else painted
        palette = list(PALETTE.items())
        names, colours = zip(*(palette[r.style % len(palette)] for r in regions)) if regions else ((), ())
    if painted and shape:
        h, w = painted[0].mask.shape
        if abs(h * shape[1] - w * shape[0]) > 0.02 * h * shape[1]:  # another picture's shape
            raise StyleError(f"the painting is {w}x{h} px but the content image is {shape[1]}x{shape[0]}: "
                             f"paint over the content (the editor shows it once it is dropped)")
    return check_regions(regions, styles), list(names), list(colours)


def regions_line(regions, names: list[str], styles: list[str] | None = None) -> str:
    """'2 regions: red → style 1 (a.png) on 31% of the picture, blue → style 2 on 24%; the other 45%
    stays the photo'."""
    shape = regions[0].mask.shape
    cover = [area_resize(r.mask, *shape) for r in regions]
    parts = [f"{name} → style {r.style + 1}" + (f" ({styles[r.style]})" if styles and r.style < len(styles) else
                                               " (not added yet)" if styles is not None else "")
             + f" on {float(np.mean(m)):.0%}" for name, r, m in zip(names, regions, cover)]
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
        files = [Path(p).name for p in _paths(styles)]
        count = len(files) or len(_paths(masks, "masks")) or len(_paths(style_labels, "style label images")) \
            or len(PALETTE)
        regions, names, colours = page_regions(count, painting, masks, content_labels, style_labels)
    except StyleError as e:
        return None, f"⚠ {e}"
    if not regions:
        return None, "Nothing painted: every style goes everywhere, as without regions."
    for region, colour in zip(regions, colours):
        m = 0.55 * area_resize(region.mask, *picture.shape[:2])[..., None]
        picture = picture * (1 - m) + np.array(colour, np.float32) * m
    return picture.astype(np.uint8), regions_line(regions, names, files)


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
                                "both sides (sky, building)." if labels else "")
    with gr.Accordion("Regions (optional)", open=False, elem_id=f"{prefix}regions"):
        gr.Markdown(help_text)
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
    return inputs


# --- Image tab -----------------------------------------------------------------------------------------

def until_done_box(value: bool) -> gr.Checkbox:
    return gr.Checkbox(value=value, label="Stop when done",
                       info="L-BFGS ends once the loss falls by less than 0.01% per step; off: every iteration")


def steps_summary(result, shape: tuple[int, int]) -> str:
    """'375 steps: 75 at 128x96 px + 300 at 256x192 px' (every pass counted, the coarser ones named)."""
    from style_core.transfer import scale_shapes
    shapes = scale_shapes(shape, result.settings)
    last, per_scale = 0, []
    for k, (h, w) in enumerate(shapes, 1):
        end = max((e["step"] for e in result.history if e["scale"] == k), default=last)
        per_scale.append(f"{end - last} at {w}x{h} px")
        last = end
    split = f" ({' + '.join(per_scale)}; a coarser scale takes a quarter of the iterations)" \
        if len(shapes) > 1 else ""
    return f"**{result.iterations} steps in {result.seconds:.1f} s**{split}"


def step_line(event: Event, pace: Pace, label: str = "Step") -> str:
    done, total = event.completed, event.total
    h, w = event.shape
    index, scales = event.scale
    scale = f" (scale {index} of {scales}, {w}x{h} px)" if scales > 1 else f" ({w}x{h} px)"
    if event.stage == "compiling":
        return (f"{label} {done} of {total}{scale}: preparing: the style's statistics, and XLA compiles "
                f"each new size once…")
    return progress_line(f"{label} {done} of {total}{scale}", event.losses.get("total"), pace.rate(done), "steps/s",
                         eta_of(event))


@user_errors(5)
def run_image(content, styles, painting=None, masks=None, request: gr.Request = None, **values):
    """Stylises the content image; streams the picture in place, then the PNG, comparison and loss
    curve. `painting` (the regions editor's value) or `masks` (one file per style image): where each
    style goes (page_regions). `values`: the tab's controls by name. Outputs: picture, PNG,
    before/after, loss curve, status."""
    settings = tab_settings("image", values)
    content_image, style_images = load_inputs(content, styles)
    regions, names, _ = page_regions(len(style_images), painting, masks, shape=content_image.shape[:2])
    with stop_flag(request, "image") as stop:
        yield None, None, None, None, status("Starting…")  # no stale download, comparison or curve
        weights = yield from weights_loading(settings.backbone, 5)
        pace, shown = Pace(), None
        run_dir = new_run_dir(request)
        events = stylize(content_image, style_images, settings, weights, regions=regions)
        for event in events:
            if event.done:
                break
            if event.preview is not None:
                shown = (event.preview, event.completed)
            yield (gr.skip() if event.preview is None else to_uint8(event.preview), gr.skip(), gr.skip(), gr.skip(),
                   status(step_line(event, pace), event.completed / max(event.total, 1)))
            if stop.is_set():
                events.close()
                text = {"style_core": {"settings": settings.to_dict(), "stopped_at_step": event.completed},
                        **({} if weights.trained else {"Warning": weights.source})}
                png = str(save_image(run_dir / "stopped.png", shown[0], text)) if shown else None
                kept = f" The picture and its PNG are from step {shown[1]}." if shown else ""
                yield (to_uint8(shown[0]) if shown else None), png, None, None, status(
                    f"**Stopped after {event.completed} of {event.total} steps** ({clock(pace.seconds)}).{kept}"
                    + untrained_note(weights), state="stopped")
                return
        result = event.result
        text = {"style_core": result.report(), **({} if weights.trained else {"Warning": weights.source})}
        png = save_image(run_dir / "result.png", result.image, text)
        final = ", ".join(f"{k} {v:.4g}" for k, v in result.final_losses.items())
        where = f" · {regions_line(regions, names)}" if regions else ""
        info = (f"{steps_summary(result, content_image.shape[:2])} · {result.stop_reason} · {final}{where} · "
                f"weights: {source_of(weights)} · device: {jax.default_backend()}")
        picture = to_uint8(result.image)
        yield (picture, str(png), (to_uint8(np.asarray(content_image)), picture),
               loss_figure({"total": result.loss_curve()}), status(info, state="done"))


# Every control of the Image tab, by name: what an example runs is what the page then shows.
EXAMPLE_SETTINGS = dict(size=256, iterations=100, style_strength=round(math.log10(ImageSettings().style_weight), 2),
                        preserve_color="none", style_blend="",
                        backbone=DEFAULT_BACKBONE, style_layers="paper", content_layers="", optimizer="lbfgs", lr=None,
                        loss="mse", normalization=ImageSettings().normalization, init="content", content_weight=1.0,
                        tv_weight=ImageSettings().tv_weight,
                        scales=1, seed=0, bounds="box", until_done=True, pooling="max", huber_delta=1.0,
                        style_scale=1.0, coarse_iterations=None)
# public-domain and CC0 photos under public-domain paintings (assets/*/README.md)
EXAMPLES = [("photos/chelsea.png", "paintings/starry_night_google.jpg"),
            ("photos/astronaut.png", "paintings/woman-with-hat-matisse.jpg"),
            ("photos/coffee.png", "paintings/shipwreck.jpg"),
            ("photos/rocket.jpg", "paintings/starry_night_google.jpg"),
            ("photos/chelsea.png", "paintings/shipwreck.jpg")]
PAINTERS = {"starry_night_google": "Van Gogh", "woman-with-hat-matisse": "Matisse", "shipwreck": "Turner"}
_example_results: dict = {}


def example_thumbnails(height: int = 72) -> list[np.ndarray]:
    """Content and style side by side, one picture per example, named in a band under them (a
    gallery's caption would cover the style). Arrays: Gradio stores and serves them."""
    from PIL import Image, ImageDraw
    thumbs = []
    for content, style in EXAMPLES:
        pictures = [Image.open(ASSETS / name).convert("RGB") for name in (content, style)]
        pictures = [p.resize((round(p.width * height / p.height), height), Image.LANCZOS) for p in pictures]
        sheet = Image.new("RGB", (sum(p.width for p in pictures) + 4, height + 16), "white")
        sheet.paste(pictures[0], (0, 0))
        sheet.paste(pictures[1], (pictures[0].width + 4, 0))
        name = f"{Path(content).stem} + {PAINTERS.get(Path(style).stem, Path(style).stem)}"
        ImageDraw.Draw(sheet).text((2, height + 2), name, fill=(40, 40, 40))
        thumbs.append(np.asarray(sheet))
    return thumbs


def run_example(evt: gr.SelectData, request: gr.Request = None):
    """A click on an example: its inputs and settings go into the controls (what runs is what the page
    shows), then it runs like Run, or comes from the result kept from an earlier click."""
    content, style = (str(ASSETS / name) for name in EXAMPLES[evt.index])
    controls = (content, [style], *EXAMPLE_SETTINGS.values())  # the outputs' order: image_tab's
    weights = _weights.get(EXAMPLE_SETTINGS["backbone"])
    key = (evt.index, WEIGHTS_SOURCE, weights.source if weights else None, tuple(EXAMPLE_SETTINGS.values()))
    if key in _example_results:
        yield *controls, *_example_results[key]
        return
    yield *controls, gr.skip(), gr.skip(), gr.skip(), gr.skip(), status("Starting the example…")
    outputs = None
    for outputs in run_image(content, [style], request=request, **EXAMPLE_SETTINGS):
        yield (*(gr.skip(),) * len(controls), *outputs)
    if outputs is not None and 'data-state="done"' in str(outputs[-1]):
        # kept outside the session's folder, which goes when its page closes
        kept = RUNS / "examples" / f"example-{evt.index}-{len(_example_results)}.png"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(outputs[1], kept)
        _example_results[key] = (outputs[0], str(kept), *outputs[2:])


def image_tab(d: dict, page_banner) -> None:
    examples = gr.Gallery(example_thumbnails(), label=f"Examples: click one to run it ({EXAMPLE_SETTINGS['size']} px, "
                          f"{EXAMPLE_SETTINGS['iterations']} iterations; a second click shows the kept result)",
                          columns=len(EXAMPLES), height=118, allow_preview=False, elem_id="examples",
                          object_fit="contain")
    fields, c = functools.partial(controls, ImageSettings), {}
    with tab_columns("") as cols:
        with cols.controls:
            content, styles = drop_zones("")
            regions = regions_panel("", content, styles)
            with gr.Row():
                c |= fields(size=slider(32, 2048, d["size"], 16, "Size (px)", elem_id="size"),
                            iterations=slider(0, 1000, d["iterations"], 10, "Iterations", elem_id="iterations"))
            with gr.Row():
                c["style_strength"] = style_strength(ImageSettings(), elem_id="style_strength")
                c |= fields(preserve_color=radio("Preserve colour"))
            with gr.Accordion("Advanced", open=False):
                c |= fields(style_blend=dict(value="", label="Style blend weights"))
                with gr.Row():
                    c |= fields(backbone=dict(value=DEFAULT_BACKBONE, label="Backbone"), pooling=radio("Pooling"),
                                style_layers="Style layers",
                                content_layers=dict(value="", label="Content layers"))
                with gr.Row():
                    c |= fields(optimizer="Optimizer", lr="Learning rate", loss="Loss kind", huber_delta="Huber delta",
                                normalization=radio("Normalisation") | {"elem_id": "normalization"})
                with gr.Row():
                    c |= fields(init=radio("Start from"), content_weight="Content weight",
                                tv_weight="Smoothness (TV weight; 0 = off)", style_scale="Style scale",
                                scales=slider(0, 4, 0, 1, "Scales (0 = by size)"),
                                coarse_iterations="Coarse iterations", seed="Seed",
                                bounds=radio("Pixels while optimising"))
                    c["until_done"] = until_done_box(d["until_done"])
        with cols.pane:
            preview = result_image("result", "Result")
            download = downloads("download", "Download PNG (settings embedded)")
    with gr.Row():
        compare = gr.ImageSlider(label="Before / after", format="png", interactive=False, max_height=480)
        curve = gr.Plot(label="Loss")
    run, stop, progress = cols.run, cols.stop, cols.progress
    outputs = [preview, download, compare, curve, progress]
    wire(run, stop, run_image, [content, styles, *regions], outputs, "stylize", "image", page_banner, c)
    examples.select(run_example, None, [content, styles, *(c[name] for name in EXAMPLE_SETTINGS)] + outputs,
                    concurrency_id="optimise", concurrency_limit=RUNS_AT_ONCE, show_progress="hidden",
                    api_name=False).then(banner, None, page_banner, queue=False)


# --- Large image tab -----------------------------------------------------------------------------------

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


def large_line(event, pace: Pace, tiles: Pace) -> tuple[str, float | None]:
    """A large job's status line and bar (the global pass is its first tenth; `tiles` times the tiles)."""
    if event.stage == "style targets":
        return "Measuring the style at the output's scale…", None
    if event.stage == "global pass":
        return (progress_line(f"Global pass: step {event.step} of {event.steps}", event.losses.get("total"),
                              pace.rate(event.step), "steps/s",
                              f"{ESTIMATING[:-1]} (the pass)" if event.eta is None else
                              f"{clock(event.eta)} left in the pass, then {event.total} tiles"),
                event.step / max(event.steps, 1) * 0.1)
    done, total = event.completed, event.total
    return (progress_line(f"Tile {min(done + 1, total)} of {total}: step {event.step} of {event.steps}",
                          event.losses.get("total"), tiles.rate(done, 60), "tiles/min", eta_of(event)),
            0.1 + 0.9 * (done + event.step / max(event.steps, 1)) / max(total, 1))


@user_errors(3)
def run_large(content, styles, request: gr.Request = None, **values):
    """Paints a large canvas tile by tile; streams the canvas with its tile grid. A stopped job keeps
    its finished tiles: running the same inputs and settings again continues it. `values`: the tab's
    controls by name (`size` is the output's). Outputs: canvas, PNG, status."""
    settings = tab_settings("large", values)
    image = settings.image
    content_image, style_images = load_inputs(content, styles)
    with stop_flag(request, "large") as stop:
        yield None, None, status("Starting…")
        weights = yield from weights_loading(image.backbone, 3)
        job = RUNS / "large-jobs" / fingerprint((content_image, *style_images), settings, weights)[:20]
        resumed = " · continuing a stopped job" if job.exists() else ""
        pace, tiles, canvas, shown, gridded = Pace(), Pace(), None, None, False
        events = stylize_large(content_image, style_images, settings, weights, job=job, resume=True, backend=CLUSTER)
        for event in events:
            if event.done:
                break
            line, fraction = large_line(event, pace, tiles)
            picture = gr.skip()
            if event.preview is not None:
                canvas = event.preview
                picture = shown = draw_grid(event.preview, event.shape, event.layout, event.completed) \
                    if event.stage == "tiles" else to_uint8(event.preview)
            elif event.stage == "tiles" and canvas is not None and not gridded:
                # the global pass is what the tiles start from: show it with the grid until one is done
                picture = shown = draw_grid(canvas, event.shape, event.layout, event.completed)
            gridded = gridded or event.stage == "tiles"
            yield picture, gr.skip(), status(line + resumed, fraction)
            # a tile at its last step is finishing: Stop waits for it, so that it is kept
            finishing = event.stage == "tiles" and event.steps and event.step >= event.steps and event.preview is None
            if stop.is_set() and not finishing:
                events.close()
                png = str(save_image(new_run_dir(request) / "canvas-so-far.png", canvas, {
                    "Warning": "a stopped job's canvas at preview size"})) if canvas is not None else None
                yield shown, png, status(
                    f"**Stopped after {event.completed} of {event.total} tiles** ({clock(pace.seconds)})."
                    " The tile in progress is discarded; the finished tiles are kept, and Run with the same "
                    "inputs and settings continues from them. The PNG is the canvas so far, at preview size."
                    + untrained_note(weights), state="stopped")
                return
        result = event.result
        h, w = event.shape
        text = {"style_core": result.report(), **({} if weights.trained else {"Warning": weights.source})}
        png = save_image(new_run_dir(request) / "large.png", result.image, text)
        shutil.rmtree(job, ignore_errors=True)
        info = (f"**{w}x{h} px, {len(result.layout)} tiles in {pace.seconds:.1f} s**"
                f" ({result.tiles_resumed} from the stopped job) · weights: {source_of(weights)} · "
                + (ran_on(result.units) or f"device: {jax.default_backend()} × {jax.device_count()}"))
        yield to_uint8(event.preview), str(png), status(info, state="done")


def large_tab(d: dict, page_banner) -> None:
    gr.Markdown("Print-size outputs, painted tile by tile: the style is measured at the output's scale, "
                "a global pass sets the composition, and the tiles are blended without seams. Stop keeps "
                "the finished tiles (the one in progress is discarded); running the same inputs and "
                "settings again continues the job.")
    with tab_columns("large_") as cols:
        with cols.controls:
            content, styles = drop_zones("large_")
            fields, c = functools.partial(controls, LargeSettings, ImageSettings), {}
            c |= fields(size=slider(256, LARGE_MAX_SIZE, d["large_size"], 64, "Output size (px)"))
            with gr.Row():
                c |= fields(tile=slider(64, 1024, d["tile"], 32, "Tile (px)"),
                            overlap=slider(0, 256, d["overlap"], 8, "Overlap (px)"))
            with gr.Row():
                c |= fields(iterations=slider(0, 1000, d["large_iterations"], 10, "Global pass iterations"),
                            tile_iterations=slider(0, 1000, d["tile_iterations"], 10, "Iterations per tile"))
            with gr.Row():
                c["style_strength"] = style_strength(ImageSettings())
                c |= fields(preserve_color=radio("Preserve colour"))
            with gr.Accordion("Advanced", open=False):
                c |= fields(optimizer="Optimizer",
                            base_size=slider(0, 2048, d["base_size"], 32, "Global pass size (px)"))
                c["until_done"] = until_done_box(d["until_done"])
        with cols.pane:
            preview = result_image("large_result", "Canvas")
            download = downloads("large_download", "Download the full-size PNG")
    run, stop, progress = cols.run, cols.stop, cols.progress
    wire(run, stop, run_large, [content, styles], [preview, download, progress], "large", "large", page_banner, c)


# --- Photorealistic tab ------------------------------------------------------------------------------

def _metrics_caption(label: str, metrics: dict) -> str:
    return f"{label} · affine residual {metrics['affine_residual']:.4f} · edge SSIM {metrics['edge_ssim']:.3f}"


PHOTO_STRENGTH = round(math.log10(DEFAULT_PHOTO_WEIGHT), 2)
SMOOTHNESS = round(math.log10(PHOTO_DEFAULTS["tv_weight"]), 2)
TEMPORAL_STRENGTH = round(math.log10(DEFAULT_TEMPORAL_WEIGHT), 2)


@user_errors(4)
def run_photo(content, styles, compare=False, painting=None, masks=None, content_labels=None, style_labels=None,
              request: gr.Request = None, **values):
    """Photorealistic transfer; streams the picture like the Image tab, then (on request) content, plain
    stylisation and photorealistic result side by side, with their photo-likeness figures. Regions come
    from a painting, masks or label images (page_regions). `values`: the tab's settings controls by
    name. Outputs: picture, PNG, side by side, status."""
    settings = tab_settings("photo", values)
    image = settings.image
    content_image, style_images = load_inputs(content, styles)
    regions, region_names, _ = page_regions(len(style_images), painting, masks, content_labels, style_labels,
                                            content_image.shape[:2])
    with stop_flag(request, "photo") as stop:
        yield None, None, [], status("Starting…")  # no stale download or gallery
        weights = yield from weights_loading(image.backbone, 4)
        # The plain stylisation for the comparison: a two-stage run's first stage is exactly that.
        plain_run = compare and not settings.two_stage and settings.photo_weight > 0
        runs = [("plain stylisation", stylize(content_image, style_images, image, weights, regions=regions))
                ] if plain_run else []
        runs.append(("photorealistic", stylize_photo(content_image, style_images, settings, weights, regions=regions)))
        planned = {label: sum(image.scale_iterations) for label, _ in runs}  # until a run says its own
        pace, offset, plain, shown = Pace(), 0, None, None
        for index, (label, events) in enumerate(runs, 1):
            for event in events:
                if event.done:
                    break
                planned[label] = event.total
                shown = shown if event.preview is None else event.preview
                whole = dataclasses.replace(event, completed=offset + event.completed,  # over both runs
                                            total=offset + sum(planned[name] for name, _ in runs[index - 1:]))
                line = step_line(whole, pace, f"{label.capitalize()} ({index} of {len(runs)}): step")
                yield (gr.skip() if event.preview is None else to_uint8(event.preview), gr.skip(), gr.skip(),
                       status(line, whole.completed / max(whole.total, 1)))
                if stop.is_set():
                    events.close()
                    png = str(save_image(new_run_dir(request) / "stopped.png", shown, {
                        "Warning": "a stopped run's last picture"})) if shown is not None else None
                    yield (None if shown is None else to_uint8(shown)), png, [], status(
                        f"**Stopped after {whole.completed} of {whole.total} steps** ({clock(pace.seconds)}). "
                        "The picture and its PNG are the last ones shown." + untrained_note(weights),
                        state="stopped")
                    return
            if label == "plain stylisation":  # the first run: the photorealistic one's steps count on
                plain, offset = event.result.image, event.result.iterations
        result = event.result
        plain = plain if plain is not None else (result.plain.image if compare and result.plain else None)
        text = {"style_core": result.report(), **({} if weights.trained else {"Warning": weights.source})}
        png = save_image(new_run_dir(request) / "photo.png", result.image, text)
        gallery = [(to_uint8(resize(content_image, *result.image.shape[:2])), "content")] if compare else []
        measured = ([("plain stylisation", plain)] if compare and plain is not None else []) + (
            [("photorealistic, before smoothing", result.raw)] if settings.smooth else [])
        gallery += [(to_uint8(p), _metrics_caption(label, photo_metrics(content_image, p))) for label, p in measured]
        gallery.append((to_uint8(result.image), _metrics_caption(
            "photorealistic" + (", smoothed" if settings.smooth else ""), result.metrics)))
        final = ", ".join(f"{k} {v:.4g}" for k, v in result.stages[-1].final_losses.items())
        names = ["first stage", "refinement"] if len(result.stages) == 2 else ["photorealistic"]
        passes = ([f"{offset} plain stylisation"] if plain_run else []) + [
            f"{s.iterations} {name}" for s, name in zip(result.stages, names)]
        steps = offset + sum(s.iterations for s in result.stages)
        split = f" ({' + '.join(passes)})" if len(passes) > 1 else ""
        split += f" · {regions_line(regions, region_names)}" if regions else ""
        info = (f"**{steps} steps in {pace.seconds:.1f} s**{split} · {final} · affine residual "
                f"{result.metrics['affine_residual']:.4f} (0 = locally an affine map of the content's colours) · "
                f"edge SSIM {result.metrics['edge_ssim']:.3f} · weights: {source_of(weights)}")
        yield to_uint8(result.image), str(png), gallery, status(info, state="done")


def photo_tab(d: dict, page_banner) -> None:
    gr.Markdown("The style's colours and light on the content's structure, without painterly distortion: "
                "the matting Laplacian of the content (Levin et al.) keeps the output locally an affine "
                "function of the content's colours (Luan et al.). Strengths default to what was measured on a trained VGG16.")
    with tab_columns("photo_") as cols:
        with cols.controls:
            content, styles = drop_zones("photo_", "photo")
            regions = regions_panel("photo_", content, styles, labels=True)
            fields, c = functools.partial(controls, PhotoSettings, ImageSettings), {}
            with gr.Row():
                c |= fields(size=slider(32, 2048, d["photo_size"], 16, "Size (px)"),
                            iterations=slider(0, 2000, d["photo_iterations"], 10, "Iterations",
                                              elem_id="photo_iterations"))
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
                c |= fields(smooth="Smooth with a guided filter (shown side by side)")
            with gr.Accordion("Advanced", open=False):
                with gr.Row():
                    c |= fields(two_stage="Two stages: stylise, then refine (Luan et al.)",
                                refine_iterations=slider(0, 2000, d["photo_iterations"], 10,
                                                         "Refinement iterations (second stage)"))
                with gr.Row():
                    c |= fields(preserve_color=radio("Preserve colour"),
                                optimizer=dict(value=PHOTO_DEFAULTS["optimizer"], label="Optimizer"),
                                epsilon="Matting epsilon")
        with cols.pane:
            preview = result_image("photo_result", "Result")
            download = downloads("photo_download", "Download PNG (settings embedded)")
    gallery = gr.Gallery(label="Side by side", columns=4, height="auto", format="png", visible=False,
                         elem_id="photo_gallery")
    run, stop, progress = cols.run, cols.stop, cols.progress
    compare.change(lambda on: gr.update(visible=on), compare, gallery, queue=False, api_name=False,
                   show_progress="hidden")   # the side by side shows with Compare only
    wire(run, stop, run_photo, [content, styles, compare, *regions], [preview, download, gallery, progress], "photo",
         "photo", page_banner, c)


# --- Video tab ----------------------------------------------------------------------------------------

@user_errors(3)
def run_video(clip, styles, request: gr.Request = None, **values):
    """Stylises a clip frame by frame; streams each finished frame, then the playable video. A stopped
    job keeps its frames: running the same inputs and settings again continues it. `values`: the tab's
    controls by name. Outputs: frame, video, status."""
    settings = tab_settings("video", values)
    image = settings.image
    info, style_images = load_inputs(clip, styles, "video", probe)
    with stop_flag(request, "video") as stop:
        yield None, None, status("Starting…")  # no stale video
        weights = yield from weights_loading(image.backbone, 3)
        job = RUNS / "video-jobs" / fingerprint(style_images, settings, weights, files=(info.path,))[:20]
        resumed = " · continuing a stopped job" if job.exists() else ""
        output = new_run_dir(request) / "stylised.mp4"
        pace, last = Pace(), None
        events = stylize_video(clip, style_images, settings, weights, output, job=job, resume=True, backend=CLUSTER)
        for event in events:
            if event.done:
                break
            if event.stage == "assembling":
                line = f"Writing the video ({event.total} frames)…"
            else:   # the rate and time left from the frames stylised after the first (resumed ones not counted)
                line = progress_line(f"Frame {min(event.completed + 1, event.total)} of {event.total}: step "
                                     f"{event.step}", rate=event.rate, unit="frames/min", left=eta_of(event))
            if event.preview is not None:
                last = to_uint8(event.preview)
            yield (gr.skip() if event.preview is None else last, gr.skip(),
                   status(line + resumed, event.completed / max(event.total, 1)))
            if stop.is_set():
                events.close()
                yield last, None, status(
                    f"**Stopped after {event.completed} of {event.total} frames** ({clock(pace.seconds)}). The "
                    "finished frames are kept, and Run with the same inputs and settings continues from them; "
                    "the picture is the last finished frame (its download button is in its corner)."
                    + untrained_note(weights), state="stopped")
                return
        result = event.result
        shutil.rmtree(job, ignore_errors=True)
        border = (f" (chunk overlaps {result.border_warping_error:.3g}, elsewhere "
                  f"{result.inner_warping_error:.3g})" if result.border_warping_error is not None else "")
        kept = f" ({result.frames_resumed} from the stopped job)" if result.frames_resumed else ""
        computed = result.frames - result.frames_resumed
        text = (f"**{result.frames} frames at {float(result.fps):g} fps in {pace.seconds:.1f} s**{kept} · "
                f"{computed / max(pace.seconds, 1e-6) * 60:.1f} frames/min · first frame "
                f"{result.first_iterations[0]} steps, later frames {result.mean_later_iterations:.1f} "
                f"on average · warping error E_warp {result.warping_error:.3g}{border} · weights: "
                f"{source_of(weights)}" + (f" · {ran_on(result.units)}" if ran_on(result.units) else ""))
        yield last, str(result.path), status(text, state="done")


def video_tab(d: dict, page_banner) -> None:
    gr.Markdown("A clip painted frame by frame without flicker: each frame is kept consistent with the "
                "previous one, warped along the clip's optical flow. Stop keeps the finished frames; "
                "running the same inputs and settings again continues the job.")
    with tab_columns("video_") as cols:
        with cols.controls:
            clip = gr.Video(label="Video", sources=["upload"], format=None, elem_id="video_input", height=220)
            styles = style_files("video_")
            fields, c = functools.partial(controls, VideoSettings, ImageSettings), {}
            with gr.Row():
                c |= fields(size=slider(32, 1024, d["video_size"], 16, "Frame size (px)"),
                            max_frames=slider(1, 10_000, d["video_frames"], 1, "Frames"), start="Start (s)")
            with gr.Row():
                c["style_strength"] = style_strength(video_image_settings())
                c["temporal_strength"] = strength(TEMPORAL_STRENGTH, "Temporal consistency",
                                                  f"0 = off (every frame on its own); temporal weight = 10^value "
                                                  f"({TEMPORAL_STRENGTH:g} = {DEFAULT_TEMPORAL_WEIGHT:g})")
            with gr.Accordion("Advanced", open=False):
                with gr.Row():
                    c |= fields(iterations=slider(0, 1000, d["video_iterations"], 10, "First frame iterations"),
                                frame_iterations=slider(0, 1000, d["video_iterations"], 10,
                                                        "Later frames: at most (they stop early)"))
                with gr.Row():
                    c |= fields(temporal=radio("Temporal loss"), frames_per_chunk="Chunk (frames; 0 = one chunk)",
                                chunk_overlap="Chunk overlap (frames)")
        with cols.pane:
            preview = result_image("video_frame", "Current frame")
    result = gr.Video(label="Stylised video", interactive=False, elem_id="video_result", height=400)
    run, stop, progress = cols.run, cols.stop, cols.progress
    wire(run, stop, run_video, [clip, styles], [preview, result, progress], "video", "video", page_banner, c)


# --- Explore tab ---------------------------------------------------------------------------------------

@user_errors(3)
def run_explore(study, content, style, size, iterations, request: gr.Request = None):
    """Runs one research-deck study; the grid and the loss curves grow cell by cell. Outputs: grid,
    curves, status."""
    if study not in STUDIES:
        raise StyleError(f"unknown study {str(study)[:40]!r}; choose one of {', '.join(STUDIES)}")
    content_image = load_image(content or ASSETS / "content.png")
    style_image = load_image(style or ASSETS / "style.png")
    base = study_settings(size=number(size, "size", True), iterations=number(iterations, "iterations", True),
                          backbone=DEFAULT_BACKBONE)
    cells, what = STUDIES[study].cells(base), STUDIES[study].what
    gallery, curves, loaded, places = {}, {}, {}, []
    with stop_flag(request, "explore") as stop:
        yield [], None, status("Starting…")
        for backbone in dict.fromkeys(s.backbone for _, s in cells):
            loaded[backbone] = yield from weights_loading(backbone, 3)
        warning = "".join(dict.fromkeys(untrained_note(w) for w in loaded.values()))
        pace, index, count = Pace(), 0, len(cells)
        events = run_study(study, content_image, style_image, base, loaded.__getitem__, progress=True,
                           backend=CLUSTER)
        for cell in events:
            if isinstance(cell, Event):
                done = index + cell.completed / max(cell.total, 1)  # the cell at work counts in part
                line = progress_line(f"Cell {index + 1} of {count}: step {cell.completed} of {cell.total}",
                                     rate=pace.rate(index, 60), unit="cells/min", left=pace.left(done, count))
                yield gr.skip(), gr.skip(), status(line + warning, done / count)
            else:  # on a cluster, cells finish in any order: each goes to its place in the grid
                index = len(gallery) + 1
                h, w = cell.image.shape[:2]
                caption = f"{cell.label} · {w}x{h} px" + (f" · loss {cell.losses[-1]:.3g}" if cell.losses else "")
                gallery[cell.index] = (to_uint8(cell.image), caption)
                curves[cell.label] = (cell.steps, cell.losses)
                places.append(cell.where)
                yield grid(gallery), loss_figure(curves), status(f"{index} of {count} cells · {what}{warning}",
                                                                 index / count)
            if stop.is_set():
                events.close()
                yield grid(gallery), loss_figure(curves), status(f"**Stopped after {index} of {count} cells** "
                                                   f"({clock(pace.seconds)}); the finished cells are shown."
                                                   + warning, state="stopped")
                return
        where = f" · {ran_on(places)}" if ran_on(places) else ""
        yield grid(gallery), loss_figure(curves), status(f"**{count} cells in {pace.seconds:.1f} s**{where} · "
                                                         f"{what}{warning}", state="done")


def grid(cells: dict) -> list:
    """The gallery's cells in study order."""
    return [cells[k] for k in sorted(cells)]


def ran_on(places) -> str:
    """Where a job's units ran, if not here: "on ray: 1 node, 2 workers, 6 tasks, 0 retries"."""
    where = summary(places)
    return said(where) if where.get("backend", "local") != "local" else ""


def explore_tab(d: dict, page_banner) -> None:
    gr.Markdown("The studies of the research deck this studio grew from. Each runs small by default so "
                "that a CPU finishes it in minutes; raise size and iterations for finer results. Cells are "
                "shown enlarged without smoothing; their real size is in each caption.")
    with tab_columns("explore_", "Run study") as cols:
        with cols.controls:
            study = gr.Dropdown([(s.title, s.name) for s in STUDIES.values()], value="content_weight",
                                label="Study")
            with gr.Row():
                size = checked(gr.Slider(32, 512, value=d["explore_size"], step=16, label="Size (px)"))
                iterations = checked(gr.Slider(10, 1000, value=d["explore_iterations"], step=10,
                                               label="Iterations per cell"))
            with gr.Row():
                content = ImageUpload(label="Content (default: the bundled example)", type="filepath", height=160,
                                      elem_id="explore_content")
                style = ImageUpload(label="Style (default: the bundled example)", type="filepath", height=160,
                                    elem_id="explore_style")
        with cols.pane:
            grid = gr.Gallery(label="Results", columns=3, height=RESULT_HEIGHT, format="png",
                              elem_id="explore_grid", object_fit="contain", preview=False)
    curves = gr.Plot(label="Loss curves")
    run, stop, progress = cols.run, cols.stop, cols.progress
    wire(run, stop, run_explore, [study, content, style, size, iterations], [grid, curves, progress],
         "explore", "explore", page_banner)


# --- the page ------------------------------------------------------------------------------------------

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


def build(defaults: dict | None = None) -> gr.Blocks:
    d = {**device_defaults(), **(defaults or {})}
    with gr.Blocks(title="Style transfer studio", delete_cache=(RUN_MAX_AGE // 4, RUN_MAX_AGE)) as demo:
        gr.Markdown("# Style transfer studio\nNeural style transfer (Gatys et al.) in JAX. Drop a content "
                    "image and one or more style images, press Run, and watch the painting appear. "
                    f"Defaults suit this server's device ({jax.default_backend().upper()}).")
        page_banner = gr.HTML("", visible=False, elem_id="untrained_banner")
        weights_panel(page_banner)
        for title, tab in [("Image", image_tab), ("Large image", large_tab), ("Photorealistic", photo_tab),
                           ("Video", video_tab), ("Explore", explore_tab)]:
            with gr.Tab(title):
                tab(d, page_banner)
        demo.load(banner, None, page_banner, show_progress="hidden")
        demo.unload(end_session)
    guard_inputs(demo)
    for block in demo.blocks.values():
        KEEP.update(str(f) for f in getattr(block, "keep_in_cache", ()))
    demo.queue(default_concurrency_limit=1, max_size=32)
    return demo


def warm_up(size: int) -> None:
    """Loads the default weights and compiles the default size once, so the first user waits less."""
    try:
        weights = get_weights(DEFAULT_BACKBONE)
        image = load_image(ASSETS / "content.png")
        for _ in stylize(image, [load_image(ASSETS / "style.png")],
                         ImageSettings(size=size, iterations=1, backbone=DEFAULT_BACKBONE), weights):
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
        if TEMP_IS_OURS:
            shutil.rmtree(TEMP, ignore_errors=True)
        logging.shutdown()
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)


def main() -> None:
    global WEIGHTS_SOURCE, CLUSTER, DEFAULT_BACKBONE
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
    WEIGHTS_SOURCE = args.weights
    held = file_backbone(args.weights) if args.weights and args.weights != "random" else None
    if held:
        DEFAULT_BACKBONE = EXAMPLE_SETTINGS["backbone"] = held
        log.info("every tab starts with %s, the network in %s", held, args.weights)
    try:
        CLUSTER = backend(args.cluster)
        if CLUSTER.name == "ray":
            nodes = [(n["NodeManagerAddress"], n["Resources"]) for n in CLUSTER.nodes()]
            log.info("Large, Video and Explore run on the Ray cluster: %s", ", ".join(
                f"{host} ({r.get('GPU', 0):g} GPU, {r.get('CPU', 0):g} CPU)" for host, r in nodes))
    except StyleError as e:
        parser.exit(2, f"error: {e}\n")
    log.info("compiled code kept in %s", use_compile_cache())
    log.info("JAX backend %s, devices %s; temporary files in %s", jax.default_backend(), jax.devices(), TEMP)
    if str(args.weights or os.environ.get("STYLE_CORE_WEIGHTS")) == "random":
        _weights["vgg19"] = load_weights("vgg19", "random")  # the banner shows from the first page load
        log.warning(UNTRAINED_TEXT.format(backbones="every backbone: --weights random or STYLE_CORE_WEIGHTS"))
    if args.warmup:
        threading.Thread(target=warm_up, args=(device_defaults()["size"],), daemon=True).start()
    serving.append(build())
    launch(serving[0], args.host, args.port, args.share)


if __name__ == "__main__":
    main()
