"""The benchmark of every mode: speed against the machine's own matmul rate, memory, quality per second.

    python bench/bench.py [--modes image large photo video] [--sizes 256 512] [--marks 10 30 60]
                          [--weights random] [--out FILE]
    python bench/bench.py --convergence 512        # the default schedule against plain L-BFGS
    python bench/bench.py --convergence 512 --plain-from bench/results/convergence-cpu-512.json

Each (mode, size) runs in a fresh process, so that compilation is counted and the peak memory is the
mode's own. In it, in this order:
1. Quality per second: the mode runs with its default settings from a cold start (compilation
   included) and the loss of its current image is taken at each mark (10, 30, 60 s; the time spent
   evaluating is not counted). The loss is the full-size objective of the mode: image mode's for image
   and large mode (large: the whole canvas of `size` px, tiles of size/2), image mode's plus the
   matting term for photo mode; video mode gives the frames finished by each mark instead.
2. Speed of one step of the mode's problem at `size` px (large: one tile of `size` px; video: a
   frame with its temporal term; photo: with its matting term): compile time, one forward and backward
   pass (eval), one step of the mode's default optimizer inside the loop (iter: the mean over --steps
   steps after the first WARM_STEPS; for L-BFGS it includes the line search's extra evaluations),
   the backbone's convolution FLOPs (forward, and backward to the input) per evaluation, and both
   rates as a share of a float32 matmul measured in the same process.
3. Peak resident memory of the process (and the device's peak on a GPU).

Timing does not depend on the weights' values, so the bench runs with untrained weights (`random`)
unless --weights names a file; the losses then say how the optimiser behaves, not how a trained
network's landscape looks. Writes bench/results/bench-<platform>.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from style_core.images import load_image, resize, resize_longest  # noqa: E402
from style_core import lbfgs  # noqa: E402
from style_core.optimize import descend  # noqa: E402
from style_core.settings import ImageSettings  # noqa: E402
from style_core.objective import image_objective, style_targets  # noqa: E402
from style_core.transfer import stylize  # noqa: E402
from style_core.weights import load_weights  # noqa: E402
from roofline import conv_gflop, matmul_gflops  # noqa: E402

MODES = ("image", "large", "photo", "video")
WARM_STEPS = 10


# --- one mode at one size (runs in its own process) -----------------------------------------------------

class Case:
    """The mode's default settings at `size`, its objective for timing, and its run for quality."""

    def __init__(self, mode: str, size: int, weights, work: Path):
        from style_core.photo import PhotoSettings, photo_image_settings, photo_term
        from style_core.video import VideoSettings, temporal_term, video_image_settings
        self.mode, self.size, self.weights, self.work = mode, size, weights, work
        self.content = resize_longest(load_image(ROOT / "assets" / "content.png"), size)
        self.style = load_image(ROOT / "assets" / "style.png")
        self.extras = ()
        if mode == "photo":
            self.photo = PhotoSettings(image=photo_image_settings(size=size, weights=weights.source))
            self.settings = self.photo.image
            self.extras = (photo_term(self.photo),)
        elif mode == "video":
            self.video = VideoSettings(image=video_image_settings(size=size, weights=weights.source))
            self.settings = self.video.image
            h, w = self.content.shape[:2]
            # a later frame's term: its target (the warped previous frame) 4 px off the content, which
            # the frame starts from; with the content itself as the target the step converges at once
            self.extras = (temporal_term("temporal", self.video.temporal_weight, np.roll(self.content, 4, axis=1),
                                         np.ones((h, w), np.float32)),)
        else:
            self.settings = ImageSettings(size=size, weights=weights.source)
        # The timed problem: the whole image, or for large mode one square tile of `size` px.
        self.problem_image = self.content
        if mode == "large":
            self.problem_image = resize_longest(self.content, 2 * size)[:size, :size]

    # objective ----------------------------------------------------------------------------------------
    def objective(self, image: np.ndarray, extras=()):
        s = self.settings
        style = resize_longest(self.style, max(image.shape[:2]))
        objective = image_objective(s, extras)
        aux = objective.aux(self.weights.variables, image, style_targets(s, self.weights.variables, [style]))
        return objective.function, aux, objective.weights

    def full_loss(self):
        """The loss the quality marks report: the mode's objective on the full-size content."""
        terms, aux, term_weights = self.objective(self.content, self.extras if self.mode == "photo" else ())
        f = jax.jit(lambda x, aux: sum(term_weights[k] * v for k, v in terms(x, aux).items()))

        def loss(image: np.ndarray) -> float:
            if image.shape[:2] != self.content.shape[:2]:
                image = resize(image, *self.content.shape[:2])
            return float(f(jnp.asarray(image, jnp.float32), aux))
        return loss

    # quality per second -------------------------------------------------------------------------------
    def run(self):
        """The mode with its default settings: yields (images or frames finished, finished?)."""
        from style_core.large import LargeSettings, stylize_large
        from style_core.photo import stylize_photo
        from style_core.video import stylize_video
        preview_every = dict(preview_every=1)
        if self.mode == "image":
            for e in stylize(self.content, [self.style], self.settings.replace(**preview_every), self.weights):
                yield e.preview, e.done
        elif self.mode == "photo":
            import dataclasses
            photo = dataclasses.replace(self.photo, image=self.settings.replace(**preview_every))
            for e in stylize_photo(self.content, [self.style], photo, self.weights):
                yield e.preview, e.done
        elif self.mode == "large":
            large = LargeSettings(image=self.settings, size=self.size, tile=self.size // 2,
                                  overlap=self.size // 16)
            for e in stylize_large(self.content, [self.style], large, self.weights):
                yield e.preview, e.done
        else:
            from tests.synthetic import pan, write_clip
            h, w = self.content.shape[:2]
            clip = self.work / "pan.mp4"
            write_clip(clip, pan(h, w, 48, 1), fps=24)
            for e in stylize_video(clip, [self.style], self.video, self.weights, self.work / "out.mp4",
                                   job=self.work / "job"):
                yield e.completed, e.done


def quality(case: Case, marks: list[float]) -> dict:
    """Loss (or frames done) at each mark, from a cold start; evaluation time is not counted."""
    loss = case.full_loss() if case.mode != "video" else None
    start, paused, latest, at = time.perf_counter(), 0.0, case.content if loss else 0, {}
    initial = loss(case.content) if loss else None
    paused += time.perf_counter() - start
    run = case.run()
    for item, done in run:
        now = time.perf_counter() - start - paused
        if item is not None:
            latest = item
        for mark in marks:
            if mark not in at and (now >= mark or done):
                t = time.perf_counter()
                at[mark] = {"seconds": round(now, 2),
                            "loss" if loss else "frames": loss(latest) if loss else int(latest)}
                paused += time.perf_counter() - t
        if len(at) == len(marks):
            break
    run.close()
    return {"initial_loss": initial, "marks": {str(m): v for m, v in at.items()}}


def speed(case: Case, steps: int) -> dict:
    s = case.settings
    terms, aux, term_weights = case.objective(case.problem_image, case.extras)
    x = jnp.asarray(case.problem_image)
    weights = {k: jnp.float32(v) for k, v in term_weights.items()}
    f = jax.jit(jax.value_and_grad(lambda y, aux, w: sum(w[k] * v for k, v in terms(y, aux).items())))
    t = time.perf_counter()
    jax.block_until_ready(f(x, aux, weights))
    first = time.perf_counter() - t
    evals = []
    for _ in range(3):
        t = time.perf_counter()
        jax.block_until_ready(f(x, aux, weights))
        evals.append(time.perf_counter() - t)
    # Steps WARM_STEPS + 1 to WARM_STEPS + steps, one per call: the first call includes compilation,
    # and L-BFGS's first steps search longer (a fresh memory) than the run's typical step does.
    marks = {}
    for report in descend(x, terms, aux, term_weights, iterations=WARM_STEPS + steps + 1,
                          optimizer=s.optimizer, lr=s.lr, steps_per_call=1):
        if not report.finished:
            marks[report.step] = time.perf_counter()
    # a problem that converges sooner (video's later frames: the temporal term pins them) is timed over
    # the steps it took before its last, whose line search found nothing left
    s1 = max(marks) - (report.stop_reason == "converged" and max(marks) > 2)
    s0 = WARM_STEPS if s1 > WARM_STEPS else min(marks)
    t0, t1 = marks[s0], marks[s1]
    shape = case.problem_image.shape[:2]
    return {"shape": list(shape), "optimizer": s.optimizer, "eval_s": min(evals),
            "compile_s": first - min(evals), "iter_s": (t1 - t0) / max(s1 - s0, 1), "iter_steps": [s0, s1],
            "conv_gflop": conv_gflop(s, shape)}


def child(mode: str, size: int, args) -> dict:
    weights = load_weights("vgg19", args.weights)
    with tempfile.TemporaryDirectory(prefix="bench_") as work:
        case = Case(mode, size, weights, Path(work))
        row = {"mode": mode, "size": size, "quality": quality(case, args.marks)}
        row.update(speed(case, args.steps))
    roof = matmul_gflops()
    row.update(matmul_gflops=roof, gflops=row["conv_gflop"] / row["eval_s"],
               ratio=row["conv_gflop"] / row["eval_s"] / roof,
               iter_ratio=row["conv_gflop"] / row["iter_s"] / roof,
               peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        row["device_peak_mib"] = stats["peak_bytes_in_use"] / 2 ** 20
    return row


# --- the default schedule against plain L-BFGS -----------------------------------------------------------

def convergence(size: int, weights_source: str, iterations: int, plain: dict | None = None) -> dict:
    """Loss of the final scale against wall time (compilation included) for a plain single-scale
    L-BFGS run of `iterations` steps (memory 10, as before bench/LOG.md 7), then for the default
    settings until they come within 5% of the plain run's final loss; when each first does.
    `plain`: the plain run of an earlier result (same size and weights), which is then not rerun."""
    weights = load_weights("vgg19", weights_source)
    content = resize_longest(load_image(ROOT / "assets" / "content.png"), size)
    style = load_image(ROOT / "assets" / "style.png")
    runs, target, memory = {}, None, lbfgs.LBFGS_MEMORY
    if plain is not None:
        runs["plain"] = {**plain, "reused": True}
        target = 1.05 * plain["trace"][-1][2]
    for name, settings in (("plain", ImageSettings(size=size, iterations=iterations, scales=1, tol=0.0,
                                                   optimizer="lbfgs", weights=weights_source)),
                           ("default", ImageSettings(size=size, weights=weights_source))):
        if name in runs:
            continue
        lbfgs.LBFGS_MEMORY = 10 if name == "plain" else memory
        start, trace = time.perf_counter(), []
        for e in stylize(content, [style], settings, weights):
            if e.scale[0] == e.scale[1] and "total" in e.losses:
                trace.append([e.completed, round(time.perf_counter() - start, 2), e.losses["total"]])
                if target is not None and trace[-1][2] <= target:
                    break  # the default run stops once it reaches the plain run's loss
        target = 1.05 * trace[-1][2] if target is None else target
        runs[name] = {"settings": {k: v for k, v in settings.to_dict().items() if k in
                                   ("iterations", "scales", "optimizer", "tol", "lr")},
                      "lbfgs_memory": lbfgs.LBFGS_MEMORY, "trace": trace}
    lbfgs.LBFGS_MEMORY = memory
    for run in runs.values():
        hit = next((t for t in run["trace"] if t[2] <= target), None)
        run["seconds_to_target"] = hit[1] if hit else None
        run["final_loss"] = run["trace"][-1][2]
        run["seconds"] = run["trace"][-1][1]
    plain, default = runs["plain"]["seconds_to_target"], runs["default"]["seconds_to_target"]
    return {"size": size, "target_loss": target, "runs": runs,
            "speedup": plain / default if plain and default else None}


# --- driver ----------------------------------------------------------------------------------------------

def table(rows: list[dict], marks: list[float]) -> str:
    head = (f"{'mode':<6}{'size':>5}{'HxW':>10}{'opt':>6}{'compile s':>10}{'eval s':>8}{'iter s':>8}"
            f"{'GFLOP':>7}{'GFLOP/s':>8}{'% mm':>6}{'it % mm':>8}{'peak MiB':>9}"
            + "".join(f"{'@' + format(m, 'g') + 's':>10}" for m in marks))
    lines = [head]
    for r in rows:
        q = r["quality"]["marks"]
        cells = "".join(f"{(format(q[str(m)].get('loss'), '.4g') if 'loss' in q.get(str(m), {}) else str(q[str(m)]['frames']) + ' fr') if str(m) in q else '-':>10}"
                        for m in marks)
        lines.append(f"{r['mode']:<6}{r['size']:>5}{r['shape'][0]:>5}x{r['shape'][1]:<4}{r['optimizer']:>6}"
                     f"{r['compile_s']:>10.1f}{r['eval_s']:>8.3f}{r['iter_s']:>8.3f}{r['conv_gflop']:>7.1f}"
                     f"{r['gflops']:>8.1f}{100 * r['ratio']:>5.0f}%{100 * r['iter_ratio']:>7.0f}%"
                     f"{r['peak_rss_mib']:>9.0f}{cells}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--marks", type=float, nargs="+", default=[10.0, 30.0, 60.0])
    parser.add_argument("--steps", type=int, default=4, help="steps timed inside the loop")
    parser.add_argument("--weights", default="random")
    parser.add_argument("--convergence", type=int, metavar="SIZE",
                        help="instead: the default settings against plain L-BFGS at SIZE px")
    parser.add_argument("--plain-iterations", type=int, default=500)
    parser.add_argument("--plain-from", metavar="JSON", help="with --convergence: reuse the plain run of "
                        "an earlier result file of the same size instead of running it again")
    parser.add_argument("--out", default=None)
    parser.add_argument("--case", help=argparse.SUPPRESS)  # MODE:SIZE, in a child process
    args = parser.parse_args()
    if args.case:
        mode, size = args.case.split(":")
        print(json.dumps(child(mode, int(size), args)))
        return
    device = jax.devices()[0]
    meta = {"device": str(device), "device_kind": device.device_kind, "platform": platform.platform(),
            "jax": jax.__version__, "weights": args.weights, "command": " ".join(sys.argv),
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    if args.convergence:
        plain = None
        if args.plain_from:
            earlier = json.loads(Path(args.plain_from).read_text())
            if earlier["convergence"]["size"] != args.convergence or earlier["weights"] != args.weights:
                sys.exit(f"{args.plain_from} is for another size or other weights")
            plain = earlier["convergence"]["runs"]["plain"]
        result = {**meta, "convergence": convergence(args.convergence, args.weights, args.plain_iterations,
                                                     plain)}
        c = result["convergence"]
        for name, run in c["runs"].items():
            print(f"{name:>8} {run['settings']}: final loss {run['final_loss']:.4g} after {run['seconds']:.0f} s; "
                  f"within 5% of plain's final loss after {run['seconds_to_target']} s")
        print(f"speedup to the target: {c['speedup']}")
        name = f"convergence-{device.platform}-{args.convergence}.json"
    else:
        rows, failed = [], []
        for mode in args.modes:
            for size in args.sizes:
                cmd = [sys.executable, __file__, "--case", f"{mode}:{size}", "--weights", args.weights,
                       "--steps", str(args.steps), "--marks", *map(str, args.marks)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode:  # reported, and the other cases still run
                    print(f"{mode} at {size} px failed:\n{proc.stderr[-3000:]}", flush=True)
                    failed.append(f"{mode}:{size}")
                    continue
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                print(table(rows[-1:], args.marks).splitlines()[-1], flush=True)
        result = {**meta, "rows": rows, "failed": failed}
        print(f"\ndevice {device} ({device.device_kind}); weights {args.weights}; matmul "
              f"{np.mean([r['matmul_gflops'] for r in rows]):.0f} GFLOP/s (mean over the cases)")
        print(table(rows, args.marks))
        name = f"bench-{device.platform}.json"
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
