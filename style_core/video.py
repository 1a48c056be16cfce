"""Video mode: frame-by-frame transfer with a temporal loss along optical flow (Ruder et al. 2016).

For frame t > 0 of a chunk, the previous stylised frame is warped into frame t with the flow of the
*input* frames (DIS, `flow.py`; Lanczos, which keeps its texture sharp), and

    L_temporal = mean(c * (x_t - w(x_{t-1}))^2)

joins image mode's loss, c masking pixels that are occluded, on motion boundaries or come from
outside the frame (forward-backward check). The warped frame also initialises x_t, so later frames
start close to their answer and stop early on the relative tolerance. `temporal="plain"` is the
research deck's version: no warp, no mask. `long_term=k` adds the same term against frame t-k.

A clip can be cut into overlapping chunks (the deck's proposal): each chunk is an independent job
whose first frame gets the full budget; their overlapping frames are cross-faded when the output is
assembled. Finished frames are PNGs in the job folder, so a stopped job resumes where it stopped and
memory does not grow with the clip's length: the output is assembled from the folder at the end.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import jax
import numpy as np

from . import cluster, color, jobs
from .defaults import MODE_DEFAULTS
from .errors import StyleError
from .events import Event
from .flow import occlusion_mask, optical_flow, warp, warping_error
from .files import user_file
from .images import resize, to_uint8
from .losses import temporal_loss
from .objective import Term
from .settings import ImageSettings, check_fields, mode_dict, setting
from .transfer import stylize
from .videoio import VideoInfo, VideoWriter, probe, read_frames
from .weights import Weights

TEMPORAL = ("warp", "plain")
MAX_VIDEO_FRAMES = 10_000       # frames one job may stylise
MAX_VIDEO_SIZE = 2048           # longest side of a stylised frame
# bounds "none": L-BFGS kept in [0, 1] (image mode's default) raised E_warp 1.6x and the jump at
# chunk borders from 1.0x to 2x the other frames (bench/LOG.md 12; 1.1x to 2.5x with LOG 13's warp).
VIDEO_DEFAULTS = MODE_DEFAULTS["video"]   # the one table of every mode's defaults (defaults.py)
DEFAULT_TEMPORAL_WEIGHT = 1e4
# How a stylised frame is warped into the next (its start and temporal target): bilinear blurred its
# texture, and later frames spent their steps sharpening it again (bench/LOG.md 13).
FRAME_WARP = "lanczos"


def video_image_settings(**changes) -> ImageSettings:
    """Per-frame image-mode settings with video mode's defaults (smaller frames, early stopping)."""
    return ImageSettings(**{**VIDEO_DEFAULTS, **changes})


@dataclass(frozen=True)
class VideoSettings:
    """Video mode. `image.iterations` is the first frame's budget (and every chunk's first frame);
    later frames get at most `frame_iterations` and stop on `image.tol` like the first. Temporal
    weight 0 stylises every frame on its own, from `image.init` (no warm start either)."""
    image: ImageSettings = field(default_factory=video_image_settings)
    temporal_weight: float = setting(DEFAULT_TEMPORAL_WEIGHT, "tau, weight of the temporal loss; 0: every "
                                     "frame on its own", minimum=0)
    temporal: str = setting("warp", "warp: the previous frame warped by optical flow, occlusions masked "
                            "(Ruder et al.); plain: the research deck's difference of consecutive frames",
                            choices=TEMPORAL, what="temporal loss")
    frame_iterations: int | None = setting(None, "at most this many steps for each later frame (the first "
                                           "frame's iterations); tol stops them sooner", minimum=0,
                                           label="Later frames: at most (they stop early)", slider=(0, 1000, 10))
    long_term: int = setting(0, "also keep frame t consistent with frame t-k (0: off)", minimum=0,
                             what="long-term frame distance")
    start: float = setting(0.0, "seconds into the clip to start at", minimum=0, label="Start (s)")
    duration: float | None = setting(None, "seconds to stylise (to the end)", minimum=0, strict=True)
    max_frames: int | None = setting(None, f"at most this many frames (the limit is {MAX_VIDEO_FRAMES})",
                                     minimum=1, label="Frames", slider=(1, 10_000, 1))
    frames_per_chunk: int = setting(0, "frames per chunk: independent jobs, run in parallel on several "
                                    "devices (0: one chunk)", minimum=0, flag="--chunk",
                                    label="Chunk (frames; 0 = one chunk)")
    chunk_overlap: int = setting(0, "frames shared by consecutive chunks, cross-faded in the output",
                                 minimum=0, label="Chunk overlap (frames)")

    def __post_init__(self) -> None:
        check_fields(self)
        if self.frame_iterations is None:
            object.__setattr__(self, "frame_iterations", self.image.iterations)
        if self.long_term == 1:
            raise StyleError("long-term frame distance must be 0 (off) or at least 2 (1 is the previous frame)")
        if self.frames_per_chunk and self.chunk_overlap >= self.frames_per_chunk:
            raise StyleError(f"chunk overlap ({self.chunk_overlap} frames) must be smaller than the chunk "
                             f"({self.frames_per_chunk} frames)")
        if self.chunk_overlap and not self.frames_per_chunk:
            raise StyleError("chunk overlap needs `frames_per_chunk`")
        if self.image.size > MAX_VIDEO_SIZE:
            raise StyleError(f"frame size {self.image.size} px is over video mode's limit of "
                             f"{MAX_VIDEO_SIZE} px")

    to_dict = mode_dict


