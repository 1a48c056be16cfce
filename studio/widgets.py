"""The page's building blocks that every tab uses: drop zones, the result pane pinned beside the
controls (Run, Stop, the status line, the picture), downloads, the loss figure."""

from __future__ import annotations

import contextlib
import dataclasses

import gradio as gr
import numpy as np
from matplotlib.figure import Figure

from .runner import status

# The result pane's picture: what is left of a laptop's screen (1366x768) under Run, the status line
# and the download (the pane is pinned beside the controls, so they scroll and it stays).
RESULT_HEIGHT = "calc(100vh - 240px)"


def ImageUpload(**kwargs) -> gr.Image:  # noqa: N802 (reads like the component it makes)
    """An image drop zone that hands the uploaded file itself to style_core's loader, which honours
    EXIF, 16-bit, CMYK and transparency and refuses damaged files with a clear message; Gradio's own
    decode would re-encode the image first, or fail with a generic error. Overridden on the instance,
    not in a subclass: Gradio looks a subclass up as a custom component with its own frontend."""
    component = gr.Image(**kwargs)
    component.preprocess = lambda payload: None if payload is None else str(payload.path)
    return component


def drop_zones(prefix: str, what: str = "image") -> tuple[gr.Image, gr.File]:
    """A tab's content drop zone and its style files."""
    return (ImageUpload(label=f"Content {what}", type="filepath", sources=["upload", "clipboard"],
                        elem_id=f"{prefix}content", height=220), style_files(prefix, what))


def style_files(prefix: str, what: str = "image") -> gr.File:
    return gr.File(label=f"Style {what}s (one or more)", file_count="multiple", file_types=["image"],
                   type="filepath", elem_id=f"{prefix}styles", height=120)


def downloads(elem_id: str, label: str) -> gr.File:
    """The result's file, under its picture: one line high until there is one."""
    return gr.File(label=label, elem_id=elem_id, height=60, elem_classes=["download"])


def result_image(elem_id: str, label: str, height: int | str = RESULT_HEIGHT) -> gr.Image:
    """The streamed picture: scaled to its pane (the PNG keeps its real size), updated in place."""
    return gr.Image(label=label, format="png", interactive=False, elem_id=elem_id, height=height,
                    elem_classes=["fit"], buttons=["download", "fullscreen"])


@dataclasses.dataclass
class Columns:
    controls: gr.Column | None = None
    pane: gr.Column | None = None
    run: gr.Button | None = None
    stop: gr.Button | None = None
    progress: gr.HTML | None = None


@contextlib.contextmanager
def tab_columns(prefix: str, label: str = "Run"):
    """A tab's two columns: the controls, then the result pane, pinned beside them while they scroll,
    whose top is Run and Stop and the status line: on a laptop's screen the live result and Run are
    always in view together. Yields a `Columns` to fill."""
    columns = Columns()
    with gr.Row(equal_height=False):
        columns.controls = gr.Column(scale=5, min_width=360)
        columns.pane = gr.Column(scale=6, min_width=360, elem_classes=["pinned"])
        with columns.pane:
            with gr.Row():
                columns.run = gr.Button(label, variant="primary", elem_id=f"{prefix}run")
                columns.stop = gr.Button("Stop", variant="stop", elem_id=f"{prefix}stop")
            columns.progress = gr.HTML(status("Ready.", state="idle"), elem_id=f"{prefix}status")
        yield columns


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
