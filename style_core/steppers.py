"""The protocol every optimizer follows, in optax's shape, and optax's first-order methods under it.

A stepper is three pure functions over an immutable `StepState`: `init(x)` puts x into its box;
`run(state, aux, weights, limit, n_active) -> (state, (totals, terms))` takes the first `n_active` steps
of a chunk; `converged(state)` says no decrease is left. A step whose loss is not finite or exceeds
`limit` is not taken and marks the state diverged; every later step is a no-op, so the best image seen
survives. A factory `(value_and_grad, lr, *, steps_per_call, dispatch, bounds, size) -> Stepper` builds
one for a run; weights, learning rates and targets are arguments or state, never constants in compiled
code, so a sweep reuses it. L-BFGS is in `lbfgs.py`; `optimize.OPTIMIZERS` names every optimizer.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax


class Average(NamedTuple):
    """An exponential moving average of the iterates x_0, x_1, ... (KB's style_transfer `EMA`, with
    Adam's bias correction): v_k = d v_(k-1) + (1 - d) x_k from v_(-1) = 0, seen as v_k / (1 - d^(k+1)),
    a mean of the iterates with weights decaying by d per step. The decay d is state, not a constant
    of the compiled step, so a sweep of it reuses the step."""
    value: jax.Array
    power: jax.Array        # d^(k+1)
    decay: jax.Array

    @classmethod
    def start(cls, x: jax.Array, decay: float) -> Average:
        d = jnp.float32(decay)
        return cls((1 - d) * x, d, d)

    def update(self, x: jax.Array) -> Average:
        return Average(self.decay * self.value + (1 - self.decay) * x, self.power * self.decay, self.decay)

    @property
    def image(self) -> jax.Array:
        return self.value / (1 - self.power)


class StepState(NamedTuple):
    x: jax.Array            # the current image
    inner: Any              # the optimizer's own state
    best_x: jax.Array       # the image with the lowest loss before any step taken
    best_loss: jax.Array
    diverged: jax.Array     # a step's loss was not finite or above the limit: no step is taken any more
    average: Average | None = None   # of the iterates, where the run averages them (`optimize.descend`)

    @classmethod
    def start(cls, x: jax.Array, inner: Any) -> StepState:
        return cls(x, inner, x, jnp.float32(jnp.inf), jnp.bool_(False))

    def averaged(self, x: jax.Array, taken=True) -> Average | None:
        """The average with the step to x in it (where `taken`; else as it was)."""
        if self.average is None:
            return None
        return jax.tree_util.tree_map(lambda a, b: jnp.where(taken, a, b), self.average.update(x), self.average)


class Stepper(NamedTuple):
    init: Callable[[jax.Array], StepState]
    run: Callable[..., tuple[StepState, tuple[jax.Array, Mapping[str, jax.Array]]]]
    converged: Callable[[StepState], bool]
    # Evaluations of the loss and its gradient so far (a line search makes several per step); None:
    # one per step, as in every first-order method.
    evaluations: Callable[[StepState], int] | None = None


def first_order(transform: Callable[..., optax.GradientTransformation]) -> Callable[..., Stepper]:
    """The stepper factory of an optax first-order method `transform(learning_rate=...)` (optax.adam,
    optax.sgd, ...). Projected steps keep x in [0, 1], the box every output is clipped to, whatever
    `bounds` says. The learning rate lives in the state (optax.inject_hyperparams), so changing it
    does not recompile."""
    def factory(value_and_grad, lr, *, steps_per_call, dispatch, **_box) -> Stepper:
        run, opt = first_order_chunk(value_and_grad, transform, steps_per_call, dispatch)

        def init(x):
            x = jnp.clip(x, 0.0, 1.0)
            inner = opt.init(x)
            rate = {**inner.hyperparams, "learning_rate": jnp.asarray(lr, jnp.float32)}
            return StepState.start(x, inner._replace(hyperparams=rate))
        return Stepper(init, run, lambda state: False)
    return factory


@functools.lru_cache(maxsize=64)
def first_order_chunk(value_and_grad: Callable, transform: Callable, length: int,
                      dispatch: str) -> tuple[Callable, optax.GradientTransformation]:
    """The compiled chunk of up to `length` steps, run as `dispatch` says (`optimize.default_dispatch`),
    and the optimizer whose state it carries."""
    opt = optax.inject_hyperparams(transform)(learning_rate=1.0)

    def step(state: StepState, aux, weights, limit):
        (loss, values), grad = value_and_grad(state.x, aux, weights)
        updates, inner = opt.update(grad, state.inner, state.x)
        x = jnp.clip(optax.apply_updates(state.x, updates), 0.0, 1.0)
        ok = jnp.isfinite(loss) & (loss <= limit) & ~state.diverged
        better = ok & (loss < state.best_loss)
        best_x = jnp.where(better, state.x, state.best_x)
        best_loss = jnp.where(better, loss, state.best_loss)
        x, inner = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), (x, inner), (state.x, state.inner))
        loss = jnp.where(state.diverged, jnp.nan, loss)
        return StepState(x, inner, best_x, best_loss, ~ok, state.averaged(x, ok)), (loss, values)

    if dispatch == "async":
        return dispatched(jax.jit(step)), opt

    def run(state, aux, weights, limit, n_active):
        def skip(s):
            return s, (jnp.float32(jnp.nan), {k: jnp.float32(jnp.nan) for k in weights})

        def body(s, i):
            return jax.lax.cond((i < n_active) & ~s.diverged, lambda s: step(s, aux, weights, limit), skip, s)
        return jax.lax.scan(body, state, jnp.arange(length))

    return jax.jit(run), opt


def dispatched(step: Callable) -> Callable:
    """A chunk that calls `step` once per active step without waiting for results (the host only
    enqueues work), and stacks the per-step outputs like `lax.scan` would."""
    def run(state, aux, weights, limit, n_active):
        outputs = []
        for _ in range(int(n_active)):
            state, out = step(state, aux, weights, limit)
            outputs.append(out)
        return state, jax.tree_util.tree_map(lambda *v: jnp.stack(v), *outputs)
    return run
