"""Image-mode benchmark: speed per iteration against the machine's own matmul rate, and convergence.

    python bench/bench_image.py [--sizes 256 512] [--converge-size 256] [--converge-iterations 500]

Prints a table and writes bench/results/image-<device>.json. Timing does not depend on the weights'
values, so it runs with untrained weights (`random`) unless --weights names a file; the convergence
figure is therefore indicative of the optimiser, not of a trained network's loss landscape.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from style_core.images import load_image, resize  # noqa: E402
from style_core.optimize import descend  # noqa: E402
from style_core.settings import ImageSettings  # noqa: E402
from style_core.objective import image_objective, style_targets  # noqa: E402
from style_core.weights import load_weights  # noqa: E402
from roofline import conv_gflop, matmul_gflops  # noqa: E402


def problem(settings: ImageSettings, weights, content, style):
    shape = content.shape[:2]
    objective = image_objective(settings)
    aux = objective.aux(weights.variables, content, style_targets(settings, weights.variables, [style]))
    return objective.function, aux, objective.weights, shape


def time_value_and_grad(terms, aux, weights, x, repeats=3):
    def total(y):
        return sum(weights[k] * v for k, v in terms(y, aux).items())
    f = jax.jit(jax.value_and_grad(total))
    t = time.perf_counter()
    f(x)[1].block_until_ready()
    compile_s = time.perf_counter() - t
    cost = f.lower(x).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        f(x)[1].block_until_ready()
        best = min(best, time.perf_counter() - t)
    return best, compile_s, cost.get("flops", float("nan")) / 1e9


def time_loop(terms, aux, weights, x, optimizer, lr, steps):
    """Seconds per step inside the compiled chunks (the first, compiling chunk excluded)."""
    reports = descend(x, terms, aux, weights, iterations=steps + 2, optimizer=optimizer, lr=lr, steps_per_call=steps)
    marks = []
    for report in reports:
        marks.append((report.step, time.perf_counter()))
    (s0, t0), (s1, t1) = marks[1], marks[-1]  # after the compile call and the one-step probe
    return (t1 - t0) / max(s1 - s0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--converge-size", type=int, default=256)
    parser.add_argument("--converge-iterations", type=int, default=500)
    parser.add_argument("--loop-steps", type=int, default=5)
    parser.add_argument("--weights", default="random")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    device = jax.devices()[0]
    weights = load_weights("vgg19", args.weights)
    content_full = load_image(ROOT / "assets" / "content.png")
    style_full = load_image(ROOT / "assets" / "style.png")
    roof = matmul_gflops()
    rows = []
    for size in args.sizes:
        settings = ImageSettings(size=size)
        h, w = round(content_full.shape[0] * size / max(content_full.shape[:2])), size
        content = resize(content_full, h, w)
        style = resize(style_full, size, size)
        terms, aux, term_weights, shape = problem(settings, weights, content, style)
        x = jnp.asarray(content)
        seconds, compile_s, xla_gflop = time_value_and_grad(terms, aux, term_weights, x)
        analytic = conv_gflop(settings, shape)
        adam = time_loop(terms, aux, term_weights, x, "adam", 0.02, args.loop_steps)
        lbfgs = time_loop(terms, aux, term_weights, x, "lbfgs", 1.0, args.loop_steps)
        rows.append({"size": size, "shape": list(shape), "value_and_grad_s": seconds,
                     "compile_s": compile_s, "xla_gflop": xla_gflop, "conv_gflop": analytic,
                     "gflops": analytic / seconds, "ratio_to_matmul": analytic / seconds / roof,
                     "adam_s_per_iter": adam, "lbfgs_s_per_iter": lbfgs})

    settings = ImageSettings(size=args.converge_size)
    size = args.converge_size
    content = resize(content_full, round(content_full.shape[0] * size / max(content_full.shape[:2])), size)
    style = resize(style_full, size, size)
    terms, aux, term_weights, _ = problem(settings, weights, content, style)
    start = time.perf_counter()
    trace = []
    for report in descend(jnp.asarray(content), terms, aux, term_weights, iterations=args.converge_iterations,
                          optimizer="lbfgs", lr=1.0, steps_per_call=20):
        trace.append((report.step, time.perf_counter() - start, report.losses["total"]))
    final = trace[-1][2]
    initial = report.initial_losses["total"]
    # Two readings of "99% of the final loss": 99% of the way from the initial loss to the final one,
    # and the stricter one, within 1% of the final loss.
    way = next((t for t in trace if t[2] <= final + 0.01 * (initial - final)), trace[-1])
    within = next((t for t in trace if t[2] <= 1.01 * final), trace[-1])
    convergence = {"size": size, "iterations": trace[-1][0], "seconds": trace[-1][1],
                   "initial_loss": initial, "final_loss": final,
                   "step_at_99pct_of_the_way": way[0], "seconds_to_99pct_of_the_way": way[1],
                   "step_within_1pct_of_final": within[0], "seconds_within_1pct_of_final": within[1],
                   "trace": [[s, round(t, 3), v] for s, t, v in trace]}

    result = {"device": str(device), "platform": platform.platform(), "jax": jax.__version__,
              "weights": weights.source, "matmul_gflops": roof, "rows": rows, "convergence": convergence,
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(f"device {device}; float32 matmul {roof:.1f} GFLOP/s; weights {weights.source}")
    print(f"{'size':>5} {'HxW':>9} {'v&g s':>7} {'conv GFLOP':>10} {'XLA GFLOP':>9} {'GFLOP/s':>8} "
          f"{'% matmul':>8} {'adam s/it':>9} {'lbfgs s/it':>10} {'compile s':>9}")
    for r in rows:
        print(f"{r['size']:>5} {r['shape'][0]:>4}x{r['shape'][1]:<4} {r['value_and_grad_s']:>7.3f} "
              f"{r['conv_gflop']:>10.1f} {r['xla_gflop']:>9.1f} {r['gflops']:>8.1f} "
              f"{100 * r['ratio_to_matmul']:>7.1f}% {r['adam_s_per_iter']:>9.3f} {r['lbfgs_s_per_iter']:>10.3f} "
              f"{r['compile_s']:>9.1f}")
    c = convergence
    print(f"L-BFGS {c['iterations']} iterations at {c['size']} px: {c['seconds']:.1f} s, loss "
          f"{c['initial_loss']:.4g} -> {c['final_loss']:.4g}; 99% of the way there at step "
          f"{c['step_at_99pct_of_the_way']} ({c['seconds_to_99pct_of_the_way']:.1f} s); within 1% of the "
          f"final loss at step {c['step_within_1pct_of_final']} ({c['seconds_within_1pct_of_final']:.1f} s)")
    write_result(result, args.out or ROOT / "bench" / "results" / f"image-{device.platform}.json")


def write_result(result: dict, out) -> None:
    """Writes a bench's JSON (its folder made if need be) and says where."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
