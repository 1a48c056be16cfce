"""Video mode: I/O, flow and masks, the temporal loss, consistency, schedule, chunks, resume."""

from __future__ import annotations

import numpy as np
import pytest

from style_core import video as video_mode
from style_core.errors import StyleError
from style_core.flow import occlusion_mask, optical_flow, warp, warping_error
from style_core.losses import temporal_loss
from style_core.video import VideoSettings, chunks, stylize_video, video_image_settings
from style_core.videoio import VideoWriter, probe, read_frames
from tests.synthetic import pan, pan_motion, photo_like, write_clip

# random weights: the research deck's "paper" weighting, under which these figures were measured
FAST = dict(size=64, style_layers="relu1_1,relu2_1,relu3_1", content_layers="relu2_2", iterations=200,
            normalization="paper", style_weight=1e5)
SHIFT = 2


@pytest.fixture(scope="module")
def style():
    y, x = np.mgrid[0:64, 0:64] / 64
    return np.stack([0.5 + 0.5 * np.sin(20 * x + 9 * y), 0.5 + 0.4 * np.cos(17 * y),
                     0.3 + 0.3 * np.sin(11 * (x + y))], -1).astype(np.float32)


@pytest.fixture(scope="module")
def panning(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "pan.mp4"
    write_clip(path, pan(48, 64, 12, SHIFT), audio=True)
    return path


def known_motion(frames: int, shape=(48, 64)):
    """The exact backward flow of the panning clip and the pixels it brings in from outside."""
    return pan_motion(frames, shape, SHIFT)


def stylised_frames(job) -> list[np.ndarray]:
    from style_core.images import load_image
    return [load_image(p) for p in sorted((job / "frames").glob("*.png"))]


# --- I/O --------------------------------------------------------------------------------------------

def test_reads_frames_lazily_with_start_duration_and_size(panning):
    info = probe(panning)
    assert (info.width, info.height, info.fps, info.frames, info.has_audio) == (64, 48, 12, 12, True)
    frames = read_frames(panning)
    assert not isinstance(frames, list)  # a generator: never the whole clip
    frames = list(frames)
    reference = pan(48, 64, 12, SHIFT)
    assert len(frames) == 12 and all(np.abs(f - r).mean() < 0.02 for f, r in zip(frames, reference))
    part = list(read_frames(panning, start=2 / 12, duration=2 / 12, size=32))
    assert len(part) == 2 and part[0].shape == (24, 32, 3)
    assert np.abs(part[0] - list(read_frames(panning, size=32))[2]).max() < 1e-6


def test_writes_h264_with_the_input_rate_and_audio_and_even_sides(panning, tmp_path):
    out = tmp_path / "out.mp4"
    with VideoWriter(out, 12, audio_from=panning) as writer:
        for frame in read_frames(panning):
            writer.write(frame[:47, :63])  # odd sides
    info = probe(out)
    assert (info.width, info.height, info.fps, info.frames, info.has_audio) == (62, 46, 12, 12, True)
    import av
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    gif = tmp_path / "out.gif"
    with VideoWriter(gif, 12) as writer:
        for frame in read_frames(panning):
            writer.write(frame)
    assert probe(gif).frames >= 11 and probe(gif).width == 64


def test_closing_a_video_twice_is_harmless(tmp_path):
    """Review B9: `with VideoWriter(...) as w: ...; w.close()` closes twice; an aborted one stays aborted."""
    out = tmp_path / "twice.mp4"
    writer = VideoWriter(out, 12)
    for frame in pan(24, 32, 3, 1):
        writer.write(frame)
    assert writer.close() == out and writer.close() == out
    assert probe(out).frames == 3 and [p.name for p in tmp_path.iterdir()] == ["twice.mp4"]
    aborted = VideoWriter(tmp_path / "aborted.mp4", 12)
    aborted.write(pan(24, 32, 1, 1)[0])
    aborted.abort()
    with pytest.raises(StyleError, match="aborted"):
        aborted.close()
    assert not (tmp_path / "aborted.mp4").exists()


def test_variable_frame_rate_is_resampled_to_its_average(tmp_path):
    path = tmp_path / "vfr.mp4"
    frames = pan(32, 48, 20, 1)
    write_clip(path, frames, fps=12, time_base="1/1200", pts=[i * 100 + (40 if i % 2 else 0) for i in range(20)])
    info = probe(path)
    assert info.variable_rate and abs(float(info.fps) - 12) < 1
    assert abs(len(list(read_frames(path))) - info.frames) <= 1


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"\x00" * 1000), "not a video FFmpeg can read"),
    (lambda p: p.write_bytes(b""), "not a video FFmpeg can read"),
    (lambda p: None, "no such file"),
])
def test_unreadable_files_are_one_clear_line(tmp_path, make, message):
    path = tmp_path / "bad.mp4"
    make(path)
    with pytest.raises(StyleError, match=message):
        probe(path)


