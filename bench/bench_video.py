"""Video-mode benchmark: memory over a long clip, frames per minute, steps per frame, consistency.

    python bench/bench_video.py [--frames 300] [--size 64] [--compare-frames 12]

1. A generated clip of --frames frames (a camera panning 1 px per frame across a photo-like scene,
   with an audio track) is stylised in one process; its resident memory (VmRSS) is sampled after
   every frame, to show that it does not grow with the clip's length.
2. Steps of the first frame against the later ones (same tolerance), frames per minute.
3. E_warp with the exact known motion, video mode against the same frames stylised independently
   (temporal weight 0), on the first --compare-frames frames.

Untrained weights (`random`) unless --weights; writes bench/results/video-<device>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import jax

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from style_core.flow import warping_error  # noqa: E402
from style_core.images import load_image  # noqa: E402
from style_core.video import VideoSettings, stylize_video, video_image_settings  # noqa: E402
from style_core.videoio import read_frames  # noqa: E402
from style_core.weights import load_weights  # noqa: E402
from procstatus import vm_kib  # noqa: E402
from tests.synthetic import pan, pan_motion, write_clip  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--compare-frames", type=int, default=12)
    parser.add_argument("--style-layers", default="relu1_1,relu2_1,relu3_1",
                        help="shallow layers by default, so that 300 frames fit in minutes on a CPU")
    parser.add_argument("--content-layers", default="relu2_2")
    parser.add_argument("--weights", default="random")
    parser.add_argument("--out", default=None, help="results file (bench/results/video-<device>.json)")
    args = parser.parse_args()
    layers = dict(style_layers=args.style_layers, content_layers=args.content_layers)
    weights = load_weights("vgg19", args.weights)
    style = load_image(ROOT / "assets" / "style.png")
    h, w = args.size * 3 // 4, args.size
    work = Path(tempfile.mkdtemp(prefix="bench_video_"))
    clip = work / "pan.mp4"
    write_clip(clip, pan(h, w, args.frames, 1), fps=24, audio=True)
    out = {"machine": platform.platform(), "device": str(jax.devices()[0]), "weights": weights.source,
           "command": " ".join(sys.argv), "clip": {"frames": args.frames, "shape": [h, w], "fps": 24},
           "layers": layers}

    settings = VideoSettings(video_image_settings(size=args.size, **layers))
    samples, start = [], time.perf_counter()
    for event in stylize_video(clip, [style], settings, weights, work / "out.mp4", job=work / "job"):
        if event.preview is not None:
            samples.append((event.completed, vm_kib("VmRSS") / 1024))
        result = event.result
    wall = time.perf_counter() - start
    marks = sorted({1, 10, 50, 100, 200, args.frames} & {f for f, _ in samples})
    rss = {f: round(r, 1) for f, r in samples if f in marks}
    later = [r for f, r in samples if f >= min(10, args.frames)]
    out["long_clip"] = {
        "wall_s": round(wall, 1), "frames_per_minute": round(args.frames / wall * 60, 1),
        "rss_mib_at_frame": rss, "rss_mib_min_after_10": round(min(later), 1),
        "rss_mib_max_after_10": round(max(later), 1), "first_frame_steps": result.first_iterations[0],
        "mean_later_steps": round(result.mean_later_iterations, 2),
        "later_over_first": round(result.mean_later_iterations / max(result.first_iterations[0], 1), 3),
        "warping_error_dis": result.warping_error}
    print(f"{args.frames} frames of {w}x{h}: {wall:.0f} s ({args.frames / wall * 60:.1f} frames/min); RSS "
          + ", ".join(f"frame {f}: {r:.0f} MiB" for f, r in rss.items())
          + f"; first frame {result.first_iterations[0]} steps, later {result.mean_later_iterations:.1f} "
          f"on average", flush=True)

    n = args.compare_frames
    rows = {}
    for label, weight in [("independent", 0.0), ("video", settings.temporal_weight)]:
        s = VideoSettings(video_image_settings(size=args.size, **layers), temporal_weight=weight, max_frames=n)
        list(stylize_video(clip, [style], s, weights, work / f"{label}.mp4", job=work / f"{label}.job"))
        frames = [load_image(p) for p in sorted((work / f"{label}.job" / "frames").glob("*.png"))]
        rows[label] = warping_error(frames, pan_motion(n, (h, w), 1))
    out["consistency"] = {"frames": n, "e_warp_known_motion": rows,
                          "video_over_independent": rows["video"] / rows["independent"]}
    print(f"E_warp with the known motion over {n} frames: independent {rows['independent']:.3g}, video "
          f"{rows['video']:.3g} ({rows['video'] / rows['independent']:.3f}x)", flush=True)
    assert len(list(read_frames(work / "out.mp4"))) == args.frames

    name = "cpu" if jax.devices()[0].platform == "cpu" else str(jax.devices()[0].device_kind).replace(" ", "-").lower()
    path = Path(args.out) if args.out else ROOT / "bench" / "results" / f"video-{name}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