def chunks(frames: int, chunk: int, overlap: int) -> list[range]:
    """Frame ranges of the chunks: [0, chunk), [chunk - overlap, 2 chunk - overlap), ...; the last
    chunk ends at `frames` (a whole-clip chunk when chunk is 0)."""
    if not chunk or chunk >= frames:
        return [range(frames)]
    out, begin = [], 0
    while True:
        end = min(begin + chunk, frames)
        out.append(range(begin, end))
        if end == frames:
            return out
        begin = end - overlap


@dataclass(frozen=True)
class VideoResult:
    path: Path
    frames: int
    fps: Fraction
    shape: tuple[int, int]
    iterations: list[int]                   # steps taken per frame, in order (chunk frames repeated)
    first_iterations: list[int]             # steps of each chunk's first frame
    warping_error: float                    # E_warp of the output, with the input frames' flow
    border_warping_error: float | None      # E_warp of the frame pairs at chunk overlaps (None: one chunk)
    inner_warping_error: float | None       # E_warp of the other frame pairs
    frames_resumed: int
    seconds: float
    settings: VideoSettings
    weights_source: str
    trained_weights: bool
    stop_reason: str = "finished"           # or the first frame's divergence ("diverged ...")
    remade: tuple[str, ...] = ()            # damaged job files (relative to the job folder) made again
    units: tuple[dict, ...] = ()            # where each chunk after its keyframe ran

    @property
    def mean_later_iterations(self) -> float:
        """Mean steps of the frames that are not a chunk's first."""
        later = sum(self.iterations) - sum(self.first_iterations)
        count = len(self.iterations) - len(self.first_iterations)
        return later / count if count else 0.0

    def report(self) -> dict:
        return {"mode": "video", "output": str(self.path), "settings": self.settings.to_dict(),
                "frames": self.frames, "fps": float(self.fps), "output_size": list(self.shape),
                "iterations_per_frame": self.iterations, "first_frame_iterations": self.first_iterations,
                "mean_later_iterations": self.mean_later_iterations,
                "warping_error": self.warping_error, "border_warping_error": self.border_warping_error,
                "inner_warping_error": self.inner_warping_error,
                "frames_resumed": self.frames_resumed, "seconds": round(self.seconds, 3),
                "weights_source": self.weights_source, "trained_weights": self.trained_weights,
                "stop_reason": self.stop_reason, "remade": list(self.remade),
                "backend": cluster.summary(self.units), "units": list(self.units)}


def _temporal(x, features, data):
    target, mask = data
    return temporal_loss(x, target, mask)


def temporal_term(name: str, weight: float, target: np.ndarray, mask: np.ndarray) -> Term:
    """x against `target` (a stylised frame warped into this one) where `mask` is 1, at every scale."""
    def data(inputs):
        h, w = inputs.content.shape[:2]
        if target.shape[:2] == (h, w):
            return target, mask
        return resize(target, h, w), (resize(mask[..., None].repeat(3, -1), h, w)[..., 0] > 0.5).astype(np.float32)
    return Term(name, weight, _temporal, data)


