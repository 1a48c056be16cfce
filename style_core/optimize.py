"""The optimisation loop shared by every mode, and the registry of optimizers it can run.

A mode describes its problem as a pure `terms(x, aux) -> {name: scalar}` plus a weight per term; the
loop minimises `sum_k weight_k * terms_k` over the image x in [0, 1]. Steps run in chunks (one
`lax.scan` under `jit` on a GPU, compiled steps dispatched without waiting on a CPU, L-BFGS's
host-driven line search on both; `steppers.py`): the host sees the image only between chunks, to report
progress, draw a preview, check the stopping rule, or stop when the caller stops iterating.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Callable, Iterator, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .errors import StyleError
from .lbfgs import host_lbfgs
from .steppers import Average, StepState, Stepper, first_order


class Optimizer(NamedTuple):
    """A registry entry. `lr` takes a content-initialised image to a stylised one in a few hundred steps
    on pixel values in [0, 1]; `tol` is the stopping rule's default (settings.DEFAULT_TOL says why)."""
    stepper: Callable[..., Stepper]   # the stepper factory (`steppers.py`)
    lr: float
    tol: float
    description: str
    line_search: bool = False         # the learning rate scales only a line search's first step


OPTIMIZERS = {
    "lbfgs": Optimizer(host_lbfgs, 1.0, 1e-4, "limited-memory quasi-Newton with a line search", True),
    "adam": Optimizer(first_order(optax.adam), 0.02, 0.0, "adaptive moments (Kingma and Ba 2015)"),
    "adagrad": Optimizer(first_order(optax.adagrad), 0.05, 0.0, "per-pixel rates from summed squared gradients"),
    "rmsprop": Optimizer(first_order(optax.rmsprop), 0.005, 0.0, "per-pixel rates from recent squared gradients"),
    "sgd": Optimizer(first_order(optax.sgd), 0.001, 0.0, "plain gradient descent"),
}

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
# The tolerance rule compares the lowest losses at least this many steps apart: one L-BFGS step from a
# fresh start (a short gradient step) says little about how far there is to go. L-BFGS's steps may
# rise and fall back for a few steps before the lowest loss moves again (lbfgs.py's NONMONOTONE), so
# a slow span stops the run only where it ends at its lowest loss or follows another slow span: with
# spans of 5 read alone, a 256 px run stopped on such a pause at 0.9825 where it went on to 0.97;
# spans of 10 made video's later frames 40% dearer (bench/LOG.md 29).
TOL_SPAN = 5


def _total(terms: Terms, x, aux, weights):
    values = terms(x, aux)
    return sum(weights[k] * v for k, v in values.items()), values


@functools.lru_cache(maxsize=64)
def evaluator(terms: Terms) -> Callable:
    """jit: (x, aux, weights) -> (total, {term: value})."""
    return jax.jit(functools.partial(_total, terms))


@functools.lru_cache(maxsize=64)
def gradient(terms: Terms) -> Callable:
    """(x, aux, weights) -> ((total, {term: value}), grad): one per `terms`, the steppers' cache key."""
    return functools.partial(jax.value_and_grad(_total, argnums=1, has_aux=True), terms)


def default_dispatch() -> str:
    """How a chunk runs its steps on this backend.

    "scan": one compiled `lax.scan` over the chunk, each step under `lax.cond` (GPU/TPU: no host
    involvement at all). "async": the compiled step dispatched once per step without waiting, so the
    host only reads results at the chunk's end (CPU). XLA:CPU runs convolutions inside any nested
    computation (while loop or conditional) about 3x slower than at top level (jax#12868); measured
    on VGG19 at 256 px: 1.40 s per step in a scan, 0.50 s dispatched (bench/LOG.md).
    """
    return "async" if jax.default_backend() == "cpu" else "scan"


@dataclasses.dataclass(frozen=True)
class Descent:
    """What the loop reports after each chunk (and once at the end, with `finished` set): a fresh
    report each time, so a caller that keeps them sees each as it was."""
    step: int                              # steps taken so far
    x: jax.Array                           # the current image
    losses: Mapping[str, float]            # 'total' and, where known, each term
    history: tuple[float, ...]             # total loss before each step taken
    initial_losses: Mapping[str, float]    # every term at x0
    seconds: float
    finished: bool = False
    stop_reason: str = "finished"
    evaluations: int = 0                   # of the loss and its gradient (L-BFGS: line searches included)


def _losses(evaluate: Callable, x, aux, weights) -> dict[str, float]:
    total, values = evaluate(x, aux, weights)
    return {"total": float(total), **{k: float(v) for k, v in values.items()}}


