"""The Video tab: a clip painted frame by frame without flicker; a stopped job continues."""

from __future__ import annotations

import gradio as gr

from style_core.jobs import remove_folder
from style_core.modes import MODES, ran_on
from style_core.settings import ImageSettings
from style_core.video import DEFAULT_TEMPORAL_WEIGHT, VideoSettings, video_image_settings
from style_core.videoio import probe

from ..controls import image_knobs, controls, power_of_ten, radio, strength, style_strength, tab_settings, the_rest
from ..files import job_dir, new_run_dir
from ..inputs import load_inputs
from ..runner import Job, preview_of, run_mode, source_of, user_errors, wire
from ..state import STATE
from ..widgets import result_image, style_files, tab_columns

TEMPORAL_STRENGTH = power_of_ten(DEFAULT_TEMPORAL_WEIGHT)


@user_errors(3)
def run_video(clip, styles, request: gr.Request = None, **values):
    """Stylises a clip frame by frame; streams each finished frame, then the playable video. A stopped
    job keeps its frames: running the same inputs and settings again continues it. `values`: the tab's
    controls by name. Outputs: frame, video, status."""
    settings = tab_settings("video", values)
    mode, backbone = MODES["video"], settings.image.backbone
    info, style_images = load_inputs(clip, styles, "video", probe)
    job = None

    def start(weights):
        nonlocal job
        job = job_dir("video", mode.job_key(style_images, settings, weights[backbone], files=(info.path,)))
        run.note = " · continuing a stopped job" if job.exists() else ""
        return mode.start(clip, style_images, settings, weights[backbone], new_run_dir(request) / "stylised.mp4",
                          job=job, resume=True, backend=STATE.cluster)

    def on_stop(shown, view):
        return (shown[0] if shown else None, None), (
            "The finished frames are kept, and Run with the same inputs and settings continues from them; the "
            "picture is the last finished frame (its download button is in its corner).")

    def on_done(result, weights, seconds):
        remove_folder(job, mode.pieces)
        border = (f" (chunk overlaps {result.border_warping_error:.3g}, elsewhere "
                  f"{result.inner_warping_error:.3g})" if result.border_warping_error is not None else "")
        kept = f" ({result.frames_resumed} from the stopped job)" if result.frames_resumed else ""
        computed = result.frames - result.frames_resumed
        where = ran_on(result.units)
        return (gr.skip(), str(result.path)), (
            f"**{result.frames} frames at {float(result.fps):g} fps in {seconds:.1f} s**{kept} · "
            f"{computed / max(seconds, 1e-6) * 60:.1f} frames/min · first frame "
            f"{result.first_iterations[0]} steps, later frames {result.mean_later_iterations:.1f} "
            f"on average · warping error E_warp {result.warping_error:.3g}{border} · weights: "
            f"{source_of(weights[backbone])}" + (f" · {where}" if where else ""))

    run = Job("video", 3, [backbone], start, on_done, on_stop, picture=preview_of)
    yield from run_mode(run, request)


def build(d: dict, page_banner) -> None:
    gr.Markdown("A clip painted frame by frame without flicker: each frame is kept consistent with the "
                "previous one, warped along the clip's optical flow. Stop keeps the finished frames; "
                "running the same inputs and settings again continues the job.")
    with tab_columns("video_") as cols:
        with cols.controls:
            clip = gr.Video(label="Video", sources=["upload"], format=None, elem_id="video_input", height=220)
            styles = style_files("video_")
            fields = lambda **looks: controls(VideoSettings, ImageSettings, **looks)  # noqa: E731
            with gr.Row():
                c = fields(size=dict(value=d["size"], maximum=1024, label="Frame size (px)"),
                           max_frames=dict(value=d["max_frames"]), start={})
            with gr.Row():
                c["style_strength"] = style_strength(video_image_settings())
                c["temporal_strength"] = strength(TEMPORAL_STRENGTH, "Temporal consistency",
                                                  f"0 = off (every frame on its own); temporal weight = 10^value "
                                                  f"({TEMPORAL_STRENGTH:g} = {DEFAULT_TEMPORAL_WEIGHT:g})")
            with gr.Accordion("Advanced", open=False):
                with gr.Row():
                    c |= fields(iterations=dict(value=d["iterations"], label="First frame iterations"),
                                frame_iterations=dict(value=d.get("frame_iterations", d["iterations"])))
                with gr.Row():
                    c |= fields(temporal=radio("Temporal loss"), frames_per_chunk={}, chunk_overlap={})
                with gr.Row():
                    c |= the_rest(c, VideoSettings)
                c |= image_knobs(c, d, "video_", skip=("backbone",))
        with cols.pane:
            preview = result_image("video_frame", "Current frame")
    result = gr.Video(label="Stylised video", interactive=False, elem_id="video_result", height=400)
    wire(cols, run_video, [clip, styles], [preview, result, cols.progress], "video", "video", page_banner, c)