def audio_only(source_path, path, empty_video_track: bool = False):
    """The clip's audio remuxed into `path`, optionally beside a video track that gets no frames."""
    import av
    with av.open(str(source_path)) as source, av.open(str(path), "w") as out:
        if empty_video_track:
            out.add_stream_from_template(source.streams.video[0])
        stream = out.add_stream_from_template(source.streams.audio[0])
        for packet in source.demux(source.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return path


def test_a_file_with_only_audio_or_a_damaged_tail(tmp_path, panning):
    with pytest.raises(StyleError, match="no video stream"):
        probe(audio_only(panning, tmp_path / "tone.m4a"))
    empty = audio_only(panning, tmp_path / "empty.mp4", empty_video_track=True)
    with pytest.raises(StyleError, match="no video stream|has no frames"):
        probe(empty)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(panning.read_bytes()[:len(panning.read_bytes()) * 2 // 3])
    try:
        frames = list(read_frames(cut))
    except StyleError as e:  # a moov atom cut off: refused in one line
        assert "video" in str(e)
    else:
        assert 1 <= len(frames) <= 12


# --- flow, masks, the loss ------------------------------------------------------------------------

def test_flow_warp_and_mask_recover_a_known_pan():
    frames = pan(48, 64, 2, 3)
    backward = optical_flow(frames[1], frames[0])
    assert np.abs(np.median(backward[..., 0]) - 3) < 0.2 and np.abs(np.median(backward[..., 1])) < 0.2
    warped = warp(frames[0], backward)
    assert np.abs(warped - frames[1])[:, :-4].mean() < 0.3 * np.abs(frames[0] - frames[1]).mean()
    mask = occlusion_mask(backward, optical_flow(frames[0], frames[1]))
    assert mask[:, -2:].max() == 0 and mask[:, :40].mean() > 0.8  # what came in from outside is masked


def test_sharp_warp_keeps_a_fine_texture_that_bilinear_blurs():
    """A stylised frame moved by half a pixel: the warp video mode uses for the next frame's start
    keeps a fine texture, bilinear loses half its amplitude (against the exact shifted pattern)."""
    xs = np.arange(64, dtype=np.float64)
    pattern = lambda x: 0.5 + 0.4 * np.sin(2.2 * x)  # noqa: E731  period ~2.9 px, near Nyquist
    image = np.repeat(pattern(xs)[None, :, None], 8, 0).repeat(3, 2).astype(np.float32)
    flow = np.zeros((8, 64, 2), np.float32)
    flow[..., 0] = 0.5
    exact = pattern(xs + 0.5)[4:-4]
    error = {kind: np.abs(warp(image, flow, kind)[4, 4:-4, 0] - exact).max()
             for kind in ("linear", video_mode.FRAME_WARP)}
    assert error["linear"] > 0.15 and error[video_mode.FRAME_WARP] < 0.03


def test_temporal_loss_and_warping_error_formulas():
    rng = np.random.default_rng(0)
    x, target, mask = rng.random((6, 7, 3)), rng.random((6, 7, 3)), rng.integers(0, 2, (6, 7)).astype(float)
    expected = np.mean(mask[..., None] * (x - target) ** 2)
    assert float(temporal_loss(np.float32(x), np.float32(target), np.float32(mask))) == pytest.approx(expected, rel=1e-5)
    frames = pan(48, 64, 4, SHIFT)
    assert warping_error(frames, known_motion(4)) < 1e-10          # the input itself is consistent
    shuffled = [frames[0], frames[2], frames[1], frames[3]]
    assert warping_error(shuffled, known_motion(4)) > 1e-3


def test_chunks_overlap_as_asked():
    assert chunks(10, 0, 0) == [range(10)]
    assert chunks(10, 4, 1) == [range(0, 4), range(3, 7), range(6, 10)]
    assert chunks(10, 4, 2) == [range(0, 4), range(2, 6), range(4, 8), range(6, 10)]


# --- video mode -----------------------------------------------------------------------------------

def run_video(path, style, weights, tmp_path, name, **kw):
    image = {k: kw.pop(k) for k in list(kw) if k in ("iterations", "size", "tol")}
    settings = VideoSettings(video_image_settings(**{**FAST, **image}), **kw)
    job = tmp_path / f"{name}.job"
    events = list(stylize_video(path, [style], settings, weights, tmp_path / f"{name}.mp4", job=job))
    return events, events[-1].result, job


def test_video_mode_is_consistent_and_later_frames_are_cheap(panning, style, vgg19_weights, tmp_path):
    """E_warp with the exact motion: at most a third of the same frames stylised independently."""
    _, alone, alone_job = run_video(panning, style, vgg19_weights, tmp_path, "alone", temporal_weight=0,
                                    max_frames=3)  # each independent frame takes ~100 steps: three will do
    events, result, job = run_video(panning, style, vgg19_weights, tmp_path, "video")
    independent = warping_error(stylised_frames(alone_job), known_motion(3))
    consistent = warping_error(stylised_frames(job)[:3], known_motion(3))
    assert consistent <= independent / 3
    assert result.mean_later_iterations <= result.first_iterations[0] / 4  # same tolerance, 12 frames
    assert result.warping_error < alone.warping_error
    info = probe(result.path)
    assert (info.fps, info.frames, info.has_audio) == (12, 12, True)
    shown = [e for e in events if e.preview is not None]
    assert [e.completed for e in shown] == list(range(1, 13)) and shown[-1].rate > 0


def test_a_static_clip_stays_still(style, vgg19_weights, tmp_path):
    still = tmp_path / "still.mp4"
    write_clip(still, [photo_like(48, 64)] * 4)
    _, result, job = run_video(still, style, vgg19_weights, tmp_path, "still")
    frames = stylised_frames(job)
    # near zero: independently stylised frames of the panning clip score ~2.5e-2 on this scale
    assert result.warping_error < 1e-3 and np.abs(frames[-1] - frames[0]).mean() < 0.02


def test_plain_temporal_loss_is_the_decks(panning, style, vgg19_weights, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(video_mode, "optical_flow", lambda *a: calls.append(1) or optical_flow(*a))
    _, result, _ = run_video(panning, style, vgg19_weights, tmp_path, "plain", temporal="plain", max_frames=3)
    assert result.frames == 3
    assert len(calls) == 2 * 2  # only E_warp of the result uses flow; the loss itself does not


def test_long_term_adds_frame_t_minus_k(panning, style, vgg19_weights, tmp_path, monkeypatch):
    real, terms = video_mode.stylize, []
    monkeypatch.setattr(video_mode, "stylize",
                        lambda *a, **k: terms.append([e.name for e in k["extras"]]) or real(*a, **k))
    run_video(panning, style, vgg19_weights, tmp_path, "long", long_term=2, max_frames=4, iterations=10)
    assert terms == [[], ["temporal"], ["temporal", "long_term"], ["temporal", "long_term"]]


def test_chunks_blend_without_a_jump(panning, style, vgg19_weights, tmp_path):
    """Chunks [0, 5), [3, 8), [6, 10): the frame pairs that touch the shared frames 3, 4, 6, 7 are
    within 1.5x of the others in E_warp (with the exact motion, on the written mp4)."""
    _, result, _ = run_video(panning, style, vgg19_weights, tmp_path, "chunks", frames_per_chunk=5, chunk_overlap=2,
                             max_frames=10)
    assert len(result.first_iterations) == 3 and result.frames == 10
    frames = list(read_frames(result.path))
    pairs = [warping_error(frames[k:k + 2], known_motion(2)) for k in range(9)]
    border = np.mean([pairs[k] for k in range(9) if {k, k + 1} & {3, 4, 6, 7}])
    inner = np.mean([pairs[k] for k in range(9) if not {k, k + 1} & {3, 4, 6, 7}])
    assert border <= 1.5 * inner
    assert result.border_warping_error is not None and result.inner_warping_error is not None


def test_resume_reoptimises_no_finished_frame(panning, style, vgg19_weights, tmp_path, monkeypatch):
    settings = VideoSettings(video_image_settings(**FAST), max_frames=4)
    job, out = tmp_path / "r.job", tmp_path / "r.mp4"
    for event in stylize_video(panning, [style], settings, vgg19_weights, out, job=job):
        if event.completed == 2:
            break  # stopped after two frames
    assert not out.exists() and len(list((job / "frames").glob("*.png"))) == 2
    with pytest.raises(StyleError, match="`resume`"):
        next(stylize_video(panning, [style], settings, vgg19_weights, out, job=job))
    real, calls = video_mode.stylize, []
    monkeypatch.setattr(video_mode, "stylize", lambda *a, **k: calls.append(1) or real(*a, **k))
    result = list(stylize_video(panning, [style], settings, vgg19_weights, out, job=job, resume=True))[-1].result
    assert len(calls) == 2 and result.frames_resumed == 2 and probe(out).frames == 4


@pytest.mark.parametrize("changes, message", [
    (dict(temporal="flow"), "unknown temporal loss"), (dict(temporal_weight=-1), "temporal weight"),
    (dict(frames_per_chunk=4, chunk_overlap=4), "must be smaller than the chunk"), (dict(chunk_overlap=2), "needs `frames_per_chunk`"),
    (dict(long_term=1), "at least 2"), (dict(max_frames=0), "max frames"), (dict(duration=0), "duration"),
])
def test_bad_settings_are_one_line(changes, message):
    with pytest.raises(StyleError, match=message):
        VideoSettings(**changes)


def test_clips_past_the_limits_are_refused_with_the_limit(panning, style, vgg19_weights, tmp_path, monkeypatch):
    monkeypatch.setattr(video_mode, "MAX_VIDEO_FRAMES", 4)
    with pytest.raises(StyleError, match="12 frames from 0 s, over video mode's limit of 4"):
        next(stylize_video(panning, [style], VideoSettings(video_image_settings(**FAST)), vgg19_weights,
                           tmp_path / "o.mp4", job=tmp_path / "j"))
    with pytest.raises(StyleError, match="past the clip's end"):
        next(stylize_video(panning, [style], VideoSettings(video_image_settings(**FAST), start=9), vgg19_weights,
                           tmp_path / "o.mp4", job=tmp_path / "j2"))
    with pytest.raises(StyleError, match="over video mode's limit of 2048 px"):
        VideoSettings(video_image_settings(size=4096))


PARALLEL = r"""
import json, sys
import jax
import numpy as np
from style_core import video
from style_core.video import VideoSettings, stylize_video, video_image_settings
from style_core.weights import load_weights
from style_core.images import load_image
clip, style_path, out, job, weights = sys.argv[1:6]
used, real = set(), video.stylize
def spy(*args, **kwargs):  # the device each frame's optimisation runs on (this thread's default)
    used.add(next(iter(jax.numpy.zeros(1).devices())).id)
    return real(*args, **kwargs)
video.stylize = spy
settings = VideoSettings(video_image_settings(size=64, style_layers="relu1_1,relu2_1", content_layers="relu2_2",
                                              iterations=20, optimizer="sgd", lr=1e-3, tol=0),
                         frame_iterations=5, frames_per_chunk=3, chunk_overlap=1, max_frames=7)
result = list(stylize_video(clip, [load_image(style_path)], settings, load_weights("vgg19", weights), out,
                            job=job))[-1].result
print(json.dumps({"devices": jax.device_count(), "used": sorted(used), "steps": result.iterations}))
"""


def test_chunks_run_in_parallel_on_several_devices(panning, weight_files, tmp_path):
    """Forced host devices: with four, the three chunks run at once on devices of their own, and the
    frames are the same as on one device. The weights come from the test file (initialising VGG19's
    random arrays, `load_weights("vgg19", "random")`, takes 7 s of each process on a 2-core CPU)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from style_core.images import load_image
    from tests.test_cli import STYLE
    runs = {}
    for devices in (1, 4):
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
               "JAX_PLATFORMS": "cpu"}
        job = tmp_path / f"job{devices}"
        proc = subprocess.run([sys.executable, "-c", PARALLEL, str(panning), str(STYLE), str(tmp_path / f"{devices}.mp4"),
                               str(job), str(weight_files("vgg19"))], capture_output=True, text=True, env=env,
                              cwd=Path(__file__).resolve().parent.parent)
        assert proc.returncode == 0, proc.stderr[-2000:]
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        assert report["devices"] == devices and len(report["steps"]) == 3 + 3 + 3
        runs[devices] = (report, {p.name: load_image(p) for p in sorted((job / "frames").glob("*.png"))})
    assert runs[1][0]["used"] == [0] and len(runs[4][0]["used"]) == 3
    one, four = runs[1][1], runs[4][1]
    assert set(one) == set(four) and all(np.abs(one[k] - four[k]).max() <= 1 / 255 for k in one)
