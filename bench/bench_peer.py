"""Side by side with what a user would pick instead: the PyTorch tutorial's L-BFGS, on our objective.

    python bench/bench_peer.py [--sizes 256 512] [--weightings paper heavy] [--cap 3] [--out FILE]

Needs torch (`pip install -r requirements-bench.txt`; never needed by the app or the tests).

Both sides minimise exactly the same objective ("paper" losses: VGG19 to relu5_1, content relu4_2,
style relu1_1..relu5_1, 1 x content + alpha x style, ImageNet normalisation, max pooling) on the same
inputs (the bundled example's content and style at SIZE px) with the same weights file (the real
timm layout, random values: no trained weights can be downloaded here). Each side runs in a fresh
process, and its times count from the moment that process was launched (imports, weights, compiling
included), as a user meets them:

- **ours**: `stylize` with the default `ImageSettings` (and the style weight of the weighting); the
  target is the loss of the PNG it writes, scored in float64.
- **peer**: the tutorial's recipe (pytorch.org/tutorials/advanced/neural_style_tutorial): float32,
  from the content image, `torch.optim.LBFGS` with its defaults (history 100, 20 iterations per
  `.step()`, no line search), the image clamped to [0, 1] at the start of every closure. It runs until
  a closure's loss reaches the target (that image is written and scored in float64), or `--cap` times
  our whole run.
- **per iteration**: seconds per Adam step (10 steps timed after 3) and per L-BFGS function evaluation
  (a forward and backward pass; ours is the compiled call its line search makes), in each side's
  process after its warm-up.

Weightings: `paper` is the research deck's (style 1e5, content 1). With untrained weights its style
term starts at 19 (content 0) and ends several times smaller than the content term (at 256 px 0.07
against 0.37), where a trained network's style term stays large for longer. `heavy` multiplies the
style weight by HEAVY_FACTOR: a start of 1895, a harder problem (with random weights the end is still
content-dominated, 0.04 against 0.58; the rows report both terms of each output).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VGG19 = (2, 2, 4, 4, 4)
CONTENT_LAYERS = ("relu4_2",)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
PAPER_STYLE_WEIGHT = 1e5
HEAVY_FACTOR = 100.0
ADAM_WARM, ADAM_TIMED, EVALS_TIMED = 3, 10, 5


# --- the peer: our objective in PyTorch ---------------------------------------------------------------

def torch_vgg(weights_file: str, dtype):
    """VGG19's convolutions up to relu5_1 from the torchvision-layout safetensors, as (name, module)."""
    import torch
    from safetensors.numpy import load_file
    tensors = load_file(weights_file)
    layers, index = [], 0
    for block, convs in enumerate(VGG19, 1):
        for i in range(1, convs + 1):
            conv = torch.nn.Conv2d(tensors[f"features.{index}.weight"].shape[1],
                                   tensors[f"features.{index}.weight"].shape[0], 3, padding=1)
            conv.weight.data = torch.from_numpy(tensors[f"features.{index}.weight"]).to(dtype)
            conv.bias.data = torch.from_numpy(tensors[f"features.{index}.bias"]).to(dtype)
            layers += [(f"conv{block}_{i}", conv), (f"relu{block}_{i}", torch.nn.ReLU())]
            index += 2
            if f"relu{block}_{i}" == STYLE_LAYERS[-1]:
                return layers
        layers.append((f"pool{block}", torch.nn.MaxPool2d(2, 2)))
        index += 1
    return layers


class TorchObjective:
    """content + alpha * style, exactly the formulas of style_core.losses ("paper", mse)."""

    def __init__(self, weights_file: str, content: np.ndarray, style: np.ndarray, style_weight: float,
                 dtype):
        import torch
        self.torch, self.dtype, self.alpha = torch, dtype, style_weight
        self.layers = torch_vgg(weights_file, dtype)
        for _, m in self.layers:
            m.requires_grad_(False)
        self.mean = torch.tensor([0.485, 0.456, 0.406], dtype=dtype).view(1, 3, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225], dtype=dtype).view(1, 3, 1, 1)
        with torch.no_grad():
            self.content_target = {k: v for k, v in self.features(self.tensor(content)).items()
                                   if k in CONTENT_LAYERS}
            self.style_target = {k: self.gram(v) for k, v in self.features(self.tensor(style)).items()
                                 if k in STYLE_LAYERS}

    def tensor(self, image: np.ndarray):
        return self.torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)[None])).to(self.dtype)

    def features(self, x):
        x, out = (x - self.mean) / self.std, {}
        for name, module in self.layers:
            x = module(x)
            if name in CONTENT_LAYERS or name in STYLE_LAYERS:
                out[name] = x
        return out

    @staticmethod
    def gram(f):
        _, c, h, w = f.shape
        f = f.reshape(c, h * w)
        return f @ f.T / (h * w * c)

    def terms(self, x):
        f = self.features(x)
        content = sum(self.torch.mean((f[k] - t) ** 2) for k, t in self.content_target.items())
        style = sum(self.torch.mean((self.gram(f[k]) - t) ** 2) for k, t in self.style_target.items())
        return content, style

    def __call__(self, x):
        content, style = self.terms(x)
        return content + self.alpha * style


