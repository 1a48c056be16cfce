"""Large-mode benchmark: wall time and peak resident memory of print-size outputs, and seam/style quality.

    python bench/bench_large.py [--sizes 4096 8192] [--tile 512] [--overlap 64] [--iterations 10]
                                [--tile-iterations 1] [--quality-size 1024 --quality-tile 256]

Each size runs in a fresh process, which reports its own peak resident set size (ru_maxrss), so the
sizes do not inherit each other's memory. The quality run stylises a smaller output for real
(L-BFGS) and measures the seam statistic at every tile edge (and on lines through the tiles'
middles, where no edge is) and the spread of the per-tile style losses, on large mode's canvas and,
as references, on image mode's result in one pass at the same size and on the style image itself,
cut into the same tiles. Untrained weights
(`random`) unless --weights: time and memory do not depend on the weights' values; the quality
figures are indicative.
Writes bench/results/large-<device>.json, keeping the rows of earlier invocations for other jobs.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run_one(size: int, tile: int, overlap: int, iterations: int, tile_iterations: int, optimizer: str,
            weights_source: str, quality: bool) -> dict:
    """One large-mode job in this process; returns its figures (memory read before any analysis)."""
    import jax

    from style_core.images import load_image, resize
    from style_core.large import LargeSettings, canvas_bytes, stylize_large, tile_style_losses
    from style_core.settings import ImageSettings
    from style_core.transfer import stylize
    from style_core.weights import load_weights

    weights = load_weights("vgg19", weights_source)
    content, style = load_image(ROOT / "assets" / "content.png"), load_image(ROOT / "assets" / "style.png")
    side = min(content.shape[:2])  # a square output: --sizes 4096 means 4096x4096
    top, left = (content.shape[0] - side) // 2, (content.shape[1] - side) // 2
    content = content[top:top + side, left:left + side]
    settings = LargeSettings(ImageSettings(iterations=iterations, optimizer=optimizer),  # its default lr
                             size=size, tile=tile, overlap=overlap, tile_iterations=tile_iterations)
    start = time.perf_counter()
    stages: dict[str, float] = {}
    last_stage, last_time = None, start
    for event in stylize_large(content, [style], settings, weights):
        if event.stage != last_stage:
            now = time.perf_counter()
            if last_stage:
                stages[last_stage] = round(now - last_time, 2)
            last_stage, last_time = event.stage, now
    result = event.result
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    out = {"size": size, "output": list(result.image.shape[:2]), "tile": tile, "overlap": overlap,
           "tiles": len(result.layout), "iterations": iterations, "tile_iterations": tile_iterations,
           "optimizer": optimizer, "wall_s": round(wall, 1), "stages_s": stages,
           "s_per_tile": round(stages.get("tiles", 0.0) / len(result.layout), 2),
           "peak_rss_gib": round(peak / 2**30, 3),
           "canvas_gib": round(canvas_bytes(result.image.shape[:2]) / 2**30, 3),
           "device": jax.devices()[0].device_kind, "weights": weights.source}
    if quality:
        measure = functools.partial(tile_figures, content=content, style=style, settings=settings,
                                    weights=weights, layout=result.layout)
        out.update(measure(result.image))
        out["optimizer_style_loss_max_over_min"] = round(max(t["style"] for t in result.tile_losses)
                                                         / min(t["style"] for t in result.tile_losses), 3)
        # The reference: image mode in one pass at the same size and steps, cut into the same tiles.
        # What it shows is what the content and the objective make of each region, not tiling.
        one = settings.image.replace(size=size, scales=1)
        for e in stylize(content, [style], one, weights):
            pass
        out["one_pass"] = measure(e.result.image)
        # The floor of the per-tile style figure: the style image itself as the output, cut into the
        # same tiles (a window of a texture is not the whole texture).
        out["style_image"] = spread(tile_style_losses(resize(style, *result.image.shape[:2]), content, [style],
                                                      settings, weights, result.layout))
        # the same edge and tile in both: how much of each figure the tiling adds
        out["seam_ratio_edges_over_one_pass_max"] = round(max(
            a / b for a, b in zip(out["seam_ratio_edges"], out["one_pass"]["seam_ratio_edges"])), 3)
        out["style_loss_tiles_over_one_pass"] = [
            float(f"{a / b:.3g}") for a, b in zip(out["style_loss_tiles"], out["one_pass"]["style_loss_tiles"])]
    return out


def spread(styles: list[float]) -> dict:
    """How far apart per-tile style losses are: best against worst, and the 90th against the 10th
    percentile."""
    import numpy as np

    return {"style_loss_max_over_min": round(max(styles) / min(styles), 3),
            "style_loss_p90_over_p10": round(float(np.percentile(styles, 90) / np.percentile(styles, 10)), 3)}


def tile_figures(image, content, style, settings, weights, layout) -> dict:
    """Seam ratios at every tile edge (and, as their reference, on lines through the tiles' middles),
    and each tile's style loss measured on an image of the output's shape itself (the blended
    canvas, not the tile before blending) against the full-scale style targets."""
    import numpy as np

    from style_core.large import tile_style_losses
    from style_core.tiling import midlines, seam_ratio, seam_ratios

    styles = tile_style_losses(image, content, [style], settings, weights, layout)
    ratios = seam_ratios(image, layout)
    # the same statistic on lines through the tiles' middles, where no boundary lies
    mids = midlines(image.shape[:2], layout)
    mid_ratios = seam_ratios(image, mids)
    return {"seam_ratio_pooled": round(seam_ratio(image, layout), 3),
            "seam_ratio_edges_median": round(float(np.median(ratios)), 3),
            "seam_ratio_edges_max": round(max(ratios), 3),
            "midline_ratio_pooled": round(seam_ratio(image, mids), 3),
            "midline_ratio_median": round(float(np.median(mid_ratios)), 3),
            "midline_ratio_max": round(max(mid_ratios), 3),
            **spread(styles),
            "seam_ratio_edges": [round(r, 3) for r in ratios],
            "style_loss_tiles": [float(f"{v:.4g}") for v in styles]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[4096, 8192])
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=10, help="steps of the global pass")
    parser.add_argument("--tile-iterations", type=int, default=1)
    parser.add_argument("--quality-size", type=int, default=1024, help="0: skip the quality run")
    parser.add_argument("--quality-tile", type=int, default=256)
    parser.add_argument("--quality-iterations", type=int, default=20)
    parser.add_argument("--weights", default="random")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child process's job (JSON)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(**json.loads(args.one))))
        return
    jobs = []
    if args.quality_size:
        jobs.append(dict(size=args.quality_size, tile=args.quality_tile, overlap=args.quality_tile // 8,
                         iterations=args.quality_iterations, tile_iterations=args.quality_iterations,
                         optimizer="lbfgs", weights_source=args.weights, quality=True))
    jobs += [dict(size=s, tile=args.tile, overlap=args.overlap, iterations=args.iterations,
                 tile_iterations=args.tile_iterations, optimizer="adam", weights_source=args.weights,
                 quality=False) for s in args.sizes]
    rows = []
    path = ROOT / "bench" / "results" / "large-cpu.json"
    key = lambda r: (r["size"], r["tile"], r["overlap"], r["iterations"], r["tile_iterations"], r["optimizer"])
    for job in jobs:
        proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(job)], capture_output=True,
                              text=True)
        if proc.returncode:
            sys.exit(proc.stderr)
        rows.append(dict(json.loads(proc.stdout.strip().splitlines()[-1]), command=" ".join(sys.argv)))
        r = rows[-1]
        print(f"{r['output'][1]}x{r['output'][0]}  tiles {r['tiles']:4d} ({r['tile']} px, {r['overlap']} overlap)  "
              f"steps {r['iterations']}+{r['tile_iterations']}/tile {r['optimizer']:5s}  wall {r['wall_s']:8.1f} s  "
              f"{r['s_per_tile']:.2f} s/tile  peak RSS {r['peak_rss_gib']:.2f} GiB (canvas {r['canvas_gib']:.2f})"
              + "".join(f"\n  {what}: seams pooled {q['seam_ratio_pooled']} median {q['seam_ratio_edges_median']} "
                        f"max {q['seam_ratio_edges_max']} (midlines: pooled {q['midline_ratio_pooled']} "
                        f"median {q['midline_ratio_median']} max {q['midline_ratio_max']})  "
                        f"per-tile style loss max/min {q['style_loss_max_over_min']} "
                        f"(p90/p10 {q['style_loss_p90_over_p10']})"
                        for what, q in (("large mode", r), ("image mode, one pass", r.get("one_pass")))
                        if q and "seam_ratio_pooled" in q)
              + (f"\n  against the one pass at the same edge / tile: seams max "
                 f"{r['seam_ratio_edges_over_one_pass_max']}, style loss "
                 f"{min(r['style_loss_tiles_over_one_pass'])}..{max(r['style_loss_tiles_over_one_pass'])}x"
                 if "one_pass" in r else "")
              + (f"\n  the style image itself as the output, same tiles: per-tile style loss max/min "
                 f"{r['style_image']['style_loss_max_over_min']} "
                 f"(p90/p10 {r['style_image']['style_loss_p90_over_p10']})"
                 if "style_image" in r else ""), flush=True)
        device = rows[0]["device"].replace(" ", "-").lower()
        path = path.with_name(f"large-{'cpu' if 'cpu' in device else device}.json")
        # Runs of other sizes from earlier invocations stay; a rerun of the same job replaces its row.
        kept = json.loads(path.read_text())["runs"] if path.exists() else []
        kept = [k for k in kept if key(k) not in {key(r) for r in rows}]
        path.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                                    "runs": sorted(kept + rows, key=key)}, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
