"""Video in and out with PyAV (FFmpeg): frames streamed one at a time, never the whole clip in memory.

Reading decodes mp4/mov/webm/avi/mkv/gif lazily, to RGB float32 in [0, 1], on a constant frame-rate
timeline: a variable frame-rate clip is resampled to its average rate (each output time takes the
latest frame shown by then), which keeps it in step with its audio. Writing makes H.264 in yuv420p
(even dimensions, the players' common denominator) at the input's rate, and copies the input's audio
for the same time window without re-encoding; or a GIF.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import StyleError
from .files import atomic_path, cannot_write
from .images import fit_longest_side, resize

MAX_FRAMES = 100_000
VIDEO_FORMATS = (".mp4", ".gif")   # what VideoWriter writes


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: Fraction               # the constant rate frames are delivered at (the average rate)
    frames: int                 # frames in the whole clip at that rate (estimated from its duration)
    duration: float             # seconds
    has_audio: bool
    variable_rate: bool         # the file's frame times are not evenly spaced


def _open(path: str | Path):
    import av
    path = Path(path)
    if not path.is_file():
        raise StyleError(f"{path}: no such file")
    try:
        return av.open(str(path))
    except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError) as e:
        raise StyleError(f"{path}: not a video FFmpeg can read ({e.__class__.__name__})") from None


def probe(path: str | Path, sample: int = 120) -> VideoInfo:
    """What a clip holds. Checks the first `sample` frames' times to tell a variable frame rate."""
    import av
    with _open(path) as container:
        if not container.streams.video:
            raise StyleError(f"{path}: the file has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0:
            raise StyleError(f"{path}: the video stream has no frame rate")
        times = []
        try:
            for frame in container.decode(stream):
                times.append(frame.time)
                if len(times) >= sample:
                    break
        except av.error.FFmpegError as e:
            if not times:
                raise StyleError(f"{path}: the video is damaged: no frame could be decoded ({e})") from None
        if not times:
            raise StyleError(f"{path}: the video has no frames")
        duration = (float(stream.duration * stream.time_base) if stream.duration else
                    float(container.duration) / av.time_base if container.duration else len(times) / rate)
        steps = np.diff([t for t in times if t is not None])
        variable = len(steps) > 2 and float(np.max(steps) - np.min(steps)) > 0.5 / float(rate)
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise StyleError(f"{path}: the video stream has no frame size")
        return VideoInfo(Path(path), width, height, Fraction(rate), max(1, round(duration * float(rate))),
                         duration, bool(container.streams.audio), variable)


def read_frames(path: str | Path, *, start: float = 0.0, duration: float | None = None,
                max_frames: int | None = None, size: int | None = None) -> Iterator[np.ndarray]:
    """Frames (H, W, 3) float32 in [0, 1] from `start` seconds, at the clip's average rate, for at most
    `duration` seconds and `max_frames` frames; resized so the longest side is `size` if given."""
    import av
    info = probe(path)
    step = 1 / float(info.fps)
    limit = min(max_frames or MAX_FRAMES, MAX_FRAMES)
    if duration is not None:
        limit = min(limit, max(1, math.floor(duration / step + 1e-6)))
    limit = min(limit, max(1, round((info.duration - start) / step)))  # the clip's own length
    shape = fit_longest_side((info.height, info.width), size) if size else None
    emitted = 0
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if start > 0:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        # Output frame k is at time start + k * step and shows the latest frame whose time is <= it.
        due = lambda: start + emitted * step + 1e-6  # noqa: E731
        current, last_time = None, None
        try:
            for frame in container.decode(stream):
                t = frame.time if frame.time is not None else (last_time or 0.0) + step
                while emitted < limit and t > due() and (current is not None or t > start + 1e-6):
                    yield _rgb(current if current is not None else frame, shape)
                    emitted += 1
                if emitted >= limit:
                    break
                current, last_time = frame, t
        except av.error.FFmpegError as e:
            if current is None and emitted == 0:
                raise StyleError(f"{path}: the video is damaged: {e}") from None
            # a damaged tail: keep the frames decoded before it
        while current is not None and emitted < limit and start + emitted * step < last_time + step - 1e-6:
            yield _rgb(current, shape)
            emitted += 1
    if emitted == 0:
        raise StyleError(f"{path}: no frames after {start:g} s (the clip is {info.duration:.2f} s long)")


def _rgb(frame, shape) -> np.ndarray:
    image = frame.to_ndarray(format="rgb24").astype(np.float32) / 255.0
    return resize(image, *shape) if shape and image.shape[:2] != shape else image


def _palette(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A frame as GIF wants it: 8-bit indices into its own 256-colour palette (Pillow's median cut;
    swscale cannot make pal8), the palette in ARGB as PyAV takes it."""
    from PIL import Image
    quantised = Image.fromarray(pixels).quantize(256, dither=Image.Dither.NONE)
    palette = np.asarray(quantised.getpalette(), np.uint8).reshape(-1, 3)
    argb = np.zeros((256, 4), np.uint8)
    argb[:, 0] = 255
    argb[:len(palette), 1:] = palette[:256]
    return np.asarray(quantised), argb


class VideoWriter:
    """Writes frames to an mp4 (H.264, yuv420p, constant `fps`) or a GIF, atomically: the file appears
    under its name only when `close()` succeeds. `audio_from` copies that file's audio between
    `start` and `start + duration` seconds (mp4 only)."""

    def __init__(self, path: str | Path, fps: Fraction | float, *, audio_from: str | Path | None = None,
                 start: float = 0.0, duration: float | None = None, crf: int = 18):
        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_FORMATS:
            raise StyleError(f"{self.path}: write a .mp4 or a .gif")
        self.fps = Fraction(fps).limit_denominator(100_000)
        self.audio_from, self.start, self.duration, self.crf = audio_from, start, duration, crf
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        self.gif, self.frames, self._closed = self.path.suffix.lower() == ".gif", 0, False
        self._container = self._stream = self._audio = None
        self._source = None        # the file the audio is copied from (mp4 with audio_from only)

    def _open(self, shape: tuple[int, int]) -> None:
        import av
        self._container = av.open(str(self._tmp), "w", format="gif" if self.gif else "mp4")
        self._stream = self._container.add_stream("gif" if self.gif else "libx264", rate=self.fps)
        self._stream.height, self._stream.width = shape
        if self.gif:
            self._stream.pix_fmt = "pal8"
            return
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": str(self.crf), "preset": "medium"}
        if self.audio_from is not None:
            self._source = av.open(str(self.audio_from))
            if self._source.streams.audio:
                self._audio = self._container.add_stream_from_template(self._source.streams.audio[0])

    def write(self, frame: np.ndarray) -> None:
        import av
        h, w = frame.shape[:2]
        shape = (h, w) if self.gif else (h - h % 2, w - w % 2)  # H.264 in yuv420p: even sides
        if min(shape) < 2:
            raise StyleError(f"frames of {w}x{h} px are too small for a video")
        pixels = np.clip(np.round(np.asarray(frame[:shape[0], :shape[1]]) * 255), 0, 255).astype(np.uint8)
        if self.gif:
            video_frame = av.VideoFrame.from_ndarray(_palette(pixels), format="pal8")
        else:
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
        video_frame.pts = self.frames
        video_frame.time_base = 1 / self.fps
        try:
            if self._container is None:
                self._open(shape)
            for packet in self._stream.encode(video_frame):
                self._container.mux(packet)
        except OSError as e:  # a full disk, a vanished folder: one line, the partial file dropped
            self.abort(e)
            raise cannot_write(self.path, e) from None
        self.frames += 1

    def _copy_audio(self) -> None:
        stream = self._source.streams.audio[0]
        end = self.start + (self.duration if self.duration is not None else self.frames / float(self.fps))
        offset = int(round(self.start / stream.time_base))
        if self.start > 0:
            self._source.seek(offset, stream=stream, backward=True)
        for packet in self._source.demux(stream):
            if packet.dts is None or packet.pts is None:
                continue
            t = float(packet.pts * stream.time_base)
            if t + 1e-6 < self.start:
                continue
            if t >= end:
                break
            packet.pts -= offset
            packet.dts -= offset
            packet.stream = self._audio
            self._container.mux(packet)

    def close(self) -> Path:
        """Finishes the file and moves it into place; returns its path. Closing again does nothing."""
        if self._tmp is None:
            if self._closed:
                return self.path
            raise StyleError(f"{self.path} was aborted; nothing was written there")
        if self._container is None:
            self.abort()
            raise StyleError("no frames were written")
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            if self._audio is not None:
                self._copy_audio()
            self._container.close()
            if self._source is not None:
                self._source.close()
        except BaseException as e:
            self.abort(e)
            if isinstance(e, OSError):
                raise cannot_write(self.path, e) from None
            raise
        try:
            self._atomic.__exit__(None, None, None)
        except OSError as e:
            raise cannot_write(self.path, e) from None
        finally:
            self._tmp = None   # a second close, or an abort, does nothing
        self._closed = True
        return self.path

    def abort(self, error: BaseException | None = None) -> None:
        """Drops the partial file; nothing appears under the final name."""
        if self._tmp is None:
            return  # closed or aborted already
        for thing in (self._container, self._source):
            with contextlib.suppress(Exception):  # closing a half-written container may fail too
                if thing is not None:
                    thing.close()
        error = error or StyleError("aborted")
        self._tmp = None
        self._atomic.__exit__(type(error), error, None)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, kind, error, *_) -> None:
        if kind is None:
            self.close()
        else:
            self.abort(error)
