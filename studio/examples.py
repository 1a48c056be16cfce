"""The Image tab's examples: bundled photos under public-domain paintings, run with one click (what
runs is what the page then shows), each result kept for a second click."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from style_core import ImageSettings

from .controls import power_of_ten
from .state import STATE

ASSETS = Path(__file__).resolve().parent.parent / "assets"


# Every control of the Image tab that an example sets, by name: what an example runs is what the page
# then shows (the others keep the library's defaults).
EXAMPLE_SETTINGS = dict(size=256, iterations=100, style_strength=power_of_ten(ImageSettings().style_weight),
                        preserve_color="none", style_blend="", backbone=STATE.backbone, style_layers="paper",
                        content_layers="", optimizer="lbfgs", lr=None, loss="mse",
                        normalization=ImageSettings().normalization, init="content", content_weight=1.0,
                        tv_weight=ImageSettings().tv_weight, scales=1, seed=0, bounds="box", until_done=True,
                        pooling="max", huber_delta=1.0, style_scale=1.0, coarse_iterations=None)
# public-domain and CC0 photos under public-domain paintings (assets/*/README.md)
EXAMPLES = [("photos/chelsea.png", "paintings/starry_night_google.jpg"),
            ("photos/astronaut.png", "paintings/woman-with-hat-matisse.jpg"),
            ("photos/coffee.png", "paintings/shipwreck.jpg"),
            ("photos/rocket.jpg", "paintings/starry_night_google.jpg"),
            ("photos/chelsea.png", "paintings/shipwreck.jpg")]
PAINTERS = {"starry_night_google": "Van Gogh", "woman-with-hat-matisse": "Matisse", "shipwreck": "Turner"}
example_results: dict = {}   # an example's result, by its inputs, settings and weights (a second click)


def example_thumbnails(height: int = 72) -> list[np.ndarray]:
    """Content and style side by side, one picture per example, named in a band under them (a
    gallery's caption would cover the style). Arrays: Gradio stores and serves them."""
    from PIL import Image, ImageDraw
    thumbs = []
    for content, style in EXAMPLES:
        pictures = [Image.open(ASSETS / name).convert("RGB") for name in (content, style)]
        pictures = [p.resize((round(p.width * height / p.height), height), Image.LANCZOS) for p in pictures]
        sheet = Image.new("RGB", (sum(p.width for p in pictures) + 4, height + 16), "white")
        sheet.paste(pictures[0], (0, 0))
        sheet.paste(pictures[1], (pictures[0].width + 4, 0))
        name = f"{Path(content).stem} + {PAINTERS.get(Path(style).stem, Path(style).stem)}"
        ImageDraw.Draw(sheet).text((2, height + 2), name, fill=(40, 40, 40))
        thumbs.append(np.asarray(sheet))
    return thumbs