# Finished frames (chunk, frame), 8-bit as the output shows them, read back after saving so that a
# resumed job continues bit for bit; their steps and stop reasons in iterations.json.
FRAME = jobs.Piece("frames/{:03d}-{:06d}.png", jobs.PNG, table="iterations.json")
PIECES = (FRAME,)


def _anchor(settings: VideoSettings, content: np.ndarray, other_content: np.ndarray, other_output: np.ndarray,
            backward: np.ndarray | None = None, mask: np.ndarray | None = None):
    """(target, mask): an earlier stylised frame brought into this frame (warped along the input
    frames' flow; "plain": as it is, every pixel counted), as the network sees it."""
    seen = color.luminance(other_output) if settings.image.preserve_color == "luminance" else other_output
    if settings.temporal == "plain":
        return seen, np.ones(content.shape[:2], np.float32)
    if backward is None:
        backward = optical_flow(content, other_content)
        mask = occlusion_mask(backward, optical_flow(other_content, content))
    return warp(seen, backward, FRAME_WARP), mask


def _flows(frames: Iterator[np.ndarray], temporal: str):
    """(frame, backward flow, mask) per input frame (flows to the previous frame; None for the first),
    one frame ahead in a worker thread, so the flow is ready when it is wanted."""
    def flows_of(current, previous):
        if previous is None:
            return None, None
        if temporal == "plain":
            return np.zeros(current.shape[:2] + (2,), np.float32), np.ones(current.shape[:2], np.float32)
        backward = optical_flow(current, previous)
        return backward, occlusion_mask(backward, optical_flow(previous, current))

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        previous, pending = None, None
        for frame in frames:
            job = pool.submit(flows_of, frame, previous)
            if pending is not None:
                yield pending[0], *pending[1].result()
            pending, previous = (frame, job), frame
        if pending is not None:
            yield pending[0], *pending[1].result()


def frames_to_do(info: VideoInfo, settings: VideoSettings) -> int:
    """How many frames a job stylises; refuses a start past the end and a clip over the limit."""
    if settings.start >= info.duration:
        raise StyleError(f"start {settings.start:g} s is past the clip's end ({info.duration:.2f} s)")
    wanted = max(1, round((info.duration - settings.start) * float(info.fps)))
    if settings.duration is not None:
        wanted = min(wanted, max(1, round(settings.duration * float(info.fps))))
    if settings.max_frames is None and wanted > MAX_VIDEO_FRAMES:
        raise StyleError(f"the clip has {wanted} frames from {settings.start:g} s, over video mode's limit of "
                         f"{MAX_VIDEO_FRAMES}: use `max_frames`, `duration` or `start`")
    if settings.max_frames is not None and settings.max_frames > MAX_VIDEO_FRAMES:
        raise StyleError(f"max frames {settings.max_frames} is over video mode's limit of {MAX_VIDEO_FRAMES}")
    return min(wanted, settings.max_frames or wanted)


def stylize_video(path: str | Path, styles: Sequence[np.ndarray], settings: VideoSettings, weights: Weights,
                  output: str | Path, *, job: str | Path, resume: bool = False,
                  backend: cluster.Local | cluster.RayCluster | None = None) -> Iterator[Event]:
    """Stylises the clip at `path` into `output` (.mp4 with the input's audio, or .gif), yielding
    progress after every frame; the last event carries the VideoResult. Finished frames are kept in
    `job` (resume=True continues them); the caller removes the folder when it is no longer wanted.

    Three stages: every chunk's first frame (the keyframes, in order), then the rest of each chunk
    (chunks in parallel over several devices, or as tasks on a cluster: `backend`, `cluster.py`), then
    the output assembled from the job folder, which stays here."""
    info = probe(path)
    total = frames_to_do(info, settings)
    folder = jobs.JobFolder(job, jobs.fingerprint(styles, settings, weights, files=(info.path,)), resume, PIECES,
                            {"mode": "video"})
    clip = _Clip(path, info, total, folder, styles, settings, weights)
    yield from clip.keyframes()
    if isinstance(backend or cluster.Local(), cluster.Local):
        devices = jax.devices() if len(clip.parts) > 1 else jax.devices()[:1]
        updates = cluster.Local().run(chunk_work, clip, [(ci, part, {}) for ci, part in enumerate(clip.parts)],
                                      devices)
    else:  # the clip's bytes and the weights go to the cluster once; each chunk with the frames kept of it
        updates = backend.run(chunk_work, ShippedClip(Path(path).read_bytes(), Path(path).suffix, info, total, styles,
                                                      settings, weights),
                              ((ci, part, clip.kept(ci, part)) for ci, part in enumerate(clip.parts)))
    for update in updates:
        if isinstance(update, cluster.Progress):
            yield update.value
        else:
            yield from clip.received(update)
    yield from clip.assemble(output)


