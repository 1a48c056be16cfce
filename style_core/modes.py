"""The modes as data, and one way to follow a run: what both front ends (the CLI, the studio) use.

A `Mode` says how its settings are made from values by name (over the one defaults table,
defaults.py, and a device's row of it), how its run starts from loaded inputs, what it keeps in a
job folder and how that is named, and how a finished run is summed up in a line. `follow(events,
stop)` turns any mode's events into `View`s: the line, the bar's fraction, the time left, the
picture; and ends the run at the next event once `stop` is set, with a view that says so. The CLI
renders views with tqdm, the studio in its status line: the words are the same.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from .defaults import mode_defaults
from .events import Event
from .jobs import fingerprint
from .settings import ImageSettings, from_values


@dataclass(frozen=True)
class Mode:
    """One mode of the library. `settings_class` holds the mode's own knobs and, except for image
    mode, an `image` field of image settings made by `image_make` (its defaults' rules) less `skip`
    (a field the mode's own class takes: large mode's `size`). `start(content, styles, settings,
    weights, **context)` is the run's generator of events (context: regions, job, resume, backend,
    output). A mode that `keeps` finished units (tiles, frames) in a job folder names its `pieces`;
    one that writes its own output lists the `formats` it writes; `regions` says whether it takes
    them."""
    name: str
    settings_class: type
    start: Callable[..., Iterator[Event]]
    summary: Callable[[Any], str]
    image_make: Callable[..., ImageSettings] | None = None
    skip: tuple[str, ...] = ()
    keeps: str | None = None
    pieces: tuple = ()
    formats: tuple[str, ...] | None = None
    regions: bool = False

    def settings(self, values: Mapping, device: str | None = None, **given):
        """The mode's settings from `values` by name (those of another mode or of no settings are
        left), over its defaults and, where `device` (a JAX backend) is given, that device's sizes
        and iterations; `given` go to the image settings (e.g. the studio's preview rate)."""
        values = {**(mode_defaults(self.name, device) if device else {}), **values}
        if self.settings_class is ImageSettings:
            return from_values(ImageSettings, values, **given)
        image = from_values(ImageSettings, values, skip=self.skip, make=self.image_make, **given)
        return from_values(self.settings_class, values, image=image)

    def job_key(self, images: Sequence[np.ndarray], settings, weights, files: Sequence = ()) -> str:
        """The name of a job's folder: the same inputs, settings and weights continue the same job."""
        return fingerprint(images, settings, weights, files=files)[:20]


def _image_summary(r) -> str:
    return (f"{r.iterations} steps ({r.evaluations} evaluations), {r.seconds:.1f} s; "
            + ", ".join(f"{k} {v:.4g}" for k, v in r.final_losses.items()))


def _large_summary(r) -> str:
    return (f"{r.image.shape[1]}x{r.image.shape[0]}, {len(r.layout)} tiles"
            + (f", {r.tiles_resumed} resumed" if r.tiles_resumed else "") + f", {r.seconds:.1f} s" + where(r))


def _photo_summary(r) -> str:
    return (f"{sum(s.iterations for s in r.stages)} steps, {r.seconds:.1f} s; affine residual "
            f"{r.metrics['affine_residual']:.4f}, edge SSIM {r.metrics['edge_ssim']:.3f}")


def _video_summary(r) -> str:
    return (f"{r.frames} frames at {float(r.fps):g} fps" + (f", {r.frames_resumed} resumed" if r.frames_resumed else "")
            + f", {r.seconds:.1f} s; E_warp {r.warping_error:.3g}, later frames "
              f"{r.mean_later_iterations:.1f} steps on average" + where(r))


def ran_on(places) -> str:
    """Where a job's units ran (their `where`s), when that was not here: "on ray: 1 node, 2 workers, 9
    tasks, 0 retries"; "" for here."""
    from .cluster import said, summary
    ran = summary(places)
    return said(ran) if ran.get("backend", "local") != "local" else ""


def where(result) -> str:
    """A summary line's "; on ray: ..." for a job's result, when its units ran elsewhere."""
    ran = ran_on(result.units)
    return f"; {ran}" if ran else ""


def _modes() -> dict[str, Mode]:
    from . import large, photo, transfer, video   # their runs looked up when they start (tests replace them)
    from .videoio import VIDEO_FORMATS
    return {
        "image": Mode("image", ImageSettings,
                      lambda content, styles, settings, weights, regions=(), **_: transfer.stylize(
                          content, styles, settings, weights, regions=regions),
                      _image_summary, regions=True),
        "large": Mode("large", large.LargeSettings,
                      lambda content, styles, settings, weights, job=None, resume=False, regions=(), backend=None,
                      **_: large.stylize_large(content, styles, settings, weights, job=job, resume=resume,
                                               regions=regions, backend=backend),
                      _large_summary, skip=("size",), keeps="tiles", pieces=large.PIECES, regions=True),
        "photo": Mode("photo", photo.PhotoSettings,
                      lambda content, styles, settings, weights, regions=(), **_: photo.stylize_photo(
                          content, styles, settings, weights, regions=regions),
                      _photo_summary, image_make=photo.photo_image_settings, regions=True),
        "video": Mode("video", video.VideoSettings,
                      lambda content, styles, settings, weights, output=None, job=None, resume=False, backend=None,
                      **_: video.stylize_video(content, styles, settings, weights, output, job=job, resume=resume,
                                         backend=backend),
                      _video_summary, image_make=video.video_image_settings, keeps="frames", pieces=video.PIECES,
                      formats=VIDEO_FORMATS),
    }


class _Modes(Mapping):
    """MODES: made on first use (the modes' modules import JAX and the backbones)."""
    _made: dict | None = None

    def _all(self) -> dict:
        if _Modes._made is None:
            _Modes._made = _modes()
        return _Modes._made

    def __getitem__(self, name: str) -> Mode:
        return self._all()[name]

    def __iter__(self):
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


MODES: Mapping[str, Mode] = _Modes()


# --- following a run ------------------------------------------------------------------------------

ESTIMATING = "estimating…"


def clock(seconds: float | None) -> str:
    """'42 s', '3 min 05 s'; '?' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(seconds))
    return f"{seconds} s" if seconds < 90 else f"{seconds // 60} min {seconds % 60:02d} s"


def progress_line(head: str, loss: float | None = None, rate: float | None = None, unit: str = "",
                  left: float | str | None = None) -> str:
    """'head · loss L · R unit · T left', each part where it is known; `left` a text (ESTIMATING) or
    seconds."""
    return (head + (f" · loss {loss:.4g}" if loss is not None else "") + (f" · {rate:.1f} {unit}" if rate else "")
            + (f" · {left}" if isinstance(left, str) else f" · {clock(left)} left" if left is not None else ""))


class Pace:
    """A rate from a run's own clock, measured from the first report on (so that compiling does not
    count as slow units)."""

    def __init__(self, now: Callable[[], float] = time.perf_counter):
        self.now, self.started, self.base = now, now(), None

    @property
    def seconds(self) -> float:
        return self.now() - self.started

    def rate(self, done: float, per: float = 1.0) -> float | None:
        """`done` per `per` seconds (60: per minute)."""
        now = self.now()
        if self.base is None:
            self.base = (now, done)
            return None
        t0, d0 = self.base
        return (done - d0) / (now - t0) * per if done > d0 and now > t0 else None

    def left(self, done: float, total: float) -> float | None:
        rate = self.rate(done)
        return (total - done) / rate if rate else None


@dataclass(frozen=True)
class View:
    """What a front end shows of a run at one event: `line` (the words, the same in the CLI and the
    studio), `fraction` of the bar (None: busy, no measure yet), `preview` (the picture, when it
    changed); the last view is `stopped` (after `stop` was set: the generator is closed) or holds the
    `result`."""
    event: Event
    line: str
    fraction: float | None
    seconds: float
    stopped: bool = False

    @property
    def preview(self) -> np.ndarray | None:
        return self.event.preview

    @property
    def result(self):
        return self.event.result

    @property
    def postfix(self) -> dict[str, str]:
        """Where the run is within its unit, and its loss: what a terminal's bar shows beside its count."""
        event = self.event
        shown = {"scale": "{}/{}".format(*event.scale) if event.scale and event.scale[1] > 1 else None,
                 "chunk": "{}/{}".format(*event.part) if event.part and event.unit == "frame" else None,
                 "step": f"{event.step}/{event.steps}" if event.unit != "step" else None,
                 "frames_per_min": f"{event.rate:.1f}" if event.rate else None,
                 "loss": f"{event.losses['total']:.4g}" if "total" in event.losses else None}
        return {k: v for k, v in shown.items() if v is not None}


