"""L-BFGS over images in [0, 1], with the line search driven from the host, on every backend.

optax.lbfgs evaluates the loss inside the zoom line search's `lax.while_loop`, and XLA:CPU runs
convolutions in loop bodies about 3x slower than at top level (jax#12868); nor does it keep the
image in bounds. Here every evaluation is a top-level compiled call and the line search's few scalar
decisions are made on the host, which costs one round trip per evaluation, little next to a
forward and backward pass. The two-loop recursion (Nocedal & Wright, Algorithm 7.4) is written here:
optax's `scale_by_lbfgs` forms each pair from two consecutive iterates, and under `box` the pairs
are not the steps taken.

Every step after a memory's first tries t = 1, the quasi-Newton step, and takes it when it meets the
curvature condition below and its loss is below the largest of the last NONMONOTONE losses (Grippo,
Lampariello & Lucidi 1986; under `lbfgs-b`, below f itself):
    f(x + d) <= max(f_k, ..., f_k-M+1) + c1 g.d
so that a step may rise a little on the way down a curved valley, as the PyTorch tutorial's L-BFGS
(which takes every unit step) does; a run's result is its lowest loss's image (`optimize.descend`).
Otherwise, and on a fresh memory's first step, a search brackets a step satisfying the weak Wolfe
conditions (Nocedal & Wright, 3.6):
    f(x + t d) <= f(x) + c1 t g.d        (sufficient decrease)
    g(x + t d).d >= c2 g.d               (curvature; guarantees y.s > 0 for the memory)
On a fresh memory's first step, scaled by 1/|g|_1 and often far too short, a step with sufficient
decrease along which the slope rose is taken even when it fails the curvature condition: its pair
has y.s > 0 and gives the next step its scale, for one evaluation (a forward and backward pass).
Without a bracket yet, the search extrapolates by EXPAND per evaluation (bench/LOG.md 8).

The bounds (BOUNDS). Under `box` and `lbfgs-b` the image stays in [0, 1], the box every
output is clipped to: each trial is projected, x(t) = clip(x + t d, 0, 1), and the conditions above
are read along the step actually taken, s = x(t) - x, with g.s in place of t g.d (leaving out the
components that push a pixel at a bound outward, which the projection stops). Unconstrained, 2-5% of
a flat region's pixels ended far outside (down to -2, up to 4) and the final clip undid the style
there (bench/LOG.md 12). The two differ in what the memory learns:
- `box` (image mode's default): the steps as proposed, s = t d, clipped or not, with y = g(x(t)) -
  g(x), and the direction is not cut at the bounds: L-BFGS does not see the box, as under the
  PyTorch tutorial's clamp. Its model then takes a pixel held at a bound for a flat direction and
  pushes it there sooner. On the trained network the same number of evaluations ends 0.3-2% lower
  than with L-BFGS-B's pairs (real photos and paintings at 128 px, the bundled pair at 256 px), worth
  20-40% of the evaluations in the loss's slow tail (bench/LOG.md 28, 29).
- `lbfgs-b` (photo mode's default): L-BFGS-B's way, the steps taken, s = x(t) - x, with the
  direction's outward components at a bound set to zero, and every step monotone. Photo mode's
  matting Laplacian ties each pixel to its neighbours, and there the proposed pairs mislead: a real
  pair at 128 px stopped at a loss 1.8x L-BFGS-B's (LOG 29).
A pair is kept while y.s > 0, else the memory starts afresh. Under `none` nothing is clipped
until the output is written (the classic scripts' way; video mode's default).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .errors import StyleError
from .steppers import Average, StepState, Stepper, dispatched

C1, C2 = 1e-4, 0.9
MAX_EVALUATIONS = 20
EXPAND = 8.0
# How L-BFGS keeps the image in [0, 1] (the module's doc); `settings.ImageSettings.bounds` offers these
BOUNDS = ("box", "lbfgs-b", "none")
NONMONOTONE = 10    # a unit step is compared with the largest of this many last losses (GLL's M)
STALL_RTOL = 1e-6   # a few float32 ulps
# L-BFGS keeps up to 50 curvature pairs, within this many bytes: with 50 pairs a 256 px run reaches
# in 275 steps the loss that 10 pairs reach in 396 (bench/LOG.md 7); a 4096 px image keeps 5.
LBFGS_MEMORY = 50
LBFGS_MEMORY_BYTES = 2 ** 30


def lbfgs_memory(size: int) -> int:
    """Curvature pairs L-BFGS keeps for an image of `size` values (two float32 vectors per pair)."""
    return int(np.clip(LBFGS_MEMORY_BYTES // (8 * max(size, 1)), 5, LBFGS_MEMORY))


def host_lbfgs(value_and_grad: Callable, lr: float, *, bounds: str, size: int, **_chunking) -> Stepper:
    """The L-BFGS stepper (`steppers.py`). Its steps run from the host one by one, so the chunking only
    sets how often the host looks; `bounds` as the module's doc says."""
    host = _compiled(value_and_grad, lbfgs_memory(size), bounds)
    return Stepper(functools.partial(host.init, lr=lr), dispatched(host.step), lambda state: state.inner.stalled,
                   lambda state: state.inner.evaluations)


