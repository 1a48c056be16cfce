"""The modes as data (style_core/modes.py) and regions from any one source (regions.regions_from):
what both front ends use, tested on fake events and small arrays (no network, no compiling)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from style_core import ImageSettings, StyleError
from style_core.defaults import DEVICE_DEFAULTS, MODE_DEFAULTS, mode_defaults
from style_core.events import Event
from style_core.large import LargeSettings
from style_core.modes import MODES, Parts, follow
from style_core.photo import PhotoSettings, photo_image_settings
from style_core.regions import PALETTE, regions_from
from style_core.video import VideoSettings, video_image_settings


class Closable:
    """A mode's events, recording how far they were taken and whether they were closed."""

    def __init__(self, events):
        self.events, self.taken, self.closed = list(events), 0, False

    def __iter__(self):
        return self

    def __next__(self):
        if self.closed or self.taken == len(self.events):
            raise StopIteration
        self.taken += 1
        return self.events[self.taken - 1]

    def close(self):
        self.closed = True


class Result:
    iterations = 4


def steps(n, total=None, **more):
    return [Event("steps", k, total or n, "step", {"total": 1.0 / (k + 1)}, step=k, steps=n, shape=(48, 64),
                  scale=(1, 1), **more) for k in range(1, n + 1)]


def test_follow_shows_every_event_then_the_result():
    events = Closable([*steps(3), Event("done", 3, 3, "step", result=Result())])
    views = list(follow(events))
    assert [v.line.split(" ·")[0] for v in views[:3]] == [f"Step {k} of 3 (64x48 px)" for k in (1, 2, 3)]
    assert [v.fraction for v in views[:3]] == pytest.approx([1 / 3, 2 / 3, 1])
    assert "loss 0.5" in views[0].line and "estimating" in views[0].line
    assert isinstance(views[-1].result, Result) and not any(v.stopped for v in views)


def test_a_stop_ends_the_run_at_the_next_event_and_closes_it():
    stop = threading.Event()
    events = Closable(steps(10))
    views = []
    for view in follow(events, stop):
        views.append(view)
        if len(views) == 2:
            stop.set()
    assert events.closed and events.taken == 2
    assert views[-1].stopped and views[-1].result is None and views[-1].preview is None
    assert views[-1].line.startswith("**Stopped after 2 of 10 steps**")


def test_a_stop_waits_for_a_finishing_tile():
    """A tile at its last step is being kept (large mode resumes from kept tiles): Stop waits for the
    event after it."""
    tile = dict(unit="tile", shape=(256, 256))
    events = Closable([Event("tiles", 0, 4, step=10, steps=10, **tile),
                       Event("tiles", 1, 4, step=0, steps=10, preview=np.zeros((2, 2, 3)), **tile),
                       Event("tiles", 1, 4, step=5, steps=10, **tile)])
    stop = threading.Event()
    stop.set()
    views = list(follow(events, stop))
    assert [v.stopped for v in views] == [False, False, True] and events.taken == 2
    assert views[0].line.startswith("Tile 1 of 4: step 10 of 10")
    assert views[-1].line.startswith("**Stopped after 1 of 4 tiles**")


def test_the_lines_of_every_unit():
    frame = Event("frames", 2, 12, "frame", step=7, rate=3.0, eta=42.0)
    cell = Event("steps", 1, 7, "cell", step=20, steps=40)
    done_cell = Event("cells", 2, 7, "cell", item=object())
    target = Event("style targets", 0, 4, "tile")
    views = list(follow([frame, cell, done_cell, target]))
    assert views[0].line == "Frame 3 of 12: step 7 · 3.0 frames/min · 42 s left"
    assert views[0].postfix == {"step": "7/0", "frames_per_min": "3.0"}
    assert views[1].line.startswith("Cell 2 of 7: step 20 of 40") and views[1].fraction == pytest.approx(1.5 / 7)
    assert views[2].line == "2 of 7 cells"
    assert views[3].line == "Measuring the style at the output's scale…" and views[3].fraction is None


