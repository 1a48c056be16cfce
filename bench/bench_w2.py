"""Gram against Wasserstein-2 style statistics, and iterate averaging on and off, on the trained network:
image mode and large mode over real photo/painting pairs, judged by `style_core.judge` (style_match,
structure, content_distance), with a content | style | result montage per configuration.

    python bench/bench_w2.py --size 256 --config gram --config "w2:style_statistic=w2,style_weight=10" \
        --config "gram-ema:average=0.9" --out bench/results/w2-cpu.json --montages test-artifacts/montages-w2

A config is NAME:field=value,... over ImageSettings (`bench_quality.parse_config`); `--large SIZE` runs
large mode at that output size too (tiles of `--tile` px, the global pass at `--size`). Compare W2 with
Gram at equal content distance: tune W2's style weight until its content_distance matches Gram's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_quality import PAIRS, montage, parse_config, run  # noqa: E402
from style_core.images import load_image, resize_longest, save_image  # noqa: E402
from style_core.judge import judge  # noqa: E402
from style_core.large import LargeSettings, stylize_large  # noqa: E402
from style_core.settings import ImageSettings  # noqa: E402
from style_core.weights import file_backbone, load_weights  # noqa: E402


def run_large(weights, pair: str, size: int, base: int, tile: int, values: dict):
    content, style = (load_image(p) for p in PAIRS[pair])
    start = time.perf_counter()
    settings = LargeSettings(ImageSettings(size=base, backbone=weights.backbone, **values), size=size, tile=tile,
                             overlap=tile // 8, base_size=base)
    for event in stylize_large(content, [style], settings, weights):
        pass
    result = event.result
    figures = judge(weights, content, [style], result.image)
    return result.image, {"pair": pair, "mode": "large", "seconds": round(time.perf_counter() - start, 1),
                          "tiles": len(result.layout), "stop": result.stop_reason,
                          **{k: round(v, 4) for k, v in figures.items()}}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--large", type=int, default=0, help="large mode's output size (0: image mode only)")
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--config", action="append", default=[])
    p.add_argument("--pairs", default="city-shipwreck,mountains-starry")
    p.add_argument("--weights", default=None)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "w2-cpu.json"))
    p.add_argument("--montages", default=str(Path(__file__).resolve().parent.parent / "test-artifacts" / "montages-w2"))
    args = p.parse_args()
    if args.weights is None:
        from tests.keras_models import trained_vgg16_onnx
        args.weights = str(trained_vgg16_onnx())
    weights = load_weights(file_backbone(args.weights) or "vgg19", args.weights)
    shots = Path(args.montages)
    shots.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    table = json.loads(out.read_text())["runs"] if out.exists() else []
    for name, values in (parse_config(c) for c in (args.config or ["gram"])):
        rows = []
        for pair in args.pairs.split(","):
            if args.large:
                image, row = run_large(weights, pair, args.large, args.size, args.tile, values)
            else:
                image, row = run(weights, pair, args.size, values, "image")
                row["mode"] = "image"
            row.update(config=name, values=values, size=args.large or args.size)
            table = [r for r in table if (r["config"], r["pair"], r["mode"], r["size"]) !=
                     (name, pair, row["mode"], row["size"])] + [row]
            content, style = (load_image(q) for q in PAIRS[pair])
            rows.append([resize_longest(content, 256), resize_longest(style, 256), image])
            save_image(shots / f"{row['mode']}-{row['size']}-{name}-{pair}.png", image)
            print(f"{row['mode']:>5} {row['size']:5d} {name:>12} {pair:>16} style_match {row['style_match']:.3f} "
                  f"structure {row['structure']:.3f} content {row['content_distance']:.3f} {row['seconds']:6.1f} s",
                  flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"weights": weights.source, "runs": table}, indent=1))
        save_image(shots / f"montage-{'large' if args.large else 'image'}-{args.large or args.size}-{name}.png",
                   montage(rows))


if __name__ == "__main__":
    main()