class Memory(NamedTuple):
    """The curvature pairs, newest at (count - 1) % m: each step (`_pair`: as proposed, or as taken
    under `lbfgs-b`) and the gradient's change, and rho = 1 / y.s (0 in an empty slot)."""
    s: jax.Array
    y: jax.Array
    rho: jax.Array
    count: jax.Array


class HostLBFGSState(NamedTuple):
    memory: Memory
    lr: float                    # scales a fresh memory's first step
    value: Any = None            # f, {terms}, grad at the current x (None until evaluated)
    terms: Any = None
    grad: Any = None
    first: bool = True
    recent: tuple = ()           # the losses before f, up to NONMONOTONE
    stalled: bool = False        # not even the steepest descent found a decrease: x is a minimum
    evaluations: int = 0         # of the loss and its gradient, the line searches' included


class HostLBFGS:
    """The compiled calls of L-BFGS for one loss, memory size and box: `init(x, lr)` and
    `step(state, aux, weights, limit)` over a `StepState` whose `inner` is a `HostLBFGSState`."""

    def __init__(self, value_and_grad: Callable, memory_size: int = 50, bounds: str = "box"):
        if bounds not in BOUNDS:
            raise StyleError(f"unknown bounds {bounds!r}; choose one of {', '.join(BOUNDS)}")
        self.bounded = bounds != "none"
        self.lbfgs_b = bounds == "lbfgs-b"   # L-BFGS-B's pairs, held directions, monotone steps
        self.nonmonotone = 1 if self.lbfgs_b else NONMONOTONE
        self.abs_sum = jax.jit(lambda a: jnp.sum(jnp.abs(a)))
        box = (0.0, 1.0) if self.bounded else (-np.inf, np.inf)   # none: the classic scripts' way
        # One compiled call per trial (projection, forward and backward pass, slopes, y.s) and one per
        # direction: on small images each extra dispatch costs as much as a convolution.
        self.probe = jax.jit(functools.partial(_probe, value_and_grad, box=box, taken=self.lbfgs_b))
        self.direction = jax.jit(functools.partial(_direction, box=box, hold=self.lbfgs_b))
        # The memory is updated in place (donated): copying its pairs cost 10 of the direction call's
        # 20 ms at 256 px and 75 of its 105 ms at 512 px (bench/LOG.md 20).
        self.remember = jax.jit(functools.partial(_remember, box=box, taken=self.lbfgs_b), donate_argnums=0)
        self.fresh = jax.jit(functools.partial(_fresh, memory_size))
        self.held = jax.jit(functools.partial(_held, box=box))

    def init(self, x, lr: float = 1.0) -> StepState:
        x = jnp.clip(x, 0.0, 1.0) if self.bounded else jnp.asarray(x, jnp.float32)
        return StepState.start(x, HostLBFGSState(self.fresh(x), float(lr)))

    def _evaluate(self, x, t, d, g, aux, weights):
        """Loss, terms and gradient at x(t) = clip(x + t d); g.s and g_t.s for s = x(t) - x; and the
        memory's y.s for its pair (`_pair`)."""
        x_t, f_t, terms_t, g_t, gs, gs_t, ys = self.probe(x, t, d, g, aux, weights)
        f_t, gs, gs_t, ys = (float(v) for v in jax.device_get((f_t, gs, gs_t, ys)))
        return x_t, f_t, terms_t, g_t, gs, gs_t, ys

    def step(self, state: StepState, aux, weights, limit):
        inner, x, best_x, best_loss = state.inner, state.x, state.best_x, state.best_loss
        if bool(state.diverged):
            return state, (jnp.float32(jnp.nan), {k: jnp.float32(jnp.nan) for k in weights})
        if inner.stalled:  # costs no evaluation; the stepper reports it converged
            return state, (jnp.float32(inner.value), inner.terms)
        if inner.value is None:
            zero = jnp.zeros_like(x)
            x, value, terms, grad, *_ = self._evaluate(x, jnp.float32(0), zero, zero, aux, weights)
            inner = inner._replace(value=value, terms=terms, grad=grad, evaluations=inner.evaluations + 1)
        f, g, first, memory = inner.value, inner.grad, inner.first, inner.memory
        if not (np.isfinite(f) and f <= float(limit)):
            return state._replace(x=x, inner=inner, diverged=jnp.bool_(True)), (jnp.float32(f), inner.terms)
        if f < float(best_loss):
            best_x, best_loss = x, jnp.float32(f)
        d, slope = self.direction(memory, g, x)
        if not float(slope) < 0:  # not a descent direction: forget the memory, go downhill
            memory, first = self.fresh(x), True
            d, slope = self.held(x, g, -g)
        slope = float(slope)
        # Only the first step, with no curvature information yet, is scaled (by the learning rate and
        # like SciPy and PyTorch by 1/|g|_1). Later steps try t = 1, the quasi-Newton step: starting
        # lower only makes the search double its way back up, one evaluation per doubling.
        t = inner.lr * min(1.0, 1.0 / max(float(self.abs_sum(d)), 1e-12)) if first else 1.0
        reference = max((*inner.recent, f)[-self.nonmonotone:])
        lo, hi, accepted, f_t, tried, met = 0.0, np.inf, None, f, 0, False   # met: the conditions held
        for _ in range(MAX_EVALUATIONS if slope < 0 else 0):  # slope 0: every pixel held, a minimum
            x_t, f_t, terms_t, g_t, gs, gs_t, ys = self._evaluate(x, jnp.float32(t), d, g, aux, weights)
            tried += 1
            trial = (t, x_t, f_t, terms_t, g_t, ys)
            if (tried == 1 and not first and np.isfinite(f_t) and gs < 0 and f_t <= reference + C1 * gs
                    and gs_t >= C2 * gs):
                accepted, met = trial, True   # the unit step, against the last losses (the module's doc)
                break
            if not np.isfinite(f_t) or not gs < 0 or f_t > f + C1 * gs:
                hi = t
            elif gs_t < C2 * gs:
                lo, accepted = t, trial
                if first and ys > 0:  # a pair for the memory (see the module's doc)
                    met = True
                    break
                t = 0.5 * (lo + hi) if hi < np.inf else EXPAND * t
                continue
            else:
                accepted, met = trial, True
                break
            t = 0.5 * (lo + hi)
        out = (jnp.float32(f), inner.terms)
        # A step the search settled for without the conditions (out of evaluations) adds its pair where
        # y.s > 0; under lbfgs-b, as L-BFGS-B would, the memory starts afresh instead.
        valid_pair = accepted is not None and accepted[-1] > 0 and (met or not self.lbfgs_b)
        # The search ran out of evaluations along -g (a fresh memory) with steps so short that the loss
        # no longer changes: x is a minimum to float32 precision, and every further step would spend
        # MAX_EVALUATIONS evaluations finding that again. (Steps that were all far too long, with the
        # loss far above f, are not that: the memory starts afresh and the run goes on.)
        inner = inner._replace(stalled=not slope < 0 or (first and not valid_pair
                                                         and bool(abs(f_t - f) <= STALL_RTOL * abs(f))))
        # No decrease found: stay. Then, or with a pair whose y.s <= 0 (it would poison the memory), the
        # memory starts afresh.
        t, new_x, value, terms, grad, _ = accepted or (0.0, x, f, inner.terms, g, 0.0)
        memory, first = ((self.remember(memory, x, jnp.float32(t), d, g, grad), False) if valid_pair
                         else (self.fresh(x), True))
        inner = inner._replace(memory=memory, first=first, value=value, terms=terms, grad=grad,
                               recent=(*inner.recent, f)[-self.nonmonotone:],
                               evaluations=inner.evaluations + tried)
        return StepState(new_x, inner, best_x, best_loss, jnp.bool_(False),
                         None if state.average is None else _average(state.average, new_x)), out