class _Clip:
    """One video job: its frames' stages and their tally. Chunks may run in threads (one per device):
    the tally is kept under a lock."""

    def __init__(self, path, info: VideoInfo, total: int, folder: jobs.JobFolder, styles, settings: VideoSettings,
                 weights: Weights):
        self.path, self.info, self.total, self.folder = path, info, total, folder
        self.styles, self.settings, self.weights = styles, settings, weights
        self.parts = chunks(total, settings.frames_per_chunk, settings.chunk_overlap)
        self.count = sum(len(p) for p in self.parts)
        self.targets: dict = {}         # style targets, once per size and device
        self.start = time.perf_counter()
        self.finished = self.resumed = self.computed = 0
        self.estimate: tuple[float, float] | None = None   # (when, seconds left then) at the last frame
        self.since: float | None = None  # when the first stylised frame ended (it compiles, and takes
                                          # the first frame's many steps: not the pace of the rest)
        self.diverged: list[tuple[int, str]] = []  # (frame, stop reason) of the frames whose loss rose
        self.units: list[dict] = []     # where each chunk after its keyframe ran
        self.lock = threading.Lock()

    def event(self, stage: str, ci: int, **fields) -> Event:
        """An event of chunk `ci`; between frames, the last estimate of the time left, counted down."""
        if "eta" not in fields and self.estimate is not None:
            said, left = self.estimate
            fields["eta"] = max(left - (time.perf_counter() - said), 0.0)
        return Event(stage, self.finished, self.count, "frame", seconds=time.perf_counter() - self.start,
                     part=(ci + 1, len(self.parts)), **fields)

    def frame(self, ci: int, index: int, content: np.ndarray, anchors: list, budget: ImageSettings, device):
        """Stylises one frame against its anchors (or loads it from the job); yields progress and
        returns the stylised frame."""
        stored = self.folder.load(FRAME, ci, index, shape=content.shape[:2])
        if stored is not None:
            output_frame, why = stored[0], stored[1].get("stop_reason", "finished")
        else:
            extras = [temporal_term(name, self.settings.temporal_weight, target, mask)
                      for name, target, mask in anchors]
            # Later frames start from the warped previous frame, masked pixels included (new ones at
            # an edge take the nearest pixel the warp can supply): re-initialising masked pixels from
            # the recoloured content was measured to raise E_warp 7x and double the steps per frame
            # (bench/LOG.md, 4).
            init = anchors[0][1] if anchors else None
            for event in stylize(content, self.styles, budget, self.weights, extras=extras,
                                 targets=self.targets.setdefault(device, {}), init=init):
                if event.result is None:
                    yield self.event("frames", ci, losses=event.losses, step=event.completed, steps=event.total)
            why = event.result.stop_reason
            output_frame = self.folder.save(FRAME, ci, index, image=event.result.image,
                                            meta={"steps": event.result.iterations, "stop_reason": why})
        yield self.tally(ci, index, why, None if stored is None else 1, output_frame)
        return output_frame

    def tally(self, ci: int, index: int, why: str, resumed: int | None, preview) -> Event:
        """Counts a finished frame (`resumed` more frames read back, or one made); the event that says so."""
        with self.lock:
            self.finished += resumed or 1
            if resumed is None:
                self.computed += 1
                self.since = time.perf_counter() if self.since is None else self.since
            else:
                self.resumed += resumed
            if why.startswith("diverged"):
                self.diverged.append((index, why))
            # frames stylised per minute of wall time (over every device), resumed frames not counted
            rate = (self.computed - 1) / (time.perf_counter() - self.since) * 60 if self.computed > 1 else None
            left = (self.count - self.finished) / rate * 60 if rate else None
            self.estimate = None if left is None else (time.perf_counter(), left)
        return self.event("frames", ci, rate=rate, preview=preview, eta=left)

    def kept(self, ci: int, part: range) -> dict:
        """The frames of chunk `ci` the job folder holds (its keyframe at least), 8-bit, with their
        metadata: what a worker elsewhere needs to continue the chunk as it would here."""
        out = {}
        for index in part:
            stored = self.folder.load(FRAME, ci, index)
            if stored is not None:
                out[(ci, index)] = (to_uint8(stored[0]), stored[1])
        return out

    def received(self, update: cluster.Finished):
        """A chunk finished (noted where it ran); if elsewhere, its frames kept in the job folder and
        counted (the ones it was given, as resumed); yields the events that say so."""
        self.units.append({"unit": update.index, "chunk": update.index + 1, **update.where})
        if update.value is None:  # made here: the folder has its frames already
            return
        made, given = update.value
        if given:
            yield self.tally(update.index, self.parts[update.index].start, "finished", given, None)
        for ci, index, frame, meta in made:
            picture = self.folder.save(FRAME, ci, index, image=frame.astype(np.float32) / 255.0, meta=meta)
            yield self.tally(ci, index, meta.get("stop_reason", "finished"), None, picture)

    def keyframes(self):
        """Each chunk's first frame, in order, each anchored to the one before along the flow between
        them, composed from the frame-to-frame flows (direct flow over many frames is far less
        reliable), so that the chunks, which then run independently, start out agreeing."""
        settings = self.settings
        starts = {part.start: ci for ci, part in enumerate(self.parts)}
        key, composed, reliable = None, None, None
        inputs = read_frames(self.path, start=settings.start, max_frames=self.parts[-1].start + 1,
                             size=settings.image.size)
        for index, (content, backward, mask) in enumerate(_flows(inputs, settings.temporal)):
            if backward is not None and composed is not None:
                composed = backward + warp(composed, backward)          # flow from here to the keyframe
                reliable = mask * (warp(reliable, backward) > 0.5)
            if index not in starts:
                continue
            anchors = []
            if key is not None and settings.temporal_weight > 0:
                anchors.append(("temporal", *_anchor(settings, content, *key, composed, reliable)))
            stylised = yield from self.frame(starts[index], index, content, anchors, settings.image, jax.devices()[0])
            key = (content, stylised)
            composed = np.zeros(content.shape[:2] + (2,), np.float32)
            reliable = np.ones(content.shape[:2], np.float32)

    def chunk(self, ci: int, part: range, device):
        """The rest of one chunk, each frame anchored to the one before (and to t - long_term)."""
        settings = self.settings
        later = settings.image.replace(iterations=settings.frame_iterations)
        recent: deque = deque(maxlen=max(settings.long_term, 1) + 1)  # (content, output), newest last
        frames = read_frames(self.path, start=settings.start + part.start / float(self.info.fps),
                             max_frames=len(part), size=settings.image.size)
        for local, (content, backward, mask) in enumerate(_flows(frames, settings.temporal)):
            index = part.start + local
            if local == 0:
                output_frame = self.folder.load(FRAME, ci, index)[0]
            else:
                anchors = []
                if settings.temporal_weight > 0:
                    anchors.append(("temporal", *_anchor(settings, content, *recent[-1], backward, mask)))
                    if settings.long_term and len(recent) >= settings.long_term:
                        anchors.append(("long_term", *_anchor(settings, content, *recent[-settings.long_term])))
                output_frame = yield from self.frame(ci, index, content, anchors, later, device)
            recent.append((content, output_frame))

    def assemble(self, output: str | Path):
        """One pass writes the output from the job folder and measures E_warp on it against the input
        frames' flow; yields the last event, with the result."""
        parts, folder, total = self.parts, self.folder, self.total
        yield self.event("assembling", len(parts) - 1)
        inputs = read_frames(self.path, start=self.settings.start, max_frames=total, size=self.settings.image.size)
        per_pair, previous = [], None
        with VideoWriter(output, self.info.fps, audio_from=self.path, start=self.settings.start,
                         duration=total / float(self.info.fps)) as writer:
            for (_, backward, mask), picture in zip(_flows(inputs, "warp"), _assembled(folder, parts, total)):
                writer.write(picture)
                if backward is not None:
                    per_pair.append(warping_error([previous, picture], [(backward, mask)]))
                previous = picture
        error, border, inner = _warping_errors(per_pair, parts)
        steps = [folder.meta(FRAME, ci, i).get("steps", 0) for ci, p in enumerate(parts) for i in p]
        first_steps = [folder.meta(FRAME, ci, p.start).get("steps", 0) for ci, p in enumerate(parts)]
        reason = "finished"
        if self.diverged:
            index, why = min(self.diverged)
            reason = f"{why} (frame {index}, {len(self.diverged)} frame{'s' * (len(self.diverged) > 1)} in all)"
        result = VideoResult(Path(output), total, self.info.fps, previous.shape[:2], steps, first_steps, error,
                             border, inner, self.resumed, time.perf_counter() - self.start, self.settings,
                             self.weights.source, self.weights.trained, reason, tuple(folder.remade),
                             tuple(self.units))
        yield self.event("done", len(parts) - 1, result=result)


