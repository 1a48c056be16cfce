"""The studio's one state object: the weights (chosen and loaded), where jobs run, the default
backbone. One per server process (STATE); every tab reads it, the Weights panel and the command
line change it."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from style_core import ImageSettings, load_weights
from style_core.cluster import Local

log = logging.getLogger("style_studio")

UNTRAINED_TEXT = ("⚠ Untrained weights in use ({backbones}): the network has random values, not ImageNet "
                  "training. Results carry the style images' colour and texture statistics, not a trained "
                  "network's style.")


@dataclass
class Studio:
    """`source`: --weights (None: $STYLE_CORE_WEIGHTS, the cache, then the hub). `backbone`: the one
    every tab starts from (the library's, or the VGG the server's --weights file holds). `cluster`:
    where Large's tiles, Video's chunks and Explore's cells run. `weights`: loaded on first use, once
    per backbone."""
    source: str | None = None
    backbone: str = ImageSettings().backbone
    cluster: object = field(default_factory=Local)
    weights: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get_weights(self, backbone: str, report=None):
        with self.lock:
            if backbone not in self.weights:
                self.weights[backbone] = load_weights(backbone, self.source, report)
                if not self.weights[backbone].trained:
                    log.warning(UNTRAINED_TEXT.format(backbones=backbone))
            return self.weights[backbone]

    def use(self, backbone: str, weights) -> None:
        """`weights` (a file uploaded in the page) for `backbone` from now on."""
        with self.lock:
            self.weights[backbone] = weights

    def use_untrained(self) -> None:
        """Untrained (random) weights for every backbone from now on."""
        with self.lock:
            self.source = "random"
            self.weights.clear()
            self.weights["vgg19"] = load_weights("vgg19", "random")

    @property
    def untrained(self) -> list[str]:
        return sorted(b for b, w in self.weights.items() if not w.trained)


STATE = Studio()