_compiled = functools.lru_cache(maxsize=64)(HostLBFGS)   # one per loss, memory size and box
_average = jax.jit(Average.update)   # one compiled call per step, not three dispatches


def _probe(value_and_grad, x, t, d, g, aux, weights, box, taken):
    x_t = jnp.clip(x + t * d, *box)
    (f_t, terms_t), g_t = value_and_grad(x_t, aux, weights)
    s, y = _pair(x, t, d, g, g_t, box, taken)
    return (x_t, f_t, terms_t, g_t, *_along(x, t, d, g, g_t, box), jnp.vdot(y, s))


def _fresh(m, x) -> Memory:
    return Memory(jnp.zeros((m, *x.shape), jnp.float32), jnp.zeros((m, *x.shape), jnp.float32),
                  jnp.zeros((m,), jnp.float32), jnp.int32(0))


def _pair(x, t, d, g, g_t, box, taken):
    """The memory's pair for the step along d by t (the module's doc): the step as proposed, t d, or
    with `taken` the step taken, clip(x + t d) - x; and the gradient's change g_t - g."""
    return (jnp.clip(x + t * d, *box) - x if taken else t * d), g_t - g


def _remember(memory: Memory, x, t, d, g, g_t, box, taken) -> Memory:
    """The memory with the pair of the step along d by t (y.s > 0, checked by the caller)."""
    s, y = _pair(x, t, d, g, g_t, box, taken)
    i = memory.count % memory.rho.shape[0]
    return Memory(memory.s.at[i].set(s), memory.y.at[i].set(y), memory.rho.at[i].set(1.0 / jnp.vdot(y, s)),
                  memory.count + 1)


