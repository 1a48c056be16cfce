"""Spatial control's cost: seconds per step with two regions against the plain style term (issue 19:
within 1.3x at 512 px).

    python bench/bench_regions.py [--sizes 512] [--steps 5] [--weights random] [--out FILE]

For each size, the bundled content with two style images, once with one style everywhere (the plain
style term) and once with two regions (assets/masks/left.png and right.png, style.png on the left,
style2.png on the right: two guided Grams per layer instead of one). Timed for each: one evaluation (a
jitted value and gradient: what an L-BFGS line search trial costs), an Adam step and an L-BFGS step
inside the compiled chunks (`bench_image.time_loop`; L-BFGS's includes its line search's extra
evaluations). Timing does not depend on the weights' values: untrained weights (`random`) unless
--weights names a file. Prints a table and writes bench/results/regions-<platform>.json.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_image import time_loop, time_value_and_grad, write_result  # noqa: E402
from style_core.images import fit_longest_side, load_image, load_mask, resize  # noqa: E402
from style_core.objective import image_objective, region_targets, style_targets  # noqa: E402
from style_core.regions import Region, check_regions  # noqa: E402
from style_core.settings import ImageSettings  # noqa: E402
from style_core.weights import load_weights  # noqa: E402

ASSETS = ROOT / "assets"


def problem(settings: ImageSettings, weights, content, styles, regions):
    """(terms, aux, weights) of the objective at the content's size: plain with no regions."""
    objective = image_objective(settings, regions=bool(regions))
    grams = (region_targets(settings, weights.variables, styles, regions) if regions
             else style_targets(settings, weights.variables, styles[:1]))
    aux = objective.aux(weights.variables, content, grams, [r.mask for r in regions])
    return objective.function, aux, objective.weights


def timings(settings, weights, content, styles, regions, steps: int) -> dict[str, float]:
    terms, aux, term_weights = problem(settings, weights, content, styles, regions)
    x = jnp.asarray(content)
    evaluation, compile_s, _ = time_value_and_grad(terms, aux, term_weights, x, repeats=steps)
    return {"evaluation_s": evaluation, "compile_s": compile_s,
            "adam_s_per_step": time_loop(terms, aux, term_weights, x, "adam", 0.02, steps),
            "lbfgs_s_per_step": time_loop(terms, aux, term_weights, x, "lbfgs", 1.0, steps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512])
    parser.add_argument("--steps", type=int, default=5, help="timed steps (and evaluations) per figure")
    parser.add_argument("--weights", default="random")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    device = jax.devices()[0]
    weights = load_weights("vgg19", args.weights)
    content_full = load_image(ASSETS / "content.png")
    styles_full = [load_image(ASSETS / name) for name in ("style.png", "style2.png")]
    halves = [load_mask(ASSETS / "masks" / name) for name in ("left.png", "right.png")]
    regions = check_regions([Region(m, k) for k, m in enumerate(halves)], 2)
    rows = []
    for size in args.sizes:
        settings = ImageSettings(size=size)
        shape = fit_longest_side(content_full.shape[:2], size)
        content = resize(content_full, *shape)
        styles = [resize(s, size, size) for s in styles_full]
        plain = timings(settings, weights, content, styles, (), args.steps)
        masked = timings(settings, weights, content, styles, regions, args.steps)
        rows.append({"size": size, "shape": list(shape), "plain": plain, "two_regions": masked,
                     "ratio": {k: masked[k] / plain[k] for k in plain if k != "compile_s"}})

    result = {"device": str(device), "platform": platform.platform(), "jax": jax.__version__,
              "weights": weights.source, "steps": args.steps, "rows": rows,
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(f"device {device}; weights {weights.source}; seconds, plain -> two regions (ratio)")
    print(f"{'size':>5} {'HxW':>9} {'evaluation':>26} {'adam step':>26} {'lbfgs step':>26}")
    for r in rows:
        cells = [f"{r['plain'][k]:.4f} -> {r['two_regions'][k]:.4f} ({r['ratio'][k]:.2f}x)"
                 for k in ("evaluation_s", "adam_s_per_step", "lbfgs_s_per_step")]
        print(f"{r['size']:>5} {r['shape'][0]:>4}x{r['shape'][1]:<4} " + " ".join(f"{c:>26}" for c in cells))
    write_result(result, args.out or ROOT / "bench" / "results" / f"regions-{device.platform}.json")


if __name__ == "__main__":
    main()
