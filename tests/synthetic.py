"""Generated test images that look like what users bring (shared by tests and bench/)."""

from __future__ import annotations

import numpy as np


def photo_like(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A photo-like RGB image in [0, 1], 8-bit quantised: a sky gradient, a saturated sun (exactly 1),
    textured ground, a black shadow (exactly 0) and sensor noise. The flat and clipped regions are
    where the matting Laplacian's windows are nearly singular."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    image = np.stack([0.35 + 0.3 * y, 0.55 + 0.25 * y, 0.95 - 0.2 * y], -1)
    sun = (y - 0.15) ** 2 + (x - 0.7) ** 2 < 0.006
    ground = y > 0.55 + 0.05 * np.sin(9 * x)
    texture = 0.1 * np.sin(40 * x + 3 * np.sin(25 * y)) + 0.05 * rng.standard_normal((h, w))
    image[ground] = np.stack([0.25 + texture, 0.4 + texture, 0.12 + 0.5 * texture], -1)[ground]
    shadow = ground & (x < 0.3) & (y > 0.8)
    image += 0.01 * rng.standard_normal(image.shape)
    image[sun], image[shadow] = 1.0, 0.0
    return (np.round(np.clip(image, 0, 1) * 255) / 255).astype(np.float32)


def write_clip(path, frames, fps: int = 12, audio: bool = False, crf: int = 1, time_base=None, pts=None) -> None:
    """An H.264 clip of the given RGB frames (in [0, 1]) with PyAV, optionally with a 440 Hz AAC tone
    as long as the clip; `time_base` and `pts` (per frame) make a variable frame rate."""
    from fractions import Fraction

    import av
    frames = list(frames)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.options = {"crf": str(crf)}
        if time_base is not None:
            video.codec_context.time_base = video.time_base = Fraction(time_base)
        if audio:
            sound = container.add_stream("aac", rate=44100)
            sound.layout = "mono"
        for i, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(np.round(np.clip(frame, 0, 1) * 255).astype(np.uint8),
                                                 format="rgb24")
            picture.pts = i if pts is None else pts[i]
            picture.time_base = video.codec_context.time_base if time_base is not None else Fraction(1, fps)
            for packet in video.encode(picture):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if audio:
            t = np.arange(int(44100 * len(frames) / fps)) / 44100
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            for k in range(0, tone.shape[1], 1024):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, k:k + 1024]), format="fltp",
                                                   layout="mono")
                chunk.sample_rate, chunk.pts = 44100, k
                for packet in sound.encode(chunk):
                    container.mux(packet)
            for packet in sound.encode(None):
                container.mux(packet)


def pan(h: int, w: int, frames: int, shift: int, seed: int = 5) -> list[np.ndarray]:
    """A camera panning right across a photo-like scene by `shift` px per frame: frame t at p is frame
    t-1 at p + (shift, 0)."""
    scene = photo_like(h, w + frames * shift + 8, seed=seed)
    return [scene[:, t * shift:t * shift + w] for t in range(frames)]


def pan_motion(frames: int, shape: tuple[int, int], shift: int):
    """The exact backward flow of `pan` (frame t at p is frame t-1 at p + (shift, 0)) for each of
    frames 1..frames-1, with the mask of the pixels that came in from outside the frame zeroed."""
    for _ in range(frames - 1):
        flow = np.zeros(shape + (2,), np.float32)
        flow[..., 0] = shift
        mask = np.ones(shape, np.float32)
        mask[:, -shift - 1:] = 0
        yield flow, mask
