"""What every mode yields while it runs, and what it hands back at the end.

Every mode (`stylize`, `stylize_photo`, `stylize_large`, `stylize_video`) is a generator of `Event`s,
so a front end has one loop: `completed` of `total` units (`unit`: steps, tiles or frames) are done,
`step` of `steps` within the pass at work (a scale, the global pass, a tile, a frame, a study's cell), and the last
event carries the mode's `Result`. Closing the generator stops the work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np


class Result(Protocol):
    """What every mode's result holds (each adds its own: the image, tiles, frames, stages)."""
    seconds: float
    stop_reason: str                        # "finished", "converged", or why the run ended otherwise
    weights_source: str
    trained_weights: bool

    def report(self) -> dict:
        """Everything a run's JSON report holds."""


@dataclass(frozen=True)
class Event:
    stage: str                              # what runs: "compiling" (a pass's set-up: targets, XLA),
                                            # "steps", "style targets", "global pass", "tiles",
                                            # "frames", "assembling", "done"
    completed: int                          # units done over the whole job
    total: int                              # units planned
    unit: str                               # "step", "tile" or "frame"
    losses: Mapping[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    step: int = 0                           # step within the pass at work
    steps: int = 0                          # steps planned for it
    shape: tuple[int, int] | None = None    # (H, W) being painted: the scale's, or the output's
    scale: tuple[int, int] | None = None    # (1-based scale, scales) of coarse-to-fine
    part: tuple[int, int] | None = None     # (1-based chunk, chunks) of a video
    layout: tuple[Any, ...] = ()            # large mode's tiles
    rate: float | None = None               # units per minute so far (resumed ones not counted)
    eta: float | None = None                # seconds left, once known
    preview: np.ndarray | None = field(default=None, repr=False)  # the current picture, when it changed
    item: Any = field(default=None, repr=False)                   # a unit just finished that a front end
                                                                  # shows as it comes (a study's cell)
    result: Result | None = field(default=None, repr=False)       # set on the last event

    @property
    def done(self) -> bool:
        return self.result is not None


class PassClock:
    """Seconds left in a coarse-to-fine run, from this run's own measurements only.

    `passes`: (pixels, steps) of each pass. The pass at work is timed from its second report on (its
    first comes after compiling and one chunk, which would read as slow steps), over the later half
    of what it has done (L-BFGS's steps grow dearer as its line searches lengthen: an average from
    the start ran a third short); later passes are costed at that rate scaled by their pixels, each
    with this pass's set-up time (targets, compiling, the first chunk) again. `None` until the pass
    at work has a rate: a front end says "estimating".
    """

    def __init__(self, passes: Sequence[tuple[int, int]], clock: Callable[[], float] = time.perf_counter):
        self.passes, self.clock = list(passes), clock
        self.index, self.began, self.seen, self.setup = 0, clock(), [], 0.0

    def begin(self, index: int) -> None:
        """Pass `index` (0-based) starts now."""
        self.index, self.began, self.seen = index, self.clock(), []

    def left(self, step: int) -> float | None:
        """Seconds left after `step` steps of the pass at work, or None while it has no rate."""
        now = self.clock()
        if not self.seen:
            self.setup = now - self.began
        self.seen.append((now, step))
        middle = (self.seen[0][1] + step) / 2
        t0, s0 = [(t, s) for t, s in self.seen if s <= middle][-1]   # from the later half's start
        if step <= s0 or now <= t0:
            return None
        per_step = (now - t0) / (step - s0)
        pixels, steps = self.passes[self.index]
        later = sum(n * per_step * p / pixels + self.setup for p, n in self.passes[self.index + 1:])
        return max(steps - step, 0) * per_step + later
