"""The research deck's studies, as data plus one runner.

A study is a list of labelled cells, each an `ImageSettings`; `run_study` stylises the same inputs
with every cell's settings and yields each cell as soon as it is done, so a front end can show a
growing grid. The deck ran 2000 iterations per cell; here `size` and `iterations` are parameters so that
a CPU finishes a whole study in minutes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator

import numpy as np

from . import cluster
from .defaults import MODE_DEFAULTS
from .errors import StyleError
from .settings import OPTIMIZERS, ImageSettings
from .events import Event
from .transfer import stylize
from .weights import Weights


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    what: str                                   # what the study shows, in one sentence
    cells: Callable[[ImageSettings], list[tuple[str, ImageSettings]]]


def _content_layers(base: ImageSettings) -> list[tuple[str, ImageSettings]]:
    layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1") if base.backbone.startswith(
        "vgg") else ("conv1", "block1_0", "block2_0", "block3_0", "block4_0")
    return [(layer, base.replace(content_layers=layer, style_weight=0.0, init="noise")) for layer in layers]


def _style_layers(base: ImageSettings) -> list[tuple[str, ImageSettings]]:
    names = {"paper": "paper: relu1_1 … relu5_1", "first5": "first5: conv1_1 … conv3_1"}
    return [(names[preset], base.replace(style_layers=preset, content_weight=0.0, init="noise"))
            for preset in ("paper", "first5")]


# The sweeps span the trained network's range around the defaults (relative normalisation, style 1,
# content 1; bench/LOG.md 22): from the photo barely touched to the painting repainted. The deck's
# 1-1e5 and 1-1e8 were for its "paper" weights (style 1e5), which on a trained network all repaint.
CONTENT_WEIGHTS = (0.01, 0.1, 1, 10, 100, 1000)
STYLE_WEIGHTS = (0.001, 0.01, 0.1, 1, 10, 100, 1000)


def _content_weights(base: ImageSettings) -> list[tuple[str, ImageSettings]]:
    return [(f"content weight {w:g}", base.replace(content_weight=w)) for w in CONTENT_WEIGHTS]


def _style_weights(base: ImageSettings) -> list[tuple[str, ImageSettings]]:
    return [(f"style weight {w:g}", base.replace(style_weight=w)) for w in STYLE_WEIGHTS]


def _optimizers(base: ImageSettings) -> list[tuple[str, ImageSettings]]:
    names = sorted(OPTIMIZERS, key=lambda name: (OPTIMIZERS[name].line_search, name))   # the deck's order
    return [(f"{name} {lr:g}", base.replace(optimizer=name, lr=lr)) for lr in (1e-2, 1e-3) for name in names]


def _losses(base: ImageSettings) -> list[tuple[str, ImageSettings]]:
    return [(name, base.replace(loss=name)) for name in ("huber", "l1", "mse", "smooth_l1")]


def _backbones(base: ImageSettings) -> list[tuple[str, ImageSettings]]:
    return [(name, base.replace(backbone=name)) for name in ("resnet18", "resnet34", "resnet50", "vgg16", "vgg19")]


STUDIES = {s.name: s for s in [
    Study("content_layers", "What each layer keeps of the content",
          "Reconstruct the content from noise with one content layer and no style loss.", _content_layers),
    Study("style_layers", "Style from two layer sets",
          "Synthesise the style from noise with no content loss, from the paper's layers and from the "
          "first five convolutions.", _style_layers),
    Study("content_weight", "Content weight sweep",
          f"Fixed style weight, content weight from {CONTENT_WEIGHTS[0]:g} to {CONTENT_WEIGHTS[-1]:g}.",
          _content_weights),
    Study("style_weight", "Style weight sweep",
          f"Content weight 1, style weight from {STYLE_WEIGHTS[0]:g} to {STYLE_WEIGHTS[-1]:g}.", _style_weights),
    Study("optimizer", "Optimizers",
          "Every optimizer (first-order ones, then L-BFGS) at learning rates 1e-2 and 1e-3.", _optimizers),
    Study("loss", "Loss kinds",
          "MSE, L1, Huber and smooth-L1 as the penalty of both losses (Huber with delta 1 and smooth-L1 "
          "with beta 1 are the same function).", _losses),
    Study("backbone", "Backbones",
          "The same transfer through ResNet18/34/50, VGG16 and VGG19 features.", _backbones),
]}


def study_settings(size: int = 128, iterations: int = 100, **overrides) -> ImageSettings:
    """The base settings of the studies: the deck's (content init, Adam 1e-2, content 1) with image
    mode's normalisation and style weight (the deck's 1e5 was for random-valued "paper" terms)."""
    return ImageSettings(**{**MODE_DEFAULTS["explore"], "size": size, "iterations": iterations, **overrides})


@dataclass(frozen=True)
class Cell:
    index: int
    count: int
    label: str
    image: np.ndarray
    losses: list[float]            # total loss at each recorded step
    steps: list[int]
    stop_reason: str
    seconds: float
    where: dict = field(default_factory=dict)   # where it ran (`cluster.Finished.where`)


@dataclass(frozen=True)
class StudyResult:
    """A finished (or stopped) study: its cells in the study's order."""
    name: str
    cells: tuple[Cell, ...]
    seconds: float
    weights_source: str
    trained_weights: bool
    stop_reason: str = "finished"

    def report(self) -> dict:
        return {"study": self.name, "seconds": self.seconds, "weights": self.weights_source,
                "cells": [{"label": c.label, "final_loss": c.losses[-1] if c.losses else None,
                           "stop_reason": c.stop_reason, "seconds": c.seconds, "where": c.where}
                          for c in self.cells]}


