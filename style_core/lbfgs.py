"""L-BFGS over images in [0, 1], with the line search driven from the host, on every backend.

optax.lbfgs evaluates the loss inside the zoom line search's `lax.while_loop`, and XLA:CPU runs
convolutions in loop bodies about 3x slower than at top level (jax#12868); nor does it keep the
image in bounds. Here every evaluation is a top-level compiled call and the line search's few scalar
decisions are made on the host, which costs one round trip per evaluation, little next to a
forward and backward pass. The two-loop recursion is optax's `scale_by_lbfgs`.

The line search brackets a step satisfying the weak Wolfe conditions (Nocedal & Wright, 3.6):
    f(x + t d) <= f(x) + c1 t g.d        (sufficient decrease)
    g(x + t d).d >= c2 g.d               (curvature; guarantees y.s > 0 for the memory)
On a fresh memory's first step, scaled by 1/|g|_1 and often far too short, a step with sufficient
decrease along which the slope rose, g(x + t d).d > g.d, is taken even when it fails the curvature
condition: its pair has y.s > 0 and gives the next step its scale, for one evaluation (a forward and
backward pass). Later steps keep the full conditions (taking short steps there too changed where
video frames stop, and with it the consistency at chunk borders). Without a bracket yet, the search
extrapolates by EXPAND per evaluation (bench/LOG.md 8).

The image stays in [0, 1], the box every output is clipped to, as in L-BFGS-B (Byrd et al. 1995) and
Gatys et al.'s own code: a pixel at a bound whose gradient pushes it outward is held there (its
component of the direction is zero), and each trial is projected, x(t) = clip(x + t d, 0, 1), so the
conditions above are read along the step actually taken, s = x(t) - x, with g.s in place of t g.d.
Unconstrained, 2-5% of a flat region's pixels ended far outside (down to -2, up to 4) and the final
clip undid the style there (bench/LOG.md 12). The memory's pairs are the steps actually taken.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .steppers import Average, StepState, Stepper, dispatched

C1, C2 = 1e-4, 0.9
MAX_EVALUATIONS = 20
EXPAND = 8.0
STALL_RTOL = 1e-6   # a few float32 ulps
# L-BFGS keeps up to 50 curvature pairs, within this many bytes: with 50 pairs a 256 px run reaches
# in 275 steps the loss that 10 pairs reach in 396 (bench/LOG.md 7); a 4096 px image keeps 5.
LBFGS_MEMORY = 50
LBFGS_MEMORY_BYTES = 2 ** 30


def lbfgs_memory(size: int) -> int:
    """Curvature pairs L-BFGS keeps for an image of `size` values (two float32 vectors per pair)."""
    return int(np.clip(LBFGS_MEMORY_BYTES // (8 * max(size, 1)), 5, LBFGS_MEMORY))


def host_lbfgs(value_and_grad: Callable, lr: float, *, bounded: bool, size: int, **_chunking) -> Stepper:
    """The L-BFGS stepper (`steppers.py`). Its steps run from the host one by one, so the chunking only
    sets how often the host looks; unbounded, the image leaves [0, 1] (the classic scripts' way)."""
    host = _compiled(value_and_grad, lbfgs_memory(size), bounded)
    return Stepper(functools.partial(host.init, lr=lr), dispatched(host.step), lambda state: state.inner.stalled,
                   lambda state: state.inner.evaluations)


class HostLBFGSState(NamedTuple):
    memory: Any                  # optax ScaleByLBFGSState
    lr: float                    # scales a fresh memory's first step
    value: Any = None            # f, {terms}, grad at the current x (None until evaluated)
    terms: Any = None
    grad: Any = None
    first: bool = True
    stalled: bool = False        # not even the steepest descent found a decrease: x is a minimum
    evaluations: int = 0         # of the loss and its gradient, the line searches' included


class HostLBFGS:
    """The compiled calls of L-BFGS for one loss, memory size and box: `init(x, lr)` and
    `step(state, aux, weights, limit)` over a `StepState` whose `inner` is a `HostLBFGSState`."""

    def __init__(self, value_and_grad: Callable, memory_size: int = 50, bounded: bool = True):
        self.bounded = bounded
        self.base = optax.scale_by_lbfgs(memory_size=memory_size)
        self.abs_sum = jax.jit(lambda a: jnp.sum(jnp.abs(a)))
        box = (0.0, 1.0) if bounded else (-np.inf, np.inf)   # unbounded: the classic scripts' way
        # One compiled call per trial (projection, forward and backward pass, both slopes) and one per
        # direction: on small images each extra dispatch costs as much as a convolution.
        self.probe = jax.jit(functools.partial(_probe, value_and_grad, box=box))
        # The memory is updated in place (donated): copying its pairs cost 10 of the direction call's
        # 20 ms at 256 px and 75 of its 105 ms at 512 px (bench/LOG.md 20). `fresh` makes a memory
        # whose buffers are distinct, as donation needs (optax's init shares one zero array).
        self.direction = jax.jit(functools.partial(_direction, self.base.update, box=box), donate_argnums=1)
        self.fresh = jax.jit(self.base.init)
        self.held = jax.jit(functools.partial(_held, box=box))

    def init(self, x, lr: float = 1.0) -> StepState:
        x = jnp.clip(x, 0.0, 1.0) if self.bounded else jnp.asarray(x, jnp.float32)
        return StepState.start(x, HostLBFGSState(self.fresh(x), float(lr)))

    def _evaluate(self, x, t, d, g, aux, weights):
        """Loss, terms and gradient at x(t) = clip(x + t d), with g.s and g_t.s for s = x(t) - x."""
        x_t, f_t, terms_t, g_t, gs, gs_t = self.probe(x, t, d, g, aux, weights)
        f_t, gs, gs_t = (float(v) for v in jax.device_get((f_t, gs, gs_t)))
        return x_t, f_t, terms_t, g_t, gs, gs_t

    def step(self, state: StepState, aux, weights, limit):
        inner, x, best_x, best_loss = state.inner, state.x, state.best_x, state.best_loss
        if bool(state.diverged):
            return state, (jnp.float32(jnp.nan), {k: jnp.float32(jnp.nan) for k in weights})
        if inner.stalled:  # costs no evaluation; the stepper reports it converged
            return state, (jnp.float32(inner.value), inner.terms)
        if inner.value is None:
            zero = jnp.zeros_like(x)
            x, value, terms, grad, _, _ = self._evaluate(x, jnp.float32(0), zero, zero, aux, weights)
            inner = inner._replace(value=value, terms=terms, grad=grad, evaluations=inner.evaluations + 1)
        f, g, first = inner.value, inner.grad, inner.first
        if not (np.isfinite(f) and f <= float(limit)):
            return state._replace(x=x, inner=inner, diverged=jnp.bool_(True)), (jnp.float32(f), inner.terms)
        if f < float(best_loss):
            best_x, best_loss = x, jnp.float32(f)
        d, slope, memory = self.direction(g, inner.memory, x)
        if not float(slope) < 0:  # not a descent direction: forget the memory, go downhill
            memory = self.fresh(x)
            d, slope = self.held(x, g, -g)
        slope = float(slope)
        # Only the first step, with no curvature information yet, is scaled (by the learning rate and
        # like SciPy and PyTorch by 1/|g|_1). Later steps try t = 1, the quasi-Newton step: starting
        # lower only makes the search double its way back up, one evaluation per doubling.
        t = inner.lr * min(1.0, 1.0 / max(float(self.abs_sum(d)), 1e-12)) if first else 1.0
        lo, hi, accepted, valid_pair, f_t, tried = 0.0, np.inf, None, False, f, 0
        for _ in range(MAX_EVALUATIONS if slope < 0 else 0):  # slope 0: every pixel held, a minimum
            x_t, f_t, terms_t, g_t, gs, gs_t = self._evaluate(x, jnp.float32(t), d, g, aux, weights)
            tried += 1
            if not np.isfinite(f_t) or not gs < 0 or f_t > f + C1 * gs:
                hi = t
            elif gs_t < C2 * gs:
                lo, accepted = t, (x_t, f_t, terms_t, g_t)
                if first and gs_t > gs:  # y.s = g_t.s - g.s > 0 (see the module's doc)
                    valid_pair = True
                    break
                t = 0.5 * (lo + hi) if hi < np.inf else EXPAND * t
                continue
            else:
                accepted, valid_pair = (x_t, f_t, terms_t, g_t), True
                break
            t = 0.5 * (lo + hi)
        out = (jnp.float32(f), inner.terms)
        # The search ran out of evaluations along -g (a fresh memory) with steps so short that the loss
        # no longer changes: x is a minimum to float32 precision, and every further step would spend
        # MAX_EVALUATIONS evaluations finding that again. (Steps that were all far too long, with the
        # loss far above f, are not that: the memory starts afresh and the run goes on.)
        inner = inner._replace(stalled=not slope < 0 or (first and not valid_pair
                                                         and bool(abs(f_t - f) <= STALL_RTOL * abs(f))))
        # No decrease found: stay. Then, or with a pair whose y.s <= 0 (it would poison the memory), the
        # memory starts afresh.
        new_x, value, terms, grad = accepted or (x, f, inner.terms, g)
        memory, first = (memory, False) if valid_pair else (self.fresh(x), True)
        inner = inner._replace(memory=memory, first=first, value=value, terms=terms, grad=grad,
                               evaluations=inner.evaluations + tried)
        return StepState(new_x, inner, best_x, best_loss, jnp.bool_(False),
                         None if state.average is None else _average(state.average, new_x)), out


_compiled = functools.lru_cache(maxsize=64)(HostLBFGS)   # one per loss, memory size and box
_average = jax.jit(Average.update)   # one compiled call per step, not three dispatches


def _probe(value_and_grad, x, t, d, g, aux, weights, box):
    x_t = jnp.clip(x + t * d, *box)
    (f_t, terms_t), g_t = value_and_grad(x_t, aux, weights)
    return (x_t, f_t, terms_t, g_t, *_along(x, t, d, g, g_t, box))


def _direction(update, g, memory, x, box):
    """The held quasi-Newton direction, its slope, and the memory with the last step's pair."""
    direction, memory = update(g, memory, x)
    return (*_held(x, g, -direction, box), memory)


def _held(x, g, d, box):
    """The direction with every component that would push a pixel out of the box set to zero (at a
    bound, pointing out), and its slope g.d."""
    held = ((x <= box[0]) & (d < 0.0)) | ((x >= box[1]) & (d > 0.0))
    d = jnp.where(held, 0.0, d)
    return d, jnp.vdot(g, d)


def _along(x, t, d, g, g_t, box):
    """g.s and g_t.s for the projected step s = clip(x + t d) - x, summed as t times the dot with
    d where no bound was hit, so that a tiny step keeps its precision (x + t d - x in float32 would
    lose it)."""
    free = x + t * d
    hit = (free < box[0]) | (free > box[1])
    unit = jnp.where(hit, (jnp.clip(free, *box) - x) / jnp.where(hit, t, 1.0), d)   # s / t
    return t * jnp.vdot(g, unit), t * jnp.vdot(g_t, unit)
