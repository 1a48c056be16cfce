"""The optimisation loop shared by every mode.

A mode describes its problem as a pure `terms(x, aux) -> {name: scalar}` plus a weight per term; the
loop minimises `sum_k weight_k * terms_k` over the image x in [0, 1]. Steps run in chunks (one
`lax.scan` under `jit` on a GPU, compiled steps dispatched without waiting on a CPU, L-BFGS's
host-driven line search on both): the host sees the image only between chunks, to report progress,
draw a preview, check the stopping rule, or stop when the caller stops iterating.

Weights, learning rates and targets are arguments of the compiled function, not constants in it, so a
weight sweep or a new image of the same size reuses the compiled code.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .errors import StyleError
from .lbfgs import HostLBFGS

Terms = Callable[[jax.Array, Any], Mapping[str, jax.Array]]
# A chunk of steps takes about this long before the host looks again: short enough for a Stop button
# and live previews on a CPU, while on a GPU the chunk length bound applies first.
TARGET_CHUNK_SECONDS = 1.0
# A loss this many times its starting value means the run has blown up.
EXPLODE_FACTOR = 1e3
# A run that ends this many times above its start has diverged (its best image is kept whenever it ends
# above its lowest loss at all): Adam at lr 1e30 ended at 93x its start, below EXPLODE_FACTOR, having
# thrown every pixel to 0 or 1. Runs that start from a good image (photo mode's Adam from the content,
# later scales, tiles, video frames) often end a little above it: they keep their best image and say
# so, but they have not diverged.
DIVERGE_FACTOR = 10.0
# The tolerance rule compares losses at least this many steps apart: one L-BFGS step from a fresh
# start (a short gradient step) says little about how far there is to go.
TOL_SPAN = 5
# L-BFGS keeps up to 50 curvature pairs, within this many bytes: with 50 pairs a 256 px run reaches
# in 275 steps the loss that 10 pairs reach in 396 (bench/LOG.md 7); a 4096 px image keeps 5.
LBFGS_MEMORY = 50
LBFGS_MEMORY_BYTES = 2 ** 30


def lbfgs_memory(size: int) -> int:
    """Curvature pairs L-BFGS keeps for an image of `size` values (two float32 vectors per pair)."""
    return int(np.clip(LBFGS_MEMORY_BYTES // (8 * max(size, 1)), 5, LBFGS_MEMORY))


def make_optimizer(name: str, lr: float) -> optax.GradientTransformation:
    """optax's first-order optimisers; the learning rate lives in the state so that changing it does
    not recompile. (L-BFGS is `lbfgs.HostLBFGS`.)"""
    factories = {"adam": optax.adam, "adagrad": optax.adagrad, "rmsprop": optax.rmsprop,
                 "sgd": optax.sgd}
    if name not in factories:
        raise StyleError(f"unknown optimizer {name!r}; choose one of lbfgs, {', '.join(factories)}")
    return optax.inject_hyperparams(factories[name])(learning_rate=lr)


def _total(terms: Terms, x, aux, weights):
    values = terms(x, aux)
    return sum(weights[k] * v for k, v in values.items()), values


@functools.lru_cache(maxsize=64)
def evaluator(terms: Terms) -> Callable:
    """jit: (x, aux, weights) -> (total, {term: value})."""
    return jax.jit(functools.partial(_total, terms))


def default_dispatch() -> str:
    """How a chunk runs its steps on this backend.

    "scan": one compiled `lax.scan` over the chunk, each step under `lax.cond` (GPU/TPU: no host
    involvement at all). "async": the compiled step dispatched once per step without waiting, so the
    host only reads results at the chunk's end (CPU). XLA:CPU runs convolutions inside any nested
    computation (while loop or conditional) about 3x slower than at top level (jax#12868); measured
    on VGG19 at 256 px: 1.40 s per step in a scan, 0.50 s dispatched (bench/LOG.md). L-BFGS runs its
    line search from the host on every backend (`lbfgs.py`).
    """
    return "async" if jax.default_backend() == "cpu" else "scan"


@functools.lru_cache(maxsize=64)
def chunk_runner(terms: Terms, optimizer: str, lbfgs_lr: float, length: int,
                 dispatch: str = "scan", memory: int = LBFGS_MEMORY,
                 bounded: bool = True) -> tuple[Callable, Callable]:
    """A chunk of up to `length` steps, of which the first `n_active` are taken.

    Carries (x, opt_state, best_x, best_loss, diverged). A step whose loss is not finite or exceeds
    `limit` is not taken and marks the run as diverged; every later step is a no-op, so the best image
    seen so far survives. First-order methods keep x in [0, 1], the box every output is clipped to,
    by projected steps; L-BFGS keeps it there as L-BFGS-B does (`lbfgs.py`) unless `bounded` is
    False (the classic scripts' way: the image is clipped only when shown or saved). L-BFGS runs its
    line search from the host on every backend (`dispatch` does not apply): its bounded search
    needs each trial's loss, and one host round trip per evaluation costs little next to a forward
    and backward pass.
    """
    value_and_grad = functools.partial(jax.value_and_grad(_total, argnums=1, has_aux=True), terms)
    if optimizer == "lbfgs":
        host = HostLBFGS(value_and_grad, lr=lbfgs_lr, memory_size=memory, bounded=bounded)
        return _dispatched(host.step), host.init
    opt = make_optimizer(optimizer, 1.0)

    def step(carry, aux, weights, limit):
        x, state, best_x, best_loss, diverged = carry
        (loss, values), grad = value_and_grad(x, aux, weights)
        updates, new_state = opt.update(grad, state, x)
        new_x = jnp.clip(optax.apply_updates(x, updates), 0.0, 1.0)
        ok = jnp.isfinite(loss) & (loss <= limit) & ~diverged
        better = ok & (loss < best_loss)
        best_x = jnp.where(better, x, best_x)
        best_loss = jnp.where(better, loss, best_loss)
        new_x, new_state = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b),
                                                  (new_x, new_state), (x, state))
        loss = jnp.where(diverged, jnp.nan, loss)
        return (new_x, new_state, best_x, best_loss, ~ok), (loss, values)

    if dispatch == "async":
        return _dispatched(jax.jit(step)), opt.init

    def run(carry, aux, weights, limit, n_active):
        def skip(c):
            return c, (jnp.float32(jnp.nan), {k: jnp.float32(jnp.nan) for k in weights})

        def body(carry, i):
            active = (i < n_active) & ~carry[4]
            return jax.lax.cond(active, lambda c: step(c, aux, weights, limit), skip, carry)
        return jax.lax.scan(body, carry, jnp.arange(length))

    return jax.jit(run), opt.init


def _dispatched(step: Callable) -> Callable:
    """A chunk that calls `step` once per active step without waiting for results (the host only
    enqueues work), and stacks the per-step outputs like `lax.scan` would."""
    def run(carry, aux, weights, limit, n_active):
        outputs = []
        for _ in range(int(n_active)):
            carry, out = step(carry, aux, weights, limit)
            outputs.append(out)
        return carry, jax.tree_util.tree_map(lambda *v: jnp.stack(v), *outputs)
    return run


@dataclass
class Descent:
    """What the loop reports after each chunk (and once at the end, with `finished` set)."""
    step: int                              # steps taken so far
    x: jax.Array                           # the current image
    losses: dict[str, float]               # 'total' and, where known, each term
    history: list[float] = field(default_factory=list)  # total loss before each step taken
    initial_losses: dict[str, float] = field(default_factory=dict)  # every term at x0
    seconds: float = 0.0
    finished: bool = False
    stop_reason: str = "finished"


def _to_floats(total, values) -> dict[str, float]:
    return {"total": float(total), **{k: float(v) for k, v in values.items()}}


def descend(x0: jax.Array, terms: Terms, aux: Any, weights: Mapping[str, float], *,
            iterations: int, optimizer: str, lr: float, chunk: int = 20, tol: float = 0.0,
            dispatch: str | None = None, bounded: bool = True) -> Iterator[Descent]:
    """Minimises sum_k weights[k] * terms(x, aux)[k] over images x in [0, 1] from x0 (clipped),
    yielding after every chunk. With `bounded` False, L-BFGS's image is not kept in [0, 1].

    Stops after `iterations` steps; earlier when the loss falls by less than `tol` (relative, per
    step) between two checks at least TOL_SPAN steps apart; or when it diverges (non-finite, or
    EXPLODE_FACTOR times the starting loss), in which case the last report holds the best image
    seen and the reason. The caller may stop
    iterating at any time. Per-chunk reports carry each term for first-order methods; L-BFGS reports
    only the total until the end.
    """
    start = time.perf_counter()
    bounded = bool(bounded) or optimizer != "lbfgs"   # first-order methods always project
    x0 = jnp.clip(x0, 0.0, 1.0) if bounded else jnp.asarray(x0, jnp.float32)
    weights = {k: jnp.float32(v) for k, v in weights.items()}
    evaluate = evaluator(terms)
    total0, values0 = evaluate(x0, aux, weights)
    losses0 = _to_floats(total0, values0)
    report = Descent(0, x0, dict(losses0), [], initial_losses=losses0, seconds=time.perf_counter() - start)
    if not np.isfinite(report.losses["total"]):
        raise StyleError("the loss is not finite at the start: check the weights and images")
    if iterations == 0:
        report.finished = True
        yield report
        return
    # Only L-BFGS bakes its rate into the compiled code; the others keep it in their state.
    run, init = chunk_runner(terms, optimizer, float(lr) if optimizer == "lbfgs" else 1.0, int(chunk),
                             dispatch or default_dispatch(),
                             lbfgs_memory(x0.size) if optimizer == "lbfgs" else LBFGS_MEMORY, bounded)
    state = init(x0)
    if optimizer != "lbfgs":
        state.hyperparams["learning_rate"] = jnp.asarray(lr, jnp.float32)
    total0 = report.losses["total"]
    limit = jnp.float32(EXPLODE_FACTOR * total0 if total0 > 0 else np.inf)
    carry = (x0, state, x0, jnp.float32(jnp.inf), jnp.bool_(False))
    # `history[k]` is the loss before step k + 1; the stopping rule compares two of them, `seen`
    # steps apart, once they are at least TOL_SPAN apart.
    step, calls, n_active, last_total, last_seen = 0, 0, 1, total0, 0
    while step < iterations:
        n = min(n_active, iterations - step)
        t0 = time.perf_counter()
        carry, (totals, values) = run(carry, aux, weights, limit, jnp.int32(n))
        totals = np.asarray(totals)[:n]
        calls += 1
        if calls >= 2:  # the first call includes compilation
            per_step = (time.perf_counter() - t0) / n
            n_active = int(np.clip(TARGET_CHUNK_SECONDS / max(per_step, 1e-9), 1, chunk))
        bad = ~(np.isfinite(totals) & (totals <= float(limit)))
        taken = int(np.argmax(bad)) if bad.any() else n
        step += taken
        report.history.extend(float(v) for v in totals[:taken])
        report.step, report.seconds = step, time.perf_counter() - start
        if bool(carry[4]):
            best_x = carry[2]
            report.x, report.losses = best_x, _to_floats(*evaluate(best_x, aux, weights))
            report.finished = True
            report.stop_reason = (f"diverged at step {step + 1} (loss {totals[taken]:.3g}); kept the "
                                  f"best image so far: try a smaller learning rate")
            yield report
            return
        report.x = carry[0]
        current = report.history[-1]
        report.losses = {"total": current, **{k: float(np.asarray(v)[n - 1]) for k, v in values.items()
                                              if np.isfinite(np.asarray(v)[n - 1])}}
        seen = len(report.history) - 1 - last_seen
        converged = (tol > 0 and last_total > 0 and seen >= TOL_SPAN
                     and (last_total - current) / (last_total * seen) < tol)
        converged = converged or getattr(carry[1], "stalled", False)  # host L-BFGS: no decrease left
        if seen >= TOL_SPAN:
            last_total, last_seen = current, len(report.history) - 1
        if step >= iterations or converged:
            break
        yield report
    report.x, report.losses = carry[0], _to_floats(*evaluate(carry[0], aux, weights))
    report.finished = True
    report.stop_reason = "converged" if step < iterations else "finished"
    _keep_best(report, carry[2], aux, weights, evaluate)
    report.seconds = time.perf_counter() - start
    yield report


def _keep_best(report: Descent, best_x, aux, weights, evaluate) -> None:
    """Where the run ended above the lowest loss before any of its steps (or not finite), that
    step's image (the carry's best, the same whatever the chunking) becomes the result; ended
    DIVERGE_FACTOR times above its start or not finite, the run is said to have diverged."""
    final = report.losses["total"]
    step = int(np.argmin(report.history))
    loss = report.history[step]
    if np.isfinite(final) and final <= loss:
        return
    report.x, report.losses = best_x, _to_floats(*evaluate(best_x, aux, weights))
    start = report.initial_losses["total"]
    if not np.isfinite(final) or (start > 0 and final > DIVERGE_FACTOR * start):
        rise = f" ({final / start:.3g}x its start)" if np.isfinite(final) and start > 0 else ""
        report.stop_reason = (f"diverged: the loss rose to {final:.3g}{rise}; kept the best image (step "
                              f"{step}, loss {loss:.3g}): try a smaller learning rate")
    else:
        report.stop_reason += f" (kept step {step}'s image, loss {loss:.4g}; the last was {final:.4g})"