def run_study(name: str, content: np.ndarray, style: np.ndarray, base: ImageSettings,
              weights_for: Callable[[str], Weights], *, progress: bool = False,
              backend: cluster.Local | cluster.RayCluster | None = None) -> Iterator[Event]:
    """Runs every cell of study `name`: an event (unit "cell") as each finishes, holding it as `item`,
    and a last one with the `StudyResult`.

    `weights_for(backbone)` supplies the weights (the backbone study needs five), each asked for once
    before the first cell. With `progress`, each compiled chunk of the cell at work is an event too
    (`step` of `steps` within it), so that a front end can report within a cell and stop the study
    between two chunks by closing the generator. `backend` (`cluster.py`) runs the cells: here, one
    after another, by default; on a Ray cluster, a task per cell, each yielded as it finishes (in any
    order: a cell's `index` says where it goes), without progress within a cell.
    """
    if name not in STUDIES:
        raise StyleError(f"unknown study {name!r}; choose one of {', '.join(STUDIES)}")
    started = time.perf_counter()
    cells = STUDIES[name].cells(base)
    weights = {b: weights_for(b) for b in dict.fromkeys(settings.backbone for _, settings in cells)}
    items = [(index, len(cells), label, settings) for index, (label, settings) in enumerate(cells)]
    done, count = [], len(cells)
    for update in (backend or cluster.Local()).run(cell_work, (content, style, weights), items):
        if isinstance(update, cluster.Finished):
            done.append(replace(update.value, where=update.where))
            yield Event("cells", len(done), count, "cell", seconds=time.perf_counter() - started, item=done[-1])
        elif progress:
            event = update.value
            yield Event(event.stage, len(done), count, "cell", event.losses, time.perf_counter() - started,
                        step=event.completed, steps=event.total, shape=event.shape)
    result = StudyResult(name, tuple(sorted(done, key=lambda c: c.index)), time.perf_counter() - started,
                         ", ".join(dict.fromkeys(w.source for w in weights.values())),
                         all(w.trained for w in weights.values()))
    yield Event("done", count, count, "cell", seconds=result.seconds, result=result)


def cell_work(shared: tuple, item: tuple, device=None):
    """A cluster unit: one cell of a study (`item`: index, count, label, settings) on the shared
    (content, style, weights by backbone); yields its progress, returns the `Cell`."""
    content, style, weights = shared
    index, count, label, settings = item
    for event in stylize(content, [style], settings, weights[settings.backbone]):
        if event.result is None:
            yield event
    result = event.result
    steps, losses = result.loss_curve()
    return Cell(index, count, label, result.image, losses, steps, result.stop_reason, result.seconds)