def chunk_work(clip, item: tuple, device):
    """A cluster unit: the rest of one chunk (`item`: its number, its frames, the frames kept of it).
    Here `clip` is the job's `_Clip`, whose folder keeps each frame as it is made; on a worker, a
    `ShippedClip`, and the frames made come back with the count of those given."""
    ci, part, kept = item
    shipped = isinstance(clip, ShippedClip)
    if shipped:
        clip = clip.open(kept)
    yield from clip.chunk(ci, part, device)
    return (clip.folder.made, len(kept) - 1) if shipped else None


@dataclass(frozen=True)
class ShippedClip:
    """A video job as a worker elsewhere gets it: the clip's bytes (no shared disk), what the driver
    probed of it, the styles, settings and weights."""
    data: bytes
    suffix: str
    info: VideoInfo
    total: int
    styles: tuple
    settings: VideoSettings
    weights: Weights

    def open(self, kept: dict) -> _Clip:
        """The job on this worker: the clip written to a temporary file once per process, a folder
        in memory that holds the frames `kept` and those made here."""
        path = Path(tempfile.gettempdir()) / f"style_core-{hashlib.sha256(self.data).hexdigest()[:16]}{self.suffix}"
        if not path.exists():
            with user_file(path) as tmp:
                Path(tmp).write_bytes(self.data)
        return _Clip(path, self.info, self.total, jobs.MemoryFolder(kept), self.styles, self.settings, self.weights)


