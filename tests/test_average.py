"""Iterate averaging: the image every optimizer reports is the exponential moving average of its
iterates, against a numpy reference built from the same run's iterates."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from style_core.errors import StyleError
from style_core.optimize import descend
from style_core.settings import ImageSettings
from style_core.transfer import stylize

TARGET = np.random.default_rng(0).random((5, 6, 3)).astype(np.float32)


def terms(x, aux):
    return {"fit": jnp.sum((x - aux) ** 4) + 0.1 * jnp.sum((x - aux) ** 2)}


def np_average(iterates, decay):
    """v_k = d v_(k-1) + (1 - d) x_k from 0, divided by 1 - d^(k+1), in float64."""
    v = np.zeros_like(iterates[0], np.float64)
    for x in iterates:
        v = decay * v + (1 - decay) * np.asarray(x, np.float64)
    return v / (1 - decay ** len(iterates))


@pytest.mark.parametrize("optimizer,lr,dispatch", [("adam", 0.05, "async"), ("adam", 0.05, "scan"),
                                                   ("sgd", 0.05, "async"), ("rmsprop", 0.01, "async"),
                                                   ("lbfgs", 1.0, "async")])
def test_the_reported_image_is_the_average_of_the_iterates(optimizer, lr, dispatch):
    """One step per chunk without averaging gives every iterate; with it, each report's image is the
    numpy average of the iterates so far (x_0 included), and the final one too."""
    x0 = jnp.full((5, 6, 3), 0.5)
    kw = dict(iterations=8, optimizer=optimizer, lr=lr, steps_per_call=1, tol=0.0, dispatch=dispatch)
    plain = list(descend(x0, terms, jnp.asarray(TARGET), {"fit": 1.0}, **kw))
    averaged = list(descend(x0, terms, jnp.asarray(TARGET), {"fit": 1.0}, average=0.7, **kw))
    iterates = [np.asarray(x0)] + [np.asarray(r.x) for r in plain]
    assert len(averaged) == len(plain) == 8 and not np.allclose(iterates[1], iterates[-1])
    for k, report in enumerate(averaged, 1):
        np.testing.assert_allclose(np.asarray(report.x), np_average(iterates[:k + 1], 0.7), rtol=1e-5, atol=1e-6)
    assert averaged[-1].finished and averaged[-1].losses["total"] == pytest.approx(
        float(terms(averaged[-1].x, jnp.asarray(TARGET))["fit"]), rel=1e-5)


def test_no_averaging_is_the_last_iterate_bit_for_bit(rng_images, vgg19_weights):
    content, style = rng_images
    s = ImageSettings(size=32, style_layers="relu1_1,relu2_1", content_layers="relu2_2", optimizer="adam",
                      iterations=6, steps_per_call=3)
    plain = list(stylize(content, [style], s, vgg19_weights))[-1].result
    off = list(stylize(content, [style], s.replace(average=0.0), vgg19_weights))[-1].result
    on = list(stylize(content, [style], s.replace(average=0.8), vgg19_weights))[-1].result
    np.testing.assert_array_equal(plain.image, off.image)
    assert not np.array_equal(plain.image, on.image) and on.settings.to_dict()["average"] == 0.8


def test_a_decay_of_one_is_refused():
    with pytest.raises(StyleError, match="average must be below 1"):
        ImageSettings(average=1.0)
