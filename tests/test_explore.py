"""Every study of the research deck produces its labelled grid (tiny sizes, generated weights)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from style_core.errors import StyleError
from style_core.explore import STUDIES, run_study, study_settings
from style_core.events import Event
from style_core.weights import load_weights

EXPECTED = {
    "content_layers": ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"],
    "style_layers": ["paper: relu1_1 … relu5_1", "first5: conv1_1 … conv3_1"],
    "content_weight": [f"content weight {w}" for w in ("0.01", "0.1", "1", "10", "100", "1000")],
    "style_weight": [f"style weight {w}" for w in ("0.001", "0.01", "0.1", "1", "10", "100", "1000")],
    "optimizer": [f"{o} {lr}" for lr in ("0.01", "0.001") for o in ("adagrad", "adam", "rmsprop", "sgd", "lbfgs")],
    "loss": ["huber", "l1", "mse", "smooth_l1"],
    "backbone": ["resnet18", "resnet34", "resnet50", "vgg16", "vgg19"],
}


@pytest.mark.parametrize("name", list(STUDIES))
def test_every_study_produces_its_grid(name, weight_files, rng_images):
    content, style = rng_images
    weights_for = functools.lru_cache()(lambda backbone: load_weights(backbone, weight_files(backbone)))
    events = list(run_study(name, content, style, study_settings(size=48, iterations=3), weights_for))
    cells = [e.item for e in events if e.item is not None]
    assert [c.index for c in events[-1].result.cells] == list(range(len(cells)))
    assert [c.label for c in cells] == EXPECTED[name]
    assert [c.index for c in cells] == list(range(len(cells))) and cells[0].count == len(cells)
    for cell in cells:
        assert cell.image.shape == (40, 48, 3) and np.all(np.isfinite(cell.image))
        assert cell.losses and cell.steps[-1] == 3


def test_the_studies_keep_the_decks_settings_with_image_modes_weights():
    from style_core.settings import ImageSettings
    base = study_settings()
    assert (base.optimizer, base.lr, base.content_weight, base.init) == ("adam", 0.01, 1.0, "content")
    assert (base.normalization, base.style_weight) == (ImageSettings().normalization, ImageSettings().style_weight)
    content = dict(STUDIES["content_layers"].cells(base))["relu3_1"]
    assert content.style_weight == 0 and content.init == "noise" and content.content_layers == ("relu3_1",)
    first5 = dict(STUDIES["style_layers"].cells(base))["first5: conv1_1 … conv3_1"]
    assert first5.content_weight == 0 and first5.style_layers[0] == "conv1_1"
    resnet = dict(STUDIES["backbone"].cells(base))["resnet50"]
    assert resnet.style_layers == ("conv1", "block1_0", "block2_0", "block3_0", "block4_0")


def test_unknown_study():
    with pytest.raises(StyleError, match="unknown study 'colours'; choose one of content_layers"):
        list(run_study("colours", None, None, study_settings(), None))


def test_a_study_reports_within_a_cell_and_stops_when_closed(vgg19_weights, rng_images):
    """With progress=True the first event comes before the first cell's compilation (its starting
    picture), and the first step's after one compiled chunk of it, not after the whole cell, so closing
    the generator there stops the study within a chunk."""
    content, style = rng_images
    events = run_study("loss", content, style, study_settings(size=48, iterations=400),
                       lambda backbone: vgg19_weights, progress=True)
    first = next(events)
    assert isinstance(first, Event) and first.stage == "compiling" and first.completed == 0
    stepped = next(e for e in events if e.stage == "steps")
    assert 0 < stepped.step < 400 and stepped.completed == 0 and stepped.unit == "cell"
    events.close()
    assert next(events, None) is None
