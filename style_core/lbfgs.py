"""L-BFGS with the line search driven from the host, for CPUs.

optax.lbfgs evaluates the loss inside the zoom line search's `lax.while_loop`, and XLA:CPU runs
convolutions in loop bodies about 3x slower than at top level (jax#12868). Here every evaluation is
a top-level compiled call and the line search's few scalar decisions are made on the host, which costs
nothing next to a CPU forward/backward pass. The two-loop recursion is optax's `scale_by_lbfgs`.

The line search brackets a step satisfying the weak Wolfe conditions (Nocedal & Wright, 3.6):
    f(x + t d) <= f(x) + c1 t g.d        (sufficient decrease)
    g(x + t d).d >= c2 g.d               (curvature; guarantees y.s > 0 for the memory)
On a fresh memory's first step, scaled by 1/|g|_1 and often far too short, a step with sufficient
decrease along which the slope rose, g(x + t d).d > g.d, is taken even when it fails the curvature
condition: its pair has y.s > 0 and gives the next step its scale, for one evaluation (a forward and
backward pass). Later steps keep the full conditions (taking short steps there too changed where
video frames stop, and with it the consistency at chunk borders). Without a bracket yet, the search
extrapolates by EXPAND per evaluation (bench/LOG.md 8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

C1, C2 = 1e-4, 0.9
MAX_EVALUATIONS = 20
EXPAND = 8.0
STALL_RTOL = 1e-6   # a few float32 ulps


@dataclass
class HostLBFGSState:
    memory: Any                  # optax ScaleByLBFGSState
    value: Any = None            # f, {terms}, grad at the current x (None until evaluated)
    terms: Any = None
    grad: Any = None
    first: bool = True
    stalled: bool = False        # not even the steepest descent found a decrease: x is a minimum


class HostLBFGS:
    """`init(x)` and `step(carry, aux, weights, limit)` with the same carry as the compiled chunks."""

    def __init__(self, value_and_grad: Callable, lr: float = 1.0, memory_size: int = 50):
        self.value_and_grad = jax.jit(value_and_grad)   # (x, aux, weights) -> ((f, terms), g)
        self.lr = lr
        self.base = optax.scale_by_lbfgs(memory_size=memory_size)
        self.precondition = jax.jit(self.base.update)
        self.dot = jax.jit(lambda a, b: jnp.vdot(a, b))
        self.abs_sum = jax.jit(lambda a: jnp.sum(jnp.abs(a)))
        self.trial = jax.jit(lambda x, t, d: x + t * d)

    def init(self, x) -> HostLBFGSState:
        return HostLBFGSState(self.base.init(x))

    def _evaluate(self, x, aux, weights):
        (f, terms), g = self.value_and_grad(x, aux, weights)
        return float(f), terms, g

    def step(self, carry, aux, weights, limit):
        x, state, best_x, best_loss, diverged = carry
        nan_terms = {k: jnp.float32(jnp.nan) for k in weights}
        if bool(diverged):
            return carry, (jnp.float32(jnp.nan), nan_terms)
        if state.stalled:  # costs no evaluation; `descend` stops as converged
            return carry, (jnp.float32(state.value), state.terms)
        if state.value is None:
            state.value, state.terms, state.grad = self._evaluate(x, aux, weights)
        f, g = state.value, state.grad
        if not (np.isfinite(f) and f <= float(limit)):
            return (x, state, best_x, best_loss, jnp.bool_(True)), (jnp.float32(f), state.terms)
        if f < float(best_loss):
            best_x, best_loss = x, jnp.float32(f)
        direction, memory = self.precondition(g, state.memory, x)
        d = -direction
        slope = float(self.dot(g, d))
        if not slope < 0:  # not a descent direction: forget the memory, go downhill
            memory, d, slope = self.base.init(x), -g, -float(self.dot(g, g))
        # Only the first step, with no curvature information yet, is scaled (by the learning rate and
        # like SciPy and PyTorch by 1/|g|_1). Later steps try t = 1, the quasi-Newton step: starting
        # lower only makes the search double its way back up, one evaluation per doubling.
        t = self.lr * min(1.0, 1.0 / max(float(self.abs_sum(g)), 1e-12)) if state.first else 1.0
        lo, hi, accepted, valid_pair = 0.0, np.inf, None, False
        for _ in range(MAX_EVALUATIONS):
            x_t = self.trial(x, jnp.float32(t), d)
            f_t, terms_t, g_t = self._evaluate(x_t, aux, weights)
            if not np.isfinite(f_t) or f_t > f + C1 * t * slope:
                hi = t
            elif (slope_t := float(self.dot(g_t, d))) < C2 * slope:
                lo, accepted = t, (x_t, f_t, terms_t, g_t)
                if state.first and slope_t > slope:  # y.s = t (g_t - g).d > 0 (see the module's doc)
                    valid_pair = True
                    break
                if hi < np.inf:
                    t = 0.5 * (lo + hi)
                    continue
                t = EXPAND * t
                continue
            else:
                accepted, valid_pair = (x_t, f_t, terms_t, g_t), True
                break
            t = 0.5 * (lo + hi)
        out = (jnp.float32(f), state.terms)
        # The search ran out of evaluations along -g (a fresh memory) with steps so short that the loss
        # no longer changes: x is a minimum to float32 precision, and every further step would spend
        # MAX_EVALUATIONS evaluations finding that again. (Steps that were all far too long, with the
        # loss far above f, are not that: the memory starts afresh and the run goes on.)
        state.stalled = state.first and not valid_pair and bool(abs(f_t - f) <= STALL_RTOL * abs(f))
        if accepted is None:  # no decrease found: stay, and start the memory afresh
            state.memory, state.first = self.base.init(x), True
            return (x, state, best_x, best_loss, jnp.bool_(False)), out
        new_x, state.value, state.terms, state.grad = accepted
        # A pair with y.s <= 0 would poison the memory: start it afresh instead.
        state.memory, state.first = (memory, False) if valid_pair else (self.base.init(x), True)
        return (new_x, state, best_x, best_loss, jnp.bool_(False)), out
