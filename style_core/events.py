"""What every mode yields while it runs, and what it hands back at the end.

Every mode (`stylize`, `stylize_photo`, `stylize_large`, `stylize_video`) is a generator of `Event`s,
so a front end has one loop: `completed` of `total` units (`unit`: steps, tiles or frames) are done,
`step` of `steps` within the pass at work (a scale, the global pass, a tile, a frame), and the last
event carries the mode's `Result`. Closing the generator stops the work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

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
    stage: str                              # what runs: "steps", "style targets", "global pass",
                                            # "tiles", "frames", "assembling", "done"
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
    result: Result | None = field(default=None, repr=False)       # set on the last event

    @property
    def done(self) -> bool:
        return self.result is not None
