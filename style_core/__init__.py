"""style_core: optimisation-based neural style transfer in JAX/Flax/Optax.

    from style_core import ImageSettings, load_image, load_weights, stylize
    settings = ImageSettings(size=512)
    weights = load_weights(settings.backbone)
    for event in stylize(load_image("content.jpg"), [load_image("style.jpg")], settings, weights):
        ...  # event.completed of event.total steps, event.losses, event.preview; event.result at the end
"""

from .errors import StyleError
from .events import Event, Result
from .images import load_image, save_image
from .settings import ImageSettings
from .transfer import StyleResult, stylize
from .weights import Weights, load_weights

__all__ = ["Event", "ImageSettings", "Result", "StyleError", "StyleResult", "Weights", "load_image",
           "load_weights", "save_image", "stylize"]