def _assembled(folder: jobs.JobFolder, parts: list[range], total: int) -> Iterator[np.ndarray]:
    """Output frames in order; a frame two chunks share is cross-faded from the earlier chunk to the
    later one across the overlap (weights (j + 1) / (K + 1) for the j-th shared frame)."""
    for index in range(total):
        owners = [ci for ci, p in enumerate(parts) if index in p]
        if len(owners) == 1:
            yield folder.load(FRAME, owners[0], index)[0]
            continue
        first, second = owners[:2]
        shared = [i for i in parts[first] if i in parts[second]]
        alpha = (shared.index(index) + 1) / (len(shared) + 1)
        yield (1 - alpha) * folder.load(FRAME, first, index)[0] + alpha * folder.load(FRAME, second, index)[0]


def _warping_errors(per_pair: list[float], parts: list[range]):
    """E_warp over all frame pairs, over the pairs that touch a chunk overlap, and over the others
    (pair k joins frames k and k + 1)."""
    if not per_pair:
        return 0.0, None, None
    shared = {i for a, b in zip(parts, parts[1:]) for i in range(b.start, a.stop)}
    near = [k for k in range(len(per_pair)) if {k, k + 1} & shared or
            any(k + 1 == p.start for p in parts[1:])]
    border = [per_pair[k] for k in near]
    inner = [per_pair[k] for k in range(len(per_pair)) if k not in near]
    mean = lambda v: float(np.mean(v)) if v else None  # noqa: E731
    return float(np.mean(per_pair)), mean(border) if len(parts) > 1 else None, mean(inner)