def _left(event: Event) -> float | str:
    return ESTIMATING if event.eta is None else event.eta


class _Lines:
    """The line and fraction of each event, by its stage; `parts` name the parts of a run in parts
    (`in_parts`)."""

    def __init__(self, parts: Sequence[str], now: Callable[[], float]):
        self.parts, self.pace, self.units = parts, Pace(now), Pace(now)

    def __call__(self, event: Event) -> tuple[str, float | None]:
        done, total = event.completed, event.total
        if event.unit == "cell":   # a study's: a cell just finished, or a chunk of the one at work
            if event.item is not None:
                return f"{done} of {total} cells", done / max(total, 1)
            within = done + event.step / max(event.steps, 1)
            return (progress_line(f"Cell {done + 1} of {total}: step {event.step} of {event.steps}",
                                  rate=self.units.rate(done, 60), unit="cells/min",
                                  left=self.units.left(within, total)),
                    within / max(total, 1))
        if event.stage == "style targets":
            return "Measuring the style at the output's scale…", None
        if event.stage == "global pass":
            return (progress_line(f"Global pass: step {event.step} of {event.steps}", event.losses.get("total"),
                                  self.pace.rate(event.step), "steps/s",
                                  f"{ESTIMATING[:-1]} (the pass)" if event.eta is None else
                                  f"{clock(event.eta)} left in the pass, then {event.total} tiles"),
                    event.step / max(event.steps, 1) * 0.1)
        if event.unit == "tile":
            return (progress_line(f"Tile {min(done + 1, total)} of {total}: step {event.step} of {event.steps}",
                                  event.losses.get("total"), self.units.rate(done, 60), "tiles/min", _left(event)),
                    0.1 + 0.9 * (done + event.step / max(event.steps, 1)) / max(total, 1))
        if event.stage == "assembling":
            return f"Writing the video ({total} frames)…", done / max(total, 1)
        if event.unit == "frame":   # the rate from the frames stylised after the first (resumed ones not counted)
            return (progress_line(f"Frame {min(done + 1, total)} of {total}: step {event.step}", rate=event.rate,
                                  unit="frames/min", left=_left(event)), done / max(total, 1))
        label = "Step"
        if event.part and self.parts:
            label = f"{self.parts[event.part[0] - 1]} ({event.part[0]} of {event.part[1]}): step"
        h, w = event.shape
        index, scales = event.scale
        scale = f" (scale {index} of {scales}, {w}x{h} px)" if scales > 1 else f" ({w}x{h} px)"
        if event.stage == "compiling":
            return (f"{label} {done} of {total}{scale}: preparing: the style's statistics, and XLA compiles each "
                    f"new size once…", done / max(total, 1))
        return (progress_line(f"{label} {done} of {total}{scale}", event.losses.get("total"), self.pace.rate(done),
                              "steps/s", _left(event)), done / max(total, 1))


