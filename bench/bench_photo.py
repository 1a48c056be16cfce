"""Photo-mode benchmark: the cost of the matting term, building its statistics, precision, photo-likeness.

    python bench/bench_photo.py [--size 512] [--stats-megapixels 3 12] [--quality-size 128]

1. Seconds per Adam step at --size with and without L_photo (the same compiled loop, one more term).
2. Building the per-window statistics (float64 Cholesky, `matting_stats`) at each of
   --stats-megapixels (4:3 images), in a fresh process each: wall time warm and with compilation,
   and the peak resident memory it adds (Linux VmHWM, reset once the image is made), per pixel, to
   show it is linear in N.
3. Precision at 700 px on the photo-like test image: the float32 product against the same algorithm
   in float64, and against a variant whose statistics are also float32 (what float64 buys).
4. Photo-likeness: image mode against photo mode at the same style weight on generated images
   (affine residual, edge SSIM; `photo.photo_metrics`).

Untrained weights (`random`) unless --weights: times do not depend on the weights' values; the
photo-likeness figures are indicative. Writes bench/results/photo-<device>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from procstatus import reset_peak, vm_kib  # noqa: E402
from style_core import matting  # noqa: E402
from style_core.images import load_image, resize  # noqa: E402
from style_core.optimize import descend  # noqa: E402
from style_core.photo import PhotoSettings, photo_image_settings, photo_term, stylize_photo  # noqa: E402
from style_core.objective import image_objective, style_targets  # noqa: E402
from style_core.weights import load_weights  # noqa: E402
from tests.synthetic import photo_like  # noqa: E402


def seconds_per_step(settings, weights, content, style, extras, steps: int) -> float:
    """Adam steps inside the compiled chunks, after the compiling call (as bench_image.time_loop)."""
    objective = image_objective(settings, extras)
    aux = objective.aux(weights.variables, content, style_targets(settings, weights.variables, [style]))
    marks = [(r.step, time.perf_counter()) for r in descend(
        jnp.asarray(content), objective.function, aux, objective.weights, iterations=steps + 2,
        optimizer="adam", lr=settings.lr, steps_per_call=steps)]
    (s0, t0), (s1, t1) = marks[1], marks[-1]
    return (t1 - t0) / max(s1 - s0, 1)


def stats_run(megapixels: float) -> dict:
    """In a fresh process: build the statistics of a 4:3 photo-like image twice (compile, warm)."""
    h = int(round((megapixels * 1e6 * 3 / 4) ** 0.5))
    w = int(round(h * 4 / 3))
    image = photo_like(h, w)
    reset_peak()
    base = vm_kib("VmHWM")
    times = []
    for _ in range(2):
        t = time.perf_counter()
        stats = matting.matting_stats(image)
        jax.block_until_ready(stats)
        times.append(time.perf_counter() - t)
        del stats
    peak = vm_kib("VmHWM")
    return {"megapixels": round(h * w / 1e6, 2), "shape": [h, w], "first_s": round(times[0], 3),
            "warm_s": round(times[1], 3), "peak_rss_gib": round(peak / 2 ** 20, 3),
            "rss_before_gib": round(base / 2 ** 20, 3),
            "bytes_per_pixel": round((peak - base) * 1024 / (h * w), 1)}


def precision(size: int = 700) -> dict:
    image = photo_like(size, size)
    rng = np.random.default_rng(1)
    p = np.clip(0.8 * image + 0.1 + 0.05 * rng.standard_normal(image.shape), 0, 1)
    ours = np.asarray(matting.laplacian_product(matting.matting_stats(image), jnp.asarray(p, jnp.float32)))
    mu, whiten = matting._stats(jnp.asarray(image), jnp.float32(matting.DEFAULT_EPSILON), jnp.float32)
    all32 = matting.MattingStats(jnp.asarray(image), mu, whiten)  # statistics in float32 too
    naive = np.asarray(matting.laplacian_product(all32, jnp.asarray(p, jnp.float32)))
    with jax.enable_x64(True):
        reference = np.asarray(matting.laplacian_product(
            matting.matting_stats(image, dtype=jnp.float64), jnp.asarray(p, jnp.float64)))
    top = np.abs(reference).max()
    return {"size": size, "epsilon": matting.DEFAULT_EPSILON,
            "max_error_over_max_entry": float(np.abs(ours - reference).max() / top),
            "float32_statistics_max_error_over_max_entry": float(np.abs(naive - reference).max() / top)}


def quality(weights, size: int, iterations: int) -> list[dict]:
    y, x = np.mgrid[0:size, 0:size] / size
    style = np.stack([0.5 + 0.5 * np.sin(20 * x + 9 * y), 0.5 + 0.4 * np.cos(17 * y),
                      0.3 + 0.3 * np.sin(11 * (x + y))], -1).astype(np.float32)
    content = photo_like(size * 3 // 4, size)
    rows = []
    for label, photo_weight, smooth in [("image mode", 0.0, False), ("photo", None, False),
                                        ("photo + smoothing", None, True)]:
        kw = {} if photo_weight is None else {"photo_weight": photo_weight}
        settings = PhotoSettings(photo_image_settings(size=size, iterations=iterations), smooth=smooth, **kw)
        result = list(stylize_photo(content, [style], settings, weights))[-1].result
        stage = result.stages[-1]
        rows.append({"run": label, "size": size, "iterations": iterations, **result.metrics,
                     "style_loss_initial": stage.initial_losses["style"],
                     "style_loss_final": stage.final_losses["style"], "seconds": round(result.seconds, 2)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--stats-megapixels", type=float, nargs="*", default=[3.0, 12.0])
    parser.add_argument("--quality-size", type=int, default=128)
    parser.add_argument("--quality-iterations", type=int, default=200)
    parser.add_argument("--weights", default="random")
    parser.add_argument("--one", type=float, default=None, help=argparse.SUPPRESS)  # a child's job
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(stats_run(args.one)))
        return
    device = jax.devices()[0]
    weights = load_weights("vgg19", args.weights)
    out = {"machine": platform.platform(), "device": str(device), "weights": weights.source,
           "command": " ".join(sys.argv)}

    content_full = load_image(ROOT / "assets" / "content.png")
    content = resize(content_full, round(content_full.shape[0] * args.size / max(content_full.shape[:2])),
                     args.size)
    style = resize(load_image(ROOT / "assets" / "style.png"), args.size, args.size)
    settings = PhotoSettings(photo_image_settings(size=args.size))
    plain = seconds_per_step(settings.image, weights, content, style, (), args.steps)
    photo = seconds_per_step(settings.image, weights, content, style, (photo_term(settings),), args.steps)
    out["step_cost"] = {"size": args.size, "shape": list(content.shape[:2]), "adam_s_per_step": plain,
                        "adam_s_per_step_with_photo": photo, "overhead": photo / plain - 1}
    print(f"{content.shape[1]}x{content.shape[0]} Adam step: {plain:.3f} s, with L_photo {photo:.3f} s "
          f"(+{100 * (photo / plain - 1):.1f}%)", flush=True)

    out["statistics"] = []
    for mp in args.stats_megapixels:
        proc = subprocess.run([sys.executable, __file__, "--one", str(mp)], capture_output=True, text=True)
        if proc.returncode:
            sys.exit(proc.stderr)
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        out["statistics"].append(row)
        print(f"statistics of {row['shape'][1]}x{row['shape'][0]} ({row['megapixels']} MP): {row['warm_s']:.2f} s "
              f"warm, {row['first_s']:.2f} s with compilation, peak RSS {row['peak_rss_gib']:.2f} GiB "
              f"({row['bytes_per_pixel']:.0f} B/pixel above the process with its image loaded)", flush=True)

    out["precision"] = precision()
    p = out["precision"]
    print(f"700 px float32 product: max error {100 * p['max_error_over_max_entry']:.4f}% of the largest "
          f"entry (statistics in float32 too: {100 * p['float32_statistics_max_error_over_max_entry']:.4f}%)",
          flush=True)

    out["quality"] = quality(weights, args.quality_size, args.quality_iterations)
    for row in out["quality"]:
        print(f"{row['run']:18s} affine residual {row['affine_residual']:.4f}  edge SSIM {row['edge_ssim']:.3f}  "
              f"style loss {row['style_loss_initial']:.3g} -> {row['style_loss_final']:.3g}", flush=True)

    name = "cpu" if device.platform == "cpu" else str(device.device_kind).replace(" ", "-").lower()
    path = ROOT / "bench" / "results" / f"photo-{name}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
