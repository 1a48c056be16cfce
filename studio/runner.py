"""One runner for every tab: weights loading, the Stop flag, the run followed (`modes.follow`), the
status line, and the PNG kept on Stop and on done. A tab says only how its run starts and what its
outputs show (`Job`)."""

from __future__ import annotations

import contextlib
import functools
import html
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import gradio as gr

from style_core import StyleError
from style_core.errors import spelled
from style_core.images import to_uint8
from style_core.modes import View, clock, follow, progress_line
from style_core.weights import FILENAME, WeightsUnavailable, hub_repo

from .files import session_of
from .state import STATE


def status(text: str, fraction: float | None = None, state: str = "running") -> str:
    """The tab's one progress display: a bar (while running) and a line of text. `**bold**` is kept."""
    body = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text)).replace("\n", "<br>")
    bar = ""
    if state == "running":
        width = "100%" if fraction is None else f"{100 * min(max(fraction, 0.0), 1.0):.1f}%"
        bar = (f'<div class="bar{" busy" if fraction is None else ""}"><div style="width:{width}"></div></div>')
    return f'<div class="run-status {state}" data-state="{state}">{bar}<div class="line">{body}</div></div>'


def source_of(weights) -> str:
    """The weights' source as a status line names it: a file by its name (its folder is the server's)."""
    return f"file {Path(weights.source[5:]).name}" if weights.source.startswith("file:") else weights.source


def untrained_note(weights) -> str:
    return "" if weights.trained else f"\n⚠ {weights.source}."


def warning_text(weights) -> dict:
    """A PNG's warning chunk where the weights were untrained."""
    return {} if weights.trained else {"Warning": weights.source}


def no_weights_message(e: WeightsUnavailable) -> str:
    """What a browser user can do when there are no weights: no command-line flags in it."""
    return (f"The {e.backbone} network's ImageNet weights are not on this server and could not be "
            f"downloaded: {e.reason}. Open “Weights” at the top of the page to upload a {FILENAME} "
            f"({hub_repo(e.backbone)}) or to try untrained weights.")


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


_running: dict[tuple[str, str], threading.Event] = {}
_running_lock = threading.Lock()


@contextlib.contextmanager
def stop_flag(request, tab: str):
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


def request_stop(tab: str, request) -> None:
    """Stop: the running job ends after its current compiled chunk and says so (not a cancel: a
    cancelled event shows error badges over every output and drops the last picture's download)."""
    with _running_lock:
        flag = _running.get((session_of(request), tab))
    if flag is not None:
        flag.set()


def _megabytes(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def weights_loading(backbone: str, outputs: int):
    """Loads the weights in a thread and yields the tab's `outputs` every half second: the others
    unchanged, and last its status line (bytes and speed while downloading); returns the weights. The
    first run's download is visible, not a frozen bar."""
    if backbone in STATE.weights:
        return STATE.weights[backbone]
    seen = {"what": "", "done": 0, "total": 0}
    outcome: dict = {}

    def report(what: str, done: int, total: int) -> None:
        seen.update(what=what, done=done, total=total)

    def work() -> None:
        try:
            outcome["weights"] = STATE.get_weights(backbone, report)
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


def preview_of(view: View):
    """A view's picture for the page: the preview where it changed, else unchanged (gr.skip)."""
    return gr.skip() if view.preview is None else to_uint8(view.preview)


def unchanged(value) -> bool:
    """Whether an output's value is gr.skip() (the output keeps what it shows)."""
    return isinstance(value, dict) and value == gr.skip()


@dataclass
class Job:
    """One run of a tab, as the runner follows it. `outputs`: how many the tab has (its picture first,
    its status line last). `start(weights)` (weights by backbone) begins the mode's events;
    `picture(view)` is what the picture shows at a view (gr.skip: unchanged), or `shows(view)` every
    output but the status line; `on_stop(shown, view)` gives the outputs after Stop (but the status
    line) from the last picture shown and its view (None: none yet), and the words after "Stopped
    after ..."; `on_done(result, weights, seconds)` the outputs and the line at the end. `note`
    follows every line while running ("continuing a stopped job"); `parts` name a run in parts
    (photo mode's comparison)."""
    tab: str
    outputs: int
    backbones: Sequence[str]
    start: Callable[[dict], Iterator]
    on_done: Callable[[Any, dict, float], tuple[tuple, str]]
    on_stop: Callable[[Any, View], tuple[tuple, str]]
    picture: Callable[[View], Any] = preview_of
    shows: Callable[[View], tuple] | None = None
    note: str = ""
    parts: Sequence[str] = ()


def run_mode(job: Job, request=None):
    """Runs `job` for the page: "Starting…" at once (no stale outputs), the weights loading, then one
    status line per event with the picture in place; Stop ends it at its next event with the last
    picture kept; the end shows the tab's outputs and summary. Untrained weights are said in every
    line (the end's names the weights' source)."""
    blank = (None,) * (job.outputs - 1)
    skip = (gr.skip(),) * (job.outputs - 2)
    with stop_flag(request, job.tab) as stop:
        yield *blank, status("Starting…")
        weights = {}
        for backbone in dict.fromkeys(job.backbones):
            weights[backbone] = yield from weights_loading(backbone, job.outputs)
        warning = "".join(dict.fromkeys(untrained_note(w) for w in weights.values()))
        shown, view = None, None
        for view in follow(job.start(weights), stop, job.parts):
            if view.result is not None:
                break
            if view.stopped:
                outputs, kept = job.on_stop(shown, view)
                yield *outputs, status(f"{view.line} {kept}".strip() + warning, state="stopped")
                return
            outputs = job.shows(view) if job.shows else (job.picture(view), *skip)
            if not unchanged(outputs[0]):
                shown = (outputs[0], view)
            yield *outputs, status(view.line + job.note + warning, view.fraction)
        outputs, line = job.on_done(view.result, weights, view.seconds)
        yield *outputs, status(line, state="done")   # its line names the weights' source


# Optimisations running at once (STYLE_STUDIO_RUNS, default 2): with one, a single user's long run, or
# one whose compilation Stop cannot interrupt, held every other user in the queue (issue 32, 2).
RUNS_AT_ONCE = max(1, int(os.environ["STYLE_STUDIO_RUNS"])) if os.environ.get("STYLE_STUDIO_RUNS", "").isdigit() else 2
# Every optimisation shares one queue, RUNS_AT_ONCE at a time, with no progress overlay (the status
# line is the progress).
QUEUE = dict(concurrency_id="optimise", concurrency_limit=RUNS_AT_ONCE, show_progress="hidden")


def wire(cols, fn, inputs, outputs, api_name: str, tab: str, page_banner, controls: dict | None = None) -> None:
    """Run (`cols.run`) streams `fn` into `outputs`, then refreshes the untrained-weights banner; Stop
    sets the run's flag without queueing behind it. `controls` reach `fn` by name (and name the API's
    parameters), after the `inputs`."""
    from .weights_panel import banner
    event = cols.run.click(fn, inputs, outputs, api_name=api_name, inputs_kwargs=controls, **QUEUE)
    event.then(banner, None, page_banner, show_progress="hidden", queue=False)

    def stop_this(request: gr.Request) -> None:
        request_stop(tab, request)
    cols.stop.click(stop_this, None, None, api_name=f"stop_{api_name}", queue=False, show_progress="hidden")
