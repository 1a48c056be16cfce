"""The Explore tab: the research deck's studies as growing image grids with their loss curves."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from style_core import StyleError, load_image
from style_core.explore import STUDIES, run_study, study_settings
from style_core.images import to_uint8
from style_core.modes import ran_on

from ..controls import checked, number
from ..runner import Job, run_mode, untrained_note, user_errors, wire
from ..state import STATE
from ..widgets import RESULT_HEIGHT, ImageUpload, loss_figure, tab_columns

ASSETS = Path(__file__).resolve().parents[2] / "assets"


class Grid:
    """The gallery and the loss curves, growing cell by cell (on a cluster cells finish in any order:
    each goes to its place)."""

    def __init__(self):
        self.cells, self.curves = {}, {}

    def add(self, cell) -> None:
        h, w = cell.image.shape[:2]
        caption = f"{cell.label} · {w}x{h} px" + (f" · loss {cell.losses[-1]:.3g}" if cell.losses else "")
        self.cells[cell.index] = (to_uint8(cell.image), caption)
        self.curves[cell.label] = (cell.steps, cell.losses)

    @property
    def outputs(self) -> tuple:
        return [self.cells[k] for k in sorted(self.cells)], loss_figure(self.curves)

    def __call__(self, view) -> tuple:
        if view.event.item is None:
            return gr.skip(), gr.skip()
        self.add(view.event.item)
        return self.outputs


@user_errors(3)
def run_explore(study, content, style, size, iterations, request: gr.Request = None):
    """Runs one research-deck study; the grid and the loss curves grow cell by cell. Outputs: grid,
    curves, status."""
    if study not in STUDIES:
        raise StyleError(f"unknown study {str(study)[:40]!r}; choose one of {', '.join(STUDIES)}")
    content_image = load_image(content or ASSETS / "content.png")
    style_image = load_image(style or ASSETS / "style.png")
    base = study_settings(size=number(size, "size", True), iterations=number(iterations, "iterations", True),
                          backbone=STATE.backbone)
    cells, what = STUDIES[study].cells(base), STUDIES[study].what
    grid = Grid()

    def start(weights):
        return run_study(study, content_image, style_image, base, weights.__getitem__, progress=True,
                         backend=STATE.cluster)

    def on_stop(shown, view):
        return grid.outputs, "The finished cells are shown."

    def on_done(result, weights, seconds):
        ran = ran_on([c.where for c in result.cells])
        where = f" · {ran}" if ran else ""
        warning = "".join(dict.fromkeys(untrained_note(w) for w in weights.values()))
        return grid.outputs, f"**{len(result.cells)} cells in {seconds:.1f} s**{where} · {what}{warning}"

    yield from run_mode(Job("explore", 3, [s.backbone for _, s in cells], start, on_done, on_stop, shows=grid,
                            note=f" · {what}"), request)


def build(d: dict, page_banner) -> None:
    gr.Markdown("The studies of the research deck this studio grew from. Each runs small by default so "
                "that a CPU finishes it in minutes; raise size and iterations for finer results. Cells are "
                "shown enlarged without smoothing; their real size is in each caption.")
    with tab_columns("explore_", "Run study") as cols:
        with cols.controls:
            study = gr.Dropdown([(s.title, s.name) for s in STUDIES.values()], value="content_weight",
                                label="Study")
            with gr.Row():
                size = checked(gr.Slider(32, 512, value=d["size"], step=16, label="Size (px)"))
                iterations = checked(gr.Slider(10, 1000, value=d["iterations"], step=10,
                                               label="Iterations per cell"))
            with gr.Row():
                content = ImageUpload(label="Content (default: the bundled example)", type="filepath", height=160,
                                      elem_id="explore_content")
                style = ImageUpload(label="Style (default: the bundled example)", type="filepath", height=160,
                                    elem_id="explore_style")
        with cols.pane:
            gallery = gr.Gallery(label="Results", columns=3, height=RESULT_HEIGHT, format="png",
                                 elem_id="explore_grid", object_fit="contain", preview=False)
    curves = gr.Plot(label="Loss curves")
    wire(cols, run_explore, [study, content, style, size, iterations], [gallery, curves, cols.progress],
         "explore", "explore", page_banner)