def test_parts_run_one_after_another_as_one_run():
    first = Closable([*steps(4), Event("done", 4, 4, "step", result=Result())])
    second = Closable([*steps(2, total=2), Event("done", 2, 2, "step", result="photo")])
    parts = Parts([first, second], [4, 4])
    views = list(follow(parts, parts=("Plain stylisation", "Photorealistic")))
    assert [(v.event.completed, v.event.total, v.event.part) for v in views[:-1]] == [
        (1, 8, (1, 2)), (2, 8, (1, 2)), (3, 8, (1, 2)), (4, 8, (1, 2)), (5, 6, (2, 2)), (6, 6, (2, 2))]
    assert views[0].line.startswith("Plain stylisation (1 of 2): step 1 of 8")
    assert views[4].line.startswith("Photorealistic (2 of 2): step 5 of 6")
    assert views[-1].result == "photo" and isinstance(parts.results[0], Result) and first.closed


@pytest.mark.parametrize("device", [None, "cpu", "gpu"])
def test_every_modes_settings_are_its_defaults_over_the_fields(device):
    """The one defaults table, read by each mode, against the settings built by hand from the fields'
    defaults, each mode's rules (photo_image_settings, video_image_settings) and the device's row."""
    d = {m: DEVICE_DEFAULTS[device][m] if device else {} for m in MODE_DEFAULTS}
    image = {k: v for k, v in d["large"].items() if k == "iterations"}
    expected = {
        "image": ImageSettings(**d["image"]),
        "large": LargeSettings(**{k: v for k, v in d["large"].items() if k != "iterations"},
                               image=ImageSettings(**image)),
        "photo": PhotoSettings(image=photo_image_settings(**d["photo"])),
        "video": VideoSettings(**{k: v for k, v in d["video"].items() if k in ("max_frames", "frame_iterations")},
                               image=video_image_settings(**{k: v for k, v in d["video"].items()
                                                             if k in ("size", "iterations")}))}
    for name, settings in expected.items():
        assert MODES[name].settings({}, device) == settings, name
    assert mode_defaults("video")["tol"] == 1e-3 and MODES["video"].settings({}).image.tol == 1e-3


def test_a_value_by_name_reaches_the_modes_own_settings_or_its_image_settings():
    large = MODES["large"].settings({"size": 3000, "iterations": 7, "tile": 300, "nonsense": 1})
    assert (large.size, large.tile, large.image.iterations) == (3000, 300, 7)
    assert large.image.size == large.base_size        # the output's size is not the image settings'
    with pytest.raises(StyleError, match="tile"):
        MODES["large"].settings({"tile": 0})


def rgba(h, w, colour, cols):
    layer = np.zeros((h, w, 4), np.uint8)
    layer[:, cols] = (*PALETTE[colour], 255)
    return layer


def test_regions_from_each_source_with_names_and_colours():
    painted = regions_from(2, painting=[rgba(4, 8, "red", slice(0, 4)), rgba(4, 8, "blue", slice(4, 8))])
    assert painted.names == ("red", "blue") and painted.colours == (PALETTE["red"], PALETTE["blue"])
    assert [r.style for r in painted.regions] == [0, 1] and painted.regions[0].mask[:, :4].min() == 1
    left = np.zeros((4, 8), np.float32)
    left[:, :4] = 1
    masked = regions_from(2, masks=[left, 1 - left])
    assert [r.style for r in masked.regions] == [0, 1] and masked.names == ("red", "blue")
    labels = np.zeros((4, 8, 3), np.float32)
    labels[:, 4:] = (0, 0, 1)
    found = regions_from(1, content_labels=labels, style_labels=[labels])
    assert found.names == ("#000000", "#0000ff") and found.colours == ((0, 0, 0), (0, 0, 255))
    assert not regions_from(3) and regions_from(3).regions == ()


@pytest.mark.parametrize("given, message", [
    (dict(painting=[rgba(4, 8, "red", slice(0, 4))], masks=[np.ones((4, 8))]),
     "regions come from one source at a time, not from a painting and `masks`: use one"),
    (dict(masks=[np.ones((4, 8))], content_labels=np.zeros((4, 8, 3))),
     "not from `masks` and label images"),
    (dict(content_labels=np.zeros((4, 8, 3))), "`content_labels` and `style_labels` go together: give both"),
    (dict(painting=[rgba(4, 8, "red", slice(0, 4))], shape=(40, 40)),
     "the painting is 8x4 px but the content image is 40x40"),
    (dict(masks=[np.ones((4, 8))], blend=(1.0,)), "`style_blend` does not apply with masks"),
])
def test_regions_from_refuses_in_one_line(given, message):
    with pytest.raises(StyleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        regions_from(1, **given)