def _direction(memory: Memory, g, x, box, hold=False):
    """The quasi-Newton direction -H g by the two-loop recursion (Nocedal & Wright, Algorithm 7.4;
    H_0 = gamma I with gamma = s.y / y.y of the newest pair), and its slope over the box: g.d with
    the components that push a pixel out of the box left out (the projection stops them). With
    `hold` those components are left out of the direction too (L-BFGS-B's way)."""
    m = memory.rho.shape[0]
    newest = lambda k: (memory.count - 1 - k) % m   # noqa: E731  k = 0: the newest pair

    def back(k, carry):
        q, alpha = carry
        i = newest(k)
        a = memory.rho[i] * jnp.vdot(memory.s[i], q)
        return q - a * memory.y[i], alpha.at[i].set(a)

    q, alpha = jax.lax.fori_loop(0, m, back, (g, jnp.zeros((m,), jnp.float32)))
    last = newest(0)
    yy = jnp.vdot(memory.y[last], memory.y[last])
    gamma = jnp.where((memory.count > 0) & (yy > 0), 1.0 / (memory.rho[last] * jnp.where(yy > 0, yy, 1.0)), 1.0)

    def forward(k, r):
        i = newest(m - 1 - k)   # oldest first; empty slots (rho 0) change nothing
        b = memory.rho[i] * jnp.vdot(memory.y[i], r)
        return r + (alpha[i] - b) * memory.s[i]

    d = -jax.lax.fori_loop(0, m, forward, gamma * q)
    held, slope = _held(x, g, d, box)
    return (held if hold else d), slope


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