def _finishing(event: Event) -> bool:
    """A tile at its last step is being kept: a stop waits for it (a job resumes from kept tiles)."""
    return event.unit == "tile" and event.stage == "tiles" and bool(event.steps) and event.step >= event.steps \
        and event.preview is None


def stopped_line(event: Event, seconds: float) -> str:
    """'**Stopped after 40 of 300 steps** (12 s).'"""
    return f"**Stopped after {event.completed} of {event.total} {event.unit}s** ({clock(seconds)})."


def follow(events: Iterator[Event], stop=None, parts: Sequence[str] = (),
           now: Callable[[], float] = time.perf_counter) -> Iterator[View]:
    """The views of a run's `events`, one per event. Once `stop` (a threading.Event) is set, the run
    ends at its next event (a finishing tile first), closing the generator, and the last view is
    `stopped`; else the last holds the result."""
    lines, events = _Lines(parts, now), iter(events)
    for event in events:
        if event.done:
            yield View(event, "", 1.0, lines.pace.seconds)
            return
        line, fraction = lines(event)
        yield View(event, line, fraction, lines.pace.seconds)
        if stop is not None and stop.is_set() and not _finishing(event):
            events.close()
            yield View(dataclasses.replace(event, preview=None), stopped_line(event, lines.pace.seconds), fraction,
                       lines.pace.seconds, stopped=True)
            return


class Parts:
    """Runs one after another as one run in parts (photo mode's plain stylisation, then its
    photorealistic one, for a comparison): their events renumbered over the whole (`part` says
    which), the last event the last run's; `results` keeps every run's result."""

    def __init__(self, runs: Iterable[Iterator[Event]], planned: Sequence[int]):
        self.runs, self.planned, self.results = list(runs), list(planned), []

    def __iter__(self) -> Iterator[Event]:
        offset, count = 0, len(self.runs)
        for index, events in enumerate(self.runs):
            try:
                for event in events:
                    if event.done:
                        self.results.append(event.result)
                        if index == count - 1:
                            yield event
                        break
                    self.planned[index] = event.total
                    yield dataclasses.replace(event, completed=offset + event.completed,
                                              total=offset + sum(self.planned[index:]), part=(index + 1, count))
            finally:
                events.close()
            offset += self.results[-1].iterations if self.results else 0