def score(weights_file: str, content: np.ndarray, style: np.ndarray, style_weight: float,
          image: np.ndarray) -> dict:
    """The objective in float64 on an image (the written PNG, read back)."""
    import torch
    objective = TorchObjective(weights_file, content.astype(np.float64), style.astype(np.float64),
                               style_weight, torch.float64)
    with torch.no_grad():
        c, s = objective.terms(objective.tensor(image.astype(np.float64)))
    return {"total": float(c + style_weight * s), "content": float(c), "style": float(s),
            "weighted_style": float(style_weight * s)}


def peer_run(args, inputs) -> dict:
    import torch
    torch.manual_seed(0)
    objective = TorchObjective(args.weights, inputs["content"], inputs["style"], args.style_weight,
                               torch.float32)
    x = objective.tensor(inputs["content"]).clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([x])          # the tutorial's: every default
    trace, reached, evaluations = [], None, 0

    class Reached(Exception):
        pass

    def closure():
        nonlocal evaluations, reached
        with torch.no_grad():
            x.clamp_(0, 1)
        optimizer.zero_grad()
        loss = objective(x)
        loss.backward()
        evaluations += 1
        value, now = float(loss), time.time() - args.launched
        trace.append([evaluations, round(now, 3), value])
        if value <= args.target:
            reached = x.detach().clone()
            raise Reached
        return loss

    while now_since(args.launched) < args.limit:
        try:
            optimizer.step(closure)
        except Reached:
            break
    image = (reached if reached is not None else x.detach().clamp(0, 1))[0].numpy().transpose(1, 2, 0)
    save_png(args.png, image)
    return {"side": "peer", "reached": reached is not None, "seconds": trace[-1][1],
            "evaluations": evaluations, "outer_steps": len(trace) and (evaluations + 19) // 20,
            "trace": trace[:: max(1, len(trace) // 200)] + trace[-1:], **peer_speed(objective, inputs)}


def peer_speed(objective, inputs) -> dict:
    """Seconds per forward and backward pass and per Adam step, after warm-up."""
    import torch
    x = objective.tensor(inputs["content"]).clone().requires_grad_(True)
    times = []
    for _ in range(EVALS_TIMED + 1):
        t = time.perf_counter()
        x.grad = None
        objective(x).backward()
        times.append(time.perf_counter() - t)
    adam = torch.optim.Adam([x], lr=0.02)
    marks = []
    for _ in range(ADAM_WARM + ADAM_TIMED):
        adam.zero_grad()
        objective(x).backward()
        adam.step()
        with torch.no_grad():
            x.clamp_(0, 1)
        marks.append(time.perf_counter())
    return {"eval_s": float(np.median(times[1:])),
            "adam_s": (marks[-1] - marks[ADAM_WARM - 1]) / ADAM_TIMED, "threads": torch.get_num_threads()}


# --- ours ---------------------------------------------------------------------------------------------------

def ours_run(args, inputs) -> dict:
    import jax
    import jax.numpy as jnp
    from style_core import ImageSettings, load_weights, lbfgs, stylize
    overrides = dict(item.split("=", 1) for item in args.set or ())
    if "memory" in overrides:   # L-BFGS curvature pairs (lbfgs.LBFGS_MEMORY)
        lbfgs.LBFGS_MEMORY = int(overrides.pop("memory"))
    full = inputs["content"].size
    evaluations = count_calls(lbfgs.HostLBFGS, "_evaluate", lambda self, x, *rest: x.size / full)
    weights = load_weights("vgg19", args.weights)
    settings = ImageSettings(size=args.size, style_weight=args.style_weight, weights=args.weights,
                             **{k: parse_value(v) for k, v in overrides.items()})
    if args.target:   # stops where it gets there, with that image
        settings = settings.replace(preview_every=1)
    trace = []
    for e in stylize(inputs["content"], [inputs["style"]], settings, weights):
        if e.scale[0] == e.scale[1] and "total" in e.losses:
            trace.append([e.completed, round(time.time() - args.launched, 3), e.losses["total"],
                          round(evaluations[0], 2)])
            if args.target and e.losses["total"] <= args.target:   # --no-peer --target: got there
                break
    seconds = round(time.time() - args.launched, 3)
    save_png(args.png, e.preview)
    out = {"side": "ours", "seconds": seconds, "steps": e.completed, "evaluations": round(evaluations[0], 2),
           "overrides": args.set or [], "scales": settings.scales,
           "scale_iterations": list(settings.scale_iterations), "final_losses": e.losses, "trace": trace,
           "stop_reason": e.result.stop_reason if e.result else "reached the target"}
    return {**out, **ours_speed(settings, weights, inputs, jax, jnp)}


def ours_speed(settings, weights, inputs, jax, jnp) -> dict:
    """Seconds per forward and backward pass (the compiled call L-BFGS's line search makes: projection,
    pass, both slopes) and per Adam step inside the loop, after warm-up."""
    from style_core.lbfgs import HostLBFGS
    from style_core.optimize import _total, descend
    from style_core.objective import image_objective, style_targets
    s = settings.replace(scales=1, tv_weight=0.0)
    objective = image_objective(s)
    terms = objective.function
    aux = objective.aux(weights.variables, inputs["content"], style_targets(s, weights.variables, [inputs["style"]]))
    w = {k: jnp.float32(v) for k, v in objective.weights.items()}
    host = HostLBFGS(lambda x, a, ws: jax.value_and_grad(_total, argnums=1, has_aux=True)(terms, x, a, ws))
    x = jnp.asarray(inputs["content"])
    zero = jnp.zeros_like(x)
    times = []
    for _ in range(EVALS_TIMED + 1):
        t = time.perf_counter()
        host._evaluate(x, jnp.float32(0.5), zero, zero, aux, w)
        times.append(time.perf_counter() - t)
    # marks[k]: when the report after step k came. Steps ADAM_WARM + 1 .. ADAM_WARM + ADAM_TIMED are timed,
    # as the peer's; one step more is run because the last report also scores the image.
    marks = {}
    for report in descend(x, terms, aux, {k: float(v) for k, v in w.items()},
                          iterations=ADAM_WARM + ADAM_TIMED + 1, optimizer="adam", lr=0.02, steps_per_call=1):
        marks[report.step] = time.perf_counter()
    return {"eval_s": float(np.median(times[1:])),
            "adam_s": (marks[ADAM_WARM + ADAM_TIMED] - marks[ADAM_WARM]) / ADAM_TIMED}


# --- driver ---------------------------------------------------------------------------------------------------

def parse_value(text: str):
    """A --set value: a number, true/false/null, or else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def count_calls(cls, name: str, weight=lambda *a, **k: 1) -> list[float]:
    """Counts calls of cls.name from now on (in this process), each weighted by weight(*args): [sum].
    Ours counts L-BFGS evaluations in full-size equivalents (a coarse scale's cost its pixels' share)."""
    count, original = [0.0], getattr(cls, name)

    def counted(*a, **k):
        count[0] += weight(*a, **k)
        return original(*a, **k)
    setattr(cls, name, counted)
    return count


def now_since(launched: float) -> float:
    return time.time() - launched


def save_png(path: str, image: np.ndarray) -> None:
    from PIL import Image
    Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)


def read_png(path: str) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(path).convert("RGB"), np.float64) / 255.0


def child(args) -> dict:
    inputs = dict(np.load(args.inputs))
    return ours_run(args, inputs) if args.side == "ours" else peer_run(args, inputs)


def launch(side: str, common: list[str], png: Path, **extra) -> dict:
    cmd = [sys.executable, __file__, "--side", side, "--png", str(png), "--launched", repr(time.time()),
           *common, *[a for k, v in extra.items() for a in (f"--{k}", str(v))]]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{side} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def first_at(trace: list[list], target: float, value: int = 2) -> list | None:
    """The first trace entry whose loss is at or below target."""
    return next((t for t in trace if t[value] <= target), None)


def compare(size: int, weighting: str, work: Path, weights_file: str, args) -> dict:
    """Our run, then (unless --no-peer) the peer until it reaches our output's float64 loss (or
    --target), both outputs scored in float64."""
    from style_core.images import load_image, resize_longest
    content = resize_longest(load_image(ROOT / "assets" / "content.png"), size)
    style = resize_longest(load_image(ROOT / "assets" / "style.png"), size)
    inputs = work / f"inputs-{size}.npz"
    np.savez(inputs, content=content, style=style)
    style_weight = PAPER_STYLE_WEIGHT * (HEAVY_FACTOR if weighting == "heavy" else 1.0)
    common = ["--size", str(size), "--inputs", str(inputs), "--weights", weights_file,
              "--style-weight", repr(style_weight)]
    scored = lambda png: score(weights_file, content, style, style_weight, read_png(str(png)))  # noqa: E731
    png = work / f"ours-{size}-{weighting}.png"
    ours = launch("ours", common + [a for item in args.set or () for a in ("--set", item)]
                  + (["--target", repr(args.target)] if args.target and args.no_peer else []), png)
    ours["score"] = scored(png)
    target = args.target or ours["score"]["total"]
    hit = first_at(ours["trace"], target)
    ours["seconds_to_target"], ours["evaluations_to_target"] = (hit[1], hit[3]) if hit else (None, None)
    row = {"size": size, "shape": list(content.shape[:2]), "weighting": weighting,
           "style_weight": style_weight, "start": score(weights_file, content, style, style_weight,
                                                        content.astype(np.float64)),
           "target": target, "ours": ours}
    if args.no_peer:
        return row
    png = work / f"peer-{size}-{weighting}.png"
    peer = launch("peer", common, png, target=repr(target), limit=repr(args.cap * ours["seconds"]))
    peer["score"] = scored(png)
    reached = ours["seconds_to_target"] if args.target else ours["seconds"]
    row.update(peer=peer, adam_ratio=ours["adam_s"] / peer["adam_s"], eval_ratio=ours["eval_s"] / peer["eval_s"],
               time_ratio=reached / peer["seconds"] if peer["reached"] and reached else None,
               time_ratio_at_most=None if peer["reached"] else ours["seconds"] / peer["seconds"])
    return row


def table(rows: list[dict]) -> str:
    head = (f"{'size':>5}{'weighting':>10}{'target':>10}{'ours s':>8}{'steps':>6}{'evals':>7}{'st/ct':>7}"
            f"{'peer s':>8}{'evals':>6}{'ours/peer':>10}{'peer loss':>10}{'adam o/p':>9}{'eval o/p':>9}")
    lines = [head]
    for r in rows:
        o, p = r["ours"], r.get("peer")
        cells = (f"{r['size']:>5}{r['weighting']:>10}{r['target']:>10.4g}{o['seconds']:>8.1f}{o['steps']:>6}"
                 f"{o['evaluations']:>7.0f}{o['score']['weighted_style'] / max(o['score']['content'], 1e-30):>7.2f}")
        if p:
            ratio = f"{r['time_ratio']:.2f}" if r["time_ratio"] else f"<{r['time_ratio_at_most']:.2f}"
            cells += (f"{p['seconds']:>8.1f}{p['evaluations']:>6}{ratio:>10}{p['score']['total']:>10.4g}"
                      f"{r['adam_ratio']:>9.2f}{r['eval_ratio']:>9.2f}")
        lines.append(cells)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--weightings", nargs="+", choices=("paper", "heavy"), default=["paper", "heavy"])
    parser.add_argument("--cap", type=float, default=3.0, help="the peer stops after this many times our run")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE",
                        help="an ImageSettings field of our side (e.g. scales=1, bounds=none, tol=1e-3), "
                             "or memory=N (L-BFGS curvature pairs); repeatable")
    parser.add_argument("--target", type=float, help="the loss both sides run to (default: our output's)")
    parser.add_argument("--no-peer", action="store_true", help="our side only (with --target: when it got there)")
    parser.add_argument("--out", default=None)
    for name in ("side", "png", "inputs", "weights"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    for name in ("launched", "limit", "style-weight"):
        parser.add_argument(f"--{name}", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(child(args)))
        return
    from safetensors.numpy import save_file
    from tests.conftest import vgg_state_dict
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_peer_") as work:
        weights_file = os.path.join(work, "model.safetensors")
        save_file(vgg_state_dict("vgg19", full_head=False), weights_file, metadata={"format": "pt"})
        for size in args.sizes:
            for weighting in args.weightings:
                rows.append(compare(size, weighting, Path(work), weights_file, args))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    import torch
    result = {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
              "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "weights": "random (real timm layout, seed 0)", "rows": rows}
    print(table(rows))
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / "peer-cpu.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
