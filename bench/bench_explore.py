"""Explore studies at the app's default size: seconds per study on this machine.

    python bench/bench_explore.py [--size 128] [--iterations 60]

Writes bench/results/explore-<platform>.json. Timing does not depend on the weights' values, so it
runs with untrained weights unless --weights names a source.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--weights", default="random")
    parser.add_argument("--studies", nargs="+", default=list(STUDIES), choices=list(STUDIES))
    args = parser.parse_args()
    content, style = load_image(ROOT / "assets" / "content.png"), load_image(ROOT / "assets" / "style.png")
    weights_for = functools.lru_cache()(lambda backbone: load_weights(backbone, args.weights))
    base = study_settings(size=args.size, iterations=args.iterations)
    rows = []
    print(f"{'study':<16} {'cells':>5} {'seconds':>8}  first cell / last cell")
    for name in args.studies:
        start = time.perf_counter()
        cells = list(run_study(name, content, style, base, weights_for))
        seconds = time.perf_counter() - start
        rows.append({"study": name, "cells": len(cells), "seconds": round(seconds, 1),
                     "cell_seconds": [round(c.seconds, 2) for c in cells]})
        print(f"{name:<16} {len(cells):>5} {seconds:>8.1f}  {cells[0].seconds:.1f} s / {cells[-1].seconds:.1f} s")
    out = ROOT / "bench" / "results" / f"explore-{jax.default_backend()}{'' if len(rows) == len(STUDIES) else '-partial'}.json"
    out.write_text(json.dumps({"size": args.size, "iterations": args.iterations, "device": str(jax.devices()[0]),
                               "weights": args.weights, "studies": rows}, indent=2))
    print(f"total {sum(r['seconds'] for r in rows):.0f} s; wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