def descend(x0: jax.Array, terms: Terms, aux: Any, weights: Mapping[str, float], *,
            iterations: int, optimizer: str, lr: float, steps_per_call: int = 20, tol: float = 0.0,
            dispatch: str | None = None, bounds: str = "box", average: float = 0.0) -> Iterator[Descent]:
    """Minimises sum_k weights[k] * terms(x, aux)[k] over images x in [0, 1] from x0 (clipped),
    yielding after every chunk of up to `steps_per_call` steps. `bounds` (`lbfgs.BOUNDS`) says
    how L-BFGS keeps the image in [0, 1], or does not (`lbfgs.py`).

    Stops after `iterations` steps; earlier when the lowest loss falls by less than `tol` (relative,
    per step) between two checks at least TOL_SPAN steps apart and the run is at its lowest loss or
    the span before was as slow, or the stepper has converged; or when it
    diverges (non-finite, or EXPLODE_FACTOR times the starting loss), in which case the last report
    holds the best image seen and the reason. The caller may stop iterating at any time. Per-chunk
    reports carry each term for first-order methods; L-BFGS reports only the total until the end.

    `average` > 0: every report's image is the exponential moving average of the iterates with that
    decay (`steppers.Average`), whatever the optimizer; the result is the average (its loss a little
    above the last iterate's: that is what averaging trades), except where the run diverged.
    """
    start = time.perf_counter()
    if optimizer not in OPTIMIZERS:
        raise StyleError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    stepper = OPTIMIZERS[optimizer].stepper(gradient(terms), float(lr), steps_per_call=int(steps_per_call),
                                            dispatch=dispatch or default_dispatch(), bounds=bounds,
                                            size=x0.size)
    state = stepper.init(x0)
    if average:
        state = state._replace(average=Average.start(state.x, average))
    shown = lambda s: s.x if s.average is None else s.average.image  # noqa: E731
    def count(state: StepState, step: int) -> int:
        return stepper.evaluations(state) if stepper.evaluations else step
    weights = {k: jnp.float32(v) for k, v in weights.items()}
    measure = functools.partial(_losses, evaluator(terms), aux=aux, weights=weights)
    losses0 = measure(state.x)
    total0 = losses0["total"]
    if not np.isfinite(total0):
        raise StyleError("the loss is not finite at the start: check the weights and images")
    limit = jnp.float32(EXPLODE_FACTOR * total0 if total0 > 0 else np.inf)
    # `history[k]` is the loss before step k + 1; the stopping rule compares two of them, `seen`
    # steps apart, once they are at least TOL_SPAN apart.
    history: list[float] = []
    step, calls, n_active, last_total, last_seen, was_slow = 0, 0, 1, total0, 0, False
    while step < iterations:
        n = min(n_active, iterations - step)
        if tol > 0:  # a chunk ends where the rule looks, so it sees the same steps however long each took
            n = min(n, last_seen + 1 + TOL_SPAN - step)
        t0 = time.perf_counter()
        state, (totals, values) = stepper.run(state, aux, weights, limit, jnp.int32(n))
        totals = np.asarray(totals)[:n]
        calls += 1
        if calls >= 2:  # the first call includes compilation
            per_step = (time.perf_counter() - t0) / n
            n_active = int(np.clip(TARGET_CHUNK_SECONDS / max(per_step, 1e-9), 1, steps_per_call))
        bad = ~(np.isfinite(totals) & (totals <= float(limit)))
        taken = int(np.argmax(bad)) if bad.any() else n
        step += taken
        history.extend(float(v) for v in totals[:taken])
        if bool(state.diverged):
            yield Descent(step, state.best_x, measure(state.best_x), tuple(history), losses0,
                          time.perf_counter() - start, True,
                          f"diverged at step {step + 1} (loss {totals[taken]:.3g}); kept the best image so "
                          f"far: try a smaller learning rate", count(state, step))
            return
        current = history[-1]
        lowest = min(history)   # the rule reads the lowest loss so far: L-BFGS's steps may rise and fall
        seen = len(history) - 1 - last_seen
        slow = tol > 0 and last_total > 0 and seen >= TOL_SPAN and (last_total - lowest) / (last_total * seen) < tol
        # ... and stops there if the run is at its lowest, or was as slow over the span before: not on
        # a span spent rising and falling back (TOL_SPAN's comment)
        converged = (slow and (current <= lowest or was_slow)) or stepper.converged(state)
        if seen >= TOL_SPAN:
            last_total, last_seen, was_slow = lowest, len(history) - 1, slow
        if step >= iterations or converged:
            break
        last = {k: float(np.asarray(v)[n - 1]) for k, v in values.items()}
        losses = {"total": current, **{k: v for k, v in last.items() if np.isfinite(v)}}
        yield Descent(step, shown(state), losses, tuple(history), losses0, time.perf_counter() - start,
                      evaluations=count(state, step))
    final = Descent(step, shown(state), measure(shown(state)), tuple(history), losses0, 0.0, True,
                    "converged" if step < iterations else "finished", count(state, step))
    yield dataclasses.replace(_keep_best(final, state.best_x, measure, state.average is not None),
                              seconds=time.perf_counter() - start)


def _keep_best(report: Descent, best_x, measure: Callable, averaged: bool = False) -> Descent:
    """Where the run ended above the lowest loss before any of its steps (or not finite), that
    step's image (the stepper's best, the same whatever the chunking) becomes the result; ended
    DIVERGE_FACTOR times above its start or not finite, the run is said to have diverged. An
    `averaged` run keeps its average unless it diverged (the average's loss is above the best
    iterate's by design)."""
    if not report.history:   # no step taken
        return report
    final = report.losses["total"]
    step = int(np.argmin(report.history))
    loss = report.history[step]
    if np.isfinite(final) and final <= loss:
        return report
    start = report.initial_losses["total"]
    diverged = not np.isfinite(final) or (start > 0 and final > DIVERGE_FACTOR * start)
    if averaged and not diverged:
        return report
    if diverged:
        rise = f" ({final / start:.3g}x its start)" if np.isfinite(final) and start > 0 else ""
        reason = (f"diverged: the loss rose to {final:.3g}{rise}; kept the best image (step {step}, loss "
                  f"{loss:.3g}): try a smaller learning rate")
    else:
        reason = report.stop_reason + f" (kept step {step}'s image, loss {loss:.4g}; the last was {final:.4g})"
    return dataclasses.replace(report, x=best_x, losses=measure(best_x), stop_reason=reason)
